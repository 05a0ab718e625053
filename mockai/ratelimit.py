"""Rate-limit accounting: the six `x-ratelimit-*` headers, and budgets that run out.

Every model has a budget of requests and tokens per minute, tracked over a sliding 60-second window
in one-second buckets (constant memory however heavy the load). Without configured limits the
budget is generous and never refuses, but the headers still count down, as the real ones do.
With `limits: {model: {rpm, tpm}}` a request that does not fit is refused with a 429 whose
`retry-after` says when it would fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from mockai.errors import ApiError

WINDOW = 60.0  # seconds: "per minute"
BUCKETS = 60  # the window is tracked in this many buckets
DEFAULT_RPM = 10_000
DEFAULT_TPM = 30_000_000


def go_duration(seconds: float) -> str:
    """Format like Go's time.Duration.String(): `12ms`, `1s`, `6m0s`, `2m59.56s`."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        ms = round(seconds * 1000, 3)
        return f"{ms:g}ms" if ms >= 1 else f"{round(seconds * 1e6):g}µs"
    minutes, secs = divmod(round(seconds, 2), 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{secs:.2f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


@dataclass(frozen=True, slots=True)
class Limit:
    """Requests and tokens per minute; `window` shrinks "a minute" so tests need not wait one."""

    rpm: int = DEFAULT_RPM
    tpm: int = DEFAULT_TPM
    window: float = WINDOW


class _Window:
    """Usage over the last `length` seconds, in BUCKETS buckets (constant memory)."""

    __slots__ = ("_buckets", "_width", "length")

    def __init__(self, length: float) -> None:
        self.length = length
        self._width = length / BUCKETS
        self._buckets: dict[int, list[int]] = {}  # bucket number -> [requests, tokens]

    def _bucket(self, now: float) -> int:
        return math.floor(now / self._width)

    def _end(self, bucket: int) -> float:
        """When usage recorded in `bucket` leaves the window."""
        return (bucket + BUCKETS) * self._width

    def _expire(self, now: float) -> None:
        oldest = self._bucket(now) - BUCKETS + 1
        for bucket in [b for b in self._buckets if b < oldest]:
            del self._buckets[bucket]

    def used(self, now: float) -> tuple[int, int]:
        self._expire(now)
        requests = sum(b[0] for b in self._buckets.values())
        tokens = sum(b[1] for b in self._buckets.values())
        return requests, tokens

    def add(self, now: float, tokens: int) -> None:
        bucket = self._buckets.setdefault(self._bucket(now), [0, 0])
        bucket[0] += 1
        bucket[1] += tokens

    def wait_until_free(self, now: float, requests_over: int, tokens_over: int) -> float:
        """Seconds until enough old buckets expire to free the given excess."""
        freed_requests = freed_tokens = 0
        for bucket in sorted(self._buckets):
            freed_requests += self._buckets[bucket][0]
            freed_tokens += self._buckets[bucket][1]
            if freed_requests >= requests_over and freed_tokens >= tokens_over:
                return max(self._end(bucket) - now, 0.001)
        return self.length

    def reset_in(self, now: float, index: int) -> float:
        """Seconds until usage of kind `index` (0 requests, 1 tokens) fully leaves the window."""
        used = [b for b, counts in self._buckets.items() if counts[index]]
        return max(self._end(max(used)) - now, 0.0) if used else 0.0


class RateLimits:
    """Per-model windows; `charge` admits or refuses a request and returns the headers to send."""

    def __init__(self, limits: Mapping[str, Limit] | None = None) -> None:
        self._limits = dict(limits or {})
        self._default = self._limits.pop("*", Limit())
        self.enforced = bool(limits)
        self._windows: dict[str, _Window] = {}

    def limit_for(self, model: str) -> Limit:
        """The configured limit of `model`, or the default one."""
        return self._limits.get(model, self._default)

    def charge(self, model: str, tokens: int, now: float) -> dict[str, str]:
        """Account one request of `tokens` tokens; raise a 429 ApiError if it does not fit."""
        limit = self.limit_for(model)
        window = self._windows.get(model)
        if window is None:
            if len(self._windows) > 4096:
                self._windows.clear()  # random model names in a load test must not leak memory
            window = self._windows[model] = _Window(limit.window)
        used_requests, used_tokens = window.used(now)
        if self.enforced:
            self._refuse_if_over(model, limit, window, now, used_requests, used_tokens, tokens)
        window.add(now, tokens)
        return _headers(limit, used_requests + 1, used_tokens + tokens, window, now)

    def _refuse_if_over(
        self,
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
        wait = window.wait_until_free(now, requests_over, tokens_over)
        by_tokens = tokens_over > 0 and requests_over <= 0
        kind = "tokens" if by_tokens else "requests"
        what = (
            f"tokens per min (TPM): Limit {limit.tpm}, Used {used_tokens}, Requested {tokens}"
            if by_tokens
            else f"requests per min (RPM): Limit {limit.rpm}, Used {used_requests}, Requested 1"
        )
        headers = _headers(limit, used_requests, used_tokens, window, now)
        headers["retry-after"] = str(max(1, math.ceil(wait)))
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
        raise ApiError(
            429,
            f"Rate limit reached for {model} in organization org-mockai on {what}. Please try "
            f"again in {go_duration(wait)}. Visit https://platform.openai.com/account/rate-limits "
            "to learn more.",
            type=kind,
            code="rate_limit_exceeded",
            headers=headers,
        )

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


def _headers(
    limit: Limit, requests: int, tokens: int, window: _Window | None, now: float
) -> dict[str, str]:
    reset_requests = window.reset_in(now, 0) if window is not None else 0.0
    reset_tokens = window.reset_in(now, 1) if window is not None else 0.0
    return {
        "x-ratelimit-limit-requests": str(limit.rpm),
        "x-ratelimit-limit-tokens": str(limit.tpm),
        "x-ratelimit-remaining-requests": str(max(limit.rpm - requests, 0)),
        "x-ratelimit-remaining-tokens": str(max(limit.tpm - tokens, 0)),
        "x-ratelimit-reset-requests": go_duration(reset_requests),
        "x-ratelimit-reset-tokens": go_duration(reset_tokens),
    }
