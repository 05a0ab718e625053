"""Hostile cassettes and echoed header values: YAML alias bombs and header values that are no
text are refused at load with `file:line`; a client's control characters in a header value
(the LiteLLM profile's model group, a warning naming a tool) are percent-encoded, not a dropped
connection with a traceback."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockai import MockServer
from mockai.cassette.format import DecodeError, parse_cassette
from mockai.cli import main
from mockai.scenario import yamlsrc

CHAT = "https://api.openai.com/v1/chat/completions"
ANSWER = (
    '{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini",'
    '"choices":[{"index":0,"message":{"role":"assistant","content":"**Paris**, *of course*."},'
    '"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
)
QUESTION = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'


def cassette(response_headers: str, request_headers: str = "{}", head: str = "") -> str:
    """One chat interaction (its headers as YAML flow text), after `head` (more top-level keys)."""
    return (
        f"version: 1\n{head}interactions:\n- request:\n    method: POST\n    uri: {CHAT}\n"
        f"    body: '{QUESTION}'\n    headers: {request_headers}\n  response:\n"
        f"    status: {{code: 200, message: OK}}\n    headers: {response_headers}\n"
        f"    body: {{string: '{ANSWER}'}}\n"
    )


def bomb(levels: int, where: str) -> str:
    """A cassette of `levels` levels of nine aliases each (9**levels strings once built, in under
    a kilobyte), under the request's or the response's headers: `mk_bomb.py` of the report."""
    names = "abcdefghij"
    head = ["x:", '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        head.append(
            f"  {names[level]}: &{names[level]} [" + ",".join([f"*{names[level - 1]}"] * 9) + "]"
        )
    last = f"*{names[levels - 1]}"
    response = "{content-type: [application/json]}"
    if where == "response":
        return cassette(
            f"{{content-type: [application/json], x-bomb: {last}}}", head="\n".join(head) + "\n"
        )
    return cassette(response, f"{{x: {last}}}", head="\n".join(head) + "\n")


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`mockai check PATH`: its exit code and what it wrote to stderr."""
    code = main(["check", str(path)])
    return code, capsys.readouterr().err


# --- 1. alias bombs -----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["request", "response"])
def test_an_alias_bomb_cassette_is_refused_at_once_by_check_and_serve(
    tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(6, where))  # 531,441 strings: over the budget, loadable in seconds unfixed
    started = time.perf_counter()
    code, err = check(path, capsys)
    assert time.perf_counter() - started < 2
    # (At the outermost alias's anchor, as a scenario file's: `e: &e [*d, ...]`, line 7.)
    assert code == 1
    assert err.startswith(f"{path}:7: YAML aliases expand to too many values (over 100,")
    started = time.perf_counter()
    with pytest.raises(DecodeError, match=rf"^{re.escape(str(path))}:7: YAML aliases expand"):
        MockServer(cassette=str(path), log_requests=False).start()
    assert time.perf_counter() - started < 2


def test_an_alias_inside_its_own_anchor_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(cassette("{content-type: [application/json], x-loop: &l [a, *l]}"))
    code, err = check(path, capsys)
    assert code == 1
    assert err.startswith(f"{path}:10: a YAML alias inside its own anchor has no value")


def test_small_aliases_and_stars_in_text_still_load_and_replay(tmp_path: Path) -> None:
    """What `yaml.dump` writes for a list two interactions share (`&id001` / `*id001`), and
    answers whose text has `*` (markdown): read as vcrpy reads them, and replayed."""
    headers = {"content-type": ["application/json"], "x-shared": ["one", "two"]}
    shared = headers["x-shared"]
    interactions = [
        {
            "request": {"method": "POST", "uri": CHAT, "body": body, "headers": {}},
            "response": {
                "status": {"code": 200, "message": "OK"},
                "headers": {"content-type": ["application/json"], "x-shared": shared},
                "body": {"string": ANSWER},
            },
        }
        for body in (QUESTION, QUESTION.replace('"hi"', '"again"'))
    ]
    text = yaml.dump({"version": 1, "interactions": interactions})
    assert "&id001" in text and "*id001" in text
    path = tmp_path / "aliased.yaml"
    path.write_text(text)
    with (
        MockServer(cassette=str(path), log_requests=False) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        for content in ("hi", "again"):
            answer = client.post(
                "/chat/completions",
                json={
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": content}],
                },
            )
            assert answer.status_code == 200
            assert answer.headers.get_list("x-shared") == ["one", "two"]
            assert answer.json()["choices"][0]["message"]["content"] == "**Paris**, *of course*."


def _interaction(request_headers: Any, response_headers: Any) -> dict[str, Any]:
    return {
        "request": {"method": "POST", "uri": CHAT, "body": QUESTION, "headers": request_headers},
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": response_headers,
            "body": {"string": ANSWER},
        },
    }


