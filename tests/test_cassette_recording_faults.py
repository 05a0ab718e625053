"""Recording when something goes wrong: a binary body in a JSON cassette, an interaction that
cannot be saved, an upstream that breaks off, a recording server that cannot record as asked.
Nothing recorded may be lost, and each problem is one clear line, never a traceback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import pytest
from aiohttp import web
from cassette_support import LoopbackApp, chat_completion, chunk, interactions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serializers import jsonserializer

from mockai import MockServer
from mockai.cassette.format import Interaction, Timing
from mockai.cassette.modes import RecordMode
from mockai.cassette.redact import Scrubber
from mockai.cassette.writer import CassetteRecorder
from mockai.check import check_paths

CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "first"}]}


def sdk(url: str, key: str = "sk-test-0000") -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0)


def _flow(client: openai.OpenAI) -> list[Any]:
    """A chat, a binary answer (an MP3), a binary upload (that MP3 transcribed), another chat."""
    out: list[Any] = [client.chat.completions.create(**CHAT).model_dump()]
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input="hello").read()
    out.append(speech)
    transcript = client.audio.transcriptions.create(model="whisper-1", file=("hi.mp3", speech))
    out.append(transcript.model_dump())
    third = {**CHAT, "messages": [{"role": "user", "content": "third"}]}
    out.append(client.chat.completions.create(**third).model_dump())
    return out


# --- bug: a .json cassette could not hold a binary body, and lost every later recording --------


def test_a_json_cassette_keeps_binary_bodies_and_every_recording_after_them(
    tmp_path: Path, watched: Any
) -> None:
    cassette = tmp_path / "session.json"
    with (
        MockServer() as upstream,
        conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=upstream.url
        ) as recorder,
        sdk(recorder.url) as client,
    ):
        recorded = _flow(client)
    assert isinstance(recorded[1], bytes) and len(recorded[1]) > 100
    stored = interactions(cassette)
    assert len(stored) == 4  # all of them, the ones after the binary answer too
    assert stored[1].response_body == recorded[1]  # the MP3, byte for byte
    assert recorded[1] in (stored[2].request_body or b"")  # the upload, byte for byte
    own = [
        i["response"].get("mockai", {}) for i in json.loads(cassette.read_text())["interactions"]
    ]
    assert [o.get("base64") for o in own] == [None, ["response"], ["request"], None]
    # vcrpy loads the file (seeing those bodies as their base64 text); `mockai check` passes it.
    requests, responses = FilesystemPersister.load_cassette(str(cassette), jsonserializer)
    assert len(requests) == len(responses) == 4
    assert base64.b64decode(responses[1]["body"]["string"]) == recorded[1]
    assert check_paths([str(cassette)]) == []
    with conformance.checked_server(cassette=str(cassette)) as server, sdk(server.url) as client:
        assert _flow(client) == recorded  # the upstream is gone: all four from the cassette
        assert {entry.source for entry in server.requests} == {"cassette"}


def _media_upstream() -> LoopbackApp:
    """Answers a speech request with the bytes its `input` spells in hex, and a transcription
    with the digest of what it received."""

    async def speech(request: web.Request) -> web.Response:
        spelled = (await request.json())["input"].removeprefix("bytes:")
        return web.Response(body=bytes.fromhex(spelled), content_type="audio/mpeg")

    async def transcription(request: web.Request) -> web.Response:
        return web.json_response({"text": hashlib.sha256(await request.read()).hexdigest()})

    return LoopbackApp({"/v1/audio/speech": speech, "/v1/audio/transcriptions": transcription})


@pytest.fixture(scope="module")
def media_upstream() -> Iterator[LoopbackApp]:
    with _media_upstream() as app:
        yield app


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(bodies=st.lists(st.binary(min_size=1, max_size=400), min_size=1, max_size=3, unique=True))
def test_any_body_recorded_into_a_json_cassette_replays_identical(
    media_upstream: LoopbackApp, bodies: list[bytes]
) -> None:
    """Any bytes — UTF-8 text or not — answered by the upstream or uploaded by the client."""
    with tempfile.TemporaryDirectory() as folder:
        cassette = Path(folder) / "bytes.json"
        with (
            conformance.checked_server(
                cassette=str(cassette), record_mode="once", upstream=media_upstream.url
            ) as recorder,
            sdk(recorder.url) as client,
        ):
            answered = [_bytes_flow(client, body) for body in bodies]
        assert [a[0] for a in answered] == bodies
        stored = interactions(cassette)
        uploads = [i.request_body or b"" for i in stored if i.uri.endswith("/transcriptions")]
        assert all(body in upload for body, upload in zip(bodies, uploads, strict=True))
        with conformance.checked_server(cassette=str(cassette)) as server, sdk(server.url) as c:
            assert [_bytes_flow(c, body) for body in bodies] == answered


def _bytes_flow(client: openai.OpenAI, body: bytes) -> tuple[bytes, str]:
    spoken = client.audio.speech.create(model="tts-1", voice="alloy", input="bytes:" + body.hex())
    heard = client.audio.transcriptions.create(model="whisper-1", file=("b.mp3", body))
    return spoken.read(), heard.text


# --- one interaction that cannot be saved never costs the others --------------------------------

# Binary bytes whose base64 text spells what a --redact pattern calls a secret: the scan of the
# cassette's text (the last guard before writing) refuses it, though the interaction's own bytes
# hold none. (Not a key-shaped run of base64 such as `/AIza...`: data, never called a key.)
_LOOKS_LIKE_A_KEY = base64.b64decode("//" + "LeakedTokenLeakedToken" + "Q" * 8)
_REDACT = "LeakedToken[A-Za-z]{11}"


def test_an_interaction_that_cannot_be_saved_is_named_and_the_others_are_saved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert not _is_utf8(_LOOKS_LIKE_A_KEY)  # (so a JSON cassette holds it as base64 text)

    async def chat(request: web.Request) -> web.Response:
        content = (await request.json())["messages"][0]["content"]
        return web.json_response(chat_completion("chatcmpl-1", "gpt-4o-mini", content))

    async def speech(request: web.Request) -> web.Response:
        return web.Response(body=_LOOKS_LIKE_A_KEY, content_type="audio/mpeg")

    cassette = tmp_path / "session.json"
    with (
        caplog.at_level(logging.INFO, logger="mockai"),
        LoopbackApp({"/v1/chat/completions": chat, "/v1/audio/speech": speech}) as app,
        conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=app.url, redact=[_REDACT]
        ) as recorder,
        sdk(recorder.url) as client,
    ):
        client.chat.completions.create(**CHAT)
        assert client.audio.speech.create(model="tts-1", voice="alloy", input="x").read() == (
            _LOOKS_LIKE_A_KEY
        )
        for n in range(3):
            client.chat.completions.create(
                **{**CHAT, "messages": [{"role": "user", "content": f"later {n}"}]}
            )
    stored = interactions(cassette)
    assert [json.loads(i.request_body or b"")["messages"][0]["content"] for i in stored] == [
        "first",
        "later 0",
        "later 1",
        "later 2",
    ]
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(problems) == 1 and problems[0].exc_info is None
    said = problems[0].getMessage()
    assert "not saving POST" in said and "/audio/speech" in said and "--redact" in said
    assert "LeakedTokenLeakedToken" not in said  # (the scan names a secret's shape, never it)


def test_the_writer_saves_what_the_serializer_takes_and_names_what_it_refuses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cassette = tmp_path / "session.json"

    def interaction(text: str, **extra: Any) -> Interaction:
        return Interaction(
            "POST",
            "https://api.example/v1/chat/completions",
            json.dumps({"input": text}).encode(),
            {"Content-Type": ["application/json"]},
            200,
            "OK",
            {"content-type": ["application/json"]},
            b"{}",
            Timing(),
            extra,
        )

    async def record() -> CassetteRecorder:
        recorder = CassetteRecorder(cassette, RecordMode.ONCE, None, Scrubber())
        recorder.add(interaction("one"))
        recorder.add(interaction("two", note={"a set JSON cannot hold"}))
        await recorder.flush()
        recorder.add(interaction("three"))
        await recorder.flush()
        return recorder

    with caplog.at_level(logging.INFO, logger="mockai"):
        recorder = asyncio.run(record())
    assert [json.loads(i.request_body or b"")["input"] for i in interactions(cassette)] == [
        "one",
        "three",
    ]
    assert recorder.refused == 1
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(problems) == 1 and problems[0].exc_info is None
    assert "the JSON serializer refused it" in problems[0].getMessage()


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- an upstream that breaks off: the client's connection breaks off, one log line --------------


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_an_upstream_breaking_off_logs_one_line_not_a_traceback(
    tmp_path: Path, watched: Any, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    async def broken(request: web.Request) -> web.StreamResponse:
        kind = "text/event-stream" if stream else "application/json"
        response = web.StreamResponse(headers={"Content-Type": kind})
        if not stream:
            response.content_length = 400  # the body promised, then not all of it sent
        await response.prepare(request)
        await response.write(chunk("partial") if stream else b'{"id": "chatcmpl-1", ')
        assert request.transport is not None
        request.transport.close()  # the upstream dies mid-answer
        return response

    cassette = tmp_path / "broken.yaml"
    with (
        caplog.at_level(logging.INFO, logger="mockai"),
        LoopbackApp({"/v1/chat/completions": broken}) as app,
        conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=app.url
        ) as recorder,
        sdk(recorder.url) as client,
        pytest.raises((openai.APIConnectionError, httpx.HTTPError)),
    ):
        if stream:
            list(client.chat.completions.create(**CHAT, stream=True))
        else:
            client.chat.completions.create(**CHAT)
    assert not cassette.exists()  # a broken answer is never recorded
    said = [r.getMessage() for r in caplog.records if "broke off" in r.getMessage()]
    assert len(said) == 1  # and the `watched` fixture: no traceback, no error logged


def test_a_head_whose_upstream_breaks_off_drops_the_connection_without_a_traceback(
    tmp_path: Path, watched: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """HEAD is recorded as the GET it stands for, its body read whole and not sent: an upstream
    breaking off in it is the GET's one log line and dropped connection."""

    async def broken(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 400
        await response.prepare(request)
        await response.write(b'{"object": "list", ')
        assert request.transport is not None
        request.transport.close()
        return response

    cassette = tmp_path / "broken.yaml"
    with (
        caplog.at_level(logging.INFO, logger="mockai"),
        LoopbackApp({"/v1/files": broken}) as app,
        conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=app.url
        ) as recorder,
        pytest.raises(httpx.HTTPError),
    ):
        httpx.head(recorder.url + "/files", headers={"Authorization": "Bearer sk-test-0000"})
    assert not cassette.exists()
    said = [r.getMessage() for r in caplog.records if "broke off" in r.getMessage()]
    assert len(said) == 1


