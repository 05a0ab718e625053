"""Tool calling as clients use it, found wrong by the bug hunt: the follow-up turn's messages held
to the API's rules. Through the real SDK against a real server; every answer the module's server
gives is validated against the spec when it stops (`conformance.checked_server`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from sdk import API_KEY

from mockai import MockServer

MODEL = "gpt-4o-mini"
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
ASK = {"role": "user", "content": "Weather in Paris?"}


@pytest.fixture(scope="module")
def sdk(lenient: MockServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=lenient.url, api_key=API_KEY, max_retries=0) as client:
        yield client


def _refused(sdk: openai.OpenAI, **request: Any) -> dict[str, Any]:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model=MODEL, **request)
    body = caught.value.body
    assert isinstance(body, dict)
    return body


def test_an_assistant_turn_with_an_empty_tool_calls_array_is_the_apis_400(
    sdk: openai.OpenAI,
) -> None:
    # A helper that sends back `tool_calls: []` for a turn without calls (openai-node before
    # #1341, Home Assistant before #118577) meets the API's 400; mockai had answered.
    messages: list[Any] = [
        ASK,
        {"role": "assistant", "content": "Let me see.", "tool_calls": []},
        {"role": "user", "content": "Well?"},
    ]
    error = _refused(sdk, messages=messages, tools=[WEATHER])
    assert error == {
        "message": "Invalid 'messages[1].tool_calls': empty array. Expected an array with "
        "minimum length 1, but got an empty array instead.",
        "type": "invalid_request_error",
        "param": "messages[1].tool_calls",
        "code": "empty_array",
    }
    # Left out, the turn is taken.
    del messages[1]["tool_calls"]
    assert sdk.chat.completions.create(model=MODEL, messages=messages).choices[0].message.content
