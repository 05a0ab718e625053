"""Provider profiles, as a second hunt found them wrong (each test names what was wrong).

Facts: shared/reference/providers.md (the section each test names). Real servers, the real SDK or
httpx; profile answers are the providers', so the servers are not the conformance-checked ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from profile_support import chat, sdk

from mockai import MockServer


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


# --- a `messages` or `tool_calls` that is no array is a 400, not a 500 ----------------------------


@pytest.mark.parametrize(
    ("provider", "messages"),
    [
        ("ollama", 1),
        ("ollama", True),
        ("mistral", 1.5),
        ("mistral", [{"role": "assistant", "content": "a", "tool_calls": 1}]),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_a_messages_or_tool_calls_of_the_wrong_type_is_refused_not_a_crash(
    server: MockServer, provider: str, messages: Any, stream: bool
) -> None:
    # Ollama's image check and Mistral's field and tool-call-id checks iterated what they were
    # given: a number was mockai's 500 (a traceback), where the provider refuses the request.
    answer = chat(server, provider, messages=messages, stream=stream)
    assert answer.status_code == 400, answer.text
    assert "internal error" not in answer.text


# --- the headers a gateway adds to every answer, not to chat's alone -------------------------------


def test_litellm_headers_come_on_every_endpoints_answer(server: MockServer) -> None:
    # providers.md §4, "Response headers": the proxy returns its `x-litellm-*` headers on what
    # it answers; they came on chat answers only, so an app's cost tracking of embeddings (its
    # `x-litellm-response-cost`) read nothing.
    with sdk(server, "litellm") as proxy:
        embedded = proxy.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input="hi"
        )
        streamed = proxy.responses.with_raw_response.create(
            model="gpt-4o", input="hi", max_output_tokens=16, stream=True
        )
    for raw in (embedded, streamed):
        assert raw.headers["x-litellm-response-cost"] == "0.0"
        assert re.fullmatch(r"[0-9a-f-]{36}", raw.headers["x-litellm-call-id"])
    assert embedded.parse().data[0].embedding


def test_openrouter_names_the_generation_on_completions_and_responses(server: MockServer) -> None:
    # providers.md §2: "Response header X-Generation-Id"; OpenRouter's streaming.mdx: it is
    # "returned in the X-Generation-Id response header for all endpoints (chat completions,
    # completions, responses, and messages)". It came on chat answers only.
    with sdk(server, "openrouter") as router:
        completed = router.completions.with_raw_response.create(
            model="openai/gpt-4o", prompt="hi", max_tokens=2
        )
        responded = router.responses.with_raw_response.create(model="openai/gpt-4o", input="hi")
        embedded = router.embeddings.with_raw_response.create(
            model="openai/text-embedding-3-small", input="hi"
        )
    for raw in (completed, responded):
        assert re.fullmatch(r"gen-\d+-\w{20}", raw.headers["x-generation-id"])
    assert "x-generation-id" not in embedded.headers  # (the docs name no other endpoint)
