"""Stored responses through the real SDK: retrieve, delete, cancel, input items, background runs,
and `previous_response_id` refused where the API would refuse it. (`server` and `client` are the
conftest's: a conformance-checked server and the SDK without retries.)"""

from __future__ import annotations

import json
from pathlib import Path

import conformance
import httpx
import openai
import pytest

from mockai import MockServer
from mockai.cassette import CassetteFile

MODEL = "gpt-4o-mini"


def test_a_response_is_retrieved_as_it_was_answered(client: openai.OpenAI) -> None:
    created = client.responses.create(model=MODEL, input="Tell me about otters")
    retrieved = client.responses.retrieve(created.id)
    assert retrieved.model_dump() == created.model_dump()
    assert retrieved.output_text


def test_a_streamed_response_is_retrieved_whole(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=MODEL, input="A story, please", stream=True))
    final = events[-1]
    assert final.type == "response.completed"
    retrieved = client.responses.retrieve(final.response.id)
    assert retrieved.model_dump() == final.response.model_dump()
    assert retrieved.output_text == "".join(
        e.delta for e in events if e.type == "response.output_text.delta"
    )


def test_store_false_is_not_kept_and_cannot_be_chained(client: openai.OpenAI) -> None:
    unstored = client.responses.create(model=MODEL, input="first turn", store=False)
    with pytest.raises(openai.NotFoundError, match=unstored.id):
        client.responses.retrieve(unstored.id)
    # The classic bug: chaining onto a response the API never kept. The API refuses; so do we.
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODEL, input="second", previous_response_id=unstored.id)
    error = refused.value
    assert error.code == "previous_response_not_found"
    assert error.param == "previous_response_id"
    assert f"Previous response with id '{unstored.id}' not found." in error.message
    assert "store: false" in error.message


def test_chaining_onto_a_stored_response_works(client: openai.OpenAI) -> None:
    first = client.responses.create(model=MODEL, input="first turn")
    second = client.responses.create(model=MODEL, input="second", previous_response_id=first.id)
    assert second.previous_response_id == first.id


