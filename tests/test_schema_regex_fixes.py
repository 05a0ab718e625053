"""Schema generation fixes: regexes, references and numbers.

* a class spanning U+D800-U+DFFF (`[\\x00-\\uffff]`) never draws a lone surrogate, which no UTF-8
  JSON can carry (a 500 before); a class of surrogates only is unmatchable: the documented 400;
* a wide class (`[\\u0000-\\U0010FFFF]{150}`) is drawn from without listing its 1.1 million
  characters per character made (seconds on the event loop, every other client waiting);
* ECMA-262 `\\p{...}` escapes (JSON Schema's regex dialect; zod's `z.emoji()`) are matched, not
  refused as invalid; a property mockai has no sample of is the documented 400;
* `dependentSchemas` of a required key is merged in, not left to luck (18/20 refused before);
  a bound past the largest float is refused, not answered `null`;
* `$dynamicRef` to a `$dynamicAnchor` of the same document is followed; one mockai cannot
  resolve is refused, not ignored (the answer broke the schema).

Through a real server (its own process, which a test can outlast if it hangs) with httpx, and
as properties of the generator's pure functions.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jsonschema
import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from service_support import ServeProcess

from mockai import regexes
from mockai.generate.schema import SchemaGenerationError, instance
from mockai.generate.schema.xeger import Xeger

TIMEOUT = 5.0  # seconds: a request stuck generating fails its test instead of hanging it
SURROGATES = range(0xD800, 0xE000)
ZOD_EMOJI = (
    "^(?=[\\s\\S]*[\\p{Extended_Pictographic}\\p{Regional_Indicator}\\u20E3])"
    "[\\p{Extended_Pictographic}\\p{Emoji_Component}]+$"
)


@pytest.fixture(scope="module")
def server() -> Iterator[ServeProcess]:
    with ServeProcess([]) as serving:
        yield serving


@pytest.fixture(scope="module")
def client(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as http:
        yield http


def _structured(client: httpx.Client, schema: dict[str, Any], user: str = "hi") -> httpx.Response:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": user}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    return client.post("/chat/completions", json=body)


def _value(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return json.loads(answer.json()["choices"][0]["message"]["content"])


def _refusal(answer: httpx.Response) -> str:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "mockai_generation_failed"
    return str(error["message"])


def _custom_tool(grammar: str) -> dict[str, Any]:
    return {
        "type": "custom",
        "name": "note",
        "format": {"type": "grammar", "syntax": "regex", "definition": grammar},
    }


def _custom_input(client: httpx.Client, grammar: str, *, stream: bool = False) -> str:
    """The `input` of the custom call a Responses request forcing the tool gets."""
    body = {
        "model": "gpt-4o-mini",
        "input": "write a note",
        "tools": [_custom_tool(grammar)],
        "tool_choice": "required",
        "stream": stream,
    }
    answer = client.post("/responses", json=body)
    assert answer.status_code == 200, answer.text
    if not stream:
        return str(answer.json()["output"][0]["input"])
    done = [
        json.loads(line[len("data: ") :])
        for line in answer.text.splitlines()
        if line.startswith("data: ") and "response.custom_tool_call_input.done" in line
    ]
    return str(done[0]["input"])


def _has_surrogate(text: str) -> bool:
    return any(ord(char) in SURROGATES for char in text)


# --- 1. classes spanning the surrogates ---------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_grammar_class_spanning_the_surrogates_gets_a_matching_input(
    client: httpx.Client, stream: bool
) -> None:
    """The reproduction: a 500 (UnicodeEncodeError) on both paths before."""
    grammar = r"[\x00-\uffff]{100}"
    text = _custom_input(client, grammar, stream=stream)
    assert re.fullmatch(grammar, text) and not _has_surrogate(text)


def test_a_function_parameter_pattern_spanning_the_surrogates_gets_a_match(
    client: httpx.Client,
) -> None:
    pattern = r"^[\x00-\uffff]{40}$"
    schema = {"type": "object", "properties": {"note": {"type": "string", "pattern": pattern}}}
    schema |= {"required": ["note"], "additionalProperties": False}
    note = _value(_structured(client, schema))["note"]
    assert re.search(pattern, note) and not _has_surrogate(note)


def test_a_class_of_surrogates_only_is_the_documented_400(client: httpx.Client) -> None:
    message = _refusal(_structured(client, {"type": "string", "pattern": r"^[\ud800-\udfff]$"}))
    assert "pattern '^[\\\\ud800-\\\\udfff]$'" in message


_code_points = st.integers(0, 0x10FFFF)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(_code_points, _code_points), min_size=1, max_size=4),
    st.integers(1, 12),
    st.integers(0, 2**32),
)
def test_expanded_classes_match_and_hold_no_surrogate(
    ranges: list[tuple[int, int]], times: int, seed: int
) -> None:
    """Any class of ranges: a match without a surrogate, or (surrogates only) no expansion."""
    body = "".join(f"\\U{min(pair):08x}-\\U{max(pair):08x}" for pair in ranges)
    pattern = f"[{body}]{{{times}}}"
    drawable = any(min(pair) < SURROGATES.start or max(pair) >= SURROGATES.stop for pair in ranges)
    try:
        text = Xeger(random.Random(seed)).xeger(pattern)
    except ValueError:
        assert not drawable
        return
    assert re.fullmatch(pattern, text) and not _has_surrogate(text)


# --- 2. wide classes do not hold the event loop -------------------------------------------------


def test_a_wide_class_is_drawn_without_holding_other_clients(server: ServeProcess) -> None:
    """`[\\u0000-\\U0010FFFF]{150}` took ~18 s, all of it on the event loop: a health check
    asked for meanwhile waited as long. Now the request answers at once, and so does health."""
    health: list[float] = []
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as http, ThreadPoolExecutor(1) as pool:
        _custom_input(http, "[a-z]{3}")  # (what loads on first use is loaded: not measured)
        start = time.monotonic()
        wide = pool.submit(_custom_input, http, "[\\u0000-\\U0010FFFF]{150}")
        while not wide.done() and time.monotonic() - start < TIMEOUT:
            asked = time.monotonic()
            assert http.get(server.url_for("/_mockai/health")).status_code == 200
            health.append(time.monotonic() - asked)
        text = wide.result(TIMEOUT)
        took = time.monotonic() - start
    assert len(text) == 150 and not _has_surrogate(text)
    assert took < 3.0
    assert max(health, default=0.0) < max(1.0, took / 2)


# --- 3. ECMA-262 Unicode property escapes -------------------------------------------------------


@pytest.mark.parametrize(
    "pattern", [r"^[\p{L} '-]+$", r"^\p{Lu}", r"^\P{L}{3}$", r"^[^\p{L}\s]+$", ZOD_EMOJI]
)
def test_a_pattern_with_unicode_properties_gets_a_match(client: httpx.Client, pattern: str) -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": pattern}}}
    schema |= {"required": ["s"], "additionalProperties": False}
    for user in ("one", "two", "three"):
        value = _value(_structured(client, schema, user))["s"]
        assert regex.search(pattern, value, regex.V0), value


def test_a_property_mockai_has_no_sample_of_is_the_documented_400(client: httpx.Client) -> None:
    """A valid property with no sample: no match found; an unknown one: an invalid regex."""
    message = _refusal(_structured(client, {"type": "string", "pattern": r"^\p{Script=Thai}+$"}))
    assert "invalid regular expression" not in message
    assert "no string found" in message
    message = _refusal(_structured(client, {"type": "string", "pattern": r"^\p{Nonsense}$"}))
    assert "invalid regular expression" in message


_PROPERTIES = ["L", "Lu", "Ll", "N", "Nd", "P", "S", "Zs", "Extended_Pictographic", "Emoji"]
_piece = st.one_of(
    st.sampled_from(_PROPERTIES).map(lambda name: f"\\p{{{name}}}"),
    st.sampled_from(_PROPERTIES).map(lambda name: f"\\P{{{name}}}"),
    st.sampled_from(["a", "-", " ", "\\d", "\\\\p{L}", "x{2}"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_piece, st.booleans()), min_size=1, max_size=5), st.integers(0, 2**32))
def test_sampled_patterns_parse_and_their_expansions_match_the_original(
    parts: list[tuple[str, bool]], seed: int
) -> None:
    """Properties written as classes of their characters: `re` parses the result, and what rstr
    makes of it matches the original pattern (each piece alone, or in a class)."""
    pattern = "".join(f"[{piece}]" if in_class and "{2}" not in piece else piece
                      for piece, in_class in parts)  # fmt: skip
    source = regexes.sampled(pattern)
    assert source is not None
    re.compile(source)
    text = Xeger(random.Random(seed)).xeger(source)
    assert regex.fullmatch(pattern, text, regex.V0), (pattern, text)


# --- 4. dependentSchemas and numbers past the largest float -------------------------------------

DEPENDENT = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a"],
    "dependentSchemas": {"a": {"properties": {"b": {"minimum": 100}}, "required": ["b"]}},
}


def test_dependent_schemas_of_a_required_key_are_satisfied(client: httpx.Client) -> None:
    for user in ("one", "two", "three", "four", "five", "six"):
        value = _value(_structured(client, DEPENDENT, user))
        jsonschema.Draft202012Validator(DEPENDENT).validate(value)


@settings(max_examples=40, deadline=None)
@given(st.integers(-(10**6), 10**6), st.integers(0, 2**32))
def test_dependent_schemas_values_validate(least: int, seed: int) -> None:
    schema = json.loads(json.dumps(DEPENDENT).replace("100", str(least)))
    schema["dependentSchemas"]["b"] = {"properties": {"a": {"maximum": least}}}
    schema["dependentRequired"] = {"a": ["b"]}
    value = instance(schema, random.Random(seed))
    jsonschema.Draft202012Validator(schema).validate(value)


def test_a_bound_past_the_largest_float_is_refused_not_null(client: httpx.Client) -> None:
    schema = {"type": "number", "exclusiveMinimum": 1.7976931348623157e308}
    message = _refusal(_structured(client, schema))
    assert "no number satisfies exclusiveMinimum 1.7976931348623157e+308" in message


_huge = st.floats(1e300, 1.7976931348623157e308)


_BOUNDS = ["minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"]


@settings(max_examples=60, deadline=None)
@given(_huge, st.sampled_from(_BOUNDS), st.integers(0, 2**32))
def test_numbers_near_the_float_limit_are_finite_and_within_bounds(
    bound: float, keyword: str, seed: int
) -> None:
    """A bound at the edge of the floats: a finite value within it, or the documented refusal."""
    schema = {"type": "number", keyword: -bound if "aximum" in keyword else bound}
    try:
        value = instance(schema, random.Random(seed))
    except SchemaGenerationError as error:
        assert "no number satisfies" in str(error)
        return
    assert isinstance(value, (int, float)) and value not in (float("inf"), float("-inf"))
    jsonschema.Draft202012Validator(schema).validate(value)


# --- 5. $dynamicRef -----------------------------------------------------------------------------

TREE = {
    "$dynamicAnchor": "node",
    "type": "object",
    "properties": {"c": {"type": "array", "items": {"$dynamicRef": "#node"}}},
    "required": ["c"],
}


@pytest.mark.parametrize(
    "schema",
    [
        TREE,
        {
            "$defs": {"n": {"$dynamicAnchor": "n", "type": "object", "properties": {
                "kids": {"type": "array", "items": {"$dynamicRef": "#n"}}}, "required": ["kids"]}},
            "$ref": "#/$defs/n",
        },
        {"$schema": "https://json-schema.org/draft/2019-09/schema", "$recursiveAnchor": True,
         "type": "object", "required": ["k"],
         "properties": {"k": {"type": "array", "items": {"$recursiveRef": "#"}}}},
    ],
)  # fmt: skip
def test_a_dynamic_ref_to_an_anchor_of_the_document_is_followed(
    client: httpx.Client, schema: dict[str, Any]
) -> None:
    value = _value(_structured(client, schema))
    jsonschema.validators.validator_for(schema)(schema).validate(value)  # (2019-09's too)
    assert isinstance(value, dict) and any(isinstance(v, list) and v for v in value.values())


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"x": {"$dynamicRef": "#nowhere"}}, "required": ["x"]},
        {"$id": "https://example.com/root", "type": "object", "required": ["y"], "properties": {
            "x": {"$id": "inner", "$dynamicAnchor": "n"}, "y": {"$dynamicRef": "#n"}}},
    ],
)  # fmt: skip
def test_a_dynamic_ref_mockai_cannot_resolve_is_refused(
    client: httpx.Client, schema: dict[str, Any]
) -> None:
    assert "$dynamicRef" in _refusal(_structured(client, schema))
