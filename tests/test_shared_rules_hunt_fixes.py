"""Runtime rules shared through Redis (`--state redis://`): bugs found by the hunt, each through
real servers on one real redis-server, as replicas on several hosts meet them.

- A runtime rule another replica accepted but this one cannot compile (a picture file only that
  host has, a key of another mockai version) is skipped here, logged once, and still listed and
  deletable: it no longer turns every request into a 500.
- A scenario rule taking the name of a runtime rule already in Redis stops the start with
  `file:line: ...`; a runtime rule posted later under a scenario rule's name is not served beside
  it. Never two served rules of one name.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from service_support import RedisServer, ServeProcess

from mockai import MockServer

GREET = """\
mockai: 1
rules:
  - name: greet
    match: {user: "hi"}
    reply: "from scenario"
"""
SKIPPED = "shared runtime rule(s) not served by this server"


@pytest.fixture
def prefix() -> str:
    return "test-" + uuid.uuid4().hex


def _chat(server: MockServer, text: str = "hi") -> httpx.Response:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    return httpx.post(server.url + "/chat/completions", json=body, timeout=30)


def _rules(server: MockServer) -> list[dict[str, Any]]:
    answer = httpx.get(server.base_url + "/_mockai/rules", timeout=30)
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


def _write_definitions(redis: RedisServer, prefix: str, definitions: list[Any]) -> None:
    """Definitions as another mockai (another version, another host) leaves them in Redis."""
    with redis_client.Redis(port=redis.port) as client:
        key = f"{prefix}:rules:definitions"
        client.delete(key)
        if definitions:
            client.rpush(key, *(json.dumps(d) for d in definitions))
        client.set(f"{prefix}:rules:version", uuid.uuid4().hex)


def _skip_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if SKIPPED in r.getMessage()]


# --- 1. a runtime rule another replica cannot compile ------------------------------------------


def test_a_shared_rule_whose_picture_this_host_lacks_is_skipped_listed_and_deletable(
    redis: RedisServer,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8), "red").save(tmp_path / "cat.png")
    url = redis.url(prefix)
    rule = {"name": "pic", "match": {"endpoint": "images"}, "reply": {"image": "cat.png"}}
    with (
        MockServer(state=url, log_requests=False) as host_a,
        MockServer(state=url, log_requests=False) as host_b,
        caplog.at_level(logging.WARNING, logger="mockai"),
    ):
        added = httpx.post(host_a.base_url + "/_mockai/rules", json=rule, timeout=30)
        assert added.status_code == 200, added.text
        (tmp_path / "cat.png").unlink()  # host B has no cat.png (another host, another cwd)

        for _ in range(3):
            answer = _chat(host_b)
            assert answer.status_code == 200, answer.text
        [listed] = _rules(host_b)
        assert listed["name"] == "pic"
        assert listed["origin"] == "<admin>"
        assert listed["problem"].startswith("does not compile here: rule 'pic' reply.image")
        assert "cat.png does not exist" in listed["problem"]
        [logged] = _skip_logs(caplog)  # once, however many requests saw it
        assert "  <admin>: rule 'pic' does not compile here:" in logged

        deleted = httpx.delete(host_b.base_url + "/_mockai/rules/pic", timeout=30)
        assert deleted.json() == {"deleted": "pic"}
        assert _rules(host_b) == []
        assert _rules(host_a) == []


def test_a_definition_from_another_mockai_version_is_skipped_and_clearable(
    redis: RedisServer, prefix: str
) -> None:
    future = {"name": "future", "match": {"future_key": 1}, "reply": "x"}
    older = {"name": "older", "match": {"user": "older"}, "reply": "older answer"}
    with MockServer(state=redis.url(prefix), fallback="generate", log_requests=False) as server:
        _write_definitions(
            redis,
            prefix,
            [
                {"name": "future", "file": "<admin>", "rule": future},
                {"name": "older", "rule": older},  # (no `file`: a KeyError took the server down)
                ["not", "a", "definition"],
            ],
        )
        assert _chat(server).status_code == 200
        answer = _chat(server, "older")
        assert answer.json()["choices"][0]["message"]["content"] == "older answer"
        listed = {rule["name"]: rule for rule in _rules(server)}
        assert list(listed) == ["future", "older", "?"]
        assert listed["future"]["problem"].startswith(
            "does not compile here: unknown match key 'future_key' in rule 'future'"
        )
        assert "problem" not in listed["older"]
        assert listed["?"]["problem"].startswith("is not a rule this mockai version reads")

        # Its name is still taken: never two rules of one name.
        again = httpx.post(server.base_url + "/_mockai/rules", json=future, timeout=30)
        assert again.status_code == 400
        assert "duplicate rule name 'future'" in again.json()["error"]["message"]

        cleared = httpx.delete(server.base_url + "/_mockai/rules", timeout=30)
        assert cleared.json() == {"deleted": 3}
        assert _rules(server) == []
        assert _chat(server).status_code == 200


def test_a_server_starts_on_a_state_holding_a_rule_it_cannot_compile(
    redis: RedisServer, prefix: str
) -> None:
    rule = {"name": "pic", "match": {"endpoint": "images"}, "reply": {"image": "no-such.png"}}
    _write_definitions(redis, prefix, [{"name": "pic", "file": "<admin>", "rule": rule}])
    with MockServer(state=redis.url(prefix), log_requests=False) as server:
        assert _chat(server).status_code == 200
        assert [rule["name"] for rule in _rules(server)] == ["pic"]


# --- 2. a scenario rule and a runtime rule of one name -----------------------------------------


def test_a_scenario_rule_taking_a_shared_runtime_rules_name_stops_the_start(
    redis: RedisServer, prefix: str, tmp_path: Path
) -> None:
    scenario = tmp_path / "greet.yaml"
    scenario.write_text(GREET)
    url = redis.url(prefix)
    with MockServer(state=url, log_requests=False) as host_a:
        runtime = {"name": "greet", "match": {"user": "hi"}, "reply": "from runtime"}
        assert httpx.post(host_a.base_url + "/_mockai/rules", json=runtime).status_code == 200
        command = [sys.executable, "-m", "mockai", "serve", "--port", "0", "--quiet"]
        started = subprocess.run(
            [*command, "--state", url, "--scenario", str(scenario)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert started.returncode == 2
    assert "listening" not in started.stdout
    assert started.stderr == (
        f"mockai: {scenario}:3: rule 'greet' takes the name of a runtime rule in the shared "
        "state (added at <admin>); rename it, or remove that rule first "
        "(DELETE /_mockai/rules/greet)\n"
    )


def test_a_runtime_rule_posted_later_under_a_scenario_rules_name_is_not_served_beside_it(
    redis: RedisServer, prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = tmp_path / "greet.yaml"
    scenario.write_text(GREET)
    url = redis.url(prefix)
    with (
        MockServer(state=url, scenarios=(str(scenario),), log_requests=False) as host_b,
        MockServer(state=url, log_requests=False) as host_a,  # (another replica's files)
        caplog.at_level(logging.WARNING, logger="mockai"),
    ):
        runtime = {"name": "greet", "match": {"user": "hi"}, "reply": "from runtime"}
        assert httpx.post(host_a.base_url + "/_mockai/rules", json=runtime).status_code == 200
        for _ in range(2):
            answer = _chat(host_b)
            assert answer.json()["choices"][0]["message"]["content"] == "from scenario"
        listed = _rules(host_b)
        assert [(r["name"], r["source"], "problem" in r) for r in listed] == [
            ("greet", "rule", True),
            ("greet", "scenario", False),
        ]
        assert listed[0]["problem"] == (
            f"is not served here: the rule at {scenario}:3 has the name 'greet' "
            "(rule names are unique)"
        )
        [logged] = _skip_logs(caplog)
        assert "  <admin>: rule 'greet' is not served here" in logged

        # DELETE removes the runtime definition; the scenario's rule keeps serving.
        deleted = httpx.delete(host_b.base_url + "/_mockai/rules/greet", timeout=30)
        assert deleted.json() == {"deleted": "greet"}
        assert [(r["name"], r["source"]) for r in _rules(host_b)] == [("greet", "scenario")]
        answer = _chat(host_b)
        assert answer.json()["choices"][0]["message"]["content"] == "from scenario"


def _until(condition: Callable[[], bool], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_reload_freeing_the_name_serves_the_skipped_runtime_rule(
    redis: RedisServer, prefix: str, tmp_path: Path
) -> None:
    scenario = tmp_path / "greet.yaml"
    scenario.write_text(GREET)
    url = redis.url(prefix)
    served = ServeProcess(["--state", url, "--scenario", str(scenario), "--watch", "--quiet"])
    with (
        served,
        MockServer(state=url, log_requests=False) as host_a,
        httpx.Client(base_url=served.base_url, timeout=10) as http,
    ):

        def reply(text: str) -> str | None:
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
            answer = http.post("/v1/chat/completions", json=body)
            return answer.json()["choices"][0]["message"]["content"] if answer.is_success else None

        runtime = {"name": "greet", "match": {"user": "hi"}, "reply": "from runtime"}
        assert httpx.post(host_a.base_url + "/_mockai/rules", json=runtime).is_success
        assert reply("hi") == "from scenario"
        scenario.write_text(GREET.replace("greet", "hello").replace('"hi"', '"hello"'))
        assert _until(lambda: reply("hello") == "from scenario")
        assert reply("hi") == "from runtime"  # the name is free: the runtime rule serves
        listed = http.get("/_mockai/rules").json()["data"]
        assert [(r["name"], "problem" in r) for r in listed] == [
            ("greet", False),
            ("hello", False),
        ]
    assert "Traceback" not in served.all_output()


# --- property: whatever definitions Redis holds --------------------------------------------


@pytest.fixture(scope="module")
def property_server(
    redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[MockServer, str]]:
    scenario = tmp_path_factory.mktemp("shared-rules") / "greet.yaml"
    scenario.write_text(GREET)
    prefix = "test-" + uuid.uuid4().hex
    with MockServer(
        state=redis.url(prefix), scenarios=(str(scenario),), log_requests=False
    ) as server:
        yield server, prefix


NAMES = st.sampled_from(["greet", "a", "b"])
RULES = st.one_of(
    st.builds(lambda name: {"name": name, "match": {"user": name}, "reply": name}, NAMES),
    st.builds(lambda name: {"name": name, "match": {"not_a_key": 1}, "reply": "x"}, NAMES),
    st.builds(lambda name: {"name": name, "reply": {"image": "missing.png"}}, NAMES),
)
DEFINITIONS = st.lists(
    st.one_of(
        st.builds(lambda rule: {"name": rule["name"], "file": "<admin>", "rule": rule}, RULES),
        st.builds(lambda rule: {"name": rule["name"], "rule": rule}, RULES),
        st.just({"name": "b"}),
        st.just("not a definition"),
    ),
    max_size=6,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(definitions=DEFINITIONS)
def test_whatever_definitions_redis_holds_each_is_listed_once_and_names_are_served_once(
    redis: RedisServer, property_server: tuple[MockServer, str], definitions: list[Any]
) -> None:
    server, prefix = property_server
    _write_definitions(redis, prefix, definitions)
    assert _chat(server).status_code == 200
    listed = _rules(server)
    runtime = [r for r in listed if r["source"] == "rule"]
    expected = [d["name"] if isinstance(d, dict) else "?" for d in definitions]
    assert [r["name"] for r in runtime] == expected
    served = [r["name"] for r in listed if "problem" not in r]
    assert len(served) == len(set(served))
    assert [r["name"] for r in listed if r["source"] == "scenario"] == ["greet"]
