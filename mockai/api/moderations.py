"""`POST /v1/moderations`: text (or text and images) in, one result per input out.

Wire details follow shared/reference/openai-wire-contract.md section 11. `input` is a string, a
list of strings (one result each), or a list of multimodal parts (one result for all of them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mockai import tokens
from mockai.api import common
from mockai.api.base import Codec, ParseContext, RenderContext
from mockai.api.fieldrules import empty_array, invalid_value, missing, type_error
from mockai.errors import ApiError
from mockai.generate import moderation
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Reply
from mockai.wire import ids, jsonbytes
from mockai.wire.outgoing import Body, Outgoing

PART_TYPES = ("text", "image_url")
# The API documents no limit on the number of inputs (a long one is truncated to 32,768 tokens,
# not refused). mockai answers at most as many as the embeddings endpoint takes, so one request
# cannot make it classify (and write ~1 KB of results for) a hundred thousand inputs.
MAX_INPUTS = 2048
MAX_IMAGES = 1  # image parts in one request (`_check_images`)


# --- parse ---------------------------------------------------------------------------------------


def parse(body: Any, ctx: ParseContext) -> Exchange:
    """Validate a moderations request and normalise it into an Exchange."""
    body = common.require_object(body)
    common.check_fields("moderations", body, strict=ctx.strict, provider=ctx.provider)
    model = body.get("model")
    if ctx.model_rules and ctx.provider == "openai" and _shut_down(model):
        # The text-moderation models were shut down on 2025-10-27 (OpenAI's deprecations page,
        # "2025-04-28: text-moderation"); since then the API refuses them in these words, with
        # `param: "model"` and no code (langgenius/dify#28117). mockai answered them: an app
        # still naming one passed its tests and failed in production.
        raise ApiError(400, "please request omni-moderation-latest", param="model")
    if model is None:
        # The catalog's moderation model; a restricted catalog that lists none has no model to
        # answer with, so the request gets the 404 that naming the default would get.
        model = ctx.catalog.default("moderation")
    ctx.catalog.get(model)  # a restricted catalog answers 404 for models it does not list
    inputs = _inputs(body["input"])
    if ctx.model_rules and ctx.provider == "openai":
        # (Not over a cassette or an upstream, as the refusals above: there the recording's or
        # the upstream's answer is the one, and a moderation server of one's own may take more.)
        _check_images(body["input"])
    return Exchange(
        endpoint=Endpoint.MODERATIONS,
        model=model,
        body=body,
        headers=ctx.headers,
        user_text="\n".join(inputs),
        inputs=inputs,
        # (What the API reads of each: counting all of a 32 MB input held the loop ~2 s.)
        prompt_tokens=tokens.count_all(map(moderation.read_part, inputs)),
        provider=ctx.provider,
    )


def _shut_down(model: Any) -> bool:
    """`text-moderation-latest`, `-stable`, `-007` and the like."""
    return isinstance(model, str) and model.startswith("text-moderation-")


def _inputs(raw: Any) -> tuple[str, ...]:
    """A string; a list of strings; or a list of parts, whose texts make up one input."""
    if isinstance(raw, str):
        return (raw,)
    if not raw:
        raise empty_array("input")
    if len(raw) > MAX_INPUTS:
        raise ApiError(
            400,
            f"Invalid 'input': array too long. mockai classifies at most {MAX_INPUTS} inputs per "
            f"request (the API documents no limit), but got an array with length {len(raw)}; "
            "split it into several requests.",
            param="input",
            code="mockai_too_many_inputs",
        )
    if isinstance(raw[0], dict):
        texts = [_part_text(part, f"input[{i}]") for i, part in enumerate(raw)]
        # Image parts have no text and add no separator: a stray newline would make a rule's
        # `user: {equals: ...}` miss a caption sent with its picture.
        return ("\n".join(text for text in texts if text is not None),)
    for index, item in enumerate(raw):
        if not isinstance(item, str):
            raise type_error(f"input[{index}]", ("string",), item)
    return tuple(raw)


def _check_images(raw: Any) -> None:
    """The API moderates one image per request, and refuses more in these words (gumroad's
    production log, antiwork/gumroad#4709): mockai answered two, so an app sending every image of
    a post passed its tests and failed in production. (`raw`: an `input` `_inputs` took.)"""
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], dict):
        return
    images = sum(1 for part in raw if part.get("type") == "image_url")
    if images > MAX_IMAGES:
        raise ApiError(
            400,
            f"Number of images ({images}) exceeds maximum of {MAX_IMAGES}",
            param="input",
            code="too_many_images",
        )


def _part_text(part: Any, param: str) -> str | None:
    """The text of one multimodal part; None for an image part (validated, it has no text)."""
    if not isinstance(part, dict):
        raise type_error(param, ("object",), part)
    kind = part.get("type")
    if kind is None:
        raise missing(f"{param}.type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise type_error(f"{param}.text", ("string",), text)
        return text
    if kind != "image_url":
        raise invalid_value(f"{param}.type", kind, PART_TYPES)
    _check_image(part.get("image_url"), f"{param}.image_url")
    return None


def _check_image(image: Any, param: str) -> None:
    if image is None:
        raise missing(param)
    if not isinstance(image, dict):
        raise type_error(param, ("object",), image)
    url = image.get("url")
    if url is None:
        raise missing(f"{param}.url")
    if not isinstance(url, str):
        raise type_error(f"{param}.url", ("string",), url)


# --- render --------------------------------------------------------------------------------------


def render(reply: Reply, exchange: Exchange, ctx: RenderContext) -> Outgoing:
    """The moderation object: `modr-` id, the model, one result per input."""
    body = {
        "id": ids.moderation_id(ctx.key),
        "model": exchange.model,
        "results": _results(reply, exchange, ctx.seed),
    }
    return Body(200, jsonbytes.dumps(body))


def _results(reply: Reply, exchange: Exchange, seed: int) -> list[Mapping[str, Any]]:
    """The generated results, or the scripted ones completed (a rule may give only categories)."""
    scripted = reply.moderation
    if (
        scripted
        and len(scripted) == len(exchange.inputs or ("",))
        and all(moderation.is_complete(result) for result in scripted)
    ):
        return list(scripted)  # nothing to fill in (the generator's own results, say)
    generated = moderation.reply_for(exchange, seed).moderation or ()
    if not scripted:
        return list(generated)
    # Like choices, scripted results cycle when the request has more inputs than the rule gave.
    return [
        moderation.complete(scripted[index % len(scripted)], result)
        for index, result in enumerate(generated)
    ]


CODEC = Codec(Endpoint.MODERATIONS, "/moderations", parse, render)
