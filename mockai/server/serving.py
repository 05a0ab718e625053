"""Serving in the foreground, as `mockai serve` does: one process, or several sharing one socket.

With `--workers N` the parent checks that the port is free, binds N sockets to it with
SO_REUSEPORT (the kernel spreads new connections evenly across them), forks N-1 children that
serve one socket each, and serves the first itself (`sites.listen_group`).
Without `--state`, each process has its own journal, rules and rate-limit windows (admin endpoints
answer for the process that got the request); with `--state redis://...` they share one state and
behave as one server. Metrics are added up across the workers (each shares its totals through
a temporary folder set up here before the workers start).

Shutdown (SIGTERM or SIGINT, to the parent): every process stops accepting at once (the parent
passes the signal on), lets requests in flight — streams included — finish for up to `--grace`
seconds, cuts those still running then, flushes cassettes being recorded, and exits 0
(`lifecycle.shut_down`: at most `--grace` + 1 s). A worker also stops when its parent dies, even
by SIGKILL (`lifecycle.bind_to_parent`), and the last one out removes the metrics folder.

A worker that dies while the server runs (`kill -9`, the OOM killer) is waited for within a
second, said on stderr, and its live gauges leave the metrics (`Workers.reap`). It is not
replaced: every socket of the group is bound before the first fork (`sites.listen_group`), and
forking a new worker from the parent's running event loop is not safe; the kernel sends new
connections to the sockets still open, so the server goes on with one process fewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator

from aiohttp import web

from mockai import __version__, buildinfo
from mockai.config import Config, upstream_shown
from mockai.console import say
from mockai.errors import ServerError
from mockai.pipeline.exchange import Endpoint
from mockai.server import heap, sites
from mockai.server.app import create_app
from mockai.server.metrics import orphaned, worker_exited
from mockai.server.state import STATE, ServerState
from mockai.server.unreadable import HEAD_LINE_LIMIT


def banner(state: ServerState, port: int, loop: str = "asyncio") -> str:
    """What `mockai serve` prints when it is ready (`loop`: the event loop's kind): a page of
    text, or with `--log-format json` one JSON line (`banner_json`)."""
    if state.config.log_format == "json":
        return banner_json(state, port, loop)
    config = state.config
    base = f"http://{sites.authority(config.host, port)}"
    lines = (
        [
            _listening(state, base),
            f"  OPENAI_BASE_URL={base}/v1",
            *_profile(config),
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
            (
                "  admin: /_mockai/health  /_mockai/requests  /_mockai/rules  /_mockai/reset"
                "  /_mockai/metrics"
            ),
            f"  inspector: {base}/_mockai/",
        ]
        + [f"  {line}" for line in _answers(state)]
        + [f"  event loop: {loop}", f"  build: {buildinfo.describe()}", "Press Ctrl-C to stop."]
    )
    return "\n".join(lines)


def _profile(config: Config) -> list[str]:
    """The provider the server answers as, when `--profile` (or `MOCKAI_PROFILE`) makes it
    another than OpenAI: where, and which endpoints that provider lacks. Unsaid, a server left
    answering as Groq or Anthropic looked like an OpenAI one, its error bodies and 404s a
    mystery."""
    if config.profile == "openai":
        return []
    from mockai.profiles.places import PLACES  # (the routing table: no profile module)

    place = PLACES[config.profile]
    paths = ["/v1", "the root", *(path for path in place.paths if path not in ("", "/v1"))]
    where = ", ".join(paths[:-1]) + f" and {paths[-1]}"
    line = f"  profile: {config.profile} (answers as that provider at {where}"
    served = [str(endpoint) for endpoint in Endpoint if endpoint in place.endpoints]
    missing = [str(endpoint) for endpoint in Endpoint if endpoint not in place.endpoints]
    if len(served) < len(missing):
        line += f"; only {', '.join(served)}: the rest are its 404"
    elif missing:
        line += f"; {', '.join(missing)} are its 404"
    return [line + ")"]


def _listening(state: ServerState, base: str) -> str:
    """The banner's first line, the one scripts read the URL from (`listening on URL `)."""
    config = state.config
    workers = f", {config.workers} workers" if config.workers > 1 else ""
    workers += f", state {state.backend.name}" if state.backend.shared else ""
    return f"mockai {__version__} listening on {base} (seed {config.seed}{workers})"


def banner_json(state: ServerState, port: int, loop: str = "asyncio") -> str:
    """The banner as one JSON line, for `--log-format json`, where every line mockai writes is
    JSON (a log pipeline reads stdout and stderr alike). Its `message` is the text banner's
    first line (`... listening on URL (seed ...)`), so what reads the URL from it still does;
    the endpoint list, help for people, is left out."""
    from mockai.server.logs import json_line  # (only JSON logs need it: see test_startup_imports)

    config = state.config
    base = f"http://{sites.authority(config.host, port)}"
    fields = {
        "url": base,
        "base_url": f"{base}/v1",
        "version": __version__,
        "seed": config.seed,
        "workers": config.workers,
        "profile": config.profile,
        "state": state.backend.name if state.backend.shared else "memory",
        "answers": _answers(state),
        "event_loop": loop,
        "build": buildinfo.describe(),
        "pid": os.getpid(),
    }
    return json_line(_listening(state, base), fields)


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
    # (the upstream's query credentials hidden, as in cassettes: the banner ends up in CI logs)
    forwarding = _forwarding(state)
    if forwarding == "records":
        lines.append(f"records from: {upstream_shown(config.upstream)}")
    fallback = state.decider.fallback or ("error" if lines else "generate")
    if forwarding is not None:
        # The upstream answers whatever the sources before it did not: the fallback is never
        # reached. (A passthrough had been announced as "generated answers", and a recording
        # server as answering misses with a no-match error.)
        if forwarding == "records":
            lines.append("otherwise: forwarded upstream, and recorded")
        else:
            shown = upstream_shown(config.upstream)
            lines.append(f"otherwise: forwarded to {shown} (a passthrough: nothing is recorded)")
    elif fallback == "generate":
        lines.append("otherwise: generated answers (deterministic for the seed)")
    else:
        lines.append("otherwise: a no-match error naming the closest rules / recordings")
    for name in ("chaos", "latency", "limits"):
        value = getattr(config, name)
        if value:
            lines.append(f"{name}: {value}")
    return lines


def _forwarding(state: ServerState) -> str | None:
    """What the server does with `--upstream`: `records` from it, `passes` requests through to
    it (no `--cassette`), or None when it is not used (a cassette that is only replayed, as
    record mode `none` or `once` on a cassette that exists)."""
    if state.config.upstream is None:
        return None
    from mockai.cassette.record import UpstreamSource  # (only with an upstream)

    for source in state.decider.sources:
        if isinstance(source, UpstreamSource):
            return "passes" if source.recorder is None else "records"
    return None


def listen(config: Config) -> list[socket.socket]:
    """A bound, listening socket for each of the `config.workers` processes, all on one port
    (a ServerError if the address is taken, by another `mockai serve --workers` too)."""
    try:
        return sites.listen_group(config.host, config.port, max(config.workers, 1))
    except OSError as error:
        where = sites.authority(config.host, config.port)
        raise ServerError(f"cannot listen on {where}: {error}") from None


async def serve_socket(
    config: Config,
    sock: socket.socket,
    *,
    announce: bool = True,
    on_stop: Callable[[], None] | None = None,
    metrics_dir: str | None = None,
    parent_line: int | None = None,
    every_second: Callable[[], None] | None = None,
) -> None:
    """Serve on `sock` until SIGINT or SIGTERM, then shut down gracefully (see the module);
    `on_stop` runs as soon as the signal comes (the parent passes it on to the workers);
    `metrics_dir` is where the workers add up their metrics; `parent_line`, in a worker, the
    pipe whose end of file says the parent is gone (`lifecycle.bind_to_parent`);
    `every_second` runs once a second until then (the parent waits for workers that died)."""
    heap.keep_big_buffers_out_of_the_heap()
    # A worker's startup would say what the parent's says (the same files, loaded the same
    # way): `replaying 3 interaction(s) from ...` once per worker. Said once, by the process
    # that prints the banner; a worker's errors are still said.
    starting = contextlib.nullcontext if announce else _said_by_the_parent
    with starting():
        app = create_app(config, metrics_dir=metrics_dir)
    if config.log_requests:  # (the command line's logging writes to stderr: so do the lines)
        from mockai.server.logs import StreamAccessLog

        app[STATE].access_log = StreamAccessLog(sys.stderr, json_lines=config.log_format == "json")
    # Startup objects (catalogs, Faker's data, compiled rules) live forever: keeping them out of
    # the collector's scans cuts full-collection pauses from tens of milliseconds to a few.
    gc.freeze()
    # aiohttp's keep-alive timer also runs while a connection has not sent a whole request
    # head yet: it bounds idle and half-open connections alike.
    # `shutdown_timeout` is the grace: how long handlers still running (streams) may take once
    # the listening socket is closed, before they are cancelled (the bound on the whole
    # shutdown is `lifecycle.shut_down`'s: aiohttp's can take twice as long, or forever).
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=config.grace,
        keepalive_timeout=config.read_timeout,
        # (header lines up to 64 KiB: Entra ID tokens; see HEAD_LINE_LIMIT)
        max_line_size=HEAD_LINE_LIMIT,
        max_field_size=HEAD_LINE_LIMIT,
    )
    with starting():  # (the app's startup: `watching ... for changes`)
        await runner.setup()
    await sites.StampingSite(runner, sock, app[STATE].arrivals).start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            loop.add_signal_handler(sig, stopping.set)
    if parent_line is not None:
        from mockai.server import lifecycle  # (workers and shutdowns only: test_startup_imports)

        lifecycle.watch_parent(parent_line, stopping.set)
    if announce:
        # After the handlers: a SIGTERM sent once the banner is seen must stop the workers too.
        # The app's config: scenario files may have set the seed or the models.
        kind = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
        port = sock.getsockname()[1]
        if not say(banner(app[STATE], port, kind), sys.stdout):
            # (stdout full, or its reader gone: serving goes on, as with a closed stdout)
            url = f"http://{sites.authority(config.host, port)}"
            _notice(config, f"could not write the banner to stdout; serving on {url} anyway")
    journal = app[STATE].journal
    trimming = asyncio.create_task(heap.trim_when_idle(journal.requests_so_far))
    trimming.add_done_callback(heap.report_failure)
    ticking = asyncio.create_task(_tick(every_second)) if every_second is not None else None
    try:
        await stopping.wait()
    finally:
        trimming.cancel()
        if ticking is not None:
            ticking.cancel()
        if on_stop is not None:
            on_stop()
        if announce:
            notice = f"shutting down (in-flight requests get up to {config.grace:g}s)"
            _notice(config, notice, {"grace": config.grace})
        from mockai.server import lifecycle

        await lifecycle.shut_down(runner, config.grace)


