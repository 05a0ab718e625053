"""Instructions per request, mockai against the bare app: a figure the machine's noise cannot move.

    python bench/instructions.py                       # chat, tool call, embeddings; ~2 minutes
    python bench/instructions.py --cases chat,rules,cassette --requests 500
    python bench/instructions.py --cases rules,shared    # the 20 rules, in-process and on Redis

Throughput on a shared machine drifts by several percent from one run to the next, which hides
what a small change buys. This runs mockai and the bare app of `bench/perf.py` (serving the very
bytes mockai answered) under valgrind's callgrind, sends each case's request over one keep-alive
connection (a warm-up first, so caches, imports and the codec are loaded), and counts the
instructions the server executed for `--requests` requests: the same code gives the same count
within ~0.3%. Each figure is per request; the ratio is the bare app's count over mockai's (like
`bench/perf.py`'s ratios: above 1, mockai does less work than the bare app).

Instructions are not time (a cache miss costs more than an add), but on the same interpreter
they move with it: use this to see what one change buys, and `bench/perf.py` for the headline
throughput. Needs valgrind (`apt-get install valgrind`; installed here when missing and running
as root).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import perf  # bench/perf.py: the cases, the bare app, starting servers
import soak  # bench/soak.py: a redis-server of its own

# `shared`: the 20-rule case on a server whose state is in Redis (`--state redis://`, a
# redis-server this script starts on a free loopback port): what the shared state costs.
SHARED = perf.Case(
    "shared",
    "chat, 20-rule scenario, --state redis",
    "shared",
    "/v1/chat/completions",
    next(case.body for case in perf.CASES if case.name == "rules"),
)
JSON_CASES = (
    "chat",
    "chat-distinct",
    "tools",
    "embeddings",
    "embeddings-base64",
    "rules",
    "cassette",
    "cassette-one",
    "shared",
)
# Cases compared with plain chat as well as with the bare app (the "within 10%").
_BESIDE_CHAT = (*perf.BESIDE_CHAT, "shared")


def find_valgrind() -> str:
    """The valgrind binary; installed from Debian's package when missing and running as root."""
    found = shutil.which("valgrind")
    apt = shutil.which("apt-get")
    if found is None and apt is not None and hasattr(os, "geteuid") and os.geteuid() == 0:
        print("valgrind is missing: installing the Debian package (apt-get install valgrind) ...")
        subprocess.run([apt, "install", "-y", "-qq", "valgrind"], check=True)
        found = shutil.which("valgrind")
    if found is None or shutil.which("callgrind_control") is None:
        sys.exit(
            "bench/instructions.py needs valgrind (callgrind). Install it with\n"
            "    sudo apt-get install valgrind     (Debian, Ubuntu)"
        )
    return found


def body_for(case: perf.Case, n: int) -> str:
    """The n-th request of `case`: embeddings inputs never sent before, as in bench/perf.py."""
    if case.name in ("embeddings", "embeddings-base64"):
        encoding = "base64" if case.name.endswith("base64") else "float"
        return json.dumps(perf.embeddings_body(encoding, n))
    if case.name in ("cassette", "chat-distinct"):  # a different question each time, in the bytes
        # perf.py's Lua sends (the cassette's recordings; generated answers on their own server)
        return perf.cassette_body(n % perf.INTERACTIONS)
    return json.dumps(case.body)


class Counted:
    """A server running under callgrind, with one keep-alive connection to it."""

    def __init__(self, server: perf.Server, folder: Path) -> None:
        self.server = server
        self.folder = folder
        address = urlsplit(server.url)
        self.connection = http.client.HTTPConnection(
            address.hostname or "127.0.0.1", address.port, timeout=600
        )

    def instrument(self) -> Counted:
        """Start instrumenting the server (its start-up ran without); before any request."""
        pid = str(self.server.process.pid)
        subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
        return self

    def send(self, path: str, body: str) -> bytes:
        self.connection.request("POST", path, body, perf.HEADERS)
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{self.server.name}: {path} answered {response.status}: {data!r}")
        return data

    def instructions(self, send: Any, requests: int) -> float:
        """Instructions per request over `requests` calls of `send(i)`."""
        pid = str(self.server.process.pid)
        subprocess.run(["callgrind_control", "--zero", pid], check=True, capture_output=True)
        for i in range(requests):
            send(i)
        before = set(self.folder.iterdir())
        subprocess.run(["callgrind_control", "--dump", pid], check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while True:
            for dump in set(self.folder.iterdir()) - before:
                total = _total(dump)
                if total is not None:
                    return total / requests
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.server.name}: callgrind wrote no dump")
            time.sleep(0.2)


