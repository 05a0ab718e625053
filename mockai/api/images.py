"""`POST /images/generations`, `/images/edits` and `/images/variations`: pictures out.

Each model family has the API's rules: DALL-E 2 draws 256, 512 or 1024 pixels square, up to ten
at a time, and answers with URLs unless asked for `b64_json`; DALL-E 3 draws one picture (1024
square, 1792x1024 or 1024x1792) and sends the prompt it revised; the GPT image models draw 1024
square, 1536x1024 or 1024x1536 pictures in PNG, JPEG or WebP, always as base64, with `usage`,
and stream partial images; gpt-image-2 also draws any WIDTHxHEIGHT its spec allows. A model
mockai does not know (another provider's) takes any size up to 2048 pixels a side, either
response format. Variations are DALL-E 2's alone, and DALL-E 3 does not edit.

Edits take the pictures to change as multipart files (`image`, `image[]`, `mask`) or, as JSON,
by `image_url` (a data URL) or `file_id` (a file uploaded to this server). Variations take one
picture. The picture itself is drawn by `mockai.generate.images` at render time.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mockai import tokens
from mockai.api import common, forms
from mockai.api.base import Codec, ParseContext, RenderContext
from mockai.api.fieldrules import FieldRule, invalid_value, missing, type_error
from mockai.errors import ApiError
from mockai.generate import images, prose
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Media, Reply
from mockai.wire import ids, jsonbytes, sse
from mockai.wire.multipart import Upload, summarised
from mockai.wire.outgoing import ATTACHMENT_SCHEME, Attachment, Body, EventStream, Outgoing

_SIZE = re.compile(r"(\d{2,5})x(\d{2,5})")
# Sizes a model mockai does not know may ask for (each side), and the most pictures per request.
MIN_SIDE, MAX_SIDE = 64, 2048
MAX_N = 10
# Output tokens of one GPT image by quality and size (OpenAI's image generation guide).
_OUTPUT_TOKENS = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}
# Fields only the GPT image models take: a request using one defaults to gpt-image-1.
_GPT_IMAGE_FIELDS = ("output_format", "output_compression", "background", "moderation", "stream")
# The spec's enum of `output_format`, in the order the strict check lists it.
_OUTPUT_FORMATS = ("jpeg", "png", "webp")
# `output_compression` is a percentage (the spec: "0-100%"): its bounds, in the API's wording.
_COMPRESSION = FieldRule(types=frozenset({"integer"}), minimum=0, maximum=100)
# CreateImageEditRequest.model's enum: the models the API edits with (DALL-E 3 is not one).
_EDIT_MODELS = (
    "gpt-image-1.5",
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
    "dall-e-2",
    "gpt-image-1",
    "gpt-image-1-mini",
    "chatgpt-image-latest",
)
# The sizes an answer may name: the spec's ImagesResponse and image stream events list only these
# (the events also `auto`), so an answer drawn at one of gpt-image-2's own sizes does not name it
# (the picture itself has it).
_ANSWERED_SIZES = frozenset(("1024x1024", "1024x1536", "1536x1024"))
# gpt-image-2's own sizes (the spec's `size`): WIDTHxHEIGHT, both divisible by 16, an aspect
# ratio between 1:3 and 3:1, at most 3840x2160 (its pixels, and 3840 the longest side).
_STEP, _MAX_RATIO, _MAX_EDGE, _MAX_PIXELS = 16, 3, 3840, 3840 * 2160


@dataclass(frozen=True, slots=True)
class Family:
    """What a family of image models accepts and answers."""

    name: str
    sizes: tuple[str, ...] | None  # None: any WIDTHxHEIGHT within MIN_SIDE..MAX_SIDE
    default_size: str
    max_n: int
    max_prompt: int
    qualities: tuple[str, ...]
    formats: bool  # output_format / output_compression / background
    urls: bool  # response_format url (the default when it does)
    revises: bool  # sends revised_prompt
    streams: bool
    usage: bool  # sends usage, background, output_format, quality, size
    any_size: bool = False  # also any WIDTHxHEIGHT within gpt-image-2's rules (`_custom_size`)


DALL_E_2 = Family(
    "dall-e-2",
    ("256x256", "512x512", "1024x1024"),
    "1024x1024",
    10,
    1000,
    ("standard", "auto"),
    formats=False,
    urls=True,
    revises=False,
    streams=False,
    usage=False,
)
DALL_E_3 = Family(
    "dall-e-3",
    ("1024x1024", "1792x1024", "1024x1792"),
    "1024x1024",
    1,
    4000,
    ("standard", "hd", "auto"),
    formats=False,
    urls=True,
    revises=True,
    streams=False,
    usage=False,
)
GPT_IMAGE = Family(
    "gpt-image",
    ("1024x1024", "1536x1024", "1024x1536", "auto"),
    "1024x1024",
    10,
    32000,
    ("low", "medium", "high", "auto"),
    formats=True,
    urls=False,
    revises=False,
    streams=True,
    usage=True,
)
GPT_IMAGE_2 = replace(GPT_IMAGE, name="gpt-image-2", any_size=True)
OTHER = Family(
    "other",
    None,
    "1024x1024",
    MAX_N,
    32000,
    ("standard", "hd", "low", "medium", "high", "auto"),
    formats=True,
    urls=True,
    revises=False,
    streams=False,
    usage=False,
)


def family(model: str) -> Family:
    """The family of an image model, from its id."""
    name = model.rsplit("/", 1)[-1].lower()
    if "dall-e-2" in name:
        return DALL_E_2
    if "dall-e-3" in name:
        return DALL_E_3
    if "gpt-image-2" in name:
        return GPT_IMAGE_2
    if "gpt-image" in name or "chatgpt-image" in name:
        return GPT_IMAGE
    return OTHER


@dataclass(frozen=True, slots=True)
class Options:
    """A parsed image request's presentation: what each picture is and how it is sent."""

    family: Family
    size: str  # as answered (`auto` resolved)
    canvas: images.Canvas
    n: int
    urls: bool
    quality: str  # as answered by the GPT image models
    background: str
    partials: int


