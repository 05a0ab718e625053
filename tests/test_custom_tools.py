"""Custom (freeform) tools: `tool_choice` is honoured and their calls have the API's shapes.

A custom tool takes free text (`input`) instead of JSON arguments. Chat calls one with
`{"type": "custom", "custom": {"name", "input"}}`, the Responses API with a `custom_tool_call`
output item (streamed as `response.custom_tool_call_input.*` events). The chat stream chunk has
no form for one in the spec, so a chat stream that would carry one is a clear 400. Every answer
is validated against the OpenAPI spec (the `server` fixture is a `conformance.checked_server`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import pytest
from sdk import sdk

from mockai import MockServer

MODEL = "gpt-5"
ASK = [{"role": "user", "content": "run python to compute 2+2"}]
CODE_EXEC = {"type": "custom", "custom": {"name": "code_exec", "description": "Executes python"}}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
# The same tool as the Responses API takes it (flat).
FLAT_CODE_EXEC = {"type": "custom", "name": "code_exec", "description": "Executes python"}
ZIP_CODE = r"[0-9]{5}-[A-Z]{2}"


def custom_call(completion: Any) -> Any:
    """The only choice's only tool call, which must be a custom one."""
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "custom"
    assert call.id.startswith("call_")
    assert isinstance(call.custom.input, str) and call.custom.input
    return call


@pytest.mark.parametrize(
    ("tools", "choice"),
    [
        ([CODE_EXEC], "required"),
        ([CODE_EXEC], {"type": "custom", "custom": {"name": "code_exec"}}),
        ([CODE_EXEC, WEATHER], {"type": "custom", "custom": {"name": "code_exec"}}),
        (
            [WEATHER, CODE_EXEC],
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "custom", "custom": {"name": "code_exec"}}],
                },
            },
        ),
        ([CODE_EXEC], "auto"),  # a question about the tool: the model may pick it
    ],
)
def test_chat_calls_the_custom_tool_the_choice_asks_for(
    client: openai.OpenAI, tools: list[Any], choice: Any
) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=tools, tool_choice=choice
    )
    assert custom_call(completion).custom.name == "code_exec"


def test_a_regex_grammar_shapes_the_input_and_a_lark_grammar_is_flagged(
    server: MockServer, client: openai.OpenAI
) -> None:
    regex_tool = {
        "type": "custom",
        "custom": {
            "name": "ship",
            "format": {"type": "grammar", "grammar": {"syntax": "regex", "definition": ZIP_CODE}},
        },
    }
    for seed_text in ("ship it", "ship it now", "ship the parcel"):
        completion = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": seed_text}],
            tools=[regex_tool],
            tool_choice="required",
        )
        assert re.fullmatch(ZIP_CODE, custom_call(completion).custom.input)
    lark = {"type": "grammar", "grammar": {"syntax": "lark", "definition": 'start: "a"+'}}
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=ASK,
        tools=[{"type": "custom", "custom": {"name": "code_exec", "format": lark}}],
        tool_choice="required",
    )
    custom_call(raw.parse())  # text, said so: mockai does not generate from Lark grammars
    assert "lark grammar" in raw.headers["x-mockai-warning"]


def test_an_invalid_format_is_a_400(client: openai.OpenAI) -> None:
    bad = {"type": "custom", "custom": {"name": "x", "format": {"type": "grammar"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=ASK, tools=[bad])
    assert caught.value.param == "tools[0].custom.format.grammar"


def test_the_agent_loop_ends_after_the_custom_tool_answers(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[CODE_EXEC, WEATHER], tool_choice="auto"
    )
    call = custom_call(first)
    messages: list[Any] = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call.id, "type": "custom", "custom": {"name": "code_exec", "input": "2+2"}}
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "4"},
    ]
    second = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[CODE_EXEC, WEATHER], tool_choice="auto"
    )
    assert second.choices[0].finish_reason == "stop"
    assert "4" in (second.choices[0].message.content or "")


