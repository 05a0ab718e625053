"""What one hostile request costs: the 244-byte schema that once allocated gigabytes.

    python bench/hostile.py [--model gpt-4o-mini] [--probes 40]

Starts `mockai serve` in its own process, reads its RSS idle, then sends a `json_schema` asking
for 150,000 strings of at least 1,000 characters (and the same as forced tool parameters) while
another connection polls `GET /v1/models`. Prints how long each hostile request took, how big its
answer was and why it ended (`finish_reason`), the slowest `/v1/models` answer meanwhile, and the
server's RSS before, at its peak and after. The API bounds every answer by the model's output-token
limit; so must mockai, without stalling anyone else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

SCHEMA = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "minItems": 150000,
            "items": {"type": "string", "minLength": 1000},
        }
    },
    "required": ["items"],
}


def hostile_requests(model: str) -> dict[str, dict[str, Any]]:
    ask = [{"role": "user", "content": "List them all."}]
    return {
        "response_format": {
            "model": model,
            "messages": ask,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "all", "schema": SCHEMA},
            },
        },
        "forced tool": {
            "model": model,
            "messages": ask,
            "tools": [{"type": "function", "function": {"name": "save", "parameters": SCHEMA}}],
            "tool_choice": {"type": "function", "function": {"name": "save"}},
        },
    }


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of `pid`, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    now = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return now / 1024, peak / 1024


async def poll_models(base: str, stop: asyncio.Event, session: aiohttp.ClientSession) -> float:
    """The slowest `GET /v1/models` while `stop` is not set."""
    worst = 0.0
    while not stop.is_set():
        started = time.perf_counter()
        async with session.get(base + "/v1/models") as response:
            await response.read()
        worst = max(worst, time.perf_counter() - started)
        await asyncio.sleep(0.01)
    return worst


async def measure(base: str, pid: int, model: str) -> None:
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(base + "/v1/models") as warm:
            await warm.read()
        idle, _ = rss_mib(pid)
        print(f"RSS idle: {idle:.0f} MiB")
        for name, body in hostile_requests(model).items():
            stop = asyncio.Event()
            poller = asyncio.create_task(poll_models(base, stop, session))
            started = time.perf_counter()
            async with session.post(base + "/v1/chat/completions", json=body) as response:
                raw = await response.read()
            took = time.perf_counter() - started
            stop.set()
            worst = await poller
            answer = json.loads(raw)
            choice = answer["choices"][0]
            print(
                f"{name}: {took * 1000:.0f} ms, {len(raw) / 1024:.0f} KiB, "
                f"finish_reason={choice['finish_reason']}, "
                f"completion_tokens={answer['usage']['completion_tokens']}, "
                f"slowest /v1/models meanwhile {worst * 1000:.0f} ms"
            )
        now, peak = rss_mib(pid)
        print(f"RSS after: {now:.0f} MiB (peak {peak:.0f} MiB; idle {idle:.0f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt-4o-mini")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = None
        deadline = time.monotonic() + 30
        while base is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if found:
                base = f"http://127.0.0.1:{found.group(1)}"
        if base is None:
            raise SystemExit("mockai serve did not start")
        asyncio.run(measure(base, server.pid, args.model))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
