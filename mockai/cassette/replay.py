"""Replay: the Source that answers from cassettes.

Each interaction is turned into its wire answer once, at load (a `Body`, or an `EventStream`
split at the recorded event boundaries and paced by the recorded offsets scaled by the replay
speed), and indexed by its match keys: answering costs one normalisation of the incoming body and
one dict lookup. Identical requests replay their recordings in order (play counts, as vcrpy);
once all are played, `allow_repeats` keeps replaying the last one, otherwise the request misses.
"""

from __future__ import annotations

import difflib
import logging
import pickle
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from multidict import CIMultiDict

from mockai.cassette.format import Cassette, Interaction
from mockai.cassette.headers import HOP_BY_HOP
from mockai.cassette.matching import (
    DEFAULT_MATCH_ON,
    MATCHERS,
    Index,
    MatcherRegistry,
    RequestView,
    failures,
)
from mockai.cassette.redact import Scrubber, is_secret_header
from mockai.delivery.timing import Fixed
from mockai.pipeline.exchange import Exchange
from mockai.pipeline.reply import NO_TIMING, Plan, Timing
from mockai.wire import jsonbytes
from mockai.wire.errors import header_problem
from mockai.wire.events import completing_tail, split_events
from mockai.wire.outgoing import Body, EventStream, Outgoing
from mockai.wire.usage import usage_in

log = logging.getLogger("mockai.cassette")

ENDPOINT_ROUTES = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
    "responses": "/responses",
    "moderations": "/moderations",
    "images": "/images/generations",
    "image_edits": "/images/edits",
    "image_variations": "/images/variations",
    "speech": "/audio/speech",
    "transcriptions": "/audio/transcriptions",
    "translations": "/audio/translations",
}


def route_for(exchange: Exchange) -> str:
    """The API route a request addresses (with its ids: `/files/file-abc/content`)."""
    return exchange.route or ENDPOINT_ROUTES[exchange.endpoint.value]


def query_of(exchange: Exchange) -> str:
    """The request's query string (lists' `limit`, `after`, ...), as recorded URLs hold it."""
    query = exchange.query
    return urlencode(list(query.items())) if query else ""  # (most requests have none)


def sends_no_body(exchange: Exchange) -> bool:
    """Whether the request is forwarded, recorded and matched without a body: GET and DELETE,
    and a POST to an id route with nothing in it (a batch's cancel), whose parsed body is `{}`
    while the upstream (and the recording) got none: the recorder's rule (record.py)."""
    return exchange.method in ("GET", "DELETE") or (
        exchange.route is not None and not exchange.body
    )


# Recorded headers that are not replayed: hop-by-hop and framing headers (the body is replayed
# decoded, with its own framing), the content type (sent separately), and what mockai sets itself
# for every answer (a fresh x-request-id matching the journal, the processing time, the date).
_NOT_REPLAYED = HOP_BY_HOP | {
    "content-encoding",
    "content-type",
    "date",
    "server",
    "via",
    "alt-svc",
    "strict-transport-security",
    "x-request-id",
    "openai-processing-ms",
    "openai-version",
}
# Cloudflare's own headers, and CORS: mockai answers a browser itself (wire/cors.py), so an
# origin the recording's client had does not lock the replay to it.
_OWN_PREFIXES = ("cf-", "access-control-")
MAX_NEAR_MISSES = 3


def replayed_headers(interaction: Interaction) -> Mapping[str, str]:
    """The recorded headers an answer repeats (rate limits, retry-after, x-should-retry, ...),
    every value of each, in order (vcrpy replays `vary: [Origin, Accept-Encoding]` as two
    lines). Made once, at load: a plain dict when no header repeats (delivery merges it as
    cheaply as any answer's), a CIMultiDict otherwise."""
    pairs = [
        (name.lower(), value)
        for name, values in interaction.response_headers.items()
        if name.lower() not in _NOT_REPLAYED
        and not name.lower().startswith(_OWN_PREFIXES)
        and not is_secret_header(name)
        for value in values
        if header_problem(name, value) is None  # (hand-edited: HTTP cannot send it)
    ]
    single = dict(pairs)
    if len(single) == len(pairs):
        return single
    return CIMultiDict(pairs)


