"""Provider profiles, as a second hunt found them wrong (each test names what was wrong).

Facts: shared/reference/providers.md (the section each test names). Real servers, the real SDK or
httpx; profile answers are the providers', so the servers are not the conformance-checked ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from profile_support import chat

from mockai import MockServer


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


# --- a `messages` or `tool_calls` that is no array is a 400, not a 500 ----------------------------


@pytest.mark.parametrize(
    ("provider", "messages"),
    [
        ("ollama", 1),
        ("ollama", True),
        ("mistral", 1.5),
        ("mistral", [{"role": "assistant", "content": "a", "tool_calls": 1}]),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_a_messages_or_tool_calls_of_the_wrong_type_is_refused_not_a_crash(
    server: MockServer, provider: str, messages: Any, stream: bool
) -> None:
    # Ollama's image check and Mistral's field and tool-call-id checks iterated what they were
    # given: a number was mockai's 500 (a traceback), where the provider refuses the request.
    answer = chat(server, provider, messages=messages, stream=stream)
    assert answer.status_code == 400, answer.text
    assert "internal error" not in answer.text
