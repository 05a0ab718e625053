"""Sound for the audio endpoints: speech that lasts as long as its text, in every format asked.

Speech is synthesised as the rhythm of the text, not its words: one short voiced tone per
syllable (pitch from the voice and the seed), a gap between words and a pause at punctuation,
all at the requested speed, 24 kHz mono like the API's. So the audio decodes everywhere, its
duration follows the input (~15 characters a second at speed 1), and the same request gives the
same bytes. A rule may give a sound file instead (decoded and re-encoded as asked) or a duration.

Encoding uses PyAV (FFmpeg's libraries, bundled in its wheels for every platform): MP3 (LAME),
Opus in Ogg, AAC in ADTS, FLAC; WAV and raw PCM are written with the standard library. Every
encoder runs bit-exact (no version strings, fixed Ogg serials): same input, same bytes. PyAV is
imported on first use, off the event loop.
"""

from __future__ import annotations

import array
import functools
import io
import math
import random
import re
import wave
from collections.abc import Sequence
from types import ModuleType

from mockai.errors import ApiError
from mockai.pipeline.reply import Media

RATE = 24_000  # samples per second, mono, 16-bit: what the API's speech is made of
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
# (container, codec) per format encoded through PyAV.
_CODECS = {
    "mp3": ("mp3", "libmp3lame"),
    "opus": ("ogg", "libopus"),
    "aac": ("adts", "aac"),
    "flac": ("flac", "flac"),
}
# The encoders' fastest settings (2-2.5x faster for MP3 and Opus): the audio is decoded by
# tests, not listened to. Bit-exact: no version strings, fixed Ogg serials, the same bytes.
_FAST = {
    "mp3": {"compression_level": "9"},
    "opus": {"compression_level": "0"},
    "aac": {"aac_coder": "fast"},
    "flac": {},
}
SYLLABLE = 0.17  # seconds, at speed 1
WORD_GAP = 0.07
PAUSE = 0.3  # after . , ; : ! ?
MIN_SECONDS = 0.3
# The longest sound a rule may ask for (`duration`, or a file): a bound on what one request
# makes. The API's own longest speech is 4,096 characters at speed 0.25, about 18 minutes.
MAX_SECONDS = 20 * 60
_WORD = re.compile(r"[^\W_]+|[.,;:!?]", re.UNICODE)


def av_module() -> ModuleType:
    """PyAV, imported on first use; a clear error when it is missing."""
    try:
        import av
    except ImportError:  # pragma: no cover - PyAV is a dependency; a broken install
        raise ApiError(
            500,
            "mockai: encoding and decoding audio needs PyAV, which is not installed "
            "(pip install av, or reinstall mockai-server)",
            type="server_error",
            code="mockai_missing_dependency",
        ) from None
    return av


# --- speech -------------------------------------------------------------------------------------


def speech(text: str, voice: str, speed: float, media: Media) -> bytes:
    """The request's speech as 16-bit PCM samples (RATE, mono)."""
    if media.path is not None:
        return _trimmed(decode_file(media.path), media.duration)
    if media.duration is not None:
        return _trimmed(_tones_for(_filler(media.duration), voice, 1.0, media.seed), media.duration)
    return _tones_for(text, voice, speed, media.seed)


def seconds_of(pcm: bytes) -> float:
    """How long PCM samples last."""
    return len(pcm) / 2 / RATE


def _samples(seconds: float) -> int:
    return round(seconds * RATE)


def _filler(seconds: float) -> str:
    # Words enough to fill `seconds` at speed 1 (cut to length afterwards).
    return "la " * (int(seconds / (SYLLABLE + WORD_GAP)) + 2)


def _trimmed(pcm: bytes, seconds: float | None) -> bytes:
    if seconds is None:
        return pcm
    wanted = _samples(seconds) * 2
    return pcm[:wanted] + bytes(max(wanted - len(pcm), 0))


def _tones_for(text: str, voice: str, speed: float, seed: int) -> bytes:
    bank = _bank(_pitch(voice), speed)
    silence_gap = bytes(_samples(WORD_GAP / speed) * 2)
    pause = bytes(_samples(PAUSE / speed) * 2)
    rng = random.Random(seed)
    out: list[bytes] = []
    for token in _WORD.findall(text):
        if not token[0].isalnum():
            out.append(pause)
            continue
        syllables = _syllables(token)
        out.extend(bank[rng.randrange(len(bank))] for _ in range(min(syllables, 8)))
        out.append(silence_gap)
    pcm = b"".join(out)
    return pcm + bytes(max(_samples(MIN_SECONDS) * 2 - len(pcm), 0))


