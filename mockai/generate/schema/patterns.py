"""Regular expressions: compiled for checks, and expanded into matching strings with rstr."""

from __future__ import annotations

import re
import string
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING, Any

import rstr

from mockai.generate.schema.nodes import SchemaGenerationError

if TYPE_CHECKING:
    from mockai.generate.schema.generator import Generator

_REPEAT_SPAN = 8  # `*`, `+` and `{n,}` repeat at most this much beyond their minimum


class Xeger(rstr.Rstr):
    """rstr's regex expander with two changes we depend on.

    Negated classes (`[^"]`) pick from a `set` in rstr, whose order of strings changes between
    processes; here they pick from an ordered list. And `*`/`+` repeat up to 100 times in rstr,
    which makes implausibly long strings; here at most `_REPEAT_SPAN` beyond the minimum.
    """

    def _handle_in(self, value: Any) -> Any:
        candidates = list(chain.from_iterable(self._handle_state(item) for item in value))
        if candidates and candidates[0] is False:
            excluded = set(candidates[1:])
            candidates = [char for char in string.printable if char not in excluded]
        return self._random.choice(candidates)

    # The most characters one expansion may produce (None: unbounded): a `{1000000000}` in a
    # request's pattern must not build a gigabyte string. Set by `expand` from the size budget.
    limit: int | None = None

    def _handle_repeat(self, start_range: int, end_range: int, value: str) -> str:
        times = self._random.randint(start_range, min(end_range, start_range + _REPEAT_SPAN))
        if self.limit is None:
            return "".join(self._repeat(value) for _ in range(times))
        parts: list[str] = []
        size = 0
        for _ in range(min(times, self.limit + 1)):  # (repeats of nothing count too)
            part = self._repeat(value)
            parts.append(part)
            size += len(part)
            if size > self.limit:
                break
        return "".join(parts)

    def _repeat(self, value: Any) -> str:
        return "".join(self._handle_state(item) for item in value)


def expand(gen: Generator, pattern: str) -> str | None:
    """A string that likely matches `pattern` (the caller checks), or None if rstr cannot."""
    if gen.xeger is None:
        gen.xeger = Xeger(gen.rng)
    gen.xeger.limit = gen.room()
    try:
        return gen.xeger.xeger(pattern)
    except Exception:  # rstr fails in many ways on regexes it cannot expand; we fall back
        return None


def regex(pattern: Any, ptr: str) -> re.Pattern[str]:
    """`pattern` compiled (Python `re` semantics, as in jsonschema); raises if it is invalid."""
    compiled = _compiled(pattern) if isinstance(pattern, str) else None
    if compiled is None:
        raise SchemaGenerationError(f"invalid regular expression {pattern!r}", pointer=ptr)
    return compiled


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None
