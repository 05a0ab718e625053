"""Provider profiles held to providers.md fact by fact, where a hunt found them off: fields ignored
on every endpoint of the providers that ignore unknown fields, Anthropic's one choice and its
`stop`, Ollama's stateless Responses API and its own words for empty `messages`, OpenRouter's
optional `model`, DeepSeek's 402 said once.

Facts: shared/reference/providers.md (the section each test names). Real servers, the real SDK or
httpx; profile answers are the providers', so the servers are not the conformance-checked ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profile_support import HELLO, KEY, MODELS, chat, post, sdk

from mockai import MockServer
from mockai.api.spec_fields import FIELDS
from mockai.profiles.base import EVERY_TABLE

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False, fallback="generate") as running:
        running.add_rule(
            {
                "name": "two-lines",
                "match": {"user": "two lines please"},
                "reply": {"content": "line one\nline two"},
            }
        )
        yield running


@pytest.fixture(scope="module")
def strict() -> Iterator[MockServer]:
    with MockServer(log_requests=False, strict_requests=True) as running:
        yield running


# --- Unknown fields: ignored on every endpoint, not on chat alone (§2, §3, §11) -------------------


EMBEDDING_MODELS = {
    "vllm": "meta-llama/Llama-3.1-8B-Instruct",
    "ollama": "nomic-embed-text:latest",
    "openrouter": "openai/text-embedding-3-small",
}


@pytest.mark.parametrize("provider", ["vllm", "ollama", "openrouter"])
def test_strict_mode_takes_unknown_fields_where_the_provider_ignores_them(
    strict: MockServer, provider: str
) -> None:
    model = MODELS[provider]
    for path, body in (
        ("/completions", {"model": model, "prompt": "Say hi"}),
        ("/embeddings", {"model": EMBEDDING_MODELS[provider], "input": "hello"}),
        ("/chat/completions", {"model": model, "messages": HELLO}),
    ):
        answer = post(strict, provider, path, {**body, "made_up_field": 1})
        assert answer.status_code == 200, (path, answer.text)
    # OpenAI refuses it, on the same server
    refused = post(
        strict,
        "openai",
        "/completions",
        {"model": "gpt-3.5-turbo-instruct", "prompt": "hi", "made_up_field": 1},
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "made_up_field"


def test_openrouters_own_fields_are_taken_on_legacy_completions(strict: MockServer) -> None:
    body = {"model": MODELS["openrouter"], "prompt": "Say hi", "top_k": 5, "min_p": 0.1}
    answer = post(strict, "openrouter", "/completions", body)
    assert answer.status_code == 200, answer.text


def test_every_field_table_is_one_the_profiles_know() -> None:
    assert set(FIELDS) == EVERY_TABLE


# --- Anthropic: one choice, and `stop` of whitespace alone does nothing (§6) ----------------------


@pytest.mark.parametrize("n", [0, 2, 5])
def test_anthropic_refuses_n_other_than_one(server: MockServer, n: int) -> None:
    with sdk(server, "anthropic") as client:
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model=MODELS["anthropic"], messages=HELLO, n=n)  # type: ignore[arg-type]
        answer = client.chat.completions.create(model=MODELS["anthropic"], messages=HELLO, n=1)  # type: ignore[arg-type]
    assert refused.value.body["param"] == "n"  # type: ignore[index]
    assert len(answer.choices) == 1


def _anthropic_text(server: MockServer, stop: Any) -> tuple[str, str]:
    with sdk(server, "anthropic") as client:
        answer = client.chat.completions.create(
            model=MODELS["anthropic"],
            messages=[{"role": "user", "content": "two lines please"}],
            stop=stop,
        )
    choice = answer.choices[0]
    return choice.message.content or "", choice.finish_reason


@PROPERTY
@given(
    blanks=st.lists(st.text(alphabet=" \n\t\r", min_size=1, max_size=4), min_size=1, max_size=3),
    as_string=st.booleans(),
)
def test_anthropic_stop_sequences_of_whitespace_alone_do_not_stop(
    server: MockServer, blanks: list[str], as_string: bool
) -> None:
    stop: Any = blanks[0] if as_string else blanks
    assert _anthropic_text(server, stop) == ("line one\nline two", "stop")


def test_anthropic_other_stop_sequences_still_stop(server: MockServer) -> None:
    assert _anthropic_text(server, ["\n", "two"])[0] == "line one\nline "
    # OpenAI's API stops at whitespace
    openai_text = chat(
        server, "openai", messages=[{"role": "user", "content": "two lines please"}], stop="\n"
    ).json()["choices"][0]["message"]["content"]
    assert openai_text == "line one"


# --- Ollama: a stateless Responses API, and its own words for empty messages (§3) -----------------


def test_ollama_responses_are_not_kept(server: MockServer) -> None:
    with sdk(server, "ollama") as client:
        first = client.responses.create(model=MODELS["ollama"], input="Remember the word plum.")
        assert first.store is False
        # nothing to continue: the field is ignored, as Ollama's JSON binding ignores it
        second = client.responses.create(
            model=MODELS["ollama"], input="Which word?", previous_response_id=first.id
        )
        assert second.previous_response_id is None
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(first.id)
        with pytest.raises(openai.NotFoundError):
            client.conversations.create()
        background = client.responses.create(model=MODELS["ollama"], input="Later", background=True)
        assert background.status == "completed"
    base = server.provider_url("ollama")
    for method, path in (
        ("DELETE", f"/responses/{first.id}"),
        ("POST", f"/responses/{first.id}/cancel"),
        ("GET", f"/responses/{first.id}/input_items"),
        ("POST", "/responses/input_tokens"),
    ):
        answer = httpx.request(method, base + path, headers={"Authorization": f"Bearer {KEY}"})
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"]["type"] == "not_found_error"
    # OpenAI's own Responses API keeps them, on the same server
    with openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0) as client:
        kept = client.responses.create(model="gpt-4o-mini", input="Remember the word plum.")
        assert client.responses.retrieve(kept.id).id == kept.id


def test_ollama_says_empty_messages_its_own_way(server: MockServer) -> None:
    answer = chat(server, "ollama", messages=[])
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "message": "[] is too short - 'messages'",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


# --- OpenRouter: `model` may be left out (§2, "Model ids") ----------------------------------------


def test_openrouter_answers_without_a_model_with_the_account_default(server: MockServer) -> None:
    for path, body in (
        ("/chat/completions", {"messages": HELLO}),
        ("/completions", {"prompt": "Say hi"}),
    ):
        answer = post(server, "openrouter", path, body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "openai/gpt-4o"
    named = post(
        server,
        "openrouter",
        "/chat/completions",
        {"model": "anthropic/claude-sonnet-4", "messages": HELLO},
    )
    assert named.json()["model"] == "anthropic/claude-sonnet-4"
    # OpenAI requires it
    assert post(server, "openai", "/chat/completions", {"messages": HELLO}).status_code == 400


# --- DeepSeek: one 402, named or scripted by status (§10) -----------------------------------------


def test_deepseeks_402_is_one_body_however_it_is_scripted() -> None:
    with MockServer(log_requests=False) as running:
        bodies = []
        for error in ("insufficient_quota", {"status": 402}):
            running.clear_rules()
            running.add_rule({"name": f"broke-{len(bodies)}", "error": error})
            answer = chat(running, "deepseek")
            assert answer.status_code == 402
            bodies.append(answer.json())
    assert (
        bodies[0]
        == bodies[1]
        == {
            "error": {
                "message": "Insufficient Balance",
                "type": "unknown_error",
                "param": None,
                "code": "invalid_request_error",
            }
        }
    )
