"""Bad requests get the API's OpenAI-shaped errors: status, type, code, and `param` naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from conformance import checked_server

from mockai import MockServer

RATE_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
)


@pytest.fixture
def http(server: MockServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url) as raw:
        yield raw


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


CHAT = "/v1/chat/completions"
OK_MESSAGES = [{"role": "user", "content": "hi"}]

BAD_REQUESTS: list[tuple[str, Any, int, str | None, str | None, str]] = [
    # path, body, status, param, code, message fragment
    (CHAT, {"messages": OK_MESSAGES}, 400, None, None, "you must provide a model parameter"),
    (CHAT, {"model": "gpt-4o"}, 400, "messages", "missing_required_parameter", "'messages'"),
    (
        CHAT,
        {"model": "gpt-4o", "messages": "hi"},
        400,
        "messages",
        "invalid_type",
        "expected an array, but got a string instead",
    ),
    (CHAT, {"model": "gpt-4o", "messages": []}, 400, "messages", "empty_array", "empty array"),
    (
        CHAT,
        {"model": 4, "messages": OK_MESSAGES},
        400,
        "model",
        "invalid_type",
        "expected a string, but got an integer",
    ),
    (
        CHAT,
        {"model": "gpt-4o", "messages": [{"content": "x"}]},
        400,
        "messages[0].role",
        "missing_required_parameter",
        "messages[0].role",
    ),
    (
        CHAT,
        {"model": "gpt-4o", "messages": [{"role": "robot", "content": "x"}]},
        400,
        "messages[0].role",
        "invalid_value",
        "Invalid value: 'robot'",
    ),
    (
        CHAT,
        {"model": "gpt-4o", "messages": [{"role": "user"}]},
        400,
        "messages[0].content",
        "missing_required_parameter",
        "content",
    ),
    (
        CHAT,
        {"model": "gpt-4o", "messages": [{"role": "user", "content": 5}]},
        400,
        "messages[0].content",
        "invalid_type",
        "got an integer",
    ),
    (
        CHAT,
        {"model": "gpt-4o", "messages": OK_MESSAGES, "n": 0},
        400,
        "n",
        "integer_below_min_value",
        "Expected a value >= 1",
    ),
    (
        CHAT,
        {"model": "gpt-4o", "messages": OK_MESSAGES, "temperature": 3},
        400,
        "temperature",
        "decimal_above_max_value",
        "Expected a value <= 2",
    ),
    (
        CHAT,
        {"model": "gpt-4o", "messages": OK_MESSAGES, "temperature": "hot"},
        400,
        "temperature",
        "invalid_type",
        "expected a decimal",
    ),
    (
        CHAT,
        {"model": "gpt-4o", "messages": OK_MESSAGES, "stream": "yes"},
        400,
        "stream",
        "invalid_type",
        "expected a boolean",
    ),
    (
        CHAT,
        {"model": "gpt-4o", "messages": OK_MESSAGES, "stream_options": {"include_usage": True}},
        400,
        "stream_options",
        None,
        "only allowed when 'stream' is enabled",
    ),
    (
        CHAT,
        {"model": "gpt-4o", "messages": OK_MESSAGES, "stop": ["a", "b", "c", "d", "e"]},
        400,
        "stop",
        "array_above_max_length",
        "maximum length 4",
    ),
    (
        CHAT,
        {"model": "gpt-4o", "messages": OK_MESSAGES, "tool_choice": "auto"},
        400,
        "tool_choice",
        None,
        "only allowed when 'tools' are specified",
    ),
    (
        CHAT,
        {
            "model": "gpt-4o",
            "messages": OK_MESSAGES,
            "tools": [{"type": "function", "function": {"name": "bad name!"}}],
        },
        400,
        "tools[0].function.name",
        "invalid_value",
        "does not match pattern",
    ),
    (
        CHAT,
        {"model": "gpt-4o", "messages": OK_MESSAGES, "response_format": {"type": "json_object"}},
        400,
        "messages",
        None,
        "must contain the word 'json'",
    ),
    (
        CHAT,
        {
            "model": "gpt-4o",
            "messages": OK_MESSAGES,
            "response_format": {"type": "json_schema", "json_schema": {"schema": {}}},
        },
        400,
        "response_format.json_schema.name",
        "missing_required_parameter",
        "name",
    ),
    (
        CHAT,
        {"model": "o3", "messages": OK_MESSAGES, "max_tokens": 10},
        400,
        "max_tokens",
        "unsupported_parameter",
        "Use 'max_completion_tokens' instead.",
    ),
    (
        CHAT,
        {
            "model": "gpt-4o",
            "messages": [{"role": "tool", "tool_call_id": "call_1", "content": "x"}],
        },
        400,
        "messages.[0].role",
        None,
        "must be a response to a preceeding message with 'tool_calls'",
    ),
    (
        CHAT,
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "user", "content": "y"},
            ],
        },
        400,
        "messages.[1].role",
        None,
        "did not have response messages: call_1",
    ),
    (
        CHAT,
        {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "word " * 20000}]},
        400,
        "messages",
        "context_length_exceeded",
        "maximum context length is 16385 tokens",
    ),
    (CHAT, ["not", "an", "object"], 400, None, "invalid_type", "JSON object"),
    (
        "/v1/completions",
        {"model": "gpt-3.5-turbo-instruct"},
        400,
        "prompt",
        "missing_required_parameter",
        "'prompt'",
    ),
    (
        "/v1/completions",
        {"model": "gpt-3.5-turbo-instruct", "prompt": "x", "logprobs": 9},
        400,
        "logprobs",
        "integer_above_max_value",
        "Expected a value <= 5",
    ),
    (
        "/v1/embeddings",
        {"model": "text-embedding-3-small"},
        400,
        "input",
        "missing_required_parameter",
        "'input'",
    ),
    (
        "/v1/embeddings",
        {"model": "text-embedding-ada-002", "input": "x", "dimensions": 8},
        400,
        "dimensions",
        None,
        "does not support specifying dimensions",
    ),
    ("/v1/responses", {"input": 5}, 400, "input", "invalid_type", "got an integer"),
    ("/v1/moderations", {}, 400, "input", "missing_required_parameter", "'input'"),
]


@pytest.mark.parametrize(("path", "body", "status", "param", "code", "message"), BAD_REQUESTS)
def test_bad_request_is_openai_shaped(
    http: httpx.Client,
    path: str,
    body: Any,
    status: int,
    param: str | None,
    code: str | None,
    message: str,
) -> None:
    response = http.post(path, json=body)
    assert response.status_code == status
    error = _error(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] == code
    assert message in error["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, {"messages": OK_MESSAGES}),
        (CHAT, {"model": "", "messages": OK_MESSAGES}),
        ("/v1/completions", {"prompt": "Say hi"}),
        ("/v1/completions", {"model": "", "prompt": "Say hi"}),
        ("/v1/embeddings", {"input": "Say hi"}),
        ("/v1/embeddings", {"model": "", "input": "Say hi"}),
    ],
)
def test_a_request_naming_no_model_is_the_routers_400(
    http: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    """The API refuses a chat, completions or embeddings request without a model, or with "",
    in its router's words with no param and no code (chain-ml/council#45's curl against
    api.openai.com); mockai said "Missing required parameter: 'model'." (param and code set),
    and answered `"model": ""` as a model of its own."""
    response = http.post(path, json=body)
    assert response.status_code == 400
    assert _error(response) == {
        "message": "you must provide a model parameter",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_malformed_json(http: httpx.Client) -> None:
    response = http.post(
        CHAT,
        content=b'{"model": "gpt-4o", "messages": [',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = _error(response)
    assert error["message"].startswith("We could not parse the JSON body of your request.")
    assert error["param"] is None and error["code"] is None


def test_not_utf8_body(http: httpx.Client) -> None:
    response = http.post(CHAT, content=b"\xff\xfe\x00garbage")
    assert response.status_code == 400
    assert "could not parse the JSON body" in _error(response)["message"]


def test_unknown_endpoint_and_method(http: httpx.Client) -> None:
    missing = http.post("/v1/chat/complete", json={})
    assert missing.status_code == 404
    assert _error(missing)["message"] == "Invalid URL (POST /v1/chat/complete)"
    wrong = http.delete(CHAT)
    assert wrong.status_code == 405
    assert _error(wrong)["message"] == "Invalid method for URL (DELETE /v1/chat/completions)"
    assert http.put("/v1/models").status_code == 405


def test_every_answer_carries_the_standard_headers(http: httpx.Client) -> None:
    answers = [
        http.post(CHAT, json={"model": "gpt-4o", "messages": OK_MESSAGES}),
        http.post(CHAT, json={"model": "gpt-4o", "messages": OK_MESSAGES, "stream": True}),
        http.post(CHAT, json={"model": "gpt-4o"}),
        http.get("/v1/models"),
        http.get("/nope"),
        http.delete(CHAT),
    ]
    for response in answers:
        assert response.headers["x-request-id"].startswith("req_")
        assert len(response.headers["x-request-id"]) == 36
        assert int(response.headers["openai-processing-ms"]) >= 0
        for name in RATE_HEADERS:
            assert response.headers[name], name
    assert len({r.headers["x-request-id"] for r in answers}) == len(answers)


def test_rate_limit_headers_count_down(http: httpx.Client) -> None:
    remaining = []
    for _ in range(3):
        response = http.post(CHAT, json={"model": "gpt-4o", "messages": OK_MESSAGES})
        remaining.append(int(response.headers["x-ratelimit-remaining-requests"]))
    assert remaining[0] - 1 == remaining[1] and remaining[1] - 1 == remaining[2]
    assert response.headers["x-ratelimit-reset-requests"].endswith("s")


def test_unknown_fields_accepted_unless_strict(http: httpx.Client) -> None:
    body = {
        "model": "gpt-4o",
        "messages": OK_MESSAGES,
        "brand_new_param": 1,
        "service_tier": "turbo",
    }
    assert http.post(CHAT, json=body).status_code == 200
    with (
        checked_server(strict_requests=True) as strict,
        httpx.Client(base_url=strict.base_url) as raw,
    ):
        response = raw.post(CHAT, json=body)
        assert response.status_code == 400
        error = _error(response)
        assert error["param"] == "brand_new_param" and error["code"] == "unknown_parameter"
        assert error["message"] == "Unknown parameter: 'brand_new_param'."
        enum = raw.post(
            CHAT, json={"model": "gpt-4o", "messages": OK_MESSAGES, "service_tier": "turbo"}
        )
        assert _error(enum)["param"] == "service_tier"
        nulls = raw.post(CHAT, json={"model": "gpt-4o", "messages": OK_MESSAGES, "user": None})
        assert _error(nulls)["code"] == "invalid_type"


def test_null_optional_fields_are_not_given(http: httpx.Client) -> None:
    body = {
        "model": "gpt-4o",
        "messages": OK_MESSAGES,
        "user": None,
        "n": None,
        "temperature": None,
    }
    assert http.post(CHAT, json=body).status_code == 200


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (405, openai.APIStatusError),
    ],
)
def test_status_maps_to_sdk_exception(status: int, exception: type[Exception]) -> None:
    with MockServer(require_api_key="sk-right", models=("gpt-4o",), log_requests=False) as server:
        key = "sk-wrong-key-1234" if status == 401 else "sk-right"
        client = openai.OpenAI(base_url=server.url, api_key=key, max_retries=0)
        with pytest.raises(exception) as caught:
            if status == 405:
                client.delete("/chat/completions", cast_to=object)
            else:
                model = "gpt-unknown" if status == 404 else "gpt-4o"
                messages = [] if status == 400 else OK_MESSAGES
                client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
        error = caught.value
        assert isinstance(error, openai.APIStatusError) and error.status_code == status
        assert error.request_id is not None and error.request_id.startswith("req_")
        if status == 401:
            assert error.code == "invalid_api_key" and "sk-***1234" in error.message
        if status == 404:
            assert error.code == "model_not_found"


def test_missing_api_key_when_required() -> None:
    with checked_server(require_api_key="sk-right") as server:
        response = httpx.post(
            server.url + "/chat/completions", json={"model": "m", "messages": OK_MESSAGES}
        )
        assert response.status_code == 401
        assert _error(response)["message"].startswith("You didn't provide an API key.")
        ok = httpx.get(server.url + "/models", headers={"Authorization": "Bearer sk-right"})
        assert ok.status_code == 200
