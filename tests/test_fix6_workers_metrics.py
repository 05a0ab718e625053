"""`mockai serve --workers` looking after its workers, and the metrics' rule labels bounded: a
worker killed outright is waited for, said on stderr and its live gauges leave the sums; a parent
killed outright no longer leaves its metrics folder behind; `mockai_rule_hits_total` keeps at
most `MAX_MODELS` rule labels, the rest counted under `other` — against real servers on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conformance import checked_server
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from service_support import ServeProcess, fresh_connections

from mockai.server.metrics import MAX_MODELS, Metrics

MODEL = "gpt-4o-mini"


def _samples(text: str, family_name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The `_total` (or gauge) samples of one family in an exposition: labels -> value."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == family_name:
            for sample in family.samples:
                if not sample.name.endswith("_created"):
                    found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _gauges(http: httpx.Client, served: ServeProcess) -> tuple[float, float]:
    text = http.get(served.url_for("/_mockai/metrics")).text
    in_flight = _samples(text, "mockai_requests_in_flight")[()]
    streams = _samples(text, "mockai_active_streams")[()]
    return in_flight, streams


def _gauges_or_none(http: httpx.Client, served: ServeProcess) -> tuple[float, float] | None:
    """The gauges, or None for a connection the kernel had queued on the killed worker's socket
    as it died (reset: the next one goes to the worker left)."""
    try:
        return _gauges(http, served)
    except httpx.TransportError:
        return None


def _in_process_table(pid: int) -> bool:
    """Whether `pid` still has an entry: running, or dead and never waited for (a zombie)."""
    return Path(f"/proc/{pid}").exists()


# --- a worker killed outright ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_workers() -> Iterator[ServeProcess]:
    with ServeProcess(["--workers", "2", "--quiet", "--grace", "1"]) as served:
        yield served


def _connections_to_worker(served: ServeProcess, count: int) -> list[httpx.Client]:
    """`count` clients, each holding one keep-alive connection the worker (not the parent) took."""
    assert served.process is not None
    parent = served.process.pid
    held: list[httpx.Client] = []
    deadline = time.monotonic() + 10
    while len(held) < count and time.monotonic() < deadline:
        client = httpx.Client(limits=httpx.Limits(max_connections=1), timeout=30)
        if client.get(served.url_for("/_mockai/health")).json()["pid"] != parent:
            held.append(client)
        else:
            client.close()
    assert len(held) == count
    return held


def _stream(client: httpx.Client, url: str, outcome: list[str]) -> None:
    """A slowly paced chat stream on `client`'s connection, read to its end or its cut."""
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-mockai-stream": "ttft=50ms,chunk_delay=2s"}
    try:
        with client.stream("POST", url, json=body, headers=headers) as answer:
            for _ in answer.iter_bytes():
                pass
        outcome.append("done")
    except httpx.HTTPError as error:
        outcome.append(type(error).__name__)


def test_a_worker_killed_outright_is_waited_for_said_and_its_gauges_drop(
    two_workers: ServeProcess,
) -> None:
    """A worker SIGKILLed while it held streams stayed a zombie, nothing was said, and its last
    `mockai_requests_in_flight` / `mockai_active_streams` were summed into every scrape for good."""
    served = two_workers
    streaming = 3
    clients = _connections_to_worker(served, streaming)
    worker = 0
    with contextlib.ExitStack() as stack:
        for client in clients:
            stack.callback(client.close)
        # (which worker: the pid its connections reported)
        worker = clients[0].get(served.url_for("/_mockai/health")).json()["pid"]
        outcome: list[str] = []
        threads = [
            threading.Thread(
                target=_stream, args=(client, served.url + "/chat/completions", outcome)
            )
            for client in clients
        ]
        for thread in threads:
            thread.start()
        with fresh_connections() as http:
            # The worker shares its gauges once a second: wait until they show its streams.
            deadline = time.monotonic() + 10
            while _gauges(http, served) != (streaming, streaming):
                assert time.monotonic() < deadline, _gauges(http, served)
                time.sleep(0.1)
            os.kill(worker, signal.SIGKILL)
            for thread in threads:
                thread.join(10)
            assert outcome and "done" not in outcome  # (cut with their worker)
            deadline = time.monotonic() + 10
            while _gauges_or_none(http, served) != (0, 0):
                assert time.monotonic() < deadline, _gauges_or_none(http, served)
                time.sleep(0.1)
            # Waited for (no zombie), said, and the server still answers, on the one process left.
            deadline = time.monotonic() + 10
            while _in_process_table(worker) or f"worker {worker} exited" not in served.printed():
                assert time.monotonic() < deadline, served.printed()
                time.sleep(0.1)
            assert f"mockai: worker {worker} exited (signal 9)" in served.printed()
            for _ in range(10):
                assert http.get(served.url_for("/_mockai/health")).status_code == 200


