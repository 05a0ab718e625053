"""Rate-limit accounting: the six `x-ratelimit-*` headers, and budgets that run out.

Every model has a budget of requests and tokens per minute, tracked over a sliding window (60 s
unless `window` shrinks it for tests) in 60 buckets, so memory stays constant however heavy the
load. Models without a configured budget get a generous one that never refuses, but their headers
still count down, as the real ones do. A model with a budget (`--limits gpt-4o:rpm=3`) is refused
with the API's 429 once a request does not fit: `type` `requests` or `tokens`, code
`rate_limit_exceeded`, the API's wording, and a `retry-after` / `retry-after-ms` that say when the
request would fit; a request larger than the whole `tpm` budget never fits, and gets the API's
"Request too large" 429 without them. Refused requests are not charged.

Budget syntax (`parse_limits`), the same from the command line, the environment and scenarios:
    rpm=60,tpm=40000                          every model
    gpt-4o:rpm=3,tpm=1000;gpt-4o-mini:rpm=100 per model (globs work: gpt-4o*:rpm=10)
    rpm=3,window=2s                           "per minute" shortened to 2 s, for tests
    {rpm: 60, gpt-4o: {rpm: 3, window: 2s}}   as a mapping (scenario files)
"""

from __future__ import annotations

import fnmatch
import functools
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from mypy_extensions import mypyc_attr

from mockai.delivery.timing import go_duration, parse_duration, split_pairs
from mockai.errors import ApiError, ConfigError
from mockai.hints import suggest
from mockai.wire.errors import retry_headers

WINDOW = 60.0  # seconds: "per minute"
BUCKETS = 60  # the window is tracked in this many buckets
DEFAULT_RPM = 10_000
DEFAULT_TPM = 30_000_000
ALL_MODELS = "*"
# The largest budget: Redis counts in its scripts' numbers, doubles, exact only up to 2**53
# (its script holds counts to 2**53, one more: a charge held there is still over any budget).
MOST = 2**53 - 1
# The shortest window: its buckets (1/60 of it) must stay countable on the monotonic clock.
SHORTEST_WINDOW = 0.001
# Windows held before a sweep drops those that lose nothing: emptied ones, and those of models
# without a configured budget (their headers only count down; they are never refused).
MAX_WINDOWS = 4096

__all__ = ["Limit", "RateLimits", "go_duration", "limits_mapping", "parse_limits", "shown"]


@dataclass(frozen=True, slots=True)
class Limit:
    """Requests and tokens per minute; `window` shrinks "a minute" so tests need not wait one."""

    rpm: int = DEFAULT_RPM
    tpm: int = DEFAULT_TPM
    window: float = WINDOW


_LIMIT_KEYS = ("rpm", "tpm", "window")


def parse_limits(spec: Any) -> dict[str, Limit]:
    """Budgets by model pattern (`*` for every model) from the text or mapping syntax above.

    Raises ConfigError naming the part that is wrong.
    """
    if spec is None or spec == "":
        return {}
    try:
        if isinstance(spec, str):
            return _once_each(_parse_text(spec), spec)
        if isinstance(spec, Mapping):
            return _once_each(_parse_mapping(spec), spec)
        raise ValueError(f"expected text like 'rpm=60,tpm=40000' or a mapping, got {spec!r}")
    except ValueError as error:
        raise ConfigError(f"limits: {error}") from None


def _once_each(budgets: Iterable[tuple[str, Limit]], spec: Any) -> dict[str, Limit]:
    """The budgets by pattern, each pattern given once: a model given twice in one value would
    otherwise have its later budget win silently (scenario files refuse the same contradiction)."""
    limits: dict[str, Limit] = {}
    for pattern, limit in budgets:
        if pattern in limits:
            whose = "every model's budget" if pattern == ALL_MODELS else f"{pattern!r}"
            raise ValueError(
                f"{whose} is given twice, {shown(pattern, limits[pattern])} and "
                f"{shown(pattern, limit)}; give each model once"
            )
        limits[pattern] = limit
    if not limits and isinstance(spec, str):  # (`;;`: a slip; an empty mapping sets nothing)
        raise ValueError(f"{spec!r} holds no budget; write e.g. rpm=60,tpm=40000 or gpt-4o:rpm=3")
    return limits


