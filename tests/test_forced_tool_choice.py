"""A scripted reply against a request whose tool_choice forces a call (named, `required`,
allowed_tools in required mode): a `json` object answers as the call to the one forced function
(LangChain's `function_calling`, instructor's TOOLS), and text or a call to another tool is a stale
fixture (warning, or `400 mockai_stale_fixture` in strict mode). Chat and Responses."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest
from conformance import checked_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk import sdk

from mockai import MockServer

MODEL = "gpt-4o-mini"
PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
LOOKUP_SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}}
CITY_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
ANN = {"name": "Ann", "age": 33}
RULES: list[dict[str, Any]] = [
    {"name": "person", "match": {"user": {"equals": "person"}}, "reply": {"json": ANN}},
    {"name": "aged", "match": {"user": {"equals": "aged"}}, "reply": {"json": {"name": "Ann"}}},
    {"name": "prose", "match": {"user": {"equals": "prose"}}, "reply": {"content": "plain words"}},
    {
        "name": "compare",
        "match": {"user": {"equals": "compare"}},
        "reply": {
            "tool_calls": [
                {"name": "get_weather", "arguments": {"city": "Oslo"}},
                {"name": "get_weather", "arguments": {"city": "Rome"}},
            ]
        },
    },
]


def _chat_tool(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


def _flat_tool(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "name": name, "parameters": parameters, "strict": False}


PERSON, LOOKUP, WEATHER = (
    _chat_tool("Person", PERSON_SCHEMA),
    _chat_tool("lookup", LOOKUP_SCHEMA),
    _chat_tool("get_weather", CITY_SCHEMA),
)
FORCE_PERSON = {"type": "function", "function": {"name": "Person"}}
ALLOW_PERSON = {
    "type": "allowed_tools",
    "allowed_tools": {"mode": "required", "tools": [FORCE_PERSON]},
}


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with checked_server() as running:
        running.add_rules(RULES)
        yield running


@pytest.fixture(scope="module")
def strict() -> Iterator[MockServer]:
    with checked_server(strict=True) as running:
        running.add_rules(RULES)
        yield running


@pytest.fixture(scope="module")
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with sdk(server) as opened:
        yield opened


def _chat(client: openai.OpenAI, user: str, tools: list[Any], choice: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": user}], tools=tools, tool_choice=choice
    )


def _responses(client: openai.OpenAI, user: str, tools: list[Any], choice: Any) -> Any:
    return client.responses.with_raw_response.create(
        model=MODEL, input=user, tools=tools, tool_choice=choice
    )


# --- a json object answers as the forced function's call -------------------------------------------


@pytest.mark.parametrize(
    ("tools", "choice"),
    [
        ([PERSON], FORCE_PERSON),
        ([PERSON, LOOKUP], FORCE_PERSON),
        ([PERSON], "required"),
        ([PERSON, LOOKUP], ALLOW_PERSON),
    ],
    ids=["named", "named-among-two", "required-one-tool", "allowed-required"],
)
def test_chat_json_answers_as_the_forced_call(
    client: openai.OpenAI, server: MockServer, tools: list[Any], choice: Any
) -> None:
    raw = _chat(client, "person", tools, choice)
    answer = raw.parse().choices[0]
    assert answer.finish_reason == "tool_calls"
    assert answer.message.content is None
    [call] = answer.message.tool_calls
    assert call.function.name == "Person"
    assert json.loads(call.function.arguments) == ANN
    assert "x-mockai-warning" not in raw.headers
    assert not server.requests[-1].warnings


@pytest.mark.parametrize(
    "choice", [{"type": "function", "name": "Person"}, "required"], ids=["named", "required"]
)
def test_responses_json_answers_as_the_forced_call(
    client: openai.OpenAI, server: MockServer, choice: Any
) -> None:
    raw = _responses(client, "person", [_flat_tool("Person", PERSON_SCHEMA)], choice)
    [item] = raw.parse().output
    assert item.type == "function_call" and item.name == "Person"
    assert json.loads(item.arguments) == ANN
    assert "x-mockai-warning" not in raw.headers


class Person(pydantic.BaseModel):
    name: str
    age: int


@pytest.mark.parametrize("use_responses_api", [False, True], ids=["chat", "responses"])
def test_langchain_function_calling_gets_the_scripted_object(
    server: MockServer, use_responses_api: bool
) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model=MODEL,
        base_url=server.url,
        api_key="sk-test",  # type: ignore[arg-type]
        max_retries=0,
        use_responses_api=use_responses_api,
    )
    structured = llm.with_structured_output(Person, method="function_calling")
    assert structured.invoke("person") == Person(**ANN)


# --- stale fixtures ---------------------------------------------------------------------------------

FORCED_LOOKUP = "the request's tool_choice forces a call to 'lookup'"
HINT = " (script tool_calls, or a json object for one function)"


@pytest.mark.parametrize(
    ("user", "tools", "choice", "warning"),
    [
        ("prose", [LOOKUP], {"type": "function", "function": {"name": "lookup"}}, FORCED_LOOKUP),
        (
            "prose",
            [LOOKUP],
            "required",
            "the request's tool_choice requires a tool call (to lookup)",
        ),
        (
            "person",  # two candidates: which one the object is for would be a guess
            [PERSON, LOOKUP],
            "required",
            "the request's tool_choice requires a tool call (to Person, lookup)",
        ),
    ],
    ids=["content-named", "content-required", "json-required-two-tools"],
)
def test_chat_text_under_a_forced_call_is_flagged(
    client: openai.OpenAI, server: MockServer, user: str, tools: Any, choice: Any, warning: str
) -> None:
    raw = _chat(client, user, tools, choice)
    assert raw.parse().choices[0].message.tool_calls is None
    expected = f"rule '{user}' (<runtime>): answers with text, but {warning}{HINT}"
    assert raw.headers["x-mockai-warning"].endswith(f"answers with text, but {warning}{HINT}")
    assert server.requests[-1].warnings == [expected]


def test_responses_text_under_required_is_flagged(client: openai.OpenAI) -> None:
    raw = _responses(client, "prose", [_flat_tool("lookup", LOOKUP_SCHEMA)], "required")
    assert [item.type for item in raw.parse().output] == ["message"]
    assert raw.headers["x-mockai-warning"].endswith(
        "answers with text, but the request's tool_choice requires a tool call (to lookup)" + HINT
    )


@pytest.mark.parametrize(
    ("choice", "warning"),
    [
        (
            {"type": "function", "function": {"name": "lookup"}},
            "calls tool 'get_weather', but the request's tool_choice forces 'lookup'",
        ),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "auto",
                    "tools": [{"type": "function", "function": {"name": "lookup"}}],
                },
            },
            "calls tool 'get_weather', but the request's tool_choice allows only lookup",
        ),
    ],
    ids=["named", "allowed"],
)
def test_a_call_to_another_tool_is_flagged(
    client: openai.OpenAI, server: MockServer, choice: Any, warning: str
) -> None:
    raw = _chat(client, "compare", [WEATHER, LOOKUP], choice)
    assert raw.headers["x-mockai-warning"].endswith(warning)
    # Both scripted calls are to get_weather: the warning is said once.
    assert [text.split(": ", 1)[1] for text in server.requests[-1].warnings] == [warning]


def test_the_json_is_checked_against_the_forced_tools_schema(
    client: openai.OpenAI, server: MockServer
) -> None:
    raw = _chat(client, "aged", [PERSON], FORCE_PERSON)
    [call] = raw.parse().choices[0].message.tool_calls
    assert json.loads(call.function.arguments) == {"name": "Ann"}
    assert raw.headers["x-mockai-warning"].endswith(
        "the arguments of tool call 'Person' (the rule's json) do not match the tool's schema: "
        "at $: 'age' is a required property"
    )


@pytest.mark.parametrize(
    ("user", "tools", "choice", "endpoint"),
    [
        ("prose", [LOOKUP], "required", "chat"),
        (
            "prose",
            [_flat_tool("lookup", LOOKUP_SCHEMA)],
            {"type": "function", "name": "lookup"},
            "responses",
        ),
        (
            "compare",
            [WEATHER, LOOKUP],
            {"type": "function", "function": {"name": "lookup"}},
            "chat",
        ),
        ("aged", [PERSON], FORCE_PERSON, "chat"),
        ("aged", [_flat_tool("Person", PERSON_SCHEMA)], "required", "responses"),
    ],
    ids=["chat-text", "responses-text", "other-tool", "chat-schema", "responses-schema"],
)
def test_strict_mode_answers_400_stale_fixture(
    strict: MockServer, user: str, tools: Any, choice: Any, endpoint: str
) -> None:
    with sdk(strict) as client, pytest.raises(openai.BadRequestError) as raised:
        (_chat if endpoint == "chat" else _responses)(client, user, tools, choice)
    assert raised.value.code == "mockai_stale_fixture"
    assert f"rule '{user}'" in raised.value.message


def test_strict_mode_answers_a_matching_object_as_the_call(strict: MockServer) -> None:
    with sdk(strict) as client:
        [call] = _chat(client, "person", [PERSON], "required").parse().choices[0].message.tool_calls
    assert json.loads(call.function.arguments) == ANN


# --- property: any object scripted as json is the forced call's arguments --------------------------

# Strings in `json` are templates: keep jinja's markers out.
_TEXT = st.text(
    st.characters(blacklist_characters="{}%#", blacklist_categories=("Cs",)), max_size=8
)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_OBJECTS = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True), _VALUES, max_size=4
)


_TAGS = itertools.count()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(value=_OBJECTS, flat=st.booleans())
def test_any_scripted_object_is_the_forced_calls_arguments(
    server: MockServer, client: openai.OpenAI, value: dict[str, Any], flat: bool
) -> None:
    tag = f"object {next(_TAGS)}"
    server.add_rule({"match": {"user": {"equals": tag}}, "reply": {"json": value}})
    # (Any object: `properties` must be there, the API refuses an object schema without them.)
    anything = {"type": "object", "properties": {}}
    if flat:
        [item] = _responses(client, tag, [_flat_tool("Any", anything)], "required").parse().output
        assert item.type == "function_call" and item.name == "Any"
        arguments = item.arguments
    else:
        reply = _chat(client, tag, [_chat_tool("Any", anything)], "required").parse()
        [call] = reply.choices[0].message.tool_calls
        arguments = call.function.arguments
    assert json.loads(arguments) == value
    assert not server.requests[-1].warnings
