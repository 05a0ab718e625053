"""Real processes for the service tests: a redis-server on a free loopback port, and
`mockai serve` (with `--workers`) as users run it.

Both are started and stopped by the tests themselves, bounded in time, and talk only to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    """Whether something answers a Redis PING on the port (raw RESP: no client needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A throwaway redis-server (no persistence) that a test can kill and start again."""

    def __init__(self, *options: str) -> None:
        self.port = free_port()
        self.options = options  # more redis-server options (`--proto-max-bulk-len 1mb`)
        self._dir = tempfile.mkdtemp(prefix="mockai-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self._process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
                "--loglevel",
                "warning",
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        """SIGKILL: what a crashed or evicted Redis looks like to its clients."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None

    def pause(self) -> None:
        """SIGSTOP: a Redis that keeps its connections open and answers nothing (a stalled host,
        a full network buffer)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)  # (a paused process must not outlive us)
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def url(self, prefix: str | None = None) -> str:
        """A state URL in a namespace of its own (a fresh one unless `prefix` is given)."""
        return f"redis://127.0.0.1:{self.port}/0?prefix={prefix or 'test-' + uuid.uuid4().hex}"


@contextlib.contextmanager
def redis_server(*options: str) -> Iterator[RedisServer]:
    server = RedisServer(*options).start()
    try:
        yield server
    finally:
        server.stop()


_LISTENING = re.compile(r"listening on (http://\S+)")


class ServeProcess:
    """`python -m mockai serve ...` in its own process group, on a free port."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.output: list[str] = []
        self._reader: threading.Thread | None = None

    def start(self) -> ServeProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mockai", "serve", "--port", "0", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            found = _LISTENING.search(line)
            if found:
                self.base_url = found.group(1)
                break
        if not self.base_url:
            self.stop()
            raise RuntimeError("mockai serve did not start:\n" + "".join(self.output))
        # Keep reading what it prints: tests watch for log lines, and a full pipe would block it.
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()
        return self

    def _read(self, stdout: Any) -> None:
        for line in stdout:
            self.output.append(line)

    def printed(self) -> str:
        """What the process printed so far."""
        return "".join(self.output)

    @property
    def url(self) -> str:
        return self.base_url + "/v1"

    def url_for(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def all_output(self) -> str:
        """Everything the process printed (it must have ended: see `wait` and `stop`)."""
        self._drain()
        return "".join(self.output)

    def _drain(self) -> None:
        stdout = self.process.stdout if self.process is not None else None
        if self._reader is not None:
            self._reader.join(10)
        elif stdout is not None and not stdout.closed:
            self.output.append(stdout.read())
        if stdout is not None and not stdout.closed:
            stdout.close()

    def stop(self, grace: float = 15) -> None:
        """SIGTERM, then SIGKILL if it has not ended within `grace` seconds (0: SIGKILL at once,
        for a server whose loop may be stuck)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
            try:
                self.process.wait(grace if grace > 0 else 5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._drain()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fresh_connections() -> httpx.Client:
    """An HTTP client opening a new connection per request: with `--workers`, the kernel spreads
    connections over the workers, so consecutive requests land on different processes."""
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=30)


def worker_pids(base_url: str, tries: int = 60) -> set[int]:
    """The pids answering /_mockai/health over many fresh connections."""
    with fresh_connections() as client:
        return {client.get(base_url + "/_mockai/health").json()["pid"] for _ in range(tries)}


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
