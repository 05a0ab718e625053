"""Requests that are small or legal but used to make mockai work for seconds to minutes.

A 2 KB `response_format` schema whose levels each refer twice to the next made checking one
three-letter string walk 2^depth nodes on the event loop; one 32 MB moderation input was scored
whole (the API reads its first 32,768 tokens) while `re` held the GIL. Each test runs against a
real `mockai serve` process, with a model list asked for meanwhile: it must not wait.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from service_support import ServeProcess

from mockai import tokens
from mockai.generate import moderation
from mockai.pipeline import workload

WITHIN = 10.0  # seconds: a client timeout, so that a stalled server fails a test, not hangs it
STALL = 1.0  # seconds a model list may wait while the costly request is answered
READ_TOKENS = 32_768  # of a moderation input, the API reads this many tokens


@pytest.fixture(scope="module")
def server() -> Iterator[ServeProcess]:
    with ServeProcess(["--quiet"]) as serving:
        yield serving


def _meanwhile(server: ServeProcess, send: Callable[[httpx.Client], httpx.Response]) -> Any:
    """(the response to `send`, its seconds, the longest a model list waited meanwhile)."""
    waits: list[float] = []
    done = threading.Event()

    def list_models() -> None:
        with httpx.Client(timeout=WITHIN) as client:
            while not done.is_set():
                start = time.monotonic()
                client.get(server.url + "/models")
                waits.append(time.monotonic() - start)
                done.wait(0.02)

    lister = threading.Thread(target=list_models)
    lister.start()
    try:
        with httpx.Client(timeout=WITHIN) as client:
            start = time.monotonic()
            response = send(client)
            took = time.monotonic() - start
    finally:
        done.set()
        lister.join(WITHIN + 5)
    assert waits, "no model list was answered meanwhile"
    return response, took, max(waits)


# --- schemas whose checks multiply -----------------------------------------------------------


def _shared_oneof_schema(depth: int) -> dict[str, Any]:
    """Each level: `oneOf` of the next level and of (the next level and null): ~2 KB at 18."""
    defs: dict[str, Any] = {}
    for level in range(depth):
        ref = {"$ref": f"#/$defs/d{level + 1}"}
        defs[f"d{level}"] = {"oneOf": [ref, {"allOf": [ref, {"type": "null"}]}]}
    defs[f"d{depth}"] = {"type": "string", "maxLength": 3}
    return {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/d0"}},
        "required": ["a"],
        "additionalProperties": False,
        "$defs": defs,
    }


@pytest.mark.parametrize("depth", [18, 30])
def test_a_small_schema_of_shared_oneof_refs_answers_at_once_and_stalls_nothing(
    server: ServeProcess, depth: int
) -> None:
    """Before: depth 18 took ~20 s of CPU on the loop (x4 per two levels); now the checks stop
    at their step bound with the documented generation-failed 400, or answer."""
    body = {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": _shared_oneof_schema(depth)},
        },
    }
    response, took, waited = _meanwhile(
        server, lambda client: client.post(server.url + "/chat/completions", json=body)
    )
    assert took < 3.0 and waited < STALL, (took, waited)
    if response.status_code == 400:
        error = response.json()["error"]
        assert error["code"] == "mockai_generation_failed"
        assert "too costly to check" in error["message"], error
    else:
        assert response.status_code == 200, response.text
        value = json.loads(response.json()["choices"][0]["message"]["content"])
        assert isinstance(value["a"], str) and len(value["a"]) <= 3


class _Tree(BaseModel):
    name: str
    children: list[_Tree]


class _Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class _Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class _Household(BaseModel):
    pets: list[_Cat | _Dog]
    favourite: _Cat | _Dog | None
    family: _Tree


def test_nested_models_with_unions_and_recursion_still_get_valid_answers(
    server: ServeProcess,
) -> None:
    """(A guard: the step bound leaves ordinary nested schemas alone.)"""
    client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0, timeout=WITHIN)
    with client:
        for seed in range(3):
            completion = client.chat.completions.parse(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"describe household {seed}"}],
                response_format=_Household,
                seed=seed,
            )
            assert isinstance(completion.choices[0].message.parsed, _Household)


def test_schemas_whose_refs_multiply_the_checks_are_worked_off_the_loop() -> None:
    """Refs count as the subschemas they stand for: the 2 KB schema is heavy, a pydantic model
    with unions and recursion is not."""
    assert workload._asks_for_much(_shared_oneof_schema(10))
    assert not workload._asks_for_much(_shared_oneof_schema(4))
    assert not workload._asks_for_much(_Household.model_json_schema())


def _inlined(schema: Any, root: dict[str, Any]) -> Any:
    """`schema` with every (non-recursive) `#/$defs/...` ref replaced by its target; shared,
    not copied: the walk counts each place it appears anyway."""
    if isinstance(schema, list):
        return [_inlined(item, root) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return _inlined(root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root)
    return {key: _inlined(value, root) for key, value in schema.items() if key != "$defs"}


@st.composite
def _ref_dags(draw: st.DrawFn) -> dict[str, Any]:
    """A schema whose `$defs` refer to later ones under `oneOf` / `anyOf` / `allOf` / items."""
    count = draw(st.integers(1, 12))
    defs: dict[str, Any] = {f"d{count}": {"type": "string"}}
    for level in reversed(range(count)):
        later = st.integers(level + 1, count).map(lambda i: {"$ref": f"#/$defs/d{i}"})
        parts = draw(st.lists(later | st.just({"type": "null"}), min_size=2, max_size=3))
        keyword = draw(st.sampled_from(["oneOf", "anyOf", "allOf", "items"]))
        defs[f"d{level}"] = (
            {"type": "array", "items": parts[0]} if keyword == "items" else {keyword: parts}
        )
    return {"$ref": "#/$defs/d0", "$defs": defs}


@settings(max_examples=60, deadline=None)
@given(_ref_dags())
def test_a_schema_is_as_heavy_as_its_refs_written_out(schema: dict[str, Any]) -> None:
    """Writing a ref's target out in its place never makes a schema heavier to work on."""
    if workload._asks_for_much(_inlined(schema, schema)):
        assert workload._asks_for_much(schema)


