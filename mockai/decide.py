"""Decide what answers a request: the first source with a Plan wins.

Order (ARCHITECTURE.md): runtime rules, scenario rules, cassette replay, upstream, then the
fallback — generate a plausible answer, or refuse with a no-match error that says, for the closest
candidates, why each did not match.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mockai.errors import ApiError
from mockai.exchange import Exchange
from mockai.generate.fallback import FallbackGenerator
from mockai.reply import Plan


class Source(Protocol):
    """Anything that may answer a request (rules, cassettes, an upstream)."""

    async def plan(self, exchange: Exchange, key: bytes) -> Plan | None:
        """A Plan for `exchange`, or None to let the next source try."""
        ...

    def near_misses(self, exchange: Exchange) -> list[str]:
        """Why the closest candidates did not match (for the no-match report)."""
        ...


class Decider:
    """Runs the sources in order, then the fallback."""

    def __init__(
        self,
        sources: Sequence[Source],
        generator: FallbackGenerator,
        *,
        fallback: str = "generate",
        no_match_status: int = 400,
    ) -> None:
        self.sources = list(sources)
        self.generator = generator
        self.fallback = fallback
        self.no_match_status = no_match_status

    async def decide(self, exchange: Exchange, key: bytes) -> Plan:
        """The Plan for `exchange`; `key` is its content key (for reproducible generation)."""
        for source in self.sources:
            plan = await source.plan(exchange, key)
            if plan is not None:
                return plan
        if self.fallback == "error":
            raise self.no_match(exchange)
        return Plan(source="generator", reply=self.generator.reply(exchange, key))

    def no_match(self, exchange: Exchange) -> ApiError:
        """The error for a request nothing matched, with the near-miss report as its message."""
        lines = [f"mockai: no rule or recording matches this {exchange.endpoint} request."]
        for source in self.sources:
            lines.extend(source.near_misses(exchange))
        # A 4xx the SDKs do not retry (not 408/409/429), so the test fails fast and visibly.
        return ApiError(
            self.no_match_status,
            "\n".join(lines),
            type="invalid_request_error",
            code="mockai_no_match",
        )
