"""Every fault, asked for with `x-mockai-fault`, through the real openai SDK (sync and async).

Each test asserts what the wire contract (shared/reference/openai-wire-contract.md sections 2, 3
and 6) says the client sees: the exception class, how many attempts reached the server (the
journal), and the gaps the client left between them. Bounds are generous: the machine is shared.
"""

from __future__ import annotations

import json

import openai
import pytest
from sdkcall import MODES, attempts, call, gaps

from mockai import MockServer
from mockai.wire import errors

pytestmark = pytest.mark.parametrize("mode", MODES)


def fault(value: str) -> dict[str, str]:
    return {"x-mockai-fault": value}


# --- errors instead of an answer -------------------------------------------------------------------


def test_rate_limit_with_retry_after_ms_is_retried_at_that_pace(
    mode: str, server: MockServer
) -> None:
    outcome = call(mode, server, fault("rate_limit;retry_after=300ms"))
    assert isinstance(outcome.error, openai.RateLimitError)
    assert outcome.error.status_code == 429
    assert outcome.error.code == "rate_limit_exceeded"
    assert outcome.error.response.headers["retry-after-ms"] == "300"
    assert outcome.error.response.headers["retry-after"] == "1"
    seen = attempts(server)
    assert [e.retry_count for e in seen] == [0, 1, 2]  # three attempts, then the error
    assert [e.faults for e in seen] == [["rate_limit;retry_after=0.3s"]] * 3
    assert all(0.28 <= gap < 1.5 for gap in gaps(seen)), gaps(seen)


@pytest.mark.parametrize(
    ("header", "error_class"),
    [
        ("overloaded;should_retry=false", openai.InternalServerError),
        ("rate_limit;should_retry=false", openai.RateLimitError),
        ("rate_limit;retry_after=121s", openai.RateLimitError),  # over 120 s: py 3.x gives up
    ],
)
def test_errors_the_sdk_must_not_retry(
    mode: str, server: MockServer, header: str, error_class: type[Exception]
) -> None:
    outcome = call(mode, server, fault(header))
    assert isinstance(outcome.error, error_class)
    assert len(attempts(server)) == 1


def test_fail_the_first_attempts_then_succeed(mode: str, server: MockServer) -> None:
    outcome = call(mode, server, fault("server_error;attempts=2;retry_after=100ms"))
    assert outcome.error is None
    assert outcome.result.choices[0].message.content
    seen = attempts(server)
    assert [(e.retry_count, e.status) for e in seen] == [(0, 500), (1, 500), (2, 200)]
    assert all(0.09 <= gap < 1.5 for gap in gaps(seen))


def test_bad_gateway_html_page(mode: str, server: MockServer) -> None:
    outcome = call(mode, server, fault("non_json"), retries=1)
    assert isinstance(outcome.error, openai.InternalServerError)
    assert outcome.error.status_code == 502
    assert outcome.error.response.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in str(outcome.error.body)  # not JSON: the raw text
    assert outcome.error.code is None
    seen = attempts(server)
    assert [e.status for e in seen] == [502, 502]
    assert 0.3 <= gaps(seen)[0] < 1.5  # the SDK's own backoff (no retry-after)


def test_a_bad_fault_header_is_a_400_naming_it(mode: str, server: MockServer) -> None:
    outcome = call(mode, server, fault("explode"))
    assert isinstance(outcome.error, openai.BadRequestError)
    assert "Invalid x-mockai-fault header 'explode'" in outcome.error.message
    assert isinstance(outcome.error.body, dict)
    assert outcome.error.body["param"] == "x-mockai-fault"
    assert len(attempts(server)) == 1


# --- connection faults -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["reset", "empty_response"])
def test_connection_closed_before_any_response_is_retried(
    mode: str, server: MockServer, name: str
) -> None:
    outcome = call(mode, server, fault(name), retries=1)
    assert type(outcome.error) is openai.APIConnectionError
    seen = attempts(server)
    assert [(e.status, e.faults) for e in seen] == [(0, [name]), (0, [name])]
    assert 0.3 <= gaps(seen)[0] < 1.5


def test_hang_times_out_on_every_attempt(mode: str, server: MockServer) -> None:
    outcome = call(mode, server, fault("hang"), timeout=0.3, retries=1)
    assert isinstance(outcome.error, openai.APITimeoutError)
    seen = attempts(server)
    assert [(e.status, e.faults) for e in seen] == [(0, ["hang"]), (0, ["hang"])]
    # The read timeout, then the backoff, separate the attempts.
    assert 0.25 + 0.3 <= gaps(seen)[0] < 0.3 + 1.5


