"""Generated structured answers that are valid, and that the SDK's `.parse()` accepts:

* a `pattern` with `minLength` / `maxLength` (a card number `^\\d+$` of 16) gets a match of that
  length, not a 400 (rstr's expansion knew nothing of the bounds);
* recursive models (an employee with a manager, a mentor and reports) give answers of hundreds of
  tokens, not 15,000 that overflow gpt-4o-mini's output limit;
* pydantic's own types (`Decimal`, `UUID4`, `IPv4Network`, `PostgresDsn`, ...) get values pydantic
  accepts, not prose;
* `uniqueItems` integers from a wide range are found however many are asked for.

Through the real server and the openai SDK where a user sees it, and as properties of the
generator where the promise is general.
"""

from __future__ import annotations

import decimal
import ipaddress
import json
import pathlib
import random
import re
from typing import Any, Optional

import jsonschema
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import (
    UUID1,
    UUID3,
    UUID4,
    UUID5,
    Base64Str,
    BaseModel,
    ByteSize,
    Field,
    FileUrl,
    IPvAnyInterface,
    IPvAnyNetwork,
    MongoDsn,
    PostgresDsn,
    RedisDsn,
    conint,
    constr,
    create_model,
)

from mockai.generate.schema import instance
from mockai.tokens import count
from mockai.wire.jsonbytes import dumps_str

PROPERTIES = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_both(client: openai.OpenAI, model: type[BaseModel], prompt: str) -> list[Any]:
    """The model parsed from a chat answer and from a Responses answer (the SDK raises if not)."""
    chat = client.chat.completions.parse(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], response_format=model
    )
    response = client.responses.parse(model="gpt-4o-mini", input=prompt, text_format=model)
    parsed = [chat.choices[0].message.parsed, response.output_parsed]
    assert all(isinstance(value, model) for value in parsed)
    return parsed


# --- a pattern with length bounds ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "low", "high"),
    [
        (r"^\d+$", 16, 16),  # a card number
        (r"^[A-Za-z0-9]+$", 20, None),
        (r"^\S+$", 20, None),
        (r"^\w+$", 25, None),
        (r"^sk-[A-Za-z0-9]+$", 40, None),
        (r"^[A-Z0-9]{2,}$", 10, 10),
        (r"^x*$", 50, None),
        (r"^(?:[0-9a-f]{4}-)+[0-9a-f]{4}$", 64, 64),  # (only 4, 9, 14, ... long)
        (r"^[a-z0-9]+(?:-[a-z0-9]+)*$", 60, 60),  # a slug
    ],
)
def test_a_pattern_with_length_bounds_parses(
    client: openai.OpenAI, pattern: str, low: int, high: int | None
) -> None:
    code = constr(pattern=pattern, min_length=low, max_length=high)
    model = create_model("Code", value=(code, ...))
    for prompt in ("a card", "a token"):
        for parsed in _parse_both(client, model, prompt):
            value = parsed.value
            assert re.search(pattern, value) and low <= len(value) <= (high or len(value))


ATOMS = st.sampled_from(
    [r"\d", r"\w", r"\S", "[A-Za-z0-9]", "[a-z]", "[A-Z0-9]", "[0-9a-f]", "[^@ ]", ".", "x", "-",
     r"\.", "ab", "sk-"]
)  # fmt: skip
QUANTIFIERS = st.one_of(
    st.sampled_from(["", "", "+", "*", "?"]),
    st.integers(0, 4).map(lambda m: f"{{{m}}}"),
    st.integers(0, 4).map(lambda m: f"{{{m},}}"),
    st.tuples(st.integers(0, 3), st.integers(0, 4)).map(lambda m: f"{{{m[0]},{sum(m)}}}"),
)
# A group holding quantifiers or alternatives repeats a bounded number of times: `(\w+)*` and
# `(\w|.)*` make `re` backtrack for ever on a string they do not match (and candidates are
# checked with `re`).
BOUNDED = st.sampled_from(["", "?", "{2}", "{1,3}", "{0,2}"])
ELEMENTS = ATOMS.map(lambda atom: (atom, False))  # (regex, must repeat a bounded number of times)


