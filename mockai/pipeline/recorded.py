"""The requests loaded cassettes recorded, parsed once: at load, or the first time they come.

A load test or a test suite replaying a cassette sends the requests it recorded, byte for byte
(its client writes the same arguments the same way). Those bodies are known when the server
starts, so each one's parse (validation, normalisation into an Exchange, its two keys) is pinned
in the server's kept parses (pipeline/parsed.py), and no replay after it parses its body,
however many other bodies came between:

- a cassette this server loaded is parsed at load, as its first request would parse it: ~14 us
  a recording, a few percent of its load (~0.3 ms a recording), and a load test replaying it
  skips the parse from its first request;
- a cassette shared with an earlier server of the process (cassette/shared.py: a test suite
  starting a server per test) is not: its recorded requests are expected, each parsed and
  pinned the first time it comes. The server skipped the load, and a test sending a few of a
  500-recording cassette's requests would otherwise parse all 500 (7 ms) at every start.

Pinned is only what a parse at load (or on arrival) makes exactly as a request would: a POST to
an endpoint whose parse reads nothing but the body and the catalog (`PURE_ENDPOINTS`), through
the server's own provider (its `/v1` routes) when that provider leaves bodies as sent. A
recording the server refuses (a model it does not list, a field strict mode rejects) is not
pinned: its request is parsed each time it comes, and refused then, as without a pin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from mockai.api.codecs import CODECS
from mockai.pipeline.parsed import PURE_ENDPOINTS, Expected
from mockai.pipeline.run import kept_parse, parse_checked, parse_context
from mockai.server.state import ServerState
from mockai.wire import jsonbytes

# The API routes (as `cassette.matching.route_of` names them) whose parses can be pinned.
_PINNABLE = {ref.path: ref.endpoint for ref in CODECS if ref.endpoint in PURE_ENDPOINTS}


def pin_recorded_requests(state: ServerState, sources: Iterable[object]) -> int:
    """Pin the parses of the recorded requests of `sources` (those with `recorded_requests()`,
    as cassette.replay.ReplaySource) that can be pinned: made now for a source this server
    loaded, on arrival for one it shares (`shared`). How many were pinned or expected."""
    profile = state.profile
    if profile.requests is not None:  # the provider rewrites bodies: parses are not by bytes
        return 0
    context = parse_context(state, {}, profile)  # (a request's own headers replace these)
    pinned = 0
    for source in sources:
        recorded_requests = getattr(source, "recorded_requests", None)
        if recorded_requests is None:
            continue
        if getattr(source, "shared", False):
            expected = _expected(source, context.provider)
            state.parsed.expect(expected)
            pinned += len(expected)
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


def _expected(source: Any, provider: str) -> Mapping[bytes, Expected]:
    """The recorded requests of a shared `source` to pin as they come through `provider`: made
    once, for every server sharing the source (`source.derived`), and never changed."""
    key = (__name__, provider)
    expected = source.derived.get(key)
    if expected is None:
        expected = {}
        for method, route, raw in source.recorded_requests():
            endpoint = _PINNABLE.get(route)
            if method == "POST" and endpoint is not None:
                expected[raw] = Expected(endpoint, provider, raw)
        source.derived[key] = expected
    return cast("Mapping[bytes, Expected]", expected)
