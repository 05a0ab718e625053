"""Scenario files that start wrong (hunt 5): a misspelt `arguments: auto`, tool arguments no
function can take, and YAML type tags on text they cannot read. Met as users meet them: `mockai
check` and `mockai serve` in their own process, a served scenario answering httpx."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conformance import checked_server
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai.check import check_all

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
PING = {"type": "function", "function": {"name": "ping"}}  # (no parameters: any JSON object)
CODE_EXEC = {"type": "custom", "custom": {"name": "code_exec", "description": "Executes python"}}
TOOLS = [WEATHER, PING, CODE_EXEC]


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def mockai(*args: str, timeout: float = 30) -> tuple[int, str]:
    """`mockai ARGS...` in its own process: (exit code, what it printed)."""
    done = subprocess.run(
        [sys.executable, "-m", "mockai", *args], capture_output=True, text=True, timeout=timeout
    )
    return done.returncode, done.stdout + done.stderr


def ask(url: str, user: str) -> httpx.Response:
    return httpx.post(
        f"{url}/chat/completions",
        json={
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": user}],
            "tools": TOOLS,
        },
        timeout=10,
    )


# --- 1. a misspelt `arguments: auto` -------------------------------------------------------------

MISSPELT = """
mockai: 1
rules:
  - name: a
    match: {user: case-a}
    reply:
      tool_calls: [{name: get_weather, arguments: Auto}]
  - name: b
    match: {user: case-b}
    reply:
      tool_calls: [{name: get_weather, arguments: AUTO}]
  - name: c
    match: {user: case-c}
    reply:
      tool_calls:
        - name: get_weather
          arguments: automatic
  - name: d
    match: {user: case-d}
    reply:
      tool_calls: [{name: get_weather, arguments: generate}]
"""


def wrong(line: int, rule: str, word: str) -> str:
    """The end of the problem `mockai check` reports for a misspelt `auto`."""
    return (
        f":{line}: rule '{rule}' reply.tool_calls[0].arguments must be a mapping, a JSON "
        f"string or 'auto', got '{word}' (did you mean 'auto'?)"
    )


def test_check_refuses_a_misspelt_auto_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "agent.yaml", MISSPELT)
    code, printed = mockai("check", str(path))
    assert code == 1, printed
    for line, rule, word in (
        (6, "a", "Auto"),
        (10, "b", "AUTO"),
        (16, "c", "automatic"),
        (20, "d", "generate"),
    ):
        assert f"{path}{wrong(line, rule, word)}" in printed
    assert "mockai check: 4 problem(s)" in printed
    assert "Traceback" not in printed


def test_serve_refuses_a_misspelt_auto_and_does_not_start(tmp_path: Path) -> None:
    path = write(tmp_path / "agent.yaml", MISSPELT)
    # (a server that starts never exits: the timeout then fails the test)
    code, printed = mockai("serve", "--port", "0", "--scenario", str(path), timeout=15)
    assert code != 0
    assert f"{path}{wrong(6, 'a', 'Auto')}" in printed
    assert "Traceback" not in printed


SERVED = """
mockai: 1
rules:
  - name: mapping
    match: {user: case-mapping}
    reply: {tool_calls: [{name: get_weather, arguments: {city: Paris}}]}
  - name: json-string
    match: {user: case-string}
    reply: {tool_calls: [{name: get_weather, arguments: '{"city": "Oslo"}'}]}
  - name: auto
    match: {user: case-auto}
    reply: {tool_calls: [{name: get_weather, arguments: auto}]}
  - name: template-json
    match: {user: case-template-json}
    reply: {tool_calls: [{name: get_weather, arguments: '{"city": "{{ request.model }}"}'}]}
  - name: custom-input
    match: {user: case-custom}
    reply: {tool_calls: [{name: code_exec, arguments: "print(2 + 2)"}]}
  - name: template-bare
    match: {user: case-template-bare}
    reply: {tool_calls: [{name: get_weather, arguments: "{{ request.user }}"}]}
  - name: array
    match: {user: case-array}
    reply: {tool_calls: [{name: ping, arguments: '["Rome"]'}]}
  - name: custom-free-text
    match: {user: case-free-text}
    reply: {tool_calls: [{name: code_exec, arguments: "generate the weekly report"}]}
  - name: function-word
    match: {user: case-function-word}
    reply: {tool_calls: [{name: get_weather, arguments: autumn}]}
