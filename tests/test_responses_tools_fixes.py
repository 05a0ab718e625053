"""The Responses tools surface, found wrong by the bug hunt: resent answers listed as the spec lists
them, hosted-tool choices, `arguments: auto` on custom tools, values outside the spec's enums
echoed, and `stream_options` flags read as booleans. Through the real SDK (strict response
validation where it checks the fix) and httpx against real servers; every answer the module's
servers give is validated against the spec when they stop (`conformance.checked_server`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import conformance
import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk import API_KEY
from strategies import texts

from mockai import MockServer
from mockai.api import common
from mockai.api.responses import TOOL_TYPES
from mockai.stores import items

MODEL = "gpt-4o-mini"
# Each example is one or two HTTP requests to a module's server: bounded, no deadline.
HTTP_PROPERTY = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
FILE_SEARCH = {"type": "file_search", "vector_store_ids": ["vs_1"]}
WEB_SEARCH_PREVIEW = {"type": "web_search_preview"}
HOSTED_WARNING = "mockai does not call hosted tools"
ORDER_ID = r"ORD-\d{6}"


@pytest.fixture(scope="module")
def checking(lenient: MockServer) -> Iterator[openai.OpenAI]:
    """The SDK validating every answer against its own types, as `_strict_response_validation`
    users have it."""
    with openai.OpenAI(
        base_url=lenient.url, api_key=API_KEY, max_retries=0, _strict_response_validation=True
    ) as client:
        yield client


def _post(server: MockServer, body: dict[str, Any], path: str = "/responses") -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        return http.post(path, json=body)


def _error(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 400, answer.text
    error: dict[str, Any] = answer.json()["error"]
    return error


# --- 1. resent answers are listed in the listed forms ---------------------------------------------

RESENT = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": [{"type": "output_text", "text": "Earlier answer"}]},
    {"role": "user", "content": "again"},
]


def test_a_resent_answer_is_listed_with_annotations_and_logprobs(
    checking: openai.OpenAI,
) -> None:
    response = checking.responses.create(model=MODEL, input=RESENT)
    listed = checking.responses.input_items.list(response.id, order="asc").data[1]
    conversation = checking.conversations.create(items=RESENT)
    held = checking.conversations.items.list(conversation.id, order="asc").data[1]
    for item in (listed, held):
        assert item.type == "message"
        [part] = item.content
        assert part.type == "output_text"
        assert (part.text, part.annotations, part.logprobs) == ("Earlier answer", [], [])


def test_an_mcp_approval_response_is_listed_in_the_spec_s_form(lenient: MockServer) -> None:
    # As the SDKs type it: no `request_id`, which the spec requires of the listed form.
    approval = {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True}
    response = _post(lenient, {"model": MODEL, "input": [approval, RESENT[2]]}).json()
    with httpx.Client(base_url=lenient.url, timeout=10) as http:
        listed = http.get(f"/responses/{response['id']}/input_items", params={"order": "asc"})
    shown = listed.json()["data"][0]
    conformance.validate("ItemResource", shown)
    conformance.validate("ConversationItem", shown)
    assert shown["approval_request_id"] == "mcpr_1" and shown["approve"] is True


_ANNOTATION = {"type": "file_citation", "file_id": "file_1", "filename": "a.txt", "index": 0}
_LOGPROB = {"token": "A", "logprob": -0.1, "bytes": [65], "top_logprobs": []}


@st.composite
def _resent_answers(draw: st.DrawFn) -> dict[str, Any]:
    """An earlier answer as clients resend it: typed text and refusal parts, each list of a
    text part sent, null or left out, with or without the item's own type, id and status."""
    parts = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if draw(st.booleans()):
            part: dict[str, Any] = {"type": "output_text", "text": draw(texts(max_size=20))}
            for key, sent in (("annotations", [_ANNOTATION]), ("logprobs", [_LOGPROB])):
                choice = draw(st.sampled_from(["absent", "null", "empty", "filled"]))
                if choice != "absent":
                    part[key] = {"null": None, "empty": [], "filled": sent}[choice]
        else:
            part = {"type": "refusal", "refusal": draw(texts(max_size=20))}
        parts.append(part)
    item: dict[str, Any] = {"role": "assistant", "content": parts}
    if draw(st.booleans()):
        item["type"] = "message"
    if draw(st.booleans()):
        item["id"] = "msg_" + draw(st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True))
    if draw(st.booleans()):
        item["status"] = draw(st.sampled_from(["in_progress", "completed", "incomplete", None]))
    return item


