"""The outbox: what the handlers write in one event-loop iteration goes to the sockets together.

Each `send()` to a loopback client whose thread sleeps wakes it, and a wake-up across cores is
the dearest part of the kernel's work on a virtual machine: with the client waiting in `epoll`
for every answer, 7% of a chat request's CPU went to `sock_def_readable` waking it
(`perf record` under `wrk -c64`). Answers sent one after another in a tight loop find the client
already awake after the first. So a connection's writes are held until the end of the loop
iteration they were made in (a callback `call_soon` schedules runs after every callback of the
iteration) and then written, every connection's in turn: under `wrk -c64` the kernel's share of a
chat request fell from ~26 to ~10 us and chat answers went from ~5,800-6,300 to ~7,500-7,900 a
second (docs/design.md, "The outbox").

A write goes through at once when there is nobody to batch it with: no other connection is
waiting for an answer (bytes came on it since it was last written to) and nothing is held. A
lone client (a test suite's) then pays no extra loop iteration per request.

Nothing else changes: a connection's bytes keep their order, reach its transport before anything
else done to it (closing, aborting, a half-close), and a write that would hold a lot
(`HOLD_BYTES`) goes through at once with what waited before it, so that large bodies keep
aiohttp's flow control (the transport pauses the writer when its buffer fills).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("mockai")

# Bytes a connection may hold before its writes go through at once: answers and stream events are
# well under it; a large body (written a megabyte at a time, `delivery/deliver.py`) is not held.
HOLD_BYTES = 64 * 1024

Buffer = bytes | bytearray | memoryview


class Outbox:
    """The connections holding writes, written at the end of the loop iteration (`call_soon`)."""

    __slots__ = ("_call_soon", "_holding", "_scheduled", "expecting")

    def __init__(self, call_soon: Callable[[Callable[[], None]], object]) -> None:
        self._call_soon = call_soon
        self._holding: list[HeldTransport] = []
        self._scheduled = False
        # Connections whose client sent bytes since they were last written to: answers to come.
        self.expecting = 0

    def hold(self, connection: HeldTransport) -> None:
        """`connection` holds a write: written with the others once the iteration ends."""
        self._holding.append(connection)
        if not self._scheduled:
            self._scheduled = True
            self._call_soon(self.flush)

    def flush(self) -> None:
        """Write what every connection holds, in the order they started holding."""
        self._scheduled = False
        holding, self._holding = self._holding, []
        for connection in holding:
            try:
                connection.flush()
            except Exception:  # one connection's failure must not strand the others' bytes
                log.exception("mockai: writing a held answer failed")

    @property
    def holding(self) -> int:
        """Connections that held writes in this iteration (written when it ends)."""
        return len(self._holding)


class HeldTransport(asyncio.Transport):
    """A connection's transport whose writes wait in the `Outbox` until the iteration ends.

    What aiohttp and mockai do to a connection besides writing is passed on at once, after what
    is held (a close or an abort sends the bytes written before it, as the transport itself
    would have tried to)."""

    __slots__ = ("_expecting", "_held", "_held_bytes", "_outbox", "_transport", "holding")

    def __init__(self, transport: asyncio.Transport, outbox: Outbox) -> None:
        super().__init__()
        self._transport = transport
        self._outbox = outbox
        self._held: list[Buffer] = []
        self._held_bytes = 0
        # Whether writes wait for the iteration's end: not while an answer keeps a schedule
        # (`hold_writes`), whose every write is due when it is made.
        self.holding = True
        self._expecting = False  # bytes came since the last write: an answer is to come

    # --- arriving --------------------------------------------------------------------------------

    def expect(self) -> None:
        """Bytes arrived: the client waits for an answer (others' writes may wait for it)."""
        if not self._expecting:
            self._expecting = True
            self._outbox.expecting += 1

    def forget(self) -> None:
        """No answer is owed on the connection any more: it is being written to, or it is
        gone."""
        if self._expecting:
            self._expecting = False
            self._outbox.expecting -= 1

    @property
    def expecting(self) -> bool:
        """Whether bytes came since this connection was last written to."""
        return self._expecting

    # --- writing ---------------------------------------------------------------------------------

    def write(self, data: Buffer) -> None:
        if not data:
            return
        size = len(data)
        if self._at_once(size):
            self.flush()
            self._transport.write(data)
        else:
            self._hold(data, size)

    def writelines(self, list_of_data: Iterable[Buffer]) -> None:
        pieces = list(list_of_data)
        size = sum(map(len, pieces))
        if not size:
            return  # (nothing written, as `write(b"")`)
        if self._at_once(size):
            # One call, as aiohttp made it (uvloop writes the pieces with one system call): a
            # head and its body, or a paced stream's head and first event.
            self.flush()
            self._transport.writelines(pieces)
            return
        for data in pieces:
            if data:
                self._hold(data, len(data))

    def _at_once(self, size: int) -> bool:
        """Whether a write of `size` bytes goes through now (after what is held)."""
        self.forget()  # (an answer, or part of one: what came is being answered)
        if not self.holding or self._held_bytes + size >= HOLD_BYTES:
            # A scheduled write is due now; a large body keeps the transport's flow control.
            return True
        if self._transport.is_closing():
            return True  # its own answer, as without the outbox (ignored, or an error)
        if self._held:
            return False
        # Nobody to batch it with: no other answer to come, nothing held this iteration.
        outbox = self._outbox
        return not outbox.expecting and not outbox.holding

    def _hold(self, data: Buffer, size: int) -> None:
        if not self._held:
            self._outbox.hold(self)
        self._held.append(_kept(data))
        self._held_bytes += size

    def flush(self) -> None:
        """Put what is held on the transport (dropped if the transport is closing: the peer is
        gone or the connection was aborted, and the transport would refuse it)."""
        if not self._held:
            return
        held, self._held, self._held_bytes = self._held, [], 0
        if self._transport.is_closing():  # (a write would only be counted and logged)
            return
        if len(held) == 1:
            self._transport.write(held[0])
        else:
            self._transport.write(b"".join(held))

    def get_write_buffer_size(self) -> int:
        return self._held_bytes + self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    # --- ending ----------------------------------------------------------------------------------

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        # What was written before the abort goes out first, as it would have (a broken stream's
        # first events, then the reset).
        self.flush()
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    # --- passed on -------------------------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


def hold_writes(transport: object, holding: bool) -> None:
    """Whether the writes of `transport` (a request's) wait for the end of the loop iteration:
    not for an answer that keeps a schedule (latency, pacing) or relays an upstream's as it
    comes, whose writes are due as made."""
    if isinstance(transport, HeldTransport):
        transport.holding = holding


def _kept(data: Buffer) -> bytes | memoryview:
    """`data` as it may wait: bytes, or a view of bytes, as they are; a copy of anything its
    writer may change once `write` returns (a transport copies what it cannot send at once)."""
    if type(data) is bytes:
        return data
    if isinstance(data, memoryview) and isinstance(data.obj, bytes):
        return data
    return bytes(data)
