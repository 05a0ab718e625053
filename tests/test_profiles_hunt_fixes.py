"""Provider profiles, as the hunt found them wrong: `--models` under every prefix, each catalog's
embedding sizes, strict mode and each provider's own fields, DeepSeek's usage, Together's integer
`logprobs`, Azure's `api-version`, Gemini's endpoints (and the docs' table saying what is there).

Facts: shared/reference/providers.md (the section each test names). Real servers, the real SDK or
httpx; profile answers are the providers', so the servers are not the conformance-checked ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profile_support import HELLO, KEY, MODELS, chat, chunks, post, sdk

from mockai import MockServer, tokens
from mockai.profiles import PROFILES
from mockai.profiles.table import differences

# (a real server per example would be slow: a module's server answers every example)
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


# --- 1. `--models` restricts every provider's catalog ---------------------------------------------


@pytest.fixture(scope="module")
def restricted() -> Iterator[MockServer]:
    with MockServer(log_requests=False, models=["gpt-4o"]) as running:
        yield running


@pytest.mark.parametrize("provider", ["groq", "mistral", "azure", "openrouter", "ollama"])
def test_models_refuses_an_unlisted_model_under_every_prefix(
    restricted: MockServer, provider: str
) -> None:
    with sdk(restricted, provider) as client:
        with pytest.raises(openai.NotFoundError) as refused:
            client.chat.completions.create(model="nope", messages=HELLO)  # type: ignore[arg-type]
        assert "nope" in str(refused.value)
        listed = client.chat.completions.create(model="gpt-4o", messages=HELLO)  # type: ignore[arg-type]
    assert listed.choices[0].message.content


def test_models_under_a_litellm_proxy_is_its_400_invalid_model_name(restricted: MockServer) -> None:
    # docs/providers.md: "an unknown model on a LiteLLM proxy with a model list is its 400"
    # (providers.md §4, "Unknown model").
    with sdk(restricted, "litellm") as client, pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="nope", messages=HELLO)  # type: ignore[arg-type]
    assert "Invalid model name passed in model=nope" in str(refused.value)


def test_models_lists_the_restricted_set_under_a_prefix(restricted: MockServer) -> None:
    with sdk(restricted, "groq") as client:
        listed = client.models.list()
    assert [model.id for model in listed.data] == ["gpt-4o"]


# --- 2. embedding sizes from the request's provider catalog ---------------------------------------

EMBEDDERS = [
    (name, info.id, info.dimensions)
    for name in PROFILES
    for info in PROFILES[name].catalog
    if info.kind == "embedding" and info.dimensions != 1536
]


def test_the_providers_with_their_own_sizes_are_covered() -> None:
    assert {name for name, _, _ in EMBEDDERS} >= {"mistral", "ollama", "gemini", "together"}


@pytest.mark.parametrize(("provider", "model", "size"), EMBEDDERS)
def test_a_generated_embedding_has_the_size_the_providers_catalog_gives(
    server: MockServer, provider: str, model: str, size: int
) -> None:
    with sdk(server, provider) as client:
        vectors = client.embeddings.create(model=model, input=["hello", "world"])
    assert [len(item.embedding) for item in vectors.data] == [size, size]


@pytest.fixture(scope="module")
def mistral_rules() -> Iterator[MockServer]:
    with MockServer(log_requests=False, profile="mistral", fallback="generate") as running:
        running.add_rules(
            [
                {"match": {"endpoint": "embeddings", "user": "pinned"}, "reply": {}},
                {"match": {"endpoint": "embeddings", "user": "seeded"}, "reply": {"seed": 7}},
            ]
        )
        yield running


@pytest.mark.parametrize(
    "inputs", [["pinned"], ["seeded"], ["pinned", "other"], ["seeded", "other"], ["other"]]
)
def test_a_rules_generated_embedding_has_the_profiles_size(
    mistral_rules: MockServer, inputs: list[str]
) -> None:
    # A rule scripting no vectors, one giving a seed, and a batch answered input by input: each
    # vector at mistral-embed's 1024 (the server answers as Mistral at /v1).
    with openai.OpenAI(base_url=mistral_rules.url, api_key=KEY, max_retries=0) as client:
        vectors = client.embeddings.create(model="mistral-embed", input=inputs)
    assert [len(item.embedding) for item in vectors.data] == [1024] * len(inputs)


# --- 3. strict mode knows each provider's own fields ---------------------------------------------


@pytest.fixture(scope="module")
def strict() -> Iterator[MockServer]:
    with MockServer(log_requests=False, strict_requests=True) as running:
        yield running


OWN_FIELDS = [
    ("groq", {"service_tier": "on_demand"}),  # §1; Groq's own answers carry it
    ("groq", {"service_tier": "performance"}),
    ("groq", {"reasoning_format": "parsed"}),
    ("groq", {"disable_tool_validation": True}),
    ("openrouter", {"models": ["openai/gpt-4o", "anthropic/claude-3.5-sonnet"]}),  # §2
    ("openrouter", {"provider": {"order": ["OpenAI"]}}),
    ("openrouter", {"reasoning": {"effort": "low"}, "top_k": 5}),
    ("ollama", {"reasoning": {"effort": "low"}}),  # §3
    ("vercel", {"providerOptions": {"gateway": {"order": ["openai"]}}}),  # §5
    ("anthropic", {"thinking": {"type": "enabled", "budget_tokens": 2000}}),  # §6
    ("together", {"top_k": 5, "repetition_penalty": 1.1}),  # §7
    ("fireworks", {"context_length_exceeded_behavior": "truncate"}),  # §8
]


@pytest.mark.parametrize(("provider", "fields"), OWN_FIELDS)
def test_strict_mode_takes_the_providers_own_fields(
    strict: MockServer, provider: str, fields: dict[str, Any]
) -> None:
    body = {"model": MODELS[provider], "messages": HELLO, "max_tokens": 4, **fields}
    answer = post(strict, provider, "/chat/completions", body)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("provider", ["openrouter", "ollama", "anthropic"])
def test_strict_mode_ignores_unknown_fields_where_the_provider_does(
    strict: MockServer, provider: str
) -> None:
    # OpenRouter (§2), Ollama (§3) and Anthropic (§6) accept and ignore fields they do not know.
    answer = chat(strict, provider, max_tokens=4, made_up_field=1)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("provider", ["groq", "together", "fireworks", "openai"])
def test_strict_mode_still_refuses_an_unknown_field(strict: MockServer, provider: str) -> None:
    answer = chat(strict, provider, max_tokens=4, made_up_field=1)
    assert answer.status_code == 400
    assert "made_up_field" in answer.text


def test_strict_mode_checks_groqs_tiers_not_openais(strict: MockServer) -> None:
    answer = chat(strict, "groq", service_tier="scale")  # OpenAI's, not Groq's
    assert answer.status_code == 400
    assert "on_demand" in answer.json()["error"]["message"]


def test_openais_own_prefix_keeps_openais_fields(strict: MockServer) -> None:
    answer = chat(strict, "openai", max_tokens=4, top_k=5)
    assert answer.status_code == 400 and "top_k" in answer.text


# --- 4. DeepSeek: reasoning tokens are completion tokens -----------------------------------------


def _deepseek_usage(server: MockServer, **body: Any) -> tuple[dict[str, Any], str]:
    answer = chat(server, "deepseek", model="deepseek-reasoner", **body)
    assert answer.status_code == 200, answer.text
    decoded = answer.json()
    return decoded["usage"], decoded["choices"][0]["message"]["reasoning_content"]


def test_deepseek_reasoner_counts_its_reasoning_in_completion_tokens(server: MockServer) -> None:
    with sdk(server, "deepseek") as client:
        reply = client.chat.completions.create(model="deepseek-reasoner", messages=HELLO)  # type: ignore[arg-type]
    usage = reply.usage
    assert usage is not None and usage.completion_tokens_details is not None
    reasoning = usage.completion_tokens_details.reasoning_tokens or 0
    assert reasoning > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # The same request as OpenAI answers it (the same text, no reasoning): DeepSeek's
    # completion is that answer's tokens and the reasoning's.
    with sdk(server, "openai") as client:
        plain = client.chat.completions.create(model="deepseek-reasoner", messages=HELLO)  # type: ignore[arg-type]
    assert plain.choices[0].message.content == reply.choices[0].message.content
    assert plain.usage is not None
    assert usage.completion_tokens == plain.usage.completion_tokens + reasoning


@PROPERTY
@given(max_tokens=st.integers(1, 48), stream=st.booleans())
def test_deepseek_usage_is_a_breakdown_within_max_tokens(
    server: MockServer, max_tokens: int, stream: bool
) -> None:
    usage, thought = _deepseek_usage(server, max_tokens=max_tokens)
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning <= usage["completion_tokens"] <= max_tokens
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert reasoning == tokens.count(thought)  # (counted as any text is)
    if stream:  # the stream's usage and thought are the whole answer's
        answer = chat(
            server,
            "deepseek",
            model="deepseek-reasoner",
            max_tokens=max_tokens,
            stream=True,
            stream_options={"include_usage": True},
        )
        decoded = chunks(answer)
        assert decoded[-1]["usage"] == usage
        streamed = "".join(
            choice["delta"].get("reasoning_content") or ""
            for chunk in decoded
            for choice in chunk["choices"]
        )
        assert streamed == thought


# --- 5. Together's integer `logprobs` ------------------------------------------------------------


@PROPERTY
@given(count=st.integers(0, 5))
def test_together_takes_its_integer_logprobs_as_that_many_top_logprobs(
    server: MockServer, count: int
) -> None:
    # providers.md §7: `logprobs` is an int in Together's SDK.
    answer = chat(server, "together", max_tokens=3, logprobs=count)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()["choices"][0]["logprobs"]["content"]
    assert tokens
    assert all(len(token["top_logprobs"]) == count for token in tokens)


def test_together_refuses_a_negative_logprobs_naming_it(server: MockServer) -> None:
    answer = chat(server, "together", logprobs=-1)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "logprobs"


def test_together_keeps_openais_boolean_logprobs(server: MockServer) -> None:
    answer = chat(server, "together", max_tokens=2, logprobs=True, top_logprobs=2)
    assert answer.status_code == 200
    assert all(
        len(token["top_logprobs"]) == 2
        for token in answer.json()["choices"][0]["logprobs"]["content"]
    )


# --- 6. Azure's deployment routes need `api-version` ---------------------------------------------

DEPLOYMENT = "/deployments/prod/chat/completions"


@pytest.mark.parametrize("base", ["/openai", "/azure/openai"])
def test_a_deployment_route_without_api_version_is_azures_404(
    server: MockServer, base: str
) -> None:
    # providers.md §13: "api-version [is] required; a missing version ... gives 404".
    body = {"messages": HELLO, "max_tokens": 2}
    missing = httpx.post(server.base_url + base + DEPLOYMENT, json=body, timeout=30)
    assert missing.status_code == 404
    error = missing.json()["error"]  # Azure's envelope (OpenAI's four keys)
    assert set(error) == {"message", "type", "param", "code"}
    assert "api-version" in error["message"]
    given = httpx.post(
        server.base_url + base + DEPLOYMENT + "?api-version=2024-10-21", json=body, timeout=30
    )
    assert given.status_code == 200, given.text


def test_the_azure_clients_send_api_version_and_are_answered(server: MockServer) -> None:
    with openai.AzureOpenAI(
        azure_endpoint=server.base_url, api_key=KEY, api_version="2024-10-21", max_retries=0
    ) as client:
        reply = client.chat.completions.create(model="prod", messages=HELLO)  # type: ignore[arg-type]
    assert reply.model == "prod"
    with sdk(server, "azure") as v1_client:
        v1 = v1_client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
    assert v1.choices[0].message.content  # the v1 API takes no api-version


# --- 7. Gemini's endpoints, and the table saying what each provider has --------------------------


def test_gemini_serves_images_and_batches(server: MockServer) -> None:
    # providers.md §12: chat/completions, embeddings, images/generations, videos, batches, models.
    with sdk(server, "gemini") as gemini:
        image = gemini.images.generate(
            model="imagen-3.0-generate-002", prompt="a cat", response_format="b64_json"
        )
        assert image.data and image.data[0].b64_json
        assert gemini.batches.list().data == []
        assert [model.id for model in gemini.models.list().data]


def _not_there(provider: str) -> str:
    """The "Not there (its 404)" cell of `provider`'s row in the docs' table."""
    row = next(line for line in differences().splitlines() if f"`{provider}` |" in line)
    return row.split(" | ")[3]


PATHS = ["/chat/completions", "/embeddings", "/images/generations", "/batches", "/moderations"]


@pytest.mark.parametrize("provider", ["gemini", "anthropic", "groq", "ollama"])
def test_the_tables_not_there_column_is_what_the_provider_answers(
    server: MockServer, provider: str
) -> None:
    cell = _not_there(provider)
    named = set(re.findall(r"`(/[^`]+)`", cell))
    models = httpx.get(server.provider_url(provider) + "/models", timeout=30)
    assert models.status_code == 200
    if cell.startswith("all but"):
        assert "/models" in named  # served: the table must not call it missing
    else:
        assert "/models" not in named
    for path in PATHS:
        served = post(server, provider, path, {}).status_code != 404
        listed = path in named
        assert served == (listed if cell.startswith("all but") else not listed), (path, cell)


def test_every_chat_model_in_the_shared_list_is_still_answered(server: MockServer) -> None:
    # (the fixes above leave the ordinary answer of every provider alone)
    for provider in MODELS:
        answer = chat(server, provider, max_tokens=2)
        assert answer.status_code == 200, (provider, answer.text)
