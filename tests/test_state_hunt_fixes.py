"""Stored items, paging and conversations: fixes for what a bug hunt reproduced.

- An item id sent twice (in one request, or one the conversation holds) is the API's 400; and
  a cursor never sends a pager back to or before its place, so an auto-pager always ends.
- `after` names a place in the list: a client deleting while it auto-pages (files, stored
  chat completions, conversation items), or naming a file another `purpose` filters out, goes
  on from there.
- A conversation that would grow past MOCKAI_STORE_BYTES is refused growing and stays; a
  response too heavy to keep says so when named again.
- One input item has one id, in its response's `input_items` and in its conversation.
- Items of a type outside the spec's unions are refused, never stored.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from typing import Any

import conformance
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai import MockServer
from mockai.api.responses import ITEM_TYPES
from mockai.errors import ApiError
from mockai.stores import items
from mockai.stores.kept import Shelf

MODEL = "gpt-4o-mini"
DUPLICATE = "Duplicate item found with id {}. Remove duplicate items from your input and try again."


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with conformance.checked_server() as running:
        yield running


@pytest.fixture(scope="module")
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def http(server: MockServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as plain:
        yield plain


def _error(answer: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    return error


def _ids(client: openai.OpenAI, conversation_id: str) -> list[str]:
    listed = client.conversations.items.list(conversation_id, order="asc", limit=100)
    return [item.id for item in listed.data if item.id is not None]


# --- 1. a repeated item id ----------------------------------------------------------------------


def test_an_item_id_sent_twice_in_one_request_is_the_apis_400(http: httpx.Client) -> None:
    item = {"type": "message", "id": "msg_twice", "role": "user", "content": "hello"}
    sent = [item, {"role": "user", "content": "and"}, item]
    error = _error(http.post("/responses", json={"model": MODEL, "input": sent}))
    assert error["message"] == DUPLICATE.format("msg_twice")
    assert (error["type"], error["param"]) == ("invalid_request_error", "input")
    error = _error(http.post("/conversations", json={"items": sent}))
    assert (error["message"], error["param"]) == (DUPLICATE.format("msg_twice"), "items")


def test_sending_a_responses_output_back_into_its_conversation_is_refused(
    client: openai.OpenAI,
) -> None:
    """The openai-agents-python#1789 mistake: the conversation holds the output already."""
    conversation = client.conversations.create()
    first = client.responses.create(model=MODEL, input="hi", conversation=conversation.id)
    held = _ids(client, conversation.id)
    echoed = [item.model_dump(exclude_none=True) for item in first.output]
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(
            model=MODEL,
            conversation=conversation.id,
            input=[*echoed, {"role": "user", "content": "and then?"}],
        )
    assert refused.value.body == {
        "message": DUPLICATE.format(first.output[0].id),
        "type": "invalid_request_error",
        "param": "input",
        "code": None,
    }
    assert _ids(client, conversation.id) == held  # nothing added
    # A reference to a held item is no copy of it.
    again = client.responses.create(
        model=MODEL,
        conversation=conversation.id,
        input=[{"type": "item_reference", "id": held[0]}, {"role": "user", "content": "ok"}],
    )
    assert again.status == "completed"


