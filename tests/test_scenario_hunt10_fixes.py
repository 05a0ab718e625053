"""Scenario files, rules and templates: bugs found by the tenth hunt, each met as users meet it
(`mockai check`, a served scenario, the admin API, the SDK)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from mockai import MockServer, ScenarioError


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def check(*paths: Path) -> tuple[int, str]:
    """`mockai check PATH...` in its own process: (exit code, what it printed)."""
    done = subprocess.run(
        [sys.executable, "-m", "mockai", "check", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


# --- an error's `name` that is no string ----------------------------------------------------------


def test_an_error_name_that_is_a_list_is_a_problem_at_its_line_not_a_traceback(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "names.yaml",
        """
        mockai: 1
        rules:
          - name: listed
            match: {user: a}
            error: {name: [rate_limit]}
          - name: stepped
            match: {user: b}
            sequence:
              - error: {name: {overloaded: true}, status: 503}
        """,
    )
    code, output = check(path)
    assert code == 1 and "Traceback" not in output
    assert f"{path}:5: rule 'listed': ['rate_limit'] is not a named error" in output
    assert (
        f"{path}:9: rule 'stepped' sequence step 1: {{overloaded: true}} is not a named" in output
    )
    with MockServer() as server, httpx.Client(base_url=server.base_url, timeout=10) as http:
        answer = http.post(
            "/_mockai/rules", json={"match": {"user": "a"}, "error": {"name": ["rate_limit"]}}
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "mockai_invalid_rule"
        assert "['rate_limit'] is not a named error" in answer.json()["error"]["message"]


def test_a_misspelt_error_name_is_one_problem_not_also_a_missing_name(tmp_path: Path) -> None:
    path = write(
        tmp_path / "misspelt.yaml",
        """
        mockai: 1
        rules:
          - name: a
            error: {name: rate_limt, retry_after: 1s}
        """,
    )
    code, output = check(path)
    assert code == 1
    assert f"{path}:4: rule 'a': 'rate_limt' is not a named error (did you mean 'rate_limit'?)" in (
        output
    )
    assert "needs a status" not in output
    assert "1 problem(s)" in output


# --- a step switching off the rule's `disconnect` -------------------------------------------------


def test_a_step_switches_off_the_rules_disconnect_with_false(tmp_path: Path) -> None:
    path = write(
        tmp_path / "drop.yaml",
        """
        mockai: 1
        rules:
          - name: flaky-stream
            match: {user: story}
            faults: {disconnect: true}
            sequence:
              - reply: "Once upon a time"
              - reply: "Once upon a time, it ended."
                faults: {disconnect: false}
        """,
    )
    code, output = check(path)
    assert code == 0, output
    with (
        MockServer(scenario=str(path)) as server,
        openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client,
    ):
        messages: Any = [{"role": "user", "content": "a story"}]
        with pytest.raises(openai.APIConnectionError):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        assert answer.choices[0].message.content == "Once upon a time, it ended."
        client.close()


# --- what a bad duration is told to be ------------------------------------------------------------


def test_a_single_duration_is_not_told_to_be_a_range_where_ranges_are_refused(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "durations.yaml",
        """
        mockai: 1
        rules:
          - name: limited
            match: {user: a}
            error: {name: rate_limit, retry_after: 100ms-300ms}
          - name: slow
            match: {user: b}
            latency: {min: 100ms-200ms, max: 1s}
            reply: hello
          - name: vague
            match: {user: c}
            latency: soon
            reply: hello
        """,
    )
    code, output = check(path)
    assert code == 1
    lines = {line.split(": ", 1)[0]: line for line in output.splitlines()}
    refused = lines[f"{path}:5"]
    assert "'100ms-300ms' is not a duration (use seconds, or a string like '200ms' or '1.5s')" in (
        refused
    )
    assert "100ms-300ms'" not in refused.split("(use", 1)[1]
    assert "(use seconds, or a string like '200ms' or '1.5s')" in lines[f"{path}:8"]
    # (a delay may be a range: said so)
    assert (
        "'soon' is not a duration (use seconds, or a string like '200ms', '1.5s' or "
        in (lines[f"{path}:12"])
    )


# --- a faker method written without its call ------------------------------------------------------


def test_a_faker_method_without_its_call_is_a_load_error_not_a_memory_address(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "uncalled.yaml",
        """
        mockai: 1
        rules:
          - name: greet
            match: {user: hello}
            reply:
              content: |
                Hello!
                I am {{ faker.first_name }} {{ faker.unique.last_name|upper }}.
          - name: kept
            match: {user: later}
            reply: "{% set pick = faker.first_name %}{{ pick() }} and {{ faker.first_name() }}"
        """,
    )
    code, output = check(path)
    assert code == 1
    assert (
        f"{path}:8: 'faker.first_name' in the template of rule 'greet' reply.content (template "
        "line 2) is a method: call it, faker.first_name()" in output
    )
    assert f"{path}:8: 'faker.unique.last_name' in the template of rule 'greet'" in output
    assert "2 problem(s)" in output  # (`kept` calls what it keeps)
    uncalled = r"'faker\.name' .* is a method: call it"
    with MockServer() as server, pytest.raises(ScenarioError, match=uncalled):
        server.add_rule({"match": {"user": "hi"}, "reply": "Hi {{ faker.name }}"})


# --- `<<: [*a, *b]`: the first mapping's keys win ---------------------------------------------------


def test_a_merge_of_several_mappings_takes_each_key_from_the_first_that_has_it(
    tmp_path: Path,
) -> None:
    # The merge-key spec: "keys in mapping nodes earlier in the sequence override keys specified
    # in later mapping nodes". PyYAML 6.0.4 lets the later ones win (yaml/pyyaml#953).
    path = write(
        tmp_path / "merged.yaml",
        """
        mockai: 1
        rules:
          - &pirate
            name: pirate
            match: {system: pirate}
            reply: "Arr!"
          - &robot
            name: robot
            match: {system: robot, user: beep}
            reply: "Beep."
          - <<: [*robot, *pirate]
            name: robot-first
            match:
              <<: [{user: boop, stream: true}, {user: beep, stream: false}]
              endpoint: chat
        """,
    )
    code, output = check(path)
    assert code == 0, output
    with MockServer(scenario=str(path)) as server:
        rule = next(rule for rule in server.rules if rule.name == "robot-first")
        assert rule.as_json()["match"] == [
            "user: contains 'boop'",
            "stream: true",
            "endpoint: chat",
        ]
        with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client:
            chunks = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "boop"}], stream=True
            )
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Beep."
            client.close()


def test_a_mapping_merging_itself_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    path = write(
        tmp_path / "itself.yaml",
        """
        mockai: 1
        rules:
          - name: r
            match: {user: hi}
            reply: &m {<<: *m, content: hello}
        """,
    )
    code, output = check(path)
    assert code == 1 and "Traceback" not in output
    assert "invalid YAML merge: a mapping cannot merge itself (a recursive alias)" in output


# --- a template of one line in a `|` block --------------------------------------------------------


def test_a_problem_in_a_one_line_block_template_is_at_the_templates_own_line(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "block.yaml",
        """
        mockai: 1
        rules:
          - name: greet
            match: {user: hello}
            reply:
              content: |
                Hello, {{ request.usr }}!
          - name: shout
            match: {user: hey}
            reply: |-
              {{ faker.first_nam() | upper }}
          - name: several
            match: {user: hi}
            reply:
              content: |
                Hi.
                {{ request.modle }}
        """,
    )
    code, output = check(path)
    assert code == 1
    assert f"{path}:7: unknown field 'request.usr' in the template of rule 'greet'" in output
    assert f"{path}:11: unknown faker method 'faker.first_nam' in rule 'shout'" in output
    assert "'greet' reply.content (did you mean 'user'?)" in output  # (no template line 1)
    assert f"{path}:17: unknown field 'request.modle'" in output  # (as before)
    assert "(template line 2)" in output


# --- load(): the settings it does not apply are said -----------------------------------------------


def test_load_says_which_settings_of_the_file_it_does_not_apply(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path / "chaotic.yaml",
        """
        mockai: 1
        seed: 7
        chaos: {rate_limit: 1}
        rules:
          - name: hello
            match: {user: hi}
            reply: hello
        """,
    )
    with MockServer() as server:
        caplog.set_level("WARNING", logger="mockai")
        assert server.load(path) == ["hello"]
        said = [r.getMessage() for r in caplog.records if "is not applied" in r.getMessage()]
        why = (
            "is not applied: load() takes a file's rules only (give the file when the server "
            "starts for its settings: MockServer(scenario=...), the pytest marker's scenario=, "
            "mockai serve --scenario)"
        )
        assert said == [f"mockai: {path}:2: seed {why}", f"mockai: {path}:3: chaos {why}"]
        with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client:
            messages: Any = [{"role": "user", "content": "hi"}]
            answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            assert answer.choices[0].message.content == "hello"  # (no chaos: as the log says)
            client.close()


# --- a Faker set printed in the same order in every process -------------------------------------

SET_TEMPLATES = (
    "{{ faker.pyset(nb_elements=8) }} | {{ faker.unique.pyset(nb_elements=4) }} | "
    "{% for item in faker.pyset(nb_elements=5) %}{{ item }};{% endfor %} | "
    "{{ faker.pyiterable(nb_elements=6) }}"
)
SET_ANSWER = f"""
import httpx
from mockai import MockServer

