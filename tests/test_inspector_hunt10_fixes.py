"""What mockai says about itself (metrics, the journal, the inspector's data, the logs), checked
against what its clients were sent: real servers on loopback, the real SDK and prometheus-client's
own parser."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mockai import MockServer

MODEL = "gpt-4o-mini"
HI = [{"role": "user", "content": "hi"}]


def _scrape(server: MockServer) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The metrics, parsed by prometheus-client's own parser: name -> labels -> value."""
    answer = httpx.get(server.url_for("/_mockai/metrics"))
    assert answer.status_code == 200, answer.text
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _total(
    metrics: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **where: str
) -> float:
    return sum(
        value
        for labels, value in metrics.get(name, {}).items()
        if all((key, want) in labels for key, want in where.items())
    )


def test_an_upstreams_answers_relayed_count_their_tokens_and_streams(tmp_path: Path) -> None:
    # A server relaying an upstream (`--upstream`, recording) counted no tokens at all in
    # mockai_tokens_total, and a relayed stream was never an active stream.
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(
        "mockai: 1\nfallback: generate\nrules:\n  - name: slow\n    match: {user: slow}\n"
        "    reply: {content: one two three four five six seven eight}\n"
        "    stream: {chunk_delay: 150ms}\n"
    )
    with (
        MockServer(scenarios=(str(scenario),), log_requests=False) as upstream,
        MockServer(log_requests=False, upstream=upstream.url) as proxy,
        openai.OpenAI(base_url=proxy.url, api_key="sk-test", max_retries=0) as client,
    ):
        whole = client.chat.completions.create(model=MODEL, messages=HI)
        stream = client.chat.completions.create(
            model=MODEL, messages=HI, stream=True, stream_options={"include_usage": True}
        )
        streamed = [chunk.usage for chunk in stream if chunk.usage is not None][-1]
        answer = client.responses.create(model=MODEL, input="hi")
        slow = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "slow"}], stream=True
        )
        with slow:
            next(iter(slow))
            during = _scrape(proxy)
            list(slow)
        after = _scrape(proxy)
    assert whole.usage is not None and answer.usage is not None
    sent_prompt = whole.usage.prompt_tokens + streamed.prompt_tokens + answer.usage.input_tokens
    sent_completion = (
        whole.usage.completion_tokens + streamed.completion_tokens + answer.usage.output_tokens
    )
    assert _total(after, "mockai_tokens_total", kind="prompt") == sent_prompt
    assert _total(after, "mockai_tokens_total", kind="completion") == sent_completion
    assert _total(during, "mockai_active_streams") == 1
    assert _total(after, "mockai_active_streams") == 0


