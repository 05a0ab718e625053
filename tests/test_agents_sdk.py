"""The OpenAI Agents SDK (openai-agents) against mockai: it drives the Responses API, runs tool
loops itself, and keeps sessions in the Conversations API or chains with previous_response_id.

(The SDK takes ~3 s to import: it is imported inside the tests, not when the suite collects.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import conformance
import openai
import pytest

from mockai import MockServer

RULES = [
    {
        "name": "call-weather",
        "match": {"endpoint": "responses", "user": "weather", "has_tool_result": False},
        "reply": {"tool_calls": [{"name": "get_weather", "arguments": "auto"}]},
    },
    {
        "name": "answer-weather",
        "match": {"endpoint": "responses", "has_tool_result": True},
        "reply": {"content": "It is {{ request.tool_result }}."},
    },
    {
        "name": "small-talk",
        "match": {"endpoint": "responses", "user": {"not": "weather"}},
        "reply": {"content": "Hello! {{ request.turn }} question(s) so far."},
    },
]


@pytest.fixture
def server() -> Iterator[MockServer]:
    with conformance.checked_server() as running:
        running.add_rules(RULES)
        yield running


def _agent_and_client(server: MockServer) -> tuple[Any, openai.AsyncOpenAI]:
    from agents import (
        Agent,
        OpenAIResponsesModel,
        function_tool,
        set_tracing_disabled,
    )

    set_tracing_disabled(True)

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return f"18C in {city}"

    client = openai.AsyncOpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
    model = OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client)
    agent = Agent(name="weather", instructions="Be brief.", tools=[get_weather], model=model)
    return agent, client


def test_an_agent_runs_its_tool_loop_to_the_end(server: MockServer) -> None:
    from agents import Runner

    agent, client = _agent_and_client(server)

    async def run() -> Any:
        async with client:
            return await Runner.run(agent, "What's the weather in Paris?")

    result = asyncio.run(run())
    assert result.final_output == "It is 18C in Paris."  # the argument came from the question
    assert [entry.rule for entry in server.requests] == ["call-weather", "answer-weather"]


def test_a_conversations_session_keeps_the_turns(server: MockServer) -> None:
    from agents import OpenAIConversationsSession, Runner

    agent, client = _agent_and_client(server)

    async def run() -> tuple[Any, Any, list[Any]]:
        async with client:
            session = OpenAIConversationsSession(openai_client=client)
            first = await Runner.run(agent, "Hello there", session=session)
            second = await Runner.run(agent, "And the weather in Oslo?", session=session)
            return first, second, await session.get_items()

    first, second, items = asyncio.run(run())
    assert first.final_output == "Hello! 1 question(s) so far."
    assert second.final_output == "It is 18C in Oslo."
    kinds = [item.get("type", "message") for item in items]
    assert kinds == [
        "message",  # hello
        "message",  # its answer
        "message",  # the weather question
        "function_call",
        "function_call_output",
        "message",  # the answer
    ]
    assert any(entry.path.startswith("/v1/conversations") for entry in server.requests)


def test_chaining_with_previous_response_id(server: MockServer) -> None:
    from agents import Runner

    agent, client = _agent_and_client(server)

    async def run() -> Any:
        async with client:
            first = await Runner.run(agent, "Hello there")
            return await Runner.run(
                agent, "A second question", previous_response_id=first.last_response_id
            )

    # The server holds the first turn: the rule sees two user turns.
    assert asyncio.run(run()).final_output == "Hello! 2 question(s) so far."
