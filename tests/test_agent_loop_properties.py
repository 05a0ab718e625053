"""Generated answers let an unscripted agent loop finish (the generator's rules, as properties).

An agent loop with `tool_choice: "required"` feeds every tool result back and asks again; the
generator must move on instead of calling the same tool forever: after a tool result it calls a
tool not called since the last user turn, a final-answer tool (`final_result`, `submit`, ...)
first, and once every tool was called, the final one again or the least recently called one.
These tests drive the real codecs (chat and Responses) and the fallback generator over arbitrary
tool lists and conversations, feeding results back as a framework would.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockai.api import chat, responses
from mockai.api.base import ParseContext
from mockai.catalog import Catalog
from mockai.generate.fallback import FallbackGenerator
from mockai.pipeline.exchange import Exchange
from mockai.pipeline.fingerprint import content_key
from mockai.pipeline.reply import Reply

CATALOG = Catalog()
LOOP = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Final-answer tools as frameworks name them, and ordinary working tools.
FINAL_NAMES = ["final_result", "submit", "final_answer", "respond", "answer", "done", "finish"]
WORKING_NAMES = ["get_weather", "search_docs", "lookup_user", "send_email", "calc", "fetch_page"]
PARAMETERS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    {"type": "object", "properties": {"query": {"type": "string"}, "k": {"type": "integer"}}},
    {"type": "object", "properties": {}},
    {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "string"}}},
        "additionalProperties": False,
    },
]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    final: bool


@st.composite
def tool_lists(draw: st.DrawFn) -> list[ToolSpec]:
    """1-5 tools with distinct names: some working tools, maybe final-answer tools."""
    names = draw(
        st.lists(
            st.sampled_from(WORKING_NAMES)
            | st.sampled_from(FINAL_NAMES)
            | st.from_regex(r"x[a-z0-9]{2,8}", fullmatch=True),  # x...: never a final word
            min_size=1,
            max_size=5,
            unique=True,
        )
    )
    tools = []
    for name in names:
        final = name in FINAL_NAMES
        plain_words = st.text(alphabet="abcdefgh ", max_size=30)
        description = draw(
            st.just("The final response which ends this conversation")
            if final
            else plain_words.filter(lambda text: "final" not in text)
        )
        final = final or "final response" in description
        tools.append(ToolSpec(name, description, draw(st.sampled_from(PARAMETERS)), final))
    return tools


QUESTIONS = st.sampled_from(
    ["What's the weather in Paris?", "search the docs for retries", "hi", "Find user 42", ""]
) | st.text(max_size=40)


def _chat_body(tools: list[ToolSpec], messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": messages,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in tools
        ],
        "tool_choice": "required",
    }


def _responses_body(tools: list[ToolSpec], items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "input": items,
        "tools": [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "strict": False,
            }
            for t in tools
        ],
        "tool_choice": "required",
    }


def _answer(generator: FallbackGenerator, endpoint: str, body: dict[str, Any]) -> Reply:
    codec: Callable[[Any, ParseContext], Exchange] = (
        chat.parse if endpoint == "chat" else responses.parse
    )
    exchange = codec(body, ParseContext(headers={}, catalog=CATALOG))
    return generator.reply(exchange, content_key(generator.seed, endpoint, body))


def run_loop(
    tools: list[ToolSpec], question: str, endpoint: str, seed: int, steps: int, history: int = 0
) -> list[tuple[str, str]]:
    """An agent loop of `steps` requests, each tool result fed back: the calls, in order.

    `history` earlier user turns, each answered by a call of every tool, come first (calls before
    the last user turn do not count against a tool).
    """
    generator = FallbackGenerator(seed, CATALOG)
    conversation: list[dict[str, Any]] = []

    def add_call(index: int, name: str, arguments: str) -> None:
        call_id = f"call_{index}"
        if endpoint == "chat":
            conversation.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": arguments},
                        }
                    ],
                }
            )
            conversation.append(
                {"role": "tool", "tool_call_id": call_id, "content": f"result of {name}"}
            )
        else:
            conversation.append(
                {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}
            )
            conversation.append(
                {"type": "function_call_output", "call_id": call_id, "output": f"result of {name}"}
            )

    for turn in range(history):
        conversation.append({"role": "user", "content": f"earlier question {turn}"})
        for tool in tools:
            add_call(len(conversation), tool.name, "{}")
    conversation.append({"role": "user", "content": question})
    calls: list[tuple[str, str]] = []
    for _ in range(steps):
        make = _chat_body if endpoint == "chat" else _responses_body
        reply = _answer(generator, endpoint, make(tools, list(conversation)))
        (choice,) = reply.choices
        assert len(choice.tool_calls) == 1, "required: exactly one call per step"
        call = choice.tool_calls[0]
        calls.append((call.name, call.arguments))
        add_call(len(conversation), call.name, call.arguments)
    return calls


ENDPOINTS = st.sampled_from(["chat", "responses"])


@LOOP
@given(
    tools=tool_lists(),
    question=QUESTIONS,
    endpoint=ENDPOINTS,
    seed=st.integers(0, 2**31),
    history=st.integers(0, 2),
)
def test_required_moves_on_after_tool_results(
    tools: list[ToolSpec], question: str, endpoint: str, seed: int, history: int
) -> None:
    steps = len(tools) + 2
    calls = run_loop(tools, question, endpoint, seed, steps, history)
    names = [name for name, _ in calls]
    by_name = {t.name: t for t in tools}
    for name, arguments in calls:  # every call is a valid call of an offered tool
        jsonschema.validate(json.loads(arguments), by_name[name].parameters)
    finals = [t.name for t in tools if t.final]
    working = [t.name for t in tools if not t.final]
    if finals:
        # The agent's own tool runs first (when it has one), then the final answer ends the loop.
        first_final = next(i for i, name in enumerate(names) if name in finals)
        assert first_final == (1 if working else 0), names
        assert all(name in working for name in names[:first_final]), names
        assert all(name in finals for name in names[first_final:]), names  # retries stay final
    else:
        # Every tool once before any twice, and never the same tool twice in a row.
        assert len(set(names[: len(tools)])) == len(tools), names
        if len(tools) > 1:
            assert all(a != b for a, b in itertools.pairwise(names)), names


@LOOP
@given(tools=tool_lists(), question=QUESTIONS, endpoint=ENDPOINTS, seed=st.integers(0, 2**31))
def test_the_loop_is_the_same_on_every_run(
    tools: list[ToolSpec], question: str, endpoint: str, seed: int
) -> None:
    steps = len(tools) + 1
    assert run_loop(tools, question, endpoint, seed, steps) == run_loop(
        tools, question, endpoint, seed, steps
    )


def test_pydantic_ai_shaped_loop_calls_the_tool_then_the_final_result() -> None:
    tools = [
        ToolSpec("lookup_city", "Look up facts about a city.", PARAMETERS[0], final=False),
        ToolSpec(
            "final_result",
            "The final response which ends this conversation",
            {
                "type": "object",
                "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                "required": ["city", "country"],
            },
            final=True,
        ),
    ]
    for endpoint in ("chat", "responses"):
        calls = run_loop(tools, "Alice and Bob are meeting in Paris. Which city?", endpoint, 0, 2)
        assert [name for name, _ in calls] == ["lookup_city", "final_result"]
        assert json.loads(calls[0][1]) == {"city": "Paris"}
        assert json.loads(calls[1][1]) == {"city": "Paris", "country": "France"}


def test_results_whose_calls_are_out_of_sight_still_lead_to_the_final_tool() -> None:
    """A Responses request chained to a response this server does not hold: only the output."""
    generator = FallbackGenerator(0, CATALOG)
    tools = [
        ToolSpec("search", "Search.", PARAMETERS[1], False),
        ToolSpec("submit", "", PARAMETERS[2], True),
    ]
    body = _responses_body(
        tools, [{"type": "function_call_output", "call_id": "call_x", "output": "42"}]
    )
    body["previous_response_id"] = "resp_unknown"
    exchange = responses.parse(body, ParseContext(headers={}, catalog=CATALOG))
    reply = generator.reply(exchange, content_key(0, "responses", body))
    assert [call.name for call in reply.choices[0].tool_calls] == ["submit"]


def test_auto_answers_in_words_after_a_tool_result() -> None:
    tools = [ToolSpec("get_weather", "Weather in a city", PARAMETERS[0], False)]
    generator = FallbackGenerator(0, CATALOG)
    body = _chat_body(tools, [{"role": "user", "content": "weather in Oslo?"}])
    body["tool_choice"] = "auto"
    first = _answer(generator, "chat", body).choices[0]
    assert [c.name for c in first.tool_calls] == ["get_weather"]
    body["messages"] += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": first.tool_calls[0].arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "9C"},
    ]
    second = _answer(generator, "chat", body).choices[0]
    assert not second.tool_calls and second.content is not None and "9C" in second.content


def test_a_single_tool_without_a_final_one_is_called_again_with_new_arguments() -> None:
    """`required` with one working tool: the model must call it; the arguments move on."""
    tools = [ToolSpec("search_docs", "Search the docs", PARAMETERS[1], False)]
    calls = run_loop(
        tools,
        "search the docs for retries and timeouts",
        "chat",
        random.Random(1).randint(0, 99),
        4,
    )
    assert {name for name, _ in calls} == {"search_docs"}
    assert len({arguments for _, arguments in calls}) > 1
