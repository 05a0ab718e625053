"""Mistral AI (`https://api.mistral.ai/v1`): unknown fields are a 422, tool-call ids 9 characters.

Facts: shared/reference/providers.md section 9 (mistralai/client-python's request and model
types, and the answers quoted in the issues listed there). Models the API as of December 2026:
`max_completion_tokens`, `seed` (Mistral says `random_seed`), `user`, `stream_options` and any
field it does not know are refused with a 422 `extra_forbidden`, as are message fields beyond
its own; a tool-call id that is not 9 letters and digits, sent back, is a 400.
"""

from __future__ import annotations

import re
from typing import Any

from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint
from mockai.profiles import limits, shapes
from mockai.profiles.base import ErrorStyle, Json, Profile
from mockai.profiles.hooks import Answer, ChatShape, RequestPolicy
from mockai.wire import ids

CREATED = 1733443200

CATALOG = (
    ModelInfo("mistral-large-latest", created=CREATED, owned_by="mistralai"),
    ModelInfo("mistral-small-latest", created=CREATED, owned_by="mistralai", context_window=32_000),
    ModelInfo("codestral-latest", created=CREATED, owned_by="mistralai", context_window=256_000),
    ModelInfo("open-mistral-nemo", created=CREATED, owned_by="mistralai"),
    ModelInfo(
        "mistral-embed",
        kind="embedding",
        created=CREATED,
        owned_by="mistralai",
        context_window=8_192,
        dimensions=1024,
    ),
    ModelInfo(
        "mistral-moderation-latest", kind="moderation", created=CREATED, owned_by="mistralai"
    ),
)

# The chat request's fields (mistralai/client-python `ChatCompletionRequest`).
KNOWN = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stream",
        "stop",
        "random_seed",
        "response_format",
        "tools",
        "tool_choice",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "prediction",
        "parallel_tool_calls",
        "prompt_mode",
        "safe_prompt",
    }
)
# Each message role's fields (its SystemMessage, UserMessage, AssistantMessage, ToolMessage).
MESSAGE_FIELDS = {
    "system": frozenset({"role", "content"}),
    "user": frozenset({"role", "content"}),
    "assistant": frozenset({"role", "content", "tool_calls", "prefix"}),
    "tool": frozenset({"role", "content", "tool_call_id", "name"}),
}
TOOL_CALL_ID = re.compile(r"[a-zA-Z0-9]{9}")


def _extra_forbidden(places: list[tuple[list[Any], Any]]) -> ApiError:
    # FastAPI's validation answer, inside Mistral's top-level error object.
    detail = [
        {"type": "extra_forbidden", "loc": loc, "msg": "Extra inputs are not permitted", "input": v}
        for loc, v in places
    ]
    return ApiError(422, "Extra inputs are not permitted", data={"detail": detail})


def _listed(value: Any) -> list[Any]:
    """`value` if it is a JSON array, else nothing to look into: a `messages` or `tool_calls` of
    another type is OpenAI's parser's 400 to give (iterating a number here was a 500)."""
    return value if isinstance(value, list) else []


def _fields(endpoint: Endpoint, body: Json) -> None:
    places: list[tuple[list[Any], Any]] = [
        (["body", name], value) for name, value in body.items() if name not in KNOWN
    ]
    for index, message in enumerate(_listed(body.get("messages"))):
        if not isinstance(message, dict):
            continue
        allowed = MESSAGE_FIELDS.get(str(message.get("role")))
        if allowed is None:
            continue
        role = message["role"]
        places += [
            (["body", "messages", index, role, name], value)
            for name, value in message.items()
            if name not in allowed
        ]
    if places:
        raise _extra_forbidden(places)


def _tool_call_ids(endpoint: Endpoint, body: Json) -> None:
    for message in _listed(body.get("messages")):
        if not isinstance(message, dict):
            continue
        sent = [
            call.get("id") for call in _listed(message.get("tool_calls")) if isinstance(call, dict)
        ]
        if message.get("role") == "tool":
            sent.append(message.get("tool_call_id"))
        for given in sent:
            if not isinstance(given, str) or not TOOL_CALL_ID.fullmatch(given):
                raise ApiError(
                    400,
                    f"Tool call id was {given} but must be a-z, A-Z, 0-9, with a length of 9.",
                    type="invalid_function_call",
                    code="3280",
                )


