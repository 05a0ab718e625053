"""Together AI (`https://api.together.ai/v1`): `/models` is a bare array; `eos` finishes.

Facts: shared/reference/providers.md section 7 (docs.together.ai; together-python's types and
its models resource). Models the API as of December 2026.
"""

from __future__ import annotations

from typing import Any

from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint
from mockai.profiles.base import ExtraFields, Json, Profile
from mockai.profiles.hooks import RequestPolicy

CREATED = 1733443200

CATALOG = (
    ModelInfo("meta-llama/Llama-3.3-70B-Instruct-Turbo", created=CREATED, owned_by="Meta"),
    ModelInfo("openai/gpt-oss-20b", created=CREATED, owned_by="OpenAI"),
    ModelInfo("Qwen/Qwen2.5-7B-Instruct-Turbo", created=CREATED, owned_by="Qwen"),
    ModelInfo(
        "togethercomputer/m2-bert-80M-8k-retrieval",
        kind="embedding",
        created=CREATED,
        owned_by="Together",
        context_window=8_192,
        dimensions=768,
    ),
)


def _card(info: ModelInfo) -> Json:
    return {
        "id": info.id,
        "object": "model",
        "created": info.created,
        "type": "embedding" if info.kind == "embedding" else "chat",
        "display_name": info.id.rsplit("/", 1)[-1].replace("-", " "),
        "organization": info.owned_by,
        "link": f"https://huggingface.co/{info.id}",
        "license": "",
        "context_length": info.context_window,
        "pricing": {"input": 0.88, "output": 0.88, "hourly": 0, "base": 0, "finetune": 0},
    }


def _list(cards: list[Json]) -> Any:
    return cards  # a bare array: the OpenAI SDK's `models.list()` finds no `data` in it


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _logprobs(endpoint: Endpoint, body: Json) -> None:
    value = body.get("logprobs")
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise ApiError(
            400,
            f"Invalid 'logprobs': integer below minimum value. Expected a value >= 0, but got "
            f"{value} instead.",
            param="logprobs",
            code="integer_below_min_value",
        )


def _rewrite(endpoint: Endpoint, body: Json) -> Json:
    # Together's `logprobs` is a count (providers.md §7, "Extra request fields": "an int in the
    # SDK"): the top tokens to give at each step, which is OpenAI's `logprobs: true` with
    # `top_logprobs`. (The answer's logprobs are OpenAI's: §7 names no other shape.)
    value = body.get("logprobs")
    if not _is_count(value):
        return body
    return {**body, "logprobs": True, "top_logprobs": body.get("top_logprobs", value)}


REQUESTS = RequestPolicy(checks=(_logprobs,), rewrite=_rewrite)

# Together's own request fields (providers.md §7, "Extra request fields").
EXTRA_FIELDS = ExtraFields(dict.fromkeys(("top_k", "repetition_penalty", "safety_model", "echo")))


PROFILE = Profile(
    name="together",
    title="Together AI",
    as_of="docs.together.ai and together-python, December 2026",
    catalog=CATALOG,
    requests=REQUESTS,
    extra_fields=EXTRA_FIELDS,
    model_card=_card,
    model_list=_list,
    # (providers.md §7 says the SDK lists nothing; openai-python 3.x raises instead)
    models_shape="a bare JSON array (the OpenAI SDK lists nothing, or raises: openai-python "
    "3.x `AttributeError`); `type`, `pricing`, ...",
    finish_reasons=("eos",),
    sources=("providers.md §7",),
)