# --- parse ---------------------------------------------------------------------------------------


def parse_generation(body: Any, ctx: ParseContext) -> Exchange:
    """`POST /images/generations` (JSON)."""
    body = common.require_object(body)
    common.check_fields("images", body, strict=ctx.strict, provider=ctx.provider)
    default = "gpt-image-1" if any(body.get(f) is not None for f in _GPT_IMAGE_FIELDS) else None
    return _exchange(Endpoint.IMAGES, body, ctx, default or "dall-e-2", ())


def parse_edit(body: Any, ctx: ParseContext) -> Exchange:
    """`POST /images/edits`: a multipart form with the pictures, or JSON naming them."""
    if ctx.form is None:
        body = common.require_object(body)
        common.check_fields("image_edits_json", body, strict=ctx.strict, provider=ctx.provider)
        pictures = [_referenced(ref, f"images[{i}]", ctx) for i, ref in enumerate(body["images"])]
        mask = body.get("mask")
        sources = [p for p in pictures if p is not None]
        masked = _referenced(mask, "mask", ctx) if mask is not None else None
        masks = [masked] if masked is not None else []
        return _exchange(Endpoint.IMAGE_EDITS, body, ctx, "gpt-image-1.5", sources, masks)
    fields = forms.typed("image_edits", body)
    pictures = fields.pop("image", None)
    if pictures is None:
        raise missing("image")
    listed = pictures if isinstance(pictures, list) else [pictures]
    if len(listed) > 16:
        raise ApiError(
            400,
            f"Invalid 'image': array too long. Expected an array with maximum length 16, but got "
            f"an array with length {len(listed)} instead.",
            param="image",
            code="array_above_max_length",
        )
    sources = [forms.upload(picture, "image") for picture in listed]
    masks = [forms.upload(fields.pop("mask"), "mask")] if "mask" in fields else []
    checked = {**fields, "image": "<file>"}
    common.check_fields("image_edits", checked, strict=ctx.strict, provider=ctx.provider)
    fields["image"] = listed if isinstance(pictures, list) else pictures
    if masks:
        fields["mask"] = masks[0]
    exchange = _exchange(Endpoint.IMAGE_EDITS, fields, ctx, "gpt-image-1.5", sources, masks)
    if ctx.provider in common.OPENAI_RULES:
        _check_declared_types(exchange.model, sources, listed=isinstance(pictures, list))
    return exchange


