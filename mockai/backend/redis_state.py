"""Shared state on Redis (`--state redis://HOST:PORT/DB`): one server across workers and replicas.

Every component keeps its in-process logic and moves only its *state* here, through `redis.asyncio`
(never blocking the loop). What must be atomic across processes is one Lua script or one
optimistic transaction: picking a rule and counting the call, charging a rate-limit window (the
same 60-bucket sliding window as in-process, on Redis's clock so replicas on different hosts
agree), numbering occurrences and attempts, evicting the oldest stored record, appending to the
journal, charging a bound that workers share (`add_within`: the files' bytes). A store's record
is changed with WATCH / MULTI and retried on conflict.

Keys live under a prefix (`mockai` unless the URL says `?prefix=NAME`), so several servers can
share one database. Standalone Redis (or a Sentinel-managed primary) is assumed: the scripts touch
keys they compute, which Redis Cluster does not allow.

When Redis cannot be reached, or refuses to serve (full, unable to persist, an ACL), or a key of
ours holds what another program wrote there, calls raise `StateUnavailable` — the API's 503 with
`retry-after`, which the SDKs retry — and the client reconnects by itself once Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import random
import re
import secrets
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any, Generic, ParamSpec, TypeVar
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from mockai.backend import scripts
from mockai.backend.base import Picked, RecordCodec, Records, RuleSnapshot, StateUnavailable
from mockai.config import password_hidden
from mockai.delivery.chaos import Attempts
from mockai.delivery.ratelimit import BUCKETS, Limit, RateLimits, _headers, _refuse_if_over, _Window
from mockai.errors import ConfigError
from mockai.pipeline.fingerprint import Occurrences
from mockai.pipeline.journal import Journal, JournalEntry, JournalView, _trimmed
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
# Connections a worker opens to Redis at most; more calls at once wait for one (SOCKET_TIMEOUT).
MAX_CONNECTIONS = 100
# A change of a record that keeps losing the race to other workers' changes gives up (a 503)
# after this many seconds of tries; between tries it waits a random share of a pause doubling
# from 1 ms to WATCH_BACKOFF. (Fifty tries at once, in lockstep, had 150 appends at once to one
# conversation refuse a sixth of them from a healthy Redis.)
WATCH_PATIENCE = 10.0
WATCH_BACKOFF = 0.05

_UNAVAILABLE = (
    redis_errors.ConnectionError,  # includes BusyLoadingError (Redis still loading its data)
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica promoted away from us
    OSError,
    TimeoutError,
)

# Redis answering but refusing the command (a ResponseError): full (`maxmemory` with the default
# `noeviction`), writes stopped after a failed save (MISCONF), an ACL that does not let this user
# touch the keys (NOPERM), a script running too long (BUSY), no primary or too few replicas. The
# state is there but cannot be used: the same 503, saying Redis's words (which name no key).
_REFUSALS = (
    redis_errors.OutOfMemoryError,
    redis_errors.NoPermissionError,
    redis_errors.MasterDownError,
    redis_errors.TryAgainError,
)
# A Redis Cluster node refusing our scripts' keys (CROSSSLOT, MOVED, ASK, CLUSTERDOWN): a server
# started while it was away found it out only then (the start refuses a cluster: `connect`).
_CLUSTER_REFUSALS = (
    redis_errors.ClusterCrossSlotError,
    redis_errors.AskError,  # (and MovedError)
    redis_errors.ClusterDownError,
)
_REFUSAL_CODES = frozenset(
    {"OOM", "MISCONF", "NOPERM", "BUSY", "NOREPLICAS", "MASTERDOWN", "TRYAGAIN"}
)
# An ACL refusing a key a script touches comes as a plain ERR (Redis 7).
_REFUSAL_WORDS = ("can't access", "no permissions")
# Refusals that pass by themselves: at startup they do not stop the server (the others are the
# URL's fault: a database the server lacks, credentials it refuses).
_PASSING_CODES = frozenset({"BUSY", "LOADING", "MASTERDOWN", "TRYAGAIN"})
# A key of ours holding what mockai never wrote there: another program sharing the database (or
# an older mockai under the same prefix) overwrote it. A key of another type (WRONGTYPE), a
# counter that is no number (INCR, HINCRBY, INCRBY past 2^63), and our scripts' comparisons and
# sums on `tonumber()` of such a value (their arguments are numbers mockai sends: only a value
# read from a key can be nil there). Every request touching the key would be a 500 until the key
# goes: the API's 503 instead, naming the keys. (Not a compile error, an unknown command, a
# wrong number of arguments: our own bugs, raised.)
_OVERWRITTEN_CODES = frozenset({"WRONGTYPE"})
_OVERWRITTEN_WORDS = re.compile(
    r"value is not an integer or out of range|hash value is not an integer"
    r"|increment or decrement would overflow"
    r"|attempt to (?:compare (?:nil with \w+|\w+ with nil)|perform arithmetic on .*\bnil value)"
)
# What Redis appends to an error raised inside a script: its SHA and line, of no use to a client.
_SCRIPT_SUFFIX = re.compile(r"\s*script: [0-9a-f]+, on @\S+$")
# What redis-py puts before an error in a transaction: the command with its keys and values (a
# conversation's turns...), never to be shown. Greedy: a value may hold the words too.
_PIPELINE_PREFIX = re.compile(r"^Command # \d+ \(.*\) of pipeline caused error: ", re.DOTALL)


def _said(error: redis_errors.RedisError) -> str:
    """Redis's own words in an error, without what redis-py and scripts add around them."""
    return _SCRIPT_SUFFIX.sub("", _PIPELINE_PREFIX.sub("", str(error))).strip()


