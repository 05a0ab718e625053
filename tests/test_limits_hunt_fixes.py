"""Rate limits, where they broke: a huge charge on Redis, `limits:` in several files, many model
names, infinite or tiny settings, and an HTTP-date `retry-after` in `assert_retries_respected`."""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_sync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_mockai.fixture import MockaiFixture, _server_delay
from service_support import RedisServer

from mockai import MockServer
from mockai.backend.redis_state import RedisBackend
from mockai.delivery import ratelimit
from mockai.delivery.ratelimit import DEFAULT_TPM, Limit, RateLimits, parse_limits
from mockai.errors import ApiError, ConfigError, ScenarioError
from mockai.pipeline.journal import JournalEntry
from mockai.scenario import loader

pytest_plugins = ["pytester"]

PREFIX = f"limits-{uuid.uuid4().hex}"  # the Redis-backed server's keys
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module", params=["memory", "redis"])
def server(request: pytest.FixtureRequest, redis: RedisServer) -> Iterator[MockServer]:
    state = redis.url(PREFIX) if request.param == "redis" else None
    with MockServer(state=state, log_requests=False) as running:
        yield running


@pytest.fixture
def redis_server(redis: RedisServer) -> Iterator[MockServer]:
    with MockServer(state=redis.url(PREFIX), log_requests=False) as running:
        yield running


def _post(server: MockServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=10)


# --- 1. a huge charge on Redis ------------------------------------------------------------------


def test_a_huge_max_output_tokens_is_billed_up_to_the_models_output_limit(
    server: MockServer,
) -> None:
    body = {"model": "gpt-4o-mini", "input": "hi"}
    huge = _post(server, "/responses", {**body, "max_output_tokens": 10**19})
    assert huge.status_code == 200, huge.text
    billed = huge.json()["usage"]["input_tokens"] + 16_384  # gpt-4o-mini's output limit
    assert huge.headers["x-ratelimit-remaining-tokens"] == str(DEFAULT_TPM - billed)
    after = _post(server, "/responses", body)
    assert after.status_code == 200, after.text
    billed += after.json()["usage"]["input_tokens"]
    assert after.headers["x-ratelimit-remaining-tokens"] == str(DEFAULT_TPM - billed)


def _remaining_or_refusal(headers_or_error: dict[str, str] | ApiError) -> Any:
    if isinstance(headers_or_error, ApiError):
        return headers_or_error.status, headers_or_error.type
    return {k: v for k, v in headers_or_error.items() if "remaining" in k}


async def _admit(limits: RateLimits, model: str, tokens: int) -> dict[str, str] | ApiError:
    try:
        return await limits.admit(model, tokens)
    except ApiError as error:
        return error


