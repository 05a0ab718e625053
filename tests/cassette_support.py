"""Upstreams for the cassette tests, all on loopback: a paced mockai, and small scripted apps.

`paced_upstream()` is a second mockai whose generated answers arrive like a real model's (a time
to first token, then irregular gaps between chunks), so recorded timing is worth checking.
`LoopbackApp` serves any small aiohttp app (errors, gzip, broken streams) on a free port.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import conformance
from aiohttp import web

from mockai import MockServer
from mockai.catalog import Catalog
from mockai.delivery.timing import Fixed, StreamTiming, Uniform
from mockai.generate.fallback import FallbackGenerator
from mockai.pipeline.exchange import Exchange
from mockai.pipeline.reply import Plan, Timing
from mockai.server.app import BackgroundLoop

SECRET_KEY = "sk-proj-" + "Zq8xW2vL9mN4bR7tY1cK5pH3" * 2  # key-shaped, never real


class PacedGenerator:
    """A Source answering like the fallback generator, paced like a real model."""

    loaded = False

    def __init__(self, seed: int = 7, ttft: float = 0.03, gaps: tuple[float, float] = (0.0, 0.004)):
        self.generator = FallbackGenerator(seed, Catalog())
        self.timing = Timing(
            latency=Fixed(0.005),
            stream=StreamTiming(ttft=Fixed(ttft), chunk_delay=Uniform(*gaps)),
            seed=seed,
        )

    async def plan(self, exchange: Exchange, key: bytes) -> Plan | None:
        return Plan(
            source="generator", reply=self.generator.reply(exchange, key), timing=self.timing
        )

    def near_misses(self, exchange: Exchange) -> list[str]:
        return []


@contextlib.contextmanager
def paced_upstream(**pacing: Any) -> Iterator[MockServer]:
    """A second mockai (conformance-checked) whose answers are paced like a real model's."""
    with conformance.checked_server(sources=[PacedGenerator(**pacing)]) as server:
        yield server


Handler = Callable[[web.Request], Any]


class LoopbackApp:
    """A small aiohttp app on 127.0.0.1 (free port), served on mockai's background loop."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.app = web.Application()
        for path, handler in routes.items():
            self.app.router.add_route("*", path, handler)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

        @web.middleware
        async def keep(request: web.Request, handler: Any) -> Any:
            self.requests.append((request.path, dict(request.headers), await request.read()))
            return await handler(request)

        self.app.middlewares.append(keep)

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = next(a[1] for a in self._runner.addresses if isinstance(a, tuple))

    async def _stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def __enter__(self) -> LoopbackApp:
        BackgroundLoop.shared().run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        BackgroundLoop.shared().run(self._stop())

    @property
    def url(self) -> str:
        """The OpenAI-style base URL (with /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"


def chunk(content: str | None, finish: str | None = None) -> bytes:
    """One spec-valid chat completion chunk as an SSE frame."""
    delta = {} if content is None else {"content": content}
    payload = {
        "id": "chatcmpl-loopback",
        "object": "chat.completion.chunk",
        "created": 1735689600,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def error_body(status: int, message: str, kind: str, code: str | None) -> web.Response:
    """An OpenAI-shaped error answer."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


def interactions(path: Path) -> list[Any]:
    """The interactions of a cassette file, as mockai reads them."""
    from mockai.cassette import CassetteFile

    return CassetteFile.load(path).interactions


def chat_completion(answer_id: str, model: str, content: str, **more: Any) -> dict[str, Any]:
    """A chat completion as the API answers one (`more`: `usage`, in the order given)."""
    return {
        "id": answer_id,
        "object": "chat.completion",
        "created": 1735689600,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        **more,
    }


def recorded_chat(
    body: dict[str, Any], answer: dict[str, Any], *, indent: int | None = None
) -> dict[str, Any]:
    """One interaction of a vcrpy cassette: `body` sent to chat completions, `answer` recorded
    (written with `indent`, as the API pretty-prints its JSON)."""
    return {
        "request": {
            "body": json.dumps(body),
            "headers": {"Content-Type": ["application/json"]},
            "method": "POST",
            "uri": "https://api.openai.com/v1/chat/completions",
        },
        "response": {
            "body": {"string": json.dumps(answer, indent=indent)},
            "headers": {"Content-Type": ["application/json"]},
            "status": {"code": 200, "message": "OK"},
        },
    }
