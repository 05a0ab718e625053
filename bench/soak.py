"""Soak: mockai as a shared service under steady load, with chaos on, for a bounded time.

    python bench/soak.py [--duration 60] [--rate 60] [--workers 2] [--chaos SPEC]
                         [--budget-rpm 40 --budget-window 5 --budget-rate 20] [--no-state]

Starts its own redis-server (Debian's, on a free loopback port) and `mockai serve --workers N
--state redis://...` with chaos and a rate-limit budget on one model, then sends requests at a
steady rate (open loop: request i is due at start + i / rate): chat completions, a share of them
streamed, plus a steady stream of requests to the budgeted model, faster than its budget allows.

It reports, and checks:
- RSS of every mockai process (the parent and each worker) after warm-up and at the end: flat
  within 10%;
- zero unexpected 5xx: the only 5xx allowed are the ones chaos injects (`server_error`: a 500 in
  the API's words), cross-checked against the server's own `mockai_faults_total`; any other 5xx
  (a mockai internal error, the shared state unavailable, ...) fails the run;
- the budget is enforced across workers: in any window of `--budget-window` seconds the budgeted
  model got at most `--budget-rpm` 200s (the budget), not N times it — and, so that the check
  means something, it got close to the budget (the load asks for far more).

`--no-state` runs the same without Redis (each worker then has its own budget: the 200s per
window become about N times the budget, which is what the shared state fixes).
Talks only to 127.0.0.1; every loop is bounded in count and time. Exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

MAX_DURATION = 3600.0
MAX_RATE = 2000.0
MAX_IN_FLIGHT = 512
# Seconds before the "start" RSS is taken: the first requests load Faker & co., and each process's
# bounded journal (1000 entries, answers included) fills up — ~25 s at the default rate with two
# workers. Growth after that would be a leak; `rss_every_10s` shows the whole curve.
WARM_UP = 30.0
MODEL = "gpt-4o-mini"
BUDGET_MODEL = "gpt-4o"
CHAOS = "rate_limit=0.05,server_error=0.02,malformed_chunk=0.02,disconnect_after=0.01"
SERVER_ERROR_TEXT = "The server had an error processing your request."  # (how chaos's 500 starts)
BUCKETS = 60  # mockai's sliding window is kept in this many buckets (delivery/ratelimit.py)


@dataclass
class Tally:
    """What the client saw."""

    statuses: dict[int, int] = field(default_factory=dict)
    unexpected_5xx: list[str] = field(default_factory=list)
    chaos_500s: int = 0
    transport_errors: int = 0  # connections broken on purpose (chaos disconnects)
    skipped: int = 0  # due while MAX_IN_FLIGHT were in flight (the client could not keep up)
    latencies: list[float] = field(default_factory=list)
    # When each budgeted 200 was sent and received (monotonic): it was admitted in between.
    budget_200s: list[tuple[float, float]] = field(default_factory=list)
    budget_429s: int = 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_redis(folder: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    redis = shutil.which("redis-server")
    if redis is None:
        sys.exit("soak: redis-server is not installed (scripts/test-env installs it)")
    process = subprocess.Popen(
        [
            redis,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            folder,
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"*1\r\n$4\r\nPING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    sys.exit("soak: redis-server did not start")


def _start_mockai(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return process, found.group(1)
        if not line:
            break
    process.kill()
    sys.exit("soak: mockai serve did not start")


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _chat_body(index: int, stream: bool, model: str = MODEL) -> dict[str, Any]:
    # A bounded set of distinct prompts: repeats exercise the shared occurrence counters.
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"soak question {index % 500}"}],
        "stream": stream,
        "max_tokens": 64,
    }


async def _one(
    session: aiohttp.ClientSession, base: str, body: dict[str, Any], tally: Tally, budget: bool
) -> None:
    started = time.monotonic()
    try:
        async with session.post(base + "/v1/chat/completions", json=body) as answer:
            data = await answer.read()
            status = answer.status
    except (aiohttp.ClientError, asyncio.TimeoutError):
        tally.transport_errors += 1
        return
    tally.statuses[status] = tally.statuses.get(status, 0) + 1
    if status == 200:
        tally.latencies.append(time.monotonic() - started)
        if budget:
            tally.budget_200s.append((started, time.monotonic()))
    elif status == 429 and budget:
        tally.budget_429s += 1
    elif status >= 500:
        try:
            error = json.loads(data)["error"]
        except (ValueError, KeyError, TypeError):
            error = {"message": data[:200].decode("utf-8", "replace")}
        message = str(error.get("message", ""))
        if status == 500 and message.startswith(SERVER_ERROR_TEXT) and error.get("code") is None:
            tally.chaos_500s += 1  # what `server_error` chaos sends
        else:
            tally.unexpected_5xx.append(f"{status} {error}")


async def _drive(
    base: str, args: argparse.Namespace, tally: Tally, on_warm: Any, on_tick: Any
) -> None:
    connector = aiohttp.TCPConnector(limit=64)  # many connections: spread over the workers
    timeout = aiohttp.ClientTimeout(total=30)
    in_flight: set[asyncio.Task[None]] = set()
    rng = random.Random(7)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.monotonic()
        main_due = budget_due = 0.0
        index = 0
        warm = False
        tick = 0.0
        while (now := time.monotonic() - start) < args.duration:
            if not warm and now >= min(args.warm_up, args.duration / 2):
                warm = True
                on_warm()
            if now >= tick:
                on_tick()
                tick += 10.0
            if main_due <= now:
                body, budget = _chat_body(index, rng.random() < args.stream_share), False
                main_due += 1 / args.rate
                index += 1
            elif budget_due <= now:
                body, budget = _chat_body(index, False, BUDGET_MODEL), True
                budget_due += 1 / args.budget_rate
            else:
                await asyncio.sleep(min(main_due, budget_due) - now)
                continue
            if len(in_flight) >= MAX_IN_FLIGHT:
                tally.skipped += 1
                continue
            task = asyncio.create_task(_one(session, base, body, tally, budget))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight, timeout=35)


def _window_counts(spans: list[tuple[float, float]], window: float) -> list[int]:
    """For each 200 (by send time), how many 200s were certainly admitted in the `window`
    seconds from its sending: sent no earlier and received before the window ended. (The server
    admitted each between its send and its receipt, so this never counts one too many.)"""
    spans = sorted(spans)
    sent = [start for start, _ in spans]
    counts = []
    for i, (start, _) in enumerate(spans):
        last = bisect.bisect_left(sent, start + window)
        counts.append(sum(1 for _, end in spans[i:last] if end < start + window))
    return counts


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        wanted = all(f'{key}="{value}"' in line for key, value in labels.items())
        if line.startswith((name + "{", name + " ")) and wanted:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _settled_metrics(base: str) -> str:
    """The server's metrics once every worker's last totals are in: the workers share theirs
    once a second (FLUSH_SECONDS), so a scrape right after the load can miss another worker's
    last second (one read 259 of 261 injected 500s at 200 requests/s). Scrapes until two
    taken 1.2 s apart agree (at most 10 s); empty if they cannot be read."""
    import urllib.request

    last = None
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(base + "/_mockai/metrics", timeout=10) as answer:
                metrics: str = answer.read().decode()
        except OSError as error:
            print(f"soak: could not scrape the metrics: {error}")
            return ""
        counted = _metric(metrics, "mockai_requests_total")
        if counted == last or time.monotonic() > deadline:
            return metrics
        last = counted
        time.sleep(1.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (<= 3600)")
    parser.add_argument("--rate", type=float, default=60.0, help="chat requests per second")
    parser.add_argument("--stream-share", type=float, default=0.3, help="share streamed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chaos", default=CHAOS)
    parser.add_argument("--budget-rpm", type=int, default=40, help="the budgeted model's budget")
    parser.add_argument("--budget-window", type=float, default=5.0, help="its window, seconds")
    parser.add_argument("--budget-rate", type=float, default=20.0, help="its requests per second")
    parser.add_argument("--no-state", action="store_true", help="no Redis (per-worker state)")
    parser.add_argument("--warm-up", type=float, default=WARM_UP, help="seconds before RSS")
    args = parser.parse_args()
    args.duration = max(1.0, min(args.duration, MAX_DURATION))
    args.rate = max(1.0, min(args.rate, MAX_RATE))
    args.budget_rate = max(0.5, min(args.budget_rate, MAX_RATE))

    folder = tempfile.mkdtemp(prefix="mockai-soak-")
    redis = None
    serve = ["--workers", str(args.workers), "--chaos", args.chaos]
    serve += ["--limits", f"{BUDGET_MODEL}:rpm={args.budget_rpm},window={args.budget_window:g}s"]
    if not args.no_state:
        redis, port = _start_redis(folder)
        serve += ["--state", f"redis://127.0.0.1:{port}/0?prefix=soak-{uuid.uuid4().hex[:8]}"]
    process, base = _start_mockai(serve)
    try:
        time.sleep(0.5)  # the workers are forked right after the banner
        pids = [process.pid, *_children(process.pid)]
        at_launch = {pid: _rss_mib(pid) for pid in pids}
        warm: dict[int, float] = {}
        samples: dict[int, list[float]] = {pid: [] for pid in pids}
        tally = Tally()
        began = time.monotonic()

        def sample() -> None:
            for pid in pids:
                samples[pid].append(round(_rss_mib(pid), 1))

        asyncio.run(
            _drive(base, args, tally, lambda: warm.update({p: _rss_mib(p) for p in pids}), sample)
        )
        elapsed = time.monotonic() - began
        at_end = {pid: _rss_mib(pid) for pid in pids}
        metrics = _settled_metrics(base)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        code = process.wait(30)
        if redis is not None:
            redis.kill()
            redis.wait(10)
        shutil.rmtree(folder, ignore_errors=True)

    # The window is kept in buckets: a request's usage leaves it between `window - bucket` and
    # `window` after it was admitted, so any span of `window - bucket` holds at most the budget.
    checked = args.budget_window * (BUCKETS - 1) / BUCKETS
    counts = _window_counts(tally.budget_200s, checked)
    # How many 200s each full window got (received within the window from each 200's receipt).
    received = sorted(end for _, end in tally.budget_200s)
    full = [
        bisect.bisect_left(received, t + args.budget_window) - i
        for i, t in enumerate(received)
        if t + args.budget_window <= began + elapsed
    ]
    total = sum(tally.statuses.values()) + tally.transport_errors
    rss = {
        pid: {
            "launch_mib": round(at_launch[pid], 1),
            "warm_mib": round(warm.get(pid, at_launch[pid]), 1),
            "end_mib": round(at_end[pid], 1),
            "change": round(at_end[pid] / warm.get(pid, at_launch[pid]) - 1, 4),
            "rss_every_10s": samples[pid],
        }
        for pid in pids
    }
    injected_500s = _metric(metrics, "mockai_faults_total", kind="server_error")
    summary = {
        "duration_s": round(elapsed, 1),
        "requests": total,
        "rate_rps": round(total / elapsed, 1),
        "workers": args.workers,
        "state": "memory (per worker)" if args.no_state else "redis",
        "statuses": dict(sorted(tally.statuses.items())),
        "transport_errors": tally.transport_errors,
        "skipped": tally.skipped,
        "latency_ms": {
            "p50": round(statistics.median(tally.latencies) * 1000, 2) if tally.latencies else None,
            "p99": round(statistics.quantiles(tally.latencies, n=100)[98] * 1000, 2)
            if len(tally.latencies) > 100
            else None,
        },
        "warm_up_s": min(args.warm_up, args.duration / 2),
        "rss": rss,
        "chaos_500s_seen": tally.chaos_500s,
        "chaos_500s_counted_by_server": injected_500s,
        "unexpected_5xx": tally.unexpected_5xx[:10],
        "budget": {
            "rpm": args.budget_rpm,
            "window_s": args.budget_window,
            "checked_span_s": round(checked, 3),
            "asked_per_window": round(args.budget_rate * args.budget_window),
            "max_200s_in_a_span": max(counts, default=0),
            "mean_200s_per_full_window": round(statistics.mean(full), 1) if full else None,
            "429s": tally.budget_429s,
        },
        "server_exit_code": code,
    }
    print(json.dumps(summary, indent=2))

    failures = []
    for pid, seen in rss.items():
        if abs(seen["change"]) > 0.10:
            failures.append(f"RSS of {pid} changed by {seen['change']:.1%} (more than 10%)")
    if tally.unexpected_5xx:
        failures.append(f"{len(tally.unexpected_5xx)} unexpected 5xx: {tally.unexpected_5xx[:3]}")
    if metrics and injected_500s != tally.chaos_500s:
        failures.append(f"500s seen {tally.chaos_500s} != injected {injected_500s:g}")
    budget_max = max(counts, default=0)
    if not args.no_state and budget_max > args.budget_rpm:
        failures.append(f"{budget_max} 200s in one span for a budget of {args.budget_rpm}")
    if not args.no_state and full and statistics.mean(full) < 0.7 * args.budget_rpm:
        failures.append("the budgeted model got far less than its budget (check the load)")
    if code != 0:
        failures.append(f"mockai serve exited {code} on SIGTERM")
    for failure in failures:
        print("FAIL:", failure)
    if not failures:
        print("OK: RSS flat, no unexpected 5xx, one budget across the workers, clean exit")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
