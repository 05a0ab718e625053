"""Scenario runtime: absent texts under `not`, a step's faults, which source's faults win, and
what templates can reach of Faker (determinism, the sandbox)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conformance import checked_server
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk import sdk, settled

from mockai import MockServer, ScenarioError
from mockai.scenario.problems import Problems
from mockai.scenario.rules import compile_rule

MODEL = "gpt-4o-mini"


def write(folder: Path, text: str) -> Path:
    """A scenario file in `folder` (the text is dedented)."""
    path = folder / "scenario.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@contextmanager
def serving(folder: Path, text: str, **options: Any) -> Iterator[MockServer]:
    """A spec-checked server loading `text` as its scenario."""
    with checked_server(scenarios=(str(write(folder, text)),), **options) as server:
        yield server


def chat(server: MockServer, user: str, **extra: Any) -> tuple[int, Any]:
    """(status, content or error body) of one chat request sent with httpx."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": user}], **extra}
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=20)
    data = response.json()
    if response.status_code != 200:
        return response.status_code, data["error"]
    return 200, data["choices"][0]["message"]["content"]


def tool_leg(result: str | None) -> list[dict[str, Any]]:
    """A conversation ending in a tool result `result`, or with no tool message (None)."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "weather in Paris?"}]
    if result is None:
        return messages
    call = {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    return [
        *messages,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": result},
    ]


def stream(client: openai.OpenAI, user: str, **options: Any) -> tuple[list[Any], Exception | None]:
    """The chunks of a streamed chat answer, and the error that ended it (None: it ended)."""
    chunks: list[Any] = []
    try:
        for chunk in client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": user}], stream=True, **options
        ):
            chunks.append(chunk)
    except openai.APIError as error:
        return chunks, error
    return chunks, None


# --- 1. a `not` on an absent text ---------------------------------------------------------------


def test_a_negated_tool_result_does_not_hold_without_a_tool_result(tmp_path: Path) -> None:
    text = """
    mockai: 1
    rules:
      - name: tool-succeeded
        match: {tool_result: {not: {contains: error}}}
        reply: "Great, the tool worked."
      - name: first-question
        match: {user: weather}
        reply: "Let me check."
    """
    with serving(tmp_path, text) as server, sdk(server) as client:

        def ask(result: str | None) -> str | None:
            messages: Any = tool_leg(result)
            answer = client.chat.completions.create(model=MODEL, messages=messages)
            return answer.choices[0].message.content

        assert ask(None) == "Let me check."
        assert ask("18C") == "Great, the tool worked."
        assert ask("error: no such city") == "Let me check."


def test_a_negated_file_condition_does_not_hold_without_an_upload(tmp_path: Path) -> None:
    text = """
    mockai: 1
    rules:
      - name: not-an-mp3
        match: {file: {not: {endswith: .mp3}}}
        reply: "an upload"
      - name: hello
        match: {user: hello}
        reply: "a chat"
    """
    with serving(tmp_path, text) as server:
        assert chat(server, "hello") == (200, "a chat")


OPERATORS = {
    "contains": lambda text, value: value in text,
    "equals": lambda text, value: text == value,
    "startswith": lambda text, value: text.startswith(value),
    "endswith": lambda text, value: text.endswith(value),
}
LETTERS = st.text(alphabet="ab ", max_size=4)


def test_a_negated_tool_result_holds_exactly_on_results_the_condition_rejects() -> None:
    with checked_server() as server, sdk(server) as client:

        @settings(max_examples=40, deadline=None)
        @given(
            op=st.sampled_from(sorted(OPERATORS)),
            value=LETTERS.filter(bool),
            result=st.none() | LETTERS,
        )
        def check(op: str, value: str, result: str | None) -> None:
            server.clear_rules()
            server.add_rule({"match": {"tool_result": {"not": {op: value}}}, "reply": "negated"})
            holds = result is not None and not OPERATORS[op](result, value)
            try:
                messages: Any = tool_leg(result)
                answer = client.chat.completions.create(model=MODEL, messages=messages)
            except openai.BadRequestError as error:
                assert not holds and error.code == "mockai_no_match"
            else:
                assert holds and answer.choices[0].message.content == "negated"

        check()


# --- 2. a step switches off faults of its rule ---------------------------------------------------


def test_a_step_switches_off_the_rules_faults(tmp_path: Path) -> None:
    text = """
    mockai: 1
    rules:
      - name: story
        match: {user: story}
        faults: {disconnect_after: 2}
        sequence:
          - reply: "Once upon a time there was a mock"
          - reply: "Once upon a time, a mock told the truth."
            faults: {disconnect_after: false}
          - reply: "Once upon a time, a mock told the truth."
            faults: {}
          - reply: "Once upon a time, a mock told the truth."
            faults: {disconnect_after: false, truncate_after: 1}
    """
    with serving(tmp_path, text) as server, sdk(server) as client:
        dropped, error = stream(client, "story")
        assert isinstance(error, openai.APIConnectionError) and len(dropped) == 2
        for _ in range(2):
            whole, error = stream(client, "story")
            assert error is None and whole[-1].choices[0].finish_reason == "stop"
        cut, error = stream(client, "story")
        assert error is None and len(cut) == 1
        entries = settled(server, 4)
    assert [entry.faults for entry in entries] == [
        ["disconnect_after=2"],
        [],
        [],
        ["truncate_after=1"],
    ]


COUNTED = ("malformed_chunk", "truncate_after", "disconnect_after", "duplicate_chunk")


@settings(max_examples=200, deadline=None)
@given(
    rule_faults=st.dictionaries(st.sampled_from(COUNTED), st.integers(1, 9)),
    step_faults=st.dictionaries(st.sampled_from(COUNTED), st.integers(1, 9) | st.just(False)),
)
def test_a_steps_faults_add_to_the_rules_less_the_ones_it_switches_off(
    rule_faults: dict[str, int], step_faults: dict[str, int | bool]
) -> None:
    definition = {"faults": rule_faults, "sequence": [{"reply": "x", "faults": step_faults}]}
    problems = Problems("<test>")
    rule = compile_rule(definition, file="<test>", line=0, name="r", kind="rule", problems=problems)
    assert rule is not None and not problems.items
    if step_faults:
        expected = {**rule_faults, **step_faults}
        expected = {name: n for name, n in expected.items() if n is not False}
    else:
        expected = {}  # `faults: {}`: none of the rule's
    faults = rule.steps[0].delivery.faults
    assert sorted(faults.names() if faults else []) == sorted(
        f"{k}={n}" for k, n in expected.items()
    )


# --- 3. the first source with faults gives all of them ------------------------------------------

STORY = {"match": {"user": "story"}, "reply": "one two three four five six"}


def test_the_fault_header_replaces_the_rules_faults() -> None:
    with MockServer(log_requests=False) as server, sdk(server) as client:
        server.add_rule({**STORY, "faults": {"truncate_after": 2}})
        header = {"x-mockai-fault": "duplicate_chunk=1"}
        chunks, error = stream(client, "story", extra_headers=header)
        assert error is None and chunks[-1].choices[0].finish_reason == "stop"
        assert settled(server, 1)[-1].faults == ["duplicate_chunk=1"]


def test_an_attempt_past_the_headers_attempts_gets_no_fault() -> None:
    with MockServer(log_requests=False) as server, sdk(server, max_retries=1) as client:
        server.add_rule({**STORY, "faults": {"disconnect_after": 2}})
        header = {"x-mockai-fault": "rate_limit;retry_after=10ms;attempts=1"}
        chunks, error = stream(client, "story", extra_headers=header)
        assert error is None and chunks[-1].choices[0].finish_reason == "stop"
        entries = settled(server, 2)
    assert [(entry.status, entry.faults) for entry in entries] == [
        (429, ["rate_limit;retry_after=0.01s"]),
        (200, []),
    ]


def test_a_rules_faults_replace_the_chaos_draw() -> None:
    with MockServer(log_requests=False, chaos={"duplicate_chunk": 1.0}, seed=3) as server:
        server.add_rule({**STORY, "faults": {"truncate_after": 2}})
        server.add_rule({"match": {"user": "calm"}, "reply": "one two three four five six"})
        with sdk(server) as client:
            chunks, error = stream(client, "story")
            assert error is None and len(chunks) == 2
            stream(client, "calm")
        story, calm = settled(server, 2)
    assert story.faults == ["truncate_after=2"]
    assert [name.split("=")[0] for name in calm.faults] == ["duplicate_chunk"]  # chaos still acts


# --- 4. faker.unique is per request -------------------------------------------------------------


def test_faker_unique_gives_the_same_request_the_same_text(tmp_path: Path) -> None:
    text = """
    mockai: 1
    seed: 7
    rules:
      - name: name
        match: {user: {equals: "name?"}}
        reply: "{{ faker.unique.first_name() }} {{ faker.unique.first_name() }}"
      - name: coin
        match: {user: {equals: "coin?"}}
        reply: "{{ faker.unique.boolean() }} {{ faker.unique.boolean() }}"
    """
    with serving(tmp_path, text) as server:
        names = [chat(server, "name?") for _ in range(3)]
        server.reset()
        names.append(chat(server, "name?"))
        coins = [chat(server, "coin?") for _ in range(3)]
    assert len(set(names)) == 1 and names[0][0] == 200
    first, second = names[0][1].split()
    assert first != second  # unique within the request
    assert len(set(coins)) == 1 and sorted(coins[0][1].split()) == ["False", "True"]


# --- 5. templates see Faker's providers only ----------------------------------------------------


@pytest.mark.parametrize(
    ("template", "name"),
    [
        ("{{ faker.format('__getattribute__', '__class__') }}", "faker.format"),
        ("{{ faker.parse('{{first_name}}') }}", "faker.parse"),
        ("{{ faker.get_formatter('first_name')() }}", "faker.get_formatter"),
        ("{{ faker.set_arguments('g', 'max_value', 1) }}", "faker.set_arguments"),
        ("{{ faker.seed_instance(1) }}", "faker.seed_instance"),
        ("{{ faker.random.random() }}", "faker.random"),
        ("{{ faker.unique.format('first_name') }}", "faker.unique.format"),
    ],
)
def test_fakers_own_methods_are_refused_at_load(tmp_path: Path, template: str, name: str) -> None:
    path = write(tmp_path, f'mockai: 1\nrules:\n  - name: a\n    reply: "{template}"\n')
    with pytest.raises(ScenarioError) as raised:
        MockServer(scenarios=(str(path),))
    expected = (
        f"{path}:4: '{name}' is not available to templates in rule 'a' reply.content "
        "(only the Faker providers' methods are, such as faker.first_name())"
    )
    assert [str(problem) for problem in raised.value.problems] == [expected]


SANDBOX = """
mockai: 1
rules:
  - name: attr
    match: {user: {equals: attr}}
    reply: "{{ (faker|attr('format'))('__getattribute__', '__class__') }}"
  - name: item
    match: {user: {equals: item}}
    reply: "{{ faker['set_arguments']('small', 'max_value', 1) }}"
  - name: json
    match: {user: {equals: json}}
    reply: "{{ faker.json(data_columns={'x': '__class__'}, num_rows=1) }}"
  - name: pystr
    match: {user: {equals: pystr}}
    reply: "{{ faker.pystr_format('{{__class__}}') }}"
  - name: setter
    match: {user: {equals: setter}}
    reply: "{{ faker.json(data_columns={'x': 'set_formatter'}, num_rows=1) }}"
  - name: small
    match: {user: {equals: small}}
    reply: "{{ faker.pystr_format('{{pyint:small}}') }}"
  - name: greet
    match: {user: {equals: greet}}
    reply: "Hello {{ faker.first_name() }}. {{ faker.sentence() }}"
  - name: proxies
    match: {user: {equals: proxies}}
    reply: "{{ faker.unique.first_name() }}|{{ faker.optional.first_name(prob=1.0) }}"
  - name: formats
    match: {user: {equals: formats}}
    reply: "{{ faker.pystr_format('{{first_name}}-##') }} {{ faker.json(num_rows=1) }}"
"""


@pytest.mark.parametrize("user", ["attr", "item", "json", "pystr", "setter"])
def test_no_template_reaches_fakers_attributes_by_name(tmp_path: Path, user: str) -> None:
    with serving(tmp_path, SANDBOX) as server:
        before = chat(server, "greet")
        status, error = chat(server, user)
        assert (status, error["code"]) == (400, "mockai_template_error")
        assert "Generator" not in error["message"]
        server.reset()
        # Nothing the template did stayed behind: the same text, and no argument group `small`
        # in Faker's configuration (which every Faker of the process shares).
        assert chat(server, "greet") == before
        status, error = chat(server, "small")
        assert status == 400 and "Unknown argument group 'small'" in error["message"]


def test_templates_still_use_fakers_providers(tmp_path: Path) -> None:
    with serving(tmp_path, SANDBOX) as server:
        status, greeting = chat(server, "greet")
        assert status == 200 and greeting.startswith("Hello ") and greeting.endswith(".")
        status, proxies = chat(server, "proxies")
        assert status == 200 and all(proxies.split("|"))
        status, formats = chat(server, "formats")
        assert status == 200 and "-" in formats and "{{" not in formats
        assert chat(server, "greet") == (200, greeting)
