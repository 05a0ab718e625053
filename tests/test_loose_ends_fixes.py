"""Loose ends of this session's fixes: a stored Response is what a cut stream delivered, a
scripted tool call's name is held to the API's pattern whole, and a client that left during
`latency` is journaled as sent nothing.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from profile_support import KEY

from mockai import MockServer
from mockai.errors import ScenarioError

MODEL = "gpt-4o-mini"
AUTH = {"Authorization": f"Bearer {KEY}"}
_ASKED = count()


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


# --- 1. a stored Response is what a cut stream delivered ------------------------------------------


def _stream_stored(
    server: MockServer, fault: str, timeout: float = 10.0, **extra: Any
) -> tuple[str, str]:
    """Stream a stored Responses request under `fault`: the text of the `output_text` deltas the
    client got, and the response's id."""
    got, _, response_id = _stream_deltas(server, fault, timeout, **extra)
    return got, response_id


def _stream_deltas(
    server: MockServer, fault: str, timeout: float = 10.0, **extra: Any
) -> tuple[str, str, str]:
    """`_stream_stored`'s text and id, and the function-call argument deltas' text between."""
    got, arguments, response_id = "", "", None
    with openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0, timeout=timeout) as client:
        try:
            for event in client.responses.create(
                model=MODEL,
                input=f"Describe a lake, take {next(_ASKED)}",
                store=True,
                stream=True,
                extra_headers={"x-mockai-fault": fault},
                **extra,
            ):
                if event.type == "response.created":
                    response_id = event.response.id
                elif event.type == "response.output_text.delta":
                    got += event.delta
                elif event.type == "response.function_call_arguments.delta":
                    arguments += event.delta
        except openai.APIError:  # (the dropped or the stalled connection)
            pass
    assert response_id is not None, "the cut came before response.created"
    return got, arguments, response_id


def _retrieved(server: MockServer, response_id: str, suffix: str = "") -> Any:
    answer = httpx.get(f"{server.url}/responses/{response_id}{suffix}", headers=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _output_text(response: dict[str, Any]) -> str:
    """What the SDK's `output_text` reads: every `output_text` part of every message."""
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


@pytest.mark.parametrize(
    ("fault", "timeout"),
    [
        ("truncate_after=6", 10.0),
        ("disconnect_after=6", 10.0),
        ("stall_after=6", 0.5),  # (the read timeout ends it)
        ("disconnect", 10.0),
        ("error_event_after=6", 10.0),
    ],
)
def test_a_cut_stream_is_stored_as_the_client_got_it(
    server: MockServer, fault: str, timeout: float
) -> None:
    got, response_id = _stream_stored(server, fault, timeout)
    stored = _retrieved(server, response_id)
    conformance.validate("Response", stored)
    # It never completed: `failed` (terminal, so a polling loop ends), with no usage the client
    # never had, and the message as far as it went, `incomplete`.
    assert stored["status"] == "failed" and stored["error"]["code"] == "server_error"
    assert stored.get("usage") is None and stored["completed_at"] is None
    assert _output_text(stored) == got
    assert all(item["status"] == "incomplete" for item in stored["output"])
    if fault != "disconnect":  # (chaos's own `disconnect` may cut before the message)
        assert got and len(stored["output"]) == 1
    # What it was asked is unchanged.
    (asked,) = _retrieved(server, response_id, "/input_items")["data"]
    assert asked["content"][0]["text"].startswith("Describe a lake")


def test_only_a_cut_changes_what_is_stored(server: MockServer) -> None:
    _, cut = _stream_stored(server, "truncate_after=5,split_chunk=2")
    got, whole = _stream_stored(server, "split_chunk=5")  # (an event in two writes: nothing lost)
    complete = _retrieved(server, whole)
    assert complete["status"] == "completed" and _output_text(complete) == got
    assert complete["usage"]["output_tokens"] > 0
    assert _retrieved(server, cut)["status"] == "failed"


def test_a_resumed_cut_stream_ends_where_the_client_was_cut(server: MockServer) -> None:
    got, response_id = _stream_stored(server, "truncate_after=7")
    resumed = httpx.get(
        f"{server.url}/responses/{response_id}",
        params={"stream": "true", "starting_after": "1"},
        headers=AUTH,
        timeout=10,
    )
    events = [
        json.loads(line[6:]) for line in resumed.text.splitlines() if line.startswith("data: {")
    ]
    assert [event["sequence_number"] for event in events] == list(range(2, 7))
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == got


@pytest.mark.parametrize(
    ("fault", "timeout"),
    [
        ("disconnect_after=6", 10.0),
        ("truncate_after=6", 10.0),
        ("stall_after=6", 0.5),
        ("disconnect", 10.0),
    ],
)
def test_a_background_run_whose_connection_drops_runs_on_and_resumes_to_its_end(
    server: MockServer, fault: str, timeout: float
) -> None:
    # The API's background guide: a client whose stream drops resumes it from its cursor
    # (`starting_after`), and the run, which does not need the connection, completes. mockai
    # kept it as cut: resumed it ended at the cut, and retrieved it had failed, so no client's
    # resume path could be tested.
    got, response_id = _stream_stored(server, fault, timeout, background=True)
    events = [
        json.loads(line[6:])
        for line in httpx.get(
            f"{server.url}/responses/{response_id}",
            params={"stream": "true", "starting_after": "2"},
            headers=AUTH,
            timeout=10,
        ).text.splitlines()
        if line.startswith("data: {")
    ]
    assert events[0]["sequence_number"] == 3 and events[-1]["type"] == "response.completed"
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    stored = _retrieved(server, response_id)
    assert stored["status"] == "completed" and stored["usage"]["output_tokens"] > 0
    assert _output_text(stored) == deltas and deltas.startswith(got)


def test_a_background_run_an_error_event_ends_has_failed(server: MockServer) -> None:
    # The in-band error is the run's own failure, not its connection's: it stays failed.
    _, response_id = _stream_stored(server, "error_event_after=6", background=True)
    assert _retrieved(server, response_id)["status"] == "failed"


def test_chaining_onto_a_cut_response_carries_what_the_client_got() -> None:
    with MockServer(log_requests=False) as server:
        server.add_rule(
            {"match": {"turn": 1}, "reply": "The lake is deep, cold and very still at dawn."}
        )
        # The second turn answers with the assistant message it was chained onto.
        server.add_rule(
            {"match": {"turn": 2}, "reply": {"content": "<{{ request.messages[1].content }}>"}}
        )
        got, response_id = _stream_stored(server, "disconnect_after=8")
        with openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0) as client:
            chained = client.responses.create(
                model=MODEL, input="and then?", previous_response_id=response_id
            )
    assert got and chained.output_text == f"<{got}>"


