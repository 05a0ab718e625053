"""Conformance: what mockai sends validates against the official OpenAPI spec.

Every `server` fixture and `checked_server()` in the suite validates all its answers on teardown;
this module makes sure that net is wide (every endpoint, JSON and stream, each option that changes
the shape) and that it would catch a broken answer.
"""

from __future__ import annotations

from typing import Any

import conformance
import httpx
import pytest
from conformance import checked_server

from mockai.pipeline.journal import JournalEntry

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string"}},
                "required": ["q"],
            },
        },
    }
]
MESSAGES = [{"role": "user", "content": "lookup json please"}]
SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}},
    "required": ["a"],
    "additionalProperties": False,
}

MATRIX: list[tuple[str, dict[str, Any]]] = [
    ("/chat/completions", {"model": "m", "messages": MESSAGES}),
    (
        "/chat/completions",
        {"model": "m", "messages": MESSAGES, "n": 2, "logprobs": True, "top_logprobs": 2},
    ),
    (
        "/chat/completions",
        {"model": "m", "messages": MESSAGES, "tools": TOOLS, "tool_choice": "required"},
    ),
    (
        "/chat/completions",
        {"model": "m", "messages": MESSAGES, "response_format": {"type": "json_object"}},
    ),
    (
        "/chat/completions",
        {
            "model": "m",
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ),
    (
        "/chat/completions",
        {"model": "m", "messages": MESSAGES, "stream": True, "n": 2, "logprobs": True},
    ),
    (
        "/chat/completions",
        {
            "model": "m",
            "messages": MESSAGES,
            "stream": True,
            "tools": TOOLS,
            "tool_choice": "required",
        },
    ),
    ("/completions", {"model": "m", "prompt": ["a", "b"], "n": 2, "echo": True, "logprobs": 1}),
    (
        "/completions",
        {"model": "m", "prompt": "a", "stream": True, "stream_options": {"include_usage": True}},
    ),
    (
        "/embeddings",
        {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "float"},
    ),
    ("/responses", {}),
    ("/responses", {"model": "m", "input": "hi", "instructions": "x", "top_logprobs": 2}),
    ("/responses", {"model": "m", "input": "hi", "stream": True}),
    (
        "/responses",
        {
            "model": "m",
            "input": "lookup",
            "stream": True,
            "tools": [{"type": "function", "name": "lookup", "parameters": SCHEMA}],
        },
    ),
    (
        "/responses",
        {
            "model": "m",
            "input": "hi",
            "text": {"format": {"type": "json_schema", "name": "x", "schema": SCHEMA}},
        },
    ),
    ("/responses", {"model": "m", "input": "hi", "max_output_tokens": 16, "stream": True}),
    ("/moderations", {"input": ["I will kill you", "hello"]}),
]


def test_every_shape_validates() -> None:
    with checked_server() as server, httpx.Client(base_url=server.url) as http:
        for path, body in MATRIX:
            assert http.post(path, json=body).status_code == 200, (path, body)
        http.get("/models")
        http.get("/models/gpt-4o")
        http.delete("/models/ft:gpt-4o:x")
        http.post("/chat/completions", json={"model": "m"})
        validated = sum(conformance.check_entry(e) for e in server.requests)
    # Streams count one per chunk/event: far more objects than requests were checked.
    assert validated > 200


def _entry(server: Any, path: str, body: dict[str, Any]) -> JournalEntry:
    httpx.post(server.url + path, json=body)
    return server.requests[-1]


@pytest.mark.parametrize(
    ("path", "body", "corrupt"),
    [
        ("/chat/completions", {"model": "m", "messages": MESSAGES}, b'"object":"chat.completion"'),
        (
            "/chat/completions",
            {"model": "m", "messages": MESSAGES, "stream": True},
            b'"object":"chat.completion.chunk"',
        ),
        ("/responses", {"model": "m", "input": "x", "stream": True}, b'"sequence_number":'),
        ("/images/generations", {"prompt": "x", "size": "256x256"}, b'"created":'),
        (
            "/images/generations",
            {"model": "gpt-image-1", "prompt": "x", "stream": True, "partial_images": 1},
            b'"partial_image_index":',
        ),
        (
            "/audio/speech",
            {"model": "gpt-4o-mini-tts", "voice": "alloy", "input": "x", "stream_format": "sse"},
            b'"audio":',
        ),
    ],
)
def test_the_checker_catches_a_broken_answer(
    path: str, body: dict[str, Any], corrupt: bytes
) -> None:
    with checked_server() as server:
        entry = _entry(server, path, body)
        assert conformance.check_entry(entry) >= 1
        broken = entry.response
        assert broken is not None
        if hasattr(broken, "body"):
            entry.response = type(broken)(
                broken.status, broken.body.replace(corrupt, b'"object":7')
            )
        else:  # rename the key: still JSON, no longer what the spec requires
            frames = [f.replace(corrupt, b'"renamed_' + corrupt[1:]) for f in broken.frames]
            entry.response = type(broken)(frames=frames, tail=broken.tail)
        with pytest.raises(AssertionError):
            conformance.check_entry(entry)
        server.reset()  # the deliberately broken copy must not reach the teardown check


@pytest.mark.parametrize(
    ("route", "corrupt"),
    [("/files", b'"bytes":'), ("/audio/transcriptions", b'"text":')],
)
def test_the_checker_catches_broken_store_and_transcription_answers(
    route: str, corrupt: bytes
) -> None:
    with checked_server() as server:
        fields = {"purpose": "user_data"} if route == "/files" else {"model": "whisper-1"}
        name = "a.txt" if route == "/files" else "a.mp3"  # (a recording is known by its name)
        httpx.post(server.url + route, data=fields, files={"file": (name, b"abc")})
        entry = server.requests[-1]
        assert conformance.check_entry(entry) == 1
        broken = entry.response
        assert broken is not None and hasattr(broken, "body")
        entry.response = type(broken)(broken.status, broken.body.replace(corrupt, b'"x":'))
        with pytest.raises(AssertionError):
            conformance.check_entry(entry)
        server.reset()


def test_vendored_spec_is_the_official_file() -> None:
    import hashlib

    digest = hashlib.sha256(conformance.SPEC_PATH.read_bytes()).hexdigest()
    assert digest == "bbfd19abcde0e7412da99378deb2a959ccdd3a812f97c9e35901921e8e973f9a"


def test_spec_field_table_is_up_to_date() -> None:
    import importlib.util
    import json
    from pathlib import Path

    script = Path(__file__).parents[1] / "scripts" / "gen_spec_fields.py"
    spec = importlib.util.spec_from_file_location("gen_spec_fields", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = module.generate(json.loads(conformance.SPEC_PATH.read_text()))
    namespace: dict[str, Any] = {}
    exec(compile(generated, "generated", "exec"), namespace)
    from mockai.api.spec_fields import FIELDS

    assert namespace["FIELDS"] == FIELDS
