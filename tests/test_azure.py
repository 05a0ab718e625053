"""Azure OpenAI clients against mockai: `AzureOpenAI` (deployment routes, `api-key`, api-version)
and the Azure v1 API (`/openai/v1`), with the real SDK."""

from __future__ import annotations

from collections.abc import Iterator

import conformance
import openai
import pytest

from mockai import MockServer

KEY = "azure-test-key"
VERSION = "2024-10-21"
HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture
def server() -> Iterator[MockServer]:
    with conformance.checked_server(require_api_key=KEY) as running:
        yield running


@pytest.fixture
def azure(server: MockServer) -> Iterator[openai.AzureOpenAI]:
    with openai.AzureOpenAI(
        azure_endpoint=server.base_url, api_key=KEY, api_version=VERSION, max_retries=0
    ) as client:
        yield client


def test_chat_embeddings_and_responses_on_deployments(
    server: MockServer, azure: openai.AzureOpenAI
) -> None:
    answer = azure.chat.completions.create(model="prod-gpt4o", messages=HELLO)  # type: ignore[arg-type]
    assert answer.model == "prod-gpt4o" and answer.choices[0].message.content
    streamed = azure.chat.completions.create(model="prod-gpt4o", messages=HELLO, stream=True)  # type: ignore[arg-type]
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == answer.choices[0].message.content  # the same answer, streamed
    vectors = azure.embeddings.create(model="prod-embeddings", input=["a", "b"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) > 0
    response = azure.responses.create(model="gpt-4o-mini", input="Hi")
    assert response.output_text
    paths = [(entry.path, entry.status) for entry in server.requests]
    assert paths == [
        ("/openai/deployments/prod-gpt4o/chat/completions", 200),
        ("/openai/deployments/prod-gpt4o/chat/completions", 200),
        ("/openai/deployments/prod-embeddings/embeddings", 200),
        ("/openai/responses", 200),
    ]
    assert all(entry.headers["api-key"] == "<redacted>" for entry in server.requests)  # no key kept


def test_the_deployment_is_the_model_and_rules_match_it(server: MockServer) -> None:
    server.add_rule(
        {"name": "prod", "match": {"model": "prod-*"}, "reply": {"content": "from prod"}}
    )
    with openai.AzureOpenAI(
        azure_endpoint=server.base_url,
        azure_deployment="prod-east",
        api_key=KEY,
        api_version=VERSION,
        max_retries=0,
    ) as client:
        # Azure ignores the body's model: the deployment in the path decides.
        answer = client.chat.completions.create(model="gpt-4o", messages=HELLO)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "from prod" and answer.model == "prod-east"
    assert server.requests[-1].rule == "prod"


def test_the_api_key_header_is_checked(server: MockServer) -> None:
    with (
        openai.AzureOpenAI(
            azure_endpoint=server.base_url, api_key="wrong", api_version=VERSION, max_retries=0
        ) as wrong,
        pytest.raises(openai.AuthenticationError) as refused,
    ):
        wrong.chat.completions.create(model="d", messages=HELLO)  # type: ignore[arg-type]
    assert refused.value.code == "invalid_api_key"


def test_the_azure_v1_api(server: MockServer) -> None:
    with openai.OpenAI(base_url=server.base_url + "/openai/v1", api_key=KEY) as client:
        answer = client.chat.completions.create(model="gpt-4o", messages=HELLO)  # type: ignore[arg-type]
        models = client.models.list()
    assert answer.model == "gpt-4o" and answer.choices[0].message.content
    assert any(model.id == "gpt-4o" for model in models)
    assert server.requests[0].path == "/openai/v1/chat/completions"


@pytest.mark.asyncio
async def test_async_azure_client(server: MockServer) -> None:
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=server.base_url, api_key=KEY, api_version=VERSION, max_retries=0
    ) as client:
        answer = await client.chat.completions.create(model="dep", messages=HELLO)  # type: ignore[arg-type]
    assert answer.model == "dep" and answer.choices[0].message.content


def test_media_on_deployments(server: MockServer, azure: openai.AzureOpenAI) -> None:
    picture = azure.images.generate(model="prod-images", prompt="a cat", size="512x512")
    assert picture.data[0].url is not None
    speech = azure.audio.speech.create(model="prod-tts", voice="alloy", input="Hello.").read()
    text = azure.audio.transcriptions.create(model="prod-whisper", file=("a.mp3", speech))
    assert text.text
    line = (
        b'{"custom_id": "a", "method": "POST", "url": "/chat/completions",'
        b' "body": {"model": "prod-gpt4o", "messages": [{"role": "user", "content": "hi"}]}}'
    )
    upload = azure.files.create(file=("in.jsonl", line), purpose="batch")
    batch = azure.batches.create(
        input_file_id=upload.id,
        endpoint="/chat/completions",  # type: ignore[arg-type]  # Azure's spelling
        completion_window="24h",
    )
    while batch.status not in ("completed", "failed"):
        batch = azure.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.request_counts.completed == 1
    paths = [entry.path for entry in server.requests[:3]]
    assert paths == [
        "/openai/deployments/prod-images/images/generations",
        "/openai/deployments/prod-tts/audio/speech",
        "/openai/deployments/prod-whisper/audio/transcriptions",
    ]
    assert server.requests[0].model == "prod-images"
