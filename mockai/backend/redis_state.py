"""Shared state on Redis (`--state redis://HOST:PORT/DB`): one server across workers and replicas.

Every component keeps its in-process logic and moves only its *state* here, through `redis.asyncio`
(never blocking the loop). What must be atomic across processes is one Lua script or one
optimistic transaction: picking a rule and counting the call, charging a rate-limit window (the
same 60-bucket sliding window as in-process, on Redis's clock so replicas on different hosts
agree), numbering occurrences and attempts, evicting the oldest stored record, appending to the
journal. A store's record is changed with WATCH / MULTI and retried on conflict.

Keys live under a prefix (`mockai` unless the URL says `?prefix=NAME`), so several servers can
share one database. Standalone Redis (or a Sentinel-managed primary) is assumed: the scripts touch
keys they compute, which Redis Cluster does not allow.

When Redis cannot be reached, calls raise `StateUnavailable` — the API's 503 with `retry-after`,
which the SDKs retry — and the client reconnects by itself once Redis is back.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Generic, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from mockai.backend import scripts
from mockai.backend.base import Picked, RecordCodec, Records, RuleSnapshot, StateUnavailable
from mockai.config import password_hidden
from mockai.delivery.chaos import Attempts
from mockai.delivery.ratelimit import BUCKETS, Limit, RateLimits, _headers, _refuse_if_over, _Window
from mockai.pipeline.fingerprint import Occurrences
from mockai.pipeline.journal import Journal, JournalEntry, JournalView
from mockai.wire import jsonbytes

log = logging.getLogger("mockai")

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")

# Seconds: a Redis that does not answer is reported (503) instead of holding requests.
SOCKET_TIMEOUT = 2.0
CONNECT_TIMEOUT = 1.0
# After a call failed for want of Redis, calls fail at once (the 503) for as long as that failure
# took, and at least this long: a stalled Redis otherwise holds every request for its timeouts,
# several of them (the answer's headers and the journal ask too), ~8 s a request.
BREAK_SECONDS = 1.0
OCCURRENCE_LIMIT = 100_000  # as in-process: repeats of more distinct requests start over
WATCH_RETRIES = 50  # optimistic transactions that keep losing the race give up (a 503)

_UNAVAILABLE = (
    redis_errors.ConnectionError,  # includes BusyLoadingError (Redis still loading its data)
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica promoted away from us
    OSError,
    TimeoutError,
)


def split_url(url: str) -> tuple[str, str, str]:
    """(the URL for the client, the key prefix, the URL to show: no password, no prefix)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    prefix = next((value for key, value in query if key == "prefix"), "mockai")
    rest = urlencode([(key, value) for key, value in query if key != "prefix"])
    client_url = urlunsplit(parts._replace(query=rest))
    shown = urlunsplit(urlsplit(password_hidden(url))._replace(query=""))
    return client_url, prefix, shown


