"""Chat content parts held to the spec's unions (as the API holds them, strict or not), and
`--strict-requests` inside fields: messages' and parts' keys, chat `tools[]` and their
`function`, Responses `input[]` message items, each refused at its full path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import conformance
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profile_support import chat

from mockai import MockServer
from mockai.api import common
from mockai.errors import ApiError

MODEL = "gpt-4o-mini"
HI = {"role": "user", "content": "hi"}
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
FILE = {
    "type": "file",
    "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,AA"},
}


@pytest.fixture(scope="module")
def lenient_server() -> Iterator[MockServer]:
    with conformance.checked_server() as server:
        yield server


@pytest.fixture(scope="module")
def lenient(lenient_server: MockServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": "Bearer sk-x"}
    with httpx.Client(base_url=lenient_server.url, headers=headers) as client:
        yield client


@pytest.fixture(scope="module")
def strict() -> Iterator[httpx.Client]:
    with (
        conformance.checked_server(strict_requests=True) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": "Bearer sk-x"}) as client,
    ):
        yield client


def _chat(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/chat/completions", json={"model": MODEL, **body})


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


# --- 1. content parts, strict or not -------------------------------------------------------------


def test_an_empty_content_array_is_the_apis_empty_array(lenient: httpx.Client) -> None:
    for role in ("user", "system", "developer"):
        error = _error(_chat(lenient, messages=[{"role": role, "content": []}]))
        assert error == {
            "message": "Invalid 'messages[0].content': empty array. Expected an array with "
            "minimum length 1, but got an empty array instead.",
            "type": "invalid_request_error",
            "param": "messages[0].content",
            "code": "empty_array",
        }


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "image_url"}, "messages[0].content[0].image_url"),
        ({"type": "image_url", "image_url": {}}, "messages[0].content[0].image_url.url"),
        ({"type": "input_audio", "input_audio": {"data": "AA"}}, "0].input_audio.format"),
        ({"type": "file"}, "messages[0].content[0].file"),
        ({"type": "text"}, "messages[0].content[0].text"),
    ],
)
def test_a_part_without_what_its_type_requires_is_missing(
    lenient: httpx.Client, part: dict[str, Any], param: str
) -> None:
    error = _error(_chat(lenient, messages=[{"role": "user", "content": [part]}]))
    assert error["code"] == "missing_required_parameter"
    assert error["param"].endswith(param)
    assert error["message"] == f"Missing required parameter: '{error['param']}'."


@pytest.mark.parametrize("kind", ["bogus", "input_text", "refusal"])
def test_a_user_part_outside_the_union_is_an_invalid_value(
    lenient: httpx.Client, kind: str
) -> None:
    messages = [{"role": "user", "content": [{"type": kind, "text": "hi", "refusal": "no"}]}]
    error = _error(_chat(lenient, messages=messages))
    assert error == {
        "message": f"Invalid value: '{kind}'. Supported values are: 'text', 'image_url', "
        "'input_audio', and 'file'.",
        "type": "invalid_request_error",
        "param": "messages[0].content[0].type",
        "code": "invalid_value",
    }


@pytest.mark.parametrize(
    ("role", "supported"),
    [
        ("system", "'text'"),
        ("developer", "'text'"),
        ("tool", "'text'"),
        ("assistant", "'text' and 'refusal'"),
    ],
)
def test_a_role_takes_only_its_own_part_types(
    lenient: httpx.Client, role: str, supported: str
) -> None:
    message = {"role": role, "content": [{"type": "text", "text": "a"}, IMAGE]}
    if role == "tool":
        messages = [HI, _CALLING, {**message, "tool_call_id": "call_1"}]
        where = 2
    else:
        messages, where = [message, HI], 0
    error = _error(_chat(lenient, messages=messages))
    assert error["param"] == f"messages[{where}].content[1].type"
    assert error["message"] == f"Invalid value: 'image_url'. Supported values are: {supported}."


def test_other_providers_keep_their_own_part_types(lenient_server: MockServer) -> None:
    """A provider's own part types (vLLM's `video_url`) are not OpenAI's to refuse."""
    part = {"type": "video_url", "video_url": {"url": "https://example.com/a.mp4"}}
    answer = chat(lenient_server, "vllm", messages=[{"role": "user", "content": [part]}])
    assert answer.status_code == 200, answer.text


