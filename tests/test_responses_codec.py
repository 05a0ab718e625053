"""The `/v1/responses` codec on its own: parse and render called directly, no server.

Rendered bodies and every stream event are validated against the official OpenAPI spec, and the
rendered SSE bytes are fed through the real openai SDK (over an in-memory transport) to prove its
`responses.stream()` helper accepts them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import conformance
import httpx2
import openai
import pytest

from mockai.api import responses
from mockai.api.base import ParseContext, RenderContext
from mockai.catalog import Catalog
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Choice, Reply, ToolCall
from mockai.wire.outgoing import Body, EventStream

KEY = b"responses-codec-test-key"
CREATED = 1741476542
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
# The same tools as the SDK sees them (its parameter type is a TypedDict union).
SDK_TOOLS: Any = [WEATHER_TOOL]
LONG_TEXT = "The quick brown fox jumps over the lazy dog. " * 10


def parse(body: Any, catalog: Catalog | None = None) -> Exchange:
    return responses.parse(body, ParseContext(headers={}, catalog=catalog or Catalog()))


def render(reply: Reply, body: dict[str, Any], key: bytes = KEY) -> Body | EventStream:
    return responses.render(reply, parse(body), RenderContext(key=key, created=CREATED))


def render_json(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    out = render(reply, body)
    assert isinstance(out, Body)
    assert out.status == 200
    result: dict[str, Any] = json.loads(out.body)
    return result


def render_events(reply: Reply, body: dict[str, Any]) -> list[dict[str, Any]]:
    out = render(reply, {**body, "stream": True})
    assert isinstance(out, EventStream)
    return [decode_frame(frame) for frame in out.frames]


def decode_frame(frame: bytes) -> dict[str, Any]:
    """One `event: <type>\\ndata: <json>\\n\\n` frame; the event line must repeat the type."""
    assert frame.endswith(b"\n\n")
    event_line, data_line = frame[:-2].decode().split("\n")
    assert event_line.startswith("event: ")
    assert data_line.startswith("data: ")
    event: dict[str, Any] = json.loads(data_line[len("data: ") :])
    assert event["type"] == event_line[len("event: ") :]
    return event


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == kind]


def tool_reply() -> Reply:
    return Reply(choices=(Choice(tool_calls=(ToolCall("get_weather", '{"city":"Paris"}'),)),))


# --- parse ---------------------------------------------------------------------------------------


def test_empty_body_is_a_valid_request() -> None:
    exchange = parse({})
    assert exchange.endpoint is Endpoint.RESPONSES
    assert exchange.model == Catalog().default("chat")
    assert exchange.messages == ()
    assert (exchange.user_text, exchange.system_text, exchange.tool_result) == ("", "", None)
    assert not exchange.stream
    assert exchange.max_tokens is None


def test_string_input_is_one_user_message() -> None:
    exchange = parse({"model": "gpt-4o-mini", "input": "What is the capital of France?"})
    assert [(m.role, m.text) for m in exchange.messages] == [
        ("user", "What is the capital of France?")
    ]
    assert exchange.user_text == "What is the capital of France?"
    assert exchange.prompt_tokens > 0


def test_message_items_with_and_without_type_and_content_parts() -> None:
    exchange = parse(
        {
            "input": [
                {"role": "developer", "content": "Be brief."},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Describe this"},
                        {"type": "input_image", "image_url": "https://example.com/a.png"},
                        {"type": "input_file", "file_id": "file-1"},
                    ],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "msg_1",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "A cat.", "annotations": []}],
                },
                {"role": "user", "content": "And now?"},
            ]
        }
    )
    assert [m.role for m in exchange.messages] == ["developer", "user", "assistant", "user"]
    assert exchange.messages[1].images == 1
    assert exchange.user_text == "And now?"
    assert exchange.system_text == "Be brief."
    assert exchange.turn == 2


def test_function_call_and_output_items() -> None:
    exchange = parse(
        {
            "input": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_1",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                    "status": "completed",
                },
                {"type": "function_call_output", "call_id": "call_1", "output": "18C and sunny"},
            ],
            "tools": [WEATHER_TOOL],
        }
    )
    _user, assistant, tool = exchange.messages
    assert assistant.role == "assistant"
    assert [(c.id, c.name, c.arguments) for c in assistant.tool_calls] == [
        ("call_1", "get_weather", '{"city":"Paris"}')
    ]
    assert (tool.role, tool.text, tool.tool_call_id) == ("tool", "18C and sunny", "call_1")
    assert exchange.tool_result == "18C and sunny"
    assert exchange.has_tool_result
    assert exchange.user_text == "Weather in Paris?"


def test_parallel_function_calls_form_one_assistant_turn() -> None:
    call = {"type": "function_call", "name": "get_weather", "arguments": "{}"}
    exchange = parse(
        {
            "input": [
                {"role": "user", "content": "Paris and Rome?"},
                {**call, "call_id": "call_a"},
                {**call, "call_id": "call_b"},
                {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
                {
                    "type": "function_call_output",
                    "call_id": "call_b",
                    "output": [{"type": "input_text", "text": "21C"}],
                },
            ]
        }
    )
    assert [m.role for m in exchange.messages] == ["user", "assistant", "tool", "tool"]
    assert [c.id for c in exchange.messages[1].tool_calls] == ["call_a", "call_b"]
    assert exchange.tool_result == "21C"


def test_instructions_become_the_system_text() -> None:
    exchange = parse(
        {
            "instructions": "You are a pirate.",
            "input": [
                {"role": "system", "content": "Answer in English."},
                {"role": "user", "content": "hi"},
            ],
        }
    )
    assert exchange.messages[0].role == "system"
    assert exchange.system_text == "You are a pirate.\nAnswer in English."


def test_flat_tools_and_tool_choice() -> None:
    exchange = parse(
        {
            "input": "weather?",
            "tools": [
                WEATHER_TOOL,
                {
                    "type": "function",
                    "name": "loose",
                    "parameters": {"type": "object", "properties": {}},
                },
                {"type": "function", "name": "opt_out", "strict": False},
                {"type": "web_search"},
            ],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": False,
        }
    )
    assert [t.name for t in exchange.tools][:3] == ["get_weather", "loose", "opt_out"]
    # Responses function tools are strict unless `strict: false` is sent.
    assert [t.strict for t in exchange.tools][:3] == [True, True, False]
    assert exchange.tool("get_weather") is not None
    assert exchange.tool_choice.mode == "named"
    assert exchange.tool_choice.name == "get_weather"
    assert exchange.parallel_tool_calls is False


def test_text_format_json_schema_is_the_response_format() -> None:
    # (Strict mode's rules hold: the object is closed and requires its properties.)
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    exchange = parse(
        {
            "input": "numbers",
            "text": {
                "format": {"type": "json_schema", "name": "nums", "schema": schema, "strict": True}
            },
        }
    )
    assert exchange.response_format is not None
    assert exchange.response_format.kind == "json_schema"
    assert exchange.response_format.name == "nums"
    assert exchange.response_format.schema == schema
    assert exchange.response_format.strict


def test_limits_stream_and_logprob_switches() -> None:
    exchange = parse({"input": "x", "max_output_tokens": 32, "stream": True, "top_logprobs": 3})
    assert exchange.max_tokens == 32
    assert exchange.stream
    assert exchange.logprobs and exchange.top_logprobs == 3
    via_include = parse({"input": "x", "include": ["message.output_text.logprobs"]})
    assert via_include.logprobs and via_include.top_logprobs == 0
    assert not parse({"input": "x"}).logprobs


def test_stateful_fields_are_accepted() -> None:
    exchange = parse(
        {
            "input": [{"type": "function_call_output", "call_id": "call_9", "output": "ok"}],
            "model": "o3",  # (a model that reasons: it takes `reasoning.effort`)
            "previous_response_id": "resp_123",
            "store": False,
            "metadata": {"k": "v"},
            "reasoning": {"effort": "low"},
            "truncation": "auto",
        }
    )
    # The matching call lives in the previous response, which the mock cannot see.
    assert exchange.tool_result == "ok"
    assert exchange.body["previous_response_id"] == "resp_123"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": 5}, "input"),
        ({"input": {"role": "user"}}, "input"),
        ({"input": ["hi"]}, "input[0]"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "message", "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": "user"}]}, "input[0].content"),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "input[0].content[0].text",
        ),
        ({"input": [{"type": 7}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": "x"}, {"type": "function_call", "name": "f"}]},
            "input[1].call_id",
        ),
        (
            {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
            "input[0].arguments",
        ),
        ({"input": [{"type": "function_call_output", "call_id": "c"}]}, "input[0].output"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools[0].name"),
        ({"tools": [WEATHER_TOOL], "tool_choice": "sometimes"}, "tool_choice"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"max_output_tokens": 8}, "max_output_tokens"),
        ({"model": 4}, "model"),
    ],
)
def test_invalid_requests_get_a_400_naming_the_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse(body)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"


def test_wrong_input_type_message_is_openai_worded() -> None:
    with pytest.raises(ApiError) as caught:
        parse({"input": 5})
    assert caught.value.message == (
        "Invalid type for 'input': expected one of a string or an array, "
        "but got an integer instead."
    )


def test_unpaired_calls_and_outputs_are_rejected() -> None:
    with pytest.raises(ApiError) as orphan:
        parse({"input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]})
    assert orphan.value.message == (
        "No tool call found for function call output with call_id call_x."
    )
    assert (orphan.value.status, orphan.value.param) == (400, "input")
    call = {"type": "function_call", "call_id": "call_y", "name": "f", "arguments": "{}"}
    with pytest.raises(ApiError) as unanswered:
        parse({"input": [{"role": "user", "content": "hi"}, call]})
    assert unanswered.value.message == "No tool output found for function call call_y."


def test_unknown_model_in_a_restricted_catalog_is_a_404() -> None:
    with pytest.raises(ApiError) as caught:
        parse({"model": "gpt-x", "input": "hi"}, Catalog(["gpt-4o-mini"]))
    assert caught.value.status == 404
    assert caught.value.code == "model_not_found"


def test_too_long_input_exceeds_the_context_window() -> None:
    with pytest.raises(ApiError) as caught:
        parse({"model": "gpt-3.5-turbo", "input": "word " * 17_000})
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.param == "input"


def test_strict_mode_rejects_unknown_fields() -> None:
    context = ParseContext(headers={}, catalog=Catalog(), strict=True)
    with pytest.raises(ApiError) as caught:
        responses.parse({"input": "hi", "messages": []}, context)
    assert caught.value.code == "unknown_parameter"
    assert responses.parse({"input": "hi"}, context).user_text == "hi"


# --- render: JSON --------------------------------------------------------------------------------


def test_text_answer_is_a_valid_response_echoing_the_request() -> None:
    body = {
        "model": "gpt-4o-mini",
        "input": "hi",
        "instructions": "Be nice.",
        "tools": [WEATHER_TOOL, {"type": "function", "name": "bare"}],
        "tool_choice": "auto",
        "temperature": 0.2,
        "metadata": {"case": "1"},
        "previous_response_id": "resp_prev",
        "store": False,
    }
    response = render_json(Reply.text("Hello there!"), body)
    conformance.validate("Response", response)
    assert response["id"].startswith("resp_")
    assert response["object"] == "response"
    assert (response["created_at"], response["completed_at"]) == (CREATED, CREATED)
    assert (response["status"], response["error"], response["incomplete_details"]) == (
        "completed",
        None,
        None,
    )
    assert response["model"] == "gpt-4o-mini-2024-07-18"  # (the snapshot the alias points to)
    assert response["instructions"] == "Be nice."
    assert response["temperature"] == 0.2
    assert response["top_p"] == 1.0
    assert response["metadata"] == {"case": "1"}
    assert response["previous_response_id"] == "resp_prev"
    assert response["store"] is False
    assert response["tool_choice"] == "auto"
    assert response["tools"][0] == {**WEATHER_TOOL}
    # A bare function tool is echoed with the fields the API fills in (strict by default).
    assert response["tools"][1] == {
        "type": "function",
        "name": "bare",
        "description": None,
        "parameters": None,
        "strict": True,
    }
    assert response["text"]["format"] == {"type": "text"}
    assert response["reasoning"] == {"effort": None, "summary": None}
    assert response["truncation"] == "disabled"
    [message] = response["output"]
    assert message["type"] == "message"
    assert message["id"].startswith("msg_")
    assert (message["role"], message["status"]) == ("assistant", "completed")
    assert message["content"] == [
        {"type": "output_text", "text": "Hello there!", "annotations": [], "logprobs": []}
    ]


def test_defaults_for_an_empty_request() -> None:
    response = render_json(Reply.text("ok"), {})
    conformance.validate("Response", response)
    assert response["instructions"] is None
    assert response["tools"] == []
    assert response["tool_choice"] == "auto"
    assert response["metadata"] == {}
    assert response["parallel_tool_calls"] is True
    assert response["temperature"] == 1.0


def test_usage_has_every_detail_field_and_honours_overrides() -> None:
    usage = render_json(Reply.text("Hello there!"), {"input": "hi"})["usage"]
    assert usage["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 0}
    assert usage["output_tokens"] == 3
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    overridden = render_json(
        Reply(choices=(Choice(content="x"),), usage={"input_tokens": 36, "output_tokens": 87}),
        {"input": "hi"},
    )["usage"]
    assert (overridden["input_tokens"], overridden["output_tokens"]) == (36, 87)
    assert overridden["total_tokens"] == 123


def test_tool_call_answer_has_function_call_items_only() -> None:
    response = render_json(tool_reply(), {"input": "weather?", "tools": [WEATHER_TOOL]})
    conformance.validate("Response", response)
    [call] = response["output"]
    assert call["type"] == "function_call"
    assert call["id"].startswith("fc_")
    assert call["call_id"].startswith("call_")
    assert (call["name"], call["arguments"], call["status"]) == (
        "get_weather",
        '{"city":"Paris"}',
        "completed",
    )


def test_text_and_parallel_calls_give_a_message_then_each_call() -> None:
    reply = Reply(
        choices=(
            Choice(
                content="Checking both.",
                tool_calls=(
                    ToolCall("get_weather", '{"city":"Paris"}'),
                    ToolCall("get_weather", '{"city":"Rome"}', id="call_fixed"),
                ),
            ),
        )
    )
    response = render_json(reply, {"input": "weather?", "tools": [WEATHER_TOOL]})
    conformance.validate("Response", response)
    assert [item["type"] for item in response["output"]] == [
        "message",
        "function_call",
        "function_call",
    ]
    ids = [item["id"] for item in response["output"]]
    assert len(set(ids)) == 3
    assert response["output"][2]["call_id"] == "call_fixed"
    assert response["output"][1]["call_id"] != response["output"][2]["call_id"]


def test_refusal_is_a_refusal_part() -> None:
    response = render_json(Reply(choices=(Choice(refusal="I can't help with that."),)), {})
    conformance.validate("Response", response)
    assert response["output"][0]["content"] == [
        {"type": "refusal", "refusal": "I can't help with that."}
    ]


def test_max_output_tokens_truncation_makes_the_response_incomplete() -> None:
    response = render_json(Reply.text(LONG_TEXT), {"input": "hi", "max_output_tokens": 16})
    conformance.validate("Response", response)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["completed_at"] is None
    assert response["max_output_tokens"] == 16
    message = response["output"][0]
    assert message["status"] == "incomplete"
    assert LONG_TEXT.startswith(message["content"][0]["text"])
    assert len(message["content"][0]["text"]) < len(LONG_TEXT)
    assert response["usage"]["output_tokens"] == 16


def test_json_schema_format_is_echoed_in_text() -> None:
    fmt = {"type": "json_schema", "name": "nums", "schema": {"type": "object"}}
    response = render_json(Reply.text("{}"), {"input": "json", "text": {"format": fmt}})
    conformance.validate("Response", response)
    assert response["text"]["format"] == {**fmt, "strict": False}


def test_logprobs_are_filled_when_requested() -> None:
    response = render_json(Reply.text("Hello there!"), {"input": "hi", "top_logprobs": 2})
    conformance.validate("Response", response)
    part = response["output"][0]["content"][0]
    assert [entry["token"] for entry in part["logprobs"]] == ["Hello", " there", "!"]
    for entry in part["logprobs"]:
        conformance.validate("LogProb", entry)
        assert len(entry["top_logprobs"]) == 2
        assert entry["bytes"] == list(entry["token"].encode())


# --- render: the event stream --------------------------------------------------------------------


def assert_valid_stream(events: list[dict[str, Any]]) -> None:
    """Spec-valid events, contiguous sequence numbers, and the SDK helper's ordering rules."""
    for event in events:
        conformance.validate(conformance.response_event_schema(event["type"]), event)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created"
    assert events[1]["type"] == "response.in_progress"
    lifecycle = [e for e in events if e["type"] in ("response.created", "response.in_progress")]
    terminal = events[-1]
    assert terminal["type"] in ("response.completed", "response.incomplete")
    assert {e["response"]["id"] for e in [*lifecycle, terminal]} == {terminal["response"]["id"]}
    assert lifecycle[0]["response"]["status"] == "in_progress"
    assert lifecycle[0]["response"]["output"] == []
    opened: dict[int, dict[str, Any]] = {}
    parts: set[int] = set()
    for event in events[2:-1]:
        index = event["output_index"]
        if event["type"] == "response.output_item.added":
            assert index not in opened
            opened[index] = event["item"]
            continue
        assert index in opened, f"{event['type']} before its output_item.added"
        if event["type"] == "response.content_part.added":
            parts.add(index)
        if event["type"] in ("response.output_text.delta", "response.refusal.delta"):
            assert index in parts, "a delta before content_part.added"
        if event["type"] == "response.output_item.done":
            assert event["item"]["id"] == opened[index]["id"]
            assert event["item"].get("call_id") == opened[index].get("call_id")
    done = [e["item"] for e in of_type(events, "response.output_item.done")]
    assert terminal["response"]["output"] == done


