"""Scenario loading and checking: bugs found by the hunt, each through `mockai check`, a served
scenario or the admin API, as users meet them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk import sdk
from service_support import ServeProcess

from mockai import MockServer, ScenarioError
from mockai.scenario.matchers import REGISTRY


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def check(*paths: Path, timeout: float = 60) -> tuple[int, str]:
    """`mockai check PATH...` in its own process: (exit code, what it printed)."""
    done = subprocess.run(
        [sys.executable, "-m", "mockai", "check", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr


def ask(server: Any, question: str) -> str | None:
    with sdk(server) as client:
        return reply(client, question)


def reply(client: openai.OpenAI, question: str) -> str | None:
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
    )
    return answer.choices[0].message.content


# --- 1. nested aliases ("billion laughs") ---------------------------------------------------------

LAUGHS = """
mockai: 1
rules:
  - name: a
    match: {user: hi}
    reply:
      json:
        l0: &l0 [x, x, x, x, x, x, x, x, x, x]
"""


def laughs(levels: int) -> str:
    lines = [
        f"        l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, levels + 1)
    ]
    return LAUGHS.lstrip() + "\n".join(lines) + "\n"


def test_nested_aliases_are_a_problem_at_their_line_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(laughs(8))  # 10 ** 9 values once expanded, from ~700 bytes
    started = time.monotonic()
    code, output = check(path, timeout=30)
    assert time.monotonic() - started < 30
    assert code == 1
    assert f"{path}:10: YAML aliases expand to too many values" in output
    assert "Traceback" not in output
    with pytest.raises(ScenarioError, match="YAML aliases expand to too many values"):
        MockServer(scenario=str(path))
    path.write_text(laughs(2))  # aliases that expand to a sane size (100 values) still load
    with MockServer(scenario=str(path)) as server:
        answer = json.loads(ask(server, "hi") or "")
    assert answer["l2"] == [[["x"] * 10] * 10] * 10


# --- 2. a condition of the wrong type -------------------------------------------------------------


def test_a_provider_of_the_wrong_type_is_a_problem_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "provider.yaml",
        """
        mockai: 1
        rules:
          - name: groq-only
            match: {provider: [[groq]]}
            reply: hello
          - name: listed
            match: {endpoint: [[chat]]}
            reply: hello
        """,
    )
    code, output = check(path)
    assert code == 1 and "Traceback" not in output
    assert (
        f"{path}:4: rule 'groq-only' match.provider: ['groq'] is not a provider profile" in output
    )
    assert f"{path}:7: rule 'listed' match.endpoint: ['chat'] is not an endpoint" in output


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def test_any_json_under_any_match_key_is_a_rule_or_a_400_never_a_500() -> None:
    with MockServer() as server, httpx.Client(base_url=server.base_url, timeout=10) as http:

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(key=st.sampled_from(sorted(REGISTRY)), value=JSON)
        def added(key: str, value: Any) -> None:
            rule = {"match": {key: value}, "reply": "x"}
            answer = http.post("/_mockai/rules", json=rule)
            assert answer.status_code in (200, 400), answer.text
            if answer.status_code == 400:
                assert answer.json()["error"]["code"] == "mockai_invalid_rule"
            http.delete("/_mockai/rules")

        added()
        answer = http.post("/_mockai/rules", json={"match": {"provider": {"groq": True}}})
        assert answer.status_code == 400
        assert "match.provider: {groq: true} is not a provider profile" in answer.text


# --- 3. a reload taking a runtime rule's name -----------------------------------------------------


def _until(condition: Any, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_reload_taking_a_runtime_rules_name_is_refused(tmp_path: Path) -> None:
    scenario = tmp_path / "watched.yaml"
    hello = "mockai: 1\nrules:\n  - name: hello\n    match: {user: hello}\n    reply: hi\n"
    scenario.write_text(hello)
    served = ServeProcess(["--scenario", str(scenario), "--watch"]).start()
    try:
        with httpx.Client(base_url=served.base_url, timeout=10) as http:

            def chat(text: str) -> Any:
                body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
                return http.post("/v1/chat/completions", json=body)

            added = {"name": "greet", "match": {"user": "greet"}, "reply": "runtime greet"}
            assert http.post("/_mockai/rules", json=added).status_code == 200
            scenario.write_text(
                hello + "  - name: greet\n    match: {user: bye}\n    reply: file greet\n"
            )
            assert _until(lambda: "reload refused" in served.printed())
            assert chat("bye").status_code == 400  # the file's rule is not served
            names = [rule["name"] for rule in http.get("/_mockai/rules").json()["data"]]
            assert sorted(names) == ["greet", "hello"]
            # The same edit, with a name of its own, is served.
            scenario.write_text(
                hello + "  - name: greet-file\n    match: {user: bye}\n    reply: file greet\n"
            )
            assert _until(lambda: chat("bye").status_code == 200)
            assert chat("bye").json()["choices"][0]["message"]["content"] == "file greet"
            assert chat("greet").json()["choices"][0]["message"]["content"] == "runtime greet"
    finally:
        served.stop()
    output = served.all_output()
    assert f"{scenario}:6: duplicate rule name 'greet' (first used at <admin>)" in output
    assert "Traceback" not in output


# --- 4. values YAML reads as no JSON --------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "kind"),
    [
        ("on", "a boolean"),
        ("off", "a boolean"),
        ("yes", "a boolean"),
        ("null", "null"),
        ("2", "a number"),
    ],
)
def test_an_unquoted_json_key_read_as_no_string_asks_for_quotes(
    tmp_path: Path, written: str, kind: str
) -> None:
    path = write(
        tmp_path / "keys.yaml",
        f"""
        mockai: 1
        rules:
          - name: switches
            match: {{user: switches}}
            reply:
              json: {{{written}: 1}}
          - name: call
            match: {{user: call}}
            reply:
              tool_calls: [{{name: set_light, arguments: {{{written}: true}}}}]
          - name: pinned
            match: {{body: {{metadata: {{{written}: x}}}}}}
            reply: pinned
        """,
    )
    code, output = check(path)
    assert code == 1
    hint = f'the key {written} is read as {kind}, but JSON keys are strings: quote it ("{written}")'
    assert f"{path}:6: rule 'switches' reply.json: {hint}" in output
    assert f"{path}:10: rule 'call' reply.tool_calls[0].arguments: {hint}" in output
    assert f"{path}:12: rule 'pinned' match.body.metadata: {hint}" in output


def test_an_unquoted_date_asks_for_quotes_and_quoted_it_matches(tmp_path: Path) -> None:
    path = write(
        tmp_path / "dates.yaml",
        """
        mockai: 1
        rules:
          - name: release
            match: {body: {metadata: {release: 2024-01-01}}}
            reply: {json: {at: 2024-01-01 10:00:00}}
        """,
    )
    code, output = check(path)
    assert code == 1
    assert (
        f"{path}:4: rule 'release' match.body.metadata.release: 2024-01-01 is read as a date, "
        'which JSON does not have: quote it ("2024-01-01")'
    ) in output
    assert (
        f"{path}:5: rule 'release' reply.json: 2024-01-01 10:00:00 is read as a timestamp" in output
    )
    quoted = path.read_text().replace("2024-01-01}", '"2024-01-01"}')
    path.write_text(quoted.replace("2024-01-01 10:00:00", '"2024-01-01 10:00:00"'))
    with MockServer(scenario=str(path)) as server, sdk(server) as client:
        answer = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            metadata={"release": "2024-01-01"},
            store=True,
        )
    assert json.loads(answer.choices[0].message.content or "") == {"at": "2024-01-01 10:00:00"}


# --- 4 and 6: scripted JSON survives YAML, merges included (a property) ---------------------------

KEYS = st.sampled_from(["a", "b", "on", "null", "2", "<<", "name", "é x"])
LEAVES = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=5,
)


def _flow(value: Any) -> str:
    """`value` as one line of YAML flow style (PyYAML quotes what would not stay a string)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()


