"""Memory bounded in bytes: the journal, the stores and the caches, whatever the bodies weigh.

A load test that sends large bodies (long prompts, thousands of embedding inputs) or gets large
answers (embeddings, long streams) must leave mockai's memory where a small one does: the journal
keeps at most `journal_bytes` of bodies (the oldest bodies go first, their entries stay), the
stores at most their byte budget of answers, and the generator's cache at most its own.
"""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from mockai import MockServer
from mockai.pipeline.journal import Journal, JournalEntry
from mockai.stores.kept import Shelf
from mockai.wire.outgoing import Body


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
        entry = _entry(seq, b"x" * request)
        journal.add(entry)
        entry.response = Body(200, b"y" * response)
        journal.completed(entry)
        entries = journal.entries()
        assert journal.bytes <= budget
        assert journal.bytes == sum(e.weight for e in entries)
        # Every entry is still there (within maxlen); only bodies were dropped, oldest first.
        assert [e.seq for e in entries] == list(range(max(seq + 1 - maxlen, 0), seq + 1))
        weighty = [e for e in entries if e.dropped or e.weight]
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
        if key in order:
            order.remove(key)
        order.append(key)
        weights[key] = weight
        while order and (len(order) > capacity or sum(weights[k] for k in order) > budget):
            order.pop(0)
        assert [k for k, _ in shelf.items()] == order
        assert shelf.bytes == sum(weights[k] for k in order) <= budget
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
