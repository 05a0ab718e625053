"""Streams say what the unstreamed answer says (a streams hunt's findings).

Each test drives a real server with the SDK, streamed and not, and holds the two to one answer:
what a client assembles from the chunks or events is what the JSON body holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from conformance import checked_server
from profile_support import HELLO, MODELS, post
from sdk import sdk

from mockai import MockServer

LEGACY_MODEL = "gpt-3.5-turbo-instruct"
REFUSAL = "I can't help with that."

RULES: list[dict[str, Any]] = [
    {"name": "refuse", "match": {"user": "refuse me"}, "reply": {"refusal": REFUSAL}},
    {
        "name": "call",
        "match": {"user": "call me"},
        "reply": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
    },
]
WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with checked_server(fallback="generate") as running:
        running.add_rules(RULES)
        yield running


@pytest.fixture(scope="module")
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with sdk(server) as built:
        yield built


def streamed_texts(client: openai.OpenAI, **request: Any) -> dict[int, str]:
    """Each choice's text as the chunks of a streamed legacy completion spell it."""
    texts: dict[int, str] = {}
    for chunk in client.completions.create(**request, stream=True):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    return texts


def test_a_refusal_on_legacy_completions_is_its_text_streamed_or_not(
    client: openai.OpenAI,
) -> None:
    # Legacy completions have no refusal field: the body had said "" while its logprobs, its
    # usage and its stream said the refusal's words.
    request: dict[str, Any] = {"model": LEGACY_MODEL, "prompt": "refuse me", "logprobs": 1}
    whole = client.completions.create(**request)
    choice = whole.choices[0]
    assert choice.text == REFUSAL
    assert choice.logprobs is not None and "".join(choice.logprobs.tokens or []) == REFUSAL
    assert streamed_texts(client, **request) == {0: REFUSAL}


def _padded_events(response: httpx.Response) -> list[bool]:
    """For each event of a stream: whether its JSON carries `obfuscation`."""
    events = [frame for frame in response.content.split(b"\n\n") if b"data: {" in frame]
    assert events, response.content[:300]
    return [b'"obfuscation":' in frame for frame in events]


@pytest.mark.parametrize("provider", ["groq", "together", "vercel", "vllm"])
def test_another_provider_s_streams_carry_no_obfuscation_padding(provider: str) -> None:
    # OpenAI's padding against side channels is its servers' own: under Together's or Vercel's
    # profile every chat chunk had it, and under every profile the Responses deltas had it.
    with MockServer(fallback="generate") as plain:
        chat = post(
            plain,
            provider,
            "/chat/completions",
            {"model": MODELS[provider], "messages": HELLO, "stream": True},
        )
        assert chat.status_code == 200, chat.text
        assert not any(_padded_events(chat))
        responses = post(
            plain,
            provider,
            "/responses",
            {"model": MODELS[provider], "input": "hi", "stream": True},
        )
        if responses.status_code != 404:  # (a provider without the Responses API)
            assert responses.status_code == 200, responses.text
            assert not any(_padded_events(responses))


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_openai_s_and_azure_s_streams_keep_the_padding(provider: str) -> None:
    with MockServer(fallback="generate") as plain:
        chat = post(
            plain,
            provider,
            "/chat/completions",
            {"model": MODELS[provider], "messages": HELLO, "stream": True},
        )
        assert chat.status_code == 200, chat.text
        assert all(_padded_events(chat)[-3:])  # (Azure's first frame is its filter results)
        responses = post(
            plain,
            provider,
            "/responses",
            {"model": MODELS[provider], "input": "hi", "stream": True},
        )
        assert responses.status_code == 200, responses.text
        assert any(_padded_events(responses))


