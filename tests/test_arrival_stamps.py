"""A request's arrival is when its own bytes came, whatever its connection carried before: an
admin call (health, reset, the journal, the rules, a 405 there) on the same keep-alive
connection left its arrival stamp behind, and the next API request took it, so that its
scripted latency and stream pacing counted from the admin call and were skipped as elapsed
(openai-node and `fetch` share one keep-alive pool: the `beforeEach` reset of docs/node.md
did this to the first request of every test)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from mockai import MockServer

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
IDLE = 0.6  # seconds the connection waits between the admin call and the chat
LATENCY = 0.4  # the chat's scripted latency: under IDLE, so a stale stamp skips all of it


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


ADMIN_CALLS = {
    "health": ("GET", "/_mockai/health"),
    "journal": ("GET", "/_mockai/requests"),
    "reset": ("POST", "/_mockai/reset"),
    "rules": ("GET", "/_mockai/rules"),
    "a 405 on an admin route": ("PUT", "/_mockai/health"),
}


@pytest.mark.parametrize("call", sorted(ADMIN_CALLS))
def test_a_request_after_an_admin_call_on_its_connection_keeps_its_own_arrival(
    server: MockServer, call: str
) -> None:
    method, path = ADMIN_CALLS[call]
    root = server.url.removesuffix("/v1")
    with httpx.Client(base_url=root, timeout=30) as client:  # (one keep-alive connection)
        assert client.request(method, path).status_code < 500
        time.sleep(IDLE)  # (the scenario itself: a client idle between two calls)
        sent = time.monotonic()
        answer = client.post(
            "/v1/chat/completions", json=CHAT, headers={"x-mockai-latency": f"{LATENCY}s"}
        )
        took = time.monotonic() - sent
    assert answer.status_code == 200
    # The latency is waited from this request's arrival (a lower bound: load only adds to it).
    assert took >= LATENCY * 0.9, f"answered in {took:.3f} s"
    entry = server.requests[-1]
    assert entry.arrived >= sent - 0.005  # (the server's clock is this process's monotonic one)


def test_a_stream_after_an_admin_call_keeps_its_time_to_first_token(server: MockServer) -> None:
    root = server.url.removesuffix("/v1")
    with httpx.Client(base_url=root, timeout=30) as client:
        assert client.post("/_mockai/reset").status_code == 200
        time.sleep(IDLE)
        sent = time.monotonic()
        with client.stream(
            "POST",
            "/v1/chat/completions",
            json={**CHAT, "stream": True},
            headers={"x-mockai-stream": f"ttft={LATENCY}s"},
        ) as stream:
            first = next(stream.iter_bytes())
            waited = time.monotonic() - sent
    assert first.startswith(b"data: ")
    assert waited >= LATENCY * 0.9, f"first chunk after {waited:.3f} s"


def test_a_request_after_fetching_a_picture_by_its_url_keeps_its_own_arrival(
    server: MockServer,
) -> None:
    root = server.url.removesuffix("/v1")
    with httpx.Client(base_url=root, timeout=30) as client:
        made = client.post(
            "/v1/images/generations",
            json={
                "model": "dall-e-2",
                "prompt": "a cat",
                "response_format": "url",
                "size": "256x256",
            },
        )
        url = made.json()["data"][0]["url"]
        assert client.get(url).headers["content-type"].startswith("image/")
        time.sleep(IDLE)
        sent = time.monotonic()
        client.post("/v1/chat/completions", json=CHAT, headers={"x-mockai-latency": f"{LATENCY}s"})
        took = time.monotonic() - sent
    assert took >= LATENCY * 0.9, f"answered in {took:.3f} s"