def _rewrite(endpoint: Endpoint, body: Json) -> Json:
    """Mistral's spellings in OpenAI's terms, for mockai's parser."""
    body = dict(body)
    if "random_seed" in body:
        body["seed"] = body.pop("random_seed")
    if body.get("tool_choice") == "any":  # Mistral's `required`
        body["tool_choice"] = "required"
    for name in ("prompt_mode", "safe_prompt"):
        body.pop(name, None)
    if isinstance(body.get("messages"), list):
        body["messages"] = [
            {k: v for k, v in m.items() if k != "prefix"} if isinstance(m, dict) else m
            for m in body["messages"]
        ]
    return body


REQUESTS = RequestPolicy(
    checks=(_fields, _tool_call_ids),
    rewrite=_rewrite,
    rejects="422 `extra_forbidden`: any field it does not know (`seed`, `user`, "
    "`max_completion_tokens`, `stream_options`, `messages[].name`, ...); 400: a tool-call id "
    "that is not 9 alphanumerics",
)


def _envelope(error: ApiError) -> Any:
    # Not wrapped in "error"; a validation failure's message is an object with the details.
    detail = error.data.get("detail")
    return {
        "object": "error",
        "message": {"detail": detail} if detail is not None else error.message,
        "type": error.type,
        "param": None,
        "code": error.code,
    }


def tool_call_id(key: bytes, index: int) -> str:
    return ids.alnum(key, f"call{index}", 9)


def _card(info: ModelInfo) -> Json:
    chat = info.kind == "chat"
    return {
        "id": info.id,
        "object": "model",
        "created": info.created,
        "owned_by": "mistralai",
        "capabilities": {
            "completion_chat": chat,
            "completion_fim": info.id.startswith("codestral"),
            "function_calling": chat,
            "fine_tuning": False,
            "vision": False,
            "classification": info.kind == "moderation",
        },
        "name": info.id,
        "description": f"{info.id} (mockai's catalog)",
        "max_context_length": info.context_window,
        "aliases": [],
        "deprecation": None,
        "deprecation_replacement_model": None,
        "default_model_temperature": 0.3 if chat else None,
        "type": "base",
    }


# What Mistral's answers hold (its SDK's ChatCompletionResponse / CompletionChunk): OpenAI's other
# fields (`refusal`, `annotations`, `service_tier`, ...) are not sent, so an app that sends a
# message back as it got it sends nothing Mistral refuses.
_MESSAGE = ("role", "content", "tool_calls")
_TOP = ("id", "object", "created", "model", "choices", "usage")
_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")


def _only(fields: tuple[str, ...], value: Json) -> Json:
    return {k: v for k, v in value.items() if k in fields}


def _trim(chunk: Json, part: str) -> Json:
    out = _only(_TOP, chunk)
    out["choices"] = [
        {**{k: v for k, v in c.items() if k != part}, part: _only(_MESSAGE, c[part])}
        for c in chunk["choices"]
    ]
    if out.get("usage"):
        out["usage"] = _only(_USAGE, out["usage"])
    return out


def _body(body: Json, answer: Answer) -> None:
    trimmed = _trim(body, "message")
    body.clear()
    body.update(trimmed)


def _stream(body: list[Json], tail: list[Json], answer: Answer) -> tuple[list[bytes], list[bytes]]:
    body, finishes = shapes.usage_on_last_finish(body, tail, answer, null_before=False)
    return shapes.frames([_trim(c, "delta") for c in body], [_trim(c, "delta") for c in finishes])


PROFILE = Profile(
    name="mistral",
    title="Mistral AI",
    as_of="api.mistral.ai as of December 2026 (mistralai/client-python types)",
    catalog=CATALOG,
    requests=REQUESTS,
    chat=ChatShape(
        body=_body,
        stream=_stream,
        extras="none of OpenAI's `refusal`, `annotations`, `service_tier`, `system_fingerprint`",
        stream_usage="always, on the last chunk (with `finish_reason`)",
    ),
    errors=ErrorStyle(
        _envelope,
        'top-level `{"object":"error", message (or `{detail:[…]}`), type, param, code}`',
        extra_statuses="422 (unknown fields)",
    ),
    limits=limits.MISTRAL,
    model_card=_card,
    models_shape="+ `capabilities`, `max_context_length`, `aliases`, `type`, ...",
    tool_call_id=tool_call_id,
    tool_call_ids="9 alphanumerics; any other id sent back is a 400",
    finish_reasons=("model_length", "error"),
    sources=("providers.md §9",),
)
