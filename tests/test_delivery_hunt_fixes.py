"""Stream delivery fixes: HTTP/1.0 clients see a stream end; clients that leave a paced stream
are let go at once."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import conformance
import httpx
import pytest

from mockai import MockServer

STREAMS = {
    "/v1/chat/completions": (
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3},
        b"data: [DONE]\n\n",
    ),
    "/v1/completions": (
        {"model": "gpt-3.5-turbo-instruct", "prompt": "hi", "max_tokens": 3},
        b"data: [DONE]\n\n",
    ),
    "/v1/responses": (
        {"model": "gpt-4o-mini", "input": "hi", "max_output_tokens": 16},
        b"event: response.incomplete\n",  # (the last event: cut at max_output_tokens)
    ),
}


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with conformance.checked_server() as running:
        yield running


def _posted(path: str, body: dict[str, object], version: str, *extra: str) -> bytes:
    data = json.dumps({**body, "stream": True}).encode()
    head = [f"POST {path} HTTP/{version}", "Host: mockai", "Content-Type: application/json"]
    head += [*extra, f"Content-Length: {len(data)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


def _until_closed(port: int, request: bytes, within: float = 10.0) -> bytes:
    """Everything the server sends before it closes the connection (fails after `within`)."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=within) as client:
        client.sendall(request)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                data = client.recv(65536)
            except TimeoutError:
                break
            if not data:
                return received
            received += data
    raise AssertionError(f"the connection was still open after {within}s: {received[-200:]!r}")


@pytest.mark.parametrize("path", sorted(STREAMS))
def test_a_stream_to_an_http10_keep_alive_client_ends_with_the_connection(
    server: MockServer, path: str
) -> None:
    body, last = STREAMS[path]
    start = time.monotonic()
    sent = _until_closed(server.port, _posted(path, body, "1.0", "Connection: keep-alive"))
    assert time.monotonic() - start < 5  # closed with the body, not at a timeout
    head, _, streamed = sent.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200")
    lines = head.lower().split(b"\r\n")
    assert b"connection: close" in lines
    assert b"connection: keep-alive" not in lines
    assert not [line for line in lines if line.startswith((b"content-length", b"transfer-enc"))]
    assert last in streamed  # the whole stream came before the close
    # HTTP/1.1 delimits the stream by its chunked encoding: the connection stays for the next.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        for _ in range(2):
            client.sendall(_posted(path, body, "1.1"))
            received = b""
            while not received.endswith(b"\r\n0\r\n\r\n"):  # the last chunk
                data = client.recv(65536)
                assert data, "the server closed a keep-alive HTTP/1.1 connection"
                received += data
            assert last in received


# --- a client leaving a paced stream ----------------------------------------------------------


def _gauges(server: MockServer) -> tuple[float, float]:
    """`mockai_requests_in_flight` and `mockai_active_streams`, from /_mockai/metrics."""
    text = httpx.get(f"http://127.0.0.1:{server.port}/_mockai/metrics", timeout=10).text
    values = dict(line.split(" ") for line in text.splitlines() if not line.startswith("#"))
    return float(values["mockai_requests_in_flight"]), float(values["mockai_active_streams"])


def _until_gauges(server: MockServer, expected: tuple[float, float], within: float) -> None:
    deadline = time.monotonic() + within
    while (gauges := _gauges(server)) != expected:
        assert time.monotonic() < deadline, f"in flight, active streams: {gauges} after {within}s"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("header", "value", "read_first"),
    [
        ("x-mockai-stream", "chunk_delay=10m", True),  # between two chunks
        ("x-mockai-stream", "ttft=10m", True),  # after the headers, before the first chunk
        ("x-mockai-stream", "tokens_per_second=0.002", True),  # a token every 500 s
        ("x-mockai-latency", "10m", False),  # before the headers
    ],
)
def test_a_client_leaving_a_paced_stream_is_let_go_at_once(
    header: str, value: str, read_first: bool
) -> None:
    body, _ = STREAMS["/v1/chat/completions"]
    request = _posted("/v1/chat/completions", body, "1.1", f"{header}: {value}")
    with conformance.checked_server() as server:
        client = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with client:
            client.sendall(request)
            if read_first:
                assert client.recv(65536).startswith(b"HTTP/1.1 200")
            _until_gauges(server, (1.0, 1.0), within=10)  # the stream is being sent
        _until_gauges(server, (0.0, 0.0), within=10)  # not in 10 minutes: now
        (entry,) = server.requests
        deadline = time.monotonic() + 10
        while entry.duration_ms == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        # The journal says when the client left, as for a `hang` whose client left.
        assert entry.stream and 0 < entry.duration_ms < 20_000  # (its wait: 10 minutes)
        # Headers that never went out are not journaled as sent (as a hang's are not).
        assert ("openai-processing-ms" in entry.response_headers) is read_first