def test_text_stream_event_sequence() -> None:
    events = render_events(Reply.text("Hello there, world!"), {"input": "hi"})
    assert_valid_stream(events)
    assert [e["type"] for e in events[:4]] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert [e["type"] for e in events[-4:]] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[2]["item"]["status"] == "in_progress"
    assert events[2]["item"]["content"] == []
    assert events[3]["part"] == {
        "type": "output_text",
        "text": "",
        "annotations": [],
        "logprobs": [],
    }
    deltas = of_type(events, "response.output_text.delta")
    assert "".join(d["delta"] for d in deltas) == "Hello there, world!"
    assert all(d["logprobs"] == [] for d in deltas)
    [done] = of_type(events, "response.output_text.done")
    assert done["text"] == "Hello there, world!"
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["status"] == "completed"
    assert events[-1]["response"]["usage"]["output_tokens"] == len(deltas)


def test_text_stream_tail_ending_and_no_done_marker() -> None:
    out = render(Reply.text("Hi"), {"input": "hi", "stream": True})
    assert isinstance(out, EventStream)
    assert out.tail == 1
    assert out.frames[-1].startswith(b"event: response.completed\n")
    assert all(b"[DONE]" not in frame for frame in out.frames)
    assert all(b"\nid:" not in frame and not frame.startswith(b"id:") for frame in out.frames)
    assert out.error_frame is not None
    assert out.error_frame(7).startswith(b"event: error\n")
    assert b'"sequence_number":7' in out.error_frame(7)


