"""Record through mockai from a loopback upstream, then replay with the upstream stopped."""

from __future__ import annotations

import itertools
import json
import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import conformance
import httpx
import openai
import pytest
from aiohttp import web
from cassette_support import (
    SECRET_KEY,
    LoopbackApp,
    chunk,
    error_body,
    interactions,
    paced_upstream,
)
from service_support import ServeProcess

from mockai.wire.events import split_events

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}


_clients: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def sdk(url: str, key: str = "sk-test-0000", retries: int = 0) -> openai.OpenAI:
    """The real SDK (closed after the test)."""
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=retries)
    _clients.append(client)
    return client


def record(upstream: str, cassette: Path, mode: str = "once", **options: object):
    return conformance.checked_server(
        cassette=str(cassette), record_mode=mode, upstream=upstream, **options
    )


def replay(cassette: Path, **options: object):
    return conformance.checked_server(cassette=str(cassette), **options)


def _answers(client: openai.OpenAI) -> dict[str, object]:
    chat = client.chat.completions.create(**CHAT)
    stream = client.chat.completions.create(
        **CHAT, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c.model_dump() for c in stream]
    events = [
        e.model_dump()
        for e in client.responses.create(model="gpt-4o-mini", input="Tell me a story", stream=True)
    ]
    floats = client.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], encoding_format="float"
    )
    packed = client.embeddings.create(model="text-embedding-3-small", input="c")  # base64
    return {
        "chat": chat.model_dump(),
        "stream": chunks,
        "responses": events,
        "floats": floats.model_dump(),
        "packed": packed.model_dump(),
    }


def test_record_then_replay_with_the_upstream_stopped(tmp_path: Path) -> None:
    cassette = tmp_path / "session.yaml"
    with paced_upstream() as upstream, record(upstream.url, cassette) as recorder:
        recorded = _answers(sdk(recorder.url))
    assert [entry.source for entry in recorder.requests] == ["upstream"] * 5
    assert len(interactions(cassette)) == 5
    # The upstream is gone: only the cassette can answer now.
    with replay(cassette) as server:
        assert _answers(sdk(server.url)) == recorded
    # (the journal is read once the server stopped: an entry is added after its answer is sent)
    assert [entry.source for entry in server.requests] == ["cassette"] * 5
    assert [entry.rule for entry in server.requests] == [f"session.yaml#{i}" for i in range(5)]


def test_streams_replay_event_by_event_at_the_recorded_boundaries(tmp_path: Path) -> None:
    cassette = tmp_path / "stream.yaml"
    with (
        paced_upstream() as upstream,
        record(upstream.url, cassette) as recorder,
        httpx.stream(
            "POST", recorder.url + "/chat/completions", json={**CHAT, "stream": True}
        ) as response,
    ):
        sent = b"".join(response.iter_raw())
    (stored,) = interactions(cassette)
    assert stored.response_body == sent  # byte for byte
    assert len(stored.timing.events) == len(split_events(sent)) > 3
    with replay(cassette) as server:
        sdk(server.url).chat.completions.create(**CHAT, stream=True).response.read()
    (entry,) = server.requests
    assert list(entry.response_events()) == split_events(sent)
    assert entry.response.tail == 2  # the finish chunk and [DONE]


