"""Generated structured answers say something: never `{}` for an object whose properties are all
optional, a list that holds what was asked for, the schema the prompt holds in JSON mode, and the
place the message names.

Unit properties over the schema generator and the prompt-schema finder, then the same through a
real server with the openai SDK.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from conformance import checked_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockai import MockServer
from mockai.generate.prompted import PromptSchemas, find_schema
from mockai.generate.schema import instance
from mockai.generate.schema.places import place_for

PROPERTIES = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- schemas -------------------------------------------------------------------------------------

PROPERTY_NAMES = st.sampled_from(
    ["name", "age", "city", "tasks", "items", "email", "notes", "tags", "score", "id", "country"]
) | st.from_regex(r"[a-z][a-zA-Z_]{0,10}", fullmatch=True)
LEAVES = st.sampled_from(
    [
        {"type": "string"},
        {"type": "integer", "minimum": 0},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "string", "format": "email"},
        {"enum": ["a", "b"]},
        {"anyOf": [{"type": "string"}, {"type": "null"}]},
        {"type": "string", "maxLength": 3},
    ]
)
USER = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def _objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(PROPERTY_NAMES, children, min_size=1, max_size=5).map(
        lambda props: {"type": "object", "properties": props}
    )


SCHEMAS = st.recursive(
    LEAVES | st.just({"$ref": "#/$defs/User"}),
    lambda children: _objects(children) | children.map(lambda s: {"type": "array", "items": s}),
    max_leaves=8,
)


@st.composite
def optional_only_objects(draw: st.DrawFn) -> dict[str, Any]:
    """An object schema with properties, none required, maybe closed, maybe with $defs."""
    schema = draw(_objects(SCHEMAS))
    if draw(st.booleans()):
        schema["additionalProperties"] = False
    if draw(st.booleans()):
        schema["required"] = []  # as instructor sends it
    return {**schema, "$defs": {"User": USER}}


@PROPERTIES
@given(schema=optional_only_objects(), seed=st.integers(0, 2**32 - 1), context=st.text(max_size=30))
def test_an_object_with_properties_but_none_required_is_never_empty(
    schema: dict[str, Any], seed: int, context: str
) -> None:
    value = instance(schema, random.Random(seed), context=context)
    jsonschema.validate(value, schema)
    assert value, "an object that declares properties says at least one"


@PROPERTIES
@given(seed=st.integers(0, 2**32 - 1))
def test_the_list_instructor_asks_for_holds_users(seed: int) -> None:
    """instructor's `list[User]` / `create_iterable` schema: `tasks` is optional."""
    schema = {
        "$defs": {"User": {**USER, "title": "User"}},
        "properties": {"tasks": {"type": "array", "items": {"$ref": "#/$defs/User"}}},
        "type": "object",
        "required": [],
    }
    value = instance(schema, random.Random(seed))
    jsonschema.validate(value, schema)
    assert len(value["tasks"]) >= 1
    assert all(user["name"] and 18 <= user["age"] <= 80 for user in value["tasks"])  # plausible


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string"}}, "maxProperties": 0},
        {"type": "object", "properties": {"a": False}},
        {
            "type": "object",
            "properties": {"a": {"type": "array", "items": {"type": "string"}, "maxItems": 0}},
            "required": ["a"],
        },
    ],
)
def test_schemas_that_allow_only_empty_stay_valid(schema: dict[str, Any]) -> None:
    for seed in range(10):
        jsonschema.validate(instance(schema, random.Random(seed)), schema)


def test_min_properties_is_still_met() -> None:
    schema = {
        "type": "object",
        "properties": {k: {"type": "integer"} for k in "abcd"},
        "minProperties": 3,
    }
    for seed in range(20):
        value = instance(schema, random.Random(seed))
        jsonschema.validate(value, schema)


# --- schemas written in the prompt -------------------------------------------------------------

PROSE = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)


@PROPERTIES
@given(
    schema=optional_only_objects(),
    before=PROSE,
    after=PROSE,
    indent=st.sampled_from([None, 2]),
    fence=st.booleans(),
)
def test_a_schema_written_anywhere_in_prose_is_found(
    schema: dict[str, Any], before: str, after: str, indent: int | None, fence: bool
) -> None:
    written = json.dumps(schema, indent=indent, ensure_ascii=False)
    if fence:
        written = f"```json\n{written}\n```"
    found = find_schema(f"{before}{written}{after}")
    # Prose made of braces and quotes may itself hold a bigger schema-looking object; never one
    # that is not there, and the written one whenever the prose holds no JSON of its own.
    assert found is not None
    if "{" not in before + after:
        assert found.schema == schema