@contextlib.contextmanager
def _said_by_the_parent() -> Iterator[None]:
    """mockai's log lines below errors left out meanwhile (`mockai serve`'s handlers are on the
    `mockai` logger: see cli._configure_logging)."""
    handlers = logging.getLogger("mockai").handlers
    for handler in handlers:
        handler.addFilter(_errors_only)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(_errors_only)


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _notice(
    config: Config, notice: str, fields: dict[str, object] | None = None, level: str = "info"
) -> None:
    """`mockai: NOTICE` on stderr (a JSON line under `--log-format json`, where every line is
    JSON). A stderr that cannot be written loses it: the shutdown it announces must still run."""
    if config.log_format == "json":
        from mockai.server.logs import json_line

        notice = json_line(notice, {**(fields or {}), "pid": os.getpid()}, level=level)
    else:
        notice = f"mockai: {notice}"
    say(notice, sys.stderr)


async def _tick(call: Callable[[], None]) -> None:
    """Call `call` once a second until cancelled."""
    while True:
        await asyncio.sleep(1.0)
        call()


class Workers:
    """The worker processes `run` forked, until each has ended and been waited for."""

    def __init__(self, config: Config, metrics_dir: str | None) -> None:
        self.config = config
        self.metrics_dir = metrics_dir
        self.pids: list[int] = []

    def stop(self) -> None:
        """SIGTERM to every worker still running: each shuts down within its grace."""
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def reap(self) -> None:
        """While serving: wait for the workers that have died, none of them blocking. Unwaited,
        one stayed a zombie and its last gauges (requests in flight, streams) counted for good."""
        for pid in list(self.pids):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # (waited for already: nothing to say of it)
                done, status = pid, None
            if done:
                self._ended(pid)
                if status is not None:
                    self._say(pid, status)

    def wait(self) -> None:
        """At shutdown: wait for every worker still running (each ends within its grace)."""
        for pid in list(self.pids):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self._ended(pid)

    def _ended(self, pid: int) -> None:
        self.pids.remove(pid)
        if self.metrics_dir is not None:
            worker_exited(self.metrics_dir, pid)

    def _say(self, pid: int, status: int) -> None:
        """`mockai: worker PID exited (signal 9)` (or `(exit code N)`) on stderr."""
        if os.WIFSIGNALED(status):
            how, fields = f"signal {os.WTERMSIG(status)}", {"signal": os.WTERMSIG(status)}
        else:
            code = os.waitstatus_to_exitcode(status)
            how, fields = f"exit code {code}", {"exit_code": code}
        _notice(self.config, f"worker {pid} exited ({how})", {"worker": pid, **fields}, "error")


