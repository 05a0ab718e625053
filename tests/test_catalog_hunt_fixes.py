"""The model catalog, as the hunt found it wrong: Gemini's `models/` ids, snapshots and fine-tunes
of built-in models, the embeddings' 8,192-token inputs, deletions under every provider prefix,
`--models` listing an id twice, the named `context_length_exceeded` saying the model's window, and
open models named `...-Instruct` taken for legacy completion models of 4,096 tokens.

Facts: shared/reference/providers.md §12 (Gemini's `models/` ids), the spec's
CreateEmbeddingRequest ("8192 tokens for all embedding models"), docs/endpoints.md (snapshots take
their family's limits; a deleted model is the API's 404 everywhere). Real servers, the real SDK or
httpx; the provider server is not the conformance-checked one (Gemini's error array is no
OpenAI error), the OpenAI one is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from conformance import checked_server
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai import MockServer
from mockai.catalog import BUILTIN, Catalog, ModelInfo, infer
from mockai.wire.errors import context_length_exceeded

KEY = "sk-catalog-test"
PURE = settings(max_examples=100, deadline=None, database=None)


def words(tokens: int) -> str:
    """A prompt of `tokens` tokens of its own (`a` and then ` a`s)."""
    return "a" + " a" * (tokens - 1)


def limits(info: ModelInfo) -> tuple[object, ...]:
    """What a model can do, whatever its id."""
    return (
        info.kind,
        info.context_window,
        info.max_output_tokens,
        info.dimensions,
        info.flexible_dimensions,
        info.reasoning,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """OpenAI's routes, every answer checked against the spec when the module ends."""
    with checked_server() as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Any) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def providers() -> Iterator[MockServer]:
    """Provider prefixes: their answers are each provider's, not OpenAI's."""
    with MockServer(log_requests=False) as running:
        yield running