def test_stream_end_matches_the_json_answer() -> None:
    body = {"input": "hi", "tools": [WEATHER_TOOL]}
    reply = Reply(choices=(Choice(content="Sure.", tool_calls=tool_reply().choices[0].tool_calls),))
    events = render_events(reply, body)
    assert_valid_stream(events)
    assert events[-1]["response"] == render_json(reply, body)


def test_function_call_stream_arguments_concatenate() -> None:
    arguments = '{"city":"Paris","unit":"celsius","days":3}'
    reply = Reply(choices=(Choice(tool_calls=(ToolCall("get_weather", arguments),)),))
    events = render_events(reply, {"input": "weather?", "tools": [WEATHER_TOOL]})
    assert_valid_stream(events)
    added = events[2]
    assert added["type"] == "response.output_item.added"
    assert added["item"]["type"] == "function_call"
    assert (added["item"]["arguments"], added["item"]["status"]) == ("", "in_progress")
    deltas = of_type(events, "response.function_call_arguments.delta")
    assert len(deltas) > 1
    assert "".join(d["delta"] for d in deltas) == arguments
    assert {d["item_id"] for d in deltas} == {added["item"]["id"]}
    [done] = of_type(events, "response.function_call_arguments.done")
    assert (done["name"], done["arguments"]) == ("get_weather", arguments)
    [item_done] = of_type(events, "response.output_item.done")
    assert item_done["item"]["call_id"] == added["item"]["call_id"]
    assert item_done["item"]["arguments"] == arguments
    assert item_done["item"]["status"] == "completed"


