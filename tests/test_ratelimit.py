"""Rate-limit budgets: sliding-window accounting, the six headers, and 429s that say when to retry."""

from __future__ import annotations

import math

import conformance
import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockai.delivery.ratelimit import BUCKETS, Limit, RateLimits, _Window, parse_limits
from mockai.errors import ApiError, ConfigError

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("rpm=60,tpm=40000", {"*": Limit(60, 40000)}),
        (
            "gpt-4o:rpm=3,tpm=1000;gpt-4o-mini:rpm=100",
            {"gpt-4o": Limit(3, 1000), "gpt-4o-mini": Limit(rpm=100)},
        ),
        ("rpm=3,window=2s", {"*": Limit(rpm=3, window=2.0)}),
        ("ft:gpt-4o:org:x:rpm=2", {"ft:gpt-4o:org:x": Limit(rpm=2)}),
        ("gpt-4o*:tpm=500", {"gpt-4o*": Limit(tpm=500)}),
        (
            {"rpm": 5, "gpt-4o": {"rpm": 3, "window": "2s"}},
            {"*": Limit(rpm=5), "gpt-4o": Limit(3, window=2.0)},
        ),
        ("", {}),
        (None, {}),
    ],
)
def test_parse_limits(spec: object, expected: dict[str, Limit]) -> None:
    assert parse_limits(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rpm", "limits: 'rpm' is not [MODEL:]rpm=N,tpm=N[,window=DURATION]"),
        ("rpm=0", "limits: rpm=0: rpm must be a whole number >= 1, got '0'"),
        ("rph=3", "limits: rph=3: unknown key 'rph' (did you mean 'rpm'?)"),
        ("rpm=3,window=0", "limits: rpm=3,window=0: window must be longer than 0"),
        ("rpm=3,window=soon", "limits: rpm=3,window=soon: window: 'soon' is not a duration"),
        ({"gpt-4o": 3}, "limits: gpt-4o: expected a mapping such as {rpm: 3, tpm: 1000}"),
        # One prefix, whatever the nesting (it was `limits: limits: ...`).
        ({"rpm": 0}, "limits: rpm must be a whole number >= 1, got 0"),
        ({"gpt-4o": {"tmp": 5}}, "limits: gpt-4o: unknown key 'tmp' (did you mean 'tpm'?)"),
        (42, "limits: expected text like 'rpm=60,tpm=40000' or a mapping, got 42"),
    ],
)
def test_parse_limits_errors(spec: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_limits(spec)
    assert str(caught.value).startswith(message)


def test_requests_count_down_then_a_429_says_when_the_next_one_fits() -> None:
    limits = RateLimits({"*": Limit(rpm=3, window=6.0)})
    remaining = []
    for now in (100.0, 100.5, 101.0):
        headers = limits.charge("gpt-4o", 10, now)
        remaining.append(headers["x-ratelimit-remaining-requests"])
    assert remaining == ["2", "1", "0"]
    assert headers["x-ratelimit-limit-requests"] == "3"
    # Fully restored when the last request leaves the window (its 0.1 s bucket ends at 107.0).
    assert headers["x-ratelimit-reset-requests"] == "6s"
    with pytest.raises(ApiError) as refused:
        limits.charge("gpt-4o", 10, 102.0)
    error = refused.value
    assert (error.status, error.type, error.code) == (429, "requests", "rate_limit_exceeded")
    # The first request (bucket [100.0, 100.1)) leaves the 6 s window at 106.0.
    assert error.headers["retry-after-ms"] == "4001"
    assert error.headers["retry-after"] == "5"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert error.message == (
        "Rate limit reached for gpt-4o in organization org-mockai on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 4s. Visit "
        "https://platform.openai.com/account/rate-limits to learn more."
    )
    # Refused requests are not charged, and honouring the retry-after is enough.
    headers = limits.charge("gpt-4o", 10, 102.0 + 4.001)
    assert headers["x-ratelimit-remaining-requests"] == "0"


def test_token_budgets_refuse_with_type_tokens() -> None:
    limits = RateLimits({"gpt-4o": Limit(tpm=100, window=60.0)})
    assert limits.charge("gpt-4o", 60, 0.0)["x-ratelimit-remaining-tokens"] == "40"
    with pytest.raises(ApiError) as refused:
        limits.charge("gpt-4o", 50, 1.0)
    assert refused.value.type == "tokens"
    assert "tokens per min (TPM): Limit 100, Used 60, Requested 50." in refused.value.message
    assert refused.value.headers["retry-after"] == "60"
    with pytest.raises(ApiError, match="Requested 500"):
        limits.charge("gpt-4o", 500, 2.0)  # never fits: still a 429, as the API answers


def test_only_models_with_a_budget_are_refused() -> None:
    limits = RateLimits(parse_limits("gpt-4o*:rpm=1"))
    limits.charge("gpt-4o-mini", 1, 0.0)
    with pytest.raises(ApiError):
        limits.charge("gpt-4o-mini", 1, 0.1)
    for _ in range(20):
        headers = limits.charge("o3", 1, 0.2)  # no budget: counts down, never refuses
    assert headers["x-ratelimit-remaining-requests"] == str(10_000 - 20)
    assert limits.peek("o3", 0.3)["x-ratelimit-remaining-requests"] == str(10_000 - 20)
    assert limits.peek("never-seen", 0.3)["x-ratelimit-reset-requests"] == "0s"
    limits.clear()
    assert limits.peek("o3", 0.3)["x-ratelimit-remaining-requests"] == "10000"


def test_the_server_counts_down_and_the_sdk_honours_the_retry_after() -> None:
    with conformance.checked_server(limits="gpt-4o:rpm=3,window=1.5s") as server:
        with httpx.Client(base_url=server.url) as http:
            answers = [http.post("/chat/completions", json=CHAT) for _ in range(4)]
            other = http.post("/chat/completions", json={**CHAT, "model": "gpt-4o-mini"})
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == [
            "2",
            "1",
            "0",
            "0",
        ]
        assert {a.headers["x-ratelimit-limit-requests"] for a in answers} == {"3"}
        refused = answers[-1]
        assert refused.json()["error"]["type"] == "requests"
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        wait_ms = int(refused.headers["retry-after-ms"])
        assert 0 < wait_ms <= 1501
        assert refused.headers["retry-after"] in ("1", "2")  # whole seconds, rounded up
        assert other.status_code == 200  # another model, another (unlimited) budget

        # The SDK reads retry-after-ms, sleeps that long, and the retry fits the window.
        sdk = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=2)
        reply = sdk.chat.completions.create(model="gpt-4o", messages=CHAT["messages"])
        assert reply.choices[0].message.content
        attempts = [e for e in server.requests if e.retry_count is not None]  # the SDK's
        assert [e.status for e in attempts] == [429, 200]
        advised = int(attempts[0].response_headers["retry-after-ms"]) / 1000
        gap = attempts[1].arrived - attempts[0].arrived
        assert advised - 0.02 <= gap < advised + 0.6


