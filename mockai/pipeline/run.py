"""The request pipeline: parse -> decide -> render -> deliver -> journal, for every endpoint.

One function runs the stages for all generating endpoints; the codecs it is given are pure. Every
answer, errors included, carries the API's standard headers, and every failure becomes an
OpenAI-shaped error: a bug in mockai is logged with its traceback and answered with a 500 in the
API's shape, never with an HTML page or a dropped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, MultiDict

from mockai.api import common
from mockai.api.base import Codec, ParseContext, RenderContext
from mockai.backend import StateUnavailable
from mockai.delivery.chaos import HEADER_FAULT
from mockai.delivery.deliver import as_delivered, deliver, keeps_schedule, writes_in_slices
from mockai.delivery.faults import NO_FAULTS
from mockai.errors import ApiError
from mockai.pipeline import uploads, workload
from mockai.pipeline.exchange import Endpoint, Exchange, Message, addressed
from mockai.pipeline.fingerprint import occurrence_key, request_keys
from mockai.pipeline.journal import JournalEntry, ascii_count, redact_headers
from mockai.pipeline.parsed import PURE_ENDPOINTS, Parsed
from mockai.pipeline.reply import NO_TIMING, Plan, Reply
from mockai.profiles.base import Profile
from mockai.server.state import STATE, ServerState
from mockai.wire import cors, errors, ids, jsonbytes
from mockai.wire.credentials import same_secret
from mockai.wire.outgoing import Body, EventStream, Outgoing, Relay, streamed

log = logging.getLogger("mockai")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def generating_handler(codec: Codec, profile: Profile, *, deployment: bool = False) -> Handler:
    """The aiohttp handler running the whole pipeline for one endpoint, as `profile`'s provider;
    with `deployment`, for Azure OpenAI's `/openai/deployments/{deployment}/...` form of it."""

    if deployment:

        async def handle_deployment(request: web.Request) -> web.StreamResponse:
            return await run(request, codec, profile, deployment=request.match_info["deployment"])

        return handle_deployment

    async def handle(request: web.Request) -> web.StreamResponse:
        return await run(request, codec, profile)

    return handle


async def run(
    request: web.Request, codec: Codec, profile: Profile, *, deployment: str | None = None
) -> web.StreamResponse:
    """Serve one request to a generating endpoint as `profile`'s provider (Azure's: on a
    `deployment`, which is the model whatever the body says, as Azure ignores it).

    The profile is consulted at the edges only: auth, the request's fields before parsing, the
    rendered answer, the error envelope and the rate-limit headers. The default profile's hooks
    are all None.

    A large body waits for room in the server's upload budget before it is read, and holds it
    until its answer is done (pipeline/uploads.py)."""
    size = _reserved_size(request)
    if not size:
        return await _serve(request, codec, profile, deployment)
    reservation = uploads.Reservation(request.app[STATE].uploads)
    if size != _CHUNKED:
        await reservation.take(size)
    try:  # (a chunked body's reading may take one: `read_body`)
        return await _serve(request, codec, profile, deployment, reservation)
    finally:
        reservation.give_back()


# A chunked body, still arriving: its size is unknown until it has been read.
_CHUNKED = -1


def _reserved_size(request: web.Request) -> int:
    """The bytes `request`'s body reserves in the upload budget before it is read: its
    Content-Length when large; `_CHUNKED` when it comes chunked (known only as it is read: it
    reserves then, if it grows large), else none."""
    if request.content.is_eof():
        # The usual case, and the cheapest test: the whole body came with the head, and reading
        # it takes no more memory. A large upload is still arriving when its handler starts
        # (aiohttp stops reading a connection that has 128 KiB waiting).
        return 0
    length = request.content_length
    if length is not None:
        # (A length past the limit reserves nothing: `read_body` refuses it unread.)
        return length if uploads.RESERVED_FROM <= length <= request.client_max_size else 0
    return _CHUNKED if request.body_exists else 0


async def _serve(
    request: web.Request,
    codec: Codec,
    profile: Profile,
    deployment: str | None,
    reservation: uploads.Reservation | None = None,
) -> web.StreamResponse:
    state = request.app[STATE]
    begun = await _begin(request, state, reservation)
    if begun is None:
        return gone()
    entry, raw, unreadable = begun
    entry.endpoint = codec.endpoint.value
    turn = Turn()
    body: Any = None
    try:
        _check_auth(state, request, profile)
        if unreadable is not None:
            raise unreadable
        if deployment is not None:  # (Azure's: its module is loaded with its first request)
            from mockai.profiles.azure import require_api_version

            require_api_version(request.query)
        body, form = _request_body(entry, raw, request, codec)
        if deployment is not None and isinstance(body, dict):
            body = {**body, "model": deployment}  # Azure answers with the deployment's model
        # The bytes parse to the same Exchange every time they come (pipeline/parsed.py), as
        # long as nothing but them says what is parsed: not an Azure deployment's model, not a
        # provider that rewrites the body first.
        same_bytes = (
            raw
            if codec.endpoint in PURE_ENDPOINTS and deployment is None and profile.requests is None
            else None
        )
        context = parse_context(
            state,
            request.headers,
            profile,
            form=form,
            # (HEAD is GET without the body, which aiohttp leaves out: the codec answers a GET)
            method="GET" if request.method == "HEAD" else request.method,
            head=request.method == "HEAD",
            params=request.match_info,
            query=request.query,
        )
        outgoing = await answer(state, codec, body, context, entry, turn, profile, raw=same_bytes)
    except ApiError as error:
        error = profile.errors.situate(profile.errors.adapt(error), codec.endpoint, request.query)
        outgoing = profile.errors.render(error)
        turn.limits.update(error.headers)
        entry.error = _journaled(error)
        if entry.model is None:
            # A request refused before it was parsed (`temperature: 5`) still names its model:
            # the journal says which, and its rate-limit headers are that model's budget's.
            entry.model = _named_model(body)
    except Exception:
        outgoing = _internal_error(request, entry, profile)
    if turn.plan is None:
        entry.source = "error"
    response = await _finish(
        request, state, entry, outgoing, turn.limits, turn.plan, profile, turn.billed
    )
    if unreadable is not None:
        response.force_close()  # the rest of the request cannot be parsed: no keep-alive
    return response