# The types an edit's pictures may be declared as (each part's Content-Type), by model family.
_EDIT_TYPES = {
    DALL_E_2: ("image/png",),
    GPT_IMAGE: ("image/jpeg", "image/png", "image/webp"),
    GPT_IMAGE_2: ("image/jpeg", "image/png", "image/webp"),
}


def _check_declared_types(model: str, sources: Sequence[Upload], *, listed: bool) -> None:
    """The API reads an uploaded picture's type from its part's Content-Type, not its bytes:
    a PNG declared `application/octet-stream` is its 400 `unsupported_file_mimetype`. That is
    what openai-node sends for a `File`, `Blob` or `fs.createReadStream` without a `type`
    (openai-node#1468), where openai-python and curl name the type from the file name; the
    mask is not held to it."""
    allowed = _EDIT_TYPES.get(family(model))
    if allowed is None:
        return
    for index, source in enumerate(sources):
        declared = source.content_type.split(";", 1)[0].strip().lower()
        if declared in allowed:
            continue
        param = f"image[{index}]" if listed else "image"
        names = [f"'{name}'" for name in allowed]
        listing = names[0] if len(names) == 1 else f"{', '.join(names[:-1])}, and {names[-1]}"
        raise ApiError(
            400,
            f"Invalid file '{param}': unsupported mimetype ('{declared}'). Supported file "
            f"formats are {listing}.",
            param=param,
            code="unsupported_file_mimetype",
        )


def parse_variation(body: Any, ctx: ParseContext) -> Exchange:
    """`POST /images/variations`: one picture, as a multipart file."""
    fields = forms.typed("image_variations", body)
    source = forms.upload(fields.get("image"), "image")
    common.check_fields(
        "image_variations", {**fields, "image": "<file>"}, strict=ctx.strict, provider=ctx.provider
    )
    return _exchange(Endpoint.IMAGE_VARIATIONS, fields, ctx, "dall-e-2", [source])


def _referenced(ref: Any, param: str, ctx: ParseContext) -> Upload | None:
    """A picture named in a JSON edit: a data URL's bytes, a held file's, or None for a URL
    mockai cannot fetch (it has no network: the edit is then drawn from the prompt alone)."""
    if not isinstance(ref, dict):
        raise type_error(param, ("object",), ref)
    url, file_id = ref.get("image_url"), ref.get("file_id")
    if (url is None) == (file_id is None):
        raise ApiError(
            400,
            f"Invalid '{param}': give exactly one of 'image_url' or 'file_id'.",
            param=param,
            code="invalid_value",
        )
    if file_id is not None:
        data = ctx.file_data(str(file_id)) if ctx.file_data is not None else None
        if data is None:
            raise ApiError(
                404, f"No such File object: {file_id}", param=f"{param}.file_id", code=None
            )
        return Upload(str(file_id), data)
    if not isinstance(url, str):
        raise type_error(f"{param}.image_url", ("string",), url)
    if not url.startswith("data:"):
        return None
    header, _, payload = url.partition(",")
    try:
        data = base64.b64decode(payload, validate=True) if ";base64" in header else payload.encode()
    except (binascii.Error, ValueError):
        raise ApiError(
            400, f"Invalid '{param}.image_url': not a valid data URL.", param=param
        ) from None
    return Upload("image", data, header[5:].split(";")[0] or "application/octet-stream")


