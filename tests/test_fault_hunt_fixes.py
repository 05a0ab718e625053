"""Fault timing, scripted retry headers and stream frames: durations too long to wait, a scripted
`retry-after` the SDK obeys, a request's own pace over a recorded one, and SSE comments that are
no chunk a fault counts."""

from __future__ import annotations

import math
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk import sdk

from mockai import MockServer
from mockai.delivery.deliver import plan_writes
from mockai.delivery.faults import Faults
from mockai.delivery.timing import (
    MAX_DURATION,
    Uniform,
    parse_delay,
    parse_duration,
    unit_warnings,
)
from mockai.wire import errors
from mockai.wire.outgoing import EventStream

BIG = "9" * 400  # float() reads it as infinity
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
CASSETTE = Path(__file__).parent.parent / "cassettes" / "chat_stream.yaml"


def _admin(server: Any) -> str:
    return str(server.url).removesuffix("/v1")


# --- 1. a duration is finite, and at most a day ----------------------------------------------


@pytest.mark.parametrize("header", ["x-mockai-fault", "x-mockai-latency", "x-mockai-stream"])
def test_an_endless_duration_in_a_header_is_a_400_naming_it(header: str) -> None:
    value = {
        "x-mockai-fault": f"rate_limit;retry_after={BIG}s",
        "x-mockai-latency": f"100ms-{BIG}ms",
        "x-mockai-stream": f"ttft={BIG}ms",
    }[header]
    with conformance.checked_server() as server:
        answer = httpx.post(server.url + "/chat/completions", json=CHAT, headers={header: value})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == header
    assert "too long: durations are at most 86400s" in error["message"]


def test_an_endless_retry_after_in_an_admin_rule_is_a_400() -> None:
    rule = {"match": {"user": "hi"}, "error": {"name": "rate_limit", "retry_after": BIG + "s"}}
    with conformance.checked_server() as server:
        answer = httpx.post(_admin(server) + "/_mockai/rules", json=rule)
    assert answer.status_code == 400
    assert "error.retry_after" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("line", "where"),
    [
        (f'error: {{name: rate_limit, retry_after: "{BIG}s"}}', "error.retry_after"),
        (f'latency: "{BIG}ms"', "latency"),
        ('latency: "1441m"', "latency"),
        (f"latency: {BIG}", "latency"),  # (a YAML int)
    ],
)
def test_an_endless_duration_in_a_scenario_is_a_file_line_problem(
    tmp_path: Path, line: str, where: str
) -> None:
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(
        f"mockai: 1\nrules:\n  - name: slow\n    match: {{user: hi}}\n    reply: hello\n    {line}\n"
        if line.startswith("latency")
        else f"mockai: 1\nrules:\n  - name: slow\n    match: {{user: hi}}\n    {line}\n"
    )
    for command in ("check", "serve"):
        args = [sys.executable, "-m", "mockai", command, str(scenario)]
        if command == "serve":
            args = [sys.executable, "-m", "mockai", "serve", "--port", "0", "--scenario"]
            args.append(str(scenario))
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0, command  # (serve: refused before it listens)
        assert "Traceback" not in done.stderr
        assert f"{scenario}:" in done.stderr + done.stdout
        assert f"{where}: " in done.stderr + done.stdout
        assert "durations are at most 86400s" in done.stderr + done.stdout


@settings(max_examples=400)
@given(
    st.one_of(
        st.text(),
        st.from_regex(r"\A\s*\d{1,400}(\.\d{1,20})?\s*(ms|s|m)?\s*\Z"),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**500), max_value=10**500),  # (YAML reads any size of int)
    )
)
def test_parse_duration_is_finite_and_bounded_or_refused(value: Any) -> None:
    assert isinstance(unit_warnings(value), list)  # (warned about before it is parsed)
    try:
        seconds = parse_duration(value)
    except ValueError:
        return
    assert isinstance(seconds, float)
    assert math.isfinite(seconds) and 0 <= seconds <= MAX_DURATION


@settings(max_examples=200)
@given(st.from_regex(r"\A\d{1,400}(ms|s|m)?-\d{1,400}(ms|s|m)?\Z"))
def test_a_range_is_finite_and_bounded_or_refused(text: str) -> None:
    try:
        delay = parse_delay(text)
    except ValueError:
        return
    assert isinstance(delay, Uniform)
    assert 0 <= delay.low <= delay.high <= MAX_DURATION


# --- 2. a scripted retry-after is the error's wait -------------------------------------------


