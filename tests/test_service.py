"""Running mockai as a shared service: Redis going away and coming back, metrics, the admin
token, JSON logs, live reload and graceful shutdown — against real processes on loopback."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_support import RedisServer, ServeProcess, fresh_connections

from mockai import MockServer
from mockai.config import Config
from mockai.errors import ConfigError

MODEL = "gpt-4o-mini"
TOKEN = "admin-token-for-tests"


def _chat(http: httpx.Client, base: str, text: str = "hi", **extra: object) -> httpx.Response:
    return http.post(
        base + "/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": text}], **extra},
    )


def _retried(send: Callable[[], httpx.Response], seconds: float = 10) -> httpx.Response:
    """The first answer that is not the shared state's 503, or the last one after `seconds`."""
    deadline = time.monotonic() + seconds
    answer = send()
    while answer.status_code == 503 and time.monotonic() < deadline:
        answer = send()
    return answer


# --- Redis down mid-run ---------------------------------------------------------------------------


def test_requests_get_the_apis_503_while_redis_is_down_and_service_resumes() -> None:
    redis = RedisServer().start()
    try:
        args = ["--workers", "2", "--state", redis.url("outage"), "--fallback", "generate"]
        args.append("--quiet")
        with ServeProcess(args) as served, fresh_connections() as http:
            rule = {"name": "kept", "match": {"user": "kept"}, "reply": "still here"}
            assert http.post(served.url_for("/_mockai/rules"), json=rule).status_code == 200
            assert _chat(http, served.base_url).status_code == 200

            redis.kill()
            for _ in range(4):  # whichever worker answers
                down = _chat(http, served.base_url)
                assert down.status_code == 503
                error = down.json()["error"]
                assert set(error) == {"message", "type", "param", "code"}
                assert error["code"] == "mockai_state_unavailable"
                assert "redis://127.0.0.1" in error["message"]
                assert down.headers["retry-after"] == "1"
                assert down.headers["x-request-id"]
            # The SDK sees the API's 503 (and would retry it).
            with (
                openai.OpenAI(
                    base_url=served.url,
                    api_key="sk-x",
                    max_retries=0,
                    http_client=fresh_connections(),
                ) as client,
                pytest.raises(openai.InternalServerError) as failed,
            ):
                client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": "x"}]
                )
            assert failed.value.status_code == 503
            # Liveness is not readiness for the state: the process itself is fine.
            assert http.get(served.url_for("/_mockai/health")).status_code == 200
            admin = http.get(served.url_for("/_mockai/rules"))
            assert admin.status_code == 503 and admin.json()["error"]["code"] == (
                "mockai_state_unavailable"
            )

            redis.start()  # back, empty (no persistence): service resumes on every worker
            deadline = time.monotonic() + 10
            answers = []
            while time.monotonic() < deadline and len(answers) < 6:
                answer = _chat(http, served.base_url, "kept")
                if answer.status_code == 200:
                    answers.append(answer.json()["choices"][0]["message"]["content"])
            assert len(answers) == 6
            # The rule lived in the Redis that died: the new one starts with none.
            assert "still here" not in answers
            # (A worker whose last call failed while Redis came back keeps answering 503 for a
            # second, its breaker's pause; the other may have served all six answers by then.)
            posted = _retried(lambda: http.post(served.url_for("/_mockai/rules"), json=rule))
            assert posted.status_code == 200
            kept = _retried(lambda: _chat(http, served.base_url, "kept"))
            assert kept.json()["choices"][0]["message"]["content"] == "still here"
    finally:
        redis.stop()


def test_a_redis_that_stops_answering_gets_503s_and_then_fails_fast_until_it_is_back() -> None:
    """A stalled Redis (connections open, no answers) is reported like one that is down: the
    first request waits out the client's timeouts (2 s, one retry), the ones after it get the
    503 at once instead of waiting again (~8 s a request without that), and service resumes."""
    redis = RedisServer().start()
    try:
        with (
            MockServer(state=redis.url(), log_requests=False) as server,
            httpx.Client(timeout=60) as http,
        ):
            assert _chat(http, server.base_url).status_code == 200
            redis.pause()
            began = time.monotonic()
            stalled = _chat(http, server.base_url)
            first = time.monotonic() - began
            assert stalled.status_code == 503, stalled.text
            assert stalled.json()["error"]["code"] == "mockai_state_unavailable"
            assert first < 30  # bounded by the timeouts, not held for good
            began = time.monotonic()
            again = [_chat(http, server.base_url).status_code for _ in range(5)]
            assert again == [503] * 5
            # Failing fast: the five took less than the first one alone (each would have
            # waited for its own timeouts).
            assert time.monotonic() - began < first
            redis.resume()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if _chat(http, server.base_url).status_code == 200:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("no 200 within 30 s of Redis answering again")
    finally:
        redis.stop()


