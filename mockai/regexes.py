"""Regular expressions written by others, searched within a time bound.

A request's JSON Schema `pattern` and a scenario's `regex:` condition come from a client or an
author, and Python's `re` backtracks for ever on some of them (`^(a|a)+b` against 36 `a`s takes
2^36 steps) while holding the GIL: every other request of the server waits, and so does stopping
it. So such patterns are compiled with `re` (its syntax and errors are the ones jsonschema and
the docs promise) and searched with the `regex` package, compiled in its `re`-compatible V0
mode, whose searches take a timeout. A pattern `regex` refuses but `re` accepts (none is known)
is searched with `re`, unbounded, rather than refused.

Bounds: SEARCH_SECONDS per search (ordinary patterns take microseconds), and, inside a
`budget()` scope (one generated value, one validation), SCOPE_SECONDS for all searches together,
so a thousand candidates each stopped at the bound cannot add up to a hang either.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import regex as timed

# The regex parser (and compiler): `re._parser` since Python 3.11 (where importing `sre_parse`
# warns), before.
try:
    sre_parse: Any = importlib.import_module("re._parser")
    sre_constants: Any = importlib.import_module("re._constants")
    sre_compile: Any = importlib.import_module("re._compiler")
except ImportError:  # pragma: no cover (3.10)
    sre_parse = importlib.import_module("sre_parse")
    sre_constants = importlib.import_module("sre_constants")
    sre_compile = importlib.import_module("sre_compile")

__all__ = [
    "SCOPE_SECONDS",
    "SEARCH_SECONDS",
    "Bounded",
    "RegexTimeout",
    "bounded",
    "budget",
    "validator_class",
]

# No sane pattern comes near these; `regex` checks its clock every so many steps, so a search
# may overrun its bound up to ~2x.
SEARCH_SECONDS = 0.1
SCOPE_SECONDS = 1.0

# `re` flags and their `regex` twins, by name: the two modules number some differently.
_FLAGS = tuple(
    (getattr(re, name), getattr(timed, name))
    for name in ("IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE", "ASCII")
)


class RegexTimeout(Exception):
    """A search stopped at its time bound: the pattern is too costly for that text."""

    def __init__(self, pattern: str, *, whole: bool) -> None:
        super().__init__(
            f"regular expression {pattern!r} is too costly to match (it backtracks for more "
            f"than {SEARCH_SECONDS} s)"
        )
        self.pattern = pattern
        # True when the search had its whole bound (not what was left of a scope's): the
        # pattern itself is the problem, not the searches before it.
        self.whole = whole


@dataclass
class _Scope:
    left: float


_scope: ContextVar[_Scope | None] = ContextVar("mockai_regex_scope", default=None)


@contextmanager
def budget(seconds: float = SCOPE_SECONDS) -> Iterator[None]:
    """Bound the total time of the searches made inside (within an outer scope: that one)."""
    if _scope.get() is not None:
        yield
        return
    token = _scope.set(_Scope(seconds))
    try:
        yield
    finally:
        _scope.reset(token)


@dataclass(frozen=True)
class Bounded:
    """A pattern compiled for bounded searches; `pattern` is the `re` compilation."""

    pattern: re.Pattern[str]
    _timed: Any = field(repr=False)  # regex.Pattern, or None: `regex` refused the pattern

    def search(self, text: str) -> bool:
        """Whether the pattern matches somewhere in `text`; raises RegexTimeout past the bound."""
        if self._timed is None:
            return self.pattern.search(text) is not None
        scope = _scope.get()
        limit = SEARCH_SECONDS if scope is None else min(SEARCH_SECONDS, scope.left)
        if limit <= 0:
            raise RegexTimeout(self.pattern.pattern, whole=False)
        start = time.perf_counter()
        try:
            return self._timed.search(text, timeout=limit) is not None
        except TimeoutError:
            raise RegexTimeout(self.pattern.pattern, whole=limit == SEARCH_SECONDS) from None
        finally:
            if scope is not None:
                scope.left -= time.perf_counter() - start


@lru_cache(maxsize=1024)
def bounded(pattern: str, flags: int = 0) -> Bounded:
    """`pattern` compiled with `re` semantics; raises re.error (or OverflowError, for a repeat
    count past re's bound) as `re.compile` does."""
    checked = re.compile(pattern, flags)
    if _unrolled(pattern, flags) > UNROLLED_MOST:
        return Bounded(checked, None)  # (see UNROLLED_MOST)
    twin = 0
    for mine, theirs in _FLAGS:
        if flags & mine:
            twin |= theirs
    try:
        searcher = timed.compile(pattern, twin | timed.VERSION0)
    except Exception:  # `regex` refuses what `re` takes: keep `re`'s meaning, unbounded
        searcher = None
    return Bounded(checked, searcher)


# `regex` unrolls a repeat's required count when it compiles: `a{10000000}` takes 7 s and 2.6 GB
# before any search (`(?:a{1000}){1000}` 274 MB), where `re` keeps a counter. A pattern that
# would unroll to more than this many copies is searched with `re` (unbounded in time, as before
# this module; the generator never searches the values it cuts short at the size limit, which
# such patterns ask for).
UNROLLED_MOST = 20_000


def _unrolled(pattern: str, flags: int) -> int:
    """How many copies of its parts `regex` would make compiling `pattern`: the required counts
    of nested repeats multiplied, summed over the pattern (1 for a pattern without repeats)."""
    repeats = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}
    possessive = getattr(sre_constants, "POSSESSIVE_REPEAT", None)
    if possessive is not None:
        repeats.add(possessive)

    def inside(value: Any) -> Iterator[Any]:  # the sub-patterns an item holds (groups,
        # branches, lookarounds, conditionals, atomic groups alike)
        if isinstance(value, sre_parse.SubPattern):
            yield value
        elif isinstance(value, (tuple, list)):
            for item in value:
                yield from inside(item)

    def size(parsed: Any) -> int:
        total = 0
        for op, av in parsed:
            if op in repeats:
                low, _, inner = av
                total += max(low, 1) * size(inner)
            else:
                total += 1 + sum(size(part) for part in inside(av))
            if total > UNROLLED_MOST:
                return total  # (enough: nested counts can be astronomically large)
        return total

    return size(sre_parse.parse(pattern, flags))


