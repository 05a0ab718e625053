"""Configuration and MockServer fixes: list variables split as each option's items allow (a
`MOCKAI_REDACT` regex is never cut, so its secret stays out of cassettes), `MockServer(models=
"a,b")` takes the command line's form, a stopped server starts again on another event loop,
named runtime rules take no default number, and a request larger than the whole TPM budget
gets the API's "Request too large" 429 without a retry-after. And: an `--upstream` with
credentials is refused and its query's credentials are hidden in the banner, a Redis password
holding `/ ? #` is never printed, `--replay-speed` is at least 0.001, a missing uvloop is said
before the port is bound, and bad `MOCKAI_REDACT` / `MOCKAI_MATCH_ON` values name the variable."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sdk import sdk
from service_support import ServeProcess, redis_server

from mockai import Config, MockServer
from mockai.backend.redis_state import split_url
from mockai.config import check_option, password_hidden
from mockai.errors import ConfigError
from mockai.server import sites

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
    assert reply.model == "gpt-4o-mini-2024-07-18"  # (the snapshot the alias points to)
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


# --- 6. credentials in --upstream: refused, and never printed -----------------------------------


CASSETTE = str(Path(__file__).parent.parent / "cassettes" / "chat_json.yaml")


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mockai serve --port 0 ARGS` run to its end (these all stop before serving)."""
    return subprocess.run(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("upstream", "said"),
    [
        (
            "http://alice:UpStr3amPass@127.0.0.1:9/v1",
            "'http://alice:***@127.0.0.1:9/v1' holds credentials (user:password@)",
        ),
        ("ftp://bob:UpStr3amPass@host/v1", "'ftp://bob:***@host/v1' is not an http(s) base URL"),
        ("http://bob:Up/Str3amPass@host/v1", "'http://bob:***@host/v1' is not an http(s) base"),
    ],
)
def test_an_upstream_with_credentials_is_refused_without_printing_them(
    tmp_path: Path, upstream: str, said: str
) -> None:
    """Every request carrying its key got a 500 (aiohttp takes the URL's credentials or the
    Authorization header, not both), and the banner printed the password."""
    recording = ["--cassette", str(tmp_path / "c.yaml"), "--record-mode", "all"]
    done = _serve(*recording, "--upstream", upstream)
    assert done.returncode == 2, done.stderr
    assert f"argument --upstream: {said}" in done.stderr
    by_variable = _serve(*recording, env={"MOCKAI_UPSTREAM": upstream})
    assert by_variable.returncode == 2, by_variable.stderr
    assert f"mockai: MOCKAI_UPSTREAM: {said}" in by_variable.stderr
    with pytest.raises(ConfigError) as refused:
        MockServer(upstream=upstream)
    for text in (done.stdout, done.stderr, by_variable.stderr, str(refused.value)):
        assert "Str3amPass" not in text
    assert not (tmp_path / "c.yaml").exists()


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as server:
        yield server


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_banner_hides_the_upstreams_query_credentials(
    tmp_path: Path, upstream: MockServer, log_format: str
) -> None:
    cassette = tmp_path / "c.yaml"
    recording = ["--cassette", str(cassette), "--record-mode", "all", "--quiet"]
    url = upstream.url + "?api_key=QUERYSECRET42&api-version=2024-10-21"
    with (
        ServeProcess([*recording, "--upstream", url, "--log-format", log_format]) as served,
        sdk(served) as client,
    ):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        printed = served.printed()
    assert reply.choices[0].message.content
    shown = f"records from: {upstream.url}?api_key=REDACTED-"
    if log_format == "json":
        banner = json.loads(next(line for line in printed.splitlines() if "listening" in line))
        assert any(line.startswith(shown) for line in banner["answers"]), banner
        assert any(line.endswith("&api-version=2024-10-21") for line in banner["answers"])
    else:
        assert f"  {shown}" in printed, printed
    assert "QUERYSECRET42" not in printed
    assert "QUERYSECRET42" not in cassette.read_text()


# --- 7. a Redis password holding / ? # is never printed -----------------------------------------