def _given(limit: Limit) -> dict[str, int | float]:
    """What sets `limit` apart from the defaults (rpm alone when nothing does)."""
    # (one field at a time: a loop over (name, value) pairs would type its value as float, the
    # join of int and float, and mypyc's build then wrote `rpm=5.0` in messages)
    given: dict[str, int | float] = {}
    if limit.rpm != DEFAULT_RPM:
        given["rpm"] = limit.rpm
    if limit.tpm != DEFAULT_TPM:
        given["tpm"] = limit.tpm
    if limit.window != WINDOW:
        given["window"] = limit.window
    return given or {"rpm": limit.rpm}


def limits_mapping(limits: Mapping[str, Limit]) -> dict[str, dict[str, int | float]]:
    """`limits` as the mapping syntax that `parse_limits` reads back (`*` for every model)."""
    return {pattern: _given(limit) for pattern, limit in limits.items()}


def shown(pattern: str, limit: Limit) -> str:
    """One budget in the text syntax, for messages: `gpt-4o:rpm=3,window=2s`."""
    settings = ",".join(
        f"{key}={value:g}s" if key == "window" else f"{key}={value}"
        for key, value in _given(limit).items()
    )
    return settings if pattern == ALL_MODELS else f"{pattern}:{settings}"


def _parse_text(spec: str) -> Iterable[tuple[str, Limit]]:
    for segment in spec.split(";"):
        segment = segment.strip()
        if not segment:
            continue
        head, sep, _ = segment.partition("=")
        model, colon, _ = head.rpartition(":")
        if not sep:
            raise ValueError(f"{segment!r} is not [MODEL:]rpm=N,tpm=N[,window=DURATION]")
        if colon and not model.strip():
            raise ValueError(
                f"{segment!r} names no model before ':'; write MODEL:rpm=N, or leave out "
                "the ':' for a budget for every model"
            )
        settings = segment[len(model) + 1 :] if colon else segment
        yield (model.strip() if colon else ALL_MODELS), _limit(split_pairs(settings), segment)


def _parse_mapping(spec: Mapping[Any, Any]) -> Iterable[tuple[str, Limit]]:
    shared = {k: v for k, v in spec.items() if k in _LIMIT_KEYS}
    if shared:
        yield ALL_MODELS, _limit(shared, "")
    for model, settings in spec.items():
        if model in _LIMIT_KEYS:
            continue
        if not isinstance(settings, Mapping):
            raise ValueError(f"{model}: expected a mapping such as {{rpm: 3, tpm: 1000}}")
        yield str(model), _limit(settings, str(model))


def _limit(settings: Mapping[Any, Any], where: str) -> Limit:
    """One budget; `where` (a model, a text segment; "" for the top level) prefixes problems."""
    at = f"{where}: " if where else ""
    for key in settings:
        if key not in _LIMIT_KEYS:
            raise ValueError(f"{at}unknown key {key!r}" + suggest(key, _LIMIT_KEYS, noun="known"))
    rpm = _count(settings.get("rpm", DEFAULT_RPM), "rpm", at)
    tpm = _count(settings.get("tpm", DEFAULT_TPM), "tpm", at)
    written = settings.get("window", WINDOW)
    try:
        window = parse_duration(written)
    except ValueError as error:
        raise ValueError(f"{at}window: {error}") from None
    if window <= 0:
        raise ValueError(f"{at}window must be longer than 0")
    if window < SHORTEST_WINDOW:
        raise ValueError(f"{at}window must be at least 1ms, got {written!r}")
    if "rpm" not in settings and "tpm" not in settings:  # (a window alone sets no budget)
        raise ValueError(f"{at}give rpm, tpm or both")
    return Limit(rpm, tpm, window)


