"""Regenerate the example cassettes in `cassettes/` (offline: every upstream is on loopback).

    python scripts/record_example_cassettes.py

- `chat_json.yaml`, `chat_stream.yaml`, `chat_tools.yaml`, `responses_stream.yaml`,
  `embeddings.yaml`: recorded by `mockai serve --upstream ... --cassette ... --record-mode once`
  from a second mockai on 127.0.0.1:8001 (seed 42) whose answers are paced like a real model's
  (time to first token, then 15-40 ms per chunk), driven by the real `openai` SDK.
- `pytest-recording/test_openai_app/test_summarize.yaml`: what vcrpy / pytest-recording write
  for the real API (`filter_headers=["authorization"]`): a gzip JSON body stored as `!!binary`,
  Cloudflare and account headers, a streamed answer; recorded by vcrpy itself from a loopback app
  imitating api.openai.com, with the URLs then pointed at https://api.openai.com.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import httpx
import openai
import vcr
from aiohttp import web

from mockai import MockServer
from mockai.catalog import Catalog
from mockai.delivery.timing import Fixed, StreamTiming, Uniform
from mockai.generate.fallback import FallbackGenerator
from mockai.pipeline.exchange import Exchange
from mockai.pipeline.reply import Plan, Timing
from mockai.server.app import BackgroundLoop

ROOT = Path(__file__).resolve().parent.parent / "cassettes"
UPSTREAM_PORT = 8001
MODEL = "gpt-4o-mini"


class PacedModel:
    """Generated answers, delivered at a real model's pace."""

    loaded = False

    def __init__(self) -> None:
        self.generator = FallbackGenerator(42, Catalog())
        self.timing = Timing(
            latency=Fixed(0.12),
            stream=StreamTiming(ttft=Fixed(0.35), chunk_delay=Uniform(0.015, 0.04)),
            seed=42,
        )

    async def plan(self, exchange: Exchange, key: bytes) -> Plan | None:
        return Plan(
            source="generator", reply=self.generator.reply(exchange, key), timing=self.timing
        )

    def near_misses(self, exchange: Exchange) -> list[str]:
        return []


def record(name: str, upstream: MockServer, calls: object) -> None:
    path = ROOT / name
    path.unlink(missing_ok=True)
    with (
        MockServer(
            cassette=str(path), record_mode="once", upstream=upstream.url, log_requests=False
        ) as recorder,
        openai.OpenAI(base_url=recorder.url, api_key="sk-example") as client,
    ):
        calls(client)  # type: ignore[operator]
    print(f"recorded {path.relative_to(ROOT.parent)}")


def chat_json(client: openai.OpenAI) -> None:
    client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        temperature=0,
    )


def chat_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Write a haiku about rivers."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for _ in stream:
        pass


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def chat_tools(client: openai.OpenAI) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'})
    client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])


def responses_stream(client: openai.OpenAI) -> None:
    for _ in client.responses.create(
        model=MODEL, input="Tell me a one-line story about a lighthouse.", stream=True
    ):
        pass


def embeddings(client: openai.OpenAI) -> None:
    client.embeddings.create(
        model="text-embedding-3-small", input=["red apples", "green pears"], encoding_format="float"
    )
    client.embeddings.create(model="text-embedding-3-small", input="yellow bananas")  # base64


# --- the pytest-recording example ----------------------------------------------------------------

SUMMARY = {
    "id": "chatcmpl-AqV9ExAmPlE0001",
    "object": "chat.completion",
    "created": 1736942400,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Rivers carve valleys, carry sediment and feed deltas.",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 24,
        "completion_tokens": 11,
        "total_tokens": 35,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_0aa8d3e20b",
}


