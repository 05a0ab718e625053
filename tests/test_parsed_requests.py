"""Requests parsed once (mockai/pipeline/parsed.py): a body whose bytes came before answers as if
it had been parsed again.

The property: two servers with the same seed get the same requests in the same order; one keeps
parses, the other never does. Every answer (status, body, the headers that are not clocks or
request ids) and every journal entry is the same on both, whatever the bodies (arbitrary, hostile,
invalid) and whatever each request's own headers (a fault, a rule matching a header). Then what
invalidates a kept parse: a deleted model, a reset, an Azure deployment; and the store's bounds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_any_input import TEMPLATES, hostile_bodies

from mockai import MockServer
from mockai.catalog import Catalog
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.parsed import Parsed, ParsedRequests

PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/moderations"]
RULES = [
    {"name": "by-header", "match": {"headers": {"x-pick": "yes"}}, "reply": "picked by header"},
    {"name": "by-body", "match": {"body": {"n": 2}}, "reply": "{{ request.body | tojson }}"},
]
# Each request's own headers: none, a rule's header, a fault, a stream's timing.
HEADER_SETS: list[dict[str, str]] = [
    {},
    {"x-pick": "yes"},
    {"x-mockai-fault": "server_error"},
    {"x-mockai-fault": "rate_limit"},
    {"x-mockai-stream": "chunk_size=3"},
]
# Answer headers that differ between any two answers (clocks, request ids) or servers.
VARYING = {"x-request-id", "date", "openai-processing-ms", "server"}


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[MockServer, MockServer]]:
    """A server that keeps parses and one that never does, alike in everything else."""
    with (
        MockServer(fallback="generate", log_requests=False) as keeping,
        MockServer(fallback="generate", log_requests=False) as parsing,
    ):
        parsing.state.parsed = ParsedRequests(slots=0)
        for server in (keeping, parsing):
            server.add_rules(RULES)
        yield keeping, parsing


def _answer(http: httpx.Client, server: MockServer, path: str, body: bytes, headers: Any) -> Any:
    response = http.post(server.url_for(path), content=body, headers=headers)
    return response.status_code, _steady(response.headers), response.content


def _steady(headers: Any) -> dict[str, str]:
    """Headers without those that differ from one answer to the next (clocks, request ids)."""
    return {
        name: value
        for name, value in headers.items()
        if name not in VARYING and not name.startswith("x-ratelimit-reset")
    }


def _journaled(server: MockServer) -> dict[str, Any]:
    entry = server.requests[-1].as_json()
    for varying in ("seq", "request_id", "received_at", "arrived", "duration_ms", "headers_ms"):
        entry.pop(varying, None)
    entry["headers"].pop("host")  # (the servers' ports)
    entry["response_headers"] = _steady(entry["response_headers"])
    return entry


@settings(
    max_examples=int(os.environ.get("MOCKAI_FUZZ_EXAMPLES", "120")),
    derandomize="MOCKAI_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_repeated_body_answers_as_if_parsed_again(
    pair: tuple[MockServer, MockServer], data: st.DataObject
) -> None:
    keeping, parsing = pair
    path = data.draw(st.sampled_from(PATHS), label="path")
    body = data.draw(
        st.just(json.dumps(TEMPLATES[path]).encode()) | hostile_bodies(TEMPLATES[path]),
        label="body",
    )
    # (kept the second time, reused from the third)
    sends = data.draw(st.lists(st.sampled_from(HEADER_SETS), min_size=3, max_size=5))
    with httpx.Client() as http:
        for headers in sends:
            expected = _answer(http, parsing, path, body, headers)
            assert _answer(http, keeping, path, body, headers) == expected
            assert _journaled(keeping) == _journaled(parsing)


def test_repeats_are_served_from_the_kept_parse(pair: tuple[MockServer, MockServer]) -> None:
    keeping, parsing = pair
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "kept?"}]}
    hits = keeping.state.parsed.hits
    client = openai.OpenAI(base_url=keeping.url, api_key="x", max_retries=0)
    answers = [client.chat.completions.create(**body) for _ in range(5)]  # type: ignore[call-overload]
    # Parsed the first two times (kept the second), reused the other three.
    assert keeping.state.parsed.hits - hits == 3
    assert len({a.choices[0].message.content for a in answers}) == 1
    assert len({a.id for a in answers}) == 5  # each occurrence still has its own id
    assert parsing.state.parsed.hits == 0


def test_a_deleted_model_is_not_answered_from_a_kept_parse() -> None:
    model = "ft:gpt-4o-mini:org:x:kept"
    with MockServer(log_requests=False) as server:
        client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
        ask = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        assert client.chat.completions.create(**ask).model == model  # type: ignore[call-overload]
        assert client.chat.completions.create(**ask).model == model  # type: ignore[call-overload]
        client.models.delete(model)
        with pytest.raises(openai.NotFoundError) as gone:
            client.chat.completions.create(**ask)  # type: ignore[call-overload]
        assert gone.value.code == "model_not_found"
        server.reset()  # the deletion is forgotten: the model answers again
        assert client.chat.completions.create(**ask).model == model  # type: ignore[call-overload]


def test_the_same_bytes_to_two_azure_deployments_answer_as_each() -> None:
    body = json.dumps({"model": "ignored", "messages": [{"role": "user", "content": "hi"}]})
    with MockServer(log_requests=False) as server, httpx.Client() as http:
        for deployment in ("east", "west", "east", "west"):
            path = f"/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21"
            answer = http.post(server.url_for(path), content=body)
            assert answer.status_code == 200 and answer.json()["model"] == deployment


# --- the store's bounds --------------------------------------------------------------------------


def _parsed(catalog: Catalog) -> Parsed:
    exchange = Exchange(endpoint=Endpoint.CHAT, model="m", body={}, headers={})
    return Parsed(exchange, b"k", b"e", catalog, catalog.version, False, 0)


def _keep(store: ParsedRequests, raw: bytes, catalog: Catalog) -> None:
    """What the pipeline does with a parse of `raw`."""
    if store.wanted(raw):
        store.keep(Endpoint.CHAT, "openai", raw, _parsed(catalog))


def _found(store: ParsedRequests, raw: bytes, catalog: Catalog) -> bool:
    return store.get(Endpoint.CHAT, "openai", raw, catalog, False, 0) is not None


@given(
    bodies=st.lists(st.binary(max_size=40), max_size=60),
    slots=st.integers(0, 6),
    max_total=st.integers(0, 120),
    max_body=st.integers(0, 50),
)
def test_the_store_stays_within_its_bounds(
    bodies: list[bytes], slots: int, max_total: int, max_body: int
) -> None:
    catalog = Catalog()
    store = ParsedRequests(slots, max_total, max_body)
    came: set[bytes] = set()
    for raw in bodies:
        _keep(store, raw, catalog)
        if raw not in came:  # the first time: only its hash is left behind
            assert not _found(store, raw, catalog)
        came.add(raw)
        held = [r for r in came if _found(store, r, catalog)]
        assert len(store) == len(held) <= slots
        assert store.total_bytes == sum(map(len, held)) <= max_total
        assert all(len(r) <= max_body for r in held)


@given(bodies=st.lists(st.binary(max_size=40), min_size=1, max_size=30))
def test_a_body_that_comes_again_is_kept(bodies: list[bytes]) -> None:
    catalog = Catalog()
    store = ParsedRequests()
    for raw in bodies:
        _keep(store, raw, catalog)
        _keep(store, raw, catalog)
        assert _found(store, raw, catalog)


def test_a_full_budget_keeps_what_it_holds() -> None:
    catalog = Catalog()
    store = ParsedRequests(slots=512, max_total_bytes=100)
    first = b"a" * 60
    # (Another slot than the first's: one body replaces another in its slot whatever the budget,
    # and the process's hashes put two bodies in one slot once in 512 runs.)
    second = next(
        body
        for body in (bytes([letter]) * 60 for letter in b"bcdefghijk")
        if hash(body) % 512 != hash(first) % 512
    )
    for raw in (first, first, second, second):
        _keep(store, raw, catalog)
    assert _found(store, first, catalog) and not _found(store, second, catalog)
    assert store.total_bytes == 60


def test_a_parse_is_kept_only_for_what_it_was_made_against() -> None:
    catalog = Catalog()
    store = ParsedRequests()
    for _ in range(2):  # (kept the second time)
        _keep(store, b"{}", catalog)

    def found(**changed: Any) -> bool:
        asked: dict[str, Any] = {"endpoint": Endpoint.CHAT, "provider": "openai", "raw": b"{}"}
        asked |= {"catalog": catalog, "strict": False, "seed": 0} | changed
        return store.get(**asked) is not None

    assert found()
    assert not found(endpoint=Endpoint.EMBEDDINGS)
    assert not found(provider="groq")
    assert not found(raw=b"{ }")
    assert not found(catalog=Catalog())
    assert not found(strict=True)
    assert not found(seed=1)
    catalog.restore()  # what the catalog answers may have changed
    assert not found()
