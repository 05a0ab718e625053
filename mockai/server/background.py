"""`MockServer`: a mockai server in the background (for tests: `with MockServer() as server:
...`) on an event loop thread shared by every server of the process, so starting one costs a
socket bind and not a thread; or inside an existing event loop (`async with MockServer()`).

(`mockai serve` runs the same application, `app.create_app`, in the foreground without this
module; `mockai.server.app.MockServer` is this class.)
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import logging
import os
import socket
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from aiohttp import web

from mockai import profiles, scenario
from mockai.backend.memory import finish_now
from mockai.config import Config
from mockai.errors import ConfigError, ServerError
from mockai.pipeline.decide import Source
from mockai.pipeline.journal import Journal, JournalEntry
from mockai.scenario.book import RULES_OFF_LOOP
from mockai.server import sites
from mockai.server.app import _add_routes, _application, create_app
from mockai.server.state import STATE, ServerState
from mockai.server.unreadable import HEAD_LINE_LIMIT

T = TypeVar("T")

log = logging.getLogger("mockai")


class BackgroundLoop:
    """One asyncio loop in a daemon thread, shared by the background servers of a process (one
    for each kind of loop they ask for: `event_loop`)."""

    _shared: ClassVar[dict[Callable[[], asyncio.AbstractEventLoop], BackgroundLoop]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> None:
        self.loop: asyncio.AbstractEventLoop = (factory or sites.loop_factory())()
        self._thread = threading.Thread(target=self._run, name="mockai-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @classmethod
    def shared(cls, choice: str = "auto") -> BackgroundLoop:
        """The process's loop thread of the `choice` kind (auto, uvloop, asyncio: as
        `--event-loop`), started on first use (never at import)."""
        factory = sites.loop_factory(choice)
        with cls._lock:
            background = cls._shared.get(factory)
            if background is None or not background._thread.is_alive():
                background = cls._shared[factory] = cls(factory)
            return background

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run `coro` on the loop thread and wait for its result (`timeout` None: however
        long it takes)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


class _StoppedAtExit:
    """The servers running in the background, stopped when the interpreter exits if they still
    run then. Their loop thread is a daemon, which the interpreter ends wherever it is, so a
    server a script never stopped lost what a stop completes: the recording of its last answers
    (a cassette saved after each interaction had none of them written, or not the last) and
    its sockets (ResourceWarnings)."""

    def __init__(self) -> None:
        self._servers: set[MockServer] = set()  # (running anyway: their apps are alive)
        self._lock = threading.Lock()
        self._registered = False

    def add(self, server: MockServer) -> None:
        with self._lock:
            if not self._registered:
                atexit.register(self.stop_all)
                self._registered = True
            self._servers.add(server)

    def discard(self, server: MockServer) -> None:
        with self._lock:
            self._servers.discard(server)

    def stop_all(self) -> None:
        with self._lock:
            servers, self._servers = self._servers, set()
        for server in servers:
            if server._background is not None:
                try:
                    server.stop()
                except Exception:  # (the others still stop; there is no one to tell now)
                    log.debug("mockai: stopping a server at exit", exc_info=True)


_AT_EXIT = _StoppedAtExit()


def _loop_choice(config: Config) -> str:
    """The kind of loop a background server runs on: its `event_loop` when given, else
    MOCKAI_EVENT_LOOP's (as for `mockai serve`; uvloop when installed by default). Either was
    ignored: `MockServer(event_loop="asyncio")` served on uvloop, and a variable that `mockai
    serve` refuses (`asycnio`) chose uvloop without a word."""
    if "event_loop" in config.given:
        return config.event_loop
    return Config.from_env(_only("MOCKAI_EVENT_LOOP")).event_loop


def _only(variable: str) -> dict[str, str]:
    value = os.environ.get(variable)
    return {} if value is None else {variable: value}


def _on_a_new_loop(old: web.Application) -> web.Application:
    """`old`'s routes, state and hooks on a fresh application, which any event loop may run."""
    app = _application(old.router)
    if app.router is not old.router:  # (an aiohttp that takes no router: as create_app does)
        _add_routes(app, old[STATE].profile)
    for key in old:
        app[key] = old[key]
    app.cleanup_ctx.extend(old.cleanup_ctx)
    # The signals without the hooks aiohttp adds itself (those running the cleanup contexts).
    for signal, hooks in (
        (app.on_startup, old.on_startup),
        (app.on_shutdown, old.on_shutdown),
        (app.on_cleanup, old.on_cleanup),
    ):
        signal.extend(
            hook for hook in hooks if getattr(hook, "__self__", None) is not old.cleanup_ctx
        )
    app.on_response_prepare.extend(old.on_response_prepare)
    return app