def test_parallel_calls_stream_one_item_each() -> None:
    reply = Reply(
        choices=(
            Choice(
                tool_calls=(
                    ToolCall("get_weather", '{"city":"Paris"}'),
                    ToolCall("get_weather", '{"city":"Rome"}'),
                )
            ),
        )
    )
    events = render_events(reply, {"input": "weather?", "tools": [WEATHER_TOOL]})
    assert_valid_stream(events)
    added = of_type(events, "response.output_item.added")
    assert [a["output_index"] for a in added] == [0, 1]
    for index, city in enumerate(("Paris", "Rome")):
        deltas = [
            d
            for d in of_type(events, "response.function_call_arguments.delta")
            if d["output_index"] == index
        ]
        assert "".join(d["delta"] for d in deltas) == f'{{"city":"{city}"}}'


def test_refusal_stream() -> None:
    events = render_events(Reply(choices=(Choice(refusal="I can't help with that."),)), {})
    assert_valid_stream(events)
    [part_added] = of_type(events, "response.content_part.added")
    assert part_added["part"] == {"type": "refusal", "refusal": ""}
    deltas = of_type(events, "response.refusal.delta")
    assert "".join(d["delta"] for d in deltas) == "I can't help with that."
    [done] = of_type(events, "response.refusal.done")
    assert done["refusal"] == "I can't help with that."
    assert not of_type(events, "response.output_text.delta")


