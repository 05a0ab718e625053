"""Memory bounded in bytes: the journal, the stores and the caches, whatever the bodies weigh.

A load test that sends large bodies (long prompts, thousands of embedding inputs) or gets large
answers (embeddings, long streams) must leave mockai's memory where a small one does: the journal
keeps at most `journal_bytes` of bodies (the oldest bodies go first, their entries stay), the
stores at most their byte budget of answers, and the generator's cache at most its own.
"""

from __future__ import annotations

import base64
import sys
import tracemalloc
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockai import MockServer
from mockai.backend.memory import finish_now
from mockai.errors import ApiError
from mockai.pipeline.journal import Journal, JournalEntry
from mockai.stores import conversations
from mockai.stores.conversations import ConversationStore
from mockai.stores.kept import Shelf, size_of
from mockai.wire import jsonbytes
from mockai.wire.outgoing import Body


def _heavy(sizes: list[tuple[int, int]], budget: int) -> set[int]:
    """The entries heavier (request and answer) than the whole budget."""
    return {seq for seq, (request, response) in enumerate(sizes) if request + response > budget}


def _entry(seq: int, body: bytes) -> JournalEntry:
    return JournalEntry(seq, f"req_{seq}", "POST", "/v1/x", 0.0, 0.0, {}, body)


@given(
    st.lists(st.tuples(st.integers(0, 5_000), st.integers(0, 20_000)), min_size=1, max_size=60),
    st.integers(1, 40_000),
    st.integers(1, 30),
)
def test_the_journal_keeps_its_byte_budget_dropping_the_oldest_bodies_first(
    sizes: list[tuple[int, int]], budget: int, maxlen: int
) -> None:
    journal = Journal(maxlen, budget)
    for seq, (request, response) in enumerate(sizes):
        kept_before = {e.seq for e in journal.entries() if not e.dropped}
        entry = _entry(seq, b"x" * request)
        journal.add(entry)
        entry.response = Body(200, b"y" * response)
        journal.completed(entry)
        entries = journal.entries()
        assert journal.bytes <= budget
        assert journal.bytes == sum(e.weight for e in entries)
        # Every entry is still there (within maxlen); only bodies were dropped, oldest first.
        assert [e.seq for e in entries] == list(range(max(seq + 1 - maxlen, 0), seq + 1))
        if request + response > budget:  # heavier than the whole budget: dropped
            assert entry.dropped
        if request > budget:  # known as it arrives: dropped alone, evicting nothing for it
            assert {e.seq for e in entries if not e.dropped} == kept_before - {seq - maxlen}
        heavy = _heavy(sizes, budget)
        weighty = [e for e in entries if (e.dropped or e.weight) and e.seq not in heavy]
        flags = [e.dropped for e in weighty]
        assert flags == sorted(flags, reverse=True)  # dropped ones precede kept ones
        for e in entries:
            if e.dropped:
                assert e.body is None and e.response is None
            else:
                assert e.weight == len(e.body or b"") + len(e.response.body)  # type: ignore[union-attr]


def test_a_server_journal_stays_within_its_budget_and_says_what_it_dropped() -> None:
    big = ["lorem ipsum dolor sit amet " * 200] * 20  # ~108 KB per request
    with MockServer(journal_bytes=1_500_000, log_requests=False) as server:
        for index in range(12):
            answer = httpx.post(
                server.url + "/embeddings",
                json={"model": "text-embedding-3-small", "input": [*big, f"text {index}"]},
                timeout=30,
            )
            assert answer.status_code == 200
        entries = server.requests
        assert len(entries) == 12  # every request is still listed
        assert server.journal.bytes <= 1_500_000
        assert entries[0].dropped and entries[0].body is None and entries[0].response is None
        assert not entries[-1].dropped and entries[-1].body["input"][20] == "text 11"
        assert entries[-1].response_json()["data"][20]["index"] == 20
        listed = httpx.get(server.base_url + "/_mockai/requests").json()
        shown: list[dict[str, Any]] = listed["data"]
        assert shown[0]["dropped"] is True and shown[0]["body"] is None
        assert shown[-1]["dropped"] is False and shown[-1]["status"] == 200


