"""Chat completions through the real openai SDK, sync and async, JSON and streams."""

from __future__ import annotations

import json

import jsonschema
import openai
import pydantic
import pytest

from mockai import MockServer
from mockai.catalog import SNAPSHOTS

MODEL = "gpt-4o-mini"
HELLO = [{"role": "user", "content": "Hello, who are you?"}]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a timezone",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string"}},
            "required": ["timezone"],
        },
    },
}


def test_plain_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=HELLO)
    choice = completion.choices[0]
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-") and len(completion.id) == 38
    assert completion.model == SNAPSHOTS[MODEL]  # the dated snapshot the alias points to
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and len(choice.message.content.split()) >= 5
    assert choice.message.refusal is None
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert completion._request_id is not None and completion._request_id.startswith("req_")


def test_same_request_same_answer_streamed_or_not(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model=MODEL, messages=HELLO)
    stream = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    # role only in the first delta; the last chunk carries the finish reason and an empty delta
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:])
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices[0].delta.content is None
    assert len(chunks) > 5  # realistic token-sized chunks, not one blob


def test_stream_include_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    *body, last = chunks
    assert last.choices == [] and last.usage is not None
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None and len(c.choices) == 1 for c in body)
    streamed = sum(1 for c in body if c.choices[0].delta.content)
    assert last.usage.completion_tokens == streamed


def test_stream_helper_final_completion(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model=MODEL, messages=HELLO) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "".join(deltas)
    assert final.choices[0].message.role == "assistant"


class Person(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=0, le=130)
    email: str | None
    tags: list[str]


def test_parse_with_pydantic_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Extract: Ada, 36, ada@example.com"}],
        response_format=Person,
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Person)
    assert 0 <= parsed.age <= 130


def test_json_object_format(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Answer in json please"}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


def test_json_schema_format_validates(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "keywords": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        },
        "required": ["sentiment", "score", "keywords"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "I love it"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "s", "schema": schema, "strict": True},
        },
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), schema)


def test_n_choices(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=HELLO, n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    contents = [c.message.content for c in completion.choices]
    assert len(set(contents)) == 3
    assert completion.usage is not None
    single = client.chat.completions.create(model=MODEL, messages=HELLO)
    assert single.choices[0].message.content == contents[0]


def test_n_choices_streamed(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model=MODEL, messages=HELLO, n=2)
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, n=2, stream=True))
    assert chunks[0].choices[0].index == 0  # index 0 first: the SDK helper relies on it
    for index in (0, 1):
        text = "".join(
            c.choices[0].delta.content or ""
            for c in chunks
            if c.choices and c.choices[0].index == index
        )
        assert text == whole.choices[index].message.content


def test_max_tokens_truncates(client: openai.OpenAI) -> None:
    full = client.chat.completions.create(model=MODEL, messages=HELLO)
    cut = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=5)
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage is not None and cut.usage.completion_tokens == 5
    assert (full.choices[0].message.content or "").startswith(cut.choices[0].message.content or "")
    newer = client.chat.completions.create(model=MODEL, messages=HELLO, max_completion_tokens=3)
    assert newer.choices[0].finish_reason == "length"


def test_stop_sequence_cuts_before_it(client: openai.OpenAI) -> None:
    full = (
        client.chat.completions.create(model=MODEL, messages=HELLO).choices[0].message.content or ""
    )
    words = full.split()
    stop = " " + words[len(words) // 2]
    cut = client.chat.completions.create(model=MODEL, messages=HELLO, stop=[stop, "zzzz"])
    assert cut.choices[0].message.content == full[: full.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_logprobs(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=HELLO, logprobs=True, top_logprobs=3, max_tokens=8
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert len(logprobs.content) == 8
    assert "".join(t.token for t in logprobs.content) == completion.choices[0].message.content
    for token in logprobs.content:
        assert token.logprob <= 0
        assert len(token.top_logprobs) == 3
        assert token.top_logprobs[0].token == token.token
        assert bytes(token.bytes or []) == token.token.encode()


def test_required_tool_call_validates_against_schema(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What's the weather like in Paris?"}],
        tools=[TIME_TOOL, WEATHER_TOOL],
        tool_choice="required",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"  # the tool the question is about
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, WEATHER_TOOL["function"]["parameters"])
    assert arguments["city"] == "Paris"  # the place the question names


def test_named_tool_choice(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        tools=[TIME_TOOL, WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    (call,) = completion.choices[0].message.tool_calls or []
    assert call.function.name == "get_time"
    jsonschema.validate(json.loads(call.function.arguments), TIME_TOOL["function"]["parameters"])


def test_auto_tool_choice_calls_only_relevant_tools(client: openai.OpenAI) -> None:
    about_weather = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "weather in Oslo?"}],
        tools=[WEATHER_TOOL],
    )
    assert about_weather.choices[0].message.tool_calls
    small_talk = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "tell me a joke"}], tools=[WEATHER_TOOL]
    )
    assert small_talk.choices[0].message.tool_calls is None
    assert small_talk.choices[0].message.content