def _count(value: Any, key: str, at: str) -> int:
    try:
        number = int(value) if not isinstance(value, bool) else -1
    except (TypeError, ValueError, OverflowError):  # (OverflowError: infinity)
        number = -1
    if number < 1 or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{at}{key} must be a whole number >= 1, got {value!r}")
    if number > MOST:
        raise ValueError(f"{at}{key} must be at most {MOST}, got {value!r}")
    return number


class _Window:
    """Usage over the last `length` seconds, in BUCKETS buckets (constant memory).

    Totals and the newest buckets in use are kept up to date as usage is added and expires, so
    the per-request questions (how much is used, when does it reset) cost no walk over buckets.
    """

    __slots__ = (
        "_buckets",
        "_newest",
        "_oldest",
        "_requests",
        "_tokens",
        "_width",
        "length",
    )

    def __init__(self, length: float, buckets: dict[int, list[int]] | None = None) -> None:
        self.length = length
        self._width = length / BUCKETS
        # bucket number -> [requests, tokens]; a shared backend hands over the buckets it holds
        self._buckets: dict[int, list[int]] = buckets if buckets is not None else {}
        # Summed over the buckets, kept up to date by add() and _expire().
        self._requests = sum(bucket[0] for bucket in self._buckets.values())
        self._tokens = sum(bucket[1] for bucket in self._buckets.values())
        self._oldest: int | None = min(self._buckets, default=None)  # the oldest bucket held
        # The newest bucket holding requests (index 0) and tokens (index 1), None if none does.
        self._newest: list[int | None] = [
            max((number for number, bucket in self._buckets.items() if bucket[0]), default=None),
            max((number for number, bucket in self._buckets.items() if bucket[1]), default=None),
        ]

    @classmethod
    def summed(cls, length: float, requests: int, tokens: int, newest: tuple[int, int]) -> _Window:
        """A window known by its totals and its newest buckets with requests and with tokens
        (-1: none), as a shared backend sums it up: enough for `used` and `reset_in` (not for
        `wait_until_free`, which needs the buckets)."""
        window = cls(length)
        window._requests, window._tokens = requests, tokens
        window._newest = [number if number >= 0 else None for number in newest]
        return window

    def _bucket(self, now: float) -> int:
        return math.floor(now / self._width)

    def _end(self, bucket: int) -> float:
        """When usage recorded in `bucket` leaves the window."""
        return (bucket + BUCKETS) * self._width

    def _expire(self, now: float) -> None:
        oldest = self._bucket(now) - BUCKETS + 1
        if self._oldest is None or self._oldest >= oldest:
            return  # nothing held is old enough to leave
        for bucket in [b for b in self._buckets if b < oldest]:
            requests, tokens = self._buckets.pop(bucket)
            self._requests -= requests
            self._tokens -= tokens
        self._oldest = min(self._buckets, default=None)
        for index, newest in enumerate(self._newest):
            if newest is not None and newest < oldest:
                self._newest[index] = None  # every bucket up to the newest one has left

    def used(self, now: float) -> tuple[int, int]:
        self._expire(now)
        return self._requests, self._tokens

    def add(self, now: float, tokens: int) -> None:
        number = self._bucket(now)
        bucket = self._buckets.setdefault(number, [0, 0])
        bucket[0] += 1
        bucket[1] += tokens
        self._requests += 1
        self._tokens += tokens
        if self._oldest is None or number < self._oldest:
            self._oldest = number
        newest = self._newest  # (requests always count; tokens when there are any)
        if newest[0] is None or number > newest[0]:
            newest[0] = number
        if tokens and (newest[1] is None or number > newest[1]):
            newest[1] = number

    def wait_until_free(self, now: float, requests_over: int, tokens_over: int) -> float:
        """Seconds until enough old buckets expire to free the given excess."""
        freed_requests = freed_tokens = 0
        for bucket in sorted(self._buckets):
            freed_requests += self._buckets[bucket][0]
            freed_tokens += self._buckets[bucket][1]
            if freed_requests >= requests_over and freed_tokens >= tokens_over:
                # One millisecond of margin: the bucket boundary is a float comparison.
                return round(max(self._end(bucket) - now, 0.0), 6) + 0.001
        return self.length

    def reset_in(self, now: float, index: int) -> float:
        """Seconds until usage of kind `index` (0 requests, 1 tokens) fully leaves the window."""
        newest = self._newest[index]
        return max(self._end(newest) - now, 0.0) if newest is not None else 0.0