def test_adding_an_item_the_conversation_holds_is_refused(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    conversation = client.conversations.create()
    item = {"type": "message", "id": "msg_same", "role": "user", "content": "hello"}
    route = f"/conversations/{conversation.id}/items"
    assert http.post(route, json={"items": [{"role": "user", "content": "a"}, item]}).is_success
    error = _error(http.post(route, json={"items": [{"role": "user", "content": "b"}, item]}))
    assert (error["message"], error["param"]) == (DUPLICATE.format("msg_same"), "items")
    assert len(_ids(client, conversation.id)) == 2
    seen = [listed.id for listed in client.conversations.items.list(conversation.id, limit=1)]
    assert len(seen) == 2


_PAGED = st.lists(st.sampled_from("abcdef"), max_size=12)


@settings(max_examples=200)
@given(_PAGED, st.integers(1, 4), st.sampled_from(["asc", "desc"]))
def test_following_the_cursors_ends_past_every_place_even_with_ids_listed_twice(
    ids: list[str], limit: int, order: str
) -> None:
    """Each page starts beyond the cursor's place (its furthest, for an id listed twice), so a
    pager ends within as many pages as there are items; with every id once, it sees each."""
    listed = [{"id": item_id, "n": n} for n, item_id in enumerate(ids)]
    query = {"limit": str(limit), "order": order}
    seen: list[int] = []
    for _ in range(len(ids) + 1):
        got = items.page(listed, query)
        places = [item["n"] for item in got["data"]]
        if seen:
            assert all((n > seen[-1]) if order == "asc" else (n < seen[-1]) for n in places)
        seen.extend(places)
        if not got["has_more"]:
            break
        query = {**query, "after": got["last_id"]}
    else:
        pytest.fail(f"the pager did not end: {seen}")
    if len(set(ids)) == len(ids):
        assert (
            seen
            == sorted(seen, reverse=order == "desc")
            == sorted(range(len(ids)), reverse=order == "desc")
        )


# --- 2. deleting while paging, and cursors filtered out ------------------------------------------


@settings(max_examples=150)
@given(st.integers(0, 15), st.integers(1, 4), st.sampled_from(["asc", "desc"]))
def test_deleting_each_page_while_paging_reaches_every_item(
    count: int, limit: int, order: str
) -> None:
    """A pager that deletes what each page shows sees every item once: a deleted cursor still
    names its place (`elsewhere`); an id never listed is the 400."""
    held = [{"id": f"item-{n}"} for n in range(count)]
    places = list(range(count))
    removed: dict[str, int] = {}
    query = {"limit": str(limit), "order": order}
    seen: list[str] = []
    for _ in range(count + 1):
        after = query.get("after")
        got = items.page(held, query, places=places, elsewhere=removed.get(after or ""))
        for item in got["data"]:
            at = held.index(item)
            removed[item["id"]] = places.pop(at)
            del held[at]
        seen.extend(item["id"] for item in got["data"])
        if not got["has_more"]:
            break
        query = {**query, "after": got["last_id"]}
    expected = [f"item-{n}" for n in range(count)]
    assert seen == (expected if order == "asc" else expected[::-1]) and held == []
    with pytest.raises(ApiError, match="No item with id 'nowhere'"):
        items.page([{"id": "a"}], {"after": "nowhere"})


def test_deleting_files_while_auto_paging_deletes_them_all(
    server: MockServer, client: openai.OpenAI, http: httpx.Client
) -> None:
    server.reset()
    made = [
        client.files.create(file=(f"f{n}.txt", b"x"), purpose=("user_data", "assistants")[n % 2])
        for n in range(5)
    ]
    # A cursor naming a file the `purpose` filter leaves out names its place.
    after_other = http.get(
        "/files", params={"purpose": "assistants", "after": made[2].id, "order": "asc"}
    )
    assert [f["id"] for f in after_other.json()["data"]] == [made[3].id]
    deleted = [f.id for f in client.files.list(limit=2) if client.files.delete(f.id).deleted]
    assert deleted == [f.id for f in reversed(made)]
    assert client.files.list().data == []
    # An id the server never had is still the 400.
    error = _error(http.get("/files", params={"after": "file-nowhere"}))
    assert error["param"] == "after"


def test_deleting_stored_completions_and_conversation_items_while_auto_paging(
    server: MockServer, client: openai.OpenAI
) -> None:
    server.reset()
    for n in range(5):
        client.chat.completions.create(
            model=MODEL if n % 2 else "gpt-4o",
            messages=[{"role": "user", "content": str(n)}],
            store=True,
        )
    gone = [
        c.id for c in client.chat.completions.list(limit=2) if client.chat.completions.delete(c.id)
    ]
    assert len(gone) == 5 and client.chat.completions.list().data == []
    conversation = client.conversations.create(
        items=[{"role": "user", "content": str(n)} for n in range(7)]
    )
    removed = []
    for item in client.conversations.items.list(conversation.id, limit=2):
        assert item.id is not None
        client.conversations.items.delete(item.id, conversation_id=conversation.id)
        removed.append(item.id)
    assert len(set(removed)) == 7 and _ids(client, conversation.id) == []


def test_a_stored_completion_cursor_filtered_out_names_its_place(
    server: MockServer, client: openai.OpenAI
) -> None:
    server.reset()
    made = [
        client.chat.completions.create(
            model=(MODEL, "gpt-4o")[n % 2],
            messages=[{"role": "user", "content": str(n)}],
            store=True,
        ).id
        for n in range(4)
    ]
    after = client.chat.completions.list(model=MODEL, after=made[1])
    assert [c.id for c in after.data] == [made[2]]


# --- 3. the store's byte budget -----------------------------------------------------------------

BUDGET = 400_000


@pytest.fixture(scope="module")
def small() -> Iterator[MockServer]:
    with MockServer(store_bytes=BUDGET, log_requests=False) as running:
        yield running


def _picture(size: int) -> str:
    return "data:image/png;base64," + base64.b64encode(bytes(size)).decode()


def test_a_conversation_past_the_store_budget_is_refused_growing_and_stays(
    small: MockServer,
) -> None:
    client = openai.OpenAI(base_url=small.url, api_key="sk-test", max_retries=0)
    conversation = client.conversations.create(items=[{"role": "user", "content": "start"}])
    picture = [{"type": "input_image", "image_url": _picture(30_000)}]
    turn = {"role": "user", "content": [{"type": "input_text", "text": "see?"}, *picture]}
    refused = None
    for _ in range(20):
        try:
            client.responses.create(model=MODEL, conversation=conversation.id, input=[turn])
        except openai.BadRequestError as error:
            refused = error
            break
    assert refused is not None, "the budget never ran out"
    assert refused.code == "mockai_storage_full" and "MOCKAI_STORE_BYTES" in refused.message
    held = _ids(client, conversation.id)  # still there, as it was
    assert client.conversations.retrieve(conversation.id).id == conversation.id
    with pytest.raises(openai.BadRequestError, match="MOCKAI_STORE_BYTES") as added:
        client.conversations.items.create(conversation.id, items=[turn, turn])  # type: ignore[list-item]
    assert added.value.param == "items"
    assert _ids(client, conversation.id) == held
    # A turn still has the whole conversation as its context (counted, not made: whether a
    # small turn still fits depends on how long the generated answers before it were).
    counted = httpx.post(
        f"{small.url}/responses/input_tokens",
        json={"model": MODEL, "conversation": conversation.id, "input": "hi"},
        timeout=30,
    )
    assert counted.status_code == 200, counted.text
    assert counted.json()["input_tokens"] > 100


def test_a_turn_its_conversation_refuses_is_not_kept_either() -> None:
    # A turn whose input fits but whose answer would take its conversation past the budget is
    # refused (400 mockai_storage_full) after it was answered: the response the client never
    # got was kept all the same, retrievable `completed` in a conversation that lacks it. Its
    # id is the same turn's on a server with room (ids are reproducible for the seed).
    def turns(server: MockServer) -> Iterator[httpx.Response]:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            conversation = http.post("/conversations", json={}).json()["id"]
            for n in range(60):
                body = {"model": MODEL, "input": f"go on {n}", "conversation": conversation}
                yield http.post("/responses", json=body)

    with MockServer(store_bytes=60_000, log_requests=False) as small_server:
        answers = turns(small_server)
        refused = next((n, answer) for n, answer in enumerate(answers) if answer.status_code != 200)
        answers.close()
        assert _error(refused[1])["code"] == "mockai_storage_full"
        with MockServer(log_requests=False) as roomy:
            answered = list(itertools.islice(turns(roomy), refused[0] + 1))[-1]
        unsent = answered.json()["id"]
        retrieved = httpx.get(f"{small_server.url}/responses/{unsent}", timeout=30)
        assert retrieved.status_code == 404, retrieved.text
        assert "mockai: it was" not in _error(retrieved, 404)["message"]  # never answered


def test_a_response_too_heavy_to_keep_says_so_when_named(small: MockServer) -> None:
    client = openai.OpenAI(base_url=small.url, api_key="sk-test", max_retries=0)
    content = [{"type": "input_image", "image_url": _picture(BUDGET)}]
    heavy = client.responses.create(model=MODEL, input=[{"role": "user", "content": content}])
    with pytest.raises(openai.NotFoundError, match="MOCKAI_STORE_BYTES"):
        client.responses.retrieve(heavy.id)
    with pytest.raises(openai.BadRequestError, match="MOCKAI_STORE_BYTES") as chained:
        client.responses.create(model=MODEL, input="and?", previous_response_id=heavy.id)
    assert chained.value.code == "previous_response_not_found"


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3_000)), max_size=30))
def test_an_entry_changed_on_a_shelf_stays_whatever_it_weighs(
    puts: list[tuple[int, int]],
) -> None:
    shelf: Shelf[int, int] = Shelf(4, 2_000)
    for key, weight in puts:
        held = key in shelf
        shelf.put(key, weight, weight)
        assert (key in shelf) == (held or weight <= 2_000)
        if key in shelf:
            assert list(shelf.items())[-1] == (key, weight)  # the newest
            assert shelf.bytes <= 2_000 or len(shelf) == 1


