"""Shared state on Redis, hunt 10 (`--state redis://`): fixes for what a bug hunt reproduced.

- A picture link answered by one server after Redis restarted empty works on every other
  (servers that had signed before kept their old secret: each refused the others' links, 403).
- A batch of inputs answered by several rules counts each rule's call only when it answers:
  another worker using up one of them meanwhile made the batch planned again, and the calls
  already counted for the others were lost (a `sequence` step skipped).
- A Redis Cluster node as the state stops `mockai serve` at startup with exit 2 saying so (it
  was a traceback); one met later (the server started while it was away) is the API's 503
  saying so, not a plain-text 500.
- A state URL with an empty `?prefix=` (`?prefix=$RUN` with RUN unset) is refused, exit 2: it
  took the default prefix, sharing (and resetting) every other such run's keys.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from service_support import RedisServer, free_port, redis_server

from mockai import MockServer
from mockai.errors import ConfigError


class _AnotherWorkerFirst:
    """The shared rules, where another worker takes the last call of `rule` just before this
    one first counts a call (between its planning and its count)."""

    def __init__(self, shared: Any, rule: str) -> None:
        self._shared = shared
        self._rule = rule
        self._raced = False

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._shared, name)
        if not name.startswith("pick"):
            return found

        async def counted(version: str, *args: Any) -> Any:
            if not self._raced:
                self._raced = True
                taken = await self._shared.pick(version, [(self._rule, 1)])
                assert taken.index == 0  # (the other worker's call)
            return await found(version, *args)

        return counted


def test_a_batch_planned_again_counts_only_the_calls_that_answer(redis: RedisServer) -> None:
    rules = [
        {
            "name": "alpha",
            "match": {"endpoint": "completions", "user": "alpha"},
            "sequence": [{"reply": {"content": f"a{n}"}} for n in (1, 2, 3)],
        },
        {
            "name": "beta",
            "match": {"endpoint": "completions", "user": "beta"},
            "times": 1,
            "reply": {"content": "b"},
        },
    ]
    with MockServer(state=redis.url(), log_requests=False, fallback="generate") as server:
        server.add_rules(rules)
        book = server.state.rules
        assert book is not None
        book.shared = _AnotherWorkerFirst(book.shared, "beta")  # type: ignore[assignment]
        with httpx.Client(base_url=server.url, timeout=30) as http:
            both = http.post(
                "/completions",
                json={"model": "gpt-3.5-turbo-instruct", "prompt": ["alpha", "beta"]},
            )
            assert both.status_code == 200, both.text
            texts = [choice["text"] for choice in both.json()["choices"]]
            assert texts[0] == "a1"  # (beta was used up meanwhile: its input is generated)
            assert texts[1] != "b"
            again = http.post(
                "/completions", json={"model": "gpt-3.5-turbo-instruct", "prompt": "alpha"}
            )
            assert again.json()["choices"][0]["text"] == "a2"
        assert {rule.name: rule.served for rule in server.rules} == {"alpha": 2, "beta": 1}


def _picture_link(server: MockServer, prompt: str) -> str:
    """A picture answered by URL; retried while the server reconnects to a restarted Redis."""
    deadline = time.monotonic() + 20
    with httpx.Client(timeout=30) as http:
        while True:
            made = http.post(
                server.url + "/images/generations",
                json={"model": "dall-e-2", "prompt": prompt, "response_format": "url"},
            )
            if made.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert made.status_code == 200, made.text
    link: str = made.json()["data"][0]["url"]
    return link


def _fetched_on(server: MockServer, link: str, owner: MockServer) -> httpx.Response:
    return httpx.get(link.replace(owner.base_url, server.base_url), timeout=30)


def _restart(redis: RedisServer) -> None:
    redis.kill()
    redis.start()


def test_picture_links_work_across_servers_after_redis_restarted_empty() -> None:
    with redis_server() as redis:
        url = redis.url()
        with MockServer(state=url, log_requests=False) as first:
            assert _fetched_on(first, _picture_link(first, "before"), first).status_code == 200
            _restart(redis)  # (empty: the signing secret goes with everything else)
            with MockServer(state=url, log_requests=False) as second:
                theirs = _picture_link(second, "after, on the new server")
                ours = _picture_link(first, "after, on the old server")
                for link, owner in ((theirs, second), (ours, first)):
                    for server in (first, second):
                        fetched = _fetched_on(server, link, owner)
                        assert fetched.status_code == 200, fetched.text
                        assert fetched.content[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("query", ["?prefix=", "?prefix=%20", "?socket_timeout=5&prefix="])
def test_an_empty_prefix_is_refused_not_taken_for_the_default(query: str) -> None:
    url = "redis://127.0.0.1:6379/0" + query
    with pytest.raises(ConfigError, match=r"has an empty prefix \(\?prefix=\)"):
        MockServer(state=url)
    served = subprocess.run(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--state", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 2
    assert "has an empty prefix" in served.stderr


def _cluster() -> tuple[str, ...]:
    """A cluster node's options, its bus on a free port of its own: by default the bus takes the
    node's port + 10000, past 65535 for a free port above 55535 (redis-server did not start)."""
    return ("--cluster-enabled", "yes", "--cluster-port", str(free_port()))


def test_a_redis_cluster_node_stops_serve_with_exit_2_saying_so() -> None:
    with redis_server(*_cluster()) as cluster:
        done = subprocess.run(
            [sys.executable, "-m", "mockai", "serve", "--port", "0", "--state", cluster.url()],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    assert "is a node of a Redis Cluster, which mockai cannot use" in done.stderr
    assert "standalone Redis" in done.stderr  # (what is accepted)
    assert "Traceback" not in done.stderr


def test_a_redis_cluster_met_after_the_start_is_the_503_saying_so() -> None:
    cluster = RedisServer(*_cluster())  # (not started: the server starts first)
    try:
        with MockServer(state=cluster.url(), log_requests=False) as server:
            cluster.start()
            deadline = time.monotonic() + 20
            with httpx.Client(base_url=server.url, timeout=30) as http:
                while True:
                    answer = http.post(
                        "/chat/completions",
                        json={
                            "model": "gpt-4o-mini",
                            "messages": [{"role": "user", "content": "hi"}],
                        },
                    )
                    said = answer.text
                    if "connecting to" not in said or time.monotonic() > deadline:
                        break  # (past the start's refused connection)
                    time.sleep(0.2)
            assert answer.status_code == 503, said
            error = answer.json()["error"]
            assert error["code"] == "mockai_state_unavailable"
            assert "it is a Redis Cluster node" in error["message"]
    finally:
        cluster.stop()


@pytest.mark.parametrize(("policy", "warned"), [("allkeys-lru", True), ("noeviction", False)])
def test_a_redis_that_evicts_any_key_is_warned_about_at_the_start(
    policy: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis set up as a cache (`allkeys-lru`) drops mockai's rules, budgets or stored objects
    when full, their indexes left naming them; mockai started on it without a word."""
    with (
        redis_server("--maxmemory-policy", policy) as redis,
        caplog.at_level(logging.WARNING, logger="mockai"),
        MockServer(state=redis.url(), log_requests=False) as server,
    ):
        assert httpx.get(server.url + "/models", timeout=30).status_code == 200
    said = [r.getMessage() for r in caplog.records if "evicts any key" in r.getMessage()]
    assert len(said) == (1 if warned else 0), said
    if warned:
        assert f"maxmemory-policy {policy}" in said[0] and "noeviction" in said[0]
