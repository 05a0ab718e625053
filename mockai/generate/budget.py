"""How long a generated answer may be: the model's output-token limit, shared by the choices.

The API stops an answer at `max_tokens` (or the model's own limit) with `finish_reason: length`.
A generated answer is bounded the same way *before* it is made, so a schema asking for 150,000
strings of 1,000 characters costs what an answer at the limit costs, not gigabytes.
"""

from __future__ import annotations

from mockai import tokens
from mockai.catalog import DEFAULT_MAX_OUTPUT
from mockai.pipeline.exchange import Exchange

# Tokens one request's generated choices hold at most, together: `n: 128` answers of a schema
# asking for more than the model can write share this, so each is cut at a 128th of it (an
# answer that fits is never affected). The API has no such cap; it would take hours to write
# 128 answers of 128,000 tokens, and a test double must answer in a moment.
REQUEST_OUTPUT_TOKENS = 131_072


def answer_tokens(exchange: Exchange) -> int:
    """The most tokens one generated choice of `exchange` may hold."""
    limit = exchange.output_limit or DEFAULT_MAX_OUTPUT
    choices = max(exchange.n, 1) * max(len(exchange.inputs), 1)
    return max(1, min(limit, REQUEST_OUTPUT_TOKENS // choices))


def cut(text: str, size: int) -> str:
    """The text of a value whose generation stopped at its budget of `size` tokens, as an answer
    cut at that limit: its first `size` tokens, and never the whole JSON (should the value hold
    fewer tokens than its budget counted, its last character goes)."""
    pieces, longer = first_pieces(text, size)
    return "".join(pieces) if longer else text[:-1]


def first_pieces(text: str, limit: int) -> tuple[tuple[str, ...], bool]:
    """The first `limit` token pieces of `text`, and whether it has more.

    A huge text (a scripted 10 MB answer cut at 16 tokens) is split a window at a time, not whole:
    the pieces of a prefix are those of the whole text but for the last one or two, so a window
    holding more than `limit + 1` pieces gives the first `limit` exactly.
    """
    window = (limit + 2) * 16
    while window < len(text):
        pieces = _split(text[:window])
        if len(pieces) > limit + 1:
            return pieces[:limit], True
        window *= 4
    pieces = _split(text)
    return (pieces[:limit], True) if len(pieces) > limit else (pieces, False)


_LARGE = 65_536  # characters beyond which a text's pieces are not worth keeping in split's cache


def _split(text: str) -> tuple[str, ...]:
    # tokens.split keeps what it splits (a load test renders the same answers again and again);
    # a huge text is rarely seen twice, and its pieces would hold megabytes each.
    if len(text) > _LARGE:
        return getattr(tokens.split, "__wrapped__", tokens.split)(text)
    return tokens.split(text)
