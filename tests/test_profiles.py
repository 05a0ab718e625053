"""Provider profiles, across providers: where each is served, its endpoints and its 404, the
server's own `--profile`, rules that match a provider, chaos in the provider's shape, recording
through a profile, and invariants every profile keeps (property-tested)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profile_support import HELLO, KEY, MODELS, chat, chunks, frames, post, sdk, streamed_text
from strategies import examples, texts

from mockai import MockServer, profiles
from mockai.errors import ConfigError, ScenarioError
from mockai.pipeline.exchange import Endpoint
from mockai.profiles import PROFILES
from mockai.profiles.places import PLACES
from mockai.profiles.table import ENDPOINT_PATHS


@pytest.fixture
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


NAMED = [name for name, profile in PROFILES.items() if profile.by_name]


def test_every_provider_has_its_facts_dated() -> None:
    assert set(PROFILES) == {*MODELS}
    for profile in PROFILES.values():
        assert profile.as_of and profile.title and profile.paths, profile.name
        assert profile.name == "openai" or profile.sources, profile.name


def test_each_profile_is_its_module_and_serves_where_its_place_says() -> None:
    """Routing reads the light table (`places.PLACES`) and the profile modules load on first
    use: each name's module holds the profile of that name, at that place."""
    assert list(PROFILES) == list(PLACES)
    for name, profile in PROFILES.items():
        assert profile.name == name
        assert profile.place is PLACES[name]
        assert sys.modules[f"mockai.profiles.{name}"].PROFILE is profile
    assert "nope" not in PROFILES
    with pytest.raises(KeyError, match="valid: openai, groq"):
        profiles.get("nope")


@pytest.mark.parametrize("provider", NAMED)
def test_each_provider_answers_under_its_own_prefix(server: MockServer, provider: str) -> None:
    prefix = PROFILES[provider].prefixes[0]
    with sdk(server, provider) as client:
        answer = client.chat.completions.create(model=MODELS[provider], messages=HELLO)  # type: ignore[arg-type]
        streamed = client.chat.completions.create(
            model=MODELS[provider],
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
        )
        text = streamed_text(iter(streamed))
    assert answer.choices[0].message.content and text == answer.choices[0].message.content
    assert [entry.path for entry in server.requests] == [prefix + "/chat/completions"] * 2
    assert server.provider_url(provider) == server.base_url + prefix


@pytest.mark.parametrize("provider", NAMED)
def test_each_provider_lists_its_own_models(server: MockServer, provider: str) -> None:
    listed = httpx.get(server.provider_url(provider) + "/models").json()
    items = listed if isinstance(listed, list) else listed["data"]
    ids = [item["id"].removeprefix("models/") for item in items]
    assert MODELS[provider] in ids
    if provider != "azure":  # Azure's deployments are the user's: it lists OpenAI's models
        assert "gpt-4o-mini" not in ids or provider == "litellm"


ABSENT = [
    (name, endpoint)
    for name, profile in PROFILES.items()
    if profile.by_name
    for endpoint in sorted(set(Endpoint) - profile.endpoints, key=str)
]


@pytest.mark.parametrize(("provider", "endpoint"), ABSENT)
def test_an_endpoint_the_provider_lacks_is_its_404(
    server: MockServer, provider: str, endpoint: Endpoint
) -> None:
    path = ENDPOINT_PATHS[endpoint]
    refused = post(server, provider, path, {"model": MODELS[provider], "input": "hi"})
    assert refused.status_code == 404
    # The same 404 as any unknown path under that provider, in its envelope.
    unknown = post(server, provider, "/no/such/thing", {})
    assert unknown.status_code == 404
    assert _shape(refused.json()) == _shape(unknown.json())
    # OpenAI has the endpoint.
    assert (
        httpx.post(server.url + path, json={"model": "gpt-4o-mini", "input": "hi"}).status_code
        != 404
    )


def _shape(body: Any) -> Any:
    """A JSON value's structure: keys and types, not values."""
    if isinstance(body, dict):
        return {key: _shape(value) for key, value in body.items() if key != "message"}
    if isinstance(body, list):
        return [_shape(item) for item in body]
    return type(body).__name__


def test_a_provider_name_alone_is_its_404(server: MockServer) -> None:
    answer = httpx.get(server.base_url + "/gemini")
    assert answer.status_code == 404 and isinstance(answer.json(), list)  # Gemini's array