def test_a_server_starts_while_redis_is_down() -> None:
    redis = RedisServer()  # never started
    with MockServer(state=redis.url(), log_requests=False) as server, httpx.Client() as http:
        assert _chat(http, server.base_url).status_code == 503
        assert http.get(server.url_for("/_mockai/health")).json()["state"].startswith("redis://")


# --- metrics --------------------------------------------------------------------------------------


def _scrape(http: httpx.Client, base: str, **headers: str) -> dict[str, dict[tuple, float]]:
    """The metrics, parsed by prometheus-client's own parser: name -> labels -> value."""
    answer = http.get(base + "/_mockai/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    return found


def _total(metrics: dict[str, dict[tuple, float]], name: str, **where: str) -> float:
    return sum(
        value
        for labels, value in metrics.get(name, {}).items()
        if all((key, want) in labels for key, want in where.items())
    )


def test_counters_summed_over_workers_never_go_down_between_scrapes() -> None:
    """Each scrape is answered by one worker, adding the others' shared totals: alternate scrapes
    must not see two snapshots neither of which is the later (23 of 150 went down)."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    with ServeProcess(["--workers", "2", "--quiet"]) as served:
        seen: list[float] = []
        for _ in range(60):
            with fresh_connections() as http:  # (a new connection: either worker answers)
                http.post(served.url + "/chat/completions", json=body).raise_for_status()
                seen.append(_total(_scrape(http, served.base_url), "mockai_requests_total"))
    assert seen == sorted(seen), seen
    assert seen[-1] >= 30  # both workers' requests are in it (most of them, a second late)


def test_metrics_count_requests_rules_faults_tokens_and_latency(tmp_path: Path) -> None:
    scenario = tmp_path / "rules.yaml"
    scenario.write_text(
        "mockai: 1\nfallback: generate\nrules:\n"
        "  - name: greet\n    match: {user: hello}\n    reply: {content: hi there}\n"
    )
    with (
        MockServer(scenarios=(str(scenario),), log_requests=False) as server,
        httpx.Client() as http,
    ):
        for _ in range(3):
            assert _chat(http, server.base_url, "hello").status_code == 200
        assert _chat(http, server.base_url, "other", stream=True).status_code == 200
        failed = _chat(http, server.base_url, "x", max_tokens=-5)
        assert failed.status_code == 400
        faulty = http.post(
            server.url + "/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
            headers={"x-mockai-fault": "rate_limit"},
        )
        assert faulty.status_code == 429
        metrics = _scrape(http, server.base_url)
    assert _total(metrics, "mockai_requests_total", endpoint="chat") == 6
    assert _total(metrics, "mockai_requests_total", endpoint="chat", status="200") == 4
    assert _total(metrics, "mockai_rule_hits_total", rule="greet") == 3
    assert _total(metrics, "mockai_errors_total", status="400") == 1
    assert _total(metrics, "mockai_errors_total", status="429") == 1
    assert _total(metrics, "mockai_faults_total", kind="rate_limit") == 1
    assert _total(metrics, "mockai_tokens_total", kind="completion") > 0
    assert _total(metrics, "mockai_tokens_total", kind="prompt") > 0
    assert _total(metrics, "mockai_request_duration_seconds_count", endpoint="chat") == 6
    assert _total(metrics, "mockai_request_duration_seconds_bucket", le="+Inf") == 6
    assert _total(metrics, "mockai_active_streams") == 0
    assert _total(metrics, "mockai_requests_in_flight") == 0


@pytest.mark.parametrize(
    ("path", "model", "body"),
    [
        ("/chat/completions", MODEL, {"messages": [{"role": "user", "content": "hi"}]}),
        ("/completions", "gpt-3.5-turbo-instruct", {"prompt": "hi"}),
        (
            "/azure/openai/v1/chat/completions",
            MODEL,
            {"messages": [{"role": "user", "content": "hi"}]},
        ),
    ],
)
def test_a_stream_without_include_usage_counts_its_tokens(
    path: str, model: str, body: dict[str, object]
) -> None:
    """The SDKs stream without `stream_options.include_usage` by default, so the stream sends no
    usage: its tokens are the answer's all the same, as many as the same request's unstreamed
    answer bills (mockai_tokens_total counted none of them)."""
    counted = []
    with MockServer(log_requests=False) as server, httpx.Client() as http:
        openai_routes = not path.startswith("/azure")
        url = (server.url if openai_routes else server.base_url) + path
        for stream in (False, True):
            before = _scrape(http, server.base_url)
            answer = http.post(url, json={"model": model, **body, "stream": stream})
            assert answer.status_code == 200, answer.text
            assert (b'"usage":{' in answer.content) is not stream  # (none in the stream)
            after = _scrape(http, server.base_url)
            counted.append(
                [
                    _total(after, "mockai_tokens_total", model=model, kind=kind)
                    - _total(before, "mockai_tokens_total", model=model, kind=kind)
                    for kind in ("prompt", "completion")
                ]
            )
    unstreamed, streamed = counted
    assert unstreamed[0] > 0 and unstreamed[1] > 0
    assert streamed == unstreamed


def test_a_streams_tokens_are_those_its_usage_chunk_bills() -> None:
    """A profile's stream bills its own usage (DeepSeek's completion holds the reasoning): the
    metrics count what the usage chunk sent, as many as the unstreamed answer bills; they had
    counted the OpenAI codec's usage under it, without the reasoning tokens."""
    model = "deepseek-reasoner"
    message = {"messages": [{"role": "user", "content": "why is the sky blue?"}]}
    billed, counted = [], []
    with MockServer(log_requests=False) as server, httpx.Client() as http:
        url = server.base_url + "/deepseek/v1/chat/completions"
        for stream in ({}, {"stream": True, "stream_options": {"include_usage": True}}):
            before = _scrape(http, server.base_url)
            answer = http.post(url, json={"model": model, **message, **stream})
            assert answer.status_code == 200, answer.text
            if stream:
                events = [line[6:] for line in answer.text.splitlines() if line[6:7] == "{"]
                usage = json.loads(events[-1])["usage"]
            else:
                usage = answer.json()["usage"]
            billed.append(usage["completion_tokens"])
            after = _scrape(http, server.base_url)
            counted.append(
                _total(after, "mockai_tokens_total", model=model, kind="completion")
                - _total(before, "mockai_tokens_total", model=model, kind="completion")
            )
    assert usage["completion_tokens_details"]["reasoning_tokens"] > 0
    assert counted == billed and billed[0] == billed[1]


