"""Moderations: what the hunt found answered wrongly, through the real SDK.

- A rule's `user` condition sees the text of a multimodal input that also has an image.
- A partly scripted result is consistent: a category scripted alone gets a score on its side of
  the threshold, a score scripted alone decides its category, and `flagged` follows them.
- With `--models`, a moderation request that names no model is not answered by a model the server
  refuses: it gets the 404 naming that model would get (a listed moderation model answers it:
  test_moderations_codec.py).
- A request with more than one image is the API's 400 (it moderates one image at a time), not
  over an upstream (or a cassette), whose answer is the one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from aiohttp import web
from cassette_support import LoopbackApp
from conformance import checked_server
from hypothesis import given
from hypothesis import strategies as st
from sdk import sdk

from mockai import MockServer
from mockai.api import moderations as codec
from mockai.api.base import ParseContext
from mockai.catalog import Catalog
from mockai.generate import moderation as gen

CAPTION = "a picture of my cat"
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    """One server for the module, with the hunt's rules (and generated answers otherwise)."""
    with checked_server() as running:
        for rule in (
            {
                "name": "caption",
                "match": {"endpoint": "moderations", "user": {"equals": CAPTION}},
                "reply": {"categories": {"violence": True}},
            },
            {
                "name": "unflag",
                "match": {"endpoint": "moderations", "user": {"contains": "kill you"}},
                "reply": {
                    "categories": {
                        "violence": False,
                        "harassment": False,
                        "harassment/threatening": False,
                    }
                },
            },
            {
                "name": "score-only",
                "match": {"endpoint": "moderations", "user": {"contains": "beach photo"}},
                "reply": {"category_scores": {"sexual": 0.97, "violence": 0.2}},
            },
        ):
            running.add_rule(rule)
        yield running


@pytest.fixture(scope="module")
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with sdk(server) as opened:
        yield opened


def consistent(result: dict[str, Any]) -> None:
    """Each category is true iff its score reaches the threshold; `flagged` iff any is."""
    for name, on in result["categories"].items():
        assert on == (result["category_scores"][name] >= gen.THRESHOLD), name
    assert result["flagged"] == any(result["categories"].values())


# --- 1. the text of a multimodal input -----------------------------------------------------------


@pytest.mark.parametrize(
    "given_input",
    [
        CAPTION,
        [{"type": "text", "text": CAPTION}],
        [{"type": "text", "text": CAPTION}, IMAGE],
        [IMAGE, {"type": "text", "text": CAPTION}],
    ],
    ids=["string", "text", "text-image", "image-text"],
)
def test_a_caption_sent_with_its_picture_matches_the_rule(
    server: MockServer, client: openai.OpenAI, given_input: Any
) -> None:
    (result,) = client.moderations.create(input=given_input).results
    assert server.requests[-1].rule == "caption"
    assert result.categories.violence and result.flagged


_PART = st.one_of(
    st.builds(lambda text: {"type": "text", "text": text}, st.text(max_size=20)),
    st.just(IMAGE),
)


@given(st.lists(_PART, min_size=1, max_size=6).filter(lambda parts: parts.count(IMAGE) <= 1))
def test_the_matched_text_is_the_text_parts_joined(parts: list[dict[str, Any]]) -> None:
    exchange = codec.parse({"input": parts}, ParseContext(headers={}, catalog=Catalog()))
    texts = [part["text"] for part in parts if part["type"] == "text"]
    assert exchange.inputs == ("\n".join(texts),)
    assert exchange.user_text == "\n".join(texts)


# --- 2. partly scripted results ------------------------------------------------------------------


def test_a_category_scripted_false_gets_a_low_score(client: openai.OpenAI) -> None:
    (result,) = client.moderations.create(input="I will kill you").results
    dumped = result.model_dump(by_alias=True)
    for name in ("violence", "harassment", "harassment/threatening"):
        assert dumped["categories"][name] is False
        assert dumped["category_scores"][name] < gen.THRESHOLD
    consistent(dumped)