def replayed_content_type(interaction: Interaction) -> str:
    """The recorded content type, or JSON's when HTTP cannot send it (a hand edit: `mockai
    check` names it), as when the recording does not say."""
    content_type = interaction.content_type
    if header_problem("content-type", content_type) is not None:
        return "application/json"
    return content_type


def wire_answer(interaction: Interaction, speed: float) -> tuple[Outgoing, Timing]:
    """The recorded answer as mockai delivers it, paced at `speed` (0: as fast as possible)."""
    headers = replayed_headers(interaction)
    content_type = replayed_content_type(interaction)
    recorded = interaction.timing
    if not interaction.is_stream:
        body = Body(
            interaction.status,
            interaction.response_body,
            content_type,
            headers,
            usage=usage_in(interaction.response_body),  # searched once, not per replay
        )
        wait = recorded.duration if recorded.duration is not None else recorded.latency
        return body, _latency(wait, speed)
    frames = split_events(interaction.response_body)
    offsets = None
    if speed > 0 and recorded.events is not None and len(recorded.events) == len(frames):
        offsets = tuple(offset / speed for offset in recorded.events)
    stream = EventStream(
        frames=frames,
        tail=completing_tail(frames),
        status=interaction.status,
        content_type=content_type,
        headers=headers,
        offsets=offsets,
        error_frame=_error_frame(frames),
    )
    return stream, _latency(recorded.latency, speed)


def _error_frame(frames: Sequence[bytes]) -> Callable[[int], bytes] | None:
    """The in-band error a fault (`error_event_after`) ends a replayed stream with: the
    Responses API's `error` event for its streams (their events are named `response.*`), which
    the SDKs yield as an event; chat's `{"error": ...}` chunk (the delivery's default) for the
    others."""
    if frames and frames[0].startswith(b"event: response."):
        from mockai.api.responses import error_event  # (with the codec: loaded by then)

        return error_event
    return None


def _latency(seconds: float | None, speed: float) -> Timing:
    if speed <= 0 or not seconds:
        return NO_TIMING
    return Timing(latency=Fixed(seconds / speed))


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str  # `file.yaml#3`: the interaction's file and position, for the journal and reports
    view: RequestView
    answer: Outgoing
    timing: Timing
    raw: bytes | None  # the request's body as recorded


