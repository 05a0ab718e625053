"""From a Reply to the choices actually sent: n, stop sequences, max_tokens, tool-call ids.

This is the part of rendering every text endpoint shares (chat, legacy completions, responses):
a scripted reply and a generated one go through the same limits, so `max_tokens` truncates a rule's
answer exactly as it truncates generated text. The model's own output-token limit applies the same
way when it is lower: no answer is longer than the model could have written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from mockai import tokens
from mockai.generate import budget
from mockai.generate.tools import is_custom
from mockai.pipeline.exchange import Exchange
from mockai.pipeline.reply import Choice, Reply, ToolCall
from mockai.records import record
from mockai.wire import ids


@record
class Shaped:
    """One choice ready to render: final text, its token pieces, tool calls with ids."""

    index: int
    content: str | None
    pieces: tuple[str, ...]  # token pieces of `content` (or of the refusal)
    tool_calls: tuple[ToolCall, ...]
    refusal: str | None
    finish_reason: str
    completion_tokens: int


def shape(
    reply: Reply,
    exchange: Exchange,
    key: bytes,
    *,
    count: int | None = None,
    call_id: Callable[[bytes, int], str] = ids.tool_call_id,
    keep_stop: bool = False,
    reserved: int = 0,
) -> list[Shaped]:
    """`count` (default: the request's `n`) choices, cycling through the reply's choices.

    `call_id` makes the ids of tool calls a reply leaves to mockai (a provider profile's format);
    `keep_stop` keeps a stop sequence in the text instead of cutting before it; `reserved` is
    the output tokens each answer spent before its text (a reasoning model's reasoning), which
    its output limit counts first. A shaped answer's `completion_tokens` leaves them out.
    """
    total = exchange.n if count is None else count
    choices = reply.choices or (Choice(content=""),)
    limit = exchange.output_limit  # max_tokens and the model's own limit: the API stops there
    if limit is not None:
        limit = max(limit - reserved, 0)
    return [
        _shape_one(i, choices[i % len(choices)], exchange, key, call_id, keep_stop, limit)
        for i in range(total)
    ]


def _shape_one(
    index: int,
    choice: Choice,
    exchange: Exchange,
    key: bytes,
    call_id: Callable[[bytes, int], str],
    keep_stop: bool,
    limit: int | None,
) -> Shaped:
    # The deprecated functions API calls one function per answer: only the first call is sent,
    # so only it is billed and only it counts against the limit.
    scripted = choice.tool_calls[:1] if exchange.legacy_functions else choice.tool_calls
    finish = "tool_calls" if scripted else "stop"
    content, refusal = choice.content, choice.refusal
    text = refusal if refusal is not None else content
    pieces: tuple[str, ...] = ()
    if text and limit is None:
        pieces = tokens.split(text)
    elif text and limit is not None:
        # A refusal is written like any answer: it stops at the limit too.
        pieces, longer = budget.first_pieces(text, limit)
        if longer:
            if refusal is not None and pieces:
                refusal = "".join(pieces)
            elif refusal is not None:  # (no room at all, a reasoning model's spent: no answer)
                refusal, content = None, ""
            else:
                content = "".join(pieces)
            finish = "length"
    if content is not None and refusal is None and exchange.stop:
        content, pieces, cut = _apply_stop(content, pieces, exchange.stop, keep_stop)
        if cut:
            finish = "stop"
    calls: tuple[ToolCall, ...] = ()
    used = len(pieces)
    if scripted:
        custom = custom_tools(exchange)
        calls = tuple(
            call
            if call.id and (call.kind == "custom" or call.name not in custom)
            else replace(
                call,
                id=call.id or call_id(key, index * 64 + i),
                kind="custom" if call.name in custom else call.kind,
            )
            for i, call in enumerate(scripted)
        )
        used += sum(tokens.count_again(c.arguments) + _CALL_OVERHEAD for c in calls)
    if limit is not None and used > limit and calls:
        calls = _calls_within(calls, limit - len(pieces))
        used = limit  # the answer ran out of tokens: it used all it had
        finish = "length"
    return Shaped(
        index=index,
        content=content,
        pieces=pieces,
        tool_calls=calls,
        refusal=refusal,
        finish_reason=_finish_reason(choice.finish_reason, finish),
        completion_tokens=used,
    )


def _finish_reason(scripted: str | None, derived: str) -> str:
    """A rule's `finish_reason` unless the output limit cut the answer: a cut answer did not
    finish, whatever the rule says ("length", as its usage is held to the limit)."""
    return derived if derived == "length" or scripted is None else scripted


_CALL_OVERHEAD = 4  # tokens a tool call costs beyond its arguments (its name, the framing)


def custom_tools(exchange: Exchange) -> frozenset[str]:
    """The names of the custom (freeform) tools `exchange` offers: a call to one is rendered as
    a custom call (`input`, not `arguments`), whichever source made it (a rule scripts a call by
    the tool's name alone)."""
    return frozenset(tool.name for tool in exchange.tools if is_custom(tool))


def _calls_within(calls: tuple[ToolCall, ...], room: int) -> tuple[ToolCall, ...]:
    """The tool calls an answer with `room` tokens left holds: the first ones whole, then the
    one it ran out in, opened (id and name) with its arguments cut where the tokens ran out
    (invalid JSON, or none at all, as the API sends it)."""
    kept: list[ToolCall] = []
    for call in calls:
        if room <= 0:
            break
        left = room - _CALL_OVERHEAD
        pieces, longer = budget.first_pieces(call.arguments, max(left, 0))
        if not longer:
            kept.append(call)
            room = left - len(pieces)
            continue
        kept.append(replace(call, arguments="".join(pieces)))
        break
    return tuple(kept)


def _apply_stop(
    content: str, pieces: tuple[str, ...], stops: tuple[str, ...], keep: bool = False
) -> tuple[str, tuple[str, ...], bool]:
    """Cut `content` before the earliest stop sequence (the API never sends the stop itself;
    with `keep`, after it, as Fireworks does)."""
    found = [(i, s) for i, s in ((content.find(s), s) for s in stops) if i >= 0]
    if not found:
        return content, pieces, False
    cut_at, stop = min(found)
    content = content[: cut_at + len(stop)] if keep else content[:cut_at]
    return content, tokens.split(content), True


def usage_numbers(
    reply: Reply, prompt_tokens: int, completion_tokens: int, cap: int | None = None
) -> tuple[int, int, int]:
    """(prompt, completion, total) with the reply's overrides applied; a scripted completion
    count is held to `cap` (`output_cap`): no answer uses more tokens than it was allowed, so a
    scripted answer cut at `max_tokens` reports the limit, as a generated one does, and its total
    is then prompt + completion (the API's own sum). A scripted total the cap leaves alone is sent
    as written, even one that disagrees with its parts: the rule asked for it."""
    override = reply.usage or {}
    prompt = int(override.get("prompt_tokens", override.get("input_tokens", prompt_tokens)))
    completion = int(
        override.get("completion_tokens", override.get("output_tokens", completion_tokens))
    )
    if cap is not None and completion > cap:
        # (The scripted total counted tokens that were never written.)
        return prompt, cap, prompt + cap
    total = int(override.get("total_tokens", prompt + completion))
    return prompt, completion, total


def cached_tokens(reply: Reply, prompt: int) -> int:
    """The prompt's tokens read from the cache: a rule's `usage.cached_tokens` (mockai caches
    nothing itself), never more than the prompt. A test of an app's cache-aware cost accounting
    scripts them as it scripts reasoning tokens."""
    scripted = int((reply.usage or {}).get("cached_tokens", 0))
    return min(scripted, prompt)


def output_cap(exchange: Exchange, choices: int) -> int | None:
    """The most completion tokens `choices` answers to `exchange` may use together (None: no
    limit is known)."""
    limit = exchange.output_limit
    return None if limit is None else limit * choices
