"""Images through the real SDK: generations, edits and variations, decoded with Pillow."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from PIL import Image, ImageChops, ImageStat

from mockai import MockServer


def picture(b64: str | None) -> Image.Image:
    assert b64 is not None
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def png_bytes(size: tuple[int, int] = (64, 64), colour: str = "blue", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, "PNG")
    return out.getvalue()


# --- generations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    [
        ("dall-e-2", "256x256", (256, 256)),
        ("dall-e-2", "512x512", (512, 512)),
        ("dall-e-3", "1792x1024", (1792, 1024)),
        ("gpt-image-1", "1024x1536", (1024, 1536)),
        ("gpt-image-1", "auto", (1024, 1024)),
        ("flux-schnell", "320x200", (320, 200)),  # another provider's model: any size
    ],
)
def test_the_picture_has_the_size_asked(
    client: openai.OpenAI, model: str, size: Any, expected: tuple[int, int]
) -> None:
    result = (
        client.images.generate(
            model=model, prompt="a lighthouse at dusk", size=size, response_format="b64_json"
        )
        if not model.startswith("gpt-image")
        else client.images.generate(model=model, prompt="a lighthouse at dusk", size=size)
    )
    image = picture(result.data[0].b64_json)
    assert image.size == expected
    assert image.format == "PNG"


@pytest.mark.parametrize(("fmt", "pillow_name"), [("jpeg", "JPEG"), ("webp", "WEBP")])
def test_gpt_image_output_formats(client: openai.OpenAI, fmt: Any, pillow_name: str) -> None:
    result = client.images.generate(
        model="gpt-image-1", prompt="a cat", output_format=fmt, output_compression=60, n=2
    )
    assert len(result.data) == 2
    assert {picture(d.b64_json).format for d in result.data} == {pillow_name}
    assert result.output_format == fmt
    assert result.size == "1024x1024" and result.quality == "high"
    assert result.background == "opaque"
    # Two different pictures, both real.
    assert result.data[0].b64_json != result.data[1].b64_json


def test_gpt_image_usage_and_transparency(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="gpt-image-1",
        prompt="a glass of water",
        background="transparent",
        quality="low",
        size="1536x1024",
    )
    assert picture(result.data[0].b64_json).mode == "RGBA"
    assert result.background == "transparent"
    usage = result.usage
    assert usage is not None
    assert usage.output_tokens == 400  # low quality, 1536x1024 (the image guide's table)
    assert usage.input_tokens == usage.input_tokens_details.text_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_dall_e_3_revises_the_prompt_and_answers_with_a_url(
    client: openai.OpenAI, server: MockServer
) -> None:
    result = client.images.generate(model="dall-e-3", prompt="A red fox in the snow")
    item = result.data[0]
    assert item.b64_json is None
    assert item.revised_prompt is not None and item.revised_prompt.startswith(
        "A red fox in the snow"
    )
    assert item.url is not None and item.url.startswith(server.base_url + "/_mockai/images/img-")
    fetched = httpx.get(item.url)  # no API key needed, as for the API's blob links
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(fetched.content)).size == (1024, 1024)
    assert result.usage is None  # DALL-E sends none


def test_image_links_expire_after_an_hour_and_cannot_be_forged(
    client: openai.OpenAI, server: MockServer
) -> None:
    url = client.images.generate(model="dall-e-2", prompt="x", size="256x256").data[0].url
    assert url is not None
    forged = url.replace("se=", "se=2999").replace("sig=", "sig=0")
    assert httpx.get(forged).status_code == 403
    server.state.images.clock = lambda: time.time() + 3601
    expired = httpx.get(url)
    assert expired.status_code == 403
    assert b"AuthenticationFailed" in expired.content and b"Signed expiry time" in expired.content
    server.state.images.clock = time.time
    server.reset()  # a reset server holds no pictures
    assert httpx.get(url).status_code == 404


@pytest.mark.parametrize("signature", ["%C3%A9", "%ED%A0%80", "sig%E2%80%AE"])
def test_a_link_whose_signature_is_not_ascii_is_refused_not_a_500(
    client: openai.OpenAI, signature: str
) -> None:
    url = client.images.generate(model="dall-e-2", prompt="x", size="256x256").data[0].url
    assert url is not None
    start = url.index("sig=") + len("sig=")
    forged = httpx.get(url[:start] + signature)
    assert forged.status_code == 403
    assert b"Signature did not match" in forged.content


def test_the_same_prompt_draws_the_same_picture(client: openai.OpenAI) -> None:
    def draw(prompt: str) -> str | None:
        return client.images.generate(model="gpt-image-1-mini", prompt=prompt).data[0].b64_json

    assert draw("a blue whale") == draw("a blue whale")
    assert draw("a blue whale") != draw("a green whale")
    with MockServer(seed=1) as other, openai.OpenAI(base_url=other.url, api_key="k") as sdk:
        elsewhere = sdk.images.generate(model="gpt-image-1-mini", prompt="a blue whale")
        assert elsewhere.data[0].b64_json != draw("a blue whale")


def test_streaming_partial_images(client: openai.OpenAI) -> None:
    events = list(
        client.images.generate(
            model="gpt-image-1", prompt="a kite", stream=True, partial_images=3, size="1024x1536"
        )
    )
    assert [e.type for e in events] == ["image_generation.partial_image"] * 3 + [
        "image_generation.completed"
    ]
    assert [getattr(e, "partial_image_index", None) for e in events[:3]] == [0, 1, 2]
    assert all(picture(e.b64_json).size == (1024, 1536) for e in events)
    final = events[-1]
    assert final.type == "image_generation.completed"
    assert final.usage.output_tokens == 6240
    # Each partial is closer to the final picture than the one before.
    final_picture = picture(final.b64_json).convert("RGB")
    distances = [
        sum(
            ImageStat.Stat(
                ImageChops.difference(picture(e.b64_json).convert("RGB"), final_picture)
            ).mean
        )
        for e in events
    ]
    assert distances == sorted(distances, reverse=True) and distances[-1] == 0


def test_streaming_is_refused_for_dall_e(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(model="dall-e-3", prompt="x", stream=True)
    assert refused.value.body["param"] == "stream"  # type: ignore[index]


@pytest.mark.parametrize(
    ("options", "param", "message"),
    [
        ({"model": "dall-e-2", "size": "1024x1792"}, "size", "Supported values are"),
        ({"model": "dall-e-3", "n": 2}, "n", "You must provide n=1 for this model."),
        ({"model": "gpt-image-1", "response_format": "url"}, "response_format", "base64"),
        (
            {"model": "gpt-image-1", "background": "transparent", "output_format": "jpeg"},
            "background",
            "Transparent",
        ),
        ({"model": "dall-e-2", "prompt": "x" * 1001}, "prompt", "maximum length 1000"),
        ({"model": "dall-e-2", "n": 11}, "n", "maximum value"),
        ({"model": "flux", "size": "9000x9000"}, "size", "2048"),
    ],
)
def test_what_a_model_does_not_take_is_the_apis_400(
    client: openai.OpenAI, options: dict[str, Any], param: str, message: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(**{"prompt": "a cat", **options})
    assert refused.value.body["param"] == param  # type: ignore[index]
    assert message in refused.value.body["message"]  # type: ignore[index]


def test_a_parameter_of_the_gpt_image_models_makes_them_the_default(
    client: openai.OpenAI,
) -> None:
    plain = client.images.generate(prompt="x", response_format="b64_json")
    assert plain.usage is None and picture(plain.data[0].b64_json).size == (1024, 1024)
    gpt = client.images.generate(prompt="x", output_format="webp")
    assert gpt.usage is not None and picture(gpt.data[0].b64_json).format == "WEBP"


# --- edits and variations ------------------------------------------------------------------------


def test_edit_repaints_only_where_the_mask_is_transparent(client: openai.OpenAI) -> None:
    source = png_bytes((256, 256), "blue")
    mask = Image.new("RGBA", (256, 256), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 128, 256))  # the left half is to be edited
    mask_png = io.BytesIO()
    mask.save(mask_png, "PNG")
    result = client.images.edit(
        model="dall-e-2",
        image=("room.png", source, "image/png"),
        mask=("mask.png", mask_png.getvalue(), "image/png"),
        prompt="a sunlit lounge with a pool",
        size="256x256",
        response_format="b64_json",
    )
    edited = picture(result.data[0].b64_json).convert("RGB")
    assert edited.size == (256, 256)
    right = edited.crop((128, 0, 256, 256)).getcolors()
    assert right == [(128 * 256, (0, 0, 255))]  # kept exactly as uploaded
    left = edited.crop((0, 0, 128, 256)).getcolors(1 << 16) or []
    assert left != [(128 * 256, (0, 0, 255))]  # repainted


def test_edit_refuses_what_the_spec_refuses(client: openai.OpenAI) -> None:
    """CreateImageEditRequest: dall-e-2 edits one image; a mask has the image's dimensions."""
    with pytest.raises(openai.BadRequestError) as two:
        client.images.edit(
            model="dall-e-2",
            image=[("a.png", png_bytes((64, 64)), "image/png")] * 2,
            prompt="x",
        )
    assert two.value.param == "image" and "dall-e-2 edits one image" in two.value.message
    for model in ("dall-e-2", "gpt-image-1"):
        with pytest.raises(openai.BadRequestError) as mask:
            client.images.edit(
                model=model,
                image=("a.png", png_bytes((256, 256)), "image/png"),
                mask=("m.png", png_bytes((512, 512)), "image/png"),
                prompt="x",
            )
        assert mask.value.param == "mask" and "512x512, the image 256x256" in mask.value.message


