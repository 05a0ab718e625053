"""The outbox: a connection's writes wait for the end of the loop iteration when there is
something to batch them with, and reach its transport whole, in order, before anything else
done to it (mockai/delivery/outbox.py).

The property drives `HeldTransport`s sharing one `Outbox` on a scripted loop (each tick is one
iteration) over transports that record what reached them; the server tests send through a real
server what the outbox must not hold back or reorder.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_intake import ScriptedLoop, model_get, read_raw_response

from mockai.config import Config
from mockai.delivery.deliver import deliver
from mockai.delivery.faults import Faults
from mockai.delivery.outbox import HOLD_BYTES, HeldTransport, Outbox, hold_writes
from mockai.delivery.timing import Fixed, StreamTiming
from mockai.pipeline.reply import Timing
from mockai.server import sites
from mockai.server.app import create_app
from mockai.server.background import MockServer
from mockai.server.state import STATE
from mockai.wire.outgoing import Body, EventStream, Outgoing, Relay


class Wire:
    """A connection's transport: what reached it, in order; `closing` once it was closed or
    aborted, or the peer went away."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.events.append(("bytes" if not self.closing else "late", bytes(data)))

    def writelines(self, list_of_data: list[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))  # (one call, as the transports make it)

    def close(self) -> None:
        self.events.append(("close", b""))
        self.closing = True

    def abort(self) -> None:
        self.events.append(("abort", b""))
        self.closing = True

    def write_eof(self) -> None:
        self.events.append(("eof", b""))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000)}.get(name, default)

    @property
    def received(self) -> bytes:
        """The bytes written while the connection was open."""
        return b"".join(data for kind, data in self.events if kind == "bytes")


CONNECTIONS = 3
_sizes = st.one_of(
    st.integers(0, 200),
    st.integers(0, 200),
    st.integers(HOLD_BYTES - 300, HOLD_BYTES + 300),  # (across the bound, alone or added up)
)
_kinds = st.sampled_from(["bytes", "bytearray", "memoryview"])
_conn = st.integers(0, CONNECTIONS - 1)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("write"), _conn, st.lists(st.tuples(_sizes, _kinds), min_size=1)),
        st.tuples(st.just("write"), _conn, st.lists(st.tuples(_sizes, _kinds), min_size=1)),
        st.tuples(st.just("writelines"), _conn, st.lists(st.tuples(_sizes, _kinds))),
        st.tuples(st.just("holding"), _conn, st.booleans()),
        st.tuples(st.just("expect"), _conn, st.none()),  # (a request came on it)
        st.tuples(st.just("expect"), _conn, st.none()),
        st.tuples(st.just("tick"), st.just(0), st.none()),
        st.tuples(st.sampled_from(["close", "abort", "eof", "gone"]), _conn, st.none()),
    ),
    max_size=60,
)


def _buffer(size: int, kind: str, number: int) -> bytes | bytearray | memoryview:
    data = bytes([number % 251]) * size
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)[: max(size - 1, 0)] if size % 2 else memoryview(data)
    return data


