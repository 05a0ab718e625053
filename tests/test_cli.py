"""`mockai serve` as users run it: a real process, the banner, env vars, clean shutdown."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from mockai.cli import main


def _start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    banner = ""
    while "Press Ctrl-C" not in banner:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(banner + (process.stderr.read() if process.stderr else ""))
        banner += line
    match = re.search(r"listening on (http://\S+)", banner)
    assert match, banner
    return process, match.group(1), banner


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    process, url, banner = _start(
        "--seed", "5", env={"MOCKAI_MODELS": "gpt-4o-mini,text-embedding-3-small"}
    )
    yield process, url, banner
    if process.poll() is None:
        process.kill()
    process.communicate()  # reaps the process and closes its pipes


def test_serve_answers_models_with_no_configuration(
    served: tuple[subprocess.Popen[str], str, str],
) -> None:
    _, url, _ = served
    response = httpx.get(url + "/v1/models")
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == [
        "gpt-4o-mini",
        "text-embedding-3-small",
    ]  # env var
    chat = httpx.post(
        url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat.status_code == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_shut_down_cleanly(
    served: tuple[subprocess.Popen[str], str, str], sig: signal.Signals
) -> None:
    process, url, _ = served
    httpx.get(url + "/v1/models")
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert "shutting down" in stderr
    assert "GET /v1/models 200" in stderr  # the one-line request log


def test_banner_lists_endpoints(served: tuple[subprocess.Popen[str], str, str]) -> None:
    _, url, banner = served
    for needle in (
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/models",
        "seed 5",
    ):
        assert needle in banner
    assert f"OPENAI_BASE_URL={url}/v1" in banner


def test_port_in_use_is_a_clear_error(
    served: tuple[subprocess.Popen[str], str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url, _ = served
    port = url.rsplit(":", 1)[1]
    assert main(["serve", "--port", port, "--quiet"]) == 2
    assert "cannot listen" in capsys.readouterr().err


def test_workers_share_the_port_and_stop_together() -> None:
    process, url, banner = _start("--workers", "2", "--quiet")
    try:
        assert "2 workers" in banner
        pids = set()
        for _ in range(60):  # a new connection each time: the kernel spreads them
            with httpx.Client() as fresh:
                pids.add(fresh.get(url + "/_mockai/health").json()["pid"])
        assert len(pids) == 2
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
        assert process.returncode == 0
        for pid in pids - {process.pid}:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_event_loop_can_be_chosen(loop: str) -> None:
    """uvloop by default when installed (the test extra installs it); asyncio's on request."""
    process, url, banner = _start("--quiet", env={"MOCKAI_EVENT_LOOP": loop})
    try:
        assert f"  event loop: {loop}\n" in banner
        assert re.search(r"\n  build: (pure Python|compiled \(mypyc\))\n", banner)
        chat = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert chat.status_code == 200
    finally:
        process.kill()
        process.communicate()

    process, _, default = _start("--quiet", "--event-loop", "auto")
    process.kill()
    process.communicate()
    assert "  event loop: uvloop\n" in default


def test_banner_says_where_answers_come_from() -> None:
    process, _, banner = _start("--scenario", "scenarios/faq.yaml", "--quiet")
    try:
        assert "(seed 7)" in banner  # the scenario file's seed, not the default
        assert "answers: 5 scenario rule(s) from scenarios/faq.yaml" in banner
        assert "otherwise: a no-match error" in banner
    finally:
        process.kill()
        process.communicate()


def test_banner_says_what_the_upstream_answers() -> None:
    """The upstream answers what nothing before it did: `--upstream` alone (a passthrough) was
    announced as "generated answers", a recording server as answering misses with a no-match
    error, and a replayed cassette (`once`, which records nothing once it exists) as recording
    from an upstream the log said was not used."""
    from mockai import MockServer

    with MockServer(log_requests=False) as upstream:
        process, url, banner = _start("--upstream", upstream.url, "--quiet")
        try:
            answer = httpx.post(
                url + "/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )
            assert answer.status_code == 200 and upstream.requests  # (it went upstream)
        finally:
            process.kill()
            process.communicate()
    assert f"otherwise: forwarded to {upstream.url} (a passthrough" in banner, banner
    assert "generated answers" not in banner
    recording = ("--upstream", "http://127.0.0.1:9/v1", "--quiet", "--record-mode")
    for mode, records in (("new_episodes", True), ("once", False)):
        process, _, banner = _start("--cassette", "cassettes/chat_json.yaml", *recording, mode)
        process.kill()
        process.communicate()
        assert ("records from: http://127.0.0.1:9/v1" in banner) is records, banner
        assert ("otherwise: forwarded upstream, and recorded" in banner) is records, banner
        assert ("otherwise: a no-match error" in banner) is not records, banner
