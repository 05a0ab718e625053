"""Prometheus metrics at `/_mockai/metrics` (prometheus-client's text format).

What a load test or a CI dashboard asks of a fake upstream: requests, latency and errors by
endpoint, model and status; which rule or cassette answered; faults injected by kind; tokens
served; streams and requests in flight.

The hot path only adds to plain dicts and lists (about two microseconds a request, where
prometheus-client's own metric objects cost ten to twenty-five: a lock and a label lookup per
update); a scrape turns the totals into prometheus-client metric families and its exposition.
Label values that come from clients are bounded, so a fuzzer (or a CI farm adding a uniquely
named runtime rule per test) cannot grow them: model names and rule names alike, each process
labels the first `MAX_MODELS` it sees, and the merged totals of several workers keep the
`MAX_MODELS` the server saw first (each worker notes when it first saw each), the others summed
under `other`. First seen, not most counted: a label kept stays kept as others come, so its
series and `other`'s only ever grow (chosen by count, labels would move in and out of `other`,
and its counter would go down).

Under `mockai serve --workers N` every worker writes its totals to a file of its own in one
folder (a temporary one `mockai serve` makes before the workers start) once a second,
and a scrape — whichever worker takes it — adds its live totals to the others' files: the numbers
are the server's, the other workers' at most a second old. Replicas are scraped one by one and
summed by Prometheus, as usual. prometheus-client is imported when a scrape comes, never at import.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mockai.pipeline.journal import JournalEntry
from mockai.pipeline.uploads import UploadBudget
from mockai.wire.outgoing import Body, EventStream, Outgoing, Relay
from mockai.wire.usage import usage_in

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FLUSH_SECONDS = 1.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MAX_MODELS = 200  # distinct model labels, and distinct rule labels; more are counted as "other"
# Where the model is in the keys of the counters that have one.
_MODEL_AT = {"errors": 1, "tokens": 0}

# The counters beside the request histograms: name -> (help, label names).
_COUNTERS = {
    "errors": (
        "Error answers, by endpoint, model, status and error code.",
        ("endpoint", "model", "status", "code"),
    ),
    "rule_hits": ("Requests answered by each scenario or runtime rule.", ("rule",)),
    "cassette_hits": ("Requests answered from each cassette.", ("cassette",)),
    "faults": ("Faults injected (by a rule, a header or chaos), by kind.", ("kind",)),
    "tokens": (
        "Tokens in the answers' usage, by model and kind (prompt or completion).",
        ("model", "kind"),
    ),
}


class Metrics:
    """The metrics of one server (one process): totals, and their exposition."""

    def __init__(
        self,
        folder: str | None = None,
        uploads: UploadBudget | None = None,
        max_models: int = MAX_MODELS,
    ) -> None:
        self.folder = folder  # several workers: where each one's totals are shared
        self.uploads = uploads  # the server's upload budget, read when totals are taken
        self.max_models = max_models  # model labels (and rule labels), for the process and server
        # (endpoint, model, status) -> [count, sum of seconds, bucket counts..., +Inf bucket]
        self.requests: dict[tuple[str, ...], list[float]] = {}
        self.headers: dict[tuple[str, ...], list[float]] = {}  # (endpoint, model) -> the same
        self.counters: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in _COUNTERS}
        self.in_flight = 0
        self.active_streams = 0
        self._models: dict[str, float] = {}  # model -> when this process first saw it
        self._rules: dict[str, float] = {}  # rule name -> the same

    # --- the hot path ---------------------------------------------------------------------------

    def arrived(self) -> None:
        """A request was journaled: in flight until `finished`, its answer made meanwhile (an
        upstream's awaited, for seconds or minutes) as well as delivered."""
        self.in_flight += 1

    def started(self, streaming: bool) -> None:
        """A request's answer is being delivered."""
        self.active_streams += streaming

    def finished(self, entry: JournalEntry, outgoing: Outgoing, streaming: bool) -> None:
        """A request is done: count it."""
        self.in_flight -= 1
        self.active_streams -= streaming
        endpoint = entry.endpoint or ("models" if "/models" in entry.path else "other")
        model = self._model(entry.model)
        status = str(entry.status)
        _observe(self.requests, (endpoint, model, status), entry.duration_ms / 1000)
        headers_ms = entry.headers_ms
        if headers_ms is not None:
            _observe(self.headers, (endpoint, model), headers_ms / 1000)
        counters = self.counters
        if entry.error is not None or entry.status >= 400:
            code = str((entry.error or {}).get("code") or "")
            _add(counters["errors"], (endpoint, model, status, code))
        if entry.rule is not None:
            if entry.source == "cassette":
                _add(counters["cassette_hits"], (entry.rule.rpartition("#")[0] or entry.rule,))
            elif entry.source in ("rule", "scenario"):
                for rule in entry.rules:  # (a batch of inputs: each rule that answered)
                    label = _first_seen(self._rules, rule, self.max_models)
                    _add(counters["rule_hits"], (label,))
        for fault in entry.faults:
            _add(counters["faults"], (fault.partition("=")[0].partition(";")[0],))
        if entry.source == "limits":
            _add(counters["faults"], ("budget_exceeded",))
        if entry.status == 200:
            self._count_tokens(model, outgoing)

    def _model(self, model: str | None) -> str:
        return "" if model is None else _first_seen(self._models, model, self.max_models)

    def _count_tokens(self, model: str, outgoing: Outgoing) -> None:
        if isinstance(outgoing, Body):
            usage = outgoing.usage
            self._count_usage(model, usage_in(outgoing.body) if usage is None else usage)
        elif isinstance(outgoing, EventStream) and outgoing.frames:
            # The usage the stream sent (its usage chunk, its final event, a recording's): what
            # the client is billed, a profile's own included (DeepSeek's adds the reasoning).
            # Else the usage the stream's codec reports: a chat or legacy completions stream
            # without `stream_options.include_usage` (the SDKs' default) sends none, and its
            # tokens went uncounted.
            sent = usage_in(b"".join(outgoing.frames[-3:]))
            reported = outgoing.usage
            self._count_usage(
                model, reported if reported is not None and not any(sent.values()) else sent
            )
        elif isinstance(outgoing, Relay):
            # An upstream's answer relayed (`--upstream`, recording): its usage comes last, in
            # the body or in the stream's last events, as in a recording's.
            self._count_usage(model, usage_in(_tail(outgoing.received)))

    def _count_usage(self, model: str, usage: Mapping[str, Any]) -> None:
        """Tokens from the usage object a codec rendered (the keys the body search reads)."""
        tokens = self.counters["tokens"]
        prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
        if isinstance(prompt, int) and prompt:
            _add(tokens, (model, "prompt"), prompt)
        completion = usage.get("completion_tokens", usage.get("output_tokens"))
        if isinstance(completion, int) and completion:
            _add(tokens, (model, "completion"), completion)

    # --- totals across workers ----------------------------------------------------------------

    def totals(self) -> dict[str, Any]:
        """This process's totals as JSON data."""
        return {
            "requests": [[*key, *values] for key, values in self.requests.items()],
            "headers": [[*key, *values] for key, values in self.headers.items()],
            "counters": {
                name: [[*key, value] for key, value in values.items()]
                for name, values in self.counters.items()
            },
            "models": [[model, seen] for model, seen in self._models.items()],
            "rules": [[rule, seen] for rule, seen in self._rules.items()],
            "in_flight": self.in_flight,
            "active_streams": self.active_streams,
            **_upload_totals(self.uploads),
        }

    def write_totals(self, totals: dict[str, Any] | None = None, pid: int | None = None) -> None:
        """Share this process's totals with the other workers (an atomic replace)."""
        if self.folder is None:
            return
        target = Path(self.folder) / f"{pid or os.getpid()}.json"
        # (named for the writer: one it left half-written, killed, is known for a dead one's)
        fd, staged = tempfile.mkstemp(dir=self.folder, prefix=f".{os.getpid()}.", suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(totals if totals is not None else self.totals(), out)
        os.replace(staged, target)

    def _everyone(self) -> Iterator[dict[str, Any]]:
        mine = self.totals()
        # Written before it is shown: the next scrape, whichever worker answers it, adds at least
        # these totals, so a counter never goes down between scrapes (summed with another
        # worker's file a second old, alternate scrapes saw two snapshots, neither the later).
        self.write_totals(mine)
        yield mine
        if self.folder is None:
            return
        own_file = f"{os.getpid()}.json"
        for path in Path(self.folder).glob("*.json"):
            if path.name != own_file:
                with contextlib.suppress(OSError, ValueError):
                    yield json.loads(path.read_text())

    def render(self) -> bytes:
        """The exposition text: every worker's totals added up."""
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(_merged(self._everyone(), self.max_models)))
        return generate_latest(registry)

    async def share(self) -> None:
        """With several workers, write the totals once a second, until cancelled (a task of
        the server's lifespan, `server/app.py`: an async generator, which mypyc, compiling
        this module, cannot hold)."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.write_totals()


# The last bytes of a relayed answer searched for its usage: the usage object, and a stream's
# last events after it (a Responses stream's `response.completed` holds the whole response,
# its usage last).
_USAGE_TAIL = 16 * 1024


def _tail(parts: Sequence[bytes]) -> bytes:
    """The last `_USAGE_TAIL` bytes or more of `parts`, whole parts joined (not the whole
    answer: a relayed stream may be megabytes)."""
    taken: list[bytes] = []
    size = 0
    for part in reversed(parts):
        taken.append(part)
        size += len(part)
        if size >= _USAGE_TAIL:
            break
    return b"".join(reversed(taken))


def _upload_totals(uploads: UploadBudget | None) -> dict[str, int]:
    if uploads is None:
        return {"upload_bytes": 0, "upload_peak": 0, "upload_waits": 0}
    return {
        "upload_bytes": uploads.held,
        "upload_peak": uploads.peak,
        "upload_waits": uploads.waited,
    }


def _first_seen(seen: dict[str, float], label: str, cap: int) -> str:
    """`label` if it is one of the first `cap` labels `seen` noted (noting it if there is room),
    else `other`."""
    if label in seen:
        return label
    if len(seen) >= cap:
        return "other"
    # (the wall clock: the workers' first sightings are compared with one another's)
    seen[label] = time.time()
    return label


def _observe(
    series: dict[tuple[str, ...], list[float]], key: tuple[str, ...], value: float
) -> None:
    values = series.get(key)
    if values is None:
        values = series[key] = [0.0] * (len(LATENCY_BUCKETS) + 3)
    values[0] += 1
    values[1] += value
    values[2 + bisect.bisect_left(LATENCY_BUCKETS, value)] += 1


def _add(counter: dict[tuple[str, ...], float], key: tuple[str, ...], amount: float = 1) -> None:
    counter[key] = counter.get(key, 0) + amount


def _merged(everyone: Iterator[dict[str, Any]], max_models: int = MAX_MODELS) -> dict[str, Any]:
    requests: dict[tuple[str, ...], list[float]] = {}
    headers: dict[tuple[str, ...], list[float]] = {}
    counters: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in _COUNTERS}
    # Summed over the workers; the peak is each worker's own (their budgets are apart).
    gauges = {"in_flight": 0.0, "active_streams": 0.0, "upload_bytes": 0.0, "upload_waits": 0.0}
    peak = 0.0
    first_seen: dict[str, float] = {}  # model -> when a worker first saw it
    rules_seen: dict[str, float] = {}  # rule -> the same
    for totals in everyone:
        for series, width, rows in (
            (requests, 3, totals["requests"]),
            (headers, 2, totals["headers"]),
        ):
            for row in rows:
                key, values = tuple(row[:width]), row[width:]
                mine = series.setdefault(key, [0.0] * len(values))
                for index, value in enumerate(values):
                    mine[index] += value
        for name, rows in totals["counters"].items():
            for row in rows:
                _add(counters.setdefault(name, {}), tuple(row[:-1]), row[-1])
        for gauge in gauges:
            gauges[gauge] += totals.get(gauge, 0)
        peak = max(peak, totals.get("upload_peak", 0))
        for model, seen in totals.get("models", ()):
            first_seen[model] = min(seen, first_seen.get(model, seen))
        for rule, seen in totals.get("rules", ()):
            rules_seen[rule] = min(seen, rules_seen.get(rule, seen))
    if len(rules_seen) > max_models:
        folded = _folded(rules_seen, max_models)
        counters["rule_hits"] = _fold_counter(counters.get("rule_hits", {}), 0, folded)
    if len(first_seen) > max_models:
        folded = _folded(first_seen, max_models)
        requests = _fold_series(requests, 1, folded)
        headers = _fold_series(headers, 1, folded)
        for name, at in _MODEL_AT.items():
            counters[name] = _fold_counter(counters.get(name, {}), at, folded)
    return {
        "requests": requests,
        "headers": headers,
        "counters": counters,
        **gauges,
        "upload_peak": peak,
    }


def _folded(first_seen: dict[str, float], cap: int) -> set[str]:
    """The labels beyond the `cap` seen first: each worker kept its own first ones, the server
    keeps those it saw first (the names break ties, so every worker answering a scrape keeps
    the same ones)."""
    kept = sorted(first_seen, key=lambda label: (first_seen[label], label))[:cap]
    return set(first_seen).difference(kept)


def _other(key: tuple[str, ...], at: int, folded: set[str]) -> tuple[str, ...]:
    """`key` with its label at `at` (a model, a rule) counted as `other` if one of `folded`."""
    return (*key[:at], "other", *key[at + 1 :]) if key[at] in folded else key


def _fold_series(
    series: dict[tuple[str, ...], list[float]], at: int, folded: set[str]
) -> dict[tuple[str, ...], list[float]]:
    result: dict[tuple[str, ...], list[float]] = {}
    for key, values in series.items():
        mine = result.setdefault(_other(key, at, folded), [0.0] * len(values))
        for index, value in enumerate(values):
            mine[index] += value
    return result


def _fold_counter(
    counter: dict[tuple[str, ...], float], at: int, folded: set[str]
) -> dict[tuple[str, ...], float]:
    result: dict[tuple[str, ...], float] = {}
    for key, value in counter.items():
        _add(result, _other(key, at, folded), value)
    return result


class _Collector:
    """prometheus-client metric families from merged totals."""

    def __init__(self, totals: dict[str, Any]) -> None:
        self.totals = totals

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        totals = self.totals
        labels = ("endpoint", "model", "status")
        requests = CounterMetricFamily(
            "mockai_requests",
            "Requests answered, by endpoint, model and status (0: no response was sent).",
            labels=labels,
        )
        for key, values in totals["requests"].items():
            requests.add_metric(key, values[0])
        yield requests
        yield _histogram(
            HistogramMetricFamily(
                "mockai_request_duration_seconds",
                "Time from a request's arrival to the end of its answer.",
                labels=labels,
            ),
            totals["requests"],
        )
        yield _histogram(
            HistogramMetricFamily(
                "mockai_time_to_headers_seconds",
                "Time from a request's arrival to its response headers (what clients wait for).",
                labels=("endpoint", "model"),
            ),
            totals["headers"],
        )
        for name, (text, names) in _COUNTERS.items():
            family = CounterMetricFamily(f"mockai_{name}", text, labels=names)
            for key, value in totals["counters"].get(name, {}).items():
                family.add_metric(key, value)
            yield family
        yield GaugeMetricFamily(
            "mockai_requests_in_flight", "Requests being answered right now.", totals["in_flight"]
        )
        yield GaugeMetricFamily(
            "mockai_active_streams",
            "Streamed answers being sent right now.",
            totals["active_streams"],
        )
        yield GaugeMetricFamily(
            "mockai_upload_bytes",
            "Bytes of large request bodies (1 MiB and up) read or being answered right now: at "
            "most upload_bytes a worker.",
            totals["upload_bytes"],
        )
        yield GaugeMetricFamily(
            "mockai_upload_bytes_peak",
            "The most bytes of large request bodies one worker held at once since it started.",
            totals["upload_peak"],
        )
        yield CounterMetricFamily(
            "mockai_upload_waits",
            "Requests whose large body waited, unread, for room in the upload budget.",
            totals["upload_waits"],
        )


def _histogram(family: Any, series: dict[tuple[str, ...], list[float]]) -> Any:
    for key, values in series.items():
        cumulative, buckets = 0.0, []
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), values[2:], strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        family.add_metric(key, buckets, values[1])
    return family


def worker_exited(folder: str, pid: int) -> None:
    """A worker ended: its counts keep counting in the sums, its live gauges drop to zero."""
    path = Path(folder) / f"{pid}.json"
    with contextlib.suppress(OSError, ValueError):
        totals = json.loads(path.read_text())
        totals["in_flight"] = totals["active_streams"] = totals["upload_bytes"] = 0
        Metrics(folder).write_totals(totals, pid=pid)


def orphaned(folder: str, parent: int) -> None:
    """A worker whose parent died (`kill -9`: nobody will remove the folder), at its exit: its
    totals go, and the parent's and those of every other process no longer running (a worker
    killed earlier, a write one left half-done); the folder goes with the last worker out (the
    others still write there: theirs is not empty yet)."""
    me = os.getpid()
    with contextlib.suppress(OSError):
        for path in Path(folder).iterdir():
            writer = _writer(path.name)
            if writer in (me, parent) or (writer is not None and not _running(writer)):
                with contextlib.suppress(OSError):
                    path.unlink()
        os.rmdir(folder)


def _writer(name: str) -> int | None:
    """The process whose file `name` is: `PID.json`, or `.PID.XXXX.tmp` (`write_totals`)."""
    head = name.removeprefix(".").partition(".")[0]
    return int(head) if head.isascii() and head.isdigit() else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # (another user's process, which took a dead worker's pid)
        return True
    return True
