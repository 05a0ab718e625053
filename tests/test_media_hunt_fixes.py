"""Images and translations: what the hunt found answered wrongly, through the real SDK.

- An unknown `output_format` is the API's 400 (it was a 500), in lenient mode as in strict.
- `background: transparent` draws on transparent pixels, in PNG and WebP.
- Models the API refuses on an endpoint are refused there (variations: dall-e-2 only; edits:
  not dall-e-3; translations: whisper-1, not the GPT transcription models); another provider's
  models still pass.
- `output_compression` is 0-100.
- gpt-image-2 draws any WIDTHxHEIGHT its spec allows.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from conformance import checked_server
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from profile_support import sdk as profile_sdk

from mockai import MockServer
from mockai.api import images as image_api
from mockai.errors import ApiError
from mockai.generate import images
from mockai.pipeline.reply import Media


def picture(b64: str | None) -> Image.Image:
    assert b64 is not None
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def png_bytes(size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "red").save(out, "PNG")
    return out.getvalue()


def refusal(call: Callable[[], Any]) -> dict[str, Any]:
    """The 400's error body of `call`."""
    with pytest.raises(openai.BadRequestError) as refused:
        call()
    body = refused.value.body
    assert isinstance(body, dict)
    return body


@pytest.fixture(scope="module")
def strict_client() -> Iterator[openai.OpenAI]:
    with (
        checked_server(strict_requests=True) as strict,
        openai.OpenAI(base_url=strict.url, api_key="sk-test", max_retries=0) as sdk,
    ):
        yield sdk


# --- 1. output_format -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["gif", "PNG"])
def test_an_unknown_output_format_is_the_apis_400_as_strict_mode_words_it(
    client: openai.OpenAI, strict_client: openai.OpenAI, fmt: Any
) -> None:
    expected = {
        "message": f"Invalid value: '{fmt}'. Supported values are: 'jpeg', 'png', and 'webp'.",
        "type": "invalid_request_error",
        "param": "output_format",
        "code": "invalid_value",
    }
    for sdk in (client, strict_client):
        generate = refusal(
            lambda sdk=sdk: sdk.images.generate(model="gpt-image-1", prompt="a", output_format=fmt)
        )
        edit = refusal(
            lambda sdk=sdk: sdk.images.edit(
                model="gpt-image-1", image=("a.png", png_bytes()), prompt="a", output_format=fmt
            )
        )
        assert generate == edit == expected


# --- 2. transparent backgrounds ------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "pillow_name"), [("png", "PNG"), ("webp", "WEBP")])
def test_a_transparent_background_is_transparent(
    client: openai.OpenAI, fmt: Any, pillow_name: str
) -> None:
    result = client.images.generate(
        model="gpt-image-1",
        prompt="a logo",
        background="transparent",
        output_format=fmt,
        quality="low",
    )
    image = picture(result.data[0].b64_json)
    assert image.format == pillow_name and image.mode == "RGBA"
    low, high = image.getchannel("A").getextrema()  # type: ignore[misc]
    assert low == 0 and high == 255  # a transparent background under drawn shapes
    assert result.background == "transparent"
    # Opaque is still opaque, and JPEG (no alpha) with transparent is still the API's 400.
    opaque = client.images.generate(model="gpt-image-1", prompt="a logo", output_format=fmt)
    assert picture(opaque.data[0].b64_json).convert("RGBA").getchannel("A").getextrema() == (
        255,
        255,
    )
    refused = refusal(
        lambda: client.images.generate(
            model="gpt-image-1", prompt="a", background="transparent", output_format="jpeg"
        )
    )
    assert refused["param"] == "background"


def test_a_streamed_transparent_picture_is_transparent(client: openai.OpenAI) -> None:
    stream = client.images.generate(
        model="gpt-image-1",
        prompt="a logo",
        background="transparent",
        output_format="webp",
        stream=True,
        partial_images=1,
    )
    frames = [event.b64_json for event in stream]
    assert len(frames) == 2
    for b64 in frames:
        assert picture(b64).getchannel("A").getextrema()[0] == 0  # type: ignore[index]