def test_unknown_previous_ids_are_accepted_unless_strict() -> None:
    body = {"model": MODEL, "input": "hi", "previous_response_id": "resp_from_elsewhere"}
    with MockServer() as lenient:
        assert httpx.post(lenient.url + "/responses", json=body).status_code == 200
    with MockServer(strict_requests=True) as strict:
        answer = httpx.post(strict.url + "/responses", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "previous_response_not_found"


def test_delete_forgets_a_response(client: openai.OpenAI) -> None:
    created = client.responses.create(model=MODEL, input="short lived")
    raw = client.responses.with_raw_response.delete(created.id)
    assert raw.http_response.json() == {"id": created.id, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)
    with pytest.raises(openai.BadRequestError, match="deleted"):
        client.responses.create(model=MODEL, input="next", previous_response_id=created.id)


def test_a_background_run_is_polled_to_completion(client: openai.OpenAI) -> None:
    queued = client.responses.create(model=MODEL, input="a long job", background=True)
    assert queued.status == "queued" and queued.background is True
    assert queued.output == [] and queued.usage is None
    statuses = [queued.status]
    final = queued
    for _ in range(10):  # bounded: the loop a client writes, which must end
        if final.status not in ("queued", "in_progress"):
            break
        final = client.responses.retrieve(queued.id)
        statuses.append(final.status)
    assert statuses == ["queued", "in_progress", "completed"]
    assert final.output_text and final.usage is not None and final.usage.output_tokens > 0
    assert client.responses.retrieve(queued.id).status == "completed"  # and stays so


@pytest.mark.asyncio
async def test_background_runs_with_the_async_client(server: MockServer) -> None:
    async with openai.AsyncOpenAI(base_url=server.url, api_key="sk-test") as client:
        queued = await client.responses.create(model=MODEL, input="job", background=True)
        running = await client.responses.retrieve(queued.id)
        done = await client.responses.retrieve(queued.id)
    assert (queued.status, running.status, done.status) == ("queued", "in_progress", "completed")


def test_cancel_stops_a_background_run_only(client: openai.OpenAI) -> None:
    queued = client.responses.create(model=MODEL, input="a long job", background=True)
    cancelled = client.responses.cancel(queued.id)
    assert cancelled.status == "cancelled" and cancelled.output == []
    assert client.responses.retrieve(queued.id).status == "cancelled"
    foreground = client.responses.create(model=MODEL, input="quick")
    with pytest.raises(openai.BadRequestError, match="background=true"):
        client.responses.cancel(foreground.id)
    finished = client.responses.create(model=MODEL, input="job", background=True)
    client.responses.retrieve(finished.id)
    client.responses.retrieve(finished.id)  # completed now
    with pytest.raises(openai.BadRequestError, match="completed"):
        client.responses.cancel(finished.id)


CONVERSATION = [
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
    {"role": "assistant", "content": "It is 18C."},
    {"role": "user", "content": [{"type": "input_text", "text": "And tomorrow?"}]},
]


def test_input_items_list_the_input_newest_first(client: openai.OpenAI) -> None:
    created = client.responses.create(model=MODEL, input=CONVERSATION)  # type: ignore[arg-type]
    listed = client.responses.input_items.list(created.id)
    kinds = [(item.type, getattr(item, "role", None)) for item in listed.data]
    assert kinds == [
        ("message", "user"),
        ("message", "assistant"),
        ("function_call_output", None),
        ("function_call", None),
        ("message", "user"),
        ("message", "developer"),
    ]
    ids = [item.id for item in listed.data]
    assert len(set(ids)) == 6 and all(ids)
    assert listed.data[-1].content[0].text == "Be brief."  # type: ignore[union-attr]
    assert listed.data[1].content[0].text == "It is 18C."  # type: ignore[union-attr]
    ascending = client.responses.input_items.list(created.id, order="asc")
    assert [item.id for item in ascending.data] == ids[::-1]
    # The same ids every time, so cursors work.
    first = client.responses.input_items.list(created.id, limit=4)
    assert [item.id for item in first.data] == ids[:4] and first.has_more
    rest = client.responses.input_items.list(created.id, limit=4, after=ids[3])
    assert [item.id for item in rest.data] == ids[4:] and not rest.has_more
    # The SDK's auto-pagination walks the pages.
    assert [item.id for item in client.responses.input_items.list(created.id, limit=2)] == ids


def test_input_items_of_a_plain_string(client: openai.OpenAI) -> None:
    created = client.responses.create(model=MODEL, input="just this")
    (item,) = client.responses.input_items.list(created.id).data
    assert item.type == "message" and item.role == "user"  # type: ignore[union-attr]
    assert item.content[0].text == "just this"  # type: ignore[union-attr]


def test_bad_lookups_get_the_api_errors(server: MockServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="resp_nope"):
        client.responses.retrieve("resp_nope")
    created = client.responses.create(model=MODEL, input="x")
    with pytest.raises(openai.BadRequestError) as bad_limit:
        client.responses.input_items.list(created.id, limit=500)
    assert bad_limit.value.param == "limit"
    streamed_again = httpx.get(f"{server.url}/responses/{created.id}?stream=true")
    assert streamed_again.status_code == 400
    assert streamed_again.json()["error"]["param"] == "stream"
    wrong_method = httpx.put(f"{server.url}/responses/{created.id}")
    assert wrong_method.status_code == 405


def test_reset_forgets_stored_responses(server: MockServer, client: openai.OpenAI) -> None:
    created = client.responses.create(model=MODEL, input="x")
    server.reset()
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_the_store_is_bounded(server: MockServer, client: openai.OpenAI) -> None:
    server.state.responses.capacity = 3
    made = [client.responses.create(model=MODEL, input=f"request {i}").id for i in range(5)]
    for evicted in made[:2]:  # the oldest went first
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(evicted)
    assert [client.responses.retrieve(kept).id for kept in made[2:]] == made[2:]
    # An evicted id is refused as a deleted one is (the next turn would lose its context), saying
    # why: this server answered it.
    with pytest.raises(openai.BadRequestError, match="pushed out of the store") as refused:
        client.responses.create(model=MODEL, input="next", previous_response_id=made[0])
    assert refused.value.code == "previous_response_not_found"


def test_a_chained_request_is_matched_with_its_conversation(
    server: MockServer, client: openai.OpenAI
) -> None:
    server.add_rules(
        [
            {"name": "first", "match": {"turn": 1}, "reply": {"content": "Paris."}},
            {
                "name": "follow-up",
                "match": {"turn": 2, "system": "Be brief"},
                "reply": {"content": "{{ request.messages | length }} messages so far"},
            },
        ]
    )
    first = client.responses.create(
        model=MODEL, input="Capital of France?", instructions="Be brief."
    )
    second = client.responses.create(
        model=MODEL,
        input="And of Italy?",
        instructions="Be brief.",  # instructions are not carried over: each request gives its own
        previous_response_id=first.id,
    )
    # instructions, the first question, the first answer, the second question
    assert second.output_text == "4 messages so far"
    assert [entry.rule for entry in server.requests] == ["first", "follow-up"]
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens  # the history is billed too


def test_a_tool_result_must_answer_a_call_of_the_chained_response(client: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "name": "get_time",
        "parameters": {"type": "object", "properties": {}},
    }
    called = client.responses.create(
        model=MODEL,
        input="What time is it?",
        tools=[tool],  # type: ignore[list-item]
        tool_choice="required",
    )
    with pytest.raises(openai.BadRequestError, match="call_wrong"):
        client.responses.create(
            model=MODEL,
            input=[{"type": "function_call_output", "call_id": "call_wrong", "output": "noon"}],
            previous_response_id=called.id,
        )
    (call,) = [item for item in called.output if item.type == "function_call"]
    answered = client.responses.create(
        model=MODEL,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "noon"}],  # type: ignore[union-attr]
        previous_response_id=called.id,
    )
    assert "noon" in answered.output_text


