"""The upstream: a Source that forwards requests to an OpenAI-compatible server and records.

The answer is passed on to the client as it arrives (a `Relay`: no buffering, the client sees the
upstream's real timing) while a copy is kept, with the arrival time of each SSE event; once the
client has it all, the interaction is scrubbed of secrets and handed to the cassette recorder.
Without a recorder this is a plain passthrough proxy (`--upstream` without `--cassette`).

Failures reach the client as the upstream sent them: 4xx/5xx answers unchanged (recorded only with
`record_errors`), a stream that breaks off breaks off for the client too. A connection failure has
no answer to pass on: the client gets a 502 (504 on timeout) naming the upstream, which the SDKs
retry exactly as they retry a connection error; it is never recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.request
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from mockai.cassette.format import Interaction, Timing, header_lists
from mockai.cassette.headers import HOP_BY_HOP
from mockai.cassette.redact import Scrubber, body_secrets, redact_query, request_secrets
from mockai.cassette.replay import route_for
from mockai.cassette.scan import scrub_interaction, without_userinfo
from mockai.cassette.writer import CassetteRecorder
from mockai.errors import ApiError, ConfigError, RelayBrokeOff
from mockai.pipeline.exchange import Exchange
from mockai.pipeline.reply import Plan
from mockai.wire import jsonbytes
from mockai.wire.credentials import is_credential_header
from mockai.wire.errors import header_text
from mockai.wire.events import EventSplitter
from mockai.wire.loopback import is_loopback_host
from mockai.wire.outgoing import Body, Relay

log = logging.getLogger("mockai.cassette")

# Not forwarded upstream: hop-by-hop headers, what the HTTP client sets itself (length, encodings
# it can decode, and the host: the client's names mockai, and an upstream behind a virtual host or
# a CDN, api.openai.com among them, answers for the site the Host names), the body's coding (the
# body goes decoded, re-serialized or the form as decoded: a gzip label would make the upstream
# decode plain JSON), and mockai's own control headers.
_NOT_FORWARDED = HOP_BY_HOP | {"accept-encoding", "content-encoding", "host"}
# Not passed back to the client: hop-by-hop, and the encoding the HTTP client already undid.
_NOT_RELAYED = HOP_BY_HOP | {"content-encoding", "content-type"}
# Connect quickly or fail; then wait as long as the SDK does for a slow (reasoning) model.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=600)
# How long an answer a client stopped reading is read on from the upstream, to be recorded whole.
READ_ON_SECONDS = 120
# Redirects followed per request, as many as aiohttp follows by default.
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's headers as sent upstream (credentials included: the upstream needs them)."""
    return {
        name: value
        for name, value in headers.items()
        if name.lower() not in _NOT_FORWARDED and not name.lower().startswith("x-mockai-")
    }


def relayed_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    """The upstream's answer headers as passed to the client, named in lower case so that they
    replace mockai's own (x-request-id, the rate limits) instead of being sent beside them.
    A control character aiohttp's lenient client parser let through (`\x01`) is percent-encoded
    (`header_text`): its writer refuses it, which had dropped the answer with a traceback.
    Every value of a header the upstream repeats goes along, in order (a CIMultiDict then, as
    a replay's): a dict had kept the last, so of OpenAI's two `set-cookie` headers the client
    got one, and of `vary: Origin` and `vary: Accept-Encoding` the second."""
    pairs = [
        (name.lower(), header_text(value))
        for name, value in headers.items()
        if name.lower() not in _NOT_RELAYED
    ]
    single = dict(pairs)
    if len(single) == len(pairs):
        return single
    return CIMultiDict(pairs)


