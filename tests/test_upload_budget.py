"""The upload budget: large request bodies at once are bounded in bytes, in arrival order.

A property drives `UploadBudget` through arbitrary reservations, releases and clients leaving
while they wait, on a real event loop; a real server then holds two 6 MiB transcriptions under a
10 MiB budget through the SDK, answers a body larger than the whole budget, and lets small
requests through while an upload holds it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import socket
import time
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai import MockServer
from mockai.config import Config
from mockai.errors import ConfigError
from mockai.pipeline.uploads import RESERVED_FROM, UploadBudget

MIB = 1 << 20

# One step: a request arrives wanting `size` bytes, or the n-th request still holding or
# waiting finishes (a holder releases, a waiter's client leaves).
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("arrive"), st.integers(0, 12)),
        st.tuples(st.just("leave"), st.integers(0, 20)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10), STEPS)
def test_the_budget_is_never_overdrawn_and_serves_in_arrival_order(
    max_bytes: int, steps: list[tuple[str, int]]
) -> None:
    async def scenario() -> None:
        budget = UploadBudget(max_bytes)
        granted: list[int] = []  # request numbers, in the order their reservation came
        live: list[tuple[int, int, asyncio.Task[None]]] = []  # (number, size, task)

        async def request(number: int, size: int) -> None:
            await budget.reserve(size)
            try:
                granted.append(number)
                await asyncio.Event().wait()  # answering, until it leaves
            finally:
                budget.release(size)  # as `pipeline.run` does when the answer is done

        def settle_and_check() -> None:
            holding = [(n, size) for n, size, _ in live if n in granted]
            waiting = [(n, size) for n, size, _ in live if n not in granted]
            assert budget.held == sum(size for _, size in holding)
            # Never more than the budget, but for one body alone.
            assert budget.held <= max_bytes or len([s for _, s in holding if s]) == 1
            # No one waits who could go: the first in line does not fit beside what is held.
            if waiting:
                first = waiting[0][1]
                assert budget.held > 0 and budget.held + first > max_bytes
            assert budget.peak >= budget.held

        for number, (kind, value) in enumerate(steps):
            if kind == "arrive":
                task = asyncio.create_task(request(number, value))
                live.append((number, value, task))
            elif live:
                _, _, task = live.pop(value % len(live))
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            for _ in range(3):  # let grants reach their tasks
                await asyncio.sleep(0)
            settle_and_check()
        # Requests were granted in the order they arrived (none overtook one before it).
        assert granted == sorted(granted)
        for _, _, task in live:
            task.cancel()
        await asyncio.gather(*(task for _, _, task in live), return_exceptions=True)
        assert budget.held == 0 and not budget._waiting

    asyncio.run(scenario())


def _metric(server: MockServer, name: str) -> float:
    text = httpx.get(server.url.removesuffix("/v1") + "/_mockai/metrics").text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the metrics")


def _until(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _transcribe(server: MockServer, size: int, latency: str = "0ms") -> str:
    with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client:
        answer = client.audio.transcriptions.create(
            model="whisper-1",
            file=("memo.wav", os.urandom(size)),
            extra_headers={"x-mockai-latency": latency},
        )
    return answer.text


# Uploads of 6 MiB: a body that came whole with its head (a few hundred KB can, before its
# handler runs) is let through without a reservation; one this large is still arriving.
def test_two_uploads_that_do_not_fit_together_take_turns() -> None:
    with (
        MockServer(upload_bytes=10 * MIB, log_requests=False) as server,
        concurrent.futures.ThreadPoolExecutor(2) as pool,
    ):
        first = pool.submit(_transcribe, server, 6 * MIB, "3s")
        _until(lambda: _metric(server, "mockai_upload_bytes") >= 6 * MIB, "the first upload")
        second = pool.submit(_transcribe, server, 6 * MIB)
        _until(lambda: _metric(server, "mockai_upload_waits_total") == 1, "the second to wait")
        assert first.result(timeout=30) and second.result(timeout=30)
        assert 6 * MIB < _metric(server, "mockai_upload_bytes_peak") <= 10 * MIB
        assert _metric(server, "mockai_upload_bytes") == 0
        assert [e.status for e in server.requests] == [200, 200]


def test_a_body_larger_than_the_budget_is_read_alone_and_small_ones_never_wait() -> None:
    with MockServer(upload_bytes=1 * MIB, log_requests=False) as server:
        assert _transcribe(server, 8 * MIB)  # answered, not refused
        assert _metric(server, "mockai_upload_bytes_peak") > 8 * MIB  # (it did reserve, alone)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            upload = pool.submit(_transcribe, server, 6 * MIB, "3s")
            _until(lambda: _metric(server, "mockai_upload_bytes") > 0, "the upload")
            with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client:
                chat = client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "x" * (RESERVED_FROM // 2)}],
                )
            assert chat.choices[0].message.content
            # Answered while the upload still held the budget: it did not wait for it.
            assert _metric(server, "mockai_upload_bytes") > 6 * MIB
            assert _metric(server, "mockai_upload_waits_total") == 0
            assert upload.result(timeout=30)


@pytest.mark.parametrize("value", ["-1", "lots"])
def test_a_bad_budget_is_refused_with_its_name(value: str) -> None:
    with pytest.raises(ConfigError, match="MOCKAI_UPLOAD_BYTES"):
        Config.from_env({"MOCKAI_UPLOAD_BYTES": value})
    assert Config.from_env({"MOCKAI_UPLOAD_BYTES": str(MIB)}).upload_bytes == MIB
    with pytest.raises(ConfigError, match="upload_bytes"):
        MockServer(upload_bytes=-1)


def test_a_client_leaving_just_as_its_turn_came_gives_its_turn_back() -> None:
    async def scenario() -> None:
        budget = UploadBudget(1)
        await budget.reserve(1)
        waiting = asyncio.create_task(budget.reserve(1))
        await asyncio.sleep(0)
        assert budget.waited == 1
        budget.release(1)  # its turn comes (granted) ...
        waiting.cancel()  # ... and its client leaves before it ran again
        await asyncio.gather(waiting, return_exceptions=True)
        assert budget.held == 0
        await asyncio.wait_for(budget.reserve(1), 5)  # the next one is not kept waiting

    asyncio.run(scenario())


# --- Chunked bodies: their size is known only as they are read ------------------------------------

CHUNKED_HEAD = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
CHAT = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'


def _connect(server: MockServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=30)


def _status(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed without an answer: {data!r}"
        data += chunk
    return data.split(b"\r\n", 1)[0]


def test_a_small_chunked_body_never_waits_behind_stalled_chunked_uploads() -> None:
    # Two clients start chunked uploads and stop sending (a chunked body once reserved the most
    # a body may be at once: two of them held the whole budget, and a 70-byte chunked request,
    # its body in a second read, waited for the read timeout, 60 s).
    with MockServer(log_requests=False) as server, contextlib.ExitStack() as stack:
        stalled = [stack.enter_context(_connect(server)) for _ in range(3)]
        for sock in stalled:
            sock.sendall(CHUNKED_HEAD + b'5\r\n{"mod\r\n')
        # (a request answered after them: their handlers have started by then)
        assert httpx.get(server.url + "/models").status_code == 200
        sock = stack.enter_context(_connect(server))
        sock.sendall(CHUNKED_HEAD)
        assert httpx.get(server.url + "/models").status_code == 200  # (its head read alone)
        sock.sendall(b"%x\r\n" % len(CHAT) + CHAT + b"\r\n0\r\n\r\n")
        sock.settimeout(20)  # (well under the 60 s read timeout the old code waited)
        assert _status(sock) == b"HTTP/1.1 200 OK"
        assert _metric(server, "mockai_upload_waits_total") == 0
        assert _metric(server, "mockai_upload_bytes_peak") == 0


def test_a_large_chunked_body_reserves_once_it_grows_and_gives_it_back() -> None:
    # Past RESERVED_FROM, a chunked body reserves the most a body may be: a second such upload
    # under a budget that holds one waits its turn, and both are answered.
    body = b'{"model": "omni-moderation-latest", "input": "' + b"x" * (2 * RESERVED_FROM) + b'"}'
    head = CHUNKED_HEAD.replace(b"/v1/chat/completions", b"/v1/moderations")
    with MockServer(log_requests=False, upload_bytes=64 * MIB) as server:
        first, second = _connect(server), _connect(server)
        with first, second:
            first.sendall(head + b"%x\r\n" % (len(body) - 10) + body[:-10] + b"\r\n")
            _until(lambda: _metric(server, "mockai_upload_bytes") == 64 * MIB, "its reservation")
            second.sendall(head + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
            _until(lambda: _metric(server, "mockai_upload_waits_total") == 1, "the second waits")
            first.sendall(b"a\r\n" + body[-10:] + b"\r\n0\r\n\r\n")
            assert _status(first).startswith(b"HTTP/1.1 ")
            assert _status(second).startswith(b"HTTP/1.1 ")
        _until(lambda: _metric(server, "mockai_upload_bytes") == 0, "both given back")


@settings(max_examples=12, deadline=None, database=None, derandomize=True)
@given(
    size=st.one_of(
        st.integers(0, 2000),
        st.integers(RESERVED_FROM - 2000, RESERVED_FROM + 2000),
        st.integers(2 * RESERVED_FROM, 2 * RESERVED_FROM + 5000),
    ),
    pieces=st.integers(4096, 256 * 1024),
)
def test_a_chunked_body_is_read_whole_however_it_is_cut(size: int, pieces: int) -> None:
    # Whatever its size (under, at or past the size that reserves) and however its chunks fall,
    # the body read is the body sent; it reserves only past RESERVED_FROM, and gives it back.
    padding = "p" * size
    body = json.dumps(
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "padding": padding,
        }
    ).encode()  # (an unknown field: answered, journaled)
    chunks = b"".join(
        b"%x\r\n" % len(body[at : at + pieces]) + body[at : at + pieces] + b"\r\n"
        for at in range(0, len(body), pieces)
    )
    with MockServer(log_requests=False) as server, _connect(server) as sock:
        sock.sendall(CHUNKED_HEAD + chunks + b"0\r\n\r\n")
        assert _status(sock) == b"HTTP/1.1 200 OK"
        _until(lambda: len(server.requests) == 1, "the journal entry")
        assert server.requests[0].body["padding"] == padding
        reserved = _metric(server, "mockai_upload_bytes_peak")
        assert (reserved > 0) == (len(body) >= RESERVED_FROM)
        assert _metric(server, "mockai_upload_bytes") == 0
