"""The server: `create_app(config)` builds the aiohttp application; `MockServer` runs it.

`MockServer` runs in the background (for tests: `with MockServer() as server: ...`) on an event
loop thread shared by every server of the process, so starting one costs a socket bind and not a
thread; or inside an existing event loop (`async with MockServer() as server`). The CLI runs the
same application in the foreground. (`MockServer` and `BackgroundLoop` live in
mockai.server.background, imported when first asked for here: `mockai serve` never needs them.)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import warnings
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mockai import profiles, scenario
from mockai.api.codecs import CODECS, Codecs
from mockai.backend import StateUnavailable, open_backend
from mockai.catalog import Catalog
from mockai.config import Config, check_together
from mockai.delivery.chaos import FaultPlanner
from mockai.delivery.ratelimit import parse_limits
from mockai.generate.fallback import FallbackGenerator
from mockai.pipeline.decide import Decider, Source
from mockai.pipeline.journal import Journal
from mockai.pipeline.sources import build_sources
from mockai.pipeline.uploads import UploadBudget
from mockai.profiles.base import Profile
from mockai.server import admin, routes
from mockai.server.metrics import Metrics
from mockai.server.state import STATE, ServerState

if TYPE_CHECKING:
    from mockai.server.background import BackgroundLoop, MockServer

__all__ = ["MAX_BODY", "BackgroundLoop", "MockServer", "create_app"]

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
    uploads = UploadBudget(config.upload_bytes)
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
        codecs=Codecs(),
        rules=rules,
        occurrences=backend.occurrences(),
        faults=FaultPlanner.from_config(config, backend.attempts()),
        backend=backend,
        shared_journal=backend.journal(journal),
        metrics=Metrics(metrics_dir, uploads),
        profile=profile,
        uploads=uploads,
    )
    state.decider.keepers.update(state.keepers())  # (the stores are made on first use)
    if any(hasattr(source, "recorded_requests") for source in sources):  # cassettes to replay
        from mockai.pipeline.recorded import pin_recorded_requests

        pin_recorded_requests(state, sources)
    shared = _routes(profile)
    app = _application(shared)
    app[STATE] = state
    app.cleanup_ctx.append(_state_lifespan)
    if state.metrics is not None and state.metrics.folder is not None:
        app.cleanup_ctx.append(_metrics_lifespan)
    if config.watch:
        from mockai.server import reload  # (--watch only)

        reload.require_watchfiles()
        app.cleanup_ctx.append(reload.watch_lifespan)
    app.on_startup.append(state.delivery.startup)
    app.on_shutdown.append(state.delivery.shutdown)  # ends stalled / hung connections at once
    for source in sources:
        lifespan = getattr(source, "lifespan", None)
        if lifespan is not None:  # a source holding connections or files (the upstream's)
            app.cleanup_ctx.append(lifespan)
    if app.router is not shared:  # (aiohttp did not take the shared router: build its own)
        _add_routes(app, profile)
    return app


def _add_routes(app: web.Application, profile: Profile) -> None:
    routes.add_api_routes(app, CODECS, profile)
    admin.add_admin_routes(app)
    routes.add_media_routes(app)
    routes.add_catch_all(app, profile)


# Every server answers on the same routes (their handlers find the server's state through the
# request's app), and registering ~200 of them is ~90% of what making an app costs (~4 ms, per
# test with the pytest fixture): they are built once per process and shared, frozen.
# (Handlers close over the server's provider profile, so each profile has its own table.)
_shared_routes: dict[str, web.UrlDispatcher] = {}  # by profile name
_shared_routes_lock = threading.Lock()


def _routes(profile: Profile) -> web.UrlDispatcher:
    with _shared_routes_lock:
        router = _shared_routes.get(profile.name)
        if router is None:
            holder = web.Application()  # only holds the routes while they are added
            _add_routes(holder, profile)
            router = holder.router
            router.freeze()
            _shared_routes[profile.name] = router
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
        # Rules other workers added before this one started (a scenario rule taking one's name
        # stops the start); without the state, each request says so (a 503) until it is back.
        with contextlib.suppress(StateUnavailable):
            await state.rules.start()
    yield
    await state.backend.close()


async def _metrics_lifespan(app: web.Application) -> AsyncIterator[None]:
    """With several workers, the metrics' totals shared once a second, and once more at the
    end (the final numbers: nothing in flight any more)."""
    metrics = app[STATE].metrics
    assert metrics is not None
    task = asyncio.create_task(metrics.share())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    metrics.write_totals()


def __getattr__(name: str) -> Any:
    if name in ("MockServer", "BackgroundLoop"):
        from mockai.server import background

        return getattr(background, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
