"""Anthropic's OpenAI SDK compatibility layer (`https://api.anthropic.com/v1/`).

Facts: shared/reference/providers.md section 6 (platform.claude.com/docs/en/api/openai-sdk:
the request-field and header tables). Models that page as of December 2026: many OpenAI fields
are accepted and silently ignored, `response_format` among them (the answer is not JSON because
you asked for JSON).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint
from mockai.profiles import limits
from mockai.profiles.base import OPENAI_ERRORS, ErrorStyle, ExtraFields, Json, Profile
from mockai.profiles.hooks import Answer, ChatShape, RequestPolicy, encode
from mockai.wire import jsonbytes, sse
from mockai.wire.outgoing import Body

CREATED = 1747872000

CATALOG = (
    ModelInfo("claude-sonnet-4-5", created=CREATED, owned_by="anthropic", context_window=200_000),
    ModelInfo("claude-opus-4-1", created=CREATED, owned_by="anthropic", context_window=200_000),
    ModelInfo("claude-haiku-4-5", created=CREATED, owned_by="anthropic", context_window=200_000),
)

IGNORED = frozenset(
    {
        "logprobs",
        "metadata",
        "response_format",
        "prediction",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "service_tier",
        "audio",
        "logit_bias",
        "store",
        "user",
        "modalities",
        "top_logprobs",
        "reasoning_effort",
    }
)


def _one_choice(endpoint: Endpoint, body: Json) -> None:
    # "`n` must be exactly 1" and "`choices` always has length 1" (§6): another `n` is refused.
    # The status and message Anthropic sends are not confirmed: a 400 in OpenAI's words is
    # mockai's choice (its errors are "OpenAI format", their messages "not equivalent").
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n != 1:  # (other types: OpenAI's 400)
        raise ApiError(
            400,
            f"Invalid 'n': {n}. This API takes only n=1 (one choice).",
            type="invalid_request_error",
            param="n",
            code="invalid_value",
        )


def _rewrite(endpoint: Endpoint, body: Json) -> Json:
    # Also ignored: `tools[].function.strict` (the arguments are not guaranteed to match the
    # schema) and `messages[].name`; and "`stop` works only for non-whitespace sequences" (§6,
    # "Rewritten"): the others are dropped, and the text goes on past them.
    body = dict(body)
    # "Between 0 and 1 (inclusive). Values greater than 1 are capped at 1" (§6): OpenAI's 400
    # past 2 is not Anthropic's answer.
    temperature = body.get("temperature")
    if (
        isinstance(temperature, int | float)
        and not isinstance(temperature, bool)
        and temperature > 1
    ):
        body["temperature"] = 1
    if "stop" in body:
        body = _without_blank_stops(body)
    if isinstance(body.get("tools"), list):
        body["tools"] = [_without_strict(tool) for tool in body["tools"]]
    if isinstance(body.get("messages"), list):
        body["messages"] = [
            {k: v for k, v in m.items() if k != "name"} if isinstance(m, dict) else m
            for m in body["messages"]
        ]
    return body


def _without_blank_stops(body: Json) -> Json:
    stop = body["stop"]
    if isinstance(stop, str):
        kept: Any = stop if stop.strip() else None
    elif isinstance(stop, list):
        kept = [s for s in stop if not isinstance(s, str) or s.strip()] or None
    else:
        return body  # (OpenAI's parser says what is wrong with it)
    if kept is None:
        return {k: v for k, v in body.items() if k != "stop"}
    return {**body, "stop": kept}


def _without_strict(tool: Any) -> Any:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or "strict" not in function:
        return tool
    return {**tool, "function": {k: v for k, v in function.items() if k != "strict"}}


REQUESTS = RequestPolicy(
    checks=(_one_choice,),
    ignored=IGNORED,
    rewrite=_rewrite,
    rejects="400: `n` other than 1 (status and message mockai's)",
    ignores="`response_format`, `seed`, `logprobs`, `logit_bias`, `presence_penalty`, "
    "`frequency_penalty`, `store`, `user`, `metadata`, `tools[].function.strict`, "
    "`messages[].name`, whitespace-only `stop` sequences, ...",
)

# `thinking` may be sent (via extra_body; the thought text is not returned), and fields the layer
# does not use are ignored (providers.md §6, "Rewritten"; "~ ignored" in the matrix).
EXTRA_FIELDS = ExtraFields({"thinking": None}, others_ignored=True)


def _body(body: Json, answer: Answer) -> None:
    _with_empty_fields(body)


def _with_empty_fields(body: Json) -> None:
    # "Always empty" in Anthropic's table of response fields, in a stream's chunks as in a body:
    # present, and null (the SDKs type them optional; code that reads them gets None, not a
    # KeyError).
    usage = body.get("usage")
    if isinstance(usage, dict):
        usage["prompt_tokens_details"] = None
        usage["completion_tokens_details"] = None
    body["service_tier"] = None
    body["system_fingerprint"] = None


def _stream(body: list[Json], tail: list[Json], answer: Answer) -> tuple[list[bytes], list[bytes]]:
    for chunk in (*body, *tail):
        _with_empty_fields(chunk)
    return encode(body), [*encode(tail), sse.DONE]


# `openai-processing-ms` is "always empty" in Anthropic's header table: sent, without a value
# (an answer's own headers win over the ones delivery adds).
_NO_PROCESSING_MS = {"openai-processing-ms": ""}


def _headers(body: Json, answer: Answer) -> dict[str, str]:
    return {"request-id": "req_" + answer.key.hex()[:24], **_NO_PROCESSING_MS}


class _Errors(ErrorStyle):
    """OpenAI's envelope, with the errors' `openai-processing-ms` empty as the answers' is."""

    def render(self, error: ApiError) -> Body:
        rendered = super().render(error)
        return Body(rendered.status, rendered.body, headers=_NO_PROCESSING_MS)


def _error_frame(answer: Answer) -> Callable[[int], bytes]:
    def frame(sent: int) -> bytes:
        error = {
            "error": {
                "code": "api_error",
                "message": "Internal server error",
                "param": None,
                "type": "invalid_request_error",
            }
        }
        return sse.data_frame(jsonbytes.dumps(error))

    return frame


PROFILE = Profile(
    name="anthropic",
    title="Anthropic (OpenAI SDK compatibility)",
    as_of="platform.claude.com OpenAI SDK compatibility page, December 2026",
    catalog=CATALOG,
    requests=REQUESTS,
    chat=ChatShape(
        body=_body,
        stream=_stream,
        error_frame=_error_frame,
        headers=_headers,
        extras="usage details, `service_tier`, `system_fingerprint` null; header `request-id`; "
        "`openai-processing-ms` empty",
        stream_usage="as OpenAI",
    ),
    errors=_Errors(OPENAI_ERRORS.body, OPENAI_ERRORS.envelope),
    limits=limits.ANTHROPIC,
    extra_fields=EXTRA_FIELDS,
    sources=("providers.md §6",),
)