@st.composite
def _approval_responses(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "mcp_approval_response",
        "approval_request_id": draw(st.from_regex(r"mcpr_[a-z0-9]{1,8}", fullmatch=True)),
        "approve": draw(st.booleans()),
    }
    if draw(st.booleans()):
        item["reason"] = draw(st.one_of(st.none(), texts(max_size=20)))
    if draw(st.booleans()):
        item["id"] = draw(st.one_of(st.none(), st.just("mcpa_1")))
    return item


@settings(max_examples=50, deadline=None)
@given(sent=st.lists(st.one_of(_resent_answers(), _approval_responses()), min_size=1, max_size=4))
def test_resent_answers_and_approvals_are_listed_in_the_spec_s_forms(
    sent: list[dict[str, Any]],
) -> None:
    listed = items.listed(sent, b"k" * 16)
    assert len(listed) == len(sent)
    for shown, item in zip(listed, sent, strict=True):
        conformance.validate("ItemResource", shown)
        conformance.validate("ConversationItem", shown)
        if shown["type"] != "message":
            continue
        # What was sent is kept: the texts, and the lists sent with a value.
        for part, original in zip(shown["content"], item["content"], strict=True):
            assert {k: v for k, v in original.items() if v is not None}.items() <= part.items()


# --- 2. a tool_choice that forces a hosted tool ---------------------------------------------------


@pytest.mark.parametrize(
    ("tools", "choice"),
    [
        ([WEB_SEARCH_PREVIEW], {"type": "file_search"}),
        ([WEATHER], {"type": "file_search"}),
        ([WEATHER], {"type": "web_search_preview"}),
        (
            [WEATHER, FILE_SEARCH],
            {"type": "allowed_tools", "mode": "required", "tools": [WEB_SEARCH_PREVIEW]},
        ),
    ],
    ids=["other-hosted", "function-only", "function-only-web", "allowed-not-offered"],
)
def test_a_hosted_tool_choice_not_in_tools_is_the_api_s_400(
    lenient: MockServer, tools: list[dict[str, Any]], choice: dict[str, Any]
) -> None:
    body = {"model": MODEL, "input": "search", "tools": tools, "tool_choice": choice}
    error = _error(_post(lenient, body))
    kind = choice["tools"][0]["type"] if choice["type"] == "allowed_tools" else choice["type"]
    assert error == {
        "message": f"Tool choice '{kind}' not found in 'tools' parameter.",
        "type": "invalid_request_error",
        "param": "tool_choice",
        "code": None,
    }


@pytest.mark.parametrize(
    ("tools", "choice"),
    [
        ([FILE_SEARCH], "required"),
        ([FILE_SEARCH, WEB_SEARCH_PREVIEW], {"type": "file_search"}),
        ([WEATHER, {"type": "web_search_preview_2025_03_11"}], {"type": "web_search_preview"}),
        (
            [WEATHER, WEB_SEARCH_PREVIEW],
            {"type": "allowed_tools", "mode": "required", "tools": [WEB_SEARCH_PREVIEW]},
        ),
    ],
    ids=["required-hosted-only", "named-hosted", "dated-version", "allowed-hosted-only"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_choice_only_a_hosted_call_meets_is_answered_in_text_with_a_warning(
    lenient: MockServer,
    checking: openai.OpenAI,
    tools: list[dict[str, Any]],
    choice: Any,
    stream: bool,
) -> None:
    raw = checking.responses.with_raw_response.create(
        model=MODEL,
        input="search my files for the refund policy",
        tools=tools,
        tool_choice=choice,
        stream=stream,
    )
    assert HOSTED_WARNING in raw.headers["x-mockai-warning"]
    parsed = raw.parse()
    # The journal says it too, as it says every warning the header carries.
    (warned,) = lenient.requests[-1].warnings
    assert HOSTED_WARNING in warned and warned == raw.headers["x-mockai-warning"]
    if stream:
        response = next(e for e in parsed if e.type == "response.completed").response
    else:
        response = parsed
    assert [item.type for item in response.output] == ["message"]
    assert response.output_text
    # A function the choice allows is called as before, with no warning.
    offered = [WEATHER, *(tool for tool in tools if tool is not WEATHER)]
    called = checking.responses.with_raw_response.create(
        model=MODEL, input="weather in Paris", tools=offered, tool_choice="required"
    )
    assert "x-mockai-warning" not in called.headers
    assert called.parse().output[0].type == "function_call"


# --- 3. `arguments: auto` on a custom tool --------------------------------------------------------


@pytest.fixture(scope="module")
def ruled() -> Iterator[MockServer]:
    rule = {
        "match": {"user": "order"},
        "reply": {"tool_calls": [{"name": "order_id", "arguments": "auto"}]},
    }
    with conformance.checked_server(strict=True) as server:
        server.add_rule(rule)
        yield server


@HTTP_PROPERTY
@given(
    prefix=st.from_regex(r"[A-Z]{1,4}", fullmatch=True),
    digits=st.integers(min_value=1, max_value=9),
)
def test_arguments_auto_on_a_custom_tool_follows_its_grammar(
    ruled: MockServer, prefix: str, digits: int
) -> None:
    grammar = rf"{prefix}-\d{{{digits}}}"
    fmt = {"type": "grammar", "syntax": "regex", "definition": grammar}
    tool = {"type": "custom", "name": "order_id", "format": fmt}
    answer = _post(ruled, {"model": MODEL, "input": "my order", "tools": [tool]})
    [call] = answer.json()["output"]
    assert call["type"] == "custom_tool_call"
    assert re.fullmatch(grammar, call["input"]), call["input"]
    chat_tool = {
        "type": "custom",
        "custom": {
            "name": "order_id",
            "format": {"type": "grammar", "grammar": {"syntax": "regex", "definition": grammar}},
        },
    }
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "order"}],
        "tools": [chat_tool],
    }
    [chat_call] = _post(ruled, body, "/chat/completions").json()["choices"][0]["message"][
        "tool_calls"
    ]
    assert re.fullmatch(grammar, chat_call["custom"]["input"]), chat_call


