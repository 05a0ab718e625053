"""Cassettes record and replay images, audio, files and batches: multipart uploads, binary
answers, routes with ids, and the polls of a batch."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import pytest
import yaml
from PIL import Image
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serializers import yamlserializer

from mockai import MockServer
from mockai.cassette.format import load_all
from mockai.check import check_paths

KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"
# A key someone pasted into a batch's input, on a line of its own: in the JSONL file it follows
# the escape `\n`, not a line break.
PASTED = "sk-svcacct-Zyxwvutsrqponmlkjihgfedcba9876543210"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), "purple").save(out, "PNG")
    return out.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def flow(client: openai.OpenAI) -> list[Any]:
    """An app's media calls; what each answered (bytes as digests)."""
    out: list[Any] = []
    generated = client.images.generate(model="gpt-image-1", prompt="a fox", quality="low")
    out.append(digest(base64.b64decode(generated.data[0].b64_json or "")))
    edited = client.images.edit(
        model="gpt-image-1", image=("fox.png", png(), "image/png"), prompt="add a hat"
    )
    out.append(digest(base64.b64decode(edited.data[0].b64_json or "")))
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there.").read()
    out.append(digest(speech))
    transcript = client.audio.transcriptions.create(
        model="whisper-1", file=("hello.mp3", speech), response_format="srt"
    )
    out.append(transcript)
    line = {
        "custom_id": "one",
        "method": "POST",
        "url": "/v1/moderations",
        "body": {"input": f"a kind word, and my key:\n{PASTED}"},
    }
    upload = client.files.create(file=("in.jsonl", json.dumps(line).encode()), purpose="batch")
    out.append(upload.id)
    out.append([f.id for f in client.files.list(purpose="batch", limit=5)])
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/moderations", completion_window="24h"
    )
    statuses = [batch.status]
    while batch.status != "completed":
        batch = client.batches.retrieve(batch.id)
        statuses.append(batch.status)
    out.append(statuses)
    out.append(client.files.content(batch.output_file_id or "").text)
    return out


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    cassette = tmp_path_factory.mktemp("media") / "media.yaml"
    with (
        MockServer() as upstream,
        conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=upstream.url
        ) as recorder,
        openai.OpenAI(base_url=recorder.url, api_key=KEY, max_retries=0) as sdk,
    ):
        answers = flow(sdk)
        assert {e.source for e in recorder.requests} == {"upstream"}
    return cassette, answers


def test_replay_answers_every_call_as_recorded(recorded: tuple[Path, list[Any]]) -> None:
    cassette, answers = recorded
    with (
        conformance.checked_server(cassette=str(cassette)) as server,
        openai.OpenAI(base_url=server.url, api_key="sk-other", max_retries=0) as sdk,
    ):
        assert flow(sdk) == answers  # uploads matched though every form has a new boundary
        assert {e.source for e in server.requests} == {"cassette"}
        routes = [f"{e.method} {e.path.split('/')[2]}" for e in server.requests]
        assert routes.count("GET batches") == 3  # the polls replay in order


def test_the_cassette_is_vcrpys_and_holds_no_secret(recorded: tuple[Path, list[Any]]) -> None:
    cassette, _ = recorded
    text = cassette.read_text()
    assert KEY not in text
    data = yaml.safe_load(text.replace("!!binary", ""))
    methods = [
        (i["request"]["method"], i["request"]["uri"].split("/v1")[1]) for i in data["interactions"]
    ]
    assert ("POST", "/images/edits") in methods and (
        "GET",
        "/files?limit=5&purpose=batch",
    ) in methods
    assert "!!binary" in text  # the speech's MP3 and the multipart uploads
    requests, responses = FilesystemPersister.load_cassette(str(cassette), yamlserializer)
    assert len(requests) == len(responses) == len(data["interactions"])
    interactions = load_all(cassette)[0].interactions
    assert len(interactions) == len(requests)
    # Uploads are stored as !!binary: look in the bodies themselves, not only the text.
    uploads = [i.request_body for i in interactions if i.uri.endswith("/files")]
    assert uploads and all(b"REDACTED-" in body for body in uploads if body)
    for interaction in interactions:
        for body in (interaction.request_body or b"", interaction.response_body):
            assert PASTED.encode() not in body and KEY.encode() not in body
    assert check_paths([str(cassette)]) == []