def test_a_journal_of_no_entries_holds_no_bodies() -> None:
    """`journal_size=0` (a load test keeping no journal): each entry and its bodies were still
    weighed and held, out of sight, until they filled the whole byte budget."""
    with MockServer(journal_size=0, log_requests=False) as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-test")
        for index in range(20):
            client.embeddings.create(model="text-embedding-3-small", input=["word " * 2000] * 5)
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"hi {index}"}]
            )
        assert server.requests == []
        assert server.journal.bytes == 0
        assert httpx.get(server.url_for("/_mockai/requests")).json()["data"] == []


def test_a_body_heavier_than_the_whole_journal_budget_is_answered_and_not_kept() -> None:
    """The journal drops such a body as its entry is added; the request is still answered from
    the body as it came (it had been a 500), and its entry shows no body, parsed or not."""
    prompt = "lorem ipsum " * 30_000  # ~360 KB
    with (
        MockServer(journal_bytes=100_000, log_requests=False) as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
    ):
        small = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        chat = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
        )
        assert chat.usage is not None and chat.usage.prompt_tokens > 30_000
        heard = client.audio.transcriptions.create(
            model="whisper-1", file=("memo.wav", b"RIFF" + b"\0" * 300_000)
        )
        assert heard.text
        made = client.conversations.create(metadata={"topic": "big"}, items=[_message(prompt)])
        assert made.metadata == {"topic": "big"}
        first, *entries = server.requests
        assert [e.status for e in entries] == [200, 200, 200]
        assert all(e.dropped and e.body is None for e in entries)
        assert server.journal.bytes <= 100_000
        # Nothing older was dropped for them: they would never fit (it emptied the journal).
        assert not first.dropped and first.response_json()["id"] == small.id


@given(
    st.lists(st.tuples(st.integers(0, 7), st.integers(0, 3_000)), max_size=40),
    st.integers(1, 6),
    st.integers(0, 8_000),
)
def test_a_shelf_keeps_its_count_and_byte_bounds_evicting_the_oldest(
    puts: list[tuple[int, int]], capacity: int, budget: int
) -> None:
    shelf: Shelf[int, str] = Shelf(capacity, budget)
    order: list[int] = []  # keys, oldest first, as a plain model
    weights: dict[int, int] = {}
    for key, weight in puts:
        shelf.put(key, f"answer {key}", weight)
        refreshed = key in order
        if refreshed:
            order.remove(key)
        if weight > budget and not refreshed:  # a new one never fits: not kept, nothing evicted
            assert key not in shelf
            continue
        order.append(key)  # (one changed stays, whatever it weighs now: the others go first)
        weights[key] = weight
        while order and (
            len(order) > capacity or (len(order) > 1 and sum(weights[k] for k in order) > budget)
        ):
            order.pop(0)
        assert [k for k, _ in shelf.items()] == order
        assert shelf.bytes == sum(weights[k] for k in order)
        assert shelf.bytes <= budget or order == [key]
        assert len(shelf) <= capacity


def test_stored_responses_stay_within_their_byte_budget() -> None:
    with MockServer(store_bytes=20_000, log_requests=False) as server:
        made = []
        for index in range(40):
            answer = httpx.post(
                server.url + "/responses",
                json={"model": "gpt-4o-mini", "input": f"Tell me a long story, part {index}"},
                timeout=30,
            )
            assert answer.status_code == 200
            made.append(answer.json()["id"])
        store = server.state.responses
        assert 0 < store._stored.bytes <= 20_000
        assert 1 < len(store._stored) < 40
        assert httpx.get(server.url + f"/responses/{made[-1]}").status_code == 200
        assert httpx.get(server.url + f"/responses/{made[0]}").status_code == 404  # went first