_FORECAST = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.sampled_from(["error_event_after", "truncate_after", "disconnect_after"]),
    event=st.integers(min_value=1, max_value=80),
    tool=st.booleans(),
)
def test_stored_output_is_what_the_deltas_delivered_for_any_cut(
    server: MockServer, cut: str, event: int, tool: bool
) -> None:
    extra: dict[str, Any] = {}
    if tool:  # a function call instead of a message: its arguments, cut anywhere
        extra["tools"] = [{"type": "function", "name": "forecast", "parameters": _FORECAST}]
        extra["tool_choice"] = "required"
    got, arguments, response_id = _stream_deltas(server, f"{cut}={event}", **extra)
    stored = _retrieved(server, response_id)
    conformance.validate("Response", stored)
    assert _output_text(stored) == got
    calls = [item for item in stored["output"] if item["type"] == "function_call"]
    assert "".join(call["arguments"] for call in calls) == arguments
    assert stored["status"] == "failed"  # (a cut lands before the terminal event, always)


# --- 2. a scripted tool call's name is held to the API's pattern, whole ---------------------------

_SCENARIO = """\
mockai: 1
rules:
  - name: call
    match: {{user: weather}}
    reply:
      tool_calls:
        - name: {name}
          arguments: {{}}
"""
_NAME_LINE = 7


