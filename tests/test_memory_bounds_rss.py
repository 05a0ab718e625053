"""Memory bounded in bytes, measured where it counts: the resident size of `mockai serve`.

Each test drives a real server the way a hostile or careless client would (bodies that parse
into many objects, many large headers, stored requests of thousands of parts, stream clients
that stop reading, a Content-Length past the limit) and reads its resident size from
/proc/PID/status. The bounds are generous: they sit between what the server holds now and what
it held before (each measured, and said in the test).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from service_support import ServeProcess

from mockai.pipeline.journal import DROPPED_HEADER_BYTES, Journal, JournalEntry, headers_weight
from mockai.wire import jsonbytes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")

MIB = 1 << 20


def _resident_mib(process: ServeProcess) -> float:
    assert process.process is not None
    with open(f"/proc/{process.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _serve(*args: str, env: dict[str, str] | None = None) -> ServeProcess:
    return ServeProcess(["--quiet", *args], env=env)


def _warm(process: ServeProcess) -> float:
    """The resident size once a first chat request has loaded what every request uses."""
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(process.url + "/chat/completions", json=chat, timeout=30).status_code == 200
    return _resident_mib(process)


def _port(process: ServeProcess) -> int:
    return int(process.base_url.rsplit(":", 1)[1])


def _answer(sock: socket.socket, deadline: float) -> bytes:
    """Everything the server sends until it closes the connection (or `deadline`)."""
    got = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        got += chunk
    return got


def test_a_body_declared_past_the_limit_is_refused_at_once_reserving_nothing() -> None:
    """A Content-Length of 100,000,000 with one byte sent: the 413 the docs promise, at once,
    the connection closed, and none of the upload budget held (it waited for the read timeout,
    holding 100 MB of the budget: a legitimate 40 MB upload waited behind it)."""
    with _serve("--read-timeout", "60") as server:
        with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000000\r\n\r\n{"
            )
            answer = _answer(sock, time.monotonic() + 10)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"connection: close" in head.lower()
        error = json.loads(body)["error"]
        assert error["code"] == "request_too_large" and str(64 * MIB) in error["message"]
        metrics = httpx.get(server.base_url + "/_mockai/metrics", timeout=10).text
        assert "mockai_upload_bytes_peak 0.0" in metrics.splitlines()


def test_the_journal_holds_request_bodies_as_the_bytes_it_weighs() -> None:
    """20 requests of 0.9 MB made of 300,000 empty objects: the journal's 16 MiB of bodies held
    ~17 of them parsed, ~20 MB each (375 MiB more). Kept as bytes, they add ~50 MiB;
    the admin API still shows each body parsed."""
    blob = "[" + ",".join(["{}"] * 300_000) + "]"
    with _serve() as server:
        idle = _warm(server)
        with httpx.Client(timeout=60) as client:
            for index in range(20):
                raw = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi %d"}],'
                raw = (raw % index) + '"blob":' + blob + "}"
                answer = client.post(
                    server.url + "/chat/completions",
                    content=raw.encode(),
                    headers={"content-type": "application/json"},
                )
                assert answer.status_code == 200
            grown = _resident_mib(server) - idle
            shown = client.get(server.base_url + "/_mockai/requests", params={"limit": 1}).json()
        body = shown["data"][0]["body"]
        assert body["messages"][0]["content"] == "hi 19" and len(body["blob"]) == 300_000
        assert grown < 120, f"the journal's bodies took {grown:.0f} MiB"


def _with_headers(port: int, index: int, count: int, size: int) -> bytes:
    body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
    padding = b"".join(b"X-Pad-%d: %d-%s\r\n" % (k, index, b"v" * size) for k in range(count))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n"
            + padding
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        return _answer(sock, time.monotonic() + 30)


def test_request_headers_weigh_against_the_journal_budget() -> None:
    """300 requests with 100 headers of 8 KB (0.8 MB each): unweighed, the journal kept them
    all (827 MiB with 1,000). Weighed, the oldest entries keep the small headers only."""
    with _serve() as server:
        idle = _warm(server)
        for index in range(300):
            assert _with_headers(_port(server), index, 100, 8000).startswith(b"HTTP/1.1 200")
        grown = _resident_mib(server) - idle
        listed = httpx.get(server.base_url + "/_mockai/requests", params={"limit": 1000}).json()
    assert grown < 100, f"the journal's headers took {grown:.0f} MiB"
    entries = listed["data"]
    assert entries[0]["dropped"] and not entries[-1]["dropped"]
    assert "x-pad-0" in entries[-1]["headers"] and "x-pad-0" not in entries[1]["headers"]
    assert entries[1]["headers"]["host"] == "x"  # the small ones stay


def test_stored_chat_completions_weigh_the_objects_they_hold() -> None:
    """20 `store: true` requests of 30,000 small text parts (810 KB, ~8.9 MB parsed): weighed
    by their JSON, the 16 MiB store held 20 of them (44 -> 239 MiB); weighed as what their
    objects take, one or two."""
    part = '{"type":"text","text":"a"}'
    parts = ",".join([part] * 30_000)
    journal = {"MOCKAI_JOURNAL_BYTES": str(MIB)}  # (what stays is the store's)
    with _serve(env=journal) as server:
        idle = _warm(server)
        with httpx.Client(timeout=60) as client:
            for index in range(20):
                raw = '{"model":"gpt-4.1","store":true,"messages":[{"role":"user","content":['
                raw += '{"type":"text","text":"q' + str(index) + '"},' + parts + "]}]}"
                answer = client.post(
                    server.url + "/chat/completions",
                    content=raw.encode(),
                    headers={"content-type": "application/json"},
                )
                assert answer.status_code == 200
            grown = _resident_mib(server) - idle
            stored = client.get(server.url + "/chat/completions", params={"limit": 100}).json()
    assert grown < 100, f"the stored completions took {grown:.0f} MiB"
    assert 1 <= len(stored["data"]) <= 2


@pytest.fixture
def long_answer(tmp_path: Path) -> Iterator[Path]:
    words = " ".join(f"w{index}" for index in range(12_000))
    scenario = {"mockai": 1, "rules": [{"match": {"user": "long"}, "reply": {"content": words}}]}
    path = tmp_path / "long.yaml"
    path.write_text(json.dumps(scenario))  # (JSON is YAML)
    yield path


def _stalled(port: int, body: bytes) -> socket.socket:
    """A stream client that reads its answer's first bytes, then nothing more."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    return sock