def guarded(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """A method (of an object with a `backend`) whose Redis connection errors become the
    API's 503."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        owner: Any = args[0]
        backend: RedisBackend = owner.backend
        backend.check_reachable()
        began = time.monotonic()
        try:
            return await method(*args, **kwargs)
        except _UNAVAILABLE as error:
            raise backend.failed(error, time.monotonic() - began) from None

    return call


# Redis's default `proto-max-bulk-len` (512 MB), assumed where CONFIG GET is refused.
REDIS_LARGEST = 512 * 1024 * 1024


class RedisBackend:
    """State shared through one Redis database (see the module docstring)."""

    shared = True

    def __init__(self, url: str, *, journal_size: int = 1000) -> None:
        self._url, self.prefix, self.name = split_url(url)
        self.journal_size = journal_size
        self._client: aioredis.Redis | None = None
        self._failing_until = 0.0  # monotonic: calls fail at once before this (BREAK_SECONDS)
        self._failure = ""
        self._largest: int | None = None  # `largest_record`, asked once

    def check_reachable(self) -> None:
        """Raise the 503 at once while a recent failure says Redis is not there."""
        if self._failing_until and time.monotonic() < self._failing_until:
            raise StateUnavailable(self.name, self._failure)

    def failed(self, error: BaseException, took: float) -> StateUnavailable:
        """The 503 for a call that failed for want of Redis; later calls fail at once for a
        while (see BREAK_SECONDS), then the next one tries Redis again."""
        self._failure = _reason(error)
        self._failing_until = time.monotonic() + max(BREAK_SECONDS, took)
        return StateUnavailable(self.name, self._failure)

    # --- connections --------------------------------------------------------------------------

    async def connect(self) -> None:
        """Create the client on the serving loop; does not fail when Redis is down (requests
        then get 503s until it is up)."""
        if self._client is None:
            self._client = aioredis.from_url(
                self._url,
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=CONNECT_TIMEOUT,
                # One quick reconnect (a pooled connection Redis dropped when it restarted),
                # then report: a load test wants a fast 503, not a stalled request.
                retry=Retry(NoBackoff(), 1),
                health_check_interval=30,
            )
        try:
            await self._client.ping()
        except _UNAVAILABLE as error:
            log.warning("mockai: shared state %s is not reachable yet: %s", self.name, error)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise StateUnavailable(self.name, "not connected (the server is not running)")
        return self._client

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # --- what components ask for ----------------------------------------------------------------

    def records(
        self, name: str, codec: RecordCodec[T], capacity: int, max_bytes: int | None = None
    ) -> Records[T]:
        return RedisRecords(self, name, codec, capacity)

    @guarded
    async def largest_record(self) -> int:
        """Redis's `proto-max-bulk-len`: it refuses a longer value (and drops the connection
        that sent it), so a batch's results or a file past it could never be kept."""
        if self._largest is None:
            try:
                found = await self.client.config_get("proto-max-bulk-len")
                self._largest = int(found.get("proto-max-bulk-len") or REDIS_LARGEST)
            except (redis_errors.ResponseError, ValueError):  # CONFIG refused (managed Redis)
                self._largest = REDIS_LARGEST
        return self._largest

    def occurrences(self) -> Occurrences:
        return RedisOccurrences(self)

    def attempts(self) -> Attempts:
        return RedisAttempts(self)

    def budgets(self, limits: Mapping[str, Limit]) -> RateLimits:
        return RedisBudgets(self, limits)

    def journal(self, local: Journal) -> JournalView:
        return RedisJournal(self, local)

    def rules(self) -> RedisRules:
        return RedisRules(self)

    @property
    def backend(self) -> RedisBackend:  # so that `guarded` finds the name on the backend too
        return self

    @guarded
    async def forget_all(self) -> None:
        """Delete what was served under the prefix (the admin reset), whichever component wrote
        it: what was scripted (runtime rules), the journal's numbering and the `secrets` records
        (what the server signs with) stay, as in-process.

        Only this server's own key families are looked at, never `<prefix>:*` as a whole: that
        pattern also holds every longer prefix (`mockai:b:...` is under `mockai:*`), and servers
        sharing a database by prefix must not reset each other."""
        await self.client.unlink(*(self.key(*parts) for parts in _RESET_KEYS))
        kept_records = self.key("records", "secrets").encode() + b":"
        batch: list[Any] = []
        for family in _RESET_FAMILIES:
            pattern = _glob_escaped(self.key(family)) + ":*"
            async for key in self.client.scan_iter(match=pattern, count=500):
                if key.startswith(kept_records):
                    continue
                batch.append(key)
                if len(batch) >= 500:
                    await self.client.unlink(*batch)
                    batch.clear()
        if batch:
            await self.client.unlink(*batch)


# What a reset deletes (`forget_all`): single keys, then families of keys (`<prefix>:<family>:*`).
# Every key this module writes is one of them or one that a reset keeps (the rules' definitions,
# removals, version and names; the journal's numbering; the `secrets` records).
_RESET_KEYS = (
    ("occurrences",),
    ("attempts",),
    ("journal", "entries"),
    ("journal", "order"),
    ("rules", "served"),
)
_RESET_FAMILIES = ("records", "budget")