def test_a_json_answer_cut_halfway_is_a_retried_connection_error(
    mode: str, server: MockServer
) -> None:
    outcome = call(mode, server, fault("disconnect_after=1"), retries=1)
    assert type(outcome.error) is openai.APIConnectionError
    assert len(attempts(server)) == 2


# --- stream faults -----------------------------------------------------------------------------------


def test_disconnect_mid_stream(mode: str, server: MockServer) -> None:
    outcome = call(mode, server, fault("disconnect_after=3"), stream=True)
    assert type(outcome.error) is openai.APIConnectionError  # not a timeout
    assert isinstance(outcome.error.__cause__, Exception)
    assert "RemoteProtocolError" in type(outcome.error.__cause__).__name__
    assert len(outcome.chunks) == 3
    assert len(attempts(server)) == 1  # a stream that started is never retried


def test_stall_mid_stream_with_a_short_timeout(mode: str, server: MockServer) -> None:
    outcome = call(mode, server, fault("stall_after=2"), stream=True, timeout=0.5)
    assert isinstance(outcome.error, openai.APITimeoutError)
    assert len(outcome.chunks) == 2
    assert outcome.elapsed >= 0.45
    assert len(attempts(server)) == 1


def test_malformed_chunk_is_a_decode_error(mode: str, server: MockServer) -> None:
    outcome = call(mode, server, fault("malformed_chunk=2"), stream=True)
    assert isinstance(outcome.error, json.JSONDecodeError)  # the SDK does not wrap it
    assert len(outcome.chunks) == 1
    assert len(attempts(server)) == 1


def test_error_event_mid_stream(mode: str, server: MockServer) -> None:
    outcome = call(mode, server, fault("error_event_after=2"), stream=True)
    assert type(outcome.error) is openai.APIError  # in-band: no status code
    expected = json.loads(errors.stream_error_frame(2)[len(b"data: ") :])["error"]["message"]
    assert outcome.error.message == expected
    assert len(outcome.chunks) == 2
    assert len(attempts(server)) == 1


def test_truncated_stream_ends_silently(mode: str, server: MockServer) -> None:
    outcome = call(mode, server, fault("truncate_after=2"), stream=True)
    assert outcome.error is None
    assert len(outcome.chunks) == 2
    assert all(c.choices[0].finish_reason is None for c in outcome.chunks)


def test_duplicate_and_split_chunks(mode: str, server: MockServer) -> None:
    clean = call(mode, server, stream=True)
    duplicated = call(mode, server, fault("duplicate_chunk=2"), stream=True)
    split = call(mode, server, fault("split_chunk=2"), stream=True)
    assert clean.error is duplicated.error is split.error is None
    piece = clean.chunks[1].choices[0].delta.content
    assert duplicated.text == piece + clean.text  # chunk 2 (the first piece) came twice
    assert len(duplicated.chunks) == len(clean.chunks) + 1
    assert split.text == clean.text  # the client reassembled the event written in two halves
    assert len(split.chunks) == len(clean.chunks)


def test_responses_stream_faults(mode: str, server: MockServer) -> None:
    cut = call(mode, server, fault("disconnect_after=3"), stream=True, endpoint="responses")
    assert type(cut.error) is openai.APIConnectionError
    assert [e.type for e in cut.chunks] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
    ]
    # Python yields the spec's `error` event without raising (node throws on it).
    errored = call(mode, server, fault("error_event_after=2"), stream=True, endpoint="responses")
    assert errored.error is None
    assert [e.type for e in errored.chunks] == ["response.created", "response.in_progress", "error"]
    assert errored.chunks[-1].sequence_number == 2
    broken = call(mode, server, fault("malformed_chunk=1"), stream=True, endpoint="responses")
    assert isinstance(broken.error, json.JSONDecodeError)


def test_completions_error_event(mode: str, server: MockServer) -> None:
    outcome = call(mode, server, fault("error_event_after=1"), stream=True, endpoint="completions")
    assert type(outcome.error) is openai.APIError
    assert len(outcome.chunks) == 1


# --- timing by header --------------------------------------------------------------------------------


def test_latency_header_delays_the_answer(mode: str, server: MockServer) -> None:
    outcome = call(mode, server, {"x-mockai-latency": "200ms"})
    assert outcome.error is None
    assert outcome.elapsed >= 0.19
    assert outcome.result.choices[0].message.content  # a normal answer, only later


def test_stream_header_paces_the_chunks(mode: str, server: MockServer) -> None:
    outcome = call(
        mode, server, {"x-mockai-stream": "ttft=150ms,chunk_delay=10ms"}, stream=True, max_tokens=8
    )
    assert outcome.error is None
    # Every frame after the first waits one gap (the finish chunk and [DONE] too).
    frames = len(outcome.chunks) + 1
    assert outcome.elapsed >= 0.15 + (frames - 1) * 0.01 * 0.9
