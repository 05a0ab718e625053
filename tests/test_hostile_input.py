"""Hostile input never gets a 5xx, a traceback or a non-JSON error, on any route.

One example (or table) for each hole fuzzing found: deep nesting, lone surrogates, NaN and
overflowing numbers, invalid JSON Schemas, non-object tool fields, odd paths, unreadable bodies,
undecodable header bytes, a poisoned journal. tests/test_any_input.py holds the property over
arbitrary input; tests/test_spec_fuzz.py fuzzes from the OpenAPI spec.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conformance import checked_server
from raw_http import whole_answer
from spec_fuzz import LogWatch

import mockai.server.app
from mockai import MockServer
from mockai.wire import jsonbytes
from mockai.wire.jsonbytes import MAX_DEPTH

ERROR_KEYS = {"message", "type", "param", "code"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
COULD_NOT_PARSE = "We could not parse the JSON body of your request."


def nested(depth: int, leaf: Any = None) -> Any:
    """`depth` levels of containers (arrays and objects, alternating) around `leaf`."""
    value = leaf
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


def items_chain(levels: int) -> dict[str, Any]:
    """A schema `levels` JSON levels deep, nesting through `items` (a level per schema; one item
    per array, so that a generated instance stays small)."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels - 1):
        schema = {"type": "array", "items": schema, "minItems": 1, "maxItems": 1}
    return schema


def api_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The four-key error of an error answer, after checking its status, type and headers."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id", "").startswith("req_")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS
    return body["error"]


@pytest.fixture
def http(server: MockServer, watched: LogWatch) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url) as raw:
        yield raw


# --- nesting -------------------------------------------------------------------------------------

# Every kind of route: generating, Azure's, stateful (with and without an id), models (a 405
# here), admin, and the catch-all 404.
ROUTES_WITH_BODIES = [
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/responses/input_tokens",
    "/v1/conversations",
    "/v1/conversations/conv_missing",
    "/v1/chat/completions/chatcmpl_missing",
    "/openai/deployments/gpt-4o/chat/completions",
    "/v1/models",
    "/_mockai/rules",
    "/v1/no/such/route",
]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
@pytest.mark.parametrize("path", ROUTES_WITH_BODIES)
def test_nesting_too_deep_is_a_parse_error_on_every_route(
    http: httpx.Client, path: str, depth: int
) -> None:
    body = b'{"model": "gpt-4o-mini", "x": ' + b"[" * depth + b"]" * depth + b"}"
    response = http.post(path, content=body)
    assert response.status_code in (400, 404, 405), response.text
    error = api_error(response, response.status_code)
    if response.status_code == 400 and not path.startswith("/_mockai"):
        assert error["message"].startswith(COULD_NOT_PARSE)


@pytest.mark.parametrize("depth", [MAX_DEPTH, MAX_DEPTH + 1])
def test_the_depth_limit(depth: int) -> None:
    for value in (nested(depth), nested(depth - 1, leaf={}), {"k": nested(depth - 1)}):
        text = json.dumps(value)
        if depth <= MAX_DEPTH:
            assert jsonbytes.loads(text) == value
        else:
            with pytest.raises(ValueError, match="nested deeper"):
                jsonbytes.loads(text)
    # Many brackets, shallow: accepted (the bracket count is only a pre-filter).
    wide = [[[i]] for i in range(5 * MAX_DEPTH)]
    assert jsonbytes.loads(json.dumps(wide)) == wide


# Bodies nested to the limit, where the value gets walked after parsing: fingerprints, the
# rules' matchers, tool and format schemas (checked, then generated from), echoes, the journal.
AT_THE_LIMIT = [
    ("/v1/chat/completions", {**CHAT, "x": nested(MAX_DEPTH - 1)}),
    ("/v1/chat/completions", {**CHAT, "stream": True, "x": nested(MAX_DEPTH - 1)}),
    (
        "/v1/chat/completions",
        {
            **CHAT,
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "f",
                        # (parameters are an object, as the API requires: two levels more)
                        "parameters": {"type": "object", "properties": {"a": items_chain(58)}},
                    },
                }
            ],
            "tool_choice": "required",
        },
    ),
    (
        "/v1/chat/completions",
        {
            **CHAT,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "deep", "schema": items_chain(MAX_DEPTH - 3)},
            },
        },
    ),
    (
        "/v1/responses",
        {
            "input": "hi",
            "text": {"format": {"type": "json_schema", "name": "d", "schema": items_chain(61)}},
        },
    ),
    (
        "/v1/responses",
        {"input": "hi", "tools": [{"type": "web_search", "x": nested(MAX_DEPTH - 3)}]},
    ),
    ("/v1/responses/input_tokens", {"input": "hi", "x": nested(MAX_DEPTH - 1)}),
    (
        "/v1/embeddings",
        {"model": "text-embedding-3-small", "input": "a", "x": nested(MAX_DEPTH - 1)},
    ),
    ("/v1/moderations", {"input": "a", "x": nested(MAX_DEPTH - 1)}),
    ("/v1/conversations", {"x": nested(MAX_DEPTH - 1)}),
]


