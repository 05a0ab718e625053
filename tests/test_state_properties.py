"""The Redis backend is the in-process state, elsewhere: property tests against a real redis-server.

- Records: any sequence of store operations (put, get, has, setdefault, update, pop, values,
  clear, serial numbers) observes the same results on Redis as on the in-process OrderedDict, eviction
  included.
- Budgets: any sequence of charges is admitted or refused alike, with the same remaining counts.
- What a store keeps (an answer's bytes or SSE frames, a conversation's turns) survives the trip
  through JSON unchanged.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from service_support import RedisServer

from mockai.backend.memory import MemoryRecords
from mockai.backend.redis_state import RedisBackend
from mockai.delivery.ratelimit import Limit, RateLimits
from mockai.errors import ApiError
from mockai.pipeline.exchange import CalledTool, Message
from mockai.stores import kept
from mockai.wire.outgoing import Body, EventStream

KEYS = st.sampled_from(["a", "b", "c", "d", "e"])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), KEYS, st.integers(0, 99)),
        st.tuples(st.just("get"), KEYS),
        st.tuples(st.just("has"), KEYS),
        st.tuples(st.just("setdefault"), KEYS, st.integers(0, 99)),
        st.tuples(st.just("update"), KEYS, st.integers(0, 9)),
        st.tuples(st.just("pop"), KEYS),
        st.tuples(st.just("values")),
        st.tuples(st.just("serial")),
        st.tuples(st.just("clear")),
    ),
    max_size=30,
)
CODEC = kept.JsonCodec(lambda value: value, lambda data: data)


async def _apply(records: Any, operation: tuple[Any, ...]) -> Any:
    name = operation[0]
    if name == "put":
        return await records.put(operation[1], [operation[2]])
    if name == "get":
        return await records.get(operation[1])
    if name == "has":
        return await records.has(operation[1])
    if name == "setdefault":
        return await records.setdefault(operation[1], [operation[2]])
    if name == "update":

        def change(record: list[int]) -> int:
            if operation[2] == 0:
                raise ValueError("a change that fails keeps the record")
            record.append(operation[2])
            return len(record)

        try:
            return await records.update(operation[1], change)
        except (KeyError, ValueError) as error:
            return type(error).__name__
    if name == "pop":
        return await records.pop(operation[1])
    if name == "values":
        return await records.values()
    if name == "serial":
        return await records.next_serial()
    return await records.clear()


@settings(max_examples=40)
@given(operations=OPERATIONS, capacity=st.integers(1, 4))
def test_records_on_redis_behave_as_in_process(
    redis: RedisServer, operations: list[tuple[Any, ...]], capacity: int
) -> None:
    async def run() -> None:
        backend = RedisBackend(redis.url())
        await backend.connect()
        try:
            shared = backend.records("things", CODEC, capacity)
            local: MemoryRecords[list[int]] = MemoryRecords(capacity)
            for operation in operations:
                assert await _apply(shared, operation) == await _apply(local, operation), operation
        finally:
            await backend.forget_all()
            await backend.close()

    asyncio.run(run())


CHARGES = st.lists(
    st.tuples(st.sampled_from(["gpt-4o", "gpt-4o-mini", "o3"]), st.integers(0, 400)), max_size=25
)


@settings(max_examples=30)
@given(charges=CHARGES)
def test_a_budget_on_redis_admits_what_the_in_process_budget_admits(
    redis: RedisServer, charges: list[tuple[str, int]]
) -> None:
    budgets = {"gpt-4o": Limit(rpm=4, tpm=900, window=60.0), "o3": Limit(rpm=2, window=60.0)}

    async def outcome(limits: RateLimits, model: str, tokens: int) -> tuple[Any, ...]:
        try:
            headers = await limits.admit(model, tokens)
        except ApiError as refused:
            headers = refused.headers
            return (refused.status, refused.type, headers["x-ratelimit-remaining-requests"])
        return (
            200,
            headers["x-ratelimit-remaining-requests"],
            headers["x-ratelimit-remaining-tokens"],
            # When each kind resets: the end of the newest bucket holding it, on each side's
            # own clock (whole-second buckets: the two may differ by up to one bucket).
            round(_seconds(headers["x-ratelimit-reset-requests"])),
            round(_seconds(headers["x-ratelimit-reset-tokens"])),
        )

    async def run() -> None:
        backend = RedisBackend(redis.url())
        await backend.connect()
        try:
            shared = backend.budgets(budgets)
            local = RateLimits(budgets)
            for model, tokens in charges:
                on_redis = await outcome(shared, model, tokens)
                in_process = await outcome(local, model, tokens)
                assert on_redis[:3] == in_process[:3]
                for mine, theirs in zip(on_redis[3:], in_process[3:], strict=True):
                    assert abs(mine - theirs) <= 1 and (mine == 0) == (theirs == 0)
        finally:
            await backend.forget_all()
            await backend.close()

    asyncio.run(run())


def _seconds(duration: str) -> float:
    """A Go duration as the headers write it (`59.5s`, `1m0s`, `250ms`, `0s`) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "µs": 1e-6}
    parts = re.findall(r"([\d.]+)(h|ms|µs|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


FRAMES = st.lists(st.binary(max_size=200), min_size=1, max_size=6)


@given(
    body=st.binary(max_size=500),
    frames=FRAMES,
    headers=st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=3),
    tail=st.integers(0, 3),
)
def test_kept_answers_survive_json(
    body: bytes, frames: list[bytes], headers: dict[str, str], tail: int
) -> None:
    answer = Body(200, body, "application/json", headers)
    assert kept.answer_from_json(kept.answer_json(answer)) == answer
    stream = EventStream(frames=tuple(frames), tail=min(tail, len(frames)), headers=headers)
    back = kept.answer_from_json(kept.answer_json(stream))
    assert isinstance(back, EventStream)
    assert (back.frames, back.tail, back.headers, back.content_type) == (
        stream.frames,
        stream.tail,
        stream.headers,
        stream.content_type,
    )


