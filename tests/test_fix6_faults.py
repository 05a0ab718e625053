"""Faults and scripts: a body cut by a header or chaos leaves the script for the retry, batch
lines fail on the faults that fail a request sent alone, the journal names the chunk a fault
really happened at, and `x-mockai-fault` refuses what it would otherwise read silently (a
parameter or a fault given twice, digits of other scripts)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import conformance
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk import API_KEY, sdk, settled

from mockai import MockServer
from mockai.delivery.deliver import plan_writes
from mockai.delivery.faults import Faults, parse_fault_header, parse_faults
from mockai.delivery.timing import parse_duration, parse_stream, parse_timing_spec
from mockai.wire.outgoing import EventStream

STEPS = {
    "match": {"user": "step"},
    "sequence": [{"reply": "one"}, {"reply": "two"}, {"reply": "three"}, {"reply": "four"}],
}
STEP = [{"role": "user", "content": "step"}]
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def shared() -> Iterator[MockServer]:
    """One server for the module; `server` empties it for each test."""
    with conformance.checked_server() as running:
        yield running


@pytest.fixture
def server(shared: MockServer) -> MockServer:
    shared.clear_rules()
    shared.reset()
    return shared


# --- 1. a body cut by the header or chaos consumes no step ------------------------------------


@pytest.mark.parametrize(
    ("header", "journaled"),
    [
        ("disconnect_after=1;attempts=1", ["disconnect"]),
        ("stall_after=1;attempts=1", ["stall_after"]),
        ("disconnect;attempts=1", ["disconnect"]),
    ],
)
def test_a_body_cut_by_the_header_leaves_the_step_for_the_retry(
    server: MockServer, header: str, journaled: list[str]
) -> None:
    name = server.add_rule(STEPS)
    with openai.OpenAI(base_url=server.url, api_key=API_KEY, max_retries=2, timeout=1.5) as client:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=STEP, extra_headers={"x-mockai-fault": header}
        )
    assert reply.choices[0].message.content == "one"  # the script's first step, retried
    cut, answered = settled(server, 2)
    assert (cut.source, cut.rule, cut.faults) == ("fault", "x-mockai-fault", journaled)
    assert (answered.source, answered.rule, answered.faults) == ("rule", name, [])


def test_chaos_body_cuts_leave_the_script_alone() -> None:
    with MockServer(chaos={"disconnect": 0.5}, seed=3, log_requests=False) as server:
        server.add_rule(STEPS)
        got = [_retried(server.url + "/chat/completions") for _ in range(4)]
        entries = server.requests
    assert got == ["one", "two", "three", "four"]
    cuts = [e for e in entries if e.source == "fault"]
    assert cuts, "the seed drew no disconnect: the test proves nothing"
    assert all((e.rule, e.faults) == ("chaos", ["disconnect"]) for e in cuts)


def _retried(url: str) -> str:
    """The answer's text, retrying a cut body at once as an SDK would (without its backoff)."""
    body = {"model": "gpt-4o-mini", "messages": STEP}
    for _ in range(20):
        try:
            answer = httpx.post(url, json=body, timeout=2)
        except httpx.TransportError:  # the body was cut: retry
            continue
        return str(answer.json()["choices"][0]["message"]["content"])
    raise AssertionError("20 attempts, all cut")


# --- 2. faults on batch lines -----------------------------------------------------------------


def _line(custom_id: str) -> str:
    body = {"model": "gpt-4o-mini", "messages": HI}
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    )


def test_batch_lines_fail_on_every_connection_fault_and_journal_it(server: MockServer) -> None:
    faults = {"reset": {"reset": True}, "cut": {"disconnect_after": 1}, "stall": {"stall_after": 1}}
    for custom_id, fault in faults.items():
        server.add_rule(
            {"match": {"headers": {"x-mockai-custom-id": custom_id}}, "reply": "x", "faults": fault}
        )
    server.add_rule({"match": {"headers": {"x-mockai-custom-id": "fine"}}, "reply": "fine"})
    jsonl = "\n".join(_line(custom_id) for custom_id in [*faults, "fine"])
    with sdk(server) as client:
        upload = client.files.create(file=("b.jsonl", jsonl.encode()), purpose="batch")
        batch = client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        for _ in range(10):  # a batch moves one status a retrieval
            if batch.status == "completed":
                break
            batch = client.batches.retrieve(batch.id)
        assert batch.status == "completed" and batch.error_file_id is not None
        failed = [
            json.loads(line)
            for line in client.files.content(batch.error_file_id).text.split("\n")
            if line
        ]
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 3)
    statuses = {line["custom_id"]: line["response"]["status_code"] for line in failed}
    assert statuses == {"reset": 500, "cut": 500, "stall": 500}
    messages = {line["custom_id"]: line["response"]["body"]["error"]["message"] for line in failed}
    assert "fault stall_after left this line" in messages["stall"]
    journaled = {
        e.headers["x-mockai-custom-id"]: (e.status, e.faults) for e in server.requests if e.batch
    }
    assert journaled == {
        "reset": (500, ["reset"]),
        "cut": (500, ["disconnect"]),
        "stall": (500, ["stall_after"]),
        "fine": (200, []),
    }


# --- 3. the journal names where a fault happened ----------------------------------------------


