"""DeepSeek (`https://api.deepseek.com`, `/v1` works too): `reasoning_content`, keep-alives.

Facts: shared/reference/providers.md section 10 (api-docs.deepseek.com: first call, list
models, reasoning model, error codes, rate limit). Models the docs as of December 2026.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mockai import tokens
from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.pipeline import fingerprint
from mockai.profiles import limits, shapes
from mockai.profiles.base import ErrorStyle, Json, Profile, openai_envelope
from mockai.profiles.hooks import Answer, ChatShape
from mockai.wire import ids

CATALOG = (
    ModelInfo("deepseek-chat", owned_by="deepseek", max_output_tokens=8_192),
    ModelInfo("deepseek-reasoner", owned_by="deepseek", max_output_tokens=65_536),
)
KEEP_ALIVE = "keep-alive"


def _card(info: ModelInfo) -> Json:
    return {"id": info.id, "object": "model", "owned_by": "deepseek"}  # no `created`


def _reasons(answer: Answer) -> bool:
    return "reasoner" in answer.exchange.model


def _thought(answer: Answer, visible: int) -> str:
    """The reasoner's thought, the same for the same request, streamed or not: plausible, and
    cut to what the output limit leaves after each choice's `visible` answer tokens, since
    reasoning tokens are completion tokens (counted in `max_tokens`); "" for other models."""
    if not _reasons(answer):
        return ""
    exchange = answer.exchange
    # Keyed on what the request asks, as its answer's text is, not on `answer.key`: that is the
    # ids' key, which `stream` and every repeat of the request change. (The seed is not at hand
    # in a profile's hook: the tag is the same under every seed.)
    key = fingerprint.content_key(0, exchange.endpoint.value, exchange.body)
    thought = f"Let me think about this step by step ({ids.alnum(key, 'think', 6)})."
    limit = exchange.output_limit
    if limit is None:
        return thought
    per_choice = -(-visible // max(exchange.n, 1))  # (rounded up)
    return tokens.truncate(thought, max(limit - per_choice, 0))


def _visible(usage: Mapping[str, Any] | None) -> int:
    """The answer's own completion tokens, before any reasoning is added."""
    return int((usage or {}).get("completion_tokens", 0))


def _usage(usage: dict[str, Any], answer: Answer, thought: str) -> dict[str, Any]:
    prompt = usage.get("prompt_tokens", 0)
    out = {k: v for k, v in usage.items() if k != "prompt_tokens_details"}
    # Cache hits and misses instead of `prompt_tokens_details.cached_tokens` (a rule's).
    hit = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
    out["prompt_cache_hit_tokens"] = hit
    out["prompt_cache_miss_tokens"] = prompt - hit
    # `completion_tokens_details` breaks `completion_tokens` down (OpenAI's spec): the reasoning
    # of every choice is part of the completion, and of the total.
    reasoning = tokens.count(thought) * max(answer.exchange.n, 1)
    out["completion_tokens"] = _visible(usage) + reasoning
    out["total_tokens"] = prompt + out["completion_tokens"]
    out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


def _body(body: Json, answer: Answer) -> None:
    thought = _thought(answer, _visible(body["usage"]))
    body["usage"] = _usage(body["usage"], answer, thought)
    if _reasons(answer):
        for choice in body["choices"]:
            choice["message"]["reasoning_content"] = thought


def _stream(body: list[Json], tail: list[Json], answer: Answer) -> tuple[list[bytes], list[bytes]]:
    # (the answer's usage, asked for or not: the thought is the same as in a whole body)
    thought = _thought(answer, _visible(answer.usage))
    _, usage_chunk = shapes.finish_and_usage(tail)
    if usage_chunk is not None:
        usage_chunk["usage"] = _usage(usage_chunk["usage"], answer, thought)
    if _reasons(answer) and body:
        thinking = {k: v for k, v in body[0].items() if k != "choices"}
        thinking["choices"] = [
            {
                "index": 0,
                "delta": {"content": None, "reasoning_content": thought},
                "logprobs": None,
                "finish_reason": None,
            }
        ]
        body = [body[0], thinking, *body[1:]]
    # While a request waits for capacity DeepSeek keeps the connection open with SSE comments.
    return shapes.frames(body, tail, comments=(KEEP_ALIVE,))


def _insufficient_balance(error: ApiError) -> ApiError:
    # The body api.deepseek.com sends (OpenAI's envelope, its own values), as client projects
    # quote it from real answers (e.g. a Vercel AI SDK APICallError with DeepSeek's
    # `x-ds-trace-id` header): `{"error":{"message":"Insufficient Balance","type":
    # "unknown_error","param":null,"code":"invalid_request_error"}}`.
    return ApiError(402, "Insufficient Balance", type="unknown_error", code="invalid_request_error")


PROFILE = Profile(
    name="deepseek",
    title="DeepSeek",
    as_of="api-docs.deepseek.com, December 2026",
    catalog=CATALOG,
    chat=ChatShape(
        body=_body,
        stream=_stream,
        extras="`message.reasoning_content` (reasoner: its tokens are part of "
        "`completion_tokens`, within `max_tokens`), `usage.prompt_cache_hit_tokens` / "
        "`prompt_cache_miss_tokens`",
        stream_usage="as OpenAI",
        comments=(KEEP_ALIVE,),
    ),
    errors=ErrorStyle(
        openai_envelope,
        "OpenAI's (not documented; its 402 as observed: `type: unknown_error`, "
        "`code: invalid_request_error`)",
        named={"insufficient_quota": _insufficient_balance},
        statuses={
            422: ("Invalid Parameters", "invalid_request_error"),
            503: ("Server Overloaded", "server_error"),
        },
        as_named={402: "insufficient_quota"},  # (a scripted `{status: 402}`: the same body)
        extra_statuses="402 (balance), 422",
    ),
    limits=limits.NONE,
    model_card=_card,
    models_shape="no `created`",
    finish_reasons=("insufficient_system_resource",),
    sources=("providers.md §10",),
)