def test_the_sdk_waits_the_scripted_retry_after_header() -> None:
    rule = {"match": {"user": "hi"}, "error": {"status": 429, "headers": {"retry-after": "2"}}}
    with conformance.checked_server() as server:
        server.add_rule(rule)
        with sdk(server, max_retries=1) as client, pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(**CHAT)
        first, retry = server.requests[:2]
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "2000"  # (read first by the SDK: it was 1000)
    assert headers["x-ratelimit-reset-requests"] == "2s"
    assert "Please try again in 2s." in caught.value.message
    assert 1.5 <= retry.arrived - first.arrived < 10


def test_a_scripted_retry_after_ms_sets_retry_after_and_the_message() -> None:
    error = errors.from_spec({"name": "rate_limit", "headers": {"Retry-After-Ms": "1500"}})
    assert error.headers["retry-after-ms"] == "1500"
    assert error.headers["retry-after"] == "2"
    assert "try again in 1.5s" in (error.message or "")
    # (`retry_after` still says both headers, over written ones)
    spec = {"name": "rate_limit", "retry_after": "3s", "headers": {"retry-after-ms": "9"}}
    assert errors.from_spec(spec).headers["retry-after-ms"] == "3000"


@settings(max_examples=100)
@given(
    unreadable=st.text(alphabet=string.ascii_letters + string.punctuation + " ", max_size=8).filter(
        lambda text: not _is_number(text)
    ),
    seconds=st.integers(1, 120),
)
def test_an_unreadable_retry_after_ms_gives_way_to_retry_after(
    unreadable: str, seconds: int
) -> None:
    # The SDKs skip a `retry-after-ms` they cannot read and wait what `retry-after` says: the
    # message and `x-ratelimit-reset-requests` say that too (they said the named error's 1 s).
    headers = {"retry-after-ms": unreadable, "retry-after": str(seconds)}
    error = errors.from_spec({"name": "rate_limit", "headers": headers})
    said = f"{seconds}s" if seconds < 60 else f"{seconds // 60}m{seconds % 60}s"
    assert error.headers["retry-after"] == str(seconds)
    assert f"try again in {said}." in (error.message or "")
    assert error.headers["x-ratelimit-reset-requests"] == said


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_a_retry_after_date_drops_the_default_retry_after_ms() -> None:
    date = "Wed, 21 Oct 2037 07:28:00 GMT"
    error = errors.from_spec({"status": 503, "headers": {"retry-after": date}})
    assert error.headers["retry-after"] == date
    assert "retry-after-ms" not in error.headers


@settings(max_examples=300)
@given(
    st.sampled_from(["retry-after", "retry-after-ms"]),
    st.one_of(
        st.integers(min_value=-5, max_value=10**12).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    ),
)
def test_written_retry_headers_never_contradict(name: str, value: str) -> None:
    error = errors.from_spec({"name": "rate_limit", "headers": {name: value}})
    headers = error.headers
    assert headers[name] == value  # sent as written
    other = "retry-after" if name == "retry-after-ms" else "retry-after-ms"
    if other in headers:  # only when it says the same wait
        seconds = float(value) / (1000 if name == "retry-after-ms" else 1)
        assert 0 < seconds <= MAX_DURATION
        assert headers == {**headers, **errors.retry_headers(seconds), name: value}


# --- 3. a request's own pace replaces the recorded one ----------------------------------------


def _event_times(server: Any, headers: dict[str, str]) -> list[float]:
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Write a haiku about rivers."}],
    }
    stamps, buffer = [], b""
    start = time.monotonic()
    with httpx.stream(
        "POST", server.url + "/chat/completions", json=body, headers=headers, timeout=30
    ) as answer:
        for data in answer.iter_raw():
            buffer += data
            while b"\n\n" in buffer:
                _, buffer = buffer.split(b"\n\n", 1)
                stamps.append(time.monotonic() - start)
    return stamps


def test_a_requests_stream_header_paces_a_replay() -> None:
    options = {"cassette": str(CASSETTE), "replay_speed": 4, "allow_repeats": True}
    with conformance.checked_server(**options) as server:
        recorded = _event_times(server, {})
        asked = _event_times(server, {"x-mockai-stream": "ttft=0ms,chunk_delay=40ms"})
    assert len(asked) == len(recorded) > 10
    recorded_span = recorded[-1] - recorded[0]
    assert recorded_span < 0.9  # (~0.3 s: a quarter of the recording's 1.2 s)
    # Its chunk_delay is kept (it was ignored: the recorded gaps were sent).
    assert asked[-1] - asked[0] >= 0.9 * 0.04 * (len(asked) - 1)