def test_truncated_stream_ends_with_response_incomplete() -> None:
    events = render_events(Reply.text(LONG_TEXT), {"input": "hi", "max_output_tokens": 16})
    assert_valid_stream(events)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["status"] == "incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert len(of_type(events, "response.output_text.delta")) == 16
    assert not of_type(events, "response.completed")


def test_empty_reply_streams_an_empty_message() -> None:
    events = render_events(Reply(), {})
    assert_valid_stream(events)
    assert not of_type(events, "response.output_text.delta")
    [done] = of_type(events, "response.output_text.done")
    assert done["text"] == ""


def test_stream_logprobs_when_requested() -> None:
    events = render_events(Reply.text("Hello there!"), {"input": "hi", "top_logprobs": 2})
    assert_valid_stream(events)
    deltas = of_type(events, "response.output_text.delta")
    assert [[lp["token"] for lp in d["logprobs"]] for d in deltas] == [["Hello"], [" there"], ["!"]]
    [done] = of_type(events, "response.output_text.done")
    assert [lp["token"] for lp in done["logprobs"]] == ["Hello", " there", "!"]
    final = events[-1]["response"]["output"][0]["content"][0]["logprobs"]
    # The same numbers in the deltas and in the final item (which adds `bytes`).
    assert [d["logprobs"][0]["logprob"] for d in deltas] == [e["logprob"] for e in final]