def _exchange(
    endpoint: Endpoint,
    body: Mapping[str, Any],
    ctx: ParseContext,
    default_model: str,
    sources: Sequence[Upload],
    masks: Sequence[Upload] = (),
) -> Exchange:
    model = body.get("model") or default_model
    if not isinstance(model, str):
        raise type_error("model", ("string",), model)
    ctx.catalog.get(model)  # a restricted catalog answers 404 for models it does not list
    _check_model(endpoint, model)
    prompt = body.get("prompt", "")
    if endpoint is not Endpoint.IMAGE_VARIATIONS and not isinstance(prompt, str):
        raise type_error("prompt", ("string",), prompt)
    options(model, body)  # every presentation error now, before anything is drawn
    if len(sources) > 1 and family(model) is DALL_E_2:
        # The spec (CreateImageEditRequest.image): "For `dall-e-2`, you can only provide one
        # image."
        raise ApiError(
            400,
            f"Invalid 'image': dall-e-2 edits one image, but {len(sources)} were given.",
            param="image",
            code="invalid_value",
        )
    sizes = [
        images.check_source(source.data, "image" if len(sources) == 1 else f"image[{index}]")
        for index, source in enumerate(sources)
    ]
    for mask in masks:
        size = images.check_source(mask.data, "mask")
        # The spec (`mask`): it must "have the same dimensions as `image`" (the first one).
        if sizes and size != sizes[0]:
            raise ApiError(
                400,
                f"Invalid 'mask': the mask is {size[0]}x{size[1]}, the image "
                f"{sizes[0][0]}x{sizes[0][1]}: they must have the same dimensions.",
                param="mask",
                code="invalid_value",
            )
        if family(model) is not OTHER and not images.has_alpha(mask.data):
            # The spec: the mask's "fully transparent areas (e.g. where alpha is zero) indicate
            # where `image` should be edited"; the API refuses one with no alpha (a black and
            # white mask, a JPEG), which mockai had taken as editing nothing.
            gpt = family(model) not in (DALL_E_2, DALL_E_3)
            raise ApiError(
                400,
                "Invalid mask image format - mask image missing alpha channel",
                type="image_generation_user_error" if gpt else "invalid_request_error",
                param="mask",
                code="invalid_mask_image_format",
            )
    return Exchange(
        endpoint=endpoint,
        model=model,
        body=summarised(body),
        headers=ctx.headers,
        stream=bool(body.get("stream")),
        user_text=prompt if isinstance(prompt, str) else "",
        n=int(body.get("n") or 1),
        prompt_tokens=tokens.count(prompt) if isinstance(prompt, str) else 0,
        uploads=(*sources, *masks),
        form=ctx.form,
    )


def _check_model(endpoint: Endpoint, model: str) -> None:
    """The API's 400 for an OpenAI model the endpoint does not take (the spec's `model` enums:
    variations are dall-e-2's alone, edits exclude dall-e-3). Another provider's model (the
    `OTHER` family) is that provider's business: it passes."""
    kind = family(model)
    if endpoint is Endpoint.IMAGE_VARIATIONS and kind not in (DALL_E_2, OTHER):
        raise invalid_value("model", model, ("dall-e-2",))
    if endpoint is Endpoint.IMAGE_EDITS and kind is DALL_E_3:
        raise invalid_value("model", model, _EDIT_MODELS)


