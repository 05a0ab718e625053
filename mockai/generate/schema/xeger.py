"""rstr's regex expander, adapted (in its own module, so that rstr loads only when a schema
pattern is expanded)."""

from __future__ import annotations

import string
from itertools import chain
from typing import Any

import rstr

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
    # request's pattern must not build a gigabyte string. Set by `expand` from the size budget;
    # `truncated` says the last expansion stopped short of what the pattern asks.
    limit: int | None = None
    truncated = False

    def _handle_repeat(self, start_range: int, end_range: int, value: str) -> str:
        times = self._random.randint(start_range, min(end_range, start_range + _REPEAT_SPAN))
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