def test_a_default_ttft_is_not_added_to_a_recorded_one() -> None:
    options = {"cassette": str(CASSETTE), "replay_speed": 4, "latency": "ttft=3s"}
    with conformance.checked_server(**options) as server:
        stamps = _event_times(server, {})
    assert stamps[0] < 1.5  # the recorded ~0.1 s, not 3 s more


# --- 4. SSE comments are not chunks ------------------------------------------------------------

PATHS = ("/v1", "/openrouter/api/v1", "/deepseek/v1")


def _seen(base: str, user: str) -> tuple[list[str], str | None]:
    """The deltas the SDK yields on a stream, and the error that ended it (its type)."""
    contents: list[str] = []
    with openai.OpenAI(base_url=base, api_key="sk-test", max_retries=0) as client:
        try:
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": user}], stream=True
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    contents.append(chunk.choices[0].delta.content)
        except (openai.APIError, ValueError) as error:  # (malformed: a JSONDecodeError)
            return contents, type(error).__name__
    return contents, None


@pytest.mark.parametrize(
    "fault",
    [
        {"duplicate_chunk": 2},
        {"disconnect_after": 2},
        {"malformed_chunk": 3},
        {"truncate_after": 3},
        {"error_event_after": 2},
    ],
)
def test_faults_land_on_the_same_chunk_on_every_provider(fault: dict[str, int]) -> None:
    with conformance.checked_server() as server:
        server.add_rule({"match": {"user": "go"}, "reply": "one two three four", "faults": fault})
        root = _admin(server)
        seen = {path: _seen(root + path, "go") for path in PATHS}
    assert seen["/openrouter/api/v1"] == seen["/v1"]
    assert seen["/deepseek/v1"] == seen["/v1"]
    assert seen["/v1"] != (["one", " two", " three", " four"], None)  # the fault happened


def test_the_comment_is_still_sent_once() -> None:
    body = {**CHAT, "messages": [{"role": "user", "content": "go"}], "stream": True}
    with conformance.checked_server() as server:
        server.add_rule({"match": {"user": "go"}, "reply": "a b", "faults": {"duplicate_chunk": 1}})
        answer = httpx.post(_admin(server) + "/openrouter/api/v1/chat/completions", json=body)
    assert answer.content.count(b": OPENROUTER PROCESSING") == 1


COMMENT = b": keep-alive\n\n"


@settings(max_examples=300)
@given(
    frames=st.integers(min_value=1, max_value=8),
    tail=st.integers(min_value=0, max_value=3),
    comments=st.lists(st.integers(min_value=0, max_value=8), max_size=4),
    fault=st.sampled_from(
        [
            "disconnect_after",
            "truncate_after",
            "stall_after",
            "error_event_after",
            "malformed_chunk",
            "duplicate_chunk",
            "split_chunk",
        ]
    ),
    number=st.integers(min_value=1, max_value=10),
)
def test_comments_change_no_fault(
    frames: int, tail: int, comments: list[int], fault: str, number: int
) -> None:
    data = [b'data: {"n":%d}\n\n' % i for i in range(frames)]
    tail = min(tail, frames)
    commented = list(data)
    for place in sorted(comments, reverse=True):  # comments anywhere before the tail
        commented.insert(min(place, frames - tail), COMMENT)
    faults = Faults(**{fault: number})
    plain_writes, plain_end = plan_writes(EventStream(frames=data, tail=tail), faults)
    writes, end = plan_writes(EventStream(frames=commented, tail=tail), faults)
    kept = [(w.data, w.split) for w in writes if w.data != COMMENT]
    assert kept == [(w.data, w.split) for w in plain_writes]
    assert end == plain_end


@pytest.mark.parametrize("sent", ["²", "٣", "9" * 5000])
def test_a_retry_count_no_int_reads_is_no_count_for_attempts(sent: str) -> None:
    """`x-mockai-fault: ...;attempts=N` reads the SDK's retry count; one that is no ASCII
    number (a superscript two passes `isdigit`) counts the attempts itself, never a 500."""
    with MockServer(log_requests=False) as server:
        headers = {
            "x-mockai-fault": b"server_error;attempts=1",
            "x-stainless-retry-count": sent.encode(),  # (UTF-8 on the wire)
        }
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        first = httpx.post(server.url + "/chat/completions", json=body, headers=headers)
        second = httpx.post(server.url + "/chat/completions", json=body, headers=headers)
    assert [first.status_code, second.status_code] == [500, 200]
    assert first.json()["error"]["type"] == "server_error"