with MockServer(seed=3, log_requests=False) as server:
    server.add_rule({{"match": {{"user": "sets"}}, "reply": {SET_TEMPLATES!r}}})
    answer = httpx.post(
        server.url + "/chat/completions",
        json={{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "sets"}}]}},
    )
    print(answer.json()["choices"][0]["message"]["content"])
"""


def test_a_faker_set_answers_the_same_in_every_process() -> None:
    # A set of texts prints and iterates in an order of their hashes, which each process draws
    # anew: `{{ faker.pyset() }}` answered differently from run to run with the same seed.
    answers = set()
    for hash_seed in ("1", "2", "3", "4"):
        done = subprocess.run(
            [sys.executable, "-c", SET_ANSWER],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        assert done.returncode == 0, done.stderr
        answers.add(done.stdout)
    [answer] = answers
    assert answer.count("{") >= 2 and "_Stopped" not in answer  # (a datetime shows as one)


def test_a_template_printing_a_method_uncalled_is_its_error_not_a_memory_address() -> None:
    # `{{ request.user.upper }}` printed `<built-in method upper of str object at 0x7f...>`, an
    # address that changes every run; it is now the template's error, saying to call it.
    with MockServer(log_requests=False) as server:
        server.add_rule({"match": {"user": "a"}, "reply": "{{ request.user.upper }}"})
        server.add_rule({"match": {"user": "b"}, "reply": "{{ request.user.upper() }}"})
        with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client:
            with pytest.raises(openai.BadRequestError) as refused:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}]
                )
            assert refused.value.code == "mockai_template_error"
            assert "prints the function upper itself: call it, upper()" in refused.value.message
            called = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "b"}]
            )
            assert called.choices[0].message.content == "B"
