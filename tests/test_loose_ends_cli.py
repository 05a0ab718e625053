"""Loose ends in the CLI, the background server and cassette folders, as users meet them:

- With JSON logs (`--log-format json`, `MOCKAI_LOG_FORMAT=json`), a bad option or `MOCKAI_*`
  variable is one JSON line too (exit 2, the same message), not argparse's or mockai's text.
- A `MockServer.start()` whose startup fails after the port is bound (a Redis refusing the state
  URL, a scenario rule clashing with a shared runtime rule) gives back the port, the Redis
  connection and every thread, and raises its error.
- A cassette in a dot-folder is neither checked by `mockai check FOLDER` nor replayed by
  `--cassette FOLDER`: both see the same files.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_support import RedisServer, ServeProcess, free_port

from mockai import MockServer, cli
from mockai.errors import CassetteError, ConfigError, ScenarioError, ServerError

RUN_TIMEOUT = 60  # seconds any `mockai` command may take here: each must exit by itself
JSON_FIELDS = {"ts", "level", "logger", "message"}


def _mockai(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `mockai` command, as a user runs it, with the MOCKAI_* variables of `env` only."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MOCKAI_")}
    return subprocess.run(
        [sys.executable, "-m", "mockai", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=RUN_TIMEOUT,
    )


def _json_error(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one line a refused start wrote, as JSON (exit 2, nothing else on stdout/stderr)."""
    assert run.returncode == 2, run
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    line: dict[str, Any] = json.loads(lines[0])
    assert set(line) == JSON_FIELDS
    assert (line["level"], line["logger"]) == ("error", "mockai")
    return line


# --- 1. JSON logs: a bad option or variable is a JSON line too --------------------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--log-format", "json"],
            {"MOCKAI_PORT": "abc"},
            "MOCKAI_PORT: 'abc' is not a whole number",
        ),
        (
            [],
            {"MOCKAI_LOG_FORMAT": "json", "MOCKAI_JOURNAL_SIZE": "-1"},
            "MOCKAI_JOURNAL_SIZE: must not be negative, got -1",
        ),
        (
            ["--log-format", "json", "--port", "abc"],
            {},
            "mockai serve: error: argument --port: 'abc' is not a whole number",
        ),
        (
            ["--port", "abc"],
            {"MOCKAI_LOG_FORMAT": "json"},
            "mockai serve: error: argument --port: 'abc' is not a whole number",
        ),
        (
            ["--log-format=json", "--bogus"],
            {},
            "mockai: error: unrecognized arguments: --bogus",
        ),
        (  # the bad --log-format itself: the variable says what the logs are
            ["--log-format", "xml"],
            {"MOCKAI_LOG_FORMAT": "json"},
            (
                "mockai serve: error: argument --log-format: 'xml' is not valid "
                "(valid values: text, json)"
            ),
        ),
    ],
)
def test_with_json_logs_a_bad_option_or_variable_is_one_json_line(
    args: list[str], env: dict[str, str], message: str
) -> None:
    line = _json_error(_mockai("serve", *args, env=env))
    assert line["message"] == message


def test_the_command_lines_log_format_wins_over_the_variable_for_its_errors_too() -> None:
    # As for the logs that follow: `--log-format` wins over MOCKAI_LOG_FORMAT, either way.
    line = _json_error(
        _mockai("serve", "--log-format", "json", "--port", "abc", env={"MOCKAI_LOG_FORMAT": "text"})
    )
    assert line["message"] == "mockai serve: error: argument --port: 'abc' is not a whole number"
    run = _mockai(
        "serve", "--log-format", "text", "--port", "abc", env={"MOCKAI_LOG_FORMAT": "json"}
    )
    assert run.returncode == 2
    assert run.stderr.startswith("usage: mockai serve ")
    assert run.stderr.endswith(
        "mockai serve: error: argument --port: 'abc' is not a whole number\n"
    )


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
    ).map(lambda text: "x" + text)  # (never a whole number)
)
def test_any_bad_value_with_json_logs_is_exactly_one_json_line(value: str) -> None:
    """Newlines, control characters, any Unicode in the bad value: still one JSON line, whose
    message holds the value as argparse quotes it."""
    line = _json_error(_mockai("serve", "--log-format", "json", f"--port={value}"))
    assert line["message"] == (
        f"mockai serve: error: argument --port: {value!r} is not a whole number"
    )


# --- 2. a start that fails after binding gives back what it took -----------------------------


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _other_clients(admin: redis_client.Redis) -> int:
    """How many connections Redis has besides `admin`'s own."""
    me = admin.client_id()
    return sum(1 for client in admin.client_list() if int(client["id"]) != me)


