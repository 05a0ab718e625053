"""Bytes of request bodies in flight, bounded: many large uploads at once wait their turn.

Each request body is bounded by `client_max_size` (64 MiB), but not how many come at once: 20
simultaneous 20 MB uploads held ~424-564 MiB, and a load test of 200 would hold gigabytes.
So a request whose body is large reserves its size before it is read, and gives it back when its
answer is done (a body is referenced by its Exchange until then; after, the journal's and the
stores' own byte budgets hold what is kept). While a reservation does not fit, the request
waits, its body unread: aiohttp stops reading the socket once its buffer is full, so the
client's bytes wait in the kernel, as with any busy server.

- First come, first served: a request never overtakes one that waits before it, so a large body
  is not starved by a stream of small ones.
- A body larger than the whole budget is read when nothing else is held: it waits, it is not
  refused (the API accepts it, and `client_max_size` bounds it already).
- Small bodies (chat requests, every generating request of a load test) do not reserve: a body
  that came whole with the request's head is let through on one check of its stream.
- A request whose body comes chunked, without a Content-Length, is read without a reservation
  while it stays under the size that would need one (a small body, chunked by its client or
  split across reads, never waits); past it, the request reserves the most a body may be (its
  size is known only once read) and waits its turn, its socket paused, before reading on. (When
  such a body reserved the most at once, two clients idling mid-upload held the whole budget
  and every later chunked request waited for the read timeout.)
- The size is the client's Content-Length: a client that declares 60 MB and sends nothing holds
  that much until the read timeout (60 s) closes its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

# Bodies below this size are read without a reservation (a chat request is a few KB).
RESERVED_FROM = 1 << 20


class Reservation:
    """What one request holds of the budget: taken before or while its body is read, given
    back once its answer is done."""

    __slots__ = ("budget", "size")

    def __init__(self, budget: UploadBudget) -> None:
        self.budget = budget
        self.size = 0

    async def take(self, size: int) -> None:
        await self.budget.reserve(size)
        self.size += size

    def give_back(self) -> None:
        if self.size:
            self.budget.release(self.size)
            self.size = 0


class UploadBudget:
    """Reservations of request-body bytes, at most `max_bytes` held at once (see the module)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0  # bytes reserved now
        self.peak = 0  # the most held at once
        self.waited = 0  # requests that had to wait for a reservation
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, size: int) -> bool:
        return self.held == 0 or self.held + size <= self.max_bytes

    def _grant(self, size: int) -> None:
        self.held += size
        self.peak = max(self.peak, self.held)

    async def reserve(self, size: int) -> None:
        """Wait until `size` bytes fit, then hold them (give them back with `release`)."""
        if not self._waiting and self._fits(size):
            self._grant(size)
            return
        self.waited += 1
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (size, granted)
        self._waiting.append(waiter)
        try:
            await granted
        except asyncio.CancelledError:  # the client went away while it waited
            if granted.done() and not granted.cancelled():
                self.release(size)  # granted just before the cancellation arrived
            else:
                with contextlib.suppress(ValueError):  # (`_wake` may have dropped it already)
                    self._waiting.remove(waiter)
                self._wake()  # it may have been the first in line, holding the others back
            raise

    def release(self, size: int) -> None:
        """Give back a reservation; the requests waiting in line take what now fits."""
        self.held -= size
        self._wake()

    def _wake(self) -> None:
        waiting = self._waiting
        while waiting:
            size, granted = waiting[0]
            if granted.done():  # cancelled: its request is leaving the line
                waiting.popleft()
                continue
            if not self._fits(size):
                return
            waiting.popleft()
            self._grant(size)
            granted.set_result(None)
