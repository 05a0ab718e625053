"""Conversations through the real SDK: the objects and their items, Responses requests that
continue a conversation (its items as context, their input and output appended), and the API's
errors. (`server` and `client` are the conftest's: a conformance-checked server, the SDK.)"""

from __future__ import annotations

import conformance
import httpx
import openai
import pytest

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


def test_create_retrieve_update_delete(client: openai.OpenAI) -> None:
    created = client.conversations.create(metadata={"topic": "otters"})
    assert created.id.startswith("conv_") and created.object == "conversation"
    assert client.conversations.retrieve(created.id) == created
    updated = client.conversations.update(created.id, metadata={"topic": "beavers"})
    assert updated.metadata == {"topic": "beavers"}
    deleted = client.conversations.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (
        created.id,
        True,
        "conversation.deleted",
    )
    with pytest.raises(openai.NotFoundError, match=created.id):
        client.conversations.retrieve(created.id)


def test_responses_in_a_conversation_see_and_extend_it(
    server: MockServer, client: openai.OpenAI
) -> None:
    server.add_rules(
        [
            {"name": "first", "match": {"turn": 1}, "reply": {"content": "Otters hold hands."}},
            {
                "name": "second",
                "match": {"turn": 2, "system": "Be brief"},
                "reply": {"content": "{{ request.messages | length }} messages so far"},
            },
        ]
    )
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "system", "content": "Be brief."}]
    )
    first = client.responses.create(model=MODEL, input="Otters?", conversation=conversation.id)
    second = client.responses.create(model=MODEL, input="Beavers?", conversation=conversation.id)
    # system, first question, first answer, second question: the conversation is the context
    assert second.output_text == "4 messages so far"
    assert [entry.rule for entry in server.requests[1:]] == ["first", "second"]
    assert second.conversation is not None and second.conversation.id == conversation.id
    listed = client.conversations.items.list(conversation.id, order="asc")
    roles = [(item.type, getattr(item, "role", None)) for item in listed.data]
    assert roles == [
        ("message", "system"),
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
        ("message", "assistant"),
    ]
    assert listed.data[2].id == first.output[0].id  # the answer's own item, id and all
    assert listed.data[4].content[0].text == "4 messages so far"  # type: ignore[union-attr]
    assert first.usage is not None and second.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens  # the context is billed


def test_a_background_run_joins_its_conversation_when_done_and_not_if_cancelled(
    client: openai.OpenAI,
) -> None:
    """The conversation holds what was answered: a queued run's question at once, its answer
    once a retrieval finds it done, and never the answer of a run cancelled first."""

    def roles(conversation_id: str) -> list[str | None]:
        listed = client.conversations.items.list(conversation_id, order="asc").data
        return [getattr(item, "role", None) for item in listed]

    done = client.conversations.create()
    run = client.responses.create(model=MODEL, input="a job", conversation=done.id, background=True)
    assert run.status == "queued" and roles(done.id) == ["user"]
    while client.responses.retrieve(run.id).status != "completed":
        assert roles(done.id) == ["user"]
    assert roles(done.id) == ["user", "assistant"]
    answer = client.responses.retrieve(run.id).output[0]
    assert client.conversations.items.list(done.id, order="asc").data[1].id == answer.id
    client.responses.retrieve(run.id)  # (retrieved again: added once)
    assert roles(done.id) == ["user", "assistant"]

    stopped = client.conversations.create()
    run = client.responses.create(
        model=MODEL, input="a job", conversation=stopped.id, background=True
    )
    assert client.responses.cancel(run.id).status == "cancelled"
    client.responses.retrieve(run.id)
    assert roles(stopped.id) == ["user"]

    # A background run with `store: false` is refused (nothing could be polled): it adds nothing.
    unstored = client.conversations.create()
    with pytest.raises(openai.BadRequestError):
        client.responses.create(
            model=MODEL, input="a job", conversation=unstored.id, background=True, store=False
        )
    assert roles(unstored.id) == []


