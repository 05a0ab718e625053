"""Listening sockets whose requests are stamped the moment their bytes arrive.

Latency and time-to-first-token are scheduled from a request's arrival. The handler learns of a
request late under a burst: the event loop first runs every connection's parser, then every
handler, so the 200th of 200 simultaneous requests reaches its handler ~10 ms after its bytes
came in (measured with a bare aiohttp app as well). This site wraps aiohttp's protocol to note
when each connection's current request *started arriving*; the pipeline takes that stamp once the
body is read, and schedules from it.

On mockai's own loops (`StampedLoop`) the stamp is when the loop last woke up from `select()`:
every connection that select reported readable had its bytes by then, so the 200th request of a
burst is stamped as early as the 1st instead of after the parsers that run before it. Measured
with `bench/timing_fidelity.py` (200 simultaneous streams, 4 alternating runs each), TTFT p99
error went from 11-20 ms to 10-11 ms; the chunk gaps' p99 rose from ~3 to ~8 ms (still under the
10 ms target), since streams stamped alike are due alike and their writes queue up. On any other
loop (uvloop, whose callbacks are cheap enough that the parsers before a connection's cost little)
the stamp is the current time.

On every loop, the bytes reach aiohttp through an `Intake` (`server/intake.py`): a few reads per
loop iteration, so that an iteration never runs a whole burst's work and the sockets are polled,
and arrivals stamped, about every millisecond. On uvloop that took the stamps of 200 simultaneous
streams from 3.3-4.8 ms after they were sent (p99) to 2.0-2.2 ms.

On the way out, aiohttp writes to a `HeldTransport` (`delivery/outbox.py`): what the handlers
write in one iteration goes to the sockets together at its end, so a local client is woken once
per batch of answers rather than once per answer.

aiohttp's protocol itself is its subclass in `server/unreadable.py`, which answers a request
aiohttp cannot parse in the API's error shape instead of a text page and a logged traceback.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

from aiohttp import web

from mockai.delivery.outbox import HeldTransport, Outbox
from mockai.errors import ConfigError
from mockai.server import lane
from mockai.server.intake import Intake
from mockai.server.unreadable import handler_factory

T = TypeVar("T")


class WakeupSelector(selectors.DefaultSelector):
    """The platform's default selector, remembering when its last `select()` returned."""

    def __init__(self) -> None:
        super().__init__()
        self.woke = time.monotonic()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(timeout)
        self.woke = time.monotonic()
        return ready


class StampedLoop(asyncio.SelectorEventLoop):
    """A selector event loop that says when it last woke up to handle I/O."""

    def __init__(self) -> None:
        self._wakeups = WakeupSelector()
        super().__init__(self._wakeups)

    def woke(self) -> float:
        """When the loop last came back from waiting for I/O (the monotonic clock)."""
        return self._wakeups.woke


EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def loop_factory(choice: str = "auto") -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes mockai's event loops: uvloop when installed (`auto`) or asked for, else a
    StampedLoop. uvloop answers chat requests ~10% cheaper and wakes paced streams for less."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigError(
                    "event_loop: uvloop is not installed (pip install uvloop, or "
                    "pip install 'mockai-server[speed]')"
                ) from None
        else:
            return uvloop.new_event_loop
    return StampedLoop


def run_stamped(coro: Coroutine[Any, Any, T], event_loop: str = "auto") -> T:
    """Run `coro` to completion on a new loop of the `event_loop` kind (see `loop_factory`)."""
    try:
        factory = loop_factory(event_loop)
    except BaseException:
        # Never to be awaited: closed now, or Python prints a "never awaited" warning (not a
        # JSON line, where `--log-format json` promises every line is one).
        coro.close()
        raise
    if hasattr(asyncio, "Runner"):
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(coro)
    loop = factory()  # pragma: no cover (3.10, which has no Runner)
    try:  # pragma: no cover
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:  # pragma: no cover
        asyncio.set_event_loop(None)
        loop.close()


def arrival_clock() -> Callable[[], float]:
    """What stamps arrivals on the running loop: its wake-up time, or the current time."""
    loop = asyncio.get_running_loop()
    return loop.woke if isinstance(loop, StampedLoop) else time.monotonic


class Arrivals:
    """When the request now arriving on each connection sent its first bytes."""

    def __init__(self) -> None:
        self._times: dict[asyncio.BaseTransport, float] = {}

    def stamp(self, transport: asyncio.BaseTransport, now: float) -> None:
        """Note the first bytes of the connection's next request (later bytes change nothing)."""
        if transport not in self._times:
            self._times[transport] = now

    def take(self, transport: Any) -> float | None:
        """The stamp of the request just read on `transport` (None if there is none)."""
        return self._times.pop(transport, None)

    def forget(self, transport: asyncio.BaseTransport) -> None:
        """Drop a closed connection's stamp."""
        self._times.pop(transport, None)


