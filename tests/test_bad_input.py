"""Bad input found while trying mockai as a new user: a clear message, never a traceback.

Options, `MOCKAI_*` variables and `MockServer(...)` arguments are refused with what is wrong and
what is accepted (the closest valid value when there is one); values that are accepted but
probably not meant (`--latency 200`, a misspelt variable) are warned about.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai import Config, ConfigError, MockServer
from mockai.cli import build_parser, config_from_args, main
from mockai.config import env_variables
from mockai.delivery.timing import parse_duration, unit_warnings

# --- command-line options ------------------------------------------------------------------------

# (arguments of `mockai serve`, what argparse-style stderr says after `error: `)
REFUSED_OPTIONS = [
    (["--port", "99999"], "argument --port: 99999 is not a port; use 0-65535 (0 picks a free one)"),
    (["--port", "-1"], "argument --port: -1 is not a port; use 0-65535 (0 picks a free one)"),
    (["--port", "eighty"], "argument --port: 'eighty' is not a whole number"),
    (["--workers", "0"], "argument --workers: 0 is not a number of processes; use 1 to 1024"),
    (["--workers", "-3"], "argument --workers: -3 is not a number of processes; use 1 to 1024"),
    (
        ["--replay-speed", "-1"],
        (
            "argument --replay-speed: -1 is negative; use 0 (as fast as possible), 1 (the recorded "
            "pace) or another factor of at least 0.001 (1000x slower)"
        ),
    ),
    (["--replay-speed", "nan"], "argument --replay-speed: 'nan' is not a finite number"),
    (["--replay-speed", "inf"], "argument --replay-speed: 'inf' is not a finite number"),
    (["--seed", "1.5"], "argument --seed: '1.5' is not a whole number"),
    (
        ["--read-timeout", "0"],
        "argument --read-timeout: must be a positive number of seconds, got 0",
    ),
    (["--read-timeout", "never"], "argument --read-timeout: 'never' is not a finite number"),
    (
        ["--event-loop", "tokio"],
        "argument --event-loop: 'tokio' is not valid (valid values: auto, uvloop, asyncio)",
    ),
    (["--seed", "seven"], "argument --seed: 'seven' is not a whole number"),
    (
        ["--profile", "grok"],
        "argument --profile: 'grok' is not a provider profile (did you mean 'groq'?)",
    ),
    (["--host", ""], "argument --host: must be a non-empty string, got ''"),
    (["--require-api-key", " "], "argument --require-api-key: must be a non-empty string"),
    (["--models", ","], "argument --models: give at least one model id, e.g. gpt-4o-mini,gpt-4o"),
    (
        ["--fallback", "genrate"],
        "argument --fallback: 'genrate' is not valid (did you mean 'generate'?)",
    ),
    (
        ["--record-mode", "onse"],
        "argument --record-mode: 'onse' is not a record mode (did you mean 'once'?)",
    ),
    (
        ["--record-mode", "sometimes"],
        (
            "argument --record-mode: 'sometimes' is not a record mode "
            "(modes: none, once, new_episodes, all)"
        ),
    ),
    (
        ["--chaos", "rate_limt=0.1"],
        (
            "argument --chaos: 'rate_limt' is not a fault or a named error "
            "(did you mean 'rate_limit'?)"
        ),
    ),
    (
        ["--chaos", "rate_limit=2"],
        "argument --chaos: 'rate_limit=2' is not NAME=RATE with a rate between 0 and 1",
    ),
    (["--latency", "soon"], "argument --latency: 'soon' is not a duration"),
    (
        ["--latency", "ttft=1s,tft=2s"],
        "argument --latency: unknown timing key 'tft' (did you mean 'ttft'?)",
    ),
    (["--limits", "rpm=0"], "argument --limits: rpm=0: rpm must be a whole number >= 1, got '0'"),
    (["--limits", "rmp=3"], "argument --limits: rmp=3: unknown key 'rmp' (did you mean 'rpm'?)"),
    (
        ["--upstream", "api.openai.com/v1"],
        "argument --upstream: 'api.openai.com/v1' is not an http(s) base URL",
    ),
    (["--upstream", "ftp://example.com"], "argument --upstream: 'ftp://example.com' is not an"),
    (["--upstream", "http://host:port/v1"], "argument --upstream: 'http://host:port/v1' is not"),
    (
        ["--match-on", "method,bdy"],
        "argument --match-on: 'bdy' is not a request matcher (did you mean 'body'?)",
    ),
    (["--redact", "("], "argument --redact: '(' is not a valid regular expression"),
    (
        ["--redact", "a{99999999999}"],
        "argument --redact: 'a{99999999999}' is not a valid regular expression: the repetition",
    ),
    (["--redact", "x*"], "argument --redact: 'x*' matches the empty string"),
    (["--state", "redis:///0"], "argument --state: 'redis:///0' has no host"),
    (["--state", "postgres://db/1"], "argument --state: 'postgres://db/1' is not a state URL"),
    (
        ["--state", "redis://h:6379/cache"],
        "argument --state: 'redis://h:6379/cache' names database",
    ),
    (["--admin-token", "short"], "argument --admin-token: use a token of at least 8 characters"),
    (["--grace", "-1"], "argument --grace: must be 0 or more seconds, got -1"),
    (
        ["--log-format", "xml"],
        "argument --log-format: 'xml' is not valid (valid values: text, json)",
    ),
]


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run `mockai ...` in-process; it must stop with exit 2. Returns stderr."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(("args", "message"), REFUSED_OPTIONS, ids=lambda v: str(v))
def test_bad_option_values_stop_the_parser_with_a_clear_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(["serve", *args], capsys)
    assert err.startswith("usage: mockai serve")  # argparse's style: usage, then the error
    assert f"mockai serve: error: {message}" in err


def test_the_table_covers_every_option_that_takes_a_checked_value() -> None:
    checked = {args[0] for args, _ in REFUSED_OPTIONS}
    takes_free_text = {"--scenario", "--cassette", "--url", "-h", "--help"}
    flags = {
        action.option_strings[-1]
        for group in build_parser()._subparsers._group_actions  # type: ignore[union-attr]
        for parser in group.choices.values()  # type: ignore[union-attr]
        for action in parser._actions
        if action.option_strings and action.nargs != 0
    }
    assert flags - takes_free_text <= checked, flags - takes_free_text - checked


def test_mockai_serve_refuses_a_port_out_of_range_as_users_run_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mockai", "serve", "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "error: argument --port: 99999 is not a port; use 0-65535" in done.stderr
    assert "Traceback" not in done.stderr
    assert "listening" not in done.stdout


# Any text given to any option: the parser exits 2 with its message, or the configuration
# builds; nothing else escapes (no OverflowError, TypeError, ... from deep inside).
_VALUED_OPTIONS = sorted(
    {
        action.option_strings[-1]
        for action in build_parser()
        ._subparsers._group_actions[0]  # type: ignore[union-attr]
        .choices["serve"]  # type: ignore[index]
        ._actions
        if action.option_strings and action.nargs != 0 and "--help" not in action.option_strings
    }
)


@settings(max_examples=150, deadline=None)
@given(option=st.sampled_from(_VALUED_OPTIONS), text=st.text(max_size=30))
def test_no_option_value_escapes_as_a_traceback(option: str, text: str) -> None:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            args = build_parser().parse_args(["serve", f"{option}={text}"])
        except SystemExit as stopped:
            assert stopped.code == 2
            assert f"error: argument {option}" in stderr.getvalue()
            return
    # What the parser let through, the configuration takes (each value is checked once, there).
    config_from_args(args, environ={})


# --- environment variables -----------------------------------------------------------------------

REFUSED_VARIABLES = [
    (
        {"MOCKAI_QUIET": "maybe"},
        "MOCKAI_QUIET: 'maybe' is not a boolean (use 1/0, true/false, yes/no or on/off)",
    ),
    (
        {"MOCKAI_STRICT": "sure"},
        "MOCKAI_STRICT: 'sure' is not a boolean (use 1/0, true/false, yes/no or on/off)",
    ),
    ({"MOCKAI_ADMIN_REMOTE": "2"}, "MOCKAI_ADMIN_REMOTE: '2' is not a boolean"),
    ({"MOCKAI_PORT": "99999"}, "MOCKAI_PORT: 99999 is not a port; use 0-65535"),
    ({"MOCKAI_PORT": "eighty"}, "MOCKAI_PORT: 'eighty' is not a whole number"),
    ({"MOCKAI_WORKERS": "0"}, "MOCKAI_WORKERS: 0 is not a number of processes; use 1 to 1024"),
    ({"MOCKAI_REPLAY_SPEED": "-1"}, "MOCKAI_REPLAY_SPEED: -1 is negative"),
    ({"MOCKAI_SEED": "0x"}, "MOCKAI_SEED: '0x' is not a whole number"),
    ({"MOCKAI_JOURNAL_SIZE": "-5"}, "MOCKAI_JOURNAL_SIZE: must not be negative, got -5"),
    ({"MOCKAI_LATENCY": "soon"}, "MOCKAI_LATENCY: 'soon' is not a duration"),
    (
        {"MOCKAI_CHAOS": "rset=0.1"},
        "MOCKAI_CHAOS: 'rset' is not a fault or a named error (did you mean 'reset'?)",
    ),
    ({"MOCKAI_LIMITS": "rpm=0"}, "MOCKAI_LIMITS: rpm=0: rpm must be a whole number >= 1"),
    (
        {"MOCKAI_RECORD_MODE": "always"},
        "MOCKAI_RECORD_MODE: 'always' is not a record mode (modes: none, once, new_episodes, all)",
    ),
    ({"MOCKAI_FALLBACK": "eror"}, "MOCKAI_FALLBACK: 'eror' is not valid (did you mean 'error'?)"),
    ({"MOCKAI_UPSTREAM": "localhost:11434"}, "MOCKAI_UPSTREAM: 'localhost:11434' is not an http"),
    ({"MOCKAI_MODELS": " , "}, "MOCKAI_MODELS: give at least one model id"),
    (
        {"MOCKAI_QUIET": "1", "MOCKAI_LOG_REQUESTS": "1"},
        "MOCKAI_LOG_REQUESTS='1' and MOCKAI_QUIET='1' contradict each other; set only one of them",
    ),
]


@pytest.mark.parametrize(("env", "message"), REFUSED_VARIABLES, ids=lambda v: str(v))
def test_bad_environment_values_name_the_variable(
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mockai: {message}"), err
    assert "Traceback" not in err


_BOOLEANS = [("1", True), ("true", True), ("Yes", True), ("ON", True)]
_BOOLEANS += [("0", False), ("false", False), ("No", False), ("off", False)]


@pytest.mark.parametrize(("word", "value"), _BOOLEANS)
def test_boolean_variables_take_the_usual_words(word: str, value: bool) -> None:
    config = Config.from_env({"MOCKAI_STRICT": word, "MOCKAI_ALLOW_REPEATS": word})
    assert (config.strict, config.allow_repeats) == (value, value)
    # MOCKAI_QUIET is the command line's --quiet: the opposite of logging requests.
    assert Config.from_env({"MOCKAI_QUIET": word}).log_requests is (not value)


def test_variables_also_take_the_command_line_spellings() -> None:
    config = Config.from_env({"MOCKAI_SCENARIO": f"a.yaml{os.pathsep}b.yaml"})
    assert config.scenarios == ("a.yaml", "b.yaml")
    agreeing = Config.from_env({"MOCKAI_QUIET": "yes", "MOCKAI_LOG_REQUESTS": "no"})
    assert agreeing.log_requests is False


@settings(max_examples=150, deadline=None)
@given(variable=st.sampled_from(sorted(env_variables())), text=st.text(max_size=30))
def test_any_variable_value_is_taken_or_refused_naming_the_variable(
    variable: str, text: str
) -> None:
    try:
        Config.from_env({variable: text})
    except ConfigError as error:
        assert str(error).startswith(f"{variable}: ")


# --- MockServer arguments ------------------------------------------------------------------------

REFUSED_ARGUMENTS = [
    ({"port": 99999}, "port: 99999 is not a port; use 0-65535 (0 picks a free one)"),
    ({"port": -1}, "port: -1 is not a port; use 0-65535 (0 picks a free one)"),
    ({"workers": 0}, "workers: 0 is not a number of processes; use 1 to 1024"),
    ({"replay_speed": -0.5}, "replay_speed: -0.5 is negative"),
    ({"replay_speed": float("inf")}, "replay_speed: inf is not a finite number"),
    ({"seed": 1.5}, "seed: 1.5 is not a whole number"),
    ({"seed": True}, "seed: True is not a whole number"),
    ({"log_requests": "maybe"}, "log_requests: 'maybe' is not a boolean"),
    ({"no_match_status": 200}, "no_match_status: 200 is not an HTTP error status (400-599)"),
    ({"journal_size": -1}, "journal_size: must not be negative, got -1"),
    ({"fallback": "generated"}, "fallback: 'generated' is not valid (did you mean 'generate'?)"),
    ({"models": []}, "models: give at least one model id"),
    ({"upstream": "openai"}, "upstream: 'openai' is not an http(s) base URL"),
    ({"chaos": {"rate_limit": 0.5, "reset": 0.6}}, "chaos: the rates add up to 1.1"),
    ({"sed": 1}, "unknown option(s): sed (did you mean 'seed'?)"),
]


@pytest.mark.parametrize(("options", "message"), REFUSED_ARGUMENTS, ids=lambda v: str(v))
def test_bad_mockserver_arguments_are_value_errors(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        MockServer(**options)
    assert isinstance(raised.value, ConfigError)
    assert str(raised.value).startswith(message)


_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(),
    st.text(max_size=20),
    st.lists(st.one_of(st.text(max_size=8), st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=10), st.one_of(st.floats(), st.text(max_size=5)), max_size=2),
)
_OPTIONS = sorted(set(env_variables().values()))


@settings(max_examples=300, deadline=None)
@given(option=st.sampled_from(_OPTIONS), value=_ANY_VALUE)
def test_any_python_value_for_any_option_is_taken_or_a_config_error(
    option: str, value: object
) -> None:
    try:
        config = Config().merged(**{option: value})
    except ConfigError as error:
        assert str(error).startswith(f"{option}: ")
    else:  # what was taken is the option's kind, so nothing fails later on its type
        taken = getattr(config, option)
        default = getattr(Config(), option)
        if value is not None and isinstance(default, (bool, int, float, tuple)):
            assert type(taken) is type(default)


def test_a_config_built_directly_is_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"^port: 70000 is not a port; use 0-65535"):
        MockServer(Config(port=70000))
    with pytest.raises(ConfigError, match=r"^record_mode: 'once ' is not a record mode"):
        Config(record_mode="once ")


@settings(max_examples=100, deadline=None)
@given(port=st.integers())
def test_any_port_is_served_or_refused_with_the_range(port: int) -> None:
    try:
        config = Config().merged(port=port)
    except ConfigError as error:
        assert not 0 <= port <= 65535
        assert "use 0-65535" in str(error)
    else:
        assert 0 <= config.port <= 65535


# --- warnings: accepted, but probably not what was meant -----------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    number=st.one_of(  # (up to the longest duration: a day, 86400 s)
        st.integers(0, 86400), st.floats(0, 86400, allow_nan=False).map(lambda f: round(f, 3))
    ),
    unit=st.sampled_from(["", "ms", "s"]),
)
def test_a_bare_number_of_seconds_that_looks_like_milliseconds_warns_with_a_valid_fix(
    number: float, unit: str
) -> None:
    text = str(number) + unit
    if "e" in text:  # 1e+16: not how durations are written
        return
    warnings = unit_warnings(text)
    if unit or number < 30:
        assert warnings == []
        return
    assert len(warnings) == 1
    # The message offers both spellings, and both are valid durations meaning what they say.
    fix_ms = warnings[0].split("write ")[1].split(" if you meant")[0]
    fix_s = warnings[0].split("or ")[1].split(" to keep seconds")[0]
    assert parse_duration(fix_ms) == pytest.approx(parse_duration(text) / 1000)
    assert parse_duration(fix_s) == pytest.approx(parse_duration(text))
    assert unit_warnings(fix_ms) == unit_warnings(fix_s) == []


def _served(*args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """Start `mockai serve`, wait for its banner, stop it: (banner, stderr)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its own process group: workers never outlive the test
    )
    assert process.stdout is not None
    banner = ""
    try:
        while "Press Ctrl-C" not in banner:
            line = process.stdout.readline()
            if not line:
                break
            banner += line
        process.terminate()
        _, stderr = process.communicate(timeout=30)
        return banner, stderr
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.communicate()