def _api_headers() -> dict[str, str]:
    return {
        "openai-organization": "user-example0000",
        "openai-processing-ms": "487",
        "openai-version": "2020-10-01",
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-requests": "9999",
        "x-ratelimit-remaining-tokens": "199975",
        "x-ratelimit-reset-requests": "8.64s",
        "x-ratelimit-reset-tokens": "7ms",
        "x-request-id": "req_5f0c2a9e8b7d4c3a2f1e0d9c8b7a6f5e",
        "strict-transport-security": "max-age=31536000; includeSubDomains; preload",
        "cf-cache-status": "DYNAMIC",
        "set-cookie": "__cf_bm=EXAMPLE.cookie-value; path=/; domain=.api.openai.com; HttpOnly",
        "cf-ray": "901e2d3c4b5a6978-CDG",
        "alt-svc": 'h3=":443"; ma=86400',
    }


def _chunk(content: str | None, finish: str | None) -> bytes:
    payload = {
        "id": "chatcmpl-AqV9ExAmPlE0002",
        "object": "chat.completion.chunk",
        "created": 1736942401,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_0aa8d3e20b",
        "choices": [
            {
                "index": 0,
                "delta": (
                    {"role": "assistant", "content": "", "refusal": None} if content == "" else {}
                )
                | ({"content": content} if content else {}),
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
    }
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


async def _fake_api(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        response = web.json_response(SUMMARY, headers=_api_headers())
        response.enable_compression(web.ContentCoding.gzip)
        return response
    stream = web.StreamResponse(
        headers={**_api_headers(), "Content-Type": "text/event-stream; charset=utf-8"}
    )
    await stream.prepare(request)
    for piece in ["", "Deltas", " form", " where", " rivers", " slow", "."]:
        await stream.write(_chunk(piece, None))
    await stream.write(_chunk(None, "stop") + b"data: [DONE]\n\n")
    await stream.write_eof()
    return stream


def pytest_recording_example() -> None:
    path = ROOT / "pytest-recording" / "test_openai_app" / "test_summarize.yaml"
    path.unlink(missing_ok=True)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _fake_api)
    runner = web.AppRunner(app)
    loop = BackgroundLoop.shared()
    loop.run(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run(site.start())
    port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
    base = f"http://127.0.0.1:{port}/v1"
    question = [{"role": "user", "content": "Summarize what rivers do, in one sentence."}]
    recorder = vcr.VCR(filter_headers=["authorization"], record_mode="once")
    headers = {"Authorization": "Bearer sk-not-a-real-key", "User-Agent": "OpenAI/Python 1.59.7"}
    with recorder.use_cassette(str(path)), httpx.Client(headers=headers) as http:
        http.post(base + "/chat/completions", json={"model": MODEL, "messages": question})
        http.post(
            base + "/chat/completions", json={"model": MODEL, "messages": question, "stream": True}
        )
    loop.run(runner.cleanup())
    text = re.sub(rf"http://127\.0\.0\.1:{port}", "https://api.openai.com", path.read_text())
    text = text.replace(f"127.0.0.1:{port}", "api.openai.com")
    path.write_text(
        "# What vcrpy / pytest-recording write for the real API (see\n"
        "# scripts/record_example_cassettes.py): a gzip body as !!binary, then a stream.\n" + text
    )
    print(f"recorded {path.relative_to(ROOT.parent)}")


def main() -> int:
    ROOT.mkdir(exist_ok=True)
    try:
        upstream = MockServer(port=UPSTREAM_PORT, sources=[PacedModel()], log_requests=False)
        upstream.start()
    except Exception as error:  # the port is taken
        print(f"cannot start the upstream on port {UPSTREAM_PORT}: {error}", file=sys.stderr)
        return 1
    try:
        record("chat_json.yaml", upstream, chat_json)
        record("chat_stream.yaml", upstream, chat_stream)
        record("chat_tools.yaml", upstream, chat_tools)
        record("responses_stream.yaml", upstream, responses_stream)
        record("embeddings.yaml", upstream, embeddings)
    finally:
        upstream.stop()
    pytest_recording_example()
    return 0


if __name__ == "__main__":
    sys.exit(main())
