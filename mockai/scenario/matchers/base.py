"""The Matcher base class and the read-only registry its subclasses join by declaring a key."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from types import MappingProxyType
from typing import Any, ClassVar

from mockai.pipeline.exchange import Exchange
from mockai.scenario.operators import Op, TextTest, composed
from mockai.scenario.problems import Problems

_registry: dict[str, type[Matcher]] = {}
REGISTRY: Mapping[str, type[Matcher]] = MappingProxyType(_registry)


def shorten(text: str, limit: int = 60) -> str:
    """`text` quoted on one line (`'hello world\\n'`), at most `limit` characters between the
    quotes, cut with an ellipsis past them.

    Newlines, tabs and runs of spaces stay as `repr` shows them: a text differing from the
    expected one in its whitespace alone must not look the same in the no-match report.
    """
    if len(text) <= limit and len(shown := repr(text)) <= limit + 2:
        return shown
    # Cut the text rather than its repr, so that no escape (`\n`, `\x00`) is cut in two.
    cut = text[: limit - 1]
    while len(shown := repr(cut + "…")) > limit + 2:
        cut = cut[:-1]
    return shown


@dataclass(frozen=True)
class Matcher:
    """One condition of a rule's `match` block."""

    key: ClassVar[str]
    cost: ClassVar[int] = 1  # cheap conditions are tested first
    weight: ClassVar[float] = 1.0  # how much a holding condition counts in near-miss ranking

    # Where it was written says nothing of what it matches: two conditions alike but for their
    # line are equal (and the default `implies` holds), or no rule would ever shadow another.
    line: int = field(compare=False)

    def __init_subclass__(cls, key: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not key:
            return
        if key in _registry:
            raise TypeError(
                f"match key '{key}' is handled by both {_registry[key].__qualname__} "
                f"and {cls.__qualname__}"
            )
        cls.key = key
        _registry[key] = cls

    @classmethod
    def compile(cls, value: Any, line: int, where: str, problems: Problems) -> list[Matcher]:
        """The conditions for `value` (an empty list when it is invalid; problems recorded)."""
        raise NotImplementedError

    @property
    def subject(self) -> str:
        """What the condition looks at (`user`, `headers.x-case`, `body.temperature`)."""
        return self.key

    def holds(self, exchange: Exchange) -> bool:
        """True when the request satisfies this condition."""
        raise NotImplementedError

    def predicate(self) -> Callable[[Exchange], bool]:
        """`holds` as one plain function, with everything it needs bound (the hot path)."""
        return self.holds

    def expected(self) -> str:
        """The condition, for people: `contains 'weather'`."""
        raise NotImplementedError

    def actual(self, exchange: Exchange) -> str:
        """What the request has in its place, for people."""
        raise NotImplementedError

    def implies(self, other: Matcher) -> bool:
        """True when any request satisfying `self` certainly satisfies `other` (same subject)."""
        return self == other

    def exact_key(self) -> Hashable | None:
        """For a condition only its like implies (`equals` a text): a key that is equal for
        two such conditions when one implies the other (`shadows` then looks rules up instead
        of comparing every pair; see `implied_keys` for the one other way); None for every
        other condition."""
        return None

    def implied_keys(self) -> tuple[Hashable, ...]:
        """The exact keys of the conditions this one implies: its own, and for a case-sensitive
        `equals` that of the same `equals` ignoring case (texts/`_Text`)."""
        key = self.exact_key()
        return () if key is None else (key,)

    def distance(self, exchange: Exchange) -> float:
        """0 when the condition holds, up to 1 when the request is nowhere near (for ranking)."""
        return 0.0 if self.holds(exchange) else 1.0

    def support(self) -> float:
        """How much this condition holding says about a request being close to the rule."""
        test = getattr(self, "test", None)
        # `not ...` holds for almost everything: weak evidence.
        return self.weight * (0.2 if isinstance(test, TextTest) and test.negate else 1.0)


def text_distance(test: TextTest, text: str | None) -> float:
    """How far `text` is from satisfying `test`: 0 (it does) to 1 (nothing alike)."""
    holds = test.test(text) if text is not None else test.negate
    if holds:
        return 0.0
    if text is None or test.negate or test.op is Op.REGEX or not test.value:
        return 1.0
    # (composed, as the test compares it: a decomposed `é` is as near as the composed one)
    wanted, got = test.value.casefold(), composed(text[:2000]).casefold()
    if test.op is Op.CONTAINS:
        found = SequenceMatcher(None, wanted, got, autojunk=False).find_longest_match()
        return 1.0 - found.size / len(wanted)
    if test.op is Op.STARTSWITH:
        got = got[: len(wanted)]
    elif test.op is Op.ENDSWITH:
        got = got[-len(wanted) :]
    return 1.0 - SequenceMatcher(None, wanted, got, autojunk=False).ratio()
