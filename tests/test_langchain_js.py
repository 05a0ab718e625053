"""LangChain JS (`@langchain/openai` on openai-node, from tests/node's lockfile) against mockai:
tests/node/langchain.mjs runs ChatOpenAI and OpenAIEmbeddings; this checks what LangChain made of
the answers against what the server saw."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import conformance
import numpy
import openai
import pytest
from node_clients import run_script

from mockai import MockServer

Ran = tuple[MockServer, dict[str, Any]]


@pytest.fixture(scope="module")
def ran() -> Iterator[Ran]:
    """One run of the script for both tests (LangChain's backoff takes seconds)."""
    with conformance.checked_server() as server:
        yield server, run_script("langchain.mjs", {"baseURL": server.url})


def by_prompt(server: MockServer) -> dict[str, list[int]]:
    """Each chat prompt's statuses, in order."""
    seen: dict[str, list[int]] = {}
    for entry in server.requests:
        if entry.endpoint == "chat":
            seen.setdefault(entry.body["messages"][-1].get("content") or "", []).append(
                entry.status
            )
    return seen


def test_chat_openai_and_embeddings(ran: Ran) -> None:
    server, out = ran
    invoked, streamed = out["invoke"], out["stream"]
    assert invoked["text"] and streamed["text"] == invoked["text"]
    usage = invoked["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert streamed["usage"]["output_tokens"] == usage["output_tokens"]  # the usage chunk read
    # A tool bound, called, its result sent back as a ToolMessage, then the answer.
    (call,) = out["tools"]["calls"]
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})
    assert out["tools"]["result"] == '{"city":"Paris","forecast":"sunny"}'
    assert out["tools"]["result"] in out["tools"]["final"]
    tool_message = next(
        m
        for e in server.requests
        if e.endpoint == "chat"
        for m in e.body["messages"]
        if m["role"] == "tool"
    )
    assert tool_message["tool_call_id"] == call["id"]
    # Streamed tool-call chunks join to the call (LangChain merges them by index).
    assert out["streamedToolCall"]["name"] == "get_weather"
    assert out["streamedToolCall"]["args"] == '{"city":"Rome"}'
    assert out["streamedToolCall"]["chunks"] > 1
    assert set(out["structured"]) == {"city", "temperature"}
    assert isinstance(out["structured"]["temperature"], int | float)
    with openai.OpenAI(base_url=server.url, api_key="sk-python", max_retries=0) as python:
        expected = python.embeddings.create(
            model="text-embedding-3-small", input=["a cat sat on the mat", "the cats sat"]
        )
    assert numpy.array_equal(
        numpy.array(out["embeddings"], numpy.float32),
        numpy.array([d.embedding for d in expected.data], numpy.float32),
    )
    assert out["responses"] and out["responsesStream"] == out["responses"]
    assert [e.path for e in server.requests if e.endpoint == "responses"] == ["/v1/responses"] * 2


def test_langchains_own_retries(ran: Ran) -> None:
    """LangChain retries above openai-node (AsyncCaller): a 429 is retried after the wait it
    names, insufficient_quota is not retried at all (openai-python and openai-node retry it).
    Each of its attempts tells the server it is a first one, so `attempts=N` needs
    `count=requests`."""
    server, out = ran
    statuses = by_prompt(server)
    assert out["rateLimited"]["error"] is None
    assert statuses["rate limited"] == [429, 200]
    assert out["quota"]["error"] == "InsufficientQuotaError"
    assert statuses["quota"] == [429]
    assert out["everyAttemptFirst"]["error"] is not None
    assert statuses["every attempt first"] == [429, 429]  # maxRetries 1: two "first"s