class MockServer:
    """A mockai server on 127.0.0.1 (a free port by default), in the background or in a loop."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self,
        config: Config | None = None,
        *,
        sources: Sequence[Source] | None = None,
        **options: Any,
    ) -> None:
        base = Config(port=0) if config is None else config
        if "port" not in base.given:
            # A free port, as without a Config: the one a Config names when none was set is
            # `mockai serve`'s default, 8000, so `MockServer(Config(seed=3))` took it (and a
            # second such server, a pytest-xdist worker's or a `mockai serve` running there,
            # failed to start: "address already in use").
            base = dataclasses.replace(base, port=0)
        self.config = base.merged(**options)
        if self.config.workers > 1:
            # (said rather than ignored: it served in this one process, load tests included)
            raise ConfigError(
                f"workers={self.config.workers}: a MockServer (and the pytest fixture) serves in "
                "this process; several worker processes are `mockai serve --workers N`'s"
            )
        self._event_loop = _loop_choice(self.config)  # (checked now, not at the first start)
        self._sources = sources
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None  # the listening socket of the current run
        self._background: BackgroundLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop that ran `app` last
        self.app = create_app(self.config, sources)
        self.config = self.state.config  # with the scenario files' settings applied
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> MockServer:
        """Start serving in the background; returns once the port is bound."""
        if self.running:
            raise ServerError("Server is already running")
        background = BackgroundLoop.shared(self._event_loop)
        background.run(self.start_async())  # (a start that fails has released what it took)
        self._background = background
        _AT_EXIT.add(self)
        return self

    def stop(self) -> None:
        """Stop serving and close every connection."""
        if self._background is None:
            raise ServerError("Server is not running in the background")
        self._background.run(self.stop_async())
        self._background = None
        _AT_EXIT.discard(self)

    async def start_async(self) -> MockServer:
        """Start serving on the running event loop."""
        if self.running:
            raise ServerError("Server is already running")
        self._forget_an_ended_run()
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            # aiohttp ties an application to the first loop that runs it: a server stopped on
            # one loop (an `asyncio.run` that ended) and started on another gets a fresh one,
            # holding the same state, which a restart keeps (rules, journal, stored objects).
            self.app = _on_a_new_loop(self.app)
        try:
            sock = sites.listen(self.config.host, self.config.port)
        except OSError as error:
            where = sites.authority(self.config.host, self.config.port)
            raise ServerError(f"cannot listen on {where}: {error}") from error
        runner = web.AppRunner(
            self.app,
            access_log=None,
            shutdown_timeout=1.0,
            keepalive_timeout=self.config.read_timeout,
            # (header lines up to 64 KiB: Entra ID tokens; see HEAD_LINE_LIMIT)
            max_line_size=HEAD_LINE_LIMIT,
            max_field_size=HEAD_LINE_LIMIT,
        )
        self._loop = loop  # (the app is tied to this loop from its start on, failed or not)
        try:
            await runner.setup()
            await sites.StampingSite(runner, sock, self.state.arrivals).start()
        except BaseException:
            await self._release(runner, sock)
            raise
        self._runner, self._sock = runner, sock
        self.port = int(sock.getsockname()[1])
        return self

    async def _release(self, runner: web.AppRunner, sock: socket.socket) -> None:
        """Give back what a start that failed took (its startup raised: a shared state Redis
        refuses, a scenario rule clashing with a shared one), then let its error be raised:
        the port (free to bind again), what the startup contexts that ran opened (aiohttp
        unwinds those on cleanup), and the shared state's connection, which a startup that
        failed after connecting leaves open (it closes at the end of a start that succeeded)."""
        sock.close()
        for release in (runner.cleanup, self.state.backend.close):
            try:
                await release()
            except Exception:  # (the start's error is the one to report)
                log.debug("mockai: releasing a failed start", exc_info=True)

    async def stop_async(self) -> None:
        """Stop serving (on the loop the server runs on)."""
        if not self.running:
            self._forget_an_ended_run()
            raise ServerError("Server is not running")
        runner, self._runner, self._sock = self._runner, None, None
        assert runner is not None
        await runner.cleanup()

    def _forget_an_ended_run(self) -> None:
        """Let go of a run whose event loop was closed without a stop (an `asyncio.run`, or a
        pytest-asyncio test's loop, that ended first): nothing serves it any more, but it kept
        `running` True, every later start refused as 'already running', and its port open until
        the process exited (a ResourceWarning then)."""
        if self._runner is None or self.running:
            return
        self._runner = None
        if self._sock is not None:  # (a loop that closed it took it over: uvloop's, detached)
            self._sock.close()
            self._sock = None

    @property
    def running(self) -> bool:
        """True between start and stop (and not once the loop it ran on is closed)."""
        loop = self._loop
        return self._runner is not None and not (loop is not None and loop.is_closed())

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        # A server the block stopped itself (to see the app cope with the API going away) is
        # left stopped: stopping it again raised ServerError, in place of the block's own
        # error (a failed assertion) when it had one.
        if self._background is not None:
            self.stop()

    async def __aenter__(self) -> MockServer:
        return await self.start_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.running:  # (unless the block stopped it: see __exit__)
            await self.stop_async()

    # --- addresses -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://host:port` (no `/v1`)."""
        if not self.port:
            raise ServerError("Server is not running")
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL for OpenAI clients, including `/v1`."""
        return self.base_url + "/v1"

    def provider_url(self, name: str) -> str:
        """The base URL of provider profile `name` on this server, as that provider's clients
        take it: `http://127.0.0.1:PORT/groq/openai/v1`, `.../openrouter/api/v1`, ..."""
        return self.base_url + profiles.get(name).prefixes[0]

    def url_for(self, path: str) -> str:
        """An absolute URL for `path` on this server (`/v1/models`, `/_mockai/requests`, ...)."""
        return self.base_url + "/" + path.lstrip("/")

    # --- inspection ----------------------------------------------------------------------------

    @property
    def state(self) -> ServerState:
        """The server's live state (journal, catalog, rules, ...)."""
        return self.app[STATE]

    @property
    def journal(self) -> Journal:
        """Every request served, oldest first (bounded)."""
        return self.state.journal

    @property
    def requests(self) -> list[JournalEntry]:
        """A snapshot of the journal."""
        return self.state.journal.entries()

    def reset(self) -> None:
        """Forget requests, rate-limit usage, repeat counters and rule counters."""
        self._call(self.state.reset())

    async def reset_async(self) -> None:
        """`reset`, from the loop the server runs on."""
        await self.state.reset()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a state operation from the caller's thread: on the server's loop when it serves
        in the background, at once for in-process state (which never waits)."""
        if self._background is not None:
            return self._background.run(coro)
        if self.state.backend.shared:
            coro.close()
            raise ServerError(
                "with shared state (--state), call this on a server started in the background "
                "(`with MockServer(...)`), or use its *_async form inside the server's loop"
            )
        return finish_now(coro)

    # --- rules ---------------------------------------------------------------------------------

    def add_rule(self, rule: Mapping[str, Any]) -> str:
        """Add a rule (a scenario-file rule as a dict), asked before the scenario files' rules.

        Returns its name (`rule-1`, ... when it has none). The rule is validated like a file's:
        a ScenarioError lists every problem. Safe to call while the server is serving.
        """
        return self.add_rules([rule])[0]

    def add_rules(self, rules: Iterable[Mapping[str, Any]]) -> list[str]:
        """Add several rules at once (all or none); returns their names."""
        book = self._book()
        values = list(rules)
        if book.shared is None and (self._background is None or len(values) < RULES_OFF_LOOP):
            return book.add(values)
        # Many rules for a server serving in the background: checked by `add` here, they held
        # the rules' lock, which its loop waits for to match a request, so the whole server
        # (health too) stood still meanwhile (~2.5 s for 20,000); checked as
        # `POST /_mockai/rules` checks them, off the loop and without the lock.
        if self._background is not None and book.shared is None:
            # (no time bound, as `add`'s: checking 300,000 rules takes longer than `run`'s 30 s)
            return self._background.run(book.add_async(values), timeout=None)
        return self._call(book.add_async(values))

    def remove_rule(self, name: str) -> None:
        """Remove a rule by name (a runtime rule or a scenario rule)."""
        book = self._book()
        if book.shared is None:
            book.remove(name)
        else:
            self._call(book.remove_async(name))

    def clear_rules(self) -> None:
        """Remove every runtime rule; the scenario files' rules stay."""
        book = self._book()
        if book.shared is None:
            book.clear()
        else:
            self._call(book.clear_async())

    def load(self, path: str | os.PathLike[str]) -> list[str]:
        """Add the rules of a scenario file or folder (after the current scenario rules).

        Only the rules are taken: settings (seed, models, ...) apply when given at start, and
        those the files give are logged as not applied (a `chaos:` or `seed:` dropped without
        a word left a test passing without the faults or the answers it was written for).
        """
        loaded = scenario.load([os.fspath(path)])
        names = self._book().load(loaded)
        for name, setting in loaded.settings.items():
            log.warning(
                "mockai: %s:%d: %s is not applied: load() takes a file's rules only (give the "
                "file when the server starts for its settings: MockServer(scenario=...), "
                "the pytest marker's scenario=, mockai serve --scenario)",
                setting.file,
                setting.line,
                name,
            )
        return names

    @property
    def rules(self) -> list[scenario.RuleInfo]:
        """Every rule in the order they are asked: name, source, origin, times served."""
        book = self._book()
        return book.describe() if book.shared is None else self._call(book.describe_async())

    def _book(self) -> scenario.RuleBook:
        if self.state.rules is None:
            raise ServerError("this server was built with custom sources and has no rules")
        return self.state.rules
