"""Responses API semantics found wrong by the bug hunt, through the real SDK and httpx against a
real server: a background run's unseen output kept out of the next turn, JSON mode's "json" word,
a stream cut by an in-band error kept as failed, a cut tool call marked incomplete, and the
spec's enums inside `include` and `reasoning`. (`server` and `client` are the conftest's.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import conformance
import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk import sdk
from strategies import texts

from mockai import MockServer
from mockai.api import common

MODEL = "gpt-4o-mini"
ECHO_CONTEXT = {
    "match": {"endpoint": "responses", "user": "show"},
    "reply": "{{ request.messages | tojson }}",
}
SECRET = "SECRET-OUTPUT-OF-THE-RUN"
# Each example is one or two HTTP requests to a module's server: bounded, no deadline.
PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _post(server: MockServer, body: dict[str, Any], **headers: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        return http.post("/responses", json=body, headers=headers)


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


# --- 1. a background run's output joins the next turn only once someone got it -----------------


def _context_seen(client: openai.OpenAI, previous: str) -> tuple[list[dict[str, Any]], int]:
    turn = client.responses.create(
        model=MODEL, input="show me the context", previous_response_id=previous
    )
    assert turn.usage is not None
    return json.loads(turn.output_text), turn.usage.input_tokens


def _input_only_tokens(client: openai.OpenAI) -> int:
    alone = client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "Tell me a story"},
            {"role": "user", "content": "show me the context"},
        ],
    )
    assert alone.usage is not None
    return alone.usage.input_tokens


@pytest.mark.parametrize("cancelled", [True, False], ids=["cancelled", "still-queued"])
def test_an_unfinished_background_run_adds_only_its_input_to_the_next_turn(
    server: MockServer, client: openai.OpenAI, cancelled: bool
) -> None:
    server.add_rules([ECHO_CONTEXT, {"match": {"endpoint": "responses"}, "reply": SECRET}])
    run = client.responses.create(model=MODEL, input="Tell me a story", background=True)
    if cancelled:
        assert client.responses.cancel(run.id).status == "cancelled"
    seen, input_tokens = _context_seen(client, run.id)
    assert [m["content"] for m in seen] == ["Tell me a story", "show me the context"]
    assert input_tokens == _input_only_tokens(client)  # nobody is billed for the unseen output


def test_a_background_run_found_done_adds_its_output_to_the_next_turn(
    server: MockServer, client: openai.OpenAI
) -> None:
    server.add_rules([ECHO_CONTEXT, {"match": {"endpoint": "responses"}, "reply": SECRET}])
    run = client.responses.create(model=MODEL, input="Tell me a story", background=True)
    early, _ = _context_seen(client, run.id)  # not done yet: not part of the history
    while client.responses.retrieve(run.id).status != "completed":
        pass  # (queued, in_progress, completed: one step per retrieval, three at most)
    seen, _ = _context_seen(client, run.id)
    assert SECRET not in json.dumps(early)
    assert [m["content"] for m in seen] == ["Tell me a story", SECRET, "show me the context"]


# --- 2. JSON mode needs the word "json" in the input --------------------------------------------

JSON_WORD_MESSAGE = (
    "Response input messages must contain the word 'json' in some form to use "
    "'text.format' of type 'json_object'."
)
JSON_MODE = {"format": {"type": "json_object"}}


@pytest.mark.parametrize(
    "extra",
    [
        {"input": "List three colours"},
        {"input": "List three colours", "instructions": "Answer in JSON."},  # not the input
    ],
    ids=["no-json-anywhere", "json-in-instructions-only"],
)
def test_json_mode_without_the_word_json_in_the_input_is_refused(
    client: openai.OpenAI, extra: dict[str, Any]
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODEL, text=JSON_MODE, **extra)
    assert refused.value.body == {
        "message": JSON_WORD_MESSAGE,
        "type": "invalid_request_error",
        "param": "input",
        "code": None,
    }


def test_json_mode_takes_the_word_json_anywhere_in_the_input(client: openai.OpenAI) -> None:
    accepted = [
        "List three colours as Json",
        [
            {"role": "developer", "content": "Reply with a JSON object."},
            {"role": "user", "content": "List three colours"},
        ],
    ]
    for request_input in accepted:
        response = client.responses.create(model=MODEL, input=request_input, text=JSON_MODE)
        assert isinstance(json.loads(response.output_text), dict)
    with pytest.raises(openai.BadRequestError, match="must contain the word 'json'"):
        client.responses.create(model=MODEL, input="List three colours", text=JSON_MODE)


@PROPERTY
@given(text=texts(max_size=40))
def test_json_mode_is_refused_exactly_when_the_input_lacks_json(
    lenient: MockServer, text: str
) -> None:
    answer = _post(
        lenient, {"model": MODEL, "input": [{"role": "user", "content": text}], "text": JSON_MODE}
    )
    if "json" in text.lower():
        assert answer.status_code == 200
    else:
        assert answer.status_code == 400
        assert answer.json()["error"]["message"] == JSON_WORD_MESSAGE


# --- 3. a stream cut by an in-band error event is kept as failed --------------------------------


def _cut_stream(server: MockServer, after: int) -> tuple[httpx.Response, list[dict[str, Any]]]:
    cut = _post(
        server,
        {"model": MODEL, "input": "Say hi and tell me a story", "stream": True},
        **{"x-mockai-fault": f"error_event_after={after}"},
    )
    return cut, _events(cut.text)


def test_a_stream_cut_by_an_error_event_is_retrieved_as_failed(
    server: MockServer, client: openai.OpenAI
) -> None:
    whole = list(client.responses.create(model=MODEL, input="Say hi", stream=True))
    kept = client.responses.retrieve(whole[-1].response.id)  # type: ignore[union-attr]
    assert (kept.status, kept.error) == ("completed", None)  # without the fault: as it was
    _, events = _cut_stream(server, 5)
    assert [e["type"] for e in events][-1] == "error"
    error = events[-1]
    retrieved = client.responses.retrieve(events[0]["response"]["id"])
    assert retrieved.status == "failed"
    assert retrieved.error is not None
    assert (retrieved.error.code, retrieved.error.message) == ("server_error", error["message"])
    # Its output is what the client got before the error: the deltas' text, the message cut.
    got = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert got and retrieved.output_text == got
    assert [item.status for item in retrieved.output] == ["incomplete"]


@PROPERTY
@given(after=st.integers(min_value=1, max_value=40))
def test_a_cut_stream_resumes_as_the_client_got_it(lenient: MockServer, after: int) -> None:
    cut, events = _cut_stream(lenient, after)
    response_id = events[0]["response"]["id"]
    with httpx.Client(base_url=lenient.url, timeout=10) as http:
        whole = http.get(f"/responses/{response_id}", params={"stream": "true"})
        resumed = http.get(
            f"/responses/{response_id}", params={"stream": "true", "starting_after": "2"}
        )
        retrieved = http.get(f"/responses/{response_id}").json()
    assert whole.text == cut.text  # the stored events stop at the error, as delivered
    assert _events(resumed.text) == events[3:]
    assert events[-1]["type"] == "error"
    assert events[-1]["sequence_number"] == len(events) - 1
    assert retrieved["status"] == "failed"
    assert retrieved["error"] == {"code": "server_error", "message": events[-1]["message"]}
    conformance.validate("Response", retrieved)


# --- 4. a tool call cut by max_output_tokens is incomplete ----------------------------------------

REPORT_TOOL = {
    "type": "function",
    "name": "write_report",
    "description": "write a long report",
    "parameters": {
        "type": "object",
        "additionalProperties": False,
        "required": ["paragraphs"],
        "properties": {
            "paragraphs": {
                "type": "array",
                "minItems": 20,
                "items": {"type": "string", "minLength": 200},
            }
        },
    },
}
CODE_TOOL = {"type": "custom", "name": "run_code", "description": "runs Python code"}
LONG_CODE = "\n".join(f"print('line number {n} of a long program')" for n in range(40))


def test_a_function_call_cut_by_the_limit_is_incomplete(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL,
        input="write a report",
        tools=[REPORT_TOOL],  # type: ignore[list-item]
        tool_choice="required",
        max_output_tokens=30,
    )
    assert response.status == "incomplete"
    call = response.output[0]
    assert call.type == "function_call"
    with pytest.raises(ValueError):
        json.loads(call.arguments)
    assert call.status == "incomplete"


def test_a_streamed_cut_call_is_incomplete_in_its_events(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model=MODEL,
            input="write a report",
            tools=[REPORT_TOOL],  # type: ignore[list-item]
            tool_choice="required",
            max_output_tokens=30,
            stream=True,
        )
    )
    done = [e for e in events if e.type == "response.output_item.done"]
    assert [e.item.status for e in done] == ["incomplete"]  # type: ignore[union-attr]
    final = events[-1]
    assert final.type == "response.incomplete"
    assert final.response.output[0].status == "incomplete"


def test_a_custom_tool_call_cut_by_the_limit_is_incomplete(
    server: MockServer, client: openai.OpenAI
) -> None:
    server.add_rule(
        {
            "match": {"endpoint": "responses"},
            "reply": {"tool_calls": [{"name": "run_code", "arguments": LONG_CODE}]},
        }
    )
    response = client.responses.create(
        model=MODEL,
        input="print forty lines",
        tools=[CODE_TOOL],  # type: ignore[list-item]
        max_output_tokens=40,
    )
    call = response.output[0]
    assert call.type == "custom_tool_call"
    assert LONG_CODE.startswith(call.input) and call.input != LONG_CODE
    assert call.status == "incomplete"


CALLS = [
    {"name": "run_code", "arguments": "print('first')"},
    {"name": "run_code", "arguments": LONG_CODE},
]


@pytest.fixture(scope="module")
def two_calls() -> Iterator[MockServer]:
    with conformance.checked_server() as server:
        server.add_rule({"match": {"endpoint": "responses"}, "reply": {"tool_calls": CALLS}})
        yield server


@PROPERTY
@given(limit=st.integers(min_value=16, max_value=600))  # (the API's minimum is 16)
def test_only_a_call_the_limit_cut_is_incomplete(two_calls: MockServer, limit: int) -> None:
    answer = _post(
        two_calls,
        {"model": MODEL, "input": "run it", "tools": [CODE_TOOL], "max_output_tokens": limit},
    ).json()
    calls = [item for item in answer["output"] if item["type"] == "custom_tool_call"]
    for index, call in enumerate(calls):
        whole = call["input"] == CALLS[index]["arguments"]
        assert call["status"] == ("completed" if whole else "incomplete")
        assert whole or index == len(calls) - 1  # only the last one kept can be cut
    if len(calls) == len(CALLS) and calls[-1]["status"] == "completed":
        assert answer["status"] == "completed"


def test_a_message_before_a_cut_call_is_completed(
    server: MockServer, client: openai.OpenAI
) -> None:
    # The limit stops the answer in its second call: the message and the first call were
    # written whole before it, and the API marks each item done as it ends (a stream's
    # `output_item.done` for the message comes before the calls start). It said `incomplete`,
    # so an app reading a message's status to tell a cut text from a whole one was misled.
    server.add_rule(
        {
            "match": {"endpoint": "responses"},
            "reply": {"content": "Running two programs.", "tool_calls": CALLS},
        }
    )
    request: dict[str, Any] = {
        "model": MODEL,
        "input": "run both",
        "tools": [CODE_TOOL],
        "max_output_tokens": 40,
    }
    response = client.responses.create(**request)
    assert response.status == "incomplete"
    assert [(item.type, item.status) for item in response.output] == [  # type: ignore[union-attr]
        ("message", "completed"),
        ("custom_tool_call", "completed"),
        ("custom_tool_call", "incomplete"),
    ]
    with client.responses.stream(**request) as stream:
        done = [e.item.status for e in stream if e.type == "response.output_item.done"]
    assert done == ["completed", "completed", "incomplete"]


@pytest.mark.parametrize(
    ("model", "kind"),
    [
        ("gpt-3.5-turbo", "json_schema"),
        ("gpt-4", "json_schema"),
        ("gpt-4o-2024-05-13", "json_schema"),
        ("ft:gpt-3.5-turbo:acme::x1", "json_schema"),
        ("gpt-4", "json_object"),
        ("gpt-3.5-turbo-0613", "json_object"),
    ],
)
def test_a_text_format_older_than_the_model_is_refused(
    client: openai.OpenAI, model: str, kind: str
) -> None:
    # The Responses API's 400, naming the model, as apps asking gpt-3.5-turbo or gpt-4 for
    # structured output quote it (chat's own words are tested in test_langchain.py); mockai
    # answered with the JSON, so `responses.parse` passed here and failed against OpenAI.
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    fmt: Any = {"type": "json_object"}
    if kind == "json_schema":
        fmt = {"type": "json_schema", "name": "person", "schema": schema, "strict": True}
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=model, input="Alice, as JSON", text={"format": fmt})
    assert refused.value.body == {
        "message": f"Invalid parameter: 'text.format' of type '{kind}' is not supported with "
        f"model version `{model}`.",
        "type": "invalid_request_error",
        "param": "text.format",
        "code": None,
    }
    # Structured Outputs came with gpt-4o-mini and gpt-4o-2024-08-06; JSON mode before them.
    for later in ("gpt-4o-mini", "gpt-4o-2024-08-06", "gpt-4.1-nano"):
        assert json.loads(
            client.responses.create(
                model=later, input="Alice, as JSON", text={"format": fmt}
            ).output_text
        )


# --- 5. the spec's enums inside `include` and `reasoning` -----------------------------------------


def _invalid_value(param: str, value: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    listed = ", ".join(f"'{v}'" for v in allowed[:-1]) + f", and '{allowed[-1]}'"
    return {
        "message": f"Invalid value: '{value}'. Supported values are: {listed}.",
        "type": "invalid_request_error",
        "param": param,
        "code": "invalid_value",
    }


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (
            {"include": ["message.output_text.logprobs", "nonsense"]},
            _invalid_value("include[1]", "nonsense", common.INCLUDE_VALUES),
        ),
        (
            {"reasoning": {"effort": "extreme"}},
            _invalid_value("reasoning.effort", "extreme", common.REASONING_EFFORTS),
        ),
        (
            {"reasoning": {"effort": "low", "summary": "verbose"}},
            _invalid_value("reasoning.summary", "verbose", common.REASONING_SUMMARIES),
        ),
    ],
    ids=["include-item", "reasoning-effort", "reasoning-summary"],
)
def test_strict_requests_refuse_values_outside_nested_enums(
    strict: MockServer, extra: dict[str, Any], error: dict[str, Any]
) -> None:
    answer = _post(strict, {"model": "o3", "input": "hi", **extra})
    assert answer.status_code == 400
    assert answer.json() == {"error": error}


def test_strict_requests_take_the_spec_values_and_only_strings(strict: MockServer) -> None:
    body = {
        "model": "o3",
        "input": "hi",
        # (every value but logprobs, which a model that reasons refuses: test_reasoning.py)
        "include": [v for v in common.INCLUDE_VALUES if v != "message.output_text.logprobs"],
        "reasoning": {"effort": "high", "summary": "auto"},
    }
    answer = _post(strict, body)
    assert answer.status_code == 200
    assert answer.json()["reasoning"] == {"effort": "high", "summary": "auto"}
    refused = _post(strict, {**body, "include": [5]})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "include[0]"
    assert refused.json()["error"]["code"] == "invalid_type"


@PROPERTY
@given(effort=st.one_of(st.sampled_from(common.REASONING_EFFORTS), texts(max_size=12)))
def test_reasoning_effort_is_echoed_only_when_the_spec_knows_it(
    lenient: MockServer, strict: MockServer, effort: str
) -> None:
    body = {"model": "o3", "input": "hi", "reasoning": {"effort": effort}}
    known = effort in common.REASONING_EFFORTS
    answered = _post(lenient, body).json()
    conformance.validate("Response", answered)
    assert answered["reasoning"]["effort"] == (effort if known else None)
    assert _post(strict, body).status_code == (200 if known else 400)


@PROPERTY
@given(truncation=st.one_of(st.sampled_from(["auto", "disabled"]), texts(max_size=12)))
def test_truncation_is_echoed_only_when_the_spec_knows_it(
    lenient: MockServer, strict: MockServer, truncation: str
) -> None:
    body = {"model": "gpt-4o-mini", "input": "hi", "truncation": truncation}
    known = truncation in ("auto", "disabled")
    answered = _post(lenient, body).json()
    conformance.validate("Response", answered)
    assert answered["truncation"] == (truncation if known else "disabled")
    assert _post(strict, body).status_code == (200 if known else 400)


def test_the_nested_enums_are_the_spec_s() -> None:
    schemas = conformance.spec()["components"]["schemas"]
    effort = next(alt for alt in schemas["ReasoningEffort"]["anyOf"] if "enum" in alt)
    summary = next(
        alt for alt in schemas["Reasoning"]["properties"]["summary"]["anyOf"] if "enum" in alt
    )
    assert tuple(schemas["IncludeEnum"]["enum"]) == common.INCLUDE_VALUES
    assert tuple(effort["enum"]) == common.REASONING_EFFORTS
    assert tuple(summary["enum"]) == common.REASONING_SUMMARIES


def test_sdk_sees_the_nested_enum_error(strict: MockServer) -> None:
    with sdk(strict) as client, pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(
            model="o3",
            input="hi",
            reasoning={"effort": "extreme"},  # type: ignore[typeddict-item]
        )
    assert refused.value.param == "reasoning.effort"
