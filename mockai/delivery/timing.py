"""Delays and stream pacing: how long to wait, as data, sampled with a seeded RNG.

Scenario files, CLI options and request headers all describe timing the same ways:
- a duration: a number of seconds (`0.2`) or a string with a unit (`"200ms"`, `"1.5s"`, `"2m"`);
- a range, uniform between two durations: `{min, max}`, or `"100ms-300ms"` (`"100-300ms"` too);
- a long tail, lognormal with that mean and standard deviation: `{mean, stddev}`, or
  `"mean=200ms,stddev=50ms"`;
and streams add `ttft` (before the first chunk), `chunk_delay` (between chunks) or
`tokens_per_second`, with an optional relative `jitter`: `{ttft: 300ms, chunk_delay: 20ms}` or
`"ttft=300ms,chunk_delay=20ms,jitter=0.1"`.

Every parser raises ValueError with a message that says what is wrong and what is accepted.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mockai.hints import suggest
from mockai.records import rebuilt

_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
# ASCII: `\d` would also match other scripts' digits (`٣s`), which float() reads as well.
_DURATION = re.compile(rf"^\s*{_NUMBER}\s*(ms|s|m)?\s*$", re.ASCII)
_RANGE = re.compile(rf"^\s*{_NUMBER}\s*(ms|s|m)?\s*-\s*{_NUMBER}\s*(ms|s|m)?\s*$", re.ASCII)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}
_DURATION_HELP = "use seconds, or a string like '200ms' or '1.5s'"
# (a delay, `latency` or a stream's pacing, may also be a range: one duration, such as a
# `retry_after` or a delay's `min`, may not, and must not be told to be one)
_DELAY_HELP = "use seconds, or a string like '200ms', '1.5s' or '100ms-300ms'"
# The longest duration anything takes: a day. It covers every real use (a 20-minute sound, a
# retry-after for a daily quota, a rate-limit window) while a typo of a few more digits, or 400
# of them (which float() reads as infinity), is refused where it is written instead of becoming
# a wait that never ends or a header that cannot be formatted.
MAX_DURATION = 86400.0
_MOST = "86400s (a day)"


class Delay(Protocol):
    """A delay distribution."""

    def sample(self, rng: random.Random) -> float:
        """One delay in seconds."""
        ...


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always the same delay."""

    seconds: float

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return rebuilt(self)  # (picklable once compiled: `records.rebuilt`)

    def sample(self, rng: random.Random) -> float:
        return self.seconds


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform between `low` and `high` seconds."""

    low: float
    high: float

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return rebuilt(self)  # (picklable once compiled: `records.rebuilt`)

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Lognormal with the given mean and standard deviation (in seconds)."""

    mean: float
    stddev: float

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return rebuilt(self)  # (picklable once compiled: `records.rebuilt`)

    def sample(self, rng: random.Random) -> float:
        if self.stddev <= 0:
            return self.mean
        # Parameters of the underlying normal for the requested mean and spread.
        sigma2 = math.log(1 + (self.stddev / self.mean) ** 2)
        mu = math.log(self.mean) - sigma2 / 2
        return rng.lognormvariate(mu, math.sqrt(sigma2))


def parse_duration(value: Any, *, hint: str = _DURATION_HELP) -> float:
    """Seconds from `0.2`, `"200ms"`, `"1.5s"` or `"2m"`; ValueError explains a bad value (with
    `hint`, the values that would do)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration ({hint})")
    if isinstance(value, (int, float)):
        # (an int is compared as it is: one of 400 digits, from YAML, is too large for a float)
        if value < 0 or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(
                f"{_shown_short(value)} is not a duration; durations are finite and >= 0"
            )
        return _bounded(value, value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return _bounded(_seconds(match.group(1), match.group(2)), value)
    raise ValueError(f"{value!r} is not a duration ({hint})")


def _seconds(number: str, unit: str | None) -> float:
    # (a number of ~310 digits or more reads as infinity, which `_bounded` refuses)
    return float(number) * _UNITS[unit]


def _bounded(seconds: float | int, written: Any) -> float:
    """`seconds` as a float, or ValueError if longer than MAX_DURATION (infinity included)."""
    if not seconds <= MAX_DURATION:
        raise ValueError(f"{_shown_short(written)} is too long: durations are at most {_MOST}")
    return float(seconds)


def _shown_short(value: Any) -> str:
    """The value as written, cut short: a 400-digit number is no message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def go_duration(seconds: float) -> str:
    """Format like Go's time.Duration.String(): `12ms`, `1s`, `6m0s`, `2m59.56s`.

    The API writes `x-ratelimit-reset-*` this way; clients such as LiteLLM parse it back.
    """
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        ms = round(seconds * 1000, 3)
        return f"{ms:g}ms" if ms >= 1 else f"{round(seconds * 1e6):g}µs"
    whole_minutes, secs = divmod(round(seconds, 2), 60)
    hours, minutes = divmod(int(whole_minutes), 60)
    text = f"{secs:.2f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def parse_delay(value: Any) -> Delay:
    """A Delay from a duration, a range, `{min, max}` or `{mean, stddev}`.

    Strings may also spell the mappings: `"100ms-300ms"`, `"min=100ms,max=300ms"`,
    `"mean=200ms,stddev=50ms"`. ValueError says what is wrong.
    """
    if isinstance(value, str):
        ranged = _RANGE.match(value)
        if ranged:
            return _range(value, ranged)
        if "=" in value:
            return parse_delay(split_pairs(value))
    if isinstance(value, Mapping):
        return _delay_mapping(value)
    return Fixed(parse_duration(value, hint=_DELAY_HELP))


