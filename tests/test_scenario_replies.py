"""Replies: templates, tool calls, JSON, refusals, errors, embeddings — on every endpoint."""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance
import jsonschema
import openai
import pydantic
import pytest
from multidict import CIMultiDict
from sdk import sdk

from mockai import MockServer
from mockai.api import chat
from mockai.api.base import ParseContext
from mockai.catalog import Catalog
from mockai.delivery.timing import Fixed, Uniform
from mockai.generate.embeddings import embed
from mockai.pipeline.fingerprint import content_key
from mockai.scenario import from_paths

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["name", "age", "email", "tags"],
    "additionalProperties": False,
}

REPLIES = """
mockai: 1
rules:
  - name: templated
    match: {user: {startswith: template}}
    reply:
      content: >-
        {{ request.model }}|{{ request.user }}|{{ request.system }}|turn {{ request.turn }}|
        {{ request.headers['x-case'] | default('-') }}|{{ request.body.temperature | default('none') }}|
        {{ faker.name() }}|{{ faker.city() }}
  - name: broken-template
    match: {user: {equals: explode}}
    reply: {content: "{{ request.body.missing.field }}"}
  - name: parallel-calls
    match: {user: parallel}
    reply:
      content: "Let me check both."
      tool_calls:
        - {id: call_paris, name: get_weather, arguments: {city: Paris, unit: celsius}}
        - name: get_weather
          arguments: '{"city": "Oslo", "unit": "fahrenheit"}'
  - name: auto-arguments
    match: {user: auto}
    reply:
      tool_calls: [{name: get_weather, arguments: auto}]
  - name: templated-arguments
    match: {user: lookup}
    reply:
      tool_calls:
        - name: get_weather
          arguments: {city: "{{ request.user.split()[-1] }}", unit: celsius}
  - name: stale-arguments
    match: {user: stale}
    reply:
      tool_calls: [{name: get_weather, arguments: {city: Paris, unit: kelvin}}]
  - name: unknown-tool
    match: {user: unoffered}
    reply:
      tool_calls: [{name: get_time}]
  - name: stale-json
    match: {user: broken person}
    reply:
      json: {name: Ada, age: "thirty-six"}
  - name: scripted-json
    match: {user: person}
    reply:
      json: {name: Ada, age: 36, email: ada@example.com, tags: [math]}
  - name: generated
    match: {user: generate}
    reply: {}
  - name: refuse
    match: {user: forbidden}
    reply: {refusal: "I can't help with that."}
  - name: overrides
    match: {user: overrides}
    reply:
      content: cut short
      finish_reason: length
      usage: {prompt_tokens: 100, completion_tokens: 7}
  - name: everywhere
    match: {user: everywhere}
    reply: "The same answer, rendered for every endpoint and split into chunks when streamed."
  - name: named-error
    match: {user: ratelimited}
    error: rate_limit
  - name: custom-error
    match: {user: custom}
    error:
      status: 422
      type: invalid_request_error
      code: custom_code
      message: "Custom failure"
      param: messages
      headers: {x-custom: "yes"}
      retry_after: 2.5
  - name: error-naming-its-content-type
    match: {user: typed-error}
    error:
      status: 409
      message: "Conflict, said with a Content-Type of its own"
      headers: {Content-Type: "application/json; charset=utf-8", X-Upper: "kept"}
  - name: named-with-overrides
    match: {user: overloaded}
    error: {name: overloaded, message: "Try later", retry_after: 20ms}
  - name: pinned-vectors
    match: {endpoint: embeddings, user: {startswith: pinned}}
    reply: {vectors: [[1, 0, 0], [0, 1, 0]]}
  - name: seeded-vectors
    match: {endpoint: embeddings}
    reply: {seed: 99}
"""


@pytest.fixture(scope="module")
def replies_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("replies") / "replies.yaml"
    path.write_text(textwrap.dedent(REPLIES).lstrip("\n"), encoding="utf-8")
    return str(path)


@pytest.fixture
def server(replies_file: str) -> Iterator[MockServer]:
    with conformance.checked_server(scenarios=(replies_file,), seed=5) as running:
        yield running


