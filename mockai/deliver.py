"""Write an answer to the socket, applying timing and transport faults.

The only stage that sleeps or touches the connection. Pacing follows an absolute schedule
(`start + ttft + i * chunk_delay`, with seeded jitter) rather than sleeping relative amounts, so
that errors do not accumulate over a long stream and timing stays accurate under load.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping

from aiohttp import web

from mockai.faults import Faults
from mockai.reply import Timing
from mockai.timing import StreamTiming
from mockai.wire.outgoing import Body, EventStream, Outgoing, Relay


def processing_ms(arrived: float) -> str:
    """The `openai-processing-ms` value: time since the request arrived."""
    return str(max(int((time.monotonic() - arrived) * 1000), 0))


async def deliver(
    request: web.Request,
    outgoing: Outgoing,
    headers: dict[str, str],
    *,
    arrived: float,
    timing: Timing,
    faults: Faults,
) -> web.StreamResponse:
    """Send `outgoing` for `request` with the given headers, timing and faults."""
    rng = random.Random(timing.seed)
    if timing.latency is not None:
        await asyncio.sleep(timing.latency.sample(rng))
    headers["openai-processing-ms"] = processing_ms(arrived)
    if isinstance(outgoing, Body):
        return _body(outgoing, headers)
    if isinstance(outgoing, Relay):
        return await _relay(request, outgoing, headers)
    return await _stream(request, outgoing, headers, timing, faults, rng)


async def _relay(
    request: web.Request, outgoing: Relay, headers: Mapping[str, str]
) -> web.StreamResponse:
    """Pass an upstream answer on as it arrives: the client sees the upstream's real timing."""
    response = web.StreamResponse(status=outgoing.status, headers={**outgoing.headers, **headers})
    response.headers["Content-Type"] = outgoing.content_type
    try:
        await response.prepare(request)
        async for chunk in outgoing.chunks:
            await response.write(chunk)
        await response.write_eof()
    finally:
        if outgoing.finish is not None:
            await outgoing.finish()
    return response


def _body(outgoing: Body, headers: Mapping[str, str]) -> web.Response:
    response = web.Response(
        status=outgoing.status, body=outgoing.body, headers={**headers, **outgoing.headers}
    )
    response.content_type = outgoing.content_type.split(";")[0]
    return response


async def _stream(
    request: web.Request,
    outgoing: EventStream,
    headers: Mapping[str, str],
    timing: Timing,
    faults: Faults,
    rng: random.Random,
) -> web.StreamResponse:
    response = web.StreamResponse(status=outgoing.status, headers={**headers, **outgoing.headers})
    response.headers["Content-Type"] = outgoing.content_type
    response.headers["Cache-Control"] = "no-cache"
    await response.prepare(request)
    if not timing.paced and outgoing.offsets is None:
        # Nothing to pace: one write is far cheaper than one per chunk, and the bytes are equal.
        await response.write(b"".join(outgoing.frames))
    else:
        await _paced(response, outgoing, timing.stream or StreamTiming(), rng)
    await response.write_eof()
    return response


async def _paced(
    response: web.StreamResponse, outgoing: EventStream, pacing: StreamTiming, rng: random.Random
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    ttft = pacing.ttft.sample(rng) if pacing.ttft is not None else 0.0
    due = start + ttft
    for index, frame in enumerate(outgoing.frames):
        if outgoing.offsets is not None:
            due = start + ttft + outgoing.offsets[index]
        elif index > 0 and pacing.chunk_delay is not None:
            gap = pacing.chunk_delay.sample(rng)
            if pacing.jitter:
                gap *= 1.0 + pacing.jitter * (2.0 * rng.random() - 1.0)
            due += max(gap, 0.0)
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await response.write(frame)
