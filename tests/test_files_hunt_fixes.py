"""Batches, files and cassette files: what a bug hunt found wrong, each kept fixed by a test.

- a batch line is read as the server reads a request's body: a line it would refuse alone (a
  lone surrogate, NaN, nesting 100,000 levels deep) fails validation as `invalid_json_line`,
  rather than a 500 on every retrieval or an answer the request alone never gets;
- the 1,001st batch never forgets a batch that has not ended: it is refused while none has;
- a JSON cassette holding a character beyond the BMP (`\\ud83d\\ude00`) reports its problems on
  their own lines, not all at line 1;
- a JSON cassette's `mockai.base64` marker that is not a list of sides is refused by
  `mockai check` and at startup, rather than an MP3 replayed as its base64 text;
- `GET /files` filters by every purpose a file can have (`fine-tune-results` too).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conformance import checked_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk import sdk
from strategies import texts

from mockai import MockServer
from mockai.api import batches as batch_codec
from mockai.cassette.check import check_cassette
from mockai.cli import main
from mockai.errors import CassetteError
from mockai.wire import jsonbytes

PARSE_ERROR = "We could not parse the JSON body of your request."


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    """One generating server for the module's batch and file tests."""
    with checked_server(fallback="generate") as server:
        yield server


def chat_body(extra: str = "", content: str = '"hi"') -> str:
    """A chat request's JSON text, `extra` (raw JSON members, each ending in a comma) first."""
    return (
        "{"
        + extra
        + '"model":"gpt-4o-mini","messages":[{"role":"user","content":'
        + content
        + "}]}"
    )


def line_text(custom_id: str, body: str) -> str:
    head = '"method":"POST","url":"/v1/chat/completions","body":'
    return '{"custom_id":"' + custom_id + '",' + head + body + "}"


def create(client: openai.OpenAI, data: bytes) -> Any:
    upload = client.files.create(file=("requests.jsonl", data), purpose="batch")
    return client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )


# --- a batch line the endpoint refuses alone -----------------------------------------------------

