"""Every example in scenarios/ loaded and exercised the way an app would use it."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance
import jsonschema
import openai
import pydantic
import pytest
from sdk import sdk, settled

from mockai import MockServer

EXAMPLES = Path(__file__).parent.parent / "scenarios"


def test_every_example_is_exercised_here() -> None:
    tested = {
        "faq",
        "weather_agent",
        "extraction",
        "rag",
        "retry",
        "media",
    }  # media: test_media_scenarios
    assert {path.stem for path in EXAMPLES.glob("*.yaml")} == tested


def test_the_examples_load_together_as_a_folder() -> None:
    with conformance.checked_server(scenarios=(str(EXAMPLES),)) as server:
        assert len(server.rules) == 26  # 19, a second pinned rag vector, six media rules
        assert server.config.seed == 7  # faq.yaml sets it; no other file disagrees


@pytest.fixture
def serve(request: pytest.FixtureRequest) -> Iterator[tuple[MockServer, openai.OpenAI]]:
    name = request.param
    path = str(EXAMPLES / f"{name}.yaml")
    with conformance.checked_server(scenarios=(path,)) as server, sdk(server) as client:
        yield server, client


def ask(client: openai.OpenAI, text: str, system: str | None = None) -> str | None:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": text})
    return (
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        .choices[0]
        .message.content
    )  # type: ignore[arg-type]


# --- faq.yaml --------------------------------------------------------------------------------------


@pytest.mark.parametrize("serve", ["faq"], indirect=True)
def test_faq_bot(serve: tuple[MockServer, openai.OpenAI]) -> None:
    server, client = serve
    assert (
        ask(client, "When are you OPEN on Fridays?")
        == "We are open Monday to Friday, 9am to 6pm (CET)."
    )
    assert (ask(client, "How do I get a Refund?") or "").startswith(
        "You can ask for a refund within 30 days"
    )
    assert ask(client, "what are your hours", system="Speak like a PIRATE.") == (
        "Arr, matey! Ask me anything about Acme, and I'll answer in doubloons."
    )
    greeting = ask(client, "Hello there")
    assert (
        greeting is not None
        and greeting.startswith("Hello! I'm ")
        and "(model gpt-4o-mini)" in greeting
    )
    assert ask(client, "Hello there") == greeting  # seeded: the same question, the same name
    legacy = client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Q: Do you ship abroad?\nA:"
    )
    assert legacy.choices[0].text == " Yes, we ship to 40 countries."
    with pytest.raises(openai.BadRequestError) as raised:
        ask(client, "Can I pay with bitcoin?")
    assert (
        raised.value.code == "mockai_no_match"
    )  # fallback: error — unexpected questions fail loudly
    assert [e.rule for e in server.requests][:3] == ["opening-hours", "refund", "pirate"]


def test_faq_greeting_is_reproducible_across_servers() -> None:
    def greet() -> str | None:
        faq = str(EXAMPLES / "faq.yaml")
        with MockServer(scenarios=(faq,), log_requests=False) as server, sdk(server) as client:
            return ask(client, "hello!")

    assert greet() == greet()


# --- weather_agent.yaml: a real agent loop -----------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


def get_weather(city: str, unit: str) -> str:
    """The app's local tool."""
    return f"18C and sunny ({unit})" if city == "Paris" else f"9C and rainy ({unit})"


def chat_agent(
    client: openai.OpenAI, question: str, *, stream: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """A minimal agent: call the model, run the tools it asks for, repeat until it answers."""
    messages: list[Any] = [{"role": "user", "content": question}]
    calls_made: list[dict[str, Any]] = []
    for _ in range(5):
        if stream:
            with client.chat.completions.stream(
                model="gpt-4o", messages=messages, tools=[WEATHER_TOOL]
            ) as events:  # type: ignore[list-item]
                message = events.get_final_completion().choices[0].message
        else:
            message = (
                client.chat.completions.create(
                    model="gpt-4o", messages=messages, tools=[WEATHER_TOOL]
                )
                .choices[0]
                .message
            )  # type: ignore[list-item]
        if not message.tool_calls:
            return message.content or "", calls_made
        messages.append(message.model_dump(exclude_none=True, exclude={"parsed"}))
        for call in message.tool_calls:
            arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
            jsonschema.validate(arguments, WEATHER_TOOL["function"]["parameters"])  # type: ignore[index]
            calls_made.append(arguments)
            messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": get_weather(**arguments)}
            )
    raise AssertionError("the agent did not finish in 5 turns")


def responses_agent(client: openai.OpenAI, question: str) -> tuple[str, list[dict[str, Any]]]:
    """The same agent on the Responses API (function_call / function_call_output items)."""
    tool = {"type": "function", **WEATHER_TOOL["function"]}  # type: ignore[dict-item]
    items: list[Any] = [{"role": "user", "content": question}]
    calls_made: list[dict[str, Any]] = []
    for _ in range(5):
        response = client.responses.create(model="gpt-4o", input=items, tools=[tool])  # type: ignore[list-item]
        calls = [item for item in response.output if item.type == "function_call"]
        if not calls:
            return response.output_text, calls_made
        for call in calls:
            arguments = json.loads(call.arguments)  # type: ignore[union-attr]
            calls_made.append(arguments)
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                }
            )  # type: ignore[union-attr]
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": call.call_id,
                    "output": get_weather(**arguments),
                }
            )  # type: ignore[union-attr]
    raise AssertionError("the agent did not finish in 5 turns")


