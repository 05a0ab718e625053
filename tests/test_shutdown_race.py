"""A shutdown whose wait for the answer in flight ends just as that answer ends.

aiohttp's connection shutdown waits on a future for the handler still running; the handler's end
sets that future's result. At mockai's grace both happen at once (aiohttp's shutdown timeout is
the grace, and server/lifecycle.py cancels the cleanup then): when the wait is cancelled first
and the handler ends before the shutdown runs again, aiohttp set the result of a cancelled
future and logged an InvalidStateError traceback (seen in CI at a plain SIGTERM with --grace).
This drives that order exactly, on mockai's own connection protocol, through aiohttp's way (a
request with `Expect: 100-continue`, which the lane leaves to aiohttp).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web

from mockai.server import lane
from mockai.server.unreadable import handler_factory


@pytest.mark.asyncio
async def test_an_answer_ending_as_the_shutdown_stops_waiting_logs_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        started.set()
        await release.wait()
        return web.Response(text="done")

    app = web.Application()
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    loop = asyncio.get_running_loop()
    assert runner.server is not None
    protocol = handler_factory(runner.server, loop, lane.protocol_class())
    server = await loop.create_server(protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    caplog.set_level(logging.DEBUG)
    try:
        async with aiohttp.ClientSession() as session:
            answer = asyncio.ensure_future(
                session.post(f"http://127.0.0.1:{port}/slow", data=b"x", expect100=True)
            )
            await asyncio.wait_for(started.wait(), 10)
            (connection,) = runner.server.connections
            shutdown = asyncio.ensure_future(connection.shutdown(timeout=30))
            for _ in range(100):  # (until the shutdown waits on the answer in flight)
                if connection._handler_waiter is not None:
                    break
                await asyncio.sleep(0)
            assert connection._handler_waiter is not None
            # The answer's end is queued first, then the shutdown's wait is cancelled: the
            # handler finishes before the shutdown learns its wait ended.
            release.set()
            shutdown.cancel()
            with pytest.raises(asyncio.CancelledError):
                await shutdown
            response = await asyncio.wait_for(answer, 10)
            assert response.status == 200
            assert await response.text() == "done"
            response.release()
    finally:
        server.close()
        await server.wait_closed()
        await runner.cleanup()
    problems = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not problems, [record.getMessage() for record in problems]
    assert "InvalidStateError" not in caplog.text
