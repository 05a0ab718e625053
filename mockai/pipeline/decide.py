"""Decide what answers a request: the first source with a Plan wins.

Order (ARCHITECTURE.md): runtime rules, scenario rules, cassette replay, upstream, then the
fallback — generate a plausible answer, or refuse with a no-match error that says, for the closest
candidates, why each did not match.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from mockai.errors import ApiError
from mockai.generate.fallback import FallbackGenerator
from mockai.pipeline import workload
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Plan
from mockai.wire.outgoing import Outgoing

log = logging.getLogger("mockai")


class Undecided(Exception):
    """Raised by a source's `plan` that stopped matching before it could decide (a rule book
    whose regex searches ran out of time): whatever it did not ask may be what the request was
    for, so no later source answers it; the request gets the no-match error, this first."""


class Source(Protocol):
    """Anything that may answer a request (rules, cassettes, an upstream)."""

    async def plan(self, exchange: Exchange, key: bytes) -> Plan | None:
        """A Plan for `exchange`, or None to let the next source try."""
        ...

    def near_misses(self, exchange: Exchange) -> list[str]:
        """Why the closest candidates did not match (for the no-match report)."""
        ...


class Keeper(Protocol):
    """A store that answers its own routes (files, batches) when no source does."""

    async def answer(self, exchange: Exchange, key: bytes) -> Outgoing:
        """The store's answer to `exchange`; ApiErrors are the API's error answers."""
        ...


class Decider:
    """Runs the sources in order, then the fallback.

    `fallback` is `generate`, `error`, or None: generate while no source has anything loaded,
    error once one has (ARCHITECTURE.md). A source counts as loaded unless its `loaded` (or
    `len()`) says otherwise: the RuleBook is always present, so that tests can add rules, and is
    loaded once it holds one. This is asked per request, so rules added at runtime switch it.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        generator: FallbackGenerator,
        *,
        fallback: str | None = "generate",
        no_match_status: int = 400,
        keepers: Mapping[Endpoint, Keeper] | None = None,
    ) -> None:
        self.sources = list(sources)
        self.generator = generator
        self.fallback = fallback
        self.no_match_status = no_match_status
        self.keepers = dict(keepers or {})
        # No-match answers since the server started. Unlike the journal it is never cleared
        # (`reset`) nor bounded, so the pytest plugin's strict check misses none.
        self.no_matches = 0

    async def decide(self, exchange: Exchange, key: bytes) -> Plan:
        """The Plan for `exchange`; `key` is its content key (for reproducible generation).

        A store's routes (files, batches) are answered by the store when no source answers,
        whatever the fallback: a rule may refuse them (an `error`), and a rule's `reply` lets
        the store answer with the rule's timing and faults.
        """
        keeper = self.keepers.get(exchange.endpoint)
        for source in self.sources:
            try:
                plan = await source.plan(exchange, key)
            except Undecided as stopped:
                raise self.no_match(exchange, str(stopped)) from None
            if plan is not None:
                if keeper is not None and plan.recorded is None and not _refuses(plan):
                    plan = replace(plan, reply=None, recorded=await keeper.answer(exchange, key))
                return plan
        if keeper is not None:
            return Plan(source="store", recorded=await keeper.answer(exchange, key))
        if self.effective_fallback() == "error":
            raise self.no_match(exchange)
        if workload.heavy(exchange):  # seconds of work, for the largest legal requests
            return await self._off_loop(exchange, key)
        # (inline, not through `generated`: a coroutine call per generated answer costs)
        return Plan(source="generator", reply=self.generator.reply(exchange, key))

    async def generated(self, exchange: Exchange, key: bytes) -> Plan:
        """The generator's Plan for `exchange`, whatever the sources would answer."""
        if workload.heavy(exchange):  # seconds of work, for the largest legal requests
            return await self._off_loop(exchange, key)
        return Plan(source="generator", reply=self.generator.reply(exchange, key))

    async def _off_loop(self, exchange: Exchange, key: bytes) -> Plan:
        reply = await workload.off_loop(self.generator.reply, exchange, key)
        return Plan(source="generator", reply=reply, heavy=True)

    def effective_fallback(self) -> str:
        """`generate` or `error`, as configured or (when not configured) as loaded."""
        if self.fallback is not None:
            return self.fallback
        return "error" if any(_loaded(source) for source in self.sources) else "generate"

    def no_match(self, exchange: Exchange, stopped: str | None = None) -> ApiError:
        """The error for a request nothing matched, with the near-miss report as its message
        (after why matching `stopped`, when a source stopped it: see Undecided)."""
        self.no_matches += 1
        lines = [f"mockai: no rule or recording matches this {exchange.endpoint} request."]
        if stopped is not None:
            lines.append(stopped)
        for source in self.sources:
            lines.extend(source.near_misses(exchange))
        log.warning("%s", "\n".join(lines))
        # A 4xx the SDKs do not retry (not 408/409/429), so the test fails fast and visibly.
        return ApiError(
            self.no_match_status,
            "\n".join(lines),
            type="invalid_request_error",
            code="mockai_no_match",
        )


def _refuses(plan: Plan) -> bool:
    return plan.reply is not None and plan.reply.error is not None


def _loaded(source: Source) -> bool:
    # A source says whether it has anything to answer from with `loaded` (or `__len__`); one
    # that says neither is there because something was configured for it.
    loaded = getattr(source, "loaded", None)
    if loaded is not None:
        return bool(loaded)
    size = getattr(source, "__len__", None)
    return True if size is None else bool(size())
