"""Fireworks AI (`https://api.fireworks.ai/inference/v1`): usage on the last chunk, stops kept.

Facts: shared/reference/providers.md section 8 (fireworks.ai docs: OpenAI compatibility and its
"Differences", inference error codes). Models the docs as of December 2026.
"""

from __future__ import annotations

from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.profiles import shapes
from mockai.profiles.base import ErrorStyle, ExtraFields, Json, Profile, openai_envelope
from mockai.profiles.hooks import Answer, ChatShape

CREATED = 1733443200
PREFIX = "accounts/fireworks/models/"

CATALOG = (
    ModelInfo(PREFIX + "llama-v3p3-70b-instruct", created=CREATED, owned_by="fireworks"),
    ModelInfo(PREFIX + "qwen3-235b-a22b", created=CREATED, owned_by="fireworks"),
    ModelInfo(PREFIX + "gpt-oss-120b", created=CREATED, owned_by="fireworks"),
    ModelInfo(
        "nomic-ai/nomic-embed-text-v1.5",
        kind="embedding",
        created=CREATED,
        owned_by="fireworks",
        dimensions=768,
    ),
)


def _stream(body: list[Json], tail: list[Json], answer: Answer) -> tuple[list[bytes], list[bytes]]:
    # Usage always comes, on the last chunk (the one with `finish_reason`), and every earlier
    # chunk says `"usage": null`; there is no separate usage chunk.
    body, finishes = shapes.usage_on_last_finish(body, tail, answer, null_before=True)
    return shapes.frames(body, finishes)


# Fireworks' error codes (providers.md §8): 402 is a billing problem, 412 a suspended account.
# `insufficient_quota` is the 402 (out of credits), so it says what the free-form 402 says.
_BILLING = "Payment required: billing problem on the account."


def _billing(error: ApiError) -> ApiError:
    return ApiError(402, _BILLING, type="invalid_request_error", code="payment_required")


PROFILE = Profile(
    name="fireworks",
    title="Fireworks AI",
    as_of="fireworks.ai docs (OpenAI compatibility, error codes), December 2026",
    catalog=CATALOG,
    chat=ChatShape(
        stream=_stream,
        extras="the `stop` sequence stays in the text; a `max_tokens` past what the context "
        "window leaves is lowered to it (with `context_length_exceeded_behavior: error`, "
        "OpenAI's 400)",
        stream_usage="always, on the last chunk (with `finish_reason`); `usage: null` before",
    ),
    errors=ErrorStyle(
        openai_envelope,
        "OpenAI's",
        named={"insufficient_quota": _billing},
        statuses={
            402: (_BILLING, "invalid_request_error"),
            412: ("Account suspended.", "invalid_request_error"),
        },
        extra_statuses="402 (billing), 412 (account suspended)",
    ),
    models_shape="`accounts/fireworks/models/…` ids",
    keep_stop=True,
    # What to do when prompt + `max_tokens` exceed the context (providers.md §8, "Behaviour
    # differences"): `max_tokens` is lowered unless it says `error` (`common.lowers_output`; its
    # other values are not confirmed there, so none is refused).
    extra_fields=ExtraFields({"context_length_exceeded_behavior": None}),
    sources=("providers.md §8",),
)
