"""The model catalog: listing, retrieving odd ids, and restricting to a configured list."""

from __future__ import annotations

import openai
import pytest
from conformance import checked_server

from mockai import MockServer


def test_list_models(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    ids = {m.id for m in models}
    assert {"gpt-4o-mini", "text-embedding-3-small", "omni-moderation-latest"} <= ids
    assert all(m.object == "model" and m.owned_by and m.created > 0 for m in models)


@pytest.mark.parametrize(
    "model_id",
    [
        "gpt-4o-mini",
        "meta-llama/llama-3.3-70b-instruct:free",
        "ft:gpt-4o-mini:org:x:id",
        "my model",
    ],
)
def test_retrieve_any_id(client: openai.OpenAI, model_id: str) -> None:
    model = client.models.retrieve(model_id)
    assert model.id == model_id and model.object == "model"


def test_unencoded_slash_in_path(server: MockServer) -> None:
    import httpx

    response = httpx.get(server.url + "/models/meta-llama/llama-3.3-70b-instruct:free")
    assert response.status_code == 200
    assert response.json()["id"] == "meta-llama/llama-3.3-70b-instruct:free"


def test_root_paths_work_without_v1(server: MockServer) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    reply = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content


def test_delete_fine_tuned_model(client: openai.OpenAI) -> None:
    deleted = client.models.delete("ft:gpt-4o-mini:org:x:id")
    assert deleted.deleted is True and deleted.id == "ft:gpt-4o-mini:org:x:id"


def test_configured_models_restrict_everything() -> None:
    with checked_server(models=("gpt-4o-mini", "text-embedding-3-small")) as server:
        client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
        assert [m.id for m in client.models.list()] == ["gpt-4o-mini", "text-embedding-3-small"]
        assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
        calls = [
            lambda: client.models.retrieve("gpt-4o"),
            lambda: client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "x"}]
            ),
            lambda: client.completions.create(model="gpt-4o", prompt="x"),
            lambda: client.embeddings.create(model="text-embedding-3-large", input="x"),
            lambda: client.responses.create(model="gpt-4o", input="x"),
            lambda: client.moderations.create(model="omni-moderation-latest", input="x"),
        ]
        for call in calls:
            with pytest.raises(openai.NotFoundError) as caught:
                call()
            assert caught.value.code == "model_not_found"
            assert "does not exist or you do not have access to it" in caught.value.message


@pytest.mark.asyncio
async def test_async_models(aclient: openai.AsyncOpenAI) -> None:
    listed = [m.id async for m in aclient.models.list()]
    assert "gpt-4o-mini" in listed
    assert (await aclient.models.retrieve("meta-llama/llama-3.3-70b-instruct:free")).id.endswith(
        ":free"
    )


def test_deleting_a_base_model_is_refused_and_it_stays(client: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.models.delete("gpt-4o-mini")
    assert refused.value.status_code == 403
    assert "gpt-4o-mini" in refused.value.message
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    assert "gpt-4o-mini" in {m.id for m in client.models.list()}


def test_a_deleted_fine_tuned_model_is_gone(client: openai.OpenAI) -> None:
    model = "ft:gpt-4o-mini:org:x:id"
    assert client.models.retrieve(model).id == model
    assert client.models.delete(model).deleted is True
    with pytest.raises(openai.NotFoundError) as gone:
        client.models.retrieve(model)
    assert gone.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.NotFoundError):
        client.models.delete(model)  # deleting it again: it no longer exists


def test_a_listed_fine_tuned_model_leaves_the_list() -> None:
    model = "ft:gpt-4o-mini:org:x:id"
    with checked_server(models=("gpt-4o-mini", model)) as server:
        client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
        assert [m.id for m in client.models.list()] == ["gpt-4o-mini", model]
        assert client.models.delete(model).deleted is True
        assert [m.id for m in client.models.list()] == ["gpt-4o-mini"]
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve(model)
        server.reset()  # a reset forgets what happened, deletions included
        assert client.models.retrieve(model).id == model
