"""A real openai client for a running server, closed when the block ends."""

from __future__ import annotations

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