def test_injected_errors_are_not_charged() -> None:
    with (
        conformance.checked_server(limits="rpm=2,window=60s") as server,
        httpx.Client(base_url=server.url) as http,
    ):
        for _ in range(3):
            faulted = http.post(
                "/chat/completions", json=CHAT, headers={"x-mockai-fault": "server_error"}
            )
            assert faulted.status_code == 500
            assert faulted.headers["x-ratelimit-remaining-requests"] == "2"
        statuses = [http.post("/chat/completions", json=CHAT).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_a_bad_limits_option_stops_the_server_from_starting() -> None:
    from mockai import MockServer

    with pytest.raises(ConfigError, match="limits: rpm=x: rpm must be a whole number"):
        MockServer(limits="rpm=x")


class NaiveWindow:
    """The sliding window as first written: every bucket walked on every question."""

    def __init__(self, length: float) -> None:
        self.width = length / BUCKETS
        self.buckets: dict[int, list[int]] = {}

    def expire(self, now: float) -> None:
        oldest = math.floor(now / self.width) - BUCKETS + 1
        for bucket in [b for b in self.buckets if b < oldest]:
            del self.buckets[bucket]

    def used(self, now: float) -> tuple[int, int]:
        self.expire(now)
        return sum(b[0] for b in self.buckets.values()), sum(b[1] for b in self.buckets.values())

    def add(self, now: float, tokens: int) -> None:
        bucket = self.buckets.setdefault(math.floor(now / self.width), [0, 0])
        bucket[0] += 1
        bucket[1] += tokens

    def reset_in(self, now: float, index: int) -> float:
        used = [b for b, counts in self.buckets.items() if counts[index]]
        return max((max(used) + BUCKETS) * self.width - now, 0.0) if used else 0.0


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=2.5), st.integers(min_value=0, max_value=50)),
        max_size=60,
    )
)
def test_the_window_keeps_the_same_accounts_as_walking_every_bucket(
    steps: list[tuple[float, int]],
) -> None:
    """Usage and reset times, kept up to date incrementally, equal a full recount each time."""
    window, naive = _Window(1.0), NaiveWindow(1.0)
    now = 100.0
    for gap, tokens in steps:
        now += gap
        assert window.used(now) == naive.used(now)
        assert [window.reset_in(now, i) for i in (0, 1)] == [naive.reset_in(now, i) for i in (0, 1)]
        window.add(now, tokens)
        naive.add(now, tokens)
