"""The provider profiles through Node clients: openai-node and the Vercel AI SDK's provider
packages (`@ai-sdk/groq`, `@ai-sdk/mistral`, `@ai-sdk/deepseek`, `@openrouter/ai-sdk-provider`,
`@ai-sdk/openai-compatible`), installed from tests/node's lockfile by scripts/test-env.

Each test runs tests/node/drive.mjs once against a mockai started here, with the cases it needs,
and asserts on what the client made of the answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from node_clients import run_script
from profile_support import MODELS

from mockai import MockServer

WEATHER = "What is the weather in Paris?"


@pytest.fixture
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


def drive(
    server: MockServer, client: str, provider: str, cases: list[dict[str, Any]], **spec: Any
) -> list[dict[str, Any]]:
    """Run the cases with `client` against `provider`'s prefix; one result per case."""
    spec = {
        "client": client,
        "baseURL": server.provider_url(provider),
        "model": spec.pop("model", MODELS[provider]),
        "cases": cases,
        **spec,
    }
    results: list[dict[str, Any]] = run_script("drive.mjs", spec)
    assert len(results) == len(cases)
    return results


# --- @ai-sdk/groq ---------------------------------------------------------------------------


def test_groq_provider_package(server: MockServer) -> None:
    generated, streamed, tools = drive(
        server,
        "groq",
        "groq",
        [{"op": "generate"}, {"op": "stream"}, {"op": "tools", "prompt": WEATHER}],
    )
    assert generated["text"] and generated["text"] == streamed["text"]
    assert generated["usage"]["outputTokens"] > 0 and streamed["usage"]["outputTokens"] > 0
    assert tools["steps"] == 2 and tools["toolCalls"][0]["input"] == {"city": "Paris"}
    [refused] = drive(server, "openai", "groq", [{"op": "generate", "body": {"logprobs": True}}])
    assert refused["error"]["status"] == 400 and refused["error"]["body"]["param"] == "logprobs"


# --- @ai-sdk/mistral ------------------------------------------------------------------------


def test_mistral_provider_package(server: MockServer) -> None:
    tools, streamed = drive(
        server, "mistral", "mistral", [{"op": "tools", "prompt": WEATHER}, {"op": "stream"}]
    )
    # Its 9-character ids went back on the second step without a 400.
    assert tools["steps"] == 2 and tools["text"]
    assert len(tools["toolCalls"][0]["id"]) == 9
    # Usage from the final chunk, without `stream_options` (which Mistral refuses).
    assert streamed["usage"]["outputTokens"] > 0 and streamed["finishReason"] == "stop"
    assert all("stream_options" not in entry.body for entry in server.requests)  # type: ignore[operator]
    [refused] = drive(server, "openai", "mistral", [{"op": "generate", "body": {"seed": 7}}])
    assert refused["error"]["status"] == 422


# --- @ai-sdk/deepseek -----------------------------------------------------------------------


def test_deepseek_provider_package(server: MockServer) -> None:
    server.add_rule({"match": {"user": "pay"}, "error": "insufficient_quota"})
    server.add_rule({"reply": {}})
    generated, streamed, refused = drive(
        server,
        "deepseek",
        "deepseek",
        [{"op": "generate"}, {"op": "stream"}, {"op": "generate", "prompt": "pay"}],
        model="deepseek-reasoner",
    )
    assert generated["text"] and streamed["text"] == generated["text"]
    assert "reasoning-delta" in streamed["parts"]  # reasoning_content, after `: keep-alive`
    assert refused["error"]["status"] == 402 and "Insufficient Balance" in refused["error"]["body"]


# --- @openrouter/ai-sdk-provider ------------------------------------------------------------


def test_openrouter_provider_package(server: MockServer) -> None:
    server.add_rule({"match": {"user": "pay"}, "error": "insufficient_quota"})
    server.add_rule({"reply": {}})
    generated, streamed, refused = drive(
        server,
        "openrouter",
        "openrouter",
        [{"op": "generate"}, {"op": "stream"}, {"op": "generate", "prompt": "pay"}],
    )
    assert generated["text"] and streamed["text"] == generated["text"]
    assert streamed["usage"]["outputTokens"] > 0  # past `: OPENROUTER PROCESSING`
    assert generated["providerMetadata"]["openrouter"]["usage"]["cost"] > 0
    assert refused["error"]["status"] == 402
    assert json.loads(refused["error"]["body"])["error"]["metadata"]["limit_source"]


def test_openrouter_mid_stream_error_reaches_the_ai_sdk(server: MockServer) -> None:
    server.add_rule({"reply": {}, "faults": {"error_event_after": 2}})
    [streamed] = drive(server, "openrouter", "openrouter", [{"op": "stream"}])
    assert server.requests[-1].status == 200
    assert streamed["finishReason"] == "error" or streamed["errors"], streamed


# --- @ai-sdk/openai-compatible --------------------------------------------------------------


def test_gemini_through_openai_compatible(server: MockServer) -> None:
    streamed, tools, refused = drive(
        server,
        "compatible",
        "gemini",
        [
            {"op": "stream"},
            {"op": "stream-tools", "prompt": WEATHER},
            {
                "op": "generate",
                "settings": {"providerOptions": {"gemini": {"web_search_options": {}}}},
            },
        ],
        name="gemini",
    )
    assert streamed["text"]
    assert tools["toolCalls"][0]["name"] == "get_weather"  # streamed without `index`
    assert refused["error"]["status"] == 400
    body = json.loads(refused["error"]["body"])
    assert isinstance(body, list) and body[0]["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "provider", ["ollama", "vllm", "together", "fireworks", "litellm", "vercel", "anthropic"]
)
def test_other_providers_through_openai_compatible(server: MockServer, provider: str) -> None:
    generated, streamed = drive(
        server, "compatible", provider, [{"op": "generate"}, {"op": "stream"}], name=provider
    )
    assert generated["text"] and streamed["text"] == generated["text"]
    assert streamed["finishReason"] == "stop"


# --- openai-node ----------------------------------------------------------------------------


def test_openai_node_against_the_providers_quirks(server: MockServer) -> None:
    [gemini_models] = drive(server, "openai", "gemini", [{"op": "models"}])
    assert gemini_models["ids"][0] == "models/gemini-2.5-flash"
    [streamed] = drive(server, "openai", "openrouter", [{"op": "stream"}])
    assert streamed["text"] and streamed["chunks"][-1]["usage"]["completion_tokens"] > 0


def test_openai_node_raises_on_openrouters_in_band_error(server: MockServer) -> None:
    server.add_rule({"reply": {}, "faults": {"error_event_after": 2}})
    [broken] = drive(server, "openai", "openrouter", [{"op": "stream"}])
    assert "Internal Server Error" in broken["error"]["message"]
    assert server.requests[-1].status == 200
