"""Requests parsed once: a body whose bytes came before is not validated and normalised again.

Load tests and test suites send the same bytes over and over (one prompt, thousands of times).
Parsing them is pure: the same bytes to the same endpoint, through the same provider, against the
same catalog, strictness and seed, give the same Exchange and the same keys. So the result is
kept, keyed by the bytes, and a repeat gets it back with its own headers: the validation the API
does, the normalisation into an Exchange, the token count and the two keys' canonical JSON and
hashing are done once.

Only endpoints whose parse reads nothing but the body and the catalog take part: not the Responses
API (a `previous_response_id` reads the stored conversation), not image edits (files named by id),
not the stores' routes, not forms. A request whose parse fails is parsed again each time: errors
stay as cheap to change as the code that raises them.

What is kept is shared by every repeat and never changed in place (the stages after parsing read
the Exchange and its body; a stage that needs another makes a new one, `dataclasses.replace`).

Traffic that never repeats (a replayed cassette, distinct embeddings inputs) must not pay for
this: a body is kept the second time its bytes come (the first only leaves its hash behind), and
the store is a fixed table of slots picked by that hash, a new entry replacing whatever held its
slot: no eviction order to keep, nothing to walk. It is bounded in slots and in the bytes of the
bodies held; a body too large to be worth keeping (its answer dwarfs its parse) is not kept.

The requests a loaded cassette recorded are known before they come (pipeline/recorded.py):
their parses are pinned, beside the table and outside its bounds (as many as the cassettes hold
recordings, whose bytes they hold already), made at load (`pin`) or, for a cassette shared with
another server of the process, the first time their bytes come (`expect`). A client replaying
what it recorded sends those bytes, and skips the parse as a repeat does.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from typing import Any, NamedTuple

from mockai.catalog import Catalog
from mockai.pipeline.exchange import Endpoint, Exchange

# Endpoints whose parse depends on the body, the catalog, strictness and the provider alone.
PURE_ENDPOINTS = frozenset(
    {Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.EMBEDDINGS, Endpoint.MODERATIONS}
)
# Bodies above this are parsed each time: a request that large is rarely repeated in a load loop,
# and its answer (vectors, long completions) dwarfs the parse.
MAX_BODY_BYTES = 16 * 1024
SLOTS = 512
MAX_TOTAL_BYTES = 2 * 1024 * 1024
# Hashes of bodies seen once, by slot (a direct-mapped table: a newer hash takes the slot).
_SEEN_PER_SLOT = 4
_NOT_SEEN = -1  # (never a hash in CPython, which turns -1 into -2)

# Exchange's fields before and after `headers`, read at C speed for the copy with another
# request's headers (`_with_headers`: every field is an __init__ argument, in this order).
_FIELDS = [f.name for f in fields(Exchange)]
_HEADERS_AT = _FIELDS.index("headers")
_BEFORE_HEADERS = operator.attrgetter(*_FIELDS[:_HEADERS_AT])
_AFTER_HEADERS = operator.attrgetter(*_FIELDS[_HEADERS_AT + 1 :])


class Parsed(NamedTuple):
    """One parse: the Exchange (with the headers of the request that made it), its content key
    and its exact-request key (pipeline/fingerprint.py), and what it was parsed against."""

    exchange: Exchange
    key: bytes
    exact: bytes
    catalog: Catalog
    catalog_version: int
    strict: bool
    seed: int

    def for_request(self, headers: Any, query: Mapping[str, str] | None = None) -> Exchange:
        """The kept Exchange as the request with `headers` and `query` made it (rules, faults
        and the upstream read a request's own headers; the upstream gets its query)."""
        exchange = _with_headers(self.exchange, headers)
        query = query or {}
        if query != exchange.query:  # (the same bytes sent with another query string)
            exchange = replace(exchange, query=query)
        return exchange


class _Held(NamedTuple):
    endpoint: Endpoint
    provider: str
    raw: bytes
    parsed: Parsed


class Expected(NamedTuple):
    """A recorded request whose parse is pinned the first time it comes."""

    endpoint: Endpoint
    provider: str
    raw: bytes  # (the cassette's own bytes: the pin keeps them, not the request's copy)


class ParsedRequests:
    """Parses kept by body bytes, endpoint and provider, in `slots` slots picked by the bytes'
    hash, holding at most `max_total_bytes` of bodies, none above `max_body_bytes`."""

    def __init__(
        self,
        slots: int = SLOTS,
        max_total_bytes: int = MAX_TOTAL_BYTES,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.max_total_bytes = max_total_bytes
        self.max_body_bytes = max_body_bytes
        self._held: list[_Held | None] = [None] * slots
        self._seen = [_NOT_SEEN] * (slots * _SEEN_PER_SLOT)
        self._pinned: dict[bytes, _Held] = {}  # recorded requests' parses, by their bytes
        # Recorded requests to pin when they come, by their bytes (tables shared by the servers
        # sharing a cassette, never changed: what came is in `_pinned`).
        self._expected: list[Mapping[bytes, Expected]] = []
        self._count = 0
        self._bytes = 0
        self.hits = 0  # requests answered from a kept parse

    def __len__(self) -> int:
        return self._count

    @property
    def total_bytes(self) -> int:
        """The bytes of the bodies kept (what the byte bound counts)."""
        return self._bytes

    def get(
        self,
        endpoint: Endpoint,
        provider: str,
        raw: bytes,
        catalog: Catalog,
        strict: bool,
        seed: int,
    ) -> Parsed | None:
        """The kept parse of `raw`, if it was made against this catalog (as it is now), this
        strictness and this seed."""
        found = self._pinned.get(raw) if self._pinned else None
        if found is None or found.endpoint is not endpoint or found.provider != provider:
            held = self._held
            if not held:
                return None
            found = held[hash(raw) % len(held)]
            if (
                found is None
                or found.raw != raw
                or found.endpoint is not endpoint
                or found.provider != provider
            ):
                return None
        parsed = found.parsed
        if (
            parsed.catalog is not catalog
            or parsed.catalog_version != catalog.version
            or parsed.strict != strict
            or parsed.seed != seed
        ):
            return None
        self.hits += 1
        return parsed

    def wanted(self, raw: bytes) -> bool:
        """Whether a parse of `raw` would be kept: these bytes came before, and fit, or a
        cassette recorded them (pinned already, whose parse went stale: the catalog changed; or
        expected). (Asked before making what `keep` takes: traffic that never repeats pays for
        nothing more.)"""
        if self._pinned and raw in self._pinned:
            return True
        if self._expected and self._expectation(raw) is not None:
            return True
        size = len(raw)
        if not self._held or size > self.max_body_bytes or size > self.max_total_bytes:
            return False
        digest = hash(raw)  # (cached in the bytes object: `get` computed it already)
        seen = self._seen
        mark = digest % len(seen)
        if seen[mark] != digest:  # the first time (as far as the table remembers)
            seen[mark] = digest
            return False
        return True

    def keep(self, endpoint: Endpoint, provider: str, raw: bytes, parsed: Parsed) -> None:
        """Keep `parsed` for `raw` (which `wanted`), in its slot, unless the byte budget is
        full; a pinned request's new parse (through the endpoint and provider of its pin) takes
        the pin's place, and an expected one's (through the endpoint and provider it was
        recorded for) is pinned."""
        pinned = self._pinned.get(raw) if self._pinned else None
        if pinned is not None and pinned.endpoint is endpoint and pinned.provider == provider:
            self._pinned[raw] = _Held(endpoint, provider, raw, parsed)
            return
        expected = self._expectation(raw) if self._expected else None
        if expected is not None and expected.endpoint is endpoint and expected.provider == provider:
            self._pinned[expected.raw] = _Held(endpoint, provider, expected.raw, parsed)
            return
        if len(raw) > self.max_body_bytes:  # (`wanted` for another endpoint's pin)
            return
        held = self._held
        slot = hash(raw) % len(held)
        old = held[slot]
        freed = 0 if old is None else len(old.raw)
        size = len(raw)
        if self._bytes - freed + size > self.max_total_bytes:
            return  # (the budget is full: what is held stays)
        held[slot] = _Held(endpoint, provider, raw, parsed)
        self._count += old is None
        self._bytes += size - freed

    def pin(self, endpoint: Endpoint, provider: str, raw: bytes, parsed: Parsed) -> None:
        """Keep `parsed` for `raw` outside the table and its bounds: a recorded request's parse,
        made at load (the cassette holds `raw` already)."""
        self._pinned[raw] = _Held(endpoint, provider, raw, parsed)

    def expect(self, recorded: Mapping[bytes, Expected]) -> None:
        """Pin the parse of each of `recorded`'s requests (through its endpoint and provider)
        the first time it is made, outside the table and its bounds: requests a cassette
        recorded (and holds the bytes of). `recorded` is kept as it is, not copied."""
        self._expected.append(recorded)

    def _expectation(self, raw: bytes) -> Expected | None:
        for recorded in self._expected:
            expected = recorded.get(raw)
            if expected is not None:
                return expected
        return None

    @property
    def pinned(self) -> int:
        """How many recorded requests' parses are pinned."""
        return len(self._pinned)

    @property
    def expected(self) -> int:
        """How many recorded requests are expected, not pinned yet."""
        return sum(raw not in self._pinned for recorded in self._expected for raw in recorded)

    def clear(self) -> None:
        """Forget what was kept and seen (a reset); the pins stay with the cassettes they came
        from (a pin gone stale, the catalog restored, is parsed and pinned again when it comes)."""
        self._held = [None] * len(self._held)
        self._seen = [_NOT_SEEN] * len(self._seen)
        self._count = 0
        self._bytes = 0
        self.hits = 0


def _with_headers(exchange: Exchange, headers: Any) -> Exchange:
    # Positional, from two attrgetters: 1.1 us, where `dataclasses.replace` (keyword arguments
    # built field by field) takes 4.5 us for the same object.
    return _EXCHANGE(*_BEFORE_HEADERS(exchange), headers, *_AFTER_HEADERS(exchange))


_EXCHANGE: Callable[..., Exchange] = Exchange  # (called positionally, which typing cannot check)
