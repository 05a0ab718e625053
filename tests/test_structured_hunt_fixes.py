"""Structured output and schemas, as a bug hunt found them:

* a large schema is checked against the metaschema off the event loop: other clients are served
  while it is checked;
* a `const` the rest of its node refuses (`{"type": "integer", "const": "abc"}`) is a 400
  `mockai_generation_failed`, as the same contradiction spelled with `enum` is, not an answer
  that fails the schema;
* `response_format.json_schema.name` and `text.format.name` are checked as function names are,
  matched whole (`"ping\\n"` is refused), and a name over 64 characters is refused as too long;
* a custom tool's regex grammar with leading global flags (`(?i)`, `(?s)`) gets an input the
  whole regex matches;
* a deep chain of `$ref`s that is not a recursion is refused for mockai's depth limit, not
  called a recursion.

Through a real server with the openai SDK or httpx, as users meet them.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import httpx
import jsonschema
import openai
import pytest
from conformance import checked_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sdk import sdk

from mockai import MockServer

PROPERTIES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MODEL = "gpt-4o-mini"
Item = TypeVar("Item")
ASK = [{"role": "user", "content": "give me the data"}]


@pytest.fixture(scope="module")
def shared() -> Iterator[MockServer]:
    """One server for the module's properties (each example is a request of its own)."""
    with checked_server() as running:
        yield running


@pytest.fixture(scope="module")
def http(shared: MockServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared.url, timeout=30) as client:
        yield client


def _closed(properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema requiring all of `properties`, as strict mode wants them."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


# --- a large schema does not stall other clients -------------------------------------------------


def _unused_definitions(count: int, prefix: str) -> dict[str, Any]:
    """A chat request for one string whose schema also holds `count` definitions it never uses:
    checking those against the metaschema is nearly all of its time, generating the answer is
    not."""
    schema = {
        **_closed({"a": {"type": "string"}}),
        "definitions": {f"{prefix}{i}": {"type": "string"} for i in range(count)},
    }
    return {
        "model": MODEL,
        "messages": ASK,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "big", "schema": schema},
        },
    }


def _as_input_tokens(chat: dict[str, Any]) -> dict[str, Any]:
    """The same schema, asked of `POST /responses/input_tokens` (counted as `/responses` parses)."""
    schema = chat["response_format"]["json_schema"]["schema"]
    text_format = {"type": "json_schema", "name": "big", "schema": schema}
    return {"model": MODEL, "input": "hi", "text": {"format": text_format}}


@pytest.mark.parametrize("route", ["/chat/completions", "/responses/input_tokens"])
def test_a_large_schema_is_checked_while_other_clients_are_served(route: str) -> None:
    shaped = _as_input_tokens if route == "/responses/input_tokens" else (lambda chat: chat)
    # (a prefix of its own per case: verdicts are kept by the schema's text, process-wide)
    big = shaped(_unused_definitions(16_000, route.split("/")[-1]))
    # (A model whose window holds the schema, which the prompt bills: ~159k tokens, past
    # gpt-4o-mini's 128k.)
    big["model"] = "gpt-4.1-mini"
    small = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    outcome: list[tuple[int, float]] = []
    with MockServer(log_requests=False) as server, httpx.Client(timeout=60) as client:
        url = f"{server.url}/chat/completions"
        # First uses (imports, the worker thread and its generator) paid before the measure;
        # another schema text, so that the big one's verdict is not kept.
        for body in (small, _unused_definitions(3_000, "warm")):
            assert client.post(url, json=body).status_code == 200

        def send_big() -> None:
            started = time.monotonic()
            answer = httpx.post(f"{server.url}{route}", json=big, timeout=60)
            outcome.append((answer.status_code, time.monotonic() - started))

        sender = threading.Thread(target=send_big)
        sender.start()
        waits = []
        while sender.is_alive():  # (bounded: the big request times out after 60 s)
            started = time.monotonic()
            assert client.post(url, json=small).status_code == 200
            waits.append(time.monotonic() - started)
        sender.join()
    [(status, took)] = outcome
    assert status == 200
    assert len(waits) >= 2
    # (without the check off the loop a small request waited ~90% of the big one's time)
    assert max(waits) < took / 2, (max(waits), took)