def _glob_escaped(text: str) -> str:
    """`text` matched literally by a SCAN pattern (`*`, `?`, `[` and `\\` are its specials)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.rstrip(".")


# --- a store's records ----------------------------------------------------------------------------


class RedisRecords(Generic[T]):
    """Records as one key each, ordered (and evicted) by a sorted set of insertion numbers."""

    def __init__(
        self, backend: RedisBackend, name: str, codec: RecordCodec[T], capacity: int
    ) -> None:
        self.backend = backend
        self.codec = codec
        self.capacity = capacity
        self._base = backend.key("records", name)
        self._order = self._base + ":order"
        self._serial = self._base + ":serial"
        self._inserted = self._base + ":inserted"

    def _key(self, key: str) -> str:
        return f"{self._base}:r:{key}"

    @guarded
    async def get(self, key: str) -> T | None:
        data: Any = await self.backend.client.get(self._key(key))
        return None if data is None else self.codec.decode(data)

    @guarded
    async def has(self, key: str) -> bool:
        return bool(await self.backend.client.exists(self._key(key)))

    @guarded
    async def put(self, key: str, record: T, weight: int = 0) -> None:
        await scripts.PUT_RECORD(
            self.backend.client,
            keys=[self._order, self._inserted],
            args=[self._base + ":r:", key, self.codec.encode(record), self.capacity],
        )

    @guarded
    async def setdefault(self, key: str, record: T) -> T:
        data = await scripts.PUT_NEW_RECORD(
            self.backend.client,
            keys=[self._order, self._inserted],
            args=[self._base + ":r:", key, self.codec.encode(record), self.capacity],
        )
        return self.codec.decode(data)

    @guarded
    async def update(
        self, key: str, change: Callable[[T], R], weigh: Callable[[T], int] | None = None
    ) -> R:
        # (`weigh` is not needed to bound memory: Redis holds the records, bounded by count. A
        # record weighed again is the newest, though, as in memory: the least recently changed
        # conversation goes first, not the one in use.)
        target = self._key(key)
        async with self.backend.client.pipeline(transaction=True) as pipe:
            for _ in range(WATCH_RETRIES):
                try:
                    await pipe.watch(target)
                    data: Any = await pipe.get(target)
                    if data is None:
                        raise KeyError(key)
                    record = self.codec.decode(data)
                    result = change(record)  # an exception leaves the record as it was
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(target, self.codec.encode(record), xx=True)
                    await pipe.execute()
                    if weigh is not None:
                        await scripts.TOUCH_RECORD(
                            self.backend.client, keys=[self._order, self._inserted], args=[key]
                        )
                    return result
                except redis_errors.WatchError:
                    continue  # another worker changed it meanwhile: read it again
                finally:
                    await pipe.reset()  # type: ignore[no-untyped-call]
        raise StateUnavailable(self.backend.name, f"record {key} kept changing under us")

    @guarded
    async def pop(self, key: str) -> T | None:
        data = await scripts.POP_RECORD(
            self.backend.client, keys=[self._key(key), self._order], args=[key]
        )
        return None if data is None else self.codec.decode(data)

    @guarded
    async def values(self) -> list[T]:
        names: list[Any] = list(await self.backend.client.zrange(self._order, 0, -1))
        if not names:
            return []
        found: list[Any] = await self.backend.client.mget([self._key(_text(n)) for n in names])
        return [self.codec.decode(data) for data in found if data is not None]

    @guarded
    async def next_serial(self) -> int:
        return int(await self.backend.client.incr(self._serial))

    @guarded
    async def clear(self) -> None:
        await scripts.CLEAR_RECORDS(
            self.backend.client,
            keys=[self._order, self._serial, self._inserted],
            args=[self._base + ":r:"],
        )


# --- counters -----------------------------------------------------------------------------------


class RedisOccurrences(Occurrences):
    """How often each exact request was seen, across workers (ids and chaos draws depend on it:
    two workers must not give two identical requests the same id)."""

    def __init__(self, backend: RedisBackend) -> None:
        super().__init__()
        self.backend = backend
        self._hash = backend.key("occurrences")

    @guarded
    async def take(self, key: bytes) -> int:
        seen = await scripts.OCCURRENCE(
            self.backend.client, keys=[self._hash], args=[key, OCCURRENCE_LIMIT]
        )
        return int(seen)

    @guarded
    async def forget(self) -> None:
        await self.backend.client.delete(self._hash)


class RedisAttempts(Attempts):
    """Attempt numbers of `x-mockai-fault` calls, across workers."""

    def __init__(self, backend: RedisBackend) -> None:
        super().__init__()
        self.backend = backend
        self._hash = backend.key("attempts")

    @guarded
    async def take(self, key: bytes, failing_below: int) -> int:
        attempt = await scripts.ATTEMPT(
            self.backend.client, keys=[self._hash], args=[key, failing_below, OCCURRENCE_LIMIT]
        )
        return int(attempt)

    @guarded
    async def forget(self) -> None:
        await self.backend.client.delete(self._hash)


# --- rate-limit budgets -------------------------------------------------------------------------


class RedisBudgets(RateLimits):
    """Rate-limit windows in Redis: the same sliding window and headers as in-process, charged
    atomically by a script on Redis's clock, so N workers admit what one budget allows."""

    def __init__(self, backend: RedisBackend, limits: Mapping[str, Limit]) -> None:
        super().__init__(limits)
        self.backend = backend

    def _window_key(self, model: str) -> str:
        return self.backend.key("budget", model)

    async def _read(self, model: str, limit: Limit, charge: int | None) -> tuple[bool, float, Any]:
        (
            admitted,
            now,
            requests,
            tokens,
            newest_requests,
            newest_tokens,
            *flat,
        ) = await scripts.CHARGE(
            self.backend.client,
            keys=[self._window_key(model)],
            args=[
                repr(limit.window / BUCKETS),
                BUCKETS,
                limit.rpm,
                limit.tpm,
                -1 if charge is None else charge,
                int(self._configured(model) is not None),
            ],
        )
        if not int(admitted):  # refused: the buckets, to say when enough of them leave
            buckets = {int(flat[i]): _counts(flat[i + 1]) for i in range(0, len(flat), 2)}
            return False, float(now), _Window(limit.window, buckets)
        newest = (int(newest_requests), int(newest_tokens))
        window = _Window.summed(limit.window, int(requests), int(tokens), newest)
        return True, float(now), window

    @guarded
    async def admit(self, model: str, tokens: int) -> dict[str, str]:
        configured = self._configured(model)
        limit = configured or self._default
        admitted, now, window = await self._read(model, limit, tokens)
        used_requests, used_tokens = window.used(now)
        if not admitted:  # the same 429, words and retry-after as in-process
            assert configured is not None
            _refuse_if_over(model, limit, window, now, used_requests, used_tokens, tokens)
        return _headers(limit, used_requests, used_tokens, window, now)

    @guarded
    async def headers(self, model: str) -> dict[str, str]:
        limit = self.limit_for(model)
        _, now, window = await self._read(model, limit, None)
        used_requests, used_tokens = window.used(now)
        return _headers(limit, used_requests, used_tokens, window, now)

    @guarded
    async def forget(self) -> None:
        pattern = self.backend.key("budget", "*")
        keys = [key async for key in self.backend.client.scan_iter(match=pattern, count=500)]
        if keys:
            await self.backend.client.unlink(*keys)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _counts(text: bytes) -> list[int]:
    requests, _, tokens = text.partition(b":")
    return [int(requests), int(tokens)]