@settings(max_examples=400, deadline=None)
@given(script=steps)
@example(script=[("expect", 0, None), ("write", 0, [(0, "bytes")]), ("writelines", 0, [])])
def test_every_write_reaches_its_transport_once_in_order_and_before_its_end(
    script: list[tuple[str, int, Any]],
) -> None:
    loop = ScriptedLoop()
    outbox = Outbox(loop.call_soon)
    wires = [Wire() for _ in range(CONNECTIONS)]
    held = [HeldTransport(wire, outbox) for wire in wires]  # type: ignore[arg-type]
    written: list[bytes] = [b""] * CONNECTIONS  # everything written while the wire was open
    late = [0] * CONNECTIONS  # bytes written once the wire was closing
    lost = [False] * CONNECTIONS  # the peer went away with bytes held: those may be lost
    number = 0
    for kind, name, arg in script:
        wire, transport = wires[name], held[name]
        if kind == "tick":
            loop.tick()
            # After every iteration nothing is held, and each wire has all its bytes.
            assert outbox.holding == 0
            for n in range(CONNECTIONS):
                assert held[n].get_write_buffer_size() == 0
                assert lost[n] or wires[n].received == written[n]
        elif kind in ("write", "writelines"):
            buffers = []
            for size, buffer_kind in arg:
                number += 1
                buffers.append(_buffer(size, buffer_kind, number))
            before = transport.get_write_buffer_size()
            # Something to batch it with: its own held bytes, others' this iteration, or
            # another connection's answer to come.
            others = outbox.expecting - transport.expecting
            batching = bool(before or outbox.holding or others)
            if kind == "write":
                for buffer in buffers:
                    transport.write(buffer)
            else:
                transport.writelines(buffers)
            sent = b"".join(bytes(buffer) for buffer in buffers)
            for buffer in buffers:
                if isinstance(buffer, bytearray):
                    buffer[:] = b"x" * len(buffer)  # (changed once written: what went stays)
            if not wire.closing:
                written[name] += sent
                waiting = transport.get_write_buffer_size()
                assert waiting < HOLD_BYTES  # (more goes through at once)
                if not transport.holding:
                    assert waiting == 0  # a scheduled answer's writes are due as made
                elif not batching:
                    assert waiting == 0  # nobody to batch with: through at once
                elif before + len(sent) < HOLD_BYTES:
                    # Held: not on the wire before the iteration ends.
                    assert waiting == before + len(sent)
                assert (
                    wire.received + written[name][len(written[name]) - waiting :] == (written[name])
                )
            else:
                # Passed on at once: the closing transport's own answer, as without the outbox.
                late[name] += len(sent)
            if sent:
                assert not transport.expecting  # (it is being answered)
        elif kind == "expect":
            transport.expect()
            assert transport.expecting
        elif kind == "holding":
            hold_writes(transport, arg)
            assert transport.holding is arg
        elif kind == "gone":
            if transport.get_write_buffer_size():
                lost[name] = True
            wire.closing = True
            transport.forget()  # (the protocol's connection_lost)
        else:
            if not wire.closing:
                # A close, an abort or a half-close comes after every byte written before it.
                {"close": transport.close, "abort": transport.abort, "eof": transport.write_eof}[
                    kind
                ]()
                assert wire.events[-1][0] == kind
                assert lost[name] or wire.received == written[name]
        # The count of connections waiting for an answer is theirs.
        assert outbox.expecting == sum(transport.expecting for transport in held)
    loop.tick()
    assert loop.scheduled == []  # (an idle outbox schedules nothing: no spinning)
    for n in range(CONNECTIONS):
        assert lost[n] or wires[n].received == written[n]
        # Nothing held reaches a wire once it is closing (it would only be counted and logged):
        # what did was written to it then.
        assert sum(len(data) for kind, data in wires[n].events if kind == "late") == late[n]


def test_writes_of_one_iteration_go_out_together_after_it() -> None:
    """The point of the outbox: answers made in one iteration, while others are to come, reach
    the sockets after all of them, one write per connection, not one by one as they are made."""
    loop = ScriptedLoop()
    outbox = Outbox(loop.call_soon)
    wires = [Wire() for _ in range(4)]
    held = [HeldTransport(wire, outbox) for wire in wires]  # type: ignore[arg-type]
    for transport in held:
        transport.expect()  # four requests came
    for n, transport in enumerate(held):
        transport.writelines([b"HTTP/1.1 200 OK\r\n\r\n", b"answer %d" % n])
    assert all(wire.events == [] for wire in wires)
    assert len(loop.scheduled) == 1  # one flush for the iteration, whatever the connections
    loop.tick()
    assert [wire.events for wire in wires] == [
        [("bytes", b"HTTP/1.1 200 OK\r\n\r\nanswer %d" % n)] for n in range(4)
    ]
    assert outbox.expecting == 0


def test_a_lone_answer_goes_through_at_once() -> None:
    """Nobody to batch with (a test suite's one client): no wait, no callback, one write."""
    loop = ScriptedLoop()
    outbox = Outbox(loop.call_soon)
    wire, other = Wire(), Wire()
    transport = HeldTransport(wire, outbox)  # type: ignore[arg-type]
    # (connected, asking nothing)
    idle = HeldTransport(other, outbox)  # type: ignore[arg-type]
    transport.expect()
    transport.writelines([b"HTTP/1.1 200 OK\r\n\r\n", b"answer"])
    assert wire.events == [("bytes", b"HTTP/1.1 200 OK\r\n\r\nanswer")]
    assert loop.scheduled == []
    # Once another client waits for an answer, this one's next answer waits for the batch.
    idle.expect()
    transport.expect()
    transport.write(b"next")
    assert wire.received == b"HTTP/1.1 200 OK\r\n\r\nanswer"
    idle.forget()  # (that client went away: the held answer still goes when the batch does)
    loop.tick()
    assert wire.received.endswith(b"next")