# --- a recording the server cannot do: said at startup, in one line, nothing served -------------


_SERVE = (sys.executable, "-m", "mockai", "serve", "--port", "0")


def _serve(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`mockai serve` expected to refuse to start; one that starts is stopped after a while,
    with every worker it forked (its own process group)."""
    command = [*_SERVE, "--quiet", *args]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        start_new_session=True,
    ) as process:
        try:
            out, errors = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, errors = process.communicate()
            errors += "\n(still serving after 15 s: it started)"
    return subprocess.CompletedProcess(command, process.returncode, out, errors)


def _refused(process: subprocess.CompletedProcess[str]) -> str:
    assert process.returncode == 2, process.stderr
    assert "Traceback" not in process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    return lines[0]


@pytest.mark.parametrize(
    "name",
    # (A name that fits but leaves no room for `.NAME.conflict-999.XXXXXXXX.tmp` records: its
    # temporaries and conflict files take a shortened name, tests/test_fix6_plugin.py.)
    ["a-file/x.yaml", "a-file/deeper/x.yaml", "n" * 251 + ".yaml"],
    ids=["parent-is-a-file", "ancestor-is-a-file", "name-too-long"],
)
def test_recording_into_a_path_that_cannot_hold_a_cassette_is_refused_at_startup(
    tmp_path: Path, name: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    upstream = "http://127.0.0.1:9/v1"
    said = _refused(
        _serve("--cassette", name, "--record-mode", "once", "--upstream", upstream, cwd=tmp_path)
    )
    assert said.startswith("mockai: ") and ("cannot record into" in said or "too long" in said)


@pytest.mark.parametrize("mode", ["once", "new_episodes", "all"])
def test_recording_with_several_workers_is_refused_at_startup(tmp_path: Path, mode: str) -> None:
    upstream = "http://127.0.0.1:9/v1"
    said = _refused(
        _serve(
            "--workers",
            "3",
            "--cassette",
            "c.yaml",
            "--record-mode",
            mode,
            "--upstream",
            upstream,
            cwd=tmp_path,
        )
    )
    assert said.startswith("mockai: --workers 3 cannot record") and "--workers 1" in said
    assert list(tmp_path.iterdir()) == []


def test_replaying_with_several_workers_still_serves(tmp_path: Path) -> None:
    """`once` with the cassette there only replays: several workers are fine for that."""
    cassette = tmp_path / "c.yaml"
    with (
        MockServer() as upstream,
        conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=upstream.url
        ) as recorder,
        sdk(recorder.url) as client,
    ):
        client.chat.completions.create(**CHAT)
    with subprocess.Popen(
        [*_SERVE, "--workers", "2", "--cassette", str(cassette), "--record-mode", "once"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        banner = "".join(process.stdout.readline() for _ in range(3))  # (EOF: "")
        process.terminate()
        _, errors = process.communicate(timeout=20)
    assert "2 workers" in banner, banner + errors


def test_recording_into_a_folder_that_cannot_be_written_is_refused_at_startup() -> None:
    # It started, answered, and lost every recording to "Permission denied", exit 0. (Root may
    # write anywhere: as root, the server runs as nobody, through util-linux's setpriv.)
    as_user: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "setpriv (util-linux) runs the server as another user"
        as_user = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    top = Path(tempfile.mkdtemp(prefix="mockai-ro-"))
    try:
        top.chmod(0o777)
        folder = top / "cassettes"
        folder.mkdir()
        folder.chmod(0o555)
        command = [*as_user, *_SERVE, "--quiet", "--cassette", str(folder / "c.yaml")]
        command += ["--record-mode", "once", "--upstream", "http://127.0.0.1:9/v1"]
        process = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=top)
        said = _refused(process)
        assert said.startswith(f"mockai: cannot record into {folder / 'c.yaml'}: {folder}")
        assert "cannot be written to (Permission denied)" in said
        assert list(folder.iterdir()) == []  # (the trial file removed, none left)
    finally:
        (top / "cassettes").chmod(0o755)
        shutil.rmtree(top)