def chained_responses_agent(
    client: openai.OpenAI, question: str
) -> tuple[str, list[dict[str, Any]]]:
    """The Responses API's own loop: each turn sends only the tool results, chained with
    `previous_response_id`; the server holds the conversation."""
    tool = {"type": "function", **WEATHER_TOOL["function"]}  # type: ignore[dict-item]
    response = client.responses.create(model="gpt-4o", input=question, tools=[tool])  # type: ignore[list-item]
    calls_made: list[dict[str, Any]] = []
    for _ in range(5):
        calls = [item for item in response.output if item.type == "function_call"]
        if not calls:
            return response.output_text, calls_made
        results = []
        for call in calls:
            arguments = json.loads(call.arguments)  # type: ignore[union-attr]
            calls_made.append(arguments)
            results.append(
                {
                    "type": "function_call_output",
                    "call_id": call.call_id,  # type: ignore[union-attr]
                    "output": get_weather(**arguments),
                }
            )
        response = client.responses.create(
            model="gpt-4o",
            input=results,  # type: ignore[arg-type]
            tools=[tool],  # type: ignore[list-item]
            previous_response_id=response.id,
        )
    raise AssertionError("the agent did not finish in 5 turns")


@pytest.mark.parametrize("serve", ["weather_agent"], indirect=True)
@pytest.mark.parametrize("stream", [False, True])
def test_weather_agent_loop_on_chat(serve: tuple[MockServer, openai.OpenAI], stream: bool) -> None:
    server, client = serve
    answer, calls = chat_agent(client, "What's the weather in Paris?", stream=stream)
    assert calls == [{"city": "Paris", "unit": "celsius"}]
    assert answer == "In Paris it is 18C and sunny (celsius) right now."
    assert [e.rule for e in settled(server, 2)] == ["call-weather-paris", "answer-weather"]


@pytest.mark.parametrize("serve", ["weather_agent"], indirect=True)
def test_weather_agent_loop_on_responses(serve: tuple[MockServer, openai.OpenAI]) -> None:
    _, client = serve
    answer, calls = responses_agent(client, "What's the weather in Paris?")
    assert calls == [{"city": "Paris", "unit": "celsius"}]
    assert answer == "In Paris it is 18C and sunny (celsius) right now."


@pytest.mark.parametrize("serve", ["weather_agent"], indirect=True)
def test_weather_agent_loop_chained_with_previous_response_id(
    serve: tuple[MockServer, openai.OpenAI],
) -> None:
    server, client = serve
    answer, calls = chained_responses_agent(client, "What's the weather in Paris?")
    # The second turn carries only the tool result: the rule's template reads the city from the
    # earlier call, which the server holds as the conversation before `previous_response_id`.
    assert calls == [{"city": "Paris", "unit": "celsius"}]
    assert answer == "In Paris it is 18C and sunny (celsius) right now."
    assert [e.rule for e in settled(server, 2)] == ["call-weather-paris", "answer-weather"]


@pytest.mark.parametrize("serve", ["weather_agent"], indirect=True)
def test_weather_agent_generates_arguments_for_other_cities(
    serve: tuple[MockServer, openai.OpenAI],
) -> None:
    _, client = serve
    answer, calls = chat_agent(client, "How is the weather in Lyon today?")
    assert len(calls) == 1  # arguments generated from the tool's schema, validated in the loop
    assert answer == f"In {calls[0]['city']} it is 9C and rainy ({calls[0]['unit']}) right now."


@pytest.mark.parametrize("serve", ["weather_agent"], indirect=True)
def test_weather_agent_parallel_calls(serve: tuple[MockServer, openai.OpenAI]) -> None:
    _, client = serve
    answer, calls = chat_agent(client, "compare Oslo and Rome", stream=True)
    assert [c["city"] for c in calls] == ["Oslo", "Rome"]
    assert answer == "In Oslo it is 9C and rainy (celsius) right now."


# --- extraction.yaml -------------------------------------------------------------------------------


class Invoice(pydantic.BaseModel):
    vendor: str
    total: float
    currency: str
    paid: bool


class Contact(pydantic.BaseModel):
    name: str
    email: str
    phone: str | None
    topics: list[str]


