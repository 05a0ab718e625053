"""Audio through the real SDK: speech decoded with PyAV, transcriptions in every format."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import wave
from pathlib import Path
from typing import Any

import av
import httpx
import openai
import pytest

from mockai import MockServer

SENTENCE = "The quick brown fox jumps over the lazy dog, then naps in the warm afternoon sun."


def seconds(data: bytes) -> float:
    """How long encoded audio lasts, by decoding every frame."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate


def container_of(data: bytes) -> str:
    with av.open(io.BytesIO(data)) as container:
        return str(container.format.name)


@pytest.fixture(scope="module")
def recording() -> bytes:
    """A real MP3 of the sentence (made by mockai's own speech, at the API's 24 kHz)."""
    with MockServer() as server, openai.OpenAI(base_url=server.url, api_key="k") as sdk:
        return sdk.audio.speech.create(model="tts-1", voice="nova", input=SENTENCE).read()


# --- speech ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "container", "content_type"),
    [
        ("mp3", "mp3", "audio/mpeg"),
        ("opus", "ogg", "audio/opus"),
        ("aac", "aac", "audio/aac"),
        ("flac", "flac", "audio/flac"),
        ("wav", "wav", "audio/wav"),
    ],
)
def test_speech_in_every_format_decodes_and_lasts_as_long_as_its_text(
    client: openai.OpenAI, fmt: Any, container: str, content_type: str
) -> None:
    response = client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="coral", input=SENTENCE, response_format=fmt
    )
    assert response.response.headers["content-type"] == content_type
    data = response.read()
    assert container_of(data) == container
    # ~15 characters a second at speed 1 (codec padding adds a few tens of milliseconds).
    assert 4.0 < seconds(data) < 8.0


def test_pcm_is_raw_24khz_16_bit_mono(client: openai.OpenAI) -> None:
    pcm = client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format="pcm"
    ).read()
    wav = client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format="wav"
    ).read()
    with wave.open(io.BytesIO(wav)) as reader:
        assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (
            24000,
            1,
            2,
        )
        assert reader.readframes(reader.getnframes()) == pcm  # the same samples


def test_length_follows_the_text_and_the_speed(client: openai.OpenAI) -> None:
    def length(text: str, speed: float = 1.0) -> float:
        return seconds(
            client.audio.speech.create(
                model="tts-1", voice="echo", input=text, speed=speed, response_format="flac"
            ).read()
        )

    short, long = length("Hello."), length(SENTENCE * 3)
    assert short < 1.5 < 10 < long
    assert length(SENTENCE, speed=2.0) == pytest.approx(length(SENTENCE) / 2, rel=0.05)


def test_speech_is_the_same_bytes_for_the_same_request(client: openai.OpenAI) -> None:
    def say(voice: Any) -> bytes:
        return client.audio.speech.create(
            model="gpt-4o-mini-tts", voice=voice, input="Same words.", response_format="opus"
        ).read()

    assert say("sage") == say("sage")
    assert say("sage") != say("verse")


def test_speech_streamed_as_audio_events(client: openai.OpenAI) -> None:
    whole = client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="alloy", input=SENTENCE * 4, response_format="mp3"
    ).read()
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="alloy", input=SENTENCE * 4, stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [
            json.loads(line[6:])
            for line in response.read().decode().splitlines()
            if line.startswith("data: ")
        ]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert len(deltas) > 1 and events[-1]["type"] == "speech.audio.done"
    assert b"".join(base64.b64decode(e["audio"]) for e in deltas) == whole
    usage = events[-1]["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"model": "tts-1", "stream_format": "sse"}, "stream_format"),
        ({"model": "tts-1", "voice": "darth"}, "voice"),
        ({"model": "tts-1", "input": ""}, "input"),
        ({"model": "tts-1", "input": "x" * 4097}, "input"),
        ({"model": "tts-1", "speed": 5}, "speed"),
    ],
)
def test_speech_requests_the_api_refuses(
    client: openai.OpenAI, options: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.audio.speech.create(**{"voice": "alloy", "input": "hi", **options})
    assert refused.value.body["param"] == param  # type: ignore[index]


def test_sync_raw_speech(client: openai.OpenAI) -> None:
    raw = client.audio.speech.with_raw_response.create(
        model="tts-1", voice="shimmer", input="Raw speech.", response_format="flac"
    )
    assert raw.status_code == 200 and raw.headers["content-type"] == "audio/flac"
    assert container_of(raw.content) == "flac"


def test_another_providers_voice_is_accepted(client: openai.OpenAI) -> None:
    data = client.audio.speech.create(model="kokoro", voice="af_bella", input="Hi there.").read()
    assert seconds(data) > 0.3


def test_rules_script_a_sound_file_or_a_duration(
    client: openai.OpenAI, server: MockServer, tmp_path: Path
) -> None:
    fixture = tmp_path / "beep.wav"
    with wave.open(str(fixture), "wb") as writer:  # 2 s of silence at 8 kHz
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(bytes(32000))
    server.add_rules(
        [
            {"match": {"user": "file"}, "reply": {"audio": str(fixture)}},
            {"match": {"user": "long"}, "reply": {"audio": {"duration": "3.5s"}}},
        ]
    )

    def say(text: str) -> float:
        return seconds(
            client.audio.speech.create(
                model="tts-1", voice="alloy", input=text, response_format="wav"
            ).read()
        )

    assert say("play the file") == pytest.approx(2.0, abs=0.01)  # resampled to 24 kHz
    assert say("a long one") == pytest.approx(3.5, abs=0.01)


@pytest.mark.asyncio
async def test_speech_async_and_raw(aclient: openai.AsyncOpenAI) -> None:
    raw = await aclient.audio.speech.with_raw_response.create(
        model="tts-1-hd", voice="onyx", input="Async speech.", response_format="aac"
    )
    assert raw.status_code == 200 and raw.headers["x-request-id"].startswith("req_")
    assert container_of(raw.content) == "aac"
    streamed = await aclient.audio.speech.create(model="tts-1", voice="fable", input="Hello.")
    assert seconds(streamed.read()) > 0.3


# --- transcriptions and translations ----------------------------------------------------------


def test_transcription_json_with_usage(client: openai.OpenAI, recording: bytes) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-1", file=("memo.mp3", recording, "audio/mpeg")
    )
    assert result.text and result.text.endswith(".")
    assert result.usage is not None and result.usage.type == "duration"
    assert result.usage.seconds == math.ceil(seconds(recording))  # whole seconds, rounded up


