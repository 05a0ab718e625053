"""The requests loaded cassettes recorded, parsed once, at load.

A load test or a test suite replaying a cassette sends the requests it recorded, byte for byte
(its client writes the same arguments the same way). Those bodies are known when the server
starts, so each one's parse (validation, normalisation into an Exchange, its two keys) is made
then, as its first request would make it, and pinned in the server's kept parses
(pipeline/parsed.py): a replayed request does not parse its body, the first time included.

Pinned is only what a parse at load makes exactly as a request would: a POST to an endpoint
whose parse reads nothing but the body and the catalog (`PURE_ENDPOINTS`), through the server's
own provider (its `/v1` routes) when that provider leaves bodies as sent. A recording the server
refuses (a model it does not list, a field strict mode rejects) is not pinned: its request is
parsed when it comes, and refused then, as without a pin.
"""

from __future__ import annotations

from collections.abc import Iterable

from mockai.api.codecs import CODECS
from mockai.pipeline.parsed import PURE_ENDPOINTS
from mockai.pipeline.run import kept_parse, parse_checked, parse_context
from mockai.server.state import ServerState
from mockai.wire import jsonbytes

# The API routes (as `cassette.matching.route_of` names them) whose parses can be pinned.
_PINNABLE = {ref.path: ref.endpoint for ref in CODECS if ref.endpoint in PURE_ENDPOINTS}


def pin_recorded_requests(state: ServerState, sources: Iterable[object]) -> int:
    """Parse the recorded requests of `sources` (those with `recorded_requests()`, as
    cassette.replay.ReplaySource) that can be pinned, and pin them; how many."""
    profile = state.profile
    if profile.requests is not None:  # the provider rewrites bodies: parses are not by bytes
        return 0
    context = parse_context(state, {}, profile)  # (a request's own headers replace these)
    pinned = 0
    for source in sources:
        recorded_requests = getattr(source, "recorded_requests", None)
        if recorded_requests is None:
            continue
        for method, route, raw in recorded_requests():
            endpoint = _PINNABLE.get(route)
            if method != "POST" or endpoint is None:
                continue
            codec = state.codecs[endpoint]
            try:
                body = jsonbytes.loads(raw)
                exchange, key, exact = parse_checked(state, codec, body, body, context)
            except Exception:  # (ApiError, ValueError, or a failure the request would meet too)
                continue  # answered when it comes as it would be unpinned; the cassette loads
            parsed = kept_parse(state, context, exchange, key, exact)
            state.parsed.pin(endpoint, context.provider, raw, parsed)
            pinned += 1
    return pinned