# --- const is held to the rest of its node -------------------------------------------------------

CONTRADICTIONS = [
    {"type": "integer", "const": "abc"},
    {"type": "string", "const": "v1", "pattern": "^x"},
    {"const": "ab", "minLength": 5},
    {"const": 3, "enum": [1, 2]},
]


def _structured(client: openai.OpenAI, surface: str, schema: dict[str, Any]) -> str:
    """The JSON text a structured request on `surface` is answered with."""
    if surface == "chat response_format":
        completion = client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "data", "strict": True, "schema": schema},
            },
        )
        return completion.choices[0].message.content or ""
    if surface == "chat strict tool":
        completion = client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            tools=[
                {
                    "type": "function",
                    "function": {"name": "save", "parameters": schema, "strict": True},
                }
            ],
            tool_choice="required",
        )
        calls = completion.choices[0].message.tool_calls or []
        return calls[0].function.arguments
    response = client.responses.create(
        model=MODEL,
        input="give me the data",
        text={"format": {"type": "json_schema", "name": "data", "strict": True, "schema": schema}},
    )
    return response.output_text


SURFACES = ["chat response_format", "chat strict tool", "responses text.format"]


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("node", CONTRADICTIONS, ids=json.dumps)
def test_a_const_the_rest_of_its_node_refuses_is_a_generation_failure(
    client: openai.OpenAI, surface: str, node: dict[str, Any]
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _structured(client, surface, _closed({"v": node}))
    assert refused.value.code == "mockai_generation_failed"
    assert "no const value satisfies the other constraints" in refused.value.message


CONSTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-20, 20),
    st.floats(-20, 20, allow_nan=False).map(lambda x: round(x, 2)),
    st.text(alphabet="abcxyz09 ", max_size=8),
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.sampled_from("ab"), st.integers(0, 3), max_size=2),
)
TYPES = st.sampled_from(["string", "integer", "number", "boolean", "null", "array", "object"])
KEYWORDS = st.fixed_dictionaries(
    {},
    optional={
        "type": TYPES | st.lists(TYPES, min_size=1, max_size=3, unique=True),
        "minLength": st.integers(0, 6),
        "maxLength": st.integers(0, 6),
        "pattern": st.sampled_from(["^[a-c]+$", "x", r"^\d", "^$"]),
        "minimum": st.integers(-10, 10),
        "maximum": st.integers(-10, 10),
        "multipleOf": st.sampled_from([1, 2, 0.5]),
        "enum": st.lists(CONSTS, min_size=1, max_size=3),
        "minItems": st.integers(0, 3),
        "uniqueItems": st.booleans(),
        "required": st.lists(st.sampled_from("ab"), max_size=2, unique=True),
        "description": st.text(max_size=5),
    },
)


@PROPERTIES
@given(const=CONSTS, keywords=KEYWORDS, tool=st.booleans())
def test_an_answer_for_a_const_is_valid_or_a_generation_failure(
    http: httpx.Client, const: Any, keywords: dict[str, Any], tool: bool
) -> None:
    node = {**keywords, "const": const}
    kind = node.get("type")
    if kind == "array" or (isinstance(kind, list) and "array" in kind):
        node["items"] = {}  # (a function's array without items is the API's own 400)
    schema = _closed({"v": node})
    body: dict[str, Any] = {"model": MODEL, "messages": ASK}
    if tool:
        body["tools"] = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
        body["tool_choice"] = "required"
    else:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "data", "schema": schema},
        }
    answer = http.post("/chat/completions", json=body)
    if answer.status_code == 400:
        assert answer.json()["error"]["code"] == "mockai_generation_failed", answer.text
        return
    assert answer.status_code == 200, answer.text
    message = answer.json()["choices"][0]["message"]
    text = message["tool_calls"][0]["function"]["arguments"] if tool else message["content"]
    jsonschema.Draft202012Validator(schema).validate(json.loads(text))


def _message(error: openai.APIStatusError) -> str:
    """The `message` of an error's body, as the API wrote it."""
    body = error.body
    assert isinstance(body, dict)
    return str(body["message"])


