"""The lane (server/lane.py): a whole request on an idle connection is answered without aiohttp's
queue; everything else goes through aiohttp. Either way the client must see one server: the same
answers, byte for byte where they are not per request, in the order asked, on a connection that
stays usable.

These talk raw HTTP/1.1 over a socket, since the lane is chosen by how bytes arrive: a request
sent alone on an idle connection takes the lane; requests pipelined in one write are all left to
aiohttp (the lane takes a read holding exactly one request).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_fuzz import LogWatch

from mockai import MockServer
from mockai.server.lane import HELD_BYTES, TAKEN

API_KEY = "sk-lane"
# Header values that differ from one answer to the next, whatever path it took.
PER_ANSWER = {
    "date",
    "x-request-id",
    "openai-processing-ms",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
}


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]  # in the order sent
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection, spoken to in raw HTTP/1.1."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self, head_only: bool = False) -> Answer:
        """The next answer (interim 1xx answers skipped); `head_only` for a HEAD's."""
        while True:
            status_line = self.reader.readline()
            assert status_line.startswith(b"HTTP/1.1 "), f"not an answer: {status_line!r}"
            status = int(status_line.split()[1])
            headers: list[tuple[str, str]] = []
            while (line := self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("utf-8").partition(":")
                headers.append((name, value.strip()))
            if status >= 200:
                break
        answer = Answer(status, headers, b"")
        if head_only:
            return answer
        length = answer.header("content-length")
        if length is not None:
            answer.body = self.reader.read(int(length))
        else:
            assert answer.header("transfer-encoding") == "chunked"
            answer.body = self._chunks()
        return answer

    def _chunks(self) -> bytes:
        body = b""
        while size := int(self.reader.readline().split(b";")[0], 16):
            body += self.reader.read(size)
            assert self.reader.read(2) == b"\r\n"
        assert self.reader.readline() == b"\r\n"
        return body

    def closed(self) -> bool:
        """Whether the server closed the connection (waits for it, up to the socket timeout)."""
        return self.reader.read(1) == b""

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def request(
    method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> bytes:
    """An HTTP/1.1 request's bytes (JSON body when `body` is not None; bytes sent as they are)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {API_KEY}"]
    data = b""
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def chat(model: str = "gpt-4o-mini", content: str = "hi") -> bytes:
    return request(
        "POST",
        "/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": content}]},
    )


def chunked_chat() -> bytes:
    """A chat request whose body comes in chunks (`Transfer-Encoding: chunked`, no length)."""
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    pieces = [body[:20], body[20:]]
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    chunks = "".join(f"{len(piece):x}\r\n{piece}\r\n" for piece in pieces)
    return (head + chunks + "0\r\n\r\n").encode()


@pytest.fixture
def connection(server: MockServer) -> Iterator[Connection]:
    conn = Connection(server.port)
    # A first request, so that the connection's aiohttp task waits for the next (the lane's
    # condition) when the test starts.
    conn.send(request("GET", "/v1/models"))
    assert conn.answer().status == 200
    yield conn
    conn.close()


def comparable(answer: Answer) -> tuple[int, list[tuple[str, str]], Any]:
    """What must be equal between two answers to the same request, whichever path each took:
    the status, every header name in order with its value (values that change per answer
    masked), and the body (ids and times masked in a JSON body)."""
    headers = [(k, "*" if k.lower() in PER_ANSWER else v) for k, v in answer.headers]
    if answer.header("content-type") == "text/event-stream; charset=utf-8":
        events = answer.body.decode().split("\n\n")
        return answer.status, headers, [_masked(_json_or(e.removeprefix("data: "))) for e in events]
    return answer.status, headers, _masked(_json_or(answer.body))


def _json_or(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _masked(body: Any) -> Any:
    """A JSON object with its per-answer values (ids, times, a stream's padding) masked."""
    if not isinstance(body, dict):
        return body
    per_answer = ("id", "created", "created_at", "obfuscation")
    return {k: "*" if k in per_answer else v for k, v in body.items()}


# Requests of every kind of answer the lane writes itself or leaves to aiohttp.
REQUESTS = {
    "chat": chat(),
    "embeddings": request(
        "POST", "/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b"]}
    ),
    "models": request("GET", "/v1/models"),
    "stream": request(
        "POST",
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    ),
    "bad json": request("POST", "/v1/chat/completions", b'{"model": '),
    "no such route": request("POST", "/v1/nothing", {}),
    "wrong method": request("DELETE", "/v1/chat/completions"),
    "no key": b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "preflight": request(
        "OPTIONS",
        "/v1/chat/completions",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    ),
    "admin": request("GET", "/_mockai/health"),
    "chunked body": chunked_chat(),
}


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_an_answer_is_the_same_by_either_path(connection: Connection, kind: str) -> None:
    data = REQUESTS[kind]
    alone = _by_the_lane(connection, data)
    # twice in one write: both queued for aiohttp (the lane takes a read with one request)
    taken = TAKEN.count
    connection.send(data + data)
    queued = [connection.answer(), connection.answer()]
    assert TAKEN.count == taken
    assert comparable(alone) == comparable(queued[0]) == comparable(queued[1])
    # and the connection still serves
    connection.send(REQUESTS["models"])
    assert connection.answer().status == 200


def _by_the_lane(connection: Connection, data: bytes) -> Answer:
    """The answer to `data` sent alone, as the lane answered it. (A request sent just as
    aiohttp's task finishes with the one before, before it waits again, goes through aiohttp:
    tried again, a few times at most.)"""
    for _ in range(5):
        taken = TAKEN.count
        connection.send(data)
        answer = connection.answer()
        if TAKEN.count == taken + 1:
            return answer
    raise AssertionError("the lane took none of five requests sent alone")


# One step of a conversation on a connection: which request, and how its bytes go out.
SENDS = ("alone", "with the next", "in two writes")
STEPS = st.lists(
    st.tuples(
        st.sampled_from(("chat", "model", "head", "expect", "bad json", "stream")),
        st.sampled_from(SENDS),
        st.integers(min_value=1, max_value=400),  # where "in two writes" cuts
    ),
    min_size=1,
    max_size=12,
)


def tagged(kind: str, tag: str) -> bytes:
    """A request whose answer names `tag` (the model asked for), but for "bad json"."""
    if kind == "chat":
        return chat(model=tag)
    if kind == "model":
        return request("GET", f"/v1/models/{tag}")
    if kind == "head":
        return request("HEAD", f"/v1/models/{tag}")
    if kind == "expect":
        body = {"model": tag, "messages": [{"role": "user", "content": "hi"}]}
        return request("POST", "/v1/chat/completions", body, {"Expect": "100-continue"})
    if kind == "stream":
        body = {"model": tag, "stream": True, "messages": [{"role": "user", "content": "x"}]}
        return request("POST", "/v1/chat/completions", body)
    return request("POST", "/v1/chat/completions", b'{"model": "' + tag.encode())


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=STEPS)
def test_answers_come_in_order_however_the_bytes_arrive(
    server: MockServer, steps: list[tuple[str, str, int]]
) -> None:
    """Any mix of requests, alone, pipelined or cut anywhere: each gets its own whole answer,
    in the order sent, and the connection serves on."""
    conn = Connection(server.port)
    try:
        pending = b""
        for index, (kind, how, cut) in enumerate(steps):
            data = pending + tagged(kind, f"m-{index}")
            pending = b""
            if how == "with the next" and index < len(steps) - 1:
                pending = data
            elif how == "in two writes":
                conn.send(data[:cut])
                conn.send(data[cut:])
            else:
                conn.send(data)
        conn.send(pending)
        for index, (kind, _, _) in enumerate(steps):
            answer = conn.answer(head_only=kind == "head")
            tag = f"m-{index}"
            if kind == "bad json":
                assert answer.status == 400, answer
                assert answer.json()["error"]["code"] is None
            elif kind == "head":
                # (the GET's head: its status and the length of the body it leaves out)
                assert answer.status == 200 and int(answer.header("content-length") or 0) > 0
            elif kind == "model":
                assert answer.status == 200 and answer.json()["id"] == tag
            elif kind == "stream":
                assert answer.status == 200 and f'"model":"{tag}"' in answer.body.decode()
                assert answer.body.endswith(b"data: [DONE]\n\n")
            else:
                assert answer.status == 200 and answer.json()["model"] == tag
        conn.send(request("GET", "/v1/models/last"))
        assert conn.answer().json()["id"] == "last"
    finally:
        conn.close()


