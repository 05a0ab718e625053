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
import json
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

BARE_APP = r"""
import sys
from aiohttp import web
body = sys.stdin.buffer.read()
async def handle(request):
    await request.read()
    return web.Response(body=body, content_type="application/json")
app = web.Application()
app.router.add_route("*", "/{tail:.*}", handle)
runner = web.AppRunner(app, access_log=None)
import asyncio
async def main():
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print("listening on http://127.0.0.1:%d" % runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

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


def start(command: list[str], stdin: bytes | None = None) -> tuple[subprocess.Popen[bytes], str]:
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdin is not None and process.stdout is not None
    if stdin is not None:
        process.stdin.write(stdin)
    process.stdin.close()
    while True:
        line = process.stdout.readline().decode()
        if not line:
            raise RuntimeError(f"{command} did not start")
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return process, match.group(1)


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

    mockai, mockai_url = start([sys.executable, "-m", "mockai", "serve", "--port", "0", "--quiet"])
    try:
        static_body = urlopen_json(mockai_url + "/v1/chat/completions", CHAT)
        bare, bare_url = start([sys.executable, "-c", BARE_APP], stdin=static_body)
        try:
            results = [
                asyncio.run(
                    load(
                        bare_url,
                        "bare aiohttp, static bytes",
                        "POST",
                        "/v1/chat/completions",
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
                            mockai_url,
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
            memory = {"bare aiohttp": rss_mib(bare.pid), "mockai": rss_mib(mockai.pid)}
        finally:
            bare.terminate()
            bare.wait()
    finally:
        mockai.terminate()
        mockai.wait()
    report(results, args)
    print(
        "resident memory after the run: "
        + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in memory.items())
        + " (mockai keeps the last 1000 exchanges in its journal and 1000 stored responses)"
    )


def rss_mib(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def urlopen_json(url: str, body: Any) -> bytes:
    import urllib.request

    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        return bytes(response.read())


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