def test_rendering_is_deterministic() -> None:
    body = {"input": "weather?", "tools": [WEATHER_TOOL], "stream": True}
    first = render(tool_reply(), body)
    second = render(tool_reply(), body)
    assert isinstance(first, EventStream) and isinstance(second, EventStream)
    assert first.frames == second.frames
    json_body = {k: v for k, v in body.items() if k != "stream"}
    assert render(Reply.text("x"), json_body) == render(Reply.text("x"), json_body)
    other = render(tool_reply(), body, key=b"another-key")
    assert isinstance(other, EventStream)
    assert other.frames != first.frames


def test_error_event_is_the_spec_error_event() -> None:
    frame = responses.error_event(5)
    assert frame.startswith(b"event: error\ndata: ")
    event = decode_frame(frame)
    conformance.validate(conformance.response_event_schema("error"), event)
    assert event == {
        "type": "error",
        "code": "server_error",
        "message": "The server had an error while processing your request.",
        "param": None,
        "sequence_number": 5,
    }
    assert decode_frame(responses.error_event(0, "boom"))["message"] == "boom"


def test_codec_record() -> None:
    assert responses.CODEC.endpoint is Endpoint.RESPONSES
    assert responses.CODEC.path == "/responses"
    assert responses.CODEC.parse is responses.parse
    assert responses.CODEC.render is responses.render


