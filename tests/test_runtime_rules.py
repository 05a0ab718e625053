"""Runtime rules: the Python API and the admin endpoints, so tests in any language can script."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import conformance
import httpx
import openai
import pytest
from sdk import sdk

from mockai import MockServer, ScenarioError

SCENARIO = """mockai: 1
rules:
  - {name: file-hello, match: {user: hello}, reply: from the file}
  - {name: file-count, match: {user: count}, sequence: [{reply: one}, {reply: two}]}
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> str:
    path = tmp_path / "base.yaml"
    path.write_text(SCENARIO)
    return str(path)


@pytest.fixture
def server(scenario_file: str) -> Iterator[MockServer]:
    with conformance.checked_server(scenarios=(scenario_file,)) as running:
        yield running


@pytest.fixture
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


def ask(client: openai.OpenAI, text: str) -> str | None:
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
    )
    return answer.choices[0].message.content


def test_runtime_rules_come_first_and_are_journaled(
    server: MockServer, client: openai.OpenAI
) -> None:
    assert ask(client, "hello") == "from the file"
    assert server.add_rule({"match": {"user": "hello"}, "reply": "from the test"}) == "rule-1"
    assert server.add_rule({"name": "named", "match": {"user": "bye"}, "reply": "ciao"}) == "named"
    assert ask(client, "hello") == "from the test"
    assert ask(client, "bye") == "ciao"
    assert [(e.source, e.rule) for e in server.requests] == [
        ("scenario", "file-hello"),
        ("rule", "rule-1"),
        ("rule", "named"),
    ]


def test_invalid_runtime_rules_are_refused_whole(server: MockServer, client: openai.OpenAI) -> None:
    with pytest.raises(ScenarioError) as raised:
        server.add_rules(
            [
                {"match": {"user": "a"}, "reply": "fine"},
                {"match": {"usr": "b"}, "repy": "typo"},
                {"name": "file-hello", "reply": "taken"},
            ]
        )
    assert str(raised.value).splitlines() == [
        "<runtime>: unknown key 'repy' in rule 'rule-2' (did you mean 'reply'?)",
        "<runtime>: unknown match key 'usr' in rule 'rule-2' (did you mean 'user'?)",
        f"<runtime>: duplicate rule name 'file-hello' (first used at {server.config.scenarios[0]}:3); rule names must be unique",
    ]
    assert [info.name for info in server.rules] == ["file-hello", "file-count"]  # none was added


def test_a_shadowed_runtime_rule_is_refused(server: MockServer) -> None:
    server.add_rule({"name": "catch-all", "reply": "anything"})
    with pytest.raises(ScenarioError) as raised:
        server.add_rule({"name": "never", "match": {"user": "x"}, "reply": "x"})
    assert str(raised.value) == (
        "<runtime>: rule 'never' can never match: rule 'catch-all' (<runtime>) matches everything "
        "it does (put 'never' first, or narrow 'catch-all')"
    )


def test_remove_clear_list_and_reset(
    server: MockServer, client: openai.OpenAI, scenario_file: str
) -> None:
    server.add_rules(
        [
            {"name": "a", "match": {"user": "a"}, "reply": "A"},
            {"name": "b", "match": {"user": "b"}, "reply": "B", "times": 3},
        ]
    )
    assert ask(client, "b") == "B"
    assert ask(client, "count") == "one"
    listed = {info.name: info for info in server.rules}
    assert list(listed) == ["a", "b", "file-hello", "file-count"]
    assert (listed["b"].source, listed["b"].origin, listed["b"].served, listed["b"].limit) == (
        "rule",
        "<runtime>",
        1,
        3,
    )
    assert listed["file-count"].origin == f"{scenario_file}:4"
    assert listed["b"].conditions == ("user: contains 'b'",)
    server.remove_rule("a")
    server.remove_rule("file-hello")  # scenario rules can be removed from one server too
    assert [info.name for info in server.rules] == ["b", "file-count"]
    with pytest.raises(ScenarioError, match="no rule named 'zzz' \\(rules: b, file-count\\)"):
        server.remove_rule("zzz")
    server.reset()
    assert ask(client, "count") == "one"  # counters start over
    server.clear_rules()
    assert [info.name for info in server.rules] == ["file-count"]


def test_load_adds_a_scenario_at_runtime(
    server: MockServer, client: openai.OpenAI, tmp_path: Path
) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "mockai: 1\nrules:\n  - {name: extra, match: {user: extra}, reply: loaded later}\n"
    )
    assert server.load(extra) == ["extra"]
    assert ask(client, "extra please") == "loaded later"
    assert server.requests[-1].source == "scenario"
    with pytest.raises(ScenarioError, match="duplicate rule name 'extra'"):
        server.load(extra)