# --- the journal --------------------------------------------------------------------------------


class RedisJournal(JournalView):
    """Every worker's entries in one bounded journal (the newest `journal_size`)."""

    def __init__(self, backend: RedisBackend, local: Journal) -> None:
        super().__init__(local)
        self.backend = backend
        self._entries = backend.key("journal", "entries")
        self._order = backend.key("journal", "order")
        self._seq = backend.key("journal", "seq")

    @guarded
    async def publish(self, entry: JournalEntry) -> None:
        data = entry.as_json()
        del data["seq"]  # numbered by Redis, shared by every worker
        seq = await scripts.JOURNAL_ADD(
            self.backend.client,
            keys=[self._seq, self._entries, self._order],
            args=[jsonbytes.dumps(data), self.backend.journal_size],
        )
        entry.seq = int(seq)

    @guarded
    async def complete(self, entry: JournalEntry) -> None:
        data = entry.as_json()
        del data["seq"]
        await scripts.JOURNAL_SET(
            self.backend.client,
            keys=[self._entries],
            args=[entry.seq, jsonbytes.dumps(data)],
        )

    @guarded
    async def page(self, limit: int, after: int | None) -> tuple[list[dict[str, Any]], bool]:
        client = self.backend.client
        seqs: list[Any]
        if after is not None:
            seqs = list(await client.zrangebyscore(self._order, f"({after}", "+inf", 0, limit + 1))
            more = len(seqs) > limit
            seqs = seqs[:limit]
        elif not limit:  # (no entries asked for: whether there are any, as in memory)
            return [], bool(await client.zcard(self._order))
        else:
            seqs = list(reversed(await client.zrevrange(self._order, 0, limit)))
            more = len(seqs) > limit
            seqs = seqs[len(seqs) - limit :] if more else seqs
        if not seqs:
            return [], more
        found = await client.hmget(self._entries, seqs)
        entries = []
        for seq, data in zip(seqs, found, strict=True):
            if data is not None:
                entries.append({"seq": int(seq), **jsonbytes.loads(data)})
        return entries, more

    @guarded
    async def clear(self) -> None:
        self.local.clear()
        await self.backend.client.delete(self._entries, self._order)  # numbers keep counting