"""
GOOD = ("case-mapping", "case-string", "case-auto", "case-template-json")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write(tmp_path_factory.mktemp("hunt5") / "served.yaml", SERVED))


@pytest.fixture(scope="module")
def strict_url(served: str) -> Iterator[str]:
    with checked_server(scenarios=(served,), strict=True) as server:
        yield server.url


@pytest.fixture(scope="module")
def lenient_url(served: str) -> Iterator[str]:
    with checked_server(scenarios=(served,)) as server:
        yield server.url


@pytest.mark.parametrize(
    ("user", "rule", "why"),
    [
        ("case-template-bare", "template-bare", "get_weather' are not valid JSON"),
        ("case-array", "array", "ping' are not a JSON object"),
        # (a word that is no misspelt `auto` loads, and a function's call still flags it)
        ("case-function-word", "function-word", "get_weather' are not valid JSON"),
    ],
)
def test_strict_refuses_arguments_no_function_can_take(
    strict_url: str, user: str, rule: str, why: str
) -> None:
    answer = ask(strict_url, user)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "mockai_stale_fixture"
    assert error["message"].startswith(f"mockai strict mode: rule '{rule}' (")
    assert error["message"].endswith(f"the arguments of tool call '{why}")


def test_strict_still_answers_every_valid_form(strict_url: str) -> None:
    for user in GOOD:
        answer = ask(strict_url, user)
        assert answer.status_code == 200, answer.text
        [call] = answer.json()["choices"][0]["message"]["tool_calls"]
        assert isinstance(json.loads(call["function"]["arguments"]), dict)
    custom = ask(strict_url, "case-custom")  # a custom tool's input is text, not JSON
    assert custom.status_code == 200, custom.text
    [call] = custom.json()["choices"][0]["message"]["tool_calls"]
    assert call["custom"]["input"] == "print(2 + 2)"


def test_a_custom_tools_free_text_input_is_sent_as_written(strict_url: str) -> None:
    answer = ask(strict_url, "case-free-text")
    assert answer.status_code == 200, answer.text
    [call] = answer.json()["choices"][0]["message"]["tool_calls"]
    assert call["custom"] == {"name": "code_exec", "input": "generate the weekly report"}


def test_without_strict_the_arguments_are_sent_with_a_warning(lenient_url: str) -> None:
    answer = ask(lenient_url, "case-array")
    assert answer.status_code == 200, answer.text
    [call] = answer.json()["choices"][0]["message"]["tool_calls"]
    assert call["function"]["arguments"] == '["Rome"]'  # (broken on purpose: sent as written)
    warning = answer.headers["x-mockai-warning"]
    assert warning.endswith("the arguments of tool call 'ping' are not a JSON object")


def checked(text: str) -> tuple[str, list[str]]:
    """(the file, every problem `mockai check` finds in `text`), in-process."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.yaml"
        path.write_text(text)
        problems, _ = check_all([str(path)])
        return str(path), [str(problem) for problem in problems]


def scenario(arguments: str) -> str:
    """A rule calling `f` with `arguments` (on line 7)."""
    return f"mockai: 1\nrules:\n  - name: r\n    reply:\n      tool_calls:\n        - name: f\n          arguments: {arguments}\n"


# (no characters past U+FFFF: json.dumps writes them as surrogate pairs, which YAML refuses;
# no `{`: `{{` would make the string a template)
TEXT = st.text(
    st.characters(
        categories=("L", "N", "P", "S", "Zs"), max_codepoint=0xFFFF, exclude_characters="{"
    ),
    max_size=8,
)
JSON_SCALAR = st.none() | st.booleans() | st.integers() | TEXT
JSON_OBJECT = st.dictionaries(TEXT, JSON_SCALAR, max_size=4)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        JSON_OBJECT.map(lambda value: json.dumps(json.dumps(value))),  # a JSON string (quoted YAML)
        JSON_OBJECT.map(lambda value: json.dumps(value)),  # a flow mapping (JSON is YAML)
        st.just("auto"),
    )
)
def test_every_valid_form_of_arguments_loads(arguments: str) -> None:
    assert checked(scenario(arguments))[1] == []


# Strings a reviewer found refused as a misspelt `auto`: a custom tool's free-text input.
FREE_TEXT = [
    "generate the weekly report",
    "auth",
    "aut",
    "autumn",
    "auto-fill",
    "Automate the form",
    "generated",
]


