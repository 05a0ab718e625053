"""The intake: a burst's bytes reach aiohttp a few reads per loop iteration, never reordered,
never lost, and nothing waits outside a burst (mockai/server/intake.py).

The properties drive an `Intake` on a scripted loop (each tick is one iteration: it runs what
the iteration before scheduled); the server test sends a burst of pipelined requests to a real
server.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any, BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai.server.background import MockServer
from mockai.server.intake import Intake


class ScriptedLoop:
    """`call_soon` whose callbacks run at the next `tick` (an event-loop iteration)."""

    def __init__(self) -> None:
        self.scheduled: list[Callable[[], None]] = []
        self.iteration = 0

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.scheduled.append(callback)

    def tick(self) -> None:
        self.iteration += 1
        due, self.scheduled = self.scheduled, []
        for callback in due:
            callback()


class Recorder:
    """A connection's protocol: what it was handed, and when."""

    def __init__(self, name: int, log: list[tuple[int, int, bytes, bool]], loop: ScriptedLoop):
        self.name, self.log, self.loop = name, log, loop
        self.received: list[bytes] = []
        self.flushing = False

    def data_received(self, data: bytes) -> None:
        self.received.append(data)
        self.log.append((self.loop.iteration, self.name, data, self.flushing))

    def __repr__(self) -> str:  # (hypothesis prints it when a property fails)
        return f"Recorder({self.name})"


# One step of the script: a read of some size for a connection, that connection's end (EOF or
# close: the intake hands it what waits first), or the loop going round.
Step = tuple[str, int, int]
reads = st.tuples(st.just("read"), st.integers(0, 5), st.integers(1, 60))
steps = st.lists(
    st.one_of(
        reads,
        reads,  # (reads come in runs: bursts longer than an iteration takes in)
        reads,
        st.tuples(st.just("end"), st.integers(0, 5), st.just(0)),
        st.tuples(st.just("tick"), st.just(0), st.just(0)),
    ),
    max_size=120,
)
BYTE_BOUND = 100  # (the server's is 1 MiB; a small one here, so scripts cross it)