def test_with_an_upstream_unknown_previous_ids_are_left_to_it() -> None:
    with MockServer() as upstream:
        first = httpx.post(upstream.url + "/responses", json={"model": MODEL, "input": "a"})
        chained = {"model": MODEL, "input": "b", "previous_response_id": first.json()["id"]}
        with MockServer(upstream=upstream.url, strict_requests=True) as proxy:
            answer = httpx.post(proxy.url + "/responses", json=chained)
    assert answer.status_code == 200, answer.text
    assert answer.json()["previous_response_id"] == first.json()["id"]


def test_input_tokens_counts_what_a_response_would_bill(client: openai.OpenAI) -> None:
    request = {
        "model": MODEL,
        "input": [{"role": "user", "content": "Tell me about otters and their habits"}],
        "instructions": "Be brief.",
    }
    counted = client.responses.input_tokens.count(**request)  # type: ignore[arg-type]
    created = client.responses.create(**request)  # type: ignore[call-overload]
    assert counted.object == "response.input_tokens"
    assert created.usage is not None and counted.input_tokens == created.usage.input_tokens > 5
    # A chained request counts its history too, as it is billed for it.
    chained = client.responses.input_tokens.count(
        model=MODEL, input="And more?", previous_response_id=created.id
    )
    assert chained.input_tokens > created.usage.input_tokens
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.input_tokens.count(model=MODEL, input=5)  # type: ignore[arg-type]
    assert bad.value.param == "input"


def test_input_tokens_refuses_a_history_the_response_would_not_find(
    client: openai.OpenAI,
) -> None:
    """A count is of the request POST /responses would answer: chained onto a response not
    stored, or deleted, or in a deleted conversation, that request is refused, and so is its
    count (mockai counted it without the history, as if it were a first turn)."""
    unstored = client.responses.create(model=MODEL, input="first turn", store=False)
    deleted = client.responses.create(model=MODEL, input="first turn")
    client.responses.delete(deleted.id)
    for previous, why in ((unstored.id, "store: false"), (deleted.id, "deleted")):
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.input_tokens.count(
                model=MODEL, input="And more?", previous_response_id=previous
            )
        assert refused.value.code == "previous_response_not_found"
        assert refused.value.param == "previous_response_id" and why in refused.value.message
    conversation = client.conversations.create(items=[{"role": "user", "content": "hi"}])
    client.conversations.delete(conversation.id)
    with pytest.raises(openai.NotFoundError, match=conversation.id):
        client.responses.input_tokens.count(
            model=MODEL, input="And more?", conversation=conversation.id
        )


def test_a_replayed_response_is_stored_too() -> None:
    cassette = Path(__file__).resolve().parent.parent / "cassettes" / "responses_stream.yaml"
    (interaction,) = CassetteFile.load(cassette).interactions
    with conformance.checked_server(cassette=str(cassette)) as server, httpx.Client() as http:
        streamed = http.post(
            server.url + "/responses",
            content=interaction.request_body,
            headers={"Content-Type": "application/json"},
        ).text
        completed = json.loads(
            next(line for line in streamed.splitlines() if '"response.completed"' in line)[6:]
        )["response"]
        retrieved = http.get(f"{server.url}/responses/{completed['id']}")
    assert retrieved.status_code == 200 and retrieved.json() == completed