def test_metrics_add_up_every_worker(redis: RedisServer) -> None:
    args = ["--workers", "3", "--state", redis.url(), "--quiet"]
    with ServeProcess(args) as served, fresh_connections() as http:
        pids = set()
        for i in range(12):
            assert _chat(http, served.base_url, f"count {i}").status_code == 200
        # Whichever worker takes the scrape, the sums are the server's (the other workers'
        # totals are at most a second old).
        deadline = time.monotonic() + 10
        agreeing = 0
        while agreeing < 6 and time.monotonic() < deadline:
            pids.add(http.get(served.url_for("/_mockai/health")).json()["pid"])
            metrics = _scrape(http, served.base_url)
            counted = _total(metrics, "mockai_requests_total", endpoint="chat")
            assert counted <= 12
            if counted == 12:
                agreeing += 1
                assert (
                    _total(metrics, "mockai_request_duration_seconds_count", endpoint="chat") == 12
                )
        assert agreeing == 6
        assert len(pids) > 1


def test_an_active_stream_is_visible_while_it_is_sent(tmp_path: Path) -> None:
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(
        "mockai: 1\nrules:\n  - name: slow\n    match: {user: slow}\n"
        "    reply: {content: one two three four five six seven eight}\n"
        "    stream: {chunk_delay: 150ms}\n"
    )
    with (
        MockServer(scenarios=(str(scenario),), log_requests=False) as server,
        httpx.Client() as http,
    ):
        with http.stream(
            "POST",
            server.url + "/chat/completions",
            json={
                "model": MODEL,
                "messages": [{"role": "user", "content": "slow"}],
                "stream": True,
            },
        ) as streaming:
            chunks = streaming.iter_bytes()
            next(chunks)
            during = _scrape(http, server.base_url)
            assert b"[DONE]" in b"".join(chunks)
        after = _scrape(http, server.base_url)
    assert _total(during, "mockai_active_streams") == 1
    assert _total(during, "mockai_requests_in_flight") == 1
    assert _total(after, "mockai_active_streams") == 0


# --- the admin token --------------------------------------------------------------------------


def test_admin_remote_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="--admin-token"):
        MockServer(admin_remote=True)
    done = ServeProcess(["--admin-remote"])
    with pytest.raises(RuntimeError, match="admin token"):
        done.start()