TEXT = st.text(max_size=40)


@given(
    role=st.sampled_from(["system", "user", "assistant", "tool"]),
    text=TEXT,
    calls=st.lists(st.tuples(TEXT, TEXT, TEXT), max_size=3),
    call_id=st.none() | TEXT,
    name=st.none() | TEXT,
    images=st.integers(0, 5),
)
def test_conversation_turns_survive_json(
    role: str,
    text: str,
    calls: list[tuple[str, str, str]],
    call_id: str | None,
    name: str | None,
    images: int,
) -> None:
    message = Message(role, text, call_id, name, tuple(CalledTool(*c) for c in calls), images)
    encoded = kept.JsonCodec(kept.message_json, kept.message_from_json).encode(message)
    assert kept.JsonCodec(kept.message_json, kept.message_from_json).decode(encoded) == message


def test_prefixes_keep_servers_apart(redis: RedisServer) -> None:
    async def run() -> None:
        first, second = (RedisBackend(redis.url(f"p-{uuid.uuid4().hex}")) for _ in range(2))
        for backend in (first, second):
            await backend.connect()
        try:
            await first.records("things", CODEC, 10).put("a", [1])
            assert await second.records("things", CODEC, 10).get("a") is None
            assert await first.records("things", CODEC, 10).get("a") == [1]
        finally:
            for backend in (first, second):
                await backend.forget_all()
                await backend.close()

    asyncio.run(run())


def test_a_redis_password_is_never_shown() -> None:
    from mockai.backend.redis_state import split_url

    client_url, prefix, shown = split_url("redis://user:s3cret-pass@db.local:6380/2?prefix=team")
    assert prefix == "team"
    assert "s3cret-pass" in client_url and "prefix" not in client_url
    assert shown == "redis://user:***@db.local:6380/2"
    assert split_url("redis://127.0.0.1:6379/0")[1:] == ("mockai", "redis://127.0.0.1:6379/0")