# The URL forms the docs accept (operations.md, "The URL"), a password in each.
_STATE_FORMS = [
    "redis://:{}@127.0.0.1:6379/0",
    "redis://default:{}@localhost:6379/1",
    "rediss://:{}@redis.example.com:6380/0?prefix=team",
    "redis://:{}@127.0.0.1:6379/0?prefix=a@b",
    "unix://:{}@/tmp/redis.sock?db=0",
    "redis://127.0.0.1:6379/0?password={}",
]
passwords = st.text(
    st.characters(exclude_categories=["Cs"]) | st.sampled_from("/#?@:%&=;"),
    min_size=4,
    max_size=24,
)


def _said_about(url: str) -> list[str]:
    """What mockai prints about `url` given as --state: its error, or the URL the banner and
    the Redis errors show."""
    said = [password_hidden(url)]
    try:
        check_option("state", url)
    except ConfigError as error:
        said.append(str(error))
    else:
        said.append(split_url(url)[2])
    try:
        Config.from_env({"MOCKAI_STATE": url})
    except ConfigError as error:
        said.append(str(error))
    return said


@settings(max_examples=400, deadline=None)
@given(form=st.sampled_from(_STATE_FORMS), password=passwords)
def test_no_message_about_a_state_url_holds_its_password(form: str, password: str) -> None:
    url = form.format(password)
    assume(password not in form.format("***"))  # (one the rest of the URL spells anyway)
    if "password=" in form:  # a query value ends at & ; or #, as the Redis client reads it
        assume(not any(char in password for char in "&;#"))
    for text in _said_about(url):
        assert password not in text, (url, text)


@pytest.mark.parametrize(
    ("password", "json_logs"), [("pa/ss", False), ("pa#ss", True), ("pa?ss", False)]
)
def test_a_state_password_that_ends_the_host_part_is_hidden(password: str, json_logs: bool) -> None:
    url = f"redis://:{password}@127.0.0.1:6379/0"
    if json_logs:
        done = _serve(env={"MOCKAI_STATE": url, "MOCKAI_LOG_FORMAT": "json"})
        said = json.loads(done.stderr.strip().splitlines()[-1])["message"]
        assert said.startswith("MOCKAI_STATE: 'redis://:***@127.0.0.1:6379/0' has a password")
    else:
        done = _serve("--state", url)
        said = done.stderr.strip().splitlines()[-1]
        assert said.startswith("mockai serve: error: argument --state: 'redis://:***@127.0.0.1")
    assert done.returncode == 2, done.stderr
    assert "percent-encode" in said and "%2F %3F %23" in said
    assert password not in done.stderr + done.stdout


# --- 8. --replay-speed: 0, or a factor of at least 0.001 ----------------------------------------


@settings(max_examples=200, deadline=None)
@given(speed=st.floats(allow_nan=False, allow_infinity=False))
def test_a_replay_speed_is_zero_or_at_least_a_thousandth(speed: float) -> None:
    if speed == 0 or speed >= 0.001:
        assert check_option("replay_speed", speed) == speed
    else:
        with pytest.raises(ConfigError, match=r"^replay_speed: .* at least 0\.001"):
            check_option("replay_speed", speed)


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["--replay-speed", "1e-300"], {}, "argument --replay-speed: 1e-300 is too slow"),
        ([], {"MOCKAI_REPLAY_SPEED": "1e-320"}, "mockai: MOCKAI_REPLAY_SPEED: 9.99989e-321 is too"),
    ],
)
def test_a_replay_speed_too_small_stops_serve(
    args: list[str], env: dict[str, str], said: str
) -> None:
    """1e-300 made every replayed answer wait forever (1e-320: an infinite wait)."""
    done = _serve("--cassette", CASSETTE, *args, env=env)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr
    assert "(1000x slower)" in done.stderr
    with pytest.raises(ConfigError, match="is too slow"):
        MockServer(replay_speed=1e-300)


# --- 9. --event-loop uvloop without uvloop: said before binding, as JSON with JSON logs ----------


def test_a_missing_uvloop_is_said_before_the_port_is_bound(tmp_path: Path) -> None:
    (tmp_path / "uvloop.py").write_text('raise ImportError("No module named uvloop")\n')
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    with socket.socket() as taken:  # a port in use: its error came first
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        serve = ["serve", "--port", port, "--workers", "2", "--event-loop", "uvloop"]
        done = subprocess.run(
            [sys.executable, "-m", "mockai", *serve, "--log-format", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, **env},
        )
    assert done.returncode == 2, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line JSON
    missing = "event_loop: uvloop is not installed (pip install uvloop, or pip install "
    assert [line["message"] for line in lines] == [missing + "'mockai-server[speed]')"]


