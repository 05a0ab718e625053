"""Fixes from the third bug hunt to what mockai keeps and shows: the no-match report, the journal,
the access log, the configuration's bounds and the fixture's timeline. Each one is exercised the
way a user meets it: the real SDK or httpx against a real server, `mockai serve`, or a pytest run.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web
from cassette_support import LoopbackApp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockai import ConfigError, MockServer
from mockai.cassette import format as cassette_format
from mockai.config import Config
from mockai.scenario import respond, templates

# Loaded before any pytester run (as in test_plugin_hunt_fixes.py): pytester forgets the modules
# first imported during a run, and what outlives it would keep the first copies.
assert cassette_format.CASSETTE_SUFFIXES and respond.StaleFixture and templates

pytest_plugins = ["pytester"]

SECRET_KEY = "sk-PROD-SECRET-DO-NOT-LEAK-0123456789"
SECRET_X_KEY = "LEAKED-X-API-KEY-abcdef"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


# --- 1. the no-match report shows no credential ------------------------------------------------


def _header_rules(server: MockServer) -> None:
    # One rule on each credential header that the request misses, and one wanting exactly the
    # key the client sends but another text: its header condition holds, and its rule side
    # would show the client's key.
    server.add_rule(
        {
            "name": "tenant-a",
            "match": {"headers": {"authorization": {"equals": "Bearer sk-tenant-a"}}},
            "reply": "A",
        }
    )
    server.add_rule(
        {"name": "keyed", "match": {"headers": {"x-api-key": "expected-x-key"}}, "reply": "K"}
    )
    server.add_rule(
        {
            "name": "same-key",
            "match": {"headers": {"authorization": f"Bearer {SECRET_KEY}"}, "user": "other"},
            "reply": "S",
        }
    )


def test_no_match_report_shows_no_credential(caplog: pytest.LogCaptureFixture) -> None:
    with (
        MockServer() as server,
        caplog.at_level(logging.DEBUG),
        openai.OpenAI(
            base_url=server.url,
            api_key=SECRET_KEY,
            default_headers={"x-api-key": SECRET_X_KEY},
            max_retries=0,
        ) as client,
    ):
        _header_rules(server)
        with pytest.raises(openai.BadRequestError) as raised:
            client.chat.completions.create(**CHAT)
        inspector = httpx.get(server.base_url + "/_mockai/requests").text
        journal = json.dumps([entry.as_json() for entry in server.requests])
    report = raised.value.body["message"]  # type: ignore[index]
    assert raised.value.code == "mockai_no_match"
    # Still says which condition failed, and how it was written.
    assert "headers.authorization does not match" in report
    assert "headers.authorization: equals <redacted>" in report
    assert "headers.x-api-key: contains <redacted>" in report
    for secret in (SECRET_KEY, SECRET_X_KEY, "sk-PROD", "LEAKED-X"):
        for where, text in [
            ("answer", report),
            ("log", caplog.text),
            ("journal", journal),
            ("inspector's journal", inspector),
        ]:
            assert secret not in text, f"{secret} in the {where}"
    assert "no rule or recording matches" in caplog.text  # (the report was logged)


def test_strict_teardown_report_writes_no_credential(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_user=f"""
        import openai

        def test_key_specific_reply(mockai):
            mockai.add_rule(
                {{"name": "tenant-a",
                  "match": {{"headers": {{"authorization": {{"equals": "Bearer sk-tenant-a"}}}}}},
                  "reply": "A"}}
            )
            client = openai.OpenAI(base_url=mockai.url, api_key={SECRET_KEY!r}, max_retries=0)
            try:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}]
                )
            except openai.BadRequestError:
                pass  # swallowed: strict mode fails the test at teardown
        """
    )
    report = pytester.path / "report.xml"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--junitxml={report}")
    result.assert_outcomes(passed=1, errors=1)
    written = report.read_text()
    assert "matched no rule or recording" in written
    assert "headers.authorization: equals &lt;redacted&gt;" in written
    assert SECRET_KEY not in written and "sk-PROD" not in written
    assert SECRET_KEY not in "\n".join(result.outlines)


# --- 2, 3. a relayed answer: its credential headers redacted, its request id kept ----------------

UPSTREAM_ID = "req_upstream0123456789abcdef012345"
UPSTREAM_SECRETS = {"set-cookie": "__cf_bm=UPSTREAMCOOKIE; path=/", "openai-organization": "org-UP"}


@pytest.fixture
def upstream() -> Iterator[LoopbackApp]:
    """An OpenAI-like API answering chat as api.openai.com does: a cookie and the org header."""

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        headers = {**UPSTREAM_SECRETS, "x-request-id": UPSTREAM_ID}
        if not body.get("stream"):
            completion = {
                "id": "chatcmpl-up",
                "object": "chat.completion",
                "created": 1735689600,
                "model": "gpt-4o-mini",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "up", "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
            }
            return web.json_response(completion, headers=headers)
        response = web.StreamResponse(headers={**headers, "content-type": "text/event-stream"})
        await response.prepare(request)
        chunk = {
            "id": "chatcmpl-up",
            "object": "chat.completion.chunk",
            "created": 1735689600,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": "up"}, "finish_reason": "stop"}],
        }
        await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n")
        await response.write_eof()
        return response

    with LoopbackApp({"/v1/chat/completions": chat}) as app:
        yield app


@pytest.mark.parametrize("stream", [False, True])
def test_relayed_answer_journaled_without_credentials_under_its_own_id(
    upstream: LoopbackApp, tmp_path: Path, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    cassette = tmp_path / "chat.yaml"
    with (
        MockServer(upstream=upstream.url, cassette=cassette, record_mode="all") as server,
        caplog.at_level(logging.INFO, logger="mockai.access"),
    ):
        answer = httpx.post(server.url + "/chat/completions", json={**CHAT, "stream": stream})
        assert answer.status_code == 200
        # The client got the upstream's id and headers (a relay passes them on).
        assert answer.headers["x-request-id"] == UPSTREAM_ID
        assert answer.headers["set-cookie"] == UPSTREAM_SECRETS["set-cookie"]
        listed = httpx.get(server.base_url + "/_mockai/requests").json()["data"]
        entry = server.requests[-1]
    assert entry.request_id == listed[-1]["request_id"] == UPSTREAM_ID
    for headers in (entry.response_headers, listed[-1]["response_headers"]):
        assert headers["set-cookie"] == headers["openai-organization"] == "<redacted>"
        assert headers["x-request-id"] == UPSTREAM_ID
    shown = json.dumps(listed)
    assert all(value not in shown for value in UPSTREAM_SECRETS.values())
    (access,) = [r for r in caplog.records if r.name == "mockai.access"]
    assert access.mockai["request_id"] == UPSTREAM_ID  # type: ignore[attr-defined]
    assert access.getMessage().endswith(UPSTREAM_ID)


def test_own_answer_keeps_its_own_request_id() -> None:
    with MockServer(log_requests=False) as server:
        answer = httpx.post(server.url + "/chat/completions", json=CHAT)
        assert server.requests[-1].request_id == answer.headers["x-request-id"]


# --- 4. bounded counts and sizes ---------------------------------------------------------------

BOUNDS = {
    "journal_size": 10_000_000,
    "journal_bytes": 2**50,
    "store_bytes": 2**50,
    "upload_bytes": 2**50,
    "file_bytes": 2**50,
    "workers": 1024,
    "created": 253_402_300_799,
}


@pytest.mark.parametrize("name", sorted(BOUNDS))
@pytest.mark.parametrize("excess", [1, 10**20, 2**63, 10**5000], ids=["1", "e20", "2^63", "e5000"])
def test_a_count_or_size_past_its_bound_is_a_config_error(name: str, excess: int) -> None:
    too_large = BOUNDS[name] + excess
    with pytest.raises(ConfigError, match=rf"^{name}: .*too large|^{name}: .*use 1 to 1024"):
        MockServer(**{name: too_large})
    assert getattr(Config().merged(**{name: BOUNDS[name]}), name) == BOUNDS[name]


@given(name=st.sampled_from(sorted(BOUNDS)), value=st.integers(min_value=-(2**80), max_value=2**80))
def test_an_integer_setting_is_taken_within_its_bounds_or_refused(name: str, value: int) -> None:
    lowest = 1 if name == "workers" else 0
    try:
        taken = getattr(Config().merged(**{name: value}), name)
    except ConfigError as error:
        assert str(error).startswith(f"{name}: ")
        assert not lowest <= value <= BOUNDS[name]
    else:
        assert taken == value and lowest <= value <= BOUNDS[name]


def test_serve_refuses_a_huge_journal_size_with_exit_2() -> None:
    env = {**os.environ, "MOCKAI_JOURNAL_SIZE": "99999999999999999999"}
    done = subprocess.run(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--log-format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "OverflowError" not in done.stderr
    assert "MOCKAI_JOURNAL_SIZE" in done.stderr and "at most 10000000" in done.stderr
    assert done.stdout == ""  # never listened


# --- 5. the timeline: one line per request -----------------------------------------------------

# Whatever a client puts in a path (encoded byte by byte, so every one arrives as itself).
_PATHS = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12)


def _encoded(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


def test_timeline_lines_cannot_be_forged(mockai: Any) -> None:
    forged_rule = "greet\n  #9 +  0.000s POST /v1/x -> 200"
    mockai.add_rule({"name": forged_rule, "match": {"user": "hi"}, "reply": "ok"})
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(mockai.url + "/chat/completions", json=body).status_code == 200
    for forged in ("a%0a%20%20%238%20fake", "b%0d%0a", "c%E2%80%A8d", "e%1b[2Jf"):
        httpx.get(f"{mockai.url}/models/{forged}")
    timeline = mockai.timeline()
    assert len(timeline.splitlines()) == len(mockai.requests) == 5, timeline
    assert "/v1/models/a\\n  #8 fake" in timeline and "greet\\n" in timeline


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(paths=st.lists(_PATHS, min_size=1, max_size=3), rule=_PATHS)
def test_timeline_has_one_line_per_request(mockai: Any, paths: list[str], rule: str) -> None:
    mockai.clear_rules()
    mockai.reset()
    mockai.add_rule({"name": rule, "match": {"user": "hi"}, "reply": "ok"})
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=mockai.url, timeout=10) as client:
        assert client.post("/chat/completions", json=body).status_code == 200
        for path in paths:
            client.get(f"/models/{_encoded(path)}")
    entries = mockai.requests
    assert len(entries) == len(paths) + 1
    assert len(mockai.timeline().splitlines()) == len(entries)
    assert len(mockai.timeline(entries[1:]).splitlines()) == len(paths)