# A full conversation: every documented message field, every part type in its role.
_CALLING = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ],
}
FULL = {
    "messages": [
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}], "name": "dev"},
        {"role": "system", "content": "You help.", "name": "sys"},
        {
            "role": "user",
            "name": "ann",
            "content": [
                {"type": "text", "text": "Look", "prompt_cache_breakpoint": {"mode": "explicit"}},
                IMAGE,
                AUDIO,
                FILE,
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "refusal", "refusal": "No."}],
            "refusal": "No.",
            "name": "bot",
            "audio": {"id": "audio_1"},
        },
        {"role": "user", "content": "Call it then."},
        {
            **_CALLING,
            "name": "bot",
            "refusal": None,
            "function_call": {"name": "f", "arguments": "{}"},
        },
        {"role": "tool", "content": [{"type": "text", "text": "42"}], "tool_call_id": "call_1"},
        {"role": "function", "content": "42", "name": "f"},
        {"role": "assistant", "content": [{"type": "text", "text": "It is 42."}]},
        {"role": "user", "content": "Thanks."},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "d",
                "parameters": {"type": "object", "properties": {}},
                "strict": False,
            },
        },
        {"type": "custom", "custom": {"name": "g", "description": "d", "format": {"type": "text"}}},
    ],
}


@pytest.mark.parametrize("mode", ["lenient", "strict"])
def test_a_conversation_with_every_documented_field_passes(
    request: pytest.FixtureRequest, mode: str
) -> None:
    client: httpx.Client = request.getfixturevalue(mode)
    answer = _chat(client, **FULL)
    assert answer.status_code == 200, answer.text


# --- 2. --strict-requests inside fields -----------------------------------------------------------

# (path, body): each refused under --strict-requests at `param`, accepted without it.
NESTED: list[tuple[str, str, dict[str, Any], str, str]] = [
    (
        "/chat/completions",
        "messages[0].id",
        {"messages": [{**HI, "id": "msg_1"}]},
        "unknown_parameter",
        "Unknown parameter: 'messages[0].id'.",
    ),
    (
        "/chat/completions",
        "messages[1].tool_call_id",
        {"messages": [HI, {"role": "assistant", "content": "x", "tool_call_id": "c"}]},
        "unknown_parameter",
        "Unknown parameter: 'messages[1].tool_call_id'.",
    ),
    (
        "/chat/completions",
        "messages[0].content[0].cache_control",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a", "cache_control": {"type": "x"}}],
                }
            ]
        },
        "unknown_parameter",
        "Unknown parameter: 'messages[0].content[0].cache_control'.",
    ),
    (
        "/chat/completions",
        "tools[0].function.foo",
        {"messages": [HI], "tools": [{"type": "function", "function": {"name": "f", "foo": 1}}]},
        "unknown_parameter",
        "Unknown parameter: 'tools[0].function.foo'.",
    ),
    (
        "/chat/completions",
        "tools[0].extra",
        {"messages": [HI], "tools": [{"type": "function", "function": {"name": "f"}, "extra": 1}]},
        "unknown_parameter",
        "Unknown parameter: 'tools[0].extra'.",
    ),
    (
        "/chat/completions",
        "tools[0].type",
        {"messages": [HI], "tools": [{"type": "bogus", "function": {"name": "f"}}]},
        "invalid_value",
        "Invalid value: 'bogus'. Supported values are: 'function' and 'custom'.",
    ),
    (
        "/responses",
        "input[0].foo",
        {"input": [{"role": "user", "content": "hi", "foo": 1}]},
        "unknown_parameter",
        "Unknown parameter: 'input[0].foo'.",
    ),
    (
        "/responses",
        "input[0].content[0].bar",
        {"input": [{"role": "user", "content": [{"type": "input_text", "text": "a", "bar": 2}]}]},
        "unknown_parameter",
        "Unknown parameter: 'input[0].content[0].bar'.",
    ),
]


@pytest.mark.parametrize(
    ("path", "param", "body", "code", "message"), NESTED, ids=[n[1] for n in NESTED]
)
def test_strict_requests_refuse_inside_fields_at_the_full_path(
    strict: httpx.Client,
    lenient: httpx.Client,
    path: str,
    param: str,
    body: dict[str, Any],
    code: str,
    message: str,
) -> None:
    error = _error(strict.post(path, json={"model": MODEL, **body}))
    assert (error["param"], error["code"], error["message"]) == (param, code, message)
    # Without the flag, the same request is answered: unknown keys and types stay lenient.
    accepted = lenient.post(path, json={"model": MODEL, **body})
    assert accepted.status_code == 200, accepted.text


def test_strict_responses_take_every_message_items_documented_key(strict: httpx.Client) -> None:
    items = [
        {"type": "message", "role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}], "phase": None},
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "Hello.", "annotations": [], "logprobs": []}
            ],
        },
        {"type": "message", "role": "user", "status": "completed", "content": "Again."},
    ]
    answer = strict.post("/responses", json={"model": MODEL, "input": items})
    assert answer.status_code == 200, answer.text


# --- the tables against the spec, and a property of the check --------------------------------------


def _schemas() -> dict[str, Any]:
    spec = json.loads(conformance.SPEC_PATH.read_text(encoding="utf-8"))
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return schemas


