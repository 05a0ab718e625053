"""A batch's lines outlive the worker answering them (`--state redis://`, `MOCKAI_BATCH_LEASE`).

One process answers a batch's lines: the first whose poll takes the batch past `in_progress`.
It renews its claim while it answers; a worker killed meanwhile (`kill -9`, a replica gone) had
left its batch `in_progress`, or `cancelling` once cancelled, for good. Now the first poll past
the lease, on any worker, answers the lines again, or ends the cancelled batch.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from conformance import checked_server
from sdk import sdk
from service_support import RedisServer, ServeProcess
from test_fix6_batches import TERMINAL, create, image_lines, jsonl, rows

from mockai import MockServer
from mockai.config import Config
from mockai.errors import ConfigError

IMAGES = "/v1/images/generations"


def batch_lines(url: str, batch_id: str) -> int:
    """How many of the batch's lines the shared journal holds (every worker's)."""
    listed = httpx.get(f"{url}/_mockai/requests", params={"bodies": "0"}, timeout=10).json()
    return sum(1 for entry in listed["data"] if entry.get("batch") == batch_id)


def poll_until_ended(client: openai.OpenAI, batch_id: str, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    batch = client.batches.retrieve(batch_id)
    while batch.status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = client.batches.retrieve(batch_id)
    return batch


@contextlib.contextmanager
def answering_elsewhere(
    redis: RedisServer, lease: float, lines: int
) -> Iterator[tuple[ServeProcess, openai.OpenAI, str, threading.Thread]]:
    """A `mockai serve` process answering a batch's lines (a poll through it claimed them),
    beside a second server sharing its state; yields the process, a client of the second server,
    the batch's id and the thread whose poll waits for the lines."""
    state = redis.url()
    process = ServeProcess(
        ["--state", state, "--quiet"], env={"MOCKAI_BATCH_LEASE": str(lease)}
    ).start()
    try:
        with (
            MockServer(state=state, batch_lease=lease, log_requests=False) as other,
            sdk(other) as client,
        ):
            # Pictures: each line is rendered off the loop (~30 ms), so the lines take a while.
            batch = client.batches.retrieve(create(client, image_lines(lines), IMAGES).id)
            assert batch.status == "in_progress"

            def answer_lines() -> None:  # (the process may be killed under it)
                with contextlib.suppress(httpx.HTTPError):
                    httpx.get(f"{process.url}/batches/{batch.id}", timeout=60)

            waiting = threading.Thread(target=answer_lines, daemon=True)
            waiting.start()
            deadline = time.monotonic() + 10
            while not batch_lines(process.base_url, batch.id) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert batch_lines(process.base_url, batch.id) > 0, "the process never began"
            yield process, client, batch.id, waiting
    finally:
        process.stop()


def kill(process: ServeProcess, waiting: threading.Thread) -> None:
    assert process.process is not None
    os.killpg(process.process.pid, signal.SIGKILL)
    process.wait(10)
    waiting.join(timeout=10)


def test_with_redis_the_lines_of_a_batch_whose_worker_died_are_answered_by_another(
    redis: RedisServer,
) -> None:
    with answering_elsewhere(redis, lease=1.0, lines=40) as (process, client, batch_id, w):
        kill(process, w)
        assert client.batches.retrieve(batch_id).status == "in_progress"
        ended = poll_until_ended(client, batch_id, seconds=60)
        assert ended.status == "completed", ended
        output = rows(client, ended.output_file_id)
        # Every line answered, each once in the output, in the file's order.
        assert [row["custom_id"] for row in output] == [f"p{i}" for i in range(40)]
        assert all(row["response"]["status_code"] == 200 for row in output)
        counts = ended.request_counts
        assert (counts.total, counts.completed, counts.failed) == (40, 40, 0)
        assert ended.error_file_id is None


