"""The state one server owns, stored on its aiohttp application under an AppKey (never globals)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiohttp import web

from mockai import profiles
from mockai.api.base import Codec
from mockai.backend import Backend
from mockai.backend.memory import MemoryBackend
from mockai.catalog import Catalog
from mockai.config import Config
from mockai.delivery.chaos import FaultPlanner
from mockai.delivery.deliver import Delivery
from mockai.delivery.ratelimit import RateLimits
from mockai.pipeline.decide import Decider
from mockai.pipeline.exchange import Endpoint
from mockai.pipeline.fingerprint import Occurrences
from mockai.pipeline.journal import Journal, JournalView
from mockai.profiles.base import Profile
from mockai.scenario.book import RuleBook
from mockai.server.metrics import Metrics
from mockai.server.sites import Arrivals
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
    codecs: dict[Endpoint, Codec]
    faults: FaultPlanner = field(default_factory=FaultPlanner)
    delivery: Delivery = field(default_factory=Delivery)
    occurrences: Occurrences = field(default_factory=Occurrences)
    arrivals: Arrivals = field(default_factory=Arrivals)
    responses: ResponseStore = field(default_factory=ResponseStore)  # the Responses API's state
    conversations: ConversationStore = field(default_factory=ConversationStore)
    completions: CompletionStore = field(default_factory=CompletionStore)  # chat `store: true`
    images: ImageStore = field(default_factory=ImageStore)  # pictures answered by URL
    files: FileStore = field(default_factory=lambda: FileStore(0))
    batches: BatchStore | None = None  # (built with the files it reads; see create_app)
    access_log: logging.Logger = field(default_factory=lambda: logging.getLogger("mockai.access"))
    rules: RuleBook | None = None  # runtime + scenario rules (None with custom sources)
    # Where what must be one across workers lives (`--state`); in-process by default.
    backend: Backend = field(default_factory=MemoryBackend)
    shared_journal: JournalView | None = None  # the journal as every worker sees it
    metrics: Metrics | None = None
    # The provider the server answers as at `/v1` and the root, and each profile's catalog
    # (the server's own is `catalog`; the others list their provider's models).
    profile: Profile = field(default_factory=lambda: profiles.get(profiles.DEFAULT))
    catalogs: dict[str, Catalog] = field(default_factory=dict)

    def catalog_of(self, profile: Profile) -> Catalog:
        """The catalog requests through `profile` look models up in."""
        if profile is self.profile:
            return self.catalog
        catalog = self.catalogs.get(profile.name)
        if catalog is None:  # made on first use: most servers only ever serve one profile
            catalog = self.catalogs[profile.name] = Catalog(None, builtin=profile.catalog)
        return catalog

    def __post_init__(self) -> None:
        if self.shared_journal is None:
            self.shared_journal = JournalView(self.journal)

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
        await self.responses.clear()
        await self.conversations.clear()
        await self.completions.clear()
        await self.images.clear()
        await self.files.clear()
        if self.batches is not None:
            await self.batches.clear()
        await self.backend.forget_all()


STATE = web.AppKey("mockai_state", ServerState)