@pytest.mark.parametrize(("path", "body"), AT_THE_LIMIT)
def test_nesting_at_the_limit_is_served(watched: LogWatch, path: str, body: Any) -> None:
    rules = [
        {"match": {"body": {"x": [{"a": [None]}]}}, "reply": "subset-matched"},
        {"match": {"headers": {"x-case": "template"}}, "reply": "{{ request.body | tojson }}"},
    ]
    with checked_server(fallback="generate") as server, httpx.Client() as http:
        server.add_rules(rules)
        for headers in ({}, {"x-case": "template"}):
            response = http.post(server.url_for(path), json=body, headers=headers)
            assert response.status_code == 200, response.text
            assert json.dumps(server.requests[-1].as_json(), ensure_ascii=False).encode()
        assert http.get(server.url_for("/_mockai/requests")).status_code == 200


def test_deep_bodies_are_recorded_and_replayed(tmp_path: Path, watched: LogWatch) -> None:
    cassette = tmp_path / "deep.yaml"
    body = {**CHAT, "x": nested(MAX_DEPTH - 1)}
    with (
        MockServer() as upstream,
        checked_server(cassette=str(cassette), record_mode="once", upstream=upstream.url) as rec,
    ):
        recorded = httpx.post(rec.url_for("/v1/chat/completions"), json=body)
        assert recorded.status_code == 200
    with checked_server(cassette=str(cassette)) as replay:
        replayed = httpx.post(replay.url_for("/v1/chat/completions"), json=body)
        assert replayed.status_code == 200
        assert replayed.json() == recorded.json()
        assert replay.requests[-1].source == "cassette"


# --- strings and numbers the encoder cannot write back -------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "\\ud800"}]}',
        '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a\\udfffb"}]}',
        '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "\\uDC00": 1}',
        '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
        '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "temperature": Infinity}',
        '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "x": [-Infinity]}',
        '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}',
        '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "n": '
        + "9" * 5000
        + "}",
    ],
)
def test_values_no_json_encoder_can_write_back_are_parse_errors(
    http: httpx.Client, text: str
) -> None:
    for path in ("/v1/chat/completions", "/v1/conversations"):
        response = http.post(path, content=text.encode())
        assert api_error(response, 400)["message"].startswith(COULD_NOT_PARSE)
    assert http.get("/_mockai/requests").status_code == 200


def test_escaped_text_that_is_valid_unicode_is_accepted(http: httpx.Client) -> None:
    # A surrogate pair (as `json.dumps` writes emoji), and an escaped backslash before "ud800".
    text = '{"input": "hi", "instructions": "\\ud83d\\ude00 \\\\ud800"}'
    response = http.post("/v1/responses", content=text.encode())
    assert response.status_code == 200
    assert response.json()["instructions"] == "\U0001f600 \\ud800"


# --- schemas and the shape of tool fields --------------------------------------------------------

BAD_SCHEMA = {"type": "object", "properties": {"city": {"type": 5}}}
SCHEMA_PROBLEM = (
    "In context=('properties', 'city', 'type'), 5 is not valid under any of the given schemas."
)


