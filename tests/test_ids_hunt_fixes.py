"""Ids and padding, as the determinism hunt found them:

- A conversation's id came from a creation counter, so it (and, since the id is part of each
  turn's key, every generated answer in the conversation) depended on how many conversations
  the server had made before. It now derives from the creation request and how many times that
  exact request was made, as a response's id does: order-independent, new on a repeat, the same
  on any server with the seed (two workers sharing Redis too). File ids likewise (their
  `created_at` stays one second per file, as documented).
- Repeats of an identical streamed request differed in their `obfuscation` padding, not only in
  their ids: the padding now draws from the request's content key, not the occurrence's.

Against real servers through the openai SDK and httpx.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import conformance
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk import sdk
from service_support import RedisServer
from strategies import examples

from mockai import MockServer
from mockai.api import chat, obfuscation
from mockai.api.base import ParseContext, RenderContext
from mockai.catalog import Catalog
from mockai.pipeline.reply import Choice, Reply

MODEL = "gpt-4o-mini"
SEED = 7
RIVERS = {"items": [{"type": "message", "role": "user", "content": "I like rivers"}]}
UNRELATED = {"metadata": {"topic": "unrelated"}}
BATCH_A = b'{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}\n'
BATCH_B = b'{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{}}\n'


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[MockServer, MockServer]]:
    """Two servers with the same seed (each test resets them: `fresh`)."""
    with (
        conformance.checked_server(seed=SEED) as one,
        conformance.checked_server(seed=SEED) as other,
    ):
        yield one, other


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One pooled client for the module (a new one per request costs ~60 ms)."""
    with httpx.Client(timeout=5) as client:
        yield client


def fresh(*servers: MockServer) -> None:
    for server in servers:
        server.reset()


def _create(http: httpx.Client, server: MockServer, body: dict[str, Any]) -> str:
    conversation = http.post(server.url_for("/v1/conversations"), json=body)
    assert conversation.status_code == 200, conversation.text
    return str(conversation.json()["id"])


# --- conversation ids ---------------------------------------------------------------------------


def test_a_conversation_and_its_answers_do_not_depend_on_conversations_made_before(
    servers: tuple[MockServer, MockServer], http: httpx.Client
) -> None:
    one, other = servers
    fresh(one, other)
    answers = []
    for server, before in ((one, []), (other, [UNRELATED])):
        for body in before:
            _create(http, server, body)
        with sdk(server) as client:
            made = client.conversations.create(items=RIVERS["items"])  # type: ignore[arg-type]
            said = client.responses.create(
                model=MODEL, conversation=made.id, input="Describe a river"
            )
        answers.append((made.id, said.id, said.output_text))
    assert answers[0] == answers[1]


def test_a_repeated_creation_gets_new_ids_the_same_on_any_server(
    servers: tuple[MockServer, MockServer], http: httpx.Client
) -> None:
    one, other = servers
    fresh(one, other)
    first = [_create(http, one, RIVERS), _create(http, one, RIVERS)]
    _create(http, other, UNRELATED)
    assert [_create(http, other, RIVERS), _create(http, other, RIVERS)] == first
    assert first[0] != first[1]
    fresh(one)  # a reset server starts over, as a fresh one
    assert _create(http, one, RIVERS) == first[0]


BODIES = [RIVERS, UNRELATED, {}, {"metadata": {"topic": "lakes"}}]


@given(order=st.permutations(range(len(BODIES))))
@settings(max_examples=examples(8), deadline=None)
def test_conversation_ids_do_not_depend_on_creation_order(
    servers: tuple[MockServer, MockServer], http: httpx.Client, order: list[int]
) -> None:
    """Whatever order the same creations come in, each gets the id it gets alone."""
    one, other = servers
    if not _ALONE:  # (the same for every example)
        for index, body in enumerate(BODIES):
            fresh(other)
            _ALONE[index] = _create(http, other, body)
    fresh(one)
    assert {index: _create(http, one, BODIES[index]) for index in order} == _ALONE


_ALONE: dict[int, str] = {}  # each body's id as a fresh server's only conversation


def test_two_workers_sharing_redis_give_the_ids_of_one_server(
    servers: tuple[MockServer, MockServer], http: httpx.Client, redis: RedisServer
) -> None:
    """The same creation (or upload) on two workers gets two ids, the two a lone server gives
    it."""
    one, _ = servers
    fresh(one)
    alone = [_create(http, one, RIVERS), _create(http, one, RIVERS)]
    files = [_post_file(http, one, BATCH_A), _post_file(http, one, BATCH_A)]
    url = redis.url()
    with (
        MockServer(state=url, seed=SEED, log_requests=False) as worker,
        MockServer(state=url, seed=SEED, log_requests=False) as other_worker,
    ):
        _create(http, worker, UNRELATED)
        _post_file(http, worker, BATCH_B)
        assert [_create(http, worker, RIVERS), _create(http, other_worker, RIVERS)] == alone
        shared = [_post_file(http, worker, BATCH_A), _post_file(http, other_worker, BATCH_A)]
        assert shared == files


