"""Hostile bytes that got past the first line of defence: integer literals past a double's range,
header values that are not UTF-8, compressed bodies that do not decompress, and which enums are
checked without `--strict-requests` (docs/design.md, "Request validation" and "Hostile input").
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conformance import checked_server
from hypothesis import given, settings
from hypothesis import strategies as st
from raw_http import whole_answer

from mockai import MockServer
from mockai.wire import jsonbytes

DOUBLE_MAX = int(sys.float_info.max)
COULD_NOT_PARSE = "We could not parse the JSON body of your request."
MESSAGES = [{"role": "user", "content": "hi"}]
DESIGN = Path(__file__).resolve().parent.parent / "docs" / "design.md"


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    """One lenient server for the module (no `--strict-requests`)."""
    with checked_server() as running:
        yield running


@pytest.fixture(scope="module")
def http(server: MockServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


def _error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


# --- 1. integers past a double ------------------------------------------------------------------

# Any size, weighted to the edges: past the largest double (1 followed by 309 zeros), just
# around it, and what fits in 64 bits.
_HUGE = st.integers(min_value=DOUBLE_MAX - 2**971, max_value=10**400)
INTEGERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    _HUGE,
    _HUGE.map(lambda n: -n),
    st.sampled_from([DOUBLE_MAX, DOUBLE_MAX + 1, 2**1024 - 2**970 - 1, 2**1024, 10**309]),
)


def _json_values(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaf,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=6,
    )


@given(_json_values(INTEGERS | st.text(max_size=4) | st.booleans() | st.none()))
def test_loads_refuses_exactly_the_integers_past_a_double(value: Any) -> None:
    text = json.dumps(value)
    if any(abs(number) > DOUBLE_MAX for number in _integers_in(value)):
        with pytest.raises(ValueError, match="number out of range"):
            jsonbytes.loads(text)
        with pytest.raises(ValueError, match="number out of range"):
            jsonbytes.loads(text.encode())
    else:  # read exactly, past 64 bits too
        assert jsonbytes.loads(text) == value
        assert jsonbytes.loads(text.encode()) == value


def _integers_in(value: Any) -> Iterator[int]:
    if isinstance(value, int):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _integers_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _integers_in(item)


def _schema_bound(key: str) -> Callable[[int], tuple[str, dict[str, Any]]]:
    def body(number: int) -> tuple[str, dict[str, Any]]:
        schema = {"type": "object", "properties": {"a": {"type": "number", key: number}}}
        schema["required"] = ["a"]
        fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
        return "/v1/chat/completions", {
            "model": "gpt-4o",
            "messages": MESSAGES,
            "response_format": fmt,
        }

    return body


def _field(
    path: str, base: dict[str, Any], name: str
) -> Callable[[int], tuple[str, dict[str, Any]]]:
    return lambda number: (path, {**base, name: number})


_CHAT = {"model": "gpt-4o", "messages": MESSAGES}
# Numeric fields of every kind of endpoint, each of which met a double somewhere.
PLACES = [
    *(
        _field("/v1/chat/completions", _CHAT, name)
        for name in ("temperature", "n", "top_logprobs", "max_completion_tokens", "seed")
    ),
    lambda number: ("/v1/chat/completions", {**_CHAT, "logit_bias": {"50256": number}}),
    _field("/v1/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "hi"}, "logprobs"),
    _field("/v1/responses", {"model": "gpt-4o", "input": "hi"}, "top_logprobs"),
    _field("/v1/responses", {"model": "gpt-4o", "input": "hi"}, "max_output_tokens"),
    _field("/v1/embeddings", {"model": "text-embedding-3-small", "input": "hi"}, "dimensions"),
    _field("/v1/audio/speech", {"model": "tts-1", "input": "hi", "voice": "alloy"}, "speed"),
    _field("/v1/images/generations", {"model": "dall-e-2", "prompt": "x"}, "n"),
    _field("/v1/images/generations", {"model": "gpt-image-1", "prompt": "x"}, "output_compression"),
    _schema_bound("maximum"),
    _schema_bound("minimum"),
]


@settings(max_examples=60)
@given(place=st.sampled_from(PLACES), number=INTEGERS, negate=st.booleans())
def test_an_integer_of_any_size_anywhere_is_answered_or_refused_never_a_500(
    http: httpx.Client,
    place: Callable[[int], tuple[str, dict[str, Any]]],
    number: int,
    negate: bool,
) -> None:
    path, body = place(-number if negate else number)
    response = http.post(
        path, content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code in (200, 400), response.text
    if any(abs(n) > DOUBLE_MAX for n in _integers_in(body)):
        assert _error(response)["message"].startswith(COULD_NOT_PARSE)


def test_the_integers_of_the_report_are_the_invalid_json_400(http: httpx.Client) -> None:
    big = "1" + "0" * 309  # no double holds it, as no double holds 1e309
    for literal in (big, "-" + big, "1e309"):
        text = f'{{"model":"gpt-4o","messages":{json.dumps(MESSAGES)},"temperature":{literal}}}'
        response = http.post(
            "/v1/chat/completions", content=text, headers={"content-type": "application/json"}
        )
        assert _error(response)["message"].startswith(COULD_NOT_PARSE)


# --- 2. header values that are not UTF-8 --------------------------------------------------------


def _with_header(name: bytes, value: bytes) -> bytes:
    body = json.dumps(_CHAT).encode()
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\n" + name + b": " + value + b"\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )


HEADERS = [b"x-mockai-fault", b"x-mockai-latency", b"x-mockai-stream"]


@pytest.mark.parametrize("name", HEADERS)
def test_an_undecodable_header_is_quoted_with_replacement_characters(
    server: MockServer, name: bytes
) -> None:
    answer = whole_answer(server.port, _with_header(name, b"\xff\xfe"))
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    message = json.loads(payload)["error"]["message"]
    assert message.startswith(f"Invalid {name.decode()} header '\ufffd\ufffd': ")
    assert "\\udc" not in message


# Header bytes that HTTP lets through (no control characters but tab: aiohttp's parser refuses
# those, an answer of server/unreadable.py's), with at least one byte that is not UTF-8.
_CONTROLS = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])
HEADER_BYTES = st.tuples(
    st.binary(max_size=12), st.integers(0x80, 0xFF), st.binary(max_size=12)
).map(lambda parts: (parts[0] + bytes([parts[1]]) + parts[2]).translate(None, _CONTROLS))


@settings(max_examples=40)
@given(name=st.sampled_from(HEADERS), value=HEADER_BYTES)
def test_any_header_bytes_give_a_utf8_message_without_python_escapes(
    server: MockServer, name: bytes, value: bytes
) -> None:
    answer = whole_answer(server.port, _with_header(name, value))
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer
    message = json.loads(payload.decode("utf-8"))["error"]["message"]  # (strict UTF-8)
    assert "\\udc" not in message and "\\x" not in message, message


# --- 3. bodies that do not decompress -----------------------------------------------------------


def _answer_then_eof(port: int, coding: bytes, body: bytes) -> bytes:
    """The answer to a keep-alive request with `body` in `coding`; fails unless the server then
    closes the connection (within the socket's timeout)."""
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Encoding: " + coding + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    try:
        return whole_answer(port, head + body, timeout=5)
    except TimeoutError:
        pytest.fail(f"{coding!r}: the connection stayed open after the answer")


CHAT_BYTES = json.dumps(_CHAT).encode()


def _brotli(data: bytes) -> bytes:
    brotli = pytest.importorskip("brotli")
    compressed: bytes = brotli.compress(data)
    return compressed


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        (b"gzip", lambda: b"abcd"),  # corrupt: aiohttp's decoder fails (closed before too)
        (b"br", lambda: b"abcd"),  # a brotli decoder waiting for more: nothing decoded
        (b"br", lambda: _brotli(CHAT_BYTES)[:-4]),  # cut short
        (b"gzip", lambda: gzip.compress(CHAT_BYTES)[:30]),  # cut short: a prefix of the JSON
        (b"foo", lambda: b"abcd"),  # a coding nothing here decodes
        (b"foo", lambda: CHAT_BYTES),  # ... whatever the bytes
    ],
    ids=["gzip-corrupt", "br-garbage", "br-truncated", "gzip-truncated", "foo", "foo-json"],
)
def test_a_body_that_does_not_decompress_is_the_400_and_closes(
    server: MockServer, coding: bytes, body: Callable[[], bytes]
) -> None:
    answer = _answer_then_eof(server.port, coding, body())
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer
    assert json.loads(payload)["error"]["message"].startswith(COULD_NOT_PARSE)