@pytest.mark.parametrize("serve", ["extraction"], indirect=True)
def test_structured_extraction(serve: tuple[MockServer, openai.OpenAI]) -> None:
    server, client = serve
    invoice = client.chat.completions.parse(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Invoice #881 from ACME..."}],
        response_format=Invoice,
    )
    assert invoice.choices[0].message.parsed == Invoice(
        vendor="ACME Corp", total=1250.5, currency="EUR", paid=False
    )
    assert not server.requests[-1].warnings  # the scripted JSON fits the app's schema
    messages = [
        {"role": "system", "content": "You extract contact details."},
        {"role": "user", "content": "Hi, I'm Jo (jo@example.com), call me about billing."},
    ]
    contact = client.chat.completions.parse(
        model="gpt-4o", messages=messages, response_format=Contact
    )  # type: ignore[arg-type]
    parsed = contact.choices[0].message.parsed
    assert isinstance(parsed, Contact)
    raw = json.loads(contact.choices[0].message.content or "")
    jsonschema.validate(raw, Contact.model_json_schema())
    again = client.chat.completions.parse(
        model="gpt-4o", messages=messages, response_format=Contact
    )  # type: ignore[arg-type]
    assert again.choices[0].message.parsed == parsed  # generated, and reproducible


@pytest.mark.parametrize("serve", ["extraction"], indirect=True)
def test_extraction_catches_a_stale_fixture(serve: tuple[MockServer, openai.OpenAI]) -> None:
    class NewInvoice(pydantic.BaseModel):  # the app's schema changed; the fixture did not
        vendor: str
        total_cents: int

    raw = serve[1].chat.completions.with_raw_response.parse(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Invoice #9"}],
        response_format=NewInvoice,
    )
    assert (
        "does not match the response_format schema 'NewInvoice'" in raw.headers["x-mockai-warning"]
    )


# --- rag.yaml --------------------------------------------------------------------------------------

DOCS = [
    "Refunds are accepted within 30 days of purchase.",
    "Our office is open Monday to Friday.",
    "Shipping to Europe takes five business days.",
]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


@pytest.mark.parametrize("serve", ["rag"], indirect=True)
def test_rag_flow(serve: tuple[MockServer, openai.OpenAI]) -> None:
    server, client = serve
    index = [
        d.embedding
        for d in client.embeddings.create(model="text-embedding-3-small", input=DOCS).data
    ]
    query = client.embeddings.create(
        model="text-embedding-3-small", input="How many days for shipping to Europe?"
    )
    scores = [cosine(query.data[0].embedding, vector) for vector in index]
    best = DOCS[scores.index(max(scores))]
    assert best == DOCS[2]
    system = f"You are a documentation assistant. Context: {best}"
    assert (
        ask(client, "How long does shipping take?", system=system)
        == f"Based on the documentation: {best}"
    )
    assert (
        ask(client, "Anything?", system="You are a documentation assistant.")
        == "I could not find that in the documentation."
    )
    pinned = client.embeddings.create(
        model="text-embedding-3-small", input="the pinned query", encoding_format="float"
    )
    assert pinned.data[0].embedding == [1.0, 0.0, 0.0, 0.0]
    # In a batch, the pinned query keeps its vector and every other input gets its own.
    batch = client.embeddings.create(
        model="text-embedding-3-small",
        input=["the near document", "the pinned query", DOCS[0]],
        encoding_format="float",
    )
    near, query, refunds = (d.embedding for d in batch.data)
    assert query == [1.0, 0.0, 0.0, 0.0]
    assert near == [0.8, 0.6, 0.0, 0.0]
    assert cosine(query, near) == pytest.approx(0.8)  # the threshold test's known angle
    # The seeded vector it gets alone (fetched as base64 there: float32 precision).
    assert refunds == pytest.approx(index[0], abs=1e-7)
    assert [e.rule for e in server.requests] == [
        "embed",
        "embed",
        "grounded-answer",
        "no-context",
        "pinned-query",
        "pinned-neighbour",  # the first of the batch's rules; each that answered is listed:
    ]
    assert server.requests[-1].rules == ["pinned-neighbour", "pinned-query", "embed"]


# --- retry.yaml ------------------------------------------------------------------------------------


def test_retry_with_the_sdks_own_retries() -> None:
    with (
        conformance.checked_server(scenarios=(str(EXAMPLES / "retry.yaml"),)) as server,
        sdk(server, max_retries=2) as client,
    ):
        assert (
            ask(client, "Please summarize the report")
            == "Here is your summary: all systems nominal."
        )
        attempts = [(e.status, e.retry_count) for e in server.requests]
        assert attempts == [(429, 0), (503, 1), (200, 2)]
        gaps = [
            b.arrived - a.arrived
            for a, b in zip(server.requests, server.requests[1:], strict=False)
        ]
        assert all(gap < 0.5 for gap in gaps)  # the SDK honoured retry-after-ms (10 ms)
    with (
        conformance.checked_server(scenarios=(str(EXAMPLES / "retry.yaml"),)) as server,
        sdk(server) as no_retry,
    ):
        with pytest.raises(openai.RateLimitError) as raised:
            ask(no_retry, "my quota?")
        assert raised.value.code == "insufficient_quota"
        assert [ask(no_retry, "ping") for _ in range(3)] == ["pong", "pong", "pong (again?)"]
