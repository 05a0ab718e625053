"""Serving in the foreground, as `mockai serve` does: one process, or several sharing one socket.

With `--workers N` the parent binds the port, forks N-1 children that bind it too with
SO_REUSEPORT (the kernel spreads new connections evenly across the processes), serves itself, and
on SIGINT/SIGTERM stops the children before exiting. Each process has its own journal, rules and
rate-limit windows: admin endpoints answer for the process that got the request, so use one
worker when tests inspect the server; several are for load tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys

from aiohttp import web

from mockai import __version__
from mockai.config import Config
from mockai.errors import ServerError
from mockai.server import sites
from mockai.server.app import create_app
from mockai.server.state import STATE, ServerState


def banner(state: ServerState, port: int) -> str:
    """What `mockai serve` prints when it is ready."""
    config = state.config
    base = f"http://{config.host}:{port}"
    workers = f", {config.workers} workers" if config.workers > 1 else ""
    lines = (
        [
            f"mockai {__version__} listening on {base} (seed {config.seed}{workers})",
            f"  OPENAI_BASE_URL={base}/v1",
            (
                "  POST /v1/chat/completions  /v1/completions  /v1/responses  /v1/embeddings"
                "  /v1/moderations"
            ),
            (
                "  POST /v1/images/generations  /v1/images/edits  /v1/audio/speech"
                "  /v1/audio/transcriptions  /v1/files  /v1/batches"
            ),
            "  GET  /v1/models  /v1/models/{id}",
            "  state: /v1/responses/{id}  /v1/conversations  /v1/chat/completions (store: true)",
            "  Azure: /openai/deployments/{deployment}/...  /openai/v1/...",
            "  admin: /_mockai/health  /_mockai/requests  /_mockai/rules  /_mockai/reset",
        ]
        + [f"  {line}" for line in _answers(state)]
        + ["Press Ctrl-C to stop."]
    )
    return "\n".join(lines)


def _answers(state: ServerState) -> list[str]:
    """Where answers come from, in the order they are asked, and what breaks them."""
    config = state.config
    lines = []
    if state.rules is not None:
        rules = state.rules.describe()
        if rules:
            files = ", ".join(config.scenarios)
            lines.append(f"answers: {len(rules)} scenario rule(s) from {files}")
    if config.cassette:
        lines.append(f"answers: cassette {config.cassette} (record mode {config.record_mode})")
    if config.upstream and config.record_mode != "none":
        lines.append(f"records from: {config.upstream}")
    fallback = state.decider.fallback or ("error" if lines else "generate")
    if fallback == "generate":
        lines.append("otherwise: generated answers (deterministic for the seed)")
    else:
        lines.append("otherwise: a no-match error naming the closest rules / recordings")
    for name in ("chaos", "latency", "limits"):
        value = getattr(config, name)
        if value:
            lines.append(f"{name}: {value}")
    return lines


def listen(config: Config, port: int | None = None) -> socket.socket:
    """The bound, listening socket (a ServerError if the address is taken)."""
    port = config.port if port is None else port
    try:
        return sites.listen(config.host, port, reuse_port=config.workers > 1)
    except OSError as error:
        raise ServerError(f"cannot listen on {config.host}:{port}: {error}") from None


async def serve_socket(config: Config, sock: socket.socket, *, announce: bool = True) -> None:
    """Serve on `sock` until SIGINT or SIGTERM, then shut down cleanly."""
    app = create_app(config)
    # Startup objects (catalogs, Faker's data, compiled rules) live forever: keeping them out of
    # the collector's scans cuts full-collection pauses from tens of milliseconds to a few.
    gc.freeze()
    # aiohttp's keep-alive timer also runs while a connection has not sent a whole request
    # head yet: it bounds idle and half-open connections alike.
    runner = web.AppRunner(
        app, access_log=None, shutdown_timeout=5.0, keepalive_timeout=config.read_timeout
    )
    await runner.setup()
    await sites.StampingSite(runner, sock, app[STATE].arrivals).start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            loop.add_signal_handler(sig, stopping.set)
    if announce:
        # After the handlers: a SIGTERM sent once the banner is seen must stop the workers too.
        # The app's config: scenario files may have set the seed or the models.
        print(banner(app[STATE], sock.getsockname()[1]), flush=True)
    try:
        await stopping.wait()
    finally:
        if announce:
            print("mockai: shutting down", file=sys.stderr, flush=True)
        await runner.cleanup()


def run(config: Config) -> None:
    """Serve `config` in the foreground with `config.workers` processes."""
    sock = listen(config)
    port = sock.getsockname()[1]  # the real port, when 0 asked for a free one
    children = [_fork_worker(config, port) for _ in range(max(config.workers, 1) - 1)]
    try:
        sites.run_stamped(serve_socket(config, sock))
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        sock.close()


def _fork_worker(config: Config, port: int) -> int:
    pid = os.fork()
    if pid:
        return pid
    # The child: serve on its own socket bound to the same port until told to stop; it never
    # returns into the caller's code.
    code = 0
    try:
        sites.run_stamped(serve_socket(config, listen(config, port), announce=False))
    except BaseException:
        code = 1
    finally:
        os._exit(code)