def _named_model(body: Any) -> str | None:
    """The `model` a request body names, if it names one as a string."""
    if isinstance(body, dict):
        model = body.get("model")
        if isinstance(model, str) and model:
            return model
    return None


@dataclass(slots=True)
class Turn:
    """What one request's way through the stages leaves for the finish: the Plan (its timing,
    faults and warnings apply to an error answer too), the rate-limit headers, and the tokens
    billed (for a provider's rate-limit headers)."""

    plan: Plan | None = None
    limits: dict[str, str] = field(default_factory=dict)
    budgets: bool = True  # charge rate-limit budgets (batch lines are not charged)
    billed: int = 0


async def answer(
    state: ServerState,
    codec: Codec,
    body: Any,
    context: ParseContext,
    entry: JournalEntry,
    turn: Turn,
    profile: Profile | None = None,
    *,
    raw: bytes | None = None,
) -> Outgoing:
    """Parse, decide (faults first), render and keep one request's answer, as `profile`'s
    provider (the server's own by default); errors raise. `raw`: the bytes `body` was parsed
    from, when nothing else decides what it parses to (a repeat is then not parsed again).

    HTTP requests and batch lines alike come through here, so rules, cassettes, chaos and the
    stores treat a line of a batch exactly as the same request sent on its own.
    """
    profile = profile or state.profile
    entry.source = "error"
    parsed = _parsed(state, codec, raw, context) if raw is not None else None
    if parsed is not None:
        exchange = parsed.for_request(context.headers, context.query)
        key, exact = parsed.key, parsed.exact
    else:
        exchange, key, exact = await _parse(state, codec, body, context, profile, raw)
        if raw is not None and state.parsed.wanted(raw):
            _keep(state, codec, raw, context, exchange, key, exact)
    entry.model, entry.stream = exchange.model, exchange.stream
    turn.billed = _billed_tokens(exchange)
    if exchange.form is not None:
        _journal_body(entry, exchange.body)  # the form as typed, files as their summaries
    await check_references(state, exchange)
    # This occurrence of this exact request: its ids, and its chaos draw, derive from it.
    salt = occurrence_key(exact, await state.occurrences.take(exact))
    # Faults from headers or chaos that replace the answer come before budgets and sources.
    injection = await state.faults.inject(exchange, exact, salt, exchange.headers)
    plan = injection.preempt()
    if plan is None:
        plan = injection.apply(await _admit(state, exchange, key, turn))
    elif plan.reply is None and plan.recorded is None:
        # A JSON body the header or chaos cuts halfway: a generated answer's stands in, and the
        # script's step is left for the retry (delivery/chaos.py).
        generated = await state.decider.generated(exchange, key)
        plan = replace(plan, reply=generated.reply, heavy=generated.heavy)
    turn.plan = plan
    entry.source, entry.rule, entry.more_rules = plan.source, plan.name, plan.more_names
    if keeps_schedule(plan.timing, plan.recorded):
        # Its latency or pacing is scheduled from `arrived`: under a burst, such requests take
        # turns, so that new arrivals are stamped between one request's rendering and the next
        # rather than after all of them. (Untimed requests skip the extra loop iteration:
        # nothing of theirs is scheduled.)
        await state.delivery.take_turn()
    # (A generated answer was weighed by the decider already: `heavy` says what it found.)
    weighed = plan.heavy or plan.source == "generator"
    if plan.heavy or (plan.recorded is None and not weighed and workload.heavy(exchange)):
        outgoing = await workload.off_loop(
            _render, state, codec, plan, exchange, salt, profile, key
        )
    else:
        outgoing = _render(state, codec, plan, exchange, salt, profile, key)
    if plan.recorded is None and isinstance(outgoing, Body) and outgoing.attachments:
        outgoing = await state.images.keep(exchange, outgoing)  # `url` images: served by mockai
    if exchange.endpoint is Endpoint.RESPONSES:
        # Kept as the client gets it: a stream cut by a fault has failed. But a background run
        # goes on without its connection (the API's background guide: a client whose stream
        # dropped resumes it with `starting_after`): a cut connection (`disconnect_after`,
        # `stall_after`, `truncate_after`, chaos's `disconnect`) leaves it whole, retrieved
        # `completed` and resumed to its end; only an in-band error event fails it.
        kept_faults = plan.faults
        if kept_faults and exchange.body.get("background") is True:
            kept_faults = replace(
                kept_faults, disconnect_after=None, stall_after=None, truncate_after=None
            )
        delivered = as_delivered(outgoing, kept_faults)
        sent = await state.responses.keep(exchange, delivered)
        # A background run answered `queued` (what is sent is not the answer) adds its output
        # to its conversation once a retrieval finds it done; a cancelled one never does.
        try:
            await state.conversations.extend(exchange, delivered, output=sent is delivered)
        except ApiError:
            # Its conversation refused it (past the store's bytes): the client gets that 400,
            # not this answer, so it is not kept either (it was retrievable, `completed` in a
            # conversation that does not hold it).
            await state.responses.unkeep(delivered)
            raise
        return outgoing if sent is delivered else sent
    if exchange.endpoint is Endpoint.CHAT and exchange.body.get("store") is True:
        await state.completions.keep(exchange, outgoing, plan.faults)  # (kept as cut)
    return outgoing


