"""Responses request checks and two consistency bugs found by the sixth hunt, through httpx and
the real SDK against real servers: a `conversation` object without a string `id`, `background`
without `store`, output items re-sent with `previous_response_id`, `temperature` / `top_p`
echoed as spelled, and a stored chat completion rebuilt from a stream without its (empty)
logprobs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import conformance
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk import sdk
from service_support import RedisServer

from mockai import MockServer
from mockai.api.responses import check_unique_ids
from mockai.errors import ApiError

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
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "note": {"type": "string"}},
                "required": ["city", "note"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    },
]
# Each example is a few HTTP requests to a module's servers: bounded, no deadline.
PROPERTY = settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def twin() -> Iterator[MockServer]:
    """A second server with the same (default) seed as `lenient`."""
    with conformance.checked_server() as server:
        yield server


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def _post(http: httpx.Client, server: MockServer, body: Any) -> httpx.Response:
    return http.post(server.url_for("/v1/responses"), json=body)


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error


# --- 1. a `conversation` object needs a string `id` ---------------------------------------------


@pytest.mark.parametrize(
    ("conversation", "code"),
    [
        ({}, "missing_required_parameter"),
        ({"idx": "conv_1"}, "missing_required_parameter"),
        ({"id": None}, "missing_required_parameter"),
        ({"id": 5}, "invalid_type"),
        ({"id": ["conv_1"]}, "invalid_type"),
    ],
)
def test_a_conversation_object_without_a_string_id_is_refused(
    lenient: MockServer, http: httpx.Client, conversation: dict[str, Any], code: str
) -> None:
    body = {"model": MODEL, "input": "hi", "conversation": conversation}
    error = _error(_post(http, lenient, body))
    assert (error["code"], error["param"]) == (code, "conversation.id")
    if code == "invalid_type":
        assert error["message"].startswith("Invalid type for 'conversation.id': expected a string")
    else:
        assert error["message"] == "Missing required parameter: 'conversation.id'."


def test_strict_requests_name_an_unknown_key_of_the_conversation_object(
    strict: MockServer, http: httpx.Client
) -> None:
    with sdk(strict) as client:
        conversation = client.conversations.create()
        body = {"model": MODEL, "input": "hi", "conversation": {"id": conversation.id, "idx": 1}}
        error = _error(_post(http, strict, body))
        assert (error["code"], error["param"]) == ("unknown_parameter", "conversation.idx")
        assert error["message"] == "Unknown parameter: 'conversation.idx'."
        # Its `id` alone continues the conversation.
        answer = client.responses.create(
            model=MODEL, input="hi", conversation={"id": conversation.id}
        )
        assert answer.conversation is not None
        assert answer.conversation.id == conversation.id
        listed = client.conversations.items.list(conversation.id)
        assert len(listed.data) == 2  # the input and the answer joined it, and nothing before


# --- 2. `background: true` needs `store` ---------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_background_without_store_is_refused(
    lenient: MockServer, http: httpx.Client, stream: bool
) -> None:
    body = {"model": MODEL, "input": "x", "background": True, "store": False, "stream": stream}
    error = _error(_post(http, lenient, body))
    assert error["param"] == "background"
    assert "store" in error["message"] and "true" in error["message"]
    # Stored (as by default), it is queued, and polled.
    with sdk(lenient) as client:
        for store in (True, None):
            queued = client.responses.create(model=MODEL, input="x", background=True, store=store)
            assert queued.status == "queued"
            assert client.responses.retrieve(queued.id).status == "in_progress"


# --- 3. items of the chain re-sent with `previous_response_id` ------------------------------------


def _duplicate(response: httpx.Response, item_id: str) -> None:
    error = _error(response)
    assert error["param"] == "input"
    assert error["message"] == (
        f"Duplicate item found with id {item_id}. "
        "Remove duplicate items from your input and try again."
    )


def test_output_items_re_sent_with_previous_response_id_are_duplicates(
    lenient: MockServer, http: httpx.Client
) -> None:
    with sdk(lenient) as client:
        first = client.responses.create(
            model=MODEL,
            input=[{"type": "message", "id": "msg_mine", "role": "user", "content": "hi there"}],
        )
        second = client.responses.create(
            model=MODEL, input="and then?", previous_response_id=first.id
        )
    said = first.output[0].model_dump(exclude_none=True)
    again = {"role": "user", "content": "again"}
    # The previous response's output, and what came further back: its output, and its input
    # with the id the client gave it.
    for previous, item in ((first.id, said), (second.id, said)):
        resent = {"model": MODEL, "previous_response_id": previous, "input": [item, again]}
        _duplicate(_post(http, lenient, resent), item["id"])
    mine = {"type": "message", "id": "msg_mine", "role": "user", "content": "hi there"}
    resent = {"model": MODEL, "previous_response_id": second.id, "input": [mine, again]}
    _duplicate(_post(http, lenient, resent), "msg_mine")
    # New items only: a chained turn as ever.
    fresh = {"model": MODEL, "previous_response_id": second.id, "input": [again]}
    assert _post(http, lenient, fresh).status_code == 200


def test_the_function_call_loop_still_chains(lenient: MockServer, http: httpx.Client) -> None:
    with sdk(lenient) as client:
        called = client.responses.create(
            model=MODEL, input="weather in Paris?", tools=[WEATHER], tool_choice="required"
        )
        call = called.output[-1]
        assert call.type == "function_call"
        # The result names the call's `call_id`, which is no item id.
        answered = client.responses.create(
            model=MODEL,
            previous_response_id=called.id,
            tools=[WEATHER],
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        )
        assert answered.status == "completed"
    # The call item itself, sent back too, is one the chain holds.
    resent = {
        "model": MODEL,
        "previous_response_id": called.id,
        "tools": [WEATHER],
        "input": [
            call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
    }
    _duplicate(_post(http, lenient, resent), call.id)


def test_a_chain_kept_in_redis_knows_its_items_on_another_worker(redis: RedisServer) -> None:
    url = redis.url()
    with (
        MockServer(state=url, log_requests=False) as worker,
        MockServer(state=url, log_requests=False) as other,
        httpx.Client(timeout=10) as http,
    ):
        first = _post(http, worker, {"model": MODEL, "input": "hi"}).json()
        second = {"model": MODEL, "input": "more", "previous_response_id": first["id"]}
        chained = _post(http, worker, second).json()
        said = first["output"][0]
        resent = {"model": MODEL, "previous_response_id": chained["id"], "input": [said]}
        _duplicate(_post(http, other, resent), said["id"])


@given(
    held=st.sets(st.sampled_from([f"msg_{n}" for n in range(8)]), max_size=4),
    sent=st.lists(st.sampled_from([f"msg_{n}" for n in range(8)] + [None]), max_size=5),
)
def test_an_id_is_refused_when_sent_twice_or_held_by_the_chain(
    held: set[str], sent: list[str | None]
) -> None:
    items = [{"role": "user", "content": "x", **({} if i is None else {"id": i})} for i in sent]
    ids = [i for i in sent if i is not None]
    clash = next(
        (i for n, i in enumerate(ids) if i in held or i in ids[:n]),
        None,
    )
    try:
        check_unique_ids(items, (), "input", frozenset(held))
    except ApiError as error:
        assert clash is not None and f"with id {clash}." in error.message
    else:
        assert clash is None


# --- 4. `temperature` and `top_p` echoed as numbers ----------------------------------------------


@PROPERTY
@given(
    value=st.one_of(
        st.integers(0, 1),
        st.sampled_from([0.5, 0.7, 0.25]),
    ),
    spelling=st.sampled_from(["float", "exponent"]),
)
def test_a_number_gets_the_same_response_however_it_is_written(
    lenient: MockServer, twin: MockServer, http: httpx.Client, value: float, spelling: str
) -> None:
    """Python's SDK sends `1.0` where JavaScript's sends `1`: the same bytes answer both."""
    plain = json.dumps(value)
    other = repr(float(value)) if spelling == "float" else f"{float(value) * 10:g}e-1"
    answers = []
    for server, number in ((lenient, plain), (twin, other)):
        raw = f'{{"model":"{MODEL}","input":"hi","temperature":{number},"top_p":{number}}}'
        answer = http.post(
            server.url_for("/v1/responses"),
            content=raw,
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
        answers.append(answer.content)
    assert answers[0] == answers[1]
    echoed = json.loads(answers[0])
    assert echoed["temperature"] == echoed["top_p"] == float(value)
    assert b'"temperature":%s,' % repr(float(value)).encode() in answers[0]


# --- 5. a stored chat completion rebuilt from a stream: the same logprobs -------------------------


def _chat(http: httpx.Client, server: MockServer, body: dict[str, Any]) -> httpx.Response:
    return http.post(server.url_for("/v1/chat/completions"), json=body)


def _stored(http: httpx.Client, server: MockServer, completion_id: str) -> dict[str, Any]:
    got = http.get(server.url_for(f"/v1/chat/completions/{completion_id}"))
    assert got.status_code == 200, got.text
    stored: dict[str, Any] = got.json()
    return stored


def _streamed_id(http: httpx.Client, server: MockServer, body: dict[str, Any]) -> str:
    streamed = _chat(http, server, {**body, "stream": True})
    assert streamed.status_code == 200, streamed.text
    first = next(line for line in streamed.text.splitlines() if line.startswith("data: {"))
    return str(json.loads(first[6:])["id"])


def _but_the_ids(completion: dict[str, Any]) -> dict[str, Any]:
    """The completion without its ids (its own and its calls': each request gets new ones)."""
    text = json.dumps({key: value for key, value in completion.items() if key != "id"})
    return dict(json.loads(re.sub(r'"call_[A-Za-z0-9]+"', '"call"', text)))


@PROPERTY
@given(
    tool_choice=st.sampled_from(
        ["required", "auto", "none", {"type": "function", "function": {"name": "lookup"}}]
    ),
    top_logprobs=st.integers(0, 3),
    n=st.integers(1, 2),
    user=st.sampled_from(["hi", "what is the weather in Paris?", "look it up"]),
)
def test_a_completion_stored_from_a_stream_is_the_unstreamed_one_but_for_its_id(
    lenient: MockServer,
    http: httpx.Client,
    tool_choice: Any,
    top_logprobs: int,
    n: int,
    user: str,
) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": user}],
        "store": True,
        "logprobs": True,
        "top_logprobs": top_logprobs,
        "n": n,
        "tools": CHAT_TOOLS,
        "tool_choice": tool_choice,
    }
    answered = _chat(http, lenient, body)
    assert answered.status_code == 200, answered.text
    unstreamed = _stored(http, lenient, answered.json()["id"])
    streamed_id = _streamed_id(http, lenient, {**body, "stream_options": {"include_usage": True}})
    assert _but_the_ids(_stored(http, lenient, streamed_id)) == _but_the_ids(unstreamed)


