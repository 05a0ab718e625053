"""rstr's regex expander, adapted (in its own module, so that rstr loads only when a schema
pattern is expanded)."""

from __future__ import annotations

import string
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from itertools import accumulate
from typing import Any

import rstr

_REPEAT_SPAN = 8  # `*`, `+` and `{n,}` repeat at most this much beyond their minimum
# UTF-16 surrogate halves: a lone one is no character, and no UTF-8 JSON text can carry it, so
# a class like `[\x00-\uffff]` draws from either side of them.
_SURROGATES = range(0xD800, 0xE000)

_ANY = string.printable.replace("\n", "")  # what rstr draws a `.` from

# A character class as pieces, in the order rstr listed its candidates: an alphabet (`\d`, a
# literal) or an inclusive range of code points, never holding a surrogate.
_Piece = str | tuple[int, int]


class Xeger(rstr.Rstr):
    """rstr's regex expander with the changes we depend on.

    Negated classes (`[^"]`) pick from a `set` in rstr, whose order of strings changes between
    processes; here they pick from an ordered list. `*`/`+` repeat up to 100 times in rstr,
    which makes implausibly long strings; here at most `_REPEAT_SPAN` beyond the minimum. A class
    picks its character without listing them (rstr lists all 1.1 million of `[\\x00-\\U0010FFFF]`
    for every character it makes: seconds per string, holding the event loop), and never a
    surrogate. A lookahead's leading `.*` (any repeat that may be empty) makes nothing: rstr
    writes a lookahead's content where the lookahead is, and the text a `.*` put first there
    breaks patterns that allow only what the lookahead asks for (zod's emoji pattern)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cases = {**self._cases, "literal": _literal, "assert": self._handle_assert}
        self._drawers: dict[int, Callable[[], str]] = {}  # see _handle_in

    def xeger(self, string_or_regex: Any) -> str:
        """A string `string_or_regex` matches (rstr's, with the changes above)."""
        self._drawers = {}
        try:
            return super().xeger(string_or_regex)
        finally:
            self._drawers = {}

    def _handle_in(self, value: Any) -> str:
        return self._drawer(value)()

    def _drawer(self, value: Any) -> Callable[[], str]:
        """What draws one character of the class `value` (as rstr would: the same draws).

        Worked out once per class of the pattern (`(\\w\\d){100000}` draws from each often),
        found by id: the parsed pattern, which holds `value`, lives as long as `_drawers`.
        """
        draw = self._drawers.get(id(value))
        if draw is None:
            draw = self._drawers[id(value)] = self._new_drawer(value)
        return draw

    def _new_drawer(self, value: Any) -> Callable[[], str]:
        pieces = list(_pieces(self, value))
        if value and value[0][0].name == "NEGATE":
            candidates = [char for char in string.printable if not _holds(pieces, char)]
            return partial(self._random.choice, candidates)
        ends = list(accumulate(_size(piece) for piece in pieces))
        if not ends or ends[-1] == 0:  # (only surrogates: nothing can match)
            raise ValueError("a character class holds no character")
        return partial(_nth, pieces, ends, partial(self._random.randrange, ends[-1]))

    def _handle_assert(self, value: Any) -> str:
        items = list(value[1])
        while items and items[0][0].name in ("MAX_REPEAT", "MIN_REPEAT") and items[0][1][0] == 0:
            del items[0]
        return "".join(self._handle_state(item) for item in items)

    # The most characters one expansion may produce (None: unbounded): a `{1000000000}` in a
    # request's pattern must not build a gigabyte string. Set by `expand` from the size budget;
    # `truncated` says the last expansion stopped short of what the pattern asks.
    limit: int | None = None
    truncated = False

    def _handle_repeat(self, start_range: int, end_range: int, value: Any) -> str:
        times = self._random.randint(start_range, min(end_range, start_range + _REPEAT_SPAN))
        if len(value) == 1 and value[0][0].name in ("IN", "ANY"):
            # One class repeated (`[a-z]{100000}`, `.{100000}`): its characters are worked out
            # once, not per character (seconds per 100,000 characters, on the event loop).
            if self.limit is not None and times > self.limit:
                times, self.truncated = self.limit + 1, True
            op, arg = value[0]
            draw = self._drawer(arg) if op.name == "IN" else partial(self._random.choice, _ANY)
            return "".join([draw() for _ in range(times)])
        if self.limit is None:
            return "".join(self._repeat(value) for _ in range(times))
        parts: list[str] = []
        size = 0
        if times > self.limit + 1:  # (repeats of nothing count too)
            times, self.truncated = self.limit + 1, True
        for _ in range(times):
            part = self._repeat(value)
            parts.append(part)
            size += len(part)
            if size > self.limit:
                self.truncated = True
                break
        return "".join(parts)

    def _repeat(self, value: Any) -> str:
        return "".join(self._handle_state(item) for item in value)


def _literal(code: int) -> str:
    if code in _SURROGATES:
        raise ValueError("a lone surrogate matches no character")
    return chr(code)


def _pieces(xeger: Xeger, items: Any) -> Iterator[_Piece]:
    """The pieces of a parsed class (`sre_parse` items: NEGATE, LITERAL, RANGE, CATEGORY)."""
    for op, arg in items:
        name = op.name
        if name == "LITERAL":
            if arg not in _SURROGATES:
                yield chr(arg)
        elif name == "RANGE":
            low, high = arg
            yield from _outside_surrogates(low, high)
        elif name == "CATEGORY":
            yield xeger._categories[arg.name.lower()]()
        elif name != "NEGATE":
            raise ValueError(f"unexpected {name} in a character class")


def _outside_surrogates(low: int, high: int) -> Iterator[tuple[int, int]]:
    if low < _SURROGATES.start:
        yield low, min(high, _SURROGATES.start - 1)
    if high >= _SURROGATES.stop:
        yield max(low, _SURROGATES.stop), high


def _size(piece: _Piece) -> int:
    return len(piece) if isinstance(piece, str) else piece[1] - piece[0] + 1


def _holds(pieces: Sequence[_Piece], char: str) -> bool:
    code = ord(char)
    return any(
        char in piece if isinstance(piece, str) else piece[0] <= code <= piece[1]
        for piece in pieces
    )


def _nth(pieces: Sequence[_Piece], ends: Sequence[int], draw: Callable[[], int]) -> str:
    """The `draw()`th character of the pieces laid end to end (rstr's list, not built), `ends`
    being where each piece ends in it."""
    index = draw()
    at = bisect_right(ends, index)
    piece, offset = pieces[at], index - (ends[at - 1] if at else 0)
    return piece[offset] if isinstance(piece, str) else chr(piece[0] + offset)