class _StampingProtocol(asyncio.Protocol):
    """aiohttp's protocol for one connection, with arrivals stamped on the way in, its bytes
    handed in through the server's `Intake` (at most a few reads' work per loop iteration), and
    its writes held in the server's `Outbox` until the loop iteration ends.

    aiohttp, and the pipeline through `request.transport`, see the `HeldTransport`: arrivals are
    stamped under it too."""

    def __init__(
        self,
        inner: asyncio.Protocol,
        arrivals: Arrivals,
        clock: Callable[[], float],
        intake: Intake,
        outbox: Outbox,
    ) -> None:
        self._inner = inner
        self._arrivals = arrivals
        self._clock = clock
        self._intake = intake
        self._outbox = outbox
        self._transport: HeldTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (a stream socket's: uvloop's transports are not asyncio.Transport subclasses)
        held = HeldTransport(cast(asyncio.Transport, transport), self._outbox)
        self._transport = held
        self._inner.connection_made(held)

    def data_received(self, data: bytes) -> None:
        if self._transport is not None:
            self._arrivals.stamp(self._transport, self._clock())
            self._transport.expect()
        self._intake.offer(self._inner, data)

    def eof_received(self) -> bool | None:
        self._intake.flush(self._inner)  # the request sent before the half-close comes first
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._intake.flush(self._inner)
        if self._transport is not None:
            self._arrivals.forget(self._transport)
            self._transport.forget()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class StampingSite(web.SockSite):
    """A `web.SockSite` whose connections stamp request arrivals into `arrivals`."""

    __slots__ = ("_arrivals", "outbox")

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, arrivals: Arrivals) -> None:
        super().__init__(runner, sock)
        self._arrivals = arrivals
        self.outbox: Outbox | None = None  # its connections' writes, once started

    async def start(self) -> None:
        """Listen, as `SockSite.start` does, with each connection's protocol wrapped."""
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None, "the runner is set up"
        arrivals, clock = self._arrivals, arrival_clock()
        loop = asyncio.get_running_loop()
        intake, outbox = Intake(loop.call_soon), Outbox(loop.call_soon)
        self.outbox = outbox
        # (whole requests answered in the lane; unparsable ones with the API's 400)
        handler = handler_factory(server, loop, lane.protocol_class())
        self._server = await loop.create_server(
            lambda: _StampingProtocol(handler(), arrivals, clock, intake, outbox),
            sock=self._sock,
            backlog=self._backlog,
        )


def authority(host: str, port: int) -> str:
    """`host:port` as a URL writes it: an IPv6 address in brackets (`[::1]:8000`), since its own
    colons would otherwise run into the port's (`http://:::8000` is no URL)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def listen(host: str, port: int, *, reuse_port: bool = False, backlog: int = 1024) -> socket.socket:
    """A bound, listening, non-blocking socket; OSError if the address is taken.

    With `reuse_port` the port is shared with any socket of the same user that asks to share
    it too: that is `listen_group`'s business, which checks first that the port is free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def listen_group(host: str, port: int, count: int, *, backlog: int = 1024) -> list[socket.socket]:
    """`count` listening sockets on one port, one for each process of `mockai serve --workers`
    (the kernel spreads new connections over them: SO_REUSEPORT); OSError if the address is
    taken, by another `mockai serve --workers` too.

    SO_REUSEPORT lets any later socket of the same user that sets it join the group and take its
    share of the connections: a second `mockai serve --workers 2` on the port started without a
    word and answered every other request. So the port is first bound without it, which fails
    as a single server's socket does if anything listens there (and picks the port when 0 is
    asked: every socket of the group then binds that one). All the sockets are bound here, in
    the parent, before a worker is forked: none can fail to bind later, and the time between
    the check and the group's first socket is as short as it can be."""
    if count <= 1:
        return [listen(host, port, backlog=backlog)]
    port = _free_port(host, port)
    group: list[socket.socket] = []
    try:
        for _ in range(count):
            group.append(listen(host, port, reuse_port=True, backlog=backlog))
    except OSError:
        for sock in group:
            sock.close()
        raise
    return group


def _free_port(host: str, port: int) -> int:
    """`port` (or a free one for 0) once a socket that does not share binds it; OSError if it
    is taken. SO_REUSEADDR as `listen`'s socket has it: what only lingers there (connections of
    a server just stopped, in TIME_WAIT) is no conflict, a listening socket is."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        return int(probe.getsockname()[1])