def _until(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_start_redis_refuses_gives_back_the_port_and_threads(redis: RedisServer) -> None:
    with MockServer(log_requests=False):  # (the process's loop thread, which stays, is up)
        pass
    threads = threading.active_count()
    port = free_port()
    server = MockServer(port=port, state=f"redis://127.0.0.1:{redis.port}/16")
    with pytest.raises(ConfigError, match=r"was refused by Redis \(DB index is out of range\)"):
        server.start()
    assert _port_is_free(port)
    assert threading.active_count() == threads
    assert not server.running
    with pytest.raises(ServerError, match="not running"):
        server.stop()
    with MockServer(port=port, log_requests=False) as again:  # the port serves again
        assert httpx.get(again.url_for("/_mockai/health"), timeout=30).status_code == 200


def test_a_start_whose_scenario_clashes_closes_its_redis_connection(
    redis: RedisServer, tmp_path: Path
) -> None:
    url = redis.url("test-" + uuid.uuid4().hex)
    scenario = tmp_path / "greet.yaml"
    scenario.write_text(
        'mockai: 1\nrules:\n  - name: greet\n    match: {user: "hi"}\n    reply: "scenario"\n'
    )
    with MockServer(state=url, log_requests=False) as other:  # another replica's runtime rule
        other.add_rule({"name": "greet", "match": {"user": "hi"}, "reply": "runtime"})
    threads = threading.active_count()
    port = free_port()
    with redis_client.Redis(port=redis.port) as admin:
        assert _until(lambda: _other_clients(admin) == 0)
        server = MockServer(port=port, state=url, scenarios=(str(scenario),), log_requests=False)
        with pytest.raises(ScenarioError, match="takes the name of a runtime rule"):
            server.start()
        assert _port_is_free(port)
        assert threading.active_count() == threads
        assert _until(lambda: _other_clients(admin) == 0), admin.client_list()

        # Once the clash is gone, the same server starts.
        with MockServer(state=url, log_requests=False) as other:
            other.remove_rule("greet")
        with server:
            answer = httpx.post(
                server.url + "/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                timeout=30,
            )
            assert answer.json()["choices"][0]["message"]["content"] == "scenario"


# --- 3. cassette folders: dot-folders are skipped, by check and serve alike -------------------


def _cassette(question: str, answer: str, version: int = 1) -> str:
    """A vcrpy cassette answering the chat `question` with `answer`."""
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}
    reply = {
        "id": "chatcmpl-" + question,
        "object": "chat.completion",
        "created": 1735689600,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    return (
        "interactions:\n"
        "- request:\n"
        f"    body: {json.dumps(json.dumps(request))}\n"
        "    headers: {Content-Type: [application/json]}\n"
        "    method: POST\n"
        "    uri: https://api.openai.com/v1/chat/completions\n"
        "  response:\n"
        f"    body: {{string: {json.dumps(json.dumps(reply))}}}\n"
        "    headers: {Content-Type: [application/json]}\n"
        "    status: {code: 200, message: OK}\n"
        f"version: {version}\n"
    )


def _ask(base_url: str, question: str) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}
    return httpx.post(base_url + "/v1/chat/completions", json=body, timeout=30)


def test_check_and_serve_both_skip_a_cassette_in_a_dot_folder(tmp_path: Path) -> None:
    folder = tmp_path / "cassettes"
    (folder / "chat").mkdir(parents=True)
    (folder / "chat" / "kept.yaml").write_text(_cassette("kept", "replayed"))
    (folder / ".old").mkdir()
    (folder / ".old" / "stale.yaml").write_text(_cassette("stale", "from a dot-folder"))
    (folder / ".drafts" / "deep").mkdir(parents=True)
    (folder / ".drafts" / "deep" / "broken.yaml").write_text(_cassette("x", "y", version=3))

    checked = _mockai("check", str(folder))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == "mockai check: 1 path(s) OK\n"

    served = ServeProcess(["--quiet", "--cassette", str(folder)]).start()  # (the broken one
    try:  # in .drafts would stop it)
        kept = _ask(served.base_url, "kept")
        assert kept.json()["choices"][0]["message"]["content"] == "replayed"
        stale = _ask(served.base_url, "stale")
        assert stale.status_code >= 400, stale.text  # nothing answers it: no stale replay
        assert "from a dot-folder" not in stale.text
    finally:
        served.stop()


NAMES = st.sampled_from(["a", "b", ".a", ".git", "_x", "a.b"])


@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(NAMES, max_size=2), min_size=1, max_size=5),
    st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_check_and_replay_see_the_same_files_of_a_folder(
    folders: list[list[str]], dotted: list[bool]
) -> None:
    """Cassettes at any depth, in folders with and without dots, named with and without one:
    `mockai check FOLDER` checks exactly the files `--cassette FOLDER` replays, those whose path
    in the folder has no part starting with a dot."""
    with tempfile.TemporaryDirectory() as where:
        root = Path(where) / "tapes"
        good, bad = root / "good", root / "bad"  # the same tree, replayable and broken
        visible = set()
        for n, parts in enumerate(folders):
            relative = Path(*parts, ("." if dotted[n] else "") + f"c{n}.yaml")
            for tree, text in ((good, _cassette(f"q{n}", f"c{n}")), (bad, _cassette("q", "a", 3))):
                (tree / relative).parent.mkdir(parents=True, exist_ok=True)
                (tree / relative).write_text(text)
            if not any(part.startswith(".") for part in relative.parts):
                visible.add(relative.as_posix())

        # `mockai check`, through its entry point in this process (a subprocess per example
        # cost ~0.4 s of imports; the command's own process is tested above)
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            cli.main(["check", str(bad)])
        reported = {
            Path(line.split(":")[0]).relative_to(bad).as_posix()
            for line in stderr.getvalue().splitlines()
            if "format version 3" in line
        }
        assert reported == visible, stderr.getvalue()

        if not visible:  # (every cassette hidden: nothing to replay, refused as check refuses it)
            with pytest.raises(CassetteError, match="holds no cassette"):
                MockServer(cassette=str(good), log_requests=False)
            return
        with MockServer(cassette=str(good), log_requests=False) as server:
            replayed = set()
            for n, parts in enumerate(folders):
                answer = _ask(server.base_url, f"q{n}")
                if answer.status_code == 200 and answer.json()["choices"][0]["message"][
                    "content"
                ] == (f"c{n}"):
                    name = ("." if dotted[n] else "") + f"c{n}.yaml"
                    replayed.add(Path(*parts, name).as_posix())
        assert replayed == visible
