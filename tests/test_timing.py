"""Delays and stream pacing as data: parsing every accepted spelling, and seeded sampling."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import socket
import statistics
import time

import httpx
import pytest

from mockai import MockServer
from mockai.delivery.deliver import schedule
from mockai.delivery.timing import (
    Fixed,
    LogNormal,
    StreamTiming,
    Uniform,
    go_duration,
    parse_delay,
    parse_duration,
    parse_stream,
    parse_timing_spec,
)
from mockai.server import sites
from mockai.server.app import BackgroundLoop


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(0.2, 0.2), (3, 3.0), ("200ms", 0.2), ("1.5s", 1.5), ("2m", 120.0), (" 5 ms ", 0.005)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "delay"),
    [
        ("200ms", Fixed(0.2)),
        (0.05, Fixed(0.05)),
        ("100ms-300ms", Uniform(0.1, 0.3)),
        ("100-300ms", Uniform(0.1, 0.3)),  # a unit on the right applies to both ends
        ("1s-2s", Uniform(1.0, 2.0)),
        ({"min": "10ms", "max": 0.02}, Uniform(0.01, 0.02)),
        ("min=10ms,max=20ms", Uniform(0.01, 0.02)),
        ({"mean": "200ms", "stddev": "50ms"}, LogNormal(0.2, 0.05)),
        ("mean=200ms, stddev=50ms", LogNormal(0.2, 0.05)),
    ],
)
def test_delays(value: object, delay: Fixed | Uniform | LogNormal) -> None:
    parsed = parse_delay(value)
    assert type(parsed) is type(delay)
    assert dataclasses.astuple(parsed) == pytest.approx(dataclasses.astuple(delay))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "'soon' is not a duration"),
        (-1, "-1 is not a duration; durations are finite and >= 0"),
        (True, "True is not a duration"),
        ("300ms-100ms", "the low end is larger than the high end"),
        ({"min": 2, "max": 1}, "min (2) is larger than max (1)"),
        ({"mean": 0, "stddev": 1}, "mean must be > 0"),
        ({"low": 1}, "a delay mapping takes either {min, max} or {mean, stddev}"),
        ("mean=1s,stddev", "'stddev' is not NAME=VALUE"),
    ],
)
def test_delay_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_delay(value)
    assert message in str(caught.value)


def test_samples_follow_the_distribution_and_the_seed() -> None:
    rng = random.Random(7)
    uniform = [Uniform(0.1, 0.3).sample(rng) for _ in range(2000)]
    assert min(uniform) >= 0.1 and max(uniform) <= 0.3
    lognormal = [LogNormal(0.2, 0.05).sample(rng) for _ in range(5000)]
    assert statistics.fmean(lognormal) == pytest.approx(0.2, rel=0.05)
    assert statistics.stdev(lognormal) == pytest.approx(0.05, rel=0.15)
    assert min(lognormal) > 0
    again = [LogNormal(0.2, 0.05).sample(random.Random(3)) for _ in range(2)]
    assert again[0] == again[1]


@pytest.mark.parametrize(
    ("value", "ttft", "gap", "jitter"),
    [
        ({"ttft": "300ms", "chunk_delay": "20ms"}, 0.3, 0.02, 0.0),
        ("ttft=300ms,chunk_delay=20ms", 0.3, 0.02, 0.0),
        ({"tokens_per_second": 50, "jitter": 0.1}, None, 0.02, 0.1),
        ("tokens_per_second=50,jitter=0.1", None, 0.02, 0.1),
        ({"ttft": 0.1}, 0.1, None, 0.0),
    ],
)
def test_stream_timing(value: object, ttft: float | None, gap: float | None, jitter: float) -> None:
    parsed = parse_stream(value)
    rng = random.Random(0)
    assert (parsed.ttft.sample(rng) if parsed.ttft else None) == pytest.approx(ttft)
    assert (parsed.chunk_delay.sample(rng) if parsed.chunk_delay else None) == pytest.approx(gap)
    assert parsed.jitter == jitter


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"ttft": "1s", "speed": 2}, "unknown stream timing key 'speed' (known: chunk_delay, "),
        ({"tft": "1s"}, "unknown stream timing key 'tft' (did you mean 'ttft'?)"),
        ({"chunk_delay": "1ms", "tokens_per_second": 5}, "either chunk_delay or tokens_per_second"),
        ({"tokens_per_second": 0}, "tokens_per_second must be a positive number, got 0"),
        ({"jitter": 2}, "jitter must be a number between 0 and 1, got 2"),
        ("ttft", "'ttft' is not NAME=VALUE"),
        (5, "stream timing is a mapping"),
    ],
)
def test_stream_timing_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_stream(value)
    assert message in str(caught.value)


def test_timing_spec_is_latency_or_stream_pacing_or_both() -> None:
    latency, stream = parse_timing_spec("200ms")
    assert latency == Fixed(0.2) and stream is None
    latency, stream = parse_timing_spec("mean=200ms,stddev=20ms")
    assert latency == LogNormal(0.2, 0.02) and stream is None
    latency, stream = parse_timing_spec("ttft=300ms,tokens_per_second=50")
    assert latency is None and stream == StreamTiming(ttft=Fixed(0.3), chunk_delay=Fixed(0.02))
    latency, stream = parse_timing_spec("latency=100ms-200ms,chunk_delay=10ms")
    assert latency == Uniform(0.1, 0.2) and stream == StreamTiming(chunk_delay=Fixed(0.01))
    with pytest.raises(ValueError, match=r"unknown timing key 'speed' \(known: chunk_delay, "):
        parse_timing_spec("ttft=1s,speed=2")


def test_schedule_is_absolute_and_seeded() -> None:
    pacing = StreamTiming(ttft=Fixed(0.2), chunk_delay=Fixed(0.02))
    due = schedule(4, 100.0, pacing, None, random.Random(1))
    assert due == pytest.approx([100.2, 100.22, 100.24, 100.26])
    jittered = StreamTiming(ttft=Fixed(0.2), chunk_delay=Fixed(0.02), jitter=0.5)
    first = schedule(50, 0.0, jittered, None, random.Random(9))
    assert first == schedule(50, 0.0, jittered, None, random.Random(9))
    gaps = [b - a for a, b in itertools.pairwise(first)]
    assert min(gaps) >= 0.01 - 1e-9 and max(gaps) <= 0.03 + 1e-9 and len(set(gaps)) > 10
    # Recorded offsets (cassette replays) place each frame after the first one.
    assert schedule(3, 10.0, None, [0.0, 0.5, 0.75], random.Random(0)) == [10.0, 10.5, 10.75]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.012, "12ms"),
        (0.6445, "644.5ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (60, "1m0s"),
        (179.56, "2m59.56s"),
        (360, "6m0s"),
        (3725, "1h2m5s"),
        (0.0000005, "0µs"),
    ],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


# --- arrival stamps ------------------------------------------------------------------------------


def test_the_stamped_loop_knows_when_it_woke_for_io() -> None:
    """Arrivals are stamped with the loop's wake-up from select(), not when their turn came."""
    loop = sites.StampedLoop()
    try:

        async def woken_by_a_socket() -> tuple[float, float, float]:
            reader_sock, writer_sock = socket.socketpair()
            readable = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().add_reader(reader_sock, readable.set_result, None)
            sent = time.monotonic()
            writer_sock.send(b"x")
            await readable
            woken = time.monotonic()
            while time.monotonic() < woken + 0.02:  # busy, as under a burst: the loop polls not
                pass
            seen = sites.arrival_clock()()
            asyncio.get_running_loop().remove_reader(reader_sock)
            reader_sock.close()
            writer_sock.close()
            return sent, seen, woken

        sent, seen, woken = loop.run_until_complete(woken_by_a_socket())
    finally:
        loop.close()
    # The wake-up for the bytes (same monotonic clock), not the moment the clock was read.
    assert sent <= seen <= woken


def test_servers_run_on_uvloop_when_installed_else_on_stamped_loops() -> None:
    try:
        import uvloop

        expected: type[asyncio.AbstractEventLoop] = uvloop.Loop
    except ImportError:  # pragma: no cover (the test extra installs uvloop)
        expected = sites.StampedLoop
    with MockServer() as server:
        assert isinstance(BackgroundLoop.shared().loop, expected)
        assert httpx.get(server.url + "/models").status_code == 200
    assert sites.loop_factory("asyncio") is sites.StampedLoop
    loop = sites.loop_factory("uvloop")()
    try:
        assert isinstance(loop, expected)
    finally:
        loop.close()