def _first_delta(server: MockServer, **request: Any) -> list[str]:
    """The keys of a streamed chat answer's first delta, in the order they are sent."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "call me"}]}
    raw = httpx.post(server.url + "/chat/completions", json={**body, **request, "stream": True})
    first = raw.content.split(b"\n\n")[0].removeprefix(b"data: ")
    return list(json.loads(first)["choices"][0]["delta"])


@pytest.mark.parametrize(
    ("request_", "call_key"),
    [
        ({"tools": [{"type": "function", "function": WEATHER}]}, "tool_calls"),
        ({"functions": [WEATHER]}, "function_call"),
    ],
)
def test_a_call_s_first_delta_ends_with_a_null_refusal(
    server: MockServer, request_: dict[str, Any], call_key: str
) -> None:
    # As the API's does (captures of real streams, gpt-4o and gpt-4.1, tools and functions):
    # `{"role":"assistant","content":null,"tool_calls":[...],"refusal":null}`; it had no refusal.
    assert _first_delta(server, **request_) == ["role", "content", call_key, "refusal"]


@pytest.mark.parametrize(
    ("model", "reasoning", "echoed"),
    [
        ("o4-mini", None, "medium"),  # the model's default, though not asked for
        ("gpt-5", {"summary": "auto"}, "medium"),
        ("gpt-5", {"effort": "low"}, "low"),
        # gpt-5.1 and later reason with `none` unless asked, and say so (captures of real
        # gpt-5.4 answers: `"reasoning":{"effort":"none","summary":null}`); it said null.
        ("gpt-5.1", None, "none"),
        ("gpt-5.2", {"summary": "auto"}, "none"),
        ("gpt-4o-mini", None, None),  # a model that does not reason
    ],
)
def test_a_reasoning_model_s_response_echoes_the_effort_it_reasons_with(
    client: openai.OpenAI, model: str, reasoning: dict[str, str] | None, echoed: str | None
) -> None:
    # Captures of real o3, gpt-5 and gpt-5-nano streams whose requests set no effort say
    # `"reasoning":{"effort":"medium","summary":null}`, from `response.created` on; mockai said
    # null while it reasoned (and billed) at medium.
    request: dict[str, Any] = {"model": model, "input": "hi", "max_output_tokens": 4000}
    if reasoning is not None:
        request["reasoning"] = reasoning
    whole = client.responses.create(**request)
    assert whole.reasoning is not None and whole.reasoning.effort == echoed
    with client.responses.stream(**request) as stream:
        events = list(stream)
        final = stream.get_final_response()
    created = events[0]
    assert created.type == "response.created" and created.response.reasoning is not None
    assert created.response.reasoning.effort == echoed
    assert final.reasoning is not None and final.reasoning.effort == echoed


def test_with_logprobs_a_chunk_that_samples_no_token_carries_empty_logprobs(
    server: MockServer, client: openai.OpenAI
) -> None:
    # Captures of real streams with `logprobs: true`: the role's chunk (and a call's argument
    # chunks) say `"logprobs":{"content":[],"refusal":null}`; mockai said null, so a streamed
    # tool call's helper snapshot had no logprobs where the unstreamed answer has empty ones.
    tools: Any = [{"type": "function", "function": WEATHER}]
    request: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "call me"}],
        "logprobs": True,
        "tools": tools,
    }
    raw = httpx.post(server.url + "/chat/completions", json={**request, "stream": True})
    chunks = [
        json.loads(frame.removeprefix(b"data: "))
        for frame in raw.content.split(b"\n\n")
        if frame.startswith(b"data: {")
    ]
    *answer, finish = chunks
    assert all(c["choices"][0]["logprobs"] == {"content": [], "refusal": None} for c in answer)
    assert finish["choices"][0]["logprobs"] is None
    whole = client.chat.completions.create(**request)
    with client.chat.completions.stream(**request) as stream:
        for _ in stream:
            pass
        streamed = stream.get_final_completion()
    assert whole.choices[0].logprobs is not None
    assert streamed.choices[0].logprobs == whole.choices[0].logprobs