class _WithoutAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


STYLES = {"style": st.sampled_from([True, False, None]), "width": st.sampled_from([12, 80, 10**6])}


@settings(max_examples=30, deadline=None)
@given(
    **STYLES,
    shared=st.lists(st.text(st.characters(codec="utf-8"), max_size=6), min_size=1, max_size=3),
    uses=st.integers(2, 4),
)
def test_a_cassette_with_aliases_reads_as_one_without_them(
    style: bool | None, width: int, shared: list[str], uses: int
) -> None:
    """However PyYAML writes a document whose interactions share a header list (anchors and
    aliases, block or flow), it reads as the same document written out in full."""
    document = {
        "version": 1,
        "interactions": [_interaction({}, {"x-shared": shared}) for _ in range(uses)],
    }
    aliased = yaml.dump(document, default_flow_style=style, width=width)
    assert "&id001" in aliased
    whole = yaml.dump(document, Dumper=_WithoutAliases, default_flow_style=style, width=width)
    path = Path("shared.yaml")
    assert parse_cassette(path, aliased).interactions == parse_cassette(path, whole).interactions


@settings(max_examples=20, deadline=None)
@given(**STYLES, where=st.sampled_from(["request", "response"]))
def test_a_bomb_in_any_yaml_style_is_refused(style: bool | None, width: int, where: str) -> None:
    """Nested aliases as PyYAML writes them, in each style (`[&id001 [...], ...]` in flow), are
    counted, not built."""
    level: Any = ["lol"] * 9
    for _ in range(5):
        level = [level] * 9  # 9**6 strings, each list written once and aliased eight times
    headers = ({"x": level}, {}) if where == "request" else ({}, {"x-bomb": level})
    document = {"version": 1, "interactions": [_interaction(*headers)]}
    text = yaml.dump(document, default_flow_style=style, width=width)
    started = time.perf_counter()
    with pytest.raises(DecodeError, match="YAML aliases expand to too many values"):
        parse_cassette(Path("bomb.yaml"), text)
    assert time.perf_counter() - started < 2


def _fan(draw: st.DrawFn) -> str:
    """A YAML document of anchors, each a list of scalars and aliases of earlier ones."""
    lines: list[str] = []
    anchors = draw(st.integers(1, 6))
    for index in range(anchors):
        aliases = draw(st.lists(st.integers(0, index - 1), max_size=5)) if index else []
        items = [f"s{index}", *(f"*a{alias}" for alias in aliases)]
        lines.append(f"k{index}: &a{index} [{', '.join(items)}]")
    for index in range(draw(st.integers(0, 3))):
        lines.append(f"u{index}: *a{draw(st.integers(0, anchors - 1))}")
    return "\n".join(lines) + "\n"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.composite(_fan)(), budget=st.integers(0, 100))
