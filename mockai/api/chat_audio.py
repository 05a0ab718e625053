"""Chat completions in audio: `modalities: ["text", "audio"]` with `audio: {voice, format}`.

The audio models (gpt-4o-audio-preview, gpt-4o-mini-audio-preview, gpt-audio and their
snapshots) answer with `message.content: null` and `message.audio: {id, data, expires_at,
transcript}`: the answer's text as its transcript, and speech of it (`mockai.generate.audio`,
as `/audio/speech` makes it) base64-encoded in the format asked. Streamed (`pcm16` only, as the
API has it) the same fields come spread over `delta.audio` pieces: the id with the first piece
of transcript, the transcript and the sound in pieces, then `expires_at`, so that a client
joining the strings (the SDKs' stream helpers do) holds the whole `message.audio`.

The audio tokens are billed: the answer's in `completion_tokens` (and
`completion_tokens_details.audio_tokens`), a user's `input_audio` parts in `prompt_tokens` (and
`prompt_tokens_details.audio_tokens`), each from the sound's length.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mockai.api.fieldrules import invalid_value, missing, type_error
from mockai.errors import ApiError
from mockai.pipeline.exchange import AudioOutput
from mockai.pipeline.reply import Media
from mockai.wire import ids

# The spec's `audio.format` (`CreateChatCompletionRequest.audio`), in its order.
FORMATS = ("wav", "aac", "mp3", "flac", "opus", "pcm16")
# Chat's name for the speech endpoint's raw 24 kHz 16-bit mono PCM.
_ENCODED = {"pcm16": "pcm"}
# The chat models that hear and speak (and their snapshots: `gpt-4o-audio-preview-2024-12-17`,
# `gpt-audio-mini`, `gpt-audio-1.5`).
AUDIO_MODELS = ("gpt-4o-audio-preview", "gpt-4o-mini-audio-preview", "gpt-audio")
# How long the API keeps an answer's audio for a later turn to refer to by id (its answers'
# `expires_at` is an hour after `created`).
EXPIRES_IN = 3600
# An input recording's tokens: an estimate (the API documents none), as for the transcription
# models' audio input; the answer's audio is billed at speech's rate.
INPUT_TOKENS_PER_SECOND = 10
# When a recording does not decode: its length guessed from its size, as a 128 kbit/s MP3's.
_GUESSED_BYTES_PER_SECOND = 16_000
# The most characters of transcript one answer says aloud, all its choices together (the speech
# endpoint's own limit, ~4.5 minutes of sound): a bound on the sound one request makes, since a
# rule's answer may be any length (20,000 words made a 250 MB answer). The transcript is whole.
SPOKEN_CHARACTERS = 4_096
# The bytes of one streamed `delta.audio.data` piece: 100 ms of pcm16, a multiple of 3 so that
# the pieces' base64 strings, joined, are the whole sound's (no padding inside).
STREAM_PIECE = 4_800


def takes_audio(model: str) -> bool:
    """Whether `model` is one of OpenAI's chat models that hear and speak."""
    return model.startswith(AUDIO_MODELS)


def parse_output(
    body: Mapping[str, Any], model: str, *, stream: bool, openai_rules: bool, named: bool
) -> AudioOutput | None:
    """The audio output a chat request asks for, held to the API's rules (`openai_rules`:
    OpenAI's and Azure's profiles, not over a recording; `named`: the model's name is the
    model's, as it is not for an Azure deployment). None: text only."""
    modalities = body.get("modalities")
    if not (type(modalities) is list and "audio" in modalities):
        return None
    if named and not takes_audio(model):
        # (mockai's words: no report quotes the API's for this request.)
        raise ApiError(
            400,
            f"This model does not support audio output: 'modalities' may only be ['text'] "
            f"with {model}. Use gpt-4o-audio-preview, gpt-4o-mini-audio-preview or gpt-audio.",
            param="modalities",
            code="invalid_value",
        )
    raw = body.get("audio")
    if raw is None:
        if not openai_rules:
            return None  # (another server's rule, or a recording: answered in text)
        raise missing("audio")
    if not isinstance(raw, dict):
        raise type_error("audio", ("object",), raw)
    voice, fmt = raw.get("voice"), raw.get("format")
    if voice is None or fmt is None:
        if not openai_rules:
            return None
        raise missing("audio.voice" if voice is None else "audio.format")
    name = _voice(voice, openai_rules)
    if fmt not in FORMATS:
        if not openai_rules:
            return None  # (a format mockai cannot make: answered in text, or as recorded)
        raise invalid_value("audio.format", fmt, FORMATS)
    if stream and fmt != "pcm16" and openai_rules:
        # The API's 400 (quoted in Agent-Field/agentfield#584 and #968, for gpt-audio-mini):
        # a stream's audio is raw PCM, pieces a client can play as they come.
        raise ApiError(
            400,
            f"Unsupported value: 'audio.format' does not support '{fmt}' when stream=true. "
            "Supported values are: 'pcm16'.",
            param="audio.format",
            code="unsupported_value",
        )
    return AudioOutput(voice=name, format=fmt)