@pytest.mark.parametrize(
    ("model", "kind"),
    [("gpt-image-1", "image_generation_user_error"), ("dall-e-2", "invalid_request_error")],
)
@pytest.mark.parametrize(("mode", "fmt"), [("RGB", "PNG"), ("L", "PNG"), ("RGB", "JPEG")])
def test_a_mask_without_alpha_is_the_apis_400(
    client: openai.OpenAI, model: str, kind: str, mode: str, fmt: str
) -> None:
    """A mask marks where to edit by its transparent pixels: one with no alpha channel (a black
    and white mask, a JPEG) is the API's 400; it had been taken as editing nothing."""
    mask = io.BytesIO()
    Image.new(mode, (64, 64)).save(mask, fmt)
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.edit(
            model=model,
            image=("a.png", png_bytes((64, 64), mode="RGBA"), "image/png"),
            mask=("m.png", mask.getvalue(), "image/png"),
            prompt="x",
        )
    assert refused.value.param == "mask" and refused.value.code == "invalid_mask_image_format"
    assert refused.value.type == kind
    assert refused.value.body["message"] == (  # type: ignore[index]
        "Invalid mask image format - mask image missing alpha channel"
    )
    palette = io.BytesIO()  # (a palette PNG with a transparent colour is a mask)
    Image.new("P", (64, 64)).save(palette, "PNG", transparency=0)
    for fine in (
        palette.getvalue(),
        png_bytes((64, 64), mode="LA"),
        png_bytes((64, 64), mode="RGBA"),
    ):
        client.images.edit(
            model=model,
            image=("a.png", png_bytes((64, 64), mode="RGBA"), "image/png"),
            mask=("m.png", fine, "image/png"),
            prompt="x",
            size="256x256" if model == "dall-e-2" else "1024x1024",
        )


