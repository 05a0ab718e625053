"""pydantic-ai against a plain mockai (no rules): agents run to a schema-valid result.

pydantic-ai's default structured output is a `final_result` tool, and with an `output_type` it
sends `tool_choice: "required"` on every step: the generator must call the agent's tool, then
`final_result`, instead of the same tool until the request limit. Also its `PromptedOutput`
(the schema in the instructions, `json_object` format) and `NativeOutput` (`json_schema`), on the
chat model and on the Responses model, whole and streamed.

(pydantic-ai takes ~1 s to import: it is imported inside the tests, not when the suite collects.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from pydantic import BaseModel, Field

from mockai import MockServer

REQUEST_LIMIT = 6  # a loop that never finishes fails fast instead of running to the default 50


class CityFacts(BaseModel):
    """What the agent reports about a city."""

    city: str
    country: str
    population: int = Field(ge=0)
    landmarks: list[str]


class Meeting(BaseModel):
    city: str
    attendee_names: list[str] = Field(min_length=1)  # `_`: a streamed field name keeps it
    duration_minutes: int | None = None


def _agent(client: openai.AsyncOpenAI, api: str, output_type: Any, calls: list[str]) -> Any:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    provider = OpenAIProvider(openai_client=client)
    model_class = OpenAIChatModel if api == "chat" else OpenAIResponsesModel
    agent = Agent(model_class("gpt-4o-mini", provider=provider), output_type=output_type)

    @agent.tool_plain
    def lookup_city(name: str) -> str:
        """Look up facts about a city."""
        calls.append(name)
        return f"{name}: 2.1 million people, famous for its tower"

    return agent


def _limits() -> Any:
    from pydantic_ai.usage import UsageLimits

    return UsageLimits(request_limit=REQUEST_LIMIT)


def _run(server: MockServer, api: str, output_type: Any, question: str, calls: list[str]) -> Any:
    """The agent's output for `question` (a client closed on the loop that used it)."""

    async def run() -> Any:
        async with openai.AsyncOpenAI(
            base_url=server.url, api_key="sk-test", max_retries=0
        ) as client:
            agent = _agent(client, api, output_type, calls)
            return (await agent.run(question, usage_limits=_limits())).output

    return asyncio.run(run())


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_an_agent_with_a_tool_and_an_output_type_finishes(server: MockServer, api: str) -> None:
    calls: list[str] = []
    output = _run(server, api, CityFacts, "Tell me about the biggest city in Japan", calls)
    assert isinstance(output, CityFacts)
    assert (output.city, output.country) == ("Tokyo", "Japan")  # the place asked about
    assert output.landmarks  # the list holds something
    assert len(calls) == 1  # its own tool ran once, then the final answer
    assert len(server.requests) == 2
    assert all(entry.source == "generator" for entry in server.requests)


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("mode", ["prompted", "native"])
def test_prompted_and_native_output_fit_the_model(server: MockServer, api: str, mode: str) -> None:
    from pydantic_ai import NativeOutput, PromptedOutput

    wrap = PromptedOutput if mode == "prompted" else NativeOutput
    output = _run(
        server, api, wrap(CityFacts), "Alice and Bob are meeting in Paris. Which city?", []
    )
    assert isinstance(output, CityFacts)
    assert (output.city, output.country) == ("Paris", "France")
    body = server.requests[-1].body
    format_ = body.get("response_format") or body.get("text", {}).get("format")
    assert format_["type"] == ("json_object" if mode == "prompted" else "json_schema")


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_streamed_run_finishes_with_a_valid_output(server: MockServer, api: str) -> None:
    calls: list[str] = []

    async def run() -> tuple[Meeting, list[Any]]:
        async with openai.AsyncOpenAI(
            base_url=server.url, api_key="sk-test", max_retries=0
        ) as client:
            agent = _agent(client, api, Meeting, calls)
            async with agent.run_stream(
                "Alice and Bob meet in Paris", usage_limits=_limits()
            ) as stream:
                partials = [partial async for partial in stream.stream_output(debounce_by=None)]
                return await stream.get_output(), partials

    output, partials = asyncio.run(run())
    assert isinstance(output, Meeting)
    assert output.city == "Paris" and output.attendee_names
    assert partials  # it streamed
    assert len(calls) == 1
    assert all(entry.stream for entry in server.requests)


def test_the_run_is_the_same_on_every_server_with_the_same_seed() -> None:
    outputs = []
    for _ in range(2):
        with MockServer(seed=11) as running:
            outputs.append(_run(running, "chat", CityFacts, "What about Lisbon?", []))
    assert outputs[0] == outputs[1]
