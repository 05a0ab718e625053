"""Transcriptions: what the hunt found answered wrongly, through the real SDK and httpx.

- A transcript is cut into sentences only where a stop is followed by a space (or the end):
  `3.5`, `$1.25` and `www.example.com` stay whole in cues, segments, words and speakers.
- Logprobs and verbose_json segment numbers are the same on every repeat of a request.
- The transcript does not depend on the Content-Type the client guessed for the upload.
- `--strict-requests` refuses unknown `include` items and `chunking_strategy` values.
- A rule's scripted `usage` keeps `input_token_details` adding up to `input_tokens`.
- A form number past a double (`temperature=1e400`) is the field's invalid_type, not infinity
  (whose journal entry made every journal read a 500).
- An empty transcript has no subtitle cue, segment or word (not an empty cue).
"""

from __future__ import annotations

import io
import json
import re
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from conformance import checked_server
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai import MockServer
from mockai.api import transcriptions
from mockai.generate import transcript
from mockai.pipeline import fingerprint
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Reply

NUMBERS = "Revenue grew 3.5 percent to $1.25 million. See www.example.com for details."
SENTENCES = ["Revenue grew 3.5 percent to $1.25 million.", "See www.example.com for details."]
MADE_UP = bytes(range(256)) * 250  # 64,000 bytes that are no recording: taken as 4 seconds
PUNCTUATION = ".,!?;:\"'"