def test_a_score_scripted_alone_decides_its_category(client: openai.OpenAI) -> None:
    (result,) = client.moderations.create(input="a beach photo").results
    assert result.category_scores.sexual == 0.97
    assert result.categories.sexual is True
    assert result.category_scores.violence == 0.2
    assert result.categories.violence is False
    assert result.flagged is True
    consistent(result.model_dump(by_alias=True))


_SCORE = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
_TEXT = st.sampled_from(["hello", "I will kill you", "I want to hurt myself", "porn", ""])


@given(
    text=_TEXT,
    seed=st.integers(0, 3),
    categories=st.dictionaries(st.sampled_from(gen.CATEGORIES), st.booleans()),
    scores=st.dictionaries(st.sampled_from(gen.CATEGORIES), _SCORE),
)
def test_a_completed_result_is_consistent(
    text: str, seed: int, categories: dict[str, bool], scores: dict[str, float]
) -> None:
    partial: dict[str, Any] = {}
    if categories:
        partial["categories"] = categories
    if scores:
        partial["category_scores"] = scores
    result = gen.complete(partial, gen.result(text, seed))
    assert gen.is_complete(result)
    for name in gen.CATEGORIES:
        if name in categories:
            assert result["categories"][name] is categories[name]
        if name in scores:
            assert result["category_scores"][name] == scores[name]
        if not (name in categories and name in scores):
            assert result["categories"][name] == (result["category_scores"][name] >= gen.THRESHOLD)
    assert result["flagged"] == any(result["categories"].values())


# --- 3. --models and the default moderation model ------------------------------------------------


def test_an_unlisted_default_model_gets_the_404_of_a_named_one() -> None:
    with (
        checked_server(models="gpt-4o-mini,text-embedding-3-small") as restricted,
        sdk(restricted) as client,
    ):
        for model in ({}, {"model": "omni-moderation-latest"}):
            with pytest.raises(openai.NotFoundError) as caught:
                client.moderations.create(input="hello", **model)
            assert isinstance(caught.value.body, dict)
            assert caught.value.body["code"] == "model_not_found"
            assert "omni-moderation-latest" in caught.value.body["message"]


# --- 4. one image per request --------------------------------------------------------------------


@pytest.mark.parametrize("images", [2, 5])
def test_more_than_one_image_is_the_apis_400(client: openai.OpenAI, images: int) -> None:
    """The API's words for a post's every image sent at once (antiwork/gumroad#4709, from
    production); mockai classified them, and the app passed its tests."""
    parts: list[Any] = [{"type": "text", "text": CAPTION}, *[IMAGE] * images]
    with pytest.raises(openai.BadRequestError) as refused:
        client.moderations.create(model="omni-moderation-latest", input=parts)
    assert refused.value.body == {
        "message": f"Number of images ({images}) exceeds maximum of 1",
        "type": "invalid_request_error",
        "param": "input",
        "code": "too_many_images",
    }
    (result,) = client.moderations.create(input=parts[:2]).results  # (one image: answered)
    assert result.category_applied_input_types.violence == ["text", "image"]


def test_more_than_one_image_is_the_upstreams_to_answer() -> None:
    """Over an upstream the refusal is left to it, as the API's other refusals are: mockai
    answered its own 400 and never forwarded the request."""
    forwarded: list[str] = []

    async def takes_them(request: web.Request) -> web.Response:
        forwarded.append(request.path)
        return web.json_response({"id": "modr-1", "model": "omni-moderation-latest", "results": []})

    with (
        LoopbackApp({"/v1/{route:.*}": takes_them}) as app,
        checked_server(upstream=app.url) as proxy,
        sdk(proxy) as client,
    ):
        answer = client.moderations.create(model="omni-moderation-latest", input=[IMAGE, IMAGE])
    assert answer.id == "modr-1"
    assert forwarded == ["/v1/moderations"]
