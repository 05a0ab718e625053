"""Text operators for `match:` conditions: a closed set, compiled once at load time.

A condition on a text (`user`, `system`, `tool_result`, a header) is a bare string ("contains"),
or a mapping with exactly one operator, optionally `ignore_case: true`, or `{not: <condition>}`:

    user: weather                          # contains
    user: {equals: "What's the weather?"}
    user: {startswith: "Translate", ignore_case: true}
    user: {regex: "^(hi|hello)\\b"}
    user: {not: {contains: goodbye}}

The operator set is the `Op` enum (equals, contains, startswith, endswith, regex); an unknown
operator is a load-time problem naming the valid ones.

Texts are compared composed (NFC), the condition's and the request's alike: `é` typed on macOS
(an `e` and a combining accent, NFD) is the `é` of a scenario file, as the generated embeddings
already treat it.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from mockai import regexes
from mockai.regexes import Bounded, RegexTimeout
from mockai.scenario.problems import Problems, describe, suggest
from mockai.scenario.yamlsrc import line_of


class Op(str, Enum):
    """The text operators a scenario file may use."""

    EQUALS = "equals"
    CONTAINS = "contains"
    STARTSWITH = "startswith"
    ENDSWITH = "endswith"
    REGEX = "regex"

    def __str__(self) -> str:
        return self.value


log = logging.getLogger("mockai")

OPS = tuple(op.value for op in Op)
_MODIFIERS = ("ignore_case", "not")


# Request texts up to this long are composed once (`composed`), however many conditions test
# them; the cache holds a few of them, so it holds a few megabytes at most.
_CACHED_LENGTH = 64 * 1024


def composed(text: str) -> str:
    """`text` in its composed form (NFC); an ASCII text (most) is its own, told in O(1)."""
    if text.isascii():
        return text
    if len(text) > _CACHED_LENGTH:
        return unicodedata.normalize("NFC", text)
    return _composed(text)


@functools.lru_cache(maxsize=32)
def _composed(text: str) -> str:
    # Keyed by the text: every condition testing one request text (each rule's `user`, the
    # no-match report's) gets the form made for the first. (A str caches its hash, and the
    # lookup finds the very same object: a dict probe, not a comparison of the texts.)
    return unicodedata.normalize("NFC", text)


def _tester(op: Op, value: str) -> Callable[[str], bool]:
    if op is Op.EQUALS:
        return value.__eq__
    if op is Op.CONTAINS:
        return lambda text: value in text
    if op is Op.STARTSWITH:
        return lambda text: text.startswith(value)
    return lambda text: text.endswith(value)


def _bounded_search(
    pattern: Bounded, value: str, negate: bool, origin: str
) -> Callable[[str], bool]:
    """`pattern`'s search (`negate`: its absence), a text it backtracks on for too long failing
    the condition either way.

    The text is the client's: a search that ran past its bound (regexes) says nothing of a
    match, and waiting longer would hold up every other request of the server. So the search
    is undecided, and an undecided condition does not hold, `not` or not: negating the timeout
    would answer as if the pattern had been searched and not found. The author is told once,
    where the condition is written.

    A search stopped because the request's time for regex searches ran out (RegexTimeout with
    `whole` false) is not the pattern's doing, and says nothing of the rules after it either:
    it is raised on, and the rule book stops matching there (`RuleBook.pick`) rather than let a
    later rule, such as a catch-all, answer what this one may have been written for.
    """
    search = pattern.search
    warned = False

    def test(text: str) -> bool:
        nonlocal warned
        try:
            return search(text if text.isascii() else composed(text)) != negate
        except RegexTimeout as error:
            if not error.whole:
                raise
            if not warned:
                warned = True
                log.warning("mockai: %s: %s; the condition does not hold", origin or value, error)
            return False

    return test


def _compose(
    op: Op, value: str, ignore_case: bool, negate: bool, pattern: Bounded | None, origin: str
) -> Callable[[str], bool]:
    """One function doing the whole test: the hot path makes a single call per condition."""
    if op is Op.REGEX:
        assert pattern is not None
        # Negated inside, where a search that timed out is told from one that found nothing.
        return _bounded_search(pattern, value, negate, origin)
    # (`isascii` inlined: the test of an ASCII text, most, pays one O(1) call for composing)
    if ignore_case:
        base = _tester(op, value.casefold())
        test: Callable[[str], bool] = lambda text: base(  # noqa: E731
            (text if text.isascii() else composed(text)).casefold()
        )
    else:
        plain = _tester(op, value)
        test = lambda text: plain(text if text.isascii() else composed(text))  # noqa: E731
    if negate:
        positive = test
        return lambda text: not positive(text)
    return test


def _never(text: str) -> bool:
    return False


@dataclass(frozen=True)
class TextTest:
    """One compiled text condition: `test(text)` is the hot path (a str method or a regex)."""

    op: Op
    value: str
    ignore_case: bool = False
    negate: bool = False
    pattern: Bounded | None = field(default=None, compare=False)
    test: Callable[[str], bool] = field(default=_never, compare=False, repr=False)
    # Where the condition is written (`rules.yaml:12: rule 'greet'.user`), for the warning
    # about a regex that backtracks too long on a request's text.
    origin: str = field(default="", compare=False, repr=False)

    @classmethod
    def make(
        cls,
        op: Op,
        value: str,
        *,
        ignore_case: bool = False,
        negate: bool = False,
        origin: str = "",
    ) -> TextTest:
        """A compiled test (raises re.error for a bad regex)."""
        # (compared with composed texts: see the module docstring)
        value = unicodedata.normalize("NFC", value)
        flags = re.IGNORECASE if ignore_case else 0
        pattern = regexes.bounded(value, flags) if op is Op.REGEX else None
        test = _compose(op, value, ignore_case, negate, pattern, origin)
        return cls(op, value, ignore_case, negate, pattern, test, origin)

    def negated(self) -> TextTest:
        """The same test, inverted."""
        return TextTest.make(
            self.op,
            self.value,
            ignore_case=self.ignore_case,
            negate=not self.negate,
            origin=self.origin,
        )

    def describe(self) -> str:
        """`contains 'weather'`, `not regex '^hi' (ignoring case)`."""
        text = f"{'not ' if self.negate else ''}{self.op.value} {self.value!r}"
        return text + (" (ignoring case)" if self.ignore_case else "")

    def implies(self, other: TextTest) -> bool:
        """True when every text passing `self` certainly passes `other` (for shadowing checks)."""
        if self == other:
            return True
        if self.negate or other.negate or (self.ignore_case and not other.ignore_case):
            return False
        if Op.REGEX in (self.op, other.op):
            # A regex is implied by the same regex alone, so that the shadowing check files
            # regexes by their text (searching each with every `equals` text compares them in
            # pairs: minutes for a few thousand rules).
            return False
        # A case-sensitive test implies one ignoring case as its folded form would: folding
        # maps each character on its own, so a text holding `self`'s value holds its folded
        # form once folded.
        mine = self.value.casefold() if other.ignore_case else self.value
        if self.op is Op.EQUALS:
            # (a case-sensitive `equals` implying one ignoring case is looked up by the
            # latter's key too: `Matcher.implied_keys`)
            return other.test(mine if self.ignore_case else self.value)
        theirs = other.value.casefold() if other.ignore_case else other.value
        if other.op is Op.CONTAINS and self.op in (Op.STARTSWITH, Op.ENDSWITH, Op.CONTAINS):
            return theirs in mine
        if self.op is other.op and self.op is Op.STARTSWITH:
            return mine.startswith(theirs)
        if self.op is other.op and self.op is Op.ENDSWITH:
            return mine.endswith(theirs)
        return False


def compile_text(value: Any, where: str, line: int, problems: Problems) -> TextTest | None:
    """The TextTest for a condition value; problems are recorded (None if it is invalid).

    Only strings are text: YAML reads bare `5`, `3.10`, `yes` or `null` as other things (and
    `3.10` would become '3.1'), so they are problems asking for quotes, never guessed.
    """
    if isinstance(value, str):
        return _not_empty(Op.CONTAINS, value, where, line, problems)
    if not isinstance(value, Mapping):
        hint = _QUOTE_IT if _scalar(value) else ""
        problems.add(
            line,
            f"{where} must be a string or a mapping such as {{contains: text}}, "
            f"got {describe(value)}{hint}",
        )
        return None
    if "not" in value:
        return _compile_not(value, where, line, problems)
    ops = [key for key in value if key not in _MODIFIERS]
    for key in ops:
        if key not in OPS:
            problems.add(
                line_of(value, key),
                f"unknown operator '{key}' in {where}" + suggest(key, OPS, noun="operators"),
            )
            return None
    if len(ops) != 1:
        found = f"got {len(ops)}: {', '.join(map(str, ops))}" if ops else "got none"
        problems.add(line, f"{where} takes exactly one operator ({', '.join(OPS)}), {found}")
        return None
    op = Op(ops[0])
    text = value[op.value]
    op_line = line_of(value, op.value)
    if not isinstance(text, str):
        hint = _QUOTE_IT if _scalar(text) else ""
        problems.add(op_line, f"{where}: {op.value} takes a string, got {describe(text)}{hint}")
        return None
    ignore_case = value.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        problems.add(
            line_of(value, "ignore_case"),
            f"{where}: ignore_case must be true or false, got {describe(ignore_case)}",
        )
        return None
    if op is not Op.REGEX and op is not Op.EQUALS and not text:
        return _not_empty(op, text, where, op_line, problems)
    origin = f"{problems.file}:{op_line}: {where}" if op_line > 0 else f"{problems.file}: {where}"
    try:
        return TextTest.make(op, text, ignore_case=ignore_case, origin=origin)
    except (re.error, OverflowError) as error:  # (a repeat count past re's bound: `a{9999999999}`)
        problems.add(op_line, f"invalid regex {text!r} in {where}: {error}")
        return None


_QUOTE_IT = " (quote it if you meant the text)"


def _not_empty(op: Op, text: str, where: str, line: int, problems: Problems) -> TextTest | None:
    """Every text contains, starts and ends with '': such a condition holds for any request."""
    if text:
        return TextTest.make(op, text)
    problems.add(
        line,
        f"{where}: {op.value} '' is true of every text (use {{equals: ''}} for an empty text, "
        "or leave the condition out)",
    )
    return None


def _scalar(value: Any) -> bool:
    """A YAML scalar that is not a string: a number, a boolean or null."""
    return value is None or isinstance(value, (bool, int, float))


def _compile_not(
    value: Mapping[str, Any], where: str, line: int, problems: Problems
) -> TextTest | None:
    if len(value) != 1:
        others = ", ".join(str(k) for k in value if k != "not")
        problems.add(
            line,
            f"{where}: 'not' takes one condition and nothing beside it, got it with {others} "
            "(write {not: {contains: text}})",
        )
        return None
    inner = compile_text(value["not"], f"{where}.not", line_of(value, "not"), problems)
    return None if inner is None else inner.negated()
