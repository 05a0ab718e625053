"""The state-backend interface: where the stores, rules, counters, budgets and journal keep what
must be one across processes.

Two implementations: `memory` (the default: this process's dicts, today's code, every call
returns without waiting) and `redis` (`--state redis://...`: one state for every worker and
replica). A component asks its backend for what it needs once, when the server is built:

    records = backend.records("files", FileCodec(), capacity=1000)   # a store's records
    number = await records.next_serial()                            # ids unique across workers
    await records.put(file_id, record); await records.update(file_id, change)

so a new store (files, batches, ...) is written once against `Records` and shares its state under
`--state redis://` for free: it only supplies a `RecordCodec` turning its record into bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from mockai.errors import ApiError
from mockai.wire.errors import retry_headers

if TYPE_CHECKING:
    from mockai.delivery.chaos import Attempts
    from mockai.delivery.ratelimit import Limit, RateLimits
    from mockai.pipeline.fingerprint import Occurrences
    from mockai.pipeline.journal import Journal, JournalView

T = TypeVar("T")
R = TypeVar("R")


class RecordCodec(Protocol[T]):
    """How a store's record becomes bytes in a shared backend (and back)."""

    def encode(self, record: T) -> bytes:
        """The record as bytes (JSON, usually)."""
        ...

    def decode(self, data: bytes) -> T:
        """The record `encode` made."""
        ...


class Records(Protocol[T]):
    """One store's records by id: bounded (the oldest goes first), in insertion order.

    Records read with `get` or `values` are copies in a shared backend: change them with `update`
    (an atomic read-modify-write there), never in place.
    """

    capacity: int

    async def get(self, key: str) -> T | None:
        """The record stored under `key`, or None."""
        ...

    async def has(self, key: str) -> bool:
        """Whether `key` holds a record."""
        ...

    async def put(self, key: str, record: T, weight: int = 0) -> None:
        """Store `record` as the newest; the oldest go beyond `capacity`. `weight`: the bytes
        it counts against the records' byte budget (in-process; Redis holds a shared backend's
        records, bounded by count)."""
        ...

    async def setdefault(self, key: str, record: T) -> T:
        """The record under `key`; `record`, stored as the newest, if there was none (one step:
        of several workers asking at once, the first one's record is everyone's)."""
        ...

    async def update(
        self, key: str, change: Callable[[T], R], weigh: Callable[[T], int] | None = None
    ) -> R:
        """Apply `change` to the record atomically and keep the result; returns what `change`
        returned. KeyError if there is no such record. An exception from `change` keeps a
        shared backend's record as it was; in-process `change` works on the live record, so it
        checks (and weighs) before it changes anything. With `weigh`, the changed record counts
        `weigh(record)` bytes against the budget and becomes the newest (in-process, as `put`)."""
        ...

    async def pop(self, key: str) -> T | None:
        """Remove and return the record (None if there was none); what `add_within` weighed it
        is given back in the same step."""
        ...

    async def add_within(self, record: T, weight: int, most: int, most_weight: int) -> int | None:
        """Store `record` as the newest under the next serial number (its key: the number as
        text), weighing `weight`, if the records then number at most `most` (and `capacity`) and
        weigh at most `most_weight` in all; the number, or None when they would not (nothing
        stored, no number taken). One step, however many workers add at once: a bound that
        workers share (the files' bytes) is held this way, never by a read and a write."""
        ...

    async def held(self) -> tuple[int, int]:
        """How many records there are, and what they weigh in all (in a shared backend: what
        `add_within` weighed them; `put`'s weights bound only the in-process records)."""
        ...

    async def values(self) -> list[T]:
        """Every record, oldest first."""
        ...

    async def next_serial(self) -> int:
        """1, 2, 3, ...: numbers that stay unique across workers (until `clear`)."""
        ...

    async def clear(self) -> None:
        """Forget every record and restart the serial numbers."""
        ...


class StateUnavailable(ApiError):
    """The shared state cannot be reached: the API's 503, which the SDKs retry."""

    def __init__(self, where: str, reason: object) -> None:
        super().__init__(
            503,
            f"mockai: the shared state ({where}) is unavailable: {reason}. Retry shortly.",
            type="service_unavailable_error",
            code="mockai_state_unavailable",
            headers=retry_headers(1.0),
        )


