"""Timing fidelity under load: do TTFT and chunk gaps stay what was configured?

Starts `mockai serve` in its own process, then opens N concurrent streaming chat completions from
this process (one keep-alive connection each, opened and warmed up first so that connecting is not
measured), each asking through the `x-mockai-stream` header for `ttft` and `chunk_delay`. Every
SSE event's arrival time is recorded twice: when the kernel received it (on Linux, from
`SO_TIMESTAMPNS`; what the server did, to the microsecond) and when this client read it (which
adds the client's own delay: a Python client reading 200 sockets lags a few milliseconds when
their chunks come due together). For each, the report gives p50 / p99 / max of (measured -
configured) for the time to first chunk (from sending the request) and for the gaps between
chunks, plus the drift of each chunk from its absolute schedule.

    python bench/timing_fidelity.py                      # 200 streams, ttft 200ms, gaps 20ms
    python bench/timing_fidelity.py --streams 500 --chunks 60

Not a test: nothing is asserted; the numbers are printed (target: p99 error under 10 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import aiohttp

TARGET_MS = 10.0


@contextlib.contextmanager
def mockai_server() -> Iterator[str]:
    """`mockai serve` on a free port in a child process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = ""
        deadline = time.monotonic() + 30
        while "Press Ctrl-C" not in banner and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            banner += line
        match = re.search(r"listening on (http://\S+)", banner)
        if not match:
            raise RuntimeError(f"mockai did not start:\n{banner}")
        yield match.group(1)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Linux's SO_TIMESTAMPNS (the same number on x86 and ARM; Python's socket module does not name
# it): each read then carries the time the kernel received its last segment.
SO_TIMESTAMPNS = 35 if sys.platform == "linux" else None


class RawStream:
    """A minimal HTTP/1.1 client on one keep-alive connection, precise about when bytes move.

    A general-purpose client (aiohttp, httpx) spends a few hundred microseconds of its own
    between "send" and the bytes reaching the socket; with N requests started together that adds
    up to tens of milliseconds that are the client's, not the server's. Here the request is
    pre-encoded and written in one call, stamped at that call, and every read is stamped twice:
    when this client read it, and (on Linux) when the kernel received it (`SO_TIMESTAMPNS`).
    The second leaves out this client's own delay: when 200 first chunks come due together, a
    Python client reads the last of them a few milliseconds after they arrived.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.kernel_stamps = False

    @classmethod
    async def open(cls, host: str, port: int) -> RawStream:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = cls(sock)
        if SO_TIMESTAMPNS is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                stream.kernel_stamps = True
        return stream

    def send(self, request: bytes) -> float:
        """Write the whole request now; returns the time it was handed to the kernel."""
        sent = time.monotonic()
        self.sock.sendall(request)  # (a few hundred bytes: the socket buffer takes them at once)
        return sent

    async def _read(self) -> tuple[bytes, float, float]:
        """The next bytes, when the kernel received them and when they were read (monotonic)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(65536, 64)
                break
            except BlockingIOError:
                readable = loop.create_future()
                loop.add_reader(self.sock.fileno(), readable.set_result, None)
                try:
                    await readable
                finally:
                    loop.remove_reader(self.sock.fileno())
        read = time.monotonic()
        received = read
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                seconds, nanoseconds = struct.unpack("qq", value[:16])
                # (the kernel's clock is the wall clock: moved onto the monotonic one)
                received = seconds + nanoseconds / 1e9 - (time.time() - time.monotonic())
        return data, received, read

    async def _head(self) -> tuple[bytes, bytes, float, float]:
        """The response head, the body bytes read with it, and that last read's two stamps."""
        buffer = b""
        kernel = user = time.monotonic()
        while b"\r\n\r\n" not in buffer:
            data, kernel, user = await self._read()
            if not data:
                raise RuntimeError("the server closed the connection")
            buffer += data
        head, _, body = buffer.partition(b"\r\n\r\n")
        return head, body, kernel, user

    async def events(self) -> tuple[list[float], list[float], str]:
        """Per `data:` event until the chunked body ends, when the kernel received it and when it
        was read; and the answer's x-request-id."""
        head, body, kernel, user = await self._head()  # (events that came with the head: its read)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        request_id = re.search(rb"(?i)x-request-id: (\S+)", head)
        received: list[float] = []
        read: list[float] = []
        while True:
            seen = body.count(b"data: ")  # (counted over the whole body: a split marker counts)
            received.extend([kernel] * (seen - len(received)))
            read.extend([user] * (seen - len(read)))
            if body.endswith(b"\r\n0\r\n\r\n") or body == b"0\r\n\r\n":
                break
            data, kernel, user = await self._read()
            if not data:
                break
            body += data
        return received, read, request_id.group(1).decode() if request_id else ""

    async def whole(self) -> bytes:
        """A complete response with a Content-Length (the warm-up answer)."""
        head, body, _, _ = await self._head()
        length = re.search(rb"(?i)content-length: (\d+)", head)
        size = int(length.group(1)) if length else 0
        while len(body) < size:
            data, _, _ = await self._read()
            if not data:
                break
            body += data
        return body

    def close(self) -> None:
        self.sock.close()


