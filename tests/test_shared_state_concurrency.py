"""Shared state (`--state redis://`) under concurrency: what many requests at once must not break.

- Uploads and deletes of files at once are never a 503 from a healthy Redis (the files' byte
  bound is charged and given back by one script each, never an optimistic retry that gives up;
  a worker's Redis connections are waited for, never refused past the pool's size), and every
  byte comes back: the emptied store takes exactly MOCKAI_FILE_BYTES again.
- Stored chat completions and files created at once are paged by the SDK's auto-pager in the
  documented order, each exactly once (a store holds them out of order; the list is not).
- Unnamed runtime rules added at once are `rule-1` to `rule-N`, no number lost to a race.

Against a real redis-server (the module's `redis` fixture) and one mockai server sharing its
state there, driven by the real SDK and httpx; the Records primitive and the pager's paging are
also properties (Redis against in-process, any order of places).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from service_support import RedisServer

from mockai import MockServer
from mockai.backend.memory import MemoryRecords
from mockai.backend.redis_state import RedisBackend
from mockai.stores import items, kept

AT_ONCE = 120  # requests in flight together: past a worker's 100 Redis connections
SIZE = 100  # bytes a file
BUDGET = 2 * AT_ONCE * SIZE  # MOCKAI_FILE_BYTES: room for every upload
MODEL = "gpt-4o-mini"


@pytest.fixture(scope="module")
def server(redis: RedisServer) -> Iterator[MockServer]:
    with MockServer(state=redis.url(), file_bytes=BUDGET, log_requests=False) as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh_state(server: MockServer) -> None:
    assert httpx.post(server.base_url + "/_mockai/reset").json() == {"reset": True}


def _async_client(server: MockServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=AT_ONCE)
    )


async def _upload(client: httpx.AsyncClient, name: str, size: int = SIZE) -> httpx.Response:
    return await client.post(
        "/files", data={"purpose": "assistants"}, files={"file": (name, b"x" * size)}
    )


def _statuses(answers: list[httpx.Response]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for answer in answers:
        counts[answer.status_code] = counts.get(answer.status_code, 0) + 1
    return counts


def _failed(answers: list[httpx.Response]) -> list[Any]:
    """The first answer that is not a 200, for the assertion's message."""
    return [answer.json() for answer in answers if answer.status_code != 200][:1]


# --- 1. the files' byte bound under contention ---------------------------------------------------


def test_uploads_and_deletes_at_once_all_succeed_and_give_every_byte_back(
    server: MockServer,
) -> None:
    async def run() -> None:
        # (a client a round, a connection a request: a connection's next request is slower)
        async with _async_client(server) as client:
            first = await asyncio.gather(*(_upload(client, f"a{i}.txt") for i in range(AT_ONCE)))
        assert _statuses(first) == {200: AT_ONCE}, _failed(first)
        held = [answer.json()["id"] for answer in first]
        half = AT_ONCE // 2
        async with _async_client(server) as client:
            # Deleting half the held files while as many new ones upload.
            mixed = await asyncio.gather(
                *(client.delete(f"/files/{file_id}") for file_id in held[:half]),
                *(_upload(client, f"b{i}.txt") for i in range(half)),
            )
        assert _statuses(mixed) == {200: AT_ONCE}, _failed(mixed)
        held = held[half:] + [answer.json()["id"] for answer in mixed[half:]]
        async with _async_client(server) as client:
            gone = await asyncio.gather(*(client.delete(f"/files/{i}") for i in held))
        assert _statuses(gone) == {200: AT_ONCE}, _failed(gone)
        async with _async_client(server) as client:
            assert (await client.get("/files")).json()["data"] == []
            # Every byte came back: the empty store takes exactly its budget, and no more.
            assert (await _upload(client, "whole.txt", BUDGET)).status_code == 200
            refused = await _upload(client, "one-more.txt", 1)
            assert refused.status_code == 400
            assert refused.json()["error"]["code"] == "mockai_storage_full"

    asyncio.run(asyncio.wait_for(run(), 30))


# Records.add_within / pop / held: what bounds the files, on Redis as in-process.
KEYS = st.sampled_from(["1", "2", "3", "4", "5", "x"])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add_within"), st.integers(0, 9), st.integers(0, 5), st.integers(0, 20)),
        st.tuples(st.just("put"), KEYS, st.integers(0, 9)),
        st.tuples(st.just("pop"), KEYS),
        st.tuples(st.just("held")),
        st.tuples(st.just("values")),
        st.tuples(st.just("clear")),
    ),
    max_size=25,
)
CODEC = kept.JsonCodec(lambda value: value, lambda data: data)