# --- rules --------------------------------------------------------------------------------------


class RedisRules:
    """Runtime rule definitions, scenario rules removed at runtime, and every rule's serve count."""

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend
        self._version = backend.key("rules", "version")
        self._definitions = backend.key("rules", "definitions")
        self._removed = backend.key("rules", "removed")
        self._served = backend.key("rules", "served")
        self._names = backend.key("rules", "names")

    @guarded
    async def pick(self, version: str, candidates: Sequence[tuple[str, int | None]]) -> Picked:
        args: list[Any] = [version]
        for name, limit in candidates:
            args += [name, -1 if limit is None else limit]
        result = await scripts.PICK_RULE(
            self.backend.client, keys=[self._version, self._served], args=args
        )
        index = int(result[0])
        if index == -2:
            return Picked(stale=True)
        if index >= 0:
            return Picked(index=index, count=int(result[1]))
        flat = result[2:]
        served = {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return Picked(served=served)

    @guarded
    async def snapshot(self) -> RuleSnapshot:
        async with self.backend.client.pipeline(transaction=True) as pipe:
            pipe.get(self._version)
            pipe.lrange(self._definitions, 0, -1)
            pipe.smembers(self._removed)
            pipe.hgetall(self._served)
            version, definitions, removed, served = await pipe.execute()
        return RuleSnapshot(
            version=(version or b"").decode(),
            definitions=tuple(jsonbytes.loads(data) for data in definitions),
            removed=frozenset(name.decode() for name in removed),
            served={name.decode(): int(count) for name, count in served.items()},
        )

    @guarded
    async def next_name(self) -> int:
        return int(await self.backend.client.incr(self._names))

    @guarded
    async def replace(
        self,
        expected: str,
        definitions: Sequence[dict[str, Any]],
        removed: frozenset[str],
        forget: Sequence[str],
    ) -> bool:
        async with self.backend.client.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(self._version)
                current = _text(await pipe.get(self._version))
                if current != expected:
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.delete(self._definitions, self._removed)
                if definitions:
                    pipe.rpush(self._definitions, *(jsonbytes.dumps(d) for d in definitions))
                if removed:
                    pipe.sadd(self._removed, *sorted(removed))
                if forget:
                    pipe.hdel(self._served, *forget)
                pipe.set(self._version, secrets.token_hex(8))
                await pipe.execute()
                return True
            except redis_errors.WatchError:
                return False

    @guarded
    async def reset_counts(self) -> None:
        await self.backend.client.delete(self._served)