# The shared state subclasses it (backend/redis_state.py); a class compiled by mypyc
# (setup.py) refuses subclasses it did not compile unless it allows them.
@mypyc_attr(allow_interpreted_subclasses=True)
class RateLimits:
    """Per-model windows; `charge` admits or refuses a request and returns the headers to send.

    `limits` maps model names or globs (`*` for all) to budgets; only those are enforced.
    """

    def __init__(self, limits: Mapping[str, Limit] | None = None) -> None:
        self._limits = dict(limits or {})
        self._default = self._limits.get(ALL_MODELS, Limit())
        self._windows: dict[str, _Window] = {}
        self._sweep_at = MAX_WINDOWS  # how many windows are held when the next sweep comes

    @classmethod
    def from_spec(cls, spec: Any) -> RateLimits:
        """Budgets from the `--limits` text or a scenario's `limits:` mapping (see the module)."""
        return cls(parse_limits(spec))

    @property
    def enforced(self) -> bool:
        """True when some model has a budget that can refuse requests."""
        return bool(self._limits)

    def _configured(self, model: str) -> Limit | None:
        if model in self._limits:
            return self._limits[model]
        for pattern, limit in self._limits.items():
            if pattern != ALL_MODELS and fnmatch.fnmatchcase(model, pattern):
                return limit
        return self._limits.get(ALL_MODELS)

    def limit_for(self, model: str) -> Limit:
        """The budget of `model`: its configured one, or the generous default."""
        return self._configured(model) or self._default

    def _window(self, model: str, limit: Limit, now: float) -> _Window:
        window = self._windows.get(model)
        if window is None:
            if len(self._windows) >= self._sweep_at:
                self._sweep(now)  # random model names in a load test must not leak memory
            window = self._windows[model] = _Window(limit.window)
        return window

    def _sweep(self, now: float) -> None:
        """Drop the oldest windows that lose nothing: emptied ones, and unbudgeted models' (only
        their headers' count starts over), down to half of MAX_WINDOWS. A budget's window with
        usage in it stays, or the budget would silently start over."""
        for model, window in list(self._windows.items()):  # oldest first
            if len(self._windows) <= MAX_WINDOWS // 2:
                break
            if self._configured(model) is None or window.used(now) == (0, 0):
                del self._windows[model]
        # Windows that must stay (budgets in use) are not walked again before as many more
        # come: a sweep per new model would cost a walk over them all per request.
        self._sweep_at = max(MAX_WINDOWS, 2 * len(self._windows))

    def charge(self, model: str, tokens: int, now: float) -> dict[str, str]:
        """Account one request of `tokens` tokens; raise a 429 ApiError if it does not fit."""
        configured = self._configured(model) if self._limits else None
        limit = configured or self._default
        window = self._windows.get(model) or self._window(model, limit, now)
        used_requests, used_tokens = window.used(now)
        if configured is not None:
            _refuse_if_over(model, limit, window, now, used_requests, used_tokens, tokens)
        window.add(now, tokens)
        return _headers(limit, used_requests + 1, used_tokens + tokens, window, now)

    async def admit(self, model: str, tokens: int) -> dict[str, str]:
        """`charge`, as the state backends share it (a shared backend counts across workers)."""
        return self.charge(model, tokens, time.monotonic())

    async def headers(self, model: str) -> dict[str, str]:
        """`peek`, as the state backends share it."""
        return self.peek(model, time.monotonic())

    async def forget(self) -> None:
        """`clear`, as the state backends share it."""
        self.clear()

    def peek(self, model: str, now: float) -> dict[str, str]:
        """The headers for `model` without charging anything (for non-generating requests)."""
        limit = self.limit_for(model)
        window = self._windows.get(model)
        if window is None:
            return _headers(limit, 0, 0, None, now)
        used_requests, used_tokens = window.used(now)
        return _headers(limit, used_requests, used_tokens, window, now)

    def clear(self) -> None:
        """Forget all usage."""
        self._windows.clear()
        self._sweep_at = MAX_WINDOWS