def test_a_scheduled_answer_writes_at_once_and_the_next_answer_waits_again() -> None:
    loop = ScriptedLoop()
    wire = Wire()
    outbox = Outbox(loop.call_soon)
    transport = HeldTransport(wire, outbox)  # type: ignore[arg-type]
    HeldTransport(Wire(), outbox).expect()  # (another client waits: answers are batched)
    transport.write(b"held")
    hold_writes(transport, False)  # a paced stream: each event is due as it is written
    transport.write(b" event")
    assert wire.received == b"held event"  # (what waited went first)
    transport.writelines([b" head", b" first"])  # (a stream's head and first event)
    assert wire.events[-1] == ("bytes", b" head first")  # one call, as aiohttp made it
    hold_writes(transport, True)
    transport.write(b" next")
    assert wire.received == b"held event head first"
    loop.tick()
    assert wire.received == b"held event head first next"
    hold_writes(object(), False)  # (any other transport: nothing to do)


def test_what_a_connection_held_is_dropped_once_its_client_is_gone() -> None:
    """A client that went away while its answer waited: the transport would refuse the bytes
    (counting and logging the write), so they are dropped; the others' still go."""
    loop = ScriptedLoop()
    outbox = Outbox(loop.call_soon)
    wires = [Wire(), Wire()]
    held = [HeldTransport(wire, outbox) for wire in wires]  # type: ignore[arg-type]
    for transport in held:
        transport.expect()
    for transport in held:
        transport.write(b"answer")
    wires[0].closing = True  # the peer reset the connection
    held[0].forget()
    loop.tick()
    assert wires[0].events == []
    assert wires[1].received == b"answer"


def test_a_failing_transport_does_not_strand_the_others(caplog: pytest.LogCaptureFixture) -> None:
    loop = ScriptedLoop()
    outbox = Outbox(loop.call_soon)

    class Broken(Wire):
        def write(self, data: bytes | bytearray | memoryview) -> None:
            raise RuntimeError("Cannot call write() after write_eof()")

    broken, fine = Broken(), Wire()
    first = HeldTransport(broken, outbox)  # type: ignore[arg-type]
    second = HeldTransport(fine, outbox)  # type: ignore[arg-type]
    first.expect()
    second.expect()
    first.write(b"lost")
    second.write(b"kept")
    loop.tick()
    assert fine.received == b"kept"
    assert "writing a held answer failed" in caplog.text


# --- what delivery tells the connection ---------------------------------------------------------

_FRAMES = [b'data: {"n":1}\n\n', b"data: [DONE]\n\n"]
_PACED = StreamTiming(chunk_delay=Fixed(0.001))


async def _chunks() -> AsyncIterator[bytes]:
    for frame in _FRAMES:
        yield frame


@pytest.mark.parametrize(
    ("timing", "outgoing", "holding"),
    [
        (Timing(), Body(200, b"{}"), True),
        (Timing(latency=Fixed(0.001)), Body(200, b"{}"), False),
        (Timing(), EventStream(frames=_FRAMES), True),  # unpaced: written at once anyway
        (Timing(stream=_PACED), EventStream(frames=_FRAMES), False),
        (Timing(), EventStream(frames=_FRAMES, offsets=[0.0, 0.001]), False),  # recorded pace
        (Timing(), Relay(200, _chunks()), False),  # an upstream's answer, at its own pace
    ],
)
def test_an_answer_keeping_a_schedule_writes_at_once_any_other_waits(
    timing: Timing, outgoing: Outgoing, holding: bool
) -> None:
    """`deliver` says, for each answer, whether the connection holds its writes: not when it
    keeps a schedule (latency, pacing) or relays an upstream's answer as it comes, whose writes
    are due as they are made."""

    async def delivered(was_holding: bool) -> bool:
        loop = asyncio.get_running_loop()
        transport = HeldTransport(Wire(), Outbox(loop.call_soon))  # type: ignore[arg-type]
        transport.holding = was_holding  # (the connection's last answer said the opposite)
        request = make_mocked_request("POST", "/v1/chat/completions", transport=transport)
        await deliver(
            request, outgoing, {}, arrived=time.monotonic(), timing=timing, faults=Faults()
        )
        return transport.holding

    assert asyncio.run(delivered(not holding)) is holding