@pytest.mark.parametrize(
    ("path", "body", "param", "code", "message"),
    [
        (
            "/v1/chat/completions",
            {
                **CHAT,
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": BAD_SCHEMA}}
                ],
            },
            "tools[0].function.parameters",
            "invalid_function_parameters",
            f"Invalid schema for function 'f': {SCHEMA_PROBLEM}",
        ),
        (
            "/v1/responses",
            {"input": "hi", "tools": [{"type": "function", "name": "g", "parameters": BAD_SCHEMA}]},
            "tools[0].parameters",
            "invalid_function_parameters",
            f"Invalid schema for function 'g': {SCHEMA_PROBLEM}",
        ),
        (
            "/v1/chat/completions",
            {
                **CHAT,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "w", "schema": BAD_SCHEMA},
                },
            },
            "response_format.json_schema.schema",
            "invalid_json_schema",
            f"Invalid schema for response_format 'w': {SCHEMA_PROBLEM}",
        ),
        (
            "/v1/responses",
            {
                "input": "hi",
                "text": {"format": {"type": "json_schema", "name": "w", "schema": BAD_SCHEMA}},
            },
            "text.format.schema",
            "invalid_json_schema",
            f"Invalid schema for response_format 'w': {SCHEMA_PROBLEM}",
        ),
        (
            "/v1/responses/input_tokens",
            {
                "input": "hi",
                "tools": [{"type": "function", "name": "g", "parameters": {"required": "city"}}],
            },
            "tools[0].parameters",
            "invalid_function_parameters",
            "Invalid schema for function 'g': In context=('required',), 'city' is not of type 'array'.",
        ),
    ],
)
def test_invalid_json_schemas_are_400s_naming_the_param(
    http: httpx.Client, path: str, body: Any, param: str, code: str, message: str
) -> None:
    error = api_error(http.post(path, json=body), 400)
    assert (error["param"], error["code"], error["message"]) == (param, code, message)
    # The verdict is cached: the same schema again gets the same answer.
    assert api_error(http.post(path, json=body), 400) == error


def _structured(schema: Any) -> dict[str, Any]:
    return {
        **CHAT,
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    }


def test_draft_07_schemas_are_not_refused(http: httpx.Client) -> None:
    pair = {
        "type": "array",
        "items": [{"type": "string"}, {"type": "integer"}],
        "additionalItems": False,
        "minItems": 2,
    }
    schema = {"type": "object", "properties": {"pair": pair}, "required": ["pair"]}
    response = http.post("/v1/chat/completions", json=_structured(schema))
    assert response.status_code == 200, response.text
    value = json.loads(response.json()["choices"][0]["message"]["content"])
    assert [type(item) for item in value["pair"]] == [str, int]


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        # An ECMA regex (a named group) Python cannot compile: valid for the API, but mockai's
        # generator cannot use it.
        (
            {
                "type": "object",
                "properties": {"year": {"type": "string", "pattern": "^(?<y>[0-9]{4})$"}},
                "required": ["year"],
            },
            "#/properties/year: invalid regular expression '^(?<y>[0-9]{4})$'",
        ),
        # A repeat count past what Python's `re` takes (it raises OverflowError, not re.error).
        (
            {
                "type": "object",
                "properties": {"code": {"type": "string", "pattern": "^a{99999999999}$"}},
                "required": ["code"],
            },
            "#/properties/code: invalid regular expression '^a{99999999999}$'",
        ),
        # Valid JSON Schema that no value satisfies.
        (
            {
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 5, "maximum": 1}},
                "required": ["n"],
            },
            "#/properties/n: no number satisfies minimum 5, maximum 1",
        ),
    ],
)
def test_a_schema_mockai_cannot_generate_from_is_a_400_saying_so(
    http: httpx.Client, schema: Any, why: str
) -> None:
    error = api_error(http.post("/v1/chat/completions", json=_structured(schema)), 400)
    assert error["code"] == "mockai_generation_failed"
    assert error["message"] == (
        f"mockai cannot generate a value for this schema ({why}); "
        "script the answer with a rule instead."
    )


TOOL = {
    "type": "function",
    "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
}


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (
            {**CHAT, "tools": [{"type": "custom", "custom": 5}]},
            "tools[0].custom",
            "expected an object, but got an integer instead",
        ),
        (
            {**CHAT, "tools": [{"type": "function", "function": "f"}]},
            "tools[0].function",
            "expected an object, but got a string instead",
        ),
        (
            {
                **CHAT,
                "tools": [{"type": "function", "function": {"name": "f", "description": ["d"]}}],
            },
            "tools[0].function.description",
            "expected a string, but got an array instead",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "call_1", "type": "function", "function": 5}],
                    },
                ],
            },
            "messages[1].tool_calls[0].function",
            "expected an object, but got an integer instead",
        ),
        (
            {**CHAT, "tools": [TOOL], "tool_choice": {"type": "function", "function": 5}},
            "tool_choice.function",
            "expected an object, but got an integer instead",
        ),
        (
            {**CHAT, "tools": [TOOL], "tool_choice": 5},
            "tool_choice",
            "expected one of a string or an object, but got an integer instead",
        ),
        (
            {
                **CHAT,
                "tools": [TOOL],
                "tool_choice": {"type": "allowed_tools", "allowed_tools": []},
            },
            "tool_choice.allowed_tools",
            "expected an object, but got an array instead",
        ),
        (
            {
                **CHAT,
                "tools": [TOOL],
                "tool_choice": {
                    "type": "allowed_tools",
                    "allowed_tools": {"mode": "auto", "tools": [3]},
                },
            },
            "tool_choice.allowed_tools.tools[0]",
            "expected an object, but got an integer instead",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "tool_calls": True},
                ],
            },
            "messages[1].tool_calls",
            "expected an array, but got a boolean instead",
        ),
    ],
)
def test_tool_fields_that_are_not_objects_are_400s_naming_the_param(
    http: httpx.Client, body: Any, param: str, message: str
) -> None:
    error = api_error(http.post("/v1/chat/completions", json=body), 400)
    assert error["param"] == param
    assert error["code"] == "invalid_type"
    assert error["message"] == f"Invalid type for '{param}': {message}."


