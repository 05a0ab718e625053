"""Usage and answer metadata found by the usage hunt: a structured output's schema billed in the
prompt, as the API bills it; answers that name the dated snapshot an alias points to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from tiktoken_support import encodings

from mockai import MockServer


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


@pytest.fixture
def client(server: MockServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="sk-test", _strict_response_validation=True)


# --- 1. a structured output's schema is part of the prompt ----------------------------------------

BOOK = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "description": "The title of the book, as printed"},
        "author": {"type": "string", "description": "Who wrote it"},
        "year": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["title", "author", "year", "tags"],
    "additionalProperties": False,
}


def _shown(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as openai/openai-cookbook#2140 measured the API bills it."""
    return {k: v for k, v in schema.items() if k not in ("required", "additionalProperties")}


def _billed_schema() -> int:
    """The tokens the API adds for BOOK: its shown JSON, compact, and 9 (o200k's count)."""
    text = json.dumps(_shown(BOOK), separators=(",", ":"))
    return len(encodings()[1].encode(text)) + 9


def test_a_chat_answer_bills_its_response_formats_schema(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Describe a book"}]
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    structured = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "book", "schema": BOOK, "strict": True},
        },
    )
    assert plain.usage is not None and structured.usage is not None
    added = structured.usage.prompt_tokens - plain.usage.prompt_tokens
    # (It was 0: the schema the model is shown was not billed.)
    assert _billed_schema() * 0.85 <= added <= _billed_schema() * 1.15, (added, _billed_schema())


def test_a_response_bills_its_text_formats_schema_and_counts_it(client: openai.OpenAI) -> None:
    fmt: Any = {"type": "json_schema", "name": "book", "schema": BOOK, "strict": True}
    plain = client.responses.create(model="gpt-4o-mini", input="Describe a book")
    structured = client.responses.create(
        model="gpt-4o-mini", input="Describe a book", text={"format": fmt}
    )
    assert plain.usage is not None and structured.usage is not None
    added = structured.usage.input_tokens - plain.usage.input_tokens
    assert _billed_schema() * 0.85 <= added <= _billed_schema() * 1.15, (added, _billed_schema())
    counted = client.responses.input_tokens.count(
        model="gpt-4o-mini", input="Describe a book", text={"format": fmt}
    )
    assert counted.input_tokens == structured.usage.input_tokens


# --- 2. an answer names the snapshot its alias points to ------------------------------------------


@pytest.mark.parametrize(
    ("alias", "snapshot"),
    [
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        ("gpt-4.1", "gpt-4.1-2025-04-14"),
        ("o4-mini", "o4-mini-2025-04-16"),
    ],
)
def test_chat_and_responses_answers_name_the_aliass_snapshot(
    client: openai.OpenAI, alias: str, snapshot: str
) -> None:
    messages: Any = [{"role": "user", "content": "hi"}]
    assert client.chat.completions.create(model=alias, messages=messages).model == snapshot
    chunks = list(
        client.chat.completions.create(
            model=alias, messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    assert {chunk.model for chunk in chunks} == {snapshot}
    response = client.responses.create(model=alias, input="hi")
    assert response.model == snapshot
    assert client.responses.retrieve(response.id).model == snapshot
    with client.responses.stream(model=alias, input="hi") as events:
        assert events.get_final_response().model == snapshot


def test_a_snapshot_a_fine_tune_or_another_providers_model_is_named_as_asked(
    client: openai.OpenAI, server: MockServer
) -> None:
    messages: Any = [{"role": "user", "content": "hi"}]
    for asked in ("gpt-4o-2024-11-20", "ft:gpt-4o-mini:acme::abc123", "my-local-model"):
        assert client.chat.completions.create(model=asked, messages=messages).model == asked
    groq = openai.OpenAI(base_url=server.provider_url("groq"), api_key="gsk-test")
    answer = groq.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert answer.model == "gpt-4o-mini"
    embedded = client.embeddings.create(
        model="text-embedding-3-small", input="hi", encoding_format="float"
    )
    assert embedded.model == "text-embedding-3-small"


# --- 3. a legacy completion's suffix is part of its prompt ----------------------------------------


def test_a_legacy_completions_suffix_is_billed_with_each_prompt(client: openai.OpenAI) -> None:
    suffix = " and that is how the long story told here came to its quiet end."
    plain = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=["Once", "Then"])
    inserted = client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt=["Once", "Then"], suffix=suffix
    )
    assert plain.usage is not None and inserted.usage is not None
    # (It was billed nothing: the model reads the suffix with each prompt.)
    each = len(encodings()[0].encode(suffix))
    added = inserted.usage.prompt_tokens - plain.usage.prompt_tokens
    assert 2 * each * 0.8 <= added <= 2 * each * 1.2, (added, each)
    assert inserted.usage.total_tokens == (
        inserted.usage.prompt_tokens + inserted.usage.completion_tokens
    )


# --- 4. a rule scripts the prompt's cached tokens -------------------------------------------------


def test_a_rule_scripts_cached_tokens_for_cache_aware_cost_accounting(tmp_path: Any) -> None:
    scenario = tmp_path / "cached.yaml"
    scenario.write_text(
        "mockai: 1\n"
        "rules:\n"
        "  - match: {user: cached}\n"
        "    reply: {content: hello, usage: {prompt_tokens: 2048, cached_tokens: 1920}}\n"
        "  - match: {user: more}\n"
        "    reply: {content: hello, usage: {cached_tokens: 100000}}\n"
    )
    with MockServer(scenario=str(scenario), log_requests=False) as running:
        client = openai.OpenAI(
            base_url=running.url, api_key="sk-test", _strict_response_validation=True
        )
        chat = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "cached"}]
        )
        assert chat.usage is not None and chat.usage.prompt_tokens_details is not None
        # (It was a load error: "unknown key 'cached_tokens'", and 0 was all an answer said.)
        assert chat.usage.prompt_tokens_details.cached_tokens == 1920
        response = client.responses.create(model="gpt-4o-mini", input="cached")
        assert response.usage is not None
        assert response.usage.input_tokens_details.cached_tokens == 1920
        # Never more than the prompt holds.
        more = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "more"}]
        )
        assert more.usage is not None and more.usage.prompt_tokens_details is not None
        assert more.usage.prompt_tokens_details.cached_tokens == more.usage.prompt_tokens
        deepseek = openai.OpenAI(base_url=running.provider_url("deepseek"), api_key="sk-test")
        answer = deepseek.chat.completions.with_raw_response.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "cached"}]
        ).http_response.json()
        assert answer["usage"]["prompt_cache_hit_tokens"] == 1920
        assert answer["usage"]["prompt_cache_miss_tokens"] == 2048 - 1920


def test_a_restricted_catalog_serves_the_snapshot_its_answers_name() -> None:
    with MockServer(models="gpt-4o-mini", log_requests=False) as running:
        client = openai.OpenAI(base_url=running.url, api_key="sk-test")
        messages: Any = [{"role": "user", "content": "hi"}]
        named = client.chat.completions.create(model="gpt-4o-mini", messages=messages).model
        assert named == "gpt-4o-mini-2024-07-18"
        # (Both were the 404 model_not_found: the model an answer named did not exist.)
        assert client.models.retrieve(named).id == named
        assert client.chat.completions.create(model=named, messages=messages).model == named
        assert [model.id for model in client.models.list()] == ["gpt-4o-mini"]
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("gpt-4.1-2025-04-14")  # (an alias it does not list)