def test_a_tool_loop_in_a_conversation(server: MockServer, client: openai.OpenAI) -> None:
    server.add_rules(
        [
            {
                "name": "call",
                "match": {"has_tool_result": False},
                "reply": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
            },
            {
                "name": "answer",
                "match": {"has_tool_result": True},
                "reply": {
                    "content": "{{ request.tool_calls[0].arguments.city }}: "
                    "{{ request.tool_result }}"
                },
            },
        ]
    )
    conversation = client.conversations.create()
    called = client.responses.create(
        model=MODEL,
        input="Weather in Oslo?",
        tools=[WEATHER],  # type: ignore[list-item]
        conversation=conversation.id,
    )
    (call,) = [item for item in called.output if item.type == "function_call"]
    with pytest.raises(openai.BadRequestError, match="call_unknown"):
        client.responses.create(
            model=MODEL,
            input=[{"type": "function_call_output", "call_id": "call_unknown", "output": "?"}],
            tools=[WEATHER],  # type: ignore[list-item]
            conversation=conversation.id,
        )
    answered = client.responses.create(
        model=MODEL,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "-3C"}],  # type: ignore[union-attr]
        tools=[WEATHER],  # type: ignore[list-item]
        conversation=conversation.id,
    )
    assert answered.output_text == "Oslo: -3C"
    kinds = [item.type for item in client.conversations.items.list(conversation.id, order="asc")]
    assert kinds == ["message", "function_call", "function_call_output", "message"]