# --- a real server ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["background", "asyncio"])
def test_many_connections_at_once_get_their_own_answers(where: str) -> None:
    """64 connections asking at once (several answers made per loop iteration, held and sent
    together), streams and JSON mixed, a paced stream among them: every answer is whole and
    its own. On a background server (uvloop, as the suite installs it), and on a server in the
    client's own loop, asyncio's (`StampedLoop`)."""

    async def ask_all(base_url: str) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with openai.AsyncOpenAI(
            base_url=base_url, api_key="sk-test", http_client=httpx.AsyncClient(limits=limits)
        ) as client:

            async def chat(n: int) -> tuple[int, str]:
                messages = [{"role": "user", "content": f"question {n}"}]
                if n % 3 == 0:
                    extra = {"x-mockai-stream": "chunk_delay=1ms"} if n % 9 == 0 else None
                    stream = await client.chat.completions.create(
                        model="gpt-4o-mini", messages=messages, stream=True, extra_headers=extra
                    )
                    parts = [
                        chunk.choices[0].delta.content or ""
                        async for chunk in stream
                        if chunk.choices
                    ]
                    return n, "".join(parts)
                completion = await client.chat.completions.create(
                    model="gpt-4o-mini", messages=messages
                )
                return n, completion.choices[0].message.content or ""

            first = await asyncio.gather(*(chat(n) for n in range(128)))
            again = await asyncio.gather(*(chat(n) for n in reversed(range(128))))
        # The same question gets the same answer (the seed's), streamed or not, whatever
        # else was written with it.
        answers = dict(first)
        assert len({text for _, text in first}) > 100
        for n, text in again:
            assert text == answers[n]
            assert text

    if where == "background":
        with MockServer() as server:
            asyncio.run(ask_all(server.url))
        return

    async def in_one_loop() -> None:
        async with MockServer() as server:
            await ask_all(server.url)

    sites.run_stamped(in_one_loop(), "asyncio")


def test_the_site_counts_the_clients_waiting_for_an_answer() -> None:
    """`expecting` is what decides between batching and writing at once: a connection counts
    from its first bytes until it is written to, or until it is gone (a client that went away
    mid-request must not make every later answer wait for a batch)."""

    async def check() -> None:
        app = create_app(Config(port=0))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = sites.StampingSite(runner, sites.listen("127.0.0.1", 0), app[STATE].arrivals)
        await site.start()
        outbox = site.outbox
        assert outbox is not None
        port = runner.addresses[0][1]

        async def until(expecting: int) -> None:
            deadline = time.monotonic() + 10
            while outbox.expecting != expecting and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            assert outbox.expecting == expecting

        try:
            _, gone = await asyncio.open_connection("127.0.0.1", port)
            gone.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")  # (half a head)
            await until(1)
            reader, asking = await asyncio.open_connection("127.0.0.1", port)
            asking.write(model_get("gpt-4o"))
            await reader.readuntil(b"\r\n\r\n")  # answered: no longer counted
            await until(1)
            gone.close()  # gone without an answer
            await until(0)
            asking.close()
        finally:
            await runner.cleanup()

    sites.run_stamped(check(), "asyncio")


def test_large_bodies_and_small_answers_on_one_connection_stay_in_order() -> None:
    """Pipelined on one connection: small answers (held) between a body over the hold bound
    (written through after what waits) and one over a megabyte (written a slice at a time):
    all arrive whole, in order."""
    models = ["gpt-4o-mini", "gpt-4o", "gpt-4.1"]
    with MockServer() as server:
        port = server.port
        requests = [
            model_get(models[0]),
            _post("/v1/embeddings", _embeddings(8)),  # ~150 KB
            model_get(models[1]),
            _post("/v1/embeddings", _embeddings(64)),  # ~1.2 MB
            model_get(models[2]),
        ]
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"".join(requests))
            reader = sock.makefile("rb")
            answers = [read_raw_response(reader) for _ in requests]
    assert [status for status, _ in answers] == [200] * 5
    bodies = [json.loads(body) for _, body in answers]
    assert [bodies[n]["id"] for n in (0, 2, 4)] == models
    assert len(answers[1][1]) > HOLD_BYTES and len(answers[3][1]) > 1 << 20
    for body, count in ((bodies[1], 8), (bodies[3], 64)):
        assert [item["index"] for item in body["data"]] == list(range(count))
        assert all(len(item["embedding"]) == 1536 for item in body["data"])


def _embeddings(inputs: int) -> str:
    texts = [f"document {n} about revenue" for n in range(inputs)]
    return json.dumps({"model": "text-embedding-3-small", "input": texts})


def _post(path: str, body: str) -> bytes:
    data = body.encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sk-test\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data