async def check_references(state: ServerState, exchange: Exchange, *, storing: bool = True) -> None:
    """The API's 400/404 for a Responses request's `previous_response_id` or `conversation` it
    would not find (one this server answered and did not keep, or deleted); `storing` (not a
    count of its tokens, which adds nothing to the conversation), input it would not hold."""
    if exchange.endpoint is not Endpoint.RESPONSES:
        return
    # An unknown id may be the upstream's, or a recording's: only a server with neither knows
    # every id.
    config = state.config
    strict_ids = config.strict_requests and config.upstream is None and config.cassette is None
    await state.responses.check_previous(exchange, strict=strict_ids)
    await state.conversations.check(exchange, strict=strict_ids, storing=storing)


async def _parse(
    state: ServerState,
    codec: Codec,
    body: Any,
    context: ParseContext,
    profile: Profile,
    raw: bytes | None = None,
) -> tuple[Exchange, bytes, bytes]:
    """The request as an Exchange, with its content key and its exact-request key (`raw`: the
    bytes `body` was parsed from, when it was)."""
    sent = body
    if profile.requests is not None:
        body = profile.requests.check(codec.endpoint, body)
    if codec.endpoint in REFERRING:
        context = await with_held(state, context, codec.endpoint, body)
    await common.settle_schemas(body)  # a long schema's metaschema check: off the loop
    # Long texts have their tokens counted off the loop. A body's strings are never longer than
    # its JSON bytes, so a body shorter than the bound skips the walk (~10k instructions).
    short = raw is not None and len(raw) < common.COUNTED_OFF_LOOP
    if not short and common.counts_long_texts(codec.endpoint, body):
        return await workload.off_loop(parse_checked, state, codec, sent, body, context)
    return parse_checked(state, codec, sent, body, context)


def parse_checked(
    state: ServerState, codec: Codec, sent: Any, body: Any, context: ParseContext
) -> tuple[Exchange, bytes, bytes]:
    """`_parse`'s Exchange and two keys, once the provider's profile has checked the body `sent`
    (`body`: the same object when the profile leaves bodies as sent) and `context` holds what
    the request refers to."""
    # (the codec reads the body; the route's query and Azure deployment go along for an upstream)
    exchange = addressed(
        codec.parse(body, context), context.query, context.params.get("deployment")
    )
    if body is not sent:  # rules, cassettes and the upstream see the body as it was sent
        exchange = replace(exchange, body=sent)
    kind = codec.endpoint.value
    if exchange.route is not None:  # one endpoint, many routes: each is its own request
        kind = f"{kind} {exchange.method} {exchange.route}"
    key, exact = request_keys(state.config.seed, kind, exchange.body)
    if context.provider != "openai":
        # The same body sent to two providers (`/v1` and `/groq/openai/v1`: a multi-provider app,
        # a fallback router) is two requests: each its own ids and chaos draws, counted apart,
        # or which one got the 429 (and which id) followed the order they came in. Its text
        # stays the content key's, the same on every provider. (OpenAI's own adds nothing.)
        exact = hashlib.blake2b(context.provider.encode(), key=exact, digest_size=32).digest()
    return exchange, key, exact


def _parsed(state: ServerState, codec: Codec, raw: bytes, context: ParseContext) -> Parsed | None:
    """The kept parse of these bytes, if they came before and it still holds."""
    config = state.config
    return state.parsed.get(
        codec.endpoint,
        context.provider,
        raw,
        context.catalog,
        config.strict_requests,
        config.seed,
    )


def _keep(
    state: ServerState,
    codec: Codec,
    raw: bytes,
    context: ParseContext,
    exchange: Exchange,
    key: bytes,
    exact: bytes,
) -> None:
    parsed = kept_parse(state, context, exchange, key, exact)
    state.parsed.keep(codec.endpoint, context.provider, raw, parsed)


