"""The end of an error message that says how to fix it: `(did you mean 'x'?)` or the valid values.

One wording for every enumerated value mockai reads, wherever it is read: scenario files, CLI
options, `MOCKAI_*` environment variables and `x-mockai-*` request headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def closest(word: Any, known: Iterable[str]) -> str | None:
    """The known value `word` most probably meant, if one is close enough."""
    import difflib  # (with the first mistake: a server that reads none never needs it)

    close = difflib.get_close_matches(str(word), list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(word: Any, known: Iterable[str], *, noun: str = "known keys") -> str:
    """` (did you mean 'x'?)` for a near miss, else ` (<noun>: a, b, c)`."""
    options = list(known)
    near = closest(word, options)
    if near is not None:
        return f" (did you mean '{near}'?)"
    return f" ({noun}: {', '.join(options)})"