# --- format and function names -------------------------------------------------------------------

PATTERN_MISMATCH = ["my format!", "ok\n", "ping\n", "dotted.name", "ünïcode", ""]
TOO_LONG = ["a" * 65, "b" * 101]


def _named(client: openai.OpenAI, where: str, name: str) -> None:
    """A request on `where` carrying `name` (the schema is fine)."""
    schema = _closed({"a": {"type": "integer"}})
    if where == "response_format.json_schema.name":
        client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": name, "strict": True, "schema": schema},
            },
        )
    elif where == "text.format.name":
        client.responses.create(
            model=MODEL,
            input="hi",
            text={"format": {"type": "json_schema", "name": name, "schema": schema}},
        )
    elif where == "tools[0].function.name":
        client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            tools=[{"type": "function", "function": {"name": name, "parameters": schema}}],
        )
    else:
        client.responses.create(
            model=MODEL,
            input="hi",
            tools=[{"type": "function", "name": name, "parameters": schema, "strict": True}],
        )


NAMED = [
    "response_format.json_schema.name",
    "text.format.name",
    "tools[0].function.name",
    "tools[0].name",
]


@pytest.mark.parametrize("where", NAMED)
@pytest.mark.parametrize("name", PATTERN_MISMATCH)
def test_a_name_with_other_characters_is_refused(
    client: openai.OpenAI, where: str, name: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _named(client, where, name)
    assert refused.value.code == "invalid_value"
    assert refused.value.param == where
    assert _message(refused.value) == (
        f"Invalid '{where}': string does not match pattern. Expected a string that matches the "
        "pattern '^[a-zA-Z0-9_-]+$'."
    )


@pytest.mark.parametrize("where", NAMED)
@pytest.mark.parametrize("name", TOO_LONG)
def test_a_name_over_64_characters_is_refused_as_too_long(
    client: openai.OpenAI, where: str, name: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _named(client, where, name)
    assert refused.value.code == "string_above_max_length"
    assert refused.value.param == where
    assert _message(refused.value) == (
        f"Invalid '{where}': string too long. Expected a string with maximum length 64, but "
        f"got a string with length {len(name)} instead."
    )


@PROPERTIES
@given(
    name=st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True)
    | st.text(alphabet="ab_-.! \n\t\u00e9", max_size=66),
    where=st.sampled_from(NAMED),
)
def test_a_name_is_taken_exactly_when_the_spec_allows_it(
    shared: MockServer, name: str, where: str
) -> None:
    allowed = re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name) is not None
    with sdk(shared) as client:
        if allowed:
            _named(client, where, name)
            return
        with pytest.raises(openai.BadRequestError) as refused:
            _named(client, where, name)
    assert refused.value.param == where


class CalendarEvent(BaseModel):
    name: str
    attendees: list[str]


class Page(BaseModel, Generic[Item]):
    items: list[Item]


def test_the_sdk_parse_helpers_send_names_that_are_taken_or_refused_as_the_api_does(
    client: openai.OpenAI,
) -> None:
    chat = client.chat.completions.parse(model=MODEL, messages=ASK, response_format=CalendarEvent)
    response = client.responses.parse(model=MODEL, input="hi", text_format=CalendarEvent)
    assert isinstance(chat.choices[0].message.parsed, CalendarEvent)
    assert isinstance(response.output_parsed, CalendarEvent)
    # A generic model's class name, `Page[CalendarEvent]`, is no name the API takes.
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.parse(
            model=MODEL,
            messages=ASK,
            response_format=Page[CalendarEvent],
        )
    assert refused.value.param == "response_format.json_schema.name"


# --- a regex grammar with leading flags ----------------------------------------------------------


