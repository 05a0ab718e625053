"""The request pipeline: parse -> decide -> render -> deliver -> journal, for every endpoint.

One function runs the stages for all generating endpoints; the codecs it is given are pure. Every
answer, errors included, carries the API's standard headers, and every failure becomes an
OpenAI-shaped error: a bug in mockai is logged with its traceback and answered with a 500 in the
API's shape, never with an HTML page or a dropped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from mockai.api.base import Codec, ParseContext, RenderContext
from mockai.api.responses import conversation_id
from mockai.backend import StateUnavailable
from mockai.delivery.deliver import deliver
from mockai.delivery.faults import NO_FAULTS
from mockai.errors import ApiError
from mockai.pipeline import workload
from mockai.pipeline.exchange import Endpoint, Exchange, Message
from mockai.pipeline.fingerprint import content_key, occurrence_key, request_key
from mockai.pipeline.journal import JournalEntry, redact_headers
from mockai.pipeline.reply import NO_TIMING, Plan, Reply
from mockai.server.logs import log_request
from mockai.server.state import STATE, ServerState
from mockai.wire import errors, ids, jsonbytes
from mockai.wire.outgoing import Body, EventStream, Outgoing

log = logging.getLogger("mockai")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def generating_handler(codec: Codec, *, deployment: bool = False) -> Handler:
    """The aiohttp handler running the whole pipeline for one endpoint; with `deployment`, for
    Azure OpenAI's `/openai/deployments/{deployment}/...` form of it."""

    if deployment:

        async def handle_deployment(request: web.Request) -> web.StreamResponse:
            return await run(request, codec, deployment=request.match_info["deployment"])

        return handle_deployment

    async def handle(request: web.Request) -> web.StreamResponse:
        return await run(request, codec)

    return handle


async def run(
    request: web.Request, codec: Codec, *, deployment: str | None = None
) -> web.StreamResponse:
    """Serve one request to a generating endpoint (Azure's: on a `deployment`, which is the
    model whatever the body says, as Azure ignores it)."""
    state = request.app[STATE]
    entry = await _begin(request, state)
    if entry is None:
        return gone()
    # Timing (latency, TTFT) is scheduled from `arrived`: under a burst, requests take turns so
    # that new arrivals are stamped between one request's work and the next, not after all.
    await state.delivery.take_turn()
    entry.endpoint = codec.endpoint.value
    plan: Plan | None = None
    limits: dict[str, str] = {}
    try:
        _check_auth(state, request)
        body = _parse_json(entry)
        if deployment is not None and isinstance(body, dict):
            body = {**body, "model": deployment}  # Azure answers with the deployment's model
        context = await parse_context(state, request.headers, body)
        exchange = codec.parse(body, context)
        entry.model, entry.stream = exchange.model, exchange.stream
        if exchange.endpoint is Endpoint.RESPONSES:
            # An unknown id may be the upstream's: only a server without one knows every id.
            strict_ids = state.config.strict_requests and state.config.upstream is None
            await state.responses.check_previous(exchange, strict=strict_ids)
            await state.conversations.check(exchange, strict=strict_ids)
        key = content_key(state.config.seed, codec.endpoint.value, body)
        # This occurrence of this exact request: its ids, and its chaos draw, derive from it.
        exact = request_key(key, exchange.body)
        salt = occurrence_key(exact, await state.occurrences.take(exact))
        # Faults from headers or chaos that replace the answer come before budgets and sources.
        injection = await state.faults.inject(exchange, exact, salt, request.headers)
        plan = injection.preempt()
        if plan is None:
            plan = injection.apply(await _admit(state, exchange, key, limits))
        if plan.heavy:
            outgoing = await workload.off_loop(_render, state, codec, plan, exchange, salt)
        else:
            outgoing = _render(state, codec, plan, exchange, salt)
        if exchange.endpoint is Endpoint.RESPONSES:
            # The finished answer, even when a background run answers `queued`.
            await state.conversations.extend(exchange, outgoing)
            outgoing = await state.responses.keep(exchange, outgoing)
        elif exchange.endpoint is Endpoint.CHAT and exchange.body.get("store") is True:
            await state.completions.keep(exchange, outgoing)
    except ApiError as error:
        outgoing = error_body(error)
        limits.update(error.headers)
        entry.error = error.body()["error"]
    except Exception:
        outgoing = _internal_error(request, entry)
    if plan is not None:
        entry.source, entry.rule = plan.source, plan.name
    else:
        entry.source = "error"
    return await _finish(request, state, entry, outgoing, limits, plan)


