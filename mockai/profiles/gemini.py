"""Gemini's OpenAI compatibility (`https://generativelanguage.googleapis.com/v1beta/openai/`).

Facts: shared/reference/providers.md section 12 (ai.google.dev/gemini-api/docs/openai, answers
quoted in the issues listed there). Models the endpoint as of December 2026: errors are a JSON
*array* holding a Google RPC status, unknown fields are refused, streamed tool calls carry no
`index`, and usage rides on the content chunks.
"""

from __future__ import annotations

from typing import Any

from mockai.api.spec_fields import FIELDS
from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint
from mockai.profiles import shapes
from mockai.profiles.base import ErrorStyle, Json, Profile
from mockai.profiles.checks import unknown_fields
from mockai.profiles.hooks import Answer, ChatShape, RequestPolicy
from mockai.wire import ids

# `/models` lists `models/gemini-2.5-flash` (see `_card`), the docs' examples ask for
# `gemini-2.5-flash`: either spelling is the same model, with its limits.
LISTED_PREFIX = "models/"


def _chat_model(model_id: str, max_output: int) -> ModelInfo:
    return ModelInfo(
        model_id,
        owned_by="google",
        context_window=1_048_576,
        max_output_tokens=max_output,
        aliases=(LISTED_PREFIX + model_id,),
    )


CATALOG = (
    _chat_model("gemini-2.5-flash", 65_536),
    _chat_model("gemini-2.5-pro", 65_536),
    _chat_model("gemini-2.0-flash", 8_192),
    ModelInfo(
        "gemini-embedding-001",
        kind="embedding",
        owned_by="google",
        dimensions=3072,
        aliases=(LISTED_PREFIX + "gemini-embedding-001",),
    ),
)

# Google RPC status names, by HTTP status.
STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# What the endpoint knows: OpenAI's chat fields but `web_search_options` (refused in the
# observed answer), and `extra_body` (where Gemini's own options go: `google.thinking_config`).
KNOWN = (frozenset(FIELDS["chat"]) - {"web_search_options"}) | {"extra_body"}


def _unknown(names: list[str], body: Json) -> ApiError:
    text = "Invalid JSON payload received. " + " ".join(
        f'Unknown name "{name}": Cannot find field.' for name in names
    )
    violations = [
        {"description": f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'}
        for name in names
    ]
    return ApiError(
        400,
        text,
        data={
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": violations,
                }
            ]
        },
    )


def _rewrite(endpoint: Endpoint, body: Json) -> Json:
    return {k: v for k, v in body.items() if k != "extra_body"}


REQUESTS = RequestPolicy(
    checks=(unknown_fields(KNOWN, _unknown),),
    rewrite=_rewrite,
    rejects='400 `INVALID_ARGUMENT` for any field it does not know (`Unknown name "…"`), '
    "e.g. `web_search_options`",
)


def _envelope(error: ApiError) -> Any:
    status: dict[str, Any] = {
        "code": error.status,
        "message": error.message,
        "status": STATUS.get(error.status, "UNKNOWN"),
    }
    if "details" in error.data:
        status["details"] = error.data["details"]
    return [{"error": status}]  # an array: `body.error.message` is not there


def _card(info: ModelInfo) -> Json:
    name = info.id if info.id.startswith(LISTED_PREFIX) else LISTED_PREFIX + info.id
    title = info.id.removeprefix(LISTED_PREFIX).replace("-", " ").title()
    return {"id": name, "object": "model", "owned_by": "google", "display_name": title}


def _signature(answer: Answer, index: int) -> dict[str, Any]:
    # Gemini 3 expects it back on the next request.
    return {"google": {"thought_signature": ids.alnum(answer.key, f"sig{index}", 48)}}


def _body(body: Json, answer: Answer) -> None:
    for choice in body["choices"]:
        for index, call in enumerate(choice["message"].get("tool_calls") or ()):
            call["extra_content"] = _signature(answer, index)


def _stream(body: list[Json], tail: list[Json], answer: Answer) -> tuple[list[bytes], list[bytes]]:
    for chunk in body:
        for choice in chunk.get("choices") or ():
            for call in choice.get("delta", {}).get("tool_calls") or ():
                position = call.pop("index", 0)  # no `index` on streamed tool calls
                if "id" in call:
                    call["extra_content"] = _signature(answer, position)
    finishes, usage_chunk = shapes.finish_and_usage(tail)
    if usage_chunk is None:
        shapes.without_usage_fields(body + finishes)
        return shapes.frames(body, finishes)
    # Usage attached to the content chunks (running totals: adding them up over-counts), no
    # separate usage chunk.
    shapes.running_usage(body + finishes, answer)
    return shapes.frames(body, finishes)


PROFILE = Profile(
    name="gemini",
    title="Google Gemini (OpenAI compatibility)",
    as_of="ai.google.dev/gemini-api/docs/openai (beta), December 2026",
    catalog=CATALOG,
    requests=REQUESTS,
    chat=ChatShape(
        body=_body,
        stream=_stream,
        extras="`tool_calls[].extra_content.google.thought_signature`",
        stream_usage="with `include_usage`: on every content chunk (running totals), no usage "
        "chunk; streamed tool calls have no `index`",
    ),
    errors=ErrorStyle(
        _envelope,
        'an array: `[{"error":{code, message, status: "INVALID_ARGUMENT"…, details?}}]`',
    ),
    model_card=_card,
    models_shape="ids `models/…` (asked for with or without the prefix: one model), "
    '`owned_by: "google"`, `display_name`, no `created`',
    sources=("providers.md §12",),
)