@pytest.fixture
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# --- templates -------------------------------------------------------------------------------------


def test_template_sees_the_request(client: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *user("template please")]
    answer = client.chat.completions.create(
        model="gpt-4o", messages=messages, temperature=0, extra_headers={"X-Case": "c-1"}
    )
    fields = (answer.choices[0].message.content or "").split("|")
    assert fields[:6] == ["gpt-4o", "template please", "Be brief.", "turn 1", " c-1", "0"]
    assert all(part.strip() for part in fields[6:])  # a name and a city from the seeded faker


def test_templates_are_deterministic_for_the_seed(replies_file: str) -> None:
    def answers(seed: int) -> list[str | None]:
        with (
            MockServer(scenarios=(replies_file,), seed=seed, log_requests=False) as running,
            sdk(running) as client,
        ):
            return [
                client.chat.completions.create(model="gpt-4o", messages=user(text))
                .choices[0]
                .message.content
                for text in ("template one", "template two", "template one")
            ]

    first, again, other = answers(1), answers(1), answers(2)
    assert first == again  # same seed, same requests: same text
    assert first[0] == first[2] and first[0] != first[1]  # the faker follows the request
    assert first[0] != other[0]  # another seed, another text


def test_a_failing_template_is_a_clear_error(client: openai.OpenAI, replies_file: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=user("explode"))
    assert raised.value.code == "mockai_template_error"
    message = raised.value.body["message"]  # type: ignore[index]
    # The rule, the field and the file:line of the template, then what failed.
    written = textwrap.dedent(REPLIES).lstrip("\n").splitlines()
    line = next(i for i, text in enumerate(written) if "request.body.missing" in text)
    assert message == (
        f"rule 'broken-template' reply.content ({replies_file}:{line + 1}): the reply template "
        "failed: UndefinedError: 'dict object' has no attribute 'missing'"
    )


# --- tool calls ------------------------------------------------------------------------------------


def test_parallel_tool_calls_on_chat(client: openai.OpenAI, server: MockServer) -> None:
    answer = client.chat.completions.create(
        model="gpt-4o", messages=user("parallel"), tools=[WEATHER]
    )
    message = answer.choices[0].message
    assert answer.choices[0].finish_reason == "tool_calls"
    assert message.content == "Let me check both."
    calls = message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_weather"]  # type: ignore[union-attr]
    assert calls[0].id == "call_paris" and calls[1].id.startswith("call_")
    assert [json.loads(c.function.arguments) for c in calls] == [  # type: ignore[union-attr]
        {"city": "Paris", "unit": "celsius"},
        {"city": "Oslo", "unit": "fahrenheit"},
    ]
    assert calls[0].function.arguments == '{"city":"Paris","unit":"celsius"}'  # type: ignore[union-attr]
    assert not server.requests[-1].warnings


def test_parallel_tool_calls_streamed_on_chat(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="gpt-4o", messages=user("parallel"), tools=[WEATHER]
    ) as stream:
        chunks = list(stream)
        final = stream.get_final_completion()
    assert len(chunks) > 6
    calls = final.choices[0].message.tool_calls or []
    assert next((c.id, json.loads(c.function.arguments)["city"]) for c in calls) == (
        "call_paris",
        "Paris",
    )
    assert json.loads(calls[1].function.arguments) == {"city": "Oslo", "unit": "fahrenheit"}
    assert final.choices[0].finish_reason == "tool_calls"