@pytest.mark.parametrize(
    "text",
    [
        "no braces at all",
        '{"type": "order", "items": [1, 2]}',  # an instance, not a schema
        '{"name": "Alice", "properties": "three houses"}',
        "{unbalanced " * 50,
        '{"a": "unterminated ' + "{" * 200,
        "{}" * 1000,
    ],
)
def test_text_without_a_schema_has_none(text: str) -> None:
    assert find_schema(text) is None


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(
        st.one_of(
            PROSE,
            st.builds(
                lambda n, pad: (
                    json.dumps(
                        {
                            "type": "object",
                            "properties": {f"p{i}": {"type": "string"} for i in range(n)},
                        }
                    )
                    + pad
                ),
                st.integers(1, 40),
                PROSE,
            ),
        ),
        max_size=40,
    ),
    size=st.integers(1, 8),
    max_bytes=st.integers(0, 4000),
)
def test_remembered_schemas_are_the_searched_ones_within_both_bounds(
    texts: list[str], size: int, max_bytes: int
) -> None:
    # What a text's schema is does not depend on what was remembered; the memory never holds
    # more finds than its count, nor more weight than its bytes (a schema heavier than all of
    # them is not kept: 256 quarter-MiB schemas, bounded by count alone, held ~300 MiB).
    remembered = PromptSchemas(size=size, max_bytes=max_bytes)
    for text in [*texts, *reversed(texts)]:
        assert remembered.find(text) == find_schema(text)
        assert len(remembered._found) <= size
        assert 0 <= remembered.bytes <= max_bytes
        assert remembered.bytes == sum(weight for _, weight in remembered._found.values())


def test_the_largest_schema_wins_and_stray_braces_do_not_hide_it() -> None:
    small = {"type": "object", "properties": {"a": {"type": "string"}}}
    large = {
        "type": "object",
        "properties": {"b": {"type": "string"}, "c": {"type": "integer"}},
        "required": ["b"],
    }
    text = (
        f'Use {{name}} and say "hi {{there. Small: {json.dumps(small)} Large: {json.dumps(large)}'
    )
    found = find_schema(text)
    assert found is not None and found.schema == large


def _user_model_schema() -> dict[str, Any]:
    return {
        "properties": {
            "name": {"title": "Name", "type": "string"},
            "age": {"title": "Age", "type": "integer"},
        },
        "required": ["name", "age"],
        "title": "User",
        "type": "object",
    }


INSTRUCTOR_JSON_PROMPT = (
    "\nAs a genius expert, your task is to understand the content and provide\n"
    "the parsed objects in json that match the following json_schema:\n\n\n"
    "{schema}\n\nMake sure to return an instance of the JSON, not the schema itself\n"
)  # instructor's Mode.JSON / MD_JSON system message (instructor 1.x, OpenAIJSONHandler)
PYDANTIC_AI_PROMPT = (
    "\nAlways respond with a JSON object that's compatible with this schema:\n\n{schema}\n\n"
    "Don't include any text or Markdown fencing before or after.\n"
)  # pydantic-ai's DEFAULT_PROMPTED_OUTPUT_TEMPLATE


@pytest.mark.parametrize("template", [INSTRUCTOR_JSON_PROMPT, PYDANTIC_AI_PROMPT])
@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_json_mode_answers_fit_the_schema_in_the_system_message(
    client: openai.OpenAI, template: str, endpoint: str
) -> None:
    schema = _user_model_schema()
    system = template.format(schema=json.dumps(schema, indent=2))
    for question in ("Extract: Alice is 30", "Jason is 25 years old", "nothing"):
        if endpoint == "chat":
            completion = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": question},
                ],
                response_format={"type": "json_object"},
            )
            content = completion.choices[0].message.content
        else:
            # A system message in the input, not `instructions`: the API looks for "json" in
            # the input messages only (instructions alone are a 400 in JSON mode).
            response = client.responses.create(
                model="gpt-4o-mini",
                input=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": question},
                ],
                text={"format": {"type": "json_object"}},
            )
            content = response.output_text
        assert content is not None
        jsonschema.validate(json.loads(content), schema)


def test_a_schema_in_the_user_message_counts_too(client: openai.OpenAI) -> None:
    """LangChain's json mode: the app writes the schema wherever it likes."""
    schema = {
        "type": "object",
        "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}},
        "required": ["setup", "punchline"],
    }
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {
                "role": "user",
                "content": f"Tell me a joke about cats. Answer in JSON with this schema: {json.dumps(schema)}",
            }
        ],
        response_format={"type": "json_object"},
    )
    value = json.loads(completion.choices[0].message.content or "")
    jsonschema.validate(value, schema)
    assert "cats" not in value["setup"] or "schema" not in value["setup"]  # not the prompt echoed


