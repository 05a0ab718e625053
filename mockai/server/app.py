"""The server: `create_app(config)` builds the aiohttp application; `MockServer` runs it.

`MockServer` runs in the background (for tests: `with MockServer() as server: ...`) on an event
loop thread shared by every server of the process, so starting one costs a socket bind and not a
thread; or inside an existing event loop (`async with MockServer() as server`). The CLI runs the
same application in the foreground.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import warnings
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from aiohttp import web

from mockai import profiles, scenario
from mockai.api.codecs import CODECS, CodecRef
from mockai.backend import StateUnavailable, open_backend
from mockai.backend.memory import finish_now
from mockai.catalog import Catalog
from mockai.config import Config, check_together
from mockai.delivery.chaos import FaultPlanner
from mockai.delivery.ratelimit import parse_limits
from mockai.errors import ServerError
from mockai.generate.fallback import FallbackGenerator
from mockai.pipeline.decide import Decider, Source
from mockai.pipeline.exchange import Endpoint
from mockai.pipeline.journal import Journal, JournalEntry
from mockai.pipeline.sources import build_sources
from mockai.profiles.base import Profile
from mockai.server import admin, reload, routes, sites
from mockai.server.metrics import Metrics
from mockai.server.state import STATE, ServerState

T = TypeVar("T")

# Prompts can be large (long contexts, base64 images): aiohttp's default 1 MiB is too small.
MAX_BODY = 64 * 1024 * 1024


def create_app(
    config: Config | None = None,
    sources: Sequence[Source] | None = None,
    *,
    metrics_dir: str | None = None,
) -> web.Application:
    """A ready-to-run aiohttp application answering like the OpenAI API.

    `sources` default to those the configuration describes (rules, scenarios, cassettes).
    Scenario files are loaded and validated here: a ScenarioError lists every problem.
    `metrics_dir`: where the workers of one `mockai serve` add up their metrics.
    """
    config = scenario.configure(config or Config())
    check_together(config)
    if sources is None:
        sources = build_sources(config)
    profile = profiles.get(config.profile)
    catalog = Catalog(config.models, builtin=profile.catalog)
    generator = FallbackGenerator(config.seed, catalog)
    backend = open_backend(config.state, journal_size=config.journal_size)
    rules = next((s for s in sources if isinstance(s, scenario.RuleBook)), None)
    if rules is not None:
        rules.fallback_generator = generator
        rules.shared = backend.rules()
    journal = Journal(config.journal_size, config.journal_bytes)
    state = ServerState(
        config=config,
        catalog=catalog,
        decider=Decider(
            sources,
            generator,
            fallback=config.fallback,
            no_match_status=config.no_match_status,
        ),
        journal=journal,
        ratelimits=backend.budgets(parse_limits(config.limits)),
        codecs=routes.codecs(),
        rules=rules,
        occurrences=backend.occurrences(),
        faults=FaultPlanner.from_config(config, backend.attempts()),
        backend=backend,
        shared_journal=backend.journal(journal),
        metrics=Metrics(metrics_dir),
        profile=profile,
    )
    state.decider.keepers.update(state.keepers())  # (the stores are made on first use)
    shared = _routes(CODECS, profile)
    app = _application(shared)
    app[STATE] = state
    app.cleanup_ctx.append(_state_lifespan)
    if state.metrics is not None:
        app.cleanup_ctx.append(state.metrics.lifespan)
    if config.watch:
        reload.require_watchfiles()
        app.cleanup_ctx.append(reload.watch_lifespan)
    app.on_startup.append(state.delivery.startup)
    app.on_shutdown.append(state.delivery.shutdown)  # ends stalled / hung connections at once
    for source in sources:
        lifespan = getattr(source, "lifespan", None)
        if lifespan is not None:  # a source holding connections or files (the upstream's)
            app.cleanup_ctx.append(lifespan)
    if app.router is not shared:  # (aiohttp did not take the shared router: build its own)
        _add_routes(app, CODECS, profile)
    return app


def _add_routes(app: web.Application, codecs: tuple[CodecRef, ...], profile: Profile) -> None:
    routes.add_api_routes(app, codecs, profile)
    admin.add_admin_routes(app)
    routes.add_media_routes(app)
    routes.add_catch_all(app, profile)


# Every server answers on the same routes (their handlers find the server's state through the
# request's app), and registering ~200 of them is ~90% of what making an app costs (~4 ms, per
# test with the pytest fixture): they are built once per process and shared, frozen.
# (Handlers close over the server's provider profile, so each profile has its own table.)
_shared_routes: dict[tuple[str, tuple[Endpoint, ...]], web.UrlDispatcher] = {}
_shared_routes_lock = threading.Lock()


def _routes(codecs: tuple[CodecRef, ...], profile: Profile) -> web.UrlDispatcher:
    key = (profile.name, tuple(codec.endpoint for codec in codecs))
    with _shared_routes_lock:
        router = _shared_routes.get(key)
        if router is None:
            holder = web.Application()  # only holds the routes while they are added
            _add_routes(holder, codecs, profile)
            router = holder.router
            router.freeze()
            _shared_routes[key] = router
        return router


def _application(router: web.UrlDispatcher) -> web.Application:
    """An app on the shared `router`, or on its own (empty) one if aiohttp no longer takes one."""
    try:
        with warnings.catch_warnings():
            # Deprecated but supported through aiohttp 3.x; the fallback covers its removal.
            warnings.simplefilter("ignore", DeprecationWarning)
            return web.Application(client_max_size=MAX_BODY, router=router)
    except TypeError:  # pragma: no cover (an aiohttp without the parameter)
        return web.Application(client_max_size=MAX_BODY)


async def _state_lifespan(app: web.Application) -> AsyncIterator[None]:
    """Connect to the shared state (if any) on the serving loop, and close it at the end."""
    state = app[STATE]
    await state.backend.connect()
    if state.rules is not None and state.backend.shared:
        # Rules other workers added before this one started; without the state, each request
        # says so (a 503) until it is back.
        with contextlib.suppress(StateUnavailable):
            await state.rules.sync()
    yield
    await state.backend.close()


def _fallback(config: Config, sources: Sequence[Source]) -> str:
    """`fallback` as configured; by default `error` once something to answer from is loaded
    (a source whose `loaded` is true: rules, a cassette), else `generate`."""
    if config.fallback is not None:
        return config.fallback
    return "error" if any(getattr(source, "loaded", False) for source in sources) else "generate"


class BackgroundLoop:
    """One asyncio loop in a daemon thread, shared by the background servers of a process."""

    _shared: ClassVar[BackgroundLoop | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        # MOCKAI_EVENT_LOOP chooses, as for `mockai serve` (uvloop when installed by default).
        choice = os.environ.get("MOCKAI_EVENT_LOOP") or "auto"
        self.loop: asyncio.AbstractEventLoop = sites.loop_factory(choice)()
        self._thread = threading.Thread(target=self._run, name="mockai-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @classmethod
    def shared(cls) -> BackgroundLoop:
        """The process's loop thread, started on first use (never at import)."""
        with cls._lock:
            if cls._shared is None or not cls._shared._thread.is_alive():
                cls._shared = cls()
            return cls._shared

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run `coro` on the loop thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


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
        base = config or Config(port=0)
        self.config = base.merged(**options)
        self._sources = sources
        self._runner: web.AppRunner | None = None
        self._background: BackgroundLoop | None = None
        self.app = create_app(self.config, sources)
        self.config = self.state.config  # with the scenario files' settings applied
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> MockServer:
        """Start serving in the background; returns once the port is bound."""
        if self._runner is not None:
            raise ServerError("Server is already running")
        self._background = BackgroundLoop.shared()
        self._background.run(self.start_async())
        return self

    def stop(self) -> None:
        """Stop serving and close every connection."""
        if self._background is None:
            raise ServerError("Server is not running in the background")
        self._background.run(self.stop_async())
        self._background = None

    async def start_async(self) -> MockServer:
        """Start serving on the running event loop."""
        if self._runner is not None:
            raise ServerError("Server is already running")
        try:
            sock = sites.listen(self.config.host, self.config.port)
        except OSError as error:
            raise ServerError(
                f"cannot listen on {self.config.host}:{self.config.port}: {error}"
            ) from error
        runner = web.AppRunner(
            self.app,
            access_log=None,
            shutdown_timeout=1.0,
            keepalive_timeout=self.config.read_timeout,
        )
        await runner.setup()
        await sites.StampingSite(runner, sock, self.state.arrivals).start()
        self._runner = runner
        self.port = int(sock.getsockname()[1])
        return self

    async def stop_async(self) -> None:
        """Stop serving (on the loop the server runs on)."""
        if self._runner is None:
            raise ServerError("Server is not running")
        runner, self._runner = self._runner, None
        await runner.cleanup()

    @property
    def running(self) -> bool:
        """True between start and stop."""
        return self._runner is not None

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> MockServer:
        return await self.start_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
        if book.shared is None:
            return book.add(list(rules))
        return self._call(book.add_async(list(rules)))

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

        Only the rules are taken: settings (seed, models, ...) apply when given at start.
        """
        return self._book().load(scenario.load([os.fspath(path)]))

    @property
    def rules(self) -> list[scenario.RuleInfo]:
        """Every rule in the order they are asked: name, source, origin, times served."""
        book = self._book()
        return book.describe() if book.shared is None else self._call(book.describe_async())

    def _book(self) -> scenario.RuleBook:
        if self.state.rules is None:
            raise ServerError("this server was built with custom sources and has no rules")
        return self.state.rules
