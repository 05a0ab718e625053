"""Chat semantics found by the bug hunt: what a length stop bills and holds (tool calls, refusals),
`allowed_tools` checked like a named tool_choice, the deprecated `functions` billed as sent,
CJK text counted near what tiktoken counts, and function parameters that must be objects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk import sdk
from tiktoken_support import encodings

from mockai import MockServer, tokens

WEATHER = {
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
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}
PARIS = [{"role": "user", "content": "What's the weather in Paris?"}]
RULES = [
    {
        "match": {"user": "refuse me"},
        "reply": {"refusal": "I can't help with that request, sorry."},
    },
    {
        "match": {"user": "two calls"},
        "reply": {
            "content": "Let me look both up.",
            "tool_calls": [
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_time", "arguments": {"tz": "Asia/Tokyo"}},
            ],
        },
    },
    {
        "match": {"user": "one call"},
        "reply": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
    },
]


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with conformance.checked_server(fallback="generate") as running:
        running.add_rules(RULES)
        yield running


def _chat(server: Any, **body: Any) -> httpx.Response:
    return httpx.post(
        server.url + "/chat/completions", json={"model": "gpt-4o-mini", **body}, timeout=30
    )


def _streamed(server: Any, **body: Any) -> dict[str, Any]:
    """A stream merged as the SDKs merge it: text, refusal, calls, finish reason, usage."""
    body |= {"stream": True, "stream_options": {"include_usage": True}}
    answer = _chat(server, **body)
    assert answer.status_code == 200, answer.text
    merged: dict[str, Any] = {"content": "", "refusal": "", "calls": {}, "function": None}
    for line in answer.text.splitlines():
        if not line.startswith("data: {"):
            continue
        chunk = json.loads(line[6:])
        merged["usage"] = chunk.get("usage") or merged.get("usage")
        for choice in chunk["choices"]:
            delta = choice["delta"]
            merged["content"] += delta.get("content") or ""
            merged["refusal"] += delta.get("refusal") or ""
            for call in delta.get("tool_calls") or ():
                held = merged["calls"].setdefault(call["index"], {"name": "", "arguments": ""})
                held["name"] += call.get("function", {}).get("name") or ""
                held["arguments"] += call.get("function", {}).get("arguments") or ""
            if delta.get("function_call"):
                held = merged["function"] = merged["function"] or {"name": "", "arguments": ""}
                held["name"] += delta["function_call"].get("name") or ""
                held["arguments"] += delta["function_call"].get("arguments") or ""
            merged["finish"] = choice["finish_reason"] or merged.get("finish")
    return merged


# --- 1. a length stop bills the tokens it used, and holds the call it ran out in -----------------


_ASKS = {
    "generated call": {"messages": PARIS, "tools": [WEATHER], "tool_choice": "required"},
    "text then two calls": {
        "messages": [{"role": "user", "content": "two calls"}],
        "tools": [WEATHER, TIME],
    },
    "generated text": {"messages": PARIS},
}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(max_tokens=st.integers(min_value=1, max_value=40), ask=st.sampled_from(sorted(_ASKS)))
def test_a_length_stop_bills_max_tokens_streamed_or_not(
    server: Any, max_tokens: int, ask: str
) -> None:
    body = {**_ASKS[ask], "max_tokens": max_tokens}
    answer = _chat(server, **body).json()
    choice = answer["choices"][0]
    streamed = _streamed(server, **body)
    assert streamed["finish"] == choice["finish_reason"]
    assert streamed["usage"]["completion_tokens"] == answer["usage"]["completion_tokens"]
    if choice["finish_reason"] != "length":
        assert answer["usage"]["completion_tokens"] <= max_tokens
        return
    assert answer["usage"]["completion_tokens"] == max_tokens
    message = choice["message"]
    calls = message.get("tool_calls") or []
    # Never an empty answer: some text, or the call it ran out in, opened.
    assert message["content"] or calls
    assert [c["function"]["name"] for c in calls] == [c["name"] for c in streamed["calls"].values()]
    assert [c["function"]["arguments"] for c in calls] == [
        c["arguments"] for c in streamed["calls"].values()
    ]


def test_a_tool_call_cut_before_its_arguments_is_opened_with_none() -> None:
    with conformance.checked_server() as running, sdk(running) as client:
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=PARIS,
            tools=[WEATHER],
            max_tokens=3,
        )
    choice = reply.choices[0]
    assert choice.finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert call.function.arguments == ""


# --- 2. a refusal stops at max_tokens ------------------------------------------------------------


@pytest.mark.parametrize("max_tokens", [1, 2, 5])
def test_a_scripted_refusal_stops_at_max_tokens(server: Any, max_tokens: int) -> None:
    body = {"messages": [{"role": "user", "content": "refuse me"}], "max_tokens": max_tokens}
    answer = _chat(server, **body).json()
    choice = answer["choices"][0]
    full = "I can't help with that request, sorry."
    assert choice["finish_reason"] == "length"
    assert choice["message"]["refusal"] == tokens.truncate(full, max_tokens)
    assert choice["message"]["content"] is None
    assert answer["usage"]["completion_tokens"] == max_tokens
    streamed = _streamed(server, **body)
    assert (streamed["refusal"], streamed["finish"]) == (choice["message"]["refusal"], "length")
    assert streamed["usage"]["completion_tokens"] == max_tokens
    # (within the limit, the refusal is whole)
    body["max_tokens"] = tokens.count(full)
    choice = _chat(server, **body).json()["choices"][0]
    assert (choice["message"]["refusal"], choice["finish_reason"]) == (full, "stop")


# --- 3. allowed_tools is checked like a named tool_choice ----------------------------------------


def _allowed(mode: Any, name: str) -> dict[str, Any]:
    tools = [{"type": "function", "function": {"name": name}}]
    return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": tools}}


@pytest.mark.parametrize("mode", ["required", "auto"])
def test_allowed_tools_naming_a_tool_not_offered_is_a_400(server: Any, mode: str) -> None:
    offered = _chat(
        server, messages=PARIS, tools=[WEATHER, TIME], tool_choice=_allowed("required", "get_time")
    ).json()["choices"][0]
    assert [c["function"]["name"] for c in offered["message"]["tool_calls"]] == ["get_time"]
    answer = _chat(server, messages=PARIS, tools=[WEATHER], tool_choice=_allowed(mode, "nope"))
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "message": "Invalid value for 'tool_choice': function 'nope' is not in 'tools'.",
        "type": "invalid_request_error",
        "param": "tool_choice",
        "code": "invalid_value",
    }


@pytest.mark.parametrize("mode", ["sometimes", "none", 3])
def test_an_allowed_tools_mode_outside_auto_and_required_is_a_400(server: Any, mode: Any) -> None:
    answer = _chat(
        server, messages=PARIS, tools=[WEATHER], tool_choice=_allowed(mode, "get_weather")
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == "tool_choice.allowed_tools.mode"
    assert error["code"] == "invalid_value"
    assert "Supported values are: 'auto' and 'required'." in error["message"]


def test_responses_allowed_tools_naming_a_tool_not_offered_is_a_400(server: Any) -> None:
    choice = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "nope"}],
    }
    tool = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER["function"]["parameters"],
    }
    answer = httpx.post(
        server.url + "/responses",
        json={"model": "gpt-4o-mini", "input": "hi", "tools": [tool], "tool_choice": choice},
        timeout=30,
    )
    assert answer.status_code == 400
    assert "function 'nope' is not in 'tools'" in answer.json()["error"]["message"]


# --- 4. the deprecated `functions`: billed as defined, and as sent --------------------------------


def test_functions_definitions_are_billed_like_tools(server: Any) -> None:
    as_tools = _chat(server, messages=PARIS, tools=[WEATHER]).json()["usage"]["prompt_tokens"]
    as_functions = _chat(server, messages=PARIS, functions=[WEATHER["function"]]).json()
    none = _chat(server, messages=PARIS).json()["usage"]["prompt_tokens"]
    assert as_functions["usage"]["prompt_tokens"] == as_tools > none


@pytest.mark.parametrize("max_tokens", [None, 200])
def test_a_rule_of_two_calls_answered_as_functions_bills_the_one_sent(
    server: Any, max_tokens: int | None
) -> None:
    functions = [WEATHER["function"], TIME["function"]]
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "two calls"}]}
    body |= {"functions": functions} | ({"max_tokens": max_tokens} if max_tokens else {})
    answer = _chat(server, **body).json()
    choice = answer["choices"][0]
    call = choice["message"]["function_call"]
    assert call == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert choice["finish_reason"] == "function_call"
    sent = tokens.count(choice["message"]["content"]) + tokens.count(call["arguments"]) + 4
    assert answer["usage"]["completion_tokens"] == sent
    streamed = _streamed(server, **body)
    assert streamed["function"] == call
    assert streamed["usage"]["completion_tokens"] == sent


# --- 5. CJK text is counted about a token a character -------------------------------------------


# Common words, as real text is made of (rare ideographs cost cl100k 2-3 byte tokens each).
_WORDS = {
    "zh": "这是 一个 测试 句子 我们 今天 北京 中国 人民 学习 工作 时间 问题 因为 所以 可以 "
    "没有 什么 天气 很好 朋友 喜欢 吃饭 我 你 他 的 了 在 是 不 有 。 \uff0c",
    "ja": "日本語 の テキスト です ます 東京 は 首都 今日 いい 天気 散歩 に 行き ましょう "
    "私 が を と プログラム 書き 人口 約 万人 カタカナ ひらがな 。 、",
    "ko": "안녕하세요 만나서 반갑습니다 오늘 날씨가 좋네요 저는 학생 입니다 한국어 공부 "
    "사람 시간 그리고 하지만 우리 친구 .",
}


@st.composite
def _cjk_texts(draw: st.DrawFn) -> str:
    language = draw(st.sampled_from(sorted(_WORDS)))
    words = draw(st.lists(st.sampled_from(_WORDS[language].split()), min_size=4, max_size=40))
    return (" " if language == "ko" else "").join(words)


@settings(max_examples=200, deadline=None)
@given(_cjk_texts())
def test_cjk_text_counts_within_a_factor_of_tiktoken(text: str) -> None:
    counted = tokens.count(text)
    assert counted == len(tokens.split(text))  # (what a stream of it sends)
    for encoding in encodings():
        # (about a token a character: near cl100k's count; o200k holds more common words whole,
        # Korean ones above all, and spends up to half as many)
        real = len(encoding.encode(text))
        assert real / 2 <= counted <= real * 3, (encoding.name, real, counted)


def test_a_japanese_prompt_beyond_the_context_window_is_refused(server: Any) -> None:
    big = "日本語のテキスト" * 40_000  # 320,000 characters: ~240,000 tokens even for o200k
    answer = _chat(server, model="gpt-4o", messages=[{"role": "user", "content": big}])
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "context_length_exceeded"


def test_a_long_cjk_text_counts_as_its_pieces() -> None:
    text = "東京は日本の首都です。 abc" * (tokens._LISTED_CHARS // 10)
    assert len(text) > tokens._LISTED_CHARS  # (counted a pretoken at a time)
    assert tokens.count(text) == len(tokens.split(text)) >= len(text) * 9 // 15


# --- 6. function parameters are an object schema -------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "got"),
    [
        ({"type": "string"}, '"string"'),
        ({"type": "array", "items": {"type": "integer"}}, '"array"'),
        ({"type": ["object", "null"]}, '["object","null"]'),
    ],
)
def test_function_parameters_not_of_type_object_are_a_400(
    server: Any, parameters: dict[str, Any], got: str
) -> None:
    untyped = {"type": "function", "function": {"name": "f", "parameters": {}}}
    answer = _chat(server, messages=PARIS, tools=[untyped], tool_choice="required")
    arguments = answer.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert isinstance(json.loads(arguments), dict)  # (a schema without a type is an object)
    tool = {"type": "function", "function": {"name": "f", "parameters": parameters}}
    answer = _chat(server, messages=PARIS, tools=[WEATHER, tool])
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "message": "Invalid schema for function 'f': schema must be a JSON Schema of "
        f"'type: \"object\"', got 'type: {got}'.",
        "type": "invalid_request_error",
        "param": "tools[1].function.parameters",
        "code": "invalid_function_parameters",
    }


def test_max_tokens_and_max_completion_tokens_together_are_a_400(server: Any) -> None:
    """The API takes one limit or the other (langchain-ai/langgraph#5943: ChatOpenAI sent both
    for gpt-4.1); mockai obeyed the lower one, so the app's bug passed its tests."""
    with sdk(server) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(
                model="gpt-4.1", messages=PARIS, max_tokens=1024, max_completion_tokens=1024
            )
        assert refused.value.body == {
            "message": "Setting 'max_tokens' and 'max_completion_tokens' at the same time is "
            "not supported.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "invalid_parameter_combination",
        }
        for limit in ({"max_tokens": 3}, {"max_completion_tokens": 3}):
            answer = client.chat.completions.create(model="gpt-4.1", messages=PARIS, **limit)
            assert answer.usage is not None and answer.usage.completion_tokens == 3


