"""Streams say what the unstreamed answer says (a streams hunt's findings).

Each test drives a real server with the SDK, streamed and not, and holds the two to one answer:
what a client assembles from the chunks or events is what the JSON body holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from conformance import checked_server
from sdk import sdk

from mockai import MockServer

LEGACY_MODEL = "gpt-3.5-turbo-instruct"
REFUSAL = "I can't help with that."

RULES: list[dict[str, Any]] = [
    {"name": "refuse", "match": {"user": "refuse me"}, "reply": {"refusal": REFUSAL}},
]


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with checked_server(fallback="generate") as running:
        running.add_rules(RULES)
        yield running


@pytest.fixture(scope="module")
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with sdk(server) as built:
        yield built


def streamed_texts(client: openai.OpenAI, **request: Any) -> dict[int, str]:
    """Each choice's text as the chunks of a streamed legacy completion spell it."""
    texts: dict[int, str] = {}
    for chunk in client.completions.create(**request, stream=True):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    return texts


def test_a_refusal_on_legacy_completions_is_its_text_streamed_or_not(
    client: openai.OpenAI,
) -> None:
    # Legacy completions have no refusal field: the body had said "" while its logprobs, its
    # usage and its stream said the refusal's words.
    request: dict[str, Any] = {"model": LEGACY_MODEL, "prompt": "refuse me", "logprobs": 1}
    whole = client.completions.create(**request)
    choice = whole.choices[0]
    assert choice.text == REFUSAL
    assert choice.logprobs is not None and "".join(choice.logprobs.tokens or []) == REFUSAL
    assert streamed_texts(client, **request) == {0: REFUSAL}
