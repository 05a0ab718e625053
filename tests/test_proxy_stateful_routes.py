"""A recording proxy (and a plain passthrough) forwards the stored-state routes to its upstream
and records them; a replay of that cassette answers them from the recordings.

Conversations, stored responses (retrieve, input items, cancel, delete) and stored chat
completions are the upstream's: it made them. Before, the proxy answered these routes from its
own empty stores: a conversation created through it was the proxy's (the upstream answered 404 to
the responses naming it), and retrieving a background response through it was a 404.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import pytest
from aiohttp import web
from cassette_support import LoopbackApp, interactions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk import sdk
from strategies import examples

from mockai import MockServer

MODEL = "gpt-4o-mini"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
POLLS = 5  # a background run is done after two retrievals upstream: bounded, never timed


def agent_flow(client: openai.OpenAI) -> dict[str, Any]:
    """What the OpenAI Agents SDK does with a conversation session: create the conversation,
    a turn calling a function tool, the tool's result as the next turn, then list the items."""
    conversation = client.conversations.create(metadata={"session": "s1"})
    first = client.responses.create(
        model=MODEL,
        input="What is the weather in Paris?",
        conversation=conversation.id,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
    )
    call = next(item for item in first.output if item.type == "function_call")
    second = client.responses.create(
        model=MODEL,
        conversation=conversation.id,
        tools=[WEATHER],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C"}],
    )
    listed = client.conversations.items.list(conversation.id, order="asc")
    return {
        "conversation": client.conversations.retrieve(conversation.id).model_dump(),
        "first": first.id,
        "call": call.call_id,
        "second": (second.id, second.status, second.output_text),
        "items": [(item.type, getattr(item, "call_id", None)) for item in listed.data],
        "deleted": client.conversations.delete(conversation.id).deleted,
    }


def background_flow(client: openai.OpenAI) -> dict[str, Any]:
    """A background response polled by retrieve until it is done, its input items, and a
    stored response deleted."""
    started = client.responses.create(model=MODEL, input="hello", background=True)
    polled = [started.status]
    for _ in range(POLLS):
        got = client.responses.retrieve(started.id)
        polled.append(got.status)
        if got.status == "completed":
            break
    inputs = client.responses.input_items.list(started.id)
    return {
        "id": started.id,
        "polled": polled,
        "text": got.output_text,
        "inputs": [item.type for item in inputs.data],
        "deleted": client.responses.delete(started.id) is None,
    }


def completions_flow(client: openai.OpenAI) -> dict[str, Any]:
    """A chat completion kept with `store: true`: retrieved, its messages, the list, updated,
    deleted."""
    made = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], store=True
    )
    got = client.chat.completions.retrieve(made.id)
    messages = client.chat.completions.messages.list(made.id)
    listed = client.chat.completions.list()
    updated = client.chat.completions.update(made.id, metadata={"k": "v"})
    return {
        "id": made.id,
        "retrieved": got.choices[0].message.content,
        "messages": [m.content for m in messages.data],
        "listed": [c.id for c in listed.data],
        "metadata": updated.metadata,
        "deleted": client.chat.completions.delete(made.id).deleted,
    }


FLOWS = (agent_flow, background_flow, completions_flow)


def _run_all(client: openai.OpenAI) -> list[dict[str, Any]]:
    return [flow(client) for flow in FLOWS]


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[Path, list[dict[str, Any]], list[tuple[str, str]]]]:
    """The three flows recorded through mockai from a (conformance-checked) mockai upstream:
    the cassette, what the client got, and what the upstream was asked."""
    cassette = tmp_path / "state.yaml"
    with (
        conformance.checked_server() as upstream,
        MockServer(
            cassette=str(cassette), record_mode="once", upstream=upstream.url, log_requests=False
        ) as proxy,
        sdk(proxy) as client,
    ):
        answers = _run_all(client)
        asked = [(entry.method, entry.path) for entry in upstream.requests]
        assert {entry.source for entry in proxy.requests} == {"upstream"}
    yield cassette, answers, asked


def test_the_proxy_forwards_every_stored_state_route(
    recorded: tuple[Path, list[dict[str, Any]], list[tuple[str, str]]],
) -> None:
    _, answers, asked = recorded
    agent, background, completions = answers
    conversation = agent["conversation"]["id"]
    # The conversation is the upstream's: the tool-result turn went through in it.
    assert ("POST", "/v1/conversations") in asked
    assert ("GET", f"/v1/conversations/{conversation}/items") in asked
    assert ("DELETE", f"/v1/conversations/{conversation}") in asked
    assert agent["conversation"]["metadata"] == {"session": "s1"}
    assert agent["second"][1] == "completed"
    assert agent["items"][:3] == [
        ("message", None),
        ("function_call", agent["call"]),
        ("function_call_output", agent["call"]),
    ]
    assert agent["deleted"] is True
    # The background run is retrieved from the upstream until done.
    assert background["polled"] == ["queued", "in_progress", "completed"]
    assert background["text"]
    assert background["inputs"] == ["message"]
    assert ("GET", f"/v1/responses/{background['id']}/input_items") in asked
    assert ("DELETE", f"/v1/responses/{background['id']}") in asked
    # The stored chat completion too.
    made = completions["id"]
    assert completions["retrieved"] and completions["messages"] == ["hi"]
    assert completions["listed"] == [made]
    assert completions["metadata"] == {"k": "v"}
    assert completions["deleted"] is True
    for route in (f"/v1/chat/completions/{made}", f"/v1/chat/completions/{made}/messages"):
        assert ("GET", route) in asked
    assert ("GET", "/v1/chat/completions") in asked