def test_auto_tool_choice_in_chinese_calls_the_tool_a_question_is_about(
    client: openai.OpenAI,
) -> None:
    # A run of CJK characters was one "word", so no Chinese question ever shared one with a
    # tool's description: the weather question was answered in text. Now by character pairs;
    # a single character shared ("天" of "今天") is no reason to call the tool.
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "获取城市的天气预报",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    about_weather = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "今天北京天气怎么样?"}], tools=[weather]
    )
    assert about_weather.choices[0].message.tool_calls
    small_talk = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "你好, 今天过得好吗?"}], tools=[weather]
    )
    assert small_talk.choices[0].message.tool_calls is None


def test_tool_call_round_trip(client: openai.OpenAI) -> None:
    messages: list[dict[str, object]] = [
        {"role": "user", "content": "What is the weather in Paris?"}
    ]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])  # type: ignore[arg-type]
    call = (first.choices[0].message.tool_calls or [])[0]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"})
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])  # type: ignore[arg-type]
    assert second.choices[0].finish_reason == "stop"
    assert "18C and sunny" in (second.choices[0].message.content or "")


def test_streamed_tool_calls_open_once_per_index(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "weather in Rome"}],
            tools=[WEATHER_TOOL],
            tool_choice="required",
            stream=True,
        )
    )
    fragments = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    with_id = [f for f in fragments if f.id]
    assert len(with_id) == 1 and with_id[0].function and with_id[0].function.name == "get_weather"
    assert all(f.function is None or f.function.name is None for f in fragments[1:])
    arguments = "".join(f.function.arguments or "" for f in fragments if f.function)
    jsonschema.validate(json.loads(arguments), WEATHER_TOOL["function"]["parameters"])
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.role) == 1
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_stream_helper_accumulates_tool_calls(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model=MODEL,
        messages=[{"role": "user", "content": "weather in Rome"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
    ) as stream:
        final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"  # not "get_weatherget_weather"
    assert call.id.startswith("call_") and call.id.count("call_") == 1
    json.loads(call.function.arguments)


@pytest.mark.asyncio
async def test_async_client(aclient: openai.AsyncOpenAI) -> None:
    completion = await aclient.chat.completions.create(model=MODEL, messages=HELLO)
    stream = await aclient.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == completion.choices[0].message.content
    async with aclient.chat.completions.stream(model=MODEL, messages=HELLO) as helper:
        final = await helper.get_final_completion()
    assert final.choices[0].message.content == text


def test_any_model_id_is_answered(client: openai.OpenAI) -> None:
    for model in ("meta-llama/llama-3.3-70b-instruct:free", "ft:gpt-4o-mini:org:x:id", "local"):
        assert client.chat.completions.create(model=model, messages=HELLO).model == model


def test_raw_stream_framing(server: MockServer) -> None:
    import urllib.request

    request = urllib.request.Request(
        server.url + "/chat/completions",
        data=json.dumps({"model": MODEL, "messages": HELLO, "stream": True}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        raw = response.read()
    events = raw.split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]"
    assert all(e.startswith(b"data: ") and b"\n" not in e for e in events[:-1])


def _chunks(server: MockServer, **options: object) -> list[dict[str, object]]:
    import httpx

    body = {"model": MODEL, "messages": HELLO, "stream": True, **options}
    raw = httpx.post(server.url + "/chat/completions", json=body).content
    frames = [f.removeprefix(b"data: ") for f in raw.split(b"\n\n") if f]
    assert frames[-1] == b"[DONE]"
    return [json.loads(f) for f in frames[:-1]]


def test_streamed_chunks_carry_obfuscation_padding(server: MockServer) -> None:
    chunks = _chunks(server, stream_options={"include_usage": True}, n=2)
    # The usage chunk is padded too, as the API's is (it had been left bare; captures of real
    # streams end `"choices":[],"usage":{...},"obfuscation":"8618FsxJD2gV"}`).
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]
    pads = [chunk["obfuscation"] for chunk in chunks]
    assert all(isinstance(pad, str) and 1 <= len(pad) <= 16 and pad.isalnum() for pad in pads)
    assert len(set(pads)) > 1  # random-looking, not a constant
    # The padding evens out sizes: every chunk's JSON is a multiple of 16 bytes.
    sizes = {len(json.dumps(chunk, separators=(",", ":"))) % 16 for chunk in chunks}
    assert sizes == {0}
    with MockServer() as same_seed:  # reproducible: the same bytes from another server
        assert _chunks(same_seed, stream_options={"include_usage": True}, n=2) == chunks


def test_the_padding_follows_what_is_asked_not_how_it_is_shown(server: MockServer) -> None:
    """The padding derives from the request's content key: the same on a repeat (answered from
    the kept parse) and with other presentation fields, not from the ids' key (new each time)."""

    def pads(chunks: list[dict[str, object]]) -> list[object]:
        return [chunk.get("obfuscation") for chunk in chunks]

    first = _chunks(server)  # parsed afresh
    again = _chunks(server)  # the kept parse
    shown = _chunks(server, user="someone", stream_options={"include_usage": False})
    assert first[0]["id"] != again[0]["id"]  # new ids ...
    assert pads(first) == pads(again) == pads(shown)  # ... the same padding
    assert all(pads(first))
    assert pads(_chunks(server, messages=[{"role": "user", "content": "Bye"}])) != pads(first)


def test_include_obfuscation_false_leaves_it_out(server: MockServer, client: openai.OpenAI) -> None:
    chunks = _chunks(server, stream_options={"include_obfuscation": False})
    assert chunks and not any("obfuscation" in chunk for chunk in chunks)
    # The SDK reads padded chunks as it reads plain ones.
    padded = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    plain = client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_obfuscation": False}
    )
    text = [
        "".join(c.choices[0].delta.content or "" for c in s if c.choices) for s in (padded, plain)
    ]
    assert text[0] == text[1] != ""


# --- the deprecated functions API -----------------------------------------------------------------

WEATHER_FUNCTION = WEATHER_TOOL["function"]


def test_functions_get_the_deprecated_function_call_shape(client: openai.OpenAI) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(
        model=MODEL,
        messages=messages,  # type: ignore[arg-type]
        functions=[WEATHER_FUNCTION, TIME_TOOL["function"]],  # type: ignore[list-item]
        function_call={"name": "get_weather"},
    )
    choice = first.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.tool_calls is None and choice.message.content is None
    call = choice.message.function_call
    assert call is not None and call.name == "get_weather"
    jsonschema.validate(json.loads(call.arguments), WEATHER_FUNCTION["parameters"])
    # The second leg of the loop: a `function` message carries the result.
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "function", "name": "get_weather", "content": "18C and sunny"})
    second = client.chat.completions.create(
        model=MODEL,
        messages=messages,  # type: ignore[arg-type]
        functions=[WEATHER_FUNCTION],  # type: ignore[list-item]
    )
    assert second.choices[0].finish_reason == "stop"
    assert "18C and sunny" in (second.choices[0].message.content or "")


