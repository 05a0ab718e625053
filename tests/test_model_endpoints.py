"""A model answers only on the endpoints it serves, as the API's 404 says (the openai profile).

A chat model sent to the legacy `/v1/completions`, or a legacy completion model sent to chat,
is the API's 404 with its own words (as apps met them: github.com/RomanHotsiy/commitgpt/issues/43,
hegelai/prompttools/issues/115, Chanzhaoyu/chatgpt-web/issues/1428). mockai answered both, so an
app's wrong endpoint passed its tests and failed in production. A name the catalog can only
guess from (`my-model`) is answered wherever it is sent: mockai cannot know what it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk import sdk

from mockai import MockServer
from mockai.catalog import BUILTIN

CHAT_MODELS = [info.id for info in BUILTIN if info.kind == "chat"]
COMPLETION_MODELS = [
    *(info.id for info in BUILTIN if info.kind == "completion"),
    "davinci-002",
    "babbage-002",
]
CHAT_ON_COMPLETIONS = (
    "This is a chat model and not supported in the v1/completions endpoint. "
    "Did you mean to use v1/chat/completions?"
)
COMPLETION_ON_CHAT = (
    "This is not a chat model and thus not supported in the v1/chat/completions endpoint. "
    "Did you mean to use v1/completions?"
)


@pytest.fixture(scope="module")
def client(lenient: MockServer) -> Iterator[openai.OpenAI]:
    """The SDK on conftest's module server (conformance-checked, the embedded defaults)."""
    with sdk(lenient) as built:
        yield built


def snapshot_of(model: str) -> st.SearchStrategy[str]:
    """The model, a dated snapshot of it, or a fine-tune of it: all the same kind."""
    return st.sampled_from(
        [model, f"{model}-2025-01-01", f"ft:{model}:acme::abc123", f"ft:{model}:org:name:x9"]
    )


@settings(max_examples=40, deadline=None)
@given(model=st.sampled_from(CHAT_MODELS).flatmap(snapshot_of))
def test_a_chat_model_on_legacy_completions_is_the_apis_404(
    client: openai.OpenAI, model: str
) -> None:
    with pytest.raises(openai.NotFoundError) as refused:
        client.completions.create(model=model, prompt="Say hi")
    assert refused.value.body == {
        "message": CHAT_ON_COMPLETIONS,
        "type": "invalid_request_error",
        "param": "model",
        "code": None,
    }
    assert client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hi"}]
    ).choices


@settings(max_examples=20, deadline=None)
@given(model=st.sampled_from(COMPLETION_MODELS))
def test_a_completion_model_on_chat_is_the_apis_404(client: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
    assert refused.value.body == {
        "message": COMPLETION_ON_CHAT,
        "type": "invalid_request_error",
        "param": "model",
        "code": None,
    }
    assert client.completions.create(model=model, prompt="Say hi").choices[0].text


NOT_EMBEDDING_MODELS = [info.id for info in BUILTIN if info.kind != "embedding"]


@settings(max_examples=30, deadline=None)
@given(model=st.sampled_from(NOT_EMBEDDING_MODELS).flatmap(snapshot_of))
def test_a_model_that_does_not_embed_on_embeddings_is_the_apis_403(
    client: openai.OpenAI, model: str
) -> None:
    """A RAG app configured with gpt-4o as its embedding model meets the API's 403, with no
    param and no code (infiniflow/ragflow#1835); mockai answered it with vectors."""
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.embeddings.create(model=model, input="Say hi")
    assert refused.value.body == {
        "message": "You are not allowed to generate embeddings from this model",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    guessed = client.embeddings.create(model="my-embedder", input="Say hi")
    assert guessed.data[0].embedding


@pytest.mark.parametrize("model", ["whisper-1", "tts-1", "dall-e-3", "gpt-image-1"])
def test_an_audio_or_image_model_on_embeddings_is_the_apis_403_too(
    client: openai.OpenAI, model: str
) -> None:
    """The chat catalog does not list OpenAI's media models (their endpoints check them), so
    mockai answered an embeddings request naming one with vectors."""
    with pytest.raises(openai.PermissionDeniedError, match="not allowed to generate embeddings"):
        client.embeddings.create(model=model, input="Say hi")


@settings(max_examples=30, deadline=None)
@given(
    name=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True).filter(
        lambda name: (
            not name.startswith(("gpt-", "o1", "o3", "o4", "chatgpt", "text-", "davinci"))
            and "embed" not in name
            and "moderation" not in name
        )
    )
)
def test_a_name_the_catalog_only_guesses_from_is_answered_anywhere(
    client: openai.OpenAI, name: str
) -> None:
    assert client.completions.create(model=name, prompt="Say hi").choices
    assert client.chat.completions.create(
        model=name, messages=[{"role": "user", "content": "Hi"}]
    ).choices


def test_other_providers_serve_their_models_on_their_completions() -> None:
    """The 404 is OpenAI's: vLLM, Together and Fireworks serve chat models on `/completions`."""
    with MockServer(log_requests=False) as running:
        body = {"model": "gpt-4o-mini", "prompt": "Say hi"}
        assert httpx.post(running.url + "/completions", json=body).status_code == 404
        answered = httpx.post(running.url_for("/vllm/v1/completions"), json=body, timeout=10)
        assert answered.status_code == 200, answered.text


def test_a_cassette_or_an_upstream_answers_for_its_own_models(tmp_path: Path) -> None:
    """Recorded through the openai profile from an OpenAI-compatible upstream that serves chat
    models on `/completions` (vLLM, a LiteLLM proxy), the answer is the upstream's, and the
    cassette replays it: the catalog's refusals are OpenAI's, left to a cassette or upstream."""
    cassette = tmp_path / "vllm.yaml"
    body = {"model": "gpt-4o-mini", "prompt": "Say hi"}
    reasoning = {"model": "o3", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0}
    with (
        MockServer(log_requests=False) as upstream,
        MockServer(
            log_requests=False,
            cassette=str(cassette),
            record_mode="once",
            upstream=upstream.url_for("/vllm/v1"),
        ) as recorder,
    ):
        recorded = httpx.post(recorder.url + "/completions", json=body, timeout=10)
        assert recorded.status_code == 200, recorded.text
        thought = httpx.post(recorder.url + "/chat/completions", json=reasoning, timeout=10)
        assert thought.status_code == 200, thought.text
    with MockServer(log_requests=False, cassette=str(cassette)) as replaying:
        replayed = httpx.post(replaying.url + "/completions", json=body, timeout=10)
        assert replayed.status_code == 200 and replayed.json() == recorded.json()
        again = httpx.post(replaying.url + "/chat/completions", json=reasoning, timeout=10)
        assert again.status_code == 200 and again.json() == thought.json()


@pytest.mark.parametrize(
    "model", ["text-moderation-latest", "text-moderation-stable", "text-moderation-007"]
)
def test_a_shut_down_moderation_model_is_the_apis_400(client: openai.OpenAI, model: str) -> None:
    """The text-moderation models were shut down on 2025-10-27: the API refuses them in these
    words (langgenius/dify#28117), and no longer lists them. mockai answered them."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.moderations.create(model=model, input="I will kill you")
    assert refused.value.body == {
        "message": "please request omni-moderation-latest",
        "type": "invalid_request_error",
        "param": "model",
        "code": None,
    }
    assert model not in {listed.id for listed in client.models.list()}
    assert client.moderations.create(input="hi").model == "omni-moderation-latest"
    assert client.moderations.create(model="omni-moderation-2024-09-26", input="hi").results
