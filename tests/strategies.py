"""Hypothesis strategies for the property tests: text and JSON that try to break the wire.

Arbitrary Unicode alone rarely produces what breaks streams and SSE framing, so the text
strategies mix it with fragments known to be hard: underscores and other characters `re` treats
unlike the tokenizers, emoji ZWJ sequences, CJK, combining marks, every kind of line break, quotes
and backslashes, and text that looks like SSE framing (`data: [DONE]`).
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import strategies as st

from mockai.scenario.templates import is_template

# How many examples the server-backed properties run: scaled up by the `deep` profile
# (HYPOTHESIS_PROFILE=deep), kept small by default so the suite stays within its time budget.
_SCALE = 25 if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else 1


def examples(count: int) -> int:
    """`count` examples by default, many more under the `deep` profile."""
    return count * _SCALE


HARD_FRAGMENTS = (
    "_",
    "__init__",
    "first_name",
    "snake_case_id",
    "https://x.io/a_b?c_d=e_f",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a ZWJ family
    "\U0001f44d\U0001f3fd",  # a skin-tone modifier
    "\U0001f1eb\U0001f1f7",  # a flag (regional indicators)
    "日本語のテキスト",
    "한국어",
    "e\u0301",  # a combining acute accent
    "\u0915\u094d\u0937",  # Devanagari conjunct
    "\r\n",
    "\r",
    "\n\n",
    "\t",
    "\u2028",
    "\u00a0",
    '"',
    "'",
    "\\",
    '\\"',
    "\\n",
    "data: ",
    "data: [DONE]\n\n",
    "[DONE]",
    "event: error\n",
    ": keep-alive\n\n",
    "{}",
    '{"a": 1}',
    "</s>",
    "x²",
    "½",
    "123456789",
    "don't",
    " ",
    "  ",
    "\x00",
    "\x7f",
    "\ufeff",
)

# Any Unicode scalar value a JSON body can carry (no lone surrogates: they are not UTF-8).
_ANY_CHAR = st.characters(codec="utf-8")


def _no_template(text: str) -> bool:
    # Scripted strings with `{{`, `{%` or `{#` are templates by contract; these properties are
    # about literal text.
    return not is_template(text)


def texts(*, min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    """Arbitrary text, hard fragments mixed in; never a template."""
    piece = st.one_of(st.text(_ANY_CHAR, max_size=12), st.sampled_from(HARD_FRAGMENTS))
    return (
        st.lists(piece, min_size=min_size, max_size=max_size)
        .map("".join)
        .filter(lambda text: len(text) >= min_size and _no_template(text))
    )


def keys() -> st.SearchStrategy[str]:
    """JSON object keys: arbitrary, underscores and odd characters included."""
    return st.one_of(
        st.text(_ANY_CHAR, max_size=10), st.sampled_from(HARD_FRAGMENTS), st.just("")
    ).filter(_no_template)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values (finite numbers), their strings never templates."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        texts(max_size=6),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(keys(), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def json_objects(max_leaves: int = 12) -> st.SearchStrategy[dict[str, Any]]:
    """Arbitrary JSON objects (tool arguments, structured answers)."""
    return st.dictionaries(keys(), json_values(max_leaves), max_size=5)