# --- long moderation inputs ------------------------------------------------------------------


def test_a_32_mb_moderation_input_is_scored_on_what_the_api_reads(server: ServeProcess) -> None:
    """Before: ~55 s of scoring, and a model list waited all of it. The input is read up to its
    32,768th token ("women" and 32,767 " women"), as the API truncates it."""
    text = "women " * (32 * 1024 * 1024 // 6)
    read = ("women " * 32_768).rstrip()

    def moderate(client: httpx.Client, given: str = text) -> httpx.Response:
        body = {"model": "omni-moderation-latest", "input": given}
        return client.post(server.url + "/moderations", json=body)

    response, took, waited = _meanwhile(server, moderate)
    assert response.status_code == 200, response.text
    assert took < 5.0 and waited < STALL, (took, waited)
    with httpx.Client(timeout=WITHIN) as client:
        alone = moderate(client, read).json()["results"]
    assert response.json()["results"] == alone


@st.composite
def _long_texts(draw: st.DrawFn) -> str:
    unit = draw(st.sampled_from(["women ", "kill you. ", "a b ", "  ", "\u4e00", "x"]))
    unit += draw(st.text(max_size=2))
    reps = draw(st.integers(0, 100) | st.integers(33_000, 35_000))  # (past 32,768 tokens)
    return unit * reps + draw(st.text(max_size=20))


@settings(max_examples=8, deadline=None)
@given(_long_texts(), st.integers(0, 3))
def test_an_input_scores_as_the_part_the_api_reads(text: str, seed: int) -> None:
    """The first 32,768 tokens are read, nothing after them, and truncating is the only change:
    the scores are those of that part."""
    read = "".join(tokens.split(text)[:READ_TOKENS])
    assert moderation.scores_for(text, seed) == moderation.scores_for(read, seed)


_WORDS = (
    "I will kill you", "kill the process", "women", "should be exterminated", "idiot", "myself",
    "how to", "make a bomb", "porn", "heart attack", "hello", "the", "é", "\u017f", "K", "\n", ".",
    "  ", "\t", "you're dead", "i want to die", "jews", "are vermin", "sex with", "12", "😀",
)  # fmt: skip


def _corpus() -> list[str]:
    rng = random.Random(20240607)
    texts = ["", "hello world", "I will kill you", "kill -9 the server", "i hate all women"]
    for _ in range(300):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 60))]
        texts.append(rng.choice((" ", "", "  ")).join(words))
    texts.append("women " * 6000)  # longer than 32,768 characters, shorter than 32,768 tokens
    return texts


def test_inputs_shorter_than_what_the_api_reads_score_exactly_as_before() -> None:
    """The digest of the scores of 306 inputs, two seeds each, taken before the change."""
    found = [moderation.scores_for(text, seed) for text in _corpus() for seed in (0, 7)]
    digest = hashlib.sha256(json.dumps(found, sort_keys=True).encode()).hexdigest()
    assert digest == "f667eac5a2dd08b5a81887e1011b3e5de9e87380dcb8d0544e130c64acc2b4ae"