def _voice(voice: Any, openai_rules: bool) -> str:
    """The voice's name, or a custom voice's id (`{"id": "voice_1234"}`)."""
    if isinstance(voice, dict):
        voice_id = voice.get("id")
        if not isinstance(voice_id, str):
            raise type_error("audio.voice.id", ("string",), voice_id)
        return voice_id
    if not isinstance(voice, str):
        raise type_error("audio.voice", ("string", "object"), voice)
    from mockai.api.speech import VOICES  # (the speech codec, with a request asking for audio)

    if openai_rules and voice not in VOICES:
        raise invalid_value("audio.voice", voice, VOICES)
    return voice


def check_needs_audio(model: str, output: AudioOutput | None, heard: bool) -> None:
    """An audio model asked neither to hear nor to speak: the API's 400, as apps listing every
    model met it (CherryHQ/cherry-studio#1179; its param and code in truefoundry/models#822)."""
    if output is None and not heard and takes_audio(model):
        raise ApiError(
            400,
            "This model requires that either input content or output modality contain audio.",
            param="model",
            code="invalid_value",
        )


def input_tokens(messages: Any) -> int:
    """The audio tokens of the recordings in the messages' `input_audio` parts (0: none)."""
    total = 0
    for message in messages if type(messages) is list else ():
        content = message.get("content") if type(message) is dict else None
        for part in content if type(content) is list else ():
            if type(part) is dict and part.get("type") == "input_audio":
                sound = part.get("input_audio")
                data = sound.get("data") if type(sound) is dict else None
                if isinstance(data, str):
                    total += math.ceil(_seconds(data) * INPUT_TOKENS_PER_SECOND)
    return total


def _seconds(data: str) -> float:
    """How long a base64 recording lasts (guessed from its size when it does not decode)."""
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return len(data) * 3 / 4 / _GUESSED_BYTES_PER_SECOND
    from mockai.generate import audio  # (with the first recording: a plain server never does)

    seconds = audio.probe(raw) if raw else None
    return seconds if seconds is not None else len(raw) / _GUESSED_BYTES_PER_SECOND


@dataclass(frozen=True, slots=True)
class Spoken:
    """One choice's answer in audio: the `message.audio` fields and its audio tokens."""

    id: str
    data: bytes  # encoded in the format asked
    expires_at: int
    transcript: str
    tokens: int

    def as_json(self) -> dict[str, Any]:
        """The message's `audio` object."""
        return {
            "id": self.id,
            "data": base64.b64encode(self.data).decode("ascii"),
            "expires_at": self.expires_at,
            "transcript": self.transcript,
        }

    def deltas(self, pieces: tuple[str, ...]) -> list[dict[str, Any]]:
        """The `delta.audio` objects that stream it: the id with the first piece of transcript,
        the transcript (`pieces`) and the sound in pieces side by side, then `expires_at`."""
        sound = [
            base64.b64encode(self.data[at : at + STREAM_PIECE]).decode("ascii")
            for at in range(0, len(self.data), STREAM_PIECE)
        ]
        out: list[dict[str, Any]] = [{"id": self.id, "transcript": pieces[0] if pieces else ""}]
        for step in range(max(len(pieces), len(sound))):
            if 0 < step < len(pieces):
                out.append({"transcript": pieces[step]})
            if step < len(sound):
                out.append({"data": sound[step]})
        out.append({"expires_at": self.expires_at})
        return out


def speak(
    transcript: str,
    output: AudioOutput,
    media: Media | None,
    key: bytes,
    index: int,
    created: int,
    choices: int = 1,
) -> Spoken:
    """Choice `index` of `choices`' answer said aloud (`key`: the request's, for the id;
    `media`: a rule's sound, else one drawn from the transcript, so that the same words sound
    the same streamed or not), up to its share of `SPOKEN_CHARACTERS`."""
    from mockai.api.speech import AUDIO_TOKENS_PER_SECOND
    from mockai.generate import audio  # (with the first answer in audio)

    said = transcript[: max(SPOKEN_CHARACTERS // max(choices, 1), 1)]
    if media is None:
        seed = hashlib.blake2b(said.encode(), digest_size=8).digest()
        media = Media(seed=int.from_bytes(seed, "big"))
    pcm = audio.speech(said, output.voice, 1.0, media)
    data = audio.encode(pcm, _ENCODED.get(output.format, output.format))
    return Spoken(
        id="audio_" + ids.hexid(key, f"audio{index}", 32),
        data=data,
        expires_at=created + EXPIRES_IN,
        transcript=transcript,
        tokens=math.ceil(audio.seconds_of(pcm) * AUDIO_TOKENS_PER_SECOND),
    )
