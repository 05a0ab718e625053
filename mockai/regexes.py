"""Regular expressions written by others, searched within a time bound.

A request's JSON Schema `pattern` and a scenario's `regex:` condition come from a client or an
author, and Python's `re` backtracks for ever on some of them (`^(a|a)+b` against 36 `a`s takes
2^36 steps) while holding the GIL: every other request of the server waits, and so does stopping
it. So such patterns are compiled with `re` (its syntax and errors are the ones jsonschema and
the docs promise) and searched with the `regex` package, compiled in its `re`-compatible V0
mode, whose searches take a timeout. A pattern `regex` refuses but `re` accepts (none is known)
is searched with `re`, unbounded, rather than refused.

JSON Schema patterns are ECMA-262 regexes, whose Unicode property escapes (`\\p{L}`,
`\\P{Lu}`, `\\p{Extended_Pictographic}` in zod's `z.emoji()`) `re` refuses and `regex` knows: such
a pattern (`bounded(..., properties=True)`) is compiled and searched with `regex` alone, and
`sampled` writes it with each property as a class of some of its characters, for the code that
builds matches from `re`'s parse of a pattern.

Bounds: SEARCH_SECONDS per search (ordinary patterns take microseconds), and, inside a
`budget()` scope (one generated value, one validation), SCOPE_SECONDS for all searches together,
so a thousand candidates each stopped at the bound cannot add up to a hang either. A request's
rule matching (and its no-match report) searches inside `drawing_on(Allowance())`, MATCH_SECONDS
for all of them: a hundred regex rules backtracking on one hostile text would otherwise hold the
server ~0.1-0.2 s each. A search stopped because its scope's time ran out (not at its own whole
bound) raises RegexTimeout with `whole` false: the rule book stops matching there, since no rule
after it was fairly asked. A scope remembers what each search found, or that it stopped, so
asking again (as the no-match report asks what matching asked) answers at once, as before,
instead of running it again (or calling it stopped for want of time it did not need).
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
    "MATCH_SECONDS",
    "SCOPE_SECONDS",
    "SEARCH_SECONDS",
    "Allowance",
    "Bounded",
    "RegexTimeout",
    "bounded",
    "budget",
    "drawing_on",
    "matching",
    "sampled",
    "stops",
    "validator_class",
]

# No sane pattern comes near these; `regex` checks its clock every so many steps, so a search
# may overrun its bound up to ~2x.
SEARCH_SECONDS = 0.1
SCOPE_SECONDS = 1.0
# All of one request's regex conditions together: the server waits at most about this (plus one
# search's overrun) for one request's matching, however many regex rules there are.
MATCH_SECONDS = 0.25

# `re` flags and their `regex` twins, by name: the two modules number some differently.
_FLAGS = tuple(
    (getattr(re, name), getattr(timed, name))
    for name in ("IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE", "ASCII")
)


class RegexTimeout(Exception):
    """A search stopped at its time bound: the pattern is too costly for that text."""

    def __init__(self, pattern: str, *, whole: bool) -> None:
        if whole:
            reason = f"is too costly to match (it backtracks for more than {SEARCH_SECONDS} s)"
        else:
            reason = "was not searched to the end (the time for these searches ran out)"
        super().__init__(f"regular expression {pattern!r} {reason}")
        self.pattern = pattern
        # True when the search had its whole bound (not what was left of a scope's): the
        # pattern itself is the problem, not the searches before it.
        self.whole = whole


_Search = tuple[str, int, str]  # (pattern, flags, text)


@dataclass
class Allowance:
    """The time searches of one scope have left, what they found, and which stopped."""

    left: float = MATCH_SECONDS
    # Searches that stopped, and whether at their whole bound (RegexTimeout.whole).
    stopped: dict[_Search, bool] = field(default_factory=dict)
    found: dict[_Search, bool] = field(default_factory=dict)  # searches that ended: their answer
    stops: int = 0  # RegexTimeouts raised in the scope (see `stops`)
    searched: int = 0  # searches run (one stopped before and asked again is not run)

    def stop(self, search: _Search, pattern: str, *, whole: bool) -> RegexTimeout:
        """The timeout of `search`, remembered (and counted)."""
        self.stopped[search] = whole
        self.stops += 1
        return RegexTimeout(pattern, whole=whole)


def matching() -> Allowance:
    """A new allowance for one request's rule matching: MATCH_SECONDS, read when called (not
    when `Allowance` was defined), so that a test may lower the bound."""
    return Allowance(MATCH_SECONDS)


_scope: ContextVar[Allowance | None] = ContextVar("mockai_regex_scope", default=None)


@contextmanager
def budget(seconds: float = SCOPE_SECONDS) -> Iterator[None]:
    """Bound the total time of the searches made inside (within an outer scope: that one)."""
    if _scope.get() is not None:
        yield
        return
    token = _scope.set(Allowance(seconds))
    try:
        yield
    finally:
        _scope.reset(token)


class drawing_on:  # (lower case: used as a function, as `budget` is)
    """The searches made inside draw on `allowance` (one request's matching, which several
    blocks share), whatever scope is open around them. (A class, not a generator: it is entered
    on every request a book with regex rules matches, where a generator costs ~2 us.)"""

    __slots__ = ("allowance", "token")

    def __init__(self, allowance: Allowance) -> None:
        self.allowance = allowance

    def __enter__(self) -> None:
        self.token = _scope.set(self.allowance)

    def __exit__(self, *exc: object) -> None:
        _scope.reset(self.token)


def stops() -> int:
    """How many searches of the open scope stopped at a bound so far (0 outside any): a caller
    tells a condition that did not hold from one left undecided by comparing before and after."""
    scope = _scope.get()
    return 0 if scope is None else scope.stops


@dataclass(frozen=True)
class Bounded:
    """A pattern compiled for bounded searches; `pattern` is the `re` compilation (`regex`'s,
    with the same attributes, for a pattern with Unicode property escapes)."""

    pattern: re.Pattern[str]
    _timed: Any = field(repr=False)  # regex.Pattern, or None: `regex` refused the pattern

    def search(self, text: str) -> bool:
        """Whether the pattern matches somewhere in `text`; raises RegexTimeout past the bound."""
        if self._timed is None:
            return self.pattern.search(text) is not None
        scope = _scope.get()
        if scope is None:
            try:
                return self._timed.search(text, timeout=SEARCH_SECONDS) is not None
            except TimeoutError:
                raise RegexTimeout(self.pattern.pattern, whole=True) from None
        pattern = self.pattern.pattern
        search = (pattern, self.pattern.flags, text)
        known = scope.found.get(search)
        if known is not None:  # (asked again: the same answer)
            return known
        if search in scope.stopped:  # (asked again: it would stop again)
            raise scope.stop(search, pattern, whole=scope.stopped[search])
        limit = min(SEARCH_SECONDS, scope.left)
        if limit <= 0:
            raise scope.stop(search, pattern, whole=False)
        scope.searched += 1
        start = time.perf_counter()
        try:
            found = scope.found[search] = self._timed.search(text, timeout=limit) is not None
            return found
        except TimeoutError:
            raise scope.stop(search, pattern, whole=limit == SEARCH_SECONDS) from None
        finally:
            scope.left -= time.perf_counter() - start


@lru_cache(maxsize=1024)
def bounded(pattern: str, flags: int = 0, *, properties: bool = False) -> Bounded:
    """`pattern` compiled with `re` semantics; raises re.error (or OverflowError, for a repeat
    count past re's bound) as `re.compile` does. With `properties`, a pattern whose Unicode
    property escapes (`\\p{L}`) are ECMA-262's, as JSON Schema's, compiles with `regex`."""
    try:
        checked = re.compile(pattern, flags)
    except re.error:
        if not properties or sampled(pattern, unknown="x") == pattern:
            raise
        return _with_properties(pattern, flags)
    if _unrolled(pattern, flags) > UNROLLED_MOST:
        return Bounded(checked, None)  # (see UNROLLED_MOST)
    try:
        searcher = timed.compile(pattern, _twin(flags) | timed.VERSION0)
    except Exception:  # `regex` refuses what `re` takes: keep `re`'s meaning, unbounded
        searcher = None
    return Bounded(checked, searcher)


def _twin(flags: int) -> int:
    """`re` flags as `regex` numbers them."""
    twin = 0
    for mine, theirs in _FLAGS:
        if flags & mine:
            twin |= theirs
    return twin


def _with_properties(pattern: str, flags: int) -> Bounded:
    """`pattern`, which uses Unicode property escapes, compiled with `regex` only (V0 mode)."""
    # Its shape (properties as one character each) says what compiling would unroll; past the
    # bound there is no `re` to fall back on, so it is refused.
    if _unrolled(sampled(pattern, unknown="x") or "", flags) > UNROLLED_MOST:
        raise re.error(f"{pattern!r} repeats too much to be compiled")
    try:
        searcher = timed.compile(pattern, _twin(flags) | timed.VERSION0)
    except timed.error as error:  # (an unknown property, say)
        raise re.error(str(error)) from None
    return Bounded(searcher, searcher)


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


# --- Unicode property escapes ----------------------------------------------------------------

# The characters a property escape is sampled from: ASCII, Latin-1, Greek, Cyrillic, Hebrew,
# Arabic, kana, some CJK ideographs, emoji and their components (skin tones, flags' regional
# indicators, the keycap mark). A property none of them has cannot be sampled.
_POOL = "".join(
    chr(code)
    for low, high in (
        (0x20, 0x7E), (0xA0, 0xFF), (0x391, 0x3A1), (0x3A3, 0x3A9), (0x3B1, 0x3C9),
        (0x410, 0x44F), (0x5D0, 0x5EA), (0x627, 0x64A), (0x660, 0x669), (0x2000, 0x200A),
        (0x20E3, 0x20E3), (0x2600, 0x2604), (0x3041, 0x3096), (0x30A1, 0x30FA),
        (0x4E00, 0x4EFF), (0x1F1E6, 0x1F1FF), (0x1F32D, 0x1F37F), (0x1F3FB, 0x1F3FF),
        (0x1F600, 0x1F64F), (0x1F680, 0x1F6C5),
    )
    for code in range(low, high + 1)
)  # fmt: skip


def sampled(pattern: str, *, unknown: str | None = None) -> str | None:
    """`pattern` with each Unicode property escape (`\\p{L}`, `\\P{Lu}`) written as a class of
    some of the characters it matches, so that `re` parses it; a property none of the sampled
    characters has is written `unknown`, or makes the answer None."""
    out: list[str] = []
    index, start = 0, -1  # start: where the class the scan is in opened (-1: in none)
    while index < len(pattern):
        char = pattern[index]
        escape = _PROPERTY.match(pattern, index) if char == "\\" else None
        if escape is not None:
            sample = _property_sample(escape["name"], escape["sign"] == "P")
            if sample is None:
                if unknown is None:
                    return None
                sample = unknown
            out.append(sample if start >= 0 else f"[{sample}]")
            index = escape.end()
            continue
        step = 2 if char == "\\" else 1
        if char == "[" and start < 0:
            start = index
        elif char == "]" and start >= 0 and pattern[start + 1 : index] not in ("", "^"):
            start = -1  # (a `]` first in a class, or after its `^`, is a literal in `re`)
        out.append(pattern[index : index + step])
        index += step
    return "".join(out)


_PROPERTY = re.compile(r"\\(?P<sign>[pP])\{(?P<name>[^{}\\]{1,100})\}")


@lru_cache(maxsize=256)
def _property_sample(name: str, negated: bool) -> str | None:
    """A class body (`a-z\\u00e0`) of the characters of _POOL that `\\p{name}` (or `\\P`)
    matches; None if there are none, or `regex` knows no such property."""
    try:
        matcher = timed.compile(f"\\{'P' if negated else 'p'}{{{name}}}", timed.VERSION0)
    except timed.error:
        return None
    codes = [ord(char) for char in _POOL if matcher.match(char)]
    runs: list[list[int]] = []
    for code in codes:
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return (
        "".join(
            _escaped(low) if low == high else f"{_escaped(low)}-{_escaped(high)}"
            for low, high in runs
        )
        or None
    )


def _escaped(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


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
    return bounded(pattern, properties=True).search(text)  # (JSON Schema's: ECMA-262's)


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