def silence(seconds: float = 1.0) -> bytes:
    """A WAV file of silence: a recording strict mode can read."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
        writer.writeframes(b"\0\0" * int(16_000 * seconds))
    return out.getvalue()


@pytest.fixture(scope="module")
def audio_server() -> Iterator[MockServer]:
    """One lenient server for the module, with the hunt's two scripted transcripts (and
    generated ones for other files)."""
    with checked_server(fallback="generate") as server:
        server.add_rule(
            {
                "match": {"endpoint": "transcriptions", "file": {"endswith": "q3.mp3"}},
                "reply": NUMBERS,
            }
        )
        server.add_rule(
            {
                "match": {"endpoint": "transcriptions", "file": {"endswith": "usage.mp3"}},
                "reply": {
                    "content": "Scripted usage.",
                    "usage": {"input_tokens": 7, "output_tokens": 3},
                },
            }
        )
        yield server


@pytest.fixture(scope="module")
def sdk(audio_server: MockServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=audio_server.url, api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def strict_sdk() -> Iterator[openai.OpenAI]:
    with (
        checked_server(strict_requests=True) as strict,
        openai.OpenAI(base_url=strict.url, api_key="sk-test", max_retries=0) as client,
    ):
        yield client


# --- 1. sentences ---------------------------------------------------------------------------------


def test_subtitles_cut_a_transcript_at_its_sentences_not_inside_numbers(
    sdk: openai.OpenAI,
) -> None:
    srt = sdk.audio.transcriptions.create(
        model="whisper-1", file=("q3.mp3", MADE_UP), response_format="srt"
    )
    cues = [block.splitlines()[2] for block in str(srt).strip().split("\n\n")]
    assert cues == SENTENCES
    vtt = sdk.audio.transcriptions.create(
        model="whisper-1", file=("q3.mp3", MADE_UP), response_format="vtt"
    )
    assert [line for line in str(vtt).splitlines() if line in SENTENCES] == SENTENCES


def test_segments_words_and_speakers_keep_numbers_whole(sdk: openai.OpenAI) -> None:
    verbose = sdk.audio.transcriptions.create(
        model="whisper-1",
        file=("q3.mp3", MADE_UP),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert [segment.text for segment in verbose.segments or []] == [" " + s for s in SENTENCES]
    words = [word.word for word in verbose.words or []]
    assert words[:7] == ["Revenue", "grew", "3.5", "percent", "to", "$1.25", "million"]
    assert "www.example.com" in words
    diarized = sdk.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=("q3.mp3", MADE_UP),
        response_format="diarized_json",
        chunking_strategy="auto",
    )
    assert diarized.text == f"A: {SENTENCES[0]}\nB: {SENTENCES[1]}"


def test_streamed_diarized_segments_are_the_sentences(audio_server: MockServer) -> None:
    response = httpx.post(
        audio_server.url + "/audio/transcriptions",
        data={
            "model": "gpt-4o-transcribe-diarize",
            "response_format": "diarized_json",
            "chunking_strategy": "auto",
            "stream": "true",
        },
        files={"file": ("q3.mp3", MADE_UP)},
        timeout=10,
    )
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line[:6] == "data: "]
    segments = [e["text"] for e in events if e["type"] == "transcript.text.segment"]
    assert segments == SENTENCES
    deltas = "".join(e["delta"] for e in events if e["type"] == "transcript.text.delta")
    assert deltas == NUMBERS


# Text with stops in and between words, spaces of any kind, and any other character.
TEXTS = st.lists(
    st.one_of(
        st.sampled_from([".", "!", "?", "...", " ", "  ", "\n", "\u00a0", "3.5", "$1.25", "a.b"]),
        st.text(max_size=6),
    ),
    max_size=20,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_sentences_add_up_to_the_text_and_end_only_at_a_space(text: str) -> None:
    pieces = transcript.sentences(text)
    assert "".join(pieces) == text
    assert all(pieces)
    for piece in pieces[:-1]:  # (the last ends where the text does)
        assert piece[-1].isspace() and re.search(r"[.!?]\s+$", piece)


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.floats(min_value=1.0, max_value=600.0))
def test_segments_are_whole_tokens_and_words_are_the_texts_words(text: str, seconds: float) -> None:
    segments = transcript.segments(text, seconds)
    # Joined with the whitespace between them, the segments are the text (stripped).
    assert re.sub(r"\s+", " ", " ".join(s.text for s in segments)) == re.sub(
        r"\s+", " ", text.strip()
    )
    at = 0
    for segment in segments:  # no segment ends inside a token without whitespace
        found = text.index(segment.text, at) if segment.text else at
        at = found + len(segment.text)
        assert at == len(text) or text[at].isspace()
    if text.strip():
        assert segments[-1].end == round(seconds, 2)
    else:  # (nothing said: no segment, as Whisper's)
        assert segments == []
    expected = [word.strip(PUNCTUATION) for word in text.split()]
    assert [w.text for w in transcript.words(text, seconds)] == [w for w in expected if w]


# --- 2. the same numbers on every repeat ---------------------------------------------------------


def test_logprobs_are_the_same_on_every_repeat_streamed_or_not(sdk: openai.OpenAI) -> None:
    def asked(**more: Any) -> Any:
        return sdk.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=("hello.mp3", MADE_UP), include=["logprobs"], **more
        )

    first, second = asked(), asked()
    sdk.audio.transcriptions.create(model="gpt-4o-transcribe", file=("other.mp3", b"other"))
    third = asked()
    assert first.logprobs and first.logprobs == second.logprobs == third.logprobs
    streams = [list(asked(stream=True)) for _ in range(2)]
    assert streams[0] == streams[1]
    # The stream's numbers are the JSON answer's (the SDK types their `bytes` differently).
    assert [(p.token, p.logprob) for p in streams[0][-1].logprobs] == [
        (p.token, p.logprob) for p in first.logprobs
    ]


def test_verbose_segments_are_the_same_on_every_repeat(sdk: openai.OpenAI) -> None:
    def verbose() -> list[Any]:
        answer = sdk.audio.transcriptions.create(
            model="whisper-1",
            file=("x.mp3", MADE_UP, "audio/mpeg"),
            response_format="verbose_json",
            language="de",
        )
        return [segment.model_dump() for segment in answer.segments or []]

    first = verbose()
    sdk.audio.transcriptions.create(model="whisper-1", file=("y.mp3", b"else"))
    assert first and first == verbose() == verbose()


# --- 3. the declared type does not count -------------------------------------------------------


@pytest.mark.parametrize("model", ["whisper-1", "gpt-4o-transcribe"])
def test_the_transcript_does_not_depend_on_the_declared_type(
    audio_server: MockServer, model: str
) -> None:
    texts = set()
    for declared in ("audio/mpeg", "application/octet-stream", "audio/mp3"):
        response = httpx.post(
            audio_server.url + "/audio/transcriptions",
            data={"model": model},
            files={"file": ("typed.mp3", MADE_UP, declared)},
            timeout=10,
        )
        texts.add(response.json()["text"])
    assert len(texts) == 1
    # (The journal still shows what the client declared.)
    declared_types = {
        entry.kept_body["file"]["content_type"]
        for entry in audio_server.requests
        if entry.kept_body and entry.kept_body.get("file", {}).get("filename") == "typed.mp3"
    }
    assert declared_types == {"audio/mpeg", "application/octet-stream", "audio/mp3"}


def _summary(content_type: str, sha: str) -> dict[str, Any]:
    return {"filename": "a.mp3", "content_type": content_type, "bytes": 3, "sha256": sha}


@settings(max_examples=100, deadline=None)
@given(
    st.text(max_size=30),
    st.text(max_size=30),
    st.sampled_from(["transcriptions", "translations", "image_edits", "image_variations"]),
)
def test_request_keys_ignore_an_uploads_declared_type(first: str, second: str, kind: str) -> None:
    def keys(content_type: str, sha: str = "ab") -> tuple[bytes, bytes]:
        upload = _summary(content_type, sha)  # (a file field, and a list of them: `image[]`)
        body = {"model": "m", "file": upload, "image": [upload], "response_format": "json"}
        return fingerprint.request_keys(0, kind, body)

    assert keys(first) == keys(second)
    assert keys(first)[0] != keys(first, sha="cd")[0]  # the bytes still count


# --- 4. strict include and chunking_strategy -----------------------------------------------------


@pytest.mark.parametrize(
    ("more", "message", "param", "code"),
    [
        (
            {"include": ["logprob"]},
            "Invalid value: 'logprob'. Supported values are: 'logprobs'.",
            "include[0]",
            "invalid_value",
        ),
        (
            {"chunking_strategy": "automatic"},
            "Invalid value: 'automatic'. Supported values are: 'auto'.",
            "chunking_strategy",
            "invalid_value",
        ),
        (
            {"chunking_strategy": {"type": "client_vad", "threshold": 7}},
            "Invalid value: 'client_vad'. Supported values are: 'server_vad'.",
            "chunking_strategy.type",
            "invalid_value",
        ),
        (
            {"chunking_strategy": {"type": "server_vad", "loudness": 3}},
            "Unknown parameter: 'chunking_strategy.loudness'.",
            "chunking_strategy.loudness",
            "unknown_parameter",
        ),
        (
            {"chunking_strategy": {"threshold": 0.5}},
            "Missing required parameter: 'chunking_strategy.type'.",
            "chunking_strategy.type",
            "missing_required_parameter",
        ),
        (
            {"chunking_strategy": {"type": "server_vad", "threshold": "high"}},
            (
                "Invalid type for 'chunking_strategy.threshold': expected a decimal, but got a "
                "string instead."
            ),
            "chunking_strategy.threshold",
            "invalid_type",
        ),
        (
            {"chunking_strategy": {"type": "server_vad", "silence_duration_ms": 0.5}},
            (
                "Invalid type for 'chunking_strategy.silence_duration_ms': expected an integer, "
                "but got a string instead."
            ),
            "chunking_strategy.silence_duration_ms",
            "invalid_type",
        ),
    ],
)
def test_strict_refuses_unknown_include_items_and_chunking_strategies(
    strict_sdk: openai.OpenAI, more: dict[str, Any], message: str, param: str, code: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        strict_sdk.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=("a.wav", silence()), **more
        )
    assert refused.value.body == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }


@pytest.mark.parametrize(
    "more",
    [
        {"include": ["logprobs"]},
        {"chunking_strategy": "auto"},
        {
            "chunking_strategy": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
            }
        },
        {"chunking_strategy": {"type": "server_vad", "threshold": 1}},
    ],
)
def test_strict_takes_the_specs_include_and_chunking_strategies(
    strict_sdk: openai.OpenAI, more: dict[str, Any]
) -> None:
    answer = strict_sdk.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("a.wav", silence()), **more
    )
    assert answer.text


# --- 5. scripted usage ---------------------------------------------------------------------------


def test_scripted_input_tokens_are_what_the_details_add_up_to(audio_server: MockServer) -> None:
    def usage(**data: str) -> Any:
        return httpx.post(
            audio_server.url + "/audio/transcriptions",
            data={"model": "gpt-4o-transcribe", **data},
            files={"file": ("usage.mp3", MADE_UP)},
            timeout=10,
        ).json()["usage"]

    assert usage() == {
        "type": "tokens",
        "input_tokens": 7,
        "input_token_details": {"text_tokens": 0, "audio_tokens": 7},
        "output_tokens": 3,
        "total_tokens": 10,
    }
    prompted = usage(prompt="A long prompt about quarterly revenue and its many parts")
    assert prompted["input_token_details"] == {"text_tokens": 7, "audio_tokens": 0}


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), st.integers(0, 10**6)),
    st.integers(0, 10**4),
    st.floats(min_value=0.0, max_value=7200.0),
)
def test_usage_details_add_up_to_the_input_tokens(
    scripted: int | None, prompt_tokens: int, seconds: float
) -> None:
    reply = Reply(usage=None if scripted is None else {"input_tokens": scripted})
    exchange = Exchange(
        endpoint=Endpoint.TRANSCRIPTIONS,
        model="gpt-4o-transcribe",
        body={},
        headers={},
        prompt_tokens=prompt_tokens,
    )
    usage = transcriptions._usage(reply, exchange, "Some text.", seconds)
    details = usage["input_token_details"]
    assert min(details.values()) >= 0
    assert details["text_tokens"] + details["audio_tokens"] == usage["input_tokens"]
    if scripted is not None:
        assert usage["input_tokens"] == scripted


# --- 6. numbers a double cannot hold ---------------------------------------------------------------


@pytest.mark.parametrize("temperature", ["1e400", "-1e400"])
def test_a_form_number_past_a_double_is_refused_and_the_journal_reads(
    server: MockServer, temperature: str
) -> None:
    """`temperature=1e400` in a form had been read as infinity: answered 200, and its journal
    entry then made every read of the journal a 500. It is the field's invalid_type now, as the
    same number in a JSON body is refused."""
    answer = httpx.post(
        server.url + "/audio/transcriptions",
        files={"file": ("a.wav", silence(), "audio/wav")},
        data={"model": "whisper-1", "temperature": temperature},
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == "temperature"
    assert answer.json()["error"]["code"] == "invalid_type"
    journal = httpx.get(server.url_for("/_mockai/journal"), timeout=10)
    assert journal.status_code == 200, journal.text


# --- 7. an empty transcript ------------------------------------------------------------------------


def test_an_empty_transcript_has_no_cue_and_no_segment(server: MockServer) -> None:
    """A scripted empty transcript (a recording of silence) is subtitled with no cue and has no
    segment or word: it had an SRT / WebVTT cue with no text (which subtitle parsers refuse) and
    a segment of one space."""
    server.add_rule({"match": {"endpoint": "transcriptions"}, "reply": ""})
    with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client:

        def transcribe(fmt: Any, **extra: Any) -> Any:
            return client.audio.transcriptions.create(
                model="whisper-1",
                file=("silence.wav", silence(2.0)),
                response_format=fmt,
                **extra,
            )

        assert transcribe("srt") == ""
        assert transcribe("vtt") == "WEBVTT\n\n"
        verbose = transcribe("verbose_json", timestamp_granularities=["word", "segment"])
        assert verbose.text == "" and verbose.segments == [] and verbose.words == []
        assert verbose.duration == 2.0
        diarized = client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize",
            file=("silence.wav", silence(2.0)),
            response_format="diarized_json",
            chunking_strategy="auto",
        )
        assert diarized.text == "" and diarized.segments == []