def kept_parse(
    state: ServerState, context: ParseContext, exchange: Exchange, key: bytes, exact: bytes
) -> Parsed:
    """A parse as `state.parsed` keeps it: with what it was parsed against."""
    config = state.config
    catalog = context.catalog
    return Parsed(
        exchange, key, exact, catalog, catalog.version, config.strict_requests, config.seed
    )


async def _admit(state: ServerState, exchange: Exchange, key: bytes, turn: Turn) -> Plan:
    """Charge the rate-limit budget, then ask the sources; a refusal answers with the 429.

    The stores' routes (files, batches: an Exchange with a `route`) are not charged: the API
    limits them apart from the models' budgets, and a batch's polls must not spend them.
    """
    if turn.budgets and exchange.route is None:
        try:
            turn.limits.update(
                await state.ratelimits.admit(exchange.model, _billed_tokens(exchange))
            )
        except StateUnavailable:
            raise
        except ApiError as refused:
            return Plan(source="limits", reply=Reply(error=refused))
    return await state.decider.decide(exchange, key)


def _render(
    state: ServerState,
    codec: Codec,
    plan: Plan,
    exchange: Exchange,
    ids_key: bytes,
    profile: Profile,
    key: bytes | None = None,
) -> Outgoing:
    if plan.recorded is not None:  # a recording is the provider's own bytes: never reshaped
        if state.ratelimits.enforced:
            return _counting_down(plan.recorded)
        return plan.recorded
    reply = plan.reply
    assert reply is not None, "a Plan has either a reply or a recording"
    if reply.error is not None:
        # (A named `context_length_exceeded` says this model's window, as the real check does.)
        catalog = state.catalog_of(profile)
        raise errors.in_context(
            reply.error, exchange.endpoint, lambda: catalog.get(exchange.model).context_window
        )
    config = state.config
    ctx = RenderContext(
        ids_key,
        config.created,
        config.honor_base64,
        config.seed,
        tool_call_id=profile.tool_call_id,
        keep_stop=profile.keep_stop,
        kept=state.kept_answers,
        # (a route's key also holds its method and path: not the content key codecs derive from)
        content_key=key if exchange.route is None else None,
    )
    outgoing = codec.render(reply, exchange, ctx)
    if profile.chat is not None:  # (a provider's profile: its hooks are loaded, a lookup)
        from mockai.profiles.hooks import Answer

        outgoing = profile.shape_answer(
            codec.endpoint, outgoing, Answer(exchange, ids_key, config.created)
        )
    return outgoing


def parse_context(
    state: ServerState,
    headers: Mapping[str, str],
    profile: Profile | None = None,
    *,
    form: bytes | None = None,
    method: str = "POST",
    params: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    head: bool = False,
) -> ParseContext:
    """What the codecs need from the server: the catalog, strictness, the route. What the server
    holds that a request refers to (stored responses, conversations, files) is added by
    `with_held`, once the body says which."""
    profile = profile or state.profile
    return ParseContext(
        headers,
        state.catalog_of(profile),
        state.config.strict_requests,
        provider=profile.name,
        form=form,
        method=method,
        params=dict(params or {}),
        # (every value of a repeated key: `include[]=a&include[]=b` goes upstream whole)
        query=MultiDict(query or {}),
        head=head,
        model_rules=state.config.cassette is None and state.config.upstream is None,
    )


# The endpoints whose requests may refer to what the server holds (see `with_held`).
REFERRING = frozenset({Endpoint.RESPONSES, Endpoint.IMAGE_EDITS})


async def with_held(
    state: ServerState, context: ParseContext, endpoint: Endpoint, body: Any
) -> ParseContext:
    """`context` with what the server holds that `body` refers to, read before parsing (which
    never waits on the state): the conversation before a Responses request's
    `previous_response_id`, the items of its `conversation`, the files a JSON image edit names.
    A request referring to none of them gets `context` as it is (the hot path pays nothing)."""
    if endpoint not in REFERRING or not isinstance(body, dict):
        return context
    if endpoint is Endpoint.RESPONSES:
        from mockai.api.responses import conversation_id  # (loaded with the codec: a lookup)

        history: tuple[Message, ...] | None = None
        held: list[dict[str, Any]] | None = None
        previous = body.get("previous_response_id")
        previous_ids: frozenset[str] = frozenset()
        if isinstance(previous, str):
            history = await state.responses.history(previous)
            previous_ids = await state.responses.item_ids(previous)
        conversation = conversation_id(body) if "conversation" in body else None
        if conversation is not None:
            held = await state.conversations.held_items(conversation)
        if previous is None and conversation is None:
            return context
        return replace(
            context,
            history=lambda response_id: history,
            conversation=lambda conversation_id: held,
            previous_ids=previous_ids,
        )
    if endpoint is Endpoint.IMAGE_EDITS and context.form is None:
        named = [body.get("mask"), *(body.get("images") or ())]
        wanted = {
            str(ref["file_id"]) for ref in named if isinstance(ref, dict) and "file_id" in ref
        }
        if not wanted:
            return context
        found = {file_id: await state.files.data(file_id) for file_id in wanted}
        return replace(context, file_data=found.get)
    return context


