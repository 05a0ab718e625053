"""Scenario files, rules and templates: bugs found by the tenth hunt, each met as users meet it
(`mockai check`, a served scenario, the admin API, the SDK)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

from mockai import MockServer


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
