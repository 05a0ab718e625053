"""Launch of `mockai serve` to its first answer, a few seconds' measurement (no wrk, one core).

    python bench/startup.py                  # 11 runs, first POST /v1/chat/completions
    python bench/startup.py --runs 21 --path /v1/models
    python bench/startup.py -- --scenario scenarios/weather.yaml   # extra `serve` options

Starts `mockai serve --port 0 --quiet` pinned to core 0 (`taskset`, as bench/perf.py does),
reads the banner's address, then asks until the first answer arrives; prints each run and the
median, and the median CPU time the server used until then (steadier than wall time on a busy
machine). The time counts everything a user waits for: the interpreter, imports, building the app,
binding the port and answering the first request (including what that request imports).

Python compiles each module it imports unless a cached `.pyc` is there: `pip install` writes
them for every module, but an editable install under `PYTHONDONTWRITEBYTECODE=1` never does, and
then every mockai module is compiled from source at each launch (~0.1 s more). `--compiled`
byte-compiles mockai first, to time what an installed copy does.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

CHAT = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}
).encode()


def command(extra: list[str]) -> list[str]:
    serve = [sys.executable, "-m", "mockai", "serve", "--port", "0", "--quiet", *extra]
    taskset = shutil.which("taskset")
    return [taskset, "-c", "0", *serve] if taskset else serve


def ask(url: str, path: str) -> None:
    """One request: POST a chat completion to `path` unless it is a GET-only path."""
    body = CHAT if "chat" in path or path.endswith("/responses") else None
    request = urllib.request.Request(
        url + path,
        data=body,
        headers={"Content-Type": "application/json", "Authorization": "Bearer sk-startup"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def cpu_seconds(pid: int) -> float | None:
    """CPU time `pid` has used so far (Linux's schedstat, in ns), or None where unknown: less
    noisy than wall time on a machine other work is loading."""
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as stat:
            return int(stat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def once(path: str, extra: list[str]) -> tuple[float, float | None]:
    """Wall time from launch to the first answer, and the server's CPU time until then."""
    began = time.perf_counter()
    process = subprocess.Popen(
        command(extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        while True:
            line = process.stdout.readline().decode()
            if not line:
                raise RuntimeError("mockai serve did not start")
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                break
        while True:
            try:
                ask(match.group(1), path)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.002)
        return time.perf_counter() - began, cpu_seconds(process.pid)
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument(
        "--compiled", action="store_true", help="byte-compile mockai first (as pip install does)"
    )
    parser.add_argument("extra", nargs="*", help="more `mockai serve` options (after --)")
    args = parser.parse_args()
    if args.compiled:
        import mockai

        compileall.compile_dir(os.path.dirname(mockai.__file__), quiet=1)
    once(args.path, args.extra)  # warm the file cache; not counted
    runs = [once(args.path, args.extra) for _ in range(args.runs)]
    times = [wall for wall, _ in runs]
    print(" ".join(f"{t:.3f}" for t in times))
    cpu = [used for _, used in runs if used is not None]
    used = f"; server CPU {statistics.median(cpu):.3f} s" if cpu else ""
    print(
        f"median {statistics.median(times):.3f} s (fastest {min(times):.3f}) over {args.runs} "
        f"runs ({args.path}){used}"
    )


if __name__ == "__main__":
    main()
