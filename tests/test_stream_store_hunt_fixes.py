"""Fixes from the streaming hunt: stored chat completions kept as a cut stream delivered them,
diarized transcription streams with their segments, vLLM's `continuous_usage_stats` needing
`include_usage`, and cassette timing that replay cannot use refused by `mockai check` and at load.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profile_support import KEY, MODELS

from mockai import MockServer
from mockai.check import check_paths
from mockai.errors import CassetteError

MODEL = "gpt-4o-mini"
_ASKED = count()


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


# --- 1. a stored chat completion is what a cut stream delivered -----------------------------------


def _stream_stored(server: MockServer, fault: str, timeout: float = 10.0) -> tuple[str, Any]:
    """Stream a `store: true` chat completion under `fault`: the content the client got, and the
    stored completion the SDK retrieves."""
    got, completion_id = "", None
    question = f"Describe a lake, take {next(_ASKED)}"
    with openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0, timeout=timeout) as client:
        try:
            for chunk in client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": question}],
                store=True,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers={"x-mockai-fault": fault},
            ):
                completion_id = chunk.id
                got += "".join(choice.delta.content or "" for choice in chunk.choices)
        except openai.APIError:  # (the in-band error, the dropped or the stalled connection)
            pass
        assert completion_id is not None, "the cut came before any chunk"
        return got, client.chat.completions.retrieve(completion_id)


@pytest.mark.parametrize(
    "fault", ["error_event_after=3", "truncate_after=3", "disconnect_after=3", "disconnect"]
)
def test_a_cut_stream_is_stored_as_the_client_got_it(server: MockServer, fault: str) -> None:
    got, stored = _stream_stored(server, fault)
    (choice,) = stored.choices
    assert choice.message.content == got
    # `disconnect` drops at a point drawn from the request (the question holds a counter, so the
    # draw follows the tests run before): about one question in eight drops before any text.
    assert got or fault == "disconnect"
    # The finish chunk and the usage chunk come after any cut: the client never had them.
    assert choice.finish_reason is None
    assert stored.usage is None


def test_a_stalled_stream_is_stored_as_far_as_it_went(server: MockServer) -> None:
    got, stored = _stream_stored(server, "stall_after=2", timeout=0.5)  # (the read timeout ends it)
    assert got and stored.choices[0].message.content == got
    assert stored.choices[0].finish_reason is None


def test_only_a_cut_changes_what_is_stored(server: MockServer) -> None:
    _, cut = _stream_stored(server, "truncate_after=2,split_chunk=1")
    got, whole = _stream_stored(server, "split_chunk=2")  # (a chunk in two writes: nothing lost)
    assert whole.choices[0].message.content == got and whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None
    assert len(cut.choices[0].message.content or "") < len(got) and cut.usage is None


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.sampled_from(["error_event_after", "truncate_after", "disconnect_after"]),
    chunk=st.integers(min_value=1, max_value=80),
)
def test_stored_content_is_the_deltas_received_for_any_cut(
    server: MockServer, cut: str, chunk: int
) -> None:
    got, stored = _stream_stored(server, f"{cut}={chunk}")
    assert (stored.choices[0].message.content or "") == got
    assert stored.choices[0].finish_reason is None


# --- 2. diarized transcription streams carry their segments ---------------------------------------

_EVENT_SCHEMAS = {
    "transcript.text.delta": "TranscriptTextDeltaEvent",
    "transcript.text.segment": "TranscriptTextSegmentEvent",
    "transcript.text.done": "TranscriptTextDoneEvent",
}
_DIARIZE = {
    "model": "gpt-4o-transcribe-diarize",
    "response_format": "diarized_json",
    "chunking_strategy": "auto",
}
_RECORDING = ("talk.mp3", b"\xff\xfb" + bytes(8000), "audio/mpeg")


def _transcribe(server: MockServer, **form: Any) -> httpx.Response:
    response = httpx.post(
        server.url + "/audio/transcriptions",
        data={**_DIARIZE, **form},
        files={"file": _RECORDING},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def _events(response: httpx.Response) -> list[dict[str, Any]]:
    return [
        json.loads(frame.removeprefix("data: "))
        for frame in response.text.split("\n\n")
        if frame.startswith("data: {")
    ]


def _check_segments(events: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The stream's segment events, once every event is checked against the spec and each
    segment's deltas (named by its id) come before it and add up to its text."""
    for event in events:
        conformance.validate(_EVENT_SCHEMAS[event["type"]], event)
    assert events[-1]["type"] == "transcript.text.done" and events[-1]["text"] == text
    deltas = [event for event in events if event["type"] == "transcript.text.delta"]
    assert "".join(event["delta"] for event in deltas) == text
    segments, pending = [], ""
    for event in events[:-1]:
        if event["type"] == "transcript.text.delta":
            pending += event["delta"]
            next_id = f"seg_{len(segments) + 1:03d}"
            assert event["segment_id"] == next_id, "a delta belongs to the segment that follows"
        else:
            assert pending.strip() == event["text"]
            segments.append(event)
            pending = ""
    assert not pending, "deltas after the last segment"
    return segments


