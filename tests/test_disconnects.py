"""Clients that leave: one debug line each, never a traceback; real failures keep theirs.

A load test that drops 500 streams must not bury a real error under 500 tracebacks.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from mockai import MockServer
from mockai.pipeline.exchange import Exchange
from mockai.pipeline.reply import Plan
from mockai.wire.outgoing import Relay

STREAM = {
    "model": "gpt-4o-mini",
    "stream": True,
    "messages": [{"role": "user", "content": "drop me"}],
}


def _raw_request(body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: mockai\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def _leave(port: int, request: bytes, *, read_first: bool, reset: bool) -> None:
    """Send a request, maybe wait for the first bytes of the answer, then go away."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(request)
        if read_first:
            assert client.recv(4096)  # the stream started
        if reset:  # RST, as a killed process or a proxy timing out does
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _settled(server: MockServer, count: int, timeout: float = 30.0) -> None:
    """Wait until the server has finished with `count` requests (their duration is recorded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = server.requests
        if len(entries) >= count and all(entry.duration_ms > 0 for entry in entries):
            return
        time.sleep(0.02)
    raise AssertionError(f"the server did not finish {count} requests in {timeout}s")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG, logger="mockai")
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    yield caplog


def test_dropped_streams_log_one_debug_line_each(logs: pytest.LogCaptureFixture) -> None:
    drops = 40
    with MockServer(log_requests=False) as server:
        server.add_rule(
            {
                "match": {"user": "drop me"},
                "reply": {"content": "word " * 300},
                "stream": {"chunk_delay": "2ms"},
            }
        )
        request = _raw_request(STREAM)
        for index in range(drops):
            _leave(server.port, request, read_first=True, reset=index % 2 == 0)
        _settled(server, drops)
    noisy = [r for r in logs.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not noisy, [r.getMessage() for r in noisy][:3]
    gone = [
        r for r in logs.records if r.name == "mockai" and "client disconnected" in r.getMessage()
    ]
    assert len(gone) == drops
    assert all(r.levelno == logging.DEBUG and "\n" not in r.getMessage() for r in gone)


def test_a_client_leaving_during_latency_is_quiet(logs: pytest.LogCaptureFixture) -> None:
    with MockServer(log_requests=False) as server:
        server.add_rule(
            {"match": {"user": "slow"}, "reply": "late", "latency": "300ms"},
        )
        body = {**STREAM, "stream": False, "messages": [{"role": "user", "content": "slow"}]}
        for _ in range(5):
            _leave(server.port, _raw_request(body), read_first=False, reset=True)
        _settled(server, 5)
    assert not [r for r in logs.records if r.levelno >= logging.WARNING or r.exc_info]


class BrokenUpstream:
    """A source whose relayed answer fails with a connection error of its own (an upstream
    breaking off), while the client is still there."""

    loaded = True

    async def plan(self, exchange: Exchange, key: bytes) -> Plan | None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"partial": '
            raise ConnectionResetError("the upstream reset the connection")

        return Plan(source="upstream", recorded=Relay(200, chunks()))

    def near_misses(self, exchange: Exchange) -> list[str]:
        return []


def test_a_real_connection_failure_keeps_its_traceback(logs: pytest.LogCaptureFixture) -> None:
    with MockServer(log_requests=False, sources=[BrokenUpstream()]) as server:
        with pytest.raises(httpx.HTTPError):
            httpx.post(server.url + "/chat/completions", json={**STREAM, "stream": False})
        _settled(server, 1)
    traced = [r for r in logs.records if r.exc_info and r.levelno >= logging.ERROR]
    assert traced, "a failure that is not the client leaving is logged with its traceback"
    assert not [r for r in logs.records if "client disconnected" in r.getMessage()]
