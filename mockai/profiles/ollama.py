"""Ollama's OpenAI compatibility (`http://localhost:11434/v1`): keys ignored, short ids.

Facts: shared/reference/providers.md section 3 (ollama/ollama: docs/openai compatibility,
openai/openai.go, middleware/openai.go). Models Ollama v0.13 (the Responses API is there,
`tool_choice` and logprobs are supported as docs.ollama.com says); the native `/api/chat` is not
part of this profile.
"""

from __future__ import annotations

from typing import Any

from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint
from mockai.profiles import limits, shapes
from mockai.profiles.base import EVERY_TABLE, Auth, ErrorStyle, ExtraFields, Json, Profile
from mockai.profiles.hooks import Answer, ChatShape, Check, RequestPolicy
from mockai.profiles.places import STATEFUL_FIELDS
from mockai.wire import ids

CREATED = 1733000000

CATALOG = (
    ModelInfo("llama3.2:latest", created=CREATED, owned_by="library"),
    ModelInfo("qwen2.5:7b", created=CREATED, owned_by="library", context_window=32_768),
    ModelInfo("gpt-oss:20b", created=CREATED, owned_by="library"),
    ModelInfo(
        "nomic-embed-text:latest",
        kind="embedding",
        created=CREATED,
        owned_by="library",
        context_window=8_192,
        dimensions=768,
    ),
)


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, type="invalid_request_error")


def _images(endpoint: Endpoint, body: Json) -> None:
    # Images must be data URIs: an http(s) URL is refused. (A `messages` that is no array is
    # OpenAI's parser's 400 to give: iterating a number here was a 500.)
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            url = part.get("image_url") if isinstance(part, dict) else None
            url = url.get("url") if isinstance(url, dict) else url
            if isinstance(url, str) and not url.startswith("data:"):
                raise _invalid("invalid image input")


_EFFORTS = ("high", "medium", "low", "none")


def _reasoning(endpoint: Endpoint, body: Json) -> None:
    effort = body.get("reasoning_effort")
    reasoning = body.get("reasoning")
    if effort is None and isinstance(reasoning, dict):
        effort = reasoning.get("effort")
    if effort is not None and effort not in _EFFORTS:
        raise _invalid(
            f"invalid reasoning value: '{effort}' (must be one of {', '.join(_EFFORTS)})"
        )


def _messages(endpoint: Endpoint, body: Json) -> None:
    # Its own words for an empty conversation (middleware/openai.go), not OpenAI's.
    if endpoint is Endpoint.CHAT and body.get("messages") == []:
        raise _invalid("[] is too short - 'messages'")


CHECKS: tuple[Check, ...] = (_messages, _images, _reasoning)


def _rewrite(endpoint: Endpoint, body: Json) -> Json:
    # Its Responses API is "stateless only, so no `previous_response_id`" (§3, and its place's
    # `keeps_responses`): nothing is kept to continue, retrieve or poll, so the fields that would
    # need state are ignored, as its JSON binding ignores any field absent from its request
    # struct (the answer echoes them so: mockai.api.responses).
    if endpoint is not Endpoint.RESPONSES or STATEFUL_FIELDS.isdisjoint(body):
        return body
    return {k: v for k, v in body.items() if k not in STATEFUL_FIELDS}


REQUESTS = RequestPolicy(
    checks=CHECKS,
    # Absent from Ollama's request struct, so its JSON binding ignores them.
    ignored=frozenset({"n", "user", "logit_bias"}),
    rewrite=_rewrite,
    rejects="400: empty `messages` (`[] is too short - 'messages'`), http(s) image URLs "
    "(`invalid image input`), unknown `reasoning_effort`",
    ignores="`n` (one choice), `user`, `logit_bias`; Responses: `previous_response_id`, "
    "`conversation`, `background` (stateless: nothing stored)",
    endpoints=frozenset({Endpoint.CHAT, Endpoint.RESPONSES}),
)

# `reasoning.effort` is in Ollama's request struct; any field absent from it is ignored by its
# JSON binding (providers.md §3, "Supported chat fields", "Unsupported fields").
EXTRA_FIELDS = ExtraFields({"reasoning": None}, others_ignored=True, tables=EVERY_TABLE)


def _envelope(error: ApiError) -> Any:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(error.status, "api_error")
    return {"error": {"message": error.message, "type": kind, "param": None, "code": None}}


def chat_id(key: bytes) -> str:
    # `rand.Intn(999)`: short, and two answers often share one.
    return f"chatcmpl-{int(ids.hexid(key, 'ollama', 8), 16) % 999}"


def completion_id(key: bytes) -> str:
    # (`cmpl-` and `rand.Intn(999)`, as its chat ids)
    return f"cmpl-{int(ids.hexid(key, 'ollama', 8), 16) % 999}"


def tool_call_id(key: bytes, index: int) -> str:
    return "call_" + ids.hexid(key, f"call{index}", 8)


def _body(body: Json, answer: Answer) -> None:
    body["id"] = chat_id(answer.key)
    body["system_fingerprint"] = "fp_ollama"


def _completion(body: Json, answer: Answer) -> None:
    # A legacy completion (its body, or each chunk of its stream): openai.go's ToCompletion and
    # ToCompleteChunk give it the short id and `fp_ollama` as well.
    body["id"] = completion_id(answer.key)
    body["system_fingerprint"] = "fp_ollama"


def _stream(body: list[Json], tail: list[Json], answer: Answer) -> tuple[list[bytes], list[bytes]]:
    cid = chat_id(answer.key)
    shapes.set_all(body + tail, {"id": cid, "system_fingerprint": "fp_ollama"})
    return shapes.frames(_whole_tool_calls(body), tail)


def _whole_tool_calls(chunks: list[Json]) -> list[Json]:
    """Tool calls arrive whole, in one delta (complete `arguments`, with `index`), not token
    by token: the fragments OpenAI streams are folded into the opening delta."""
    out: list[Json] = []
    opening: dict[tuple[int, int], Json] = {}  # (choice, call index) -> the call's first delta
    for chunk in chunks:
        choices = chunk.get("choices") or []
        calls = choices[0].get("delta", {}).get("tool_calls") if choices else None
        if not calls:
            out.append(chunk)
            continue
        call = calls[0]
        where = (choices[0]["index"], call["index"])
        if "id" in call:
            opening[where] = call
            out.append(chunk)
        elif where in opening:
            opening[where]["function"]["arguments"] += call["function"].get("arguments", "")
        else:
            out.append(chunk)
    return out


PROFILE = Profile(
    name="ollama",
    title="Ollama",
    as_of="Ollama v0.13 OpenAI compatibility (docs and openai/openai.go), December 2026",
    catalog=CATALOG,
    requests=REQUESTS,
    chat=ChatShape(
        body=_body,
        stream=_stream,
        completions=_completion,
        extras='`system_fingerprint: "fp_ollama"`, ids `chatcmpl-<0..998>` and `cmpl-<0..998>` '
        "(they collide)",
        stream_usage="as OpenAI (with `include_usage`); tool calls arrive whole in one delta",
    ),
    errors=ErrorStyle(
        _envelope,
        '`{"error":{message, type: invalid_request_error|not_found_error|api_error, '
        "param: null, code: null}}`",
    ),
    limits=limits.NONE,
    auth=Auth(ignored=True, describe="Bearer (Ollama's default: any key, or none)"),
    models_shape='`owned_by: "library"`',
    tool_call_id=tool_call_id,
    tool_call_ids="`call_` + 8 lowercase characters",
    extra_fields=EXTRA_FIELDS,
    sources=("providers.md §3",),
)
