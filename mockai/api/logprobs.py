"""Deterministic, plausible log probabilities for the tokens an answer is made of."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

_ALTERNATIVES = (" the", " a", ",", ".", " and", " to", " of", " is", " in", " it", " that", "\n")


def _unit(key: bytes, label: str) -> float:
    """A number in [0, 1) derived from key and label."""
    digest = hashlib.blake2b(label.encode(), key=key[:64], digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _logprob(key: bytes, position: int, token: str) -> float:
    # Most tokens of a fluent answer are confident: squash towards 0.
    return round(-3.0 * _unit(key, f"{position}:{token}") ** 3, 6)


def chat(pieces: Sequence[str], key: bytes, top: int, start: int = 0) -> list[dict[str, Any]]:
    """`choice.logprobs.content` entries for `pieces` (positions numbered from `start`)."""
    entries = []
    for offset, token in enumerate(pieces):
        position = start + offset
        logprob = _logprob(key, position, token)
        alternatives = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]
        for rank in range(1, top):
            alt = _ALTERNATIVES[(position + rank) % len(_ALTERNATIVES)]
            alt_lp = round(logprob - 1.0 - 2.0 * _unit(key, f"{position}:{rank}"), 6)
            alternatives.append({"token": alt, "logprob": alt_lp, "bytes": list(alt.encode())})
        entries.append(
            {
                "token": token,
                "logprob": logprob,
                "bytes": list(token.encode()),
                "top_logprobs": alternatives[:top],
            }
        )
    return entries


def legacy(pieces: Sequence[str], key: bytes, top: int, offset: int = 0) -> dict[str, Any]:
    """The legacy completions shape: parallel lists of tokens, logprobs, tops and offsets."""
    entries = chat(pieces, key, max(top, 1))
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
