"""Moves the providers' chat streams share: where usage goes, comment lines, ids on every chunk.

A stream arrives here as OpenAI's chunks, decoded, split into `body` (role, content and tool-call
deltas) and `tail` (one finish chunk per choice, then the usage chunk when the client asked for
one); each helper returns the frames to send. The profile modules compose them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mockai.profiles.base import Json
from mockai.profiles.hooks import Answer, comment, encode
from mockai.wire import sse


def finish_and_usage(tail: list[Json]) -> tuple[list[Json], Json | None]:
    """The finish chunks of a tail, and its usage chunk (choices `[]`) if there is one."""
    if tail and not tail[-1].get("choices"):
        return tail[:-1], tail[-1]
    return tail, None


def usage_of(answer: Answer) -> dict[str, Any]:
    return dict(answer.usage or {})


def without_usage_fields(chunks: list[Json]) -> None:
    """OpenAI's `"usage": null` on every chunk comes with `include_usage`; most providers have
    no such key."""
    for chunk in chunks:
        chunk.pop("usage", None)


def usage_on_last_finish(
    body: list[Json], tail: list[Json], answer: Answer, *, null_before: bool
) -> tuple[list[Json], list[Json]]:
    """Usage always sent, on the last chunk (the one with `finish_reason`), and no separate usage
    chunk (Fireworks, Mistral); `null_before`: earlier chunks carry `"usage": null`."""
    finishes, _ = finish_and_usage(tail)
    chunks = body + finishes
    for chunk in chunks:
        if null_before:
            chunk["usage"] = None
        else:
            chunk.pop("usage", None)
    if finishes:
        finishes[-1]["usage"] = usage_of(answer)
    return body, finishes


def running_usage(chunks: list[Json], answer: Answer) -> None:
    """Usage on every chunk, with the completion tokens counted so far (each content delta is
    one token piece): summing them over-counts, as on the providers that do this."""
    usage = usage_of(answer)
    prompt = int(usage.get("prompt_tokens", 0))
    final = int(usage.get("completion_tokens", 0))
    produced = 0
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content") or delta.get("tool_calls"):
                produced += 1
        done = any(c.get("finish_reason") for c in chunk.get("choices") or ())
        completion = final if done else min(produced, final)
        chunk["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }


def each(chunks: list[Json], change: Callable[[Json], None]) -> None:
    for chunk in chunks:
        change(chunk)


def frames(
    body: list[Json], tail: list[Json], *, comments: tuple[str, ...] = (), done: bool = True
) -> tuple[list[bytes], list[bytes]]:
    """Encode a reshaped stream: comment lines first, `[DONE]` last (when the provider sends it)."""
    head = [comment(text) for text in comments] + encode(body)
    return head, encode(tail) + ([sse.DONE] if done else [])


def set_all(chunks: list[Json], fields: Mapping[str, Any]) -> None:
    for chunk in chunks:
        chunk.update(fields)