class UpstreamSource:
    """Forwards every request to `base_url` (an OpenAI-style base URL, e.g. `.../v1`)."""

    loaded = False  # answers everything itself: the fallback is never reached

    def __init__(
        self,
        base_url: str,
        *,
        recorder: CassetteRecorder | None = None,
        scrubber: Scrubber | None = None,
        record_errors: bool = False,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> None:
        url = URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(
                f"upstream: {base_url!r} is not an http(s) base URL "
                "(e.g. https://api.openai.com/v1 or http://localhost:11434/v1)"
            )
        self.base = url
        self.shown = str(URL(without_userinfo(str(url.with_query(None)))))
        self.recorder = recorder
        self.scrubber = scrubber or Scrubber()
        self.record_errors = record_errors
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        # Answers read on from the upstream after their client left, to be recorded whole (each
        # done when its handler has recorded it or given it up).
        self._reading_on: set[asyncio.Future[None]] = set()

    async def lifespan(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: one client session per server; recordings flushed at exit."""
        # No cookie jar: the session is every client's, and a jar kept what the upstream set for
        # one (a gateway's session, Cloudflare's `__cf_bm`) and sent it with every other
        # client's requests. Each client's own `Cookie` header goes along as it sent it.
        self._session = aiohttp.ClientSession(
            timeout=self.timeout, cookie_jar=aiohttp.DummyCookieJar()
        )
        try:
            yield
        finally:
            try:
                # The answers still read on (their clients left: no connection holds their
                # handlers in flight) are recorded before the last save; a stopping server's
                # grace bounds the wait.
                if self._reading_on:
                    await asyncio.wait(set(self._reading_on))
            finally:
                try:
                    if self.recorder is not None:
                        await _to_the_end(self.recorder.flush())
                finally:  # (cancelled or not)
                    await self._session.close()
                    self._session = None

    @contextlib.contextmanager
    def reading_on(self) -> Iterator[None]:
        """Around a handler reading an answer on after its client left: the source's cleanup
        (the server stopping) waits for it."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reading_on.add(done)
        try:
            yield
        finally:
            self._reading_on.discard(done)
            done.set_result(None)

    def proxy_for(self, url: URL) -> URL | None:
        """The proxy the environment names for `url` (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
        unless `NO_PROXY` covers the host), as the SDKs' httpx takes it: behind a proxy that is
        the only way out, mockai went straight to the upstream, and every request was a 502.
        Its `user:password@` is aiohttp's to send as `Proxy-Authorization`. Never for a
        loopback upstream (a proxy is the way out, and an `HTTP_PROXY` set for the app must not
        take mockai's local upstreams with it), nor through a proxy that is not http(s)
        (aiohttp speaks no SOCKS)."""
        proxies = urllib.request.getproxies_environment()
        proxy = proxies.get(url.scheme) or proxies.get("all")
        host = url.host or ""
        if not proxy or is_loopback_host(host) or urllib.request.proxy_bypass(f"{host}:{url.port}"):
            return None
        try:
            proxy_url = URL(proxy if "://" in proxy else "http://" + proxy)
        except ValueError:
            return None
        if proxy_url.scheme not in ("http", "https") or not proxy_url.host:
            return None
        return proxy_url

    def url_for(
        self, route: str, query: Mapping[str, str] | None = None, deployment: str | None = None
    ) -> URL:
        """The upstream URL for an API route (the base's query string, e.g. Azure's, is kept,
        and the request's own added over it: a list's `limit`, the client's `api-version`).

        A request that came by an Azure deployment route (`deployment`) goes to that deployment
        of an Azure resource's base (`https://RES.openai.azure.com/openai`); any other base
        serves every route itself (a deployment's own base among them)."""
        path = self.base.raw_path.rstrip("/")
        if deployment is not None and path.endswith("/openai"):
            path += "/deployments/" + quote(deployment, safe="")  # (one segment, whatever it holds)
        url = self.base.with_path(path + URL.build(path=route).raw_path, encoded=True)
        # Every value of a key the request repeats (`include[]=a&include[]=b`, as the SDKs send
        # a list) goes along; a key the request names replaces the base's.
        query = query or {}
        pairs = [(k, v) for k, v in self.base.query.items() if k not in query]
        return url.with_query(pairs + list(query.items()))

    async def plan(self, exchange: Exchange, key: bytes) -> Plan | None:
        """Forward the request; the Plan relays the upstream's answer."""
        if self._session is None:
            raise RuntimeError("the upstream source is used outside of its server's lifespan")
        url = self.url_for(route_for(exchange), exchange.query, exchange.deployment)
        headers = forwarded_headers(exchange.headers)
        body: bytes | None
        if exchange.form is not None:
            body = exchange.form  # as sent: its Content-Type (boundary included) goes along
        elif exchange.method in ("GET", "DELETE") or (
            exchange.route is not None and not exchange.body
        ):
            body = None  # (a batch's cancel is a POST without a body)
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        else:
            body = jsonbytes.dumps(exchange.body)
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
        capture = Capture(self, url, body, headers, exchange.method)
        response = await capture.send(self._session)
        if response.status >= 400:
            # Errors are small and final: read them whole so the journal holds them too.
            data = await capture.read_all()
            if self.record_errors:
                capture.record()
            return Plan(
                source="upstream",
                recorded=Body(response.status, data, _content_type(response), capture.relayed),
                name=self.shown,
            )
        return Plan(
            source="upstream",
            recorded=Relay(
                response.status,
                capture.chunks(),
                _content_type(response),
                capture.relayed,
                finish=capture.finish,
                received=capture.parts,
            ),
            name=self.shown,
        )

    def near_misses(self, exchange: Exchange) -> list[str]:
        """Nothing: the upstream answers every request."""
        return []


async def _to_the_end(saving: Coroutine[Any, Any, None]) -> None:
    """Await `saving` (the last save of what was recorded) to its end, even when the cleanup
    awaiting it is cancelled (a stopping server past its grace): the clients were answered, and
    their recordings are local disk work; cut, the save's later turns never ran and recordings
    were lost without a word. The cancellation is passed on once the save is done."""
    task = asyncio.ensure_future(saving)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


def _content_type(response: aiohttp.ClientResponse) -> str:
    return response.headers.get("Content-Type", "application/json")


class Capture:
    """One forwarded request: sends it, relays the answer, keeps a timed copy, records it."""

    def __init__(
        self,
        source: UpstreamSource,
        url: URL,
        body: bytes | None,
        headers: dict[str, str],
        method: str = "POST",
    ):
        self.source = source
        self.url = url
        self.body = body
        self.headers = headers
        self.method = method
        self.parts: list[bytes] = []
        self.events: list[float] = []
        self.complete = False
        self.broke_off = False  # the upstream broke off its answer (not the client)
        self._loop = asyncio.get_running_loop()
        self._sent = 0.0
        self._headers_at = 0.0
        self._ended = 0.0
        self._response: aiohttp.ClientResponse | None = None
        self._stream: AsyncIterator[bytes] | None = None
        self._splitter: EventSplitter | None = None  # a stream's events, as they come
        self.relayed: Mapping[str, str] = {}

    async def send(self, session: aiohttp.ClientSession) -> aiohttp.ClientResponse:
        """Send the request; connection failures become 502 / 504 errors naming the upstream."""
        self._sent = self._loop.time()
        try:
            response = await self._follow(session)
        except asyncio.TimeoutError:
            raise ApiError(
                504,
                f"mockai: the upstream {self.source.shown} did not answer in time",
                type="server_error",
                code="upstream_timeout",
            ) from None
        except aiohttp.ClientError as error:
            raise ApiError(
                502,
                f"mockai: the upstream {self.source.shown} could not be reached: {error}",
                type="server_error",
                code="upstream_unreachable",
            ) from None
        self._headers_at = self._loop.time()
        self._response = response
        self.relayed = relayed_headers(response.headers)
        return response

    async def _follow(self, session: aiohttp.ClientSession) -> aiohttp.ClientResponse:
        """Send the request, following redirects hop by hop: aiohttp's own following drops only
        `Authorization` and `Cookie` when a redirect leaves the upstream's origin, so the key
        an Azure (`api-key`) or Anthropic-style (`x-api-key`) client sent went to whatever host
        the upstream named. Here every credential header stays with the upstream's origin; the
        method and body change as aiohttp changes them (a 303, or a 301/302 of a POST, is a
        GET without the body)."""
        url, method, body, headers = self.url, self.method, self.body, self.headers
        for _ in range(MAX_REDIRECTS + 1):
            response = await session.request(
                method,
                url,
                data=body,
                headers=headers,
                allow_redirects=False,
                proxy=self.source.proxy_for(url),
            )
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or location is None:
                return response
            response.release()
            target = self._redirected(url, location)
            if (response.status == 303 and method != "HEAD") or (
                response.status in (301, 302) and method == "POST"
            ):
                method, body = "GET", None
            if target.origin() != url.origin():
                headers = {k: v for k, v in headers.items() if not is_credential_header(k)}
            url = target
        # (Not aiohttp's TooManyRedirects: its text spells the URL, query and its keys too.)
        raise self._bad_redirect(f"redirected more than {MAX_REDIRECTS} times")

    def _redirected(self, url: URL, location: str) -> URL:
        """Where a redirect's `Location` leads from `url` (an http(s) URL, or a 502)."""
        try:
            target = url.join(URL(location))
            target.origin()  # (raises on a URL without a host)
        except ValueError:
            raise self._bad_redirect("redirected to a location that is no URL") from None
        if target.scheme not in ("http", "https"):
            raise self._bad_redirect("redirected to a location that is not http(s)")
        return target

    def _bad_redirect(self, what: str) -> ApiError:
        # Named as the upstream is everywhere, without its query: the Location is not shown
        # either (it may carry the upstream's signed query).
        return ApiError(
            502,
            f"mockai: the upstream {self.source.shown} {what}",
            type="server_error",
            code="upstream_unreachable",
        )

    @property
    def response(self) -> aiohttp.ClientResponse:
        """The upstream's response (after `send`)."""
        assert self._response is not None
        return self._response

    @property
    def is_stream(self) -> bool:
        """True when the upstream answers with server-sent events."""
        return _content_type(self.response).split(";")[0].strip().lower() == "text/event-stream"

    async def read_all(self) -> bytes:
        """The whole (error) body."""
        try:
            data = await self.response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            self.response.close()
            raise ApiError(
                502,
                f"mockai: the upstream {self.source.shown} broke off its answer: {error}",
                type="server_error",
                code="upstream_unreachable",
            ) from None
        self.parts = [data]
        self._ended = self._loop.time()
        self.complete = True
        self.response.release()
        return data

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (each SSE event's arrival time noted on the way)."""
        self._stream = self._relay()
        return self._stream

    async def _relay(self) -> AsyncIterator[bytes]:
        self._splitter = EventSplitter() if self.is_stream else None
        try:
            async for chunk in self.response.content.iter_any():
                self._took(chunk)
                yield chunk
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            self.broke_off = True
            log.warning(
                "mockai: the upstream %s broke off its answer: %s", self.source.shown, error
            )
            # Break the client's connection too: the failure reaches it as it happened (said
            # once, above: delivery drops the connection without a traceback of its own).
            raise RelayBrokeOff("the upstream broke off its answer") from None
        self._ended_whole()

    def _took(self, chunk: bytes) -> None:
        """A chunk of the answer, and when each of its events came."""
        self.parts.append(chunk)
        if self._splitter is not None:
            offset = self._loop.time() - self._headers_at
            self.events.extend(offset for _ in self._splitter.feed(chunk))

    def _ended_whole(self) -> None:
        rest = self._splitter.close() if self._splitter is not None else None
        if rest is not None and (rest.strip() or not self.events):
            self.events.append(self._loop.time() - self._headers_at)  # an unterminated last event
        self._ended = self._loop.time()
        self.complete = True

    async def finish(self) -> None:
        """Called once the client got everything (or went away): record, or abandon."""
        reading = self._stream is not None and not self.complete and not self.broke_off
        if reading and self.source.recorder is not None:
            # The client left: its handler reads the rest, which a stopping server waits for
            # (its connection gone, nothing else holds the handler in flight).
            log.info(
                "mockai: the client left %s %s before its answer ended: reading the rest from "
                "the upstream, to record it whole",
                self.method,
                self.url.path,
            )
            with self.source.reading_on():
                await self._settle(read_on=True)
            return
        await self._settle()

    async def _settle(self, read_on: bool = False) -> None:
        """Record the answer (`read_on`: its rest read from the upstream first), or abandon it."""
        if read_on:
            await self._read_on()
        if self._stream is not None:
            aclose: Any = getattr(self._stream, "aclose", None)
            if aclose is not None:
                await aclose()
        if not self.complete:
            self.response.close()  # the client left, or the upstream failed: stop the upstream
            return
        self.response.release()
        self.record()

    async def _read_on(self) -> None:
        """The client stopped reading the answer (a test that reads a stream's first words and
        closes it): read the rest of it from the upstream, which was asked and answers anyway,
        so the recording holds the whole answer, as vcrpy's would; the replay then serves it
        whole, and a client reading all of it there gets what the upstream sent. (Dropped, the
        test's next run replayed nothing, and its answer was made up.) Bounded: at most
        `READ_ON_SECONDS`, then the answer is not recorded, and a line says so."""
        # From the answer itself, not through the relay, which may have ended with the handler
        # that read it (cancelled as the server stopped, waiting for the next chunk).
        try:
            # (`wait_for`, not `asyncio.timeout`: mockai runs on Python 3.10 too)
            await asyncio.wait_for(self._read_rest(), READ_ON_SECONDS)
            self._ended_whole()
        except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError):
            pass  # (broke off, too slow, or its connection gone with a stopping server: said below)
        except asyncio.CancelledError:  # (the server stopped, its grace over)
            log.warning(
                "mockai: not recorded: the client left %s %s before its answer ended, and the "
                "server stopped before the upstream %s finished it",
                self.method,
                self.url.path,
                self.source.shown,
            )
            self.response.close()
            raise
        if not self.complete:
            log.warning(
                "mockai: not recorded: the client left %s %s before its answer ended, and the "
                "upstream %s did not finish it (it broke off, the server stopped, or it took "
                "more than %d s)",
                self.method,
                self.url.path,
                self.source.shown,
                READ_ON_SECONDS,
            )

    async def _read_rest(self) -> None:
        async for chunk in self.response.content.iter_any():
            self._took(chunk)

    def record(self) -> None:
        """Hand the (scrubbed) interaction to the recorder, if recording."""
        recorder = self.source.recorder
        if recorder is None:
            return
        # The credentials the request was sent with: its headers', those of the upstream URL's
        # query (`?api-key=`), which the recorded `uri` would otherwise spell out, and those its
        # body holds for the upstream to use (an MCP tool's token).
        from_query = redact_query(str(self.url))[1]
        from_body = body_secrets(_json_or_none(self.body))
        secrets = tuple(
            sorted({*request_secrets(self.headers), *from_query, *from_body}, key=len, reverse=True)
        )
        interaction = scrub_interaction(self.interaction(), self.source.scrubber, secrets)
        recorder.add(interaction, secrets)

    def interaction(self) -> Interaction:
        """The exchange as vcrpy stores it (not yet scrubbed)."""
        response = self.response
        headers = header_lists(
            [(k, v) for k, v in response.headers.items() if k.lower() not in _STORED_NOT]
        )
        return Interaction(
            method=self.method,
            uri=str(self.url),
            request_body=self.body,
            request_headers={str(name): [str(value)] for name, value in self.headers.items()},
            status=response.status,
            reason=response.reason or "",
            response_headers=headers,
            response_body=b"".join(self.parts),
            timing=Timing(
                latency=self._headers_at - self._sent,
                duration=self._ended - self._sent,
                events=tuple(self.events) if self.is_stream else None,
            ),
        )


def _json_or_none(body: bytes | None) -> Any:
    """A request body's JSON object, or None (no body, a form, not JSON)."""
    if not body or body.lstrip()[:1] != b"{":
        return None
    try:
        return jsonbytes.loads(body)
    except ValueError:
        return None


# The body is stored decoded and whole: the headers that described its encoding and framing go.
_STORED_NOT = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection"})
