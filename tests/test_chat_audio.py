"""Chat completions in audio, through the real SDKs: `modalities: ["text", "audio"]` answers with
`message.audio` (speech of its transcript, decoded with PyAV), streamed as `delta.audio` pieces,
billed in audio tokens; recordings in `input_audio` parts billed too; the API's 400s."""

from __future__ import annotations

import base64
import io
import math
import wave
from typing import Any

import av
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from node_clients import run_script

from mockai import MockServer, tokens
from mockai.api.chat_audio import STREAM_PIECE, Spoken

MODEL = "gpt-4o-audio-preview"
ASK = [{"role": "user", "content": "Is a golden retriever a good family dog?"}]


def spoken(**body: Any) -> dict[str, Any]:
    """A request for an answer in audio (wav unless `audio` says otherwise)."""
    return {
        "model": MODEL,
        "messages": ASK,
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "wav"},
        **body,
    }


def seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


def wav(duration: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(24_000)
        writer.writeframes(bytes(int(duration * 24_000) * 2))
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "container"),
    [
        ("wav", "wav"),
        ("mp3", "mp3"),
        ("flac", "flac"),
        ("opus", "ogg"),
        ("aac", "aac"),
        ("pcm16", None),
    ],
)
def test_an_answer_in_audio_is_speech_of_its_transcript_in_the_format_asked(
    client: openai.OpenAI, fmt: Any, container: str | None
) -> None:
    completion = client.chat.completions.create(**spoken(audio={"voice": "coral", "format": fmt}))
    message = completion.choices[0].message
    # The SDK's own type: content null, the text in the audio's transcript.
    assert message.content is None
    assert message.audio is not None
    assert message.audio.id.startswith("audio_")
    assert message.audio.expires_at == completion.created + 3600
    transcript = message.audio.transcript
    assert transcript
    data = base64.b64decode(message.audio.data)
    if container is None:  # raw 24 kHz 16-bit mono
        length = len(data) / 2 / 24_000
    else:
        with av.open(io.BytesIO(data)) as opened:
            assert opened.format.name == container
        length = seconds(data)
    # As long as speech of the transcript (~15 characters a second).
    assert 0.3 < length < len(transcript) / 15 * 2 + 1
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None
    said = usage.completion_tokens_details.audio_tokens
    assert said == math.ceil(length * 20) or abs(said - length * 20) <= 2  # (codec padding)
    assert usage.completion_tokens == tokens.count(transcript) + said
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_the_stream_spreads_the_audio_over_deltas_the_sdk_joins(client: openai.OpenAI) -> None:
    body = spoken(audio={"voice": "alloy", "format": "pcm16"})
    whole = client.chat.completions.create(**body).choices[0].message
    assert whole.audio is not None
    chunks = list(
        client.chat.completions.create(**body, stream=True, stream_options={"include_usage": True})
    )
    # (The SDK's `ChoiceDeltaAudio`: each piece carries some of id, data, transcript, expiry.)
    pieces = [
        c.choices[0].delta.audio.model_dump(exclude_none=True)
        for c in chunks
        if c.choices and c.choices[0].delta.audio is not None
    ]
    assert len(pieces) > 3
    # The id first (with the first piece of transcript), `expires_at` last, each once.
    # (Each answer's audio is its own: another id, the same sound and transcript.)
    assert pieces[0]["id"].startswith("audio_") and pieces[0]["id"] != whole.audio.id
    assert [p for p in pieces if "id" in p] == [pieces[0]]
    assert [p for p in pieces if "expires_at" in p] == [{"expires_at": whole.audio.expires_at}]
    assert "".join(p.get("transcript", "") for p in pieces) == whole.audio.transcript
    data = b"".join(base64.b64decode(p["data"]) for p in pieces if "data" in p)
    assert data == base64.b64decode(whole.audio.data)
    assert chunks[0].choices[0].delta.content is None
    assert all(not c.choices or c.choices[0].delta.content is None for c in chunks)
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.audio_tokens == len(data) // 2 * 20 // 24_000 + (
        1 if len(data) // 2 * 20 % 24_000 else 0
    )
    # The SDK's stream helper joins the pieces into the message's `audio`.
    with client.chat.completions.stream(**body) as stream:
        final = stream.get_final_completion().choices[0].message
    assert final.audio is not None
    assert final.audio.model_dump(exclude={"id"}) == whole.audio.model_dump(exclude={"id"})


