"""vcrpy interop, both ways: vcrpy's cassettes replay in mockai, mockai's replay in vcrpy."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import vcr
from aiohttp import web
from cassette_support import LoopbackApp, paced_upstream

from mockai.wire.events import split_events

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Name three rivers"}]}
STREAM = {**CHAT, "stream": True}
EMBED = {"model": "text-embedding-3-small", "input": "hello", "encoding_format": "base64"}


def _sse_payloads(raw: bytes) -> list[Any]:
    out = []
    for frame in split_events(raw):
        data = frame.decode().strip().removeprefix("data: ")
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_a_cassette_vcrpy_recorded_replays_through_mockai(tmp_path: Path) -> None:
    cassette = tmp_path / "vcrpy.yaml"
    with (
        conformance.checked_server(seed=11) as upstream,
        vcr.use_cassette(str(cassette), record_mode="once"),
        httpx.Client() as http,
    ):
        chat = http.post(upstream.url + "/chat/completions", json=CHAT).json()
        stream = http.post(upstream.url + "/chat/completions", json=STREAM).content
        embedding = http.post(upstream.url + "/embeddings", json=EMBED).json()
    assert "mockai" not in cassette.read_text()  # a plain vcrpy cassette
    # The upstream is gone; the real SDK (which vcrpy never saw) replays it through mockai.
    with (
        conformance.checked_server(cassette=str(cassette)) as server,
        openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client,
    ):
        assert client.chat.completions.create(**CHAT).to_dict() == chat
        chunks = [c.to_dict() for c in client.chat.completions.create(**STREAM)]
        assert chunks == [p for p in _sse_payloads(stream) if p != "[DONE]"]
        vector = client.embeddings.create(model=EMBED["model"], input="hello").data[0].embedding
        assert len(vector) == 1536
    assert server.requests[2].response_json() == embedding
    # And as users run it: `mockai serve --cassette vcrpy.yaml`, in its own process.
    process = subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--cassette", str(cassette)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = _banner_url(process)
        with openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0) as client:
            assert client.chat.completions.create(**CHAT).to_dict() == chat
            assert [c.to_dict() for c in client.chat.completions.create(**STREAM)] == chunks
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
    assert process.returncode == 0


def _banner_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if "OPENAI_BASE_URL=" in line:
            return line.split("=", 1)[1].strip()
    raise AssertionError(process.stderr.read() if process.stderr else "no banner")


def _gzip_api() -> LoopbackApp:
    """Answers like api.openai.com: gzip bodies, Cloudflare and account headers."""

    async def chat(request: web.Request) -> web.Response:
        body = {
            "id": "chatcmpl-BxGz1",
            "object": "chat.completion",
            "created": 1735689600,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Nile, Amazon, Yangtze.",
                        "refusal": None,
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 8, "total_tokens": 19},
        }
        response = web.json_response(body, headers=_real_headers())
        response.enable_compression(web.ContentCoding.gzip)
        return response

    return LoopbackApp({"/v1/chat/completions": chat})


def _real_headers() -> dict[str, str]:
    return {
        "openai-organization": "user-abc123",
        "openai-processing-ms": "412",
        "openai-version": "2020-10-01",
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": "9999",
        "x-request-id": "req_0123456789abcdef0123456789abcdef",
        "set-cookie": "__cf_bm=Wq0vYfD1.abc; path=/; HttpOnly; Secure",
        "cf-ray": "8f1a2b3c4d5e6f70-CDG",
        "cf-cache-status": "DYNAMIC",
    }


def test_gzip_and_binary_bodies_from_vcrpy_replay(tmp_path: Path) -> None:
    cassette = tmp_path / "gzip.yaml"
    with (
        _gzip_api() as api,
        vcr.use_cassette(str(cassette), record_mode="once"),
        httpx.Client() as http,
    ):
        answer = http.post(api.url + "/chat/completions", json=CHAT).json()
    text = cassette.read_text()
    assert "!!binary" in text and "gzip" in text  # what vcrpy writes for the real API
    with conformance.checked_server(cassette=str(cassette)) as server:
        response = httpx.post(server.url + "/chat/completions", json=CHAT)
    assert response.json() == answer
    assert response.headers["x-ratelimit-limit-requests"] == "10000"  # recorded headers replay
    for dropped in ("set-cookie", "openai-organization", "cf-ray", "content-encoding"):
        assert dropped not in response.headers
    assert response.headers["x-request-id"] == server.requests[0].request_id  # mockai's own


def test_a_mockai_cassette_replays_through_vcrpy(tmp_path: Path) -> None:
    cassette = tmp_path / "mockai.yaml"
    with paced_upstream() as upstream:
        with (
            conformance.checked_server(
                cassette=str(cassette), record_mode="once", upstream=upstream.url
            ) as recorder,
            httpx.Client() as http,
        ):
            sent = {
                "chat": http.post(recorder.url + "/chat/completions", json=CHAT).content,
                "stream": http.post(recorder.url + "/chat/completions", json=STREAM).content,
                "embed": http.post(recorder.url + "/embeddings", json=EMBED).content,
            }
        base = upstream.url
    assert "mockai:" in cassette.read_text()  # our timing field, which vcrpy must ignore
    # The upstream is stopped: vcrpy answers from the cassette, or the call fails.
    with (
        vcr.use_cassette(str(cassette), record_mode="none", match_on=["method", "path", "body"]),
        httpx.Client() as http,
    ):
        assert http.post(base + "/chat/completions", json=CHAT).content == sent["chat"]
        assert http.post(base + "/chat/completions", json=STREAM).content == sent["stream"]
        assert http.post(base + "/embeddings", json=EMBED).content == sent["embed"]


def test_vcrpy_keeps_mockais_timing_when_it_rewrites_a_cassette(tmp_path: Path) -> None:
    cassette = tmp_path / "shared.yaml"
    with paced_upstream() as upstream:
        with conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=upstream.url
        ) as recorder:
            httpx.post(recorder.url + "/chat/completions", json=STREAM)
        # vcrpy appends an episode of its own and saves the whole cassette again.
        with vcr.use_cassette(str(cassette), record_mode="new_episodes"), httpx.Client() as http:
            http.post(upstream.url + "/embeddings", json=EMBED)
    data = json.loads(json.dumps(vcr.serializers.yamlserializer.deserialize(cassette.read_text())))
    assert len(data["interactions"]) == 2
    assert data["interactions"][0]["response"]["mockai"]["events"]
    with (
        conformance.checked_server(cassette=str(cassette), replay_speed=1.0) as server,
        httpx.stream("POST", server.url + "/chat/completions", json=STREAM) as response,
    ):
        assert response.read()
    assert server.requests[0].response.offsets is not None  # still paced by the timing


def test_gzip_bodies_decompress_whatever_the_header_case(tmp_path: Path) -> None:
    usage = {"prompt_tokens": 1, "total_tokens": 1}
    body = json.dumps({"object": "list", "data": [], "model": "m", "usage": usage}).encode()
    cassette = tmp_path / "gz.yaml"
    cassette.write_text(
        "interactions:\n"
        "- request:\n"
        '    body: \'{"model":"m","input":"x"}\'\n'
        "    headers: {Content-Type: [application/json]}\n"
        "    method: POST\n"
        "    uri: https://api.openai.com/v1/embeddings\n"
        "  response:\n"
        f"    body: {{string: !!binary '{_b64(gzip.compress(body))}'}}\n"
        "    headers:\n"
        "      Content-Encoding: [gzip]\n"
        "      Content-Type: [application/json]\n"
        "      Transfer-Encoding: [chunked]\n"
        "    status: {code: 200, message: OK}\n"
        "version: 1\n"
    )
    with conformance.checked_server(cassette=str(cassette), fallback="generate") as server:
        response = httpx.post(server.url + "/embeddings", json={"input": "x", "model": "m"})
    assert response.content == body
    assert "transfer-encoding" not in {k.lower() for k in server.requests[0].response.headers}


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def test_appending_to_a_vcrpy_cassette_scrubs_the_credentials_it_kept(tmp_path: Path) -> None:
    cassette = tmp_path / "unfiltered.yaml"
    token = "sk-proj-" + "UnFiLtErEd0123456789" * 2
    with paced_upstream() as upstream:
        with (
            vcr.use_cassette(str(cassette), record_mode="once"),  # no filter_headers: leaks
            httpx.Client(headers={"Authorization": f"Bearer {token}"}) as http,
        ):
            http.post(upstream.url + "/chat/completions", json=CHAT)
        assert token in cassette.read_text()
        with conformance.checked_server(
            cassette=str(cassette), record_mode="new_episodes", upstream=upstream.url
        ) as server:
            httpx.post(server.url + "/chat/completions", json=CHAT)  # replayed
            httpx.post(server.url + "/embeddings", json=EMBED)  # recorded: the file is saved
    text = cassette.read_text()
    assert token not in text and "uthorization" not in text
    assert text.count("- request:") == 2
