"""What aiohttp's web layer costs a request, and what that leaves mockai at the chat target.

    python bench/web_layer.py                  # chat, 3 rounds of 5 s each, ~1 minute
    python bench/web_layer.py --case chat-distinct --rounds 5

`bench/perf.py` compares mockai with a bare aiohttp app. This splits the bare app's own cost in
two, by adding a third server that answers the same bytes with no web layer at all: an asyncio
Protocol on the same event loop as the bare app, parsing requests with aiohttp's own C parser
and writing one fixed answer per request (no Request or Response objects, no router, no
handler task). Each server is pinned to core 0 and loaded by `wrk -t1 -c64` on core 1, as in
`bench/perf.py`, and its CPU time (user + system, from /proc) is read around each load:

- raw:    the socket, the event loop and HTTP parsing;
- bare:   that plus aiohttp's web layer (what the bare app adds over raw);
- mockai: that plus mockai's pipeline (what mockai adds over the bare app).

(mockai runs on uvloop, its default when installed, the other two on asyncio's loop, as the bare
app of `bench/perf.py` does; uvloop is the cheaper loop, so if anything the pipeline's figure is
low.)

It prints each server's requests a second and CPU microseconds a request (medians of the
rounds), what the web layer and mockai's pipeline take, and the CPU a request may take in
mockai's own code to reach the chat target (0.8x of the bare app). The raw server is a
yardstick, not a server to use: it knows one answer, keep-alive only, and no HTTP edge cases.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import perf  # bench/perf.py: the cases, the bare app, wrk, starting servers

# The same answer for every request, on the bare app's event loop (asyncio's), parsed by
# aiohttp's C parser: the request's body is read by the parser into its payload and dropped.
RAW_APP = r"""
import asyncio, base64, json, sys
from aiohttp.http_parser import HttpRequestParser

body = base64.b64decode(json.load(sys.stdin)["body"])
answer = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    % len(body)
) + body

class Raw(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        loop = asyncio.get_running_loop()
        self.parser = HttpRequestParser(self, loop, 2**16, max_line_size=8190, max_field_size=8190)

    def data_received(self, data):
        messages, _, _ = self.parser.feed_data(data)
        for _ in messages:
            self.transport.write(answer)

    # (the parser's payloads ask their protocol for these)
    def pause_reading(self):
        pass

    def resume_reading(self, resume_parser=True):
        pass

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Raw, "127.0.0.1", 0, backlog=1024)
    print("listening on http://127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


@dataclass
class Figure:
    rps: float
    cpu_us: float  # CPU a request, user + system
    errors: int  # wrk's: failed connections, reads, writes, non-2xx answers, timeouts


def load(
    wrk: str, server: perf.Server, case: perf.Case, path: str, seconds: float, warmup: int
) -> Figure:
    """`case` on `server` for `seconds` (after `warmup` seconds of the same load): its rate,
    and the CPU the server spent a request."""
    if warmup:
        perf.run_wrk(wrk, server.url, case, path, warmup, case.connections)
    before = cpu_seconds(server.process.pid)
    result = perf.run_wrk(wrk, server.url, case, path, seconds, case.connections)
    spent = cpu_seconds(server.process.pid) - before
    cpu_us = spent / result.requests * 1e6 if result.requests else 0.0
    return Figure(result.rps, cpu_us, result.errors)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    json_cases = [c.name for c in perf.CASES if c.kind == "json" and c.server != "workers"]
    parser.add_argument("--case", default="chat", choices=json_cases, help="default: chat")
    parser.add_argument("--seconds", type=float, default=5.0, help="per load (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="loads per server (default 3)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of load before each measured one (0: none)"
    )
    parser.add_argument("--target", type=float, default=0.8, help="ratio asked of mockai")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more seconds")
    case = next(c for c in perf.CASES if c.name == args.case)
    wrk = perf.find_wrk()

    figures: dict[str, list[Figure]] = {"raw": [], "bare": [], "mockai": []}
    with tempfile.TemporaryDirectory() as tmp, perf.servers({case.server}, Path(tmp)) as running:
        mockai = running[case.server]
        answered, _ = perf.fetch(mockai.url + case.path, case.body)
        raw_input = json.dumps({"body": base64.b64encode(answered).decode()}).encode()
        bare_input = perf.bare_cases([case], running)
        started: list[perf.Server] = []
        try:
            raw = perf.start_server(
                "raw", [sys.executable, "-c", RAW_APP], perf.SERVER_CORE, raw_input
            )
            started.append(raw)
            bare = perf.start_server(
                "bare", [sys.executable, "-c", perf.BARE_APP], perf.SERVER_CORE, bare_input
            )
            started.append(bare)
            targets = {
                "raw": (raw, case.path),
                "bare": (bare, "/case/" + case.name),
                "mockai": (mockai, case.path),
            }
            for _ in range(args.rounds):  # the three in turn, so a drift touches each alike
                for name, (server, path) in targets.items():
                    figures[name].append(load(wrk, server, case, path, args.seconds, args.warmup))
        finally:
            for server in started:
                server.stop()
    summary = report(case, figures, args.target)
    if args.json is not None:
        rounds = {name: [asdict(f) for f in runs] for name, runs in figures.items()}
        args.json.write_text(json.dumps({**summary, "rounds": rounds}, indent=2) + "\n")


def report(case: perf.Case, figures: dict[str, list[Figure]], target: float) -> dict[str, Any]:
    """Print the figures; return them (medians, and the splits derived from them)."""
    rps = {name: statistics.median(f.rps for f in runs) for name, runs in figures.items()}
    cpu = {name: statistics.median(f.cpu_us for f in runs) for name, runs in figures.items()}
    errors = sum(f.errors for runs in figures.values() for f in runs)
    print(f"{case.title}, wrk -t1 -c{case.connections}, server on core {perf.SERVER_CORE}")
    print(f"{'server':<8}{'req/s':>10}{'CPU us/request':>17}")
    for name in figures:
        print(f"{name:<8}{rps[name]:>10,.0f}{cpu[name]:>17.1f}")
    web_layer = cpu["bare"] - cpu["raw"]
    pipeline = cpu["mockai"] - cpu["bare"]
    # At `target`, mockai may spend bare / target a request: the bare app's own cost included.
    allowed = cpu["bare"] / target - cpu["bare"]
    print(
        f"aiohttp's web layer: {web_layer:.1f} us a request, "
        f"{web_layer / cpu['bare']:.0%} of the bare app's CPU"
    )
    ratio = rps["mockai"] / rps["bare"]
    print(f"mockai's pipeline: {pipeline:.1f} us a request (mockai at {ratio:.2f}x the bare app)")
    print(
        f"at {target}x of the bare app, mockai's pipeline would have {allowed:.1f} us a request "
        f"({allowed / pipeline:.0%} of what it takes now)"
    )
    if errors:
        print(f"wrk counted {errors} errors: the figures above are not to be trusted")
    return {
        "case": case.name,
        "rps": rps,
        "cpu_us": cpu,
        "web_layer_us": web_layer,
        "pipeline_us": pipeline,
        "allowed_us": allowed,
        "target": target,
        "errors": errors,
    }


if __name__ == "__main__":
    main()