def test_a_streamed_background_run_is_queued_first(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=MODEL, input="job", background=True, stream=True))
    kinds = [event.type for event in events]
    assert kinds[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert events[0].response.status == "queued" and events[1].response.status == "queued"  # type: ignore[union-attr]
    assert kinds[-1] == "response.completed" and events[-1].response.background is True  # type: ignore[union-attr]
    # Streamed runs are complete when the stream ends: retrieving shows the finished response,
    # a background one, which cannot be cancelled any more.
    finished = client.responses.retrieve(events[-1].response.id)  # type: ignore[union-attr]
    assert finished.status == "completed" and finished.background is True
    with pytest.raises(openai.BadRequestError, match="Cannot cancel a completed response"):
        client.responses.cancel(finished.id)


def test_a_streamed_response_can_be_resumed(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=MODEL, input="job", background=True, stream=True))
    response_id = events[-1].response.id  # type: ignore[union-attr]
    resumed = list(client.responses.retrieve(response_id, stream=True, starting_after=5))
    assert [e.sequence_number for e in resumed] == [e.sequence_number for e in events[6:]]
    assert [e.model_dump() for e in resumed] == [e.model_dump() for e in events[6:]]
    whole = list(client.responses.retrieve(response_id, stream=True))
    assert len(whole) == len(events)


def test_a_resumed_stream_leaves_the_padding_out_when_asked(client: openai.OpenAI) -> None:
    # The retrieval's `include_obfuscation=false` (the SDKs' `include_obfuscation=False`, to
    # save bandwidth) was ignored: the resumed deltas carried the padding all the same.
    events = list(
        client.responses.create(
            model=MODEL, input="job", background=True, stream=True, metadata={"obfuscation": "k"}
        )
    )
    response_id = events[-1].response.id  # type: ignore[union-attr]

    def resumed(**query: str) -> list[dict[str, object]]:
        answer = httpx.get(
            f"{client.base_url}responses/{response_id}",
            params={"stream": "true", **query},
            headers={"Authorization": f"Bearer {client.api_key}"},
            timeout=10,
        )
        return [json.loads(line[6:]) for line in answer.text.splitlines() if line[:6] == "data: "]

    padded = resumed()
    assert all("obfuscation" in e for e in padded if str(e["type"]).endswith(".delta"))
    plain = resumed(include_obfuscation="false", starting_after="2")
    assert plain == [{k: v for k, v in e.items() if k != "obfuscation"} for e in padded[3:]]
    assert plain[-1]["response"]["metadata"] == {"obfuscation": "k"}  # type: ignore[index]
    assert [
        e.model_dump()
        for e in client.responses.retrieve(response_id, stream=True, include_obfuscation=False)
    ] == [e.model_dump(exclude={"obfuscation"}) for e in events]


# The Responses API's 400 for an input past the context window: its own words, not chat's.
TOO_LONG = {
    "message": "Your input exceeds the context window of this model. Please adjust your input "
    "and try again.",
    "type": "invalid_request_error",
    "param": "input",
    "code": "context_length_exceeded",
}


def test_a_chain_past_the_context_window_is_the_responses_apis_400(client: openai.OpenAI) -> None:
    """A chain (or a conversation) grows until it no longer fits: an agent matches the API's
    words to compact or trim its context, and mockai said chat's ("This model's maximum context
    length is ...") instead."""
    half = "word " * 9_000  # (gpt-3.5-turbo's window is 16,385 tokens: two halves do not fit)
    first = client.responses.create(model="gpt-3.5-turbo", input=half)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(
                model="gpt-3.5-turbo", input=half, previous_response_id=first.id, stream=stream
            )
        assert refused.value.body == TOO_LONG
    with pytest.raises(openai.BadRequestError) as counted:
        client.responses.input_tokens.count(
            model="gpt-3.5-turbo", input=half, previous_response_id=first.id
        )
    assert counted.value.body == TOO_LONG
    # `truncation: "auto"` drops the earliest turns instead, as the API does.
    trimmed = client.responses.create(
        model="gpt-3.5-turbo", input=half, previous_response_id=first.id, truncation="auto"
    )
    assert trimmed.status == "completed"