def test_the_servers_own_profile_answers_at_v1_and_its_base_path() -> None:
    with MockServer(profile="openrouter", log_requests=False) as server:
        at_v1 = httpx.post(server.url + "/chat/completions", json={"model": "x", "messages": HELLO})
        native = httpx.post(
            server.base_url + "/api/v1/chat/completions", json={"model": "x", "messages": HELLO}
        )
        models = httpx.get(server.url + "/models").json()
        # OpenAI's routes are OpenRouter's now; the other providers keep their prefixes.
        groq = httpx.post(
            server.provider_url("groq") + "/chat/completions",
            json={"model": "x", "messages": HELLO},
        )
    assert at_v1.json()["id"].startswith("gen-") and native.json()["id"].startswith("gen-")
    assert "object" not in models and models["data"][0]["id"] == "openai/gpt-4o"
    assert "x_groq" in groq.json()


def test_azure_keeps_its_paths_when_the_server_is_another_provider() -> None:
    with MockServer(profile="groq", require_api_key=KEY, log_requests=False) as server:
        # Groq's own base path is `/openai/v1`: it is Groq's on a Groq server ...
        groq = httpx.post(
            server.base_url + "/openai/v1/chat/completions",
            json={"model": "x", "messages": HELLO},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        # ... while AzureOpenAI's deployment routes stay Azure's.
        with openai.AzureOpenAI(
            azure_endpoint=server.base_url, api_key=KEY, api_version="2024-10-21", max_retries=0
        ) as azure:
            answer = azure.chat.completions.with_raw_response.create(model="dep", messages=HELLO)  # type: ignore[arg-type]
    assert "x_groq" in groq.json()
    assert "prompt_filter_results" in json.loads(answer.text)


def test_a_bad_profile_name_is_refused_with_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"'openroute' is not a provider profile.*'openrouter'"):
        MockServer(profile="openroute")


# --- scenarios speak profiles ------------------------------------------------------------------


def test_rules_match_the_provider_a_request_came_through(server: MockServer) -> None:
    server.add_rule(
        {"name": "groq-only", "match": {"provider": "groq"}, "reply": {"content": "from groq"}}
    )
    server.add_rule(
        {
            "name": "gateways",
            "match": {"provider": ["openrouter", "vercel"]},
            "reply": {"content": "from a gateway"},
        }
    )
    server.add_rule({"name": "others", "reply": {"content": "anyone"}})
    seen = {}
    for provider in ("groq", "openrouter", "vercel", "mistral", "openai"):
        with sdk(server, provider) as client:
            answer = client.chat.completions.create(model=MODELS[provider], messages=HELLO)  # type: ignore[arg-type]
        seen[provider] = answer.choices[0].message.content
    assert seen == {
        "groq": "from groq",
        "openrouter": "from a gateway",
        "vercel": "from a gateway",
        "mistral": "anyone",
        "openai": "anyone",
    }


def test_a_misspelt_provider_in_a_rule_is_a_scenario_problem(server: MockServer) -> None:
    with pytest.raises(ScenarioError, match=r"'grok' is not a provider profile.*'groq'"):
        server.add_rule({"match": {"provider": "grok"}, "reply": "x"})


