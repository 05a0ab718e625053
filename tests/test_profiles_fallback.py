"""An app with a fallback chain, OpenRouter -> Groq -> OpenAI, end to end against one mockai that
serves all three (OpenRouter and Groq under their prefixes, OpenAI at /v1).

OpenRouter is out of credits (its 402, with `metadata`), Groq is rate-limited (its 429, with
`retry-after` in seconds and Groq's rate-limit headers), OpenAI answers. The app is written the
way such apps are: the OpenAI SDK pointed at each provider in turn, falling over on the statuses
that mean "try elsewhere" — and, for streams, on OpenRouter's in-band error inside a 200. Then
the same chain as a litellm Router with `fallbacks` (in tests/test_profiles_litellm.py, where litellm's
clients are cleaned up).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import openai
import pytest
from profile_support import KEY

from mockai import MockServer

QUESTION = [{"role": "user", "content": "Summarise the quarterly report."}]
FALL_OVER = frozenset({402, 408, 429, 500, 502, 503})


# --- the app ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    provider: str
    text: str
    failures: list[tuple[str, int | str]] = field(default_factory=list)


def ask(chain: list[tuple[str, str, str]], *, stream: bool = False) -> Outcome:
    """Ask each (provider, base URL, model) in turn until one answers."""
    failures: list[tuple[str, int | str]] = []
    for provider, base_url, model in chain:
        with openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0) as client:
            try:
                if not stream:
                    answer = client.chat.completions.create(model=model, messages=QUESTION)  # type: ignore[arg-type]
                    return Outcome(provider, answer.choices[0].message.content or "", failures)
                text = ""
                for chunk in client.chat.completions.create(
                    model=model,
                    messages=QUESTION,  # type: ignore[arg-type]
                    stream=True,
                ):
                    if chunk.choices:
                        text += chunk.choices[0].delta.content or ""
                return Outcome(provider, text, failures)
            except openai.APIStatusError as error:
                if error.status_code not in FALL_OVER:
                    raise
                failures.append((provider, error.status_code))
            except openai.APIError as error:  # an error inside a 200 stream
                failures.append((provider, f"in-band: {error.message}"))
    raise RuntimeError(f"every provider failed: {failures}")


# --- the mock ---------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        running.add_rules(
            [
                {
                    "name": "openrouter-out-of-credits",
                    "match": {"provider": "openrouter"},
                    "error": "insufficient_quota",
                },
                {
                    "name": "groq-rate-limited",
                    "match": {"provider": "groq"},
                    "error": {"name": "rate_limit", "retry_after": 7},
                },
                {"name": "openai-answers", "reply": {"content": "Revenue grew 12%."}},
            ]
        )
        yield running


def chain(server: MockServer) -> list[tuple[str, str, str]]:
    return [
        ("openrouter", server.provider_url("openrouter"), "openai/gpt-4o"),
        ("groq", server.provider_url("groq"), "llama-3.3-70b-versatile"),
        ("openai", server.url, "gpt-4o-mini"),
    ]


def test_the_app_falls_over_openrouter_402_then_groq_429_to_openai(server: MockServer) -> None:
    outcome = ask(chain(server))
    assert outcome.provider == "openai" and outcome.text == "Revenue grew 12%."
    assert outcome.failures == [("openrouter", 402), ("groq", 429)]
    seen = [(e.path, e.status, e.rule) for e in server.requests]
    assert seen == [
        ("/openrouter/api/v1/chat/completions", 402, "openrouter-out-of-credits"),
        ("/groq/openai/v1/chat/completions", 429, "groq-rate-limited"),
        ("/v1/chat/completions", 200, "openai-answers"),
    ]
    # Each refusal came in its provider's own shape.
    openrouter, groq = server.requests[0], server.requests[1]
    assert openrouter.response_json() == {
        "error": {
            "code": 402,
            "message": openrouter.response_json()["error"]["message"],
            "metadata": openrouter.response_json()["error"]["metadata"],
        }
    }
    assert openrouter.response_json()["error"]["metadata"]["limit_source"] == "openrouter_credits"
    assert groq.response_headers["retry-after"] == "7"
    assert "retry-after-ms" not in groq.response_headers


def test_a_stream_falls_over_on_openrouters_error_inside_a_200(server: MockServer) -> None:
    server.clear_rules()
    server.add_rules(
        [
            {
                "name": "openrouter-breaks-mid-stream",
                "match": {"provider": "openrouter"},
                "reply": {"content": "The quarterly report shows"},
                "faults": {"error_event_after": 2},
            },
            {"match": {"provider": "groq"}, "error": "rate_limit"},
            {"reply": {"content": "Revenue grew 12%."}},
        ]
    )
    outcome = ask(chain(server), stream=True)
    assert outcome.provider == "openai" and outcome.text == "Revenue grew 12%."
    assert outcome.failures == [
        ("openrouter", "in-band: Internal Server Error"),
        ("groq", 429),
    ]
    assert [e.status for e in server.requests] == [200, 429, 200]  # OpenRouter's was a 200