def _run(script: list[Step], per_iteration: int) -> dict[str, Any]:
    loop = ScriptedLoop()
    intake = Intake(loop.call_soon, per_iteration, BYTE_BOUND)
    over_bound: set[int] = set()  # iterations that began with more than the bound waiting
    log: list[tuple[int, int, bytes, bool]] = []
    receivers = [Recorder(n, log, loop) for n in range(6)]
    offered: dict[int, list[bytes]] = {n: [] for n in range(6)}
    ended: set[int] = set()
    order: list[bytes] = []  # every read, in the order it was offered
    for number, (kind, name, size) in enumerate(script):
        receiver = receivers[name]
        if kind == "tick":
            if intake.waiting_bytes > BYTE_BOUND:
                over_bound.add(loop.iteration + 1)
            loop.tick()
            # After every iteration, what waits is within the byte bound.
            assert intake.waiting_bytes <= BYTE_BOUND
        elif name in ended:
            continue  # a closed connection reads nothing more
        elif kind == "read":
            data = f"{name}:{number}:".encode().ljust(size, b".")
            offered[name].append(data)
            order.append(data)
            intake.offer(receiver, data)
        else:
            receiver.flushing = True
            intake.flush(receiver)
            receiver.flushing = False
            ended.add(name)
            # Everything it sent before its end has reached it, in order.
            assert receiver.received == offered[name]
    # The loop goes round until the intake is idle: a bounded number of iterations, after
    # which it schedules nothing (an idle server does not spin).
    for _ in range(len(order) // per_iteration + 3):
        if intake.waiting_bytes > BYTE_BOUND:
            over_bound.add(loop.iteration + 1)
        loop.tick()
    assert intake.waiting_bytes == 0
    return {
        "over_bound": over_bound,
        "loop": loop,
        "intake": intake,
        "log": log,
        "receivers": receivers,
        "offered": offered,
        "order": order,
    }


@settings(max_examples=300, deadline=None)
@given(script=steps, per_iteration=st.integers(1, 5))
def test_every_read_arrives_once_in_order_a_few_per_iteration(
    script: list[Step], per_iteration: int
) -> None:
    run = _run(script, per_iteration)
    loop, intake, log = run["loop"], run["intake"], run["log"]
    # Nothing lost, nothing doubled, no connection's reads reordered.
    for receiver in run["receivers"]:
        assert receiver.received == run["offered"][receiver.name]
    assert intake.waiting == 0
    assert loop.scheduled == []
    # At most `per_iteration` reads handed in per iteration (a connection's end may hand in
    # more: what it sent must come before its end; and past the byte bound, everything goes).
    per_tick: dict[int, int] = {}
    for iteration, _, _, flushed in log:
        if not flushed:
            per_tick[iteration] = per_tick.get(iteration, 0) + 1
    assert all(
        count <= per_iteration
        for iteration, count in per_tick.items()
        if iteration not in run["over_bound"]
    )
    # Nothing overtakes: apart from what an end hands in early, reads go in as they came.
    not_flushed = [data for _, _, data, flushed in log if not flushed]
    flushed_early = {data for _, _, data, flushed in log if flushed}
    assert not_flushed == [data for data in run["order"] if data not in flushed_early]


@settings(max_examples=200, deadline=None)
@given(reads=st.integers(0, 40), per_iteration=st.integers(1, 10))
def test_a_burst_goes_in_per_iteration_and_nothing_waits_outside_one(
    reads: int, per_iteration: int
) -> None:
    loop = ScriptedLoop()
    intake = Intake(loop.call_soon, per_iteration)
    log: list[tuple[int, int, bytes, bool]] = []
    receiver = Recorder(0, log, loop)
    for number in range(reads):
        intake.offer(receiver, b"%d" % number)
    # The first `per_iteration` at once; then exactly `per_iteration` an iteration.
    assert len(receiver.received) == min(reads, per_iteration)
    while intake.waiting:
        before = len(receiver.received)
        loop.tick()
        assert len(receiver.received) - before == min(per_iteration, reads - before)
    assert receiver.received == [b"%d" % n for n in range(reads)]
    # Once it is drained, a read is handed in at once, as outside any burst.
    loop.tick()
    loop.tick()
    intake.offer(receiver, b"late")
    assert receiver.received[-1] == b"late"


def test_many_uploads_at_once_cannot_pile_up() -> None:
    """20 connections streaming a body each, one 100 KB read per connection per iteration: far
    more than 8 reads an iteration. What waits stays within the byte bound (without it, 1.2 MB
    more would wait after every iteration), and every byte arrives in order."""
    loop = ScriptedLoop()
    intake = Intake(loop.call_soon)
    log: list[tuple[int, int, bytes, bool]] = []
    receivers = [Recorder(n, log, loop) for n in range(20)]
    chunk = 100_000
    for iteration in range(10):
        for receiver in receivers:
            intake.offer(receiver, bytes([iteration]) * chunk)
        loop.tick()
        assert intake.waiting_bytes <= intake.most_waiting_bytes
    while intake.waiting:
        loop.tick()
    for receiver in receivers:
        assert receiver.received == [bytes([n]) * chunk for n in range(10)]


def test_a_receiver_that_raises_strands_nothing_and_lets_nothing_overtake() -> None:
    loop = ScriptedLoop()
    intake = Intake(loop.call_soon, 2)
    got: list[bytes] = []

    class Broken:
        def data_received(self, data: bytes) -> None:
            raise RuntimeError("a bug in a protocol")

    class Fine:
        def data_received(self, data: bytes) -> None:
            got.append(data)

    fine = Fine()
    intake.offer(fine, b"first")
    intake.offer(fine, b"second")  # (the iteration's two)
    intake.offer(Broken(), b"boom")
    intake.offer(fine, b"after")
    with pytest.raises(RuntimeError):
        loop.tick()  # (the loop logs it) ... with one read of the iteration's two used,
    intake.offer(fine, b"late")  # and "after" still waiting: "late" must not overtake it
    loop.tick()  # ... and the next iteration goes on
    assert got == [b"first", b"second", b"after", b"late"]
    assert intake.waiting == 0


def test_per_iteration_must_be_positive() -> None:
    with pytest.raises(ValueError, match="per_iteration"):
        Intake(lambda callback: None, 0)


# --- a real server ------------------------------------------------------------------------------


def read_raw_response(reader: BinaryIO) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length from a connection's buffered reader (several
    pipelined ones can be read in turn): its status and body."""
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, reader.read(length)


def _read_response(reader: BinaryIO) -> tuple[int, dict[str, Any]]:
    status, body = read_raw_response(reader)
    return status, json.loads(body)


def model_get(name: str) -> bytes:
    return f"GET /v1/models/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def test_a_burst_of_pipelined_requests_is_answered_in_order() -> None:
    """40 connections write 3 requests each at once, far more than one iteration takes in:
    every answer comes back, on its connection, in the order asked."""
    with MockServer() as server:
        connections = [
            socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(40)
        ]
        try:
            names = [[f"ft:gpt-4o-mini:burst-{c}-{r}" for r in range(3)] for c in range(40)]
            for sock, asked in zip(connections, names, strict=True):
                sock.sendall(b"".join(model_get(name) for name in asked))
            for sock, asked in zip(connections, names, strict=True):
                reader = sock.makefile("rb")
                for name in asked:
                    status, body = _read_response(reader)
                    assert (status, body["id"]) == (200, name)
        finally:
            for sock in connections:
                sock.close()
        assert len(server.journal) == 120