def test_a_tool_call_stored_from_a_stream_keeps_its_empty_logprobs(
    lenient: MockServer, http: httpx.Client
) -> None:
    """The hunt's case: an answer of tool calls only has logprobs `{"content": [], ...}`."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "store": True,
        "logprobs": True,
        "top_logprobs": 2,
        "tools": CHAT_TOOLS,
        "tool_choice": "required",
    }
    answered = _chat(http, lenient, body).json()
    empty = {"content": [], "refusal": None}
    assert answered["choices"][0]["logprobs"] == empty
    stored = _stored(http, lenient, _streamed_id(http, lenient, body))
    assert stored["choices"][0]["logprobs"] == empty
    # Not asked for, none: as unstreamed.
    plain = {key: value for key, value in body.items() if "logprobs" not in key}
    assert (
        _stored(http, lenient, _streamed_id(http, lenient, plain))["choices"][0]["logprobs"] is None
    )


def test_a_streamed_completion_kept_in_redis_keeps_its_empty_logprobs(redis: RedisServer) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "store": True,
        "logprobs": True,
        "tools": CHAT_TOOLS,
        "tool_choice": "required",
    }
    url = redis.url()
    with (
        MockServer(state=url, log_requests=False) as worker,
        MockServer(state=url, log_requests=False) as other,
        httpx.Client(timeout=10) as http,
    ):
        stored = _stored(http, other, _streamed_id(http, worker, body))
        assert stored["choices"][0]["logprobs"] == {"content": [], "refusal": None}