def test_edit_several_images_and_usage(client: openai.OpenAI) -> None:
    result = client.images.edit(
        model="gpt-image-1",
        image=[("a.png", png_bytes((600, 600)), "image/png"), ("b.png", png_bytes(), "image/png")],
        prompt="a gift basket with both items",
    )
    assert picture(result.data[0].b64_json).size == (1024, 1024)
    assert result.usage is not None
    # 600x600 is 2x2 tiles of 512 (65 + 129 * 4), 64x64 one tile (65 + 129).
    assert result.usage.input_tokens_details.image_tokens == 65 + 129 * 4 + 65 + 129


def test_edit_streams_image_edit_events(client: openai.OpenAI) -> None:
    events = list(
        client.images.edit(
            model="gpt-image-1",
            image=("a.png", png_bytes(), "image/png"),
            prompt="x",
            stream=True,
            partial_images=1,
        )
    )
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]


def test_edit_by_json_references(client: openai.OpenAI, server: MockServer) -> None:
    held = client.files.create(file=("photo.png", png_bytes()), purpose="vision")
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes(colour="red")).decode()
    answer = httpx.post(
        server.url + "/images/edits",
        headers={"Authorization": "Bearer k"},
        json={
            "model": "gpt-image-1",
            "prompt": "x",
            "images": [{"file_id": held.id}, {"image_url": data_url}],
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"]["input_tokens_details"]["image_tokens"] == 2 * (65 + 129)
    missing = httpx.post(
        server.url + "/images/edits",
        json={"prompt": "x", "images": [{"file_id": "file-nope"}]},
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "No such File object: file-nope"


def test_an_upload_that_is_not_a_picture_is_the_apis_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.edit(
            model="gpt-image-1", image=("a.png", b"not a png", "image/png"), prompt="x"
        )
    assert refused.value.body["message"].startswith("Invalid image file")  # type: ignore[index]


def test_a_json_body_on_the_variations_route_is_refused(server: MockServer) -> None:
    answer = httpx.post(server.url + "/images/variations", json={"image": "x"})
    assert answer.status_code == 400
    assert "expected multipart/form-data" in answer.json()["error"]["message"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK marks variations deprecated
def test_variations_keep_the_picture_and_turn_its_colours(client: openai.OpenAI) -> None:
    source = png_bytes((300, 200), "red")
    result = client.images.create_variation(
        image=("red.png", source, "image/png"), n=3, size="256x256", response_format="b64_json"
    )
    pictures = [picture(d.b64_json).convert("RGB") for d in result.data]
    assert [p.size for p in pictures] == [(256, 256)] * 3
    for variant in pictures:
        (count, colour), *rest = variant.getcolors() or [(0, (0, 0, 0))]
        assert not rest and count == 256 * 256  # one colour, as the source
        assert sorted(colour).count(0) == 2  # red's channels, turned and brightened


# --- rules, faults, async, raw ---------------------------------------------------------------------


def test_rules_script_a_colour_a_pattern_or_a_file(
    client: openai.OpenAI, server: MockServer, tmp_path: Path
) -> None:
    fixture = tmp_path / "cat.png"
    Image.new("RGB", (40, 20), "green").save(fixture)
    server.add_rules(
        [
            {"match": {"user": "solid"}, "reply": {"image": {"color": "#ff8800"}}},
            {
                "match": {"user": "board"},
                "reply": {"image": {"pattern": "checkerboard", "colors": ["black", "white"]}},
            },
            {
                "match": {"endpoint": "images", "user": "cat"},
                "reply": {"image": str(fixture), "revised_prompt": "A cat, {{ request.model }}"},
            },
        ]
    )

    def draw(prompt: str, model: str = "dall-e-2") -> Any:
        return (
            client.images.generate(
                model=model, prompt=prompt, size="256x256", response_format="b64_json"
            )
            if model == "dall-e-2"
            else client.images.generate(model=model, prompt=prompt, response_format="b64_json")
        )

    solid = picture(draw("solid").data[0].b64_json).convert("RGB")
    assert solid.getcolors() == [(256 * 256, (255, 136, 0))]
    board = picture(draw("board").data[0].b64_json).convert("RGB")
    assert sorted(c for _, c in board.getcolors() or []) == [(0, 0, 0), (255, 255, 255)]
    cat = draw("a cat", "dall-e-3").data[0]
    assert cat.revised_prompt == "A cat, dall-e-3"
    assert picture(cat.b64_json).convert("RGB").getpixel((512, 512)) == (0, 128, 0)
    assert [e.rule for e in server.requests] == ["rule-1", "rule-2", "rule-3"]


def test_a_rule_refuses_with_the_content_policy_error(
    client: openai.OpenAI, server: MockServer
) -> None:
    server.add_rule({"match": {"user": "forbidden"}, "error": "content_policy"})
    with pytest.raises(openai.BadRequestError) as dall_e:
        client.images.generate(model="dall-e-3", prompt="something forbidden")
    assert dall_e.value.code == "content_policy_violation"
    with pytest.raises(openai.BadRequestError) as gpt:
        client.images.generate(model="gpt-image-1", prompt="something forbidden")
    assert gpt.value.code == "moderation_blocked"
    assert gpt.value.type == "image_generation_user_error"


def test_fault_headers_apply_to_images(server: MockServer) -> None:
    with openai.OpenAI(base_url=server.url, api_key="k", max_retries=2) as sdk:
        result = sdk.images.generate(
            model="dall-e-2",
            prompt="x",
            size="256x256",
            extra_headers={"x-mockai-fault": "rate_limit;attempts=2;retry_after=10ms"},
        )
    assert result.data[0].url is not None
    assert [e.status for e in server.requests] == [429, 429, 200]


@pytest.mark.asyncio
async def test_async_sdk_and_raw_response(aclient: openai.AsyncOpenAI) -> None:
    raw = await aclient.images.with_raw_response.generate(
        model="gpt-image-1", prompt="a lamp", size="1536x1024", output_format="jpeg"
    )
    assert raw.status_code == 200
    assert raw.headers["x-request-id"].startswith("req_")
    parsed = raw.parse()
    assert picture(parsed.data[0].b64_json).size == (1536, 1024)
    edited = await aclient.images.edit(
        model="gpt-image-1", image=("a.png", png_bytes(), "image/png"), prompt="x"
    )
    assert picture(edited.data[0].b64_json).format == "PNG"


def test_sync_raw_response(client: openai.OpenAI) -> None:
    raw = client.images.with_raw_response.generate(model="dall-e-2", prompt="x", size="256x256")
    assert raw.headers["content-type"] == "application/json"
    assert raw.parse().data[0].url is not None


def test_a_json_edit_with_a_mask_link_edits_its_picture(server: MockServer) -> None:
    """A mask named by an http(s) link mockai cannot fetch is left out: the uploaded picture is
    still the one edited, and billed (it was taken for the mask, and the edit drawn from the
    prompt alone)."""
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes((64, 64), "blue")).decode()
    answer = httpx.post(
        server.url + "/images/edits",
        json={
            "model": "gpt-image-1",
            "prompt": "x",
            "images": [{"image_url": data_url}],
            "mask": {"image_url": "https://example.com/mask.png"},
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"]["input_tokens_details"]["image_tokens"] == 65 + 129
    edited = picture(answer.json()["data"][0]["b64_json"]).convert("RGB")
    # The blue picture is repainted over, so at least 40% of its blue shows everywhere.
    assert edited.getchannel("B").getextrema()[0] >= 0.4 * 255 - 1
