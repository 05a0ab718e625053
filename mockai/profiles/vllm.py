"""vLLM's OpenAI-compatible server (`http://localhost:8000/v1`): unknown fields ignored.

Facts: shared/reference/providers.md section 11 (docs.vllm.ai, vLLM's protocol.py, answers
quoted in the issues listed there). Models vLLM v0.12 and later (`{"error": {..., "code":
<int>}}` errors; `guided_*` fields silently ignored). `tool_choice: "auto"` needs server flags
(`--enable-auto-tool-choice`): this profile models a server started with them.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from mockai.api.spec_fields import FIELDS
from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint
from mockai.profiles import limits, shapes
from mockai.profiles.base import EVERY_TABLE, ErrorStyle, ExtraFields, Json, Profile
from mockai.profiles.hooks import Answer, ChatShape, RequestPolicy
from mockai.wire import ids, jsonbytes, sse

CREATED = 1733443200

CATALOG = (
    ModelInfo("meta-llama/Llama-3.1-8B-Instruct", created=CREATED, owned_by="vllm"),
    ModelInfo("Qwen/Qwen2.5-7B-Instruct", created=CREATED, owned_by="vllm", context_window=32_768),
)

# vLLM's own request fields (sampling extras): known, so not even logged.
EXTRAS = ("top_k", "min_p", "repetition_penalty", "structured_outputs")
_OPENAI_CHAT = frozenset(FIELDS["chat"])


def _rewrite(endpoint: Endpoint, body: Json) -> Json:
    # Unknown fields are accepted and ignored (they only reach vLLM's log), even with
    # `--strict-requests`; `parallel_tool_calls` and `user` are ignored as well.
    return {
        k: v
        for k, v in body.items()
        if k in _OPENAI_CHAT and k not in ("parallel_tool_calls", "user")
    }


REQUESTS = RequestPolicy(rewrite=_rewrite, ignores="`parallel_tool_calls`, `user`")

# Unknown fields are accepted on every request (its request models' `extra="allow"`: logged
# only), so `--strict-requests` takes them everywhere, not on chat alone.
EXTRA_FIELDS = ExtraFields(dict.fromkeys(EXTRAS), others_ignored=True, tables=EVERY_TABLE)


def _class(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.replace(" ", "").replace("-", "") + "Error"
    except ValueError:
        return "APIError"


_CLASSES = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError"}


def _inner(error: ApiError) -> dict[str, Any]:
    kind = _CLASSES.get(error.status) or _class(error.status)
    return {"message": error.message, "type": kind, "param": error.param, "code": error.status}


def _envelope(error: ApiError) -> Any:
    return {"error": _inner(error)}


def _card(info: ModelInfo) -> Json:
    return {
        "id": info.id,
        "object": "model",
        "created": info.created,
        "owned_by": "vllm",
        "root": info.id,
        "parent": None,
        "max_model_len": info.context_window,
        "permission": [
            {
                "id": "modelperm-" + ids.hexid(info.id.encode(), "perm", 32),
                "object": "model_permission",
                "created": info.created,
                "allow_create_engine": False,
                "allow_sampling": True,
                "allow_logprobs": True,
                "allow_search_indices": False,
                "allow_view": True,
                "allow_fine_tuning": False,
                "organization": "*",
                "group": None,
                "is_blocking": False,
            }
        ],
    }


def _stream(body: list[Json], tail: list[Json], answer: Answer) -> tuple[list[bytes], list[bytes]]:
    options = answer.exchange.body.get("stream_options")
    # vLLM (`should_include_usage`): `include_continuous_usage = include_usage and
    # bool(continuous_usage_stats)`: without `include_usage` no chunk carries usage.
    if (
        isinstance(options, dict)
        and options.get("include_usage")
        and options.get("continuous_usage_stats")
    ):
        finishes, _ = shapes.finish_and_usage(tail)
        shapes.running_usage(body + finishes, answer)
    return shapes.frames(body, tail)


def _error_frame(answer: Answer) -> Callable[[int], bytes]:
    def frame(sent: int) -> bytes:
        error = {
            "error": {
                "object": "error",
                "message": "The server had an error while processing your request.",
                "type": "InternalServerError",
                "param": None,
                "code": 500,
            }
        }
        return sse.data_frame(jsonbytes.dumps(error)) + sse.DONE

    return frame


PROFILE = Profile(
    name="vllm",
    title="vLLM",
    as_of="vLLM v0.12+ OpenAI-compatible server, December 2026",
    catalog=CATALOG,
    requests=REQUESTS,
    chat=ChatShape(
        stream=_stream,
        error_frame=_error_frame,
        stream_usage=(
            "as OpenAI; `stream_options.continuous_usage_stats` with `include_usage`: usage on"
            " every chunk"
        ),
    ),
    errors=ErrorStyle(
        _envelope,
        '`{"error":{message, type: "BadRequestError"…, param, code: <int>}}`',
    ),
    limits=limits.NONE,
    model_card=_card,
    models_shape='`owned_by: "vllm"`, `root`, `parent`, `max_model_len`, `permission`',
    extra_fields=EXTRA_FIELDS,
    sources=("providers.md §11",),
)