@pytest.mark.parametrize("key", ["id", "status"])
@pytest.mark.parametrize("path", ["/v1/conversations", "/v1/responses"])
def test_item_ids_and_statuses_that_are_not_strings_are_400s(
    http: httpx.Client, path: str, key: str
) -> None:
    item = {"type": "message", "role": "user", "content": "hi", key: 0}
    body = {"items": [item]} if path == "/v1/conversations" else {"input": [item]}
    where = "items" if path == "/v1/conversations" else "input"
    error = api_error(http.post(path, json=body), 400)
    assert error["param"] == f"{where}[0].{key}"
    assert error["message"] == (
        f"Invalid type for '{where}[0].{key}': expected a string, but got an integer instead."
    )


def test_items_sent_with_null_ids_and_statuses_are_listed_with_the_apis(
    http: httpx.Client,
) -> None:
    sent = [
        {"type": "message", "role": "user", "content": "a", "id": None, "status": None},
        {"type": "message", "role": "user", "content": "b", "status": "in_progress"},
    ]
    listed = http.post("/v1/conversations", json={"items": sent}).json()
    items = http.get(f"/v1/conversations/{listed['id']}/items?order=asc").json()["data"]
    assert [item["id"][:4] for item in items] == ["msg_", "msg_"]
    assert [item["status"] for item in items] == ["completed", "completed"]


def test_stateful_routes_without_a_body(http: httpx.Client) -> None:
    created = http.post("/v1/conversations")  # every field is optional
    assert created.status_code == 200, created.text
    added = http.post(f"/v1/conversations/{created.json()['id']}/items")
    assert api_error(added, 400)["message"] == "Missing required parameter: 'items'."


# --- routing and reading the body ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/v1/mod%0Aels", 404, "Invalid URL (GET /v1/mod\nels)"),
        ("POST", "/v1/chat/completions%0A", 404, "Invalid URL (POST /v1/chat/completions\n)"),
        ("GET", "/%0D%0A", 404, "Invalid URL (GET /\r\n)"),
        ("PUT", "/_mockai/requests", 405, "Invalid method for URL (PUT /_mockai/requests)"),
        ("GET", "/_mockai/reset", 405, "Invalid method for URL (GET /_mockai/reset)"),
        ("GET", "/_mockai/nothing%0A", 404, "Invalid URL (GET /_mockai/nothing\n)"),
    ],
)
def test_routing_errors_are_the_apis_json(
    http: httpx.Client, method: str, path: str, status: int, message: str
) -> None:
    assert api_error(http.request(method, path), status)["message"] == message


def test_a_body_that_does_not_decompress_is_a_parse_error(http: httpx.Client) -> None:
    for encoding in ("gzip", "deflate"):
        response = http.post(
            "/v1/chat/completions",
            content=b"not compressed",
            headers={"content-encoding": encoding},
        )
        assert api_error(response, 400)["message"].startswith(COULD_NOT_PARSE)
        response = http.post(
            "/v1/conversations", content=b"not compressed", headers={"content-encoding": encoding}
        )
        assert api_error(response, 400)["message"].startswith(COULD_NOT_PARSE)
    compressed = gzip.compress(json.dumps(CHAT).encode())
    response = http.post(
        "/v1/chat/completions", content=compressed, headers={"content-encoding": "gzip"}
    )
    assert response.status_code == 200


