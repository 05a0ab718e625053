"""Same seed + same request -> the same bytes, whatever the order of requests."""

from __future__ import annotations

from typing import Any

import httpx
from conformance import checked_server

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

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (
        "/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]},
    ),
    (
        "/chat/completions",
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hello"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ),
    (
        "/chat/completions",
        {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [WEATHER],
            "tool_choice": "required",
            "n": 2,
        },
    ),
    (
        "/chat/completions",
        {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "json pls"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "x",
                    "schema": {
                        "type": "object",
                        "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
                        "required": ["a", "b"],
                    },
                },
            },
        },
    ),
    (
        "/completions",
        {"model": "gpt-3.5-turbo-instruct", "prompt": ["one", "two"], "n": 2, "logprobs": 2},
    ),
    (
        "/embeddings",
        {"model": "text-embedding-3-small", "input": ["cats", "dogs"], "encoding_format": "float"},
    ),
    (
        "/embeddings",
        {
            "model": "text-embedding-3-small",
            "input": "cats",
            "encoding_format": "base64",
            "dimensions": 64,
        },
    ),
    (  # an agent loop's second step: a tool result, then `required` moves on to final_result
        "/chat/completions",
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            ],
            "tools": [
                WEATHER,
                {
                    "type": "function",
                    "function": {
                        "name": "final_result",
                        "parameters": WEATHER["function"]["parameters"],
                    },
                },
            ],
            "tool_choice": "required",
        },
    ),
    (  # JSON mode with the schema written in the system message
        "/chat/completions",
        {
            "model": "gpt-4o-mini",
            "messages": [
                {
                    "role": "system",
                    "content": 'Answer in JSON matching {"type": "object", "properties": {"city": {"type": "string"}}}',
                },
                {"role": "user", "content": "Where is the Louvre?"},
            ],
            "response_format": {"type": "json_object"},
        },
    ),
    ("/responses", {"model": "gpt-4o-mini", "input": "Hello"}),
    ("/responses", {"model": "gpt-4o-mini", "input": "Hello", "stream": True}),
    ("/moderations", {"input": ["I will kill you", "nice day"]}),
]


def _bodies(seed: int, order: list[int]) -> dict[int, bytes]:
    with (
        checked_server(seed=seed) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        return {i: http.post(REQUESTS[i][0], json=REQUESTS[i][1]).content for i in order}


def test_same_seed_same_bytes_in_any_order() -> None:
    forward = _bodies(7, list(range(len(REQUESTS))))
    backward = _bodies(7, list(reversed(range(len(REQUESTS)))))
    for index in forward:
        assert forward[index] == backward[index], REQUESTS[index]


def test_different_seed_different_text() -> None:
    assert _bodies(7, [0])[0] != _bodies(8, [0])[0]


def test_repeated_request_same_text_new_ids() -> None:
    with (
        checked_server(seed=3) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        first, second = (http.post(REQUESTS[0][0], json=REQUESTS[0][1]).json() for _ in range(2))
    assert first["choices"] == second["choices"]
    assert first["id"] != second["id"]
