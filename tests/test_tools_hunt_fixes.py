"""Tool calling as clients use it, found wrong by the bug hunt: the follow-up turn's messages held
to the API's rules. Through the real SDK against a real server; every answer the module's server
gives is validated against the spec when it stops (`conformance.checked_server`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from sdk import API_KEY

from mockai import MockServer, ScenarioError

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


def _called(call_id: str = "call_1") -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }


@pytest.mark.parametrize(
    ("messages", "index"),
    [
        # A tool that returned nothing, its None sent as the result (llama_index#17555).
        ([ASK, _called(), {"role": "tool", "tool_call_id": "call_1", "content": None}], 2),
        # An assistant turn with neither text nor calls (vercel/ai#13744).
        ([ASK, {"role": "assistant", "content": None}, {"role": "user", "content": "?"}], 1),
        ([{"role": "user", "content": None}], 0),
    ],
)
def test_null_content_is_the_apis_400_where_the_message_needs_one(
    sdk: openai.OpenAI, messages: list[Any], index: int
) -> None:
    error = _refused(sdk, messages=messages, tools=[WEATHER])
    assert error == {
        "message": "Invalid value for 'content': expected a string, got null.",
        "type": "invalid_request_error",
        "param": f"messages.[{index}].content",
        "code": None,
    }


def test_a_tool_result_without_content_is_a_missing_parameter(sdk: openai.OpenAI) -> None:
    messages: list[Any] = [ASK, _called(), {"role": "tool", "tool_call_id": "call_1"}]
    error = _refused(sdk, messages=messages, tools=[WEATHER])
    assert error["param"] == "messages[2].content"
    assert error["code"] == "missing_required_parameter"


def test_null_content_is_taken_where_the_spec_allows_it(sdk: openai.OpenAI) -> None:
    # An assistant turn that calls, or refused, or a deprecated function result: null is theirs.
    refused = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    function_result = {"role": "function", "name": "get_weather", "content": None}
    messages: list[Any] = [
        ASK,
        refused,
        {"role": "user", "content": "Weather in Paris?"},
        _called(),
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        function_result,
    ]
    answer = sdk.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert answer.choices[0].message.content


def test_other_providers_take_null_content(lenient: MockServer) -> None:
    # (vLLM, Ollama and the rest take it: their profiles answer.)
    with openai.OpenAI(
        base_url=lenient.url.replace("/v1", "/ollama/v1"), api_key=API_KEY, max_retries=0
    ) as ollama:
        messages: list[Any] = [ASK, _called(), {"role": "tool", "tool_call_id": "call_1"}]
        messages.append({"role": "user", "content": None})
        messages[2]["content"] = None
        assert ollama.chat.completions.create(model="llama3.2", messages=messages).choices


def test_an_empty_tools_array_is_the_apis_400_on_chat(sdk: openai.OpenAI) -> None:
    # As apps that send `tools: []` for a turn without tools met it (continue#3370).
    error = _refused(sdk, messages=[ASK], tools=[])
    assert error == {
        "message": "Invalid 'tools': empty array. Expected an array with minimum length 1, but "
        "got an empty array instead.",
        "type": "invalid_request_error",
        "param": "tools",
        "code": "empty_array",
    }
    # The Responses API takes it: a Response lists `tools: []` itself.
    assert sdk.responses.create(model=MODEL, input="Hi", tools=[]).tools == []


@pytest.mark.parametrize("function_call", ["auto", {"name": "get_weather"}])
def test_function_call_without_functions_is_refused_in_its_own_name(
    sdk: openai.OpenAI, function_call: Any
) -> None:
    # The error named `tool_choice`, a parameter the deprecated API's client never sent.
    error = _refused(sdk, messages=[ASK], function_call=function_call)
    assert error == {
        "message": "Invalid value for 'function_call': 'function_call' is only allowed when "
        "'functions' are specified.",
        "type": "invalid_request_error",
        "param": "function_call",
        "code": None,
    }
    # With its functions it calls, and `none` alone is taken (as `tool_choice: none` is).
    functions: list[Any] = [WEATHER["function"]]
    answer = sdk.chat.completions.create(
        model=MODEL, messages=[ASK], functions=functions, function_call=function_call
    )
    assert answer.choices[0].finish_reason in ("function_call", "stop")
    assert sdk.chat.completions.create(model=MODEL, messages=[ASK], function_call="none").choices


_TWO_CALLS = """\
mockai: 1
rules:
  - name: two-cities
    match: {user: compare, has_tool_result: false}
    reply:
      tool_calls:
        - {name: get_weather, arguments: {city: Oslo}, id: call_1}
        - name: get_weather
          arguments: {city: Rome}
          id: call_1