def test_a_body_over_the_size_limit_is_a_413(
    monkeypatch: pytest.MonkeyPatch, watched: LogWatch
) -> None:
    monkeypatch.setattr(mockai.server.app, "MAX_BODY", 1000)
    with MockServer() as server, httpx.Client(base_url=server.base_url) as http:
        for path in ("/v1/chat/completions", "/v1/conversations", "/v1/models", "/_mockai/rules"):
            response = http.post(path, content=json.dumps({**CHAT, "x": "y" * 2000}).encode())
            assert response.status_code in (413, 405), (path, response.text)
            error = api_error(response, response.status_code)
            if response.status_code == 413:
                assert error["message"] == "Request body too large: the limit is 1000 bytes."
                assert error["code"] == "request_too_large"
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_undecodable_header_bytes_never_break_an_answer_or_the_journal(watched: LogWatch) -> None:
    body = json.dumps(CHAT).encode()
    with MockServer(require_api_key="sk-right-key-0000") as server:
        answer = whole_answer(
            server.port,
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xfdwrong-key\xff\r\n"
            b"X-Odd: caf\xe9\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body,
        )
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 401")
        message = json.loads(payload)["error"]["message"]
        assert message.startswith("Incorrect API key provided: \ufffd\ufffd\ufffd***key\ufffd.")
        entry = server.requests[-1]
        assert entry.body == CHAT  # parsed, although the request never got past the key check
        assert json.dumps(entry.as_json(), ensure_ascii=False).encode()
        assert entry.as_json()["headers"]["x-odd"] == "caf\ufffd"
        with httpx.Client() as http:
            assert http.get(server.url_for("/_mockai/requests")).status_code == 200


# Bytes aiohttp's parser refuses before any handler runs.
UNPARSABLE = {
    "a header line over 64 KiB": b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Big: "
    + b"a" * 70000
    + b"\r\nContent-Length: 2\r\n\r\n{}",
    "a chunk size that is not hex": b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "two Content-Lengths": b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "a header name with a space": b"GET /v1/models HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
    "a method with a space": b"PO ST /v1/models HTTP/1.1\r\nHost: x\r\n\r\n",
    "a TLS hello on the plain port": bytes.fromhex("16030100a5010000a10303") + bytes(60),
    "HTTP/2's preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}


@pytest.mark.parametrize("raw", UNPARSABLE.values(), ids=UNPARSABLE.keys())
def test_a_request_aiohttp_cannot_parse_is_the_apis_400(raw: bytes, watched: LogWatch) -> None:
    """Not aiohttp's text/plain page and an ERROR-level traceback in the log (`watched`): the
    API's error shape, a request id, the connection closed; the server answers on."""
    with MockServer() as server:
        answer = whole_answer(server.port, raw)  # (reads until the server closes)
        head, _, payload = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].split()[1] == "400", lines[0]
        headers = dict(line.split(": ", 1) for line in lines[1:])
        assert headers["Content-Type"] == "application/json"
        assert headers["x-request-id"].startswith("req_")
        error = json.loads(payload)["error"]
        assert set(error) == ERROR_KEYS and error["type"] == "invalid_request_error"
        assert error["message"].startswith("Invalid HTTP request: ")
        with httpx.Client() as http:
            assert http.post(server.url + "/chat/completions", json=CHAT).status_code == 200


def test_the_sdk_reads_an_oversized_header_as_a_bad_request(watched: LogWatch) -> None:
    with (
        MockServer() as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
        pytest.raises(openai.BadRequestError) as raised,
    ):
        client.chat.completions.create(**CHAT, extra_headers={"x-big": "a" * 70000})
    assert raised.value.message.startswith(
        "Error code: 400 - Invalid HTTP request: the request line or a header is longer than"
    )


# --- the journal ---------------------------------------------------------------------------------


def test_the_journal_survives_deep_bodies_401s_and_odd_strings(watched: LogWatch) -> None:
    with (
        MockServer(require_api_key="sk-right-key-0000") as server,
        httpx.Client(base_url=server.base_url) as http,
    ):
        key = {"authorization": "Bearer sk-right-key-0000"}
        http.post("/v1/chat/completions", content=b"[" * 5000 + b"]" * 5000, headers=key)
        http.post("/v1/chat/completions", json=CHAT)  # no key: a 401, body unread by the pipeline
        http.post("/v1/models", content=b"\xff\xfe not json", headers=key)  # (no body there)
        http.post("/v1/chat/completions", content=b'{"a": "\\ud800"}', headers=key)
        http.get("/_mockai/requests?limit=\u00b2")  # (a digit to str.isdigit, not to int)
        listed = http.get("/_mockai/requests")
        assert listed.status_code == 200
        bodies = [entry["body"] for entry in listed.json()["data"]]
        assert bodies[0] == "[" * 5000 + "]" * 5000
        assert bodies[1] == CHAT
        assert bodies[2] == "\ufffd\ufffd not json"
        assert bodies[3] == '{"a": "\\ud800"}'
        assert [e["status"] for e in listed.json()["data"][:4]] == [400, 401, 405, 400]
        for entry in server.requests:
            assert not isinstance(entry.body, bytes)
            json.dumps(entry.as_json(), ensure_ascii=False).encode()