async def _admit(
    state: ServerState, exchange: Exchange, key: bytes, limits: dict[str, str]
) -> Plan:
    """Charge the rate-limit budget, then ask the sources; a refusal answers with the 429."""
    try:
        limits.update(await state.ratelimits.admit(exchange.model, _billed_tokens(exchange)))
    except StateUnavailable:
        raise
    except ApiError as refused:
        return Plan(source="limits", reply=Reply(error=refused))
    return await state.decider.decide(exchange, key)


def _render(
    state: ServerState, codec: Codec, plan: Plan, exchange: Exchange, ids_key: bytes
) -> Outgoing:
    if plan.recorded is not None:
        return plan.recorded
    reply = plan.reply
    assert reply is not None, "a Plan has either a reply or a recording"
    if reply.error is not None:
        raise reply.error
    ctx = RenderContext(ids_key, state.config.created, state.config.honor_base64, state.config.seed)
    return codec.render(reply, exchange, ctx)


async def parse_context(state: ServerState, headers: Mapping[str, str], body: Any) -> ParseContext:
    """What the codecs need from the server: the catalog, strictness, and what the server holds
    of the conversation a Responses request continues (read before parsing, which never waits:
    the response before `previous_response_id`, or the items of `conversation`)."""
    history: tuple[Message, ...] | None = None
    held: list[dict[str, Any]] | None = None
    if isinstance(body, dict):
        previous = body.get("previous_response_id")
        if isinstance(previous, str):
            history = await state.responses.history(previous)
        conversation = conversation_id(body) if "conversation" in body else None
        if conversation is not None:
            held = await state.conversations.held_items(conversation)
    return ParseContext(
        headers,
        state.catalog,
        state.config.strict_requests,
        history=lambda response_id: history,
        conversation=lambda conversation_id: held,
    )


def _billed_tokens(exchange: Exchange) -> int:
    # Like the API, count the prompt plus the most the answer may use against the token budget.
    return exchange.prompt_tokens + (exchange.max_tokens or 0)


async def read_body(request: web.Request) -> bytes | None:
    """The request's body; None if the client went away or did not send it all within the read
    timeout (the connection is then closed: see `gone`)."""
    if request.content.is_eof():  # the usual case: the body came with the head
        return await request.read()
    timeout = request.app[STATE].config.read_timeout
    try:
        return await asyncio.wait_for(request.read(), timeout)
    except (asyncio.TimeoutError, ConnectionError) as error:
        why = "sent no whole body in time" if isinstance(error, asyncio.TimeoutError) else "left"
        log.debug("%s %s: the client %s; closing the connection", request.method, request.path, why)
        if request.transport is not None:
            request.transport.close()
        return None


def gone() -> web.Response:
    """What a handler returns for a client that is gone: aiohttp's write of it fails quietly."""
    return web.Response(status=408)


async def _begin(request: web.Request, state: ServerState) -> JournalEntry | None:
    raw = await read_body(request)
    if raw is None:
        return None
    # When its bytes arrived (stamped by the site): under a burst, well before this handler ran.
    arrived = state.arrivals.take(request.transport) or time.monotonic()
    entry = JournalEntry(
        seq=state.journal.next_seq(),
        request_id=ids.request_id(),
        method=request.method,
        path=request.path,
        received_at=time.time() - (time.monotonic() - arrived),
        arrived=arrived,
        headers=redact_headers(request.headers),
        body=raw,
    )
    # Journaled on arrival and completed in place: an attempt the client abandoned (a reset, a
    # hang, a stalled stream) is counted, and is visible as soon as the client sees its result.
    state.journal.add(entry)
    return entry


def _parse_json(entry: JournalEntry) -> Any:
    raw = entry.body
    try:
        entry.body = jsonbytes.loads(raw)
    except ValueError:
        entry.body = raw.decode("utf-8", "replace")
        raise errors.invalid_json() from None
    return entry.body