# --- 4. one item, one id ------------------------------------------------------------------------


def test_an_input_item_has_one_id_in_input_items_and_in_its_conversation(
    client: openai.OpenAI,
) -> None:
    conversation = client.conversations.create()
    made = client.responses.create(model=MODEL, input="remember 42", conversation=conversation.id)
    via_response = [item.id for item in client.responses.input_items.list(made.id)]
    assert via_response == _ids(client, conversation.id)[:1]
    client.conversations.items.delete(via_response[0], conversation_id=conversation.id)
    assert _ids(client, conversation.id) == [made.output[0].id]


# --- 5. item types outside the spec -------------------------------------------------------------


def test_items_of_a_type_outside_the_spec_are_refused_and_never_stored(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    bogus = {"type": "bogus", "foo": 1}
    error = _error(http.post("/conversations", json={"items": [bogus]}))
    assert (error["code"], error["param"]) == ("invalid_value", "items[0].type")
    conversation = client.conversations.create()
    route = f"/conversations/{conversation.id}/items"
    error = _error(http.post(route, json={"items": [{"role": "user", "content": "a"}, bogus]}))
    assert (error["code"], error["param"]) == ("invalid_value", "items[1].type")
    error = _error(http.post("/responses", json={"model": MODEL, "input": [bogus]}))
    assert (error["code"], error["param"]) == ("invalid_value", "input[0].type")
    answer = http.post(
        "/responses", json={"model": MODEL, "input": [bogus], "conversation": conversation.id}
    )
    assert _error(answer)["param"] == "input[0].type"
    assert _ids(client, conversation.id) == []


def _union_types(name: str, schemas: dict[str, Any]) -> set[str]:
    schema, found = schemas[name], set()
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        if "$ref" in branch:
            found |= _union_types(branch["$ref"].rsplit("/", 1)[-1], schemas)
    kind = schema.get("properties", {}).get("type", {})
    for option in [kind, *kind.get("anyOf", [])]:
        found |= set(option.get("enum", ()))
    return found


def test_every_item_type_the_spec_lists_is_taken() -> None:
    schemas = conformance.spec()["components"]["schemas"]
    assert set(ITEM_TYPES) == _union_types("InputItem", schemas)
    assert _union_types("ConversationItem", schemas) <= set(ITEM_TYPES)