def test_a_chat_stream_whose_answer_calls_a_custom_tool_is_a_clear_400(
    client: openai.OpenAI,
) -> None:
    # The answer does not depend on `stream`: the call a non-streamed request gets is refused.
    for choice in ("required", {"type": "custom", "custom": {"name": "code_exec"}}, "auto"):
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model=MODEL, messages=ASK, tools=[CODE_EXEC], tool_choice=choice, stream=True
            )
        assert caught.value.code == "mockai_unsupported"
        assert "Responses API" in caught.value.message
    # An answer in words streams as ever.
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hello there"}],
        tools=[CODE_EXEC],
        stream=True,
    )
    text = "".join(c.delta.content or "" for chunk in stream for c in chunk.choices)
    assert text


def answered(response: Any) -> list[Any]:
    """The output items after the reasoning item (MODEL, gpt-5, reasons first)."""
    assert response.output[0].type == "reasoning"
    return list(response.output[1:])


@pytest.mark.parametrize("choice", ["required", {"type": "custom", "name": "code_exec"}])
def test_responses_calls_the_custom_tool(client: openai.OpenAI, choice: Any) -> None:
    response = client.responses.create(
        model=MODEL, input=ASK[0]["content"], tools=[FLAT_CODE_EXEC], tool_choice=choice
    )
    [item] = answered(response)
    assert item.type == "custom_tool_call"
    assert item.name == "code_exec"
    assert item.call_id.startswith("call_")
    assert item.input


def test_responses_streams_the_custom_input(client: openai.OpenAI) -> None:
    # (the Responses API's grammar is flat, chat's nested under `grammar`)
    tool = {
        **FLAT_CODE_EXEC,
        "format": {"type": "grammar", "syntax": "regex", "definition": ZIP_CODE},
    }
    with client.responses.stream(
        model=MODEL, input=ASK[0]["content"], tools=[tool], tool_choice="required"
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    deltas = [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"]
    [done] = [e for e in events if e.type == "response.custom_tool_call_input.done"]
    assert kinds.index("response.output_item.added") < kinds.index(
        "response.custom_tool_call_input.delta"
    )
    [item] = answered(final)
    assert item.type == "custom_tool_call"
    assert "".join(deltas) == done.input == item.input
    assert re.fullmatch(ZIP_CODE, item.input)


def test_a_responses_loop_sees_the_custom_call_and_its_output(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=MODEL, input=ASK[0]["content"], tools=[FLAT_CODE_EXEC], tool_choice="auto"
    )
    [call] = answered(first)
    assert call.type == "custom_tool_call"
    result = {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "4"}
    # The whole conversation sent again, and chained on the first response: both answer in words.
    resent = client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": ASK[0]["content"]},
            call.model_dump(exclude_none=True),
            result,
        ],
        tools=[FLAT_CODE_EXEC],
    )
    chained = client.responses.create(
        model=MODEL, previous_response_id=first.id, input=[result], tools=[FLAT_CODE_EXEC]
    )
    for answer in (resent, chained):
        assert [item.type for item in answered(answer)] == ["message"]
        assert "4" in answer.output_text


SCENARIO = """mockai: 1
rules:
  - name: run-code
    match: {tools: [code_exec]}
    reply:
      tool_calls: [{name: code_exec, arguments: "print(2 + 2)"}]
"""


def test_a_rule_calling_a_custom_tool_by_name_renders_a_custom_call(tmp_path: Path) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text(SCENARIO)
    with conformance.checked_server(scenarios=(str(path),)) as server, sdk(server) as client:
        completion = client.chat.completions.create(model=MODEL, messages=ASK, tools=[CODE_EXEC])
        assert custom_call(completion).custom.input == "print(2 + 2)"
        response = client.responses.create(
            model=MODEL, input=ASK[0]["content"], tools=[FLAT_CODE_EXEC]
        )
        [item] = answered(response)
        assert (item.type, item.input) == ("custom_tool_call", "print(2 + 2)")
        # A chat stream has no form for it: the API reference's chunk only knows functions.
        answer = httpx.post(
            f"{server.url}/chat/completions",
            json={"model": MODEL, "messages": ASK, "tools": [CODE_EXEC], "stream": True},
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "mockai_unsupported"