def options(model: str, body: Mapping[str, Any]) -> Options:
    """How to draw and send the pictures, with the API's 400 for what the model does not take."""
    kind = family(model)
    prompt = body.get("prompt")
    if isinstance(prompt, str) and len(prompt) > kind.max_prompt:
        raise ApiError(
            400,
            f"Invalid 'prompt': string too long. Expected a string with maximum length "
            f"{kind.max_prompt}, but got a string with length {len(prompt)} instead.",
            param="prompt",
            code="string_above_max_length",
        )
    n = int(body.get("n") or 1)
    if n > kind.max_n:
        if kind.max_n == 1:
            raise ApiError(400, "You must provide n=1 for this model.", param="n")
        raise ApiError(
            400,
            f"Invalid 'n': integer above maximum value. Expected a value <= {kind.max_n}, but "
            f"got {n} instead.",
            param="n",
            code="integer_above_max_value",
        )
    auto = kind.sizes is not None and "auto" in kind.sizes
    size = body.get("size") or ("auto" if auto else kind.default_size)
    width, height = _dimensions(kind, str(size))
    answered_size = f"{width}x{height}"
    urls = _response_format(kind, body.get("response_format"))
    quality = str(body.get("quality") or "auto")
    if quality not in kind.qualities:
        raise invalid_value("quality", quality, kind.qualities)
    output_format = str(body.get("output_format") or "png") if kind.formats else "png"
    if output_format not in _OUTPUT_FORMATS:  # (lenient mode lets any string this far)
        raise invalid_value("output_format", output_format, _OUTPUT_FORMATS)
    background = str(body.get("background") or "auto") if kind.formats else "auto"
    if background == "transparent" and output_format == "jpeg":
        raise ApiError(
            400,
            "Transparent background is not supported for the jpeg output format; use png or webp.",
            param="background",
            code="invalid_value",
        )
    compression = body.get("output_compression")
    if compression is not None:
        _COMPRESSION.check("output_compression", compression)
    if compression is not None and output_format == "png" and int(compression) != 100:
        raise ApiError(
            400,
            "Compression less than 100 is not supported for PNG output format.",
            param="output_compression",
            code="invalid_value",
        )
    stream = bool(body.get("stream"))
    if stream and not kind.streams:
        raise ApiError(
            400,
            f"Streaming is not supported for model {model}: only the GPT image models stream.",
            param="stream",
            code="invalid_value",
        )
    partials = int(body.get("partial_images") or 0) if stream else 0
    canvas = images.Canvas(
        width,
        height,
        output_format,
        None if compression is None else int(compression),
        transparent=background == "transparent",
    )
    return Options(
        family=kind,
        size=answered_size,
        canvas=canvas,
        n=n,
        urls=urls,
        quality="high" if quality == "auto" else quality,
        background="transparent" if background == "transparent" else "opaque",
        partials=partials,
    )


def _dimensions(kind: Family, size: str) -> tuple[int, int]:
    if size == "auto" and kind.sizes is not None and "auto" in kind.sizes:
        size = kind.default_size
    if kind.any_size and kind.sizes is not None and size not in kind.sizes:
        return _custom_size(kind, size)
    if kind.sizes is not None and size not in kind.sizes:
        raise invalid_value("size", size, kind.sizes)
    found = _SIZE.fullmatch(size)
    if found is None:
        raise ApiError(
            400,
            f"Invalid 'size': '{size}'. Give WIDTHxHEIGHT, such as '1024x1024'.",
            param="size",
            code="invalid_value",
        )
    width, height = int(found.group(1)), int(found.group(2))
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise ApiError(
            400,
            f"Invalid 'size': '{size}'. mockai draws pictures of {MIN_SIDE} to {MAX_SIDE} pixels "
            "a side.",
            param="size",
            code="invalid_value",
        )
    return width, height


def _custom_size(kind: Family, size: str) -> tuple[int, int]:
    """A WIDTHxHEIGHT the spec allows gpt-image-2 beside its listed sizes; its 400 otherwise."""
    found = _SIZE.fullmatch(size)
    width, height = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    short, long = sorted((width, height))
    if (
        short > 0
        and width % _STEP == 0
        and height % _STEP == 0
        and long <= _MAX_RATIO * short
        and long <= _MAX_EDGE
        and width * height <= _MAX_PIXELS
    ):
        return width, height
    listed = ", ".join(f"'{s}'" for s in kind.sizes or ())
    raise ApiError(
        400,
        f"Invalid 'size': '{size}'. {kind.name} takes {listed}, or WIDTHxHEIGHT with both "
        f"divisible by {_STEP}, an aspect ratio between 1:{_MAX_RATIO} and {_MAX_RATIO}:1, and "
        f"at most {_MAX_EDGE}x{_MAX_PIXELS // _MAX_EDGE} ({_MAX_PIXELS:,} pixels, {_MAX_EDGE} a "
        "side).",
        param="size",
        code="invalid_value",
    )