@settings(max_examples=20, deadline=None)
@given(
    width=st.integers(16, 160),
    height=st.integers(16, 160),
    fmt=st.sampled_from(["png", "webp"]),
    seed=st.integers(0, 2**32),
    prompt=st.text(alphabet="abc xyz", min_size=1, max_size=30).filter(str.strip),
)
def test_any_transparent_picture_has_a_transparent_background_and_a_drawing(
    width: int, height: int, fmt: str, seed: int, prompt: str
) -> None:
    canvas = images.Canvas(width, height, fmt, transparent=True)
    drawn = images.picture(Media(seed=seed), canvas, prompt, 0)
    decoded = Image.open(io.BytesIO(images.encode(drawn, canvas)))
    assert decoded.size == (width, height) and decoded.mode == "RGBA"
    low, high = decoded.getchannel("A").getextrema()  # type: ignore[misc]
    assert low == 0 and high > 0
    opaque = images.Canvas(width, height, fmt)
    assert images.picture(Media(seed=seed), opaque, prompt, 0).mode == "RGB"


# --- 3. models an endpoint does not take ----------------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK marks variations deprecated
@pytest.mark.parametrize("model", ["gpt-image-1", "gpt-image-2", "dall-e-3"])
def test_variations_are_dall_e_2s_alone(client: openai.OpenAI, model: str) -> None:
    body = refusal(
        lambda: client.images.create_variation(model=model, image=("a.png", png_bytes()))
    )
    assert body == {
        "message": f"Invalid value: '{model}'. Supported values are: 'dall-e-2'.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "invalid_value",
    }
    for taken in ("dall-e-2", "flux-schnell"):  # another provider's model is its own business
        result = client.images.create_variation(
            model=taken, image=("a.png", png_bytes()), response_format="b64_json", size="256x256"
        )
        assert picture(result.data[0].b64_json).size == (256, 256)


def test_dall_e_3_does_not_edit(client: openai.OpenAI) -> None:
    body = refusal(
        lambda: client.images.edit(model="dall-e-3", image=("a.png", png_bytes()), prompt="a")
    )
    assert body["param"] == "model" and body["code"] == "invalid_value"
    assert body["message"].startswith("Invalid value: 'dall-e-3'. Supported values are: ")
    assert "'dall-e-2'" in body["message"] and "'gpt-image-1'" in body["message"]
    for taken in ("dall-e-2", "gpt-image-1", "flux-kontext"):
        result = client.images.edit(
            model=taken,
            image=("a.png", png_bytes((256, 256))),
            prompt="a",
            size="256x256" if taken == "dall-e-2" else "1024x1024",
            **({} if taken.startswith("gpt-image") else {"response_format": "b64_json"}),
        )
        assert picture(result.data[0].b64_json).size[0] in (256, 1024)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK marks translations deprecated
@pytest.mark.parametrize("model", ["gpt-4o-transcribe", "gpt-4o-mini-transcribe"])
def test_translations_are_whisper_1s(client: openai.OpenAI, server: MockServer, model: str) -> None:
    recording = client.audio.speech.create(model="tts-1", voice="nova", input="Bonjour.").read()
    body = refusal(
        lambda: client.audio.translations.create(model=model, file=("fr.mp3", recording))
    )
    assert body == {
        "message": f"Invalid value: '{model}'. Supported values are: 'whisper-1'.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "invalid_value",
    }
    translated = client.audio.translations.create(model="whisper-1", file=("fr.mp3", recording))
    assert translated.text
    # Groq translates with its own Whisper: its profile keeps taking it.
    with profile_sdk(server, "groq") as groq:
        groq_text = groq.audio.translations.create(
            model="whisper-large-v3", file=("fr.mp3", recording)
        )
    assert groq_text.text