# --- jsonschema ------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def validator_class(kind: Any, *, raise_timeouts: bool = False) -> Any:
    """jsonschema's validator class `kind`, with every regex search bounded.

    jsonschema searches with `re` in `pattern` (and so `propertyNames`), `patternProperties`,
    `additionalProperties` (which properties the patterns cover) and `unevaluatedProperties`.
    A search past its bound is a validation error saying the pattern is too costly, or, with
    `raise_timeouts`, RegexTimeout out of the validation (the generator refuses the pattern).
    """
    from jsonschema import validators

    originals = kind.VALIDATORS
    replaced: dict[str, Any] = {
        "pattern": _pattern_keyword(raise_timeouts),
        "patternProperties": _pattern_properties_keyword(raise_timeouts),
        "additionalProperties": _additional_properties_keyword(raise_timeouts),
    }
    if "unevaluatedProperties" in originals:
        replaced["unevaluatedProperties"] = _unevaluated_keyword(
            originals["unevaluatedProperties"], raise_timeouts
        )
    return validators.extend(kind, {k: v for k, v in replaced.items() if k in originals})


def _found(pattern: str, text: str) -> bool:
    return bounded(pattern).search(text)


def _too_costly(error: RegexTimeout, raise_timeouts: bool) -> Any:
    from jsonschema.exceptions import ValidationError

    if raise_timeouts:
        raise error
    return ValidationError(str(error))


def _pattern_keyword(raise_timeouts: bool) -> Any:
    def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[Any]:
        from jsonschema.exceptions import ValidationError

        if not validator.is_type(instance, "string"):
            return
        try:
            found = _found(patrn, instance)
        except RegexTimeout as error:
            yield _too_costly(error, raise_timeouts)
            return
        if not found:
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    return pattern


def _pattern_properties_keyword(raise_timeouts: bool) -> Any:
    def pattern_properties(
        validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
    ) -> Iterator[Any]:
        if not validator.is_type(instance, "object"):
            return
        for pattern, subschema in patterns.items():
            for key, value in instance.items():
                try:
                    found = _found(pattern, key)
                except RegexTimeout as error:
                    yield _too_costly(error, raise_timeouts)
                    return
                if found:
                    yield from validator.descend(value, subschema, path=key, schema_path=pattern)

    return pattern_properties


def _additional_properties_keyword(raise_timeouts: bool) -> Any:
    """jsonschema's own, but for which properties `patternProperties` covers."""

    def additional_properties(
        validator: Any, additional: Any, instance: Any, schema: Any
    ) -> Iterator[Any]:
        from jsonschema.exceptions import ValidationError

        if not validator.is_type(instance, "object"):
            return
        properties = schema.get("properties", {})
        patterns = list(schema.get("patternProperties", {}))
        extras = []
        for key in instance:
            if key in properties:
                continue
            try:
                covered = any(_found(pattern, key) for pattern in patterns)
            except RegexTimeout as error:
                yield _too_costly(error, raise_timeouts)
                return
            if not covered:
                extras.append(key)
        if validator.is_type(additional, "object"):
            for extra in extras:
                yield from validator.descend(instance[extra], additional, path=extra)
        elif not additional and extras:
            if patterns:
                verb = "does" if len(extras) == 1 else "do"
                joined = ", ".join(repr(each) for each in sorted(extras))
                listed = ", ".join(repr(each) for each in sorted(patterns))
                yield ValidationError(f"{joined} {verb} not match any of the regexes: {listed}")
            else:
                shown = ", ".join(repr(each) for each in sorted(extras, key=str))
                verb = "was" if len(extras) == 1 else "were"
                yield ValidationError(
                    f"Additional properties are not allowed ({shown} {verb} unexpected)"
                )

    return additional_properties


def _unevaluated_keyword(original: Any, raise_timeouts: bool) -> Any:
    """jsonschema's own, after bounded searches of the patterns it will search with `re`.

    Which properties are evaluated is worked out deep inside jsonschema (through `$ref`s,
    `allOf`, `if`), so the `patternProperties` within this schema are tried on every property
    first: one too costly for `regex` is a validation error before `re` ever runs it.
    """

    def unevaluated_properties(
        validator: Any, unevaluated: Any, instance: Any, schema: Any
    ) -> Iterator[Any]:
        if validator.is_type(instance, "object"):
            try:
                for pattern in _pattern_keys(schema):
                    for key in instance:
                        _found(pattern, key)
            except RegexTimeout as error:
                yield _too_costly(error, raise_timeouts)
                return
        yield from original(validator, unevaluated, instance, schema)

    return unevaluated_properties


def _pattern_keys(schema: Any) -> set[str]:
    """Every `patternProperties` pattern within `schema` (iteratively: schemas nest deep)."""
    found: set[str] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, Mapping):
            patterns = node.get("patternProperties")
            if isinstance(patterns, Mapping):
                found.update(key for key in patterns if isinstance(key, str))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found