def _refuse_if_over(
    model: str,
    limit: Limit,
    window: _Window,
    now: float,
    used_requests: int,
    used_tokens: int,
    tokens: int,
) -> None:
    requests_over = used_requests + 1 - limit.rpm
    tokens_over = used_tokens + tokens - limit.tpm
    if requests_over <= 0 and tokens_over <= 0:
        return
    headers = _headers(limit, used_requests, used_tokens, window, now)
    if tokens > limit.tpm:
        # Larger than the whole budget, it never fits: the API still answers 429 (not 400),
        # in its own words, and with no retry-after, as no wait would help.
        _refuse(
            f"Request too large for {model} in organization {_ORGANIZATION} on tokens per min "
            f"(TPM): Limit {limit.tpm}, Requested {tokens}. The input or output tokens must be "
            f"reduced in order to run successfully. {_VISIT}",
            "tokens",
            headers,
        )
    wait = window.wait_until_free(now, max(requests_over, 0), max(tokens_over, 0))
    by_tokens = tokens_over > 0 and requests_over <= 0
    what = (
        f"tokens per min (TPM): Limit {limit.tpm}, Used {used_tokens}, Requested {tokens}"
        if by_tokens
        else f"requests per min (RPM): Limit {limit.rpm}, Used {used_requests}, Requested 1"
    )
    headers.update(retry_headers(wait))
    _refuse(
        f"Rate limit reached for {model} in organization {_ORGANIZATION} on {what}. Please try "
        f"again in {go_duration(wait)}. {_VISIT}",
        "tokens" if by_tokens else "requests",
        headers,
    )


_ORGANIZATION = "org-mockai"
_VISIT = "Visit https://platform.openai.com/account/rate-limits to learn more."


def _refuse(message: str, kind: str, headers: dict[str, str]) -> NoReturn:
    """The API's 429 for a request over a budget of `kind` (requests or tokens)."""
    refused = ApiError(429, message, type=kind, code="rate_limit_exceeded", headers=headers)
    refused.name = "rate_limit"  # a provider profile words its 429 its own way
    raise refused


def _headers(
    limit: Limit, requests: int, tokens: int, window: _Window | None, now: float
) -> dict[str, str]:
    reset_requests = window.reset_in(now, 0) if window is not None else 0.0
    reset_tokens = window.reset_in(now, 1) if window is not None else 0.0
    reset_requests_text = _reset_text(reset_requests)
    return {
        "x-ratelimit-limit-requests": _text(limit.rpm),
        "x-ratelimit-limit-tokens": _text(limit.tpm),
        "x-ratelimit-remaining-requests": str(max(limit.rpm - requests, 0)),
        "x-ratelimit-remaining-tokens": str(max(limit.tpm - tokens, 0)),
        "x-ratelimit-reset-requests": reset_requests_text,
        # (both kinds are usually last used by the same request: one formatting)
        "x-ratelimit-reset-tokens": (
            reset_requests_text if reset_tokens == reset_requests else _reset_text(reset_tokens)
        ),
    }


# Every answer carries these headers: the budgets' own numbers are formatted once, and a reset
# time once per hundredth of a second it is shown with (`go_duration` rounds to that past 1 s).
_text = functools.lru_cache(maxsize=64)(str)
_rounded_duration = functools.lru_cache(maxsize=4096)(go_duration)


def _reset_text(seconds: float) -> str:
    return _rounded_duration(round(seconds, 2)) if seconds >= 1 else go_duration(seconds)
