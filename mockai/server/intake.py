"""The intake: how much of a burst the event loop takes in before it polls the sockets again.

A request is stamped when its bytes are read (`sites.Arrivals`), and its latency and TTFT are
scheduled from that stamp. The loop reads the sockets between iterations, and an iteration runs
the work of every request read just before it (aiohttp's handling, then mockai's parsing and
deciding: ~100-150 us a request). Under a burst that work snowballs: the loop reads 10 requests
and spends 1.5 ms on them while 100 more arrive, then reads those and spends 15 ms on them. With
200 streams started at once (`bench/timing_fidelity.py`) the last requests were stamped 3-11 ms
after they were sent, in steps, one per long iteration, and their TTFT was late by as much.

The intake hands the bytes of at most `per_iteration` reads to aiohttp per iteration; past that
they wait, in arrival order, and go in over the next iterations. An iteration then holds a bounded
amount of request work, so the sockets are polled, and new arrivals stamped, about every
millisecond however large the burst: the same 200 streams were stamped within 2.0-2.2 ms of
being sent (p99; docs/design.md, "The intake"). Outside bursts nothing waits, and a
connection's bytes are never reordered: while anything waits, everything new waits behind it.
What waits is bounded in bytes too (`WAITING_BYTES`): many uploads at once cannot pile up here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

# Reads handed in per event-loop iteration: 8 requests' work is ~1-1.5 ms on this machine (a chat
# request ~150 us with aiohttp's share). Under a steady load (wrk, 64 connections) the extra
# iterations cost nothing measurable; 4 stamped a burst slightly tighter.
PER_ITERATION = 8
# Bytes that may wait before the intake stops holding anything back: past them, everything that
# waits goes in at the next iteration, and aiohttp's own flow control pauses the connections it
# cannot keep up with. Request heads and JSON bodies are small; this bounds what uploads (many
# connections streaming files at once) can pile up here to ~one loop iteration's reads.
WAITING_BYTES = 1 << 20


class Receiver(Protocol):
    """What bytes are handed to: aiohttp's protocol for one connection."""

    def data_received(self, data: bytes) -> None: ...


class Intake:
    """Hands connections' bytes to their receivers, `per_iteration` reads per loop iteration.

    `call_soon` is the running loop's (a callback scheduled from one iteration runs in the
    next): the intake schedules one to start each iteration's count while there is work, and
    none when idle."""

    def __init__(
        self,
        call_soon: Callable[[Callable[[], None]], object],
        per_iteration: int = PER_ITERATION,
        waiting_bytes: int = WAITING_BYTES,
    ) -> None:
        if per_iteration < 1:
            raise ValueError(f"per_iteration must be >= 1, got {per_iteration}")
        self._call_soon = call_soon
        self.per_iteration = per_iteration
        self.most_waiting_bytes = waiting_bytes
        self._taken = 0  # reads handed in during this iteration
        self._waiting: deque[tuple[Receiver, bytes]] = deque()
        self._waiting_bytes = 0
        self._held: dict[Receiver, int] = {}  # how many waiting reads each receiver has
        self._turning = False  # the next iteration's callback is scheduled

    def offer(self, receiver: Receiver, data: bytes) -> None:
        """Hand `data` to `receiver` now, or after everything already waiting."""
        if not self._turning:
            self._next_turn()
        if self._waiting or self._taken >= self.per_iteration:
            self._waiting.append((receiver, data))
            self._waiting_bytes += len(data)
            self._held[receiver] = self._held.get(receiver, 0) + 1
            return
        self._taken += 1
        receiver.data_received(data)

    def flush(self, receiver: Receiver) -> None:
        """Hand `receiver` every read of its that waits, now and in order: before the end of its
        connection (EOF, close) is passed on, so every request it sent is parsed and handled.
        (After a half-close, EOF alone, aiohttp closes the connection: an answer not written
        by then is lost, as with a bare aiohttp app; no SDK half-closes.)"""
        if receiver not in self._held:
            return
        del self._held[receiver]
        mine = [data for owner, data in self._waiting if owner is receiver]
        self._waiting = deque(item for item in self._waiting if item[0] is not receiver)
        self._waiting_bytes -= sum(map(len, mine))
        for data in mine:
            receiver.data_received(data)

    @property
    def waiting(self) -> int:
        """Reads not handed in yet."""
        return len(self._waiting)

    @property
    def waiting_bytes(self) -> int:
        """The bytes of the reads not handed in yet."""
        return self._waiting_bytes

    def _next_turn(self) -> None:
        if not self._turning:
            self._turning = True
            self._call_soon(self._turn)

    def _turn(self) -> None:
        """A new iteration: its count starts at 0, and what waits goes in first."""
        self._turning = False
        self._taken = 0
        # Past the byte bound, everything goes in now (see WAITING_BYTES).
        everything = self._waiting_bytes > self.most_waiting_bytes
        try:
            while self._waiting and (everything or self._taken < self.per_iteration):
                receiver, data = self._waiting.popleft()
                self._waiting_bytes -= len(data)
                held = self._held[receiver] - 1
                if held:
                    self._held[receiver] = held
                else:
                    del self._held[receiver]
                self._taken += 1
                receiver.data_received(data)
        finally:
            # (even if a receiver raised: what still waits must not be stranded)
            if self._taken or self._waiting:
                self._next_turn()
