"""The C heap of `mockai serve`: huge buffers kept out of it, its free pages handed back when idle.

Bodies of a few hundred bytes to 1 MiB (requests, chat answers, stream frames, embeddings
answers) come from glibc's heap. Once the journal and the caches drop them, their pages are
free but stay resident: the heap can only shrink from its top, and whatever is still alive
above the holes pins them. After a load test that leaves ~15 MiB (measured after every case
of `bench/perf.py`: 120 -> 105.6 MiB) that no request will touch until the next burst.
`malloc_trim(0)` hands those pages back (`MADV_DONTNEED`; the memory stays mapped, a page
faults back in when reused). Trimming on every request would pay those faults under load, so
the server trims once, after a second without a new request, and not again until traffic has
come and gone. (It watches arrivals: streams still running may free more after it trimmed,
handed back after the next burst; a client asking more often than once a second keeps it from
trimming at all.)

Both are no-ops where the C library is not glibc (macOS, musl, Windows).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
from collections.abc import Callable

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
# Buffers past this size get a mapping of their own, returned when freed; smaller ones come
# from the heap, whose pages are resident already (see keep_big_buffers_out_of_the_heap).
MMAP_THRESHOLD = 1024 * 1024

# How long the server must go without a new request before it trims (seconds).
IDLE_SECONDS = 1.0


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    # glibc has both; another C library named libc.so.6 (musl's is not) might not.
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def keep_big_buffers_out_of_the_heap() -> None:
    """Have glibc give every buffer over 1 MiB its own mapping, returned when freed.

    glibc raises its mmap threshold each time such a buffer is freed (up to 32 MiB), so after
    the first few huge answers (a file's content, thousands of embeddings) they would be carved
    from the heap, whose high-water mark stays resident. Fixing the threshold stops that.

    Not lower: at 128 KiB (until 2026-12-06) every answer between it and 1 MiB (an embeddings
    answer of 16 x 1536 floats is 320 KB, and aiohttp joins it to its head into one more) was a
    fresh mapping per request, its pages faulting in as they were written and unmapped after:
    79 page faults a request, 0.2 at 1 MiB, and the repeated embeddings request of
    bench/perf.py went 0.26x -> 0.47-0.51x of the bare app. What such a load leaves free in the
    heap is handed back once it is over (`trim_when_idle`).
    """
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def return_free_pages() -> bool:
    """Hand the heap's free pages back to the system (~2 ms for a 40 MiB heap); False when the
    C library cannot."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


class IdleWatch:
    """Says when to trim, from a counter of requests read once a period: after a period in which
    the counter did not move, if it moved since the last trim (an idle server trims once, not
    every period; a busy one never)."""

    def __init__(self, count: int) -> None:
        self._seen = count
        self._moved = False

    def trim_now(self, count: int) -> bool:
        """Whether to trim, given the counter at the end of this period."""
        if count != self._seen:
            self._seen = count
            self._moved = True
            return False
        if self._moved:
            self._moved = False
            return True
        return False


def report_failure(task: asyncio.Task[None]) -> None:
    """A done-callback for the `trim_when_idle` task: say why it stopped, if it failed (it
    should not; serving goes on without it)."""
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger("mockai").error(
            "mockai: the heap trimming stopped", exc_info=task.exception()
        )


async def trim_when_idle(
    requests_so_far: Callable[[], int],
    *,
    period: float = IDLE_SECONDS,
    trim: Callable[[], bool] = return_free_pages,
) -> None:
    """Run until cancelled: trim the heap each time the server has gone `period` seconds without
    a new request after some came (see the module)."""
    if _glibc() is None and trim is return_free_pages:
        return
    watch = IdleWatch(requests_so_far())
    while True:
        await asyncio.sleep(period)
        if watch.trim_now(requests_so_far()):
            trim()