def post(server: MockServer, provider: str, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(
        server.provider_url(provider) + path,
        json=body,
        headers={"Authorization": f"Bearer {KEY}", **headers},
        timeout=30,
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The error object of OpenAI's envelope or of Gemini's array."""
    body = response.json()
    return dict((body[0] if isinstance(body, list) else body)["error"])


# --- 1. Gemini's listed `models/...` ids are the models themselves -------------------------------


def test_a_gemini_model_has_its_window_under_the_id_models_lists(providers: MockServer) -> None:
    listed = httpx.get(providers.provider_url("gemini") + "/models", timeout=10)
    assert "models/gemini-2.5-flash" in [m["id"] for m in listed.json()["data"]]
    for spelling in ("models/gemini-2.5-flash", "gemini-2.5-flash"):
        body = {"model": spelling, "messages": [{"role": "user", "content": words(130_000)}]}
        answered = post(providers, "gemini", "/chat/completions", {**body, "max_tokens": 1})
        assert answered.status_code == 200, answered.text  # 1,048,576 tokens, not 128,000
        assert answered.json()["model"] == spelling  # the id as asked for, echoed


def test_a_gemini_model_has_its_output_limit_under_the_listed_id(providers: MockServer) -> None:
    # A schema asking for far more than the model can write: the answer stops at its limit.
    schema = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "minItems": 100_000, "items": {"type": "string"}}
        },
        "required": ["items"],
    }
    body = {
        "model": "models/gemini-2.0-flash",
        "messages": [{"role": "user", "content": "list"}],
        "max_tokens": 60_000,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    answer = post(providers, "gemini", "/chat/completions", body).json()
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 8_192  # gemini-2.0-flash's, not 16,384


def test_a_gemini_embedding_model_has_its_size_under_the_listed_id(providers: MockServer) -> None:
    body = {"model": "models/gemini-embedding-001", "input": "hello"}
    answer = post(providers, "gemini", "/embeddings", body).json()
    assert len(answer["data"][0]["embedding"]) == 3_072


def test_models_with_both_gemini_spellings_lists_and_serves_one_model() -> None:
    with MockServer(
        log_requests=False, models=("gemini-2.5-flash", "models/gemini-2.5-flash")
    ) as s:
        gemini = s.provider_url("gemini")
        assert [m["id"] for m in httpx.get(gemini + "/models", timeout=10).json()["data"]] == [
            "models/gemini-2.5-flash"
        ]
        for spelling in ("gemini-2.5-flash", "models/gemini-2.5-flash"):
            got = httpx.get(f"{gemini}/models/{spelling}", timeout=10)
            assert got.status_code == 200 and got.json()["id"] == "models/gemini-2.5-flash"
            body = {"model": spelling, "messages": [{"role": "user", "content": words(130_000)}]}
            assert post(s, "gemini", "/chat/completions", body).status_code == 200


# --- 2. Snapshots and fine-tunes of built-in models have their limits ----------------------------

_DATES = st.dates().map(lambda day: "-" + day.isoformat())
_NUMBERS = st.integers(0, 9999).map(lambda n: f"-{n:04d}")  # `gpt-3.5-turbo-0125`
_PART = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)


@PURE
@given(
    base=st.sampled_from(BUILTIN),
    snapshot=st.one_of(st.just(""), _DATES, _NUMBERS),
    org=_PART,
    suffix=st.one_of(st.just(""), _PART),
    job=_PART,
    shape=st.sampled_from(["snapshot", "fine-tune", "vendor"]),
)
def test_a_snapshot_or_fine_tune_has_its_base_models_limits(
    base: ModelInfo, snapshot: str, org: str, suffix: str, job: str, shape: str
) -> None:
    name = base.id + snapshot
    model_id = {
        "snapshot": name,
        "fine-tune": f"ft:{name}:{org}:{suffix}:{job}",
        "vendor": f"openai/{name}",  # (a gateway's spelling)
    }[shape]
    inferred = infer(model_id)
    assert inferred.id == model_id
    assert limits(inferred) == limits(base)
    assert inferred.owned_by == ("user" if shape == "fine-tune" else "system")
    # The family ends at a `-`: a longer name is no snapshot of it.
    for other in ("gpt-4.10", "gpt-50", "o30", "gpt-3.5-turbo0"):
        assert infer(other).context_window == 128_000


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4.1-2025-04-14",
        "ft:gpt-4.1-mini:acme::abc123",
        "ft:gpt-4.1-mini-2025-04-14:acme::abc123",
        "gpt-5-2025-08-07",
        "o3-2025-04-16",
    ],
)
def test_a_snapshot_takes_its_families_window(client: openai.OpenAI, model: str) -> None:
    answer = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": words(150_000)}],
        max_completion_tokens=1,
    )
    assert answer.usage is not None and answer.usage.prompt_tokens > 150_000


@pytest.mark.parametrize("model", ["gpt-3.5-turbo-0125", "ft:gpt-3.5-turbo-0125:acme::xyz"])
def test_a_snapshot_is_held_to_its_families_window(client: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": words(17_000)}], max_tokens=1
        )
    assert refused.value.code == "context_length_exceeded"
    assert "maximum context length is 16385 tokens" in refused.value.message


# --- 3. An embeddings input may hold 8,192 tokens -------------------------------------------------


@pytest.mark.parametrize(
    "model", ["text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"]
)
def test_an_embeddings_input_of_8192_tokens_is_embedded(client: openai.OpenAI, model: str) -> None:
    for given_input in (words(8_192), [list(range(8_192))]):
        answer = client.embeddings.create(model=model, input=given_input)  # type: ignore[arg-type]
        assert answer.usage.prompt_tokens == 8_192


def test_an_embeddings_input_of_8193_tokens_is_refused_naming_8192(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="text-embedding-3-small", input=[list(range(8_193))])
    assert "maximum context length is 8192 tokens" in refused.value.message


def test_an_inferred_embedding_model_takes_8192_tokens() -> None:
    assert infer("my-embedding-model").context_window == 8_192


# --- 4. A deleted fine-tune is gone under every prefix --------------------------------------------

FINE_TUNE = "ft:gpt-4o-mini:org:x:abc"
HELLO = [{"role": "user", "content": "hi"}]


def test_a_deleted_fine_tune_is_gone_under_every_prefix(providers: MockServer) -> None:
    root = providers.url.rsplit("/v1", 1)[0]
    with httpx.Client(base_url=root, timeout=10) as http:
        chat = {"model": FINE_TUNE, "messages": HELLO}
        # Asked for under a prefix first: its parse is kept, and must not outlive the deletion.
        assert http.post("/groq/openai/v1/chat/completions", json=chat).status_code == 200
        assert http.delete(f"/v1/models/{FINE_TUNE}").status_code == 200
        try:
            for path in ("/v1", "/openai/v1", "/groq/openai/v1", "/gemini/v1beta/openai"):
                assert http.get(f"{path}/models/{FINE_TUNE}").status_code == 404, path
            for path, status in [
                ("/v1", 404),
                ("/openai/v1", 404),
                ("/groq/openai/v1", 404),
                ("/openrouter/api/v1", 404),
                ("/litellm/v1", 400),  # (a LiteLLM proxy's word for an unknown model)
            ]:
                assert http.post(f"{path}/chat/completions", json=chat).status_code == status, path
            # Deleted once: deleting it again, under any prefix, finds nothing.
            assert http.delete(f"/groq/openai/v1/models/{FINE_TUNE}").status_code == 404
        finally:
            providers.reset()
        # A reset brings it back everywhere.
        assert http.post("/groq/openai/v1/chat/completions", json=chat).status_code == 200
        assert http.get(f"/openai/v1/models/{FINE_TUNE}").status_code == 200


def test_a_listed_fine_tune_deleted_under_a_prefix_leaves_every_list() -> None:
    with MockServer(log_requests=False, models=("gpt-4o-mini", FINE_TUNE)) as server:
        root = server.url.rsplit("/v1", 1)[0]
        with httpx.Client(base_url=root, timeout=10) as http:
            assert http.delete(f"/groq/openai/v1/models/{FINE_TUNE}").status_code == 200
            for path in ("/v1", "/groq/openai/v1", "/openai/v1"):
                assert [m["id"] for m in http.get(f"{path}/models").json()["data"]] == [
                    "gpt-4o-mini"
                ], path
                assert http.get(f"{path}/models/{FINE_TUNE}").status_code == 404, path


# --- 5. `--models` lists each model once ----------------------------------------------------------


def test_models_given_twice_are_listed_once_in_order() -> None:
    with (
        checked_server(models="gpt-4o,gpt-4o-mini,gpt-4o") as server,
        openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0) as sdk,
    ):
        assert [m.id for m in sdk.models.list()] == ["gpt-4o", "gpt-4o-mini"]


_IDS = st.sampled_from(["gpt-4o", "gpt-4o-mini", "o3", "my-model", "ft:gpt-4o:org::1"])


@PURE
@given(st.lists(_IDS, min_size=1, max_size=8))
def test_a_restricted_catalog_lists_each_id_once_in_first_seen_order(models: list[str]) -> None:
    catalog = Catalog(models)
    assert [info.id for info in catalog.listed()] == list(dict.fromkeys(models))


# --- 6. The named `context_length_exceeded` says the model's window ------------------------------

FAULT = {"x-mockai-fault": "context_length_exceeded"}
RESPONSES_TOO_LONG = (
    "Your input exceeds the context window of this model. Please adjust your input and try again."
)


def numbers_out(message: str) -> str:
    return re.sub(r"\d+", "N", message)


@pytest.mark.parametrize(
    ("path", "body", "window", "param"),
    [
        ("/chat/completions", {"model": "gpt-3.5-turbo", "messages": HELLO}, 16_385, "messages"),
        ("/responses", {"model": "gpt-3.5-turbo", "input": "hi"}, 16_385, "input"),
        ("/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "hi"}, 4_096, None),
        ("/embeddings", {"model": "text-embedding-3-small", "input": "hi"}, 8_192, "input"),
    ],
)
def test_the_named_error_says_the_models_window_and_the_endpoints_param(
    server: Any, path: str, body: dict[str, Any], window: int, param: str | None
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        named = http.post(path, json=body, headers=FAULT)
        # mockai's own check, for a prompt that really is too long: the same situation.
        prompt_key = "messages" if "messages" in body else "input" if "input" in body else "prompt"
        long_prompt: Any = words(window + 50)
        if prompt_key == "messages":
            long_prompt = [{"role": "user", "content": long_prompt}]
        real = http.post(path, json={**body, prompt_key: long_prompt})
    assert named.status_code == real.status_code == 400
    said, checked = named.json()["error"], real.json()["error"]
    assert said["code"] == "context_length_exceeded"
    assert said["param"] == param
    if path == "/responses":  # (the Responses API's words name no window: test_responses_store)
        assert said["message"] == checked["message"] == RESPONSES_TOO_LONG
    else:
        assert f"maximum context length is {window} tokens" in said["message"]
    assert numbers_out(said["message"]) == numbers_out(checked["message"])
    if path != "/embeddings":  # (the embeddings check sets no param)
        assert said["param"] == checked["param"]


def test_a_rules_named_error_says_the_providers_models_window_unless_written(
    providers: MockServer,
) -> None:
    written = {"name": "context_length_exceeded", "message": "as written", "param": "x"}
    rules = providers.add_rules(
        [
            {"match": {"user": "too long"}, "error": "context_length_exceeded"},
            {"match": {"user": "written"}, "error": written},
        ]
    )
    try:
        said = {
            user: post(
                providers,
                "gemini",
                "/chat/completions",
                {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": user}]},
            )
            for user in ("too long", "written")
        }
    finally:
        for rule in rules:
            providers.remove_rule(rule)
    assert said["too long"].status_code == 400
    assert "maximum context length is 1048576 tokens" in error_of(said["too long"])["message"]
    # A message written in the rule is the rule's, as written.
    assert error_of(said["written"])["message"] == "as written"


@PURE
@given(
    window=st.integers(min_value=1, max_value=10_000_000),
    endpoint=st.sampled_from(["chat", "completions", "embeddings"]),  # (not the Responses API:
)  # its message names no numbers)
def test_the_named_error_claims_a_count_past_the_window(window: int, endpoint: str) -> None:
    error = context_length_exceeded(window, endpoint)
    said = [int(n) for n in re.findall(r"\d+", error.message)]
    # (the legacy endpoints' words end with the completion's share: "0 for the completion")
    counts = [n for n in said[1:3] if n]
    assert said[0] == window
    assert counts and all(count > window for count in counts)
    assert error.status == 400 and error.code == "context_length_exceeded"


# --- 7. an open model's `-Instruct` is a chat model's name, not a legacy one's ---------------------


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("together", "meta-llama/Llama-3.1-8B-Instruct"),
        ("groq", "Qwen/Qwen2.5-7B-Instruct"),
        ("openai", "mistralai/Mistral-Small-24B-Instruct"),
    ],
)
def test_an_instruct_chat_model_has_more_than_4096_tokens(
    providers: MockServer, provider: str, model: str
) -> None:
    """Guessed as a legacy completion model, a name ending in `-Instruct` was held to 4,096
    tokens: a 6,000-token chat, or `max_tokens: 8000`, was refused as too long."""
    long_chat = {"model": model, "messages": [{"role": "user", "content": words(6_000)}]}
    assert post(providers, provider, "/chat/completions", long_chat).status_code == 200
    short = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8_000}
    assert post(providers, provider, "/chat/completions", short).status_code == 200
    assert limits(infer(model))[:3] == ("chat", 128_000, 16_384)
    # (OpenAI's own instruct model keeps its family's limits)
    assert limits(infer("gpt-3.5-turbo-instruct-0914"))[:3] == ("completion", 4_096, 4_096)