def _union(schemas: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The object schemas a `$ref` / `oneOf` names."""
    if "$ref" in schema:
        return _union(schemas, schemas[schema["$ref"].rsplit("/", 1)[-1]])
    if "oneOf" in schema:
        return [alt for sub in schema["oneOf"] for alt in _union(schemas, sub)]
    return [schema]


def test_the_tables_are_the_specs() -> None:
    schemas = _schemas()
    messages = _union(schemas, schemas["ChatCompletionRequestMessage"])
    for message in messages:
        role = message["properties"]["role"]["enum"][0]
        # (the one key the spec lags on: the answer's own `annotations`, sent back by the SDK)
        lag = {"assistant": {"annotations"}, "tool": {"name"}}.get(role, set())
        assert common._MESSAGE_KEYS[role] == set(message["properties"]) | lag
        content = message["properties"]["content"]
        arrays = [
            alt
            for option in content.get("anyOf", [content])
            for alt in option.get("oneOf", [option])
            if alt.get("type") == "array"
        ]
        parts = [p for a in arrays for p in _union(schemas, a["items"])]
        if not parts:
            assert role not in common._ROLE_PARTS
            continue
        assert common._ROLE_PARTS[role] == tuple(p["properties"]["type"]["enum"][0] for p in parts)
        for part in parts:
            kind = part["properties"]["type"]["enum"][0]
            assert common._PART_KEYS[kind] == set(part["properties"])
    assert common._CHAT_TOOL_KEYS["function"] == set(schemas["FunctionObject"]["properties"])
    custom = schemas["CustomToolChatCompletions"]["properties"]["custom"]["properties"]
    assert common._CHAT_TOOL_KEYS["custom"] == set(custom)
    item_keys = set()
    for name in ("EasyInputMessage", "InputMessage", "OutputMessage"):
        item_keys |= set(schemas[name]["properties"])
    assert item_keys == common._INPUT_MESSAGE_KEYS
    for part in _union(schemas, schemas["InputContent"]) + _union(
        schemas, schemas["OutputMessageContent"]
    ):
        kind = part["properties"]["type"]["enum"][0]
        assert common._INPUT_PART_KEYS[kind] == set(part["properties"])


_WELL_FORMED = {
    "text": {"type": "text", "text": "a"},
    "refusal": {"type": "refusal", "refusal": "no"},
    "image_url": IMAGE,
    "input_audio": AUDIO,
    "file": FILE,
}


@settings(max_examples=200, deadline=None)
@given(
    role=st.sampled_from(["system", "developer", "user", "assistant", "tool"]),
    kinds=st.lists(
        st.sampled_from([*_WELL_FORMED, "input_text", "bogus", "video_url"]), min_size=1, max_size=5
    ),
    strict=st.booleans(),
)
def test_a_content_array_passes_exactly_when_every_part_is_its_roles(
    role: str, kinds: list[str], strict: bool
) -> None:
    parts = [_WELL_FORMED.get(kind, {"type": kind, "text": "a"}) for kind in kinds]
    message = {"role": role, "content": parts, **({"tool_call_id": "c"} if role == "tool" else {})}
    body = {"model": MODEL, "messages": [message]}
    allowed = common._ROLE_PARTS[role]
    wrong = next((index for index, kind in enumerate(kinds) if kind not in allowed), None)
    try:
        common.check_fields("chat", body, strict=strict)
    except ApiError as error:
        assert wrong is not None
        assert (error.param, error.code) == (f"messages[0].content[{wrong}].type", "invalid_value")
    else:
        assert wrong is None


def test_the_sdks_tool_loop_passes_strict_requests(strict: httpx.Client) -> None:
    """`messages.append(completion.choices[0].message)`: the answer's own message, sent back as
    the SDK dumps it (`annotations: []` included, which the spec's request schema lacks)."""
    tool = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
    openai_client = openai.OpenAI(
        base_url=str(strict.base_url), api_key="sk-x", max_retries=0, http_client=strict
    )
    messages: list[Any] = [{"role": "user", "content": "Look it up."}]
    first = openai_client.chat.completions.create(
        model=MODEL, messages=messages, tools=[tool], tool_choice="required"
    )
    answer = first.choices[0].message
    assert answer.tool_calls and answer.annotations == []
    messages.append(answer)
    messages.append(
        {"role": "tool", "tool_call_id": answer.tool_calls[0].id, "content": "found it"}
    )
    second = openai_client.chat.completions.create(model=MODEL, messages=messages, tools=[tool])
    assert second.choices[0].finish_reason in ("stop", "tool_calls")


def test_a_tool_message_naming_its_function_passes_strict_requests(strict: httpx.Client) -> None:
    """The cookbook's (and LangChain JS's) tool result: `{"role": "tool", "tool_call_id": ...,
    "name": ..., "content": ...}`."""
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "name": "f", "content": "done"},
    ]
    assert _chat(strict, messages=messages).status_code == 200
