"""Strings: plausible candidates first, then ones built from `format` / `pattern`, checked in turn.

A candidate is kept only if it has the right length, matches `pattern` and is a well-formed
`format`; `fit` cuts and pads plausible text to the length bounds, `sized` builds a pattern's
match of a length within them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mockai.generate.schema.formats import FORMAT_MAKERS, format_ok, named_uri
from mockai.generate.schema.names import string_kind
from mockai.generate.schema.nodes import Flat, SchemaGenerationError, count_bounds
from mockai.generate.schema.patterns import expand, regex, search
from mockai.generate.schema.plausible import plausible_text, preset, text, word
from mockai.generate.schema.sized import expand_sized
from mockai.regexes import Bounded

if TYPE_CHECKING:
    from mockai.generate.schema.generator import Generator

_PATTERN_TRIES = 12


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
    for candidate in _string_candidates(gen, flat, name, fmt, low, high):
        if gen.xeger is not None and gen.xeger.truncated:
            return candidate  # the start of a match longer than the answer: see patterns.expand
        if _string_fits(candidate, low, high, compiled, fmt, flat.ptr):
            return candidate
    raise SchemaGenerationError(
        f"no string found with length {low}..{high}, format {fmt}, pattern {pattern!r}",
        pointer=flat.ptr,
    )


def _string_candidates(
    gen: Generator, flat: Flat, name: str, fmt: str | None, low: int, high: int | None
) -> Iterator[str]:
    """Plausible strings first, then ones built from the constraints; the caller checks."""
    example = preset(gen.rng, flat.node)
    if isinstance(example, str):
        yield example
    if fmt is not None:
        uri = named_uri(gen, fmt, name, flat.node.get("maxLength"))
        if uri is not None:  # a `redis_url` is redis://: pydantic's RedisDsn wants no other
            yield uri
        kind = string_kind(name)
        if kind is not None:  # a `birthday` with format date: a birth date, if well-formed
            yield text(gen, kind)
        yield FORMAT_MAKERS[fmt](gen, True)
        yield FORMAT_MAKERS[fmt](gen, False)  # without Faker: always well-formed
    else:
        yield _fit(gen.rng, plausible_text(gen, name), low, high)
    pattern = flat.node.get("pattern")
    if pattern is not None and (low > 0 or high is not None):
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
    yield _fit(gen.rng, "", low, high)


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
