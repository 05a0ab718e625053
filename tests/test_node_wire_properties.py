"""Wire invariants over arbitrary content, as openai-node reads the wire.

tests/test_wire_properties.py holds openai-python to them; this holds openai-node, whose SSE
decoder and UTF-8 handling are its own (lines split on CR and LF only, bytes decoded as they
arrive, `[DONE]` only when exact). Whatever a rule scripts (any Unicode: line and paragraph
separators, CR, NUL, BOM, emoji sequences, text that looks like SSE framing), openai-node reads
from the JSON answer exactly the scripted text, and a stream it joins the way its users join it
says the same, on chat, the Responses API and legacy completions.

Each example scripts a batch of texts as rules (one per user text, `<i>`), then one Node process
asks for every one of them in every form (a Node start per text would make examples slow).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import conformance
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from node_clients import run_script
from strategies import examples, json_objects, texts

from mockai import MockServer


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with conformance.checked_server() as running:
        yield running


def asks(index: int) -> dict[str, Any]:
    """The requests for scripted text `index`: (`<1>` is no part of `<10>`, so rules never
    overlap)."""
    key = f"<{index}>"
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": key}]}
    responses = {"model": "gpt-4o-mini", "input": key}
    # (legacy completions stop at 16 tokens unless told otherwise, as the API does)
    legacy = {"model": "gpt-3.5-turbo-instruct", "prompt": key, "max_tokens": 2048}
    return {
        "chat": {"call": "chat.completions.create", "args": chat},
        "chat-stream": {
            "call": "chat.completions.create",
            "args": {**chat, "stream": True, "stream_options": {"include_obfuscation": True}},
            "mode": "events",
        },
        "responses-stream": {
            "call": "responses.create",
            "args": {**responses, "stream": True},
            "mode": "events",
        },
        "completions-stream": {
            "call": "completions.create",
            "args": {**legacy, "stream": True},
            "mode": "events",
        },
    }


def outcome(entry: dict[str, Any]) -> Any:
    assert "result" in entry, entry.get("error")
    return entry["result"]


@settings(
    max_examples=examples(3),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(texts(min_size=1), min_size=1, max_size=12))
def test_openai_node_reads_exactly_the_scripted_text(server: MockServer, batch: list[str]) -> None:
    server.clear_rules()
    for index, text in enumerate(batch):
        key = f"<{index}>"
        server.add_rule(
            {"name": f"text-{index}", "match": {"user": key}, "reply": {"content": text}}
        )
    forms = [asks(index) for index in range(len(batch))]
    cases = [case for form in forms for case in form.values()]
    results = iter(run_script("openai_sdk.mjs", {"baseURL": server.url, "cases": cases}))
    for text in batch:
        answer, chat, responses, completions = (outcome(next(results)) for _ in range(4))
        assert answer["choices"][0]["message"]["content"] == text
        joined = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chat["events"] if c["choices"]
        )
        assert joined == text
        events = responses["events"]
        deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        assert deltas == text
        assert events[-1]["type"] == "response.completed"
        assert events[-1]["response"]["output"][0]["content"][0]["text"] == text
        assert "".join(c["choices"][0]["text"] for c in completions["events"]) == text


@settings(
    max_examples=examples(3),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(
        st.lists(
            st.tuples(
                st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_-]{0,20}", fullmatch=True), json_objects()
            ),
            min_size=1,
            max_size=3,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_openai_node_stream_helpers_rebuild_the_scripted_tool_calls(
    server: MockServer, batch: list[list[tuple[str, dict[str, Any]]]]
) -> None:
    """The SDK's stream helpers (`chat.completions.stream`, `responses.stream`) accumulate the
    streamed argument fragments: their final answers hold exactly the arguments of the JSON
    answer, which are the scripted ones."""
    server.clear_rules()
    for index, calls in enumerate(batch):
        reply = {"tool_calls": [{"name": name, "arguments": args} for name, args in calls]}
        server.add_rule({"name": f"calls-{index}", "match": {"user": f"<{index}>"}, "reply": reply})
    cases = []
    for index in range(len(batch)):
        chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"<{index}>"}]}
        responses = {"model": "gpt-4o-mini", "input": f"<{index}>"}
        cases += [
            {"call": "chat.completions.create", "args": chat},
            {
                "call": "chat.completions.stream",
                "args": chat,
                "mode": "helper",
                "final": "finalChatCompletion",
            },
            {"call": "responses.create", "args": responses},
            {
                "call": "responses.stream",
                "args": responses,
                "mode": "helper",
                "final": "finalResponse",
            },
        ]
    results = iter(run_script("openai_sdk.mjs", {"baseURL": server.url, "cases": cases}))
    for calls in batch:
        answer, helper, response, streamed = (outcome(next(results)) for _ in range(4))
        sent = answer["choices"][0]["message"]["tool_calls"]
        assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in sent] == [
            (name, args) for name, args in calls
        ]
        rebuilt = helper["final"]["choices"][0]["message"]["tool_calls"]
        assert [c["function"] | {"parsed_arguments": None} for c in rebuilt] == [
            c["function"] | {"parsed_arguments": None} for c in sent
        ]
        assert helper["final"]["choices"][0]["finish_reason"] == "tool_calls"
        made = [
            (i["name"], i["arguments"]) for i in response["output"] if i["type"] == "function_call"
        ]
        final = streamed["final"]["output"]
        assert [(i["name"], i["arguments"]) for i in final if i["type"] == "function_call"] == made
        assert [(name, json.loads(arguments)) for name, arguments in made] == list(calls)