def _slow(server: MockServer, seconds: float) -> None:
    """Requests asking "slow" wait `seconds`; the others are answered at once."""
    server.add_rule(
        {"name": "slow", "match": {"user": "slow"}, "latency": seconds, "reply": "late"}
    )
    server.add_rule({"name": "the rest", "reply": "soon"})


def _arrived(server: MockServer, content: str, within: float = 10.0) -> None:
    """Wait until the server has read a request asking `content` (it is in the journal)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        entries = httpx.get(server.base_url + "/_mockai/requests").json()["data"]
        if any(content in json.dumps(entry.get("body")) for entry in entries):
            return
        time.sleep(0.01)
    raise AssertionError(f"no request asking {content!r} arrived")


def test_bytes_sent_while_an_answer_waits_are_answered_after_it(
    server: MockServer, connection: Connection, watched: LogWatch
) -> None:
    """A request that waits (its latency) keeps its place: the requests sent meanwhile, more
    than the bytes the lane holds before it stops reading, are answered after it, in order."""
    _slow(server, 0.5)
    connection.send(chat(content="slow"))
    _arrived(server, "slow")
    batch = 25  # requests a write (several writes: several reads to hold)
    writes = HELD_BYTES // (batch * len(request("GET", "/v1/models/m-000"))) + 2
    for start in range(0, writes * batch, batch):
        connection.send(
            b"".join(request("GET", f"/v1/models/m-{i:03}") for i in range(start, start + batch))
        )
    first = connection.answer()
    assert first.json()["choices"][0]["message"]["content"] == "late"
    ids = [connection.answer().json()["id"] for _ in range(writes * batch)]
    assert ids == [f"m-{i:03}" for i in range(writes * batch)]


def test_an_answer_that_waits_longer_than_the_keep_alive_is_still_sent() -> None:
    """The keep-alive timer closes idle connections, not one whose answer is on its way; once
    the answer is out, the timer runs again and closes the idle connection."""
    with MockServer(read_timeout=0.3) as server:
        _slow(server, 1.0)
        conn = Connection(server.port)
        try:
            conn.send(request("GET", "/v1/models"))
            assert conn.answer().status == 200
            conn.send(chat(content="slow"))
            answer = conn.answer()
            assert answer.status == 200
            assert answer.json()["choices"][0]["message"]["content"] == "late"
            assert conn.closed()  # idle past the timeout (the socket's own is 30 s)
        finally:
            conn.close()


def test_a_client_leaving_while_its_answer_waits(server: MockServer, watched: LogWatch) -> None:
    _slow(server, 0.3)
    conn = Connection(server.port)
    conn.send(request("GET", "/v1/models"))
    assert conn.answer().status == 200
    conn.send(chat(content="slow"))
    _arrived(server, "slow")
    conn.close()
    # The request's wait ends when its client leaves (delivery notices it, as a `hang`'s
    # does), it logs nothing at ERROR (`watched`), is journalled whole, and the server serves on.
    deadline = time.monotonic() + 10
    finished: list[dict[str, Any]] = []
    while not finished and time.monotonic() < deadline:
        entries = httpx.get(server.base_url + "/_mockai/requests").json()["data"]
        finished = [
            e for e in entries if "slow" in json.dumps(e.get("body")) and e["duration_ms"] > 0
        ]
        time.sleep(0.02)
    assert finished and 0 < finished[0]["duration_ms"] < 5000
    assert finished[0]["rule"] == "slow"
    other = Connection(server.port)
    try:
        other.send(chat())
        assert other.answer().status == 200
    finally:
        other.close()


def test_stopping_the_server_lets_a_waiting_answer_finish() -> None:
    server = MockServer().start()
    _slow(server, 0.3)
    conn = Connection(server.port)
    got: list[Answer] = []
    try:
        conn.send(request("GET", "/v1/models"))
        assert conn.answer().status == 200
        conn.send(chat(content="slow"))
        _arrived(server, "slow")
        reader = threading.Thread(target=lambda: got.append(conn.answer()))
        reader.start()
        server.stop()  # (its grace: 1 s)
        reader.join(10)
    finally:
        conn.close()
        if server.running:
            server.stop()
    assert got and got[0].status == 200
    assert got[0].json()["choices"][0]["message"]["content"] == "late"


def test_a_client_cannot_pile_bytes_up_while_its_answer_waits(
    server: MockServer, connection: Connection
) -> None:
    """Past HELD_BYTES the connection stops reading while an answer waits, so what a client
    sends meanwhile stays in the kernel's buffers (tens of MB at most here) instead of the
    server's memory: of 128 MiB offered, the kernel takes what fits and the rest waits."""
    _slow(server, 1.5)
    connection.send(chat(content="slow"))
    _arrived(server, "slow")
    offered = 128 << 20
    connection.send(request("POST", "/v1/files", None, {"Content-Length": str(offered)}))
    connection.sock.setblocking(False)
    chunk = bytes(1 << 20)
    taken = 0
    deadline = time.monotonic() + 1.0  # (within the answer's 1.5 s: it cannot read on)
    while taken < offered and time.monotonic() < deadline:
        try:
            taken += connection.sock.send(chunk)
        except BlockingIOError:
            time.sleep(0.01)
    # The kernel's buffers here: receive up to 32 MiB (tcp_rmem), send up to 4 MiB (wmem).
    assert taken < 64 << 20, f"the server read {taken >> 20} MiB while the answer waited"