def test_with_redis_a_cancelled_batch_whose_worker_died_ends_cancelled(
    redis: RedisServer,
) -> None:
    with answering_elsewhere(redis, lease=1.0, lines=40) as (process, client, batch_id, w):
        kill(process, w)
        assert client.batches.cancel(batch_id).status == "cancelling"
        ended = poll_until_ended(client, batch_id, seconds=30)
        assert ended.status == "cancelled" and ended.cancelled_at is not None
        # The dead worker's answers went with it: nothing to write.
        assert (ended.output_file_id, ended.error_file_id) == (None, None)


def test_with_redis_a_live_worker_keeps_its_lines_past_the_lease(redis: RedisServer) -> None:
    """The lines take longer than the lease: the worker answering them renews it, so another
    worker polling all along never answers them a second time."""
    lease, lines = 1.0, 100
    with answering_elsewhere(redis, lease, lines) as (process, client, batch_id, waiting):
        began = time.monotonic()
        while waiting.is_alive():
            shown = client.batches.retrieve(batch_id)
            if shown.status != "in_progress":
                break
            time.sleep(0.05)
        waiting.join(timeout=60)
        took = time.monotonic() - began
        ended = poll_until_ended(client, batch_id, seconds=30)
        assert ended.status == "completed", ended
        # (What the test is about: the lines outlasted the lease more than twice over.)
        assert took > 2 * lease, f"the lines took only {took:.2f} s"
        assert batch_lines(process.base_url, batch_id) == lines  # each answered once
        output = rows(client, ended.output_file_id)
        assert [row["custom_id"] for row in output] == [f"p{i}" for i in range(lines)]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("0", "must be at least 1 second"),
        ("-1", "must be at least 1 second"),
        ("0.001", "must be at least 1 second"),
        ("nan", "is not a finite number"),
        ("soon", "is not a finite number"),
    ],
)
def test_a_lease_that_is_not_a_positive_number_of_seconds_is_refused(raw: str, why: str) -> None:
    with pytest.raises(ConfigError, match=f"MOCKAI_BATCH_LEASE: .*{why}"):
        Config.from_env({"MOCKAI_BATCH_LEASE": raw})
    assert Config.from_env({"MOCKAI_BATCH_LEASE": "2.5"}).batch_lease == 2.5


def embedding_lines(count: int, inputs: int) -> bytes:
    """Lines whose answers are large (text-embedding-3-large: ~3.4 MB a line of 100 inputs),
    so that writing the output file takes a while."""
    return jsonl(
        [
            {
                "custom_id": f"e{i}",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {
                    "model": "text-embedding-3-large",
                    "input": [f"line {i} input {j} about tides" for j in range(inputs)],
                },
            }
            for i in range(count)
        ]
    )


def stored_record(state: Any, batch_id: str) -> dict[str, Any] | None:
    """The batch's record as Redis holds it (mockai's JSON), or None."""
    [key] = state.keys(f"*records:batches:r:{batch_id}") or [None]
    raw = state.get(key) if key is not None else None
    return json.loads(raw) if raw is not None else None