@pytest.mark.parametrize("fault", ["disconnect_after", "error_event_after", "truncate_after"])
def test_the_journal_names_the_chunk_a_stream_was_cut_after(server: MockServer, fault: str) -> None:
    chunks = 0
    fails = pytest.raises(openai.APIError) if fault != "truncate_after" else nullcontext()
    with sdk(server) as client, fails:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=HI,
            stream=True,
            extra_headers={"x-mockai-fault": f"{fault}=500"},
        )
        for _ in stream:
            chunks += 1
    (entry,) = settled(server, 1)
    assert chunks > 1 and entry.faults == [f"{fault}={chunks}"]


def test_a_json_body_cut_is_journaled_as_the_docs_name_it(server: MockServer) -> None:
    with sdk(server) as client, pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=HI, extra_headers={"x-mockai-fault": "disconnect_after=4"}
        )
    (entry,) = settled(server, 1)
    assert entry.faults == ["disconnect"]


_FRAME = st.sampled_from([b"data: {}\n\n", b": keep-alive\n\n"])


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(_FRAME, max_size=12),
    preamble=st.integers(0, 2),
    tail=st.integers(0, 3),
    name=st.sampled_from(
        [
            "disconnect_after",
            "truncate_after",
            "error_event_after",
            "stall_after",
            "malformed_chunk",
        ]
    ),
    number=st.integers(1, 40),
)
def test_journaled_chunks_are_where_delivery_puts_the_fault(
    frames: list[bytes], preamble: int, tail: int, name: str, number: int
) -> None:
    stream = EventStream(frames=tuple(frames), tail=min(tail, len(frames)), preamble=preamble)
    asked = Faults(**{name: number})  # type: ignore[arg-type]
    journaled = asked.for_answer(stream)
    capped = getattr(journaled, name)
    assert 0 <= capped <= number
    # Delivery does exactly the same with the journaled number as with the one asked for.
    assert plan_writes(stream, journaled) == plan_writes(stream, asked)
    writes, ending = plan_writes(stream, asked)
    if ending is not None:  # a cut: after as many chunks as the journal says
        counted = {
            i for i in range(len(frames)) if i >= preamble and not frames[i].startswith(b":")
        }
        assert sum(1 for w in writes if w.frame in counted) == capped


# --- 4. what x-mockai-fault and the timing parsers refuse -------------------------------------


@pytest.mark.parametrize(
    ("header", "said"),
    [
        (
            "rate_limit;retry_after=1s;retry_after=2s",
            "'retry_after' is given twice, retry_after=1s and retry_after=2s; give it once",
        ),
        (
            "disconnect_after=2,disconnect_after=5",
            "'disconnect_after' is given twice, disconnect_after=2 and disconnect_after=5; give it once",
        ),
        (
            "server_error;attempts=1;attempts=3",
            "'attempts' is given twice, attempts=1 and attempts=3; give it once",
        ),
        (
            "disconnect, disconnect_after=3",
            "'disconnect_after' is given twice, disconnect and disconnect_after=3; give it once",
        ),
        ("reset;attempts=1, reset", "'reset' is given twice, reset and reset; give it once"),
    ],
)
def test_a_fault_or_parameter_given_twice_is_refused(header: str, said: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_fault_header(header)
    assert str(refused.value) == said


_OTHER_DIGIT = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())


@settings(max_examples=60, deadline=None)
@given(digit=_OTHER_DIGIT)
def test_numbers_are_ascii_digits_only(digit: str) -> None:
    for header in (f"server_error;attempts={digit}", f"disconnect_after={digit}"):
        with pytest.raises(ValueError):
            parse_fault_header(header)
    with pytest.raises(ValueError):
        parse_faults({"disconnect_after": digit})  # a scenario's string
    for duration in (f"{digit}s", f"1{digit}ms", f"{digit}-2s"):
        with pytest.raises(ValueError):
            parse_duration(duration)
        with pytest.raises(ValueError):
            parse_timing_spec(duration)  # --latency, x-mockai-latency
    for pacing in (f"ttft={digit}s", f"tokens_per_second={digit}", f"jitter=0.{digit}"):
        with pytest.raises(ValueError):
            parse_stream(pacing)  # x-mockai-stream
    with pytest.raises(ValueError):
        parse_fault_header(f"rate_limit;retry_after={digit}s")
    assert parse_fault_header("server_error;attempts=3").items[0].attempts == 3  # ASCII: fine


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-mockai-fault", "server_error;attempts=1;attempts=3"),
        ("x-mockai-fault", "server_error;attempts=\u0663"),
        ("x-mockai-fault", "disconnect_after=\uff11"),
        ("x-mockai-latency", "\u0661s"),
        ("x-mockai-stream", "ttft=\u0661s"),
    ],
)
def test_the_server_answers_a_400_naming_the_header(
    server: MockServer, name: str, value: str
) -> None:
    started = time.monotonic()
    answer = httpx.post(
        server.url + "/chat/completions",
        json={"model": "gpt-4o-mini", "messages": HI},
        headers={name: value.encode()},
        timeout=5,
    )
    assert answer.status_code == 400, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert error["param"] == name and name in error["message"]
    assert time.monotonic() - started < 4  # (refused at once: no fault was applied)
