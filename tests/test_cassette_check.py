"""`mockai check` on cassettes: every problem as `file:line: what is wrong`."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import pytest

from mockai.check import check_paths
from mockai.cli import main

GOOD = """\
interactions:
- request:
    body: '{"model":"m","input":"x"}'
    headers:
      Content-Type: [application/json]
    method: POST
    uri: https://api.openai.com/v1/embeddings
  response:
    body: {string: '{"object":"list","data":[],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}'}
    headers:
      Content-Type: [application/json]
    status: {code: 200, message: OK}
version: 1
"""

STREAM = """\
interactions:
- request:
    body: '{"model":"m","stream":true,"messages":[]}'
    headers: {}
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body: {string: "data: {\\"a\\":1}\\n\\ndata: not json\\n\\ndata: [DONE]"}
    headers:
      Content-Type: [text/event-stream]
    mockai: {events: [0.1, 0.05]}
    status: {code: 200, message: OK}
version: 1
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def messages(paths: list[str]) -> list[str]:
    return [str(problem) for problem in check_paths(paths)]


def test_a_valid_cassette_has_no_problems(tmp_path: Path) -> None:
    assert messages([write(tmp_path, "ok.yaml", GOOD)]) == []


def test_stream_problems_are_reported_on_their_interaction(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", STREAM)
    assert messages([path]) == [
        f"{path}:2: interaction 0: mockai.events has 2 offsets for 3 events (replay will not be paced)",
        f"{path}:2: interaction 0: stream event 1 is not JSON: 'not json'",
        f"{path}:2: interaction 0: the stream's last event does not end with a blank line (the Python SDK drops it)",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("version: 1", "version: 3"), ":13: cassette format version 3 is not supported"),
        (
            ("    status: {code: 200", "    status: {code: 1200"),
            ":2: interaction 0: response status 1200 is not an HTTP status",
        ),
        (('"usage":{', '"usage":'), ":2: interaction 0: response body is not valid JSON"),
        (("    method: POST", "    method: [POST"), ":7: not a valid cassette"),
        (
            (
                "      Content-Type: [application/json]\n    method",
                "      Authorization: [Basic dXNlcjpzM2NyZXQtcGFzcw==]\n    method",
            ),
            ":5: interaction 0: request.headers.Authorization: credential headers are never stored",
        ),
        (
            (
                "      Content-Type: [application/json]\n    status",
                '      Content-Type: [application/json]\n      x-note: ["one\\ntwo"]\n    status',
            ),
            (
                ":2: interaction 0: response header x-note must be one line of text, without "
                "line breaks or control characters: HTTP cannot send it (not replayed)"
            ),
        ),
        (
            (
                "      Content-Type: [application/json]\n    status",
                '      Content-Type: ["application/json\\r\\nx-a: b"]\n    status',
            ),
            (
                ":2: interaction 0: response header Content-Type must be one line of text, "
                "without line breaks or control characters: HTTP cannot send it (replayed as "
                "application/json)"
            ),
        ),
        (
            ('"input":"x"', '"input":"sk-proj-0123456789abcdefghijKLMNOP"'),
            ":3: interaction 0 request.body: an sk- API key (sk-pro... (34 chars)) must not be stored",
        ),
    ],
)
def test_problems_say_file_and_line(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    path = write(tmp_path, "bad.yaml", GOOD.replace(*change))
    found = messages([path])
    assert any(m.startswith(path + expected) for m in found), found


def test_a_secret_in_a_gzip_body_is_found_too(tmp_path: Path) -> None:
    packed = gzip.compress(b'{"echo": "sk-ant-api03-0123456789abcdefghij"}')
    path = write(
        tmp_path,
        "gz.yaml",
        GOOD.replace(
            '    body: {string: \'{"object":"list","data":[],"model":"m","usage":'
            '{"prompt_tokens":1,"total_tokens":1}}\'}',
            f"    body: {{string: !!binary '{base64.b64encode(packed).decode()}'}}",
        ).replace(
            "      Content-Type: [application/json]\n    status",
            "      Content-Encoding: [gzip]\n      Content-Type: [application/json]\n    status",
        ),
    )
    assert "!!binary" in Path(path).read_text()
    assert messages([path]) == [
        f"{path}:9: interaction 0: response.body: an sk- API key (sk-ant... (33 chars))"
    ]


def test_check_walks_folders_and_exits_1_on_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "ok.yaml", GOOD)
    bad = write(tmp_path, "bad.yaml", GOOD.replace("version: 1", "version: 2"))
    write(tmp_path, "notes.txt", "not checked")
    assert main(["check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}:13: cassette format version 2 is not supported")
    assert err.endswith("mockai check: 1 problem(s)\n")
    assert messages([str(tmp_path / "missing.yaml")]) == [
        f"{tmp_path / 'missing.yaml'}: no such file or directory"
    ]
