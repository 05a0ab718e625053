"""The lane: a whole request on an idle connection, answered without aiohttp's queue.

aiohttp hands each request of a connection to the connection's task through a queue and a
future, wakes that task, makes a task for the handler, and then writes a `Response` through
`prepare`, its header hooks and `write_eof`: for a chat request a good part of the 30-50 us of
CPU aiohttp's web layer takes (docs/performance.md, "What limits the rest").

A request takes the lane when its connection is idle (every request it handed aiohttp has been
answered, none is queued) and one read brought all of it: head and body, HTTP/1.1, kept alive,
no `Expect`, no upgrade, not HEAD. Its handler (aiohttp's application: the router,
the routes, everything mockai does) then runs in a task made at once, as aiohttp would make it
(its own context, timeouts and cancellation as in any handler), without the queue and the
connection task's wake-up. The connection's next bytes are held until the answer is out, so
answers keep their order. Everything else (pipelined requests, a body in several reads, a
connection aiohttp is busy with, an unparsable request) goes through aiohttp unchanged.

A plain `web.Response` with a body of bytes is written here, head and body in one write: the
headers aiohttp adds (`Content-Length`, `Date`, `Server`) in its order, serialised by aiohttp's
own header writer (which refuses a line break, as it would have). Any other answer (a stream, a
file, an answer that closes the connection) is prepared and ended by aiohttp, as before.

Measured: `bench/instructions.py --cases chat` 540,722 -> 490,172 instructions a request; under
wrk (server on one core), 7,280 -> 8,638 chat requests a second (medians of five runs each, old
and new code taken in turn). docs/design.md, "The lane", says more.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import hdrs, web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_writer import StreamWriter
from aiohttp.http_writer import _serialize_headers as serialize_headers
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler as AiohttpHandler
from aiohttp.web_protocol import _ErrInfo

from mockai.server.unreadable import RequestHandler

# Statuses whose answers have no body (and so take aiohttp's way, which knows their rules).
_BODILESS = frozenset({204, 304})
# Bytes held while a request of the lane waits, past which the connection stops reading (as
# aiohttp stops at its read buffer's size).
HELD_BYTES = 1 << 16


# What the lane reads and sets of aiohttp's protocol: private parts, checked once; an aiohttp
# without one of them gets mockai's protocol without the lane (`protocol_class`).
_AIOHTTP_PARTS = (
    "_close",
    "_current_request",
    "finish_response",
    "_force_close",
    "_handler_waiter",
    "_keepalive",
    "_keepalive_handle",
    "_keepalive_timeout",
    "_loop",
    "_manager",
    "_message_tail",
    "_messages",
    "_next_keepalive_close_time",
    "_parser",
    "_payload_parser",
    "_process_keepalive",
    "_request_count",
    "_request_factory",
    "_request_handler",
    "_request_in_progress",
    "_task_handler",
    "_upgraded",
    "_waiter",
)


def protocol_class() -> type[RequestHandler]:
    """The protocol for mockai's connections: with the lane, if this aiohttp has what it uses."""
    if all(hasattr(AiohttpHandler, part) for part in _AIOHTTP_PARTS):
        return LaneHandler
    return RequestHandler  # pragma: no cover (an aiohttp that changed)


