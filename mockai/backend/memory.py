"""The in-process backend (the default): plain dicts in this process, no waiting, no copies.

Every method is a coroutine only to share the interface with the Redis backend; none of them
ever suspends, so on the hot path a call costs what the dict operation costs plus one await.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Generic, TypeVar

from mockai.backend.base import RecordCodec
from mockai.delivery.chaos import Attempts
from mockai.delivery.ratelimit import Limit, RateLimits
from mockai.pipeline.fingerprint import Occurrences
from mockai.pipeline.journal import Journal, JournalView
from mockai.stores.kept import Shelf

T = TypeVar("T")
R = TypeVar("R")


class MemoryRecords(Generic[T]):
    """Records on a `Shelf` (the live objects: `update` changes them in place), bounded in
    count and in the bytes `put` was told each weighs."""

    def __init__(self, capacity: int, max_bytes: int | None = None) -> None:
        bound = sys.maxsize if max_bytes is None else max_bytes
        self._records: Shelf[str, T] = Shelf(capacity, bound)
        self._serial = 0

    @property
    def capacity(self) -> int:
        return self._records.capacity

    @capacity.setter
    def capacity(self, capacity: int) -> None:
        self._records.capacity = capacity

    @property
    def bytes(self) -> int:
        """The weight of the records held."""
        return self._records.bytes

    async def get(self, key: str) -> T | None:
        return self._records.get(key)

    async def has(self, key: str) -> bool:
        return key in self._records

    async def put(self, key: str, record: T, weight: int = 0) -> None:
        self._records.put(key, record, weight)

    async def setdefault(self, key: str, record: T) -> T:
        found = self._records.get(key)
        if found is None:
            self._records.put(key, record, 0)
            return record
        return found

    async def update(
        self, key: str, change: Callable[[T], R], weigh: Callable[[T], int] | None = None
    ) -> R:
        if key not in self._records:
            raise KeyError(key)  # as the interface says
        record = self._records[key]
        result = change(record)
        if weigh is not None:  # it grew or shrank: weighed again, the oldest go past the budget
            self._records.put(key, record, weigh(record))
        return result

    async def pop(self, key: str) -> T | None:
        return self._records.pop(key)

    async def add_within(self, record: T, weight: int, most: int, most_weight: int) -> int | None:
        if len(self._records) >= min(most, self.capacity):
            return None
        if self._records.bytes + weight > most_weight:
            return None
        self._serial += 1
        self._records.put(str(self._serial), record, weight)
        return self._serial

    async def held(self) -> tuple[int, int]:
        return len(self._records), self._records.bytes

    async def values(self) -> list[T]:
        return [record for _, record in self._records.items()]

    async def next_serial(self) -> int:
        self._serial += 1
        return self._serial

    async def clear(self) -> None:
        self._records.clear()
        self._serial = 0

    def __len__(self) -> int:
        return len(self._records)


class MemoryBackend:
    """State kept by this process alone (what `mockai serve` without `--state` uses)."""

    name = "memory"
    shared = False

    def records(
        self, name: str, codec: RecordCodec[T], capacity: int, max_bytes: int | None = None
    ) -> MemoryRecords[T]:
        """A store's records (`name` and `codec` matter only to shared backends)."""
        return MemoryRecords(capacity, max_bytes)

    async def largest_record(self) -> int | None:
        return None  # (the live objects are kept)

    def occurrences(self) -> Occurrences:
        return Occurrences()

    def attempts(self) -> Attempts:
        return Attempts()

    def budgets(self, limits: Mapping[str, Limit]) -> RateLimits:
        return RateLimits(limits)

    def journal(self, local: Journal) -> JournalView:
        return JournalView(local)

    def rules(self) -> None:
        """No shared rule state: the RuleBook counts in this process."""
        return None

    async def connect(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to close."""

    async def forget_all(self) -> None:
        """Nothing beyond what the components clear themselves."""


def finish_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never waits (in-process state) to its end, from synchronous code.

    Raises RuntimeError if it tried to wait (which means it needed an event loop after all).
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("this state operation has to wait; call it from the server's event loop")