def test_scripted_json_and_merge_overrides_are_served_as_written(tmp_path: Path) -> None:
    numbers = count()
    with MockServer() as server, sdk(server) as client:

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            base=st.dictionaries(KEYS, VALUES, min_size=1, max_size=4),
            override=st.dictionaries(KEYS, VALUES, max_size=3),
        )
        def served(base: dict[str, Any], override: dict[str, Any]) -> None:
            n = next(numbers)
            explicit = "".join(f"        {_flow({k: v})[1:-1]}\n" for k, v in override.items())
            path = tmp_path / f"merge{n}.yaml"
            path.write_text(
                "mockai: 1\nrules:\n"
                f"  - name: base-{n}\n    match: {{user: {{equals: base {n}}}}}\n"
                f"    reply:\n      json: &base{n} {_flow(base)}\n"
                f"  - name: merged-{n}\n    match: {{user: {{equals: merged {n}}}}}\n"
                f"    reply:\n      json:\n        <<: *base{n}\n{explicit}"
            )
            server.load(path)
            assert json.loads(reply(client, f"base {n}") or "") == base
            assert json.loads(reply(client, f"merged {n}") or "") == {**base, **override}

        served()


# --- 5. rules shadowed with stream, body or has_tool_result conditions ----------------------------


def test_rules_shadowed_with_flag_and_body_conditions_are_named(tmp_path: Path) -> None:
    path = write(
        tmp_path / "shadow.yaml",
        """
        mockai: 1
        rules:
          - name: yo
            match: {user: yo, stream: true}
            reply: x
          - name: yo-man
            match: {user: {equals: "yo man"}, stream: true}
            reply: y
          - name: zz
            match: {user: zz, body: {temperature: 0, metadata: {tags: [a, 1]}}}
            reply: x
          - name: zz-top
            match: {user: {equals: "zz top"}, body: {temperature: 0, metadata: {tags: [a, 1]}}}
            reply: y
          - name: tool
            match: {has_tool_result: true}
            reply: x
          - name: tool-done
            match: {has_tool_result: true, user: {equals: done}}
            reply: y
          - name: one                                 # conditions that differ shadow nothing
            match: {body: {n: 1}}
            reply: x
          - name: true-is-not-one
            match: {body: {n: true}}
            reply: y
          - name: streamed
            match: {stream: true}
            reply: x
          - name: not-streamed
            match: {stream: false}
            reply: y
          - name: listed
            match: {body: {tags: [1, 2]}}
            reply: x
          - name: listed-with-true
            match: {body: {tags: [true, 2]}}
            reply: y
        """,
    )
    code, output = check(path)
    assert code == 1
    assert f"{path}:6: rule 'yo-man' can never match: rule 'yo' (line 3)" in output
    assert f"{path}:12: rule 'zz-top' can never match: rule 'zz' (line 9)" in output
    assert f"{path}:18: rule 'tool-done' can never match: rule 'tool' (line 15)" in output
    assert output.count("can never match") == 3


