"""Every answer is bounded by the model's output-token limit, whatever the schema asks.

A 300-byte request whose `response_format` asks for 150,000 strings of 1,000 characters used to
build 2.4 GiB and block the server for half a minute. The API stops an answer at the model's
limit (or `max_tokens`): chat says `finish_reason: "length"`, the Responses API `incomplete`
with `max_output_tokens`. So does mockai, and it never builds more than it sends.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from conformance import checked_server
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai import MockServer
from mockai.catalog import BUILTIN
from mockai.tokens import count

LIMITS = {info.id: info.max_output_tokens for info in BUILTIN}
HUGE = {"type": "array", "minItems": 150_000, "items": {"type": "string", "minLength": 1000}}
HUGE_OBJECT = {"type": "object", "properties": {"rows": HUGE}, "required": ["rows"]}
ASK = [{"role": "user", "content": "List everything"}]


def _chat(schema: Any, **options: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": ASK,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "rows", "schema": schema},
        },
        **options,
    }


def test_the_model_limit_cuts_a_schema_asking_for_gigabytes(client: openai.OpenAI) -> None:
    started = time.monotonic()
    answer = client.chat.completions.create(**_chat(HUGE_OBJECT))
    elapsed = time.monotonic() - started
    choice = answer.choices[0]
    assert choice.finish_reason == "length"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == LIMITS["gpt-4o-mini"] == 16_384
    text = choice.message.content or ""
    assert text.startswith('{"rows":["')
    assert count(text) == 16_384 and len(text) < 400_000  # the answer, not gigabytes
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)  # cut where the limit was hit, as the API cuts it
    assert elapsed < 10  # (generous: ~0.05 s on a laptop)


@pytest.mark.parametrize(
    ("options", "limit"),
    [
        ({"max_tokens": 300}, 300),
        ({"max_completion_tokens": 77}, 77),
        ({"model": "gpt-4.1-nano", "max_tokens": 50_000}, 32_768),  # the model's limit is lower
    ],
)
def test_max_tokens_or_the_model_limit_whichever_is_lower(
    client: openai.OpenAI, options: dict[str, Any], limit: int
) -> None:
    answer = client.chat.completions.create(**_chat(HUGE, **options))
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == limit
    assert count(answer.choices[0].message.content or "") == limit


def test_the_model_limit_cuts_forced_tool_arguments(client: openai.OpenAI) -> None:
    # (gpt-3.5-turbo, older than Structured Outputs, takes a schema as a tool's parameters)
    tool = {"type": "function", "function": {"name": "save_rows", "parameters": HUGE_OBJECT}}
    answer = client.chat.completions.create(
        model="gpt-3.5-turbo",
        messages=ASK,
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "save_rows"}},
    )
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 4_096


def test_a_stream_is_cut_at_the_same_place(server: MockServer) -> None:
    body = _chat(HUGE, max_tokens=500)
    whole = httpx.post(server.url + "/chat/completions", json=body).json()
    events = []
    with httpx.stream("POST", server.url + "/chat/completions", json={**body, "stream": True}) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                events.append(json.loads(line[6:]))
    streamed = "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
    assert streamed == whole["choices"][0]["message"]["content"]
    assert events[-1]["choices"][0]["finish_reason"] == "length"


def test_forced_tool_arguments_are_cut_too(client: openai.OpenAI) -> None:
    tool = {"type": "function", "function": {"name": "save_rows", "parameters": HUGE_OBJECT}}
    answer = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=ASK,
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "save_rows"}},
        max_tokens=1_000,
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "length"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].function.name == "save_rows"  # type: ignore[union-attr]
    arguments = calls[0].function.arguments  # type: ignore[union-attr]
    assert arguments.startswith('{"rows":["') and count(arguments) < 1_000
    assert answer.usage is not None and answer.usage.completion_tokens <= 1_000


def test_a_rules_generated_arguments_are_bounded(server: MockServer) -> None:
    # `arguments: auto` generates from the request's own schema: a hostile one is bounded too.
    server.add_rule(
        {
            "match": {"user": "save"},
            "reply": {"tool_calls": [{"name": "save", "arguments": "auto"}]},
        }
    )
    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
    started = time.monotonic()
    answer = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "save"}],
        tools=[{"type": "function", "function": {"name": "save", "parameters": HUGE_OBJECT}}],
    )
    assert time.monotonic() - started < 10  # (generous: ~0.2 s; unbounded, it took half a minute)
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 16_384


def test_responses_text_format_becomes_incomplete(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4o-mini",
        input="List everything",
        text={"format": {"type": "json_schema", "name": "rows", "schema": HUGE_OBJECT}},
        max_output_tokens=2_000,
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 2_000
    assert response.output_text.startswith('{"rows":["')


def test_responses_without_max_output_tokens_stop_at_the_model_limit(
    client: openai.OpenAI,
) -> None:
    response = client.responses.create(
        model="gpt-4.1-mini",
        input="List everything",
        text={"format": {"type": "json_schema", "name": "rows", "schema": HUGE_OBJECT}},
    )
    assert response.status == "incomplete"
    assert response.usage is not None and response.usage.output_tokens == 32_768


def test_a_scripted_answer_is_bounded_by_the_model_too(server: MockServer) -> None:
    server.add_rule({"match": {"user": "essay"}, "reply": "word " * 6_000})
    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-3.5-turbo", messages=[{"role": "user", "content": "essay"}]
    )
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 4_096
    # gpt-3.5-turbo-instruct's prompt and answer share its 4,096-token window: past what the
    # prompt leaves, `max_tokens` is the API's 400 (the spec's legacy `max_tokens`).
    with pytest.raises(openai.BadRequestError, match="4096 tokens"):
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt="essay", max_tokens=5_000)
    legacy = client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="essay", max_tokens=4_095
    )
    assert legacy.choices[0].finish_reason == "length"
    assert count(legacy.choices[0].text) == 4_095


def test_many_choices_share_one_bound(client: openai.OpenAI) -> None:
    started = time.monotonic()
    answer = client.chat.completions.create(**_chat(HUGE, n=128))
    assert time.monotonic() - started < 20  # (generous: ~1 s)
    assert len(answer.choices) == 128
    assert all(c.finish_reason == "length" for c in answer.choices)
    assert answer.usage is not None and answer.usage.completion_tokens <= 131_072


def test_the_same_request_gives_the_same_bytes() -> None:
    body = _chat(HUGE_OBJECT)
    answers = []
    for _ in range(2):
        with checked_server(seed=5) as server:
            answers.append(httpx.post(server.url + "/chat/completions", json=body).content)
    assert answers[0] == answers[1]


def test_others_are_served_while_a_big_answer_is_made(server: MockServer) -> None:
    body = _chat(HUGE_OBJECT, model="gpt-5")  # the largest limit: 128,000 tokens

    def big() -> float:
        started = time.monotonic()
        answer = httpx.post(server.url + "/chat/completions", json=body, timeout=60)
        assert answer.json()["choices"][0]["finish_reason"] == "length"
        return time.monotonic() - started

    waits = []
    with concurrent.futures.ThreadPoolExecutor(1) as pool, httpx.Client(timeout=60) as other:
        running = pool.submit(big)
        while not running.done():
            started = time.monotonic()
            assert other.get(server.url + "/models").status_code == 200
            waits.append(time.monotonic() - started)
        took = running.result()
    assert took < 15  # (generous: well under a second)
    assert max(waits) < 2.0  # not stalled for seconds behind it


# --- the property: bounded, and cut where a higher limit's answer continues -------------------

sizes = st.integers(min_value=0, max_value=5_000)
leaves = st.one_of(
    st.builds(lambda low: {"type": "string", "minLength": low}, sizes),
    st.just({"type": "integer"}),
    st.just({"type": "boolean"}),
)
schemas = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(
            lambda items, low: {"type": "array", "items": items, "minItems": low}, inner, sizes
        ),
        st.builds(
            lambda props: {"type": "object", "properties": props, "required": list(props)},
            st.dictionaries(st.sampled_from(["a", "b", "name", "rows"]), inner, min_size=1),
        ),
    ),
    max_leaves=4,
)


@settings(max_examples=25, deadline=None)
@given(schema=schemas, limit=st.integers(min_value=1, max_value=3_000))
def test_any_schema_is_bounded_and_cut_consistently(schema: dict[str, Any], limit: int) -> None:
    with MockServer(log_requests=False) as server:
        small = httpx.post(server.url + "/chat/completions", json=_chat(schema, max_tokens=limit))
        large = httpx.post(
            server.url + "/chat/completions", json=_chat(schema, max_tokens=limit * 2)
        )
    cut, more = (answer.json()["choices"][0] for answer in (small, large))
    text = cut["message"]["content"]
    assert count(text) <= limit
    if cut["finish_reason"] == "length":
        assert more["message"]["content"].startswith(text)  # a prefix of the longer answer
    else:
        assert json.loads(text) == json.loads(more["message"]["content"])  # it was whole


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "^a{1000000000}$"},
        {"type": "string", "pattern": "^((ab){100000}){100000}$"},
        {"type": "string", "minLength": 100_000_000, "pattern": "^[a-z ]+$"},
        {"type": "array", "minItems": 1000, "items": {"type": "array", "minItems": 1000}},
        {"type": "array", "contains": {"type": "integer"}, "minContains": 100_000_000},
        {
            "type": "array",
            "minItems": 1_000_000,
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"],
            },
        },
        {
            "anyOf": [
                {"type": "array", "minItems": 10**6, "items": {"minLength": 100}},
                {"type": "array", "minItems": 10**6, "items": {"type": "integer"}},
            ]
        },
    ],
    ids=["repeat", "nested-repeat", "length-and-pattern", "nested", "contains", "objects", "anyOf"],
)
def test_hostile_schemas_are_cut_at_the_limit(server: MockServer, schema: Any) -> None:
    started = time.monotonic()
    answer = httpx.post(server.url + "/chat/completions", json=_chat(schema), timeout=60)
    assert time.monotonic() - started < 10  # (generous: ~0.1-0.5 s)
    body = answer.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 16_384


def test_a_pattern_too_costly_to_match_is_refused_not_run(plain_server: MockServer) -> None:
    # `re` needs gigabytes to match `(?:){1000000000}` against anything: it is never run.
    schema = {"type": "string", "pattern": "^(?:){1000000000}x$"}
    started = time.monotonic()
    answer = httpx.post(plain_server.url + "/chat/completions", json=_chat(schema), timeout=60)
    assert time.monotonic() - started < 5
    assert answer.status_code != 200
    assert set(answer.json()["error"]) == {"message", "type", "param", "code"}


@pytest.fixture
def plain_server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as server:
        yield server
