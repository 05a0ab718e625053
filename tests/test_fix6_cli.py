"""The command line's edges from the sixth bug hunt, run as users run it (a real `mockai`
process, every run bounded by a timeout): an output nobody can write to (a full disk, a pipe
whose reader left), a FIFO named as a scenario file or cassette, a scenario file reached twice,
a replay-only cassette folder holding no cassette, and a huge scalar given as a scenario file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mockai.scenario.loader import _glimpse, distinct

MOCKAI = [sys.executable, "-m", "mockai"]
RUN = 20  # seconds: the bound on any one command (each takes well under one)
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
SCENARIO = "mockai: 1\nrules:\n  - name: greet\n    match: {user: hi}\n    reply: hello\n"


def _run(*args: str, env: dict[str, str] | None = None, **streams: int) -> tuple[int, str]:
    """`mockai ARGS` to its end: its exit code and what it wrote to stderr (or to stdout where
    stderr is given), within RUN seconds."""
    done = subprocess.run(
        [*MOCKAI, *args],
        stdin=subprocess.DEVNULL,
        stdout=streams.get("stdout", subprocess.PIPE),
        stderr=streams.get("stderr", subprocess.PIPE),
        env={**os.environ, **(env or {})},
        timeout=RUN,
        check=False,
    )
    said = done.stderr if done.stderr is not None else done.stdout
    return done.returncode, (said or b"").decode()


def _unwritable(kind: str) -> int:
    """A file descriptor whose writes fail: /dev/full (ENOSPC) or a pipe whose reader left."""
    if kind == "full":
        return os.open("/dev/full", os.O_WRONLY)
    read, write = os.pipe()
    os.close(read)
    return write


def _serve(*args: str, stdout: int, stderr: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*MOCKAI, "serve", "--port", "0", *args],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
    )


def _url_from(stream: IO[bytes] | None, pattern: str) -> str:
    """The server's URL, from the first line of `stream` matching `pattern` (read line by line:
    the line comes once the server listens)."""
    assert stream is not None
    for raw in iter(stream.readline, b""):
        found = re.search(pattern, raw.decode())
        if found:
            return found.group(1)
    raise AssertionError("the server ended before it said where it listens")


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Servers the test started: killed at the end if still running (never left behind)."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=RUN)


# --- 1. SIGTERM with a stderr nobody can write to -----------------------------------------------


def test_sigterm_with_an_unwritable_stderr_lets_the_request_in_flight_finish(
    stopped: list[subprocess.Popen[bytes]],
) -> None:
    """docs/operations.md "Graceful shutdown": the request in flight gets its answer and the
    process exits 0, although the shutdown notice cannot be written (it had cut the request
    and exited 1)."""
    err = _unwritable("full")
    try:
        process = _serve("--latency", "1s", stdout=subprocess.PIPE, stderr=err)
    finally:
        os.close(err)
    stopped.append(process)
    url = _url_from(process.stdout, r"listening on (http://\S+)")
    answer: dict[str, object] = {}

    def ask() -> None:
        try:
            answer["status"] = httpx.post(url + "/v1/chat/completions", json=CHAT, timeout=RUN)
        except httpx.HTTPError as error:
            answer["status"] = error

    asking = threading.Thread(target=ask)
    asking.start()
    deadline = time.monotonic() + RUN
    while "mockai_requests_in_flight 1" not in httpx.get(url + "/_mockai/metrics").text:
        assert time.monotonic() < deadline, "the request never arrived"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=RUN) == 0
    asking.join(timeout=RUN)
    reply = answer["status"]
    assert isinstance(reply, httpx.Response) and reply.status_code == 200, reply
    assert reply.json()["choices"][0]["message"]["content"]


# --- 2. stdout nobody can write to ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["full", "pipe"])
def test_serve_with_an_unwritable_stdout_serves_and_says_so(
    kind: str, stopped: list[subprocess.Popen[bytes]]
) -> None:
    """The banner that cannot be written neither kills the server (it had: a traceback, exit 1)
    nor goes unsaid: one line on stderr gives the URL; SIGTERM still ends it with 0."""
    out = _unwritable(kind)
    try:
        process = _serve(stdout=out, stderr=subprocess.PIPE)
    finally:
        os.close(out)
    stopped.append(process)
    url = _url_from(process.stderr, r"could not write the banner to stdout; serving on (\S+)")
    assert httpx.post(url + "/v1/chat/completions", json=CHAT).status_code == 200
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=RUN) == 0
    assert process.stderr is not None and b"Traceback" not in process.stderr.read()


@pytest.mark.parametrize("kind", ["full", "pipe"])
def test_check_with_an_unwritable_output_exits_with_its_verdict(tmp_path: Path, kind: str) -> None:
    """`mockai check` exits 0 for a valid file and 1 for a broken one whatever becomes of its
    output (it had exited 1 with a traceback for the valid one)."""
    good, bad = tmp_path / "ok.yaml", tmp_path / "bad.yaml"
    good.write_text(SCENARIO)
    bad.write_text(SCENARIO.replace("user:", "usr:"))
    for path, verdict in ((good, 0), (bad, 1)):
        out, err = _unwritable(kind), _unwritable(kind)
        try:
            code, said = _run("check", str(path), stdout=out, stderr=err)
        finally:
            os.close(out)
            os.close(err)
        assert (code, said) == (verdict, ""), path.name


def test_health_with_an_unwritable_stdout_reports_a_healthy_server(
    stopped: list[subprocess.Popen[bytes]],
) -> None:
    """Exit 0 for a healthy server with stdout at /dev/full (it had said exit 1: unhealthy)."""
    process = _serve(stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stopped.append(process)
    url = _url_from(process.stdout, r"listening on (http://\S+)")
    out = _unwritable("full")
    try:
        code, said = _run("health", "--url", url, stdout=out)
    finally:
        os.close(out)
    assert (code, said) == (0, "")


# --- 3. a FIFO as a scenario file or a cassette -------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> str:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return str(path)


def test_check_refuses_a_fifo_at_once(fifo: str) -> None:
    code, said = _run("check", fifo)
    assert code == 1
    assert said.splitlines()[0] == f"{fifo}: not a regular file (a FIFO)"


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["--scenario", "{fifo}"], {}, "mockai: {fifo}: not a regular file (a FIFO)"),
        ([], {"MOCKAI_SCENARIO": "{fifo}"}, "mockai: {fifo}: not a regular file (a FIFO)"),
        (["--cassette", "{fifo}"], {}, "mockai: cassette {fifo}: not a regular file (a FIFO)"),
        (
            ["--cassette", "{fifo}", "--record-mode", "once", "--upstream", "http://127.0.0.1:9"],
            {},
            "mockai: cassette {fifo}: not a regular file (a FIFO)",
        ),
    ],
)
def test_serve_refuses_a_fifo_at_once(
    fifo: str, args: list[str], env: dict[str, str], said: str
) -> None:
    """Refused before anything is read, exit 2 as for a missing file (a scenario FIFO had hung
    the server for good; a cassette one replayed 0 interactions, or hung `once`)."""
    code, stderr = _run(
        "serve",
        "--port",
        "0",
        *(arg.format(fifo=fifo) for arg in args),
        env={name: value.format(fifo=fifo) for name, value in env.items()},
    )
    assert (code, stderr.strip().splitlines()[-1]) == (2, said.format(fifo=fifo))


# --- 4. one scenario file reached twice ----------------------------------------------------------


def test_a_scenario_file_reached_twice_is_loaded_once(
    tmp_path: Path, stopped: list[subprocess.Popen[bytes]]
) -> None:
    """Named twice (as `./a.yaml` and `a.yaml`), and by its folder too: served with its one rule
    (it had been refused: "duplicate rule name 'greet' (first used at line 3)", itself)."""
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "a.yaml").write_text(SCENARIO)
    again = os.path.join(str(folder), ".", "a.yaml")
    process = _serve(
        "--scenario",
        str(folder),
        "--scenario",
        str(folder / "a.yaml"),
        "--scenario",
        again,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stopped.append(process)
    url = _url_from(process.stdout, r"listening on (http://\S+)")
    answer = httpx.post(url + "/v1/chat/completions", json=CHAT)
    assert answer.json()["choices"][0]["message"]["content"] == "hello"
    assert len(httpx.get(url + "/_mockai/rules").json()["data"]) == 1


def test_check_says_the_problems_of_a_file_reached_twice_once(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(SCENARIO.replace("user:", "usr:"))
    named = str(tmp_path / "bad.yaml")
    code, said = _run("check", str(tmp_path), named, os.path.join(str(tmp_path), ".", "bad.yaml"))
    lines = said.splitlines()
    assert code == 1 and lines[-1] == "mockai check: 1 problem(s)", said
    assert len(lines) == 2 and "unknown match key 'usr'" in lines[0]


@given(
    st.lists(
        st.sampled_from(["a.yaml", "./a.yaml", "b.yaml", "sub/../a.yaml", "sub/c.yaml", "c.yaml"])
    )
)
@example(["a.yaml", "./a.yaml", "b.yaml", "a.yaml"])
def test_distinct_keeps_each_file_once_at_its_first_place(files: list[str]) -> None:
    kept = distinct(files)
    real = [os.path.realpath(file) for file in kept]
    assert len(set(real)) == len(real)  # each file once
    assert set(real) == {os.path.realpath(file) for file in files}  # none lost
    firsts = [
        file for index, file in enumerate(files) if file in kept and file not in files[:index]
    ]
    assert kept == firsts  # in the order of their first places, as they were written
    assert distinct(kept) == kept


# --- 5. a replay-only cassette folder holding no cassette --------------------------------------


@pytest.mark.parametrize("held", ["nothing", "an empty file", "a scenario file", "a FIFO"])
def test_replay_refuses_a_cassette_folder_holding_no_cassette(tmp_path: Path, held: str) -> None:
    """As a missing cassette is refused (it had served 0 interactions: every request a miss)."""
    folder = tmp_path / "cassettes"
    folder.mkdir()
    if held == "an empty file":
        (folder / "empty.yaml").write_text("")
    elif held == "a scenario file":
        (folder / "rules.yaml").write_text(SCENARIO)
    elif held == "a FIFO":
        os.mkfifo(folder / "pipe.yaml")
    code, said = _run("serve", "--port", "0", "--cassette", str(folder))
    assert code == 2
    assert said.strip().splitlines()[-1] == (
        f"mockai: cassette folder {folder} holds no cassette, so there is nothing to replay. "
        f"Record one first: mockai serve --cassette {folder / 'recorded.yaml'} --record-mode "
        "once --upstream URL"
    )


# --- 6. a scenario file that is one huge scalar ---------------------------------------------------


def test_a_huge_scalar_scenario_file_is_described_in_one_short_line(tmp_path: Path) -> None:
    """Not quoted whole (a megabyte of words was printed back: 1,000,128 bytes)."""
    big = tmp_path / "bigscalar.yaml"
    big.write_text("word " * 200_000 + "\n")
    code, said = _run("check", str(big))
    assert code == 1 and len(said.encode()) < 300, said[:400]
    first = said.splitlines()[0]
    assert first.startswith(f"{big}:1: a scenario file is a mapping starting with 'mockai: 1'")
    assert first.endswith("got 'word word word word word word word word word word word word…'")


@settings(max_examples=200)
@given(st.one_of(st.text(), st.integers(), st.floats(), st.binary(), st.lists(st.text())))
@example("root:x:0:0:root:/root:/bin/bash\n" * 50)
@example(b"\x00" * 500)
def test_a_document_that_is_no_mapping_is_glimpsed_on_one_short_line(document: object) -> None:
    shown = _glimpse(document)
    assert "\n" not in shown and len(shown) <= 62