def test_stored_requests_weigh_their_pictures() -> None:
    """What a stored response or chat completion keeps of its request (its `input`, its
    `messages`) counts by its size: an image part is ~100 tokens but a quarter of a megabyte of
    base64 here, and weighed by its tokens 30 of them had stayed within a 1 MiB budget."""
    picture = "data:image/png;base64," + base64.b64encode(bytes(192 * 1024)).decode()
    question = "what is this?"
    with MockServer(store_bytes=1 << 20, log_requests=False) as server:
        responses, completions = [], []
        for _ in range(12):
            content = [
                {"type": "input_text", "text": question},
                {"type": "input_image", "image_url": picture},
            ]
            answer = httpx.post(
                server.url + "/responses",
                json={"model": "gpt-4o-mini", "input": [{"role": "user", "content": content}]},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            responses.append(answer.json()["id"])
            content = [
                {"type": "text", "text": question},
                {"type": "image_url", "image_url": {"url": picture}},
            ]
            answer = httpx.post(
                server.url + "/chat/completions",
                json={
                    "model": "gpt-4o-mini",
                    "store": True,
                    "messages": [{"role": "user", "content": content}],
                },
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            completions.append(answer.json()["id"])
        for path, made in (
            ("/responses/{}/input_items", responses),
            ("/chat/completions/{}", completions),
        ):
            kept = [httpx.get(server.url + path.format(one)).status_code for one in made]
            assert kept[-1] == 200 and kept[0] == 404
            assert 1 <= kept.count(200) <= 4  # (1 MiB holds four pictures of 256 KiB)
        assert server.state.responses._stored.bytes <= 1 << 20


def test_stored_chat_completions_weigh_the_tools_they_echo() -> None:
    """A stored chat completion echoes its request's `tools` (and `response_format`) when
    retrieved, so it holds them: they weighed nothing, and a 1 MiB budget kept 60 completions
    of 380 KB of tools each (22 MiB). Here 16 tools, ~100 KB of JSON and ~280 KB of objects."""
    tools = [
        {
            "type": "function",
            "function": {
                "name": f"tool_{index}",
                "description": "d" * 1000,
                "parameters": {
                    "type": "object",
                    "properties": {
                        f"p{n}": {"type": "string", "description": "x" * 200} for n in range(20)
                    },
                },
            },
        }
        for index in range(16)
    ]
    with (
        MockServer(store_bytes=1 << 20, log_requests=False) as server,
        openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client,
    ):
        made = [
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"question {index}"}],
                tools=tools,  # type: ignore[arg-type]
                tool_choice="none",
                store=True,
            ).id
            for index in range(12)
        ]
        kept = [one.id for one in client.chat.completions.list(limit=100)]
        assert kept and kept == made[-len(kept) :]
        assert len(kept) <= 3  # (1 MiB holds three such completions' tools)
        assert client.chat.completions.retrieve(made[-1]).model_extra["tools"] == tools  # type: ignore[index]


def test_the_generators_cache_is_bounded_in_bytes() -> None:
    with MockServer(log_requests=False) as server:
        for index in range(80):  # 80 x 20 inputs x 3072 float32: ~20 MB of vectors made
            answer = httpx.post(
                server.url + "/embeddings",
                json={
                    "model": "text-embedding-3-large",
                    "input": [f"text {index} {k}" for k in range(20)],
                },
                timeout=30,
            )
            assert answer.status_code == 200
        generator = server.state.decider.generator
        assert 0 < generator.cached_bytes <= 8 * 1024 * 1024


