"""Transcripts of uploaded recordings: as long as the recording, timed like Whisper's.

The recording's length is read from the upload (PyAV demuxes it; nothing is decoded); an upload
that is not a recording mockai can read (tests often send a few made-up bytes) is taken to last
as long as that many bytes of 128 kbps MP3 would, at least a second. A generated transcript has
~2.5 words per second of it. Segments are the transcript's sentences and words its words, their
times spread over the recording in proportion to their length: scripted transcripts get the same
timing, so `verbose_json` always adds up to the recording's duration.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from mockai.generate import audio, prose
from mockai.pipeline.exchange import Exchange

WORDS_PER_SECOND = 2.5
BYTES_PER_SECOND = 16_000  # 128 kbps: what an unreadable upload is taken to be
MAX_WORDS = 20_000  # a 25 MB upload read as 2 hours of speech must not make a novel
# A sentence ends at its stops and the space after them: a stop inside a word ("3.5", "$1.25",
# "www.example.com") ends nothing.
_SENTENCE_END = re.compile(r"[.!?]+\s+")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class Timed:
    """A piece of the transcript and when it is said (seconds from the start)."""

    text: str
    start: float
    end: float


def duration(exchange: Exchange) -> float:
    """How long the uploaded recording lasts (seconds)."""
    if not exchange.uploads:
        return 1.0
    upload = exchange.uploads[0]
    found = _probe(upload.digest, upload.data)
    if found is not None:
        return found
    return max(len(upload.data) / BYTES_PER_SECOND, 1.0)


def readable(exchange: Exchange) -> bool:
    """Whether the upload decodes as a recording (strict servers refuse the others)."""
    return bool(exchange.uploads) and (
        _probe(exchange.uploads[0].digest, exchange.uploads[0].data) is not None
    )


_LENGTHS: dict[str, float | None] = {}  # by the upload's digest (never holding its bytes)


def _probe(digest: str, data: bytes) -> float | None:
    # Cached: the generator and the render ask for the same upload's length.
    if digest not in _LENGTHS:
        if len(_LENGTHS) >= 256:
            _LENGTHS.pop(next(iter(_LENGTHS)))
        _LENGTHS[digest] = audio.probe(data)
    return _LENGTHS[digest]


def text(exchange: Exchange, rng: random.Random) -> str:
    """A generated transcript as long as the recording."""
    words = min(max(round(duration(exchange) * WORDS_PER_SECOND), 1), MAX_WORDS)
    out: list[str] = []
    total = 0
    while total < words:
        sentence = prose.sentences(rng, 1)
        count = len(sentence.split())
        if total + count > words:
            sentence = " ".join(sentence.split()[: words - total]).rstrip(".,") + "."
            count = words - total
        out.append(sentence)
        total += count
    return " ".join(out)


def sentences(transcript: str) -> list[str]:
    """The transcript cut after each sentence's stops and the space after them: the pieces, in
    order, add up to the transcript exactly."""
    pieces: list[str] = []
    start = 0
    for stop in _SENTENCE_END.finditer(transcript):
        pieces.append(transcript[start : stop.end()])
        start = stop.end()
    if start < len(transcript):
        pieces.append(transcript[start:])
    return pieces


def segments(transcript: str, seconds: float) -> list[Timed]:
    """The transcript's sentences, timed over `seconds` (none for an empty transcript, as
    Whisper has no segment where nothing is said: an empty cue is no valid subtitle)."""
    found = [piece.strip() for piece in sentences(transcript) if piece.strip()]
    return _spread(found, 0.0, seconds)


def words(transcript: str, seconds: float) -> list[Timed]:
    """The transcript's words (punctuation stripped, as Whisper's word timestamps), timed."""
    found = []
    for segment in segments(transcript, seconds):
        pieces = [w.strip(".,!?;:\"'") for w in _WORD.findall(segment.text)]
        pieces = [piece for piece in pieces if piece]
        found.extend(_spread(pieces, segment.start, segment.end))
    return found


def _spread(pieces: list[str], start: float, end: float) -> list[Timed]:
    weights = [max(len(piece), 1) for piece in pieces]
    total = sum(weights) or 1
    out: list[Timed] = []
    at = start
    for piece, weight in zip(pieces, weights, strict=True):
        length = (end - start) * weight / total
        out.append(Timed(piece, round(at, 2), round(at + length, 2)))
        at += length
    if out:
        last = out[-1]
        out[-1] = Timed(last.text, last.start, round(end, 2))
    return out
