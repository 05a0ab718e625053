"""What the provider-profile tests share: a plain server, SDK clients per provider, raw frames.

Profile answers are each provider's, not OpenAI's: the servers here are not the conformance-
checked ones of conftest.py (an OpenRouter error with an integer `code`, Gemini's error array or
Together's bare `/models` array break OpenAI's spec on purpose).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai

from mockai import MockServer

KEY = "sk-profile-test-0000"
HELLO = [{"role": "user", "content": "Hello there"}]

# A chat model each provider's catalog lists.
MODELS = {
    "openai": "gpt-4o-mini",
    "groq": "llama-3.3-70b-versatile",
    "openrouter": "openai/gpt-4o",
    "ollama": "llama3.2:latest",
    "litellm": "gpt-4o",
    "vercel": "openai/gpt-4o-mini",
    "anthropic": "claude-sonnet-4-5",
    "mistral": "mistral-large-latest",
    "deepseek": "deepseek-chat",
    "together": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "fireworks": "accounts/fireworks/models/llama-v3p3-70b-instruct",
    "vllm": "meta-llama/Llama-3.1-8B-Instruct",
    "gemini": "gemini-2.5-flash",
    "azure": "gpt-4o-mini",
}


def sdk(server: MockServer, provider: str, **options: Any) -> openai.OpenAI:
    """The OpenAI SDK pointed at `provider`'s prefix on `server`, no retries."""
    options.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=server.provider_url(provider), api_key=KEY, **options)


def post(server: MockServer, provider: str, path: str, body: Any, **headers: str) -> httpx.Response:
    """A raw POST under `provider`'s prefix (for bytes the SDK would hide)."""
    return httpx.post(
        server.provider_url(provider) + path,
        json=body,
        headers={"Authorization": f"Bearer {KEY}", **headers},
        timeout=30,
    )


def chat(server: MockServer, provider: str, **body: Any) -> httpx.Response:
    body.setdefault("model", MODELS[provider])
    body.setdefault("messages", HELLO)
    headers = body.pop("headers", {})
    return post(server, provider, "/chat/completions", body, **headers)


def frames(response: httpx.Response) -> list[str]:
    """The SSE events of a stream, comments included, in order."""
    return [frame for frame in response.text.split("\n\n") if frame]


def chunks(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON `data:` chunks of a stream (no comments, no `[DONE]`)."""
    return [
        json.loads(frame[6:])
        for frame in frames(response)
        if frame.startswith("data: ") and frame != "data: [DONE]"
    ]


def streamed_text(items: Iterator[Any] | list[dict[str, Any]]) -> str:
    text = ""
    for chunk in items:
        choices = chunk["choices"] if isinstance(chunk, dict) else chunk.choices
        for choice in choices or ():
            delta = choice["delta"] if isinstance(choice, dict) else choice.delta
            content = delta.get("content") if isinstance(delta, dict) else delta.content
            text += content or ""
    return text