class Tally:
    """A count kept in an instance (a count kept on a class would change the class at every
    request, and with it the interpreter's attribute caches for all its instances)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


# Requests the lane took in this process: what shows it is used (tests, benchmarks).
TAKEN = Tally()


class LaneHandler(RequestHandler):
    """aiohttp's protocol for one connection (with unparsable requests answered in the API's
    shape), answering whole requests on an idle connection itself."""

    __slots__ = (
        "_aiohttp_answered",
        "_lane_answered",
        "_lane_busy",
        "_lane_held",
        "_lane_held_bytes",
        "_lane_paused",
        "_lane_task",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lane_busy = False  # a request of the lane is being answered
        self._lane_held: list[bytes] = []  # what came in meanwhile, in order
        self._lane_held_bytes = 0
        self._lane_paused = False  # the lane stopped the connection's reading
        self._lane_task: asyncio.Task[None] | None = None  # (held: a task nothing holds may go)
        # Requests of this connection answered by the lane, and by aiohttp's task.
        self._lane_answered = 0
        self._aiohttp_answered = 0

    def data_received(self, data: bytes) -> None:
        if self._lane_busy:
            self._hold(data)
            return
        parser = self._parser
        if (
            # requests handed to aiohttp it has not answered yet (`_request_count` counts
            # them all, the lane's too): they come first
            self._request_count != self._lane_answered + self._aiohttp_answered
            or parser is None
            or self._messages
            or self._upgraded
            or self._payload_parser is not None
            or self._force_close
            or self._close
        ):
            super().data_received(data)
            return
        try:
            messages, upgraded, tail = parser.feed_data(data)
        except HttpProcessingError as exc:  # answered by aiohttp (server/unreadable.py), as
            # its own data_received would have it
            refused = _ErrInfo(status=400, exc=exc, message=exc.message)
            self._queue([(refused, EMPTY_PAYLOAD)], False, b"")
            return
        if len(messages) == 1 and not upgraded:
            message, payload = messages[0]
            if _whole_and_plain(message, payload):
                parser.message_consumed()
                self._request_count += 1
                self._lane_answered += 1  # (counted as taken: its answer is the lane's)
                self._take(message, payload)
                return
        self._queue(messages, upgraded, tail)

    def _queue(self, messages: Any, upgraded: bool, tail: bytes) -> None:
        """What `data_received` does with parsed messages: queued for aiohttp's task."""
        for message, payload in messages:
            self._request_count += 1
            self._messages.append((message, payload))
        waiter = self._waiter
        if messages and waiter is not None and not waiter.done():
            waiter.set_result(None)
        # (aiohttp 3.14 pauses a connection whose queue is full; older ones have no limit)
        most = getattr(self, "_max_msg_queue_size", None)
        if most is not None and not self._buffer_paused and len(self._messages) >= most:
            self._pause_reading_for_buffer()
        self._upgraded = upgraded
        if upgraded and tail:
            self._message_tail = tail

    def _hold(self, data: bytes) -> None:
        self._lane_held.append(data)
        self._lane_held_bytes += len(data)
        if self._lane_held_bytes >= HELD_BYTES and not self._lane_paused:
            transport = self.transport
            if transport is not None:
                transport.pause_reading()
                self._lane_paused = True

    def _take(self, message: Any, payload: Any) -> None:
        """Answer `message` in a task of its own (as aiohttp does: context variables, timeouts
        and cancellation work as in any handler), holding the connection's next bytes till
        the answer is out."""
        manager = self._manager
        factory = self._request_factory
        assert manager is not None and factory is not None  # (connected: the parser is set)
        manager.requests_count += 1
        TAKEN.count += 1
        writer = StreamWriter(self, self._loop)
        # (`request.task` is the connection's task, as aiohttp makes it)
        request = factory(message, payload, self, writer, self._task_handler)  # type: ignore[arg-type]
        self._lane_busy = True
        self._request_in_progress = True  # (a shutdown waits for it, as for aiohttp's)
        self._current_request = request
        self._lane_task = self._loop.create_task(self._answer(request))

    async def _answer(self, request: web.BaseRequest) -> None:
        """Run the handler, write its answer, and leave the connection ready for the next."""
        handler = self._request_handler
        assert handler is not None
        keep_alive = False  # (if the answer fails, the connection is closed)
        try:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = exc
            except Exception as exc:
                response = self.handle_error(request, 500, exc)
            request._finish()
            if self._write_whole(response):
                keep_alive = True  # (only a kept-alive answer to a kept-alive request is)
            else:
                await response.prepare(request)
                await response.write_eof()
                keep_alive = bool(response.keep_alive)
        except ConnectionError as exc:  # the client went away meanwhile
            self.log_debug("Ignored premature client disconnection: %r", exc)
        except Exception as exc:  # (writing the answer failed: logged as aiohttp logs it)
            self.log_exception("Unhandled exception", exc_info=exc)
        finally:  # (a cancellation too: the connection is then closed)
            self._current_request = None
            self._request_in_progress = False
            waiter = self._handler_waiter
            # A shutdown waits for this answer (unless it stopped waiting: it timed out, or it
            # cut this answer off itself, server/lifecycle.py)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            self._keepalive = keep_alive
            self._done()

    def _write_whole(self, response: web.StreamResponse) -> bool:
        """Write a plain bytes answer as aiohttp would, in one write; False to leave it to
        aiohttp (it has rules of its own for the others)."""
        if type(response) is not web.Response or response.prepared:
            return False
        body = response._body
        status = response.status
        if (
            type(body) is not bytes
            or status < 200
            or status in _BODILESS
            or response._keep_alive is False
            or response._compression
            or response._chunked
            or response._cookies
        ):
            return False
        headers = response._headers
        if (
            hdrs.CONTENT_LENGTH in headers
            or hdrs.TRANSFER_ENCODING in headers
            or hdrs.CONNECTION in headers
        ):
            return False
        # aiohttp's additions, in its order (Response._start, then _prepare_headers), and its own
        # serializer (which refuses a line break in a header, as it would have)
        headers[hdrs.CONTENT_LENGTH] = str(len(body))
        if body:
            headers.setdefault(hdrs.CONTENT_TYPE, "application/octet-stream")
        if hdrs.DATE not in headers:
            headers[hdrs.DATE] = rfc822_formatted_time()
        headers.setdefault(hdrs.SERVER, SERVER_SOFTWARE)
        head = serialize_headers(f"HTTP/1.1 {status} {response.reason}", headers)
        transport = self.transport
        if transport is None:
            raise ConnectionResetError("Connection lost")
        transport.write(head + body)
        return True

    def _done(self) -> None:
        """After an answer: arm the keep-alive timer (as aiohttp's task does) or close, then
        hand in what was held meanwhile."""
        self._lane_busy = False
        self._lane_task = None
        if self._keepalive and not self._close and not self._force_close:
            close_time = self._loop.time() + self._keepalive_timeout
            self._next_keepalive_close_time = close_time
            if self._keepalive_handle is None:
                self._keepalive_handle = self._loop.call_at(close_time, self._process_keepalive)
        else:
            self.force_close()
            return
        held, self._lane_held, self._lane_held_bytes = self._lane_held, [], 0
        if self._lane_paused:
            self._lane_paused = False
            if self.transport is not None:
                self.transport.resume_reading()
        for data in held:
            self.data_received(data)

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        # aiohttp's last step with each request it answers (a handler cancelled before it
        # leaves the count short: the lane then stays out of that closing connection)
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._aiohttp_answered += 1

    def _process_keepalive(self) -> None:
        # aiohttp's timer closes a connection whose task waits for a request: while a request
        # of the lane is answered, the task waits too, but the connection is not idle.
        if self._lane_busy:
            self._keepalive_handle = None  # (armed again when the answer is out)
            return
        super()._process_keepalive()


def _whole_and_plain(message: Any, payload: Any) -> bool:
    """Whether a parsed request can take the lane: all of it read, nothing special asked."""
    return (
        payload.is_eof()
        and message.version == (1, 1)
        and not message.should_close
        and not message.upgrade
        and message.method != hdrs.METH_HEAD
        and hdrs.EXPECT not in message.headers
    )
