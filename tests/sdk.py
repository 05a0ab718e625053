"""A real openai client for a running server, closed when the block ends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai

API_KEY = "sk-test"


@contextmanager
def sdk(server: Any, max_retries: int = 0) -> Iterator[openai.OpenAI]:
    """The sync SDK pointed at `server` (no retries unless asked)."""
    with openai.OpenAI(base_url=server.url, api_key=API_KEY, max_retries=max_retries) as client:
        yield client


def settled(server: Any, count: int, timeout: float = 2.0) -> list[Any]:
    """The journal once it holds `count` entries.

    A streamed answer is journaled just after its last byte is written, so a client can finish
    reading before the entry exists; reading the journal right after a stream must wait for it.
    """
    deadline = time.monotonic() + timeout
    while len(server.requests) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    return list(server.requests)