def run(config: Config) -> None:
    """Serve `config` in the foreground with `config.workers` processes."""
    sock, *theirs = listen(config)
    # Where the workers add up their metrics (each writes its totals there).
    metrics_dir = tempfile.mkdtemp(prefix="mockai-metrics-") if config.workers > 1 else None
    # The workers' tie to this process (`lifecycle.bind_to_parent`): its write end stays open
    # here until this process ends, however it ends.
    line = os.pipe()
    workers = Workers(config, metrics_dir)
    for own in theirs:
        workers.pids.append(_fork_worker(config, own, [sock, *theirs], metrics_dir, line))
        # The worker's now: held open here too, it would keep taking connections nobody
        # accepts once the worker stopped (and later workers need not inherit it).
        own.close()
    os.close(line[0])  # (the workers' end)
    try:
        sites.run_stamped(
            serve_socket(
                config,
                sock,
                on_stop=workers.stop,
                metrics_dir=metrics_dir,
                every_second=workers.reap if workers.pids else None,
            ),
            config.event_loop,
        )
    finally:
        workers.stop()
        workers.wait()
        sock.close()
        os.close(line[1])
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _fork_worker(
    config: Config,
    own: socket.socket,
    group: list[socket.socket],
    metrics_dir: str | None,
    line: tuple[int, int],
) -> int:
    """Fork a worker serving `own`, one of the `group` of sockets the parent bound, that ends
    with the parent (`line`: the pipe `run` made for that)."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    # At once: the parent may be killed any moment from now.
    from mockai.server import lifecycle

    parent_line = lifecycle.bind_to_parent(parent, line)
    # The child: serve on its own socket until told to stop; it never returns into the caller's
    # code. The group's other sockets are closed here: held open by this child, one would keep
    # taking connections nobody accepts once its process stopped (reset at exit instead of
    # refused while shutting down).
    for sock in group:
        if sock is not own:
            sock.close()
    code = 0
    try:
        sites.run_stamped(
            serve_socket(
                config, own, announce=False, metrics_dir=metrics_dir, parent_line=parent_line
            ),
            config.event_loop,
        )
    except BaseException:
        code = 1
    finally:
        # A parent killed outright cannot remove the metrics folder: its workers do.
        if metrics_dir is not None and lifecycle.parent_gone(parent, parent_line):
            orphaned(metrics_dir, parent)
        os._exit(code)
