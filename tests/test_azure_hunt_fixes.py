"""Azure OpenAI: recording an `AzureOpenAI` app (deployment and query forwarded), whose key
header `--require-api-key` takes (Azure's `api-key`, on Azure's routes only), and what a choice
the content filter stopped reports.

The real SDK (or httpx) against real mockai servers on loopback; the recorder's upstream is a
small aiohttp app that notes the URL each request reached it by.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import conformance
import httpx
import openai
import pytest
import yaml
from aiohttp import web
from cassette_support import LoopbackApp, chat_completion, interactions, recorded_chat
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai import MockServer
from mockai.cassette.record import UpstreamSource
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.profiles.azure import PROFILE as AZURE
from mockai.profiles.hooks import Answer

pytest_plugins = ["pytester"]

AZURE_KEY = "9c1e0a7b3d5f4e2a8b6c0d1e2f3a4b5c"  # Azure keys: 32 hex characters
KEY = "sk-required-0123456789"
VERSION = "2024-10-21"
HELLO = [{"role": "user", "content": "Hello there"}]

# --- 1. recording an AzureOpenAI app -------------------------------------------------------------


class Upstream:
    """A loopback 'Azure resource': answers with the deployment its path names as the model, and
    notes the path and query of every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.app = LoopbackApp({"/{tail:.*}": self.answer})

    async def answer(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, dict(request.query)))
        parts = request.path.split("/")
        model = parts[parts.index("deployments") + 1] if "deployments" in parts else "gpt-4o-mini"
        if request.path.endswith("/embeddings"):
            usage = {"prompt_tokens": 1, "total_tokens": 1}
            vector = {"object": "embedding", "index": 0, "embedding": [0.25, -0.5]}
            return web.json_response(
                {"object": "list", "data": [vector], "model": model, "usage": usage}
            )
        return web.json_response(chat_completion("chatcmpl-az", model, f"from {model}"))

    def base(self, path: str) -> str:
        return f"http://127.0.0.1:{self.app.port}{path}"


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    made = Upstream()
    with made.app:
        yield made


def azure_client(server: MockServer, **options: Any) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=server.base_url,
        api_key=AZURE_KEY,
        api_version=VERSION,
        max_retries=0,
        **options,
    )


def test_an_azure_app_is_recorded_per_deployment_with_its_own_query(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.seen.clear()
    cassette = tmp_path / "azure.yaml"
    # The resource's base; its api-version is older than the client's, which wins.
    base = upstream.base("/openai?api-version=2023-05-15")
    with (
        conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=base
        ) as rec,
        azure_client(rec, default_query={"foo": "bar"}) as app,
    ):
        chat = app.chat.completions.create(model="chat-dep", messages=HELLO)  # type: ignore[arg-type]
        vectors = app.embeddings.create(model="emb-dep", input="hi")
    query = {"api-version": VERSION, "foo": "bar"}
    assert upstream.seen == [
        ("/openai/deployments/chat-dep/chat/completions", query),
        ("/openai/deployments/emb-dep/embeddings", query),
    ]
    assert (chat.model, chat.choices[0].message.content) == ("chat-dep", "from chat-dep")
    assert vectors.model == "emb-dep"
    assert AZURE_KEY not in cassette.read_text()  # (the `api-key` header is never recorded)
    uris = [urlsplit(stored.uri) for stored in interactions(cassette)]
    assert [(uri.path, dict(parse_qsl(uri.query))) for uri in uris] == upstream.seen
    with (
        conformance.checked_server(cassette=str(cassette)) as replayer,
        azure_client(replayer) as c,
    ):
        again = c.chat.completions.create(model="chat-dep", messages=HELLO)  # type: ignore[arg-type]
        replayed = c.embeddings.create(model="emb-dep", input="hi")
    assert again.choices[0].message.content == "from chat-dep"
    assert replayed.data[0].embedding == [0.25, -0.5]
    assert [entry.source for entry in replayer.requests] == ["cassette", "cassette"]


def test_each_request_reaches_the_upstream_with_its_own_query_string(upstream: Upstream) -> None:
    upstream.seen.clear()
    with (
        conformance.checked_server(upstream=upstream.base("/v1")) as proxy,
        openai.OpenAI(base_url=proxy.url, api_key="sk-test", max_retries=0) as client,
    ):
        # The same bytes each time: the third comes from the parse kept for the second.
        for value in ("1", "2", "3"):
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=HELLO,  # type: ignore[arg-type]
                extra_query={"foo": value},
            )
    assert upstream.seen == [("/v1/chat/completions", {"foo": v}) for v in "123"]