def _code(error: redis_errors.RedisError) -> str:
    """The error's code (`OOM`, `MISCONF`, `ERR`): redis-py keeps it apart from the text for the
    codes it knows, and leaves it at the start of the text for the others."""
    code = getattr(error, "status_code", None)
    if isinstance(code, str) and code and code != "ERR":
        return code
    return _said(error).split(" ", 1)[0]


def _refusal(error: redis_errors.ResponseError) -> bool:
    """Whether Redis refused to serve (see _REFUSALS) rather than our command being wrong."""
    if isinstance(error, _REFUSALS + _CLUSTER_REFUSALS):
        return True
    said = _said(error)
    return _code(error) in _REFUSAL_CODES or any(words in said for words in _REFUSAL_WORDS)


def _overwritten_key(error: redis_errors.ResponseError) -> bool:
    """Whether Redis found a key of ours holding another program's value (see
    _OVERWRITTEN_WORDS)."""
    return _code(error) in _OVERWRITTEN_CODES or bool(_OVERWRITTEN_WORDS.search(_said(error)))


def _overwritten(backend: RedisBackend, keys: str, what: str) -> StateUnavailable:
    """The 503 for `keys` (a key, or a pattern of them) holding what mockai never wrote there.
    The operator is told which keys and what to do (key names carry ids, never what a request
    said); Redis itself is fine, so nothing pauses the next call."""
    log.warning("mockai: %s was overwritten by another program (%s)", keys, what)
    return StateUnavailable(
        backend.name,
        f"a key mockai keeps ({keys}) was overwritten by another program ({what}); delete it, "
        "or give mockai a prefix of its own (?prefix=NAME in the state URL)",
    )


@contextlib.contextmanager
def _reading(backend: RedisBackend, keys: str) -> Iterator[None]:
    """Around turning what `keys` hold into values (records, counts, entries): a value that does
    not read back was not written by mockai (see _overwritten). Only its exception's type is told:
    its text may quote the value, and another program's values are not ours to print."""
    try:
        yield
    except Exception as error:  # (what a codec raises is its own: ValueError, KeyError, ...)
        what = f"it does not read back: {type(error).__name__}"
        raise _overwritten(backend, keys, what) from None


def _refused(error: redis_errors.ResponseError) -> str:
    """The 503's reason for a refusal: Redis's code and words (never the command's keys and
    values)."""
    text = _said(error).rstrip(".")
    if isinstance(error, _CLUSTER_REFUSALS):
        cluster = f"it is a Redis Cluster node ({text}), which mockai cannot use"
        return f"Redis refused the command: {cluster}"
    code = _code(error)
    if code != "ERR" and not text.startswith(code):
        text = f"{code} {text}"
    return f"Redis refused the command: {text}"