def test_arguments_auto_on_a_lark_custom_tool_is_text_with_a_warning(ruled: MockServer) -> None:
    fmt = {"type": "grammar", "syntax": "lark", "definition": 'start: "ORD"'}
    tool = {"type": "custom", "name": "order_id", "format": fmt}
    answer = _post(ruled, {"model": MODEL, "input": "my order", "tools": [tool]})
    [call] = answer.json()["output"]
    assert call["input"] != "{}" and call["input"].strip()
    assert "does not generate from its lark grammar" in answer.headers["x-mockai-warning"]


# --- 4. values outside the spec's enums are not echoed --------------------------------------------


@pytest.mark.parametrize(
    ("extra", "param", "allowed"),
    [
        ({"text": {"verbosity": "extreme"}}, "text.verbosity", common.VERBOSITIES),
        ({"tools": [WEATHER], "tool_choice": {"type": "banana"}}, "tool_choice.type", None),
        (
            {"tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}},
            "tool_choice.type",
            None,
        ),
        (
            {"tools": [{"type": "local_shell"}], "tool_choice": {"type": "local_shell"}},
            "tool_choice.type",
            None,
        ),
    ],
    ids=["verbosity", "choice-unknown", "choice-web-search", "choice-local-shell"],
)
def test_strict_requests_refuse_values_outside_the_enums(
    strict: MockServer, extra: dict[str, Any], param: str, allowed: tuple[str, ...] | None
) -> None:
    error = _error(_post(strict, {"model": MODEL, "input": "hi", **extra}))
    allowed = allowed or common.TOOL_CHOICE_TYPES
    value = extra["text"]["verbosity"] if "text" in extra else extra["tool_choice"]["type"]
    listed = ", ".join(f"'{v}'" for v in allowed[:-1]) + f", and '{allowed[-1]}'"
    assert error == {
        "message": f"Invalid value: '{value}'. Supported values are: {listed}.",
        "type": "invalid_request_error",
        "param": param,
        "code": "invalid_value",
    }


@pytest.mark.parametrize("server", ["lenient", "strict"])
def test_a_tool_type_outside_the_spec_s_union_is_the_api_s_400(
    request: pytest.FixtureRequest, server: str
) -> None:
    running = request.getfixturevalue(server)
    body = {"model": MODEL, "input": "hi", "tools": [WEATHER, {"type": "banana"}]}
    error = _error(_post(running, body))
    assert (error["param"], error["code"]) == ("tools[1].type", "invalid_value")
    assert error["message"].startswith("Invalid value: 'banana'. Supported values are: 'function'")
    numbered = _error(_post(running, {**body, "tools": [{"type": 7}]}))
    assert (numbered["param"], numbered["code"]) == ("tools[0].type", "invalid_type")


def test_the_enums_are_the_spec_s() -> None:
    schemas = conformance.spec()["components"]["schemas"]
    verbosity = next(alt for alt in schemas["Verbosity"]["anyOf"] if "enum" in alt)
    assert tuple(verbosity["enum"]) == common.VERBOSITIES
    choices = [
        schemas[ref["$ref"].rsplit("/", 1)[1]]
        for ref in schemas["ToolChoiceParam"]["oneOf"]
        if ref["$ref"].rsplit("/", 1)[1] != "ToolChoiceOptions"
    ]
    assert tuple(t for c in choices for t in c["properties"]["type"]["enum"]) == (
        common.TOOL_CHOICE_TYPES
    )
    tools = [schemas[ref["$ref"].rsplit("/", 1)[1]] for ref in schemas["Tool"]["oneOf"]]
    assert tuple(t for tool in tools for t in tool["properties"]["type"]["enum"]) == TOOL_TYPES


@HTTP_PROPERTY
@given(
    verbosity=st.one_of(st.sampled_from(common.VERBOSITIES), st.none(), texts(max_size=12)),
    hosted=st.sampled_from(["web_search", "local_shell", "file_search", "image_generation"]),
)
def test_echoed_settings_keep_the_response_valid(
    lenient: MockServer, verbosity: str | None, hosted: str
) -> None:
    tool = FILE_SEARCH if hosted == "file_search" else {"type": hosted}
    body = {
        "model": "gpt-5.1",  # (one that takes every verbosity: gpt-4o-mini takes `medium` only)
        "input": "hi",
        "text": {"verbosity": verbosity},
        "tools": [tool],
        "tool_choice": {"type": hosted},
    }
    answered = _post(lenient, body)
    response = answered.json()
    conformance.validate("Response", response)
    known = verbosity in common.VERBOSITIES or verbosity is None
    assert response["text"]["verbosity"] == (verbosity if known else "medium")
    in_spec = hosted in common.TOOL_CHOICE_TYPES
    assert response["tool_choice"] == ({"type": hosted} if in_spec else "auto")
    assert HOSTED_WARNING in answered.headers["x-mockai-warning"]


def test_a_hosted_choice_outside_the_spec_s_streams_valid_events(lenient: MockServer) -> None:
    body = {
        "model": MODEL,
        "input": "hi",
        "tools": [{"type": "web_search"}],
        "tool_choice": {"type": "web_search"},
        "stream": True,
    }
    with httpx.Client(base_url=lenient.url, timeout=10) as http:
        text = http.post("/responses", json=body).text
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    for event in events:
        conformance.validate("ResponseStreamEvent", event)
    assert {events[0]["response"]["tool_choice"], events[-1]["response"]["tool_choice"]} == {"auto"}


# --- 5. stream_options flags are booleans -------------------------------------------------------


@pytest.mark.parametrize("key", ["include_obfuscation", "include_usage"])
@pytest.mark.parametrize("value", ["false", "yes", 0, 1])
def test_a_stream_options_flag_that_is_not_a_boolean_is_refused(
    lenient: MockServer, key: str, value: Any
) -> None:
    body = {"model": MODEL, "input": "hi", "stream": True, "stream_options": {key: value}}
    error = _error(_post(lenient, body))
    assert (error["param"], error["code"]) == (f"stream_options.{key}", "invalid_type")
    chat = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {key: value},
    }
    assert _error(_post(lenient, chat, "/chat/completions")) == error