@pytest.mark.parametrize(
    "fields",
    [
        {"max_tokens": 8, "max_completion_tokens": 8},
        {"top_logprobs": 2},  # (without logprobs)
        {"parallel_tool_calls": True},  # (without tools)
        {"tool_choice": "auto"},  # (without tools)
    ],
)
def test_a_recording_sending_both_limits_replays(tmp_path: Path, fields: dict[str, Any]) -> None:
    """An OpenAI-compatible server recorded through the openai profile (vLLM, Ollama) takes
    both limits, as LangChain's ChatOpenAI sent them, or a tool setting without tools: its
    recorded answer replays. mockai refused it with OpenAI's 400, which the recording never
    got."""
    body = {"model": "llama3", "messages": PARIS, **fields}
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1735689600,
        "model": "llama3",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Sunny."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }
    headers = {"Content-Type": ["application/json"]}
    interaction = {
        "request": {
            "body": json.dumps(body),
            "headers": headers,
            "method": "POST",
            "uri": "http://localhost:11434/v1/chat/completions",
        },
        "response": {
            "body": {"string": json.dumps(answer)},
            "headers": headers,
            "status": {"code": 200, "message": "OK"},
        },
    }
    cassette = tmp_path / "vllm.yaml"
    cassette.write_text(json.dumps({"version": 1, "interactions": [interaction]}))
    with MockServer(cassette=str(cassette), log_requests=False) as running, sdk(running) as client:
        replayed = client.chat.completions.create(**body)
    assert replayed.choices[0].message.content == "Sunny."