def test_verbose_json_words_and_segments_cover_the_recording(
    client: openai.OpenAI, recording: bytes
) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=("memo.mp3", recording),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="fr",
    )
    length = seconds(recording)
    assert result.duration == pytest.approx(length, abs=0.1)
    assert result.language == "french"
    words, segments = result.words or [], result.segments or []
    assert [w.word for w in words] == re.findall(r"[\w']+", result.text)
    starts = [w.start for w in words]
    assert starts == sorted(starts) and words[0].start == 0.0
    assert words[-1].end == segments[-1].end == round(result.duration, 2)
    assert "".join(s.text for s in segments).strip() == result.text
    assert all(s.start < s.end for s in segments)


def test_only_asked_granularities_are_sent(client: openai.OpenAI, recording: bytes) -> None:
    words_only = client.audio.transcriptions.create(
        model="whisper-1",
        file=("m.mp3", recording),
        response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    assert words_only.words and words_only.segments is None
    default = client.audio.transcriptions.create(
        model="whisper-1", file=("m.mp3", recording), response_format="verbose_json"
    )
    assert default.segments and default.words is None


def test_text_srt_and_vtt(client: openai.OpenAI, recording: bytes) -> None:
    # OpenAI's header for each, charset and all: a whisper-1 `srt` answer seen with curl
    # (github.com/morioka/tiny-openai-whisper-api/issues/7, "wrong content-type when
    # response_format is srt or vtt"), and text/plain for `text`, `srt` and `vtt` alike
    # (github.com/openai/openai-openapi/issues/361).
    content_types = dict.fromkeys(("text", "srt", "vtt"), "text/plain; charset=utf-8")

    def transcribe(fmt: Any) -> str:
        raw = client.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=("m.mp3", recording), response_format=fmt
        )
        assert raw.headers["content-type"] == content_types[fmt]
        return str(raw.parse())

    text = transcribe("text")
    assert text.endswith("\n") and "\n" not in text[:-1]
    srt = transcribe("srt")
    assert re.match(r"1\n00:00:00,000 --> 00:00:\d\d,\d{3}\n\S", srt)
    vtt = transcribe("vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ")
    cue_texts = [line for line in vtt.splitlines()[2:] if line and "-->" not in line]
    assert " ".join(cue_texts) == text.strip()


def test_streamed_transcript_deltas_add_up_to_the_text(
    client: openai.OpenAI, recording: bytes
) -> None:
    events = list(
        client.audio.transcriptions.create(
            model="gpt-4o-mini-transcribe",
            file=("m.mp3", recording),
            stream=True,
            include=["logprobs"],
        )
    )
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    done = events[-1]
    assert done.type == "transcript.text.done"
    assert "".join(e.delta for e in deltas) == done.text
    assert all(e.logprobs and e.logprobs[0].token == e.delta for e in deltas)
    assert done.usage is not None and done.usage.type == "tokens"


def test_whisper_ignores_stream_as_the_api_does(client: openai.OpenAI, recording: bytes) -> None:
    answer = client.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=("m.mp3", recording), stream=False
    )
    assert answer.headers["content-type"] == "application/json"


def test_gpt_transcribe_json_logprobs_and_token_usage(
    client: openai.OpenAI, recording: bytes
) -> None:
    result = client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("m.mp3", recording), include=["logprobs"]
    )
    assert result.logprobs and "".join(lp.token for lp in result.logprobs) == result.text
    assert result.usage is not None and result.usage.type == "tokens"
    with pytest.raises(openai.BadRequestError) as refused:
        client.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=("m.mp3", recording), response_format="srt"
        )
    assert "Supported values are: 'json', 'text'" in refused.value.message