def _syllables(word: str) -> int:
    vowels = sum(1 for ch in word.lower() if ch in "aeiouy")
    return max(1, vowels or round(len(word) / 3))


def _pitch(voice: str) -> float:
    """A base pitch per voice (Hz), so that voices sound apart."""
    return 95.0 + (sum(voice.encode()) % 12) * 12.0


@functools.lru_cache(maxsize=64)
def _bank(base: float, speed: float) -> tuple[bytes, ...]:
    """Syllables for one voice and speed: voiced tones at a few pitches, each with an attack
    and a decay (built once, then joined: the joining is what a request costs)."""
    count = _samples(SYLLABLE / speed)
    out = []
    for step in (1.0, 9 / 8, 5 / 4, 4 / 3, 3 / 2, 5 / 3):
        frequency = base * step
        samples = array.array("h")
        for i in range(count):
            t = i / RATE
            envelope = min(1.0, i / (0.02 * RATE)) * min(1.0, (count - i) / (0.05 * RATE))
            wave_ = (
                math.sin(2 * math.pi * frequency * t)
                + 0.5 * math.sin(4 * math.pi * frequency * t)
                + 0.25 * math.sin(6 * math.pi * frequency * t)
            )
            samples.append(int(7000 * envelope * wave_))
        out.append(samples.tobytes() if _little_endian() else _swapped(samples))
    return tuple(out)


def _little_endian() -> bool:
    import sys

    return sys.byteorder == "little"


def _swapped(samples: array.array[int]) -> bytes:
    samples.byteswap()
    return samples.tobytes()


# --- encoding -----------------------------------------------------------------------------------


def encode(pcm: bytes, fmt: str) -> bytes:
    """PCM samples in a response format: mp3, opus, aac, flac, wav or pcm."""
    if fmt == "pcm":
        return pcm
    if fmt == "wav":
        out = io.BytesIO()
        with wave.open(out, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(RATE)
            writer.writeframes(pcm)
        return out.getvalue()
    av = av_module()
    container_format, codec = _CODECS[fmt]
    out = io.BytesIO()
    with av.open(out, "w", format=container_format, options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(
            codec, rate=RATE, layout="mono", options={"flags": "+bitexact", **_FAST[fmt]}
        )
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        frame.planes[0].update(pcm)
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def chunks(data: bytes, size: int = 8192) -> list[bytes]:
    """Encoded audio cut into pieces for a stream (`speech.audio.delta` events)."""
    return [data[start : start + size] for start in range(0, len(data), size)] or [b""]


# --- decoding -----------------------------------------------------------------------------------


def probe(data: bytes) -> float | None:
    """How long an uploaded recording lasts (seconds), or None when it does not decode.

    Counted from the packets' durations (demuxing, no decoding): a header's estimate is wrong
    for ADTS and variable-rate MP3s.
    """
    av = av_module()
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            ticks = 0
            for packet in container.demux(stream):
                ticks += packet.duration or 0
            if ticks and stream.time_base is not None:
                return float(ticks * stream.time_base)
            if container.duration is not None and container.duration > 0:
                return float(container.duration) / 1_000_000  # AV_TIME_BASE
            return None
    except Exception:
        return None


def decode_file(path: str) -> bytes:
    """A sound file as PCM samples (RATE, mono, 16-bit), at most MAX_SECONDS long."""
    av = av_module()
    try:
        with av.open(path) as container:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            parts: list[bytes] = []
            size, limit = 0, _samples(MAX_SECONDS) * 2
            for frame in container.decode(audio=0):
                for converted in resampler.resample(frame):
                    data = bytes(converted.planes[0])[: converted.samples * 2]
                    parts.append(data)
                    size += len(data)
                if size >= limit:
                    break
            for converted in resampler.resample(None):
                parts.append(bytes(converted.planes[0])[: converted.samples * 2])
    except Exception as error:
        raise ApiError(
            500,
            f"mockai: the rule's audio file {path} cannot be decoded: {error}",
            type="server_error",
            code="mockai_bad_fixture",
        ) from None
    return b"".join(parts)[: _samples(MAX_SECONDS) * 2]


def check_sound_file(path: str) -> None:
    """A sound file a rule names must exist and hold audio (ValueError says why)."""
    import os

    if not os.path.isfile(path):
        raise ValueError(f"{path} does not exist")
    with open(path, "rb") as handle:
        duration = probe(handle.read())
    if duration is None:
        raise ValueError(f"{path} is not a sound file PyAV can decode")


def durations(words: Sequence[str]) -> list[float]:
    """Seconds per word at speed 1 (for transcripts' word timestamps)."""
    return [min(_syllables(word), 8) * SYLLABLE + WORD_GAP for word in words]