def _check_auth(state: ServerState, request: web.Request) -> None:
    required = state.config.require_api_key
    if required is None:
        return
    azure_key = request.headers.get("api-key")
    if azure_key is not None and "Authorization" not in request.headers:
        # Azure OpenAI's clients send the key as `api-key` (Entra ID tokens come as bearers).
        if azure_key.strip() != required:
            raise errors.incorrect_api_key(azure_key.strip())
        return
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not given.strip():
        raise errors.missing_api_key()
    if given.strip() != required:
        raise errors.incorrect_api_key(given.strip())


def _internal_error(request: web.Request, entry: JournalEntry) -> Body:
    """A bug in mockai: said in the API's shape (a 500), with the traceback in the log."""
    log.exception("mockai failed while answering %s %s", request.method, request.path)
    internal = ApiError(500, "mockai internal error (see the server log)", type="server_error")
    entry.error = internal.body()["error"]
    return error_body(internal)


def error_body(error: ApiError) -> Body:
    """The wire form of an ApiError."""
    return Body(error.status, jsonbytes.dumps(error.body()))


def standard_headers(request_id: str, limits: dict[str, str]) -> dict[str, str]:
    """Headers every answer carries (processing time is added when the headers are sent)."""
    headers = {"x-request-id": request_id, "openai-version": "2020-10-01"}
    headers.update(limits)
    return headers


async def _finish(
    request: web.Request,
    state: ServerState,
    entry: JournalEntry,
    outgoing: Outgoing,
    limits: dict[str, str],
    plan: Plan | None,
) -> web.StreamResponse:
    if not limits or "x-ratelimit-limit-requests" not in limits:
        # Without the shared state the answer goes out without the counts (a 503 says why).
        with contextlib.suppress(StateUnavailable):
            limits = {**await state.ratelimits.headers(entry.model or "*"), **limits}
    headers = standard_headers(entry.request_id, limits)
    if plan is not None and plan.reply is not None and plan.reply.warnings:
        entry.warnings = list(plan.reply.warnings)
        headers["x-mockai-warning"] = " | ".join(plan.reply.warnings)
    faults = plan.faults.for_answer(outgoing) if plan is not None else NO_FAULTS
    entry.faults = faults.names()
    entry.status = 0 if faults.no_response else outgoing.status  # 0: no response was sent
    entry.response = outgoing
    entry.response_headers = headers  # filled in as delivery goes; completed below
    journal = state.journal_view
    if state.backend.shared:  # visible to every worker before the client sees the answer
        await _shared(journal.publish(entry))
    metrics = state.metrics
    streaming = isinstance(outgoing, EventStream)
    if metrics is not None:
        metrics.started(streaming)
    try:
        return await deliver(
            request,
            outgoing,
            headers,
            arrived=entry.arrived,
            timing=plan.timing if plan is not None else NO_TIMING,
            faults=faults,
            delivery=state.delivery,
        )
    finally:
        entry.response_headers = {k.lower(): v for k, v in {**headers, **outgoing.headers}.items()}
        entry.duration_ms = (time.monotonic() - entry.arrived) * 1000
        if metrics is not None:
            metrics.finished(entry, outgoing, streaming)
        if state.config.log_requests:
            log_request(state.access_log, entry)
        if state.backend.shared:
            await _shared(journal.complete(entry))


async def _shared(update: Awaitable[None]) -> None:
    """A journal update that must not break the answer when the shared state is away."""
    try:
        await update
    except StateUnavailable as error:
        log.debug("journal not shared: %s", error.message)


async def simple(
    request: web.Request, produce: Callable[[ServerState], Outgoing | Awaitable[Outgoing]]
) -> web.StreamResponse:
    """Serve a non-generating request (models, stored objects, 404s, 405s) with the standard
    headers and journal; `produce` may be a coroutine function (stores may wait on the state)."""
    state = request.app[STATE]
    entry = await _begin(request, state)
    if entry is None:
        return gone()
    entry.source = "static"
    try:
        _check_auth(state, request)
        produced = produce(state)
        outgoing = await produced if inspect.isawaitable(produced) else produced
    except ApiError as error:
        outgoing = error_body(error)
        entry.error = error.body()["error"]
    except Exception:
        outgoing = _internal_error(request, entry)
    if request.body_exists and isinstance(entry.body, bytes):
        try:
            entry.body = jsonbytes.loads(entry.body)
        except ValueError:
            entry.body = entry.body.decode("utf-8", "replace")
    else:
        entry.body = None
    return await _finish(request, state, entry, outgoing, {}, None)
