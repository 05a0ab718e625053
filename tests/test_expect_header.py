"""`Expect` (RFC 9110, 10.1.1), spoken in raw HTTP/1.1: "100 Continue" invites a body only when it
will be read, a body over the limit gets the API's 413 at once, and an expectation other than
100-continue is ignored rather than answered with aiohttp's text/plain 417."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from mockai import MockServer

CHAT = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


def _head(port: int, path: str, expect: str, length: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Expect: {expect}\r\nContent-Length: {length}\r\n\r\n".encode()
    )
    return sock


def _read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    while end not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/files", "/v1/no/such/route"])
def test_a_body_over_the_limit_is_refused_before_it_is_invited(
    server: MockServer, path: str
) -> None:
    with _head(server.port, path, "100-continue", 70 * 1024 * 1024) as sock:
        answer = _read_until(sock, b"}}")
    assert b"100 Continue" not in answer
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 413 Request Entity Too Large"), head
    assert json.loads(body)["error"]["code"] == "request_too_large"


def test_a_body_that_will_be_read_is_invited_then_answered(server: MockServer) -> None:
    with _head(server.port, "/v1/chat/completions", "100-continue", len(CHAT)) as sock:
        assert _read_until(sock, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(CHAT.encode())
        answer = _read_until(sock, b'"usage"')
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]


@pytest.mark.parametrize("expect", ["foo", "100-continue, foo", "200-ok"])
def test_another_expectation_is_ignored_and_the_request_answered(
    server: MockServer, expect: str
) -> None:
    with _head(server.port, "/v1/chat/completions", expect, len(CHAT)) as sock:
        sock.sendall(CHAT.encode())
        answer = _read_until(sock, b'"usage"')
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]
    assert b"text/plain" not in answer.split(b"\r\n\r\n", 1)[0]


def test_the_picture_route_takes_expect_as_the_api_routes_do(server: MockServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /_mockai/images/img-x.png HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n")
        answer = _read_until(sock, b"\r\n\r\n")
    assert not answer.startswith(b"HTTP/1.1 417"), answer
    assert b"text/plain" not in answer, answer