# --- a parent killed outright -------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers in /proc")
def test_a_parent_killed_outright_leaves_no_metrics_folder(tmp_path: Path) -> None:
    """The workers ended with their parent, but its `mockai-metrics-*` folder stayed in /tmp,
    one per `kill -9`: nobody removed it. The last worker out now does."""
    served = ServeProcess(
        ["--workers", "3", "--quiet", "--grace", "0"], env={"TMPDIR": str(tmp_path)}
    ).start()
    assert served.process is not None
    parent = served.process.pid  # (and its process group's id: start_new_session)
    try:
        [folder] = tmp_path.glob("mockai-metrics-*")
        # Every process has shared its totals (a scrape writes the taker's at once).
        deadline = time.monotonic() + 10
        with fresh_connections() as http:
            while len(list(folder.glob("*.json"))) < 3:
                assert time.monotonic() < deadline, list(folder.iterdir())
                http.get(served.url_for("/_mockai/metrics"))
                time.sleep(0.1)
        served.process.kill()
        served.process.wait(10)
        deadline = time.monotonic() + 10
        while folder.exists():
            assert time.monotonic() < deadline, list(folder.iterdir())
            time.sleep(0.1)
    finally:
        # Workers that outlived it hold its output pipe open: end them before reading it out.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent, signal.SIGKILL)
        served.stop()


# --- rule labels bounded --------------------------------------------------------------------------


def _rule_hits(text: str) -> dict[str, float]:
    return {
        dict(labels)["rule"]: value for labels, value in _samples(text, "mockai_rule_hits").items()
    }


def test_rule_labels_are_capped_and_the_rest_counted_as_other() -> None:
    """A CI farm adding a uniquely named runtime rule per test grew `mockai_rule_hits_total` by a
    series a rule, for good (4,000 rules: 4,000 series, 297 KB a scrape)."""
    sent = MAX_MODELS + 20
    with checked_server() as server, httpx.Client(base_url=server.url, timeout=10) as http:
        names = [f"test_{index:04d}_" for index in range(sent)]
        server.add_rules(
            {"name": name, "match": {"user": name}, "reply": {"content": "ok"}} for name in names
        )
        for name in names:
            answer = http.post(
                "/chat/completions",
                json={"model": MODEL, "messages": [{"role": "user", "content": name}]},
            )
            assert answer.json()["choices"][0]["message"]["content"] == "ok"
        hits = _rule_hits(http.get(server.url_for("/_mockai/metrics")).text)
    assert set(hits) == {f"test_{index:04d}_" for index in range(MAX_MODELS)} | {"other"}
    assert hits["other"] == sent - MAX_MODELS
    assert sum(hits.values()) == sent


# A worker's totals as it shares them: (rule, first seen, hits) rows.
_worker = st.lists(
    st.tuples(
        st.sampled_from([f"r{index}" for index in range(12)]),
        st.floats(min_value=0, max_value=100, allow_nan=False),
        st.integers(min_value=1, max_value=5),
    ),
    max_size=12,
    unique_by=lambda row: row[0],
)


@settings(max_examples=60, deadline=None)
@given(workers=st.lists(_worker, min_size=1, max_size=4), cap=st.integers(min_value=1, max_value=8))
def test_merged_rule_labels_keep_those_seen_first_and_fold_the_rest_into_other(
    workers: list[list[tuple[str, float, int]]], cap: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Whatever rules the workers saw: at most `cap` rule labels for the server, the ones first
    seen earliest (by any worker; ties by name), every hit kept (the rest under `other`)."""
    folder = tmp_path_factory.mktemp("metrics")
    for pid, rows in enumerate(workers, start=1):
        totals = {
            "requests": [],
            "headers": [],
            "counters": {"rule_hits": [[rule, hits] for rule, _, hits in rows]},
            "rules": [[rule, seen] for rule, seen, _ in rows],
            "in_flight": 0,
            "active_streams": 0,
        }
        Metrics(str(folder)).write_totals(totals, pid=pid)
    first_seen: dict[str, float] = {}
    total: dict[str, int] = {}
    for rows in workers:
        for rule, seen, hits in rows:
            first_seen[rule] = min(seen, first_seen.get(rule, seen))
            total[rule] = total.get(rule, 0) + hits
    kept = sorted(first_seen, key=lambda rule: (first_seen[rule], rule))[:cap]
    hits = _rule_hits(Metrics(str(folder), max_models=cap).render().decode())
    assert set(hits) - {"other"} == set(kept)
    assert sum(hits.values()) == sum(total.values())
    for rule in kept:
        assert hits[rule] == total[rule]