def _response_format(kind: Family, value: Any) -> bool:
    """True for URLs. The GPT image models always answer base64 (`url` is refused)."""
    if value is None:
        return kind.urls
    if value not in ("url", "b64_json"):
        raise invalid_value("response_format", value, ("url", "b64_json"))
    if value == "url" and not kind.urls:
        raise ApiError(
            400,
            "Invalid value: 'url'. The GPT image models always return base64-encoded images: "
            "response_format is only supported for dall-e-2 and dall-e-3.",
            param="response_format",
            code="invalid_value",
        )
    return bool(value == "url")


# --- render --------------------------------------------------------------------------------------


def render(reply: Reply, exchange: Exchange, ctx: RenderContext) -> Outgoing:
    """The ImagesResponse, or the stream of partial images and the completed event."""
    body = exchange.body
    opts = options(exchange.model, body)
    media = reply.media or Media(seed=int.from_bytes(ctx.key[:8], "big"))
    prompt = exchange.user_text
    sources = _sources(exchange)
    mask = next((u.data for u in exchange.uploads[len(sources) :]), None)
    # Drawn one at a time as they are encoded: a decoded picture weighs up to 33 MB (3840x2160
    # RGBA), and n of them at once would be n times that.
    pictures = (
        images.picture(
            media,
            opts.canvas,
            prompt,
            index,
            source=sources[0] if sources else None,
            mask=mask,
            vary=exchange.endpoint is Endpoint.IMAGE_VARIATIONS,
        )
        for index in range(opts.n)
    )
    usage = _usage(reply, exchange, opts, sources)
    if exchange.stream:
        return _stream(exchange, ctx, opts, pictures, usage)
    attachments: list[Attachment] = []
    data: list[dict[str, Any]] = []
    extension = opts.canvas.format
    for index, picture in enumerate(pictures):
        encoded = images.encode(picture, opts.canvas)
        item: dict[str, Any]
        if opts.urls:
            name = f"{ids.image_id(ctx.key, index)}.{extension}"
            attachments.append(Attachment(name, encoded, images.CONTENT_TYPES[extension]))
            item = {"url": (ATTACHMENT_SCHEME + name.encode()).decode()}
        else:
            item = {"b64_json": base64.b64encode(encoded).decode("ascii")}
        if opts.family.revises:
            item["revised_prompt"] = media.revised_prompt or _revised(prompt, media.seed, index)
        data.append(item)
    answer: dict[str, Any] = {"created": ctx.created, "data": data}
    if opts.family.usage:
        answer.update(
            background=opts.background,
            output_format=opts.canvas.format,
            quality=opts.quality,
            usage=usage,
        )
        if opts.size in _ANSWERED_SIZES:  # (optional in ImagesResponse: see _ANSWERED_SIZES)
            answer["size"] = opts.size
    return Body(200, jsonbytes.dumps(answer), attachments=tuple(attachments))


def _sources(exchange: Exchange) -> list[bytes]:
    """The uploaded pictures (a mask, when there is one, is the last upload)."""
    has_mask = _mask_uploaded(exchange.body.get("mask")) and len(exchange.uploads) > 0
    pictures = exchange.uploads[: len(exchange.uploads) - (1 if has_mask else 0)]
    return [upload.data for upload in pictures]