# --- 6. a key overriding a merged one -------------------------------------------------------------


def test_a_key_after_a_merge_overrides_but_two_written_keys_are_duplicates(tmp_path: Path) -> None:
    path = write(
        tmp_path / "merge.yaml",
        """
        mockai: 1
        rules:
          - &base
            name: greet-en
            match: {user: hello}
            reply: "Hello!"
          - <<: *base
            name: greet-fr
            match: {user: bonjour}
            reply: "Bonjour !"
        """,
    )
    assert check(path) == (0, "mockai check: 1 path(s) OK\n")
    with MockServer(scenario=str(path)) as server:
        assert (ask(server, "bonjour"), ask(server, "hello")) == ("Bonjour !", "Hello!")
        assert [rule.name for rule in server.rules] == ["greet-en", "greet-fr"]
    path.write_text(path.read_text().replace("    name: greet-fr\n", "    name: a\n    name: b\n"))
    code, output = check(path)
    assert code == 1 and f"{path}:9: duplicate key 'name' (first at line 8)" in output


# --- 7. unnamed rules of same-named files in two folders ------------------------------------------


def test_unnamed_rules_of_same_named_files_are_named_by_their_path(tmp_path: Path) -> None:
    root = tmp_path / "scenarios"
    for endpoint in ("chat", "responses"):
        write(
            root / endpoint / "basic.yaml",
            f"""
            mockai: 1
            rules:
              - match: {{endpoint: {endpoint}, user: hi}}
                reply: hello from {endpoint}
            """,
        )
    assert check(root) == (0, "mockai check: 1 path(s) OK\n")
    with MockServer(scenario=str(root)) as server:
        assert [rule.name for rule in server.rules] == [
            "chat/basic.yaml:3",
            "responses/basic.yaml:3",
        ]
        assert ask(server, "hi") == "hello from chat"
    with MockServer(scenario=str(root / "chat" / "basic.yaml")) as server:
        assert [rule.name for rule in server.rules] == ["basic.yaml:3"]


# --- 8. chaos rates of several files --------------------------------------------------------------


def test_chaos_rates_adding_up_past_1_over_files_are_a_problem_naming_each(tmp_path: Path) -> None:
    root = tmp_path / "scenarios"
    a = write(root / "a.yaml", "mockai: 1\nchaos: {rate_limit: 0.6}\nrules: []\n")
    b = write(root / "b.yaml", "mockai: 1\nchaos: {server_error: 0.6}\n")
    code, output = check(root)
    expected = (
        f"{b}:2: chaos rates of several files add up to 1.2 ({{rate_limit: 0.6}} in {a}:2; "
        f"{{server_error: 0.6}} in {b}:2): a request gets at most one fault, so together they "
        "must add up to 1 or less"
    )
    assert code == 1 and expected in output
    with pytest.raises(ScenarioError) as refused:
        MockServer(scenario=str(root))
    assert expected in str(refused.value)
    b.write_text("mockai: 1\nchaos: {server_error: 0.4}\n")
    assert check(root) == (0, "mockai check: 1 path(s) OK\n")
    with MockServer(scenario=str(root)) as server:
        assert server.config.chaos == {"rate_limit": 0.6, "server_error": 0.4}
