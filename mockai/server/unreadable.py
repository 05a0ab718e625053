"""Requests aiohttp cannot parse, answered the way mockai answers any bad input.

A header line over 64 KiB (`HEAD_LINE_LIMIT`), a malformed chunk size, a method with a space in
it, TLS or HTTP/2 bytes on the plain port: aiohttp's parser refuses them before any handler runs.
aiohttp then answers with a `text/plain` page and logs the refusal at ERROR, traceback and all:
a client's mistake reads like a crash of mockai. Here the answer is a 400 in the API's error
shape (the SDKs raise their BadRequestError with the reason), with a request id like every other
answer, and the log gets one debug line. The connection is closed after the answer, as aiohttp
closes it: what follows the bad bytes cannot be read as requests.

A line too long is said without its bytes: aiohttp's reason quotes its first hundred, and the
line too long is most often a header holding a credential (a bearer token).

Everything else aiohttp handles as before, its own errors (a 500 inside aiohttp) included.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from mockai.errors import ApiError
from mockai.wire import ids, jsonbytes

log = logging.getLogger("mockai")

# The longest request line or header line (name and value) read: aiohttp's default, 8190 bytes,
# is less than what real clients send. Microsoft Entra ID bearer tokens (Azure OpenAI) carry the
# user's group claims and reach 8-16 KiB; long cookie headers behind a proxy do as much.
# Each `AppRunner` passes it on to its connections' parsers (`max_line_size`, `max_field_size`).
HEAD_LINE_LIMIT = 64 * 1024


# aiohttp's own slot for the future a shutdown waits on (see `RequestHandler._handler_waiter`).
_WAITER_SLOT: Any = web_protocol.RequestHandler.__dict__["_handler_waiter"]


class RequestHandler(web_protocol.RequestHandler):
    """aiohttp's protocol for one connection, with requests it cannot parse answered in the
    API's shape."""

    __slots__ = ()

    # A shutdown waits on this future for the answer in flight, and the answer's end sets its
    # result. When the shutdown's wait ends first (its timeout, or the cleanup cancelled at the
    # grace: server/lifecycle.py, both due at the grace) the future is cancelled, and until the
    # shutdown runs again it still holds it: an answer ending in between set the result of a
    # cancelled future (InvalidStateError, a traceback in the log at a plain SIGTERM; aiohttp's
    # race, met by others too). A future already done waits for nothing: it reads as none.
    @property
    def _handler_waiter(self) -> asyncio.Future[None] | None:
        waiter: asyncio.Future[None] | None = _WAITER_SLOT.__get__(self)
        return None if waiter is not None and waiter.done() else waiter

    @_handler_waiter.setter
    def _handler_waiter(self, waiter: asyncio.Future[None] | None) -> None:
        _WAITER_SLOT.__set__(self, waiter)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError) or not 400 <= status < 500:
            return super().handle_error(request, status, exc, message)
        reason = (exc.message or message or "malformed request").strip()
        if isinstance(exc, LineTooLong):  # (its reason quotes the line: a token, as a rule)
            reason = (
                f"the request line or a header is longer than {HEAD_LINE_LIMIT} bytes, "
                "the most mockai reads"
            )
        # (the class only: the reason may quote the bytes sent, which may hold a key; the client
        # that sent them gets them back, the log does not)
        log.debug(
            "%s: a request mockai cannot read as HTTP (%s)", request.remote, type(exc).__name__
        )
        error = ApiError(status, f"Invalid HTTP request: {reason}")
        response = web.Response(
            status=status,
            body=jsonbytes.dumps_lenient(error.body()),
            content_type="application/json",
            headers={"x-request-id": ids.request_id()},
        )
        response.force_close()
        return response


def handler_factory(
    server: web.Server,
    loop: asyncio.AbstractEventLoop,
    protocol: type[RequestHandler] = RequestHandler,
) -> Callable[[], web_protocol.RequestHandler]:
    """What makes each connection's protocol: what `server()` makes (a RequestHandler with the
    runner's settings), as `protocol` (the class above, or a subclass). aiohttp's
    `Server.__call__` names its class, so the settings are read from the server (`_kwargs`,
    there since aiohttp 3.0); an aiohttp without them gets its own protocol."""
    settings: dict[str, Any] | None = getattr(server, "_kwargs", None)
    if not isinstance(settings, dict):  # pragma: no cover (an aiohttp that changed)
        return server
    return lambda: protocol(server, loop=loop, **settings)