CHARGES = st.lists(
    st.tuples(
        st.sampled_from(["free", "budgeted"]),
        st.one_of(st.integers(0, 10**6), st.integers(2**52, 10**30)),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(charges=CHARGES)
def test_redis_charges_any_count_as_in_process_does(
    redis: RedisServer, charges: list[tuple[str, int]]
) -> None:
    limits = {"budgeted": Limit(rpm=100, tpm=ratelimit.MOST)}
    local = RateLimits(limits)

    async def run() -> None:
        backend = RedisBackend(redis.url())
        await backend.connect()
        try:
            shared = backend.budgets(limits)
            for model, tokens in charges:
                on_redis = _remaining_or_refusal(await _admit(shared, model, tokens))
                assert on_redis == _remaining_or_refusal(await _admit(local, model, tokens))
        finally:
            await backend.close()

    asyncio.run(run())


def test_a_window_an_older_mockai_poisoned_heals(
    redis: RedisServer, redis_server: MockServer
) -> None:
    key = f"{PREFIX}:budget:gpt-4.1-mini"
    client = redis_sync.Redis(port=redis.port)
    # What `%d` wrote for a count past 2**63 (and the pattern reading it back then choked on).
    client.hset(key, "99999999999", "1:-9223372036854775808")
    answer = _post(redis_server, "/chat/completions", {"model": "gpt-4.1-mini", **CHAT})
    assert answer.status_code == 200, answer.text
    assert not client.hexists(key, "99999999999")


def test_a_budget_key_another_program_overwrote_is_the_apis_503(
    redis: RedisServer, redis_server: MockServer
) -> None:
    key = f"{PREFIX}:budget:gpt-4.1"
    client = redis_sync.Redis(port=redis.port)
    client.set(key, "not a hash")
    refused = _post(redis_server, "/chat/completions", {"model": "gpt-4.1", **CHAT})
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert set(refused.json()) == {"error"} and set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "mockai_state_unavailable"
    assert "Redis could not charge the rate-limit budget: WRONGTYPE" in error["message"]
    assert refused.headers["retry-after"] == "1"
    client.delete(key)
    assert _post(redis_server, "/chat/completions", {"model": "gpt-4.1", **CHAT}).status_code == 200


# --- 2. limits from several files -----------------------------------------------------------------


def _write(folder: Path, name: str, limits: str) -> str:
    path = folder / name
    path.write_text(f"mockai: 1\nlimits: {limits}\nrules: []\n")
    return str(path)


def test_contradicting_limits_stop_check_and_serve(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.yaml", "{gpt-4o: {rpm: 3}}")
    b = _write(tmp_path, "b.yaml", "{gpt-4o: {rpm: 5}}")
    problem = f"{b}:2: limits: gpt-4o:rpm=5 conflicts with limits: gpt-4o:rpm=3 in {a}:2 (set it in one file only)"
    checked = subprocess.run(
        [sys.executable, "-m", "mockai", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (checked.returncode, checked.stderr.splitlines()[0]) == (1, problem), checked.stderr
    with pytest.raises(ScenarioError) as refused:
        MockServer(scenarios=(a, b), log_requests=False).start()
    assert str(refused.value) == problem


def test_limits_of_several_files_merge_however_they_are_written(tmp_path: Path) -> None:
    files = (
        _write(tmp_path, "l1.yaml", "{gpt-4o: {rpm: 3}}"),
        _write(tmp_path, "l3.yaml", "'gpt-4o:rpm=3'"),  # the same budget, as text
        _write(tmp_path, "l4.yaml", "{gpt-4o-mini: {rpm: 2}}"),
    )
    with MockServer(scenarios=files, log_requests=False) as running:
        for model, rpm in (("gpt-4o", 3), ("gpt-4o-mini", 2)):
            statuses = [
                _post(running, "/chat/completions", {"model": model, **CHAT}).status_code
                for _ in range(rpm + 1)
            ]
            assert statuses == [200] * rpm + [429], model


LIMITS = st.dictionaries(
    st.sampled_from(["*", "gpt-4o", "gpt-4o-mini", "gpt-4o*"]),
    st.builds(
        Limit,
        rpm=st.integers(0, 3),  # 0: a file of its own that is wrong
        tpm=st.sampled_from([1000, DEFAULT_TPM]),
        window=st.sampled_from([2.0, 60.0]),
    ),
    min_size=1,
    max_size=3,
)


def _written(limits: dict[str, Limit], as_text: bool) -> str:
    """`limits` as a scenario file gives them: text, or a mapping (JSON is YAML)."""
    if as_text:
        text = ";".join(
            f"{'' if p == '*' else p + ':'}rpm={b.rpm},tpm={b.tpm},window={b.window:g}s"
            for p, b in limits.items()
        )
        return json.dumps(text)
    mapping: dict[str, Any] = {}
    for pattern, limit in limits.items():
        settings_ = {"rpm": limit.rpm, "tpm": limit.tpm, "window": limit.window}
        if pattern == "*":  # every model's: the top-level keys
            mapping.update(settings_)
        else:
            mapping[pattern] = settings_
    return json.dumps(mapping)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("limits")


@settings(max_examples=60, deadline=None)
@given(first=LIMITS, second=LIMITS, first_text=st.booleans(), second_text=st.booleans())
def test_two_files_limits_merge_or_give_a_file_line_problem(
    folder: Path,
    first: dict[str, Limit],
    second: dict[str, Limit],
    first_text: bool,
    second_text: bool,
) -> None:
    a = _write(folder, "a.yaml", _written(first, first_text))
    b = _write(folder, "b.yaml", _written(second, second_text))
    scenario_set, problems = loader.collect([a, b])
    shown = [str(problem) for problem in problems]
    if any(limit.rpm < 1 for limit in (*first.values(), *second.values())):
        assert shown and all(re.match(r"\S+\.yaml:2: limits: ", text) for text in shown), shown
        return
    clashes = [p for p in second if p in first and first[p] != second[p]]
    assert len(shown) == len(clashes), shown
    for text, pattern in zip(shown, clashes, strict=True):
        assert text.startswith(f"{b}:2: limits: ") and "conflicts with limits: " in text
        assert text.endswith(f" in {a}:2 (set it in one file only)")
        assert ratelimit.shown(pattern, second[pattern]) in text
    if not clashes:
        merged = {**first, **{p: b for p, b in second.items() if p not in first}}
        assert parse_limits(scenario_set.value("limits")) == merged


# --- 3. many model names -------------------------------------------------------------------------


def test_many_model_names_never_wipe_a_configured_budget() -> None:
    limits = RateLimits({"gpt-4o": Limit(rpm=2, window=600.0)})
    limits.charge("gpt-4o", 1, 0.0)
    limits.charge("gpt-4o", 1, 0.0)
    for number in range(2 * ratelimit.MAX_WINDOWS + 10):
        limits.charge(f"load-{number}", 1, 1.0)
    with pytest.raises(ApiError) as refused:
        limits.charge("gpt-4o", 1, 2.0)
    assert (refused.value.status, refused.value.type) == (429, "requests")
    assert len(limits._windows) <= ratelimit.MAX_WINDOWS  # the others' windows went


def test_a_budget_for_every_model_keeps_the_windows_in_use() -> None:
    limits = RateLimits({"*": Limit(rpm=1, window=1.0)})
    count = ratelimit.MAX_WINDOWS + 100
    for number in range(count):
        limits.charge(f"load-{number}", 1, 0.0)
    with pytest.raises(ApiError):  # still counted, though more models came after it
        limits.charge("load-0", 1, 0.5)
    for number in range(count):  # the first ones' usage has left their windows: they may go
        limits.charge(f"later-{number}", 1, 10.0)
    assert len(limits._windows) <= count


def test_the_server_keeps_a_budget_past_the_windows_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_WINDOWS", 8)
    with (
        MockServer(limits="gpt-4o:rpm=2,window=10m", log_requests=False) as running,
        httpx.Client(base_url=running.url, timeout=10) as client,
    ):

        def ask(model: str) -> httpx.Response:
            return client.post("/chat/completions", json={"model": model, **CHAT})

        assert [ask("gpt-4o").status_code for _ in "ab"] == [200, 200]
        assert {ask(f"model-{number}").status_code for number in range(12)} == {200}
        refused = ask("gpt-4o")
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["type"] == "requests"


# --- 4. infinite or tiny settings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"rpm": math.inf}, "limits: rpm must be a whole number >= 1, got inf"),
        (
            {"gpt-4o": {"tpm": -math.inf}},
            "limits: gpt-4o: tpm must be a whole number >= 1, got -inf",
        ),
        ({"rpm": 1e300}, "limits: rpm must be at most 9007199254740991, got 1e+300"),
        (
            "tpm=99999999999999999999999999",
            "limits: tpm=99999999999999999999999999: tpm must be at most 9007199254740991, got '99999999999999999999999999'",
        ),
        ({"window": 1e-310}, "limits: window must be at least 1ms, got 1e-310"),
        (
            "rpm=3,window=0.5ms",
            "limits: rpm=3,window=0.5ms: window must be at least 1ms, got '0.5ms'",
        ),
    ],
)
def test_infinite_huge_and_tiny_limits_are_refused(spec: object, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_limits(spec)
    assert str(refused.value) == message
    with pytest.raises(ConfigError) as refused:
        MockServer(limits=spec, log_requests=False)
    assert str(refused.value) == message


def test_bad_limits_in_files_are_file_line_problems(tmp_path: Path) -> None:
    inf = _write(tmp_path, "inf.yaml", "{rpm: .inf}")
    tiny = _write(tmp_path, "tiny.yaml", "{window: 1.0e-310}")
    checked = subprocess.run(
        [sys.executable, "-m", "mockai", "check", inf, tiny],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 1, checked.stderr
    assert checked.stderr.splitlines()[:2] == [
        f"{inf}:2: limits: rpm must be a whole number >= 1, got inf",
        f"{tiny}:2: limits: window must be at least 1ms, got 1e-310",
    ]
    with pytest.raises(ScenarioError, match=re.escape(f"{tiny}:2: limits: window must be")):
        MockServer(scenarios=(tiny,), log_requests=False).start()


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (
            ["--limits", "tpm=99999999999999999999999999"],
            {},
            "tpm must be at most 9007199254740991",
        ),
        ([], {"MOCKAI_LIMITS": "rpm=3,window=0.0001"}, "window must be at least 1ms, got '0.0001'"),
    ],
)
def test_serve_refuses_bad_limits_and_does_not_start(
    args: list[str], env: dict[str, str], said: str
) -> None:
    served = subprocess.run(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
    )
    assert served.returncode == 2, served.stderr
    assert said in served.stderr and "Traceback" not in served.stderr
    assert "listening" not in served.stdout


def test_the_marker_refuses_infinite_and_tiny_limits(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_user="""
        import pytest

        @pytest.mark.mockai(limits={"gpt-4o": {"rpm": float("inf")}})
        def test_inf(mockai):
            pass

        @pytest.mark.mockai(limits={"window": 1e-310})
        def test_tiny(mockai):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*mockai could not start:*",
            "limits: gpt-4o: rpm must be a whole number >= 1, got inf",
            "*mockai could not start:*",
            "limits: window must be at least 1ms, got 1e-310",
        ]
    )
    assert "OverflowError" not in result.stdout.str()


# --- 5. an HTTP-date retry-after -----------------------------------------------------------------


def _rate_limited_then_retried_at_once(ahead: float) -> MockaiFixture:
    when = email.utils.formatdate(time.time() + ahead, usegmt=True)
    return _retried_at_once({"name": "rate_limit", "headers": {"retry-after": when}})


def _retried_at_once(error: dict[str, Any], **rule: Any) -> MockaiFixture:
    """A server whose rule answers `error` then "ok", asked twice in a row, the second time as
    the SDK's first retry: the fixture, to check."""
    server = MockServer(log_requests=False).start()
    mockai = MockaiFixture(server, strict=False)
    sequence = [{"error": error}, {"reply": "ok"}]
    mockai.add_rule({"match": {"user": "hi"}, "sequence": sequence, **rule})
    body = {"model": "gpt-4o-mini", **CHAT}
    for attempt, status in (("0", 429), ("1", 200)):
        answer = httpx.post(
            server.url + "/chat/completions",
            json=body,
            headers={"x-stainless-retry-count": attempt},
            timeout=10,
        )
        assert answer.status_code == status, answer.text
    return mockai


def test_an_impatient_retry_after_an_http_date_is_caught() -> None:
    mockai = _rate_limited_then_retried_at_once(30)
    try:
        with pytest.raises(AssertionError) as caught:
            mockai.assert_retries_respected()
        asked = re.search(
            r"#2 came 0\.\d{3}s after #1, which asked to wait (\d+\.\d{3})s", str(caught.value)
        )
        assert asked is not None, caught.value
        assert 28 < float(asked.group(1)) <= 30
        shown = re.search(
            r"-> 429 rate_limit_exceeded \(retry after ([\d.]+)s\)", mockai.timeline()
        )
        assert shown is not None and 28 < float(shown.group(1)) <= 30, mockai.timeline()
    finally:
        mockai.server.stop()


def test_an_http_date_over_120_seconds_ahead_means_no_retry() -> None:
    mockai = _rate_limited_then_retried_at_once(300)
    try:
        with pytest.raises(
            AssertionError,
            match=r"#2 retried #1, which asked to wait (29\d|300)s \(over 120s: no retry\)",
        ):
            mockai.assert_retries_respected()
    finally:
        mockai.server.stop()


def _answered(headers: dict[str, str], at: float, took_ms: float) -> JournalEntry:
    return JournalEntry(
        seq=1,
        request_id="req_1",
        method="POST",
        path="/v1/chat/completions",
        received_at=at,
        arrived=0.0,
        headers={},
        kept_body=b"",
        status=429,
        duration_ms=took_ms,
        response_headers=headers,
    )


@settings(max_examples=100)
@given(
    ahead=st.integers(-300, 300),
    at=st.floats(1e9, 2e9),
    took_ms=st.floats(0, 5000),
    ms=st.sampled_from([None, "abc", "1500"]),
)
def test_an_http_date_is_read_as_the_sdk_reads_it(
    ahead: int, at: float, took_ms: float, ms: str | None
) -> None:
    answered = at + took_ms / 1000
    headers = {"retry-after": email.utils.formatdate(answered + ahead, usegmt=True)}
    if ms is not None:
        headers["retry-after-ms"] = ms
    delay = _server_delay(_answered(headers, at, took_ms))
    if ms == "1500":  # a milliseconds header that parses comes first
        assert delay == 1.5
    elif ahead <= 0:  # a date already past: no delay (the SDK backs off as it likes)
        assert delay is None
    else:  # the date has whole seconds: up to one less
        assert delay is not None and ahead - 1 < delay <= ahead


# --- a refused request's rate-limit headers are its model's budget's ------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(refused=st.lists(st.booleans(), min_size=1, max_size=8))
def test_every_answer_counts_down_its_models_budget_refused_or_not(refused: list[bool]) -> None:
    # A request refused before it was parsed (`temperature: 5`) had the headers of another
    # budget: a model limited to 3 requests was told 10,000 were left.
    with MockServer(limits="gpt-4o:rpm=20,tpm=100000", log_requests=False) as server:
        charged = 0
        for bad in refused:
            body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
            if bad:
                body["temperature"] = 5
            answer = httpx.post(server.url + "/chat/completions", json=body)
            assert answer.status_code == (400 if bad else 200)
            charged += not bad
            assert answer.headers["x-ratelimit-limit-requests"] == "20"
            assert answer.headers["x-ratelimit-remaining-requests"] == str(20 - charged)
        names = [entry.model for entry in server.requests]
        assert names == ["gpt-4o"] * len(refused)  # (the journal names it, refused or not)


def test_a_retry_is_timed_from_when_the_answer_went_out() -> None:
    # The 429 took 2 s to come (a rule's latency) and asked for 1 s more: a retry 0.1 s after
    # it is too early, though 2.1 s after the first request arrived (which had passed).
    mockai = _retried_at_once({"name": "rate_limit", "retry_after": 1}, latency="2s")
    try:
        with pytest.raises(AssertionError) as caught:
            mockai.assert_retries_respected()
        came = re.search(
            r"#2 came (\d+\.\d{3})s after #1, which asked to wait 1\.000s", str(caught.value)
        )
        assert came is not None, caught.value
        assert float(came.group(1)) < 1.0
    finally:
        mockai.server.stop()