def _quantified(element: tuple[str, bool]) -> st.SearchStrategy[str]:
    text, nested = element
    return (BOUNDED if nested else QUANTIFIERS).map(lambda quantifier: text + quantifier)


def _sequences(elements: st.SearchStrategy[tuple[str, bool]]) -> st.SearchStrategy[str]:
    return st.lists(elements.flatmap(_quantified), min_size=1, max_size=4).map("".join)


def _groups(elements: st.SearchStrategy[tuple[str, bool]]) -> st.SearchStrategy[tuple[str, bool]]:
    opening = st.sampled_from(["(?:", "("])
    plain = st.lists(ATOMS, min_size=1, max_size=3).map("".join)
    choices = st.lists(_sequences(elements), min_size=1, max_size=3).map("|".join)
    return st.tuples(opening, plain).map(lambda g: (f"{g[0]}{g[1]})", False)) | st.tuples(
        opening, choices
    ).map(lambda g: (f"{g[0]}{g[1]})", True))


PATTERNS = st.tuples(
    st.sampled_from(["^", ""]),
    _sequences(st.recursive(ELEMENTS, _groups, max_leaves=6)),
    st.sampled_from(["$", ""]),
).map("".join)


@settings(PROPERTIES, max_examples=150)
@given(data=st.data(), pattern=PATTERNS, seed=st.integers(0, 2**32 - 1))
def test_any_length_some_match_of_a_pattern_has_is_met(
    data: st.DataObject, pattern: str, seed: int
) -> None:
    """Bounds around the length of a string the pattern matches (so some string meets both):
    the generated one matches (`pattern` is a search, as JSON Schema means) and has a length in
    them."""
    witness = data.draw(st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) < 200))
    low = data.draw(st.integers(0, len(witness)), label="minLength")
    high = data.draw(st.none() | st.integers(len(witness), len(witness) + 30), label="maxLength")
    if data.draw(st.booleans(), label="exactly as long"):
        low = high = len(witness)
    schema: dict[str, Any] = {"type": "string", "pattern": pattern, "minLength": low}
    if high is not None:
        schema["maxLength"] = high
    value = instance(schema, random.Random(seed))
    assert re.search(pattern, value), value
    assert low <= len(value) and (high is None or len(value) <= high), value


# --- recursive models ----------------------------------------------------------------------------


class Employee(BaseModel):
    name: str
    title: str
    manager: Optional[Employee]  # noqa: UP045 - the spelling users write
    mentor: Optional[Employee]  # noqa: UP045
    reports: list[Employee]


def test_a_model_recursing_through_several_fields_parses_and_stays_short(
    client: openai.OpenAI,
) -> None:
    for index in range(12):
        prompt = f"org chart {index}"
        chat = client.chat.completions.parse(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": prompt}],
            response_format=Employee,
        )
        response = client.responses.parse(model="gpt-4o-mini", input=prompt, text_format=Employee)
        assert isinstance(chat.choices[0].message.parsed, Employee)
        assert isinstance(response.output_parsed, Employee)
        assert chat.usage is not None and chat.usage.completion_tokens < 1500
        assert response.usage is not None and response.usage.output_tokens < 1500


LEAVES = st.sampled_from(
    [{"type": "string"}, {"type": "integer"}, {"type": "string", "format": "date"}]
)