def test_check_loads_free_text_that_only_starts_like_auto(tmp_path: Path) -> None:
    calls = "".join(
        f"        - {{name: code_exec, arguments: {json.dumps(text)}}}\n" for text in FREE_TEXT
    )
    path = write(tmp_path / "custom.yaml", "mockai: 1\nrules:\n  - name: r\n    reply:\n")
    path.write_text(path.read_text() + "      tool_calls:\n" + calls)
    code, printed = mockai("check", str(path))
    assert (code, printed.strip()) == (0, "mockai check: 1 path(s) OK")


def cased(word: str, upper: list[bool]) -> str:
    return "".join(c.upper() if up else c for c, up in zip(word, upper, strict=False))


UPPER = st.lists(st.booleans(), min_size=9, max_size=9)  # (one per letter of the longest word)
MEANT = st.sampled_from(["auto", "automatic", "generate"])


@st.composite
def surely_auto(draw: st.DrawFn) -> str:
    """A string that can only mean `auto`: one of its words, in any case, spaces around."""
    pad = st.sampled_from(["", " ", "  "])
    text = draw(pad) + cased(draw(MEANT), draw(UPPER)) + draw(pad)
    return "AUTO" if text == "auto" else text  # (`auto` itself is valid)


@st.composite
def free_text(draw: st.DrawFn) -> str:
    """Text that starts like (or holds) such a word but is more: a phrase, another word."""
    word = cased(draw(MEANT), draw(UPPER))
    other = draw(TEXT.filter(str.strip))  # (something besides spaces)
    sep = draw(st.sampled_from([" ", "-", "_"]))
    return draw(
        st.sampled_from(
            [
                word + sep + other,
                other + sep + word,
                word[:-1],  # (`aut`, `automati`, `generat`)
                word + draw(st.sampled_from(["d", "s", "mn", "h", "ally"])),
            ]
        )
    )


@settings(max_examples=80, deadline=None)
@given(
    st.one_of(
        surely_auto().map(lambda text: (text, True)),
        (st.sampled_from(FREE_TEXT) | free_text()).map(lambda text: (text, False)),
    )
)
def test_only_a_surely_misspelt_auto_is_refused_at_its_line(case: tuple[str, bool]) -> None:
    text, refused = case
    path, problems = checked(scenario(json.dumps(text)))
    assert problems == ([f"{path}{wrong(7, 'r', text)}"] if refused else [])


# --- 2. a YAML type tag on text it cannot read ----------------------------------------------------


def test_check_and_serve_say_where_a_tag_cannot_be_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "tags.yaml",
        """
        mockai: 1
        rules:
          - name: a
            reply: !!int abc
          - name: b
            times: !!float x
            reply: hi
          - name: c
            reply: {content: !!timestamp soon}
        """,
    )
    code, printed = mockai("check", str(path))
    assert code == 1, printed
    assert f"{path}:4: cannot read 'abc' as !!int" in printed
    assert f"{path}:6: cannot read 'x' as !!float" in printed
    assert f"{path}:9: cannot read 'soon' as !!timestamp" in printed
    assert "Traceback" not in printed
    code, printed = mockai("serve", "--port", "0", "--scenario", str(path), timeout=20)
    assert code != 0
    assert f"{path}:4: cannot read 'abc' as !!int" in printed
    assert "Traceback" not in printed


TAGS = ["!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!!binary", "!!str", "!!seq",
        "!!map", "!!foo"]  # fmt: skip
# Where the tagged value goes: a top-level setting, a rule's count, a rule's answer.
PLACES = (
    "mockai: 1\nseed: {}\n",
    "mockai: 1\nrules:\n  - name: r\n    reply: hi\n    times: {}\n",
    "mockai: 1\nrules:\n  - name: r\n    reply: {}\n",
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(TAGS), st.text(max_size=12), st.sampled_from(PLACES))
def test_any_tag_on_any_text_is_ok_or_problems_at_their_line(
    tag: str, text: str, place: str
) -> None:
    # (json.dumps: a double-quoted YAML scalar holds any text, escapes included)
    path, problems = checked(place.format(f"{tag} {json.dumps(text)}"))
    located = re.compile(rf"{re.escape(path)}:\d+: ")
    assert all(located.match(problem) for problem in problems), problems