def test_tool_calls_on_responses_json_and_stream(client: openai.OpenAI) -> None:
    tool = {"type": "function", **WEATHER["function"], "strict": False}
    response = client.responses.create(model="gpt-4o", input="parallel", tools=[tool])  # type: ignore[list-item]
    calls = [item for item in response.output if item.type == "function_call"]
    assert [json.loads(c.arguments)["city"] for c in calls] == ["Paris", "Oslo"]
    assert calls[0].call_id == "call_paris"
    with client.responses.stream(model="gpt-4o", input="parallel", tools=[tool]) as stream:  # type: ignore[list-item]
        types = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in types and types[-1] == "response.completed"
    streamed = [item for item in final.output if item.type == "function_call"]
    assert [c.arguments for c in streamed] == [c.arguments for c in calls]


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_auto_arguments_are_valid_against_the_tool_schema(
    client: openai.OpenAI, endpoint: str
) -> None:
    seen = []
    for question in ("auto: weather in Lyon", "auto: and in Nice?"):
        if endpoint == "chat":
            answer = client.chat.completions.create(
                model="gpt-4o", messages=user(question), tools=[WEATHER]
            )
            arguments = answer.choices[0].message.tool_calls[0].function.arguments  # type: ignore[index, union-attr]
        else:
            tool = {"type": "function", **WEATHER["function"]}
            response = client.responses.create(model="gpt-4o", input=question, tools=[tool])  # type: ignore[list-item]
            arguments = next(i for i in response.output if i.type == "function_call").arguments  # type: ignore[union-attr]
        value = json.loads(arguments)
        jsonschema.validate(value, WEATHER["function"]["parameters"])  # type: ignore[arg-type]
        seen.append(arguments)
    again = client.chat.completions.create(
        model="gpt-4o", messages=user("auto: weather in Lyon"), tools=[WEATHER]
    )
    if endpoint == "chat":
        assert again.choices[0].message.tool_calls[0].function.arguments == seen[0]  # type: ignore[index, union-attr]


def test_templated_arguments(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="gpt-4o", messages=user("lookup Reykjavik"), tools=[WEATHER]
    )
    arguments = answer.choices[0].message.tool_calls[0].function.arguments  # type: ignore[index, union-attr]
    assert json.loads(arguments) == {"city": "Reykjavik", "unit": "celsius"}


# --- stale fixtures --------------------------------------------------------------------------------


def test_stale_tool_arguments_are_flagged(
    client: openai.OpenAI, server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mockai"):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=user("stale"), tools=[WEATHER]
        )
    warning = raw.headers["x-mockai-warning"]
    assert warning.startswith("rule 'stale-arguments' (")
    assert warning.endswith(
        "the arguments of tool call 'get_weather' do not match the tool's schema: "
        "at $.unit: 'kelvin' is not one of ['celsius', 'fahrenheit']"
    )
    assert server.requests[-1].warnings == [warning]
    assert any(warning in record.getMessage() for record in caplog.records)
    assert raw.parse().choices[0].message.tool_calls  # still answered: a warning, not an error


def test_tool_not_offered_is_flagged(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=user("unoffered"), tools=[WEATHER]
    )
    assert raw.headers["x-mockai-warning"].endswith(
        "calls tool 'get_time', but the request offers get_weather"
    )


def test_stale_json_is_flagged(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=user("broken person"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON},
        },
    )
    assert raw.headers["x-mockai-warning"].endswith(
        "the JSON content does not match the response_format schema 'person': "
        "at $: 'email' is a required property"
    )


def test_strict_mode_turns_stale_fixtures_into_errors(replies_file: str) -> None:
    with (
        conformance.checked_server(scenarios=(replies_file,), strict=True) as running,
        sdk(running) as client,
    ):
        with pytest.raises(openai.BadRequestError) as raised:
            client.chat.completions.create(model="gpt-4o", messages=user("stale"), tools=[WEATHER])
        assert raised.value.code == "mockai_stale_fixture"
        assert "at $.unit: 'kelvin' is not one of ['celsius', 'fahrenheit']" in raised.value.message
        good = client.chat.completions.create(
            model="gpt-4o", messages=user("parallel"), tools=[WEATHER]
        )
        assert good.choices[0].message.tool_calls


# --- JSON ------------------------------------------------------------------------------------------


class Person(pydantic.BaseModel):
    name: str
    age: int
    email: str
    tags: list[str]


def test_scripted_json_parses_into_the_model(client: openai.OpenAI, server: MockServer) -> None:
    parsed = client.chat.completions.parse(
        model="gpt-4o", messages=user("person"), response_format=Person
    )
    assert parsed.choices[0].message.parsed == Person(
        name="Ada", age=36, email="ada@example.com", tags=["math"]
    )
    assert not server.requests[-1].warnings


