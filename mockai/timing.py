"""Delays and stream pacing: how long to wait, as data, sampled with a seeded RNG.

Scenario files, CLI options and request headers all describe timing the same ways:
- a duration: a number of seconds (`0.2`) or a string with a unit (`"200ms"`, `"1.5s"`);
- `{min, max}`: uniform between two durations;
- `{mean, stddev}`: lognormal with that mean and standard deviation (latency has a long tail);
and streams add `ttft` (before the first chunk), `chunk_delay` (between chunks) or
`tokens_per_second`, with an optional relative `jitter`.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


class Delay(Protocol):
    """A delay distribution."""

    def sample(self, rng: random.Random) -> float:
        """One delay in seconds."""
        ...


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always the same delay."""

    seconds: float

    def sample(self, rng: random.Random) -> float:
        return self.seconds


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform between `low` and `high` seconds."""

    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Lognormal with the given mean and standard deviation (in seconds)."""

    mean: float
    stddev: float

    def sample(self, rng: random.Random) -> float:
        if self.stddev <= 0:
            return self.mean
        # Parameters of the underlying normal for the requested mean and spread.
        sigma2 = math.log(1 + (self.stddev / self.mean) ** 2)
        mu = math.log(self.mean) - sigma2 / 2
        return rng.lognormvariate(mu, math.sqrt(sigma2))


def parse_duration(value: Any) -> float:
    """Seconds from `0.2`, `"200ms"`, `"1.5s"` or `"2m"`; ValueError explains a bad value."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (use seconds, or a string like '200ms')")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{value!r} is negative; durations are >= 0")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(
        f"{value!r} is not a duration (use seconds, or a string like '200ms' or '1.5s')"
    )


def parse_delay(value: Any) -> Delay:
    """A Delay from a duration, `{min, max}` or `{mean, stddev}`; ValueError says what is wrong."""
    if isinstance(value, Mapping):
        keys = set(value)
        if keys == {"min", "max"}:
            low, high = parse_duration(value["min"]), parse_duration(value["max"])
            if low > high:
                raise ValueError(f"min ({value['min']}) is larger than max ({value['max']})")
            return Uniform(low, high)
        if keys == {"mean", "stddev"}:
            mean = parse_duration(value["mean"])
            if mean <= 0:
                raise ValueError("mean must be > 0")
            return LogNormal(mean, parse_duration(value["stddev"]))
        raise ValueError(
            f"a delay mapping takes either {{min, max}} or {{mean, stddev}}, got {sorted(keys)}"
        )
    return Fixed(parse_duration(value))


@dataclass(frozen=True, slots=True)
class StreamTiming:
    """How a stream is paced: `ttft` before the first chunk, then `chunk_delay` per chunk."""

    ttft: Delay | None = None
    chunk_delay: Delay | None = None
    jitter: float = 0.0  # relative spread of each chunk gap: 0.1 means +/-10%


_STREAM_KEYS = frozenset({"ttft", "chunk_delay", "tokens_per_second", "jitter"})


def parse_stream(value: Any) -> StreamTiming:
    """A StreamTiming from `{ttft, chunk_delay | tokens_per_second, jitter}`."""
    if not isinstance(value, Mapping):
        raise ValueError("stream timing is a mapping such as {ttft: 300ms, chunk_delay: 20ms}")
    unknown = set(value) - _STREAM_KEYS
    if unknown:
        raise ValueError(
            f"unknown stream timing key(s) {sorted(unknown)}; known: {sorted(_STREAM_KEYS)}"
        )
    if "chunk_delay" in value and "tokens_per_second" in value:
        raise ValueError("give either chunk_delay or tokens_per_second, not both")
    chunk: Delay | None = None
    if "chunk_delay" in value:
        chunk = parse_delay(value["chunk_delay"])
    elif "tokens_per_second" in value:
        rate = value["tokens_per_second"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0:
            raise ValueError(f"tokens_per_second must be a positive number, got {rate!r}")
        chunk = Fixed(1.0 / rate)  # one token per chunk
    jitter = value.get("jitter", 0.0)
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter <= 1:
        raise ValueError(f"jitter must be a number between 0 and 1, got {jitter!r}")
    ttft = parse_delay(value["ttft"]) if "ttft" in value else None
    return StreamTiming(ttft=ttft, chunk_delay=chunk, jitter=float(jitter))