def _grammar_input(client: httpx.Client, definition: str) -> tuple[str, str | None]:
    """The input of the custom call a chat request with a regex-grammar tool gets, and the
    answer's warning header."""
    tool = {
        "type": "custom",
        "custom": {
            "name": "code",
            "format": {
                "type": "grammar",
                "grammar": {"syntax": "regex", "definition": definition},
            },
        },
    }
    body = {"model": MODEL, "messages": ASK, "tools": [tool], "tool_choice": "required"}
    answer = client.post("/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    call = answer.json()["choices"][0]["message"]["tool_calls"][0]
    return call["custom"]["input"], answer.headers.get("x-mockai-warning")


@pytest.mark.parametrize(
    "definition",
    [
        r"(?i)^[a-z]{3}$",
        r"(?s)a.b",
        r"(?i)(?s)^Q.[0-9]{2}$",
        "(?x) [a-z]+ \\d  # a word, then a digit",
        r"(?m)^ab$",
    ],
)
def test_a_regex_grammar_with_leading_flags_gets_an_input_it_matches_whole(
    http: httpx.Client, definition: str
) -> None:
    text, warning = _grammar_input(http, definition)
    assert re.fullmatch(definition, text), text
    assert warning is None


ATOMS = st.sampled_from(["[a-z]", "[A-Z]", r"\d", ".", "x", "Q", "(ab|cd)", "[0-9a-f]"])
QUANTIFIERS = st.sampled_from(["", "?", "+", "{2}", "{1,3}", "*"])
FLAGS = st.lists(st.sampled_from("imsx"), min_size=1, max_size=3, unique=True)


@st.composite
def flagged_regexes(draw: st.DrawFn) -> str:
    """A regex of a few quantified atoms after one or two groups of global flags."""
    letters = draw(FLAGS)
    split = draw(st.integers(1, len(letters)))
    groups = [letters[:split], letters[split:]]
    head = "".join(f"(?{''.join(group)})" for group in groups if group)
    atoms = draw(st.lists(st.tuples(ATOMS, QUANTIFIERS), min_size=1, max_size=5))
    body = "".join(atom + quantifier for atom, quantifier in atoms)
    anchored = draw(st.booleans())
    return f"{head}^{body}$" if anchored else head + body


@PROPERTIES
@given(definition=flagged_regexes())
def test_an_input_fullmatches_its_flagged_regex_grammar(
    http: httpx.Client, definition: str
) -> None:
    text, warning = _grammar_input(http, definition)
    assert warning is None
    assert re.fullmatch(definition, text), (definition, text)


# --- a deep chain of $refs -----------------------------------------------------------------------


def _chain(levels: int) -> dict[str, Any]:
    """A schema whose `root` nests `levels` + 1 distinct models, each the next one's parent."""
    models = {
        f"M{i}": _closed({"v": {"type": "integer"}, "child": {"$ref": f"#/$defs/M{i + 1}"}})
        for i in range(levels)
    }
    models[f"M{levels}"] = _closed({"v": {"type": "integer"}})
    return {"$defs": models, **_closed({"root": {"$ref": "#/$defs/M0"}})}


def _format_answer(client: openai.OpenAI, schema: dict[str, Any]) -> Any:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        response_format={"type": "json_schema", "json_schema": {"name": "deep", "schema": schema}},
    )
    return json.loads(completion.choices[0].message.content or "")


def test_a_chain_deeper_than_the_limit_is_refused_for_the_limit_not_as_a_recursion(
    client: openai.OpenAI,
) -> None:
    within = _chain(39)  # 40 $ref levels, the most mockai follows
    jsonschema.Draft202012Validator(within).validate(_format_answer(client, within))
    with pytest.raises(openai.BadRequestError) as refused:
        _format_answer(client, _chain(40))
    assert refused.value.code == "mockai_generation_failed"
    message = _message(refused.value)
    assert "more than 40 nested $ref levels (mockai's limit), at $ref '#/$defs/M40'" in message
    assert "recursion" not in message


def test_a_model_that_requires_itself_is_still_called_a_recursion(client: openai.OpenAI) -> None:
    schema = {
        "$defs": {"Node": _closed({"next": {"$ref": "#/$defs/Node"}})},
        **_closed({"root": {"$ref": "#/$defs/Node"}}),
    }
    with pytest.raises(openai.BadRequestError) as refused:
        _format_answer(client, schema)
    assert refused.value.code == "mockai_generation_failed"
    assert "recursion through $ref '#/$defs/Node' never reaches a finite instance" in _message(
        refused.value
    )