# --- 4. output_compression ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code", "words"),
    [
        (-5, "integer_below_min_value", "integer below minimum value. Expected a value >= 0"),
        (101, "integer_above_max_value", "integer above maximum value. Expected a value <= 100"),
        (1000, "integer_above_max_value", "integer above maximum value. Expected a value <= 100"),
    ],
)
def test_output_compression_is_a_percentage(
    client: openai.OpenAI, strict_client: openai.OpenAI, value: int, code: str, words: str
) -> None:
    for sdk in (client, strict_client):
        body = refusal(
            lambda sdk=sdk: sdk.images.generate(
                model="gpt-image-1", prompt="x", output_format="jpeg", output_compression=value
            )
        )
        assert body == {
            "message": f"Invalid 'output_compression': {words}, but got {value} instead.",
            "type": "invalid_request_error",
            "param": "output_compression",
            "code": code,
        }
    for edge in (0, 100):
        result = client.images.generate(
            model="gpt-image-1", prompt="x", output_format="jpeg", output_compression=edge
        )
        assert picture(result.data[0].b64_json).format == "JPEG"


# --- 5. gpt-image-2's sizes ----------------------------------------------------------------------


@pytest.mark.parametrize("size", ["1536x864", "2560x1440", "3840x2160", "2160x3840", "480x1440"])
@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-2-2026-04-21"])
def test_gpt_image_2_draws_any_size_its_spec_allows(
    client: openai.OpenAI, model: str, size: Any
) -> None:
    result = client.images.generate(model=model, prompt="a wide banner", size=size, quality="low")
    width, height = (int(side) for side in size.split("x"))
    assert picture(result.data[0].b64_json).size == (width, height)
    # The spec's ImagesResponse names only the three standard sizes: a picture drawn at another
    # does not name its size (the checked server validates the answer against the spec).
    assert result.size is None
    # Output tokens: the image guide's low-quality square, by area.
    assert result.usage is not None
    assert result.usage.output_tokens == round(272 * width * height / (1024 * 1024))


def test_a_streamed_gpt_image_2_picture_has_its_own_size(client: openai.OpenAI) -> None:
    stream = client.images.generate(
        model="gpt-image-2", prompt="a banner", size="1536x864", stream=True, partial_images=1
    )
    events = list(stream)
    assert [picture(e.b64_json).size for e in events] == [(1536, 864)] * 2
    assert {e.size for e in events} == {"auto"}  # (the events' enum: the three sizes or auto)
    standard = client.images.generate(model="gpt-image-2", prompt="a", size="1536x1024")
    assert standard.size == "1536x1024"


@pytest.mark.parametrize(
    "size",
    [
        "1000x1000",  # not divisible by 16
        "1536x496",  # wider than 3:1
        "4096x2048",  # a side over 3840
        "3840x2176",  # more pixels than 3840x2160
        "0000x0016",  # no picture at all
        "big",
    ],
)
def test_gpt_image_2_refuses_sizes_its_spec_does_not_allow(
    client: openai.OpenAI, size: Any
) -> None:
    body = refusal(lambda: client.images.generate(model="gpt-image-2", prompt="a", size=size))
    assert body["param"] == "size" and body["code"] == "invalid_value"
    assert f"Invalid 'size': '{size}'. gpt-image-2 takes '1024x1024'" in body["message"]
    assert "divisible by 16, an aspect ratio between 1:3 and 3:1" in body["message"]
    # The other GPT image models keep their three sizes.
    other = refusal(
        lambda: client.images.generate(model="gpt-image-1", prompt="a", size="1536x864")
    )
    assert other["param"] == "size"


def _spec_allows(width: int, height: int) -> bool:
    """The spec's words for gpt-image-2, as written there."""
    return (
        width % 16 == 0
        and height % 16 == 0
        and width > 0
        and height > 0
        and 1 / 3 <= width / height <= 3
        and max(width, height) <= 3840
        and width * height <= 3840 * 2160
    )


@settings(max_examples=300)
@given(width=st.integers(1, 5000), height=st.integers(1, 5000), aligned=st.booleans())
def test_gpt_image_2_takes_exactly_the_sizes_the_spec_allows(
    width: int, height: int, aligned: bool
) -> None:
    if aligned:  # most random sizes are not multiples of 16: look at those often too
        width, height = max(width // 16, 1) * 16, max(height // 16, 1) * 16
    size = f"{width}x{height}"
    try:
        options = image_api.options("gpt-image-2", {"size": size})
    except ApiError as refused:
        assert refused.param == "size"
        assert not _spec_allows(width, height)
    else:
        assert _spec_allows(width, height)
        assert (options.canvas.width, options.canvas.height) == (width, height)
        assert options.size == size
