"""The provider profiles through litellm's own provider routes (`groq/...`, `openrouter/...`,
`mistral/...`, `deepseek/...`, `together_ai/...`, `fireworks_ai/...`, `hosted_vllm/...`,
`litellm_proxy/...`) with `api_base` pointed at the profile: code that knows each provider's
quirks parses mockai's version of them.

Not here: `ollama_chat/` and `gemini/` speak Ollama's native `/api/chat` and Gemini's native
`generateContent`, not their OpenAI-compatible endpoints that the profiles model; those two are
proven through `@ai-sdk/openai-compatible` and openai-node (tests/test_profiles_node.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import Iterator
from typing import Any

import pytest
from profile_support import HELLO, KEY

from mockai import MockServer

# Offline: litellm's price map ships with it, and no tokenizer is fetched from a hub.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Imported by this module's first test (`_litellm`), not at collection: its import takes ~4 s,
# which every xdist worker paid collecting the suite, whether or not it ran these tests.
litellm: Any = None

# litellm's own import-time and call-time warnings (pydantic `ReadOnly` TypedDicts, deprecations
# in its dependencies) are not what these tests check; the suite turns warnings into errors.
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
def _close_litellms_clients() -> Iterator[None]:
    """litellm keeps HTTP clients (and event loops) in module-level caches: close them while
    this module's warning filters apply, not at interpreter exit (where the suite's
    warnings-are-errors setting would fail the run on their `ResourceWarning`s)."""
    global litellm
    import litellm as imported  # (under this module's warning filters, see `pytestmark`)

    litellm = imported
    yield
    with contextlib.suppress(Exception):
        asyncio.run(litellm.close_litellm_async_clients())
    cache = litellm.in_memory_llm_clients_cache
    for client in list(cache.cache_dict.values()):
        close = getattr(client, "close", None)
        if callable(close) and not asyncio.iscoroutinefunction(close):
            with contextlib.suppress(Exception):
                close()
    cache.flush_cache()
    gc.collect()


def complete(server: MockServer, provider: str, model: str, **options: Any) -> Any:
    options.setdefault("messages", HELLO)
    return litellm.completion(
        model=model, api_base=server.provider_url(provider), api_key=KEY, num_retries=0, **options
    )


def stream_text(server: MockServer, provider: str, model: str, **options: Any) -> tuple[str, Any]:
    chunks = list(complete(server, provider, model, stream=True, **options))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


# --- groq/ ----------------------------------------------------------------------------------


def test_groq_route_reads_groq_answers_and_its_400(server: MockServer) -> None:
    answer = complete(server, "groq", "groq/llama-3.3-70b-versatile")
    text, _ = stream_text(server, "groq", "groq/llama-3.3-70b-versatile")
    assert text == answer.choices[0].message.content
    assert answer.usage.completion_tokens > 0
    with pytest.raises(litellm.BadRequestError) as refused:
        complete(server, "groq", "groq/llama-3.3-70b-versatile", logit_bias={"1": 5})
    assert refused.value.status_code == 400 and "logit_bias" in str(refused.value)
    assert server.requests[-1].path == "/groq/openai/v1/chat/completions"


# --- openrouter/ ----------------------------------------------------------------------------


def test_openrouter_route_streams_past_its_comments_and_gets_usage(server: MockServer) -> None:
    text, chunks = stream_text(
        server, "openrouter", "openrouter/openai/gpt-4o", stream_options={"include_usage": True}
    )
    assert text
    usage = [c.usage for c in chunks if getattr(c, "usage", None)]
    assert usage and usage[-1].completion_tokens > 0


def test_openrouter_route_raises_on_a_402(server: MockServer) -> None:
    server.add_rule({"error": "insufficient_quota"})
    with pytest.raises((litellm.BadRequestError, litellm.exceptions.APIError)) as refused:
        complete(server, "openrouter", "openrouter/openai/gpt-4o")
    assert refused.value.status_code == 402 and "credits" in str(refused.value)


# --- mistral/ -------------------------------------------------------------------------------


def test_mistral_route_sends_mistral_spellings_and_its_tool_ids_go_back(
    server: MockServer,
) -> None:
    weather = [{"role": "user", "content": "What is the weather in Paris?"}]
    # `seed` would be a 422 on Mistral: litellm sends `random_seed`.
    first = complete(server, "mistral", "mistral/mistral-large-latest", messages=weather,
                     tools=[WEATHER_TOOL], seed=7)  # fmt: skip
    assert server.requests[-1].body["random_seed"] == 7
    call = first.choices[0].message.tool_calls[0]
    assert len(call.id) == 9 and call.id.isalnum()
    messages = [
        *weather,
        first.choices[0].message.model_dump(),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = complete(
        server, "mistral", "mistral/mistral-large-latest", messages=messages, tools=[WEATHER_TOOL]
    )
    assert second.choices[0].message.content
    text, _ = stream_text(server, "mistral", "mistral/mistral-large-latest")
    assert text  # usage arrives on the final chunk, and the stream parses


def test_mistral_route_surfaces_its_422(server: MockServer) -> None:
    with pytest.raises(litellm.BadRequestError) as refused:
        complete(server, "mistral", "mistral/mistral-large-latest", extra_body={"mystery": 1})
    assert refused.value.status_code == 422 and "extra_forbidden" in str(refused.value)


# --- deepseek/ ------------------------------------------------------------------------------


def test_deepseek_route_reads_reasoning_content(server: MockServer) -> None:
    answer = complete(server, "deepseek", "deepseek/deepseek-reasoner")
    assert answer.choices[0].message.reasoning_content
    text, _ = stream_text(server, "deepseek", "deepseek/deepseek-reasoner")
    assert text == answer.choices[0].message.content  # past the `: keep-alive` comment


def test_deepseek_route_raises_on_insufficient_balance(server: MockServer) -> None:
    server.add_rule({"error": "insufficient_quota"})
    with pytest.raises((litellm.BadRequestError, litellm.exceptions.APIError)) as refused:
        complete(server, "deepseek", "deepseek/deepseek-chat")
    assert refused.value.status_code == 402 and "Insufficient Balance" in str(refused.value)


# --- together_ai/, fireworks_ai/, hosted_vllm/, litellm_proxy/ ------------------------------


def test_together_route_takes_an_eos_finish(server: MockServer) -> None:
    server.add_rule({"reply": {"content": "done", "finish_reason": "eos"}})
    answer = complete(server, "together", "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert answer.choices[0].message.content == "done"
    assert answer.choices[0].finish_reason in ("eos", "stop")  # litellm may normalise it


def test_fireworks_route_reads_usage_from_the_last_chunk(server: MockServer) -> None:
    model = "fireworks_ai/accounts/fireworks/models/llama-v3p3-70b-instruct"
    text, chunks = stream_text(server, "fireworks", model, stream_options={"include_usage": True})
    usage = [c.usage for c in chunks if getattr(c, "usage", None)]
    assert text and usage[-1].completion_tokens > 0


def test_vllm_route_passes_unknown_extras(server: MockServer) -> None:
    answer = complete(
        server,
        "vllm",
        "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct",
        extra_body={"top_k": 20, "repetition_penalty": 1.1},
    )
    assert answer.choices[0].message.content
    assert server.requests[-1].body["top_k"] == 20


def test_litellm_proxy_route_reads_its_string_coded_errors(server: MockServer) -> None:
    server.add_rule({"error": "bad_request"})
    with pytest.raises(litellm.BadRequestError) as refused:
        complete(server, "litellm", "litellm_proxy/gpt-4o")
    assert refused.value.status_code == 400 and "litellm.BadRequestError" in str(refused.value)


def test_vercel_route_reads_creator_model_ids(server: MockServer) -> None:
    answer = complete(server, "vercel", "vercel_ai_gateway/anthropic/claude-sonnet-4")
    assert answer.choices[0].message.content
    assert server.requests[-1].body["model"] == "anthropic/claude-sonnet-4"
    assert server.requests[-1].path == "/vercel/v1/chat/completions"


def test_azure_route_uses_deployments_and_the_api_key_header() -> None:
    with MockServer(require_api_key=KEY, log_requests=False) as server:
        answer = litellm.completion(
            model="azure/prod-gpt4o",
            messages=HELLO,
            api_base=server.base_url + "/azure",
            api_key=KEY,
            api_version="2024-10-21",
            num_retries=0,
        )
    assert answer.choices[0].message.content
    entry = server.requests[-1]
    assert entry.path == "/azure/openai/deployments/prod-gpt4o/chat/completions"
    assert entry.headers["api-key"] == "<redacted>"


def test_the_fallback_chain_as_a_litellm_router(server: MockServer) -> None:
    """OpenRouter 402 -> Groq 429 -> OpenAI (tests/test_profiles_fallback.py has the app)."""
    server.add_rules(
        [
            {"match": {"provider": "openrouter"}, "error": "insufficient_quota"},
            {"match": {"provider": "groq"}, "error": {"name": "rate_limit", "retry_after": 7}},
            {"reply": {"content": "Revenue grew 12%."}},
        ]
    )

    def deployment(name: str, model: str, base_url: str) -> dict[str, object]:
        return {
            "model_name": name,
            "litellm_params": {"model": model, "api_base": base_url, "api_key": KEY},
        }

    router = litellm.Router(
        model_list=[
            deployment("primary", "openrouter/openai/gpt-4o", server.provider_url("openrouter")),
            deployment("fast", "groq/llama-3.3-70b-versatile", server.provider_url("groq")),
            deployment("last", "openai/gpt-4o-mini", server.url),
        ],
        fallbacks=[{"primary": ["fast", "last"]}],
        num_retries=0,
    )
    answer = router.completion(model="primary", messages=HELLO)
    assert answer.choices[0].message.content == "Revenue grew 12%."
    assert [(e.path, e.status) for e in server.requests] == [
        ("/openrouter/api/v1/chat/completions", 402),
        ("/groq/openai/v1/chat/completions", 429),
        ("/v1/chat/completions", 200),
    ]
