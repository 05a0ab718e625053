"""`mockai check`, the server's refusal to start on a bad file, and the startup banner: what
a hunt of the validation before serving found (each test failed before its fix)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from sdk import sdk

from mockai import MockServer
from mockai.check import check_paths
from mockai.errors import CassetteError, ScenarioError

CHAT = """\
version: 1
interactions:
- request:
    method: POST
    uri: https://api.openai.com/v1/chat/completions
    body: '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
    headers:
      content-type: [application/json]
  response:
    status: {code: 200, message: OK}
    headers:
      content-type: [application/json]
    body: {string: '{"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}]}'}
"""
METHOD = "    method: POST"
URI = "    uri: https://api.openai.com/v1/chat/completions"
BODY = next(line for line in CHAT.splitlines() if line.startswith("    body: '"))


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    """`mockai serve` that is expected to stop before it listens (bounded all the same)."""
    return subprocess.run(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def _banner(*args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """The banner of a `mockai serve` (stopped once it is said) and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    banner = ""
    try:
        while "Press Ctrl-C" not in banner and '"url"' not in banner:
            line = process.stdout.readline()
            if not line:
                raise AssertionError(banner + (process.stderr.read() if process.stderr else ""))
            banner += line
        match = re.search(r"listening on (http://\S+)", banner)
        assert match, banner
        if "anthropic" in args:  # (what the line says is so: its /v1 has no embeddings)
            answer = httpx.post(
                match.group(1) + "/v1/embeddings", json={"model": "m", "input": "x"}
            )
            assert answer.status_code == 404
        return banner, match.group(1)
    finally:
        process.kill()
        process.communicate()


# --- 1. a recorded request no request can ever match ---------------------------------------------


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            (METHOD, "    method: 123"),
            ":4: interaction 0: request method 123 is not an HTTP method",
        ),
        ((METHOD, "    method: null"), ":4: interaction 0: request method null is not an HTTP"),
        ((METHOD, "    method: ''"), ":4: interaction 0: request method '' is not an HTTP method"),
        ((URI, "    uri: ''"), ":5: interaction 0: request uri '' is not a URL"),
        ((URI, "    uri: null"), ":5: interaction 0: request uri null is not a URL"),
        ((BODY, "    body: [1, 2]"), ":6: interaction 0: request body [1, 2] is not text"),
        (
            (BODY, "    body: {model: gpt-4o-mini, messages: [{role: user, content: hi}]}"),
            ":6: interaction 0: request body {'messages': [{'content': 'hi', 'role': 'user'}], ",
        ),
    ],
)
def test_a_request_no_request_can_match_is_refused_by_check_and_serve(
    tmp_path: Path, change: tuple[str, str], said: str
) -> None:
    """They loaded, answered nothing (every request got the no-match error naming them), and
    `mockai check` called the file OK."""
    path = tmp_path / "c.yaml"
    path.write_text(CHAT.replace(*change), encoding="utf-8")
    found = [str(problem) for problem in check_paths([str(path)])]
    assert len(found) == 1 and found[0].startswith(f"{path}{said}"), found
    assert found[0].endswith("no request ever matches it, so it is never replayed")
    with pytest.raises(CassetteError) as raised:
        MockServer(cassette=str(path), log_requests=False).start()
    assert str(raised.value) == found[0]


def test_serve_stops_with_the_line_of_a_request_that_never_matches(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CHAT.replace(METHOD, "    method: 123"), encoding="utf-8")
    served = _serve("--cassette", str(path))
    assert served.returncode == 2, served.stderr
    assert served.stderr.splitlines()[-1].startswith(f"mockai: {path}:4: interaction 0: request")
    assert "Traceback" not in served.stderr