class ReplaySource:
    """Answers requests from recorded interactions (the `cassette` source)."""

    loaded = True  # a cassette is loaded: requests nothing matches get the no-match error

    def __init__(
        self,
        cassettes: Sequence[Cassette],
        *,
        label: str = "cassette",
        match_on: Sequence[str] = DEFAULT_MATCH_ON,
        registry: MatcherRegistry = MATCHERS,
        scrubber: Scrubber | None = None,
        speed: float = 0.0,
        allow_repeats: bool = False,
    ) -> None:
        self.label = label
        self.registry = registry
        self.match_on = registry.resolve(match_on)
        self.scrubber = scrubber or Scrubber()
        self.allow_repeats = allow_repeats
        self.entries = [
            self._entry(cassette, position, interaction, speed)
            for cassette in cassettes
            for position, interaction in enumerate(cassette.interactions)
        ]
        self.plays = [0] * len(self.entries)
        self.shared = False  # (made here: its load is this server's own)
        self._recorded: tuple[tuple[str, str, bytes], ...] | None = None
        # What other stages derive from the recordings, made once for every server sharing them
        # (pipeline/recorded.py), keyed by what they are made with.
        self.derived: dict[Hashable, object] = {}
        self._index_entries()

    @classmethod
    def sharing(cls, loaded: ReplaySource, *, allow_repeats: bool) -> ReplaySource:
        """A source replaying what `loaded` replays (its entries, index and alike-table, which
        nothing changes once made), with play counts of its own (cassette/shared.py)."""
        source = cls.__new__(cls)
        source.label = loaded.label
        source.registry = loaded.registry
        source.match_on = loaded.match_on
        source.scrubber = loaded.scrubber
        source.allow_repeats = allow_repeats
        source.entries = loaded.entries
        source.index = loaded.index
        source.deployed = loaded.deployed
        source._alike = loaded._alike
        source.plays = [0] * len(loaded.entries)
        source.shared = True  # (its load was another server's: pipeline/recorded.py)
        source._recorded = loaded._recorded_requests()
        source.derived = loaded.derived
        return source

    def _index_entries(self) -> None:
        self.index = Index([entry.view for entry in self.entries], self.match_on, self.registry)
        # Recordings of Azure deployments as a deployment route's request reads (their
        # deployment as the model: `RequestView.as_deployed`), when that changes any of them.
        deployed = [entry.view.as_deployed() for entry in self.entries]
        changed = any(d is not e.view for d, e in zip(deployed, self.entries, strict=True))
        self.deployed = Index(deployed, self.match_on, self.registry) if changed else None
        self._alike = self._alike_table()

    def compact(self) -> None:
        """Lay the recordings out anew, in memory of their own: call it once what they were
        loaded from (the cassettes' interactions) is gone.

        Made while the YAML loader's nodes and the interactions were alive, the entries' small
        objects sit scattered among them in the interpreter's 1 MiB arenas (pymalloc), and an
        arena is held while one object in it lives: a 10,000-interaction cassette kept 161
        arenas for 50 MB of objects, its server 193 MiB. Packed into one bytes object, released
        and unpacked, the same objects fill a few arenas (99 MiB; ~0.3 s more at load).
        """
        try:
            # (Our own objects, unpacked at once: nothing from outside is unpickled.)
            packed = pickle.dumps(self.entries, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, RecursionError, TypeError, AttributeError) as error:
            log.debug("cassette %s: kept as loaded (%s)", self.label, error)
            return
        self.entries = []
        self._recorded = None  # (they refer to the entries' bodies)
        self.derived.clear()
        self._index_entries()  # (the index and the table refer to the entries' views)
        self.entries = pickle.loads(packed)
        del packed
        self._index_entries()

    def _entry(
        self, cassette: Cassette, position: int, interaction: Interaction, speed: float
    ) -> _Entry:
        view = RequestView.recorded(
            interaction.method, interaction.uri, interaction.request_body, self.scrubber
        )
        answer, timing = wire_answer(interaction, speed)
        name = f"{self._file_name(cassette)}#{position}"
        return _Entry(name, view, answer, timing, interaction.request_body)

    def _file_name(self, cassette: Cassette) -> str:
        # A file of a replayed folder is named by its path in the folder (`a/test_x.yaml`):
        # pytest-recording layouts repeat file names across folders.
        root = Path(self.label)
        if root.is_dir() and cassette.path.is_relative_to(root):
            return cassette.path.relative_to(root).as_posix()
        return cassette.name

    def _alike_table(self) -> dict[tuple[str, str, bytes], list[int]]:
        """The candidates of each recorded JSON request without a query, by its method, route
        and canonical body."""
        table: dict[tuple[str, str, bytes], list[int]] = {}
        for entry in self.entries:
            view = entry.view
            if isinstance(view.body, dict) and not view.query:
                alike = (view.method, view.path, view.canonical)
                if alike not in table:
                    table[alike] = self.index.candidates(view)
        return table

    def _recorded_alike(self, exchange: Exchange) -> list[int] | None:
        """The candidates of a request whose JSON is a recorded request's, byte for byte once
        canonical (what a client replaying its own recording sends), without making its view;
        None when it is not one (the view decides).

        Such a request's view would be that recording's very view: the same method, route and
        (empty) query, the same JSON, which normalises the same and, equal to a scrubbed
        recording's, holds no secret to scrub. So whatever the matchers, it matches what the
        recording's view matches."""
        table = self._alike
        body = exchange.body
        if (
            not isinstance(body, dict)
            or exchange.form is not None
            or exchange.query
            or exchange.method in ("GET", "DELETE")
        ):
            return None
        return table.get((exchange.method, route_for(exchange), jsonbytes.canonical(body)))

    def recorded_requests(self) -> Iterator[tuple[str, str, bytes]]:
        """The method, API route and body bytes of each recorded request with a body (what a
        client replaying its recording sends again), each distinct one once."""
        return iter(self._recorded_requests())

    def _recorded_requests(self) -> tuple[tuple[str, str, bytes], ...]:
        # (Made once, and shared with the sources `sharing` this one: read at every start.)
        if self._recorded is None:
            requests = dict.fromkeys(
                (entry.view.method, entry.view.path, entry.raw)
                for entry in self.entries
                if entry.raw
            )
            self._recorded = tuple(requests)  # (each distinct one once, in recorded order)
        return self._recorded

    def view(self, exchange: Exchange) -> RequestView:
        """How the matchers see an incoming request."""
        body = None if sends_no_body(exchange) else exchange.body
        return RequestView.incoming(
            route_for(exchange),
            body,
            self.scrubber,
            method=exchange.method,
            query=query_of(exchange),
            form=exchange.form,
        )

    async def plan(self, exchange: Exchange, key: bytes) -> Plan | None:
        """The next unplayed recording matching the request, or None."""
        candidates = self._recorded_alike(exchange)
        if candidates is None:
            candidates = self._candidates(exchange, self.view(exchange))
        chosen = next((c for c in candidates if self.plays[c] == 0), None)
        if chosen is None and candidates and self.allow_repeats:
            chosen = candidates[-1]
        if chosen is None:
            return None
        self.plays[chosen] += 1
        entry = self.entries[chosen]
        return Plan(source="cassette", recorded=entry.answer, name=entry.name, timing=entry.timing)

    def _candidates(self, exchange: Exchange, incoming: RequestView) -> list[int]:
        """The recordings `incoming` matches, in recording order. A request to an Azure
        deployment route also matches a recording of that deployment whose body names another
        model (a recording of Azure itself); a recording's body as recorded still matches (one
        made through an `--upstream` naming a deployment, whatever the app's route)."""
        found = self.index.candidates(incoming)
        if exchange.deployment is None or self.deployed is None:
            return found
        return sorted({*found, *self.deployed.candidates(incoming)})

    def rewind(self) -> None:
        """Forget what was played: every recording can be replayed again."""
        self.plays = [0] * len(self.entries)

    reset = rewind  # what a server reset calls on every source

    # --- the no-match report -------------------------------------------------------------------

    def near_misses(self, exchange: Exchange) -> list[str]:
        """The closest recordings and, matcher by matcher and field by field, why each missed."""
        incoming = self.view(exchange)
        head = (
            f"cassette {self.label}: {len(self.entries)} interaction(s), "
            f"match_on: {', '.join(self.match_on)}"
        )
        if not self.entries:
            return [head + " - the cassette is empty."]
        consumed = self._candidates(exchange, incoming)
        if consumed:
            names = ", ".join(self.entries[c].name for c in consumed)
            verb = "was" if len(consumed) == 1 else "were"
            return [
                head,
                (
                    f"  {names} match(es) this request but {verb} already played: identical "
                    "requests replay their recordings in order, once each. Record it again "
                    "(--record-mode new_episodes) or replay the last one repeatedly "
                    "(--allow-repeats)."
                ),
            ]
        return [head, *self._closest(incoming)]

    def _closest(self, incoming: RequestView) -> list[str]:
        ranked = []
        for position, entry in enumerate(self.entries):
            failed = failures(entry.view, incoming, self.match_on, self.registry)
            ranked.append((len(failed), -_similarity(entry.view, incoming), position, failed))
        ranked.sort(key=lambda item: item[:3])
        best = ranked[0][0]
        if best == len(self.match_on):
            return ["  nothing in it comes close: " + _routes_held(self.entries)]
        lines = ["  closest:"]
        for failed_count, _, position, failed in ranked[:MAX_NEAR_MISSES]:
            if failed_count > best:
                break
            entry = self.entries[position]
            passed = [name for name in self.match_on if name not in dict(failed)]
            lines.append(
                f"  {entry.name} ({entry.view.method} {entry.view.path}): "
                f"matched {', '.join(passed) or 'nothing'}; differs in "
                f"{', '.join(name for name, _ in failed)}"
            )
            for _, why in failed:
                lines.extend("    " + line for line in why.splitlines())
        return lines


def _similarity(recorded: RequestView, incoming: RequestView) -> float:
    """How alike two bodies read (0..1), to rank near misses that fail the same matchers."""
    limit = 4000  # bounds the cost; the start of a body is what tells requests apart anyway
    return difflib.SequenceMatcher(
        None, recorded.normalized[:limit], incoming.normalized[:limit], autojunk=False
    ).ratio()


def _routes_held(entries: Sequence[_Entry]) -> str:
    counts: dict[str, int] = {}
    for entry in entries:
        route = f"{entry.view.method} {entry.view.path}"
        counts[route] = counts.get(route, 0) + 1
    return "it holds " + ", ".join(f"{n} x {route}" for route, n in sorted(counts.items()))
