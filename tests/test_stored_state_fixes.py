"""Stored responses and chat completions: fixes for what a bug hunt reproduced.

- A content part outside the spec's union for its place (a client's message or a tool's output:
  `input_text`, `input_image`, `input_file`; an assistant's: `output_text`, `refusal`) is the
  API's 400 `invalid_value`, never stored to be listed in a shape no client reads.
- `HEAD /responses/{id}` shows a background run as it stands: it neither moves it on nor adds
  its output to its conversation.
- A response pushed out of the store is refused as `previous_response_id` (the 400) and its
  404 says why; a stored chat completion pushed out, or too heavy to keep, says why too, and a
  list cursor naming it still names its place.

(The property over arbitrary input items is in test_items_properties.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import conformance
import httpx
import openai
import pytest

from mockai import MockServer

MODEL = "gpt-4o-mini"
INPUT_PARTS = "Supported values are: 'input_text', 'input_image', and 'input_file'."
OUTPUT_PARTS = "Supported values are: 'output_text' and 'refusal'."
SMALL_STORE = 6_000  # bytes: a handful of small answers, so a few more push the first out


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with conformance.checked_server() as running:
        yield running


@pytest.fixture(scope="module")
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    # (strict: a listing the SDK's models do not take fails the test)
    with openai.OpenAI(
        base_url=server.url, api_key="sk-test", max_retries=0, _strict_response_validation=True
    ) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def http(server: MockServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as plain:
        yield plain


@pytest.fixture(scope="module")
def small() -> Iterator[httpx.Client]:
    """A server whose stores hold SMALL_STORE bytes each."""
    with (
        conformance.checked_server(store_bytes=SMALL_STORE) as running,
        httpx.Client(base_url=running.url, timeout=30) as plain,
    ):
        yield plain


def _error(answer: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    return error


# --- 1. content parts by role --------------------------------------------------------------


def _message(role: str, part: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": [part]}


_AUDIO = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
REFUSED = [
    (_message("user", _AUDIO), "content", "input_audio", INPUT_PARTS),
    (_message("user", {"type": "bogus", "x": 1}), "content", "bogus", INPUT_PARTS),
    (_message("user", {"type": "text", "text": "chat's part"}), "content", "text", INPUT_PARTS),
    (
        _message("system", {"type": "output_text", "text": "a"}),
        "content",
        "output_text",
        INPUT_PARTS,
    ),
    (_message("user", {"type": "refusal", "refusal": "no"}), "content", "refusal", INPUT_PARTS),
    (
        _message("assistant", {"type": "input_text", "text": "a"}),
        "content",
        "input_text",
        OUTPUT_PARTS,
    ),
    (
        {"type": "function_call_output", "call_id": "c1", "output": [{"type": "bogus"}]},
        "output",
        "bogus",
        INPUT_PARTS,
    ),
]


@pytest.mark.parametrize(
    ("item", "field", "kind", "supported"), REFUSED, ids=[f"{r[0]['type']}-{r[2]}" for r in REFUSED]
)
def test_a_content_part_outside_its_roles_union_is_refused_and_never_stored(
    client: openai.OpenAI,
    http: httpx.Client,
    item: dict[str, Any],
    field: str,
    kind: str,
    supported: str,
) -> None:
    message = f"Invalid value: '{kind}'. {supported}"
    error = _error(http.post("/responses", json={"model": MODEL, "input": [item]}))
    assert (error["code"], error["param"], error["message"]) == (
        "invalid_value",
        f"input[0].{field}[0].type",
        message,
    )
    error = _error(http.post("/conversations", json={"items": [item]}))
    assert (error["code"], error["param"]) == ("invalid_value", f"items[0].{field}[0].type")
    conversation = client.conversations.create()
    ok = {"role": "user", "content": "fine"}
    error = _error(http.post(f"/conversations/{conversation.id}/items", json={"items": [ok, item]}))
    assert error["param"] == f"items[1].{field}[0].type" and error["message"] == message
    assert client.conversations.items.list(conversation.id).data == []  # nothing stored


def test_parts_of_the_roles_union_are_kept_and_listed_as_the_sdk_reads_them_others_not(
    client: openai.OpenAI,
) -> None:
    sent: list[Any] = [
        {"role": "user", "content": [{"type": "input_text", "text": "what is the weather?"}]},
        {"role": "developer", "content": "be brief"},
        {
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "sunny"},
                {"type": "refusal", "refusal": "no more"},
            ],
        },
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": [{"type": "input_text", "text": "22C"}],
        },
        {"role": "user", "content": "and tomorrow?"},
    ]
    response = client.responses.create(model=MODEL, input=sent)
    listed = client.responses.input_items.list(response.id, order="asc").data
    assert [item.type for item in listed] == [
        "message",
        "message",
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    conversation = client.conversations.create(items=sent)
    held = client.conversations.items.list(conversation.id, order="asc").data
    assert len(held) == len(sent)
    # The same answer resent with a client's part type instead is refused, and not added.
    resent: Any = {"role": "assistant", "content": [{"type": "input_text", "text": "sunny"}]}
    with pytest.raises(openai.BadRequestError, match="'output_text' and 'refusal'"):
        client.conversations.items.create(conversation.id, items=[resent])
    assert client.conversations.items.list(conversation.id, order="asc").data == held


# --- 2. HEAD on a background response ------------------------------------------------------


def test_head_shows_a_background_run_without_moving_it_on(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    conversation = client.conversations.create()
    created = client.responses.create(
        model=MODEL, input="in the background", background=True, conversation=conversation.id
    )
    assert created.status == "queued"
    for _ in range(3):
        probe = http.head(f"/responses/{created.id}")
        assert probe.status_code == 200 and probe.content == b""
        assert probe.headers["content-type"].startswith("application/json")
    assert len(client.conversations.items.list(conversation.id).data) == 1  # its input alone
    # Polling then runs as before: each retrieval one step on, the output joining when done.
    assert client.responses.retrieve(created.id).status == "in_progress"
    assert len(client.conversations.items.list(conversation.id).data) == 1
    assert client.responses.retrieve(created.id).status == "completed"
    assert len(client.conversations.items.list(conversation.id).data) == 2
    assert http.head("/responses/resp_never_made").status_code == 404


# --- 3. ids pushed out of the store --------------------------------------------------------


def _filled(small: httpx.Client, path: str, body: dict[str, Any], first: str) -> None:
    """More answers stored after `first`, until it is pushed out (a bounded number)."""
    for index in range(40):
        answer = small.post(path, json={**body, "input": f"filler {index}"})
        assert answer.status_code == 200, answer.text
        if small.get(f"{path}/{first}").status_code == 404:
            return
    raise AssertionError(f"{first} was never pushed out")


def test_a_response_pushed_out_of_the_store_is_refused_as_previous_and_says_why(
    small: httpx.Client,
) -> None:
    body = {"model": MODEL, "max_output_tokens": 16}
    first = small.post("/responses", json={**body, "input": "remember 42"}).json()["id"]
    chained = {**body, "input": "what number?", "previous_response_id": first}
    assert small.post("/responses", json=chained).status_code == 200  # while it is held
    _filled(small, "/responses", body, first)
    error = _error(small.get(f"/responses/{first}"), 404)
    assert error["message"].startswith(f"Response with id '{first}' not found. (mockai: it was")
    assert "pushed out of the store" in error["message"]
    assert "MOCKAI_STORE_BYTES" in error["message"]
    error = _error(small.post("/responses", json=chained))
    assert (error["code"], error["param"]) == (
        "previous_response_not_found",
        "previous_response_id",
    )
    assert "pushed out of the store" in error["message"]
    # An id this server never answered is still accepted (a response from elsewhere).
    elsewhere = {**chained, "previous_response_id": "resp_from_elsewhere"}
    assert small.post("/responses", json=elsewhere).status_code == 200


def _completion(small: httpx.Client, text: str) -> str:
    body = {
        "model": MODEL,
        "store": True,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": text}],
    }
    answer = small.post("/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    completion_id: str = answer.json()["id"]
    return completion_id


def test_a_completion_pushed_out_still_names_its_place_and_says_why(small: httpx.Client) -> None:
    first = _completion(small, "the first")
    made: list[str] = []
    while small.get(f"/chat/completions/{first}").status_code == 200:
        assert len(made) < 40, "the first completion was never pushed out"
        made.append(_completion(small, f"filler {len(made)}"))
    error = _error(small.get(f"/chat/completions/{first}"), 404)
    assert "pushed out of the store" in error["message"]
    # Paging on from it lists what followed it and is still held, then ends.
    held = [one for one in made if small.get(f"/chat/completions/{one}").status_code == 200]
    page = small.get("/chat/completions", params={"after": first, "limit": 100}).json()
    assert [one["id"] for one in page["data"]][-len(held) :] == held
    assert first not in [one["id"] for one in page["data"]]
    ahead = small.get("/chat/completions", params={"after": first, "order": "desc"}).json()
    assert ahead["data"] == [] and ahead["has_more"] is False  # nothing older: the pager ends


# --- 4. a chat completion too heavy to keep ------------------------------------------------


def test_a_completion_too_heavy_to_keep_says_so_when_named(small: httpx.Client) -> None:
    heavy = _completion(small, "x " * SMALL_STORE)
    error = _error(small.get(f"/chat/completions/{heavy}"), 404)
    assert error["message"].startswith(
        f"Chat completion with id '{heavy}' not found. (mockai: it was not kept: it weighs "
    )
    assert (
        f"more than the {SMALL_STORE} bytes the store holds (MOCKAI_STORE_BYTES)"
        in (error["message"])
    )
    after = small.get("/chat/completions", params={"after": heavy})
    assert after.status_code == 200 and after.json()["data"] == []  # the newest: none after it
