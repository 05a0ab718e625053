"""Call a mockai server through the real openai SDK, sync or async, and see what the client saw.

`call(mode, server, ...)` returns an `Outcome`: the exception the SDK raised (or None), the
chunks or events a stream yielded before it, and how long the call took. `attempts(server)` are
the journal entries of the generating requests the server saw, in arrival order, so a test can
count them and measure the gaps the client left between them.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import openai

from mockai import MockServer
from mockai.pipeline.journal import JournalEntry

API_KEY = "sk-test-0000"
MESSAGES = [{"role": "user", "content": "Tell me how a stream breaks."}]
MODES = ("sync", "async")


@dataclass
class Outcome:
    """What the client saw."""

    error: BaseException | None = None
    result: Any = None
    chunks: list[Any] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def text(self) -> str:
        """The streamed chat text (content deltas joined)."""
        return "".join(
            c.choices[0].delta.content or "" for c in self.chunks if getattr(c, "choices", None)
        )


def _request(endpoint: str, stream: bool, max_tokens: int | None) -> tuple[str, dict[str, Any]]:
    if endpoint == "chat":
        options: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES}
        if max_tokens is not None:
            options["max_tokens"] = max_tokens
    elif endpoint == "responses":
        options = {"model": "gpt-4o-mini", "input": MESSAGES[0]["content"]}
        if max_tokens is not None:
            options["max_output_tokens"] = max_tokens
    else:
        options = {
            "model": "gpt-3.5-turbo-instruct",
            "prompt": "Once",
            "max_tokens": max_tokens or 16,
        }
    if stream:
        options["stream"] = True
    return endpoint, options


def _method(client: Any, endpoint: str) -> Any:
    return {
        "chat": lambda: client.chat.completions.create,
        "responses": lambda: client.responses.create,
        "completions": lambda: client.completions.create,
    }[endpoint]()


def call(
    mode: str,
    server: MockServer,
    headers: dict[str, str] | None = None,
    *,
    stream: bool = False,
    endpoint: str = "chat",
    timeout: float = 10.0,
    retries: int = 2,
    max_tokens: int | None = None,
) -> Outcome:
    """One SDK call in `mode` ("sync" or "async"); never raises, the Outcome says what happened."""
    endpoint, options = _request(endpoint, stream, max_tokens)
    options["extra_headers"] = headers or {}
    settings = {
        "base_url": server.url,
        "api_key": API_KEY,
        "max_retries": retries,
        "timeout": timeout,
    }
    outcome = Outcome()
    start = time.monotonic()
    if mode == "sync":
        with openai.OpenAI(**settings) as client:
            try:
                outcome.result = _method(client, endpoint)(**options)
                if stream:
                    with outcome.result as events:
                        for event in events:
                            outcome.chunks.append(event)
            except Exception as error:
                outcome.error = error
    else:
        asyncio.run(_acall(settings, endpoint, options, stream, outcome))
    outcome.elapsed = time.monotonic() - start
    return outcome


async def _acall(
    settings: dict[str, Any],
    endpoint: str,
    options: dict[str, Any],
    stream: bool,
    outcome: Outcome,
) -> None:
    async with openai.AsyncOpenAI(**settings) as client:
        try:
            outcome.result = await _method(client, endpoint)(**options)
            if stream:
                async with outcome.result as events:
                    async for event in events:
                        outcome.chunks.append(event)
        except Exception as error:
            outcome.error = error


def attempts(server: MockServer) -> list[JournalEntry]:
    """The generating requests the server saw, oldest first."""
    return [entry for entry in server.requests if entry.endpoint is not None]


def gaps(entries: list[JournalEntry]) -> list[float]:
    """Seconds between consecutive arrivals."""
    return [b.arrived - a.arrived for a, b in itertools.pairwise(entries)]
