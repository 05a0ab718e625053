"""`POST /audio/transcriptions` and `/audio/translations`: a recording in, its text out.

The recording comes as a multipart file. The answer is in the requested `response_format`:
`json` (`{"text"}` with the usage), `text`, `srt` and `vtt` (subtitles, timed), `verbose_json`
(language, duration, segments and, with `timestamp_granularities[]=word`, words), and
`diarized_json` for the diarizing model. The GPT transcription models stream
`transcript.text.delta` events then `transcript.text.done` when asked (`stream=true`; whisper-1
ignores it, as the API does), and take `include[]=logprobs`; the diarizing model's deltas name
their segment, and with `diarized_json` each segment comes as a `transcript.text.segment` event.
Translations are always English.

The text is the first choice of the Reply (a rule's `content`, or a generated transcript as long
as the recording); its timing comes from the recording's length (`generate.transcript`).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from typing import Any

from mockai import tokens
from mockai.api import common, forms
from mockai.api.base import Codec, ParseContext, RenderContext, content_key
from mockai.api.fieldrules import invalid_value, missing, type_error, unknown_parameter
from mockai.errors import ApiError
from mockai.generate import transcript
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Reply
from mockai.wire import jsonbytes, sse
from mockai.wire.multipart import summarised
from mockai.wire.outgoing import Body, EventStream, Outgoing

FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
# Whisper reports the language by name; the codes people pass most, and their names.
LANGUAGES = {
    "af": "afrikaans", "ar": "arabic", "bg": "bulgarian", "ca": "catalan", "cs": "czech",
    "da": "danish", "de": "german", "el": "greek", "en": "english", "es": "spanish",
    "fa": "persian", "fi": "finnish", "fr": "french", "he": "hebrew", "hi": "hindi",
    "hu": "hungarian", "id": "indonesian", "it": "italian", "ja": "japanese", "ko": "korean",
    "nl": "dutch", "no": "norwegian", "pl": "polish", "pt": "portuguese", "ro": "romanian",
    "ru": "russian", "sk": "slovak", "sv": "swedish", "th": "thai", "tr": "turkish",
    "uk": "ukrainian", "vi": "vietnamese", "zh": "chinese",
}  # fmt: skip
AUDIO_TOKENS_PER_SECOND = 10  # an estimate for the GPT transcription models' usage


def _is_gpt(model: str) -> bool:
    """The GPT transcription models (streaming, logprobs, token usage); whisper is not."""
    name = model.rsplit("/", 1)[-1]
    return "transcribe" in name and not name.startswith("whisper")


def _formats(model: str, endpoint: Endpoint) -> tuple[str, ...]:
    if endpoint is Endpoint.TRANSLATIONS:
        return FORMATS
    if "diarize" in model:
        return ("json", "text", "diarized_json")
    if _is_gpt(model):
        return ("json", "text")
    return FORMATS


def parse_transcription(body: Any, ctx: ParseContext) -> Exchange:
    """Validate a transcription request (a multipart form with the recording)."""
    return _parse(Endpoint.TRANSCRIPTIONS, "transcriptions", body, ctx)


def parse_translation(body: Any, ctx: ParseContext) -> Exchange:
    """Validate a translation request (a multipart form with the recording)."""
    return _parse(Endpoint.TRANSLATIONS, "translations", body, ctx)


def _parse(endpoint: Endpoint, table: str, body: Any, ctx: ParseContext) -> Exchange:
    fields = forms.typed(table, body)
    upload = forms.upload(fields.get("file"), "file")
    common.check_fields(
        table, {**fields, "file": "<file>"}, strict=ctx.strict, provider=ctx.provider
    )
    if ctx.strict:
        _check_nested_values(fields)
    model = fields["model"]
    ctx.catalog.get(model)
    if endpoint is Endpoint.TRANSLATIONS and _is_gpt(model):
        # The spec (CreateTranslationRequest.model): "Only `whisper-1` ... is currently
        # available". Another provider's model (Groq's whisper-large-v3) is its own business.
        raise invalid_value("model", model, ("whisper-1",))
    if ctx.provider in common.OPENAI_RULES:
        _check_extension(upload.filename)
    fmt = fields.get("response_format") or "json"
    allowed = _formats(model, endpoint)
    if fmt not in allowed:
        raise ApiError(
            400,
            f"Unsupported value: 'response_format' does not support '{fmt}' with this model. "
            f"Supported values are: {', '.join(repr(f) for f in allowed)}.",
            param="response_format",
            code="unsupported_value",
        )
    granularities = fields.get("timestamp_granularities")
    if granularities is not None:
        if not isinstance(granularities, list):
            granularities = [granularities]
        for item in granularities:
            if item not in ("word", "segment"):
                raise invalid_value("timestamp_granularities", item, ("word", "segment"))
        if fmt != "verbose_json":
            raise ApiError(
                400,
                "timestamp_granularities is only supported with response_format=verbose_json.",
                param="timestamp_granularities",
                code="invalid_value",
            )
        fields["timestamp_granularities"] = granularities
    include = fields.get("include") or []
    if "logprobs" in include and not (_is_gpt(model) and fmt == "json" and "diarize" not in model):
        raise ApiError(
            400,
            "logprobs are only available with response_format json and the gpt-4o "
            "transcription models.",
            param="include",
            code="unsupported_value",
        )
    fields["file"] = upload
    prompt = fields.get("prompt") or ""
    exchange = Exchange(
        endpoint=endpoint,
        model=model,
        body=summarised(fields),
        headers=ctx.headers,
        # whisper-1 ignores `stream` (the API's documented behaviour): a JSON answer.
        stream=bool(fields.get("stream")) and _is_gpt(model),
        user_text=prompt if isinstance(prompt, str) else "",
        prompt_tokens=tokens.count(prompt) if isinstance(prompt, str) else 0,
        uploads=(upload,),
        form=ctx.form,
    )
    if ctx.strict and not transcript.readable(exchange):
        raise ApiError(
            400,
            "The audio file could not be decoded or its format is not supported.",
            param="file",
            code="invalid_value",
        )
    return exchange


# The extensions the API takes a recording by, as its message lists them.
EXTENSIONS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")


def _check_extension(filename: str) -> None:
    """The API tells a recording's format by its file name, not its bytes: bytes sent with no
    name (openai-python's `file=data`, which names it `upload`; openai-node's `toFile(buffer)`,
    `unknown_file`) or a name without one of these extensions are its 400, a valid recording
    too (openai-node#270). mockai took them, so an app passed here and failed there."""
    _, dot, extension = filename.rpartition(".")
    if not (dot and extension.lower() in EXTENSIONS):
        raise ApiError(
            400,
            f"Unrecognized file format. Supported formats: [{', '.join(map(repr, EXTENSIONS))}]",
            param=None,
            code=None,
        )


# The spec's values inside two fields, which the generated table (top-level fields) does not
# hold: `include` items (`TranscriptionInclude`) and `chunking_strategy` ("auto" or a
# `VadConfig`, which takes no other keys). Enforced with `strict` only, as the other enums are.
_INCLUDE = ("logprobs",)
_VAD_NUMBERS = {
    "prefix_padding_ms": "integer",
    "silence_duration_ms": "integer",
    "threshold": "number",
}
# A form sends numbers as text; `forms.typed` reads a nested object's whole numbers only.
_NUMBER_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _check_nested_values(fields: Mapping[str, Any]) -> None:
    """The API's 400 for an `include` item or a `chunking_strategy` outside the spec's."""
    include = fields.get("include")
    if isinstance(include, list):
        for index, item in enumerate(include):
            _check_enum(f"include[{index}]", item, _INCLUDE)
    chunking = fields.get("chunking_strategy")
    if isinstance(chunking, str):
        _check_enum("chunking_strategy", chunking, ("auto",))
    elif isinstance(chunking, dict):
        for key in chunking:
            if key != "type" and key not in _VAD_NUMBERS:
                raise unknown_parameter(f"chunking_strategy.{key}")
        if "type" not in chunking:
            raise missing("chunking_strategy.type")
        _check_enum("chunking_strategy.type", chunking["type"], ("server_vad",))
        for key, kind in _VAD_NUMBERS.items():
            if key in chunking and not _reads_as(chunking[key], kind):
                raise type_error(f"chunking_strategy.{key}", (kind,), chunking[key])


def _check_enum(param: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str):
        raise type_error(param, ("string",), value)
    if value not in allowed:
        raise invalid_value(param, value, allowed)


def _reads_as(value: Any, kind: str) -> bool:
    """Whether a `VadConfig` value is of `kind` (an integer, or a number: as text in a form)."""
    if isinstance(value, bool):
        return False
    if kind == "integer" or not isinstance(value, str):
        return isinstance(value, int) or (kind == "number" and isinstance(value, float))
    return _NUMBER_TEXT.fullmatch(value) is not None


# --- render --------------------------------------------------------------------------------------


def render(reply: Reply, exchange: Exchange, ctx: RenderContext) -> Outgoing:
    """The transcript in the requested format, or its stream of events."""
    body = exchange.body
    text = reply.choices[0].content if reply.choices else None
    if text is None:
        text = ""
    seconds = transcript.duration(exchange)
    fmt = str(body.get("response_format") or "json")
    translating = exchange.endpoint is Endpoint.TRANSLATIONS
    if exchange.stream:
        return _stream(reply, exchange, text, seconds, ctx)
    if fmt == "text":
        return _plain(text + "\n")
    if fmt in ("srt", "vtt"):  # (both text/plain, as `text` is: the API's header for each)
        return _plain(_subtitles(text, seconds, srt=fmt == "srt"))
    if fmt == "verbose_json":
        return _json(_verbose(reply, exchange, text, seconds, translating, ctx))
    if fmt == "diarized_json":
        return _json(_diarized(reply, exchange, text, seconds))
    answer: dict[str, Any] = {"text": text}
    if "logprobs" in (body.get("include") or []):
        answer["logprobs"] = _logprobs(text, _numbers_key(exchange, ctx))
    if not translating:
        answer["usage"] = _usage(reply, exchange, text, seconds)
    return _json(answer)


def _plain(text: str) -> Body:
    return Body(200, text.encode("utf-8"), "text/plain; charset=utf-8")


def _json(answer: Mapping[str, Any]) -> Body:
    return Body(200, jsonbytes.dumps(answer))


def _usage(reply: Reply, exchange: Exchange, text: str, seconds: float) -> dict[str, Any]:
    """Whisper bills seconds of audio; the GPT models tokens (audio in, text out)."""
    scripted = reply.usage or {}
    if not _is_gpt(exchange.model):
        return {"type": "duration", "seconds": math.ceil(seconds)}
    audio_tokens = math.ceil(seconds * AUDIO_TOKENS_PER_SECOND)
    input_tokens = scripted.get("input_tokens", audio_tokens + exchange.prompt_tokens)
    output_tokens = scripted.get("output_tokens", tokens.count(text))
    # The details add up to `input_tokens` (the spec's breakdown of it), scripted or not: the
    # prompt's tokens first, the rest audio.
    text_tokens = min(exchange.prompt_tokens, input_tokens)
    return {
        "type": "tokens",
        "input_tokens": input_tokens,
        "input_token_details": {
            "text_tokens": text_tokens,
            "audio_tokens": input_tokens - text_tokens,
        },
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def _language(exchange: Exchange, translating: bool) -> str:
    code = exchange.body.get("language")
    if translating or not isinstance(code, str) or not code:
        return "english"
    return LANGUAGES.get(code.lower(), code.lower())


def _verbose(
    reply: Reply,
    exchange: Exchange,
    text: str,
    seconds: float,
    translating: bool,
    ctx: RenderContext,
) -> dict[str, Any]:
    granularities = exchange.body.get("timestamp_granularities") or ["segment"]
    answer: dict[str, Any] = {
        "task": "translate" if translating else "transcribe",
        "language": _language(exchange, translating),
        "duration": round(seconds, 2),
        "text": text,
    }
    if "word" in granularities and not translating:
        answer["words"] = [
            {"word": word.text, "start": word.start, "end": word.end}
            for word in transcript.words(text, seconds)
        ]
    if "segment" in granularities or translating:
        answer["segments"] = _segments(text, seconds, _numbers_key(exchange, ctx))
    if not translating:
        answer["usage"] = _usage(reply, exchange, text, seconds)
    return answer


def _numbers_key(exchange: Exchange, ctx: RenderContext) -> bytes:
    """What the made-up numbers (logprobs, segments' tokens and scores) derive from: the
    request's content key, as its text does, so a repeat gets the same bytes (`ctx.key` is new
    on every repeat, for the ids) and a stream the numbers of the JSON answer."""
    return content_key(exchange, ctx)


def _segments(text: str, seconds: float, key: bytes) -> list[dict[str, Any]]:
    rng = random.Random(int.from_bytes(key[:8], "big"))
    out = []
    for index, segment in enumerate(transcript.segments(text, seconds)):
        seek = int(segment.start * 100) // 3000 * 3000  # Whisper works in 30 s windows
        out.append(
            {
                "id": index,
                "seek": seek,
                "start": segment.start,
                "end": segment.end,
                "text": " " + segment.text,
                "tokens": [50364 + rng.randrange(0, 1500) for _ in segment.text.split()],
                "temperature": 0.0,
                "avg_logprob": round(-rng.uniform(0.1, 0.4), 6),
                "compression_ratio": round(rng.uniform(1.1, 1.7), 6),
                "no_speech_prob": round(rng.uniform(0.0, 0.05), 6),
            }
        )
    return out


def _diarized(reply: Reply, exchange: Exchange, text: str, seconds: float) -> dict[str, Any]:
    segments = []
    lines = []
    for index, segment in enumerate(transcript.segments(text, seconds)):
        speaker = "AB"[index % 2]
        lines.append(f"{speaker}: {segment.text}")
        segments.append(
            {
                "type": "transcript.text.segment",
                "id": f"seg_{index + 1:03d}",
                "start": segment.start,
                "end": segment.end,
                "text": segment.text,
                "speaker": speaker,
            }
        )
    return {
        "task": "transcribe",
        "duration": round(seconds, 2),
        "text": "\n".join(lines),
        "segments": segments,
        "usage": _usage(reply, exchange, text, seconds),
    }


def _subtitles(text: str, seconds: float, *, srt: bool) -> str:
    """SRT (numbered cues, `00:00:01,000`) or WebVTT (`WEBVTT`, `00:00:01.000`)."""
    cues = []
    for index, segment in enumerate(transcript.segments(text, seconds), start=1):
        start, end = _clock(segment.start, srt), _clock(segment.end, srt)
        number = f"{index}\n" if srt else ""
        cues.append(f"{number}{start} --> {end}\n{segment.text}\n")
    body = "\n".join(cues) + "\n" if cues else ""  # (no cue: an empty transcript)
    return body if srt else "WEBVTT\n\n" + body


def _clock(seconds: float, srt: bool) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    separator = "," if srt else "."
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _logprobs(text: str, key: bytes) -> list[dict[str, Any]]:
    rng = random.Random(int.from_bytes(key[8:16], "big"))
    return [_logprob(piece, rng) for piece in _pieces(text)]


def _logprob(piece: str, rng: random.Random) -> dict[str, Any]:
    return {
        "token": piece,
        "logprob": round(-rng.expovariate(200.0), 9),
        "bytes": list(piece.encode("utf-8")),
    }


def _pieces(text: str) -> list[str]:
    """The text as the stream's deltas: each word with the space before it."""
    words = text.split(" ")
    return [words[0], *(" " + word for word in words[1:])] if text else []


def _stream(
    reply: Reply, exchange: Exchange, text: str, seconds: float, ctx: RenderContext
) -> EventStream:
    with_logprobs = "logprobs" in (exchange.body.get("include") or [])
    rng = random.Random(int.from_bytes(_numbers_key(exchange, ctx)[8:16], "big"))
    frames: list[bytes] = []
    logprobs: list[dict[str, Any]] = []
    for pieces, segment in _runs(reply, exchange, text, seconds):
        for piece in pieces:
            event: dict[str, Any] = {"type": "transcript.text.delta", "delta": piece}
            if with_logprobs:
                event["logprobs"] = [_logprob(piece, rng)]
                logprobs.extend(event["logprobs"])
            if segment is not None:
                event["segment_id"] = segment["id"]
            frames.append(sse.data_frame(jsonbytes.dumps(event)))
        if segment is not None and exchange.body.get("response_format") == "diarized_json":
            frames.append(sse.data_frame(jsonbytes.dumps(segment)))  # once its text is out
    done: dict[str, Any] = {"type": "transcript.text.done", "text": text}
    if with_logprobs:
        done["logprobs"] = logprobs
    done["usage"] = _usage(reply, exchange, text, seconds)
    frames.append(sse.data_frame(jsonbytes.dumps(done)))
    return EventStream(frames=frames, tail=1, content_type=sse.CONTENT_TYPE)


def _runs(
    reply: Reply, exchange: Exchange, text: str, seconds: float
) -> list[tuple[list[str], dict[str, Any] | None]]:
    """The stream's deltas, run by run: all of them at once, or (the diarizing model) each
    segment's with the `transcript.text.segment` event it belongs to (the API puts the segment's
    id on its deltas). The deltas add up to `text` exactly, whitespace between segments too."""
    if "diarize" not in exchange.model:
        return [(_pieces(text), None)]
    segments = _diarized(reply, exchange, text, seconds)["segments"]
    runs: list[tuple[list[str], dict[str, Any] | None]] = []
    start = 0
    for index, segment in enumerate(segments):
        # (a segment is a sentence of `text`, stripped: the space before it goes with it)
        found = text.find(segment["text"], start)
        end = len(text) if index == len(segments) - 1 or found < 0 else found + len(segment["text"])
        runs.append(([piece for piece in _pieces(text[start:end]) if piece], segment))
        start = end
    return runs


TRANSCRIPTIONS = Codec(
    Endpoint.TRANSCRIPTIONS,
    "/audio/transcriptions",
    parse_transcription,
    render,
    bodies="form",
)
TRANSLATIONS = Codec(
    Endpoint.TRANSLATIONS, "/audio/translations", parse_translation, render, bodies="form"
)