def _mask_uploaded(mask: Any) -> bool:
    """Whether a mask sent with an edit is among its uploads: a JSON edit's mask named by an
    `http(s)` link is left out, as such a picture is (mockai cannot fetch it), so the last upload
    is then a picture to edit, not a mask."""
    if isinstance(mask, Mapping):
        link = mask.get("image_url")
        return not (isinstance(link, str) and not link.startswith("data:"))
    return mask is not None


def _stream(
    exchange: Exchange,
    ctx: RenderContext,
    opts: Options,
    pictures: Iterable[Any],
    usage: Mapping[str, Any],
) -> EventStream:
    prefix = "image_edit" if exchange.endpoint is Endpoint.IMAGE_EDITS else "image_generation"
    common_fields = {
        "created_at": ctx.created,
        "size": opts.size if opts.size in _ANSWERED_SIZES else "auto",  # (required here)
        "quality": opts.quality,
        "background": opts.background,
        "output_format": opts.canvas.format,
    }
    frames: list[bytes] = []
    for picture in pictures:
        for step in range(opts.partials):
            event: dict[str, Any] = {
                "type": f"{prefix}.partial_image",
                "b64_json": base64.b64encode(
                    images.partial(picture, step, opts.partials, opts.canvas)
                ).decode("ascii"),
                **common_fields,
                "partial_image_index": step,
            }
            frames.append(sse.named_frame(f"{prefix}.partial_image", jsonbytes.dumps(event)))
        done = {
            "type": f"{prefix}.completed",
            "b64_json": base64.b64encode(images.encode(picture, opts.canvas)).decode("ascii"),
            **common_fields,
            "usage": usage,
        }
        frames.append(sse.named_frame(f"{prefix}.completed", jsonbytes.dumps(done)))
    return EventStream(frames=frames, tail=1, content_type=sse.CONTENT_TYPE)


def _usage(
    reply: Reply, exchange: Exchange, opts: Options, sources: Sequence[bytes]
) -> dict[str, Any]:
    """The GPT image models' token usage: the prompt's text tokens, 65 + 129 per 512-pixel tile
    of each input picture, and the output table of the image guide per picture drawn."""
    text = exchange.prompt_tokens
    image_tokens = 0
    for data in sources:
        try:
            width, height = images.check_source(data, "image")
        except ApiError:
            continue
        tiles = -(-min(width, 2048) // 512) * -(-min(height, 2048) // 512)
        image_tokens += 65 + 129 * tiles
    table = _OUTPUT_TOKENS.get(opts.quality, _OUTPUT_TOKENS["high"])
    # A size the guide's table does not list (gpt-image-2's own): the square's tokens by area.
    pixels = opts.canvas.width * opts.canvas.height
    per_picture = table.get(opts.size) or round(table["1024x1024"] * pixels / (1024 * 1024))
    output = per_picture * opts.n
    scripted = reply.usage or {}
    input_tokens = scripted.get("input_tokens", text + image_tokens)
    output_tokens = scripted.get("output_tokens", output)
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"text_tokens": text, "image_tokens": image_tokens},
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


_STYLES = (
    "in soft natural light",
    "with rich, saturated colours",
    "as a detailed digital illustration",
    "in the style of a watercolour painting",
    "as a high-resolution photograph",
)


def _revised(prompt: str, seed: int, index: int) -> str:
    """DALL-E 3's revised prompt: the prompt, elaborated (the same for the same seed)."""
    rng = random.Random(seed * 7919 + index)
    base = " ".join(prompt.split()).rstrip(".") or "An image"
    return f"{base}, {rng.choice(_STYLES)}. {prose.sentences(rng, 1)}"


GENERATIONS = Codec(Endpoint.IMAGES, "/images/generations", parse_generation, render)
EDITS = Codec(Endpoint.IMAGE_EDITS, "/images/edits", parse_edit, render, bodies="either")
VARIATIONS = Codec(
    Endpoint.IMAGE_VARIATIONS, "/images/variations", parse_variation, render, bodies="form"
)