def test_a_diarized_stream_sends_each_segment_with_its_speaker() -> None:
    text = "Hello there. How are you today?  I am fine,\nthanks! Bye."
    with conformance.checked_server() as server:
        server.add_rule({"match": {"endpoint": "transcriptions"}, "reply": text})
        answered = _transcribe(server).json()
        segments = _check_segments(_events(_transcribe(server, stream="true")), text)
    assert segments == answered["segments"] and len(segments) == 4
    assert [segment["speaker"] for segment in segments] == ["A", "B", "A", "B"]


def test_the_sdk_streams_the_segments_too() -> None:
    with MockServer(log_requests=False) as server:
        server.add_rule({"match": {"endpoint": "transcriptions"}, "reply": "One. Two."})
        with openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0) as client:
            events = list(
                client.audio.transcriptions.create(
                    file=_RECORDING,
                    model="gpt-4o-transcribe-diarize",
                    response_format="diarized_json",
                    chunking_strategy="auto",
                    stream=True,
                )
            )
    kinds = [event.type for event in events]
    assert kinds.count("transcript.text.segment") == 2 and kinds[-1] == "transcript.text.done"
    segment = next(event for event in events if event.type == "transcript.text.segment")
    assert segment.speaker == "A" and segment.text == "One."  # type: ignore[union-attr]
    assert events[0].segment_id == "seg_001"  # type: ignore[union-attr]


def test_the_diarizing_model_names_segments_in_plain_json_streams_too(server: MockServer) -> None:
    events = _events(_transcribe(server, stream="true", response_format="json"))
    kinds = {event["type"] for event in events}
    assert kinds == {"transcript.text.delta", "transcript.text.done"}  # segments: diarized_json
    assert all(e["segment_id"].startswith("seg_") for e in events if "delta" in e)


_WORD = st.text(alphabet="abcdefghij", min_size=1, max_size=6)
_SENTENCE = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(_WORD, min_size=1, max_size=4),
    st.sampled_from([".", "!", "?", "..."]),
)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sentences=st.lists(_SENTENCE, min_size=1, max_size=6),
    gaps=st.lists(st.sampled_from([" ", "  ", "\n", " \n "]), min_size=6, max_size=6),
    tail=st.sampled_from(["", " ", "\n"]),
)
def test_diarized_deltas_add_up_to_the_text_and_to_each_segment(
    server: MockServer, sentences: list[str], gaps: list[str], tail: str
) -> None:
    text = "".join(s + gap for s, gap in zip(sentences, gaps, strict=False)).rstrip() + tail
    server.add_rule({"match": {"endpoint": "transcriptions"}, "reply": text})
    try:
        segments = _check_segments(_events(_transcribe(server, stream="true")), text)
        assert segments == _transcribe(server).json()["segments"]
    finally:
        server.clear_rules()  # (the module's server answers other tests)


# --- 3. vLLM: continuous usage needs include_usage ------------------------------------------------