def _billed_tokens(exchange: Exchange) -> int:
    # Like the API, count the prompt plus the most the answer may use against the token budget:
    # what the request asks for, but no more than the model's output limit (no answer is longer;
    # `max_output_tokens: 10**19` would otherwise be charged, and spend any budget at once).
    asked, most = exchange.max_tokens or 0, exchange.model_max_output
    return exchange.prompt_tokens + (asked if most is None else min(asked, most))


async def read_body(
    request: web.Request, reservation: uploads.Reservation | None = None
) -> tuple[bytes, ApiError | None] | None:
    """The body, and the API's error for one that cannot be read (read once: after a failure,
    aiohttp would return the rest of the stream as if it were the body; the answer must then close
    the connection, `force_close()`). None if the client went away or did not send it all within
    the read timeout (the connection is then closed: see `gone`). `reservation`: what the
    request holds of the upload budget, which a chunked body takes as it grows large."""
    try:
        if request.content.is_eof():  # the usual case: the body came with the head
            return _decoded(request, await request.read())
        length = request.content_length
        if length is not None and length > request.client_max_size:
            # Refused unread, at once: reading it would fail only past the limit, after the
            # client sent 64 MiB, or never, when it sends less than it declared. (Ended here,
            # or aiohttp reads on for 10 s after the answer before it closes the connection.)
            request.content.feed_eof()
            return b"", errors.body_too_large(request.client_max_size)
        timeout = request.app[STATE].config.read_timeout
        if length is None and reservation is not None:  # (chunked: it reserves as it grows)
            return _decoded(request, await _read_chunked(request, reservation, timeout))
        return _decoded(request, await asyncio.wait_for(request.read(), timeout))
    except web.HTTPRequestEntityTooLarge:
        return b"", errors.body_too_large(request.client_max_size)
    except web.RequestPayloadError:  # a Content-Encoding (gzip, deflate) that does not decode
        # Nothing more can be read: said so, or aiohttp, draining the body after the answer,
        # meets the error again, logs it as unhandled and resets the connection.
        request.content.feed_eof()
        return b"", errors.invalid_json()
    except (asyncio.TimeoutError, ConnectionError) as error:
        why = "sent no whole body in time" if isinstance(error, asyncio.TimeoutError) else "left"
        log.debug("%s %s: the client %s; closing the connection", request.method, request.path, why)
        if request.transport is not None:
            request.transport.close()
        return None


async def _read_chunked(
    request: web.Request, reservation: uploads.Reservation, timeout: float
) -> bytes:
    """A chunked body: read without a reservation while it is small; once it grows past
    `RESERVED_FROM` it reserves the most a body may be, waiting its turn (its socket paused by
    aiohttp's flow control; the read timeout does not run while it waits, as for a body whose
    Content-Length reserved before it was read), then reads on (pipeline/uploads.py)."""
    limit = request.client_max_size
    body = bytearray()
    reading = _read_into(request, body, limit, until=uploads.RESERVED_FROM)
    if not await asyncio.wait_for(reading, timeout):
        await reservation.take(limit)
        await asyncio.wait_for(_read_into(request, body, limit), timeout)
    return bytes(body)


async def _read_into(
    request: web.Request, body: bytearray, limit: int, until: int | None = None
) -> bool:
    """Read `request`'s body on into `body`: True at its end, False once it holds `until`
    bytes; the 413 past `limit`."""
    while until is None or len(body) < until:
        chunk = await request.content.readany()
        if not chunk:
            return True
        body += chunk
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return False


# The content codings aiohttp decodes (any other reaching a handler: it left the body as sent;
# br and zstd without their library never get here, see server/unreadable.py).
_DECODED_CODINGS = frozenset({"gzip", "deflate", "br", "zstd"})


def _decoded(request: web.Request, body: bytes) -> tuple[bytes, ApiError | None]:
    """`body`, or the invalid-JSON error when it was sent with a content coding and did not
    decompress: a coding mockai cannot decode (`foo`), or a stream its decoder took without a
    complaint but cut short (a truncated br or gzip stream decodes to nothing, or to a prefix).
    A corrupt one fails in aiohttp (`RequestPayloadError`, below); all of them close the
    connection, as a client that compresses its body sees the same failure every way."""
    coding = request.headers.get("Content-Encoding")
    if not coding or coding.lower() == "identity" or not request.body_exists:
        # (no body sent: a GET, or a cancel, from a client whose defaults name a coding)
        return body, None
    if not (coding.isascii() and coding.lower() in _DECODED_CODINGS):
        return b"", errors.invalid_json()
    # A decoded body is JSON, or a form that its own parser checks; one that is neither did not
    # decompress whole (parsed twice, but only when compressed: no SDK compresses by default).
    import mockai.wire.multipart as multipart

    if multipart.is_form(request.headers.get("Content-Type")):
        return body, None
    try:
        jsonbytes.loads(body)
    except ValueError:
        return b"", errors.invalid_json()
    return body, None


def gone() -> web.Response:
    """What a handler returns for a client that is gone: aiohttp's write of it fails quietly."""
    return web.Response(status=408)