async def _apply(records: Any, operation: tuple[Any, ...]) -> Any:
    name, *args = operation
    if name == "add_within":
        weight, most, most_weight = args
        return await records.add_within(weight, weight, most, most_weight)
    if name == "put":
        return await records.put(args[0], args[1])
    if name == "pop":
        return await records.pop(args[0])
    if name == "held":
        return await records.held()
    if name == "values":
        return await records.values()
    return await records.clear()


@settings(max_examples=40, deadline=None)
@given(operations=OPERATIONS, capacity=st.integers(1, 4))
def test_records_added_within_bounds_on_redis_behave_as_in_process(
    redis: RedisServer, operations: list[tuple[Any, ...]], capacity: int
) -> None:
    """The same numbers, refusals, weights given back (a pop, an eviction, a clear) and
    records on Redis as in-process."""

    async def run() -> None:
        backend = RedisBackend(redis.url())
        await backend.connect()
        try:
            shared = backend.records("things", CODEC, capacity)
            local: MemoryRecords[int] = MemoryRecords(capacity)
            for operation in operations:
                assert await _apply(shared, operation) == await _apply(local, operation), operation
        finally:
            await backend.forget_all()
            await backend.close()

    asyncio.run(run())


# --- 2. paging what was stored at once -----------------------------------------------------------

STORED = 40


def test_the_auto_pager_walks_completions_stored_at_once_exactly_once_in_order(
    server: MockServer,
) -> None:
    async def run() -> None:
        async with openai.AsyncOpenAI(base_url=server.url, api_key="sk-test") as client:
            made = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model=MODEL, store=True, messages=[{"role": "user", "content": f"q{i}"}]
                    )
                    for i in range(STORED)
                )
            )
            whole = [c.id for c in (await client.chat.completions.list(limit=100)).data]
            assert sorted(whole) == sorted(c.id for c in made)
            walked = [c.id async for c in client.chat.completions.list(limit=3)]
            assert walked == whole  # oldest first (the default), each once
            backwards = [c.id async for c in client.chat.completions.list(limit=3, order="desc")]
            assert backwards == whole[::-1]

    asyncio.run(asyncio.wait_for(run(), 30))


def test_the_auto_pager_walks_files_uploaded_at_once_exactly_once_in_order(
    server: MockServer,
) -> None:
    async def run() -> None:
        async with openai.AsyncOpenAI(base_url=server.url, api_key="sk-test") as client:
            made = await asyncio.gather(
                *(
                    client.files.create(file=(f"f{i}.txt", b"x"), purpose="assistants")
                    for i in range(STORED)
                )
            )
            walked = [f async for f in client.files.list(limit=3)]
            assert sorted(f.id for f in walked) == sorted(f.id for f in made)
            times = [f.created_at for f in walked]
            assert times == sorted(times, reverse=True)  # newest first (the default)
            assert len(set(times)) == STORED

    asyncio.run(asyncio.wait_for(run(), 30))


@settings(max_examples=100)
@given(
    places=st.lists(st.integers(0, 1000), unique=True, max_size=30),
    limit=st.integers(1, 7),
    order=st.sampled_from(["asc", "desc"]),
)
def test_paging_by_after_walks_items_held_in_any_order_once_in_place_order(
    places: list[int], limit: int, order: str
) -> None:
    every = [{"id": f"item-{place}"} for place in places]
    expected = [item["id"] for _, item in sorted(zip(places, every, strict=True))]
    if order == "desc":
        expected.reverse()
    walked: list[str] = []
    query = {"order": order, "limit": str(limit)}
    for _ in range(len(places) + 1):  # (bounded: a pager that never ends fails)
        page = items.page(every, query, places=places)
        walked += [item["id"] for item in page["data"]]
        if not page["has_more"]:
            break
        query = {**query, "after": page["last_id"]}
    assert walked == expected


# --- 3. default rule names ----------------------------------------------------------------------


def test_unnamed_rules_added_at_once_are_numbered_one_to_n(server: MockServer) -> None:
    count = 20

    async def run() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            await client.delete("/_mockai/rules")
            answers = await asyncio.gather(
                *(
                    client.post("/_mockai/rules", json={"match": {"user": f"z{i}q"}, "reply": "x"})
                    for i in range(count)
                )
            )
            assert _statuses(answers) == {200: count}
            listed: list[dict[str, Any]] = (await client.get("/_mockai/rules")).json()["data"]
            return listed

    listed = asyncio.run(asyncio.wait_for(run(), 30))
    # Named in the order they were added: the list holds them in that order.
    assert [rule["name"] for rule in listed] == [f"rule-{n}" for n in range(1, count + 1)]