def _total(dump: Path) -> int | None:
    try:
        text = dump.read_text(errors="replace")
    except OSError:
        return None
    found = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.MULTILINE)
    return int(found.group(1)) if found else None


def under_callgrind(valgrind: str, folder: Path, name: str, command: list[str]) -> list[str]:
    return [
        valgrind,
        "--tool=callgrind",
        # Not instrumented until `Counted.instrument` (right before the first request): the
        # start-up (importing mockai) runs several times faster uninstrumented, and is not counted.
        "--instr-atstart=no",
        "--collect-atstart=yes",
        f"--callgrind-out-file={folder / name}.%p",
        *command,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="chat,tools,embeddings", help=", ".join(JSON_CASES))
    parser.add_argument("--requests", type=int, default=300, help="counted per case")
    parser.add_argument("--warmup", type=int, default=100, help="requests before counting")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--mypyc", action="store_true", help="count mockai's compiled build (bench/compiled.py)"
    )
    args = parser.parse_args()
    wanted = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(JSON_CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {', '.join(JSON_CASES)}")
    if args.requests < 1 or args.warmup < 1:
        parser.error("--requests and --warmup must be at least 1")
    cases = [case for case in [*perf.CASES, SHARED] if case.name in wanted]
    if args.mypyc:
        print(f"mockai: compiled by mypyc, from {perf.use_compiled_build()}")
    valgrind = find_valgrind()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="mockai-instructions-") as tmp:
        folder = Path(tmp)
        answers: dict[str, Any] = {}
        # One server of each kind the cases need, configured as bench/perf.py configures it.
        redis = None
        for kind in dict.fromkeys(case.server for case in cases):
            if kind == "shared":
                redis, port = soak._start_redis(tmp)
                state = ["--state", f"redis://127.0.0.1:{port}/0"]
                mockai_args = perf.mockai_command(*perf.server_args("rules", folder), *state)
            else:
                mockai_args = perf.mockai_command(*perf.server_args(kind, folder))
            command = under_callgrind(valgrind, folder, f"mockai-{kind}", mockai_args)
            mockai = Counted(
                perf.start_server(f"mockai ({kind})", command, None), folder
            ).instrument()
            try:
                for case in (case for case in cases if case.server == kind):
                    answer = mockai.send(case.path, body_for(case, 0))
                    answers[case.name] = {
                        "kind": "json",
                        "content_type": "application/json",
                        "frames": [base64.b64encode(answer).decode()],
                    }
                    offset = args.warmup + 1  # embeddings: every counted request new
                    for i in range(args.warmup):
                        mockai.send(case.path, body_for(case, 1 + i))
                    per_request = mockai.instructions(
                        lambda i, c=case, o=offset, m=mockai: m.send(c.path, body_for(c, o + i)),
                        args.requests,
                    )
                    results[case.name] = {"mockai": per_request}
                    print(f"  mockai {case.name}: {per_request:,.0f} a request", flush=True)
            finally:
                mockai.server.stop()
                if redis is not None:
                    redis.kill()
                    redis.wait(10)
                    redis = None
        bare_app = [sys.executable, "-c", perf.BARE_APP]
        bare_command = under_callgrind(valgrind, folder, "bare", bare_app)
        stdin = json.dumps(answers).encode()
        bare = Counted(
            perf.start_server("bare", bare_command, None, stdin=stdin), folder
        ).instrument()
        try:
            for case in cases:
                path = "/case/" + case.name
                for i in range(args.warmup):
                    bare.send(path, body_for(case, 1 + i))
                per_request = bare.instructions(
                    lambda i, p=path, c=case: bare.send(p, body_for(c, i)), args.requests
                )
                results[case.name]["bare"] = per_request
                print(f"  bare   {case.name}: {per_request:,.0f} a request", flush=True)
        finally:
            bare.server.stop()
    print()
    print(f"{'case':<22}{'bare app':>16}{'mockai':>16}{'ratio':>9}")
    for case in cases:
        figures = results[case.name]
        figures["ratio"] = figures["bare"] / figures["mockai"]
        print(
            f"{case.name:<22}{figures['bare']:>16,.0f}{figures['mockai']:>16,.0f}"
            f"{figures['ratio']:>8.2f}x"
        )
    print(f"(instructions per request, {args.requests} counted after {args.warmup} warm-up)")
    if "chat" in results:
        for name in (name for name in _BESIDE_CHAT if name in results):
            share = results[name]["mockai"] / results["chat"]["mockai"]
            results[name]["of_plain_chat"] = share
            print(f"{name}: {share:.1%} of plain chat's instructions")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