def encode_post(host: str, path: str, body: dict[str, object], headers: dict[str, str]) -> bytes:
    payload = json.dumps(body).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def report(name: str, errors_s: list[float]) -> str:
    ms = [e * 1000 for e in errors_s]
    p50, p99, worst = percentile(ms, 50), percentile(ms, 99), max(ms, key=abs)
    best = min(ms, key=abs)
    verdict = "OK" if abs(p99) < TARGET_MS else "ABOVE TARGET"
    return (
        f"  {name:<22} n={len(ms):>5}  p50 {p50:+6.2f} ms  p99 {p99:+6.2f} ms  "
        f"max {worst:+6.2f} ms  min {best:+6.2f} ms  mean {statistics.fmean(ms):+6.2f} ms  "
        f"p99/target {abs(p99) / TARGET_MS:4.2f}  {verdict}"
    )


async def run(url: str, streams: int, chunks: int, ttft: float, gap: float) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Tell me a long story about timing."}],
        "stream": True,
        "max_tokens": chunks,
    }
    headers = {"x-mockai-stream": f"ttft={ttft * 1000:g}ms,chunk_delay={gap * 1000:g}ms"}
    request = encode_post(f"{host}:{port}", "/v1/chat/completions", body, headers)
    warm = encode_post(
        f"{host}:{port}", "/v1/chat/completions", {**body, "stream": False, "max_tokens": 1}, {}
    )
    connections = await asyncio.gather(*(RawStream.open(host, port) for _ in range(streams)))
    try:
        # One small request per connection first: the server has accepted every connection and
        # set it up before the measured requests go out.
        for connection in connections:
            connection.send(warm)
        await asyncio.gather(*(connection.whole() for connection in connections))
        await asyncio.sleep(0.5)  # let the server finish its bookkeeping of the warm-up
        sent = [connection.send(request) for connection in connections]
        results = await asyncio.wait_for(
            asyncio.gather(*(connection.events() for connection in connections)), timeout=120
        )
    finally:
        for connection in connections:
            connection.close()
    # The server's journal stamps each arrival on the same system-wide monotonic clock:
    # it splits TTFT into getting the request to the server and the server keeping time.
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + f"/_mockai/requests?limit={streams}") as journal,
    ):
        arrived = {e["request_id"]: e["arrived"] for e in (await journal.json())["data"]}
    kernel = bool(connections) and connections[0].kernel_stamps
    events = sum(len(received) for received, _, _ in results)
    print(
        f"{streams} concurrent streams, ttft {ttft * 1000:g} ms, chunk_delay {gap * 1000:g} ms, "
        f"{events} events ({events / streams:.0f} per stream); measured - configured:"
    )
    ways = [("as read by this client", [(read, rid) for _, read, rid in results])]
    if kernel:
        kernel_title = "as received by the kernel (SO_TIMESTAMPNS: this client's delay left out)"
        ways.insert(0, (kernel_title, [(received, rid) for received, _, rid in results]))
    for title, per_stream in ways:
        print(f"{title}:")
        ttft_errors, gap_errors, drift, inbound, scheduled = _errors(
            sent, per_stream, arrived, ttft, gap
        )
        print(report("time to first chunk", ttft_errors))
        print(report("gap between chunks", gap_errors))
        print(report("drift from schedule", drift))
        print(report("client -> server", inbound))
        print(report("server arrival -> 1st", scheduled))
    print(
        "(client -> server: from sending to the server's arrival stamp, read from its journal on "
        "the same monotonic clock; server arrival -> 1st: from that stamp to the first chunk)"
    )


def _errors(
    sent: list[float],
    per_stream: list[tuple[list[float], str]],
    arrived: dict[str, float],
    ttft: float,
    gap: float,
) -> tuple[list[float], ...]:
    """Measured - configured: TTFT, gaps, drift from the schedule; and TTFT split at the
    server's arrival stamp."""
    ttft_errors, gap_errors, drift, inbound, scheduled = [], [], [], [], []
    for start, (arrivals, request_id) in zip(sent, per_stream, strict=True):
        if not arrivals:
            continue
        ttft_errors.append(arrivals[0] - start - ttft)
        if request_id in arrived:
            inbound.append(arrived[request_id] - start)
            scheduled.append(arrivals[0] - arrived[request_id] - ttft)
        for i in range(1, len(arrivals)):
            gap_errors.append(arrivals[i] - arrivals[i - 1] - gap)
            drift.append(arrivals[i] - (arrivals[0] + i * gap))
    return ttft_errors, gap_errors, drift, inbound, scheduled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=40, help="max_tokens: about one chunk each")
    parser.add_argument("--ttft", type=float, default=0.200, help="seconds")
    parser.add_argument("--gap", type=float, default=0.020, help="seconds between chunks")
    parser.add_argument("--url", help="an already running mockai (default: start one)")
    args = parser.parse_args()
    if args.url:
        asyncio.run(run(args.url, args.streams, args.chunks, args.ttft, args.gap))
        return
    with mockai_server() as url:
        asyncio.run(run(url, args.streams, args.chunks, args.ttft, args.gap))


if __name__ == "__main__":
    main()