async def _begin(
    request: web.Request, state: ServerState, reservation: uploads.Reservation | None = None
) -> tuple[JournalEntry, bytes, ApiError | None] | None:
    """The request's journal entry, its body, and the error to answer if the body could not be
    read; None if the client is gone.

    The pipeline works on the body returned, never on the entry's: a body heavier than the
    journal's whole byte budget is dropped from its entry as soon as the entry is added."""
    read = await read_body(request, reservation)
    if read is None:
        return None
    raw, unreadable = read
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
        kept_body=raw,  # (the journal keeps the bytes: `entry.body` parses them when read)
    )
    # Journaled on arrival and completed in place: an attempt the client abandoned (a reset, a
    # hang, a stalled stream) is counted, and is visible as soon as the client sees its result.
    state.journal.add(entry)
    if state.metrics is not None:  # (in flight until `_finish` counts it, as the journal shows)
        state.metrics.arrived()
    return entry, raw, unreadable


def _journal_body(entry: JournalEntry, body: Any) -> None:
    """Show the request's body in its journal entry in a readable form (parsed, summarised),
    unless the journal dropped it (a body is weighed once, as it came)."""
    if not entry.dropped:
        entry.body = body


def _parse_json(entry: JournalEntry, raw: bytes) -> Any:
    # The entry keeps `raw` itself (what the journal weighed), read as JSON, or as text when it
    # is not JSON, only when someone reads it: parsed objects take ~5-25x their bytes.
    try:
        return entry.parse_kept(raw)  # (remembered: the journal's pages copy JSON bodies)
    except ValueError:
        raise errors.invalid_json() from None


def _request_body(
    entry: JournalEntry, raw: bytes, request: web.Request, codec: Codec
) -> tuple[Any, bytes | None]:
    """The body as the codec takes it, and the raw form when it is a multipart one.

    Forms are split at this stage (the codec gets their fields, files as `Upload`s); the
    journal keeps the form's fields with each file's summary, never the files' bytes.
    """
    content_type = request.headers.get("Content-Type")
    if not raw and codec.bodies in ("json_or_none", "form_or_none"):
        entry.body = None
        return None, None
    if codec.bodies not in ("json", "json_or_none"):
        # (The form parser loads with the first codec taking forms; after that, a lookup.)
        import mockai.wire.multipart as multipart

        if multipart.is_form(content_type):
            boundary = multipart.boundary_of(content_type or "")
            _journal_body(entry, f"<multipart form, {len(raw)} bytes>")
            if boundary is None:
                raise errors.bad_form("the Content-Type header has no boundary parameter")
            try:
                fields = multipart.fields(multipart.parse(raw, boundary))
            except multipart.MultipartError as error:
                raise errors.bad_form(str(error)) from None
            _journal_body(entry, multipart.summarised(fields))
            return fields, raw
    if codec.bodies in ("form", "form_or_none"):
        _journal_body(entry, raw.decode("utf-8", "replace") if raw else None)
        from mockai.api import forms

        raise forms.not_a_form(content_type)
    return _parse_json(entry, raw), None


def _check_auth(state: ServerState, request: web.Request, profile: Profile) -> None:
    required = state.config.require_api_key
    # A key asked for is checked under every profile: a provider that takes any key (Ollama)
    # does so only by default, as every profile does without --require-api-key.
    if required is None:
        return
    for name in profile.auth.key_headers:
        key = request.headers.get(name)
        # Azure OpenAI's clients send the key as `api-key` (Entra ID tokens come as bearers,
        # which win); LiteLLM's `x-litellm-api-key` wins over `Authorization`.
        if key is not None and (name != "api-key" or "Authorization" not in request.headers):
            if not same_secret(key.strip(), required):
                raise errors.incorrect_api_key(key.strip())
            return
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not given.strip():
        raise errors.missing_api_key()
    if not same_secret(given.strip(), required):
        raise errors.incorrect_api_key(given.strip())


def _internal_error(request: web.Request, entry: JournalEntry, profile: Profile) -> Body:
    """A bug in mockai: said in the API's shape (a 500), with the traceback in the log."""
    log.exception("mockai failed while answering %s %s", request.method, request.path)
    internal = ApiError(500, "mockai internal error (see the server log)", type="server_error")
    entry.error = _journaled(internal)
    return profile.errors.render(internal)


def _journaled(error: ApiError) -> dict[str, Any]:
    """What the journal keeps of an error: OpenAI's four keys, whatever the provider's body."""
    return error.body()["error"]


# The largest error body whose error object is journaled: an API's are well under 1 KB, and the
# journal keeps the object beside the body it weighs.
_ERROR_SENT_MAX = 8 * 1024


def _error_sent(body: bytes) -> dict[str, Any] | None:
    """OpenAI's four keys of the error object in an error answer's body, or None (not JSON, no
    `error` object, larger than an API's errors are)."""
    if len(body) > _ERROR_SENT_MAX:
        return None
    try:
        sent = jsonbytes.loads(body)
    except ValueError:
        return None
    error = sent.get("error") if isinstance(sent, dict) else None
    if not isinstance(error, dict):
        return None
    return {key: error.get(key) for key in ("message", "type", "param", "code")}


