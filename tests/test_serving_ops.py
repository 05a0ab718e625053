"""`mockai serve` as an operator runs it: a port that is taken stays taken with `--workers`, the
banner's URLs work for IPv6 hosts, and with `--log-format json` every line it writes is JSON."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

import httpx
import pytest

from mockai import MockServer, __version__
from mockai.config import Config

START_TIMEOUT = 30.0


def _start(*args: str) -> tuple[subprocess.Popen[str], str, str]:
    """`mockai serve --port 0 ARGS` once its banner names its URL: (process, URL, banner)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    banner = ""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner += line
        # (the text banner ends with the Ctrl-C line; the JSON one is a single line)
        if "Press Ctrl-C" in line or line.startswith("{"):
            found = re.search(r"listening on (http://\S+) ", banner)
            assert found, banner
            return process, found.group(1), banner
    process.kill()
    _, errors = process.communicate()
    raise AssertionError(f"mockai serve did not start:\n{banner}{errors}")


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM, then what it printed after the banner: (stdout, stderr)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")


@pytest.fixture(params=["127.0.0.1", pytest.param("::1", marks=needs_ipv6)])
def workers(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, set[int]]]:
    """A `mockai serve --workers 2 --port 0` on IPv4 or IPv6 loopback: (its host, its URL, its
    processes' pids; both answer on the one port it picked)."""
    host: str = request.param
    process, url, _ = _start("--host", host, "--workers", "2", "--quiet")
    try:
        pids = set()
        deadline = time.monotonic() + 10
        while len(pids) < 2 and time.monotonic() < deadline:
            with httpx.Client() as fresh:  # a new connection each time: the kernel spreads them
                pids.add(fresh.get(url + "/_mockai/health").json()["pid"])
        assert len(pids) == 2
        yield host, url, pids
    finally:
        _stop(process)


def _refused(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run `mockai serve ARGS`, which must exit by itself (a server that starts is killed, and
    the test fails on its exit code)."""
    command = [sys.executable, "-m", "mockai", "serve", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, errors = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:  # it serves: stop it, and say what it printed
        process.send_signal(signal.SIGTERM)
        out, errors = process.communicate(timeout=20)
        return subprocess.CompletedProcess(command, -1, out, errors)
    return subprocess.CompletedProcess(command, process.returncode, out, errors)


# --- a taken port --------------------------------------------------------------------------------


def test_a_port_taken_by_a_workers_server_is_refused_as_with_one_process(
    workers: tuple[str, str, set[int]],
) -> None:
    """A second `--workers 2` on the port used to start and take every other request from the
    first (SO_REUSEPORT): it must stop with the error a single process gets."""
    host, url, pids = workers
    port = url.rsplit(":", 1)[1]
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    for count in ("2", "1"):
        args = ["--host", host, "--port", port, "--workers", count, "--models", "other"]
        second = _refused([*args, "--quiet"])
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"cannot listen on {where}: " in second.stderr
    for _ in range(20):  # every connection still reaches the first server's processes
        with httpx.Client() as fresh:
            assert fresh.get(url + "/_mockai/health").json()["pid"] in pids


# --- IPv6 ----------------------------------------------------------------------------------------


@needs_ipv6
@pytest.mark.parametrize("host", ["::1", "::"])
def test_the_banner_brackets_an_ipv6_host_in_its_urls(host: str) -> None:
    process, url, banner = _start("--host", host, "--quiet")
    try:
        assert re.fullmatch(rf"http://\[{re.escape(host)}\]:\d+", url), banner
        assert f"  OPENAI_BASE_URL={url}/v1\n" in banner
        assert f"  inspector: {url}/_mockai/\n" in banner
        # The URL as printed is the one a client is given (`[::]` reaches this machine too).
        assert httpx.get(f"{url}/v1/models", timeout=10).status_code == 200
    finally:
        _stop(process)
    # MockServer's URLs, made apart from the banner, bracket it too.
    with MockServer(Config(host=host, log_requests=False), port=0) as server:
        assert server.base_url == f"http://[{host}]:{server.port}"
        assert httpx.get(server.url + "/models", timeout=10).status_code == 200


# --- JSON logs -----------------------------------------------------------------------------------


def _all_json(text: str) -> list[dict[str, object]]:
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not JSON: {line!r}\nin:\n{text}") from None
    return parsed


def test_with_json_logs_every_line_mockai_serve_writes_is_json() -> None:
    process, url, banner = _start("--log-format", "json", "--seed", "3")
    try:
        asked = httpx.get(url + "/v1/models", timeout=10)
    finally:
        out, errors = _stop(process)
    assert process.returncode == 0, errors
    (announced,) = _all_json(banner + out)
    assert announced["logger"] == "mockai" and announced["level"] == "info"
    assert announced["message"] == f"mockai {__version__} listening on {url} (seed 3)"
    assert announced["url"] == url and announced["base_url"] == url + "/v1"
    assert announced["seed"] == 3 and announced["pid"] == process.pid
    logged = _all_json(errors)
    access = [line for line in logged if line["logger"] == "mockai.access"]
    assert [line["request_id"] for line in access] == [asked.headers["x-request-id"]]
    (notice,) = [line for line in logged if "shutting down" in str(line["message"])]
    assert notice["logger"] == "mockai" and notice["grace"] == 10


def test_with_json_logs_a_startup_error_is_json() -> None:
    process, url, _ = _start("--quiet")
    try:
        port = url.rsplit(":", 1)[1]
        taken = _refused(["--port", port, "--log-format", "json"])
    finally:
        _stop(process)
    assert taken.returncode == 2
    (error,) = _all_json(taken.stderr)
    assert error["level"] == "error" and error["logger"] == "mockai"
    assert str(error["message"]).startswith(f"cannot listen on 127.0.0.1:{port}: ")