def test_counting_aliases_agrees_with_building_them(text: str, budget: int) -> None:
    """`alias_problem_in` (counted from the events, for cassettes) says what building the values with the same
    budget (`load`, for scenario files) reports: the same problem at the same line, or none."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    original = yamlsrc.ALIASED_VALUES
    # (`budget` in all: `load` adds ten per node, and small documents must cross it.)
    yamlsrc.ALIASED_VALUES = budget - 10 * yamlsrc._count(root)
    try:
        built: list[tuple[int, str]] = []
        yamlsrc.load(text, lambda line, message: built.append((line, message)))
        counted = yamlsrc.alias_problem_in(yaml.parse(text, Loader=yaml.SafeLoader))
    finally:
        yamlsrc.ALIASED_VALUES = original
    assert counted == (built[0] if built else None)


# --- 2. header values that are no text ----------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "line", "problem"),
    [
        (
            "{content-type: [application/json], x-null: [null]}",
            10,
            "response header x-null: null is not text",
        ),
        (
            '{content-type: [application/json], x-list: [["a", "b"]]}',
            10,
            "response header x-list: ['a', 'b'] is not text",
        ),
        (
            "{content-type: [application/json], x-bare: ~}",
            10,
            "response header x-bare: null is not text",
        ),
        (
            "{content-type: [application/json], x-map: [{a: 1}]}",
            10,
            "response header x-map: {'a': 1} is not text",
        ),
        (
            "{content-type: [application/json], null: [v]}",
            10,
            "response header name null is not text",
        ),
    ],
)
def test_a_header_value_that_is_no_text_is_refused_with_its_line(
    tmp_path: Path, headers: str, line: int, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "headers.yaml"
    path.write_text(cassette(headers))
    code, err = check(path, capsys)
    assert code == 1
    assert err.startswith(f"{path}:{line}: interaction 0: {problem}")
    with pytest.raises(DecodeError, match=re.escape(f"{path}:{line}: interaction 0: {problem}")):
        MockServer(cassette=str(path), log_requests=False).start()


def test_header_values_as_text_or_numbers_still_replay(tmp_path: Path) -> None:
    path = tmp_path / "numbers.yaml"
    path.write_text(
        cassette("{content-type: [application/json], retry-after: [5], x-text: ['a b']}")
    )
    with MockServer(cassette=str(path), log_requests=False) as server:
        answer = httpx.post(
            f"{server.url}/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert answer.status_code == 200
    assert (answer.headers["retry-after"], answer.headers["x-text"]) == ("5", "a b")


# --- 3. control characters echoed into header values --------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with MockServer(log_requests=False) as running:
        yield running


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """The records logged at ERROR meanwhile (aiohttp's "Error handling request" and its
    traceback when it refused to write a header)."""
    with caplog.at_level(logging.ERROR):
        yield caplog.records


def _percent(text: str) -> str:
    return re.sub(r"[\x00-\x08\x0a-\x1f\x7f]", lambda m: f"%{ord(m.group()):02X}", text)


@pytest.mark.parametrize("model", ["gpt-4o-mini\n", "gpt-4o-mini\x00", "gpt-\r\n\x7f"])
def test_a_litellm_model_with_control_characters_gets_its_answer(
    server: Any, model: str, errors: list[logging.LogRecord]
) -> None:
    with openai.OpenAI(
        base_url=server.provider_url("litellm"), api_key="sk-x", max_retries=0
    ) as client:
        messages: Any = [{"role": "user", "content": "hi"}]
        raw = client.chat.completions.with_raw_response.create(model=model, messages=messages)
        assert raw.parse().choices[0].message.content
        assert raw.headers["x-litellm-model-group"] == _percent(model)
        with client.chat.completions.with_streaming_response.create(
            model=model, messages=messages, stream=True
        ) as streamed:
            assert streamed.headers["x-litellm-model-group"] == _percent(model)
            assert any(chunk.choices for chunk in streamed.parse())
    assert [record.getMessage() for record in errors] == []


def test_a_warning_naming_a_tool_with_a_line_break_goes_out(
    server: Any, errors: list[logging.LogRecord]
) -> None:
    grammar = {"type": "grammar", "grammar": {"syntax": "lark", "definition": 'start: "x"'}}
    tools = [{"type": "custom", "custom": {"name": "a\nb", "format": grammar}}]
    answer = httpx.post(
        f"{server.url}/chat/completions",
        json={
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": tools,
            "tool_choice": "required",
        },
    )
    assert answer.status_code == 200
    assert "custom tool 'a%0Ab' is plain text" in answer.headers["x-mockai-warning"]
    assert [record.getMessage() for record in errors] == []


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(model=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12))
def test_any_model_name_comes_back_in_the_litellm_header(server: Any, model: str) -> None:
    """Whatever the model's text, the answer goes out and its model group is that text with
    control characters percent-encoded (HTTP carries every other character)."""
    answer = httpx.post(
        server.provider_url("litellm") + "/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": "Bearer sk-x"},
    )
    assert answer.status_code == 200, answer.text
    group = answer.headers.raw
    sent = dict(group)[b"x-litellm-model-group"].decode("utf-8")
    assert sent == _percent(model)


def _raw_upstream(head_line: bytes) -> tuple[socket.socket, threading.Thread]:
    """An upstream that answers every chat request with `head_line` among its headers (bytes
    aiohttp's lenient client parser takes, but its writer refuses)."""
    listener = socket.create_server(("127.0.0.1", 0))
    body = json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                with conn:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(65536)
                    head, _, rest = data.partition(b"\r\n\r\n")
                    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        + head_line
                        + b"\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
                        % (len(body), body)
                    )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_a_relayed_header_holding_a_control_character_goes_out_encoded(
    errors: list[logging.LogRecord],
) -> None:
    """`--upstream`: an answer header with `\\x01` (which aiohttp's client takes and its writer
    refuses) had dropped the relayed answer with a traceback and a 500."""
    listener, _ = _raw_upstream(b"x-upstream-note: a\x01b")
    with (
        contextlib.closing(listener),
        MockServer(
            log_requests=False, upstream=f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        ) as proxy,
    ):
        answer = httpx.post(
            proxy.url + "/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer sk-x"},
            timeout=10,
        )
    assert answer.status_code == 200
    assert answer.headers["x-upstream-note"] == "a%01b"
    assert [record.getMessage() for record in errors] == []
