"""Scenario-level settings: the layer between the defaults and everything set explicitly."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conformance import checked_server

from mockai import MockServer
from mockai.errors import ScenarioError

FILE = """\
mockai: 1
seed: 7
limits: {rpm: 2, window: 30s}
chaos: {server_error: 0}
rules:
  - name: hello
    match: {user: hi}
    reply: {content: hello}
"""


@pytest.fixture
def scenario(tmp_path: Path) -> str:
    path = tmp_path / "settings.yaml"
    path.write_text(FILE)
    return str(path)


def test_file_settings_apply_unless_set_explicitly(scenario: str) -> None:
    assert MockServer(scenarios=(scenario,)).config.seed == 7
    assert MockServer(scenarios=(scenario,), seed=0).config.seed == 0  # explicit, even the default


def test_scenario_limits_budget_requests(scenario: str) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    with checked_server(scenarios=(scenario,)) as server, httpx.Client(base_url=server.url) as http:
        answers = [http.post("/chat/completions", json=body) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers[:2]] == ["1", "0"]
    assert answers[2].json()["error"]["code"] == "rate_limit_exceeded"
    assert int(answers[2].headers["retry-after"]) >= 1


def test_bad_limits_are_reported_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("mockai: 1\nlimits: {rpm: -3}\nrules: []\n")
    with pytest.raises(ScenarioError) as raised:
        MockServer(scenarios=(str(path),))
    (problem,) = raised.value.problems
    assert (problem.line, problem.message.startswith("limits: ")) == (2, True)
