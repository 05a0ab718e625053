"""Idle and half-open connections are closed after `read_timeout`; answers are never cut by it."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import openai
import pytest

from mockai import MockServer
from mockai.config import Config
from mockai.errors import ConfigError

TIMEOUT = 0.5  # the server's read timeout in these tests
PATIENCE = 10.0  # how long the test client waits before calling the connection held forever

BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
HEAD = (
    "POST /v1/chat/completions HTTP/1.1\r\nHost: mockai\r\nContent-Type: application/json\r\n"
    f"Content-Length: {len(BODY)}\r\n\r\n"
)


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False, read_timeout=TIMEOUT) as running:
        yield running


def _closed_after(client: socket.socket) -> float:
    """Seconds until the server closes `client` (reading and discarding whatever comes)."""
    start = time.monotonic()
    client.settimeout(PATIENCE)
    while True:
        try:
            data = client.recv(65536)
        except ConnectionResetError:
            break
        except TimeoutError:
            raise AssertionError(f"the connection was still open after {PATIENCE}s") from None
        if not data:
            break
    return time.monotonic() - start


@pytest.mark.parametrize(
    "sent",
    [
        "",  # connects and says nothing
        "POST /v1/chat/completions HTTP/1.1\r\nHost: mockai\r\n",  # half a request head
        HEAD,  # the head, then none of the body
        HEAD + BODY[:10],  # part of the body
    ],
    ids=["nothing", "half-head", "no-body", "half-body"],
)
def test_a_silent_client_is_disconnected(server: MockServer, sent: str) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as client:
        client.sendall(sent.encode())
        waited = _closed_after(client)
    assert TIMEOUT * 0.8 <= waited < PATIENCE


def test_an_idle_keep_alive_connection_is_closed(server: MockServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as client:
        client.sendall((HEAD + BODY).encode())
        client.settimeout(PATIENCE)
        answer = client.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
        assert _closed_after(client) < PATIENCE  # idle after its answer: closed, not held


def test_answers_longer_than_the_read_timeout_are_not_cut(server: MockServer) -> None:
    # A stream lasting several read timeouts: the timeout bounds reading requests, not answers.
    server.add_rule(
        {
            "match": {"user": "long"},
            "reply": "one two three four five six seven eight nine ten",
            "stream": {"ttft": "400ms", "chunk_delay": "100ms"},
        }
    )
    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
    started = time.monotonic()
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "long"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "one two three four five six seven eight nine ten"
    assert time.monotonic() - started > 2 * TIMEOUT


def test_read_timeout_from_the_environment() -> None:
    assert Config.from_env({"MOCKAI_READ_TIMEOUT": "2.5"}).read_timeout == 2.5
    assert Config().read_timeout == 60.0
    with pytest.raises(ConfigError, match="read_timeout"):
        Config().merged(read_timeout=0)