"""


def test_two_scripted_calls_with_one_id_are_a_load_error(tmp_path: Path) -> None:
    # The client answers each call under its id; a second result for one id is the API's 400,
    # and mockai's: the fixture's turn could never be followed up (it was loaded and answered).
    path = tmp_path / "calls.yaml"
    path.write_text(_TWO_CALLS)
    with pytest.raises(ScenarioError) as caught:
        MockServer(scenarios=(str(path),))
    assert (
        f"{path}:10: rule 'two-cities' reply.tool_calls[1].id 'call_1' is the id of "
        "tool_calls[0] too: each call needs its own (or none: mockai makes one)"
    ) in str(caught.value)
    # Ids of their own load, and the turn is followed up.
    path.write_text(_TWO_CALLS.replace("id: call_1\n", "id: call_2\n"))
    with (
        MockServer(scenarios=(str(path),)) as server,
        openai.OpenAI(base_url=server.url, api_key=API_KEY, max_retries=0) as client,
    ):
        asked: list[Any] = [{"role": "user", "content": "compare Oslo and Rome"}]
        first = client.chat.completions.create(model=MODEL, messages=asked, tools=[WEATHER])
        calls = first.choices[0].message.tool_calls or []
        assert [call.id for call in calls] == ["call_1", "call_2"]
        results = [{"role": "tool", "tool_call_id": c.id, "content": "9C"} for c in calls]
        asked += [first.choices[0].message.model_dump(exclude_none=True), *results]
        # (past the pairing check to the rules, of which none answers a tool result)
        with pytest.raises(openai.BadRequestError, match="no rule or recording matches"):
            client.chat.completions.create(model=MODEL, messages=asked, tools=[WEATHER])


def test_a_tool_result_without_its_call_id_is_refused_in_the_apis_words(
    sdk: openai.OpenAI,
) -> None:
    # As LangChain users quote it (langchain#22600); mockai said "Missing required parameter".
    messages: list[Any] = [ASK, _called(), {"role": "tool", "content": "18C"}]
    error = _refused(sdk, messages=messages, tools=[WEATHER])
    assert error == {
        "message": "Missing parameter 'tool_call_id': messages with role 'tool' must have a "
        "'tool_call_id'.",
        "type": "invalid_request_error",
        "param": "messages.[2].tool_call_id",
        "code": None,
    }
    # One that is not a string is a type error, as any field's.
    messages[2]["tool_call_id"] = 1
    error = _refused(sdk, messages=messages, tools=[WEATHER])
    assert error["param"] == "messages[2].tool_call_id"
    assert error["code"] == "invalid_type"


def test_a_hosted_tool_sent_to_chat_is_the_apis_400(
    sdk: openai.OpenAI, lenient: MockServer
) -> None:
    # Responses API tools on chat (litellm#9914): the API asks for a function definition.
    hosted: Any = {"type": "web_search_preview"}
    error = _refused(sdk, messages=[ASK], tools=[WEATHER, hosted])
    assert error == {
        "message": "Invalid type for 'tools[1].function': expected a function definition, but "
        "got null instead.",
        "type": "invalid_request_error",
        "param": "tools[1].function",
        "code": "invalid_type",
    }
    # The Responses API takes it, and another provider's chat its own hosted tools.
    assert sdk.responses.create(model=MODEL, input="Hi", tools=[hosted]).output
    with openai.OpenAI(
        base_url=lenient.url.replace("/v1", "/openrouter/api/v1"), api_key=API_KEY, max_retries=0
    ) as openrouter:
        answer = openrouter.chat.completions.create(
            model="openai/gpt-4o", messages=[ASK], tools=[{"type": "openrouter:web_search"}]
        )
        assert answer.choices
