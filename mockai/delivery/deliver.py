"""Write an answer to the socket, applying timing and transport faults.

The only stage that sleeps or touches the connection. Timing follows an absolute schedule anchored
at the request's arrival: headers at `arrived + latency`, chunk i at `headers + ttft + sum of the
gaps before it` (with seeded jitter). Sleeping until a deadline rather than for an amount means
that rendering time, scheduling delays and slow writes never accumulate over a long stream, which
keeps timing accurate under load.

Faults (mockai.delivery.faults) are executed here, counting stream frames from 1 and never
counting the `tail` frames that complete a stream (finish chunk, usage chunk, `[DONE]`,
`response.completed`), SSE comments (`: keep-alive`) nor a profile's preamble (Azure's filter
frame):
- `reset` / `empty_response`: the connection is dropped before a byte is sent (RST / FIN);
- `hang`: nothing is sent, ever: the connection is held until the client gives up;
- `truncate_after N`: N frames, then a clean end of body without the tail;
- `disconnect_after N`: N frames, then the connection is dropped mid-body;
- `error_event_after N`: N frames, then the endpoint's in-band error event, then a clean end;
- `stall_after N`: N frames, then silence with the socket open;
- `malformed_chunk N` / `duplicate_chunk N` / `split_chunk N`: frame N is cut into invalid JSON,
  sent twice, or written in two halves with a pause between them.
On JSON answers `disconnect_after` and `stall_after` break the body halfway (headers sent, the
body never completes); relays from an upstream take latency and the connection faults.

Everything that waits goes through a `Delivery`: its clock is the seam tests replace so that
they never really sleep, a client leaving ends any wait (latency, pacing, a hold) within 100 ms,
and its shutdown hook ends held connections when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, overload

from aiohttp import HttpVersion11, web
from multidict import CIMultiDict

from mockai.delivery.faults import Faults
from mockai.delivery.outbox import hold_writes
from mockai.delivery.timing import StreamTiming
from mockai.errors import RelayBrokeOff
from mockai.pipeline.reply import Timing
from mockai.wire import errors
from mockai.wire.outgoing import Body, EventStream, Outgoing, Relay

log = logging.getLogger("mockai")

# Seconds a stall or a hang lasts at most, if the client never gives up: well past the SDKs'
# default timeouts (600 s in openai-python and openai-node), so that a client with its default
# settings sees its own timeout, never the connection closed at the same moment (at 600 s the
# two raced: `APIConnectionError` instead of the documented `APITimeoutError`).
MAX_HOLD = 3600.0
SPLIT_PAUSE = 0.05  # seconds between the two halves of a `split_chunk` frame
_POLL = 0.1  # how often a held connection checks whether the client went away


class Clock(Protocol):
    """Time as delivery sees it; replace it to test timing without waiting."""

    def now(self) -> float:
        """Monotonic seconds, on the same clock as the journal's `arrived`."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return at `deadline` (at once if it has passed)."""
        ...


