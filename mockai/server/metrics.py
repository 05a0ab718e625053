"""Prometheus metrics at `/_mockai/metrics` (prometheus-client's text format).

What a load test or a CI dashboard asks of a fake upstream: requests, latency and errors by
endpoint, model and status; which rule or cassette answered; faults injected by kind; tokens
served; streams and requests in flight.

One registry per server (a test process may run many). Under `mockai serve --workers N` the
metrics use prometheus-client's multiprocess mode: every worker writes its own values to files in
one folder (`PROMETHEUS_MULTIPROC_DIR`, set by `mockai serve` before the workers start) and a
scrape, whichever worker takes it, adds them up — so the numbers are the server's, not one
worker's. Replicas are scraped one by one and summed by Prometheus, as usual.

The hot path pays a few microseconds per request (label lookups, a histogram bucket), and label
values that come from clients (model names) are bounded, so a fuzzer cannot grow the registry.
prometheus-client is imported when the first server is built, never at import time.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from mockai.pipeline.journal import JournalEntry
from mockai.wire.outgoing import Body, EventStream, Outgoing

if TYPE_CHECKING:
    from mockai.config import Config

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MAX_MODELS = 200  # distinct model labels; more are counted as "other"
_USAGE = re.compile(rb'"(prompt_tokens|completion_tokens|input_tokens|output_tokens)"\s*:\s*(\d+)')
_PROMPT = (b"prompt_tokens", b"input_tokens")


class Metrics:
    """The metrics of one server, and their exposition."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess_dir = multiprocess_dir
        # In multiprocess mode the values live in files; a scrape reads them all (`render`).
        self.registry = None if multiprocess_dir else CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "mockai_requests",
            "Requests answered, by endpoint, model and status (0: no response was sent).",
            ("endpoint", "model", "status"),
            registry=registry,
        )
        self.errors = Counter(
            "mockai_errors",
            "Error answers, by endpoint, model, status and error code.",
            ("endpoint", "model", "status", "code"),
            registry=registry,
        )
        self.duration = Histogram(
            "mockai_request_duration_seconds",
            "Time from a request's arrival to the end of its answer.",
            ("endpoint", "model", "status"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.headers = Histogram(
            "mockai_time_to_headers_seconds",
            "Time from a request's arrival to its response headers (latency as clients see it).",
            ("endpoint", "model"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rule_hits = Counter(
            "mockai_rule_hits",
            "Requests answered by each scenario or runtime rule.",
            ("rule",),
            registry=registry,
        )
        self.cassette_hits = Counter(
            "mockai_cassette_hits",
            "Requests answered from each cassette.",
            ("cassette",),
            registry=registry,
        )
        self.faults = Counter(
            "mockai_faults",
            "Faults injected (by a rule, a header or chaos), by kind.",
            ("kind",),
            registry=registry,
        )
        self.tokens = Counter(
            "mockai_tokens",
            "Tokens in the answers' usage, by model and kind (prompt or completion).",
            ("model", "kind"),
            registry=registry,
        )
        live: dict[str, Any] = {"multiprocess_mode": "livesum"} if multiprocess_dir else {}
        self.active_streams = Gauge(
            "mockai_active_streams",
            "Streamed answers being sent right now.",
            registry=registry,
            **live,
        )
        self.in_flight = Gauge(
            "mockai_requests_in_flight",
            "Requests being answered right now.",
            registry=registry,
            **live,
        )
        self._models: set[str] = set()

    @classmethod
    def for_server(cls, config: Config | None = None) -> Metrics:
        """The metrics of a new server: in multiprocess mode when `mockai serve` set it up."""
        return cls(os.environ.get(MULTIPROCESS_ENV) or None)

    def _model(self, model: str | None) -> str:
        if model is None:
            return ""
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODELS:
            return "other"
        self._models.add(model)
        return model

    def observe(self, entry: JournalEntry, outgoing: Outgoing) -> None:
        """Count one finished request."""
        endpoint = entry.endpoint or ("models" if "/models" in entry.path else "other")
        model = self._model(entry.model)
        status = str(entry.status)
        self.requests.labels(endpoint, model, status).inc()
        seconds = entry.duration_ms / 1000
        self.duration.labels(endpoint, model, status).observe(seconds)
        headers_ms = entry.response_headers.get("openai-processing-ms")
        if headers_ms is not None and headers_ms.isdigit():
            self.headers.labels(endpoint, model).observe(int(headers_ms) / 1000)
        if entry.error is not None or entry.status >= 400:
            code = str((entry.error or {}).get("code") or "")
            self.errors.labels(endpoint, model, status, code).inc()
        if entry.rule is not None:
            if entry.source == "cassette":
                self.cassette_hits.labels(entry.rule.rpartition("#")[0] or entry.rule).inc()
            elif entry.source in ("rule", "scenario"):
                self.rule_hits.labels(entry.rule).inc()
        for fault in entry.faults:
            self.faults.labels(fault.partition("=")[0].partition(";")[0]).inc()
        if entry.source == "limits":
            self.faults.labels("budget_exceeded").inc()
        if entry.status == 200:
            self._count_tokens(model, outgoing)

    def _count_tokens(self, model: str, outgoing: Outgoing) -> None:
        if isinstance(outgoing, Body):
            text = outgoing.body[-2048:]  # usage comes last in every body mockai writes
        elif isinstance(outgoing, EventStream) and outgoing.frames:
            text = b"".join(outgoing.frames[-3:])[-4096:]  # the usage chunk or the final event
        else:
            return
        prompt = completion = 0
        for name, count in _USAGE.findall(text):
            if name in _PROMPT:
                prompt = int(count)
            else:
                completion = int(count)
        if prompt:
            self.tokens.labels(model, "prompt").inc(prompt)
        if completion:
            self.tokens.labels(model, "completion").inc(completion)

    def render(self) -> bytes:
        """The exposition text: this server's registry, or every worker's values."""
        from prometheus_client import CollectorRegistry, generate_latest

        if self.registry is not None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters keep counting in the sum)."""
    folder = os.environ.get(MULTIPROCESS_ENV)
    if folder:
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]