def test_named_errors_render_in_the_providers_shape(server: MockServer) -> None:
    server.add_rule({"match": {"user": "quota"}, "error": "insufficient_quota"})
    quota = [{"role": "user", "content": "quota please"}]
    answers = {
        provider: chat(server, provider, messages=quota)
        for provider in ("openai", "openrouter", "deepseek", "fireworks", "mistral", "gemini")
    }
    assert answers["openai"].status_code == 429
    assert answers["openai"].json()["error"]["code"] == "insufficient_quota"
    openrouter = answers["openrouter"].json()["error"]
    assert answers["openrouter"].status_code == 402 and openrouter["code"] == 402
    assert openrouter["metadata"]["limit_source"] == "openrouter_credits"
    assert answers["deepseek"].status_code == 402
    assert answers["deepseek"].json()["error"]["message"] == "Insufficient Balance"
    assert answers["fireworks"].status_code == 402
    # Providers without their own version keep OpenAI's status, in their envelope.
    assert answers["mistral"].status_code == 429 and answers["mistral"].json()["object"] == "error"
    gemini = answers["gemini"].json()
    assert answers["gemini"].status_code == 429
    assert gemini[0]["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_chaos_faults_render_in_the_providers_shape() -> None:
    with MockServer(chaos={"rate_limit": 1.0}, log_requests=False) as server:
        openrouter = chat(server, "openrouter")
        groq = chat(server, "groq")
        ollama = chat(server, "ollama")
    assert openrouter.status_code == groq.status_code == ollama.status_code == 429
    assert openrouter.json() == {
        "error": {
            "code": 429,
            "message": "Rate limit exceeded",
            "metadata": {"error_type": "rate_limit_exceeded"},
        }
    }
    assert int(openrouter.headers["X-RateLimit-Remaining"]) == 0
    assert "retry-after" in groq.headers and "retry-after-ms" not in groq.headers
    assert ollama.json()["error"]["type"] == "api_error"
    assert not any(name.startswith("x-ratelimit") for name in ollama.headers)


def test_the_journal_keeps_openais_four_keys_for_every_provider(server: MockServer) -> None:
    chat(server, "gemini", web_search_options={})
    entry = server.requests[-1]
    assert entry.status == 400 and set(entry.error or {}) == {"message", "type", "param", "code"}


# --- recording through a profile keeps the provider's bytes ------------------------------------


def test_recording_through_a_profile_keeps_the_providers_bytes(tmp_path: Path) -> None:
    cassette = tmp_path / "groq.yaml"
    with MockServer(profile="groq", log_requests=False) as provider:
        upstream = provider.provider_url("groq")
        with MockServer(
            profile="groq",
            upstream=upstream,
            cassette=str(cassette),
            record_mode="once",
            log_requests=False,
        ) as recorder:
            recorded = chat(recorder, "groq", stream=True)
            recorded_json = chat(recorder, "groq", messages=[{"role": "user", "content": "again"}])
        direct = chat(provider, "groq", stream=True)  # the provider's own second answer
    with MockServer(profile="groq", cassette=str(cassette), log_requests=False) as replayer:
        replayed = chat(replayer, "groq", stream=True)
        replayed_json = chat(replayer, "groq", messages=[{"role": "user", "content": "again"}])
    # One x_groq per chunk that carries it: the recorder's profile added nothing to the relay.
    assert recorded.text.count('"x_groq"') == 2
    assert replayed.content == recorded.content
    assert replayed_json.json() == recorded_json.json()
    assert recorded_json.json()["x_groq"]["id"].startswith("req_")
    assert direct.text.count('"x_groq"') == 2


# --- invariants every profile keeps -------------------------------------------------------------


@settings(max_examples=examples(12))
@given(
    provider=st.sampled_from(NAMED),
    text=texts(min_size=1, max_size=60),
    include_usage=st.booleans(),
)
def test_every_profile_streams_the_answer_it_gives_whole(
    provider: str, text: str, include_usage: bool
) -> None:
    """For any provider and any scripted text: the streamed deltas spell the non-streamed answer,
    every `data:` event is JSON or `[DONE]`, anything else is an SSE comment, and usage (when the
    provider sends it in the stream at all) adds up to the answer's."""
    with MockServer(log_requests=False) as server:
        server.add_rule({"reply": {"content": text}})
        whole = chat(server, provider).json()
        options = {"stream_options": {"include_usage": True}} if include_usage else {}
        if provider == "mistral":
            options = {}  # Mistral refuses `stream_options` (a 422); it always sends usage
        streamed = chat(server, provider, stream=True, **options)
    assert streamed.status_code == 200
    for frame in frames(streamed):
        if frame.startswith("data: "):
            assert frame == "data: [DONE]" or isinstance(json.loads(frame[6:]), dict)
        else:
            assert frame.startswith(": "), frame
    got = chunks(streamed)
    assert streamed_text(got) == whole["choices"][0]["message"]["content"] == text
    usages = [c["usage"] for c in got if c.get("usage")]
    if usages:
        assert usages[-1]["completion_tokens"] == whole["usage"]["completion_tokens"]
        assert usages[-1]["prompt_tokens"] == whole["usage"]["prompt_tokens"]


@pytest.mark.mockai(profile="mistral")
def test_the_pytest_fixture_takes_a_profile_and_gives_provider_urls(mockai: Any) -> None:
    with mockai.openai_client() as client, pytest.raises(openai.UnprocessableEntityError):
        # Mistral's 422 at /v1: the server is Mistral
        client.chat.completions.create(model="mistral-small-latest", messages=HELLO, seed=1)  # type: ignore[arg-type]
    assert mockai.provider_url("groq") == mockai.base_url + "/groq/openai/v1"
