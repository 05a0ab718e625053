"""Shared state on Redis, hunt 10 (`--state redis://`): fixes for what a bug hunt reproduced.

- A picture link answered by one server after Redis restarted empty works on every other
  (servers that had signed before kept their old secret: each refused the others' links, 403).
- A state URL with an empty `?prefix=` (`?prefix=$RUN` with RUN unset) is refused, exit 2: it
  took the default prefix, sharing (and resetting) every other such run's keys.
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from service_support import RedisServer, redis_server

from mockai import MockServer
from mockai.errors import ConfigError


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