def test_a_stream_client_that_stops_reading_holds_about_the_stream_once(
    long_answer: Path,
) -> None:
    """16 clients stop reading a 9.7 MB stream: written whole, each held ~3x the stream (the
    frames, their join and the transport's copy: 48 clients 1,463 MiB); written a slice at a
    time, the frames and a slice or two."""
    ask = {"model": "gpt-4.1", "stream": True, "messages": [{"role": "user", "content": "long"}]}
    body = json.dumps(ask).encode()
    with _serve("--scenario", str(long_answer)) as server:
        with httpx.stream("POST", server.url + "/chat/completions", json=ask, timeout=60) as read:
            size = sum(len(chunk) for chunk in read.iter_bytes())
        assert size > 8 * MIB
        idle = _resident_mib(server)
        clients = [_stalled(_port(server), body) for _ in range(16)]
        try:
            deadline = time.monotonic() + 10
            grown, before = 0.0, -1.0
            while time.monotonic() < deadline and grown != before:  # until it settles
                before, grown = grown, _resident_mib(server) - idle
                time.sleep(0.5)
            health = httpx.get(server.base_url + "/_mockai/health", timeout=10)
            assert health.status_code == 200
        finally:
            for client in clients:
                client.close()
    streams = grown * MIB / size
    assert streams < 16 * 2, f"16 stalled clients held {streams:.1f} streams ({grown:.0f} MiB)"


_TEXT = st.characters(blacklist_categories=("Cs",))  # (JSON's writers refuse lone surrogates)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(_TEXT, max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(_TEXT, max_size=5), inner),
    max_leaves=30,
)
_HEADERS = st.dictionaries(
    st.text("abcxyz-", min_size=1, max_size=8), st.text(_TEXT, max_size=3_000), max_size=6
)


@given(st.lists(st.tuples(_JSON, _HEADERS), min_size=1, max_size=30), st.integers(1, 30_000))
def test_the_journal_weighs_what_it_holds_and_shows_bodies_parsed(
    requests: list[tuple[Any, dict[str, str]]], budget: int
) -> None:
    """Whatever the bodies and headers: the journal's count is the bytes its entries hold (a
    body as its bytes, headers by their characters), within the budget; a kept body reads back
    as the JSON sent, parsed; a dropped entry keeps at most DROPPED_HEADER_BYTES of headers."""
    journal = Journal(1000, budget)
    for seq, (value, headers) in enumerate(requests):
        raw = jsonbytes.dumps(value)
        entry = JournalEntry(seq, "req", "POST", "/v1/x", 0.0, 0.0, dict(headers), raw)
        journal.add(entry)
        entries = journal.entries()
        assert journal.bytes <= budget
        held = [e for e in entries if e.weight]
        assert journal.bytes == sum(len(e.kept_body) + headers_weight(e.headers) for e in held)
        for e in entries:
            if e.dropped:
                assert e.body is None and headers_weight(e.headers) <= DROPPED_HEADER_BYTES
            else:
                assert isinstance(e.kept_body, bytes)
                assert e.body == requests[e.seq][0]
