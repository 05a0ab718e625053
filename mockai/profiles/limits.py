"""Rate-limit headers as each provider sends them, made from mockai's own budget headers.

mockai's budgets (`--limits`, mockai.delivery.ratelimit) produce OpenAI's six `x-ratelimit-*`
headers, and `retry-after` / `retry-after-ms` on a refusal; a profile keeps, renames or drops
them. The numbers stay mockai's budget: only the names and when they are sent change.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from mockai.profiles.hooks import LimitStyle
from mockai.wire.errors import DEFAULT_RETRY_AFTER, written_wait

RATE_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
)


def _others(headers: Mapping[str, str]) -> dict[str, str]:
    """Everything but the rate-limit and retry headers (an error's own headers, say)."""
    return {
        k: v
        for k, v in headers.items()
        if k not in RATE_HEADERS and k not in ("retry-after", "retry-after-ms")
    }


def _groq(headers: Mapping[str, str], status: int, billed: int) -> dict[str, str]:
    # The same six names on every answer (Groq's requests count per day: the numbers are
    # mockai's budget); `retry-after`, in seconds, only on a 429 and no `retry-after-ms`.
    out = {k: v for k, v in headers.items() if k != "retry-after-ms"}
    if status != 429:
        out.pop("retry-after", None)
    return out


GROQ = LimitStyle(
    _groq,
    "`x-ratelimit-*` on every answer (requests per day, tokens per minute); `retry-after` "
    "(seconds) only on 429",
)


def _openrouter(headers: Mapping[str, str], status: int, billed: int) -> dict[str, str]:
    out = _others(headers)
    if status == 429:
        # Only on a 429 OpenRouter raises itself: limit, remaining, and the reset as a Unix
        # time in milliseconds. The wait read as the SDKs read it (a scripted `retry-after-ms:
        # soon`, `nan` or `1e400` had made the answer a plain-text 500), else a second.
        seconds = written_wait(headers) or DEFAULT_RETRY_AFTER
        out["X-RateLimit-Limit"] = headers.get("x-ratelimit-limit-requests", "20")
        out["X-RateLimit-Remaining"] = "0"
        out["X-RateLimit-Reset"] = str(int((time.time() + seconds) * 1000))
    if status in (429, 503) and "retry-after" in headers:
        out["Retry-After"] = headers["retry-after"]
    return out


OPENROUTER = LimitStyle(
    _openrouter,
    "none on success; `X-RateLimit-Limit/-Remaining/-Reset` only on its own 429",
)


def _none(headers: Mapping[str, str], status: int, billed: int) -> dict[str, str]:
    out = _others(headers)
    if status in (429, 503) and "retry-after" in headers:
        out["retry-after"] = headers["retry-after"]  # only when a refusal was scripted
    return out


NONE = LimitStyle(_none, "none")


def _mistral(headers: Mapping[str, str], status: int, billed: int) -> dict[str, str]:
    out = _others(headers)
    renames = {
        "x-ratelimit-limit-requests": "x-ratelimit-limit-req-minute",
        "x-ratelimit-remaining-requests": "x-ratelimit-remaining-req-minute",
        "x-ratelimit-limit-tokens": "x-ratelimit-limit-tokens-minute",
        "x-ratelimit-remaining-tokens": "x-ratelimit-remaining-tokens-minute",
    }
    for ours, theirs in renames.items():
        if ours in headers:
            out[theirs] = headers[ours]
    if "x-ratelimit-limit-tokens" in headers:
        out["x-ratelimit-tokens-query-cost"] = str(billed)
    if status == 429 and "retry-after" in headers:
        out["retry-after"] = headers["retry-after"]
    return out


MISTRAL = LimitStyle(
    _mistral,
    "`x-ratelimit-{limit,remaining}-{req,tokens}-minute`, `x-ratelimit-tokens-query-cost`",
)


def _azure(headers: Mapping[str, str], status: int, billed: int) -> dict[str, str]:
    kept = (
        "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-reset-tokens",
        "retry-after",
        "retry-after-ms",
    )
    out = _others(headers)
    out.update({k: headers[k] for k in kept if k in headers})
    return out


AZURE = LimitStyle(
    _azure,
    "`x-ratelimit-remaining-{requests,tokens}`, `-limit-tokens`, `-reset-tokens`; "
    "`retry-after-ms` on 429",
)


def _anthropic(headers: Mapping[str, str], status: int, billed: int) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != "retry-after-ms"}


ANTHROPIC = LimitStyle(_anthropic, "OpenAI's six `x-ratelimit-*`; `retry-after` without `-ms`")