class RecordsFactory(Protocol):
    """What a store needs from its backend: collections of records."""

    def records(
        self, name: str, codec: RecordCodec[T], capacity: int, max_bytes: int | None = None
    ) -> Records[T]:
        """The store's collection `name` (its keys in a shared backend), holding `capacity`
        records and, in-process, `max_bytes` of their weight (None: no byte bound)."""
        ...

    async def largest_record(self) -> int | None:
        """The most bytes one record may weigh once encoded (None: no limit but memory's)."""
        ...


@dataclass(frozen=True)
class RuleSnapshot:
    """The rule state every worker shares: runtime rules as defined, scenario rules removed at
    runtime, how often each rule answered, and a token that changes with every definition."""

    version: str
    definitions: tuple[dict[str, Any], ...] = ()  # {"name", "file", "rule": the mapping}
    removed: frozenset[str] = frozenset()
    served: dict[str, int] = field(default_factory=dict)
    named: int = 0  # default names (`rule-N`) handed out so far: the last N


@dataclass(frozen=True)
class Picked:
    """What `SharedRules.pick` decided."""

    stale: bool = False  # the caller's rules are out of date: sync, then ask again
    index: int | None = None  # which candidate answers (None: none is left)
    count: int = 0  # its call number (1 for the first)
    served: dict[str, int] | None = None  # every rule's count, when none answered


class SharedRules(Protocol):
    """Runtime rules and serve counts kept where every worker sees them."""

    async def pick(self, version: str, candidates: Sequence[tuple[str, int | None]]) -> Picked:
        """Count a call for the first candidate (name, limit) not used up, atomically; stale
        when `version` is not the current one."""
        ...

    async def pick_each(
        self, version: str, rules: Sequence[tuple[str, int | None]]
    ) -> list[int] | None:
        """Count a call for each of `rules` (name, limit; distinct names), all in one step if
        none is used up: their call numbers, in order. None, counting nothing, when one is used
        up or `version` is not the current one (a batch's inputs answered by several rules:
        counted one by one, the calls of the first were lost when a later one was used up)."""
        ...

    async def snapshot(self) -> RuleSnapshot:
        """The current definitions and counts."""
        ...

    async def replace(
        self,
        expected: str,
        definitions: Sequence[dict[str, Any]],
        removed: frozenset[str],
        forget: Sequence[str],
        named: int | None = None,
    ) -> bool:
        """Replace the definitions and removals, and forget the counts of `forget`, if the
        version is still `expected` (False otherwise: sync and try again). `named`: the
        snapshot's `named` after the default names the new definitions took, set in the same
        step (a number is taken only with the rule it names: a lost race takes none)."""
        ...

    async def reset_counts(self) -> None:
        """Forget every serve count."""
        ...


class Backend(RecordsFactory, Protocol):
    """Everything a server keeps that `--workers` and replicas must see as one.

    Each method is asked once, when the server is built; what it returns is today's in-process
    class (memory) or a subclass of it that keeps its state in the shared backend.
    """

    name: str  # "memory", or where the shared state is (a URL without its password)
    shared: bool  # True when other processes see the same state

    def occurrences(self) -> Occurrences:
        """How often each exact request was seen (ids, chaos draws)."""
        ...

    def attempts(self) -> Attempts:
        """Attempt numbers of `x-mockai-fault` calls without the SDK's retry count."""
        ...

    def budgets(self, limits: Mapping[str, Limit]) -> RateLimits:
        """Rate-limit windows for these budgets."""
        ...

    def journal(self, local: Journal) -> JournalView:
        """The journal as the admin API reads it."""
        ...

    def rules(self) -> SharedRules | None:
        """Runtime rules and serve counts shared by workers (None: the RuleBook's own)."""
        ...

    async def connect(self) -> None:
        """Open connections (on the serving loop, before the first request)."""
        ...

    async def close(self) -> None:
        """Close them (at shutdown)."""
        ...

    async def forget_all(self) -> None:
        """Forget everything this server shares (the admin reset), beyond what each component
        clears itself; the records named `secrets` (what the server signs with) stay."""
        ...