def test_a_body_that_decompresses_keeps_the_connection(server: MockServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for coding, data in [("gzip", gzip.compress(CHAT_BYTES)), ("br", _brotli(CHAT_BYTES))]:
            headers = {"content-encoding": coding, "content-type": "application/json"}
            response = client.post("/v1/chat/completions", content=data, headers=headers)
            assert response.status_code == 200, response.text
            assert response.headers.get("connection", "").lower() != "close"


def test_a_coding_header_without_a_body_is_no_undecodable_body(server: MockServer) -> None:
    """A client whose defaults name a coding sends it on GETs and bodiless POSTs too: no body
    was sent, so there is nothing that did not decompress."""
    headers = {"content-encoding": "gzip"}
    with httpx.Client(base_url=server.base_url, timeout=10, headers=headers) as client:
        assert client.get("/v1/models").status_code == 200
        made = client.post(
            "/v1/responses",
            content=gzip.compress(json.dumps({"model": "gpt-4o", "input": "x"}).encode()),
            headers={"content-type": "application/json"},
        )
        assert made.status_code == 200, made.text
        listed = client.get(f"/v1/responses/{made.json()['id']}/input_items")
        assert listed.status_code == 200, listed.text
        assert client.delete(f"/v1/responses/{made.json()['id']}").status_code == 200
        assert client.delete("/v1/responses/resp_unknown").status_code == 404


# --- 4. the enums checked without --strict-requests ---------------------------------------------

_IMAGE = {"prompt": "x"}
_SPEECH = {"model": "tts-1", "input": "x", "voice": "alloy"}
_RESPONSE = {"model": "gpt-4o", "input": "x"}
_TOOL = {
    "type": "function",
    "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
}
# Each enum docs/design.md lists as checked either way: (its name there, the request, the
# param of the API's 400).
ALWAYS_CHECKED: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "encoding_format",
        "/v1/embeddings",
        {"model": "text-embedding-3-small", "input": "x", "encoding_format": "hex"},
        "encoding_format",
    ),
    (
        "quality",
        "/v1/images/generations",
        {**_IMAGE, "model": "dall-e-3", "quality": "ultra"},
        "quality",
    ),
    ("size", "/v1/images/generations", {**_IMAGE, "model": "dall-e-3", "size": "7x7"}, "size"),
    (
        "output_format",
        "/v1/images/generations",
        {**_IMAGE, "model": "gpt-image-1", "output_format": "gif"},
        "output_format",
    ),
    (
        "response_format",
        "/v1/images/generations",
        {**_IMAGE, "model": "dall-e-3", "response_format": "png"},
        "response_format",
    ),
    (
        "response_format",
        "/v1/audio/speech",
        {**_SPEECH, "response_format": "ogg"},
        "response_format",
    ),
    ("voice", "/v1/audio/speech", {**_SPEECH, "voice": "bob"}, "voice"),
    (
        "response_format.type",
        "/v1/chat/completions",
        {**_CHAT, "response_format": {"type": "xml"}},
        "response_format.type",
    ),
    (
        "text.format.type",
        "/v1/responses",
        {**_RESPONSE, "text": {"format": {"type": "xml"}}},
        "text.format.type",
    ),
    (
        "tool_choice",
        "/v1/chat/completions",
        {**_CHAT, "tools": [_TOOL], "tool_choice": "sometimes"},
        "tool_choice",
    ),
    (
        "messages[].role",
        "/v1/chat/completions",
        {"model": "gpt-4o", "messages": [{"role": "wizard", "content": "x"}]},
        "messages[0].role",
    ),
    ("type", "/v1/responses", {**_RESPONSE, "input": [{"type": "spell"}]}, "input[0].type"),
    (
        "role",
        "/v1/responses",
        {**_RESPONSE, "input": [{"role": "wizard", "content": "x"}]},
        "input[0].role",
    ),
    (
        "type",
        "/v1/responses",
        {
            **_RESPONSE,
            "input": [{"role": "user", "content": [{"type": "input_smell", "text": "x"}]}],
        },
        "input[0].content[0].type",
    ),
    (
        "tools[].type",
        "/v1/responses",
        {**_RESPONSE, "tools": [{"type": "teleport"}]},
        "tools[0].type",
    ),
    (
        "type",
        "/v1/moderations",
        {"model": "omni-moderation-latest", "input": [{"type": "smell", "text": "x"}]},
        "input[0].type",
    ),
    (
        "completion_window",
        "/v1/batches",
        {"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "1h"},
        "completion_window",
    ),
]


