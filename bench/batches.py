"""Peak memory and time of a batch of large answers: answering it, then downloading its output.

    python bench/batches.py                     # 3,000 lines of text-embedding-3-large (~122 MB)
    python bench/batches.py --lines 28000       # past 1 GiB of output: the last lines fail
    python bench/batches.py --file-mb 64        # a server holding at most 64 MiB of files

Starts `mockai serve --quiet`, uploads a JSONL file of `--lines` embeddings requests (one input
each, 3,072 floats an answer, ~40 KB of output a line), creates the batch and polls it to its end
through the `openai` SDK, then downloads its output file. Prints the server's resident memory
(VmRSS, VmHWM: Linux) idle, after answering and after the download, the output's size, the
peaks over idle as multiples of it, and the times.
"""

from __future__ import annotations

import argparse
import json
import time

import openai
import perf  # bench/perf.py: starting servers

MIB = 1 << 20


def batch_file(lines: int) -> bytes:
    return "".join(
        json.dumps(
            {
                "custom_id": f"line-{i}",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": "text-embedding-3-large", "input": f"text number {i}"},
            }
        )
        + "\n"
        for i in range(lines)
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=3000, help="embeddings requests (3000)")
    parser.add_argument("--file-mb", type=float, help="MOCKAI_FILE_BYTES in MiB (default 1024)")
    args = parser.parse_args()
    env = {} if args.file_mb is None else {"MOCKAI_FILE_BYTES": str(int(args.file_mb * MIB))}
    server = perf.start_server("mockai", perf.mockai_command(), None, env=env)
    pid = server.process.pid
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", timeout=900, max_retries=0)
        idle = perf.status_mib(pid, "VmRSS")
        upload = client.files.create(file=("batch.jsonl", batch_file(args.lines)), purpose="batch")
        started = time.perf_counter()
        batch = client.batches.create(
            input_file_id=upload.id, endpoint="/v1/embeddings", completion_window="24h"
        )
        while batch.status not in ("completed", "failed", "cancelled", "expired"):
            batch = client.batches.retrieve(batch.id)
        answered = time.perf_counter() - started
        answering_peak = perf.status_mib(pid, "VmHWM")
        output = 0
        started = time.perf_counter()
        if batch.output_file_id is not None:
            with client.files.with_streaming_response.content(batch.output_file_id) as answer:
                output = sum(len(chunk) for chunk in answer.iter_bytes(MIB))
        downloaded = time.perf_counter() - started
        download_peak = perf.status_mib(pid, "VmHWM")
        counts = batch.request_counts
    finally:
        server.stop()
    size = output / MIB
    print(f"batch of {args.lines} embeddings lines: {batch.status}, {counts}")
    print(f"output file            {size:8.1f} MiB")
    print(f"idle                   {idle:8.1f} MiB")
    print(
        f"peak answering         {answering_peak:8.1f} MiB  "
        f"(idle + {(answering_peak - idle) / max(size, 1e-9):.2f}x the output)  {answered:.1f} s"
    )
    print(
        f"peak with the download {download_peak:8.1f} MiB  "
        f"(idle + {(download_peak - idle) / max(size, 1e-9):.2f}x the output)  {downloaded:.1f} s"
    )


if __name__ == "__main__":
    main()
