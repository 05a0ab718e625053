"""Structured output and tools, the API's rules a bug hunt found mockai did not hold:

* chat `parallel_tool_calls` in a request without tools is the API's 400, as `tool_choice` is
  (the Responses API echoes it).

Through a real server with the openai SDK, as users meet them.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from mockai import MockServer

MODEL = "gpt-4o-mini"
ASK = [{"role": "user", "content": "give me the data"}]
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


def _message(error: openai.APIStatusError) -> Any:
    body = error.body
    assert isinstance(body, dict)
    return body["message"]


# --- parallel_tool_calls needs tools --------------------------------------------------------------


@pytest.mark.parametrize("parallel", [True, False])
def test_parallel_tool_calls_without_tools_is_refused(
    client: openai.OpenAI, parallel: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=ASK, parallel_tool_calls=parallel)
    assert refused.value.param == "parallel_tool_calls"
    assert refused.value.code is None
    assert _message(refused.value) == (
        "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when "
        "'tools' are specified."
    )


def test_parallel_tool_calls_with_tools_or_on_responses_is_taken(
    client: openai.OpenAI, server: MockServer
) -> None:
    chat = client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        tools=[WEATHER],  # type: ignore[list-item]
        parallel_tool_calls=False,
    )
    assert chat.choices[0].finish_reason in ("stop", "tool_calls")
    response = client.responses.create(model=MODEL, input="hi", parallel_tool_calls=False)
    assert response.parallel_tool_calls is False
