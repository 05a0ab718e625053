"""Admin API, journal, rule book, metrics and the pytest fixture: bugs found by the hunt, each
through a real server (the SDK, httpx, `mockai serve`) or a pytest run, as users meet them."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from service_support import REDIS_SERVER, RedisServer, ServeProcess

from mockai import MockServer, ScenarioError
from mockai.pipeline.journal import Journal, JournalEntry
from mockai.wire.outgoing import Body

pytest_plugins = ["pytester"]

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
needs_redis = pytest.mark.skipif(
    shutil.which(REDIS_SERVER) is None and not Path(REDIS_SERVER).exists(),
    reason="no redis-server on this machine",
)


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


@pytest.fixture
def run(pytester: pytest.Pytester) -> Callable[[str], pytest.RunResult]:
    """Run a test file in a fresh pytest session (in-process), as test_plugin.py does."""

    def go(source: str) -> pytest.RunResult:
        pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
        pytester.makepyfile(test_user=source)
        return pytester.runpytest("-p", "no:cacheprovider")

    return go


def _until(condition: Callable[[], bool], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _journal(base_url: str, **headers: str) -> httpx.Response:
    return httpx.get(base_url + "/_mockai/requests", headers=headers, timeout=10)


# --- 1. a retry count that is not ASCII digits ----------------------------------------------------


def test_a_superscript_retry_count_is_no_count(server: MockServer) -> None:
    answer = httpx.post(
        server.url + "/chat/completions",
        json=CHAT,
        headers={"x-stainless-retry-count": "²".encode()},
        timeout=10,
    )
    assert answer.status_code == 200
    assert server.requests[-1].retry_count is None
    journal = _journal(server.base_url)
    assert journal.status_code == 200, journal.text
    assert journal.json()["data"][-1]["retry_count"] is None


@needs_redis
def test_a_superscript_retry_count_under_shared_state(redis: RedisServer) -> None:
    with MockServer(state=redis.url(), log_requests=False) as shared:
        answer = httpx.post(
            shared.url + "/chat/completions",
            json=CHAT,
            headers={"x-stainless-retry-count": "²".encode()},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        journal = _journal(shared.base_url)
        assert journal.status_code == 200, journal.text
        assert journal.json()["data"][-1]["retry_count"] is None


# Header values a client may send: visible ASCII, spaces inside, and any bytes past ASCII
# (UTF-8 or not: `²`, an Arabic-Indic one, `\xff`), mixed with ASCII digits.
VALUE_BYTES = [9, 32, *range(0x21, 0x7F), *range(0x80, 0x100)]
header_values = st.one_of(
    st.lists(st.sampled_from(VALUE_BYTES), min_size=1, max_size=24).map(bytes),
    st.text(st.characters(min_codepoint=0x21, exclude_categories=["Cc", "Cs", "Zs"]), min_size=1,
            max_size=12).map(str.encode),
    st.text("0123456789²\u0661", min_size=1, max_size=12).map(str.encode),
).filter(lambda raw: raw.strip(b" \t") == raw)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=header_values)
def test_any_retry_count_header_never_breaks_the_journal(server: MockServer, value: bytes) -> None:
    answer = httpx.post(
        server.url + "/chat/completions",
        json=CHAT,
        headers={"x-stainless-retry-count": value},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    journal = httpx.get(server.base_url + "/_mockai/requests?limit=1", timeout=10)
    assert journal.status_code == 200, journal.text
    count = journal.json()["data"][-1]["retry_count"]
    digits = value.isdigit() and len(value) <= 9  # (bytes.isdigit: ASCII digits only)
    assert count == (int(value) if digits else None)


def test_the_fixtures_timeline_reads_a_superscript_retry_count(run: Any) -> None:
    result = run(
        """
        import httpx

        def test_it(mockai):
            httpx.post(mockai.url + "/chat/completions", headers={"x-stainless-retry-count":
                "²".encode()}, json={"model": "gpt-4o-mini", "messages": [{"role": "user",
                "content": "hi"}]})
            assert "POST /v1/chat/completions ->" in mockai.timeline()
            mockai.assert_retries_respected()
        """
    )
    result.assert_outcomes(passed=1)


# --- 2. removing a runtime rule does not hide a scenario rule of its name ------------------------


def test_a_removed_runtime_rule_leaves_a_scenario_rule_of_its_name(tmp_path: Path) -> None:
    scenario = tmp_path / "watched.yaml"
    apple = "mockai: 1\nrules:\n  - name: a\n    match: {user: apple}\n    reply: A\n"
    scenario.write_text(apple)
    served = ServeProcess(["--scenario", str(scenario), "--watch"]).start()
    try:
        with httpx.Client(base_url=served.base_url, timeout=10) as http:

            def says(text: str) -> str | None:
                body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
                answer = http.post("/v1/chat/completions", json=body)
                ok = answer.status_code == 200
                return answer.json()["choices"][0]["message"]["content"] if ok else None

            runtime = {"name": "b", "match": {"user": "banana"}, "reply": "runtime B"}
            assert http.post("/_mockai/rules", json=runtime).status_code == 200
            assert http.delete("/_mockai/rules/b").status_code == 200
            # A scenario rule removed at runtime stays removed across reloads.
            assert http.delete("/_mockai/rules/a").status_code == 200
            scenario.write_text(
                apple + "  - name: b\n    match: {user: banana}\n    reply: scenario B\n"
            )
            assert _until(lambda: says("banana") == "scenario B")
            names = [rule["name"] for rule in http.get("/_mockai/rules").json()["data"]]
            assert names == ["b"]
            assert says("apple") is None
    finally:
        served.stop()
    assert "Traceback" not in served.all_output()


# --- 3. DNS rebinding: admin requests addressed to other names -----------------------------------


ADMIN_READS = [
    "/_mockai/requests",
    "/_mockai/journal",
    "/_mockai/rules",
    "/_mockai/metrics",
    "/_mockai/",
]


@pytest.mark.parametrize("path", ADMIN_READS)
@pytest.mark.parametrize("host", ["attacker.example", "127.0.0.1.nip.io", "localhost.evil"])
def test_admin_requests_to_another_name_are_refused(
    server: MockServer, path: str, host: str
) -> None:
    answer = httpx.get(
        server.base_url + path, headers={"Host": f"{host}:{server.port}"}, timeout=10
    )
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["code"] == "mockai_admin_forbidden"
    assert host in error["message"] and "--admin-remote" in error["message"]


def _refused(base_url: str, host: str) -> bool:
    """Whether the journal is refused to a request addressed to `host` (`Host`, no `Origin`)."""
    answer = httpx.get(base_url + "/_mockai/requests", headers={"Host": host}, timeout=10)
    return answer.status_code == 403


def test_only_the_names_of_loopback_reach_the_admin_api(server: MockServer) -> None:
    port = server.port
    loopback = ["localhost", f"localhost:{port}", f"app.localhost:{port}", f"127.0.0.2:{port}",
                f"[::1]:{port}", f"LOCALHOST.:{port}", "127.0.0.1"]  # fmt: skip
    assert not any(_refused(server.base_url, host) for host in loopback)
    # An address is no name a page could make resolve elsewhere (the client is loopback still).
    addresses = [f"0.0.0.0:{port}", f"192.168.1.5:{port}", f"[fe80::1]:{port}", "10.0.0.1"]
    assert not any(_refused(server.base_url, host) for host in addresses)
    assert _refused(server.base_url, f"attacker.example:{port}")
    # What a rebound page's POST sends: its own origin, and its own host.
    own = f"attacker.example:{port}"
    answer = httpx.post(
        server.base_url + "/_mockai/reset",
        headers={"Host": own, "Origin": f"http://{own}"},
        timeout=10,
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "mockai_admin_forbidden"
    health = httpx.get(server.base_url + "/_mockai/health", headers={"Host": own}, timeout=10)
    assert health.status_code == 200  # (probes, from anywhere)


def test_admin_remote_answers_other_names(server: MockServer) -> None:
    token = "a-long-admin-token"
    host = "mockai.internal:8000"
    with MockServer(admin_remote=True, admin_token=token, log_requests=False) as remote:
        headers = {"Host": host, "Authorization": f"Bearer {token}"}
        assert _journal(remote.base_url, **headers).status_code == 200
    assert _refused(server.base_url, host)  # (without --admin-remote)


# --- 4. a batch answered by several rules credits each of them -----------------------------------


def _rule_hits(base_url: str) -> dict[str, float]:
    text = httpx.get(base_url + "/_mockai/metrics", timeout=10).text
    return {
        sample.labels["rule"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "mockai_rule_hits_total"
    }


def test_a_batch_answered_by_two_rules_names_both() -> None:
    rules = [
        {"name": "cats", "match": {"user": "cat"}, "reply": {"seed": 1}},
        {"name": "dogs", "match": {"user": "dog"}, "reply": {"seed": 2}},
    ]
    with MockServer(log_requests=False) as batch:
        batch.add_rules(rules)
        body = {"model": "text-embedding-3-small", "input": ["cat", "dog", "eel"]}
        assert httpx.post(batch.url + "/embeddings", json=body, timeout=10).status_code == 200
        entry = batch.requests[-1]
        assert (entry.rule, entry.rules) == ("cats", ["cats", "dogs"])
        shown = _journal(batch.base_url).json()["data"][-1]
        assert (shown["rule"], shown["rules"]) == ("cats", ["cats", "dogs"])
        assert _rule_hits(batch.base_url) == {"cats": 1.0, "dogs": 1.0}
        served = httpx.get(batch.base_url + "/_mockai/rules", timeout=10).json()["data"]
        assert {rule["name"]: rule["served"] for rule in served} == {"cats": 1, "dogs": 1}


def test_the_fixture_finds_a_batch_by_any_rule_that_answered(run: Any) -> None:
    result = run(
        """
        import openai

        def test_it(mockai):
            mockai.add_rules([
                {"name": "cats", "match": {"user": "cat"}, "reply": {"seed": 1}},
                {"name": "dogs", "match": {"user": "dog"}, "reply": {"seed": 2}},
            ])
            with openai.OpenAI() as client:
                client.embeddings.create(model="text-embedding-3-small", input=["cat", "dog"])
                client.embeddings.create(model="text-embedding-3-small", input="dog")
            mockai.assert_called(1, rule="cats")
            mockai.assert_called(2, rule="dogs")
            assert len(mockai.calls(rule=None)) == 0
            assert "[rule:cats,dogs]" in mockai.timeline()
        """
    )
    result.assert_outcomes(passed=1)


# --- 5. the fixture's add_rules is all or none; rejected rules take no default name --------------


def test_the_fixtures_add_rules_is_all_or_none(run: Any) -> None:
    result = run(
        """
        import pytest
        from mockai import ScenarioError

        def test_it(mockai):
            with pytest.raises(ScenarioError):
                mockai.add_rules([
                    {"name": "good", "match": {"user": "a"}, "reply": "A"},
                    {"name": "bad", "match": {"usr": "b"}, "reply": "B"},
                ])
            assert mockai.server.rules == []
            with pytest.raises(ScenarioError):
                mockai.add_rule({"match": {"usr": "oops"}, "reply": "x"})
            assert mockai.add_rules([{"match": {"user": "hi"}, "reply": "hello"}]) == ["rule-1"]
            assert mockai.add_rule({"match": {"user": "yo"}, "reply": "hey"}) == "rule-2"
        """
    )
    result.assert_outcomes(passed=1)


def _rejected_then_named(base_url: str, text: str) -> list[str]:
    """Default names after a rejected unnamed rule, added over the admin API."""
    with httpx.Client(base_url=base_url + "/_mockai", timeout=10) as admin:
        bad = admin.post("/rules", json=[{"match": {"user": "x"}, "reply": {"bogus": 1}}])
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "mockai_invalid_rule"
        added = admin.post("/rules", json=[{"match": {"user": text}, "reply": "a"}])
        assert added.status_code == 200, added.text
        return [rule["name"] for rule in added.json()["data"]]


def test_a_rejected_rule_takes_no_default_name_over_http(server: MockServer) -> None:
    server.clear_rules()
    try:
        names = _rejected_then_named(server.base_url, "first")
        assert len(names) == 1
        number = int(names[0].removeprefix("rule-"))
        assert _rejected_then_named(server.base_url, "second") == [f"rule-{number + 1}"]
    finally:
        server.clear_rules()


@needs_redis
def test_a_rejected_rule_takes_no_shared_default_name(redis: RedisServer) -> None:
    with MockServer(state=redis.url(), log_requests=False) as shared:
        assert _rejected_then_named(shared.base_url, "first") == ["rule-1"]
        with pytest.raises(ScenarioError):
            shared.add_rules([{"match": {"user": "x"}, "reply": "x"}, {"match": {"usr": "y"}}])
        assert shared.add_rule({"match": {"user": "z"}, "reply": "z"}) == "rule-2"


# --- 6. the journal's byte budget counts only bodies it holds ------------------------------------


def test_an_answer_completing_after_its_entry_left_weighs_nothing() -> None:
    big = "z" * 15_000
    slow = {"name": "slow", "match": {"user": "slow"}, "reply": big, "latency": "2s"}
    with MockServer(
        journal_size=2, journal_bytes=17_000, fallback="generate", log_requests=False
    ) as small:
        small.add_rule(slow)
        with openai.OpenAI(base_url=small.url, api_key="sk-test", max_retries=0) as client:

            def ask(text: str) -> None:
                messages: Any = [{"role": "user", "content": text}]
                client.chat.completions.create(model="gpt-4o-mini", messages=messages)

            waiting = threading.Thread(target=ask, args=("slow",))
            waiting.start()
            assert _until(lambda: len(small.requests) == 1)  # it arrived, and waits its 2 s
            ask("b")
            ask("c")  # the slow one is pushed out of the 2-entry journal while it waits
            waiting.join(timeout=30)
            assert not waiting.is_alive()
            held = small.requests
            assert [entry.seq for entry in held] == [2, 3]
            assert small.journal.bytes == sum(entry.weight for entry in held)
            ask("d")
            assert not any(entry.dropped for entry in small.requests)


def test_an_answer_completing_after_a_clear_weighs_nothing() -> None:
    big = "z" * 15_000
    slow = {"name": "slow", "match": {"user": "slow"}, "reply": big, "latency": "2s"}
    with MockServer(journal_bytes=17_000, fallback="generate", log_requests=False) as small:
        small.add_rule(slow)
        waiting = threading.Thread(
            target=httpx.post,
            args=(small.url + "/chat/completions",),
            kwargs={"json": {**CHAT, "messages": [{"role": "user", "content": "slow"}]},
                    "timeout": 30},
        )  # fmt: skip
        waiting.start()
        assert _until(lambda: len(small.requests) == 1)
        assert httpx.delete(small.base_url + "/_mockai/requests", timeout=10).status_code == 200
        waiting.join(timeout=30)
        assert not waiting.is_alive()
        assert small.journal.bytes == 0
        answer = httpx.post(small.url + "/chat/completions", json=CHAT, timeout=10)
        assert answer.status_code == 200
        assert not small.requests[-1].dropped


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["add", "complete", "clear"]), st.integers(0, 3_000)),
        max_size=40,
    )
)
def test_the_journal_weighs_exactly_the_bodies_it_holds(steps: list[tuple[str, int]]) -> None:
    journal = Journal(maxlen=3, max_bytes=5_000)
    pending: list[JournalEntry] = []
    for action, size in steps:
        if action == "add":
            seq = journal.next_seq()
            entry = JournalEntry(seq, "req", "POST", "/v1/x", 0.0, 0.0, {}, b"b" * (size % 700))
            journal.add(entry)
            pending.append(entry)
        elif action == "complete" and pending:
            entry = pending.pop(size % len(pending))
            entry.response = Body(200, b"r" * size)
            journal.completed(entry)
        elif action == "clear":
            journal.clear()
        held = journal.entries()
        assert journal.bytes == sum(entry.weight for entry in held) <= journal.max_bytes


# --- 7. huge numbers and undecodable tokens are the client's errors, not 500s --------------------


@pytest.mark.parametrize("name", ["limit", "after"])
def test_a_number_of_thousands_of_digits_is_a_400(server: MockServer, name: str) -> None:
    answer = httpx.get(server.base_url + "/_mockai/requests", params={name: "9" * 5000}, timeout=10)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == name and f"Invalid '{name}'" in error["message"]
    assert len(error["message"]) < 300


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=st.text(max_size=30) | st.integers(0, 10**30).map(str))
@example(value="9" * 5000)
def test_any_limit_is_an_answer_or_a_400(server: MockServer, value: str) -> None:
    answer = httpx.get(server.base_url + "/_mockai/requests", params={"limit": value}, timeout=10)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        assert answer.json()["error"]["param"] == "limit"


def _raw_get(port: int, header: bytes) -> bytes:
    """An admin GET carrying `header` as raw bytes (clients refuse to send some of them)."""
    request = b"GET /_mockai/requests?limit=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header
    request += b"\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("token", [b"\xff\xfe-not-utf8", b"\xc3"])
def test_an_admin_token_of_any_bytes_is_a_401(token: bytes) -> None:
    with MockServer(admin_token="change-me-admin-token", log_requests=False) as guarded:
        answer = _raw_get(guarded.port, b"Authorization: Bearer " + token)
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
        assert b'"code":"mockai_admin_unauthorized"' in answer
        right = _raw_get(guarded.port, b"Authorization: Bearer change-me-admin-token")
        assert right.startswith(b"HTTP/1.1 200 ")
