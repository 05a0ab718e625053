"""Strings: plausible candidates first, then ones built from `format` / `pattern`, checked in turn.

A candidate is kept only if it has the right length, matches `pattern` and is a well-formed
`format`; `fit` cuts and pads plausible text to the length bounds, `sized` builds a pattern's
match of a length within them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from itertools import chain, islice
from typing import TYPE_CHECKING

from mockai.generate.schema.formats import FORMAT_MAKERS, format_ok, named_uri, shaped
from mockai.generate.schema.names import string_kind
from mockai.generate.schema.nodes import Flat, SchemaGenerationError, count_bounds
from mockai.generate.schema.patterns import expand, regex, search
from mockai.generate.schema.plausible import plausible_text, preset, text, word
from mockai.generate.schema.sized import expand_sized, required_classes
from mockai.regexes import Bounded

if TYPE_CHECKING:
    from mockai.generate.schema.generator import Generator

_PATTERN_TRIES = 12
_AFFIX_TRIES = 3  # expansions of a pattern spliced into a format's values
_SPLICED_TRIES = 1500  # of those values, at most (each costs a pattern search)


def string_value(gen: Generator, flat: Flat, name: str) -> str:
    node = flat.node
    low, high = count_bounds(node, "minLength", "maxLength", flat.ptr)
    room = gen.room()
    if room is not None and low > room:
        # Longer than what is left of the answer: it will be cut, so only its start is made
        # (nothing needs to match a pattern or format past the cut). Drawn as below, so that
        # it is the start of what an answer with a higher limit holds.
        preset(gen.rng, node)
        return _fit(gen.rng, plausible_text(gen, name), room, None)
    fmt = node.get("format") if node.get("format") in FORMAT_MAKERS else None
    pattern = node.get("pattern")
    compiled = None if pattern is None else regex(pattern, flat.ptr)
    if node.get("contentMediaType") == "application/json":
        encoded = _json_text(gen, flat, name)
        if encoded is not None and _string_fits(encoded, low, high, compiled, fmt, flat.ptr):
            return encoded
    for candidate in _string_candidates(gen, flat, name, fmt, low, high):
        if gen.xeger is not None and gen.xeger.truncated:
            return candidate  # the start of a match longer than the answer: see patterns.expand
        if _string_fits(candidate, low, high, compiled, fmt, flat.ptr):
            return candidate
    raise SchemaGenerationError(
        f"no string found with length {low}..{high}, format {fmt}, pattern {pattern!r}",
        pointer=flat.ptr,
    )


def _json_text(gen: Generator, flat: Flat, name: str) -> str | None:
    """JSON text of an instance of `contentSchema` (pydantic's `Json[list[int]]`), which
    pydantic parses and validates; None if that schema has none (JSON Schema does not hold
    the string to it, so any string still does)."""
    schema = flat.node.get("contentSchema", True)
    try:
        value = gen.value(schema, f"{flat.ptr}/contentSchema", flat.depth, name)
    except SchemaGenerationError:
        return None
    return json.dumps(value)


def _string_candidates(
    gen: Generator, flat: Flat, name: str, fmt: str | None, low: int, high: int | None
) -> Iterator[str]:
    """Plausible strings first, then ones built from the constraints; the caller checks."""
    example = preset(gen.rng, flat.node)
    if isinstance(example, str):
        yield example
    made: list[str] = []  # the format's plausible values, made as they are tried
    if fmt is not None:
        for value in _format_plausible(gen, fmt, name, flat.node.get("maxLength")):
            made.append(value)
            yield value
    else:
        yield _fit(gen.rng, plausible_text(gen, name), low, high)
    pattern = flat.node.get("pattern")
    if pattern is not None and (low > 0 or high is not None or required_classes(pattern)):
        # rstr knows nothing of the length bounds (`^\d+$` gives 1-9 digits, never a card's 16)
        for _ in range(_PATTERN_TRIES):
            sized = expand_sized(gen, pattern, low, high)
            if sized is None:
                break
            yield sized
    if pattern is not None:
        for _ in range(_PATTERN_TRIES):
            expanded = expand(gen, pattern)
            if expanded is None:
                break
            yield expanded
            yield _fit(gen.rng, expanded, low, high)
    if fmt is not None:
        yield from _format_fitted(gen, fmt, pattern, low, high, made)
    yield _fit(gen.rng, "", low, high)


def _format_plausible(gen: Generator, fmt: str, name: str, max_length: object) -> Iterator[str]:
    uri = named_uri(gen, fmt, name, max_length)
    if uri is not None:  # a `redis_url` is redis://: pydantic's RedisDsn wants no other
        yield uri
    kind = string_kind(name)
    if kind is not None:  # a `birthday` with format date: a birth date, if well-formed
        yield text(gen, kind)
    yield FORMAT_MAKERS[fmt](gen, True)
    yield FORMAT_MAKERS[fmt](gen, False)  # without Faker: always well-formed


def _format_fitted(
    gen: Generator, fmt: str, pattern: str | None, low: int, high: int | None, made: list[str]
) -> Iterator[str]:
    """Values of `fmt` for when the bounds or the pattern rule out the plausible ones: its
    short shapes stretched to the bounds (`a@b.co`, `::1`), each also with what the pattern
    expands to at the end it is anchored to (`jane` + `@acme.com` for `@acme\\.com$`)."""
    if pattern is None:
        yield from shaped(gen.rng, fmt, low, high, made)
        return
    anchored_end = pattern.endswith("$") and not pattern.endswith("\\$")
    ends = (False, True) if anchored_end and not pattern.startswith("^") else (True, False)
    fixed: dict[str, None] = {}
    for _ in range(_AFFIX_TRIES):
        expanded = expand(gen, pattern)
        if expanded is None or (gen.xeger is not None and gen.xeger.truncated):
            break
        fixed[expanded] = None
    spliced = (
        shaped(gen.rng, fmt, low, high, made, affix, at_start)
        for affix in fixed
        for at_start in ends
    )
    # (bounded: a pattern no value of the format matches tries them all before the 400)
    yield from islice(chain.from_iterable(spliced), _SPLICED_TRIES)


def _fit(rng: random.Random, text: str, low: int, high: int | None) -> str:
    """`text` cut to `high` (at a word boundary when not too short), padded to `low`."""
    if high is not None and len(text) > high:
        cut = text[:high]
        space = cut.rfind(" ")
        if text[high] != " " and space >= max(low, high // 2):
            cut = cut[:space]
        text = cut.rstrip() if len(cut.rstrip()) >= low else cut
    parts = [text] if text else []
    length = len(text)
    while length < low:
        padding = word(rng)
        parts.append(padding)
        length += len(padding) + (1 if len(parts) > 1 else 0)
    text = " ".join(parts)
    return text if high is None else text[:high]


def _string_fits(
    value: str, low: int, high: int | None, compiled: Bounded | None, fmt: str | None, ptr: str
) -> bool:
    if len(value) < low or (high is not None and len(value) > high):
        return False
    if compiled is not None and not search(compiled, value, ptr):
        return False
    return fmt is None or format_ok(fmt, value)
