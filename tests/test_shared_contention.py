"""Many requests at once on one stored object, with the state shared over Redis (two servers on
one namespace stand in for `--workers 2`): each is served, none refused with a 503.

Reads took the record's optimistic write path (`GET /responses/{id}` of a finished response is
a read), and writes that lost the race retried at once, in lockstep, until they ran out of
tries: 150 at once gave a third of them `503 mockai_state_unavailable` from a healthy Redis.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator

import httpx
import pytest
from service_support import RedisServer

from mockai import MockServer

AT_ONCE = 150


@pytest.fixture
def workers(redis: RedisServer) -> Iterator[tuple[MockServer, MockServer]]:
    state = redis.url()
    with (
        MockServer(state=state, log_requests=False) as first,
        MockServer(state=state, log_requests=False) as second,
    ):
        yield first, second


async def _at_once(
    servers: tuple[MockServer, MockServer], method: str, path: str, bodies: list[dict | None]
) -> collections.Counter[int]:
    """`method path` once per body, all at once, alternating between the two servers: the
    statuses counted."""
    limits = httpx.Limits(max_connections=AT_ONCE * 2, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        answers = await asyncio.gather(
            *(
                http.request(method, servers[n % 2].url + path, json=body)
                for n, body in enumerate(bodies)
            )
        )
    return collections.Counter(answer.status_code for answer in answers)


def test_a_burst_of_retrievals_of_one_stored_response_is_all_served(
    workers: tuple[MockServer, MockServer],
) -> None:
    first = workers[0]
    chat = {"model": "gpt-4o-mini", "input": "hi"}
    plain = httpx.post(first.url + "/responses", json=chat).json()["id"]
    run = httpx.post(first.url + "/responses", json={**chat, "background": True}).json()["id"]
    for _ in range(3):  # queued, in progress, completed
        httpx.get(f"{first.url}/responses/{run}").raise_for_status()
    for response_id in (plain, run):
        path = f"/responses/{response_id}"
        assert asyncio.run(_at_once(workers, "GET", path, [None] * AT_ONCE)) == {200: AT_ONCE}


def test_a_burst_of_changes_to_one_conversation_is_all_made(
    workers: tuple[MockServer, MockServer],
) -> None:
    first = workers[0]
    conversation = httpx.post(first.url + "/conversations", json={}).json()["id"]
    appends = [
        {"items": [{"type": "message", "role": "user", "content": f"note {n}"}]}
        for n in range(AT_ONCE)
    ]
    path = f"/conversations/{conversation}/items"
    assert asyncio.run(_at_once(workers, "POST", path, appends)) == {200: AT_ONCE}
    texts = []
    after = None
    for _ in range(AT_ONCE):  # (a page at a time, bounded)
        query = {"limit": 100, "order": "asc", **({"after": after} if after else {})}
        page = httpx.get(first.url + path, params=query).json()
        texts += [item["content"][0]["text"] for item in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert sorted(texts) == sorted(f"note {n}" for n in range(AT_ONCE))  # each once, none lost