def test_run_stamped_closes_the_coroutine_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` fails

    async def serve() -> None:
        raise AssertionError("never run")

    coroutine = serve()
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        sites.run_stamped(coroutine, "uvloop")
    assert coroutine.cr_frame is None  # closed: no "never awaited" warning when collected


# --- 10. bad MOCKAI_REDACT / MOCKAI_MATCH_ON values name the variable ---------------------------


@pytest.mark.parametrize(
    ("env", "said"),
    [
        (
            {"MOCKAI_REDACT": "x\nbad("},
            "mockai: MOCKAI_REDACT: 'bad(' is not a valid regular expression",
        ),
        (
            {"MOCKAI_MATCH_ON": "method,bodyy"},
            "mockai: MOCKAI_MATCH_ON: unknown matcher(s) 'bodyy' (did you mean 'body'?",
        ),
    ],
)
def test_a_bad_cassette_variable_is_named(env: dict[str, str], said: str) -> None:
    done = _serve("--cassette", CASSETTE, env=env)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr


@settings(max_examples=100, deadline=None)
@given(token=st.text(string.ascii_letters + string.digits + "-_.~", min_size=8, max_size=40))
def test_a_token_given_as_an_upstreams_userinfo_is_never_shown(token: str) -> None:
    """`--upstream https://TOKEN@host/v1` (a token, not `user:password`) is refused, and the
    refusal, which CI logs keep, shows `***@` in its place."""
    url = f"https://{token}@api.example.com/v1"
    with pytest.raises(ConfigError) as refused:
        check_option("upstream", url)
    assert token not in str(refused.value) and "***@api.example.com" in str(refused.value)


# --- 11. a required API key no client can send -----------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        ((), {"MOCKAI_REQUIRE_API_KEY": "sk-test\n"}, "mockai: MOCKAI_REQUIRE_API_KEY: "),
        ((), {"MOCKAI_REQUIRE_API_KEY": "sk-test "}, "mockai: MOCKAI_REQUIRE_API_KEY: "),
        (("--require-api-key", " sk-test"), {}, "error: argument --require-api-key: "),
        (("--require-api-key", "sk-\ttest"), {}, "error: argument --require-api-key: "),
    ],
)
def test_a_required_key_with_spaces_around_it_stops_serve(
    args: tuple[str, ...], env: dict[str, str], said: str
) -> None:
    """A key from a Kubernetes Secret made with `echo` (a trailing newline), or an env file's
    trailing space, was taken as it was: the SDKs send the key trimmed, or refuse to send it,
    so every request got a 401 "Incorrect API key provided" and nothing said why."""
    done = _serve(*args, env=env)
    assert done.returncode == 2, done.stderr
    assert said + "the key has spaces or a line break around it" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_required_key_is_matched_as_the_sdk_sends_it() -> None:
    with MockServer(require_api_key="sk-test", log_requests=False) as server:
        good = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
        assert good.models.list().data
        bad = openai.OpenAI(base_url=server.url, api_key="sk-other", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
    with pytest.raises(ConfigError, match="the key has spaces"):
        MockServer(require_api_key="sk-test\n")


# --- 12. an upstream URL with a space around it -------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        ((), {"MOCKAI_UPSTREAM": "http://127.0.0.1:9/v1 "}, "mockai: MOCKAI_UPSTREAM: "),
        (("--upstream", "http://127.0.0.1:9/v1\t"), {}, "error: argument --upstream: "),
        (("--upstream", "http://127.0.0.1:9/v 1"), {}, "error: argument --upstream: "),
    ],
)
def test_an_upstream_holding_a_space_stops_serve(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], said: str
) -> None:
    """An env file's trailing space stayed in the URL's path: every request was forwarded to
    `/v1%20/chat/completions`, and the upstream's 404 recorded as the answer."""
    recording = ("--cassette", str(tmp_path / "new.yaml"), "--record-mode", "once")
    done = _serve(*recording, *args, env=env)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and "holds a space, a line break" in done.stderr, done.stderr
    assert not (tmp_path / "new.yaml").exists()