# --- the real SDK reads what we render -----------------------------------------------------------


def sdk_client(reply: Reply, *, strict: bool = False) -> openai.OpenAI:
    """An SDK client whose transport answers POST /v1/responses with this codec, in memory."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        assert request.method == "POST"
        assert request.url.path == "/v1/responses"
        exchange = parse(json.loads(request.content))
        out = responses.render(reply, exchange, RenderContext(key=KEY, created=CREATED))
        if isinstance(out, EventStream):
            return httpx2.Response(
                200, headers={"content-type": out.content_type}, content=b"".join(out.frames)
            )
        return httpx2.Response(200, headers={"content-type": out.content_type}, content=out.body)

    return openai.OpenAI(
        base_url="http://mockai.test/v1",
        api_key="x",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
        _strict_response_validation=strict,
    )


def run_stream(client: openai.OpenAI, **kwargs: Any) -> Any:
    with client.responses.stream(model="gpt-4o-mini", **kwargs) as stream:
        seen = [event.type for event in stream]
        final = stream.get_final_response()
    assert seen[0] == "response.created"
    return final


def test_sdk_stream_helper_accepts_a_text_stream() -> None:
    client = sdk_client(Reply.text("Hello from the mock!"))
    final = run_stream(client, input="hi", instructions="Be nice.")
    assert final.output_text == "Hello from the mock!"
    assert final.status == "completed"
    assert final.id.startswith("resp_")
    assert final.usage is not None and final.usage.output_tokens > 0


def test_sdk_stream_helper_accepts_a_function_call_stream() -> None:
    client = sdk_client(tool_reply())
    final = run_stream(client, input="weather in Paris?", tools=SDK_TOOLS)
    [call] = final.output
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert call.arguments == '{"city":"Paris"}'
    assert call.parsed_arguments == {"city": "Paris"}  # the helper parses strict tools' arguments


def test_sdk_stream_helper_text_deltas_build_the_snapshot() -> None:
    client = sdk_client(Reply.text("one two three"))
    with client.responses.stream(model="gpt-4o-mini", input="count") as stream:
        snapshots = [e.snapshot for e in stream if e.type == "response.output_text.delta"]
    assert snapshots[-1] == "one two three"


@pytest.mark.parametrize(
    "make_reply",
    [lambda: Reply.text("Hello!"), tool_reply, lambda: Reply(choices=(Choice(refusal="No."),))],
)
def test_sdk_strict_validation_accepts_the_json_response(make_reply: Callable[[], Reply]) -> None:
    client = sdk_client(make_reply(), strict=True)
    response = client.responses.create(model="gpt-4o-mini", input="hi", tools=SDK_TOOLS)
    assert response.object == "response"
    assert response.usage is not None
    assert response.usage.input_tokens_details.cache_write_tokens == 0


def test_sdk_sees_an_incomplete_stream_as_not_completed() -> None:
    client = sdk_client(Reply.text(LONG_TEXT))
    with (
        client.responses.stream(model="gpt-4o-mini", input="hi", max_output_tokens=16) as stream,
        pytest.raises(RuntimeError, match=r"response\.completed"),
    ):
        stream.get_final_response()
