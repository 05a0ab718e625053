"""LangChain's OpenAI integration (langchain-openai) against mockai: most apps reach OpenAI
through it, and it parses chunks, tool calls, usage and the Responses API its own way
(wire contract, section 16)."""

from __future__ import annotations

import json
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

    options.setdefault("model", "gpt-4o-mini")
    return ChatOpenAI(base_url=server.url, api_key=KEY, max_retries=0, **options)  # type: ignore[arg-type]


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


def test_structured_output_on_a_model_before_json_schema(server: MockServer) -> None:
    """`with_structured_output`'s default method (`json_schema`) on gpt-4o's first snapshot,
    older than Structured Outputs: the API's 400, which langchain reads to point at
    `function_calling` (langchain-ai/langchain#31490; for gpt-4 and gpt-3.5-turbo it switches
    by itself, and the SDK's `parse` meets the 400); mockai answered with the schema's JSON."""
    import openai
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        age: int

    message = (
        "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this "
        "model. Learn more about supported models at the Structured Outputs guide: "
        "https://platform.openai.com/docs/guides/structured-outputs"
    )
    llm = chat(server, model="gpt-4o-2024-05-13")
    with (
        pytest.warns(UserWarning, match="does not support OpenAI's structured output"),
        pytest.raises(openai.BadRequestError) as refused,
    ):
        llm.with_structured_output(Person).invoke("Alice is 30")
    assert refused.value.body == {
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    person = llm.with_structured_output(Person, method="function_calling").invoke("Alice is 30")
    assert isinstance(person, Person)
    client = openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)
    ask = [{"role": "user", "content": "Alice is 30"}]
    for model in ("gpt-4-turbo", "gpt-4", "gpt-3.5-turbo-0125", "ft:gpt-3.5-turbo:acme::x1"):
        with pytest.raises(openai.BadRequestError, match="Structured Outputs guide"):
            client.chat.completions.parse(model=model, messages=ask, response_format=Person)
    # Structured Outputs came with gpt-4o-mini and gpt-4o-2024-08-06.
    for model in ("gpt-4o-2024-08-06", "gpt-4o-mini", "gpt-4.1-nano", "o3-mini"):
        parsed = client.chat.completions.parse(model=model, messages=ask, response_format=Person)
        assert isinstance(parsed.choices[0].message.parsed, Person)


def test_json_mode_on_the_first_gpt_4(server: MockServer) -> None:
    """`with_structured_output(method="json_mode")` on gpt-4 (still gpt-4-0613, older than JSON
    mode): the API's 400, as apps met it (mrwadams/stride-gpt#19); mockai answered JSON."""
    import openai
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        age: int

    question = "Alice is 30. Answer in JSON with name and age."
    for model in ("gpt-4", "gpt-4-0613", "gpt-3.5-turbo-0613", "ft:gpt-4-0613:acme::x1"):
        llm = chat(server, model=model).with_structured_output(Person, method="json_mode")
        with pytest.raises(openai.BadRequestError) as refused:
            llm.invoke(question)
        assert refused.value.body == {
            "message": "Invalid parameter: 'response_format' of type 'json_object' is not "
            "supported with this model.",
            "type": "invalid_request_error",
            "param": "response_format",
            "code": None,
        }
    # JSON mode came with gpt-4-1106-preview and gpt-3.5-turbo-1106.
    for model in ("gpt-4-turbo", "gpt-3.5-turbo", "gpt-4-1106-preview", "gpt-4o-mini"):
        answer = chat(server, model=model).bind(response_format={"type": "json_object"})
        assert isinstance(json.loads(answer.invoke(question).text), dict)