@st.composite
def recursive_schemas(draw: st.DrawFn) -> dict[str, Any]:
    """A node with a few leaves and several ways to hold more nodes: optional, nullable, lists."""
    properties: dict[str, Any] = {
        f"leaf{index}": leaf for index, leaf in enumerate(draw(st.lists(LEAVES, max_size=4)))
    }
    ref = {"$ref": "#/$defs/Node"}
    for index in range(draw(st.integers(0, 3))):
        properties[f"link{index}"] = {"anyOf": [ref, {"type": "null"}]}
    for index in range(draw(st.integers(0, 3))):
        properties[f"children{index}"] = {"type": "array", "items": ref}
    if draw(st.booleans()):
        properties["parent"] = ref  # optional, not nullable
    required = draw(st.sets(st.sampled_from(sorted(properties)))) if properties else set()
    required.discard("parent")  # (required and not nullable: no finite instance)
    node = {"type": "object", "properties": properties, "required": sorted(required)}
    return {"$defs": {"Node": node}, **ref}


@PROPERTIES
@given(schema=recursive_schemas(), seed=st.integers(0, 2**32 - 1))
def test_recursive_schemas_give_modest_answers(schema: dict[str, Any], seed: int) -> None:
    value = instance(schema, random.Random(seed))
    jsonschema.validate(value, schema)
    assert count(dumps_str(value)) < 2000


# --- pydantic's own types ------------------------------------------------------------------------


class Order(BaseModel):
    total: decimal.Decimal
    id: UUID4
    batch: UUID1
    name_id: UUID3
    other_id: UUID5
    subnet: ipaddress.IPv4Network
    subnet6: ipaddress.IPv6Network
    any_subnet: IPvAnyNetwork
    interface: ipaddress.IPv4Interface
    interface6: ipaddress.IPv6Interface
    any_interface: IPvAnyInterface
    database_url: PostgresDsn
    mongo_dsn: MongoDsn
    redis_url: RedisDsn
    file_url: FileUrl
    upload: pathlib.Path
    blob: Base64Str
    size: ByteSize


def test_pydantic_types_get_values_pydantic_accepts(client: openai.OpenAI) -> None:
    for index in range(10):
        for order in _parse_both(client, Order, f"order {index}"):
            assert order.id.version == 4 and order.batch.version == 1


def test_a_decimal_is_a_number_not_prose() -> None:
    class Invoice(BaseModel):
        total: decimal.Decimal
        tax: decimal.Decimal

    schema = Invoice.model_json_schema()
    for seed in range(40):
        value = instance(schema, random.Random(seed))
        Invoice.model_validate_json(json.dumps(value))


# --- uniqueItems ---------------------------------------------------------------------------------


def test_many_distinct_integers_from_a_wide_range_parse(client: openai.OpenAI) -> None:
    class Draw(BaseModel):
        count: set[conint(ge=1, le=1_000_000)] = Field(min_length=20)  # type: ignore[valid-type]
        ids: set[int] = Field(min_length=100)

    for draw in _parse_both(client, Draw, "draw numbers"):
        assert len(draw.count) >= 20 and len(draw.ids) >= 100


NAMES = st.sampled_from(["count", "ids", "age", "month", "rating", "score", "values", "x"])


@PROPERTIES
@given(
    name=NAMES,
    items=st.integers(1, 150),
    low=st.none() | st.integers(-1000, 1000),
    spare=st.integers(0, 10**6),
    step=st.sampled_from([None, None, 1, 3, 5]),
    seed=st.integers(0, 2**32 - 1),
)
def test_unique_integers_are_found_while_the_range_holds_enough(
    name: str, items: int, low: int | None, spare: int, step: int | None, seed: int
) -> None:
    """Any range holding `items` distinct integers (exactly that many, or more) gives them."""
    item: dict[str, Any] = {"type": "integer"}
    if step is not None:
        item["multipleOf"] = step
    if low is not None:  # from `low` to the multiple that leaves room for `items` of them
        first = -(-low // (step or 1)) * (step or 1)
        item |= {"minimum": low, "maximum": first + (items - 1) * (step or 1) + spare}
    array = {"type": "array", "items": item, "minItems": items, "uniqueItems": True}
    schema = {"type": "object", "properties": {name: array}, "required": [name]}
    value = instance(schema, random.Random(seed))
    jsonschema.validate(value, schema)
