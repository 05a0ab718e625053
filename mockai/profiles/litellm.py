"""A LiteLLM proxy (self-hosted, `http://0.0.0.0:4000`): `litellm.` errors with string codes.

Facts: shared/reference/providers.md section 4 (docs.litellm.ai: error_reference,
response_headers, api_key_auth; BerriAI/litellm proxy_server.py). Models the proxy as of
December 2026 (v1.80+). Whether an upstream refuses a parameter depends on the model behind it,
so no field is refused here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint
from mockai.profiles.base import Auth, ErrorStyle, Json, Profile
from mockai.profiles.hooks import Answer, ChatShape
from mockai.wire import ids, jsonbytes, sse
from mockai.wire.errors import header_text

VERSION = "1.80.0"
CREATED = 1677610602

# The proxy lists the `model_name` aliases its config defines.
CATALOG = (
    ModelInfo("gpt-4o", created=CREATED, owned_by="openai"),
    ModelInfo("gpt-4o-mini", created=CREATED, owned_by="openai"),
    ModelInfo("claude-sonnet-4", created=CREATED, owned_by="openai", context_window=200_000),
    ModelInfo("llama-3.3-70b", created=CREATED, owned_by="openai", context_window=131_072),
    ModelInfo("text-embedding-3-small", kind="embedding", created=CREATED, owned_by="openai"),
)

# The exception class LiteLLM names in its messages, by status.
_CLASSES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    408: "Timeout",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
    500: "InternalServerError",
    502: "APIConnectionError",
    503: "ServiceUnavailableError",
    504: "Timeout",
}


def _inner(error: ApiError) -> dict[str, Any]:
    kind = _CLASSES.get(error.status, "APIError")
    message = error.message
    if not message.startswith("litellm."):
        message = f"litellm.{kind}: {message}"
    # `code` is the HTTP status as a *string*.
    return {"message": message, "type": error.type, "param": error.param, "code": str(error.status)}


def _envelope(error: ApiError) -> Any:
    return {"error": _inner(error)}


def _unknown_model(error: ApiError) -> ApiError:
    model = error.message.split("`")[1] if "`" in error.message else "unknown"
    return ApiError(
        400,
        f"litellm.BadRequestError: Invalid model name passed in model={model}. Call "
        "`/v1/models` to view available models for your key.",
    )


def _error_frame(answer: Answer) -> Callable[[int], bytes]:
    def frame(sent: int) -> bytes:
        error = ApiError(
            500,
            "litellm.InternalServerError: InternalServerError: OpenAIException - "
            "The server had an error while processing your request.",
            type="server_error",
        )
        return sse.data_frame(jsonbytes.dumps(_envelope(error)))

    return frame


def _headers(body: Json, answer: Answer) -> dict[str, str]:
    call_id = ids.hexid(answer.key, "litellm-call", 32)
    return {
        "x-litellm-call-id": "-".join(
            (call_id[:8], call_id[8:12], call_id[12:16], call_id[16:20], call_id[20:])
        ),
        "x-litellm-model-id": ids.hexid(answer.key, "litellm-model", 64),
        # (the client's text: a control character in it goes out percent-encoded, `%0A`)
        "x-litellm-model-group": header_text(answer.exchange.model),
        "x-litellm-version": VERSION,
        "x-litellm-response-cost": "0.0",
        "x-litellm-key-spend": "0.0",
        "x-litellm-attempted-retries": "0",
        "x-litellm-attempted-fallbacks": "0",
    }


PROFILE = Profile(
    name="litellm",
    title="LiteLLM proxy",
    as_of="LiteLLM proxy v1.80 (docs.litellm.ai, proxy_server.py), December 2026",
    catalog=CATALOG,
    chat=ChatShape(
        error_frame=_error_frame,
        headers=_headers,
        # "When you make a request to the proxy, the proxy will return the following headers"
        # (its response_headers doc): every endpoint's answer, not chat's alone.
        header_endpoints=frozenset(Endpoint),
        extras="headers `x-litellm-call-id`, `-model-id`, `-model-group`, `-version`, "
        "`-response-cost`, `-attempted-retries`, ... (on every endpoint's answer)",
        stream_usage="as OpenAI",
    ),
    errors=ErrorStyle(
        _envelope,
        '`{"error":{message: "litellm.<Class>: …", type, param, code: "<status>"}}`',
        named={"model_not_found": _unknown_model},
        extra_statuses="unknown model: 400",
    ),
    auth=Auth(
        key_headers=("x-litellm-api-key", "api-key"),
        describe="Bearer `sk-…`; `x-litellm-api-key` wins",
    ),
    sources=("providers.md §4",),
)