def test_a_stream_the_client_stops_reading_is_recorded_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A test reads a stream's first words and closes it: the upstream answered (and billed)
    all of it, so the recording keeps all of it, as vcrpy's does; the replay serves it whole.
    Before, nothing was recorded and no line said so: the next run replayed nothing, and made
    an answer up."""
    cassette = tmp_path / "first_words.yaml"
    body = {**CHAT, "stream": True}
    with paced_upstream(gaps=(0.004, 0.006)) as upstream:
        with httpx.stream("POST", upstream.url + "/chat/completions", json=body) as whole:
            sent = b"".join(whole.iter_raw())  # what the upstream answers this request
        with record(upstream.url, cassette) as recorder:
            stream = sdk(recorder.url).chat.completions.create(**CHAT, stream=True)
            first = [chunk for _, chunk in zip(range(3), stream, strict=False)]
            with caplog.at_level(logging.INFO, logger="mockai.cassette"):
                stream.close()  # the test read what it needed
                assert len(first) == 3
                # (Then the server is stopped, as a test's fixture is: it waits for the rest.)
                deadline = time.monotonic() + 30
                while "reading the rest from the upstream" not in caplog.text:
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
    (stored,) = interactions(cassette)
    assert stored.response_body.endswith(b"data: [DONE]\n\n")
    # (Its ids are the second request's: the text is the question's, the same.)
    assert len(split_events(stored.response_body)) == len(split_events(sent)) > 6
    assert _streamed_text(stored.response_body) == _streamed_text(sent)
    with replay(cassette) as server:
        replayed = sdk(server.url).chat.completions.create(**CHAT, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in replayed if c.choices)
    assert text == _streamed_text(sent)
    assert text.startswith(first[1].choices[0].delta.content or "")


def test_a_stream_read_on_is_recorded_before_a_stopping_server_exits(tmp_path: Path) -> None:
    """SIGTERM while an answer whose client left is read on: the server's grace waits for it,
    and the recording holds it whole. Before, the server exited at once (its client's
    connection was gone, so nothing counted as in flight) and nothing was recorded, silently."""
    cassette = tmp_path / "stopped.yaml"
    with paced_upstream(gaps=(0.08, 0.08)) as upstream:
        recorder = ServeProcess(
            ["--cassette", str(cassette), "--record-mode", "once", "--upstream", upstream.url]
        ).start()
        try:
            stream = sdk(recorder.url).chat.completions.create(**CHAT, stream=True)
            first = [chunk for _, chunk in zip(range(2), stream, strict=False)]
            stream.close()
            assert len(first) == 2
            # Once the server has seen the client go, and reads on. (A SIGTERM before that
            # cancels the handler mid-read, and the upstream's connection goes with it: "not
            # recorded", said in a line.)
            deadline = time.monotonic() + 10
            while "reading the rest from the upstream" not in recorder.printed():
                assert time.monotonic() < deadline, recorder.printed()
                time.sleep(0.01)
            recorder.signal(signal.SIGTERM)
            assert recorder.wait(30) == 0
        finally:
            recorder.stop()
    (stored,) = interactions(cassette)
    assert stored.response_body.endswith(b"data: [DONE]\n\n")
    assert len(split_events(stored.response_body)) > 6


def _streamed_text(body: bytes) -> str:
    chunks = [json.loads(event[len(b"data: ") :]) for event in split_events(body)[:-1]]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def _arrivals(url: str) -> list[float]:
    """When each SSE event reached the client (seconds after the response headers)."""
    times = []
    body = {**CHAT, "stream": True, "max_tokens": 12}
    with httpx.stream("POST", url + "/chat/completions", json=body) as r:
        start = time.monotonic()
        for line in r.iter_lines():
            if line.startswith("data:"):
                times.append(time.monotonic() - start)
    return times


def test_replay_at_speed_1_keeps_the_recorded_gaps(tmp_path: Path) -> None:
    # Generous bounds (a loaded 2-core machine delays any client): how close the replayed timing
    # is, under load and at scale, is measured by bench/timing_fidelity.py, not asserted here.
    cassette = tmp_path / "paced.yaml"
    with (
        paced_upstream(ttft=0.08, gaps=(0.02, 0.07)) as upstream,
        record(upstream.url, cassette) as recorder,
    ):
        _arrivals(recorder.url)
    (stored,) = interactions(cassette)
    offsets = stored.timing.events
    # The time to first token was recorded: counted from the upstream's response headers, which
    # a loaded upstream sends a few milliseconds after the request arrived (80 ms counts from
    # there), hence the margin; an unpaced upstream would read ~0.
    assert offsets[0] >= 0.05
    with replay(cassette, replay_speed=1.0) as server:
        arrived = _arrivals(server.url)
    assert len(arrived) == len(offsets)
    recorded_gaps = [b - a for a, b in itertools.pairwise(offsets)]
    replayed_gaps = [b - a for a, b in itertools.pairwise(arrived)]
    errors = sorted(abs(r - p) for r, p in zip(recorded_gaps, replayed_gaps, strict=True))
    # The typical gap within 30 ms (an unpaced replay is off by the gaps, 20-70 ms), and none
    # wildly off: a load spike may delay one delivery (one gap read 60.4 ms off on a busy CI).
    assert errors[len(errors) // 2] < 0.030 and errors[-1] < 0.120, (recorded_gaps, replayed_gaps)
    total = offsets[-1]  # ~0.5 s: the bounds below tell paced, halved and unpaced apart
    assert abs(arrived[-1] - total) < 0.1 * total + 0.02  # no drift over the whole stream
    # Speed 2 halves every gap; speed 0 (the default) sends everything at once.
    with replay(cassette, replay_speed=2.0) as server:
        halved = _arrivals(server.url)
    assert abs(halved[-1] - total / 2) < 0.1 * total + 0.02
    with replay(cassette) as server:
        assert _arrivals(server.url)[-1] < 0.1 * total


def test_no_secret_reaches_the_cassette(tmp_path: Path) -> None:
    cassette = tmp_path / "secrets.yaml"
    pasted = "sk-ant-api03-" + "Qw3rTy7UiOp1AsDf" * 4
    message = f"my key is {pasted}, and the header says Bearer {SECRET_KEY}"
    with paced_upstream() as upstream, record(upstream.url, cassette) as recorder:
        client = sdk(recorder.url, key=SECRET_KEY)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": message}]
        )
        client.with_options(
            default_headers={"OpenAI-Organization": "org-Secret1234567890", "Cookie": "s=abc"}
        ).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": message}], stream=True
        ).response.read()
    data = cassette.read_bytes()
    for secret in (SECRET_KEY, pasted, "org-Secret1234567890", SECRET_KEY[3:20], pasted[7:30]):
        assert secret.encode() not in data
    for header in (b"authorization", b"Authorization", b"openai-organization", b"Cookie"):
        assert header not in data
    assert b"sk-REDACTED-" in data  # a stable placeholder took the key's place
    # ...and the same request still replays: the incoming body is scrubbed the same way.
    with replay(cassette) as server:
        sdk(server.url, key="sk-other").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": message}]
        )


def test_the_upstream_gets_the_credentials_it_needs(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"object": "list", "data": [], "model": "m", "usage": {}})

    with (
        LoopbackApp({"/v1/embeddings": answer}) as app,
        record(app.url, tmp_path / "c.yaml") as recorder,
    ):
        httpx.post(
            recorder.url + "/embeddings",
            json={"model": "m", "input": "x"},
            headers={"Authorization": f"Bearer {SECRET_KEY}", "api-key": "azure-key-123456"},
        )
    assert seen[0]["Authorization"] == f"Bearer {SECRET_KEY}"
    assert seen[0]["api-key"] == "azure-key-123456"
    assert "azure-key-123456" not in (tmp_path / "c.yaml").read_text()


def _flaky_app(statuses: list[int]) -> LoopbackApp:
    async def answer(request: web.Request) -> web.StreamResponse:
        status = statuses.pop(0) if statuses else 200
        if status == 200:
            return web.Response(
                body=chunk("ok") + chunk(None, "stop") + b"data: [DONE]\n\n",
                content_type="text/event-stream",
            )
        if status == 429:
            response = error_body(429, "Rate limit reached", "requests", "rate_limit_exceeded")
        else:
            response = error_body(status, "The server had an error", "server_error", None)
        if status >= 400:
            response.headers["retry-after-ms"] = "10"
        return response

    return LoopbackApp({"/v1/chat/completions": answer})


def test_upstream_errors_reach_the_client_unchanged_and_are_not_recorded(tmp_path: Path) -> None:
    cassette = tmp_path / "errors.yaml"
    with _flaky_app([500]) as app, record(app.url, cassette) as recorder:
        with pytest.raises(openai.InternalServerError) as raised:
            sdk(recorder.url).chat.completions.create(**CHAT, stream=True)
        assert raised.value.status_code == 500
        assert raised.value.message == "Error code: 500 - The server had an error"
        list(sdk(recorder.url).chat.completions.create(**CHAT, stream=True))
    assert [i.status for i in interactions(cassette)] == [200]


def test_recorded_errors_replay_in_order_so_retries_replay_too(tmp_path: Path) -> None:
    cassette = tmp_path / "retry.yaml"
    with _flaky_app([429, 503]) as app, record(app.url, cassette, record_errors=True) as recorder:
        stream = sdk(recorder.url, retries=2).chat.completions.create(**CHAT, stream=True)
        assert [c.choices[0].delta.content for c in stream] == ["ok", None]
    assert [i.status for i in interactions(cassette)] == [429, 503, 200]
    with replay(cassette) as server:
        stream = sdk(server.url, retries=2).chat.completions.create(**CHAT, stream=True)
        assert [c.choices[0].delta.content for c in stream] == ["ok", None]
    assert [e.status for e in server.requests] == [429, 503, 200]
    assert server.requests[0].response.headers["retry-after-ms"] == "10"


def test_an_unreachable_upstream_is_a_502_naming_it(tmp_path: Path) -> None:
    with record("http://127.0.0.1:9/v1", tmp_path / "c.yaml") as recorder:
        response = httpx.post(recorder.url + "/chat/completions", json=CHAT)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unreachable"
    assert "http://127.0.0.1:9/v1 could not be reached" in response.json()["error"]["message"]
    assert not (tmp_path / "c.yaml").exists()


def test_a_stream_the_upstream_breaks_off_breaks_off_for_the_client(tmp_path: Path) -> None:
    async def broken(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk("partial"))
        request.transport.close()  # the upstream dies mid-stream
        return response

    cassette = tmp_path / "broken.yaml"
    with (
        LoopbackApp({"/v1/chat/completions": broken}) as app,
        record(app.url, cassette) as recorder,
        pytest.raises((openai.APIConnectionError, httpx.HTTPError)),
    ):
        list(sdk(recorder.url).chat.completions.create(**CHAT, stream=True))
    assert not cassette.exists()  # a broken answer is never recorded


def test_without_a_cassette_the_upstream_is_a_passthrough(tmp_path: Path) -> None:
    with paced_upstream() as upstream:
        direct = sdk(upstream.url).chat.completions.create(**CHAT)
        with conformance.checked_server(upstream=upstream.url) as proxy:
            proxied = sdk(proxy.url).chat.completions.create(**CHAT)
        assert proxy.requests[0].source == "upstream"
    assert proxied.choices[0].message.content == direct.choices[0].message.content
    assert list(tmp_path.iterdir()) == []


def test_the_client_and_the_journal_see_what_the_upstream_sent() -> None:
    with paced_upstream() as upstream, conformance.checked_server(upstream=upstream.url) as proxy:
        raw = sdk(proxy.url).chat.completions.with_raw_response.create(**CHAT)
        with httpx.stream(
            "POST", proxy.url + "/chat/completions", json={**CHAT, "stream": True}
        ) as response:
            streamed = b"".join(response.iter_raw())
            stream_headers = response.headers
    answered, relayed_stream = upstream.requests
    # The upstream's own headers win over mockai's: its request id, as for a real API's.
    assert raw.headers["x-request-id"] == answered.request_id
    assert stream_headers["x-request-id"] == relayed_stream.request_id
    # The proxy's journal holds the relayed answers, body and events.
    json_entry, stream_entry = proxy.requests
    assert json_entry.response_json() == raw.http_response.json()
    assert json_entry.response_json()["choices"][0]["message"]["content"]
    assert stream_entry.response_events() == split_events(streamed)
    assert len(stream_entry.response_events()) > 3
