"""LangChain's OpenAI integration (langchain-openai) against mockai: most apps reach OpenAI
through it, and it parses chunks, tool calls, usage and the Responses API its own way
(wire contract, section 16)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import conformance
import pytest

from mockai import MockServer

if TYPE_CHECKING:
    from langchain_core.messages import AIMessageChunk
    from langchain_openai import ChatOpenAI

KEY = "sk-test-langchain"


@pytest.fixture(scope="module")
def lc() -> SimpleNamespace:
    """LangChain, imported by this module's first test, not at collection (~1.6 s, which every
    xdist worker paid collecting the suite), and the tool the tests offer."""
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import AzureChatOpenAI, OpenAIEmbeddings

    @tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return f"18C in {city}"

    return SimpleNamespace(
        HumanMessage=HumanMessage,
        ToolMessage=ToolMessage,
        AzureChatOpenAI=AzureChatOpenAI,
        OpenAIEmbeddings=OpenAIEmbeddings,
        get_weather=get_weather,
    )


@pytest.fixture
def server() -> Iterator[MockServer]:
    with conformance.checked_server() as running:
        yield running


def chat(server: MockServer, **options: Any) -> ChatOpenAI:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model="gpt-4o-mini", base_url=server.url, api_key=KEY, max_retries=0, **options
    )  # type: ignore[arg-type]


def test_invoke_and_stream_give_the_same_answer_with_usage(server: MockServer) -> None:
    llm = chat(server, stream_usage=True)
    answer = llm.invoke("Hello there")
    merged: AIMessageChunk | None = None
    for chunk in llm.stream("Hello there"):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None and merged.content == answer.content != ""
    # The usage chunk (`choices: []`) is read as the usage, and matches the JSON answer's.
    assert merged.usage_metadata is not None and answer.usage_metadata is not None
    assert merged.usage_metadata["total_tokens"] == answer.usage_metadata["total_tokens"] > 0


def test_a_tool_loop_scripted_by_rules(server: MockServer, lc: SimpleNamespace) -> None:
    server.add_rules(
        [
            {
                "name": "call",
                "match": {"tools": ["get_weather"], "has_tool_result": False},
                "reply": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
            },
            {
                "name": "answer",
                "match": {"has_tool_result": True},
                "reply": {"content": "It is {{ request.tool_result }}."},
            },
        ]
    )
    llm = chat(server).bind_tools([lc.get_weather])
    messages: list[Any] = [lc.HumanMessage("What is the weather in Oslo?")]
    first = llm.invoke(messages)
    (call,) = first.tool_calls  # type: ignore[attr-defined]
    assert call["name"] == "get_weather" and call["args"] == {"city": "Oslo"}
    answer = lc.ToolMessage(lc.get_weather.invoke(call["args"]), tool_call_id=call["id"])
    messages += [first, answer]
    assert llm.invoke(messages).content == "It is 18C in Oslo."
    assert [entry.rule for entry in server.requests] == ["call", "answer"]


def test_streamed_tool_calls_are_assembled(server: MockServer, lc: SimpleNamespace) -> None:
    llm = chat(server).bind_tools([lc.get_weather], tool_choice="required")
    merged: AIMessageChunk | None = None
    for chunk in llm.stream("weather in Rome"):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    (call,) = merged.tool_calls
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)


def test_the_responses_api(server: MockServer) -> None:
    llm = chat(server, use_responses_api=True)
    answer = llm.invoke("Hi")
    assert answer.text and server.requests[-1].path == "/v1/responses"
    streamed = "".join(chunk.text for chunk in llm.stream("Hi"))
    assert streamed == answer.text


def test_azure_and_embeddings(server: MockServer, lc: SimpleNamespace) -> None:
    azure = lc.AzureChatOpenAI(
        azure_endpoint=server.base_url,
        azure_deployment="prod-gpt4o",
        api_key=KEY,  # type: ignore[arg-type]
        api_version="2024-10-21",
        max_retries=0,
    )
    assert azure.invoke("Hi").content
    assert server.requests[-1].path == "/openai/deployments/prod-gpt4o/chat/completions"
    embeddings = lc.OpenAIEmbeddings(
        model="text-embedding-3-small",
        base_url=server.url,
        api_key=KEY,  # type: ignore[arg-type]
        check_embedding_ctx_length=False,  # (its tokenizer would download vocabularies)
    )
    cats, dogs = embeddings.embed_documents(["cats purr softly", "dogs bark loudly"])
    query = embeddings.embed_query("why do cats purr")
    similarity = [sum(a * b for a, b in zip(query, doc, strict=True)) for doc in (cats, dogs)]
    assert similarity[0] > similarity[1]  # retrieval finds the cat document


def test_embeddings_by_default_send_token_ids_that_rules_see_as_ids(lc: SimpleNamespace) -> None:
    # What docs/scenarios.md and docs/endpoints.md say: without check_embedding_ctx_length=False,
    # OpenAIEmbeddings sends tiktoken's ids, which mockai cannot read back as the text.
    from tiktoken_support import encodings

    cl100k = encodings()[0]  # (tiktoken's files, never downloaded)
    with MockServer() as server:
        server.add_rule(
            {"match": {"user": {"equals": "the pinned query"}}, "reply": {"vector": [1.0, 0.0]}}
        )
        ids = cl100k.encode("the pinned query")
        text = " ".join(f"<{i}>" for i in ids)
        server.add_rule({"match": {"user": {"equals": text}}, "reply": {"vector": [0.0, 1.0]}})
        default = lc.OpenAIEmbeddings(
            model="text-embedding-3-small", base_url=server.url, api_key=KEY
        )
        assert default.embed_query("the pinned query") == [0.0, 1.0]
        assert server.requests[-1].body["input"] == [ids]
        plain = lc.OpenAIEmbeddings(
            model="text-embedding-3-small",
            base_url=server.url,
            api_key=KEY,  # type: ignore[arg-type]
            check_embedding_ctx_length=False,
        )
        assert plain.embed_query("the pinned query") == [1.0, 0.0]
