"""Deterministic, plausible log probabilities for the tokens an answer is made of.

Each position is a small distribution: the sampled token is the most likely one, and the
alternatives share part of what is left of the probability mass, each less likely than the one
before. So `top_logprobs` lists distinct tokens, most likely first, with the sampled token among
them at its own logprob, and their probabilities never sum to more than 1 (the spec's "most likely
tokens"; code that renormalises or samples from them relies on this).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

from mockai.api.base import RenderContext, content_key
from mockai.pipeline.exchange import Exchange

# At least 21 tokens: a position's 20 `top_logprobs` (the spec's maximum) stay distinct even
# when the sampled token is one of them.
_ALTERNATIVES = (
    " the", " a", ",", ".", " and", " to", " of", " is", " in", " it", " that", "\n",
    " for", " on", " with", " as", " was", " be", " at", " by", " this", " or", " an", " not",
)  # fmt: skip
# The sampled token's logprob at most this (below 0): some mass is left for the alternatives.
_MOST_CERTAIN = -1e-6
# The share of the mass left that the alternatives may take (a tail of other tokens remains).
_ALTERNATIVES_SHARE = 0.9


def key(exchange: Exchange, ctx: RenderContext) -> bytes:
    """The key a request's logprobs derive from: its content key, as for its text, so the same
    question gets the same numbers streamed or not, and a cut answer a prefix of the full one's.
    (Not the ids' key, which the presentation fields, `stream` among them, change.)"""
    return content_key(exchange, ctx)


def _unit(key: bytes, label: str) -> float:
    """A number in [0, 1) derived from key and label."""
    digest = hashlib.blake2b(label.encode(), key=key[:64], digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _logprob(key: bytes, position: int, token: str) -> float:
    # Most tokens of a fluent answer are confident: squash towards 0.
    return min(round(-3.0 * _unit(key, f"{position}:{token}") ** 3, 6), _MOST_CERTAIN)


def _rounded_down(logprob: float) -> float:
    # Rounding down, never up, keeps the rounded probabilities' sum within 1.
    return math.floor(logprob * 1e6) / 1e6


def _alternatives(key: bytes, position: int, token: str, logprob: float, count: int) -> list[Any]:
    """`count` other tokens, each less likely than the one before (and than `token`)."""
    sampled = math.exp(logprob)
    # Each takes at least half of what is left, so the next is never more likely than it; the
    # first takes its share of at most the sampled token's probability.
    left = _ALTERNATIVES_SHARE * min(sampled, 1.0 - sampled)
    first = int(_unit(key, f"{position}:first") * len(_ALTERNATIVES))
    others = [t for t in _ALTERNATIVES[first:] + _ALTERNATIVES[:first] if t != token]
    out = []
    for rank, alt in enumerate(others[:count], start=1):
        mass = left * (0.5 + 0.45 * _unit(key, f"{position}:{rank}"))
        left -= mass
        out.append(_entry(alt, _rounded_down(math.log(mass))))
    return out


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def chat(pieces: Sequence[str], key: bytes, top: int, start: int = 0) -> list[dict[str, Any]]:
    """`choice.logprobs.content` entries for `pieces` (positions numbered from `start`)."""
    entries = []
    for offset, token in enumerate(pieces):
        position = start + offset
        logprob = _logprob(key, position, token)
        tops = [_entry(token, logprob)] if top > 0 else []
        tops += _alternatives(key, position, token, logprob, max(top - 1, 0))
        entries.append({**_entry(token, logprob), "top_logprobs": tops})
    return entries


def legacy(
    pieces: Sequence[str], key: bytes, top: int, offset: int = 0, start: int = 0
) -> dict[str, Any]:
    """The legacy completions shape: parallel lists of tokens, logprobs, tops and offsets
    (`offset`: the first piece's place in the choice's text; `start`: its position among the
    choice's tokens, as in `chat`)."""
    entries = chat(pieces, key, max(top, 1), start)
    offsets = []
    position = offset
    for token in pieces:
        offsets.append(position)
        position += len(token)
    return {
        "tokens": list(pieces),
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": [
            {alt["token"]: alt["logprob"] for alt in e["top_logprobs"][:top]} for e in entries
        ],
        "text_offset": offsets,
    }


def echoed(prompt: Sequence[str], key: bytes, top: int) -> dict[str, Any]:
    """`legacy` for an echoed prompt's pieces: the API scores each token given those before it,
    so the first one, with nothing before it, has a null logprob and null tops."""
    scored = legacy(prompt, key, top)
    if prompt:
        scored["token_logprobs"][0] = None
        scored["top_logprobs"][0] = None
    return scored


def joined(first: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    """Two runs of `legacy` lists, one after the other."""
    return {name: first[name] + then[name] for name in first}
