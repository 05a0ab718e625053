"""Groq (`https://api.groq.com/openai/v1`): `x_groq`, usage timings, fields it refuses, 498/499.

Facts: shared/reference/providers.md section 1 (console.groq.com docs: openai, errors,
rate-limits; the groq-python SDK's types). Models the API as documented in December 2026.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.profiles import limits, shapes
from mockai.profiles.base import ErrorStyle, ExtraFields, Json, Profile, openai_envelope
from mockai.profiles.checks import forbid, forbid_in_messages
from mockai.profiles.hooks import Answer, ChatShape, RequestPolicy
from mockai.wire import ids, jsonbytes, sse

CREATED = 1733447754


def _model(model_id: str, owner: str, window: int = 131_072, output: int = 32_768) -> ModelInfo:
    return ModelInfo(
        model_id, created=CREATED, owned_by=owner, context_window=window, max_output_tokens=output
    )


CATALOG = (
    _model("llama-3.3-70b-versatile", "Meta"),
    _model("llama-3.1-8b-instant", "Meta", output=131_072),
    _model("openai/gpt-oss-120b", "OpenAI", output=65_536),
    _model("openai/gpt-oss-20b", "OpenAI", output=65_536),
    _model("meta-llama/llama-4-scout-17b-16e-instruct", "Meta", output=8_192),
)


def _card(info: ModelInfo) -> Json:
    return {
        "id": info.id,
        "object": "model",
        "created": info.created,
        "owned_by": info.owned_by,
        "active": True,
        "context_window": info.context_window,
        "public_apps": None,
        "max_completion_tokens": info.max_output_tokens,
    }


def _refused(where: str, value: Any) -> ApiError:
    # The status and the field are Groq's (docs: these "will result in a 400 error"); the
    # wording is mockai's.
    return ApiError(400, f"'{where}' : property '{where}' is unsupported", param=where, code=None)


def _n_is_one(value: Any) -> bool:
    return value is None or value == 1


REQUESTS = RequestPolicy(
    checks=(
        forbid("logprobs", _refused, unless=lambda v: v is None or v is False),
        forbid("logit_bias", _refused),
        forbid("top_logprobs", _refused),
        forbid("n", _refused, unless=_n_is_one),
        forbid_in_messages("name", _refused),
    ),
    rejects="400: `logprobs`, `logit_bias`, `top_logprobs`, `messages[].name`, `n` ≠ 1",
)

# Groq's own request fields (providers.md §1, "Extra request fields"; console.groq.com
# service-tiers and api-reference): `service_tier` takes Groq's tiers, not OpenAI's.
EXTRA_FIELDS = ExtraFields(
    {
        "service_tier": ("on_demand", "flex", "auto", "performance"),
        "reasoning_format": ("hidden", "raw", "parsed"),
        "reasoning_effort": None,
        "disable_tool_validation": None,
        "citation_options": None,
        "documents": None,
        "compound_custom": None,
    }
)


def _timings(usage: dict[str, Any]) -> dict[str, Any]:
    # Seconds, plausible for Groq's speed: the numbers only need to be consistent.
    prompt = round(usage.get("prompt_tokens", 0) / 20_000, 6)
    completion = round(usage.get("completion_tokens", 0) / 500, 6)
    return {
        **usage,
        "queue_time": 0.000123,
        "prompt_time": prompt,
        "completion_time": completion,
        "total_time": round(prompt + completion, 6),
    }


def _groq_id(answer: Answer) -> str:
    return "req_" + ids.alnum(answer.key, "x_groq", 26).lower()


# The tiers an answer names as the one that served it: the tier asked for. The reference does
# not say which tier Groq's `auto` resolves to, so `auto` (and no tier, or one Groq has not)
# answers `on_demand`, Groq's default tier.
_SERVED_TIERS = frozenset({"on_demand", "flex", "performance"})


def _tier(answer: Answer) -> str:
    """The `service_tier` an answer reports: the requested tier, or `on_demand`."""
    requested = answer.exchange.body.get("service_tier")
    # (a client may send any JSON here: only a string can name a tier)
    return requested if isinstance(requested, str) and requested in _SERVED_TIERS else "on_demand"


def _body(body: Json, answer: Answer) -> None:
    body["usage"] = _timings(body["usage"])
    body["service_tier"] = _tier(answer)
    body["x_groq"] = {"id": _groq_id(answer)}


def _stream(body: list[Json], tail: list[Json], answer: Answer) -> tuple[list[bytes], list[bytes]]:
    # `x_groq.id` in the first and the final chunk; `x_groq.usage` (with the timings) in the
    # final chunk only, without `stream_options`; with them, OpenAI's usage chunk as well.
    groq_id = _groq_id(answer)
    finishes, _ = shapes.finish_and_usage(tail)
    (body or finishes)[0]["x_groq"] = {"id": groq_id}
    if finishes:
        finishes[-1]["x_groq"] = {"id": groq_id, "usage": _timings(shapes.usage_of(answer))}
    tier = _tier(answer)
    for chunk in body + tail:
        chunk["service_tier"] = tier
    return shapes.frames(body, tail)


def _error_frame(answer: Answer) -> Callable[[int], bytes]:
    def frame(sent: int) -> bytes:
        # Groq says why a stream stopped early in `x_groq.error` (a string).
        chunk = {
            "id": ids.chat_completion_id(answer.key),
            "object": "chat.completion.chunk",
            "created": answer.created,
            "model": answer.exchange.model,
            "choices": [],
            "x_groq": {"id": _groq_id(answer), "error": "internal server error"},
        }
        return sse.data_frame(jsonbytes.dumps(chunk))

    return frame


PROFILE = Profile(
    name="groq",
    title="Groq",
    as_of="console.groq.com docs and groq-python types, December 2026",
    catalog=CATALOG,
    requests=REQUESTS,
    extra_fields=EXTRA_FIELDS,
    chat=ChatShape(
        body=_body,
        stream=_stream,
        error_frame=_error_frame,
        extras="`x_groq.id`, `usage.{queue,prompt,completion,total}_time`, `service_tier`",
        stream_usage="`x_groq.usage` on the final chunk, always; OpenAI's usage chunk too "
        "with `include_usage`",
    ),
    errors=ErrorStyle(
        openai_envelope,
        "OpenAI's",
        statuses={
            498: ("Flex tier capacity exceeded. This is a temporary condition.", "server_error"),
            499: ("Request cancelled.", "invalid_request_error"),
            424: ("A remote MCP server failed.", "invalid_request_error"),
        },
        extra_statuses="498 (flex capacity), 499 (cancelled), 424",
    ),
    limits=limits.GROQ,
    model_card=_card,
    models_shape="+ `active`, `context_window`, `public_apps`, `max_completion_tokens`",
    sources=("providers.md §1",),
)