def error_body(error: ApiError) -> Body:
    """The wire form of an ApiError (OpenAI's envelope)."""
    return Body(error.status, jsonbytes.dumps_lenient(error.body()))


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
    profile: Profile,
    billed: int = 0,
) -> web.StreamResponse:
    if not limits or "x-ratelimit-limit-requests" not in limits:
        # Without the shared state the answer goes out without the counts (a 503 says why).
        with contextlib.suppress(StateUnavailable):
            limits = {**await state.ratelimits.headers(entry.model or "*"), **limits}
    if profile.limits is not None:
        limits = profile.limits.reshape(limits, outgoing.status, billed)
    headers = standard_headers(entry.request_id, limits)
    if "Origin" in request.headers:  # a browser's request: readable by its page (wire/cors.py)
        headers.update(cors.ANSWER_HEADERS)
    warnings = plan.reply.warnings if plan is not None and plan.reply is not None else ()
    if not isinstance(outgoing, Relay) and outgoing.warnings:  # the codec's, after the reply's
        warnings = (*warnings, *outgoing.warnings)
    if warnings:
        entry.warnings = list(warnings)
        # (a warning may quote the client's text: a tool's name holding a line break)
        headers["x-mockai-warning"] = errors.header_text(" | ".join(warnings))
    faults = plan.faults.for_answer(outgoing) if plan is not None else NO_FAULTS
    entry.faults = faults.names()
    timing = plan.timing if plan is not None else NO_TIMING
    # 0: no response was sent, or not yet: an answer waiting out its latency has sent nothing,
    # and a journal read meanwhile (a client that gave up) must not see its status.
    waits = timing.latency is not None
    entry.status = 0 if faults.no_response or waits else outgoing.status
    entry.response = outgoing
    if entry.error is None and outgoing.status >= 400 and isinstance(outgoing, Body):
        # A recorded or relayed error (a cassette's, the upstream's) is journaled, logged and
        # counted by its code as mockai's own errors are.
        entry.error = _error_sent(outgoing.body)
    entry.response_headers = headers  # filled in as delivery goes; completed below
    if outgoing.headers:
        # An answer relayed from an upstream carries the upstream's x-request-id (named in lower
        # case: `relayed_headers`), which replaces mockai's: the journal and the log name the id
        # the client got.
        entry.request_id = outgoing.headers.get("x-request-id", entry.request_id)
    journal = state.journal_view
    # Visible to every worker before the client sees the answer: published now and completed
    # once delivered, or, for a body answered at once (no latency, no fault, not large:
    # `deliver` only makes the response, which aiohttp writes after this returns), published once,
    # complete, just before returning it: one round trip to the shared state instead of two.
    published_once = (
        isinstance(outgoing, Body)
        and timing.latency is None
        and not entry.faults
        and not writes_in_slices(outgoing)
    )
    shared = state.backend.shared
    if shared and not published_once:
        await _shared(journal.publish(entry))
    metrics = state.metrics
    streaming = streamed(outgoing)  # (an upstream's stream relayed too)
    if metrics is not None:
        metrics.started(streaming)
    try:
        response = await deliver(
            request,
            outgoing,
            headers,
            arrived=entry.arrived,
            timing=timing,
            faults=faults,
            delivery=state.delivery,
            # (the latency over, the headers go out: a stream's entry says so while it flows)
            sending=partial(_sent, entry, outgoing.status) if waits else None,
        )
        if response.status == 204 and not response.prepared and _gone(request):
            # A client that left before the headers (during `latency`) is let go with a 204 that
            # is never written (`deliver`'s `_no_response`): no response was sent, as for a
            # `hang` whose client left. (Only a 204 is looked at: nothing else pays for it.)
            entry.status = 0
        return response
    finally:
        sent = {**headers, **outgoing.headers} if outgoing.headers else headers
        # Redacted as the request's are: an upstream's `set-cookie` or `openai-organization`
        # is relayed to the client but kept nowhere, as cassettes keep it nowhere.
        entry.response_headers = redact_headers(sent)
        # (set by delivery as the headers went out, in mockai's own dict: `sent` may hold the
        # upstream's value, or a profile's empty one, in its place)
        entry.headers_ms = ascii_count(headers.get("openai-processing-ms"))
        entry.duration_ms = (time.monotonic() - entry.arrived) * 1000
        if shared and published_once:
            await _shared(journal.publish(entry))
        state.journal.completed(entry)  # its answer's bytes count against the budget
        if metrics is not None:
            metrics.finished(entry, outgoing, streaming)
        if state.config.log_requests:  # (--quiet: the log line's module never loads)
            from mockai.server.logs import log_request

            log_request(state.access_log, entry)
        if shared and not published_once:
            await _shared(journal.complete(entry))


def _sent(entry: JournalEntry, status: int) -> None:
    entry.status = status


def _gone(request: web.BaseRequest) -> bool:
    """Whether the client's connection is closed (or closing: delivery dropped it)."""
    transport = request.transport
    return transport is None or transport.is_closing()


