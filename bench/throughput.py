"""Throughput and latency of mockai against the bar: a bare aiohttp app serving static bytes.

    python bench/throughput.py [--requests 3000] [--concurrency 32] [--seconds 20]

Each server runs in its own process (`mockai serve --quiet`, and a minimal aiohttp app returning
a pre-built chat completion body); the load comes from this process with keep-alive connections.
Prints requests/s, p50/p99 latency, and each case's throughput as a ratio of the bare app's, all
measured in the same run (the machines are shared and noisy: compare ratios, not absolutes).
Bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import perf  # bench/perf.py: the bare app, starting servers, fetching an answer

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello, how are you?"}]}
CASES: list[tuple[str, str, str, dict[str, Any] | None]] = [
    # name, method, path, body
    ("GET /v1/models", "GET", "/v1/models", None),
    ("chat", "POST", "/v1/chat/completions", CHAT),
    ("chat stream", "POST", "/v1/chat/completions", {**CHAT, "stream": True}),
    (
        "chat tools",
        "POST",
        "/v1/chat/completions",
        {
            **CHAT,
            "messages": [{"role": "user", "content": "weather in Paris"}],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                            "required": ["city"],
                        },
                    },
                }
            ],
        },
    ),
    (
        "responses stream",
        "POST",
        "/v1/responses",
        {"model": "gpt-4o-mini", "input": "Hi", "stream": True},
    ),
    (
        "embeddings (base64)",
        "POST",
        "/v1/embeddings",
        {"model": "text-embedding-3-small", "input": "hello world"},
    ),
]


@dataclass
class Result:
    name: str
    done: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000 if ordered else 0.0


async def load(
    base: str,
    name: str,
    method: str,
    path: str,
    body: Any,
    total: int,
    concurrency: int,
    limit: float,
) -> Result:
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
    latencies: list[float] = []
    remaining = total
    deadline = time.perf_counter() + limit
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                began = time.perf_counter()
                async with session.request(method, base + path, data=payload, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{name}: status {r.status}")
                latencies.append(time.perf_counter() - began)

        for _ in range(min(50, total)):  # warm-up
            async with session.request(method, base + path, data=payload, headers=headers) as r:
                await r.read()
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return Result(name, len(latencies), elapsed, latencies)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0, help="time limit per case")
    args = parser.parse_args()

    mockai = perf.start_server("mockai", perf.mockai_command(), None)
    try:
        static_body, content_type = perf.fetch(mockai.url + "/v1/chat/completions", CHAT)
        # perf.py's bare app, answering the chat case's bytes at /case/chat
        answers = {
            "chat": {
                "kind": "json",
                "content_type": content_type.split(";")[0],
                "frames": [base64.b64encode(static_body).decode()],
            }
        }
        bare = perf.start_server(
            "bare", [sys.executable, "-c", perf.BARE_APP], None, json.dumps(answers).encode()
        )
        try:
            results = [
                asyncio.run(
                    load(
                        bare.url,
                        "bare aiohttp, static bytes",
                        "POST",
                        "/case/chat",
                        CHAT,
                        args.requests,
                        args.concurrency,
                        args.seconds,
                    )
                )
            ]
            for name, method, path, body in CASES:
                results.append(
                    asyncio.run(
                        load(
                            mockai.url,
                            name,
                            method,
                            path,
                            body,
                            args.requests,
                            args.concurrency,
                            args.seconds,
                        )
                    )
                )
            memory = {"bare aiohttp": bare.rss_mib(), "mockai": mockai.rss_mib()}
        finally:
            bare.stop()
    finally:
        mockai.stop()
    report(results, args)
    print(
        "resident memory after the run: "
        + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in memory.items())
        + " (mockai keeps the last 1000 exchanges in its journal and 1000 stored responses)"
    )


def report(results: list[Result], args: argparse.Namespace) -> None:
    bar = results[0].rps
    print(
        f"\n{args.requests} requests per case, {args.concurrency} concurrent, keep-alive, "
        "one server process\n"
    )
    print(f"{'case':32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8}")
    for r in results:
        print(
            f"{r.name:32} {r.rps:9.0f} {r.percentile(0.5):8.2f} {r.percentile(0.99):8.2f} "
            f"{r.rps / bar if bar else 0:8.2f}"
        )
    print(
        f"\nmedian latency of the bare app: {statistics.median(results[0].latencies) * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