def split_url(url: str) -> tuple[str, str, str]:
    """(the URL for the client, the key prefix, the URL to show: no password, no prefix)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    prefix = next((value for key, value in query if key == "prefix"), "mockai")
    rest = urlencode([(key, value) for key, value in query if key != "prefix"])
    client_url = _unsplit(parts._replace(query=rest))
    shown = _unsplit(urlsplit(password_hidden(url))._replace(query=""))
    return client_url, prefix, shown


def _unsplit(parts: SplitResult) -> str:
    """`urlunsplit`, keeping the `//` of `unix:///path/redis.sock`: it drops them when there is
    no host, and the Redis client refuses `unix:/path` (it wants one of `scheme://`)."""
    text = urlunsplit(parts)
    if parts.netloc or not parts.scheme:
        return text
    rest = text[len(parts.scheme) + 1 :]
    return f"{parts.scheme}:{rest if rest.startswith('//') else '//' + rest}"


def guarded(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """A method (of an object with a `backend`, and the `shown_keys` it keeps) whose Redis
    connection errors, refusals and overwritten keys become the API's 503."""

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
        except redis_errors.ResponseError as error:
            if _overwritten_key(error):
                keys = getattr(owner, "shown_keys", None) or backend.key("*")
                raise _overwritten(backend, keys, _said(error)) from None
            if not _refusal(error):
                raise  # (a command of ours Redis found wrong: a bug, to be seen)
            # Redis answered at once: no pause before the next call (it may be a read, which
            # a full Redis still serves).
            raise StateUnavailable(backend.name, _refused(error)) from None

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
        self._pool: aioredis.BlockingConnectionPool | None = None
        self._failing_until = 0.0  # monotonic: calls fail at once before this (BREAK_SECONDS)
        self._failure = ""
        self._largest: int | None = None  # `largest_record`, asked once
        self._stores: set[str] = set()  # the stores' names asked for here (`records`)

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
            # A pool that makes a call wait for a free connection, not fail: redis-py's default
            # pool refuses a call past its connections ("Too many connections"), a 503 from a
            # healthy Redis whenever more requests than that are in flight on this worker.
            self._pool = aioredis.BlockingConnectionPool.from_url(
                self._url,
                max_connections=MAX_CONNECTIONS,
                timeout=SOCKET_TIMEOUT,  # (then the 503: Redis is that slow to answer)
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=CONNECT_TIMEOUT,
                # One quick reconnect (a pooled connection Redis dropped when it restarted),
                # then report: a load test wants a fast 503, not a stalled request.
                retry=Retry(NoBackoff(), 1),
                health_check_interval=30,
            )
            self._client = aioredis.Redis(connection_pool=self._pool)
        try:
            await self._client.ping()
            clustered = await self._clustered()
        except (redis_errors.AuthenticationError, redis_errors.ResponseError) as error:
            if _code(error) not in _PASSING_CODES:  # (LOADING is a ConnectionError: passing)
                await self.close()
                raise self._refused_at_start(error) from None
            log.warning("mockai: shared state %s is not ready yet: %s", self.name, error)
        except _UNAVAILABLE as error:
            log.warning("mockai: shared state %s is not reachable yet: %s", self.name, error)
        else:
            if clustered:
                # Said before serving: every request would have been a plain-text 500 with
                # a traceback (CROSSSLOT), and the server's start a traceback too.
                await self.close()
                raise ConfigError(
                    f"state: {self.name!r} is a node of a Redis Cluster, which mockai cannot "
                    "use (its scripts compute key names, which a cluster does not allow); use "
                    "a standalone Redis (or a Sentinel-managed primary), or memory"
                )
            policy = await self._eviction_policy()
            if policy.startswith("allkeys-"):
                # Said, not refused: a Redis of a cache's settings works until it is full, and
                # then drops any key, a rule's, a budget's or a stored response's, while the
                # indexes naming it stay (answers change, lists name what 404s).
                log.warning(
                    "mockai: shared state %s evicts any key when full (maxmemory-policy %s): "
                    "rules, rate-limit budgets and stored objects may vanish; use noeviction "
                    "(Redis's default: a full Redis is then a 503 saying so)",
                    self.name,
                    policy,
                )

    async def _eviction_policy(self) -> str:
        """Redis's `maxmemory-policy` ("" when it does not say: INFO refused)."""
        assert self._client is not None
        try:
            found = await self._client.info("memory")
        except redis_errors.RedisError:
            return ""  # (INFO refused by an ACL or a managed Redis: nothing to say)
        return str(found.get("maxmemory_policy", ""))

    async def _clustered(self) -> bool:
        """Whether Redis runs in cluster mode (False when it does not say: INFO refused)."""
        assert self._client is not None
        try:
            found = await self._client.info("cluster")
        except redis_errors.ResponseError as error:
            if _code(error) in _PASSING_CODES:
                raise  # (not ready yet: the caller warns)
            return False  # (INFO refused by an ACL or a managed Redis: assume standalone)
        return str(found.get("cluster_enabled", 0)) == "1"

    def _refused_at_start(self, error: redis_errors.RedisError) -> ConfigError:
        """The startup error (exit 2) for a Redis that answers but refuses this URL: a database
        it does not have, credentials or an ACL it refuses. Not a 503 per request: waiting
        would not help."""
        return ConfigError(
            f"state: {self.name!r} was refused by Redis ({_reason(error)}); use memory or "
            "redis://[:PASSWORD@]HOST:PORT/DB with a database the server has (16 by default: "
            "/0 to /15) and credentials it accepts"
        )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
        if self._pool is not None:  # (a client given a pool leaves it open)
            pool, self._pool = self._pool, None
            await pool.disconnect()

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
        self._stores.add(name)
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

        Keys are found through what this server's scripts registered (the stores' names, the
        models' budget windows), never by a SCAN pattern: `<prefix>:records:*` also holds the
        keys of a server whose prefix is `<prefix>:records`, and servers sharing a database by
        prefix must not reset each other."""
        client = self.client
        await client.unlink(*(self.key(*parts) for parts in _RESET_KEYS))
        registered: set[Any] = await client.smembers(self.key(STORES))
        for name in sorted({_text(name) for name in registered} | self._stores):
            if name != "secrets":
                await _clear_records(client, self.key("records", name))
        await _forget_budgets(self)


# What a reset deletes (`forget_all`) besides the stores' records and the budgets. Every key this
# module writes is one of them or one that a reset keeps (the rules' definitions, removals,
# version and names; the journal's numbering; the `secrets` records; the stores' names, `STORES`).
_RESET_KEYS = (
    ("occurrences",),
    ("attempts",),
    ("journal", "entries"),
    ("journal", "order"),
    ("journal", "bodies"),
    ("journal", "weighed"),
    ("journal", "bytes"),
    ("rules", "served"),
)
# The set of the stores' names (every `RedisRecords` that stored a record: see PUT_RECORD) and
# the sorted set of the models whose budget window is alive (see CHARGE).
STORES = "stores"
BUDGETS = "budgets"


async def _clear_records(client: aioredis.Redis, base: str) -> None:
    """Delete one store's records (they are all in its order: see PUT_RECORD, POP_RECORD)."""
    await scripts.CLEAR_RECORDS(
        client,
        keys=[base + ":order", base + ":serial", base + ":inserted", *_weights(base)],
        args=[base + ":r:"],
    )


