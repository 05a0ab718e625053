"""How a `mockai serve` process ends: within its grace, and with its parent.

A shutdown takes at most `--grace` seconds plus `ABORT_MARGIN`. aiohttp's own `shutdown_timeout`
is no such bound: it waits up to the timeout twice (for the handler, then for its task), a
timeout of 0 means none at all, and it does not know the lane's tasks (server/lane.py), which
answer streams outside aiohttp's connection task. So at the grace, every connection still open
is aborted here and the task answering it cancelled; the rest of the cleanup (cassettes
flushed) then has `ABORT_MARGIN` seconds.

A worker (`--workers N`) ends with its parent, even a parent killed outright (SIGKILL, the OOM
killer), which cannot pass a signal on: otherwise the workers kept serving the port, orphans
nothing stops. Each worker watches a pipe whose write end only the parent holds: its end of
file, when the parent is gone, stops the worker as SIGTERM would; on Linux the kernel also
sends the worker SIGTERM when its parent dies (PR_SET_PDEATHSIG). Either way the worker shuts
down as on SIGTERM, within its grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sys
from collections.abc import Callable

from aiohttp import web

# Seconds the cleanup may take once the connections still open at the grace were aborted: the
# app's cleanup hooks (a cassette written out). A cleanup still running then is cancelled.
ABORT_MARGIN = 1.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


async def shut_down(runner: web.AppRunner, grace: float) -> None:
    """`runner.cleanup()` (stop listening, close idle connections, let requests in flight finish,
    run the cleanup hooks) in at most `grace` + `ABORT_MARGIN` seconds from now."""
    server = runner.server  # (cleanup forgets it)
    cleanup = asyncio.ensure_future(runner.cleanup())
    done, _ = await asyncio.wait({cleanup}, timeout=max(grace, 0))
    if not done:
        _abort(server)
        done, _ = await asyncio.wait({cleanup}, timeout=ABORT_MARGIN)
    if not done:  # (a handler that outlived its cancellation, or a connection since accepted)
        _abort(server)
        cleanup.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await cleanup


def _abort(server: web.Server | None) -> None:
    """End every connection of `server` now: the task answering it is cancelled (a stream that
    sleeps between chunks would only see its connection gone at its next write) and the
    connection reset."""
    if server is None:
        return
    for connection in list(server.connections):
        # the lane's answer (server/lane.py), and aiohttp's task for the connection, which
        # awaits the handler's task (cancelled with it)
        for task in (getattr(connection, "_lane_task", None), connection._task_handler):
            if task is not None:
                task.cancel()
        transport = connection.transport
        if transport is not None:
            transport.abort()


# --- a worker ends with its parent -----------------------------------------------------------


def bind_to_parent(parent: int, line: tuple[int, int]) -> int:
    """In a worker just forked from `parent`: make its parent's death stop it, and return the
    file descriptor to watch for it (`watch_parent`). `line` is a pipe (read end, write end)
    the parent made before forking and holds the write end of until it exits. Exits at once if
    the parent is already gone."""
    read_end, write_end = line
    os.close(write_end)  # (only the parent may hold it: its exit is then the end of file)
    if sys.platform.startswith("linux"):
        import ctypes  # (only workers need it)

        # The kernel's own guarantee, the pipe's end of file being the portable one (and the
        # fallback where a sandbox refuses prctl): SIGTERM when the parent dies.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    # A parent that died before the prctl sent no signal (the pipe's end of file would stop
    # the worker, but only once it serves): it has been reparented (to init or a subreaper).
    if os.getppid() != parent:
        os._exit(0)
    return read_end


def watch_parent(line: int, stop: Callable[[], None]) -> None:
    """On the running loop, call `stop` once `line` (`bind_to_parent`) reaches its end of file:
    the parent is gone. (Anything else on the pipe means the same: only the parent writes.)"""
    loop = asyncio.get_running_loop()

    def gone() -> None:
        loop.remove_reader(line)  # (an end of file stays readable: stop watching)
        stop()

    loop.add_reader(line, gone)


def parent_gone(parent: int, line: int) -> bool:
    """In a worker (`bind_to_parent`): whether `parent` has died, not stopped it with SIGTERM.
    The pipe says so first (its end of file comes as the parent's files close, before the worker
    is handed to another parent); the parent closes its end only once its workers have ended."""
    if os.getppid() != parent:
        return True
    readable, _, _ = select.select([line], [], [], 0)
    return bool(readable)  # (only the parent could write: readable is the end of file)
