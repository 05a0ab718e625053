"""Together AI (`https://api.together.ai/v1`): `/models` is a bare array; `eos` finishes.

Facts: shared/reference/providers.md section 7 (docs.together.ai; together-python's types and
its models resource). Models the API as of December 2026.
"""

from __future__ import annotations

from typing import Any

from mockai.catalog import ModelInfo
from mockai.profiles.base import Json, Profile

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


PROFILE = Profile(
    name="together",
    title="Together AI",
    as_of="docs.together.ai and together-python, December 2026",
    catalog=CATALOG,
    model_card=_card,
    model_list=_list,
    models_shape="a bare JSON array (the OpenAI SDK lists nothing); `type`, `pricing`, ...",
    finish_reasons=("eos",),
    sources=("providers.md §7",),
)