class MonotonicClock:
    """The real clock: `time.monotonic()`, which is also what asyncio's loop runs on."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class Delivery:
    """What delivering needs beyond one request: a clock, and the server's stop signal.

    `hold` keeps a connection open and silent (stalls, hangs) until the client leaves, the server
    stops, or `max_hold` seconds pass; `shutdown` (an aiohttp `on_shutdown` hook) ends every hold
    at once, so stopping a server with stalled streams is immediate.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        max_hold: float = MAX_HOLD,
        split_pause: float = SPLIT_PAUSE,
    ) -> None:
        self.clock: Clock = clock or MonotonicClock()
        self.max_hold = max_hold
        self.split_pause = split_pause
        self._stopping = False
        self._holds: set[asyncio.Future[None]] = set()
        self._turns: deque[asyncio.Future[None]] = deque()
        self._granting = False

    async def hold(self, request: web.BaseRequest) -> None:
        """Wait, sending nothing, until the client disconnects, the server stops, or time is up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_hold
        wake: asyncio.Future[None] = loop.create_future()
        self._holds.add(wake)
        try:
            while not self._stopping and _connected(request):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                await asyncio.wait((wake,), timeout=min(remaining, _POLL))
        finally:
            self._holds.discard(wake)

    async def wait_until(self, request: web.BaseRequest, deadline: float) -> bool:
        """Sleep until `deadline` on the clock; False as soon as the client leaves first.

        A wait of up to _POLL only sleeps (a write after it finds a client gone). A longer one
        (latency, a stream paced in seconds or minutes) races the clock against the connection,
        checked every _POLL as `hold` checks it: its task, with the answer it holds, and the
        `in_flight` and `active_streams` it counts in, are let go when the client leaves, not
        when the next part is due (up to a day later). No task is made for it on the real
        clock, nor for the short gaps of a fast stream.
        """
        clock = self.clock
        if deadline - clock.now() <= _POLL:
            await clock.sleep_until(deadline)
            return True
        if type(clock) is MonotonicClock:
            # The real clock: slices of _POLL in this task, the client checked between them,
            # the last slice ending at the deadline itself, as one sleep would. No other task
            # to wake at the deadline: a paced part goes out as promptly as before (200 streams'
            # first chunks, due at once, measured a few ms later when each had its own task).
            while deadline - time.monotonic() > _POLL:
                await asyncio.sleep(_POLL)
                if not _connected(request):
                    return False
            await clock.sleep_until(deadline)
            return True
        # (another clock, a test's: raced in a task of its own, as it may not sleep at all)
        sleep = asyncio.ensure_future(clock.sleep_until(deadline))
        try:
            while not sleep.done():
                if not _connected(request):
                    return False
                await asyncio.wait((sleep,), timeout=_POLL)
            sleep.result()  # (a clock's own error, if it had one)
            return True
        finally:
            sleep.cancel()

    async def take_turn(self) -> None:
        """Wait for this request's turn to do its work: one request per event-loop iteration.

        Requests are stamped on arrival and their timing is scheduled from that stamp. Under a
        burst, a request's work (rendering, say) runs between two polls of the sockets; taking
        turns keeps that to one request's work, so that the next arrivals are seen and stamped
        within a fraction of a millisecond instead of after the whole burst was processed.
        """
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        self._turns.append(turn)
        if not self._granting:
            self._granting = True
            loop.call_soon(self._grant)
        await turn

    def _grant(self) -> None:
        while self._turns:
            turn = self._turns.popleft()
            if not turn.done():  # a cancelled waiter lost its turn
                turn.set_result(None)
                # The next turn comes in the next iteration, after the sockets were polled.
                asyncio.get_running_loop().call_soon(self._grant)
                return
        self._granting = False

    async def startup(self, app: web.Application | None = None) -> None:
        """aiohttp `on_startup` hook: accept holds again (a server can be restarted)."""
        self._stopping = False

    async def shutdown(self, app: web.Application | None = None) -> None:
        """aiohttp `on_shutdown` hook: end every hold now."""
        self._stopping = True
        for wake in list(self._holds):
            if not wake.done():
                wake.set_result(None)


def _connected(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


def _left(request: web.BaseRequest) -> None:
    """Say that the client left while its answer waited: the one debug line a client leaving
    gets (`deliver`), as when a write finds it gone."""
    log.debug(
        "%s %s: the client disconnected while its answer waited", request.method, request.path
    )


def keeps_schedule(timing: Timing, outgoing: Outgoing | None) -> bool:
    """Whether delivering `outgoing` keeps a schedule (latency, stream pacing, recorded pace)."""
    if timing.latency is not None or timing.paced:
        return True
    return isinstance(outgoing, EventStream) and outgoing.offsets is not None


def processing_ms(arrived: float) -> str:
    """The `openai-processing-ms` value: time since the request arrived."""
    return str(max(int((time.monotonic() - arrived) * 1000), 0))


_UNUSED = random.Random(0)  # never drawn from: no latency, no pacing


async def deliver(
    request: web.Request,
    outgoing: Outgoing,
    headers: dict[str, str],
    *,
    arrived: float,
    timing: Timing,
    faults: Faults,
    delivery: Delivery | None = None,
    sending: Callable[[], None] | None = None,
) -> web.StreamResponse:
    """Send `outgoing` for `request` with the given headers, timing and faults; `sending` is
    called once the answer's latency is over, as its headers go out (not for an answer that
    sends nothing).

    A client that goes away meanwhile is ordinary (load tests drop streams, users press Ctrl-C):
    one debug line, not a traceback; a connection error while the client is still there is not
    the client's doing, and propagates.
    """
    try:
        return await _deliver(
            request, outgoing, headers, arrived, timing, faults, delivery, sending
        )
    except ConnectionError as error:
        if _connected(request):
            raise
        log.debug(
            "%s %s: the client disconnected (%s: %s)",
            request.method,
            request.path,
            type(error).__name__,
            error,
        )
        # aiohttp writes whatever the handler returns; on the closed transport that write fails
        # quietly (it counts as a premature disconnect).
        return web.Response(status=outgoing.status)


async def _deliver(
    request: web.Request,
    outgoing: Outgoing,
    headers: dict[str, str],
    arrived: float,
    timing: Timing,
    faults: Faults,
    delivery: Delivery | None,
    sending: Callable[[], None] | None,
) -> web.StreamResponse:
    delivery = delivery or Delivery()
    # An answer keeping a schedule, or relaying an upstream's as it comes, writes each part when
    # it is due; any other's writes wait for the end of the loop iteration, sent with other
    # connections' (delivery/outbox.py).
    timed = keeps_schedule(timing, outgoing) or isinstance(outgoing, Relay)
    hold_writes(request.transport, not timed)
    # Seeding a generator costs microseconds: only timing that samples one gets it.
    rng = random.Random(timing.seed) if timing.latency is not None or timing.stream else _UNUSED
    start = arrived + (timing.latency.sample(rng) if timing.latency is not None else 0.0)
    if not await delivery.wait_until(request, start):
        # Gone before the headers: nothing is sent, as for a `hang` whose client left.
        _left(request)
        return await _no_response(request, outgoing, faults, delivery)
    if faults.no_response:
        return await _no_response(request, outgoing, faults, delivery)
    if sending is not None:
        sending()
    headers["openai-processing-ms"] = processing_ms(arrived)
    if request.method == "HEAD":
        return await _head_only(request, outgoing, headers)
    if isinstance(outgoing, Body):
        if faults.disconnect_after is not None or faults.stall_after is not None:
            return await _broken_body(request, outgoing, headers, faults, delivery)
        if writes_in_slices(outgoing):
            return await _large_body(request, outgoing, headers)
        return _body(outgoing, headers)
    if isinstance(outgoing, Relay):
        return await _relay(request, outgoing, headers)
    return await _stream(request, outgoing, headers, timing, faults, rng, start, delivery)


async def _head_only(
    request: web.Request, outgoing: Outgoing, headers: Mapping[str, str]
) -> web.StreamResponse:
    """A HEAD request's answer: the GET's status and headers, without its body. aiohttp leaves
    the body out of an answer it writes for HEAD, but a stream's, a relay's or a sliced body's
    own writes would go out as they are, after the head, and garble the connection."""
    if isinstance(outgoing, Body):
        return _body(outgoing, headers)  # (its Content-Length is the GET's body's)
    if isinstance(outgoing, Relay):
        chunks = aiter(outgoing.chunks)
        try:
            # Read whole (a recording keeps the whole answer). (`anext`, as `_relay` reads: an
            # `async for` compiled by mypyc let the upstream's error out instead of this one.)
            while await anext(chunks, None) is not None:
                pass
        except RelayBrokeOff:  # (said by the source) dropped, as a GET's connection would be
            _drop(request, reset=False)
        finally:
            if outgoing.finish is not None:
                await outgoing.finish()
    return _streamed_head(outgoing, headers)


def _answer_headers(headers: Mapping[str, str], own: Mapping[str, str]) -> Mapping[str, str]:
    """`headers` with the answer's own over them. An answer that repeats a header (a replayed
    recording's `vary: [Origin, Accept-Encoding]`, a CIMultiDict) keeps every value of it,
    which a dict merge would cut to one."""
    if not isinstance(own, CIMultiDict):
        return {**headers, **own}
    merged = CIMultiDict(headers)
    for name in own:  # (case-insensitive: the answer's own replace mockai's)
        merged.popall(name, None)
    merged.extend(own)
    return merged


def _streamed_head(outgoing: EventStream | Relay, headers: Mapping[str, str]) -> web.StreamResponse:
    """The head of an answer written as it goes (a stream, a relay), not yet prepared."""
    response = web.StreamResponse(
        status=outgoing.status, headers=_answer_headers(headers, outgoing.headers)
    )
    response.headers["Content-Type"] = outgoing.content_type
    if isinstance(outgoing, EventStream):
        response.headers["Cache-Control"] = "no-cache"
    return response


def _closed_after(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """End the connection with the body when the client speaks HTTP/1.0, which has no chunked
    encoding: a body of unknown length is then delimited only by the close (RFC 9112 section
    6.3). aiohttp omits the length but keeps a keep-alive connection open (it drops that
    decision on a local), so such a client waited for the end of the stream until it timed out.
    """
    if request.version < HttpVersion11:
        response.force_close()
        response.headers["Connection"] = "close"  # (the client asked to keep it: say no)


# --- connection faults ------------------------------------------------------------------------


async def _no_response(
    request: web.Request, outgoing: Outgoing, faults: Faults, delivery: Delivery
) -> web.StreamResponse:
    if isinstance(outgoing, Relay) and outgoing.finish is not None:
        await outgoing.finish()  # nothing will be relayed: let the upstream go
    if faults.hang:
        await delivery.hold(request)
    _drop(request, reset=faults.reset)
    # aiohttp writes whatever the handler returns; on the dropped transport that write fails
    # quietly (a premature-disconnect, which it ignores), so the client receives nothing.
    return web.Response(status=204)


def _drop(request: web.BaseRequest, *, reset: bool) -> None:
    """Close the connection: with a TCP RST (`reset`), or a FIN after flushing what was written."""
    transport = request.transport
    if transport is None:
        return
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                # Linger 0: closing sends RST instead of FIN, as a crashed peer or a proxy does.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        # close() flushes buffered bytes first; the chunked body's terminator is never written.
        transport.close()


async def _broken_body(
    request: web.Request,
    outgoing: Body,
    headers: Mapping[str, str],
    faults: Faults,
    delivery: Delivery,
) -> web.StreamResponse:
    """Headers and half the body of a JSON answer, then a dropped or stalled connection."""
    response = web.StreamResponse(
        status=outgoing.status, headers=_answer_headers(headers, outgoing.headers)
    )
    _typed(response, outgoing.content_type)
    response.content_length = len(outgoing.body)  # the client knows the body is incomplete
    await response.prepare(request)
    await response.write(outgoing.body[: len(outgoing.body) // 2])
    if _first_cut(faults, 1) == "stall":
        await delivery.hold(request)
    _drop(request, reset=False)
    return response


# --- whole answers ----------------------------------------------------------------------------


async def _relay(
    request: web.Request, outgoing: Relay, headers: Mapping[str, str]
) -> web.StreamResponse:
    """Pass an upstream answer on as it arrives: the client sees the upstream's real timing.

    The upstream's headers win over mockai's own (its request id, its real rate limits), as for
    the upstream's error answers and as the journal shows them.
    """
    response = _streamed_head(outgoing, headers)
    _closed_after(request, response)
    chunks = aiter(outgoing.chunks)
    try:
        await response.prepare(request)
        while True:  # (as long as the upstream's answer: it ends, or breaks off)
            try:
                chunk = await anext(chunks, None)
            except RelayBrokeOff:
                # Documented: the client's connection breaks off as the upstream's did (a FIN
                # without the body's end). Said once, by the source; a write to a client that
                # left is not caught here (`deliver` tells that apart).
                _drop(request, reset=False)
                return response
            if chunk is None:
                break
            await response.write(chunk)
        await response.write_eof()
    finally:
        if outgoing.finish is not None:
            await outgoing.finish()
    return response


# A body this large (a file's content, thousands of embeddings) is written a slice at a time, each
# once the one before has drained: whole, aiohttp joined it to its head into a new bytes object
# (on Python before 3.12.9), so sending a 60 MB file allocated 60 MB more; and a transport may
# copy what the socket did not take at once (asyncio's does).
LARGE_BODY = 1 << 20
_SLICE = 1 << 20


def writes_in_slices(outgoing: Outgoing) -> bool:
    """Whether delivering `outgoing` writes it (a large body), rather than only making the
    response that aiohttp writes once the handler returns."""
    return isinstance(outgoing, Body) and len(outgoing.body) >= LARGE_BODY


async def _large_body(
    request: web.Request, outgoing: Body, headers: Mapping[str, str]
) -> web.StreamResponse:
    response = web.StreamResponse(
        status=outgoing.status, headers=_answer_headers(headers, outgoing.headers)
    )
    _typed(response, outgoing.content_type)
    response.content_length = len(outgoing.body)
    await response.prepare(request)
    body = memoryview(outgoing.body)
    for start in range(0, len(body), _SLICE):
        await response.write(body[start : start + _SLICE])  # (waits for the socket to drain)
    await response.write_eof()
    return response


def _body(outgoing: Body, headers: Mapping[str, str]) -> web.Response:
    response = web.Response(
        status=outgoing.status,
        body=outgoing.body,
        headers=_answer_headers(headers, outgoing.headers),
    )
    _typed(response, outgoing.content_type)
    return response


def _typed(response: web.StreamResponse, content_type: str) -> None:
    """Give `response` the answer's Content-Type whole, its parameters too: a transcript's
    `text/plain; charset=utf-8` (OpenAI's header for `text` and `srt`), a replayed cassette's
    recorded type. (aiohttp's `content_type` setter keeps only the parameters already in the
    headers.) Where the headers already name one (a scripted error's), its parameters are kept
    under the answer's media type."""
    if "Content-Type" in response.headers:  # (case-insensitive)
        response.content_type = content_type.split(";")[0]
    else:
        response.headers["Content-Type"] = content_type


# --- streams ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Write:
    """One write of the stream: the frame it belongs to (for its due time) and its bytes."""

    frame: int  # index into EventStream.frames
    data: bytes
    split: bool = False


_CUTS = (
    # (fault, how the stream ends); on a tie the first listed wins
    ("error_event_after", "error"),
    ("disconnect_after", "disconnect"),
    ("stall_after", "stall"),
    ("truncate_after", "truncate"),
)


def _first_cut(faults: Faults, body: int) -> str | None:
    """How the stream ends early (the earliest cut wins), or None for a complete stream."""
    cut = _cut(faults, body)
    return cut[1] if cut is not None else None


def _cut(faults: Faults, body: int) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for name, how in _CUTS:
        count = getattr(faults, name)
        if count is not None and (best is None or min(count, body) < best[0]):
            best = (min(count, body), how)
    return best


def plan_writes(stream: EventStream, faults: Faults) -> tuple[list[_Write], str | None]:
    """What to write, frame by frame, with the stream faults applied; and how the stream ends.

    Frame numbers in faults count from 1 and are capped at the last frame before the tail, so a
    fault always lands on the answer itself and the stream never completes when it should not.
    SSE comments (OpenRouter's `: OPENROUTER PROCESSING`, DeepSeek's `: keep-alive`) are no
    chunk a client sees, and a profile's preamble (Azure's filter frame) no chunk of the answer:
    they are not numbered, so a fault lands on the same chunk as on /v1.
    """
    frames = stream.frames
    numbered = [
        index
        for index, frame in enumerate(frames)
        if index >= stream.preamble and not frame.startswith(b":")
    ]
    end = max(len(frames) - stream.tail, 0)
    body = sum(1 for index in numbered if index < end)
    cut = _cut(faults, body)
    count = len(frames)
    if cut is not None:  # up to the cut's chunk, without the comments that would follow it
        count = numbered[cut[0] - 1] + 1 if cut[0] else min(stream.preamble, count)
    last = max(body, 1)
    malformed = _frame_of(_capped(faults.malformed_chunk, last), numbered)
    duplicate = _frame_of(_capped(faults.duplicate_chunk, last), numbered)
    split = _frame_of(_capped(faults.split_chunk, last), numbered)
    writes = []
    for index in range(count):
        data = frames[index]
        if index == malformed:
            data = malformed_frame(data)
        if index == duplicate:
            data += data
        writes.append(_Write(index, data, split=index == split))
    return writes, cut[1] if cut is not None else None


@overload
def as_delivered(answer: Body | EventStream, faults: Faults) -> Body | EventStream: ...
@overload
def as_delivered(answer: Outgoing, faults: Faults) -> Outgoing: ...
def as_delivered(answer: Outgoing, faults: Faults) -> Outgoing:
    """`answer` as the client gets it, for the stores to keep: a stream a fault cuts
    (`error_event_after`, `truncate_after`, `disconnect_after`, `stall_after`, chaos's
    `disconnect`) is its frames up to the cut (`plan_writes`, what delivery writes), then the
    in-band error event if the cut sends one. Its finish, usage or terminal event is past any
    cut, as the client's is: a kept chat completion has neither, a kept response has failed."""
    if not faults or not isinstance(answer, EventStream):
        return answer
    writes, ending = plan_writes(answer, faults)
    if ending is None:
        return answer  # complete (a duplicated, split or malformed event cuts nothing)
    sent = len(writes)
    frames = tuple(answer.frames[:sent])
    if ending == "error":
        error_frame = answer.error_frame or errors.stream_error_frame  # (as delivery picks it)
        frames = (*frames, error_frame(sent))
    return EventStream(
        frames=frames,
        tail=1 if ending == "error" else 0,  # the error event ends it, as a terminal event would
        status=answer.status,
        content_type=answer.content_type,
        headers=answer.headers,
        error_frame=answer.error_frame,
        preamble=answer.preamble,
    )


def _frame_of(number: int | None, numbered: Sequence[int]) -> int | None:
    """The index in the frames of chunk `number` (from 1), or None."""
    if number is None or not 0 < number <= len(numbered):
        return None
    return numbered[number - 1]


def _capped(number: int | None, last: int) -> int | None:
    return None if number is None else min(number, last)


def malformed_frame(frame: bytes) -> bytes:
    """The frame with its JSON cut in half: `data: {"id":"chatcmpl-12` (still a complete event)."""
    head, marker, payload = frame.rpartition(b"data: ")
    if not marker:
        return b'data: {"id":\n\n'
    payload = payload.rstrip(b"\r\n")
    return head + marker + payload[: max(len(payload) // 2, 1)] + b"\n\n"


async def _stream(
    request: web.Request,
    outgoing: EventStream,
    headers: Mapping[str, str],
    timing: Timing,
    faults: Faults,
    rng: random.Random,
    start: float,
    delivery: Delivery,
) -> web.StreamResponse:
    response = _streamed_head(outgoing, headers)
    _closed_after(request, response)
    await response.prepare(request)
    paced = timing.paced or outgoing.offsets is not None
    if not paced and not faults:
        # Nothing to pace: one write is far cheaper than one per chunk, and the bytes are equal.
        frames = outgoing.frames
        if sum(map(len, frames)) <= _STREAM_SLICE:  # (a few hundred events: a few KB)
            await response.write_eof(b"".join(frames))
        else:
            await _sliced(response, frames)
            await response.write_eof()
        return response
    writes, ending = plan_writes(outgoing, faults)
    if paced:
        due = schedule(len(outgoing.frames), start, timing.stream, outgoing.offsets, rng)
        if not await _paced(request, response, writes, due, delivery):
            _left(request)
            _drop(request, reset=False)  # (closing already: the stream never completes)
            return response
    else:
        await _unpaced(response, writes, delivery)
    await _end(request, response, outgoing, ending, len(writes), delivery)
    return response


def schedule(
    count: int,
    start: float,
    pacing: StreamTiming | None,
    offsets: Sequence[float] | None,
    rng: random.Random,
) -> list[float]:
    """The absolute time each frame is due: `start + ttft`, then one gap per frame.

    A replayed stream keeps its recorded `offsets`, unless the request asked a pace of its own
    (its headers come first): then that pace replaces the recorded one whole, as it replaces a
    rule's, and a default pace (`--latency`) adds nothing to it.
    """
    pacing = pacing or StreamTiming()
    if offsets is not None and not pacing.requested:
        return [start + offsets[i] for i in range(count)]
    ttft = pacing.ttft.sample(rng) if pacing.ttft is not None else 0.0
    first = start + ttft
    due = [first] * count
    for index in range(1, count):
        gap = pacing.chunk_delay.sample(rng) if pacing.chunk_delay is not None else 0.0
        if pacing.jitter:
            gap *= 1.0 + pacing.jitter * (2.0 * rng.random() - 1.0)
        due[index] = due[index - 1] + max(gap, 0.0)
    return due


async def _paced(
    request: web.Request,
    response: web.StreamResponse,
    writes: list[_Write],
    due: list[float],
    delivery: Delivery,
) -> bool:
    """Write each part when it is due; False if the client left while a part waited."""
    for write in writes:
        if not await delivery.wait_until(request, due[write.frame]):
            return False
        await _write(response, write, delivery)
    return True


# An unpaced stream is written in slices of about this size, each once the one before has
# drained: written whole, a client that stopped reading held ~3x the stream (48 such clients of
# a 9.7 MB stream: 1,463 MiB); now at most about a slice beyond the socket's buffers.
_STREAM_SLICE = 1 << 16


async def _sliced(response: web.StreamResponse, frames: Sequence[bytes]) -> None:
    """`frames` joined into writes of about _STREAM_SLICE bytes (`write` waits for the socket
    to drain past aiohttp's 64 KiB)."""
    pending: list[bytes] = []
    size = 0
    for frame in frames:
        pending.append(frame)
        size += len(frame)
        if size >= _STREAM_SLICE:
            await response.write(b"".join(pending))
            pending, size = [], 0
    if pending:
        await response.write(b"".join(pending))


async def _unpaced(response: web.StreamResponse, writes: list[_Write], delivery: Delivery) -> None:
    pending: list[bytes] = []
    size = 0
    for write in writes:
        if write.split:
            if pending:
                await response.write(b"".join(pending))
                pending, size = [], 0
            await _write(response, write, delivery)
        else:
            pending.append(write.data)
            size += len(write.data)
            if size >= _STREAM_SLICE:  # (bounded, as `_sliced`)
                await response.write(b"".join(pending))
                pending, size = [], 0
    if pending:
        await response.write(b"".join(pending))


async def _write(response: web.StreamResponse, write: _Write, delivery: Delivery) -> None:
    if not write.split:
        await response.write(write.data)
        return
    middle = len(write.data) // 2
    await response.write(write.data[:middle])
    await delivery.clock.sleep_until(delivery.clock.now() + delivery.split_pause)
    await response.write(write.data[middle:])


async def _end(
    request: web.Request,
    response: web.StreamResponse,
    outgoing: EventStream,
    ending: str | None,
    sent: int,
    delivery: Delivery,
) -> None:
    if ending == "error":
        error_frame = outgoing.error_frame or errors.stream_error_frame
        await response.write_eof(error_frame(sent))
    elif ending == "disconnect":
        _drop(request, reset=False)
    elif ending == "stall":
        await delivery.hold(request)
        _drop(request, reset=False)  # the stream never completes, whatever ended the stall
    else:  # complete, or truncated: a clean end of body
        await response.write_eof()
