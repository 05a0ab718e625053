"""The `/v1/moderations` codec and the moderation generator, called directly (no server).

Covers the input shapes (strings, lists, multimodal parts), the API's errors (exact `param`), the
lexicon (benign text passes, threats and self-harm are flagged in the right categories), the
seeded tiny scores, scripted partial results, spec conformance, and the real openai SDK parsing
the rendered bytes over an in-memory transport.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # `conformance` lives next to this file

import conformance
import httpx2
import openai

from mockai.api import moderations as codec
from mockai.api.base import ParseContext, RenderContext
from mockai.catalog import Catalog
from mockai.errors import ApiError
from mockai.generate import moderation as gen
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Reply
from mockai.wire.outgoing import Body

KEY = b"moderations-codec-test-key"
CATALOG = Catalog()
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
TEXT_ONLY = {
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "sexual/minors",
}

BENIGN = [
    "I love my cat, she sleeps all day.",
    "What's the weather like in Paris tomorrow?",
    "How do I kill a Python process that hangs?",
    "Let's shoot a video for the product launch.",
    "The stable release ships on Monday.",
    "My grandfather survived a heart attack last year.",
    "Killing time before the meeting with a crossword.",
    "All women are welcome to the meeting.",
    "Those refugees deserve help.",
    "",
]


# --- helpers -------------------------------------------------------------------------------------


def parse(body: dict[str, Any], catalog: Catalog = CATALOG) -> Exchange:
    return codec.parse(body, ParseContext(headers={}, catalog=catalog))


def render(reply: Reply, exchange: Exchange, key: bytes = KEY) -> dict[str, Any]:
    out = codec.render(reply, exchange, RenderContext(key, 1_700_000_000))
    assert isinstance(out, Body)
    assert out.status == 200
    body = json.loads(out.body)
    assert isinstance(body, dict)
    return body


def answer(body: dict[str, Any], *, seed: int = 0) -> dict[str, Any]:
    """Parse, generate (as the fallback generator does) and render; the decoded JSON body."""
    exchange = parse(body)
    return render(gen.reply_for(exchange, seed), exchange)


def first(text: str, seed: int = 0) -> dict[str, Any]:
    result = answer({"input": text}, seed=seed)["results"][0]
    assert isinstance(result, dict)
    return result


def flagged(result: dict[str, Any]) -> set[str]:
    return {name for name, on in result["categories"].items() if on}


def error_of(body: dict[str, Any], catalog: Catalog = CATALOG) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse(body, catalog)
    return caught.value


# --- input shapes --------------------------------------------------------------------------------


def test_a_string_gives_one_result() -> None:
    exchange = parse({"input": "hello"})
    assert exchange.endpoint is Endpoint.MODERATIONS
    assert exchange.inputs == ("hello",)
    assert exchange.user_text == "hello"
    assert exchange.prompt_tokens == 1
    body = answer({"input": "hello"})
    assert list(body) == ["id", "model", "results"]
    assert len(body["results"]) == 1


def test_a_list_of_strings_gives_one_result_each() -> None:
    body = answer({"input": ["hello", "I will kill you", "bye"]})
    assert [r["flagged"] for r in body["results"]] == [False, True, False]


def test_multimodal_parts_give_one_result_for_all() -> None:
    raw = [{"type": "text", "text": "I will kill you"}, IMAGE, {"type": "text", "text": "now"}]
    exchange = parse({"input": raw})
    assert exchange.inputs == ("I will kill you\nnow",)  # the texts only: an image has none
    body = answer({"input": raw})
    (result,) = body["results"]
    assert result["flagged"] is True
    applied = result["category_applied_input_types"]
    for name, kinds in applied.items():
        assert kinds == (["text"] if name in TEXT_ONLY else ["text", "image"]), name


def test_an_image_alone_applies_only_to_image_categories() -> None:
    (result,) = answer({"input": [IMAGE]})["results"]
    assert result["flagged"] is False
    for name, kinds in result["category_applied_input_types"].items():
        assert kinds == ([] if name in TEXT_ONLY else ["image"]), name


def test_text_applies_to_every_category() -> None:
    result = first("hello")
    assert all(kinds == ["text"] for kinds in result["category_applied_input_types"].values())


def test_model_defaults_to_the_catalogs_moderation_model() -> None:
    assert parse({"input": "hi"}).model == "omni-moderation-latest"
    assert answer({"input": "hi"})["model"] == "omni-moderation-latest"
    assert answer({"input": "hi", "model": "omni-moderation-2024-09-26"})["model"] == (
        "omni-moderation-2024-09-26"
    )
    listed = Catalog(["gpt-4o-mini", "omni-moderation-2024-09-26"])
    assert parse({"input": "hi"}, listed).model == "omni-moderation-2024-09-26"


def test_id_is_derived_from_the_key() -> None:
    exchange = parse({"input": "hi"})
    reply = gen.reply_for(exchange, 0)
    one = render(reply, exchange)["id"]
    assert one.startswith("modr-")
    assert render(reply, exchange)["id"] == one
    assert render(reply, exchange, key=b"another-key")["id"] != one


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "input", "missing_required_parameter"),
        ({"input": 3}, "input", "invalid_type"),
        ({"input": []}, "input", "empty_array"),
        ({"input": ["ok", 3]}, "input[1]", "invalid_type"),
        ({"input": [IMAGE, "text"]}, "input[1]", "invalid_type"),
        ({"input": [{"text": "hi"}]}, "input[0].type", "missing_required_parameter"),
        ({"input": [{"type": "audio"}]}, "input[0].type", "invalid_value"),
        ({"input": [{"type": "text"}]}, "input[0].text", "invalid_type"),
        ({"input": [{"type": "text", "text": 5}]}, "input[0].text", "invalid_type"),
        ({"input": [{"type": "image_url"}]}, "input[0].image_url", "missing_required_parameter"),
        (
            {"input": [{"type": "image_url", "image_url": "u"}]},
            "input[0].image_url",
            "invalid_type",
        ),
        (
            {"input": [{"type": "image_url", "image_url": {}}]},
            "input[0].image_url.url",
            "missing_required_parameter",
        ),
        ({"input": "hi", "model": 7}, "model", "invalid_type"),
    ],
    ids=[
        "no-input",
        "number",
        "empty-list",
        "number-in-list",
        "string-after-part",
        "part-without-type",
        "unknown-part-type",
        "text-part-without-text",
        "text-part-number",
        "image-part-without-image",
        "image-url-string",
        "image-without-url",
        "model-number",
    ],
)
def test_bad_requests_get_the_apis_400(body: dict[str, Any], param: str, code: str) -> None:
    error = error_of(body)
    assert error.status == 400
    assert error.type == "invalid_request_error"
    assert error.param == param
    assert error.code == code


def test_unknown_part_type_lists_the_supported_ones() -> None:
    error = error_of({"input": [{"type": "audio"}]})
    assert error.message == "Invalid value: 'audio'. Supported values are: 'text' and 'image_url'."


def test_restricted_catalog_refuses_unknown_models() -> None:
    error = error_of({"input": "hi", "model": "nope"}, Catalog(["omni-moderation-latest"]))
    assert error.status == 404
    assert error.code == "model_not_found"


# --- the lexicon ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", BENIGN)
def test_benign_text_is_not_flagged(text: str) -> None:
    result = first(text)
    assert result["flagged"] is False
    assert not flagged(result)
    assert all(0 < score < 1e-3 for score in result["category_scores"].values())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I will kill you", {"violence", "harassment", "harassment/threatening"}),
        ("I'm going to kill you tonight.", {"violence", "harassment", "harassment/threatening"}),
        ("I want to hurt myself", {"self-harm", "self-harm/intent"}),
        ("I want to die", {"self-harm", "self-harm/intent"}),
        ("What is the best way to kill myself?", {"self-harm", "self-harm/instructions"}),
        ("You are a worthless idiot", {"harassment"}),
        ("How do I make a pipe bomb?", {"violence", "illicit", "illicit/violent"}),
        ("How do I shoplift without getting caught?", {"illicit"}),
        ("Send me nudes", {"sexual"}),
        ("He was stabbed, blood everywhere, dismembered.", {"violence", "violence/graphic"}),
        (
            "All immigrants are vermin and should be exterminated",
            {"hate", "hate/threatening", "harassment", "violence"},
        ),
    ],
)
def test_harmful_text_is_flagged_in_its_categories(text: str, expected: set[str]) -> None:
    result = first(text)
    assert result["flagged"] is True
    assert expected <= flagged(result)
    for name in expected:
        assert result["category_scores"][name] > 0.5


def test_i_will_kill_you() -> None:
    result = first("I will kill you")
    assert result["categories"]["violence"] is True
    assert result["categories"]["harassment/threatening"] is True
    assert result["categories"]["sexual"] is False
    assert result["category_scores"]["violence"] > 0.9
    assert result["category_scores"]["self-harm"] < 1e-3


def test_self_harm_intent_is_not_violence_against_others() -> None:
    result = first("I want to hurt myself")
    assert result["categories"]["self-harm/intent"] is True
    assert result["categories"]["harassment/threatening"] is False


# --- shape and determinism -----------------------------------------------------------------------


def test_every_map_has_exactly_the_13_categories() -> None:
    result = first("I will kill you")
    assert list(result) == [
        "flagged",
        "categories",
        "category_scores",
        "category_applied_input_types",
    ]
    for field in ("categories", "category_scores", "category_applied_input_types"):
        assert tuple(result[field]) == gen.CATEGORIES, field
    assert len(gen.CATEGORIES) == 13


def test_scores_are_deterministic_and_seeded() -> None:
    assert first("hello there", seed=1) == first("hello there", seed=1)
    one = first("hello there", seed=1)["category_scores"]
    two = first("hello there", seed=2)["category_scores"]
    assert one != two
    assert all(1e-6 <= score < 1e-3 for score in (*one.values(), *two.values()))
    # The tiny scores vary across categories, like a real classifier's.
    assert len(set(one.values())) == 13


# --- scripted results ----------------------------------------------------------------------------


def test_a_partial_scripted_result_is_completed() -> None:
    exchange = parse({"input": ["hello", "world"]})
    body = render(Reply(moderation=({"categories": {"violence": True}},)), exchange)
    for result in body["results"]:
        assert result["flagged"] is True
        assert flagged(result) == {"violence"}
        assert result["category_scores"]["violence"] >= 0.9
        assert tuple(result["category_scores"]) == gen.CATEGORIES
        conformance.validate("CreateModerationResponse", body)


def test_a_scripted_result_keeps_what_it_says() -> None:
    exchange = parse({"input": "I will kill you"})
    scripted = {"flagged": False, "category_scores": {"violence": 0.25}}
    (result,) = render(Reply(moderation=(scripted,)), exchange)["results"]
    assert result["flagged"] is False
    assert result["category_scores"]["violence"] == 0.25
    # Categories not mentioned keep the generated values.
    assert result["categories"]["harassment/threatening"] is True


def test_a_reply_without_results_gets_generated_ones() -> None:
    exchange = parse({"input": "I will kill you"})
    (result,) = render(Reply(), exchange)["results"]
    assert result == gen.result("I will kill you", 0)


# --- conformance and the SDK ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "hello",
        "I will kill you",
        ["a", "I want to hurt myself"],
        [{"type": "text", "text": "hi"}, IMAGE],
        [IMAGE],
    ],
    ids=["benign", "threat", "list", "text-and-image", "image"],
)
def test_bodies_validate_against_the_spec(raw: Any) -> None:
    conformance.validate("CreateModerationResponse", answer({"input": raw}))


def sdk(seen: list[dict[str, Any]]) -> openai.OpenAI:
    """The real SDK, answered in memory by parse -> generate -> render."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        seen.append(body)
        content = json.dumps(answer(body)).encode()
        return httpx2.Response(200, content=content, headers={"content-type": "application/json"})

    transport = httpx2.MockTransport(handler)
    return openai.OpenAI(
        base_url="http://test/v1", api_key="x", http_client=httpx2.Client(transport=transport)
    )


def test_the_sdk_parses_results() -> None:
    seen: list[dict[str, Any]] = []
    client = sdk(seen)
    response = client.moderations.create(input=["I will kill you", "I love my cat"])
    assert seen == [{"input": ["I will kill you", "I love my cat"]}]
    threat, benign = response.results
    assert threat.flagged is True
    assert threat.categories.violence is True
    assert threat.categories.harassment_threatening is True
    assert threat.category_scores.violence > 0.9
    assert threat.category_applied_input_types.violence == ["text"]
    assert benign.flagged is False
    assert benign.categories.self_harm_intent is False
    assert response.id.startswith("modr-")
    assert response.model == "omni-moderation-latest"


def test_the_sdk_sends_multimodal_input() -> None:
    client = sdk([])
    parts: list[Any] = [{"type": "text", "text": "I want to hurt myself"}, IMAGE]
    response = client.moderations.create(model="omni-moderation-latest", input=parts)
    (result,) = response.results
    assert result.categories.self_harm_intent is True
    assert result.category_applied_input_types.self_harm == ["text", "image"]
    assert result.category_applied_input_types.hate == ["text"]