def _weights(base: str) -> list[str]:
    """A store's keys for what `add_within` weighed its records: by key (hash), in all."""
    return [base + ":weights", base + ":weight"]


async def _forget_budgets(backend: RedisBackend) -> None:
    await scripts.FORGET_BUDGETS(
        backend.client, keys=[backend.key(BUDGETS)], args=[backend.key("budget", "")]
    )


def _reason(error: BaseException) -> str:
    said = _said(error) if isinstance(error, redis_errors.RedisError) else str(error).strip()
    text = said or type(error).__name__
    return text.rstrip(".")


# --- a store's records ----------------------------------------------------------------------------


class RedisRecords(Generic[T]):
    """Records as one key each, ordered (and evicted) by a sorted set of insertion numbers;
    what `add_within` weighed them in a hash, and in all in a counter."""

    def __init__(
        self, backend: RedisBackend, name: str, codec: RecordCodec[T], capacity: int
    ) -> None:
        self.backend = backend
        self.codec = codec
        self.capacity = capacity
        self.name = name
        self._base = backend.key("records", name)
        self._stores = backend.key(STORES)
        self._order = self._base + ":order"
        self._serial = self._base + ":serial"
        self._inserted = self._base + ":inserted"
        self._weights = _weights(self._base)
        self.shown_keys = self._base + ":*"  # (what a 503 names: see `guarded`)

    def _key(self, key: str) -> str:
        return f"{self._base}:r:{key}"

    def _decoded(self, key: str, data: Any) -> T:
        with _reading(self.backend, self._key(key)):
            return self.codec.decode(data)

    @guarded
    async def get(self, key: str) -> T | None:
        data: Any = await self.backend.client.get(self._key(key))
        return None if data is None else self._decoded(key, data)

    @guarded
    async def has(self, key: str) -> bool:
        return bool(await self.backend.client.exists(self._key(key)))

    @guarded
    async def put(self, key: str, record: T, weight: int = 0) -> None:
        await scripts.PUT_RECORD(
            self.backend.client,
            keys=[self._order, self._inserted, self._stores, *self._weights],
            args=[self._base + ":r:", key, self.codec.encode(record), self.capacity, self.name],
        )

    @guarded
    async def setdefault(self, key: str, record: T) -> T:
        data = await scripts.PUT_NEW_RECORD(
            self.backend.client,
            keys=[self._order, self._inserted, self._stores, *self._weights],
            args=[self._base + ":r:", key, self.codec.encode(record), self.capacity, self.name],
        )
        return self._decoded(key, data)

    @guarded
    async def add_within(self, record: T, weight: int, most: int, most_weight: int) -> int | None:
        number = await scripts.ADD_WITHIN(
            self.backend.client,
            keys=[self._order, self._inserted, self._stores, *self._weights, self._serial],
            args=[
                self._base + ":r:",
                self.codec.encode(record),
                weight,
                min(most, self.capacity),
                most_weight,
                self.name,
            ],
        )
        return None if number is None else int(number)

    @guarded
    async def held(self) -> tuple[int, int]:
        async with self.backend.client.pipeline(transaction=True) as pipe:
            pipe.zcard(self._order)
            pipe.get(self._weights[1])
            count, weight = await pipe.execute()
        with _reading(self.backend, self._weights[1]):
            return int(count), int(weight or 0)

    @guarded
    async def update(
        self, key: str, change: Callable[[T], R], weigh: Callable[[T], int] | None = None
    ) -> R:
        # (`weigh` is not needed to bound memory: Redis holds the records, bounded by count. A
        # record weighed again is the newest, though, as in memory: the least recently changed
        # conversation goes first, not the one in use.)
        target = self._key(key)
        deadline = time.monotonic() + WATCH_PATIENCE
        async with self.backend.client.pipeline(transaction=True) as pipe:
            for attempt in itertools.count():
                try:
                    await pipe.watch(target)
                    data: Any = await pipe.get(target)
                    if data is None:
                        raise KeyError(key)
                    record = self._decoded(key, data)
                    result = change(record)  # an exception leaves the record as it was
                    encoded = self.codec.encode(record)
                    if encoded == data:  # (left as it was: nothing to write, nor to race)
                        return result
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(target, encoded, xx=True)
                    await pipe.execute()
                    if weigh is not None:
                        await scripts.TOUCH_RECORD(
                            self.backend.client, keys=[self._order, self._inserted], args=[key]
                        )
                    return result
                except redis_errors.WatchError:
                    pass  # another worker changed it meanwhile: read it again, a moment later
                finally:
                    await pipe.reset()  # type: ignore[no-untyped-call]
                if time.monotonic() > deadline:
                    break
                pause = min(WATCH_BACKOFF, 0.001 * 2 ** min(attempt, 16))
                await asyncio.sleep(random.uniform(0, pause))
        raise StateUnavailable(
            self.backend.name, f"record {key} kept changing under us for {WATCH_PATIENCE:g} s"
        )

    @guarded
    async def pop(self, key: str) -> T | None:
        data = await scripts.POP_RECORD(
            self.backend.client,
            keys=[self._order, *self._weights],
            args=[self._base + ":r:", key],
        )
        return None if data is None else self._decoded(key, data)

    @guarded
    async def values(self) -> list[T]:
        names: list[Any] = list(await self.backend.client.zrange(self._order, 0, -1))
        if not names:
            return []
        keys = [_text(name) for name in names]
        found: list[Any] = await self.backend.client.mget([self._key(key) for key in keys])
        pairs = zip(keys, found, strict=True)
        return [self._decoded(key, data) for key, data in pairs if data is not None]

    @guarded
    async def next_serial(self) -> int:
        return int(await self.backend.client.incr(self._serial))

    @guarded
    async def clear(self) -> None:
        await _clear_records(self.backend.client, self._base)


