"""Invariants of the media codecs over arbitrary input.

- Forms: the SDK's form encoding of typed parameters, typed back, is the JSON body.
- Transcripts: for any text and recording length, words and segments are in order, inside the
  recording, end exactly at its end, and say the text; subtitles carry the same text.
- Pictures: any size a model accepts decodes at that size, in the format asked.
- Speech: the audio's length grows with the text and shrinks with the speed.
"""

from __future__ import annotations

import io
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from openai._qs import Querystring
from PIL import Image

from mockai.api import forms, transcriptions
from mockai.generate import audio, images, transcript
from mockai.pipeline.reply import Media
from mockai.wire import multipart

WORDS = st.text(alphabet="abcdefghij", min_size=1, max_size=9)
SENTENCES = st.lists(WORDS, min_size=1, max_size=12).map(lambda w: " ".join(w) + ".")
TEXTS = st.lists(SENTENCES, min_size=1, max_size=6).map(" ".join)


def _sdk_form(value: dict[str, Any]) -> dict[str, Any]:
    """`value` as the SDK sends it in a multipart form, then split back by the parser."""
    items = Querystring().stringify_items(value, array_format="brackets")
    return multipart.fields(multipart.Part(name, text.encode()) for name, text in items)


@settings(max_examples=60)
@given(
    n=st.integers(1, 10),
    temperature=st.floats(0, 1, allow_nan=False).map(lambda t: round(t, 3)),
    stream=st.booleans(),
    granularities=st.lists(st.sampled_from(["word", "segment"]), max_size=2, unique=True),
    language=st.sampled_from(["en", "de", "fr"]),
)
def test_form_fields_type_back_to_the_json_body(
    n: int, temperature: float, stream: bool, granularities: list[str], language: str
) -> None:
    body = {
        "model": "whisper-1",
        "temperature": temperature,
        "stream": stream,
        "language": language,
        "response_format": "verbose_json",
    }
    if granularities:
        body["timestamp_granularities"] = granularities
    assert forms.typed("transcriptions", _sdk_form(body)) == body
    images_body = {"prompt": "x", "n": n, "stream": stream, "model": "gpt-image-1"}
    assert forms.typed("image_edits", _sdk_form(images_body)) == images_body
    expiring = {"purpose": "batch", "expires_after": {"anchor": "created_at", "seconds": 3600 + n}}
    assert forms.typed("files", _sdk_form(expiring)) == expiring


@settings(max_examples=150)
@given(text=TEXTS, seconds=st.floats(0.5, 600, allow_nan=False))
def test_transcript_timing_covers_the_recording(text: str, seconds: float) -> None:
    words = transcript.words(text, seconds)
    segments = transcript.segments(text, seconds)
    for timed in (words, segments):
        starts = [t.start for t in timed]
        assert starts == sorted(starts) and starts[0] == 0.0
        assert all(t.start <= t.end for t in timed)
        assert timed[-1].end == round(seconds, 2)
    assert [w.text for w in words] == re.findall(r"[a-j]+", text)
    assert " ".join(s.text for s in segments) == text
    # Subtitles carry the same text, cue by cue.
    for srt in (True, False):
        cues = transcriptions._subtitles(text, seconds, srt=srt)
        lines = [
            line
            for line in cues.splitlines()
            if line and "-->" not in line and not line.isdigit() and line != "WEBVTT"
        ]
        assert " ".join(lines) == text


@settings(max_examples=12, deadline=None)
@given(
    width=st.integers(64, 300),
    height=st.integers(64, 300),
    fmt=st.sampled_from(["png", "jpeg", "webp"]),
    seed=st.integers(0, 2**32),
)
def test_any_size_decodes_at_that_size(width: int, height: int, fmt: str, seed: int) -> None:
    canvas = images.Canvas(width, height, fmt)
    data = images.encode(images.picture(Media(seed=seed), canvas, "a prompt", 0), canvas)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.size == (width, height)
    assert decoded.format == images.FORMATS[fmt]


@settings(max_examples=25, deadline=None)
@given(text=TEXTS, more=SENTENCES, speed=st.sampled_from([0.5, 1.0, 2.0, 4.0]))
def test_speech_grows_with_the_text_and_shrinks_with_the_speed(
    text: str, more: str, speed: float
) -> None:
    def length(words: str, rate: float = 1.0) -> float:
        return audio.seconds_of(audio.speech(words, "alloy", rate, Media(seed=1)))

    assert length(text + " " + more) > length(text)
    assert length(text, speed) <= length(text) / speed + audio.MIN_SECONDS
