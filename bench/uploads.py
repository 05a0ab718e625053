"""Peak memory of many large uploads at once, with the upload budget and without it.

    python bench/uploads.py                       # 20 simultaneous 20 MB transcriptions
    python bench/uploads.py --uploads 40 --mb 10  # other loads
    python bench/uploads.py --budget-mb 64        # another budget than the default

Starts `mockai serve --quiet` twice in one run: as configured by default (`MOCKAI_UPLOAD_BYTES`,
128 MiB of large bodies read or answered at once) and with the budget out of the way (1 TiB),
sends the same simultaneous `POST /v1/audio/transcriptions` uploads to each (one thread and
connection per upload) and prints the server's peak resident memory (VmHWM, Linux), the time the
uploads took and the answers' statuses. Transcriptions are not stored, so what the peak holds is
the bodies in flight.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import time

import httpx
import perf  # bench/perf.py: starting servers

from mockai.config import Config

UNBOUNDED = 1 << 40


def load(url: str, uploads: int, data: bytes) -> tuple[float, list[int]]:
    def one(index: int) -> int:
        with httpx.Client(timeout=300) as client:
            answer = client.post(
                url + "/v1/audio/transcriptions",
                data={"model": "whisper-1"},
                files={"file": (f"memo{index}.wav", data, "audio/wav")},
            )
            return answer.status_code

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(uploads) as pool:
        statuses = list(pool.map(one, range(uploads)))
    return time.perf_counter() - started, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=20, help="simultaneous uploads (20)")
    parser.add_argument("--mb", type=float, default=20, help="megabytes each (20)")
    parser.add_argument(
        "--budget-mb", type=float, help="the budget's MiB (default: the server's own, 128)"
    )
    args = parser.parse_args()
    data = os.urandom(int(args.mb * 1_000_000))
    default = Config.upload_bytes if args.budget_mb is None else int(args.budget_mb * (1 << 20))
    results = {}
    for name, budget in (("budget", default), ("no budget", UNBOUNDED)):
        server = perf.start_server(
            name, perf.mockai_command(), None, env={"MOCKAI_UPLOAD_BYTES": str(budget)}
        )
        try:
            idle = perf.status_mib(server.process.pid, "VmHWM")
            seconds, statuses = load(server.url, args.uploads, data)
            peak = perf.status_mib(server.process.pid, "VmHWM")
        finally:
            server.stop()
        results[name] = peak
        codes = sorted(set(statuses))
        print(
            f"{name:17} idle {idle:6.1f} MiB  peak {peak:7.1f} MiB  "
            f"{args.uploads} x {args.mb:g} MB in {seconds:5.2f} s  statuses {codes}"
        )
    ratio = results["budget"] / results["no budget"]
    print(f"peak with the budget / without: {ratio:.2f}x")


if __name__ == "__main__":
    main()