def test_openai_node_reads_the_audio_and_its_stream(server: MockServer) -> None:
    body = spoken(audio={"voice": "verse", "format": "pcm16"})
    spec = {
        "baseURL": server.url,
        "cases": [
            {"call": "chat.completions.create", "args": body},
            {"call": "chat.completions.create", "args": {**body, "stream": True}, "mode": "events"},
            {
                "call": "chat.completions.stream",
                "args": body,
                "mode": "helper",
                "final": "finalChatCompletion",
            },
        ],
    }
    made, streamed, helper = run_script("openai_sdk.mjs", spec)
    audio = made["result"]["choices"][0]["message"]["audio"]
    assert made["result"]["choices"][0]["message"]["content"] is None
    pieces = [
        e["choices"][0]["delta"]["audio"]
        for e in streamed["result"]["events"]
        if e["choices"] and "audio" in e["choices"][0]["delta"]
    ]
    assert pieces[0]["id"].startswith("audio_")
    assert "".join(p.get("transcript", "") for p in pieces) == audio["transcript"]
    assert "".join(p.get("data", "") for p in pieces) == audio["data"]
    # The SDK's stream helper joins them into the message's `audio`.
    final = helper["result"]["final"]["choices"][0]
    assert {**final["message"]["audio"], "id": audio["id"]} == audio
    assert final["finish_reason"] == "stop"


def test_a_recording_in_the_prompt_is_billed_as_audio_tokens(client: openai.OpenAI) -> None:
    recording = base64.b64encode(wav(2.0)).decode()
    heard = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is said here?"},
                {"type": "input_audio", "input_audio": {"data": recording, "format": "wav"}},
            ],
        }
    ]
    text_only = [{"role": "user", "content": [{"type": "text", "text": "What is said here?"}]}]
    # (Text out: an audio model hearing audio needs no audio output.)
    with_sound = client.chat.completions.create(model=MODEL, messages=heard)  # type: ignore[arg-type]
    without = client.chat.completions.create(model="gpt-4o-mini", messages=text_only)  # type: ignore[arg-type]
    assert with_sound.usage is not None and without.usage is not None
    details = with_sound.usage.prompt_tokens_details
    assert details is not None and details.audio_tokens == 20  # 2 s at 10 tokens a second
    assert with_sound.usage.prompt_tokens == without.usage.prompt_tokens + 20
    assert with_sound.choices[0].message.content  # answered in text
    assert with_sound.choices[0].message.audio is None


def test_a_later_turn_refers_to_the_answers_audio_by_id(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(**spoken()).choices[0].message
    assert first.audio is not None
    later = client.chat.completions.create(
        **spoken(
            messages=[
                *ASK,
                {"role": "assistant", "audio": {"id": first.audio.id}},
                {"role": "user", "content": "And a labrador?"},
            ]
        )
    )
    assert later.choices[0].message.audio is not None
    assert later.choices[0].message.audio.id != first.audio.id


@pytest.mark.parametrize(
    ("body", "message", "param", "code"),
    [
        (
            spoken(model="gpt-4o-mini"),
            (
                "This model does not support audio output: 'modalities' may only be ['text'] with "
                "gpt-4o-mini. Use gpt-4o-audio-preview, gpt-4o-mini-audio-preview or gpt-audio."
            ),
            "modalities",
            "invalid_value",
        ),
        (
            spoken(audio=None),
            "Missing required parameter: 'audio'.",
            "audio",
            "missing_required_parameter",
        ),
        (
            spoken(audio={"format": "wav"}),
            "Missing required parameter: 'audio.voice'.",
            "audio.voice",
            "missing_required_parameter",
        ),
        (
            spoken(audio={"voice": "alloy"}),
            "Missing required parameter: 'audio.format'.",
            "audio.format",
            "missing_required_parameter",
        ),
        (
            spoken(audio={"voice": "alloy", "format": "ogg"}),
            (
                "Invalid value: 'ogg'. Supported values are: 'wav', 'aac', 'mp3', 'flac', 'opus', "
                "and 'pcm16'."
            ),
            "audio.format",
            "invalid_value",
        ),
        (
            spoken(audio={"voice": "robot", "format": "wav"}),
            (
                "Invalid value: 'robot'. Supported values are: 'alloy', 'ash', 'ballad', 'coral', "
                "'echo', 'fable', 'onyx', 'nova', 'sage', 'shimmer', 'verse', 'marin', and 'cedar'."
            ),
            "audio.voice",
            "invalid_value",
        ),
        (
            spoken(audio={"voice": "alloy", "format": "mp3"}, stream=True),
            (
                "Unsupported value: 'audio.format' does not support 'mp3' when stream=true. "
                "Supported values are: 'pcm16'."
            ),
            "audio.format",
            "unsupported_value",
        ),
        (
            {"model": "gpt-audio", "messages": ASK},
            "This model requires that either input content or output modality contain audio.",
            "model",
            "invalid_value",
        ),
    ],
)
def test_what_the_api_refuses(
    server: MockServer, body: dict[str, Any], message: str, param: str, code: str
) -> None:
    body = {key: value for key, value in body.items() if value is not None}
    answer = httpx.post(f"{server.url}/chat/completions", json=body, timeout=30)
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }


def test_text_only_models_and_requests_are_untouched(client: openai.OpenAI) -> None:
    message = client.chat.completions.create(model="gpt-4o-mini", messages=ASK).choices[0].message  # type: ignore[arg-type]
    assert message.content and message.audio is None
    # A custom voice is taken by its id.
    custom = client.chat.completions.create(
        **spoken(audio={"voice": {"id": "voice_1234"}, "format": "wav"})
    )
    assert custom.choices[0].message.audio is not None


def test_a_long_answer_says_a_bounded_part_of_its_transcript(server: MockServer) -> None:
    words = "word " * 10_000  # (a rule's answer may be any length: 125 MB of sound, unbounded)
    server.add_rule({"match": {"user": "long"}, "reply": {"content": words}})
    with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as sdk:
        body = spoken(messages=[{"role": "user", "content": "long"}])
        audio = sdk.chat.completions.create(**body).choices[0].message.audio
        assert audio is not None
        assert audio.transcript == words  # whole
        # The first 4,096 characters said (819 words of 0.24 s), not 10,000 words' 40 minutes.
        assert 150 < seconds(base64.b64decode(audio.data)) < 250
        # Shared among the choices.
        choices = sdk.chat.completions.create(**body, n=4).choices
        lengths = [
            seconds(base64.b64decode(c.message.audio.data)) for c in choices if c.message.audio
        ]
        assert len(lengths) == 4 and all(30 < length < 65 for length in lengths)


def test_a_rules_sound_is_what_the_answer_says(server: MockServer) -> None:
    server.add_rule(
        {"match": {"user": "x"}, "reply": {"content": "Hello there.", "audio": {"duration": "2s"}}}
    )
    body = spoken(
        messages=[{"role": "user", "content": "x"}], audio={"voice": "alloy", "format": "pcm16"}
    )
    with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as sdk:
        answer = sdk.chat.completions.create(**body)
        audio = answer.choices[0].message.audio
        assert audio is not None and audio.transcript == "Hello there."
        assert len(base64.b64decode(audio.data)) == 2 * 24_000 * 2  # 2 s of pcm16
        assert answer.usage is not None and answer.usage.completion_tokens_details is not None
        assert answer.usage.completion_tokens_details.audio_tokens == 40
        with sdk.chat.completions.stream(**body) as stream:
            final = stream.get_final_completion().choices[0].message.audio
        assert final is not None and final.data == audio.data
        # Asked for text, the rule answers in text.
        text = sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
        assert text.choices[0].message.content == "Hello there."


def test_a_stored_stream_keeps_its_audio(client: openai.OpenAI) -> None:
    body = spoken(store=True, audio={"voice": "alloy", "format": "pcm16"})
    whole = client.chat.completions.create(**body).choices[0].message.audio
    assert whole is not None
    streamed = list(client.chat.completions.create(**body, stream=True))
    kept = client.chat.completions.retrieve(streamed[0].id).choices[0].message
    assert kept.content is None
    assert kept.audio is not None
    first = streamed[1].choices[0].delta.audio  # (the id comes with the first piece)
    assert first is not None and kept.audio.id == first.id
    assert kept.audio.model_dump(exclude={"id"}) == whole.model_dump(exclude={"id"})


@settings(max_examples=200)
@given(
    # (any length up to several pieces: a pattern repeated, as a draw of 14 KB of bytes would
    # overrun hypothesis's buffer)
    data=st.tuples(st.integers(0, 3 * STREAM_PIECE + 7), st.binary(min_size=1, max_size=64)).map(
        lambda drawn: (drawn[1] * (drawn[0] // len(drawn[1]) + 1))[: drawn[0]]
    ),
    pieces=st.lists(st.text(max_size=12), max_size=8).map(tuple),
)
def test_the_audio_deltas_join_back_into_the_answer_whatever_its_bytes_and_words(
    data: bytes, pieces: tuple[str, ...]
) -> None:
    """What the SDKs do to `delta.audio` (openai-node's accumulator and openai-python's helper
    concatenate each field's strings) gives back the message's audio: the id once and first,
    the transcript's pieces in order, the data's base64 joined as strings decoding to the very
    bytes, and `expires_at` last."""
    spoken = Spoken("audio_x", data, 7, "".join(pieces), 0)
    deltas = spoken.deltas(pieces)
    assert deltas[0]["id"] == "audio_x" and all("id" not in d for d in deltas[1:])
    assert deltas[-1] == {"expires_at": 7}
    assert "".join(d.get("transcript", "") for d in deltas) == spoken.transcript
    joined = "".join(d.get("data", "") for d in deltas)
    assert base64.b64decode(joined, validate=True) == data
    assert joined == spoken.as_json()["data"]
