"""Each provider's documented differences, one test each, through the OpenAI SDK (what apps point
at every provider) and raw HTTP where the SDK hides the bytes. Facts and sources:
shared/reference/providers.md; the profile modules in mockai/profiles/ name the section."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from profile_support import HELLO, KEY, MODELS, chat, chunks, frames, post, sdk, streamed_text

from mockai import MockServer

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


def _raw_error(error: openai.APIStatusError) -> object:
    return error.response.json()


# --- Groq -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "extra"),
    [
        ("logprobs", {"logprobs": True}),
        ("logit_bias", {"logit_bias": {"1": 5}}),
        ("top_logprobs", {"top_logprobs": 2}),
        ("n", {"n": 2}),
        ("messages[0].name", {"messages": [{"role": "user", "content": "hi", "name": "ann"}]}),
    ],
)
def test_groq_refuses_the_fields_it_does_not_support(
    server: MockServer, field: str, extra: dict[str, object]
) -> None:
    body = {"model": MODELS["groq"], "messages": HELLO, **extra}
    with sdk(server, "groq") as client, pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**body)  # type: ignore[call-overload]
    assert refused.value.status_code == 400 and refused.value.param == field
    # OpenAI takes the same request (its `top_logprobs` needs `logprobs: true`).
    openai_body = {**body, "model": "gpt-4o-mini"}
    if field == "top_logprobs":
        openai_body["logprobs"] = True
    with sdk(server, "openai") as client:
        assert client.chat.completions.create(**openai_body).choices  # type: ignore[call-overload]


def test_groq_answers_carry_x_groq_and_timings(server: MockServer) -> None:
    with sdk(server, "groq") as client:
        answer = client.chat.completions.create(model=MODELS["groq"], messages=HELLO)  # type: ignore[arg-type]
    extra = answer.model_extra or {}
    assert extra["x_groq"]["id"].startswith("req_")
    usage = answer.usage.model_extra or {}  # type: ignore[union-attr]
    assert set(usage) >= {"queue_time", "prompt_time", "completion_time", "total_time"}
    assert usage["total_time"] >= usage["completion_time"] > 0
    assert answer.service_tier == "on_demand"


def test_groq_streams_usage_in_x_groq_of_the_final_chunk(server: MockServer) -> None:
    plain = chunks(chat(server, "groq", stream=True))
    assert plain[0]["x_groq"] == {"id": plain[-1]["x_groq"]["id"]}  # the id, first and last
    assert plain[-1]["choices"][0]["finish_reason"] == "stop"
    assert plain[-1]["x_groq"]["usage"]["completion_tokens"] > 0  # usage without asking
    assert all("usage" not in c.get("x_groq", {}) for c in plain[:-1])
    assert all("usage" not in c for c in plain)  # no OpenAI usage chunk
    asked = chunks(chat(server, "groq", stream=True, stream_options={"include_usage": True}))
    assert asked[-1]["choices"] == [] and asked[-1]["usage"]["completion_tokens"] > 0


def test_groq_rate_limit_headers_count_and_retry_after_only_on_429(server: MockServer) -> None:
    ok = chat(server, "groq")
    assert {"x-ratelimit-limit-requests", "x-ratelimit-reset-tokens"} <= set(ok.headers)
    assert "retry-after" not in ok.headers
    server.add_rule({"match": {"user": "busy"}, "error": {"name": "rate_limit", "retry_after": 2}})
    refused = chat(server, "groq", messages=[{"role": "user", "content": "busy"}])
    assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
    assert "retry-after-ms" not in refused.headers


@pytest.mark.parametrize(("status", "words"), [(498, "Flex tier capacity"), (499, "cancelled")])
def test_groq_has_its_own_statuses(server: MockServer, status: int, words: str) -> None:
    server.add_rule({"error": {"status": status}})
    with sdk(server, "groq") as client, pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model=MODELS["groq"], messages=HELLO)  # type: ignore[arg-type]
    assert refused.value.status_code == status and words in refused.value.message


def test_groq_says_why_a_stream_stopped_in_x_groq_error(server: MockServer) -> None:
    broken = chat(server, "groq", stream=True, headers={"x-mockai-fault": "error_event_after=2"})
    last = chunks(broken)[-1]
    assert last["choices"] == [] and isinstance(last["x_groq"]["error"], str)
    assert "data: [DONE]" not in broken.text


# --- OpenRouter -------------------------------------------------------------------------------


def test_openrouter_out_of_credits_is_a_402_with_metadata(server: MockServer) -> None:
    server.add_rule({"error": "insufficient_quota"})
    with sdk(server, "openrouter") as client, pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model=MODELS["openrouter"], messages=HELLO)  # type: ignore[arg-type]
    assert refused.value.status_code == 402
    body = _raw_error(refused.value)
    assert body["error"]["code"] == 402 and set(body["error"]) == {"code", "message", "metadata"}  # type: ignore[index]
    assert body["error"]["metadata"]["limit_source"] == "openrouter_credits"  # type: ignore[index]


def test_openrouter_answers_carry_provider_native_finish_reason_and_cost(
    server: MockServer,
) -> None:
    with sdk(server, "openrouter") as client:
        raw = client.chat.completions.with_raw_response.create(
            model="anthropic/claude-sonnet-4",
            messages=HELLO,  # type: ignore[arg-type]
        )
    answer = raw.parse()
    assert answer.id.startswith("gen-") and raw.headers["x-generation-id"] == answer.id
    assert (answer.model_extra or {})["provider"] == "Anthropic"
    assert (answer.choices[0].model_extra or {})["native_finish_reason"] == "stop"
    usage = answer.usage.model_extra or {}  # type: ignore[union-attr]
    assert usage["cost"] > 0 and usage["is_byok"] is False
    assert not any(name.startswith("x-ratelimit") for name in raw.headers)  # none on success


def test_openrouter_streams_comments_and_always_usage_repeating_the_finish(
    server: MockServer,
) -> None:
    streamed = chat(server, "openrouter", stream=True)
    assert frames(streamed)[0] == ": OPENROUTER PROCESSING"
    got = chunks(streamed)
    finishes = [c for c in got if c["choices"] and c["choices"][0].get("finish_reason")]
    assert [f["choices"][0]["finish_reason"] for f in finishes] == ["stop", "stop"]  # twice
    assert got[-1]["usage"]["completion_tokens"] > 0 and got[-1]["choices"][0]["delta"] == {}
    assert got[-1]["choices"][0]["native_finish_reason"] == "stop"
    # The SDK parses past the comment and the repeated finish.
    with sdk(server, "openrouter") as client:
        parsed = list(
            client.chat.completions.create(model=MODELS["openrouter"], messages=HELLO, stream=True)  # type: ignore[arg-type]
        )
    assert parsed[-1].usage is not None and streamed_text(iter(parsed))


def test_openrouter_mid_stream_error_is_a_200_with_an_error_chunk(server: MockServer) -> None:
    fault = {"x-mockai-fault": "error_event_after=2"}
    broken = chat(server, "openrouter", stream=True, headers=fault)
    assert broken.status_code == 200
    last = chunks(broken)[-1]
    assert last["error"]["code"] == 500 and last["error"]["metadata"]["error_type"] == "server"
    assert last["choices"] == [
        {
            "index": 0,
            "delta": {"content": ""},
            "finish_reason": "error",
            "native_finish_reason": "error",
        }
    ]
    with sdk(server, "openrouter", default_headers=fault) as client:
        stream = client.chat.completions.create(
            model=MODELS["openrouter"], messages=HELLO, stream=True
        )  # type: ignore[arg-type]
        with pytest.raises(openai.APIError, match="Internal Server Error"):
            list(stream)


def test_openrouter_rate_limit_headers_come_only_on_its_429(server: MockServer) -> None:
    server.add_rule({"error": "rate_limit"})
    refused = chat(server, "openrouter")
    assert refused.status_code == 429
    assert refused.json()["error"]["metadata"] == {"error_type": "rate_limit_exceeded"}
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) > 1_700_000_000_000  # Unix milliseconds


@pytest.mark.parametrize(("written", "wait"), [("soon", 30), ("nan", 1), ("1e400", 1)])
def test_openrouter_reads_a_scripted_wait_as_the_sdks_do(
    server: MockServer, written: str, wait: int
) -> None:
    # A retry-after-ms that is no number of seconds had made the answer a plain-text 500 under
    # the OpenRouter profile, which reads the wait for its reset time. The SDKs skip one that is
    # no number (retry-after says the wait) and back off from one that is no finite wait
    # (mockai's default second then).
    headers = {"retry-after-ms": written, "retry-after": "30"}
    server.add_rule({"error": {"status": 429, "headers": headers}})
    refused = chat(server, "openrouter")
    assert refused.status_code == 429
    assert refused.json()["error"]["metadata"] == {"error_type": "rate_limit_exceeded"}
    reset = int(refused.headers["X-RateLimit-Reset"]) / 1000
    assert wait - 5 < reset - time.time() < wait + 5


def test_openrouter_models_have_no_object_but_pricing(server: MockServer) -> None:
    raw = httpx.get(server.provider_url("openrouter") + "/models").json()
    assert set(raw) == {"data"}
    assert {"pricing", "architecture", "top_provider", "canonical_slug"} <= set(raw["data"][0])
    with sdk(server, "openrouter") as client:
        assert MODELS["openrouter"] in [model.id for model in client.models.list()]


# --- Ollama ---------------------------------------------------------------------------------


def test_ollama_takes_any_key_unless_one_is_required(server: MockServer) -> None:
    # As Ollama does by default; `--require-api-key` is checked under its profile too.
    with openai.OpenAI(base_url=server.provider_url("ollama"), api_key="ollama") as client:
        assert client.chat.completions.create(model=MODELS["ollama"], messages=HELLO).choices  # type: ignore[arg-type]
    with MockServer(require_api_key=KEY, log_requests=False) as keyed:
        with (
            openai.OpenAI(
                base_url=keyed.provider_url("ollama"), api_key="ollama", max_retries=0
            ) as client,
            pytest.raises(openai.AuthenticationError),
        ):
            client.chat.completions.create(model=MODELS["ollama"], messages=HELLO)  # type: ignore[arg-type]
        with openai.OpenAI(base_url=keyed.provider_url("ollama"), api_key=KEY) as client:
            assert client.chat.completions.create(model=MODELS["ollama"], messages=HELLO).choices  # type: ignore[arg-type]


def test_ollama_ignores_n_and_answers_with_short_ids(server: MockServer) -> None:
    with sdk(server, "ollama") as client:
        answer = client.chat.completions.create(model=MODELS["ollama"], messages=HELLO, n=3)  # type: ignore[arg-type]
    assert len(answer.choices) == 1
    assert re.fullmatch(r"chatcmpl-\d{1,3}", answer.id) and int(answer.id[9:]) < 999
    assert answer.system_fingerprint == "fp_ollama"


def test_ollama_refuses_image_urls(server: MockServer) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    refused = chat(server, "ollama", messages=[{"role": "user", "content": content}])
    assert refused.status_code == 400
    assert refused.json() == {
        "error": {
            "message": "invalid image input",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    data_uri = [
        content[0],
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
    ]
    assert (
        chat(server, "ollama", messages=[{"role": "user", "content": data_uri}]).status_code == 200
    )


def test_ollama_streams_tool_calls_whole_with_its_ids(server: MockServer) -> None:
    streamed = chunks(chat(server, "ollama", messages=WEATHER, tools=[WEATHER_TOOL], stream=True))
    deltas = [
        c["choices"][0]["delta"] for c in streamed if c["choices"][0]["delta"].get("tool_calls")
    ]
    assert len(deltas) == 1  # the whole call in one delta
    call = deltas[0]["tool_calls"][0]
    assert call["index"] == 0 and json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert re.fullmatch(r"call_[0-9a-z]{8}", call["id"])
    assert streamed[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_ollama_errors_name_the_kind_and_it_has_no_rate_limit_headers() -> None:
    with MockServer(profile="ollama", models=["llama3.2:latest"], log_requests=False) as server:
        missing = httpx.post(
            server.url + "/chat/completions", json={"model": "mistral:7b", "messages": HELLO}
        )
        ok = httpx.post(
            server.url + "/chat/completions", json={"model": "llama3.2:latest", "messages": HELLO}
        )
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert missing.json()["error"]["code"] is None
    assert not any(name.startswith("x-ratelimit") for name in ok.headers)


# --- LiteLLM proxy --------------------------------------------------------------------------


def test_litellm_errors_have_a_string_code_and_name_the_exception(server: MockServer) -> None:
    server.add_rule({"error": "bad_request"})
    with sdk(server, "litellm") as client, pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODELS["litellm"], messages=HELLO)  # type: ignore[arg-type]
    assert refused.value.code == "400"
    assert "litellm.BadRequestError: " in refused.value.message


def test_litellm_refuses_an_unknown_model_with_a_400() -> None:
    with (
        MockServer(profile="litellm", models=["gpt-4o"], log_requests=False) as server,
        openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0) as client,
        pytest.raises(openai.BadRequestError) as refused,
    ):
        client.chat.completions.create(model="gpt-5", messages=HELLO)  # type: ignore[arg-type]
    assert "Invalid model name passed in model=gpt-5" in refused.value.message


def test_litellm_answers_carry_its_headers_with_and_without_v1(server: MockServer) -> None:
    with_v1 = chat(server, "litellm")
    without = httpx.post(
        server.base_url + "/litellm/chat/completions",
        json={"model": "gpt-4o", "messages": HELLO},
    )
    assert without.status_code == 200
    for answer in (with_v1, without):
        assert answer.headers["x-litellm-model-group"] == "gpt-4o"
        assert re.fullmatch(r"[0-9a-f-]{36}", answer.headers["x-litellm-call-id"])
        assert answer.headers["x-litellm-attempted-retries"] == "0"


def test_litellm_reads_its_own_key_header_first() -> None:
    with MockServer(require_api_key=KEY, log_requests=False) as server:
        answer = httpx.post(
            server.provider_url("litellm") + "/chat/completions",
            json={"model": "gpt-4o", "messages": HELLO},
            headers={"x-litellm-api-key": KEY, "Authorization": "Bearer sk-wrong"},
        )
        wrong = httpx.post(
            server.provider_url("litellm") + "/chat/completions",
            json={"model": "gpt-4o", "messages": HELLO},
            headers={"x-litellm-api-key": "sk-wrong", "Authorization": f"Bearer {KEY}"},
        )
    assert answer.status_code == 200 and wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "401"


# --- Vercel AI Gateway ----------------------------------------------------------------------


def test_vercel_lists_creator_model_ids(server: MockServer) -> None:
    with sdk(server, "vercel") as client:
        ids = [model.id for model in client.models.list()]
        answer = client.chat.completions.create(model="anthropic/claude-sonnet-4", messages=HELLO)  # type: ignore[arg-type]
    assert all("/" in model_id for model_id in ids) and "openai/gpt-5" in ids
    assert answer.model == "anthropic/claude-sonnet-4"


# --- Anthropic ------------------------------------------------------------------------------


def test_anthropic_ignores_response_format(server: MockServer) -> None:
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "city",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
                "additionalProperties": False,
            },
        },
    }
    asked = [{"role": "user", "content": "Name a city."}]
    openai_answer = chat(server, "openai", messages=asked, response_format=schema).json()
    anthropic_answer = chat(server, "anthropic", messages=asked, response_format=schema).json()
    assert "name" in json.loads(openai_answer["choices"][0]["message"]["content"])
    text = anthropic_answer["choices"][0]["message"]["content"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)  # prose: the format was ignored


def test_anthropic_has_only_chat_and_empty_details(server: MockServer) -> None:
    with sdk(server, "anthropic") as client:
        raw = client.chat.completions.with_raw_response.create(
            model=MODELS["anthropic"],
            messages=HELLO,  # type: ignore[arg-type]
            seed=3,
            logit_bias={"1": 2},
        )
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model="x", input="hi")
    answer = raw.parse()
    assert answer.usage is not None and answer.usage.prompt_tokens_details is None
    assert answer.system_fingerprint is None and raw.headers["request-id"].startswith("req_")


def test_anthropic_streams_with_the_fields_it_leaves_empty(server: MockServer) -> None:
    """Its table's "always empty" fields are null in a stream's chunks as in a body."""
    streamed = chunks(
        chat(server, "anthropic", stream=True, stream_options={"include_usage": True})
    )
    assert len(streamed) > 2 and streamed[-1]["usage"]["total_tokens"] > 0
    for chunk in streamed:
        assert chunk["service_tier"] is None and chunk["system_fingerprint"] is None
        usage = chunk.get("usage") or {}
        assert usage.get("prompt_tokens_details") is None
        assert usage.get("completion_tokens_details") is None
    assert streamed_text(streamed)


def test_anthropic_429_has_retry_after_without_ms(server: MockServer) -> None:
    server.add_rule({"error": "rate_limit"})
    refused = chat(server, "anthropic")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert "retry-after-ms" not in refused.headers
    assert "x-ratelimit-limit-requests" in refused.headers


def test_anthropic_mid_stream_error_is_its_observed_frame(server: MockServer) -> None:
    fault = {"x-mockai-fault": "error_event_after=2"}
    last = chunks(chat(server, "anthropic", stream=True, headers=fault))[-1]
    assert last == {
        "error": {
            "code": "api_error",
            "message": "Internal server error",
            "param": None,
            "type": "invalid_request_error",
        }
    }


# --- Mistral --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "loc"),
    [
        ({"seed": 7}, ["body", "seed"]),
        ({"user": "u1"}, ["body", "user"]),
        ({"max_completion_tokens": 50}, ["body", "max_completion_tokens"]),
        ({"stream_options": {"include_usage": True}, "stream": True}, ["body", "stream_options"]),
        (
            {"messages": [{"role": "user", "content": "hi", "name": "ann"}]},
            ["body", "messages", 0, "user", "name"],
        ),
    ],
)
def test_mistral_refuses_fields_it_does_not_know_with_a_422(
    server: MockServer, extra: dict[str, object], loc: list[object]
) -> None:
    refused = chat(server, "mistral", **extra)
    assert refused.status_code == 422
    body = refused.json()
    assert body["object"] == "error" and "error" not in body  # top level, not wrapped
    assert body["message"]["detail"][0]["loc"] == loc
    assert body["message"]["detail"][0]["type"] == "extra_forbidden"
    with sdk(server, "mistral") as client, pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(  # type: ignore[call-overload]
            **{"model": MODELS["mistral"], "messages": HELLO, **extra}
        )


def test_mistral_takes_its_own_spellings(server: MockServer) -> None:
    answer = chat(
        server,
        "mistral",
        random_seed=7,
        safe_prompt=False,
        messages=WEATHER,
        tools=[WEATHER_TOOL],
        tool_choice="any",
    )
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["finish_reason"] == "tool_calls"


def test_mistral_tool_call_ids_are_nine_alphanumerics_and_others_are_refused(
    server: MockServer,
) -> None:
    with sdk(server, "mistral") as client:
        first = client.chat.completions.create(
            model=MODELS["mistral"],
            messages=WEATHER,  # type: ignore[arg-type]
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
        )
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert re.fullmatch(r"[a-zA-Z0-9]{9}", call.id)

        def turn(call_id: str) -> object:
            return client.chat.completions.create(
                model=MODELS["mistral"],
                tools=[WEATHER_TOOL],  # type: ignore[list-item]
                messages=[  # type: ignore[list-item]
                    *WEATHER,
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": call_id,
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": "{}"},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
                ],
            )

        assert turn(call.id)  # its own id goes back fine
        # An app that fails over from OpenAI mid-conversation sends OpenAI's ids: a 400.
        with pytest.raises(openai.BadRequestError) as refused:
            turn("call_abc123XYZ")
    assert refused.value.message.endswith(
        "Tool call id was call_abc123XYZ but must be a-z, A-Z, 0-9, with a length of 9."
    )
    assert refused.value.code == "3280"


def test_mistral_streams_usage_on_the_final_chunk_without_asking(server: MockServer) -> None:
    got = chunks(chat(server, "mistral", stream=True))
    assert got[-1]["choices"][0]["finish_reason"] == "stop"
    assert got[-1]["usage"]["completion_tokens"] > 0
    assert all("usage" not in chunk for chunk in got[:-1])


def test_mistral_rate_limit_headers_have_its_names(server: MockServer) -> None:
    answer = chat(server, "mistral")
    assert {
        "x-ratelimit-limit-req-minute",
        "x-ratelimit-remaining-req-minute",
        "x-ratelimit-limit-tokens-minute",
        "x-ratelimit-remaining-tokens-minute",
        "x-ratelimit-tokens-query-cost",
    } <= set(answer.headers)
    assert "x-ratelimit-limit-requests" not in answer.headers
    assert int(answer.headers["x-ratelimit-tokens-query-cost"]) > 0


def test_mistral_has_no_legacy_completions(server: MockServer) -> None:
    refused = post(server, "mistral", "/completions", {"model": MODELS["mistral"], "prompt": "x"})
    assert refused.status_code == 404 and refused.json()["object"] == "error"


# --- DeepSeek -------------------------------------------------------------------------------


def test_deepseek_reasoner_sends_reasoning_content(server: MockServer) -> None:
    with sdk(server, "deepseek") as client:
        answer = client.chat.completions.create(model="deepseek-reasoner", messages=HELLO)  # type: ignore[arg-type]
        plain = client.chat.completions.create(model="deepseek-chat", messages=HELLO)  # type: ignore[arg-type]
    assert (answer.choices[0].message.model_extra or {})["reasoning_content"]
    assert "reasoning_content" not in (plain.choices[0].message.model_extra or {})
    usage = answer.usage.model_extra or {}  # type: ignore[union-attr]
    assert usage["prompt_cache_miss_tokens"] == answer.usage.prompt_tokens  # type: ignore[union-attr]
    assert usage["prompt_cache_hit_tokens"] == 0


def test_deepseek_streams_a_keep_alive_comment_and_reasoning(server: MockServer) -> None:
    streamed = chat(server, "deepseek", model="deepseek-reasoner", stream=True)
    assert frames(streamed)[0] == ": keep-alive"
    got = chunks(streamed)
    assert any(c["choices"][0]["delta"].get("reasoning_content") for c in got if c["choices"])


def test_deepseek_insufficient_balance_is_a_402_and_it_serves_without_v1(
    server: MockServer,
) -> None:
    server.add_rule({"match": {"user": "pay"}, "error": "insufficient_quota"})
    server.add_rule({"reply": "fine"})
    refused = chat(server, "deepseek", messages=[{"role": "user", "content": "pay"}])
    assert (
        refused.status_code == 402 and refused.json()["error"]["message"] == "Insufficient Balance"
    )
    bare = httpx.post(
        server.base_url + "/deepseek/chat/completions",
        json={"model": "deepseek-chat", "messages": HELLO},
    )
    assert bare.status_code == 200
    models = httpx.get(server.base_url + "/deepseek/models").json()["data"]
    assert models[0] == {"id": "deepseek-chat", "object": "model", "owned_by": "deepseek"}
    assert not any(name.startswith("x-ratelimit") for name in bare.headers)


# --- Together -------------------------------------------------------------------------------


def test_together_models_are_a_bare_array_the_sdk_lists_as_nothing(server: MockServer) -> None:
    raw = httpx.get(server.provider_url("together") + "/models").json()
    assert isinstance(raw, list) and raw[0]["type"] == "chat" and "pricing" in raw[0]
    with sdk(server, "together") as client:
        try:  # the OpenAI SDK expects `{"data": [...]}`: it lists nothing, or fails
            listed = [model.id for model in client.models.list()]
        except (AttributeError, TypeError, KeyError):
            listed = []
    assert listed == []


def test_together_may_finish_with_eos(server: MockServer) -> None:
    server.add_rule({"reply": {"content": "done", "finish_reason": "eos"}})
    with sdk(server, "together") as client:
        answer = client.chat.completions.create(model=MODELS["together"], messages=HELLO)  # type: ignore[arg-type]
    assert answer.choices[0].finish_reason == "eos"


# --- Fireworks ------------------------------------------------------------------------------


def test_fireworks_keeps_the_stop_sequence(server: MockServer) -> None:
    server.add_rule({"reply": {"content": "one two three four"}})
    fireworks = chat(server, "fireworks", stop=["three"]).json()
    openai_answer = chat(server, "openai", stop=["three"]).json()
    assert fireworks["choices"][0]["message"]["content"] == "one two three"
    assert openai_answer["choices"][0]["message"]["content"] == "one two "


def test_fireworks_streams_usage_on_the_last_chunk_always(server: MockServer) -> None:
    got = chunks(chat(server, "fireworks", stream=True))
    assert got[-1]["choices"][0]["finish_reason"] == "stop"
    assert got[-1]["usage"]["completion_tokens"] > 0
    assert all(chunk["usage"] is None for chunk in got[:-1])
    assert all(chunk["choices"] for chunk in got)  # no separate usage chunk


def test_fireworks_billing_and_suspension_statuses(server: MockServer) -> None:
    server.add_rule({"match": {"user": "bill"}, "error": "insufficient_quota"})
    server.add_rule({"match": {"user": "gone"}, "error": {"status": 412}})
    assert (
        chat(server, "fireworks", messages=[{"role": "user", "content": "bill"}]).status_code == 402
    )
    suspended = chat(server, "fireworks", messages=[{"role": "user", "content": "gone"}])
    assert suspended.status_code == 412
    assert suspended.json()["error"]["message"] == "Account suspended."


# --- vLLM -----------------------------------------------------------------------------------


def test_vllm_accepts_unknown_fields_even_when_strict() -> None:
    with MockServer(strict_requests=True, log_requests=False) as server:
        vllm = chat(server, "vllm", top_k=20, guided_json={"type": "object"}, mystery=1)
        openai_answer = chat(server, "openai", top_k=20)
    assert vllm.status_code == 200
    assert openai_answer.status_code == 400


def test_vllm_errors_have_an_integer_code_and_a_class_type(server: MockServer) -> None:
    refused = post(server, "vllm", "/chat/completions", {"model": MODELS["vllm"]})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == 400 and error["type"] == "BadRequestError"


def test_vllm_models_carry_max_model_len_and_permissions(server: MockServer) -> None:
    model = httpx.get(server.provider_url("vllm") + "/models").json()["data"][0]
    assert model["owned_by"] == "vllm" and model["root"] == model["id"]
    assert model["max_model_len"] > 0 and model["permission"][0]["object"] == "model_permission"


def test_vllm_mid_stream_error_is_followed_by_done(server: MockServer) -> None:
    broken = chat(server, "vllm", stream=True, headers={"x-mockai-fault": "error_event_after=2"})
    tail = frames(broken)[-2:]
    assert json.loads(tail[0][6:])["error"]["code"] == 500 and tail[1] == "data: [DONE]"
    with (
        sdk(server, "vllm", default_headers={"x-mockai-fault": "error_event_after=2"}) as client,
        pytest.raises(openai.APIError),
    ):
        list(client.chat.completions.create(model=MODELS["vllm"], messages=HELLO, stream=True))  # type: ignore[arg-type]


def test_vllm_continuous_usage_stats_put_usage_on_every_chunk(server: MockServer) -> None:
    options = {"include_usage": True, "continuous_usage_stats": True}
    got = chunks(chat(server, "vllm", stream=True, stream_options=options))
    with_usage = [c for c in got if c.get("usage")]
    assert len(with_usage) == len(got)
    counts = [c["usage"]["completion_tokens"] for c in got]
    assert counts == sorted(counts) and counts[-1] > 1


# --- Gemini ---------------------------------------------------------------------------------


def test_gemini_refuses_unknown_fields_with_an_error_array(server: MockServer) -> None:
    with sdk(server, "gemini") as client, pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=MODELS["gemini"],
            messages=HELLO,  # type: ignore[arg-type]
            web_search_options={},
        )
    body = _raw_error(refused.value)
    assert isinstance(body, list) and body[0]["error"]["status"] == "INVALID_ARGUMENT"
    assert 'Unknown name "web_search_options"' in body[0]["error"]["message"]
    assert body[0]["error"]["details"][0]["@type"].endswith("google.rpc.BadRequest")


def test_gemini_model_ids_have_the_models_prefix_and_no_created(server: MockServer) -> None:
    with sdk(server, "gemini") as client:
        models = list(client.models.list())
    assert models[0].id == "models/gemini-2.5-flash" and models[0].owned_by == "google"
    assert "created" not in models[0].model_dump(exclude_unset=True)


def test_gemini_streams_tool_calls_without_index_and_with_a_signature(
    server: MockServer,
) -> None:
    got = chunks(chat(server, "gemini", messages=WEATHER, tools=[WEATHER_TOOL], stream=True))
    calls = [
        call
        for chunk in got
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls") or ()
    ]
    assert calls and all("index" not in call for call in calls)
    assert calls[0]["extra_content"]["google"]["thought_signature"]


def test_gemini_puts_stream_usage_on_the_content_chunks(server: MockServer) -> None:
    got = chunks(chat(server, "gemini", stream=True, stream_options={"include_usage": True}))
    assert all(chunk["choices"] for chunk in got)  # no separate usage chunk
    summed = sum(chunk["usage"]["completion_tokens"] for chunk in got)
    assert summed > got[-1]["usage"]["completion_tokens"]  # adding them up over-counts


# --- Azure ----------------------------------------------------------------------------------


def test_azure_under_its_prefix_with_filter_results_and_its_headers(server: MockServer) -> None:
    answer = chat(server, "azure")
    assert "prompt_filter_results" in answer.json()
    assert "content_filter_results" in answer.json()["choices"][0]
    assert "x-ratelimit-remaining-requests" in answer.headers
    assert "x-ratelimit-limit-requests" not in answer.headers
    streamed = chunks(chat(server, "azure", stream=True))
    assert streamed[0]["choices"] == [] and "prompt_filter_results" in streamed[0]
    deployed = httpx.post(
        server.base_url + "/azure/openai/deployments/prod/chat/completions?api-version=2024-10-21",
        json={"messages": HELLO},
        headers={"api-key": KEY},
    )
    assert deployed.status_code == 200 and deployed.json()["model"] == "prod"