def write(folder: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


SECONDS = """
mockai: 1
rules:
  - name: slow
    match: {user: slow}
    latency: 200
    stream: {ttft: 300ms, chunk_delay: 20}
    reply: ok
  - name: limited
    match: {user: limited}
    error: {name: rate_limit, retry_after: 500}
"""


def test_serve_warns_about_bare_numbers_and_unknown_variables_once_and_starts(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, SECONDS)
    env = {"MOCKAI_SEEED": "3", "MOCKAI_COMPILE": "1"}  # (the build's variable is no typo)
    banner, stderr = _served("--latency", "250", "--scenario", str(path), "--workers", "2", env=env)
    assert "listening on" in banner  # warnings, not errors: the server starts
    expected = [
        "warning: MOCKAI_SEEED is not a mockai setting and is ignored (did you mean MOCKAI_SEED?)",
        (
            "warning: latency 250 is read as seconds (250 s); write 250ms if you meant "
            "milliseconds, or 250s to keep seconds"
        ),
        (
            f"{path}:5: warning: rule 'slow' latency 200 is read as seconds (200 s); write 200ms "
            "if you meant milliseconds, or 200s to keep seconds"
        ),
        (
            f"{path}:6: warning: rule 'slow' stream.chunk_delay 20 is read as seconds (20 s); "
            "write 20ms if you meant milliseconds, or 20s to keep seconds"
        ),
        f"{path}:10: warning: rule 'limited' error.retry_after 500 is read as seconds",
    ]
    for line in expected:
        # Once each, although two processes serve: scenarios load before the fork.
        assert stderr.count(line) == 1, stderr
    assert "MOCKAI_COMPILE" not in stderr and "Traceback" not in stderr


def test_options_that_need_a_cassette_warn_without_one() -> None:
    banner, stderr = _served("--record-mode", "once", "--replay-speed", "1")
    assert "listening on" in banner
    assert "warning: --record-mode does nothing without --cassette (nothing is recorded)" in stderr
    assert "warning: --replay-speed does nothing without --cassette" in stderr


def test_check_shows_warnings_and_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, SECONDS)
    assert main(["check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "mockai check: 1 path(s) OK (3 warning(s))"
    assert [line.split(" is read as")[0] for line in err.splitlines()] == [
        f"{path}:5: warning: rule 'slow' latency 200",
        f"{path}:6: warning: rule 'slow' stream.chunk_delay 20",
        f"{path}:10: warning: rule 'limited' error.retry_after 500",
    ]


def test_units_silence_the_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixed = SECONDS.replace("200", "200ms").replace("chunk_delay: 20", "chunk_delay: 20ms")
    path = write(tmp_path, fixed.replace("retry_after: 500", "retry_after: 500s"))
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().err == ""


def test_loading_logs_the_warnings_once_per_compile(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, SECONDS)
    with caplog.at_level(logging.WARNING, logger="mockai"):
        MockServer(scenarios=(str(path),))
        MockServer(scenarios=(str(path),))  # compiled once, cached: not shown again
    shown = [r.getMessage() for r in caplog.records if "is read as seconds" in r.getMessage()]
    assert len(shown) == 3
    assert shown[0].startswith(f"{path}:5: warning: rule 'slow' latency 200")


def test_runtime_rules_warn_too(caplog: pytest.LogCaptureFixture) -> None:
    server = MockServer()
    with caplog.at_level(logging.WARNING, logger="mockai"):
        server.add_rule({"name": "slow", "match": {"user": "x"}, "latency": 45, "reply": "ok"})
    assert [r.getMessage() for r in caplog.records] == [
        (
            "<runtime>: warning: rule 'slow' latency 45 is read as seconds (45 s); write 45ms if you "
            "meant milliseconds, or 45s to keep seconds"
        )
    ]


# --- request headers: the same did-you-mean as the files ----------------------------------------


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        (
            "x-mockai-fault",
            "rate_limt",
            (
                "Invalid x-mockai-fault header 'rate_limt': 'rate_limt' is not a fault or a named "
                "error (did you mean 'rate_limit'?)"
            ),
        ),
        (
            "x-mockai-fault",
            "server_error;atempts=2",
            (
                "Invalid x-mockai-fault header 'server_error;atempts=2': 'server_error;atempts=2': "
                "unknown parameter 'atempts' (did you mean 'attempts'?)"
            ),
        ),
        (
            "x-mockai-stream",
            "tft=300ms",
            (
                "Invalid x-mockai-stream header 'tft=300ms': unknown stream timing key 'tft' "
                "(did you mean 'ttft'?)"
            ),
        ),
    ],
)
def test_a_mistyped_header_value_is_a_400_naming_the_closest(
    header: str, value: str, message: str
) -> None:
    with MockServer(log_requests=False) as server:
        answer = httpx.post(
            server.url + "/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={header: value},
        )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": header,
            "code": "mockai_invalid_header",
        }
    }


def test_a_runtime_rule_template_failing_names_the_rule_and_field() -> None:
    with MockServer(log_requests=False) as server:
        server.add_rule(
            {"name": "echo", "match": {"user": "hi"}, "reply": "{{ request.body.nope.deeper }}"}
        )
        answer = httpx.post(
            server.url + "/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "message": "rule 'echo' reply.content: the reply template failed: UndefinedError: "
        "'dict object' has no attribute 'nope'",
        "type": "invalid_request_error",
        "param": None,
        "code": "mockai_template_error",
    }


def test_check_does_not_call_a_json_file_that_is_no_cassette_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stray = tmp_path / "settings.json"
    stray.write_text('{"rules": []}', encoding="utf-8")
    assert main(["check", str(stray), str(tmp_path / "missing.json")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        (
            f"{stray}: not a cassette: a cassette has a top-level 'interactions' list "
            "(scenario files are YAML: *.yaml, *.yml)"
        ),
        f"{tmp_path / 'missing.json'}: no such file or directory",
        "mockai check: 2 problem(s)",
    ]