@pytest.mark.parametrize("stream", [False, True])
def test_unscripted_json_schema_content_is_generated_and_valid(
    client: openai.OpenAI, stream: bool
) -> None:
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": PERSON, "strict": True},
    }
    if stream:
        chunks = client.chat.completions.create(
            model="gpt-4o", messages=user("generate"), response_format=fmt, stream=True
        )  # type: ignore[call-overload]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = (
            client.chat.completions.create(
                model="gpt-4o", messages=user("generate"), response_format=fmt
            )
            .choices[0]
            .message.content
        )  # type: ignore[call-overload]
    value = json.loads(text or "")
    jsonschema.validate(value, PERSON, format_checker=jsonschema.FormatChecker())
    response = client.responses.create(
        model="gpt-4o",
        input="generate",
        text={"format": {"type": "json_schema", "name": "person", "schema": PERSON}},
    )
    jsonschema.validate(json.loads(response.output_text), PERSON)
    again = client.chat.completions.create(
        model="gpt-4o", messages=user("generate"), response_format=fmt
    )  # type: ignore[call-overload]
    assert json.loads(again.choices[0].message.content) == value  # reproducible, streamed or not


# --- other reply fields ----------------------------------------------------------------------------


def test_refusal_on_chat_and_responses(client: openai.OpenAI) -> None:
    message = (
        client.chat.completions.create(model="gpt-4o", messages=user("forbidden"))
        .choices[0]
        .message
    )
    assert (message.content, message.refusal) == (None, "I can't help with that.")
    response = client.responses.create(model="gpt-4o", input="forbidden")
    parts = [part for item in response.output for part in getattr(item, "content", [])]
    assert [(p.type, getattr(p, "refusal", None)) for p in parts] == [
        ("refusal", "I can't help with that.")
    ]


def test_finish_reason_and_usage_overrides(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="gpt-4o", messages=user("overrides"))
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None
    assert (
        answer.usage.prompt_tokens,
        answer.usage.completion_tokens,
        answer.usage.total_tokens,
    ) == (100, 7, 107)


def test_one_rule_renders_on_every_endpoint(client: openai.OpenAI) -> None:
    expected = "The same answer, rendered for every endpoint and split into chunks when streamed."
    assert (
        client.chat.completions.create(model="gpt-4o", messages=user("everywhere"))
        .choices[0]
        .message.content
        == expected
    )
    pieces = [
        c.choices[0].delta.content
        for c in client.chat.completions.create(
            model="gpt-4o", messages=user("everywhere"), stream=True
        )
        if c.choices and c.choices[0].delta.content
    ]
    assert "".join(pieces) == expected and len(pieces) > 5
    assert client.responses.create(model="gpt-4o", input="everywhere").output_text == expected
    events = list(client.responses.create(model="gpt-4o", input="everywhere", stream=True))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]  # type: ignore[union-attr]
    assert "".join(deltas) == expected and len(deltas) > 5
    legacy = client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="everywhere", max_tokens=200
    )
    assert legacy.choices[0].text == expected
    streamed = client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="everywhere", max_tokens=200, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == expected


def test_max_tokens_truncates_a_scripted_answer(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="gpt-4o", messages=user("everywhere"), max_tokens=3
    )
    assert answer.choices[0].finish_reason == "length"
    assert "The same answer".startswith(answer.choices[0].message.content or "x")


# --- errors ----------------------------------------------------------------------------------------


def test_named_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=user("ratelimited"))
    assert raised.value.code == "rate_limit_exceeded"
    assert raised.value.response.headers["retry-after"] == "1"


def test_an_error_scripting_its_own_content_type_is_still_that_error(
    client: openai.OpenAI, server: MockServer
) -> None:
    """A scripted error may name any header, Content-Type too: the answer is still the scripted
    error (its media type mockai's JSON, the parameters as scripted), never a 500."""
    with pytest.raises(openai.ConflictError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=user("typed-error"))
    assert raised.value.body["message"] == "Conflict, said with a Content-Type of its own"
    headers = raised.value.response.headers
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["x-upper"] == "kept"
    assert server.requests[-1].response_headers["x-upper"] == "kept"  # journaled lower-case


