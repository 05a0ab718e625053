"""The Vercel AI SDK (`ai`) with its OpenAI provider (`@ai-sdk/openai`) against mockai.

A Next.js app's way to OpenAI: `openai("gpt-4o-mini")` speaks the Responses API, `openai.chat(...)`
Chat Completions, `openai.completion(...)` the legacy completions; the SDK checks every answer and
every stream event against its own schemas, runs tools over several steps, and retries by its own
rules. Each test runs tests/node/drive.mjs once against a mockai started here (the versions are
tests/node's lockfile's) and checks what the SDK made of the answers against what the server saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import conformance
import jsonschema
import numpy
import openai
import pytest
from node_clients import run_script

from mockai import MockServer

WEATHER = "What is the weather in Paris?"
PLACE = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}},
    "required": ["city", "temperature"],
    "additionalProperties": False,
}


@pytest.fixture
def server() -> Iterator[MockServer]:
    with conformance.checked_server() as running:
        yield running


def drive(server: MockServer, cases: list[dict[str, Any]], **spec: Any) -> list[dict[str, Any]]:
    spec = {
        "client": "ai-openai",
        "baseURL": server.url,
        "model": "gpt-4o-mini",
        "cases": cases,
        **spec,
    }
    results: list[dict[str, Any]] = run_script("drive.mjs", spec)
    assert len(results) == len(cases)
    return results


def with_fault(value: str, **settings: Any) -> dict[str, Any]:
    return {"headers": {"x-mockai-fault": value}, **settings}


def generation_cases() -> list[dict[str, Any]]:
    return [
        {"op": "generate"},
        {"op": "stream"},
        {"op": "tools", "prompt": WEATHER},
        {"op": "stream-tools", "prompt": WEATHER},
        {"op": "object", "prompt": "The weather in Paris, as data", "schema": PLACE},
    ]


def check_generation(results: list[dict[str, Any]]) -> None:
    generated, streamed, tools, stream_tools, structured = results
    assert generated["text"] and generated["finishReason"] == "stop"
    usage = generated["usage"]
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"] > 0
    # The stream, checked event by event by the SDK, says what the whole answer said.
    assert streamed["errors"] == [] and streamed["text"] == generated["text"]
    assert streamed["usage"]["outputTokens"] == usage["outputTokens"]
    assert "error" not in streamed["parts"]
    # Two steps: the call, then the answer once the SDK sent the tool's result back.
    assert tools["steps"] == 2 and tools["finishReason"] == "stop"
    assert [(c["name"], c["input"]) for c in tools["toolCalls"]] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert '"forecast":"sunny"' in tools["text"]  # the tool's result reached the model
    assert stream_tools["finishReason"] == "tool-calls"
    assert stream_tools["toolCalls"][0]["input"] == {"city": "Paris"}
    jsonschema.validate(structured["object"], PLACE)


def _tool_round(seen: list[Any]) -> tuple[Any, Any]:
    """The first tool call's request and the request that answered it."""
    with_tools = [e for e in seen if e.body.get("tools")]
    return with_tools[0], with_tools[1]


def test_the_responses_model(server: MockServer) -> None:
    check_generation(drive(server, generation_cases()))
    seen = [e for e in server.requests if e.endpoint is not None]
    assert {e.path for e in seen} == {"/v1/responses"}
    # The tool's result went back as a function_call_output naming the call the model made.
    call, answer = _tool_round(seen)
    output = next(i for i in answer.body["input"] if i.get("type") == "function_call_output")
    made = call.response_json()["output"]
    assert output["call_id"] == next(i["call_id"] for i in made if i["type"] == "function_call")
    # Structured output asked for as a json_schema.
    assert seen[-1].body["text"]["format"]["type"] == "json_schema"


def test_the_chat_model(server: MockServer) -> None:
    check_generation(drive(server, generation_cases(), api="chat"))
    seen = [e for e in server.requests if e.endpoint is not None]
    assert {e.path for e in seen} == {"/v1/chat/completions"}
    call, answer = _tool_round(seen)
    made = call.response_json()["choices"][0]["message"]["tool_calls"][0]
    sent_back = next(m for m in answer.body["messages"] if m["role"] == "tool")
    assert sent_back["tool_call_id"] == made["id"]
    assert seen[-1].body["response_format"]["type"] == "json_schema"


def test_the_completion_model(server: MockServer) -> None:
    generated, streamed = drive(
        server,
        [{"op": "generate"}, {"op": "stream"}],
        api="completion",
        model="gpt-3.5-turbo-instruct",
    )
    assert generated["text"] and streamed["text"] == generated["text"]
    assert {e.path for e in server.requests} == {"/v1/completions"}


def test_embeddings_and_images(server: MockServer) -> None:
    values = ["a cat sat on the mat", "the cats sat on mats", "quarterly stock market report"]
    embedded, pictured = drive(
        server,
        [
            {"op": "embed", "model": "text-embedding-3-small", "values": values},
            {"op": "image", "model": "gpt-image-1", "prompt": "a lighthouse at dusk"},
        ],
    )
    vectors = numpy.array(embedded["embeddings"])
    with openai.OpenAI(base_url=server.url, api_key="sk-python", max_retries=0) as python:
        expected = python.embeddings.create(model="text-embedding-3-small", input=values)
    assert numpy.array_equal(
        vectors.astype(numpy.float32),
        numpy.array([d.embedding for d in expected.data], numpy.float32),
    )
    # Lexical overlap is what the vectors encode: the two cat sentences are the closest pair.
    cosine = vectors @ vectors.T
    assert cosine[0, 1] > 0.5 > cosine[0, 2]
    assert embedded["usage"]["tokens"] > 0
    (image,) = pictured["images"]
    assert image["mediaType"] == "image/png" and image["base64"].startswith("iVBORw0KGgo")


def test_faults_as_the_ai_sdk_sees_them(server: MockServer) -> None:
    """The AI SDK retries by the status alone (408, 409, 429, 5xx) and ignores `x-should-retry`,
    honours `retry-after-ms` / `retry-after` under 60 s and otherwise backs off from 2 s; an
    in-band error ends a stream with an `error` part; a dropped stream throws."""
    retried, ignored, errored, cut = drive(
        server,
        [
            {
                "op": "generate",
                "prompt": "retried",
                "settings": {
                    "maxRetries": 2,
                    **with_fault("rate_limit;retry_after=100ms;attempts=1"),
                },
            },
            {
                "op": "generate",
                "prompt": "ignored",
                "settings": {
                    "maxRetries": 1,
                    **with_fault("overloaded;should_retry=false;retry_after=100ms"),
                },
            },
            {"op": "stream", "prompt": "errored", "settings": with_fault("error_event_after=2")},
            {"op": "stream", "prompt": "cut", "settings": with_fault("disconnect_after=2")},
        ],
        api="chat",
    )
    by_prompt: dict[str, list[int]] = {}
    for entry in server.requests:
        by_prompt.setdefault(entry.body["messages"][-1]["content"], []).append(entry.status)
    assert retried["text"] and by_prompt["retried"] == [429, 200]
    # openai-python and openai-node stop at `x-should-retry: false`; the AI SDK does not.
    assert ignored["error"]["name"] == "RetryError"
    assert by_prompt["ignored"] == [503, 503]
    assert errored["finishReason"] == "error" and "error" in errored["parts"]
    assert errored["errors"][0]["status"] == 500 and errored["errors"][0]["retryable"] is True
    assert cut["error"]["cause"] == "terminated"
    assert by_prompt["errored"] == by_prompt["cut"] == [200]
