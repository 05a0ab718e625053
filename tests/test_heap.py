"""`mockai serve` hands its heap's free pages back once a load is over (mockai/server/heap.py).

The rule that decides when (`IdleWatch`) is held to its invariants over arbitrary request counts;
the loop that applies it is driven period by period (no clock involved); and a real `mockai serve`
under a concurrent embeddings and Responses-stream load, as bench/perf.py's, is seen giving the
memory back once it goes idle (its resident size stays flat without the trim: measured at 0.0 MiB
of drop on the code before it, 4-5 MiB with it).
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from collections.abc import Iterator

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from service_support import ServeProcess

from mockai.server import heap


def _counters() -> st.SearchStrategy[list[int]]:
    """What a period-by-period reading of the request counter can look like: it never goes down,
    and it often stays put (idle periods) or moves by a lot (bursts)."""
    return st.lists(st.sampled_from([0, 0, 0, 1, 7]), max_size=60).map(
        lambda steps: [sum(steps[:i]) for i in range(len(steps) + 1)]
    )


@given(_counters())
def test_the_watch_trims_once_per_quiet_spell_after_traffic_and_never_while_busy(
    readings: list[int],
) -> None:
    watch = heap.IdleWatch(readings[0])
    trims = [watch.trim_now(count) for count in readings[1:]]
    last_trim_at = 0  # index into readings of the reading the last trim followed
    for index, trimmed in enumerate(trims, start=1):
        moved_now = readings[index] != readings[index - 1]
        moved_since_trim = readings[index - 1] != readings[last_trim_at]
        if trimmed:
            assert not moved_now  # never while requests come in
            assert moved_since_trim  # only after some came since the last trim
            last_trim_at = index
        else:
            # A quiet period after traffic always trims (liveness).
            assert moved_now or not moved_since_trim
    if readings[-1] == readings[0]:
        assert not any(trims)  # no traffic: nothing to give back


def test_an_idle_server_trims_after_each_burst_and_not_in_between() -> None:
    # One reading per period: a burst (1 -> 5), a quiet spell of three periods, another burst,
    # one quiet period.
    readings = iter([0, 1, 5, 5, 5, 5, 9, 12, 12])
    trims: list[int] = []
    seen: list[int] = []

    def requests_so_far() -> int:
        try:
            seen.append(next(readings))
        except StopIteration:
            raise asyncio.CancelledError from None  # the server stopping
        return seen[-1]

    def trim() -> bool:
        trims.append(seen[-1])
        return True

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(heap.trim_when_idle(requests_so_far, period=0, trim=trim))
    assert trims == [5, 12]


def test_a_failing_trim_task_is_reported_not_silent(caplog: pytest.LogCaptureFixture) -> None:
    def trim() -> bool:
        raise OSError("no heap here")

    async def run() -> None:
        readings = iter([0, 1, 1])
        task = asyncio.create_task(heap.trim_when_idle(lambda: next(readings), period=0, trim=trim))
        task.add_done_callback(heap.report_failure)
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)  # (done-callbacks run on the next loop iteration)

    asyncio.run(run())
    assert "the heap trimming stopped" in caplog.text and "no heap here" in caplog.text


def _resident_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def _load(base_url: str, pid: int) -> float:
    """200 embeddings requests of 16 never-seen inputs, then 200 Responses streams, 64 at once;
    the server's resident size once they are done, read while a request still arrives every
    0.2 s (so that it cannot have trimmed yet, however slowly this client finished). Those
    requests come from a thread of their own: this loop, parsing 64 answers of 16 x 1536 floats
    at once on a busy machine, could go more than the server's idle second between two of
    them, and the server then trimmed in the middle of the load (a CI run saw 0.1 MiB left to
    hand back)."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    words = random.Random(7)
    limit = asyncio.Semaphore(64)

    async def embed() -> None:
        inputs = [" ".join(f"w{words.randrange(10**6)}" for _ in range(15)) for _ in range(16)]
        async with limit:
            await client.embeddings.create(model="text-embedding-3-small", input=inputs)

    async def stream() -> None:
        async with limit:
            events = await client.responses.create(model="gpt-4o-mini", input="hi", stream=True)
            async for _ in events:
                pass

    done = threading.Event()

    def keep_arriving() -> None:
        with openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0) as pinger:
            while not done.wait(0.2):
                pinger.models.list()

    arriving = threading.Thread(target=keep_arriving, daemon=True)
    arriving.start()
    try:
        await asyncio.gather(*(embed() for _ in range(200)))
        await asyncio.gather(*(stream() for _ in range(200)))
        loaded = _resident_mib(pid)
    finally:
        done.set()
        arriving.join(timeout=30)
        await client.close()
    return loaded


@pytest.fixture
def serve() -> Iterator[ServeProcess]:
    # A small journal: the bodies it drops are what leaves holes in the heap.
    with ServeProcess(["--quiet"], env={"MOCKAI_JOURNAL_BYTES": str(1 << 20)}) as process:
        yield process


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or heap._glibc() is None, reason="glibc and /proc"
)
def test_mockai_serve_gives_freed_memory_back_once_the_load_is_over(serve: ServeProcess) -> None:
    assert serve.process is not None
    pid = serve.process.pid
    loaded = asyncio.run(_load(serve.url, pid))
    settled = loaded
    deadline = time.monotonic() + 10 * heap.IDLE_SECONDS
    while time.monotonic() < deadline and loaded - settled < 1.0:
        time.sleep(0.2)
        settled = _resident_mib(pid)
    assert loaded - settled >= 1.0, f"resident {loaded:.1f} MiB after the load, {settled:.1f} later"


def _minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rpartition(")")[2].split()[7])  # minflt, after the name


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or heap._glibc() is None, reason="glibc and /proc"
)
def test_an_answer_under_a_mebibyte_is_written_from_resident_pages(serve: ServeProcess) -> None:
    """An answer of 128 KiB to 1 MiB (and aiohttp's join of it to its head) comes from the heap,
    whose pages are resident: with the threshold at 128 KiB each was a fresh mapping whose pages
    faulted in as it was written (79 faults a request; 0.2 at 1 MiB)."""
    assert serve.process is not None
    pid = serve.process.pid
    client = openai.OpenAI(base_url=serve.url, api_key="sk-test", max_retries=0)
    inputs = [f"input number {n} in a batch of sixteen" for n in range(16)]

    def embed() -> int:
        raw = client.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input=inputs, encoding_format="float"
        )
        return len(raw.http_response.content)

    size = max(embed() for _ in range(20))  # the answer kept, the heap grown to the load
    assert 128 * 1024 < size < heap.MMAP_THRESHOLD
    before = _minor_faults(pid)
    for _ in range(100):
        embed()
    per_request = (_minor_faults(pid) - before) / 100
    client.close()
    assert per_request < 8, f"{per_request:.1f} page faults a request"