def test_items_are_added_listed_retrieved_and_deleted(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(
        items=[{"role": "user", "content": f"message {i}"} for i in range(3)]
    )
    added = client.conversations.items.create(
        conversation.id,
        items=[
            {"type": "message", "role": "assistant", "content": "an answer"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ok"}]},
        ],
    )
    assert [item.role for item in added.data] == ["assistant", "user"]  # type: ignore[union-attr]
    newest_first = client.conversations.items.list(conversation.id)
    ids = [item.id for item in newest_first.data]
    assert len(set(ids)) == 5 and ids[:2] == [added.data[1].id, added.data[0].id]
    page = client.conversations.items.list(conversation.id, limit=2, after=ids[1])
    assert [item.id for item in page.data] == ids[2:4] and page.has_more
    assert [item.id for item in client.conversations.items.list(conversation.id, limit=2)] == ids
    one = client.conversations.items.retrieve(ids[0], conversation_id=conversation.id)
    assert one.id == ids[0]
    remaining = client.conversations.items.delete(ids[0], conversation_id=conversation.id)
    assert remaining.id == conversation.id
    with pytest.raises(openai.NotFoundError, match=ids[0]):
        client.conversations.items.retrieve(ids[0], conversation_id=conversation.id)
    assert len(client.conversations.items.list(conversation.id).data) == 4


def test_bad_requests_get_the_api_errors(server: MockServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as too_many:
        client.conversations.create(items=[{"role": "user", "content": "x"}] * 21)
    assert too_many.value.param == "items"
    with pytest.raises(openai.BadRequestError) as bad_item:
        client.conversations.create(items=[{"type": "message", "content": "no role"}])  # type: ignore[list-item]
    assert bad_item.value.param == "items[0].role"
    with pytest.raises(openai.BadRequestError) as bad_metadata:
        client.conversations.create(metadata={"n": 1})  # type: ignore[dict-item]
    assert bad_metadata.value.param == "metadata.n"
    conversation = client.conversations.create()
    no_metadata = httpx.post(f"{server.url}/conversations/{conversation.id}", json={})
    assert no_metadata.status_code == 400 and no_metadata.json()["error"]["param"] == "metadata"
    not_json = httpx.post(f"{server.url}/conversations", content=b"{oops")
    assert not_json.status_code == 400 and "parse" in not_json.json()["error"]["message"]
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list("conv_unknown")
    # Two histories at once (the spec: "cannot be used in conjunction"): refused, and the
    # conversation is left as it was.
    earlier = client.responses.create(model=MODEL, input="hi")
    with pytest.raises(openai.BadRequestError) as both:
        client.responses.create(
            model=MODEL, input="x", previous_response_id=earlier.id, conversation=conversation.id
        )
    assert both.value.code == "mutually_exclusive_parameters"
    assert "'previous_response_id' or 'conversation'" in both.value.message
    assert client.conversations.items.list(conversation.id).data == []


def test_unknown_conversations_are_accepted_unless_strict_and_deleted_ones_refused() -> None:
    body = {"model": MODEL, "input": "hi", "conversation": "conv_from_elsewhere"}
    with MockServer() as lenient:
        assert httpx.post(lenient.url + "/responses", json=body).status_code == 200
        made = httpx.post(lenient.url + "/conversations", json={}).json()
        httpx.delete(f"{lenient.url}/conversations/{made['id']}")
        gone = httpx.post(lenient.url + "/responses", json={**body, "conversation": made["id"]})
        assert gone.status_code == 404 and gone.json()["error"]["param"] == "conversation"
    with MockServer(strict_requests=True) as strict:
        refused = httpx.post(strict.url + "/responses", json=body)
    assert refused.status_code == 404
    assert (
        refused.json()["error"]["message"]
        == "Conversation with id 'conv_from_elsewhere' not found."
    )


def test_a_conversation_pushed_out_of_the_store_is_refused_saying_so() -> None:
    # A Responses turn naming a conversation the store pushed out was answered as a new
    # conversation (200, its context silently lost), as one the server never saw is.
    with MockServer(store_bytes=40_000, log_requests=False) as small:
        client = openai.OpenAI(base_url=small.url, api_key="sk-test", max_retries=0)
        first = client.conversations.create(items=[{"role": "user", "content": "remember me"}])
        for n in range(30):  # ~3 KB each: the first goes
            client.conversations.create(items=[{"role": "user", "content": f"{n} " * 1500}])
        with pytest.raises(openai.NotFoundError, match="pushed out of the store") as retrieved:
            client.conversations.retrieve(first.id)
        assert "MOCKAI_STORE_BYTES" in retrieved.value.message
        with pytest.raises(openai.NotFoundError, match="pushed out of the store") as turn:
            client.responses.create(model=MODEL, input="and now?", conversation=first.id)
        assert turn.value.param == "conversation"
        deleted = client.conversations.create()
        client.conversations.delete(deleted.id)
        with pytest.raises(openai.NotFoundError, match="it was deleted"):
            client.conversations.items.list(deleted.id)
        small.reset()  # forgets why, too: an id never seen again
        body = {"model": MODEL, "input": "hi", "conversation": first.id}
        assert httpx.post(small.url + "/responses", json=body).status_code == 200


def test_ids_are_reproducible_and_reset_forgets() -> None:
    made = []
    for _ in range(2):
        with MockServer(seed=3) as server:
            first = httpx.post(server.url + "/conversations", json={}).json()["id"]
            second = httpx.post(server.url + "/conversations", json={}).json()["id"]
            made.append((first, second))
            server.reset()
            assert httpx.get(f"{server.url}/conversations/{first}").status_code == 404
    assert made[0] == made[1] and made[0][0] != made[0][1]
    with MockServer(seed=4) as other:
        assert httpx.post(other.url + "/conversations", json={}).json()["id"] != made[0][0]


def test_truncation_auto_drops_the_earliest_items_to_fit(
    server: MockServer, client: openai.OpenAI
) -> None:
    server.add_rule(
        {
            "name": "count",
            "match": {"endpoint": "responses"},
            "reply": {"content": "{{ request.messages | length }} messages"},
        }
    )
    long_turns = [{"role": "user", "content": f"turn {i} " + "word " * 5000} for i in range(4)]
    conversation = client.conversations.create(items=long_turns)  # ~20k tokens: over 16k
    with pytest.raises(openai.BadRequestError) as too_long:
        client.responses.create(
            model="gpt-3.5-turbo", input="And now?", conversation=conversation.id
        )
    assert too_long.value.code == "context_length_exceeded"
    fitted = client.responses.create(
        model="gpt-3.5-turbo",
        input="And now?",
        instructions="Be brief.",
        conversation=conversation.id,
        truncation="auto",
    )
    # instructions, the last three long turns (the first was dropped), and the new question
    assert fitted.output_text == "5 messages"
    assert fitted.usage is not None and fitted.usage.input_tokens <= 16_385


def test_listed_image_parts_take_the_forms_the_api_lists(client: openai.OpenAI) -> None:
    # Sent with null settings (which input items may carry), listed as the API lists them: an
    # image's detail defaults to `auto`, null optional settings are left out.
    conversation = client.conversations.create()
    sent = [
        {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": [{"type": "input_image", "image_url": "https://x.io/a.png", "detail": None}],
        },
        {
            "role": "user",
            "content": [
                {"type": "input_image", "file_id": "file-1", "prompt_cache_breakpoint": None},
                {"type": "input_text", "text": "what is this?"},
            ],
        },
    ]
    raw = client.conversations.items.with_raw_response.create(conversation.id, items=sent)
    listed = raw.http_response.json()["data"]  # (as sent: the SDK's models fill in absent keys)
    image = listed[0]["output"][0]
    assert image["detail"] == "auto" and image["image_url"] == "https://x.io/a.png"
    parts = listed[1]["content"]
    assert parts[0]["detail"] == "auto" and "prompt_cache_breakpoint" not in parts[0]
    assert parts[1] == {"type": "input_text", "text": "what is this?"}


# The newer items in their smallest forms the spec allows as input (its required fields only),
# and the compaction trigger, which asks for work rather than recording any.
NEWER_ITEMS = [
    {"type": "shell_call", "call_id": "call_sh", "action": {"commands": ["ls"]}},
    {
        "type": "shell_call_output",
        "call_id": "call_sh",
        "output": [{"stdout": "a\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}],
    },
    {"type": "tool_search_call", "arguments": {}},
    {"type": "tool_search_output", "tools": [{**WEATHER, "strict": True}]},
    {"type": "compaction_trigger"},
]
# Items sent with nulls their listed forms do not take (the fields are optional there).
NULLED_ITEMS = [
    {
        "type": "function_call_output",
        "call_id": "call_fn",
        "output": "ok",
        "name": None,
        "namespace": None,
    },
    {
        "type": "computer_call_output",
        "call_id": "call_pc",
        "output": {"type": "computer_screenshot", "image_url": "https://x.io/s.png"},
        "acknowledged_safety_checks": None,
    },
]


def test_newer_items_are_listed_in_the_forms_the_api_lists(server: MockServer) -> None:
    # Each listed item must be one of the spec's ConversationItem forms (the conftest's server
    # checks every answer against the spec when it stops; checked here too, item by item).
    created = httpx.post(server.url + "/conversations", json={})
    conversation = created.json()["id"]
    added = httpx.post(
        server.url + f"/conversations/{conversation}/items",
        json={"items": NEWER_ITEMS + NULLED_ITEMS},
    )
    assert added.status_code == 200, added.text
    listed = added.json()["data"]
    sent_types = [item["type"] for item in NEWER_ITEMS[:4] + NULLED_ITEMS]
    assert [item["type"] for item in listed] == sent_types
    for item in listed:
        conformance.validate("ConversationItem", item)
    shell, shell_output, search, search_output, function_output, computer_output = listed
    assert not {"name", "namespace"} & set(function_output)
    assert function_output["output"] == "ok" and "acknowledged_safety_checks" not in computer_output
    assert shell["environment"] is None and shell["status"] == "completed"
    assert shell["action"] == {"commands": ["ls"], "timeout_ms": None, "max_output_length": None}
    assert (
        shell_output["max_output_length"] is None and shell_output["output"][0]["stdout"] == "a\n"
    )
    assert search["execution"] == search_output["execution"] == "server"
    assert search["call_id"] is None and search_output["tools"][0]["name"] == "get_weather"
    again = httpx.get(server.url + f"/conversations/{conversation}/items", params={"order": "asc"})
    assert again.json()["data"] == listed
    # A response's input items are listed the same way: nothing for the trigger, nor for a
    # reference, which may leave its `type` out (`{"id": ...}`: the spec's ItemReferenceParam).
    sent = [
        {"role": "user", "content": "compact, please"},
        {"id": shell["id"]},
        {"type": None, "id": search["id"]},
        {"type": "compaction_trigger"},
    ]
    response = httpx.post(server.url + "/responses", json={"model": MODEL, "input": sent})
    assert response.status_code == 200, response.text
    inputs = httpx.get(server.url + f"/responses/{response.json()['id']}/input_items")
    assert [item["type"] for item in inputs.json()["data"]] == ["message"]
    referred = httpx.post(
        server.url + f"/conversations/{conversation}/items", json={"items": [{"id": "msg_1"}]}
    )
    assert referred.status_code == 200 and referred.json()["data"] == [], referred.text