def _range(text: str, match: re.Match[str]) -> Uniform:
    low_number, low_unit, high_number, high_unit = match.groups()
    # "100-300ms": a unit given only on the right applies to both ends.
    low_unit = low_unit or high_unit
    low = _bounded(_seconds(low_number, low_unit), text)
    high = _bounded(_seconds(high_number, high_unit), text)
    if low > high:
        raise ValueError(f"{text!r}: the low end is larger than the high end")
    return Uniform(low, high)


def _delay_mapping(value: Mapping[Any, Any]) -> Delay:
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


def split_pairs(text: str) -> dict[str, str]:
    """`"a=1, b=2"` -> {"a": "1", "b": "2"}; ValueError on a part that is not NAME=VALUE, or
    on a NAME given twice."""
    pairs: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValueError(f"{part.strip()!r} is not NAME=VALUE")
        if name in pairs:  # (else the later one won, silently)
            raise ValueError(
                f"{name!r} is given twice, {name}={pairs[name]} and {name}={value}; give it once"
            )
        pairs[name] = value
    if not pairs:
        raise ValueError(f"{text!r} holds no NAME=VALUE pair")
    return pairs


@dataclass(frozen=True, slots=True)
class StreamTiming:
    """How a stream is paced: `ttft` before the first chunk, then `chunk_delay` per chunk."""

    ttft: Delay | None = None
    chunk_delay: Delay | None = None
    jitter: float = 0.0  # relative spread of each chunk gap: 0.1 means +/-10%
    # Asked by the request itself (`x-mockai-stream`, `x-mockai-latency`): it comes first, so it
    # replaces a replayed stream's recorded pace, where any other pacing leaves that pace alone.
    requested: bool = False

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return rebuilt(self)  # (picklable once compiled: `records.rebuilt`)


_STREAM_KEYS = frozenset({"ttft", "chunk_delay", "tokens_per_second", "jitter"})


def parse_stream(value: Any) -> StreamTiming:
    """A StreamTiming from `{ttft, chunk_delay | tokens_per_second, jitter}`.

    The same keys are accepted as a string, `"ttft=300ms,chunk_delay=20ms"` (for headers and the
    command line); inside a string, delays are durations or ranges.
    """
    if isinstance(value, str):
        value = split_pairs(value)
    if not isinstance(value, Mapping):
        raise ValueError("stream timing is a mapping such as {ttft: 300ms, chunk_delay: 20ms}")
    _known_keys(value, _STREAM_KEYS, "stream timing")
    if "chunk_delay" in value and "tokens_per_second" in value:
        raise ValueError("give either chunk_delay or tokens_per_second, not both")
    chunk: Delay | None = None
    if "chunk_delay" in value:
        chunk = parse_delay(value["chunk_delay"])
    elif "tokens_per_second" in value:
        rate = _positive(value["tokens_per_second"], "tokens_per_second")
        if rate < 1.0 / MAX_DURATION:  # (a gap longer than any duration may be)
            raise ValueError(
                f"tokens_per_second must be at least 1/86400 (a token a day), got {rate!r}"
            )
        chunk = Fixed(1.0 / rate)
    jitter = _number(value.get("jitter", 0.0), "jitter")
    if not 0 <= jitter <= 1:
        raise ValueError(f"jitter must be a number between 0 and 1, got {value['jitter']!r}")
    ttft = parse_delay(value["ttft"]) if "ttft" in value else None
    return StreamTiming(ttft=ttft, chunk_delay=chunk, jitter=jitter)


