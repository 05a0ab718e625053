"""Requests parsed once: a body whose bytes came before is not validated and normalised again.

Load tests and test suites send the same bytes over and over (one prompt, thousands of times).
Parsing them is pure: the same bytes to the same endpoint, through the same provider, against the
same catalog, strictness and seed, give the same Exchange and the same keys. So the result is
kept, keyed by the bytes, and a repeat gets it back with its own headers: the validation the API
does, the normalisation into an Exchange, the token count and the two keys' canonical JSON and
hashing are done once (a repeated chat request: ~19% of its CPU).

Only endpoints whose parse reads nothing but the body and the catalog take part: not the Responses
API (a `previous_response_id` reads the stored conversation), not image edits (files named by id),
not the stores' routes, not forms. A request whose parse fails is parsed again each time: errors
stay as cheap to change as the code that raises them.

What is kept is shared by every repeat and never changed in place (the stages after parsing read
the Exchange and its body; a stage that needs another makes a new one, `dataclasses.replace`).
The store is bounded in entries and in the bytes of the bodies it keys; a body too large to be
worth keeping (parsing it costs little next to answering it) is not kept.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from mockai.catalog import Catalog
from mockai.pipeline.exchange import Endpoint, Exchange

# Endpoints whose parse depends on the body, the catalog, strictness and the provider alone.
PURE_ENDPOINTS = frozenset(
    {Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.EMBEDDINGS, Endpoint.MODERATIONS}
)
# Bodies above this are parsed each time: a request that large is rarely repeated in a load loop,
# and its answer (vectors, long completions) dwarfs the parse.
MAX_BODY_BYTES = 16 * 1024
MAX_ENTRIES = 512
MAX_TOTAL_BYTES = 2 * 1024 * 1024

# Exchange's fields before and after `headers`, read at C speed for the copy with another
# request's headers (`_with_headers`: every field is an __init__ argument, in this order).
_FIELDS = [f.name for f in fields(Exchange)]
_HEADERS_AT = _FIELDS.index("headers")
_BEFORE_HEADERS = operator.attrgetter(*_FIELDS[:_HEADERS_AT])
_AFTER_HEADERS = operator.attrgetter(*_FIELDS[_HEADERS_AT + 1 :])


@dataclass(frozen=True, slots=True)
class Parsed:
    """One parse: the Exchange (with the headers of the request that made it), its content key
    and its exact-request key (pipeline/fingerprint.py), and what it was parsed against."""

    exchange: Exchange
    key: bytes
    exact: bytes
    catalog: Catalog
    catalog_version: int
    strict: bool
    seed: int

    def for_request(self, headers: Any) -> Exchange:
        """The kept Exchange as the request with `headers` made it (rules, faults and the
        upstream read a request's own headers)."""
        return _with_headers(self.exchange, headers)


Key = tuple[Endpoint, str, bytes]


class ParsedRequests:
    """Parses kept by body bytes, endpoint and provider; oldest forgotten first."""

    def __init__(
        self,
        max_entries: int = MAX_ENTRIES,
        max_total_bytes: int = MAX_TOTAL_BYTES,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.max_entries = max_entries
        self.max_total_bytes = max_total_bytes
        self.max_body_bytes = max_body_bytes
        self._kept: dict[Key, Parsed] = {}
        self._bytes = 0
        self.hits = 0  # requests answered from a kept parse

    def __len__(self) -> int:
        return len(self._kept)

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
        kept = self._kept.get((endpoint, provider, raw))
        if (
            kept is None
            or kept.catalog is not catalog
            or kept.catalog_version != catalog.version
            or kept.strict != strict
            or kept.seed != seed
        ):
            return None
        self.hits += 1
        return kept

    def keep(self, endpoint: Endpoint, provider: str, raw: bytes, parsed: Parsed) -> None:
        """Keep `parsed` for `raw` (a body too large to keep is not)."""
        size = len(raw)
        if size > self.max_body_bytes or size > self.max_total_bytes or self.max_entries < 1:
            return
        key = (endpoint, provider, raw)
        kept = self._kept
        old = kept.pop(key, None)
        if old is not None:
            self._bytes -= size
        while kept and (len(kept) >= self.max_entries or self._bytes + size > self.max_total_bytes):
            oldest = next(iter(kept))
            del kept[oldest]
            self._bytes -= len(oldest[2])
        kept[key] = parsed
        self._bytes += size

    def clear(self) -> None:
        self._kept.clear()
        self._bytes = 0
        self.hits = 0


def _with_headers(exchange: Exchange, headers: Any) -> Exchange:
    # Positional, from two attrgetters: 1.1 us, where `dataclasses.replace` (keyword arguments
    # built field by field) takes 4.5 us for the same object.
    return _EXCHANGE(*_BEFORE_HEADERS(exchange), headers, *_AFTER_HEADERS(exchange))


_EXCHANGE: Callable[..., Exchange] = Exchange  # (called positionally, which typing cannot check)