_QUERY = st.dictionaries(
    st.sampled_from(["api-version", "foo", "limit", "after"]), st.text("ab1-", max_size=4)
)
# Deployment names, odd characters included (a name made of dots alone is a path's dot segment,
# which no router hands on as a name).
_DEPLOYMENT = st.text(min_size=1, max_size=12).filter(lambda name: name.strip("."))


@settings(max_examples=80, deadline=None)
@given(
    base_path=st.sampled_from(["/openai", "/openai/", "/v1", "/openai/deployments/fixed", ""]),
    base_query=_QUERY,
    query=_QUERY,
    deployment=st.none() | _DEPLOYMENT,
    route=st.sampled_from(["/chat/completions", "/embeddings", "/files/file-a b/content"]),
)
def test_the_upstream_url_keeps_the_deployment_and_merges_the_query(
    base_path: str,
    base_query: dict[str, str],
    query: dict[str, str],
    deployment: str | None,
    route: str,
) -> None:
    base = httpx.URL("http://up.example" + base_path, params=base_query)
    url = UpstreamSource(str(base)).url_for(route, query, deployment)
    assert dict(url.query) == {**base_query, **query}  # the request's own values win
    stem = base_path.rstrip("/")
    if deployment is not None and stem.endswith("/openai"):
        assert url.raw_path.startswith(stem + "/deployments/")
        # One path segment, whatever the name holds; the route after it.
        name, _, rest = url.raw_path[len(stem + "/deployments/") :].partition("/")
        assert unquote(name) == deployment and unquote("/" + rest) == route
    else:
        assert url.path == stem + route


def _kept_objects(app: openai.AzureOpenAI) -> list[Any]:
    """What an Azure app asks of what the resource keeps: a file, a conversation."""
    made = app.files.create(file=("batch.jsonl", b"{}\n"), purpose="batch")
    conversation = app.conversations.create(metadata={"k": "v"})
    return [
        made.id,
        app.files.retrieve(made.id).model_dump(),
        app.conversations.retrieve(conversation.id).model_dump(),
        app.conversations.items.list(conversation.id).model_dump(),
    ]


def test_an_azure_recording_of_files_and_conversations_replays(tmp_path: Path) -> None:
    # The resource's base holds these routes (`/openai/files/file-abc`): the replay had compared
    # that path with the route the same request has at mockai (`/files/file-abc`), so none of
    # them matched, and mockai's own stores answered (a file retrieved was a 404).
    cassette = tmp_path / "azure-kept.yaml"
    with (
        conformance.checked_server() as resource,
        conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=resource.base_url + "/openai"
        ) as rec,
        azure_client(rec) as app,
    ):
        recorded = _kept_objects(app)
    paths = [urlsplit(stored.uri).path for stored in interactions(cassette)]
    assert all(path.startswith("/openai/") for path in paths), paths
    with (
        conformance.checked_server(cassette=str(cassette), seed=11) as replayer,
        azure_client(replayer) as app,
    ):
        assert _kept_objects(app) == recorded
        assert {entry.source for entry in replayer.requests} == {"cassette"}


def _from_azure(deployment: str, model: str, content: str) -> dict[str, Any]:
    """A vcrpy recording of Azure itself: the app's `model` in the body, its deployment in the
    path (what `AzureOpenAI(azure_deployment=...)` sends, and LangChain's `AzureChatOpenAI`)."""
    recorded = recorded_chat(
        {"model": model, "messages": HELLO}, chat_completion("chatcmpl-az", model, content)
    )
    recorded["request"]["uri"] = (
        f"https://res.openai.azure.com/openai/deployments/{deployment}/chat/completions"
        f"?api-version={VERSION}"
    )
    return recorded


def test_an_azure_recording_whose_body_names_another_model_replays(tmp_path: Path) -> None:
    # Azure answers the deployment the path names, whatever model the body has, and mockai's
    # deployment routes match the request so: a recording of Azure whose body has the model the
    # app named matched nothing (the no-match 400: "model: recorded 'gpt-4o', this request
    # 'prod'"), though the app sent the same request again.
    cassette = tmp_path / "azure-vcr.yaml"
    recordings = [_from_azure("prod", "gpt-4o", "from prod"), _from_azure("mini", "gpt-4o", "mini")]
    cassette.write_text(yaml.safe_dump({"version": 1, "interactions": recordings}))
    with conformance.checked_server(cassette=str(cassette)) as replayer:
        for deployment, content in (("mini", "mini"), ("prod", "from prod")):
            with azure_client(replayer, azure_deployment=deployment) as app:
                answer = app.chat.completions.create(model="gpt-4o", messages=HELLO)  # type: ignore[arg-type]
            assert answer.choices[0].message.content == content
    assert [entry.source for entry in replayer.requests] == ["cassette", "cassette"]