@pytest.mark.parametrize("name", ['"ping\\n"', '"get_weather\\n"'])
def test_check_refuses_a_tool_name_with_a_trailing_newline(tmp_path: Path, name: str) -> None:
    path = tmp_path / "calls.yaml"
    path.write_text(_SCENARIO.format(name=name))
    checked = subprocess.run(
        [sys.executable, "-m", "mockai", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 1
    assert checked.stderr.splitlines()[0].startswith(
        f"{path}:{_NAME_LINE}: rule 'call' reply.tool_calls[0] needs a name of letters, digits,"
    )
    with pytest.raises(ScenarioError, match=rf"calls\.yaml:{_NAME_LINE}: rule 'call'"):
        MockServer(scenarios=(str(path),))


def _api_accepts(server: MockServer, name: str) -> bool:
    answer = httpx.post(
        f"{server.url}/chat/completions",
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": name}}],
        },
        headers=AUTH,
        timeout=10,
    )
    assert answer.status_code in (200, 400), answer.text
    return answer.status_code == 200


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(alphabet="ab_-9 \n\r\t.é", min_size=0, max_size=70))
@example(name="ping\n")
@example(name="a" * 64 + "\n")
@example(name="a" * 65)
def test_a_scripted_tool_name_is_accepted_as_the_api_accepts_it(
    server: MockServer, name: str
) -> None:
    rules = MockServer()
    try:
        rules.add_rule(
            {"match": {"user": "weather"}, "reply": {"tool_calls": [{"name": name}]}},
        )
        scripted = True
    except ScenarioError as error:
        assert "needs a name of letters, digits, _ or - (at most 64)" in str(error)
        scripted = False
    assert scripted == (re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name) is not None)
    if name:  # (an empty name: the API's own message, a different check)
        assert scripted == _api_accepts(server, name)


# --- 3. a client that left during `latency` was sent nothing --------------------------------------


def _posted(body: dict[str, Any], latency: str) -> bytes:
    data = json.dumps(body).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: mockai\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        f"x-mockai-latency: {latency}\r\n\r\n"
    )
    return head.encode() + data


def test_a_stream_after_its_latency_is_journaled_with_its_status_while_it_flows() -> None:
    """Status 0 lasts while nothing is sent: once the headers of a stream went out (its latency
    over), its entry says 200 while the chunks still flow, not only once the stream ends."""
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "slow"}]}
    headers = {**AUTH, "x-mockai-latency": "10ms", "x-mockai-stream": "chunk_delay=10m"}
    with (
        MockServer(log_requests=False) as server,
        httpx.stream(
            "POST", f"{server.url}/chat/completions", json=body, headers=headers, timeout=30
        ) as streamed,
    ):
        assert streamed.status_code == 200
        next(streamed.iter_bytes())  # the first chunk: the next one waits ten minutes
        (flowing,) = _journal(server)
        assert flowing["status"] == 200 and flowing["duration_ms"] == 0  # still in progress


def _journal(server: MockServer) -> list[dict[str, Any]]:
    answer = httpx.get(f"http://127.0.0.1:{server.port}/_mockai/requests", timeout=10)
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


def _until(server: MockServer, done: Any, within: float = 10.0) -> list[dict[str, Any]]:
    """The journal once `done(entries)` holds (polled; at most `within` seconds)."""
    deadline = time.monotonic() + within
    while not done(entries := _journal(server)):
        assert time.monotonic() < deadline, f"not settled after {within}s: {entries}"
        time.sleep(0.02)
    return entries


def _in_flight(server: MockServer) -> float:
    text = httpx.get(f"http://127.0.0.1:{server.port}/_mockai/metrics", timeout=10).text
    values = dict(line.split(" ") for line in text.splitlines() if not line.startswith("#"))
    return float(values["mockai_requests_in_flight"])


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_left_during_latency_is_journaled_as_sent_nothing(stream: bool) -> None:
    body = {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": "slow"}]}
    with MockServer(log_requests=False) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
            client.sendall(_posted(body, "10m"))
            deadline = time.monotonic() + 10
            while _in_flight(server) != 1.0:  # (it waits out its 10 minutes)
                assert time.monotonic() < deadline, "the request never arrived"
                time.sleep(0.02)
            # Answered but waiting out its latency: nothing is sent yet, and the journal says so.
            (waiting,) = _until(server, lambda entries: entries and entries[0]["response_headers"])
            assert waiting["status"] == 0
        (left,) = _until(server, lambda entries: entries and entries[0]["duration_ms"] > 0)
        # A client that stays gets its answer, and the journal says so.
        answered = httpx.post(
            f"{server.url}/chat/completions",
            json=body,
            headers={**AUTH, "x-mockai-latency": "10ms"},
            timeout=10,
        )
        assert answered.status_code == 200
        _, stayed = _until(server, lambda entries: len(entries) == 2 and entries[1]["duration_ms"])
    assert left["status"] == 0  # no response was sent, as for a `hang` whose client left
    assert "openai-processing-ms" not in left["response_headers"]
    assert stayed["status"] == 200
