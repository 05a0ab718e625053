"""`POST /audio/speech`: text in, audio out, in the requested format, or as audio events.

The answer is the audio file itself (`audio/mpeg`, `audio/opus`, `audio/aac`, `audio/flac`,
`audio/wav`, or raw 24 kHz 16-bit mono `audio/pcm`), as long as the text takes to say at the
requested `speed`. With `stream_format: sse` (not for tts-1 / tts-1-hd) the same audio comes in
`speech.audio.delta` events, base64, then `speech.audio.done` with the usage.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

from mockai import tokens
from mockai.api import common
from mockai.api.base import Codec, ParseContext, RenderContext
from mockai.api.fieldrules import invalid_value, type_error
from mockai.errors import ApiError
from mockai.generate import audio
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Media, Reply
from mockai.wire import jsonbytes, sse
from mockai.wire.outgoing import Body, EventStream, Outgoing

VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "onyx",
    "nova",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
# OpenAI's speech models: their voices are checked; other providers' models take any voice.
_OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
AUDIO_TOKENS_PER_SECOND = 20  # an estimate: the API documents none for speech output


def parse(body: Any, ctx: ParseContext) -> Exchange:
    """Validate a speech request."""
    body = common.require_object(body)
    common.check_fields("speech", body, strict=ctx.strict, provider=ctx.provider)
    model = body["model"]
    ctx.catalog.get(model)
    text = body["input"]
    if not text:
        raise ApiError(
            400,
            "Invalid 'input': string too short. Expected a string with minimum length 1, but got "
            "an empty string instead.",
            param="input",
            code="string_below_min_length",
        )
    _voice(body["voice"], model)
    if body.get("response_format") is not None and body["response_format"] not in audio.FORMATS:
        raise invalid_value("response_format", body["response_format"], audio.FORMATS)
    sse_stream = body.get("stream_format") == "sse"
    if sse_stream and _is_tts_1(model):
        raise ApiError(
            400,
            f"stream_format 'sse' is not supported for {model}: use gpt-4o-mini-tts, or "
            "stream_format 'audio'.",
            param="stream_format",
            code="unsupported_value",
        )
    instructions = body.get("instructions") or ""
    return Exchange(
        endpoint=Endpoint.SPEECH,
        model=model,
        body=body,
        headers=ctx.headers,
        stream=sse_stream,
        user_text=text,
        system_text=instructions if isinstance(instructions, str) else "",
        prompt_tokens=tokens.count(text) + tokens.count(str(instructions)),
    )


def _is_tts_1(model: str) -> bool:
    return model in ("tts-1", "tts-1-hd") or model.startswith(("tts-1-", "tts-1-hd-"))


def _voice(voice: Any, model: str) -> str:
    """The voice's name (a custom voice's id); OpenAI's models refuse voices they lack."""
    if isinstance(voice, dict):
        voice_id = voice.get("id")
        if not isinstance(voice_id, str):
            raise type_error("voice.id", ("string",), voice_id)
        return voice_id
    if not isinstance(voice, str):
        raise type_error("voice", ("string", "object"), voice)
    if model.startswith(_OPENAI_MODELS) and voice not in VOICES:
        raise invalid_value("voice", voice, VOICES)
    return voice


def render(reply: Reply, exchange: Exchange, ctx: RenderContext) -> Outgoing:
    """The audio file, or its audio events."""
    body = exchange.body
    fmt = str(body.get("response_format") or "mp3")
    speed = float(body.get("speed") or 1.0)
    media = reply.media or Media(seed=int.from_bytes(ctx.key[:8], "big"))
    pcm = audio.speech(exchange.user_text, _voice(body["voice"], exchange.model), speed, media)
    data = audio.encode(pcm, fmt)
    if not exchange.stream:
        return Body(200, data, audio.CONTENT_TYPES[fmt])
    frames = [
        sse.data_frame(
            jsonbytes.dumps(
                {"type": "speech.audio.delta", "audio": base64.b64encode(piece).decode("ascii")}
            )
        )
        for piece in audio.chunks(data)
    ]
    done = {"type": "speech.audio.done", "usage": usage(reply, exchange, audio.seconds_of(pcm))}
    frames.append(sse.data_frame(jsonbytes.dumps(done)))
    return EventStream(frames=frames, tail=1, content_type=sse.CONTENT_TYPE)


def usage(reply: Reply, exchange: Exchange, seconds: float) -> Mapping[str, int]:
    """Input tokens of the text (and instructions), output tokens of the audio made."""
    scripted = reply.usage or {}
    input_tokens = scripted.get("input_tokens", exchange.prompt_tokens)
    output_tokens = scripted.get("output_tokens", math.ceil(seconds * AUDIO_TOKENS_PER_SECOND))
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


CODEC = Codec(Endpoint.SPEECH, "/audio/speech", parse, render)