def test_diarized_json(client: openai.OpenAI, recording: bytes) -> None:
    result = client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=("m.mp3", recording),
        response_format="diarized_json",
    )
    assert {s.speaker for s in result.segments} <= {"A", "B"}
    assert result.segments[0].id == "seg_001"


def test_granularities_need_verbose_json(client: openai.OpenAI, recording: bytes) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.audio.transcriptions.create(
            model="whisper-1", file=("m.mp3", recording), timestamp_granularities=["word"]
        )
    assert refused.value.body["param"] == "timestamp_granularities"  # type: ignore[index]


def test_the_transcript_follows_the_recordings_length(client: openai.OpenAI) -> None:
    def words_for(text: str) -> int:
        audio = client.audio.speech.create(model="tts-1", voice="alloy", input=text).read()
        result = client.audio.transcriptions.create(model="whisper-1", file=("a.mp3", audio))
        return len(result.text.split())

    assert words_for("Short.") < 5 < 20 < words_for(SENTENCE * 4)


def test_rules_match_file_name_prompt_model_and_language(
    client: openai.OpenAI, server: MockServer, recording: bytes
) -> None:
    server.add_rules(
        [
            {"match": {"file": {"endswith": "standup.mp3"}}, "reply": "We shipped the release."},
            {"match": {"user": "glossary", "model": "gpt-4o*"}, "reply": "Kubernetes ingress."},
            {
                "match": {"endpoint": "transcriptions", "body": {"language": "de"}},
                "reply": "Guten Morgen, {{ request.files[0] }}.",
            },
            {"match": {"endpoint": ["transcriptions", "translations"]}, "reply": {}},
        ]
    )

    def transcribe(name: str, **options: Any) -> str:
        return client.audio.transcriptions.create(
            file=(name, recording), **{"model": "whisper-1", **options}
        ).text

    assert transcribe("2024-05-01-standup.mp3") == "We shipped the release."
    assert transcribe("x.mp3", model="gpt-4o-transcribe", prompt="glossary: k8s") == (
        "Kubernetes ingress."
    )
    assert transcribe("x.mp3", prompt="glossary: k8s") != "Kubernetes ingress."  # whisper-1
    assert transcribe("call.wav", language="de") == "Guten Morgen, call.wav."
    verbose = client.audio.transcriptions.create(
        model="whisper-1",
        file=("2024-standup.mp3", recording),
        response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    assert [w.word for w in verbose.words or []] == ["We", "shipped", "the", "release"]
    assert [e.rule for e in server.requests] == ["rule-1", "rule-2", "rule-4", "rule-3", "rule-1"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK marks translations deprecated
def test_translations_are_english(client: openai.OpenAI, recording: bytes) -> None:
    result = client.audio.translations.create(
        model="whisper-1", file=("fr.mp3", recording), response_format="verbose_json"
    )
    assert result.language == "english"
    assert result.segments and result.duration == pytest.approx(seconds(recording), abs=0.1)
    text = client.audio.translations.create(
        model="whisper-1", file=("fr.mp3", recording), response_format="text"
    )
    assert isinstance(text, str) and text.endswith("\n")


def test_an_upload_that_is_not_audio(client: openai.OpenAI) -> None:
    # Accepted by default (tests often send made-up bytes): it lasts as long as its size says.
    result = client.audio.transcriptions.create(
        model="whisper-1", file=("fake.mp3", b"x" * 64_000), response_format="verbose_json"
    )
    assert result.duration == pytest.approx(4.0)
    with (
        MockServer(strict_requests=True) as strict,
        openai.OpenAI(base_url=strict.url, api_key="k", max_retries=0) as sdk,
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.audio.transcriptions.create(model="whisper-1", file=("fake.mp3", b"x" * 100))
        assert "could not be decoded" in refused.value.message


def test_a_transcription_without_a_file_is_the_apis_400(server: MockServer) -> None:
    answer = httpx.post(
        server.url + "/audio/transcriptions", data={"model": "whisper-1"}, files={"x": b""}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "Missing required parameter: 'file'."
    json_body = httpx.post(server.url + "/audio/transcriptions", json={"model": "whisper-1"})
    assert json_body.status_code == 400
    assert "expected multipart/form-data" in json_body.json()["error"]["message"]


@pytest.mark.asyncio
async def test_transcription_async_and_raw(aclient: openai.AsyncOpenAI, recording: bytes) -> None:
    raw = await aclient.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=("m.mp3", recording), response_format="vtt"
    )
    assert raw.headers["content-type"] == "text/plain; charset=utf-8"
    assert raw.parse().startswith("WEBVTT")
    stream = await aclient.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("m.mp3", recording), stream=True
    )
    kinds = [event.type async for event in stream]
    assert kinds[-1] == "transcript.text.done" and kinds.count("transcript.text.delta") > 3