@pytest.mark.parametrize(
    "change",
    [
        (METHOD, "    method: post"),  # (compared in capitals)
        (URI, "    uri: /v1/chat/completions"),  # (scheme and host are never compared)
        (URI, "    uri: api.openai.com/v1/chat/completions"),
    ],
)
def test_odd_but_matching_requests_still_replay(tmp_path: Path, change: tuple[str, str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CHAT.replace(*change), encoding="utf-8")
    assert check_paths([str(path)]) == []
    with MockServer(cassette=str(path), log_requests=False) as server, sdk(server) as client:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert reply.choices[0].message.content == "hello"


# --- 2. the banner names the provider the server answers as ------------------------------------


def test_the_banner_names_the_profile_the_server_answers_as() -> None:
    """`--profile groq` (or a forgotten `MOCKAI_PROFILE`) left a banner just like an OpenAI
    server's: nothing said the errors and 404s to come were another provider's."""
    groq, _ = _banner("--profile", "groq")
    assert (
        "\n  profile: groq (answers as that provider at /v1, the root and /openai/v1; "
        "completions, moderations are its 404)\n" in groq
    ), groq
    anthropic, _ = _banner("--profile", "anthropic")
    assert "  profile: anthropic (answers as that provider at /v1 and the root; only chat: " in (
        anthropic
    )
    line, _ = _banner(env={"MOCKAI_PROFILE": "gemini", "MOCKAI_LOG_FORMAT": "json"})
    assert json.loads(line)["profile"] == "gemini"
    default, _ = _banner()
    assert "profile:" not in default


# --- 3. `--workers N` says its startup once ---------------------------------------------------


def test_workers_say_the_replay_line_once(tmp_path: Path) -> None:
    """Each worker said `replaying 1 interaction(s) from ...` (and `watching ... for changes`,
    and `--upstream is not used`) again: three workers, three times each."""
    scenario = tmp_path / "rules.yaml"
    scenario.write_text("mockai: 1\nrules:\n  - match: {user: hi}\n    reply: {content: hello}\n")
    options = ["--workers", "3", "--quiet", "--cassette", "cassettes/chat_json.yaml"]
    options += ["--upstream", "http://127.0.0.1:9/v1", "--scenario", str(scenario), "--watch"]
    process = subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = ""
        while "Press Ctrl-C" not in banner:
            line = process.stdout.readline()
            assert line, banner
            banner += line
        match = re.search(r"listening on (http://\S+)", banner)
        assert match, banner
        pids = set()
        for _ in range(100):  # (every worker serves: a new connection each time)
            with httpx.Client() as fresh:
                pids.add(fresh.get(match.group(1) + "/_mockai/health").json()["pid"])
            if len(pids) == 3:
                break
        assert len(pids) == 3
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    for said in (
        "mockai: replaying 1 interaction(s) from cassettes/chat_json.yaml",
        "mockai: --upstream is not used: record mode none records nothing here",
        f"mockai: watching {scenario} for changes",
    ):
        assert stderr.count(said) == 1, stderr
    assert "exited" not in stderr, stderr


# --- 4. a folder's cassettes named in capitals are checked as `--cassette FOLDER` replays them ----


def test_check_reads_a_folders_cassettes_whatever_the_case_of_their_suffix(tmp_path: Path) -> None:
    """`--cassette FOLDER` replays `Chat.YAML`; `mockai check FOLDER` did not see it: a broken
    one passed the check (then stopped `serve`), and a folder of them alone "held none"."""
    folder = tmp_path / "cassettes"
    folder.mkdir()
    (folder / "Chat.YAML").write_text(CHAT, encoding="utf-8")
    assert check_paths([str(folder)]) == []
    with MockServer(cassette=str(folder), log_requests=False) as server, sdk(server) as client:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert reply.choices[0].message.content == "hello"
    bad = folder / "Broken.JSON"
    bad.write_text('{"version": 1, "interactions": [{"request": {}}]}', encoding="utf-8")
    found = [str(problem) for problem in check_paths([str(folder)])]
    assert len(found) == 1 and found[0].startswith(f"{bad}:1: interaction 0 is not a vcrpy"), found
    with pytest.raises(CassetteError) as raised:
        MockServer(cassette=str(folder), log_requests=False).start()
    assert str(raised.value) == found[0]
    # A scenario file named so is neither's (`--scenario FOLDER` loads lower-case suffixes only).
    bad.unlink()
    (folder / "Rules.YML").write_text("mockai: 1\nrules:\n  - match: {usr: hi}\n    reply: x\n")
    assert check_paths([str(folder)]) == []


# --- 5. a cassette that is not UTF-8 is said at its line, as `mockai check` says it ---------------


@pytest.mark.parametrize(
    ("encoding", "said"),
    [
        ("latin-1", ":6: byte 0xe9 at column 80 is not UTF-8 (save the file as UTF-8)"),
        ("utf-16", ":1: byte 0xff at column 1 is not UTF-8 (save the file as UTF-8)"),
    ],
)
def test_a_cassette_that_is_not_utf8_is_refused_at_its_line(
    tmp_path: Path, encoding: str, said: str
) -> None:
    """`mockai serve` said `c.yaml: not UTF-8 text (invalid continuation byte)`: no line, and
    not what `mockai check` said of the same file."""
    path = tmp_path / "c.yaml"
    path.write_bytes(CHAT.replace('"hi"', '"h\u00e9llo"').encode(encoding))
    found = [str(problem) for problem in check_paths([str(path)])]
    assert found == [f"{path}{said}"]
    with pytest.raises(CassetteError) as raised:
        MockServer(cassette=str(path), log_requests=False).start()
    assert str(raised.value) == found[0]
    served = _serve("--cassette", str(path))
    assert served.returncode == 2 and served.stderr == f"mockai: {found[0]}\n", served.stderr


# --- 6. a JSON cassette an editor saved with a byte order mark --------------------------------


def test_a_json_cassette_with_a_byte_order_mark_replays(tmp_path: Path) -> None:
    """PyYAML skips a UTF-8 BOM, `json.loads` does not: a JSON cassette saved by Notepad or
    PowerShell was refused (`not a valid cassette: Unexpected UTF-8 BOM (decode using
    utf-8-sig)`), though a YAML one so saved replayed and both were taken for cassettes."""
    interactions = yaml.safe_load(CHAT)
    path = tmp_path / "c.json"
    path.write_text("\ufeff" + json.dumps(interactions, indent=2), encoding="utf-8")
    assert check_paths([str(path)]) == []
    with MockServer(cassette=str(path), log_requests=False) as server, sdk(server) as client:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert reply.choices[0].message.content == "hello"
    interactions["interactions"][0]["response"]["status"]["code"] = 4290
    path.write_text("\ufeff" + json.dumps(interactions, indent=2), encoding="utf-8")
    found = [str(problem) for problem in check_paths([str(path)])]
    line = json.dumps(interactions, indent=2).splitlines().index("    {") + 1
    assert found == [f"{path}:{line}: interaction 0: response status 4290 is not an HTTP status"]


# --- 7. a cassette given to --scenario says so --------------------------------------------------


def test_a_cassette_given_as_a_scenario_file_says_where_it_belongs(tmp_path: Path) -> None:
    """It was refused for a missing `mockai: 1` and unknown top-level keys `version` and
    `interactions`: three problems, none saying the file is a cassette."""
    path = tmp_path / "c.yaml"
    path.write_text(CHAT, encoding="utf-8")
    said = f"{path}:1: this is a cassette, not a scenario file: replay it with --cassette {path}"
    served = _serve("--scenario", str(path))
    assert served.returncode == 2 and served.stderr == f"mockai: {said}\n", served.stderr
    with pytest.raises(ScenarioError) as raised:
        MockServer(scenario=str(path), log_requests=False).start()
    assert str(raised.value) == said
