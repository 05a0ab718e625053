"""What a reasoning model spends before it answers: reasoning tokens, and (Responses) its item.

The API bills reasoning tokens as output tokens: they count in `completion_tokens` /
`output_tokens` and against `max_completion_tokens` / `max_output_tokens` (the spec's
`CompletionUsage`: "like reasoning tokens, these tokens are still counted in the total
completion tokens for purposes of billing, output, and context window limits"). They come
before the answer, so a limit they use up leaves it empty and cut for length, which an app
calling a reasoning model must handle; a mock that never reasoned hid that path.

The Responses API also sends the reasoning as an output item ahead of the answer (`ReasoningItem`:
an `rs_` id, a `summary` that is empty unless the request asks for one with `reasoning.summary`,
and the opaque `encrypted_content` the spec says is populated by default), which an app keeping
its own context passes back in its next `input`.

Which models reason is the catalog's (`ModelInfo.reasoning`: the o-series and gpt-5, not
gpt-5-chat-latest); only the OpenAI and Azure profiles answer this way (other providers' usage is
their own). How much a model reasons follows `reasoning.effort` (chat: `reasoning_effort`), the
model's default unless given (`ModelInfo.default_effort`: `medium`, `none` for gpt-5.1 and later;
a model reasoning with `none` does not reason, and takes sampling settings the others refuse); its
tokens derive from the request's content key, so the same question costs the same streamed or
not, and come in multiples of 64 as the API's do. A rule sets them (`usage: {reasoning_tokens}`)
and the summary's text (`reply: {reasoning: ...}`).
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from mockai.api import common
from mockai.api.base import RenderContext, content_key
from mockai.catalog import ModelInfo
from mockai.pipeline.exchange import Exchange
from mockai.pipeline.reply import Reply
from mockai.wire import ids

PROVIDERS = frozenset({"openai", "azure"})  # the profiles whose models reason as OpenAI's do
# How many blocks of 64 tokens a model reasons for at each effort: (fewest, most).
# (Modest, as for the short questions tests ask: a rule sets more to test a budget used up.)
_BLOCKS = {
    "minimal": (0, 0),
    "low": (0, 2),
    "medium": (1, 4),
    "high": (2, 8),
    "xhigh": (4, 16),
    "max": (8, 32),
}
_BLOCK = 64

_TITLES = (
    "Considering the request",
    "Working out the answer",
    "Clarifying the question",
    "Planning the reply",
    "Checking the details",
)
_THOUGHTS = (
    "I'm looking at what the user is asking and working out the clearest way to answer it.",
    "The question is straightforward, so I'll answer it directly and keep the reply concise.",
    "I need to make sure I understand the request before answering, then respond helpfully.",
    "I'll go over the key points the user needs and put them in a short, clear answer.",
)
_DETAILS = (
    "I should double-check the facts I rely on and avoid adding anything the user did not ask for.",
    "A brief structure will help: the main answer first, then any detail that supports it.",
)


def refuses_effort(info: ModelInfo, provider: str) -> bool:
    """Whether an effort asked of the model is the API's 400: a model the catalog knows that
    does not reason (gpt-4o, gpt-4.1, ...), as OpenAI serves it. (gpt-5-chat-latest is left
    alone: the references do not settle which efforts it takes; a name the catalog only guesses
    at may be any model.)"""
    return (
        provider in PROVIDERS
        and info.known
        and info.kind == "chat"
        and not info.reasoning
        and not info.id.lower().rsplit("/", 1)[-1].startswith("gpt-5")
    )


def refused_effort(info: ModelInfo, provider: str, model: Any, asked: Any) -> bool:
    """Whether the effort `asked` of the model is one it does not take (the API's 400
    `unsupported_value`, listing `supported_efforts`). gpt-5.1 and later (those whose default
    effort is `none`) took `none` in place of `minimal`, which they refuse, in chat and the
    Responses API alike (draftnrun's "GPT-5.4 supports reasoning.effort='none' but not
    'minimal'"); `xhigh` came after gpt-5.1, which refuses it, as do gpt-5, gpt-5-mini and
    gpt-5-nano (CortexReach/memory-lancedb-pro#201, microsoft/vscode#301045: an app defaulting
    to `xhigh` met it; mockai reasoned at `xhigh`, though its own 400 for `minimal` on gpt-5.1
    said the model takes no `xhigh`). Nor do those three take `none`, which came with gpt-5.1
    (OpenAI's GPT-5 model page lists minimal, low, medium and high; litellm marks them
    `supports_none_reasoning_effort: false`, BerriAI/litellm#40670, for the API's 400): mockai
    answered them without reasoning, as gpt-5.1 answers `none`."""
    if provider not in PROVIDERS or not info.reasoning or asked not in ("minimal", "xhigh", "none"):
        return False
    name = str(model).lower().rsplit("/", 1)[-1]
    if info.default_effort == "none":
        return asked == "minimal" or (asked == "xhigh" and name.startswith("gpt-5.1"))
    return asked != "minimal" and info.known and _FIRST_GPT5.fullmatch(name) is not None


def supported_efforts(model: Any) -> str:
    """The efforts a model refusing one lists in its 400: gpt-5's, gpt-5.1's, and `xhigh` too
    for the models after it (gpt-5.2's efforts, as the Codex clients list them)."""
    name = str(model).lower().rsplit("/", 1)[-1]
    if _FIRST_GPT5.fullmatch(name):
        return "'minimal', 'low', 'medium', and 'high'"
    if name.startswith("gpt-5.1"):
        return "'none', 'low', 'medium', and 'high'"
    return "'none', 'low', 'medium', 'high', and 'xhigh'"


# gpt-5, gpt-5-mini, gpt-5-nano and their snapshots: the efforts before `none` and `xhigh`.
_FIRST_GPT5 = re.compile(r"gpt-5(-mini|-nano)?(-\d{4}-\d{2}-\d{2})?")


def effort(info: ModelInfo, provider: str, asked: Any) -> str | None:
    """The effort a request's model reasons with: `asked` if it is one of the spec's, else the
    model's default (`medium`; `none` for gpt-5.1 and later); None when the model does not
    reason (or the effort is `none`)."""
    if not info.reasoning or provider not in PROVIDERS:
        return None
    chosen = asked if asked in common.REASONING_EFFORTS else info.default_effort
    return None if chosen == "none" else chosen


def tokens(reply: Reply, exchange: Exchange, ctx: RenderContext) -> int:
    """The reasoning tokens of one answer: the rule's (`usage.reasoning_tokens`, on any model),
    else the model's for its effort (0 when it does not reason); never more than the answer's
    output limit, which they use first."""
    scripted = reply.usage.get("reasoning_tokens") if reply.usage else None
    if scripted is not None:
        count = int(scripted)
    elif exchange.reasoning is None:
        return 0
    else:
        fewest, most = _BLOCKS[exchange.reasoning]  # (`effort` gives one of the spec's)
        drawn = _draw(content_key(exchange, ctx), "reasoning", most - fewest + 1)
        count = _BLOCK * (fewest + drawn)
    limit = exchange.output_limit
    return count if limit is None else min(count, limit)


def item(reply: Reply, exchange: Exchange, ctx: RenderContext) -> dict[str, Any] | None:
    """The Responses API's reasoning output item, or None when the model does not reason."""
    if exchange.reasoning is None:
        return None
    summary = summary_text(reply, exchange, content_key(exchange, ctx))
    return {
        "id": ids.item_id(ctx.key, "rs", 0),
        "type": "reasoning",
        "summary": [] if summary is None else [{"type": "summary_text", "text": summary}],
        "encrypted_content": _encrypted(ctx.key),
    }


def summary_text(reply: Reply, exchange: Exchange, content_key: bytes) -> str | None:
    """The reasoning summary a request asks for (`reasoning.summary`): the rule's text, or one
    made for it; None when it asks for none (the API's `summary: []`)."""
    kind = exchange.reasoning_summary
    if kind is None:
        return None
    if reply.reasoning is not None:
        return reply.reasoning
    title = _TITLES[_draw(content_key, "title", len(_TITLES))]
    text = f"**{title}**\n\n{_THOUGHTS[_draw(content_key, 'thought', len(_THOUGHTS))]}"
    if kind == "detailed":
        text += " " + _DETAILS[_draw(content_key, "detail", len(_DETAILS))]
    return text


def refuses_concise(info: ModelInfo, provider: str) -> bool:
    """Whether the model refuses a `concise` reasoning summary: the spec's "`concise` is
    supported for `computer-use-preview` models and all reasoning models after `gpt-5`", so the
    o-series and gpt-5, gpt-5-mini and gpt-5-nano the catalog knows (their snapshots and
    fine-tunes) refuse it; gpt-5.1 and later (those reasoning with `none` unless asked) take it."""
    return provider in PROVIDERS and info.known and info.reasoning and info.default_effort != "none"


def summary_asked(effort: str | None, asked: Any) -> str | None:
    """The summary a Responses request's `reasoning` asks a model reasoning with `effort` for
    (`summary`, or the spec's deprecated `generate_summary`): `auto`, `concise` or `detailed`;
    None for none (or a model that does not reason)."""
    if effort is None or not isinstance(asked, dict):
        return None
    kind = asked.get("summary")
    if kind is None:
        kind = asked.get("generate_summary")
    return kind if kind in common.REASONING_SUMMARIES else None


def _draw(key: bytes, label: str, choices: int) -> int:
    """A number in [0, choices) derived from `key` and `label`."""
    digest = hashlib.blake2b(label.encode(), key=key[:64], digest_size=8).digest()
    return int.from_bytes(digest, "big") % choices


def _encrypted(key: bytes) -> str:
    """Opaque bytes in the form the API's take (a Fernet token: `gAAAAA...`), from the key."""
    body = b"".join(
        hashlib.blake2b(bytes([block]), key=key[:64], digest_size=64).digest() for block in range(4)
    )
    return "gAAAAA" + base64.urlsafe_b64encode(body).decode()