@contextmanager
def _latin1_upstream() -> Iterator[str]:
    """An upstream answering every chat request with headers whose bytes are not UTF-8 (a
    Latin-1 `é`, a lone 0xff), its x-request-id among them, and a processing time of its own
    (16 minutes); yields its base URL."""
    answer = json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # (closed: the test is over)
                return
            with client:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += client.recv(65536)
                head, body = data.split(b"\r\n\r\n", 1)
                length = next(
                    int(line.partition(b":")[2])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(body) < length:
                    body += client.recv(65536)
                client.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"x-request-id: req_caf\xe9\r\nx-note: caf\xe9 \xff\r\n"
                    b"openai-processing-ms: 987654\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(answer), answer)
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # (wakes the accept: a close alone does not)
        listener.close()
        thread.join(5)


def test_the_journal_lists_an_upstreams_answer_whose_headers_are_not_utf8() -> None:
    # The relayed headers' bytes that are not UTF-8 arrive as lone surrogates: every page of
    # the journal holding that entry was a 500, and the inspector page stopped updating.
    with (
        _latin1_upstream() as base,
        MockServer(log_requests=False, upstream=base) as proxy,
        openai.OpenAI(base_url=proxy.url, api_key="sk-test", max_retries=0) as client,
    ):
        assert client.chat.completions.create(model=MODEL, messages=HI).choices
        for query in ("", "?bodies=0", "?after=0&limit=1"):
            page = httpx.get(proxy.url_for("/_mockai/requests" + query))
            assert page.status_code == 200, page.text
            (entry,) = page.json()["data"]
            assert entry["request_id"] == "req_caf\ufffd"
            assert entry["response_headers"]["x-note"] == "caf\ufffd \ufffd"


def test_time_to_headers_is_mockais_own_whatever_header_the_answer_carries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # mockai_time_to_headers_seconds, the log's headers_ms and the inspector read the time from
    # the openai-processing-ms header sent: under the Anthropic profile it is sent empty, and an
    # upstream's relayed answer carries the upstream's or none, so those requests were never
    # timed (or timed by the upstream's clock).
    caplog.set_level(logging.INFO, logger="mockai.access")
    with (
        _latin1_upstream() as base,
        MockServer(log_requests=True, upstream=base) as proxy,
        MockServer(log_requests=True) as server,
        openai.OpenAI(base_url=proxy.url, api_key="sk-test", max_retries=0) as relayed,
        openai.OpenAI(
            base_url=server.url_for("/anthropic/v1"), api_key="sk-test", max_retries=0
        ) as anthropic,
    ):
        relayed.chat.completions.create(model=MODEL, messages=HI)
        raw = anthropic.chat.completions.with_raw_response.create(
            model="claude-3-5-haiku-latest", messages=HI
        )
        assert raw.headers["openai-processing-ms"] == ""  # (as Anthropic sends it)
        for answering in (server, proxy):
            metrics = _scrape(answering)
            assert _total(metrics, "mockai_time_to_headers_seconds_count") == 1
            assert _total(metrics, "mockai_time_to_headers_seconds_sum") < 60
            (entry,) = httpx.get(answering.url_for("/_mockai/requests")).json()["data"]
            assert isinstance(entry["headers_ms"], int)
            assert 0 <= entry["headers_ms"] <= entry["duration_ms"]
    logged = [record.mockai["headers_ms"] for record in caplog.records if hasattr(record, "mockai")]
    assert len(logged) == 2 and all(isinstance(ms, float) for ms in logged), logged


def test_a_request_waiting_for_its_upstreams_answer_is_in_flight() -> None:
    # mockai_requests_in_flight counted a request from the start of its delivery only: one
    # awaiting an upstream's answer (an LLM's seconds) was 0 while the journal showed it.
    with (
        MockServer(log_requests=False, latency="1500ms") as upstream,
        MockServer(log_requests=False, upstream=upstream.url) as proxy,
        openai.OpenAI(base_url=proxy.url, api_key="sk-test", max_retries=0) as client,
    ):
        calling = threading.Thread(
            target=lambda: client.chat.completions.create(model=MODEL, messages=HI)
        )
        calling.start()
        try:
            deadline = time.monotonic() + 10
            while not httpx.get(proxy.url_for("/_mockai/requests")).json()["data"]:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            during = _scrape(proxy)
        finally:
            calling.join(10)
        after = _scrape(proxy)
    assert _total(during, "mockai_requests_in_flight") == 1
    assert _total(after, "mockai_requests_in_flight") == 0
    assert _total(after, "mockai_requests_total") == 1


def test_a_recorded_or_relayed_error_is_journaled_and_counted_by_its_code(tmp_path: Path) -> None:
    # An error the upstream sent, or a cassette replays, was journaled with no `error` (the
    # inspector showed none, the log said error null, the plugin's timeline no code) and
    # counted in mockai_errors_total with code="".
    cassette = str(tmp_path / "errors.yaml")
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "busy"}]}
    with MockServer(log_requests=False) as upstream:
        upstream.add_rule({"name": "busy", "match": {"user": "busy"}, "error": "rate_limit"})
        with MockServer(
            log_requests=False,
            upstream=upstream.url,
            cassette=cassette,
            record_mode="once",
            record_errors=True,
        ) as recording:
            assert httpx.post(recording.url + "/chat/completions", json=chat).status_code == 429
            relayed = _scrape(recording)
            (entry,) = recording.requests
    with MockServer(log_requests=False, cassette=cassette) as replaying:
        assert httpx.post(replaying.url + "/chat/completions", json=chat).status_code == 429
        replayed = _scrape(replaying)
        (listed,) = httpx.get(replaying.url_for("/_mockai/requests")).json()["data"]
    assert entry.source == "upstream" and listed["source"] == "cassette"
    for error in (entry.error, listed["error"]):
        assert error is not None
        assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
        assert error["message"].startswith("Rate limit reached for gpt-4o-mini")
    for metrics in (relayed, replayed):
        assert _total(metrics, "mockai_errors_total", code="rate_limit_exceeded") == 1
        assert _total(metrics, "mockai_errors_total") == 1
