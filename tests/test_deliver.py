"""Delivery: the frame plan of each stream fault, the clock seam, held connections, turn-taking."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import conformance
import httpx
import openai
import pytest
from sdkcall import MESSAGES, attempts

from mockai import MockServer
from mockai.delivery.deliver import Delivery, malformed_frame, plan_writes
from mockai.delivery.faults import Faults
from mockai.wire.outgoing import EventStream

FRAMES = [b'data: {"n":%d}\n\n' % i for i in range(1, 6)] + [b"data: [DONE]\n\n"]
STREAM = EventStream(frames=FRAMES, tail=2)  # frames 5 (the finish chunk) and 6 complete it


def sent(faults: Faults) -> tuple[list[bytes], str | None]:
    writes, ending = plan_writes(STREAM, faults)
    return [w.data for w in writes], ending


def test_a_clean_stream_is_sent_whole() -> None:
    assert sent(Faults()) == (FRAMES, None)


@pytest.mark.parametrize(
    ("faults", "count", "ending"),
    [
        (Faults(truncate_after=2), 2, "truncate"),
        (Faults(truncate_after=10), 4, "truncate"),  # capped: the tail is never sent
        (Faults(disconnect_after=3), 3, "disconnect"),
        (Faults(stall_after=1), 1, "stall"),
        (Faults(error_event_after=4), 4, "error"),
        (Faults(disconnect_after=3, truncate_after=2), 2, "truncate"),  # the earliest cut wins
        (Faults(disconnect_after=2, truncate_after=2), 2, "disconnect"),
    ],
)
def test_cuts(faults: Faults, count: int, ending: str) -> None:
    frames, how = sent(faults)
    assert frames == FRAMES[:count]
    assert how == ending


def test_frame_faults() -> None:
    frames, _ = sent(Faults(duplicate_chunk=2))
    assert frames[1] == FRAMES[1] * 2
    frames, _ = sent(Faults(malformed_chunk=9))  # capped at the last frame before the tail
    assert frames[3] == malformed_frame(FRAMES[3]) and frames[:3] == FRAMES[:3]
    writes, _ = plan_writes(STREAM, Faults(split_chunk=1))
    assert [w.split for w in writes] == [True] + [False] * 5


def test_malformed_frames_are_complete_events_with_broken_json() -> None:
    assert malformed_frame(b'data: {"id":"chatcmpl-123","x":1}\n\n') == b'data: {"id":"chatcm\n\n'
    named = malformed_frame(b'event: response.created\ndata: {"type":"response.created"}\n\n')
    assert named == b'event: response.created\ndata: {"type":"resp\n\n'
    assert malformed_frame(b": keep-alive\n\n") == b'data: {"id":\n\n'


class RecordingClock:
    """A clock that never sleeps: it records every deadline, relative to the first one asked."""

    def __init__(self) -> None:
        self.deadlines: list[float] = []

    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        self.deadlines.append(deadline)


def test_the_clock_seam_lets_tests_check_timing_without_waiting() -> None:
    clock = RecordingClock()
    with conformance.checked_server(seed=4) as server, httpx.Client(base_url=server.url) as http:
        server.state.delivery.clock = clock
        start = time.monotonic()
        answer = http.post(
            "/chat/completions",
            json={"model": "m", "messages": MESSAGES, "stream": True, "max_tokens": 5},
            headers={"x-mockai-latency": "20s-30s", "x-mockai-stream": "ttft=2s,chunk_delay=1s"},
        )
        assert answer.status_code == 200
        assert time.monotonic() - start < 5  # nothing really waited
        (entry,) = attempts(server)
    latency = clock.deadlines[0] - entry.arrived
    assert 20 <= latency <= 30
    headers_at = clock.deadlines[0]
    frames = clock.deadlines[1:]
    assert frames[0] - headers_at == pytest.approx(2.0)
    assert [b - a for a, b in itertools.pairwise(frames)] == pytest.approx(
        [1.0] * (len(frames) - 1)
    )
    # The same seed and request sample the same latency on any server.
    again = RecordingClock()
    with conformance.checked_server(seed=4) as server, httpx.Client(base_url=server.url) as http:
        server.state.delivery.clock = again
        http.post(
            "/chat/completions",
            json={"model": "m", "messages": MESSAGES, "stream": True, "max_tokens": 5},
            headers={"x-mockai-latency": "20s-30s"},
        )
        (entry,) = attempts(server)
    assert again.deadlines[0] - entry.arrived == pytest.approx(latency, abs=1e-6)


def test_stopping_the_server_ends_stalled_streams_at_once() -> None:
    server = MockServer(log_requests=False).start()
    errors: list[BaseException] = []

    def stalled() -> None:
        client = openai.OpenAI(base_url=server.url, api_key="sk", max_retries=0, timeout=30)
        try:
            for _ in client.chat.completions.create(
                model="m",
                messages=MESSAGES,
                stream=True,
                extra_headers={"x-mockai-fault": "stall_after=1"},
            ):
                pass
        except Exception as error:
            errors.append(error)
        finally:
            client.close()

    thread = threading.Thread(target=stalled)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # the first chunk is out; the stream is now stalled
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 1.0
    thread.join(5)
    assert not thread.is_alive()
    assert len(errors) == 1 and type(errors[0]) is openai.APIConnectionError  # never completed


def test_a_hang_ends_when_the_client_gives_up(server: MockServer) -> None:
    client = openai.OpenAI(base_url=server.url, api_key="sk", max_retries=0, timeout=0.2)
    with client, pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model="m", messages=MESSAGES, extra_headers={"x-mockai-fault": "hang"}
        )
    (entry,) = attempts(server)
    deadline = time.monotonic() + 3
    while entry.duration_ms == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    # The server noticed the client leaving and let the connection go.
    assert 150 <= entry.duration_ms < 2000
    assert (entry.status, entry.faults) == (0, ["hang"])


def test_requests_take_turns_one_per_loop_iteration() -> None:
    async def main() -> list[tuple[int, int]]:
        delivery = Delivery()
        loop = asyncio.get_running_loop()
        ticks = 0
        running = True

        def tick() -> None:
            nonlocal ticks
            ticks += 1
            if running:
                loop.call_soon(tick)

        loop.call_soon(tick)
        seen: list[tuple[int, int]] = []

        async def request(number: int) -> None:
            await delivery.take_turn()
            seen.append((number, ticks))

        await asyncio.gather(*(request(n) for n in range(5)))
        running = False
        return seen

    seen = asyncio.run(main())
    assert [number for number, _ in seen] == [0, 1, 2, 3, 4]  # first come, first served
    iterations = [tick for _, tick in seen]
    assert all(b > a for a, b in itertools.pairwise(iterations))