def test_md_json_gets_a_fenced_block_in_text_mode(client: openai.OpenAI) -> None:
    """instructor's MD_JSON: no response_format, the schema in the system message, and a last
    user message asking for a ```json block."""
    schema = _user_model_schema()
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {
                "role": "system",
                "content": INSTRUCTOR_JSON_PROMPT.format(schema=json.dumps(schema, indent=2)),
            },
            {
                "role": "user",
                "content": "Alice is 30\n\nReturn the correct JSON response within a ```json codeblock. not the JSON_SCHEMA",
            },
        ],
    )
    content = completion.choices[0].message.content or ""
    block = re.fullmatch(r"```json\n(.*)\n```", content, re.DOTALL)
    assert block is not None, content
    jsonschema.validate(json.loads(block.group(1)), schema)


def test_plain_chat_that_merely_shows_a_schema_without_asking_for_json_stays_prose(
    client: openai.OpenAI,
) -> None:
    schema = json.dumps(_user_model_schema())
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"What does this describe? {schema}"}],
    )
    content = completion.choices[0].message.content or ""
    with pytest.raises(ValueError):
        json.loads(content)


def test_prompted_json_is_deterministic() -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {
                "role": "system",
                "content": PYDANTIC_AI_PROMPT.format(schema=json.dumps(_user_model_schema())),
            },
            {"role": "user", "content": "Alice is 30"},
        ],
        "response_format": {"type": "json_object"},
    }

    def answer() -> Any:
        with checked_server(seed=5) as server, httpx.Client(base_url=server.url) as http:
            return http.post("/chat/completions", json=body).json()["choices"]

    assert answer() == answer()


# --- places --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Alice and Bob are meeting in Paris", {"city": "Paris", "country": "France"}),
        ("Biggest city in Japan?", {"city": "Tokyo", "country": "Japan"}),
        ("What is the capital of Kenya?", {"city": "Nairobi", "country": "Kenya"}),
        ("Send the report to Alice, she is in Springfield", {"city": "Springfield"}),
        ("Compare Oslo and Rome", {"city": "Oslo", "country": "Norway"}),
        ("Is it raining in São Paulo?", {"city": "São Paulo", "country": "Brazil"}),
        ("Things to do in Texas this summer", {"state": "Texas"}),
    ],
)
def test_place_properties_take_the_place_the_message_names(
    message: str, expected: dict[str, str]
) -> None:
    properties = {kind: {"type": "string"} for kind in expected}
    schema = {"type": "object", "properties": properties, "required": list(expected)}
    for seed in range(5):
        assert instance(schema, random.Random(seed), context=message) == expected


def test_trips_take_the_name_after_from_and_to() -> None:
    message = "Book flights from Lisbon to Toronto for Alice"
    assert place_for("city", "origin", message) == "Lisbon"
    assert place_for("city", "destination_city", message) == "Toronto"
    assert place_for("city", "arrivalCity", message) == "Toronto"


@pytest.mark.parametrize(
    "message",
    [
        "Alice and Bob went to the market",
        "Biggest city?",
        "Ask Carol to email Dave about Project Zeus",
        "Summarize what Bob said",
    ],
)
def test_without_a_place_a_plausible_one_is_made_up_not_a_word_of_the_question(
    message: str,
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    words = set(re.findall(r"\w+", message))
    cities = {instance(schema, random.Random(seed), context=message)["city"] for seed in range(8)}
    assert len(cities) > 1  # generated, varying with the seed
    assert not any(set(city.split()) & words for city in cities), cities


def test_a_tool_call_names_the_place_through_the_server(
    server: MockServer, client: openai.OpenAI
) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "plan_meeting",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "attendees": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    }
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Alice and Bob are meeting in Paris on Friday"}],
        tools=[tool],  # type: ignore[list-item]
        tool_choice="required",
    )
    calls = completion.choices[0].message.tool_calls or []
    arguments = json.loads(calls[0].function.arguments)  # type: ignore[union-attr]
    assert arguments  # never `{}`
    assert arguments.get("city", "Paris") == "Paris"


def test_langchain_json_mode_parses_into_the_model_the_prompt_describes(server: MockServer) -> None:
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    class Joke(BaseModel):
        setup: str
        punchline: str
        rating: int | None = None

    llm = ChatOpenAI(model="gpt-4o-mini", base_url=server.url, api_key="sk-test", max_retries=0)  # type: ignore[arg-type]
    structured = llm.with_structured_output(Joke, method="json_mode")
    prompt = f"Tell me a joke about cats. Respond in JSON matching this schema: {json.dumps(Joke.model_json_schema())}"
    joke = structured.invoke(prompt)
    assert isinstance(joke, Joke) and joke.setup and joke.punchline
