"""Requests to what the API keeps for a client (stored responses and chat completions,
conversations), when a cassette or an upstream may answer them before the local stores.

The upstream keeps these objects (it made them): a recording proxy forwards and records every
such request, as it does files and batches, and a replay answers it from those recordings, by
method, route and body; what no recording matches is the local stores'. A server with neither
cassette nor upstream goes straight to the stores (`run.with_body`), without loading the
cassette modules.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import MultiDict

from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.journal import JournalEntry
from mockai.pipeline.run import Produced, Turn, _parse_json, _static, with_body
from mockai.profiles.base import Profile
from mockai.server.state import STATE, ServerState
from mockai.wire.outgoing import Outgoing

if TYPE_CHECKING:
    from mockai.pipeline.decide import Source


async def kept(
    request: web.Request,
    produce: Callable[[ServerState, Any], Produced],
    profile: Profile,
    route: str,
    endpoint: Endpoint,
) -> web.StreamResponse:
    """Serve a request to what the API keeps (stored responses and completions, conversations)
    at `route` (`/conversations/conv_1/items`): as `with_body`, unless a cassette or the upstream
    answers it first.

    The upstream keeps these objects (it made them): a proxy forwards and records every such
    request, as it does files and batches, and a replay answers from those recordings, by
    method, route and body; what no recording matches is the local stores' (`produce`)."""
    sources = _recording_sources(request.app[STATE])
    if not sources:  # (every server without cassette or upstream: as before)
        return await with_body(request, produce, profile)
    turn = Turn()

    async def answered(state: ServerState, entry: JournalEntry, raw: bytes) -> Outgoing:
        body = _parse_json(entry, raw) if raw else None
        if body is None or isinstance(body, dict):  # (else the store's 400 says what is wrong)
            exchange = _stored_exchange(request, profile, route, endpoint, body or {})
            for source in sources:
                plan = await source.plan(exchange, b"")
                if plan is not None and plan.recorded is not None:
                    turn.plan = plan
                    entry.source, entry.rule = plan.source, plan.name
                    return plan.recorded
        produced = produce(state, body)
        return await produced if inspect.isawaitable(produced) else produced

    return await _static(request, answered, profile, turn=turn)


def _recording_sources(state: ServerState) -> list[Source]:
    """The server's cassette replay and upstream sources (none without either: their modules
    are not even loaded)."""
    if state.config.cassette is None and state.config.upstream is None:
        return []
    from mockai.cassette.record import UpstreamSource
    from mockai.cassette.replay import ReplaySource

    kinds = (ReplaySource, UpstreamSource)
    return [source for source in state.decider.sources if isinstance(source, kinds)]


def _stored_exchange(
    request: web.Request, profile: Profile, route: str, endpoint: Endpoint, body: dict[str, Any]
) -> Exchange:
    """A request to a stored object as the cassette sources see a files or batches one: its
    method, route, query and body (HEAD as GET, which is what is forwarded or recorded)."""
    return Exchange(
        endpoint=endpoint,
        model="",
        body=body,
        headers=request.headers,
        provider=profile.name,
        method="GET" if request.method == "HEAD" else request.method,
        route=route,
        query=MultiDict(request.query),  # (a repeated key's every value: `include[]`)
        head=request.method == "HEAD",
    )