def test_the_admin_token_guards_every_admin_endpoint_but_health() -> None:
    with MockServer(admin_token=TOKEN, log_requests=False) as server, httpx.Client() as http:
        base = server.url_for("/_mockai")
        for method, path in [
            ("GET", "/requests"),
            ("DELETE", "/requests"),
            ("POST", "/reset"),
            ("GET", "/rules"),
            ("POST", "/rules"),
            ("DELETE", "/rules"),
            ("GET", "/metrics"),
        ]:
            missing = http.request(method, base + path)
            assert missing.status_code == 401, (method, path)
            assert missing.json()["error"]["code"] == "mockai_admin_unauthorized"
            assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
            assert missing.headers["www-authenticate"].startswith("Bearer")
            wrong = http.request(method, base + path, headers={"Authorization": "Bearer nope"})
            assert (
                wrong.status_code == 401 and "not this server's" in wrong.json()["error"]["message"]
            )
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert http.get(base + "/requests", headers=good).status_code == 200
        assert http.get(base + "/metrics", headers=good).status_code == 200
        assert http.get(base + "/health").status_code == 200  # probes need no token
        assert http.get(base + "/").status_code == 200  # the page holds no data
        # The API itself is not affected by the admin token.
        assert _chat(http, server.base_url).status_code == 200


def test_remote_clients_with_the_token_are_let_in_and_without_it_are_not() -> None:
    config = Config(host="0.0.0.0", admin_remote=True, admin_token=TOKEN, log_requests=False)
    with MockServer(config, port=0) as server, httpx.Client() as http:
        # A non-loopback address of this machine, when it has one (else loopback shows the same).
        url = f"http://127.0.0.1:{server.port}/_mockai/requests"
        assert http.get(url).status_code == 401
        assert http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


# --- logs -----------------------------------------------------------------------------------------


