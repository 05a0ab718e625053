"""Provider profiles, as a second hunt found them wrong (each test names what was wrong).

Facts: shared/reference/providers.md (the section each test names). Real servers, the real SDK or
httpx; profile answers are the providers', so the servers are not the conformance-checked ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from profile_support import HELLO, chat, chunks, sdk

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


# --- the headers a gateway adds to every answer, not to chat's alone -------------------------------


def test_litellm_headers_come_on_every_endpoints_answer(server: MockServer) -> None:
    # providers.md §4, "Response headers": the proxy returns its `x-litellm-*` headers on what
    # it answers; they came on chat answers only, so an app's cost tracking of embeddings (its
    # `x-litellm-response-cost`) read nothing.
    with sdk(server, "litellm") as proxy:
        embedded = proxy.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input="hi"
        )
        streamed = proxy.responses.with_raw_response.create(
            model="gpt-4o", input="hi", max_output_tokens=16, stream=True
        )
    for raw in (embedded, streamed):
        assert raw.headers["x-litellm-response-cost"] == "0.0"
        assert re.fullmatch(r"[0-9a-f-]{36}", raw.headers["x-litellm-call-id"])
    assert embedded.parse().data[0].embedding


def test_openrouter_names_the_generation_on_completions_and_responses(server: MockServer) -> None:
    # providers.md §2: "Response header X-Generation-Id"; OpenRouter's streaming.mdx: it is
    # "returned in the X-Generation-Id response header for all endpoints (chat completions,
    # completions, responses, and messages)". It came on chat answers only.
    with sdk(server, "openrouter") as router:
        completed = router.completions.with_raw_response.create(
            model="openai/gpt-4o", prompt="hi", max_tokens=2
        )
        responded = router.responses.with_raw_response.create(model="openai/gpt-4o", input="hi")
        embedded = router.embeddings.with_raw_response.create(
            model="openai/text-embedding-3-small", input="hi"
        )
    for raw in (completed, responded):
        assert re.fullmatch(r"gen-\d+-\w{20}", raw.headers["x-generation-id"])
    assert "x-generation-id" not in embedded.headers  # (the docs name no other endpoint)


# --- OpenRouter's `finish_reason: "error"` comes with the error ------------------------------------


@pytest.fixture(scope="module")
def failing() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        running.add_rule(
            {"match": {"user": "fail"}, "reply": {"content": "partial", "finish_reason": "error"}}
        )
        running.add_rule({"reply": "all well"})
        yield running


def test_openrouters_error_finish_says_what_went_wrong(failing: MockServer) -> None:
    # providers.md §2, "Non-stream provider errors": a 200 whose choice finishes with `error`
    # holds `choices[0].error{code,message,metadata}` beside the partial content; a scripted
    # `finish_reason: error` (docs/providers.md: OpenRouter's, scriptable) came without it.
    answer = chat(failing, "openrouter", messages=[{"role": "user", "content": "fail"}]).json()
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "error" and choice["message"]["content"] == "partial"
    assert choice["error"]["code"] == 502
    assert choice["error"]["metadata"]["error_type"] == "provider_unavailable"
    ordinary = chat(failing, "openrouter").json()["choices"][0]
    assert "error" not in ordinary  # (a choice that ends well has none)


def test_openrouters_error_finish_in_a_stream_is_its_mid_stream_error(failing: MockServer) -> None:
    # providers.md §2, "Streaming: mid-stream errors": the chunk that finishes with `error`
    # carries a top-level `error` and `delta: {content: ""}`, and the stream ends there. It was
    # an ordinary finish chunk and usage chunk, so the openai SDK read it as a stream that
    # ended well; now it raises, as it does on OpenRouter.
    streamed = chat(
        failing, "openrouter", messages=[{"role": "user", "content": "fail"}], stream=True
    )
    last = chunks(streamed)[-1]
    assert last["error"]["code"] == 502 and last["choices"][0]["finish_reason"] == "error"
    assert last["choices"][0]["delta"] == {"content": ""}
    assert "data: [DONE]" not in streamed.text
    with sdk(failing, "openrouter") as router:
        stream = router.chat.completions.create(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "fail"}], stream=True
        )
        with pytest.raises(openai.APIError, match="Provider disconnected"):
            for _ in stream:
                pass


# --- Anthropic caps `temperature` at 1 -------------------------------------------------------------


def test_anthropic_caps_a_temperature_above_one(server: MockServer) -> None:
    # providers.md §6, "Rejected / clamped": "values above 1 are capped at 1" (its page:
    # "Between 0 and 1 (inclusive). Values greater than 1 are capped at 1."). A temperature past
    # OpenAI's 2 was OpenAI's 400 under the Anthropic prefix.
    with sdk(server, "anthropic") as claude:
        answer = claude.chat.completions.create(
            model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}], temperature=2.5
        )
    assert answer.choices[0].message.content
    with sdk(server, "openai") as gpt, pytest.raises(openai.BadRequestError):
        gpt.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], temperature=2.5
        )


# --- Ollama's legacy completions carry its ids and fingerprint -------------------------------------


def test_ollama_legacy_completions_have_its_short_ids_and_fingerprint(server: MockServer) -> None:
    # providers.md §3, "Ids": `cmpl-<n>` (rand.Intn(999)), and "Extra response fields":
    # `system_fingerprint: "fp_ollama"` (openai.go's ToCompletion and ToCompleteChunk set it on
    # completions as on chat). Its /v1/completions answered OpenAI's 29-character ids.
    with sdk(server, "ollama") as ollama:
        whole = ollama.completions.create(model="llama3.2:latest", prompt="hi", max_tokens=3)
        streamed = list(
            ollama.completions.create(
                model="llama3.2:latest",
                prompt="hi",
                max_tokens=3,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert re.fullmatch(r"cmpl-\d{1,3}", whole.id) and whole.system_fingerprint == "fp_ollama"
    assert whole.choices[0].text
    assert {chunk.id for chunk in streamed} == {streamed[0].id}
    assert re.fullmatch(r"cmpl-\d{1,3}", streamed[0].id)
    assert {chunk.system_fingerprint for chunk in streamed} == {"fp_ollama"}
    assert streamed[-1].usage is not None and streamed[-1].usage.completion_tokens == 3


# --- OpenRouter's `debug.echo_upstream_body` -------------------------------------------------------


def test_openrouter_echoes_the_upstream_body_in_a_first_chunk(server: MockServer) -> None:
    # providers.md §2, "Extra request fields": `debug.echo_upstream_body` (streaming only)
    # "sends a first chunk with empty choices and a debug field". It was taken and ignored, so
    # a stream parser that reads `choices[0]` of every chunk could not meet that chunk here.
    asked = {"debug": {"echo_upstream_body": True}}
    with sdk(server, "openrouter") as router:
        streamed = list(
            router.chat.completions.create(
                model="openai/gpt-4o", messages=HELLO, max_tokens=2, stream=True, extra_body=asked
            )
        )
        whole = router.chat.completions.create(
            model="openai/gpt-4o", messages=HELLO, max_tokens=2, extra_body=asked
        )
    first = streamed[0]
    assert first.choices == [] and first.id == streamed[1].id
    echoed = (first.model_extra or {})["debug"]["echo_upstream_body"]
    assert echoed["messages"] == HELLO and "debug" not in echoed
    assert streamed[1].choices[0].delta.role == "assistant"
    assert whole.choices[0].message.content  # (a body ignores it: "streaming only")
    # The debug chunk is no chunk of the answer: a stream fault lands where it does without it.
    broken = chat(
        server,
        "openrouter",
        stream=True,
        debug={"echo_upstream_body": True},
        headers={"x-mockai-fault": "error_event_after=1"},
    )
    got = chunks(broken)
    assert got[0]["choices"] == [] and got[1]["choices"][0]["delta"]["role"] == "assistant"
    assert "error" in got[2] and len(got) == 3


# --- DeepSeek's FIM completions are under /beta ----------------------------------------------------


def test_deepseek_serves_fim_completions_under_beta(server: MockServer) -> None:
    # providers.md §10, "Endpoints": FIM `/completions` is "beta, under /beta" (its docs give
    # clients `base_url="https://api.deepseek.com/beta"`). That base URL was mockai's 404.
    base = server.base_url + "/deepseek/beta"
    with openai.OpenAI(base_url=base, api_key="sk-test", max_retries=0) as fim:
        filled = fim.completions.create(
            model="deepseek-chat", prompt="def fib(a):", suffix="    return 1", max_tokens=8
        )
        chatted = fim.chat.completions.create(model="deepseek-chat", messages=HELLO, max_tokens=4)
    assert filled.choices[0].text and filled.model == "deepseek-chat"
    assert chatted.usage is not None and chatted.usage.model_extra
    assert "prompt_cache_hit_tokens" in chatted.usage.model_extra  # (DeepSeek's, as under /v1)
