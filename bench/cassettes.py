"""Cassette numbers: replay lookup cost, save cost, concurrent recording, stream timing fidelity.

    python bench/cassettes.py

Everything runs on loopback. The numbers quoted in docs/design.md come from this script.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from cassette_support import paced_upstream

from mockai import MockServer
from mockai.api import chat
from mockai.api.base import ParseContext
from mockai.cassette import Cassette, CassetteFile, Interaction, ReplaySource
from mockai.cassette.modes import RecordMode
from mockai.cassette.redact import Scrubber
from mockai.cassette.scan import refuse_leaks
from mockai.cassette.writer import CassetteRecorder
from mockai.catalog import Catalog


def body(n: int) -> dict[str, object]:
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. " * 10},
            {"role": "user", "content": f"Question number {n}: " + "tell me more. " * 20},
        ],
        "temperature": 0.2,
    }


def interaction(n: int) -> Interaction:
    answer = {"id": f"chatcmpl-{n}", "object": "chat.completion", "choices": [], "text": "x" * 800}
    return Interaction(
        method="POST",
        uri="https://api.openai.com/v1/chat/completions",
        request_body=json.dumps(body(n)).encode(),
        request_headers={"Content-Type": ["application/json"]},
        status=200,
        reason="OK",
        response_headers={"Content-Type": ["application/json"]},
        response_body=json.dumps(answer).encode(),
    )


def lookup_cost(size: int) -> float:
    source = ReplaySource(
        [Cassette(Path("c.yaml"), [interaction(n) for n in range(size)])], allow_repeats=True
    )
    context = ParseContext({}, Catalog())
    exchanges = [chat.CODEC.parse(body(n), context) for n in range(min(size, 200))]

    async def run() -> float:
        started = time.perf_counter()
        for exchange in itertools.islice(itertools.cycle(exchanges), 5000):
            assert await source.plan(exchange, b"") is not None
        return (time.perf_counter() - started) / 5000

    return asyncio.run(run())


def save_cost(size: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        cassette = Cassette(path, [interaction(n) for n in range(size)])
        started = time.perf_counter()
        text = CassetteFile.dumps(cassette)
        refuse_leaks(path, text, Scrubber())
        CassetteFile.save(path, text)
        return time.perf_counter() - started, path.stat().st_size


def appending_cost(size: int, saves: int = 5) -> tuple[float, float, int]:
    """`new_episodes` into a cassette of `size` interactions: opening it to record (loading it
    and finding where new items go in its own text), then the median of `saves` saves of one
    new interaction each (the splice, its check and the secret scan, the atomic write)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        CassetteFile.save(
            path, CassetteFile.dumps(Cassette(path, [interaction(n) for n in range(size)]))
        )
        started = time.perf_counter()
        recorder = CassetteRecorder(
            path, RecordMode.NEW_EPISODES, CassetteFile.load(path, keep_raw=True), Scrubber()
        )
        opened = time.perf_counter() - started

        async def record() -> list[float]:
            times = []
            for n in range(saves):
                started = time.perf_counter()
                assert recorder.add(interaction(size + n))
                await recorder.flush()
                times.append(time.perf_counter() - started)
            return times

        times = asyncio.run(record())
        assert len(CassetteFile.load(path).interactions) == size + saves
        assert not path.with_name("c.yaml.bak").exists()  # (appended in its own text)
        return opened, statistics.median(times), path.stat().st_size


async def concurrent_recording(count: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as folder, paced_upstream() as upstream:
        path = Path(folder) / "busy.yaml"
        with MockServer(
            cassette=str(path), record_mode="once", upstream=upstream.url, log_requests=False
        ) as server:
            async with httpx.AsyncClient(timeout=30) as client:
                started = time.perf_counter()
                await asyncio.gather(
                    *(
                        client.post(server.url + "/chat/completions", json=body(n))
                        for n in range(count)
                    )
                )
                elapsed = time.perf_counter() - started
            saves = server.state.decider.sources[-1].recorder.saves  # type: ignore[attr-defined]
        assert len(CassetteFile.load(path).interactions) == count
        return elapsed, saves


def arrivals(url: str) -> list[float]:
    times = []
    request = {**body(0), "stream": True, "max_tokens": 40}
    with httpx.stream("POST", url + "/chat/completions", json=request) as response:
        start = time.monotonic()
        for line in response.iter_lines():
            if line.startswith("data:"):
                times.append(time.monotonic() - start)
    return times


def gap_fidelity(runs: int) -> list[float]:
    errors = []
    with tempfile.TemporaryDirectory() as folder, paced_upstream(ttft=0.2, gaps=(0.01, 0.06)) as up:
        path = Path(folder) / "paced.yaml"
        with MockServer(
            cassette=str(path), record_mode="once", upstream=up.url, log_requests=False
        ) as rec:
            arrivals(rec.url)
        offsets = CassetteFile.load(path).interactions[0].timing.events
        assert offsets is not None
        for _ in range(runs):
            with MockServer(cassette=str(path), replay_speed=1.0, log_requests=False) as server:
                got = arrivals(server.url)
            pairs = zip(itertools.pairwise(offsets), itertools.pairwise(got), strict=True)
            errors += [abs((b - a) - (d - c)) for (a, b), (c, d) in pairs]
    return errors


def main() -> None:
    for size in (10, 1_000, 10_000):
        print(
            f"replay lookup, {size:>6} interactions: {lookup_cost(size) * 1e6:7.1f} us per request"
        )
    for size in (10, 100, 1_000):
        seconds, size_bytes = save_cost(size)
        print(
            f"save (dump + scan + atomic write), {size:>5} interactions "
            f"({size_bytes / 1e6:.1f} MB): {seconds * 1000:7.1f} ms"
        )
    for size in (100, 1_000, 3_000):
        opened, saved, size_bytes = appending_cost(size)
        print(
            f"new_episodes into {size:>5} interactions ({size_bytes / 1e6:.1f} MB): "
            f"opening {opened * 1000:7.1f} ms, a save {saved * 1000:7.1f} ms"
        )
    for count in (50, 200):
        elapsed, saves = asyncio.run(concurrent_recording(count))
        rate = count / elapsed
        print(f"{count} concurrent recordings: {elapsed:.2f} s, {rate:.0f}/s, {saves} saves")
    errors = gap_fidelity(5)
    median, p99 = statistics.median(errors), sorted(errors)[int(len(errors) * 0.99)]
    print(
        f"speed-1 gap error over {len(errors)} gaps: median {median * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {max(errors) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
