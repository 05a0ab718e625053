"""Anything on any route: a property over arbitrary input.

Full-featured requests for every route (tools, schemas, tool calls and results, formats,
streams, stored objects, admin rules), with one node anywhere replaced by arbitrary JSON (any
type, deep nesting, lone surrogates escaped or as raw bytes), or by arbitrary bytes. Whatever is
sent, the answer is a 2xx or the API's four-key 4xx with `x-request-id`, nothing is logged at
ERROR, and the journal stays readable over HTTP and as `as_json()`.

The suite's run is short and deterministic; a long random one:
`MOCKAI_FUZZ_EXAMPLES=5000 pytest tests/test_any_input.py`.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_fuzz import LogWatch
from test_hostile_input import CHAT, api_error, nested

from mockai import MockServer

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "gpt-4o-mini", "function", "json_schema", "user", "\ud800", "a\udc00"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(["type", "name", "schema", "function"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=16,
) | st.integers(min_value=1, max_value=1500).map(nested)

# Full-featured requests: the property replaces one node of one of them (anywhere, at any
# depth) with an arbitrary value, so that hostile values reach every parser and every stage.
PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TEMPLATES: dict[str, Any] = {
    "/v1/chat/completions": {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ],
        "tools": [{"type": "function", "function": {"name": "w", "parameters": PARAMETERS}}],
        "tool_choice": {"type": "function", "function": {"name": "w"}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "r", "schema": PARAMETERS},
        },
        "stream": True,
        "stream_options": {"include_usage": True},
        "n": 2,
        "stop": ["x"],
        "logit_bias": {"1": 2},
        "metadata": {"k": "v"},
    },
    "/v1/completions": {
        "model": "davinci-002",  # (gpt-3.5-turbo-instruct refuses `echo` with `logprobs`)
        "prompt": ["a", "b"],
        "n": 2,
        "echo": True,
        "logprobs": 2,
    },
    "/v1/embeddings": {
        "model": "text-embedding-3-small",
        "input": ["a", [1, 2]],
        "dimensions": 8,
        "encoding_format": "float",
    },
    "/v1/moderations": {
        "input": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}]
    },
    "/v1/responses": {
        "model": "o4-mini",  # (a model that reasons: it takes `reasoning.effort`)
        "instructions": "be brief",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ],
        "tools": [
            {"type": "function", "name": "w", "parameters": PARAMETERS},
            {"type": "web_search"},
        ],
        "tool_choice": {
            "type": "allowed_tools",
            "mode": "auto",
            "tools": [{"type": "function", "name": "w"}],
        },
        "text": {"format": {"type": "json_schema", "name": "r", "schema": PARAMETERS}},
        "reasoning": {"effort": "low"},
        "include": ["message.output_text.logprobs"],
        "store": True,
        "stream": True,
    },
    "/v1/responses/input_tokens": {
        "input": "hi",
        "tools": [{"type": "function", "name": "w", "parameters": PARAMETERS}],
    },
    "/v1/conversations": {"items": [{"role": "user", "content": "hi"}], "metadata": {"k": "v"}},
    "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21": {
        "messages": [{"role": "user", "content": "hi"}]
    },
    "/_mockai/rules": {
        "name": "r",
        "match": {"user": "x", "body": {"n": 1}},
        "reply": {"content": "y"},
    },
}


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every node of `value`, and of a new key in each object."""
    found = [path]
    if isinstance(value, dict):
        found.append((*path, "new_key"))
        for key, child in value.items():
            found.extend(_nodes(child, (*path, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_nodes(child, (*path, index)))
    return found


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copied = copy.deepcopy(value)
    node = copied
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return copied


@st.composite
def hostile_bodies(draw: st.DrawFn, template: Any) -> bytes:
    """`template` with one node replaced by anything, as JSON (whose strings may hold lone
    surrogates, escaped or as raw bytes) or, sometimes, as bytes that are not JSON."""
    body = _replaced(template, draw(st.sampled_from(_nodes(template))), draw(json_values))
    encoding = draw(st.sampled_from(["escaped", "raw", "bytes"]))
    if encoding == "bytes":
        return draw(st.binary(max_size=64))
    if encoding == "escaped":
        return json.dumps(body).encode()
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[MockServer, dict[str, str]]]:
    """One server for all examples (state builds up, as it would), rules asked on every request,
    and the id-taking routes pointed at objects that exist."""
    with MockServer(fallback="generate") as server:
        server.add_rules(
            [
                {
                    "match": {"body": {"n": 2, "metadata": {"k": "v"}}},
                    "reply": "{{ request.body | tojson }}",
                },
                {"match": {"headers": {"x-never": "sent"}}, "reply": "never"},
            ]
        )
        with httpx.Client(base_url=server.url) as http:
            stored = http.post("/responses", json={"input": "hi", "store": True}).json()["id"]
            completion = http.post("/chat/completions", json={**CHAT, "store": True}).json()["id"]
            conversation = http.post(
                "/conversations", json={"items": [{"role": "user", "content": "a"}]}
            ).json()["id"]
        routes = {
            **dict.fromkeys(TEMPLATES, "POST"),
            f"/v1/responses/{stored}": "GET",
            f"/v1/responses/{stored}/cancel": "POST",
            f"/v1/chat/completions/{completion}": "POST",
            f"/v1/conversations/{conversation}": "POST",
            f"/v1/conversations/{conversation}/items": "POST",
            "/v1/models/gpt-4o": "GET",
            "/_mockai/reset": "POST",
            "/v1/no/such/route": "PATCH",
        }
        yield server, routes


@settings(
    # (see the module's docstring for a long run)
    max_examples=int(os.environ.get("MOCKAI_FUZZ_EXAMPLES", "150")),
    derandomize="MOCKAI_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(data=st.data())
def test_any_body_on_any_route_gets_an_answer_in_the_apis_shape(
    target: tuple[MockServer, dict[str, str]], data: st.DataObject
) -> None:
    server, routes = target
    path = data.draw(st.sampled_from(sorted(routes)), label="path")
    template = TEMPLATES.get(path, TEMPLATES["/v1/conversations"])
    body = data.draw(hostile_bodies(template), label="body")
    with LogWatch().watching() as log, httpx.Client() as http:
        response = http.request(routes[path], server.url_for(path), content=body)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            api_error(response, response.status_code)
        journal = http.get(server.url_for("/_mockai/requests?limit=5"))
        assert journal.status_code == 200
        assert log.take() == []
    for entry in server.requests[-5:]:
        json.dumps(entry.as_json(), ensure_ascii=False, allow_nan=False).encode()
