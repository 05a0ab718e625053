"""Which faults and timing each request gets: per-request headers, rules, seeded chaos, defaults.

Precedence, first wins: the request's own headers (`x-mockai-fault`, `x-mockai-latency`,
`x-mockai-stream`) > the rule or sequence step that answered (already in its Plan) > the global
chaos draw > the server's defaults (`--latency`). Faults are not merged across sources: a request
that sends `x-mockai-fault` gets exactly the faults it asked for (neither the rule's nor chaos's),
and a rule with faults gets its own, not the chaos draw's too.

Faults that replace the answer (named errors, `reset`, `hang`, `empty_response`, `non_json`) from
a header or from chaos happen *before* the sources are asked, as a gateway or the API's front door
would fail: they consume no sequence step and no cassette interaction, and are not charged to
rate-limit budgets, so a retried request meets the same script as the first attempt. So do the
faults that cut a JSON answer's body halfway (`disconnect_after`, `stall_after`, `disconnect`):
no client reads half a body, so half of a generated answer stands in for the script's, which is
left for the retry. A stream cut part way is the script's answer, partly delivered: it is the
sources' answer, and takes its step.

Chaos is reproducible: each request draws from an RNG seeded by its content key (which includes
the server's seed) and by how many identical requests came before it, so the same seed and the
same requests give the same faults in the same places, whatever the concurrency.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from mypy_extensions import mypyc_attr

from mockai.delivery.faults import NO_FAULTS, ChaosRates, FaultRequest, Faults, parse_fault_header
from mockai.delivery.timing import Delay, StreamTiming, parse_stream, parse_timing_spec
from mockai.errors import ApiError, ConfigError
from mockai.pipeline.journal import ascii_count
from mockai.pipeline.reply import NO_TIMING, Plan, Reply, Timing
from mockai.records import record
from mockai.wire import errors
from mockai.wire.jsonbytes import valid_unicode
from mockai.wire.outgoing import Body

if TYPE_CHECKING:
    from mockai.config import Config
    from mockai.pipeline.exchange import Exchange

T = TypeVar("T")

HEADER_FAULT = "x-mockai-fault"
HEADER_LATENCY = "x-mockai-latency"
HEADER_STREAM = "x-mockai-stream"
RETRY_COUNT = "x-stainless-retry-count"  # the OpenAI SDKs' attempt number, from 0

# What a Plan's `source` says when a fault answered before any source was asked.
FAULT_SOURCE = "fault"
# Stands in for the answer of a connection fault: nothing is ever sent.
_NOTHING = Body(0, b"")


class FaultPlanner:
    """Adds faults and timing to every request's Plan (see the module docstring).

    `inject` runs once per request, before the sources are asked; the `Injection` it returns
    either answers at once (`preempt`) or decorates the Plan the sources chose (`apply`).
    """

    def __init__(
        self,
        *,
        chaos: ChaosRates | Mapping[str, float] | None = None,
        latency: Delay | None = None,
        stream: StreamTiming | None = None,
        attempts: Attempts | None = None,
    ) -> None:
        if chaos is None or isinstance(chaos, ChaosRates):
            self.chaos = chaos or ChaosRates()
        else:
            self.chaos = ChaosRates.parse(chaos)
        self.defaults = Timing(latency=latency, stream=stream)
        self.attempts = attempts or Attempts()

    @classmethod
    def from_config(cls, config: Config, attempts: Attempts | None = None) -> FaultPlanner:
        """The planner for `config.chaos` and `config.latency`; ConfigError says what is wrong."""
        try:
            chaos = ChaosRates.parse(config.chaos)
        except ValueError as error:
            raise ConfigError(f"chaos: {error}") from None
        latency: Delay | None = None
        stream: StreamTiming | None = None
        if config.latency:
            try:
                latency, stream = parse_timing_spec(config.latency)
            except ValueError as error:
                raise ConfigError(f"latency: {error}") from None
        return cls(chaos=chaos, latency=latency, stream=stream, attempts=attempts)

    async def inject(
        self, exchange: Exchange | None, exact: bytes, salt: bytes, headers: Mapping[str, str]
    ) -> Injection:
        """What this request gets from its headers and from chaos; ApiError 400 on a bad header.
        (`exchange` None: a route that generates nothing, such as the model list, whose answer
        is a JSON body.)

        `exact` identifies the request (fingerprint.request_keys), `salt` this occurrence of it
        (fingerprint.occurrence_key): chaos draws from it, so the same seed and the same requests
        give the same faults whatever the order of different requests.
        """
        requested = await self._requested(headers, exact) if HEADER_FAULT in headers else None
        # Seeding a generator costs microseconds: only drawn when there are rates to draw from.
        drawing = requested is None and bool(self.chaos)
        return Injection(
            requested=requested,
            chaos=self.chaos.draw(random.Random(salt)) if drawing else NO_FAULTS,
            timing=_header(headers, HEADER_LATENCY, parse_timing_spec),
            stream=_header(headers, HEADER_STREAM, parse_stream),
            defaults=self.defaults,
            model=exchange.model if exchange is not None else "",
            salt=salt,
            # (the stores' routes answer what they hold: a generated stand-in is no answer there;
            # a route generating nothing has its own answer to cut)
            json_answer=exchange is None or (not exchange.stream and exchange.route is None),
        )

    async def _requested(self, headers: Mapping[str, str], exact: bytes) -> Faults | None:
        request = _header(headers, HEADER_FAULT, parse_fault_header)
        if request is None:
            return None
        if not request.counts_attempts:
            return request.for_attempt(0)
        retry_count = ascii_count(headers.get(RETRY_COUNT))
        if retry_count is not None and not request.counts_requests:
            attempt = retry_count
        else:
            material = exact + headers[HEADER_FAULT].encode()
            key = hashlib.blake2b(material, digest_size=16).digest()
            attempt = await self.attempts.take(key, _failing_below(request))
        return request.for_attempt(attempt)

    async def clear(self) -> None:
        """Forget attempt counts (a server reset)."""
        await self.attempts.forget()


def _failing_below(request: FaultRequest) -> int:
    """Attempts numbered below this one still fail (0: none does)."""
    return max((item.attempts for item in request.items if item.attempts is not None), default=0)


# The shared state subclasses it (backend/redis_state.py); a class compiled by mypyc
# (setup.py) refuses subclasses it did not compile unless it allows them.
@mypyc_attr(allow_interpreted_subclasses=True)
class Attempts:
    """Attempt numbers for clients that do not send `x-stainless-retry-count`.

    Identical requests carrying the same `x-mockai-fault` count as attempts of one call while
    they keep failing; the first one that passes ends the call, so the next identical request
    starts over at attempt 0 (exactly what the SDK's retry count gives).
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._failed: dict[bytes, int] = {}

    async def take(self, key: bytes, failing_below: int) -> int:
        """This attempt's number; the call ends (numbering restarts) once one passes."""
        attempt = self._failed.get(key, 0)
        if attempt < failing_below:
            if len(self._failed) >= self._limit:
                self._failed.clear()
            self._failed[key] = attempt + 1
        else:
            self._failed.pop(key, None)
        return attempt

    async def forget(self) -> None:
        self._failed.clear()


def _header(headers: Mapping[str, str], name: str, parse: Callable[[str], T]) -> T | None:
    value = headers.get(name)
    if value is None:
        return None
    # Bytes that are not UTF-8 arrive as lone surrogates, which the messages below would quote
    # as Python escapes ('\udcff'); as U+FFFD they read as the client's text (and no grammar
    # here has a use for them, so parsing is unchanged).
    value = valid_unicode(value)
    try:
        return parse(value)
    except ValueError as error:
        raise ApiError(
            400,
            f"Invalid {name} header {value!r}: {error}",
            param=name,
            code="mockai_invalid_header",
        ) from None


@record
class Injection:
    """The faults and timing one request gets from its headers, chaos and the defaults."""

    requested: Faults | None  # from x-mockai-fault (None: no header)
    chaos: Faults
    timing: tuple[Delay | None, StreamTiming | None] | None  # from x-mockai-latency
    stream: StreamTiming | None  # from x-mockai-stream
    defaults: Timing
    model: str
    salt: bytes  # per-request seed material
    json_answer: bool = False  # a generating endpoint's answer that is no stream

    def preempt(self) -> Plan | None:
        """A Plan answering before the sources, when the header or chaos replaces the answer
        or cuts a JSON one's body; else None. The Plan of a cut body has neither a reply nor a
        recording: the caller gives it a generated stand-in (see the module docstring)."""
        faults = self.requested if self.requested is not None else self.chaos
        if faults is NO_FAULTS:  # nearly every request
            return None
        origin = HEADER_FAULT if self.requested is not None else "chaos"
        if faults.before_answer:
            plan = Plan(source=FAULT_SOURCE, name=origin, recorded=_NOTHING, faults=faults)
        elif self.json_answer and faults.cuts_body:
            plan = Plan(source=FAULT_SOURCE, name=origin, faults=faults)
        else:
            return None
        return self._finish(plan, faults)

    def apply(self, plan: Plan) -> Plan:
        """`plan` (chosen by a source) with the faults and timing that apply to this request."""
        # First wins, whole: the header's faults replace the rule's (even none, on an attempt
        # past `attempts=N`), and the rule's replace the chaos draw; merging would stack faults
        # nobody asked for together (docs/faults.md, "which wins").
        faults = self.requested if self.requested is not None else plan.faults or self.chaos
        return self._finish(plan, faults)

    def _finish(self, plan: Plan, faults: Faults) -> Plan:
        if faults.unresolved:
            faults = faults.resolved(random.Random(self.salt + b"/chunks"))
        timing = self._timing(plan.timing)
        if faults is not plan.faults or timing is not plan.timing:
            plan = replace(plan, faults=faults, timing=timing)
        if faults.error is not None:
            return replace(plan, reply=Reply(error=faults.error.build(self.model)), recorded=None)
        if faults.non_json:
            return replace(plan, reply=None, recorded=errors.gateway_page())
        return plan

    def _timing(self, planned: Timing) -> Timing:
        header_latency, header_stream = self.timing or (None, None)
        latency = header_latency or planned.latency or self.defaults.latency
        own = self.stream or header_stream
        stream = replace(own, requested=True) if own else (planned.stream or self.defaults.stream)
        if latency is None and stream is None:
            return NO_TIMING  # nothing to sample: the seed would never be used
        # Every request samples its own delays, reproducibly: mix the rule's seed with this
        # request's seed material (a rule's seed alone would give every request the same delay).
        material = hashlib.blake2b(str(planned.seed).encode(), key=self.salt, digest_size=8)
        return Timing(latency=latency, stream=stream, seed=int.from_bytes(material.digest(), "big"))