# --- an MCP tool's credentials are not echoed -----------------------------------------------------

MCP_TOKEN = "ya29.a0AfB_byOpaqueOauthToken0123"
MCP_HEADER = "opaque.header.value.98765"
MCP_PATH = "k/7f3e9c1a2b/sse"  # (a server whose URL holds a credential)


def test_an_mcp_tools_headers_token_and_url_path_are_not_in_the_response(
    lenient: MockServer, checking: openai.OpenAI
) -> None:
    """The API's remote MCP guide: the `headers` (and the `authorization` token) are not visible
    in the Response object, and `server_url` loses its path. Echoed, every answer, its stream
    and the stored response (`GET /responses/{id}`) spelled out the client's tokens."""
    tool: Any = {
        "type": "mcp",
        "server_label": "repos",
        "server_url": f"https://mcp.example.com/{MCP_PATH}",
        "authorization": MCP_TOKEN,
        "headers": {"Authorization": f"Bearer {MCP_HEADER}"},
        "require_approval": "never",
    }
    answer = checking.responses.create(model=MODEL, input="hi", tools=[tool])  # (validated)
    streamed = _post(lenient, {"model": MODEL, "input": "hi", "tools": [tool], "stream": True})
    with httpx.Client(base_url=lenient.url, timeout=10) as http:
        stored = http.get(f"/responses/{answer.id}")
    assert streamed.status_code == stored.status_code == 200
    for shown in (answer.to_json(), streamed.text, stored.text):
        assert MCP_TOKEN not in shown and MCP_HEADER not in shown and MCP_PATH not in shown
    assert stored.json()["tools"] == [
        {
            "type": "mcp",
            "server_label": "repos",
            "server_url": "https://mcp.example.com",
            "require_approval": "never",
        }
    ]