def test_json_logs_have_one_line_per_request_with_id_rule_faults_and_timings(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "rules.yaml"
    scenario.write_text(
        "mockai: 1\nfallback: generate\nrules:\n"
        "  - name: greet\n    match: {user: hello}\n    reply: hi\n"
    )
    args = ["--scenario", str(scenario), "--log-format", "json"]
    served = ServeProcess(args).start()
    try:
        with httpx.Client() as http:
            first = _chat(http, served.base_url, "hello")
            second = http.post(
                served.url + "/chat/completions",
                json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
                headers={"x-mockai-fault": "server_error"},
            )
    finally:
        served.stop()
    lines = [json.loads(line) for line in served.all_output().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "mockai.access"]
    assert [line["request_id"] for line in access] == [
        first.headers["x-request-id"],
        second.headers["x-request-id"],
    ]
    assert access[0]["rule"] == "greet" and access[0]["source"] == "scenario"
    assert access[0]["status"] == 200 and access[0]["duration_ms"] > 0
    assert access[0]["headers_ms"] is not None
    assert access[1]["faults"] == ["server_error"] and access[1]["status"] == 500
    assert all(isinstance(line["pid"], int) for line in access)


# --- live reload ----------------------------------------------------------------------------------


def _answer_becomes(http: httpx.Client, base: str, expected: str, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = _chat(http, base, "reload me")
        if (
            answer.status_code == 200
            and answer.json()["choices"][0]["message"]["content"] == expected
        ):
            return True
        time.sleep(0.05)
    return False


def test_watch_reloads_rules_and_keeps_the_last_good_ones_on_a_broken_edit(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "rules.yaml"
    scenario.write_text(
        "mockai: 1\nrules:\n  - name: r\n    match: {user: reload}\n    reply: one\n"
    )
    served = ServeProcess(["--scenario", str(scenario), "--watch"]).start()
    try:
        with httpx.Client() as http:
            assert _answer_becomes(http, served.base_url, "one", timeout=1)
            # Editors often save by writing a new file and renaming it over the old one.
            staged = tmp_path / ".rules.yaml.swp"
            staged.write_text(
                "mockai: 1\nrules:\n  - name: r\n    match: {user: reload}\n    reply: two\n"
            )
            staged.replace(scenario)
            assert _answer_becomes(http, served.base_url, "two")
            scenario.write_text(
                "mockai: 1\nrules:\n  - name: r\n    match: {usr: reload}\n    reply: three\n"
            )
            deadline = time.monotonic() + 15
            while "reload refused" not in served.printed() and time.monotonic() < deadline:
                assert _answer_becomes(http, served.base_url, "two", timeout=1)
                time.sleep(0.05)
            assert "reload refused" in served.printed()
            assert _answer_becomes(http, served.base_url, "two", timeout=1)  # still serving
            # A regex `re` refuses with OverflowError, not re.error, had killed the watcher:
            # refused like any problem, and the next good edit is served.
            scenario.write_text(
                "mockai: 1\nrules:\n  - name: r\n    match: {user: {regex: 'a{9999999999}'}}\n"
                "    reply: three\n"
            )
            deadline = time.monotonic() + 15
            while "repetition number" not in served.printed() and time.monotonic() < deadline:
                time.sleep(0.05)
            scenario.write_text(
                "mockai: 1\nrules:\n  - name: r\n    match: {user: reload}\n    reply: four\n"
            )
            assert _answer_becomes(http, served.base_url, "four")
    finally:
        served.stop()
    output = served.all_output()
    assert "reload refused, the previous rules keep serving" in output
    assert f"{scenario}:4:" in output  # the problem at its file:line
    assert "invalid regex 'a{9999999999}'" in output and "Traceback" not in output


# --- graceful shutdown ----------------------------------------------------------------------------


def test_sigterm_lets_a_stream_finish_refuses_new_connections_and_exits_0(tmp_path: Path) -> None:
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(
        "mockai: 1\nrules:\n  - name: slow\n    match: {user: slow}\n"
        "    reply: {content: one two three four five six seven eight nine ten}\n"
        "    stream: {chunk_delay: 100ms}\n"
    )
    served = ServeProcess(["--scenario", str(scenario), "--grace", "20", "--workers", "2"]).start()
    received: list[bytes] = []
    first_chunk = threading.Event()

    def stream() -> None:
        with (
            httpx.Client(timeout=30) as http,
            http.stream(
                "POST",
                served.url + "/chat/completions",
                json={
                    "model": MODEL,
                    "messages": [{"role": "user", "content": "slow"}],
                    "stream": True,
                },
            ) as answer,
        ):
            for chunk in answer.iter_bytes():
                received.append(chunk)
                first_chunk.set()

    reader = threading.Thread(target=stream)
    reader.start()
    try:
        assert first_chunk.wait(10)
        served.signal(signal.SIGTERM)
        time.sleep(0.3)  # the signal reached every worker and the listening sockets are closed
        with pytest.raises(httpx.ConnectError):
            httpx.get(served.url_for("/_mockai/health"), timeout=2)
        reader.join(30)
        assert served.wait(30) == 0
    finally:
        served.stop()
    body = b"".join(received)
    assert body.rstrip().endswith(b"data: [DONE]")  # the stream in flight was not cut
    assert "shutting down" in served.all_output()


def test_sigterm_flushes_a_cassette_being_recorded(tmp_path: Path) -> None:
    cassette = tmp_path / "recorded.yaml"
    with MockServer(log_requests=False) as upstream:
        served = ServeProcess(
            ["--cassette", str(cassette), "--record-mode", "all", "--upstream", upstream.url]
        ).start()
        try:
            with httpx.Client() as http:
                assert _chat(http, served.base_url, "record me").status_code == 200
            served.signal(signal.SIGTERM)
            assert served.wait(30) == 0
        finally:
            served.stop()
    assert "record me" in cassette.read_text()


def test_a_stream_longer_than_the_grace_is_cut_and_the_server_still_exits_0(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "endless.yaml"
    scenario.write_text(
        "mockai: 1\nrules:\n  - name: slow\n    match: {user: slow}\n"
        "    reply: {content: one two three four five six seven eight nine ten}\n"
        "    stream: {chunk_delay: 400ms}\n"
    )
    served = ServeProcess(["--scenario", str(scenario), "--grace", "0.5"]).start()
    received: list[bytes] = []
    first_chunk = threading.Event()
    broken: list[Exception] = []

    def stream() -> None:
        try:
            with (
                httpx.Client(timeout=30) as http,
                http.stream(
                    "POST",
                    served.url + "/chat/completions",
                    json={
                        "model": MODEL,
                        "messages": [{"role": "user", "content": "slow"}],
                        "stream": True,
                    },
                ) as answer,
            ):
                for chunk in answer.iter_bytes():
                    received.append(chunk)
                    first_chunk.set()
        except httpx.HTTPError as error:
            broken.append(error)

    reader = threading.Thread(target=stream)
    reader.start()
    try:
        assert first_chunk.wait(10)
        stopped = time.monotonic()
        served.signal(signal.SIGTERM)
        assert served.wait(30) == 0
        took = time.monotonic() - stopped
        reader.join(30)
    finally:
        served.stop()
    assert took < 4  # the grace (0.5 s) and shutting down, not the stream's 4+ seconds
    assert b"[DONE]" not in b"".join(received)
    assert broken  # the client saw the stream cut, as from a server going away