def _usage_per_chunk(server: MockServer, options: dict[str, Any]) -> list[bool]:
    """Whether each chunk of a vLLM stream asked with these `stream_options` carries usage."""
    response = httpx.post(
        server.provider_url("vllm") + "/chat/completions",
        json={
            "model": MODELS["vllm"],
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "max_tokens": 5,
            "stream_options": options,
        },
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    chunks = [
        json.loads(frame[6:])
        for frame in response.text.split("\n\n")
        if frame.startswith("data: {")
    ]
    assert len(chunks) > 2
    return [bool(chunk.get("usage")) for chunk in chunks]


def test_vllm_streams_continuous_usage_only_with_include_usage(server: MockServer) -> None:
    # vLLM: `include_continuous_usage = include_usage and bool(continuous_usage_stats)`.
    for alone in (
        {"continuous_usage_stats": True},
        {"include_usage": False, "continuous_usage_stats": True},
    ):
        assert not any(_usage_per_chunk(server, alone)), alone
    last = _usage_per_chunk(server, {"include_usage": True, "continuous_usage_stats": False})
    assert last == [False] * (len(last) - 1) + [True]
    assert all(_usage_per_chunk(server, {"include_usage": True, "continuous_usage_stats": True}))


# --- 4. cassette timing replay cannot use ---------------------------------------------------------

_CASSETTE = """\
interactions:
- request:
    body: '{{"model":"gpt-4o-mini","stream":true,"messages":[]}}'
    headers:
      Content-Type: [application/json]
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body: {{string: "data: {{\\"a\\":1}}\\n\\ndata: {{\\"b\\":2}}\\n\\ndata: [DONE]\\n\\n"}}
    headers:
      Content-Type: [text/event-stream]
    mockai: {own}
    status: {{code: 200, message: OK}}
version: 1
"""
_OWN_LINE = 12  # the line of `mockai:` above

_BAD_TIMING = [
    ("{events: abc}", "mockai.events is 'abc', not a list of seconds"),
    ("{events: [.nan, .nan, .nan]}", "mockai.events[0] is nan, not a finite number of seconds"),
    ("{events: [-1.0, 0.1, 0.2]}", "mockai.events[0] is -1.0 s: negative"),
    (
        "{events: [0.0, 1.0e+12, 1.0e+12]}",
        "mockai.events[1] is 1000000000000.0 s: over a day (at most 86400 s)",
    ),
    ("{events: [0.0, x, 0.2]}", "mockai.events[1] is 'x', not a number of seconds"),
    ("{latency: 1.0e+12}", "mockai.latency is 1000000000000.0 s: over a day (at most 86400 s)"),
    ("{latency: .inf}", "mockai.latency is inf, not a finite number of seconds"),
    ("{duration: true}", "mockai.duration is True, not a number of seconds"),
    ("5", "mockai is 5, not a mapping"),
]


def _cassette(tmp_path: Path, own: str) -> Path:
    path = tmp_path / "timed.yaml"
    path.write_text(_CASSETTE.format(own=own))
    assert path.read_text().splitlines()[_OWN_LINE - 1].startswith("    mockai:")
    return path


@pytest.mark.parametrize(("own", "problem"), _BAD_TIMING)
def test_check_reports_timing_replay_cannot_use(tmp_path: Path, own: str, problem: str) -> None:
    path = _cassette(tmp_path, own)
    checked = subprocess.run(
        [sys.executable, "-m", "mockai", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 1
    assert checked.stderr.splitlines()[0] == f"{path}:{_OWN_LINE}: interaction 0: {problem}"


@pytest.mark.parametrize(("own", "problem"), _BAD_TIMING[:5:2] + _BAD_TIMING[5:6])
def test_serve_refuses_timing_replay_cannot_use(tmp_path: Path, own: str, problem: str) -> None:
    path = _cassette(tmp_path, own)
    served = subprocess.run(  # (bounded: a server that started would never exit by itself)
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--cassette", str(path)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert served.returncode == 2
    assert f"{path}:{_OWN_LINE}: interaction 0: {problem}" in served.stderr
    assert "Traceback" not in served.stderr


def test_the_pytest_plugins_server_refuses_it_too(tmp_path: Path) -> None:
    path = _cassette(tmp_path, "{events: [0.0, .nan, 0.2]}")
    with pytest.raises(CassetteError, match=r"timed\.yaml:12: interaction 0: mockai\.events\[1\]"):
        MockServer(cassette=str(path)).start()


def _usable(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= 86400
    )


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.one_of(
        st.floats(min_value=-1e15, max_value=1e15),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.sampled_from([86400, 86400.0, 86400.0001, 0, -0.0, True]),
    ),
    where=st.sampled_from(["latency", "duration", "events"]),
)
def test_check_accepts_exactly_the_usable_seconds(tmp_path: Path, value: Any, where: str) -> None:
    number = _yaml(value)
    own = (
        f"{{events: [0.0, {number}, {number}]}}" if where == "events" else f"{{{where}: {number}}}"
    )
    problems = [str(problem) for problem in check_paths([str(_cassette(tmp_path, own))])]
    timing = [problem for problem in problems if f"mockai.{where}" in problem]
    assert (timing == []) == _usable(value), (own, problems)


def _yaml(value: Any) -> str:
    """`value` as YAML writes it (YAML 1.1 reads `1e+20`, without a dot, as a string)."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    written = json.dumps(value)
    if isinstance(value, float) and "e" in written and "." not in written:
        written = written.replace("e", ".0e")
    return written