def _validation_paragraph() -> str:
    text = DESIGN.read_text()
    start = text.index("## Request validation")
    return text[start : text.index("\n## ", start + 1)]


def test_the_design_lists_the_enums_checked_without_strict_requests() -> None:
    paragraph = _validation_paragraph()
    for listed, *_ in ALWAYS_CHECKED:
        assert f"`{listed}`" in paragraph, listed
    for listed in ("purpose", "timestamp_granularities"):  # (forms: tested below)
        assert f"`{listed}`" in paragraph, listed


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [case[1:] for case in ALWAYS_CHECKED],
    ids=[case[3] for case in ALWAYS_CHECKED],
)
def test_an_enum_the_answer_is_built_from_is_checked_without_strict_requests(
    http: httpx.Client, path: str, body: dict[str, Any], param: str
) -> None:
    error = _error(http.post(path, json=body))
    assert error["param"] == param and error["code"] == "invalid_value", error


def test_the_form_enums_are_checked_without_strict_requests(http: httpx.Client) -> None:
    files = {"file": ("a.jsonl", b"{}\n")}
    error = _error(http.post("/v1/files", files=files, data={"purpose": "homework"}))
    assert error["param"] == "purpose"
    fields = {"model": "whisper-1", "response_format": "verbose_json"}
    fields["timestamp_granularities[]"] = "sentence"
    audio = {"file": ("a.wav", b"RIFF")}
    error = _error(http.post("/v1/audio/transcriptions", files=audio, data=fields))
    assert error["param"] == "timestamp_granularities"


def test_other_enums_pass_without_strict_requests(http: httpx.Client) -> None:
    for path, body in [
        ("/v1/chat/completions", {**_CHAT, "model": "o3", "reasoning_effort": "ultra"}),
        ("/v1/chat/completions", {**_CHAT, "service_tier": "platinum"}),
        ("/v1/responses", {**_RESPONSE, "truncation": "sometimes"}),
    ]:
        assert http.post(path, json=body).status_code == 200, body
    # A voice the OpenAI TTS models lack is refused (above); another model takes any voice.
    response = http.post("/v1/audio/speech", json={**_SPEECH, "model": "kokoro", "voice": "bob"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("audio/")
