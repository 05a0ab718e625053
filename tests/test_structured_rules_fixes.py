"""Structured output and tools, the API's rules a bug hunt found mockai did not hold:

* chat `parallel_tool_calls` in a request without tools is the API's 400, as `tool_choice` is
  (the Responses API echoes it);
* a schema sent with `strict: true` (a `response_format`, `text.format` or function) is held to
  strict mode's rules: an object root (formats), every object closed with `additionalProperties:
  false` and requiring exactly its properties, else the API's 400 in its words, naming where;
  without `strict: true` (or a Responses function leaving it out), or under another provider's
  profile, or over a cassette (recorded from an upstream that takes it), the same schema is
  answered;
* a function's parameters holding an array without `items` are the API's 400 (`array schema
  missing items`) with or without `strict` (a response format without `strict` is answered);
* a function whose parameters are an object without `properties` is the API's 400 (`object
  schema missing properties`), strict or not, and so is one whose parameters (or a strict
  format whose schema) say no `type` at the root (a root union: `got 'type: "None"'`);
* a chat function's description over 1024 characters is the API's 400 (`string_above_max_length`);
* a tool named in camelCase or PascalCase (`getWeather`, the SDK's `pydantic_function_tool`'s
  `GetWeather`) is matched to a question by its words, as `get_weather` is: `auto` calls it for
  a question about it, `required` picks it among others.

Through a real server with the openai SDK, as users meet them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from cassette_support import chat_completion, recorded_chat
from pydantic import BaseModel
from sdk import sdk

from mockai import MockServer

MODEL = "gpt-4o-mini"
ASK = [{"role": "user", "content": "give me the data"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def _message(error: openai.APIStatusError) -> Any:
    body = error.body
    assert isinstance(body, dict)
    return body["message"]


# --- parallel_tool_calls needs tools --------------------------------------------------------------


@pytest.mark.parametrize("parallel", [True, False])
def test_parallel_tool_calls_without_tools_is_refused(
    client: openai.OpenAI, parallel: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=ASK, parallel_tool_calls=parallel)
    assert refused.value.param == "parallel_tool_calls"
    assert refused.value.code is None
    assert _message(refused.value) == (
        "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when "
        "'tools' are specified."
    )


def test_parallel_tool_calls_with_tools_or_on_responses_is_taken(
    client: openai.OpenAI, server: MockServer
) -> None:
    chat = client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        tools=[WEATHER],  # type: ignore[list-item]
        parallel_tool_calls=False,
    )
    assert chat.choices[0].finish_reason in ("stop", "tool_calls")
    response = client.responses.create(model=MODEL, input="hi", parallel_tool_calls=False)
    assert response.parallel_tool_calls is False


# --- strict mode's schema rules -------------------------------------------------------------------


def _closed(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


OPEN_ROOT = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
NOT_ALL_REQUIRED = {
    **_closed({"a": {"type": "string"}, "b": {"type": "integer"}}),
    "required": ["a"],
}
EXTRA_REQUIRED = {**_closed({"a": {"type": "string"}}), "required": ["a", "z"]}
OPEN_NESTED = _closed({"a": {"type": "string"}, "address": {**OPEN_ROOT, "required": ["a"]}})
OPEN_IN_ANY_OF = _closed(
    {"pet": {"anyOf": [_closed({"meow": {"type": "integer"}}), {"type": "object"}]}}
)
MAP = _closed({"scores": {"type": "object", "additionalProperties": {"type": "integer"}}})
OPEN_DEFINITION = {**_closed({"a": {"$ref": "#/$defs/A"}}), "$defs": {"A": OPEN_ROOT}}
CLOSED = "'additionalProperties' is required to be supplied and to be false."
MISSING = (
    "In context=(), 'required' is required to be supplied and to be an array including every "
    "key in properties. Missing 'b'."
)
EXTRA = (
    "In context=(), 'required' must be an array that includes every key in `properties`. Extra "
    "required key 'z' supplied."
)
REFUSED = [
    (OPEN_ROOT, f"In context=(), {CLOSED}"),
    (NOT_ALL_REQUIRED, MISSING),
    (EXTRA_REQUIRED, EXTRA),
    (OPEN_NESTED, f"In context=('properties', 'address'), {CLOSED}"),
    (OPEN_IN_ANY_OF, f"In context=('properties', 'pet', 'anyOf', '1'), {CLOSED}"),
    (MAP, f"In context=('properties', 'scores'), {CLOSED}"),
    (OPEN_DEFINITION, f"In context=('$defs', 'A'), {CLOSED}"),
]
IDS = ["open-root", "not-all-required", "extra-required", "nested", "any-of", "map", "defs"]


def _chat_format(schema: dict[str, Any], strict: bool | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "data", "schema": schema}
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


@pytest.mark.parametrize(("schema", "why"), REFUSED, ids=IDS)
def test_a_strict_response_format_breaking_the_rules_is_refused(
    client: openai.OpenAI, schema: dict[str, Any], why: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            response_format=_chat_format(schema, True),  # type: ignore[arg-type]
        )
    assert refused.value.param == "response_format"
    assert refused.value.code is None
    assert _message(refused.value) == f"Invalid schema for response_format 'data': {why}"


@pytest.mark.parametrize(("schema", "why"), REFUSED, ids=IDS)
def test_a_strict_text_format_breaking_the_rules_is_refused(
    client: openai.OpenAI, schema: dict[str, Any], why: str
) -> None:
    text_format = {"type": "json_schema", "name": "data", "schema": schema, "strict": True}
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODEL, input="hi", text={"format": text_format})  # type: ignore[typeddict-item]
    assert refused.value.param == "text.format.schema"
    assert refused.value.code == "invalid_json_schema"
    assert _message(refused.value) == f"Invalid schema for response_format 'data': {why}"


@pytest.mark.parametrize(("schema", "why"), REFUSED, ids=IDS)
def test_a_strict_function_breaking_the_rules_is_refused(
    client: openai.OpenAI, schema: dict[str, Any], why: str
) -> None:
    chat_tool = {
        "type": "function",
        "function": {"name": "f", "parameters": schema, "strict": True},
    }
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=ASK, tools=[chat_tool])  # type: ignore[list-item]
    assert refused.value.param == "tools[0].function.parameters"
    assert refused.value.code == "invalid_function_parameters"
    assert _message(refused.value) == f"Invalid schema for function 'f': {why}"
    flat = {"type": "function", "name": "f", "parameters": schema, "strict": True}
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODEL, input="hi", tools=[flat])  # type: ignore[list-item]
    assert refused.value.param == "tools[0].parameters"
    assert refused.value.code == "invalid_function_parameters"
    assert _message(refused.value) == f"Invalid schema for function 'f': {why}"


@pytest.mark.parametrize("kind", ["array", "string"])
def test_a_strict_format_must_be_an_object(client: openai.OpenAI, kind: str) -> None:
    schema: dict[str, Any] = {"type": kind}
    if kind == "array":
        schema["items"] = {"type": "string"}
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            response_format=_chat_format(schema, True),  # type: ignore[arg-type]
        )
    assert refused.value.param == "response_format"
    assert _message(refused.value) == (
        "Invalid schema for response_format 'data': schema must be a JSON Schema of "
        f"'type: \"object\"', got 'type: \"{kind}\"'."
    )


# A root union (Zod's discriminatedUnion, TypeBox's Union), or `properties` without `type`: the
# API reads no type there, and refuses it as of type None (its words as the AI SDK's and
# TypeBox's users quote them); mockai took such a schema as an object.
UNION_ROOT = {
    "anyOf": [
        {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        }
    ]
}
UNTYPED = {"properties": {"city": {"type": "string"}}, "required": ["city"]}


def test_a_strict_format_without_a_type_at_its_root_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            response_format=_chat_format(UNION_ROOT, True),  # type: ignore[arg-type]
        )
    assert refused.value.param == "response_format"
    assert _message(refused.value) == (
        "Invalid schema for response_format 'data': schema must be a JSON Schema of "
        "'type: \"object\"', got 'type: \"None\"'."
    )


@pytest.mark.parametrize("parameters", [UNION_ROOT, UNTYPED], ids=["union", "untyped"])
def test_a_function_whose_parameters_have_no_type_is_refused(
    client: openai.OpenAI, parameters: dict[str, Any]
) -> None:
    why = (
        "Invalid schema for function 'f': schema must be a JSON Schema of 'type: \"object\"', "
        "got 'type: \"None\"'."
    )
    tool = {"type": "function", "function": {"name": "f", "parameters": parameters}}
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=ASK, tools=[tool])  # type: ignore[list-item]
    assert refused.value.param == "tools[0].function.parameters"
    assert refused.value.code == "invalid_function_parameters"
    assert _message(refused.value) == why
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(
            model=MODEL,
            input="hi",
            tools=[{"type": "function", "name": "f", "parameters": parameters}],  # type: ignore[list-item]
        )
    assert refused.value.param == "tools[0].parameters"
    assert _message(refused.value) == why
    # `{}` is a function without arguments, as the API takes it; the deprecated functions are
    # taken as they come.
    empty = {"type": "function", "function": {"name": "f", "parameters": {}}}
    assert client.chat.completions.create(model=MODEL, messages=ASK, tools=[empty])  # type: ignore[list-item]
    assert client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        functions=[{"name": "f", "parameters": parameters}],
    )


# (Requiring a property `additionalProperties: false` forbids has no answer in any mode.)
@pytest.mark.parametrize(
    ("schema", "why"),
    [case for case in REFUSED if case[0] is not EXTRA_REQUIRED],
    ids=[name for name in IDS if name != "extra-required"],
)
def test_the_same_schemas_without_strict_are_answered(
    client: openai.OpenAI, schema: dict[str, Any], why: str
) -> None:
    for strict in (None, False):
        chat = client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            response_format=_chat_format(schema, strict),  # type: ignore[arg-type]
        )
        assert chat.choices[0].message.content
        tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
        if strict is False:
            tool["function"]["strict"] = False
        called = client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            tools=[tool],  # type: ignore[list-item]
            tool_choice="required",
        )
        assert called.choices[0].message.tool_calls
    # A Responses function that leaves `strict` out is called best effort where its schema
    # cannot be made strict.
    flat = {"type": "function", "name": "f", "parameters": schema}
    response = client.responses.create(
        model=MODEL,
        input="hi",
        tools=[flat],  # type: ignore[list-item]
        tool_choice="required",
    )
    assert response.output[-1].type == "function_call"


def test_another_providers_profile_takes_its_strict_schemas() -> None:
    # (A server of its own: Groq's answers are not the OpenAI spec's, which `server` checks.)
    with (
        MockServer() as server,
        httpx.Client(base_url=server.url.removesuffix("/v1"), timeout=30) as http,
    ):
        answered = http.post(
            "/groq/openai/v1/chat/completions",
            json={
                "model": "llama-3.3-70b-versatile",
                "messages": ASK,
                "response_format": _chat_format(OPEN_ROOT, True),
            },
        )
        assert answered.status_code == 200, answered.text
        itemless = {"type": "object", "properties": {"paths": {"type": "array"}}}
        tool = {"type": "function", "function": {"name": "read_files", "parameters": itemless}}
        called = http.post(
            "/groq/openai/v1/chat/completions",
            json={"model": "llama-3.3-70b-versatile", "messages": ASK, "tools": [tool]},
        )
        assert called.status_code == 200, called.text


def test_a_recording_of_a_schema_openai_refuses_is_replayed(tmp_path: Path) -> None:
    # Recorded through an OpenAI-compatible upstream that took the schemas: the recording's
    # answer is the one, as for the catalog's model rules.
    body = {
        "model": MODEL,
        "messages": ASK,
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ],
        "response_format": _chat_format(OPEN_ROOT, True),
    }
    answer = recorded_chat(body, chat_completion("chatcmpl-1", MODEL, '{"a": "recorded"}'))
    cassette = tmp_path / "loose.yaml"
    cassette.write_text(yaml.safe_dump({"version": 1, "interactions": [answer]}), "utf-8")
    with MockServer(cassette=str(cassette)) as server, sdk(server) as client:
        replayed = client.chat.completions.create(**body)
    assert replayed.choices[0].message.content == '{"a": "recorded"}'


class Scores(BaseModel):
    team: str
    scores: dict[str, int]


class Team(BaseModel):
    name: str
    members: list[str]


def test_the_sdk_parse_helper_is_refused_as_the_api_refuses_a_map(client: openai.OpenAI) -> None:
    # The SDK makes a pydantic model's schema strict but cannot close a dict's object: the API
    # refuses it, so an app that passed against mockai would fail against OpenAI.
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.parse(model=MODEL, messages=ASK, response_format=Scores)
    assert _message(refused.value) == (
        f"Invalid schema for response_format 'Scores': In context=('properties', 'scores'), "
        f"{CLOSED}"
    )
    parsed = client.chat.completions.parse(model=MODEL, messages=ASK, response_format=Team)
    assert isinstance(parsed.choices[0].message.parsed, Team)
    tools = [openai.pydantic_function_tool(Team)]
    called = client.chat.completions.parse(
        model=MODEL, messages=ASK, tools=tools, tool_choice="required"
    )
    assert called.choices[0].message.tool_calls


# --- arrays without items ------------------------------------------------------------------------


ITEMLESS = [
    ({"paths": {"type": "array"}}, "('properties', 'paths')"),
    (
        {"values": {"type": "array", "items": {"type": "array"}}},
        "('properties', 'values', 'items')",
    ),
    ({"tags": {"type": ["string", "array", "null"]}}, "('properties', 'tags', 'type', '1')"),
    (
        {"pick": {"anyOf": [{"type": "string"}, {"type": "array"}]}},
        "('properties', 'pick', 'anyOf', '1')",
    ),
]


@pytest.mark.parametrize("strict", [None, True])
@pytest.mark.parametrize(("properties", "where"), ITEMLESS)
def test_a_function_with_an_array_without_items_is_refused(
    client: openai.OpenAI, properties: dict[str, Any], where: str, strict: bool | None
) -> None:
    schema = _closed(properties)
    function: dict[str, Any] = {"name": "read_files", "parameters": schema}
    if strict is not None:
        function["strict"] = strict
    why = (
        f"Invalid schema for function 'read_files': In context={where}, array schema missing items."
    )
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            tools=[{"type": "function", "function": function}],  # type: ignore[list-item]
        )
    assert refused.value.param == "tools[0].function.parameters"
    assert refused.value.code == "invalid_function_parameters"
    assert _message(refused.value) == why
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(
            model=MODEL,
            input="hi",
            tools=[{"type": "function", **function}],  # type: ignore[list-item]
        )
    assert refused.value.param == "tools[0].parameters"
    assert _message(refused.value) == why


def test_arrays_with_items_or_in_a_loose_format_are_answered(client: openai.OpenAI) -> None:
    listed = _closed({"paths": {"type": "array", "items": {"type": "string"}}})
    tool = {"type": "function", "function": {"name": "read_files", "parameters": listed}}
    called = client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        tools=[tool],  # type: ignore[list-item]
        tool_choice="required",
    )
    assert called.choices[0].message.tool_calls
    itemless = _closed({"paths": {"type": "array"}})
    chat = client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        response_format=_chat_format(itemless, None),  # type: ignore[arg-type]
    )
    assert chat.choices[0].message.content


# --- an object without properties ---------------------------------------------------------------


@pytest.mark.parametrize("strict", [None, False])
@pytest.mark.parametrize(
    "parameters",
    [{"type": "object"}, {"type": "object", "additionalProperties": {"type": "string"}}],
)
def test_a_function_whose_parameters_have_no_properties_is_refused(
    client: openai.OpenAI, parameters: dict[str, Any], strict: bool | None
) -> None:
    function: dict[str, Any] = {"name": "list_namespaces", "parameters": parameters}
    if strict is not None:
        function["strict"] = strict
    why = (
        "Invalid schema for function 'list_namespaces': In context=(), object schema missing "
        "properties."
    )
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            tools=[{"type": "function", "function": function}],  # type: ignore[list-item]
        )
    assert refused.value.param == "tools[0].function.parameters"
    assert refused.value.code == "invalid_function_parameters"
    assert _message(refused.value) == why
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(
            model=MODEL,
            input="hi",
            tools=[{"type": "function", **function}],  # type: ignore[list-item]
        )
    assert refused.value.param == "tools[0].parameters"
    assert _message(refused.value) == why


def test_a_function_without_arguments_written_as_the_api_takes_it_is_called(
    client: openai.OpenAI,
) -> None:
    for function in (
        {"name": "list_namespaces"},
        {"name": "list_namespaces", "parameters": {"type": "object", "properties": {}}},
        {
            "name": "list_namespaces",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {},
                "required": [],
                "additionalProperties": False,
            },
        },
    ):
        chat = client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            tools=[{"type": "function", "function": function}],  # type: ignore[list-item]
            tool_choice="required",
        )
        calls = chat.choices[0].message.tool_calls or []
        assert [call.function.arguments for call in calls] == ["{}"]  # type: ignore[union-attr]


# --- a chat function's description --------------------------------------------------------------


def test_a_chat_functions_description_over_1024_characters_is_refused(
    client: openai.OpenAI,
) -> None:
    tool = {
        "type": "function",
        "function": {**WEATHER["function"], "description": "Look the weather up. " * 60},  # type: ignore[dict-item]
    }
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=ASK, tools=[tool, tool])  # type: ignore[list-item]
    assert refused.value.param == "tools[0].function.description"
    assert refused.value.code == "string_above_max_length"
    assert _message(refused.value) == (
        "Invalid 'tools[0].function.description': string too long. Expected a string with "
        "maximum length 1024, but got a string with length 1260 instead."
    )


def test_a_description_of_1024_characters_or_on_the_responses_api_is_taken(
    client: openai.OpenAI,
) -> None:
    tool = {"type": "function", "function": {**WEATHER["function"], "description": "d" * 1024}}  # type: ignore[dict-item]
    chat = client.chat.completions.create(model=MODEL, messages=ASK, tools=[tool])  # type: ignore[list-item]
    assert chat.choices
    flat = {"type": "function", **WEATHER["function"], "description": "d" * 5000}  # type: ignore[dict-item]
    response = client.responses.create(model=MODEL, input="hi", tools=[flat])  # type: ignore[list-item]
    assert response.status == "completed"


# --- tool names in words --------------------------------------------------------------------------


def _function(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "parameters": WEATHER["function"]["parameters"]},
    }  # type: ignore[index]


@pytest.mark.parametrize("name", ["get_weather", "getWeather", "GetWeather", "GET_WEATHER"])
def test_auto_calls_a_tool_the_question_is_about_however_its_name_is_written(
    client: openai.OpenAI, name: str
) -> None:
    chat = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[_function(name)],  # type: ignore[list-item]
    )
    calls = chat.choices[0].message.tool_calls
    assert calls, chat.choices[0].message.content
    assert calls[0].function.name == name  # type: ignore[union-attr]


def test_required_picks_the_tool_the_question_is_about_among_camel_case_names(
    client: openai.OpenAI,
) -> None:
    tools = [_function("lookupStockPrice"), _function("getWeather")]
    chat = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=tools,  # type: ignore[arg-type]
        tool_choice="required",
    )
    assert [call.function.name for call in chat.choices[0].message.tool_calls or []] == [  # type: ignore[union-attr]
        "getWeather"
    ]


class GetWeather(BaseModel):
    city: str


def test_the_sdks_pydantic_tool_is_called_for_a_question_about_it(client: openai.OpenAI) -> None:
    chat = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[openai.pydantic_function_tool(GetWeather)],
    )
    calls = chat.choices[0].message.tool_calls or []
    assert [call.function.parsed_arguments for call in calls] == [GetWeather(city="Paris")]