# --- 2. the `api-key` header is Azure's --------------------------------------------------------


@pytest.fixture(scope="module")
def keyed() -> Iterator[MockServer]:
    # (not conformance-checked: other providers answer, and refuse, in their own shapes)
    with MockServer(require_api_key=KEY, fallback="generate") as server:
        yield server


def post(server: MockServer, path: str, headers: dict[str, str]) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "messages": HELLO}
    return httpx.post(server.base_url + path, json=body, headers=headers, timeout=10)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chat/completions",
        "/groq/openai/v1/chat/completions",
        "/mistral/v1/chat/completions",
        "/openrouter/api/v1/chat/completions",
    ],
)
def test_the_api_key_header_opens_no_other_providers_routes(keyed: MockServer, path: str) -> None:
    refused = post(keyed, path, {"api-key": KEY})
    assert refused.status_code == 401, refused.text
    assert post(keyed, path, {"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_azure_clients_still_send_their_key_as_api_key(keyed: MockServer) -> None:
    deployment = f"/openai/deployments/prod/chat/completions?api-version={VERSION}"
    for path in (deployment, "/openai/v1/chat/completions", "/azure/openai/v1/chat/completions"):
        answered = post(keyed, path, {"api-key": KEY})
        assert answered.status_code == 200, (path, answered.text)
    with openai.AzureOpenAI(
        azure_endpoint=keyed.base_url, api_key=KEY, api_version=VERSION, max_retries=0
    ) as client:
        answer = client.chat.completions.create(model="prod", messages=HELLO)  # type: ignore[arg-type]
    assert answer.model == "prod"


# --- 3. a choice the content filter stopped ------------------------------------------------------

FILTERED = {
    "hate": {"filtered": True, "severity": "high"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}


def test_a_content_filter_finish_reports_a_filtered_category(keyed: MockServer) -> None:
    keyed.add_rule(
        {
            "match": {"user": "filter me"},
            "reply": {"content": "", "finish_reason": "content_filter"},
        }
    )
    asked = [{"role": "user", "content": "filter me"}]
    with openai.AzureOpenAI(
        azure_endpoint=keyed.base_url, api_key=KEY, api_version=VERSION, max_retries=0
    ) as client:
        whole = client.chat.completions.create(model="prod", messages=asked)  # type: ignore[arg-type]
        chunks = list(client.chat.completions.create(model="prod", messages=asked, stream=True))  # type: ignore[arg-type]
        plain = client.chat.completions.create(model="prod", messages=HELLO)  # type: ignore[arg-type]
    choice = whole.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.model_extra == {"content_filter_results": FILTERED}
    (finish,) = [c.choices[0] for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish.finish_reason == "content_filter"
    assert (finish.model_extra or {})["content_filter_results"] == FILTERED
    results = (plain.choices[0].model_extra or {})["content_filter_results"]
    assert not any(category["filtered"] for category in results.values())


_FINISHES = st.sampled_from(["stop", "length", "tool_calls", "content_filter"])


@settings(max_examples=50, deadline=None)
@given(finishes=st.lists(_FINISHES, min_size=1, max_size=5))
def test_only_content_filter_choices_report_a_filtered_category(finishes: list[str]) -> None:
    body: dict[str, Any] = {
        "choices": [{"index": i, "finish_reason": reason} for i, reason in enumerate(finishes)]
    }
    exchange = Exchange(endpoint=Endpoint.CHAT, model="prod", body={}, headers={})
    assert AZURE.chat is not None
    AZURE.chat.body(body, Answer(exchange, b"key"))
    for choice, reason in zip(body["choices"], finishes, strict=True):
        results = choice["content_filter_results"]
        filtered = [name for name, category in results.items() if category["filtered"]]
        assert filtered == (["hate"] if reason == "content_filter" else [])
        assert all(results[name]["severity"] != "safe" for name in filtered)


# --- 4. Azure's 429 ------------------------------------------------------------------------------


def _message(error: openai.APIStatusError) -> str:
    assert isinstance(error.body, dict)
    return str(error.body["message"])


def test_a_rate_limit_is_said_in_azures_words() -> None:
    # Azure's 429 names the operation and the api-version asked for, and the wait in seconds
    # (providers.md §13); mockai said OpenAI's "Rate limit reached for prod in organization
    # org-mockai ... Visit https://platform.openai.com/account/rate-limits".
    with (
        MockServer(limits="prod:rpm=1") as server,
        openai.AzureOpenAI(
            azure_endpoint=server.base_url,
            api_key=AZURE_KEY,
            api_version="2024-06-01",
            max_retries=0,
        ) as app,
    ):
        app.chat.completions.create(model="prod", messages=HELLO)  # type: ignore[arg-type]
        with pytest.raises(openai.RateLimitError) as spent:
            app.chat.completions.create(model="prod", messages=HELLO)  # type: ignore[arg-type]
        with pytest.raises(openai.RateLimitError) as faulted:
            app.embeddings.create(
                model="emb", input="hi", extra_headers={"x-mockai-fault": "rate_limit"}
            )
    wait = spent.value.response.headers["retry-after"]
    said, faulted_said = _message(spent.value), _message(faulted.value)
    assert said == (
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
        "2024-06-01 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please "
        f"retry after {wait} seconds. Please go here: https://aka.ms/oai/quotaincrease if you "
        "would like to further increase the default rate limit."
    )
    assert faulted_said.startswith(
        "Requests to the Embeddings_Create Operation under Azure OpenAI API version 2024-06-01 "
    )
    assert "Please retry after 1 seconds." in faulted_said
    assert spent.value.code == faulted.value.code == "rate_limit_exceeded"


# --- 5. Azure's content-filter 400 ---------------------------------------------------------------


def test_the_safety_refusal_of_a_prompt_is_azures_content_filter_400(keyed: MockServer) -> None:
    # Azure refuses a prompt its filters stop with a 400 `content_filter` whose `innererror`
    # names the category (providers.md §13); mockai answered OpenAI's image refusal
    # (`content_policy_violation`, no `innererror`), which an Azure chat never sends.
    keyed.add_rule({"match": {"user": "stop this prompt"}, "error": "content_policy"})
    asked = [{"role": "user", "content": "stop this prompt"}]
    with (
        openai.AzureOpenAI(
            azure_endpoint=keyed.base_url, api_key=KEY, api_version=VERSION, max_retries=0
        ) as client,
        pytest.raises(openai.BadRequestError) as refused,
    ):
        client.chat.completions.create(model="prod", messages=asked)  # type: ignore[arg-type]
    assert refused.value.code == "content_filter"
    assert refused.value.param == "prompt"
    assert isinstance(refused.value.body, dict)
    assert _message(refused.value).startswith(
        "The response was filtered due to the prompt triggering Azure OpenAI's content "
        "management policy."
    )
    inner = refused.value.body["innererror"]
    assert inner["code"] == "ResponsibleAIPolicyViolation"
    assert inner["content_filter_result"] == {
        **FILTERED,
        "jailbreak": {"filtered": False, "detected": False},
    }
    # OpenAI's own route keeps OpenAI's refusal.
    openai_refused = httpx.post(
        keyed.url + "/chat/completions",
        json={"model": "gpt-4o-mini", "messages": asked},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    assert openai_refused.status_code == 400
    assert openai_refused.json()["error"]["code"] == "content_policy_violation"


# --- 6. the pytest fixture and an Azure client built from the environment ------------------------


def test_an_azure_client_built_from_the_environment_talks_to_the_tests_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `AzureOpenAI()` reads AZURE_OPENAI_ENDPOINT (never OPENAI_BASE_URL): set in the user's
    # shell or CI, an Azure client built in the code under test called their real resource with
    # their real AZURE_OPENAI_API_KEY while the fixture ran. (Here nothing listens there.)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "the-users-real-azure-key")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_user="""
        import os, openai

        def test_app_code(mockai):
            mockai.add_rule({"match": {"user": "hi"}, "reply": "hello"})
            with openai.AzureOpenAI(api_version="2024-10-21", max_retries=0, timeout=5) as app:
                reply = app.chat.completions.create(
                    model="prod", messages=[{"role": "user", "content": "hi"}]
                )
            assert reply.choices[0].message.content == "hello"
            assert os.environ["AZURE_OPENAI_API_KEY"] != "the-users-real-azure-key"

        def test_after_it_the_users_values_are_back():
            assert os.environ["AZURE_OPENAI_ENDPOINT"] == "http://127.0.0.1:9"
            assert os.environ["AZURE_OPENAI_API_KEY"] == "the-users-real-azure-key"
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
