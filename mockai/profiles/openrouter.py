"""OpenRouter (`https://openrouter.ai/api/v1`): a gateway with its own error envelope and stream.

Facts: shared/reference/providers.md section 2 (OpenRouterTeam/docs: overview, streaming,
errors-and-debugging, limits, usage-accounting). Models the docs as of December 2026, including
streaming.mdx's final usage chunk (one choice repeating the finish reason).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint
from mockai.profiles import limits, shapes
from mockai.profiles.base import EVERY_TABLE, ErrorStyle, ExtraFields, Json, Profile
from mockai.profiles.hooks import Answer, ChatShape, RequestPolicy
from mockai.wire import ids, jsonbytes, sse

CREATED = 1741305600
PROCESSING = "OPENROUTER PROCESSING"


def _model(model_id: str, kind: Any = "chat", window: int = 128_000) -> ModelInfo:
    return ModelInfo(model_id, kind=kind, created=CREATED, context_window=window)


CATALOG = (
    _model("openai/gpt-4o"),
    _model("openai/gpt-4o-mini"),
    _model("anthropic/claude-sonnet-4", window=200_000),
    _model("google/gemini-2.5-flash", window=1_048_576),
    _model("meta-llama/llama-3.3-70b-instruct:free", window=131_072),
    _model("openai/text-embedding-3-small", kind="embedding", window=8_192),
)

# Who serves a model, by its vendor prefix (the top-level `provider` of an answer).
_VENDORS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "google": "Google",
    "meta-llama": "Meta",
    "mistralai": "Mistral",
    "deepseek": "DeepSeek",
}


def _card(info: ModelInfo) -> Json:
    vendor, _, name = info.id.partition("/")
    modality = "text->text" if info.kind == "chat" else "text->embeddings"
    return {
        "id": info.id,
        "canonical_slug": info.id.removesuffix(":free"),
        "hugging_face_id": "",
        "name": f"{_VENDORS.get(vendor, vendor.title())}: {name or vendor}",
        "created": info.created,
        "description": f"{info.id}, served through OpenRouter (mockai's catalog).",
        "context_length": info.context_window,
        "architecture": {
            "modality": modality,
            "input_modalities": ["text"],
            "output_modalities": ["text" if info.kind == "chat" else "embeddings"],
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": {
            "prompt": "0" if info.id.endswith(":free") else "0.0000025",
            "completion": "0" if info.id.endswith(":free") else "0.00001",
            "request": "0",
            "image": "0",
            "web_search": "0",
            "internal_reasoning": "0",
            "input_cache_read": "0",
            "input_cache_write": "0",
        },
        "top_provider": {
            "context_length": info.context_window,
            "max_completion_tokens": info.max_output_tokens,
            "is_moderated": vendor == "openai",
        },
        "per_request_limits": None,
        "supported_parameters": ["max_tokens", "temperature", "tools", "tool_choice", "stop"],
        "default_parameters": {},
    }


def _list(cards: list[Json]) -> Any:
    return {"data": cards}  # no `object: "list"`


def generation_id(key: bytes) -> str:
    return f"gen-{1_741_305_600 + int(ids.hexid(key, 'gen-t', 6), 16) % 10_000_000}-" + ids.alnum(
        key, "gen", 20
    )


def _provider(model: str) -> str:
    vendor = model.partition("/")[0]
    return _VENDORS.get(vendor, vendor.title() or "OpenAI")


def _cost(usage: dict[str, Any]) -> float:
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return round(prompt * 25e-7 + completion * 1e-5, 8)


def _usage(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.get("prompt_tokens", 0),
        "completion_tokens": usage.get("completion_tokens", 0),
        "total_tokens": usage.get("total_tokens", 0),
        "cost": _cost(usage),
        "is_byok": False,
        "prompt_tokens_details": {
            "cached_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
            "cache_write_tokens": 0,
            "audio_tokens": 0,
        },
        "cost_details": {"upstream_inference_cost": None},
        "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0},
    }


def _native(choices: list[Json]) -> None:
    for choice in choices:
        if "finish_reason" in choice:
            choice["native_finish_reason"] = choice["finish_reason"]


# What went wrong, beside a choice that finishes with `error` (a scripted `finish_reason:
# error`): OpenRouter never sends that finish without it. The values are the example of
# errors-and-debugging.mdx ("Skin-specific error formats"): a provider that dropped mid-answer.
def _provider_error() -> Json:
    return {
        "code": 502,
        "message": "Provider disconnected mid-stream",
        "metadata": {"error_type": "provider_unavailable"},
    }


def _failed(choices: list[Json]) -> bool:
    return any(choice.get("finish_reason") == "error" for choice in choices)


def _body(body: Json, answer: Answer) -> None:
    body["id"] = generation_id(answer.key)
    body["provider"] = _provider(answer.exchange.model)
    _native(body["choices"])
    for choice in body["choices"]:
        if _failed([choice]):  # ("embedded in the final response alongside any partial content")
            choice["error"] = _provider_error()
    body["usage"] = _usage(body["usage"])


def _echoes(answer: Answer) -> bool:
    """`debug: {echo_upstream_body: true}` was asked for (it works on streams only)."""
    debug = answer.exchange.body.get("debug")
    return isinstance(debug, dict) and bool(debug.get("echo_upstream_body"))


def _debug_chunk(first: Json, answer: Answer) -> Json:
    # "sends a first chunk with empty choices and a debug field" (§2, "Extra request fields";
    # errors-and-debugging.mdx: the body sent to the upstream provider, which for a mock is the
    # request as sent, without the option itself).
    sent = {k: v for k, v in answer.exchange.body.items() if k != "debug"}
    head: Json = {
        k: first[k] for k in ("id", "provider", "model", "object", "created") if k in first
    }
    return {**head, "choices": [], "debug": {"echo_upstream_body": sent}}


def _preamble(answer: Answer) -> int:
    """The leading frames that are no chunk of the answer: with the debug chunk, it and the
    comment before it (a comment alone is never counted: no preamble is needed for it)."""
    return 2 if _echoes(answer) else 0


def _stream(body: list[Json], tail: list[Json], answer: Answer) -> tuple[list[bytes], list[bytes]]:
    gen, provider = generation_id(answer.key), _provider(answer.exchange.model)
    finishes, _ = shapes.finish_and_usage(tail)
    chunks = body + finishes
    shapes.without_usage_fields(chunks)
    for chunk in chunks:
        chunk["id"], chunk["provider"] = gen, provider
        _native(chunk["choices"])
    if _echoes(answer) and chunks:
        body = [_debug_chunk(chunks[0], answer), *body]
    for at, finish in enumerate(finishes):
        if _failed(finish["choices"]):
            # A generation that fails mid-stream: its chunk carries the error at the top level,
            # its delta an empty content, and "the stream is terminated after this event" (no
            # usage chunk, no `[DONE]`), as in `_error_frame`.
            finish["error"] = _provider_error()
            for choice in finish["choices"]:
                choice["delta"] = {"content": ""}
            return shapes.frames(body, finishes[: at + 1], comments=(PROCESSING,), done=False)
    # Usage always comes, in a last chunk whose one choice repeats the finish reason (on
    # purpose, unlike OpenAI's `choices: []`): the terminal finish_reason appears twice.
    last = finishes[-1] if finishes else chunks[-1]
    reason = last["choices"][0].get("finish_reason") if last["choices"] else "stop"
    usage_chunk = {k: v for k, v in last.items() if k != "choices"}
    usage_chunk["choices"] = [
        {
            "index": 0,
            "delta": {},
            "logprobs": None,
            "finish_reason": reason,
            "native_finish_reason": reason,
        }
    ]
    usage_chunk["usage"] = _usage(shapes.usage_of(answer))
    return shapes.frames(body, [*finishes, usage_chunk], comments=(PROCESSING,))


def _error_frame(answer: Answer) -> Callable[[int], bytes]:
    def frame(sent: int) -> bytes:
        # HTTP stays 200: a chunk with a top-level `error` and `finish_reason: "error"`, and the
        # stream ends there.
        chunk = {
            "id": generation_id(answer.key),
            "object": "chat.completion.chunk",
            "created": answer.created,
            "model": answer.exchange.model,
            "provider": _provider(answer.exchange.model),
            "error": {
                "code": 500,
                "message": "Internal Server Error",
                "metadata": {"error_type": "server"},
            },
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": ""},
                    "finish_reason": "error",
                    "native_finish_reason": "error",
                }
            ],
        }
        return sse.data_frame(jsonbytes.dumps(chunk))

    return frame


def _headers(body: Json, answer: Answer) -> dict[str, str]:
    return {"X-Generation-Id": generation_id(answer.key)}


# --- errors ---------------------------------------------------------------------------------


def _envelope(error: ApiError) -> Any:
    inner: dict[str, Any] = {"code": error.status, "message": error.message}
    metadata = error.data.get("metadata")
    if metadata is None and error.status == 402:
        metadata = _CREDITS
    if metadata is not None:
        inner["metadata"] = metadata
    return {"error": inner}


_CREDITS = {
    "limit_source": "openrouter_credits",
    "reason": "Insufficient credits",
    "remedy_hint": "Add credits at https://openrouter.ai/settings/credits",
}


def _out_of_credits(error: ApiError) -> ApiError:
    return ApiError(
        402,
        "This request requires more credits, or fewer max_tokens. Add more at "
        "https://openrouter.ai/settings/credits",
        data={"metadata": _CREDITS},
    )


def _rate_limited(error: ApiError) -> ApiError:
    return ApiError(
        429,
        "Rate limit exceeded",
        headers=error.headers,
        data={"metadata": {"error_type": "rate_limit_exceeded"}},
    )


def _server(error: ApiError) -> ApiError:
    # A 500 masks the message and keeps only the kind of failure.
    return ApiError(500, "Internal Server Error", data={"metadata": {"error_type": "server"}})


def _moderated(error: ApiError) -> ApiError:
    return ApiError(
        403,
        "Your chosen model requires moderation and your input was flagged",
        data={
            "metadata": {
                "reasons": ["violence"],
                "flagged_input": "...",
                "provider_name": "OpenAI",
                "model_slug": "openai/gpt-4o",
            }
        },
    )


def _timeout(error: ApiError) -> ApiError:
    return ApiError(408, "Request timed out", headers=error.headers)


ERRORS = ErrorStyle(
    _envelope,
    '`{"error":{code: <HTTP status>, message, metadata?}}`',
    named={
        "insufficient_quota": _out_of_credits,
        "rate_limit": _rate_limited,
        "server_error": _server,
        "permission_denied": _moderated,
        "timeout": _timeout,
    },
    statuses={402: ("Insufficient credits", "payment_required")},
    extra_statuses="402 (credits, `metadata.limit_source`), 408; mid-stream errors in a 200",
)

# OpenRouter's own request fields (providers.md §2, "Extra request fields"); parameters a model
# does not support are ignored silently ("Unsupported params": "~ ignored" in the matrix).
EXTRA_FIELDS = ExtraFields(
    dict.fromkeys(
        (
            "models",
            "route",
            "provider",
            "plugins",
            "reasoning",
            "top_k",
            "repetition_penalty",
            "min_p",
            "top_a",
            "debug",
        )
    ),
    others_ignored=True,
    tables=EVERY_TABLE,  # (its "Non-standard parameters" rule is the API's, not chat's alone)
)


# "`model` may be omitted and then the account default is used" (§2, "Model ids"): a mock's
# account default is the catalog's first model.
DEFAULT_MODEL = CATALOG[0].id


def _default_model(endpoint: Endpoint, body: Json) -> Json:
    return body if "model" in body else {**body, "model": DEFAULT_MODEL}


REQUESTS = RequestPolicy(
    rewrite=_default_model,
    fills=f"a missing `model` with the account default (`{DEFAULT_MODEL}`)",
    endpoints=frozenset({Endpoint.CHAT, Endpoint.COMPLETIONS}),
)


PROFILE = Profile(
    name="openrouter",
    title="OpenRouter",
    as_of="openrouter.ai docs (OpenRouterTeam/docs), December 2026",
    catalog=CATALOG,
    requests=REQUESTS,
    chat=ChatShape(
        body=_body,
        stream=_stream,
        error_frame=_error_frame,
        headers=_headers,
        # "The generation ID is returned in the X-Generation-Id response header for all
        # endpoints (chat completions, completions, responses, and messages)" (streaming.mdx).
        header_endpoints=frozenset({Endpoint.COMPLETIONS, Endpoint.RESPONSES}),
        extras="`id: gen-…`, `provider`, `choices[].native_finish_reason`, `usage.cost`, "
        "`usage.is_byok`, `usage.cost_details`; header `X-Generation-Id` (completions and "
        "Responses answers too)",
        stream_usage="always, in a last chunk whose one choice repeats `finish_reason`; with "
        "`debug.echo_upstream_body`, a first chunk with `choices: []` and `debug`",
        comments=(PROCESSING,),
        preamble=_preamble,
    ),
    errors=ERRORS,
    limits=limits.OPENROUTER,
    model_card=_card,
    model_list=_list,
    models_shape="`{data}` (no `object`), `pricing`, `architecture`, `top_provider`, ...",
    finish_reasons=("error",),
    extra_fields=EXTRA_FIELDS,
    sources=("providers.md §2",),
)