# --- counters -----------------------------------------------------------------------------------


class RedisOccurrences(Occurrences):
    """How often each exact request was seen, across workers (ids and chaos draws depend on it:
    two workers must not give two identical requests the same id)."""

    def __init__(self, backend: RedisBackend) -> None:
        super().__init__()
        self.backend = backend
        self._hash = self.shown_keys = backend.key("occurrences")

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
        self._hash = self.shown_keys = backend.key("attempts")

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
        self.shown_keys = backend.key("budget") + "*"  # (the windows, and `BUDGETS`)

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
        ) = await self._charge(model, limit, charge)
        if not int(admitted):  # refused: the buckets, to say when enough of them leave
            buckets = {int(flat[i]): _counts(flat[i + 1]) for i in range(0, len(flat), 2)}
            return False, float(now), _Window(limit.window, buckets)
        newest = (int(newest_requests), int(newest_tokens))
        window = _Window.summed(limit.window, int(requests), int(tokens), newest)
        return True, float(now), window

    async def _charge(self, model: str, limit: Limit, charge: int | None) -> list[Any]:
        try:
            result: list[Any] = await scripts.CHARGE(
                self.backend.client,
                keys=[self._window_key(model), self.backend.key(BUDGETS)],
                args=[
                    repr(limit.window / BUCKETS),
                    BUCKETS,
                    limit.rpm,
                    limit.tpm,
                    -1 if charge is None else charge,
                    int(self._configured(model) is not None),
                    model,
                ],
            )
        except redis_errors.ResponseError as error:
            if _refusal(error):
                raise  # (`guarded` words it)
            # A window the script cannot charge (its key clobbered by another program sharing
            # the database): the model's every request would be a plain-text 500 until the key
            # goes. The API's 503 instead, as for a refusal, and the operator is told which key.
            log.warning("mockai: cannot charge %s: %s", self._window_key(model), _said(error))
            raise StateUnavailable(
                self.backend.name, f"Redis could not charge the rate-limit budget: {_said(error)}"
            ) from None
        return result

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
        await _forget_budgets(self.backend)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _counts(text: bytes) -> list[int]:
    requests, _, tokens = text.partition(b":")
    return [int(requests), int(tokens)]