def _known_keys(value: Mapping[Any, Any], known: frozenset[str], what: str) -> None:
    for key in value:
        if key not in known:
            raise ValueError(
                f"unknown {what} key {key!r}" + suggest(key, sorted(known), noun="known")
            )


def _number(value: Any, name: str) -> float:
    if isinstance(value, str) and value.isascii():  # (float() takes `\u0663` too)
        try:
            return float(value)
        except ValueError:
            pass
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{name} must be a number, got {value!r}")


def _positive(value: Any, name: str) -> float:
    number = _number(value, name)
    if not 0 < number < math.inf:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return number


_SPEC_KEYS = _STREAM_KEYS | {"latency"}


def parse_timing_spec(value: Any) -> tuple[Delay | None, StreamTiming | None]:
    """Latency and stream pacing from one spec (the `--latency` option).

    A plain delay (`200ms`, `100ms-300ms`, `mean=200ms,stddev=50ms`) is latency before the
    headers; a spec naming stream keys (`ttft=300ms,tokens_per_second=50`, optionally with
    `latency=100ms`) also paces streams.
    """
    pairs: Mapping[Any, Any] | None = None
    if isinstance(value, Mapping):
        pairs = value
    elif isinstance(value, str) and "=" in value:
        pairs = split_pairs(value)
    if pairs is None or not set(pairs) & _SPEC_KEYS:
        return parse_delay(value), None
    _known_keys(pairs, _SPEC_KEYS, "timing")
    latency = parse_delay(pairs["latency"]) if "latency" in pairs else None
    stream_keys = {k: v for k, v in pairs.items() if k != "latency"}
    return latency, (parse_stream(stream_keys) if stream_keys else None)


# --- bare numbers that probably meant milliseconds ------------------------------------------------

# A number without a unit is seconds. From these sizes on it is more likely milliseconds written
# without their unit (`latency: 200`), so loading warns and names both spellings.
_LIKELY_MS = {"latency": 30.0, "ttft": 30.0, "retry_after": 30.0, "chunk_delay": 5.0}
_DELAY_KEYS = ("min", "max", "mean", "stddev")


def unit_warnings(value: Any, name: str = "latency") -> list[str]:
    """Warnings for the bare numbers in `name`'s value that probably meant milliseconds.

    `value` is a delay (`200`, `"100-300"`, `{min, max}`), or a timing spec naming its parts
    (`"ttft=300,chunk_delay=20"`, `{ttft: 300}`: the `--latency` option, a rule's `stream`).
    """
    pairs = _pairs(value)
    if pairs is not None and set(pairs) & _SPEC_KEYS:
        return [
            warning
            for key in ("latency", "ttft", "chunk_delay")
            if key in pairs
            for warning in unit_warnings(pairs[key], key)
        ]
    numbers = _bare_numbers(value)
    # (a number too large for a duration is refused as such: no advice about its unit)
    if not numbers or not _LIKELY_MS.get(name, 30.0) <= max(numbers) <= MAX_DURATION:
        return []
    if not isinstance(value, Mapping) and "=" not in str(value):  # `200`, `100-300`
        text = "-".join(_plain(n) for n in numbers)
        seconds = " to ".join(f"{_plain(n)} s" for n in numbers)
        warning = (
            f"{name} {text} is read as seconds ({seconds}); write {text}ms if you meant "
            f"milliseconds, or {text}s to keep seconds"
        )
    else:
        warning = (
            f"{name} {_shown(value)} is read as seconds; give each number a unit: ms for "
            "milliseconds (e.g. 200ms), s to keep seconds"
        )
    return [warning]


def _pairs(value: Any) -> Mapping[Any, Any] | None:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and "=" in value:
        try:
            return split_pairs(value)
        except ValueError:
            return None
    return None


def _bare_numbers(value: Any) -> list[float]:
    """The numbers written without a unit in a delay value (empty if it is not a valid one)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        # (only durations: no infinity, no int too large for a float)
        return [float(value)] if 0 <= value <= MAX_DURATION else []
    if isinstance(value, str):
        single = _DURATION.match(value)
        if single:
            return [] if single.group(2) else [float(single.group(1))]
        ranged = _RANGE.match(value)
        if ranged:
            low, low_unit, high, high_unit = ranged.groups()
            return [] if low_unit or high_unit else [float(low), float(high)]
    pairs = _pairs(value)
    if pairs is not None:
        return [n for key in _DELAY_KEYS if key in pairs for n in _bare_numbers(pairs[key])]
    return []


def _plain(number: float) -> str:
    """`200`, `250.5`: never `2e+06`, which is no duration."""
    return str(int(number)) if number.is_integer() else repr(number)


def _shown(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value)