def test_free_form_error(client: openai.OpenAI, server: MockServer) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=user("custom"))
    error = raised.value
    assert error.body == {
        "message": "Custom failure",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "custom_code",
    }
    headers = error.response.headers
    assert (headers["x-custom"], headers["retry-after"], headers["retry-after-ms"]) == (
        "yes",
        "3",  # whole seconds, as the API sends them; the ms header is exact
        "2500",
    )
    assert (server.requests[-1].source, server.requests[-1].rule) == ("scenario", "custom-error")


def test_named_error_with_overrides(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=user("overloaded"))
    assert raised.value.status_code == 503
    assert raised.value.body["message"] == "Try later"  # type: ignore[index]
    assert raised.value.body["code"] == "server_is_overloaded"  # type: ignore[index]
    assert raised.value.response.headers["retry-after-ms"] == "20"


# --- embeddings ------------------------------------------------------------------------------------


def test_scripted_and_seeded_embeddings(client: openai.OpenAI) -> None:
    pinned = client.embeddings.create(
        model="text-embedding-3-small",
        input=["pinned a", "pinned b", "pinned c"],
        encoding_format="float",
    )
    assert [d.embedding for d in pinned.data] == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    seeded = client.embeddings.create(
        model="text-embedding-3-small", input="the cat sat", encoding_format="float"
    )
    assert seeded.data[0].embedding == pytest.approx(embed("the cat sat", 1536, 99), abs=1e-8)
    short = client.embeddings.create(
        model="text-embedding-3-small", input="the cat sat", dimensions=8
    )
    assert len(short.data[0].embedding) == 8


# --- timing and faults are carried into the plan ---------------------------------------------------


def test_latency_stream_timing_and_faults_reach_the_plan(tmp_path: Path) -> None:
    path = tmp_path / "timed.yaml"
    path.write_text(
        textwrap.dedent(
            """
            mockai: 1
            rules:
              - name: timed
                match: {user: slow}
                latency: 200ms
                stream: {ttft: 300ms, chunk_delay: 20ms}
                faults: {malformed_chunk: 3}
                sequence:
                  - reply: first
                  - reply: second
                    latency: {min: 10ms, max: 20ms}
                    faults: {disconnect_after: 2}
            """
        )
    )
    book = from_paths([str(path)])
    body = {"model": "gpt-4o", "messages": user("slow"), "stream": True}
    exchange = chat.parse(body, ParseContext(CIMultiDict(), Catalog()))
    key = content_key(0, "chat", body)
    first = asyncio.run(book.plan(exchange, key))
    second = asyncio.run(book.plan(exchange, key))
    assert first is not None and second is not None
    assert (first.source, first.name) == ("scenario", "timed")
    assert first.timing.latency == Fixed(0.2)
    assert first.timing.stream is not None and first.timing.stream.ttft == Fixed(0.3)
    assert first.faults.malformed_chunk == 3 and first.faults.disconnect_after is None
    assert second.timing.latency == Uniform(0.01, 0.02)  # the step's own setting wins
    assert second.timing.stream == first.timing.stream  # ... and the rule's fills in the rest
    assert (second.faults.malformed_chunk, second.faults.disconnect_after) == (3, 2)
    assert first.timing.seed == second.timing.seed  # derived from the request: reproducible


def test_loop_guard_warns_when_a_tool_result_gets_the_same_call(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(
        "mockai: 1\nrules:\n  - {name: loop, match: {user: weather}, reply: {tool_calls: [{name: get_weather, arguments: {city: Paris, unit: celsius}}]}}\n"
    )
    with conformance.checked_server(scenarios=(str(path),)) as running, sdk(running) as client:
        messages: list[Any] = user("weather in Paris")
        first = (
            client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER])
            .choices[0]
            .message
        )
        call = first.tool_calls[0]  # type: ignore[index]
        messages += [
            first.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18C"},
        ]
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=messages, tools=[WEATHER]
        )
        assert (
            "an agent would loop. Add `has_tool_result: false` to its match"
            in raw.headers["x-mockai-warning"]
        )