def test_a_different_upload_is_a_miss_that_says_which_file(
    recorded: tuple[Path, list[Any]],
) -> None:
    cassette, _ = recorded
    with (
        MockServer(cassette=str(cassette)) as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as sdk,
        pytest.raises(openai.BadRequestError) as missed,
    ):
        sdk.audio.transcriptions.create(
            model="whisper-1", file=("hello.mp3", b"other bytes"), response_format="srt"
        )
    message = missed.value.body["message"]  # type: ignore[index]
    assert missed.value.code == "mockai_no_match"
    assert "file" in message and "sha256" in message


# A file's content, and one holding a key: vcrpy keeps it as sent, and both sides of the match
# are scrubbed alike, so the upload still matches.
@pytest.mark.parametrize("content", [b"RIFF....", f"RIFF {KEY}\n".encode()])
def test_a_vcrpy_recording_of_a_multipart_upload_replays(tmp_path: Path, content: bytes) -> None:
    # As vcrpy records an SDK upload: the raw form, with that request's boundary.
    form = (
        b"--a1b2c3\r\n"
        b'Content-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        b"--a1b2c3\r\n"
        b'Content-Disposition: form-data; name="file"; filename="memo.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n" + content + b"\r\n"
        b"--a1b2c3--\r\n"
    )
    cassette = tmp_path / "vcr.yaml"
    cassette.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "interactions": [
                    {
                        "request": {
                            "method": "POST",
                            "uri": "https://api.openai.com/v1/audio/transcriptions",
                            "body": form.decode(),
                            "headers": {"Content-Type": ["multipart/form-data; boundary=a1b2c3"]},
                        },
                        "response": {
                            "status": {"code": 200, "message": "OK"},
                            "headers": {"Content-Type": ["application/json"]},
                            "body": {"string": '{"text": "Recorded memo."}'},
                        },
                    }
                ],
            }
        )
    )
    with MockServer(cassette=str(cassette)) as server:
        answer = httpx.post(
            server.url + "/audio/transcriptions",
            data={"model": "whisper-1"},
            files={"file": ("memo.wav", content, "audio/x-wav")},  # another declared type
        )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"text": "Recorded memo."}


def test_a_batch_line_is_answered_from_the_cassette(tmp_path: Path) -> None:
    # The API pretty-prints its answers: a recorded one goes into the output file compacted,
    # one line per request.
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "recorded?"}]}
    answer = {
        "id": "chatcmpl-rec",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "From the cassette.", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    cassette = tmp_path / "chat.yaml"
    cassette.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "interactions": [
                    {
                        "request": {
                            "method": "POST",
                            "uri": "https://api.openai.com/v1/chat/completions",
                            "body": json.dumps(body),
                            "headers": {},
                        },
                        "response": {
                            "status": {"code": 200, "message": "OK"},
                            "headers": {"Content-Type": ["application/json"]},
                            "body": {"string": json.dumps(answer, indent=2)},
                        },
                    }
                ],
            }
        )
    )
    line = {"custom_id": "r", "method": "POST", "url": "/v1/chat/completions", "body": body}
    with (
        conformance.checked_server(cassette=str(cassette)) as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as sdk,
    ):
        upload = sdk.files.create(file=("in.jsonl", json.dumps(line).encode()), purpose="batch")
        batch = sdk.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        while batch.status != "completed":
            batch = sdk.batches.retrieve(batch.id)
        [output] = sdk.files.content(batch.output_file_id or "").text.splitlines()
        assert batch.usage is not None and batch.usage.total_tokens == 7
        [line_entry] = [e for e in server.requests if e.batch]
        assert line_entry.source == "cassette"
    assert json.loads(output)["response"]["body"] == answer
