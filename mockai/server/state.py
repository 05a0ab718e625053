"""The state one server owns, stored on its aiohttp application under an AppKey (never globals)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from mockai import profiles
from mockai.api.base import Codec, KeptAnswers
from mockai.backend import Backend
from mockai.backend.memory import MemoryBackend
from mockai.catalog import Catalog
from mockai.config import Config
from mockai.delivery.chaos import FaultPlanner
from mockai.delivery.deliver import Delivery
from mockai.delivery.ratelimit import RateLimits
from mockai.pipeline.decide import Decider, Keeper
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.fingerprint import Occurrences
from mockai.pipeline.journal import Journal, JournalView
from mockai.pipeline.parsed import ParsedRequests
from mockai.pipeline.uploads import UploadBudget
from mockai.profiles.base import Profile
from mockai.scenario.book import RuleBook
from mockai.server.metrics import Metrics
from mockai.server.sites import Arrivals
from mockai.wire.outgoing import Outgoing

if TYPE_CHECKING:
    from mockai.server.logs import StreamAccessLog
    from mockai.stores.batches import BatchStore
    from mockai.stores.completions import CompletionStore
    from mockai.stores.conversations import ConversationStore
    from mockai.stores.files import FileStore
    from mockai.stores.images import ImageStore
    from mockai.stores.responses import ResponseStore


@dataclass
class ServerState:
    """Everything the pipeline reads and updates while serving."""

    config: Config
    catalog: Catalog
    decider: Decider
    journal: Journal
    ratelimits: RateLimits
    codecs: Mapping[Endpoint, Codec]  # (mockai.api.codecs: each loaded on first use)
    faults: FaultPlanner = field(default_factory=FaultPlanner)
    delivery: Delivery = field(default_factory=Delivery)
    occurrences: Occurrences = field(default_factory=Occurrences)
    arrivals: Arrivals = field(default_factory=Arrivals)
    parsed: ParsedRequests = field(default_factory=ParsedRequests)  # repeated bodies, parsed once
    kept_answers: KeptAnswers = field(default_factory=KeptAnswers)  # answers rendered before
    # Bytes of large request bodies read or being answered at once (`upload_bytes`).
    uploads: UploadBudget = field(default_factory=lambda: UploadBudget(Config.upload_bytes))
    # `mockai serve` writes its lines straight to stderr (server/logs.StreamAccessLog).
    access_log: logging.Logger | StreamAccessLog = field(
        default_factory=lambda: logging.getLogger("mockai.access")
    )
    rules: RuleBook | None = None  # runtime + scenario rules (None with custom sources)
    # Where what must be one across workers lives (`--state`); in-process by default.
    backend: Backend = field(default_factory=MemoryBackend)
    shared_journal: JournalView | None = None  # the journal as every worker sees it
    metrics: Metrics | None = None
    # The provider the server answers as at `/v1` and the root, and each profile's catalog
    # (the server's own is `catalog`; the others list their provider's models).
    profile: Profile = field(default_factory=lambda: profiles.get(profiles.DEFAULT))
    catalogs: dict[str, Catalog] = field(default_factory=dict)
    # The API's stored objects (see `_store`), by name, once made.
    _stores: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _stores_lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    def catalog_of(self, profile: Profile) -> Catalog:
        """The catalog requests through `profile` look models up in."""
        if profile is self.profile:
            return self.catalog
        catalog = self.catalogs.get(profile.name)
        if catalog is None:  # made on first use: most servers only ever serve one profile
            # `--models` restricts every provider's catalog, as it does the server's own: an
            # unknown id is each provider's own 404 (a LiteLLM proxy's 400) under its prefix.
            # A model deleted under one prefix is gone under all: one set of deletions.
            catalog = Catalog(
                self.config.models, builtin=profile.catalog, deletions=self.catalog.deletions
            )
            self.catalogs[profile.name] = catalog
        return catalog

    def __post_init__(self) -> None:
        if self.shared_journal is None:
            self.shared_journal = JournalView(self.journal)

    # --- the API's stored objects -------------------------------------------------------------
    # Each is made (and its module imported) the first time it is asked for, from the server's
    # config and backend: most servers never store anything, and `mockai serve` starts faster.

    @property
    def responses(self) -> ResponseStore:
        """Stored responses: the Responses API's state."""
        return cast("ResponseStore", self._store("responses"))

    @property
    def conversations(self) -> ConversationStore:
        return cast("ConversationStore", self._store("conversations"))

    @property
    def completions(self) -> CompletionStore:
        """Chat completions kept with `store: true`."""
        return cast("CompletionStore", self._store("completions"))

    @property
    def images(self) -> ImageStore:
        """Pictures answered by URL."""
        return cast("ImageStore", self._store("images"))

    @property
    def files(self) -> FileStore:
        return cast("FileStore", self._store("files"))

    @property
    def batches(self) -> BatchStore:
        """Batches, whose lines go through this server's pipeline."""
        return cast("BatchStore", self._store("batches"))

    def _store(self, name: str) -> Any:
        """The store called `name`, made on the server's backend with its bounds the first time."""
        store = self._stores.get(name)
        if store is None:
            with self._stores_lock:  # (a test's thread may ask while the server's loop does)
                store = self._stores.get(name)
                if store is None:
                    store = self._stores[name] = self._make(name)
        return store

    def keepers(self) -> dict[Endpoint, Keeper]:
        """The stores answering their own routes when no source does (files, batches)."""
        return {
            Endpoint.FILES: _StoreKeeper(self, "files"),
            Endpoint.BATCHES: _StoreKeeper(self, "batches"),
        }

    def _make(self, name: str) -> Any:
        config, backend = self.config, self.backend
        if name == "responses":
            from mockai.stores.responses import ResponseStore

            return ResponseStore(backend=backend, max_bytes=config.store_bytes)
        if name == "conversations":
            from mockai.stores.conversations import ConversationStore

            return ConversationStore(
                config.seed, config.created, backend=backend, max_bytes=config.store_bytes
            )
        if name == "completions":
            from mockai.stores.completions import CompletionStore

            return CompletionStore(backend=backend, max_bytes=config.store_bytes)
        if name == "images":
            from mockai.stores.images import ImageStore

            return ImageStore(backend=backend)
        if name == "files":
            from mockai.stores.files import FileStore

            return FileStore(config.created, max_bytes=config.file_bytes, backend=backend)
        assert name == "batches", name
        from mockai.pipeline import batch
        from mockai.stores.batches import BatchStore

        batches = BatchStore(  # (a reentrant lock)
            self.files, config.created, backend=backend, lease=config.batch_lease
        )
        batches.runner = batch.runner(self)  # lines go through this server's pipeline
        return batches

    @property
    def journal_view(self) -> JournalView:
        """The journal across workers (this process's, without a shared backend)."""
        assert self.shared_journal is not None
        return self.shared_journal

    async def reset(self) -> None:
        """Forget what was served: journal, rate-limit usage, repeat and rule counters, stored
        responses, conversations, completions, pictures, files, batches and deleted models."""
        self.journal.clear()
        await self.journal_view.clear()
        self.catalog.restore()
        for catalog in self.catalogs.values():
            catalog.restore()
        self.parsed.clear()
        self.kept_answers.clear()
        for source in self.decider.sources:  # rules' counters, cassettes' play counts
            if isinstance(source, RuleBook):
                await source.reset_async()
                continue
            forget = getattr(source, "reset", None)
            if forget is not None:
                forget()
        await self.ratelimits.forget()
        await self.occurrences.forget()
        await self.faults.clear()
        # The stores made so far (one never made holds nothing here; with `--state`, what
        # other workers stored goes with the backend's `forget_all`).
        for store in list(self._stores.values()):
            await store.clear()
        await self.backend.forget_all()


class _StoreKeeper:
    """A store answering its own routes when no source does (a decide.Keeper), looked up on
    the server's state when a request comes (the store is made on the first)."""

    def __init__(self, state: ServerState, name: str) -> None:
        self.state = state
        self.name = name

    async def answer(self, exchange: Exchange, key: bytes) -> Outgoing:
        store = getattr(self.state, self.name)
        return await store.answer(exchange, key)  # type: ignore[no-any-return]


STATE = web.AppKey("mockai_state", ServerState)