def test_the_answers_a_server_keeps_weigh_their_length() -> None:
    """The journal counts each answer by its length; what it holds must be that. orjson returns
    its working buffer unshrunk (4 KiB and up), so before its results were copied to their own
    size 200 chat answers of ~650 bytes held 818 KB where the journal counted 160 KB."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        with (
            MockServer(log_requests=False) as server,
            openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
        ):
            for index in range(200):  # distinct questions: each answer written afresh
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": f"Question {index}"}]
                )
            written_here = tracemalloc.Filter(True, jsonbytes.__file__)
            held = tracemalloc.take_snapshot().filter_traces([written_here]).traces
            answers = [entry.response.body for entry in server.requests if entry.response]
    finally:
        if not tracing:
            tracemalloc.stop()
    assert len(answers) == 200
    # What JSON the server wrote and still holds, past the small pieces of parsed requests: the
    # journal's answers, each in a block of its own size.
    kept_bodies = [trace.size for trace in held if trace.size >= 512]
    assert sum(kept_bodies) <= sum(sys.getsizeof(body) for body in answers)


# --- conversations ------------------------------------------------------------------------------

_ITEM_TEXT = st.text(max_size=300)
_OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.lists(_ITEM_TEXT, max_size=4)),
        st.tuples(st.just("add"), st.integers(0, 30), st.lists(_ITEM_TEXT, min_size=1, max_size=4)),
        st.tuples(st.just("delete_item"), st.integers(0, 30), st.integers(0, 30)),
        st.tuples(st.just("metadata"), st.integers(0, 30), st.text(max_size=200)),
        st.tuples(st.just("delete"), st.integers(0, 30)),
    ),
    max_size=40,
)


def _message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


@given(_OPERATIONS, st.integers(1_000, 6_000), st.integers(1, 6))
def test_conversations_keep_their_byte_budget_weighing_what_they_hold(
    operations: list[tuple[Any, ...]], budget: int, capacity: int
) -> None:
    """Whatever is created, added, removed or renamed, the store holds at most `capacity`
    conversations and `budget` bytes, each weighed exactly as its items and metadata are now
    (the running count never drifts from a weighing from scratch), the least recently changed
    going first."""
    store = ConversationStore(capacity=capacity, max_bytes=budget)
    made: list[str] = []  # every id created, to pick from (some are gone)
    changed: list[str] = []  # the held ones by our own account, least recently changed first
    for operation in operations:
        kind, *args = operation
        target = made[args[0] % len(made)] if made and kind != "create" else None
        try:
            if kind == "create":
                made.append(
                    finish_now(store.create({"items": [_message(t) for t in args[0]]}))["id"]
                )
                target = made[-1]
            elif target is None:
                continue
            elif kind == "add":
                finish_now(store.add_items(target, {"items": [_message(t) for t in args[1]]}))
            elif kind == "delete_item":
                listed = finish_now(store.list_items(target, {"limit": "100"}))["data"]
                if not listed:
                    continue
                finish_now(store.delete_item(target, listed[args[1] % len(listed)]["id"]))
            elif kind == "metadata":
                finish_now(store.update(target, {"metadata": {"note": args[1]}}))
            else:
                finish_now(store.delete(target))
                changed.remove(target)
                continue
        except ApiError as error:
            if error.status == 400:  # past the whole budget by itself: refused, nothing changed
                assert error.code == "mockai_storage_full"
                continue
            # gone already (evicted or deleted): a 404, nothing changed
            assert error.status == 404 and target not in changed
            continue
        before = [c for c in changed if c != target]
        changed = [*before, target]
        records = store._conversations
        held = [c.id for c in finish_now(records.values())]
        if target in held:
            # The most recently changed are held, in that order: the least recent went first.
            assert held == changed[len(changed) - len(held) :]
        else:
            # Heavier than the whole budget by itself: not kept, and nothing else went for it.
            assert held == before
        changed = held
        weights = [_conversation_weight(c) for c in finish_now(records.values())]
        assert records.bytes == sum(weights) <= budget
        assert len(held) <= capacity


def _conversation_weight(conversation: Any) -> int:
    """A conversation's weight from scratch (checking the running count it keeps)."""
    items_bytes = sum(size_of(item) for item in conversation.items)
    assert conversation.items_bytes == items_bytes
    return items_bytes + size_of(conversation.metadata) + conversations._OVERHEAD


def test_a_servers_conversations_stay_within_the_store_budget() -> None:
    """Through the SDK: conversations past `store_bytes` go, the one changed least recently
    first; one a Responses request keeps extending stays."""
    with MockServer(store_bytes=200_000, log_requests=False) as server:
        server.add_rules([{"name": "short", "match": {"user": "Still here?"}, "reply": "Yes."}])
        client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
        kept_alive = client.conversations.create(items=[_message("Keep me.")])
        made = []
        # ~8 KB each, and ~100 KB the one kept alive (its 61 small items, weighed as the objects
        # they take: ~1.6 KB each): ~350 KB in all, past the budget
        for index in range(30):
            made.append(client.conversations.create(items=[_message(f"{index} " + "x" * 8000)]))
            client.responses.create(
                model="gpt-4o-mini", input="Still here?", conversation=kept_alive.id
            )
        assert client.conversations.retrieve(made[-1].id).id == made[-1].id
        with pytest.raises(openai.NotFoundError):
            client.conversations.retrieve(made[0].id)
        items = client.conversations.items.list(kept_alive.id, limit=100).data
        assert len(items) == 1 + 2 * 30  # its first message, then 30 questions and answers
        held = server.state.conversations._conversations
        assert 0 < held.bytes <= 200_000 and 1 < len(held) < 31
        # Every path that added items (create, the Responses requests) weighed them exactly.
        assert held.bytes == sum(map(_conversation_weight, finish_now(held.values())))