def _post_file(http: httpx.Client, server: MockServer, content: bytes) -> str:
    uploaded = http.post(
        server.url_for("/v1/files"), data={"purpose": "batch"}, files={"file": ("b.jsonl", content)}
    )
    assert uploaded.status_code == 200, uploaded.text
    return str(uploaded.json()["id"])


# --- file ids -----------------------------------------------------------------------------------


def _upload(client: openai.OpenAI, content: bytes) -> tuple[str, int]:
    uploaded = client.files.create(file=("b.jsonl", content), purpose="batch")
    return uploaded.id, uploaded.created_at


def test_file_ids_do_not_depend_on_files_uploaded_before(
    servers: tuple[MockServer, MockServer],
) -> None:
    one, other = servers
    fresh(one, other)
    with sdk(one) as client:
        first = [_upload(client, BATCH_A), _upload(client, BATCH_A)]
    with sdk(other) as client:
        _upload(client, BATCH_B)
        later = [_upload(client, BATCH_A), _upload(client, BATCH_A)]
    assert [file_id for file_id, _ in later] == [file_id for file_id, _ in first]
    assert first[0][0] != first[1][0]  # a repeat is a new file
    # `created_at` still counts the server's files, one second each (lists sort as uploaded)
    assert [created for _, created in later] == [first[1][1], first[1][1] + 1]


# --- obfuscation padding ------------------------------------------------------------------------

_ID = re.compile(rb'"id":"[^"]*"')


def _stream(
    http: httpx.Client, server: MockServer, path: str, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """A streamed answer's events, their ids masked."""
    answer = http.post(server.url_for(path), json={**body, "stream": True})
    assert answer.status_code == 200, answer.text
    masked = _ID.sub(b'"id":"*"', answer.content)
    return [json.loads(line[6:]) for line in masked.splitlines() if line.startswith(b"data: {")]


def test_repeated_chat_streams_differ_only_in_their_ids(
    servers: tuple[MockServer, MockServer], http: httpx.Client
) -> None:
    one, _ = servers
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Describe a river"}]}
    first, again = (_stream(http, one, "/v1/chat/completions", body) for _ in range(2))
    assert all("obfuscation" in chunk for chunk in first)
    assert again == first


def test_repeated_responses_streams_carry_the_same_padding(
    servers: tuple[MockServer, MockServer], http: httpx.Client
) -> None:
    one, _ = servers
    body = {"model": MODEL, "input": "Describe a river"}

    def padding() -> list[tuple[str, str]]:
        events = _stream(http, one, "/v1/responses", body)
        return [(e["type"], e["obfuscation"]) for e in events if "obfuscation" in e]

    first = padding()
    assert first and padding() == first


@given(text=st.text(st.characters(codec="utf-8"), min_size=1, max_size=40))
@settings(max_examples=examples(8), deadline=None)
def test_any_repeated_stream_gets_the_same_padding(
    servers: tuple[MockServer, MockServer], http: httpx.Client, text: str
) -> None:
    one, _ = servers
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    first, again = (_stream(http, one, "/v1/chat/completions", body) for _ in range(2))
    assert [c.get("obfuscation") for c in again] == [c.get("obfuscation") for c in first]


@given(
    text=st.text(min_size=1, max_size=40),
    seed=st.integers(0, 2**32),
    keys=st.lists(st.binary(min_size=32, max_size=32), min_size=2, max_size=2, unique=True),
)
@settings(max_examples=examples(40))
def test_a_streams_padding_is_the_same_under_any_ids_key(
    text: str, seed: int, keys: list[bytes]
) -> None:
    """The ids' key (new on every repeat of a request) changes a stream's ids, never its padding;
    every event is still padded to a multiple of WIDTH bytes."""
    asked = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True}
    exchange = chat.parse(asked, ParseContext({}, Catalog()))
    reply = Reply(choices=(Choice(content=text),))
    paddings = []
    for key in keys:
        frames = chat.render(reply, exchange, RenderContext(key, 0, seed=seed)).frames
        events = [bytes(frame)[6:-2] for frame in frames if bytes(frame).startswith(b"data: {")]
        assert all(len(event) % obfuscation.WIDTH == 0 for event in events)
        paddings.append([json.loads(event)["obfuscation"] for event in events])
    assert paddings[0] == paddings[1]