def test_function_call_calls_the_function_it_names_or_none(client: openai.OpenAI) -> None:
    """`function_call` is the deprecated `tool_choice`: the function it names is called even when
    the prompt asks for another, and `none` calls none even when the prompt asks for one."""
    functions = [WEATHER_FUNCTION, TIME_TOOL["function"]]
    for prompt in ("Weather in Paris?", "What time is it in Tokyo?"):
        messages = [{"role": "user", "content": prompt}]
        for name in ("get_weather", "get_time"):
            named = client.chat.completions.create(
                model=MODEL,
                messages=messages,  # type: ignore[arg-type]
                functions=functions,  # type: ignore[arg-type]
                function_call={"name": name},
            )
            call = named.choices[0].message.function_call
            assert call is not None and call.name == name
            # A null `tool_choice` is one not given: `function_call` still chooses.
            beside_null = client.chat.completions.create(
                model=MODEL,
                messages=messages,  # type: ignore[arg-type]
                functions=functions,  # type: ignore[arg-type]
                function_call={"name": name},
                extra_body={"tool_choice": None},
            )
            call = beside_null.choices[0].message.function_call
            assert call is not None and call.name == name
        none = client.chat.completions.create(
            model=MODEL,
            messages=messages,  # type: ignore[arg-type]
            functions=functions,  # type: ignore[arg-type]
            function_call="none",
        )
        assert none.choices[0].finish_reason == "stop"
        assert none.choices[0].message.function_call is None


def test_functions_streamed_as_function_call_deltas(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "weather in Rome"}],
            functions=[WEATHER_FUNCTION],  # type: ignore[list-item]
            function_call={"name": "get_weather"},
            stream=True,
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert all(d.tool_calls is None for d in deltas)
    calls = [d.function_call for d in deltas if d.function_call is not None]
    assert [c.name for c in calls if c.name] == ["get_weather"]  # the name comes once, first
    assert calls[0].name == "get_weather"
    arguments = "".join(c.arguments or "" for c in calls)
    jsonschema.validate(json.loads(arguments), WEATHER_FUNCTION["parameters"])
    assert chunks[-1].choices[0].finish_reason == "function_call"


def test_functions_answer_one_call_even_when_a_rule_scripts_several(server: MockServer) -> None:
    server.add_rule(
        {
            "name": "two",
            "match": {"user": "both"},
            "reply": {
                "tool_calls": [
                    {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}},
                    {"name": "get_time", "arguments": {"timezone": "UTC"}},
                ]
            },
        }
    )
    client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
    with client:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL,
            messages=[{"role": "user", "content": "both please"}],
            functions=[WEATHER_FUNCTION, TIME_TOOL["function"]],  # type: ignore[list-item]
        )
    call = raw.parse().choices[0].message.function_call
    assert call is not None and json.loads(call.arguments) == {"city": "Oslo", "unit": "celsius"}
    assert "only the first is sent" in raw.headers["x-mockai-warning"]  # the fixture is flagged