# --- the journal --------------------------------------------------------------------------------


class RedisJournal(JournalView):
    """Every worker's entries in one journal, bounded as in-process: the newest `journal_size`
    entries, and `MOCKAI_JOURNAL_BYTES` of their bodies (request headers and body) across every
    worker, the oldest entries' bodies dropped first (`dropped: true`, as in-process).

    An entry is kept as two values: the entry as it is once dropped (no body, its headers cut to
    what a dropped entry keeps), and its bodies, weighed and dropped by the script that adds it."""

    def __init__(self, backend: RedisBackend, local: Journal) -> None:
        super().__init__(local)
        self.backend = backend
        self._entries = backend.key("journal", "entries")
        self._order = backend.key("journal", "order")
        self._seq = backend.key("journal", "seq")
        self._bodies = backend.key("journal", "bodies")
        self._weighed = backend.key("journal", "weighed")
        self._bytes = backend.key("journal", "bytes")
        self.shown_keys = backend.key("journal", "*")

    @guarded
    async def publish(self, entry: JournalEntry) -> None:
        light, bodies = split_entry(entry.as_json())
        seq = await scripts.JOURNAL_ADD(
            self.backend.client,
            keys=[
                self._seq,
                self._entries,
                self._order,
                self._bodies,
                self._weighed,
                self._bytes,
            ],
            args=[
                jsonbytes.dumps(light),
                b"" if bodies is None else jsonbytes.dumps(bodies),
                self.backend.journal_size,
                self.local.max_bytes,
            ],
        )
        entry.seq = int(seq)

    @guarded
    async def complete(self, entry: JournalEntry) -> None:
        # What delivery learnt (status, duration, headers sent) is all in the light part: the
        # bodies, published with the entry, stay as they are (or dropped).
        light, _ = split_entry(entry.as_json())
        await scripts.JOURNAL_SET(
            self.backend.client,
            keys=[self._entries],
            args=[entry.seq, jsonbytes.dumps(light)],
        )

    @guarded
    async def page(
        self, limit: int, after: int | None, bodies: bool = True
    ) -> tuple[list[dict[str, Any]], bool]:
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
        async with client.pipeline(transaction=True) as pipe:
            pipe.hmget(self._entries, seqs)
            pipe.hmget(self._bodies, seqs)
            found, held_bodies = await pipe.execute()
        entries = []
        with _reading(self.backend, self.shown_keys):
            for seq, data, held in zip(seqs, found, held_bodies, strict=True):
                if data is not None:
                    entry = joined_entry(int(seq), data, held)
                    if not bodies:  # (the headers are kept with the body: both are read)
                        entry.pop("body", None)
                    entries.append(entry)
        return entries, more

    @guarded
    async def clear(self) -> None:
        self.local.clear()
        await self.backend.client.delete(  # (the numbers keep counting)
            self._entries, self._order, self._bodies, self._weighed, self._bytes
        )