def test_the_contract_example_with_sdk_retries() -> None:
    with conformance.checked_server() as server:
        server.add_rule(
            {
                "match": {"user": "hi"},
                "sequence": [
                    {"error": {"name": "rate_limit", "retry_after": "10ms"}},
                    {"reply": {"content": "hello"}},
                ],
            }
        )
        with sdk(server, max_retries=2) as client:
            assert ask(client, "hi") == "hello"
        assert [(e.status, e.retry_count) for e in server.requests] == [(429, 0), (200, 1)]


# --- admin endpoints -------------------------------------------------------------------------------


def test_admin_rules_endpoints(server: MockServer, client: openai.OpenAI) -> None:
    with httpx.Client(base_url=server.base_url) as admin:
        added = admin.post(
            "/_mockai/rules", json={"match": {"user": "admin"}, "reply": "scripted over HTTP"}
        )
        assert added.status_code == 200
        assert added.json()["data"][0]["name"] == "rule-1"
        assert added.json()["data"][0]["origin"] == "<admin>"
        both = admin.post(
            "/_mockai/rules",
            json=[
                {"name": "x", "match": {"user": "x"}, "error": "server_error"},
                {"name": "y", "match": {"user": "y"}, "reply": "Y"},
            ],
        )
        assert [r["name"] for r in both.json()["data"]] == ["x", "y"]
        assert ask(client, "admin") == "scripted over HTTP"
        listed = admin.get("/_mockai/rules").json()["data"]
        assert [(r["name"], r["source"], r["served"]) for r in listed][:2] == [
            ("rule-1", "rule", 1),
            ("x", "rule", 0),
        ]
        journal = admin.get("/_mockai/requests").json()["data"]
        assert (journal[-1]["source"], journal[-1]["rule"]) == ("rule", "rule-1")
        assert admin.delete("/_mockai/rules/x").json() == {"deleted": "x"}
        missing = admin.delete("/_mockai/rules/x")
        assert (
            missing.status_code == 404 and missing.json()["error"]["code"] == "mockai_unknown_rule"
        )
        assert admin.delete("/_mockai/rules").json() == {"deleted": 2}
        assert [r["name"] for r in admin.get("/_mockai/rules").json()["data"]] == [
            "file-hello",
            "file-count",
        ]


def test_admin_rejects_invalid_rules_in_the_api_shape(server: MockServer) -> None:
    with httpx.Client(base_url=server.base_url) as admin:
        bad = admin.post(
            "/_mockai/rules", json={"match": {"user": {"regex": "("}}, "reply": {"contnet": "x"}}
        )
        assert bad.status_code == 400
        error = bad.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["code"] == "mockai_invalid_rule"
        assert error["message"].splitlines() == [
            "<admin>: invalid regex '(' in rule 'rule-1' match.user: missing ), unterminated subpattern at position 0",
            "<admin>: unknown key 'contnet' in rule 'rule-1' reply (did you mean 'content'?)",
        ]
        not_json = admin.post("/_mockai/rules", content=b"{nope")
        assert not_json.status_code == 400 and "JSON" in not_json.json()["error"]["message"]
        # (a repeat count past `re`'s bound raises OverflowError, not re.error: it was a 500)
        huge = admin.post("/_mockai/rules", json={"match": {"user": {"regex": "a{9999999999}"}}})
        assert huge.status_code == 400
        assert "the repetition number is too large" in huge.json()["error"]["message"]


def test_admin_reset_restarts_sequences(server: MockServer, client: openai.OpenAI) -> None:
    assert [ask(client, "count") for _ in range(3)] == ["one", "two", "two"]
    httpx.post(server.url_for("/_mockai/reset"))
    assert ask(client, "count") == "one"


# --- concurrency -----------------------------------------------------------------------------------


def test_rules_change_safely_while_serving(server: MockServer) -> None:
    stop = threading.Event()
    failures: list[BaseException] = []

    def traffic() -> None:
        with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as sdk:
            while not stop.is_set():
                try:
                    assert ask(sdk, "hello") in ("from the file", "runtime")
                except BaseException as error:  # reported in the test thread
                    failures.append(error)
                    return

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        for index in range(30):
            name = server.add_rule(
                {"name": f"r{index}", "match": {"user": "hello"}, "reply": "runtime"}
            )
            server.remove_rule(name)
    finally:
        stop.set()
        worker.join()
    assert not failures


@pytest.mark.asyncio
async def test_times_is_exact_under_concurrent_requests(scenario_file: str) -> None:
    async with MockServer(scenarios=(scenario_file,), log_requests=False) as server:
        server.add_rule({"name": "once", "match": {"user": "race"}, "reply": "first", "times": 1})
        server.add_rule({"name": "later", "match": {"user": "race"}, "reply": "later"})
        async with openai.AsyncOpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as sdk:
            answers = await asyncio.gather(
                *(
                    sdk.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "race"}]
                    )
                    for _ in range(20)
                )
            )
    contents = [a.choices[0].message.content for a in answers]
    assert contents.count("first") == 1 and contents.count("later") == 19