def test_with_redis_a_worker_stopped_writing_the_output_files_is_taken_over(
    redis: RedisServer,
) -> None:
    """The worker writing a batch's output files stops (SIGSTOP: a dead or stuck replica) once
    it has begun: another writes them past the lease. Before, the writer took the answers out of
    the shared state first, so one that died then left the batch `finalizing` for good, its
    answers lost; and the stopped one, resumed, must leave no second output file behind."""
    import redis as redis_py

    state_url = redis.url()
    state = redis_py.Redis(port=redis.port)
    writer = ServeProcess(["--state", state_url, "--quiet"], env={"MOCKAI_BATCH_LEASE": "1"})
    writer.start()
    try:
        with (
            MockServer(state=state_url, batch_lease=1, log_requests=False) as other,
            sdk(other) as client,
            sdk(writer) as through_writer,
        ):
            upload = client.files.create(
                file=("in.jsonl", embedding_lines(12, 100)), purpose="batch"
            )
            batch = client.batches.create(
                input_file_id=upload.id, endpoint="/v1/embeddings", completion_window="24h"
            )
            assert through_writer.batches.retrieve(batch.id).status == "in_progress"
            assert through_writer.batches.retrieve(batch.id).status == "finalizing"
            ended: dict[str, Any] = {}
            answered = stored_record(state, batch.id)
            assert answered is not None

            def write() -> None:  # (this retrieval writes the files; the process is stopped)
                with contextlib.suppress(httpx.HTTPError):
                    got = httpx.get(f"{writer.url}/batches/{batch.id}", timeout=60)
                    ended["status"] = got.json().get("status")

            writing = threading.Thread(target=write, daemon=True)
            writing.start()
            deadline = time.monotonic() + 10
            held = stored_record(state, batch.id)
            # Stopped as soon as it has begun: it holds the batch (or, before, took its answers).
            while time.monotonic() < deadline:
                held = stored_record(state, batch.id)
                results = state.keys(f"*records:batch-results:r:{batch.id}")
                if held is not None and (held["runner"] != answered["runner"] or not results):
                    break
            assert writer.process is not None
            writer.process.send_signal(signal.SIGSTOP)
            try:
                assert held is not None and held["status"] == "finalizing", held
                began = time.monotonic()
                done = poll_until_ended(client, batch.id, seconds=30)
                assert done.status == "completed", done
                assert time.monotonic() - began > 0.5  # (not before the writer's lease lapsed)
                assert done.output_file_id is not None and done.error_file_id is None
                output = rows(client, done.output_file_id)
                assert [row["custom_id"] for row in output] == [f"e{i}" for i in range(12)]
            finally:
                writer.process.send_signal(signal.SIGCONT)
            writing.join(timeout=60)
            assert ended.get("status") == "completed"  # the resumed writer shows the batch done
            # ... and left no file of its own: the input and the one output file.
            assert {f.id for f in client.files.list().data} == {upload.id, done.output_file_id}
    finally:
        writer.stop()
        state.close()


def test_with_redis_answering_that_failed_while_redis_was_away_is_tried_again(
    redis: RedisServer,
) -> None:
    """Redis away for longer than its timeout while a server answers a batch's lines: that
    poll is the 503 it should be; a poll once Redis is back answers them again. Before, every
    later poll of that server answered the same stored 503, the batch `in_progress` for good."""
    with checked_server(state=redis.url(), batch_lease=1) as running, sdk(running) as client:
        batch = client.batches.retrieve(create(client, image_lines(20), IMAGES).id)
        assert batch.status == "in_progress"
        failed: dict[str, int] = {}

        def answer_lines() -> None:
            with contextlib.suppress(httpx.HTTPError):
                got = httpx.get(f"{running.url}/batches/{batch.id}", timeout=60)
                failed["status"] = got.status_code

        answering = threading.Thread(target=answer_lines, daemon=True)
        answering.start()
        deadline = time.monotonic() + 10
        while not batch_lines(running.base_url, batch.id) and time.monotonic() < deadline:
            time.sleep(0.005)
        redis.pause()
        try:
            answering.join(timeout=30)
        finally:
            redis.resume()
        assert failed == {"status": 503}  # (what the test is about: the answering failed)
        # Polled as a client does after a 503 ("Retry shortly"): again, until it ends. (The
        # server answers 503 at once for a while after Redis failed it: its circuit breaker.)
        deadline = time.monotonic() + 60
        ended = None
        while time.monotonic() < deadline:
            try:
                ended = client.batches.retrieve(batch.id)
            except openai.InternalServerError as error:
                assert error.status_code == 503
                time.sleep(0.2)
                continue
            if ended.status in TERMINAL:
                break
        assert ended is not None and ended.status == "completed", ended
        output = rows(client, ended.output_file_id)
        assert [row["custom_id"] for row in output] == [f"p{i}" for i in range(20)]
