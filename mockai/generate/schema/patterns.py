"""Regular expressions: compiled for bounded checks, and expanded into matching strings (rstr)."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from mockai import regexes
from mockai.generate.schema.nodes import SchemaGenerationError
from mockai.regexes import Bounded, RegexTimeout, sre_constants, sre_parse

if TYPE_CHECKING:
    from mockai.generate.schema.generator import Generator


def expand(gen: Generator, pattern: str) -> str | None:
    """A string that likely matches `pattern` (the caller checks), or None if rstr cannot.

    With a size budget, a pattern asking for more than is left gives the start of a match
    (`gen.xeger.truncated`): checking it against the pattern would be pointless (it is cut with
    the answer) and can be ruinous (`(?:){1000000000}` makes `re` allocate gigabytes).
    """
    # rstr parses with `re`: ECMA's `\p{L}` are written as classes of some of their characters
    # (the caller checks the match with the pattern itself).
    source = regexes.sampled(pattern) if "\\p" in pattern or "\\P" in pattern else pattern
    if source is None:
        return None  # a property mockai has no characters of
    if gen.xeger is None:
        from mockai.generate.schema.xeger import Xeger  # (rstr, on first use)

        gen.xeger = Xeger(gen.rng)
    gen.xeger.limit = gen.room()
    gen.xeger.truncated = False
    try:
        return gen.xeger.xeger(source)
    except Exception:  # rstr fails in many ways on regexes it cannot expand; we fall back
        return None


def regex(pattern: Any, ptr: str) -> Bounded:
    """`pattern` compiled (Python `re` semantics, as in jsonschema, and ECMA-262's Unicode
    property escapes, `\\p{L}`, as in JSON Schema) for bounded searches (see
    `search`); raises if it is invalid, or too costly to match (see _NULLABLE_REPEATS, and
    `refuse`: one search of it has already run past its time bound)."""
    compiled = _compiled(pattern) if isinstance(pattern, str) else None
    if compiled is None:
        raise SchemaGenerationError(f"invalid regular expression {pattern!r}", pointer=ptr)
    if _ruinous(compiled.pattern):
        raise SchemaGenerationError(
            f"regular expression {pattern!r} repeats a part that can match nothing more than "
            f"{_NULLABLE_REPEATS:,} times: matching it would take gigabytes",
            pointer=ptr,
        )
    if pattern in _too_slow:
        raise _slow(pattern, ptr)
    return compiled


def search(compiled: Bounded, text: str, ptr: str) -> bool:
    """Whether `compiled` matches somewhere in `text`; a search past its time bound refuses
    the pattern (SchemaGenerationError), for this value and the ones after it."""
    try:
        return compiled.search(text)
    except RegexTimeout as error:
        raise refuse(error, ptr) from None


def refuse(error: RegexTimeout, ptr: str) -> SchemaGenerationError:
    """The error for a pattern whose search ran past its bound, remembered when the pattern
    itself is to blame (not a request's searches together): later values refuse it at once
    rather than spend the bound again."""
    if error.whole:
        with _slow_lock:  # (values are made on the loop and in the worker thread)
            _too_slow[error.pattern] = None
            if len(_too_slow) > _SLOW_KEPT:
                _too_slow.popitem(last=False)
    return _slow(error.pattern, ptr)


def _slow(pattern: str, ptr: str) -> SchemaGenerationError:
    return SchemaGenerationError(
        f"regular expression {pattern!r} is too costly to match: it backtracks for more than "
        f"{regexes.SEARCH_SECONDS} s",
        pointer=ptr,
    )


# Patterns a search of which ran past its bound (insertion order: the oldest goes first).
_too_slow: OrderedDict[str, None] = OrderedDict()
_SLOW_KEPT = 512
_slow_lock = threading.Lock()


def _compiled(pattern: str) -> Bounded | None:
    try:
        return regexes.bounded(pattern, properties=True)  # (cached there)
    except (re.error, OverflowError):  # (a repeat count past re's bound: `a{99999999999}`)
        return None


# How many times a pattern may repeat something that can match nothing (`(?:){N}`, `(a?){N}`):
# Python's `re` keeps state per repetition, so `(a?){1000000000}` takes gigabytes and minutes to
# match even "hello" (10,000 000 takes ~1 s). Such a pattern is refused like an invalid one.
_NULLABLE_REPEATS = 100_000


@lru_cache(maxsize=512)
def _ruinous(compiled: re.Pattern[str]) -> bool:
    """Whether matching with `compiled` could exhaust memory (see _NULLABLE_REPEATS)."""
    if "{" not in compiled.pattern:
        return False  # only an explicit count repeats that often
    try:
        parsed = sre_parse.parse(compiled.pattern, compiled.flags)
    except Exception:  # (it compiled, so it parses; this is only a guard)
        return False
    pending: list[tuple[Any, int]] = [(parsed, 1)]
    while pending:
        sub, times = pending.pop()
        for op, arg in sub:
            if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
                low, high, body = arg
                count = times * max(low, 0 if high == sre_constants.MAXREPEAT else high)
                if body.getwidth()[0] == 0 and count > _NULLABLE_REPEATS:
                    return True
                pending.append((body, max(count, 1)))
            elif op == sre_constants.SUBPATTERN:
                pending.append((arg[-1], times))
            elif op == sre_constants.BRANCH:
                pending.extend((branch, times) for branch in arg[1])
    return False