def test_the_recorded_stored_state_routes_replay_the_same(
    recorded: tuple[Path, list[dict[str, Any]], list[tuple[str, str]]],
) -> None:
    cassette, answers, asked = recorded
    text = cassette.read_text()
    assert "/v1/conversations" in text and "sk-test" not in text  # recorded, key scrubbed
    with MockServer(cassette=str(cassette), log_requests=False) as server, sdk(server) as client:
        assert _run_all(client) == answers
        sources = [entry.source for entry in server.requests]
    assert sources == ["cassette"] * len(asked)


def test_a_strict_replay_takes_the_recorded_conversation_ids(
    recorded: tuple[Path, list[dict[str, Any]], list[tuple[str, str]]],
) -> None:
    # The recorded conversation is not in the replaying server's store: like an upstream's,
    # its id is not refused as unknown under --strict-requests.
    cassette, answers, _ = recorded
    with (
        MockServer(cassette=str(cassette), strict_requests=True, log_requests=False) as server,
        sdk(server) as client,
    ):
        assert agent_flow(client) == answers[0]


def test_a_passthrough_forwards_them_without_recording() -> None:
    with (
        MockServer(log_requests=False) as upstream,
        MockServer(upstream=upstream.url, log_requests=False) as proxy,
        sdk(proxy) as client,
    ):
        agent = agent_flow(client)
        assert agent["second"][1] == "completed"
        assert upstream.requests[0].path == "/v1/conversations"
        assert {entry.source for entry in proxy.requests} == {"upstream"}


def test_a_replay_answers_unrecorded_stored_state_requests_from_its_stores(
    recorded: tuple[Path, list[dict[str, Any]], list[tuple[str, str]]],
) -> None:
    cassette = recorded[0]
    # (Another seed: the local store's first conversation id is not the recorded one.)
    with (
        MockServer(cassette=str(cassette), seed=7, log_requests=False) as server,
        sdk(server) as client,
    ):
        # Not recorded (the body matcher leaves `metadata` out: the items tell it apart).
        made = client.conversations.create(
            items=[{"type": "message", "role": "user", "content": "other"}],
            metadata={"session": "other"},
        )
        assert client.conversations.retrieve(made.id).metadata == {"session": "other"}
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve("resp_never_recorded")
        assert [entry.source for entry in server.requests] == ["static"] * 3


@pytest.fixture(scope="module")
def passthrough() -> Iterator[tuple[str, str]]:
    with (
        MockServer(log_requests=False) as upstream,
        MockServer(upstream=upstream.url, log_requests=False) as proxy,
    ):
        yield upstream.url, proxy.url


ID = st.text(string.ascii_letters + string.digits + "_-.~", min_size=1, max_size=40).filter(
    lambda text: text not in (".", "..")
)
METADATA = st.dictionaries(
    st.text(min_size=1, max_size=64), st.text(max_size=512), min_size=1, max_size=16
)


@settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metadata=METADATA, item=ID, limit=st.integers(min_value=1, max_value=100))
def test_a_stored_state_request_reaches_the_upstream_as_sent(
    passthrough: tuple[str, str], metadata: dict[str, str], item: str, limit: int
) -> None:
    upstream, proxy = passthrough
    made = httpx.post(proxy + "/conversations", json={"metadata": metadata}, timeout=10)
    assert made.status_code == 200, made.text
    route = f"/conversations/{made.json()['id']}"
    assert httpx.get(upstream + route, timeout=10).json() == made.json()
    for path, params in ((route, {}), (f"{route}/items/{item}", {"limit": str(limit)})):
        direct = httpx.get(upstream + path, params=params, timeout=10)
        relayed = httpx.get(proxy + path, params=params, timeout=10)
        assert (relayed.status_code, relayed.json()) == (direct.status_code, direct.json())


INCLUDE = ["file_search_call.results", "message.output_text.logprobs"]


def test_a_list_in_the_query_reaches_the_upstream_and_the_cassette_whole(tmp_path: Path) -> None:
    # The SDKs send a list parameter as a repeated key (`include[]=a&include[]=b`); the proxy
    # had kept the first value only, so the upstream and the recorded `uri` lost the rest.
    asked: list[list[str]] = []

    async def items(request: web.Request) -> web.Response:
        asked.append(request.query.getall("include[]", []))
        page = {"object": "list", "data": [], "first_id": None, "last_id": None}
        return web.json_response({**page, "has_more": False})

    cassette = tmp_path / "query.yaml"
    with (
        LoopbackApp({"/v1/{tail:.*}": items}) as upstream,
        MockServer(
            cassette=str(cassette), record_mode="once", upstream=upstream.url, log_requests=False
        ) as proxy,
        sdk(proxy) as client,
    ):
        client.responses.input_items.list("resp_1", include=INCLUDE)  # type: ignore[arg-type]
        client.conversations.items.list("conv_1", include=INCLUDE)  # type: ignore[arg-type]
    assert asked == [INCLUDE, INCLUDE]
    uris = [interaction.uri for interaction in interactions(cassette)]
    assert all(uri.count("include%5B%5D=") == 2 for uri in uris), uris
    # Replayed with the query compared, each request finds its recording.
    with (
        MockServer(cassette=str(cassette), match_on="method,path,query") as server,
        sdk(server) as client,
    ):
        client.responses.input_items.list("resp_1", include=INCLUDE)  # type: ignore[arg-type]
        client.conversations.items.list("conv_1", include=INCLUDE)  # type: ignore[arg-type]
        assert [entry.source for entry in server.requests] == ["cassette"] * 2
