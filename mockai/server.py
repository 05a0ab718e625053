"""The server: `create_app(config)` builds the aiohttp application; `MockServer` runs it.

`MockServer` runs in the background (for tests: `with MockServer() as server: ...`) on an event
loop thread shared by every server of the process, so starting one costs a socket bind and not a
thread; or inside an existing event loop (`async with MockServer() as server`). The CLI runs the
same application in the foreground.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from aiohttp import web

from mockai import admin, routes
from mockai.catalog import Catalog
from mockai.chaos import FaultPlanner
from mockai.config import Config
from mockai.decide import Decider, Source
from mockai.errors import ServerError
from mockai.generate.fallback import FallbackGenerator
from mockai.journal import Journal, JournalEntry
from mockai.ratelimit import RateLimits
from mockai.sources import build_sources
from mockai.state import STATE, ServerState

T = TypeVar("T")

# Prompts can be large (long contexts, base64 images): aiohttp's default 1 MiB is too small.
MAX_BODY = 64 * 1024 * 1024


def create_app(
    config: Config | None = None, sources: Sequence[Source] | None = None
) -> web.Application:
    """A ready-to-run aiohttp application answering like the OpenAI API.

    `sources` default to those the configuration describes (rules, scenarios, cassettes).
    """
    config = config or Config()
    if sources is None:
        sources = build_sources(config)
    catalog = Catalog(config.models)
    generator = FallbackGenerator(config.seed, catalog)
    state = ServerState(
        config=config,
        catalog=catalog,
        decider=Decider(sources, generator),
        journal=Journal(config.journal_size),
        ratelimits=RateLimits.from_spec(config.limits),
        codecs=routes.codecs(),
        faults=FaultPlanner.from_config(config),
    )
    app = web.Application(client_max_size=MAX_BODY)
    app[STATE] = state
    app.on_startup.append(state.delivery.startup)
    app.on_shutdown.append(state.delivery.shutdown)  # ends stalled / hung connections at once
    routes.add_api_routes(app, state.codecs.values())
    admin.add_admin_routes(app)
    routes.add_catch_all(app)
    return app


class BackgroundLoop:
    """One asyncio loop in a daemon thread, shared by the background servers of a process."""

    _shared: ClassVar[BackgroundLoop | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
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
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise ServerError(
                f"cannot listen on {self.config.host}:{self.config.port}: {error}"
            ) from error
        self._runner = runner
        self.port = _bound_port(runner)
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
        """Forget requests, rate-limit usage and repeat counters."""
        self.state.reset()


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise ServerError("the server did not report a bound port")
