"""A batch of embeddings or moderation inputs is answered input by input.

Property: whatever rules pin some inputs, an input's answer in a batch is its answer alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk import sdk

from mockai import MockServer
from mockai.generate.embeddings import embed

MODEL = "text-embedding-3-small"

RULES: list[dict[str, Any]] = [
    {
        "name": "pin-alpha",
        "match": {"endpoint": "embeddings", "user": {"equals": "alpha"}},
        "reply": {"vector": [1.0, 0.0, 0.0]},
    },
    {
        "name": "pin-beta",
        "match": {"endpoint": "embeddings", "user": {"startswith": "beta"}},
        "reply": {"vector": [0.0, 0.6, 0.8]},
    },
    {"name": "seeded", "match": {"endpoint": "embeddings"}, "reply": {"seed": 3}},
    {
        "name": "violent",
        "match": {"endpoint": "moderations", "user": {"contains": "attack"}},
        "reply": {"categories": {"violence": True}},
    },
    {"name": "moderate", "match": {"endpoint": "moderations"}, "reply": {}},
]

TEXTS = ["alpha", "beta one", "beta two", "gamma rays", "attack at dawn", "a quiet morning"]


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        running.add_rules(RULES)
        yield running


@pytest.fixture(scope="module")
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with sdk(server) as built:
        yield built


def vectors(client: openai.OpenAI, inputs: list[str], **extra: Any) -> list[list[float]]:
    answer = client.embeddings.create(model=MODEL, input=inputs, encoding_format="float", **extra)
    return [item.embedding for item in answer.data]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(TEXTS), min_size=1, max_size=6))
def test_an_embedding_is_the_same_alone_or_in_a_batch(
    client: openai.OpenAI, batch: list[str]
) -> None:
    alone = {text: vectors(client, [text])[0] for text in set(batch)}
    assert vectors(client, batch) == [alone[text] for text in batch]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(TEXTS), min_size=1, max_size=6))
def test_a_moderation_result_is_the_same_alone_or_in_a_batch(
    client: openai.OpenAI, batch: list[str]
) -> None:
    def results(inputs: list[str]) -> list[dict[str, Any]]:
        answer = client.moderations.create(model="omni-moderation-latest", input=inputs)
        return [result.model_dump() for result in answer.results]

    alone = {text: results([text])[0] for text in set(batch)}
    assert results(batch) == [alone[text] for text in batch]
    flagged = [r["categories"]["violence"] for r in results(batch)]
    assert flagged == [text == "attack at dawn" for text in batch]


def test_the_pinned_query_keeps_its_vector_in_a_batch(
    client: openai.OpenAI, server: MockServer
) -> None:
    server.reset()
    got = vectors(client, ["gamma rays", "alpha", "beta two", "alpha"])
    assert got[1] == got[3] == [1.0, 0.0, 0.0]
    assert got[2] == [0.0, 0.6, 0.8]
    assert got[0] == pytest.approx(embed("gamma rays", 1536, 3), abs=1e-7)
    # One call for each rule that answered some input, named in the journal in input order.
    assert server.requests[-1].rules == ["seeded", "pin-alpha", "pin-beta"]
    assert server.requests[-1].rule == "seeded"  # (the first, as for one rule)
    assert {r.name: r.served for r in server.rules if r.name.startswith(("pin", "seed"))} == {
        "pin-alpha": 1,
        "pin-beta": 1,
        "seeded": 1,
    }


def test_vectors_of_different_sizes_in_one_answer_are_warned_about(server: MockServer) -> None:
    body = {"model": MODEL, "input": ["alpha", "gamma rays"], "encoding_format": "float"}
    with httpx.Client() as http:
        mixed = http.post(f"{server.url}/embeddings", json=body)
        cut = http.post(f"{server.url}/embeddings", json={**body, "dimensions": 3})
    assert [len(d["embedding"]) for d in mixed.json()["data"]] == [3, 1536]
    assert "vectors of different sizes (3, 1536)" in mixed.headers["x-mockai-warning"]
    # Asking for `dimensions` makes them one size: nothing to warn about.
    assert [len(d["embedding"]) for d in cut.json()["data"]] == [3, 3]
    assert "x-mockai-warning" not in cut.headers


def test_a_rule_answering_one_input_with_an_error_answers_the_batch() -> None:
    rules = [
        {"match": {"endpoint": "embeddings", "user": "boom"}, "error": "rate_limit"},
        {"match": {"endpoint": "embeddings"}, "reply": {"seed": 1}},
    ]
    with MockServer(log_requests=False) as server, sdk(server) as client:
        server.add_rules(rules)
        with pytest.raises(openai.RateLimitError):
            client.embeddings.create(model=MODEL, input=["fine", "boom"])
        assert len(vectors(client, ["fine", "also fine"])) == 2


def test_a_batch_only_a_whole_batch_condition_matches_is_answered_whole() -> None:
    # `body` sees the whole input list: alone, no input matches, so the rule answers the batch.
    rule = {
        "match": {"endpoint": "embeddings", "user": "a", "body": {"input": ["a", "b"]}},
        "reply": {"vector": [0.0, 1.0]},
    }
    with MockServer(log_requests=False) as server, sdk(server) as client:
        server.add_rule(rule)
        assert vectors(client, ["a", "b"]) == [[0.0, 1.0], [0.0, 1.0]]


def test_a_whole_batch_rule_answers_the_inputs_an_earlier_rule_leaves() -> None:
    """docs/scenarios.md: a rule matching only the batch as a whole answers all its inputs but
    those a rule written before it answers alone. With that earlier rule testing `user` (a
    pinned query), the batch's own rule answered none of them: the documents were generated."""
    rules = [
        {"name": "query", "match": {"user": {"equals": "q"}}, "reply": {"vector": [1.0, 0.0]}},
        {
            "name": "docs",
            "match": {"body": {"input": ["q", "d1", "d2"]}},
            "reply": {"vector": [0.0, 1.0]},
        },
        {"name": "d2-alone", "match": {"user": {"equals": "d2"}}, "reply": {"vector": [0.6, 0.8]}},
    ]
    with MockServer(log_requests=False) as server, sdk(server) as client:
        server.add_rules(rules)
        assert vectors(client, ["q", "d1", "d2"]) == [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
        assert server.requests[-1].rules == ["query", "docs"]
        assert {rule.name: rule.served for rule in server.rules} == {
            "query": 1,
            "docs": 1,
            "d2-alone": 0,
        }
        # Another batch is not that rule's: its inputs are their own rules' (or generated).
        other = vectors(client, ["d2", "q", "d1"])
        assert other[:2] == [[0.6, 0.8], [1.0, 0.0]] and len(other[2]) > 2
