"""Configuration and MockServer fixes: list variables split as each option's items allow (a
`MOCKAI_REDACT` regex is never cut, so its secret stays out of cassettes), `MockServer(models=
"a,b")` takes the command line's form, a stopped server starts again on another event loop,
named runtime rules take no default number, and a request larger than the whole TPM budget
gets the API's "Request too large" 429 without a retry-after."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk import sdk
from service_support import ServeProcess, redis_server

from mockai import Config, MockServer
from mockai.errors import ConfigError

CHAT = [{"role": "user", "content": "ping"}]

# --- 1. list variables: MOCKAI_REDACT, MOCKAI_MODELS, MOCKAI_SCENARIO ---------------------------

# Pieces of regexes as people write them for secrets: quantifiers with commas, literal colons.
_REGEX_PIECES = [
    "acct-",
    "[0-9]",
    "{4,8}",
    "password:",
    r"\s*",
    r"(\S+)",
    "[,:;]",
    "(?:a|b)",
    "x{1,}",
    " ",
    ":",
    ",",
    ";",
    "=",
    "/",
]


def _compiles(text: str) -> bool:
    try:
        re.compile(text)
    except re.error:
        return False
    return True


regexes = (
    st.lists(st.sampled_from(_REGEX_PIECES), min_size=1, max_size=8)
    .map("".join)
    .filter(lambda text: text.strip() != "" and ("," in text or ":" in text))
    .filter(_compiles)  # real regexes, as a user writes them
)


@settings(max_examples=200, deadline=None)
@given(pattern=regexes)
def test_a_redact_variable_is_one_pattern_as_written(pattern: str) -> None:
    assert Config.from_env({"MOCKAI_REDACT": pattern}).redact == (pattern,)


@settings(max_examples=100, deadline=None)
@given(patterns=st.lists(regexes, min_size=1, max_size=4))
def test_several_redact_patterns_go_on_separate_lines(patterns: list[str]) -> None:
    assert Config.from_env({"MOCKAI_REDACT": "\n".join(patterns)}).redact == tuple(patterns)


model_ids = st.lists(
    st.sampled_from(["gpt-4o-mini", "llama3", "8b", ":", "/", "ft", "org", "-", ".", "_", "x"]),
    min_size=1,
    max_size=6,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(model_ids, min_size=1, max_size=4))
def test_model_ids_with_colons_and_slashes_survive_the_variable(ids: list[str]) -> None:
    assert Config.from_env({"MOCKAI_MODELS": ",".join(ids)}).models == tuple(ids)


@pytest.mark.parametrize(
    ("pattern", "text", "secret"),
    [
        ("acct-[0-9]{4,8}", "my account acct-12345678", "acct-12345678"),
        (r"password:\s*(\S+)", "my password: hunter2-hunter2", "hunter2-hunter2"),
    ],
)
def test_a_redact_variable_keeps_its_secret_out_of_the_cassette(
    tmp_path: Path, pattern: str, text: str, secret: str
) -> None:
    cassette = tmp_path / "recorded.yaml"
    with MockServer(log_requests=False) as upstream:
        recording = [
            "--upstream",
            upstream.url,
            "--cassette",
            str(cassette),
            "--record-mode",
            "once",
        ]
        recorder = ServeProcess(["--quiet", *recording], env={"MOCKAI_REDACT": pattern})
        with recorder:
            answer = httpx.post(
                recorder.url + "/embeddings",
                json={"model": "text-embedding-3-small", "input": text},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
    recorded = cassette.read_text()  # written by the time the server has stopped
    assert secret not in recorded
    assert text.replace(secret, "") in recorded  # the rest of the text is kept


def test_model_ids_with_colons_are_served_from_the_variable() -> None:
    env = {"MOCKAI_MODELS": "llama3:8b,ft:gpt-4o-mini:org::abc123, gpt-4o-mini"}
    with ServeProcess(["--quiet"], env=env) as served, sdk(served) as client:
        listed = [model.id for model in client.models.list()]
        assert listed == ["llama3:8b", "ft:gpt-4o-mini:org::abc123", "gpt-4o-mini"]
        reply = client.chat.completions.create(model="llama3:8b", messages=CHAT)
        assert reply.model == "llama3:8b"
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="llama3", messages=CHAT)


def test_a_scenario_path_with_a_comma_is_one_path(tmp_path: Path) -> None:
    rules = tmp_path / "greetings,v2.yaml"
    rules.write_text("mockai: 1\nrules:\n  - {name: hi, match: {user: ping}, reply: pong}\n")
    served = ServeProcess(["--quiet"], env={"MOCKAI_SCENARIO": str(rules)})
    with served, sdk(served) as client:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert reply.choices[0].message.content == "pong"


# --- 2. MockServer keywords in the command line's form ------------------------------------------


def test_models_keyword_takes_the_comma_separated_form() -> None:
    server = MockServer(models="gpt-4o-mini, text-embedding-3-small", log_requests=False)
    with server, sdk(server) as client:
        listed = [model.id for model in client.models.list()]
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert listed == ["gpt-4o-mini", "text-embedding-3-small"]
    assert reply.model == "gpt-4o-mini"
    # A regex or a path is one item however many commas it holds.
    assert MockServer(redact="acct-[0-9]{4,8}").config.redact == ("acct-[0-9]{4,8}",)


def test_match_on_keyword_takes_the_comma_separated_form(tmp_path: Path) -> None:
    cassette = tmp_path / "chat.yaml"
    with MockServer(log_requests=False) as upstream:
        recorder = MockServer(
            upstream=upstream.url, cassette=str(cassette), record_mode="once", log_requests=False
        )
        with recorder, sdk(recorder) as client:
            client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    # Matched on method and path only: another body is answered from the cassette.
    with MockServer(cassette=str(cassette), match_on="method,path", log_requests=False) as server:
        assert server.config.match_on == ("method", "path")
        with sdk(server) as client:
            other = [{"role": "user", "content": "something else entirely"}]
            client.chat.completions.create(model="gpt-4o", messages=other)
        assert server.requests[-1].source == "cassette"


# --- 3. a stopped server starts again on another event loop -------------------------------------


async def _ask(server: MockServer, stream: bool = False) -> str:
    async with openai.AsyncOpenAI(
        base_url=server.url, api_key="sk-test", max_retries=0, timeout=10
    ) as client:
        if not stream:
            reply = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
            return reply.choices[0].message.content or ""
        chunks = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=CHAT,
            stream=True,
        )
        return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])


def test_a_stopped_server_starts_again_on_another_loop() -> None:
    server = MockServer(log_requests=False)

    async def first() -> str:
        async with server:
            server.add_rule({"name": "ping", "match": {"user": "ping"}, "reply": "pong"})
            return await _ask(server)

    async def second() -> tuple[str, str]:
        async with server:  # a new loop: asyncio.run made it
            return await _ask(server), await _ask(server, stream=True)

    assert asyncio.run(first()) == "pong"
    # What a restart on the same loop keeps, it keeps here: the runtime rule, the journal.
    assert asyncio.run(second()) == ("pong", "pong")
    with server, sdk(server) as client:  # and then the background loop's
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert reply.choices[0].message.content == "pong"
        assert [entry.rule for entry in server.requests] == ["ping"] * 4
    assert not server.running


# --- 4. runtime rules: a named rule takes no default number -------------------------------------


def _numbered(server: MockServer) -> list[str]:
    first = server.add_rule({"match": {"user": "hi"}, "reply": "hello"})
    server.add_rules([{"name": "bye", "match": {"user": "bye"}, "reply": "goodbye"}])
    second = server.add_rule({"match": {"user": "x"}, "reply": "y"})
    return [first, second]


def test_a_named_runtime_rule_takes_no_default_number() -> None:
    with MockServer(log_requests=False) as server:
        assert _numbered(server) == ["rule-1", "rule-2"]
        # Over HTTP too, the same numbering.
        added = httpx.post(
            server.url_for("/_mockai/rules"),
            json=[{"name": "own", "match": {"user": "a"}, "reply": "b"}, {"reply": "c"}],
        )
        assert added.status_code == 200, added.text
        assert [rule.name for rule in server.rules][:5] == [
            "rule-1",
            "bye",
            "rule-2",
            "own",
            "rule-3",
        ]


def test_a_named_runtime_rule_takes_no_default_number_with_shared_state() -> None:
    with redis_server() as redis, MockServer(state=redis.url(), log_requests=False) as server:
        assert _numbered(server) == ["rule-1", "rule-2"]


# --- 5. a request larger than the whole TPM budget ----------------------------------------------

_TOO_LARGE = re.compile(
    r"Request too large for gpt-4o in organization org-mockai on tokens per min \(TPM\): "
    r"Limit 100, Requested (\d+)\. The input or output tokens must be reduced in order to run "
    r"successfully\. Visit https://platform\.openai\.com/account/rate-limits to learn more\."
)


def test_a_request_over_the_whole_tpm_budget_is_too_large_with_no_retry_after() -> None:
    with MockServer(limits="tpm=100", log_requests=False) as server:
        with sdk(server) as client, pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="gpt-4o", messages=CHAT, max_tokens=200)
        error = refused.value
        assert (error.type, error.code) == ("tokens", "rate_limit_exceeded")
        assert isinstance(error.body, dict)
        found = _TOO_LARGE.fullmatch(error.body["message"])
        assert found is not None, error.body
        assert int(found.group(1)) > 200
        headers = error.response.headers
        assert "retry-after" not in headers and "retry-after-ms" not in headers
        assert headers["x-ratelimit-limit-tokens"] == "100"
        # Not charged: a request that fits is answered; once the budget is used up, a request
        # that fits later is told when, as before.
        body = {"model": "gpt-4o", "messages": CHAT, "max_tokens": 60}
        assert httpx.post(server.url + "/chat/completions", json=body).status_code == 200
        again = httpx.post(server.url + "/chat/completions", json=body)
    assert again.status_code == 429
    assert again.json()["error"]["message"].startswith("Rate limit reached for gpt-4o")
    assert float(again.headers["retry-after-ms"]) > 0


@pytest.fixture(scope="module")
def budgeted() -> Iterator[MockServer]:
    with MockServer(limits="tpm=100", log_requests=False) as server:
        yield server


@settings(max_examples=40, deadline=None)
@given(max_tokens=st.integers(min_value=1, max_value=400))
def test_only_a_request_that_never_fits_is_too_large(budgeted: MockServer, max_tokens: int) -> None:
    budgeted.reset()  # a fresh budget: the request either fits or never will
    answer = httpx.post(
        budgeted.url + "/chat/completions",
        json={"model": "gpt-4o", "messages": CHAT, "max_tokens": max_tokens},
        timeout=10,
    )
    if answer.status_code == 200:
        return
    assert answer.status_code == 429
    found = _TOO_LARGE.fullmatch(answer.json()["error"]["message"])
    assert found is not None, answer.text
    assert int(found.group(1)) > 100 and int(found.group(1)) >= max_tokens
    assert "retry-after" not in answer.headers and "retry-after-ms" not in answer.headers


@pytest.mark.parametrize("option", ["--cassette", "--scenario"])
def test_an_empty_path_stops_serve_instead_of_meaning_the_working_folder(option: str) -> None:
    """`--cassette "$CASSETTE"` with the variable unset replayed every cassette under `.` while
    the banner said there was none; now it is the option's error, exit 2."""
    done = subprocess.run(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", option, ""],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"argument {option}: an empty path; name a file or a folder" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(ConfigError, match="an empty path"):
        MockServer(cassette="")