def split_entry(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """An entry's JSON (`JournalEntry.as_json`) as the shared journal keeps it: (the entry once
    its bodies are dropped, its bodies: None if they were dropped already). Without `seq`: Redis
    numbers the entries."""
    light = {**data, "headers": _trimmed(data["headers"]), "body": None, "dropped": True}
    del light["seq"]
    if data["dropped"]:
        return light, None
    return light, {"headers": data["headers"], "body": data["body"], "dropped": False}


def joined_entry(seq: int, light: bytes, bodies: bytes | None) -> dict[str, Any]:
    """An entry's JSON from what `split_entry` made of it (the bodies None once dropped)."""
    entry = {"seq": seq, **jsonbytes.loads(light)}
    if bodies is not None:
        entry.update(jsonbytes.loads(bodies))
    return entry


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
        self.shown_keys = backend.key("rules", "*")

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
        with _reading(self.backend, self._served):
            served = {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return Picked(served=served)

    @guarded
    async def pick_each(
        self, version: str, rules: Sequence[tuple[str, int | None]]
    ) -> list[int] | None:
        args: list[Any] = [version]
        for name, limit in rules:
            args += [name, -1 if limit is None else limit]
        counts = await scripts.PICK_EACH(
            self.backend.client, keys=[self._version, self._served], args=args
        )
        return None if counts is None else [int(count) for count in counts]

    @guarded
    async def snapshot(self) -> RuleSnapshot:
        async with self.backend.client.pipeline(transaction=True) as pipe:
            pipe.get(self._version)
            pipe.lrange(self._definitions, 0, -1)
            pipe.smembers(self._removed)
            pipe.hgetall(self._served)
            pipe.get(self._names)
            version, definitions, removed, served, named = await pipe.execute()
        with _reading(self.backend, self.shown_keys):
            return RuleSnapshot(
                version=(version or b"").decode(),
                definitions=tuple(jsonbytes.loads(data) for data in definitions),
                removed=frozenset(name.decode() for name in removed),
                served={name.decode(): int(count) for name, count in served.items()},
                named=int(named or 0),
            )

    @guarded
    async def replace(
        self,
        expected: str,
        definitions: Sequence[dict[str, Any]],
        removed: frozenset[str],
        forget: Sequence[str],
        named: int | None = None,
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
                if named is not None:  # (read with `expected`: current while the version is)
                    pipe.set(self._names, named)
                pipe.set(self._version, secrets.token_hex(8))
                await pipe.execute()
                return True
            except redis_errors.WatchError:
                return False

    @guarded
    async def reset_counts(self) -> None:
        await self.backend.client.delete(self._served)