HOSTILE = {
    "lone surrogate": chat_body(content='"hi \\ud800 there"'),
    "NaN": chat_body('"temperature":NaN,'),
    "a number no double holds": chat_body('"temperature":1e999,'),
    "100,000 levels": chat_body('"metadata":' + "[" * 100_000 + "]" * 100_000 + ","),
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_line_refused_alone_fails_validation_as_invalid_json_line(
    server: MockServer, body: str
) -> None:
    alone = httpx.post(
        f"{server.url}/chat/completions",
        content=body.encode(),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert alone.status_code == 400 and PARSE_ERROR in alone.json()["error"]["message"]
    data = "\n".join([line_text("fine", chat_body()), line_text("hostile", body)]).encode()
    with sdk(server) as client:
        batch = create(client, data)
        batch = client.batches.retrieve(batch.id)  # (a 500 here, every time, before the fix)
        assert batch.status == "failed"
        assert batch.errors is not None
        assert [(e.code, e.line, e.message) for e in batch.errors.data] == [
            ("invalid_json_line", 2, "This line is not parseable as valid JSON.")
        ]
        assert client.batches.retrieve(batch.id).status == "failed"


_SURROGATES = st.sampled_from([chr(0xD800), chr(0xDBFF), chr(0xDC00), chr(0xDFFF)])
_CONTENTS = st.lists(st.one_of(texts(max_size=6), _SURROGATES), max_size=4).map("".join)
_TEMPERATURES = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@given(content=_CONTENTS, temperature=_TEMPERATURES, junk=texts(max_size=30))
@settings(max_examples=100, deadline=None)
def test_a_batch_takes_exactly_the_lines_whose_body_the_endpoint_reads_alone(
    content: str, temperature: float | None, junk: str
) -> None:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": content}]}
    if temperature is not None:
        body["temperature"] = temperature
    body_text = json.dumps(body)  # (NaN, Infinity and lone surrogates' escapes, as Python writes)
    line = {"custom_id": "c", "method": "POST", "url": "/v1/chat/completions", "body": "BODY"}
    text = json.dumps(line).replace('"BODY"', body_text)
    try:
        jsonbytes.loads(body_text)  # how the endpoint reads the same body sent alone
        alone = True
    except ValueError:
        alone = False
    data = (junk.replace("\n", " ") + "\n" + text).encode()
    lines, errors = batch_codec.read_lines(data, "/v1/chat/completions")
    taken = [line for line in lines if line.number == 2]
    assert bool(taken) == alone
    if taken:
        assert taken[0].body == json.loads(body_text)  # (an escaped pair is one character)
        jsonbytes.dumps(taken[0].body).decode("utf-8")  # fingerprinted and journaled as is
        assert temperature is None or math.isfinite(temperature)
    else:
        assert {"code": "invalid_json_line", "line": 2} in [
            {"code": e["code"], "line": e["line"]} for e in errors
        ]


# --- the batch store's bound ---------------------------------------------------------------------


def test_the_1001st_batch_is_refused_while_no_batch_has_ended() -> None:
    line = line_text("q0", chat_body()).encode()
    with MockServer(log_requests=False) as server, sdk(server) as client:
        upload = client.files.create(file=("in.jsonl", line), purpose="batch")
        create_body = {
            "input_file_id": upload.id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        }
        first = client.batches.create(**create_body)
        client.batches.retrieve(first.id)  # in_progress
        assert client.batches.retrieve(first.id).status == "finalizing"  # its answers held
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for _ in range(999):
                assert http.post("/batches", json=create_body).status_code == 200
            refused = http.post("/batches", json=create_body)
            assert refused.status_code == 400
            assert refused.json()["error"]["code"] == "mockai_storage_full"
            assert "at most 1000 batches" in refused.json()["error"]["message"]
            ended = client.batches.retrieve(first.id)  # still held, answers and all
            assert ended.status == "completed" and ended.output_file_id is not None
            assert http.post("/batches", json=create_body).status_code == 200
            # The room was made by forgetting the one batch that had ended.
            assert http.get(f"/batches/{first.id}").status_code == 404
            assert len(http.get("/batches", params={"limit": 100}).json()["data"]) == 100
        assert client.files.content(ended.output_file_id).text.count("\n") == 1


# --- JSON cassettes: lines -----------------------------------------------------------------------


def _interaction(uri: str, request_body: str, response_body: str, status: int) -> dict[str, Any]:
    return {
        "request": {
            "method": "POST",
            "uri": uri,
            "body": request_body,
            "headers": {"Content-Type": ["text/plain"]},
        },
        "response": {
            "status": {"code": status, "message": "OK"},
            "headers": {"Content-Type": ["text/plain"]},
            "body": {"string": response_body},
        },
    }


PLANTED = "https://api.openai.com/v1/planted"


def _planted_line(text: str) -> int:
    """The line of the planted interaction's `{` (its `uri` is the third line inside it)."""
    for number, line in enumerate(text.split("\n"), start=1):
        if f'"uri": "{PLANTED}"' in line:
            return number - 3
    raise AssertionError("no planted interaction")


def test_mockai_check_names_the_line_in_a_json_cassette_holding_an_emoji(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = _interaction("https://api.openai.com/v1/files", "hello \U0001f600", "hi \U0001f600", 200)
    bad = _interaction(PLANTED, "x", "y", 4290)
    path = tmp_path / "emoji.json"
    text = json.dumps({"version": 1, "interactions": [ok, ok, ok, bad]}, indent=2)
    path.write_text(text, encoding="utf-8")
    assert "\\ud83d\\ude00" in text
    assert main(["check", str(path)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{path}:{_planted_line(text)}: interaction 3: response status 4290 is not an HTTP status"
    )


@given(
    bodies=st.lists(st.tuples(texts(), texts()), max_size=3),
    before=st.integers(0, 3),
    ascii_only=st.booleans(),
    indent=st.sampled_from([1, 2, 4, "\t"]),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_json_cassette_s_problem_is_reported_on_its_line_whatever_its_bodies_hold(
    tmp_path_factory: pytest.TempPathFactory,
    bodies: list[tuple[str, str]],
    before: int,
    ascii_only: bool,
    indent: int | str,
) -> None:
    fine = [_interaction("https://api.openai.com/v1/x", q, a, 200) for q, a in bodies]
    planted = _interaction(PLANTED, *(bodies[0] if bodies else ("", "")), 4290)
    at = min(before, len(fine))
    interactions = [*fine[:at], planted, *fine[at:]]
    text = json.dumps(
        {"version": 1, "interactions": interactions}, indent=indent, ensure_ascii=ascii_only
    )
    path = tmp_path_factory.mktemp("cassettes") / "c.json"
    problems = [p for p in check_cassette(path, text) if "4290" in p.message]
    assert [(p.line, p.message) for p in problems] == [
        (_planted_line(text), f"interaction {at}: response status 4290 is not an HTTP status")
    ]


# --- JSON cassettes: the base64 marker -----------------------------------------------------------

MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xf3\x84\xc4"


def _speech_cassette(path: Path, marker: Any) -> Path:
    interaction = _interaction(
        "https://api.openai.com/v1/audio/speech",
        '{"model":"gpt-4o-mini-tts","input":"Hi","voice":"coral"}',
        base64.b64encode(MP3).decode(),
        200,
    )
    interaction["request"]["headers"] = {"Content-Type": ["application/json"]}
    interaction["response"]["headers"] = {"Content-Type": ["audio/mpeg"]}
    interaction["response"]["mockai"] = {"base64": marker}
    path.write_text(json.dumps({"version": 1, "interactions": [interaction]}, indent=2))
    return path


MARKER_PROBLEM = 'interaction 0: mockai.base64 must be a list of "request"/"response"'
BAD_MARKERS = {"misspelt": ["responze"], "a string": "response", "null": None, "a number": [1]}


def test_mockai_check_refuses_a_bad_base64_marker_on_its_interaction_s_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _speech_cassette(tmp_path / "good.json", ["response"])
    bad = [
        _speech_cassette(tmp_path / f"bad{i}.json", m) for i, m in enumerate(BAD_MARKERS.values())
    ]
    assert main(["check", str(good), *map(str, bad)]) == 1
    # (The interaction's `{` is line 4: `{`, `"version": 1,`, `"interactions": [`.)
    assert capsys.readouterr().err.splitlines()[:-1] == [
        f"{path}:4: {MARKER_PROBLEM}" for path in bad
    ]


@pytest.mark.parametrize("marker", BAD_MARKERS.values(), ids=BAD_MARKERS.keys())
def test_a_server_does_not_start_on_a_bad_base64_marker(tmp_path: Path, marker: Any) -> None:
    path = _speech_cassette(tmp_path / "speech.json", marker)
    with pytest.raises(CassetteError) as refused, MockServer(cassette=path):
        pass
    assert str(refused.value) == f"{path}:4: {MARKER_PROBLEM}"


# --- GET /files ----------------------------------------------------------------------------------


def test_files_list_by_fine_tune_results_as_by_every_purpose_a_file_can_have(
    server: MockServer,
) -> None:
    with sdk(server) as client:
        assert client.files.list(purpose="fine-tune-results").data == []
    refused = httpx.get(f"{server.url}/files", params={"purpose": "fine-tune-result"}, timeout=10)
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert "'batch_output'" in message and "'fine-tune-results'" in message