def _counting_down(recorded: Outgoing) -> Outgoing:
    """A recording answered under budgets the user set (`--limits`, a scenario's `limits:`):
    the budget's `x-ratelimit-*` count down on it, as on every answer, rather than the
    recording's (a client pacing itself on `remaining` saw 9999 and then a 429)."""
    if isinstance(recorded, Body | EventStream) and any(
        name.startswith("x-ratelimit-") for name in recorded.headers
    ):
        pairs = [(k, v) for k, v in recorded.headers.items() if not k.startswith("x-ratelimit-")]
        # (A recording's repeated header, a CIMultiDict, keeps every value: replay.py.)
        multi = isinstance(recorded.headers, CIMultiDict)
        kept: Mapping[str, str] = CIMultiDict(pairs) if multi else dict(pairs)
        return replace(recorded, headers=kept)
    return recorded


async def _shared(update: Awaitable[None]) -> None:
    """A journal update that must not break the answer when the shared state is away."""
    try:
        await update
    except StateUnavailable as error:
        log.debug("journal not shared: %s", error.message)


Produced = Outgoing | Awaitable[Outgoing]


async def simple(
    request: web.Request,
    produce: Callable[[ServerState], Produced],
    profile: Profile | None = None,
) -> web.StreamResponse:
    """Serve a non-generating request (models, 404s, 405s) with the standard headers and journal,
    as `profile`'s provider (the server's own by default); `produce` may be a coroutine function
    (the stores may wait on the shared state)."""
    return await _static(request, lambda state, entry, raw: produce(state), profile)


async def preflight(request: web.Request, profile: Profile | None = None) -> web.StreamResponse:
    """A browser's CORS preflight (wire/cors.py), journaled like any request: allowed whatever
    the server's key, since a browser sends none with it."""
    allowed = cors.preflight_headers(request.headers)
    answer = Body(200, b"", "text/plain; charset=utf-8", allowed)
    return await _static(request, lambda state, entry, raw: answer, profile, authenticated=False)


async def with_body(
    request: web.Request,
    produce: Callable[[ServerState, Any], Produced],
    profile: Profile | None = None,
) -> web.StreamResponse:
    """Serve a request to the API's stored objects: `produce(state, body)` gets the parsed JSON
    body (None without one); a body that is not JSON is the API's 400."""

    def parsed(state: ServerState, entry: JournalEntry, raw: bytes) -> Produced:
        return produce(state, _parse_json(entry, raw) if raw else None)

    return await _static(request, parsed, profile)


async def _static(
    request: web.Request,
    produce: Callable[[ServerState, JournalEntry, bytes], Produced],
    profile: Profile | None,
    *,
    authenticated: bool = True,
    turn: Turn | None = None,
) -> web.StreamResponse:
    """Serve a request `produce` answers; `turn`: where it leaves the Plan of a source that
    answered instead (a recording's timing, the upstream's relay)."""
    state = request.app[STATE]
    profile = profile or state.profile
    begun = await _begin(request, state)
    if begun is None:
        return gone()
    entry, raw, unreadable = begun
    entry.source = "static"
    limits: dict[str, str] = {}
    faulted: Plan | None = None
    try:
        if authenticated:
            _check_auth(state, request, profile)
        if unreadable is not None:
            raise unreadable
        if authenticated:  # (a browser's preflight is answered whatever is asked)
            faulted = await _route_fault(state, request, raw)
        if faulted is not None:
            entry.source, entry.rule = faulted.source, faulted.name
            if faulted.reply is not None and faulted.reply.error is not None:
                raise faulted.reply.error
        if faulted is not None and faulted.recorded is not None:
            outgoing = faulted.recorded  # (nothing, or a gateway's page: the fault's own)
        else:
            produced = produce(state, entry, raw)
            outgoing = await produced if inspect.isawaitable(produced) else produced
    except ApiError as error:
        error = profile.errors.adapt(error)
        outgoing = profile.errors.render(error)
        limits.update(error.headers)
        entry.error = _journaled(error)
    except Exception:
        outgoing = _internal_error(request, entry, profile)
    plan = faulted or (turn.plan if turn is not None else None)
    response = await _finish(request, state, entry, outgoing, limits, plan, profile)
    if unreadable is not None:
        response.force_close()  # the rest of the request cannot be parsed: no keep-alive
    return response


async def _route_fault(state: ServerState, request: web.Request, raw: bytes) -> Plan | None:
    """The fault `x-mockai-fault` or `--chaos` gives a request to a route that generates
    nothing (the model list, conversations, stored lists, an unknown path): "over all traffic",
    as for every other request (the model list, an app's start-up probe, had none, and a
    malformed header there was ignored rather than a 400). None when it gets none; no delay
    (`--latency` and `x-mockai-latency` time generated answers)."""
    planner = state.faults
    if HEADER_FAULT not in request.headers and not planner.chaos:
        return None  # (nearly every request: no key made, no count taken)
    # The request's identity, as a generated answer's exact key is its body's: its attempts
    # (`attempts=N`) and chaos draws are its own, the same run after run.
    material = f"{state.config.seed}|{request.method} {request.rel_url}|".encode() + raw
    exact = hashlib.blake2b(material, digest_size=32).digest()
    salt = occurrence_key(exact, await state.occurrences.take(exact))
    injection = await planner.inject(None, exact, salt, request.headers)
    return injection.preempt()
