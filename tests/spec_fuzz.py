"""Fuzz mockai's HTTP surface from the official OpenAPI spec (tests/openapi/openapi.json).

schemathesis generates requests for every operation mockai serves, valid ones ("positive") and
ones breaking the spec ("negative"), in two phases: `coverage` (deterministic: each property
missing, of every wrong type, at its bounds; ~31,500 cases over the operations) and `fuzzing`
(random, from hypothesis, derandomized). Each goes to a real server on 127.0.0.1 and its answer
must pass these checks:

- `not_a_server_error`: no 5xx (no case asks for a fault: none carries `x-mockai-fault`);
- `error_shape`: an error is JSON, `{"error": {message, type, param, code}}`, with `x-request-id`;
- `status_fits`: a 4xx is one the request can earn (404 only for ids and models, 405 only for
  a method the operation does not have);
- `response_schema`: a 2xx answer (JSON or SSE events) validates against the spec
  (`conformance.check_entry`, on the server's journal entry of the request);
- `server_log`: nothing logged at ERROR, no traceback (the `mockai` and `aiohttp` loggers).

Operations that take ids run half their cases against objects that exist (a stored response, a
stored chat completion, a conversation and its item), re-created after a case deletes them.
Used by tests/test_spec_fuzz.py (a small deterministic run) and scripts/fuzz_spec.py (long runs).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import conformance
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from mockai import MockServer

# The spec's operations mockai implements (its paths are relative to the spec's `/v1` server).
SERVED = (
    r"^/(chat/completions|completions|embeddings|moderations|models|conversations)(/|$)",
    r"^/responses($|/\{response_id\}|/input_tokens$)",
)
NOT_SERVED = r"compact|\?beta=true"  # the Responses beta variants, /responses/compact

CHECKS = ("not_a_server_error", "error_shape", "status_fits", "response_schema", "server_log")
ERROR_KEYS = {"message", "type", "param", "code"}
MODES = {"positive": GenerationMode.POSITIVE, "negative": GenerationMode.NEGATIVE}


@functools.cache
def operations() -> tuple[Any, ...]:
    """The spec's operations mockai serves, in spec order."""
    schema = schemathesis.openapi.from_path(str(conformance.SPEC_PATH))
    schema = schema.include(path_regex="|".join(SERVED)).exclude(path_regex=NOT_SERVED)
    return tuple(result.ok() for result in schema.get_all_operations())


# --- objects for the id-taking operations ---------------------------------------------------------


class Seeds:
    """Ids of objects that exist on the server, re-created when a case deletes one."""

    def __init__(self, server: MockServer, http: requests.Session) -> None:
        self._server = server
        self._http = http
        self.ids: dict[str, str] = {}
        self.refresh()

    def refresh(self) -> None:
        """Create a stored response, a stored chat completion and a conversation with an item."""
        post = self._post
        self.ids["response_id"] = post("/responses", {"input": "hello", "store": True})["id"]
        self.ids["completion_id"] = post(
            "/chat/completions",
            {
                "model": "gpt-4o-mini",
                "store": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
        )["id"]
        conversation = post("/conversations", {"items": [{"role": "user", "content": "hello"}]})
        self.ids["conversation_id"] = conversation["id"]
        items = self._http.get(self._server.url + f"/conversations/{conversation['id']}/items")
        self.ids["item_id"] = items.json()["data"][0]["id"]

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        answer = self._http.post(self._server.url + path, json=body)
        answer.raise_for_status()
        return answer.json()

    def apply(self, case: Any) -> bool:
        """Point `case` at existing objects; False when it takes no ids."""
        names = [p.name for p in case.operation.path_parameters]
        if not names or not all(name in self.ids for name in names):
            return False
        case.path_parameters = {name: self.ids[name] for name in names}
        return True


# --- the server's log -----------------------------------------------------------------------------


class LogWatch(logging.Handler):
    """Collects what the server logs at ERROR or with a traceback."""

    LOGGERS = ("mockai", "aiohttp")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def take(self) -> list[str]:
        """What was logged since the last call, one line each (message and exception)."""
        lines = [
            f"{record.name}: {record.getMessage()}"
            + (f" ({record.exc_info[1]!r})" if record.exc_info else "")
            for record in self.records
        ]
        self.records.clear()
        return lines

    @contextlib.contextmanager
    def watching(self) -> Iterator[LogWatch]:
        """Attached to the server's loggers for the duration."""
        loggers = [logging.getLogger(name) for name in self.LOGGERS]
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)


# --- one run --------------------------------------------------------------------------------------


@dataclass
class Report:
    """What a run found: counts, and a few examples of each failing check."""

    operations: int = 0
    cases: int = 0
    server_errors: int = 0
    statuses: collections.Counter[tuple[str, str, int]] = field(default_factory=collections.Counter)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    shown: int = 5  # examples kept per check
    rejected_valid: collections.Counter[str] = field(default_factory=collections.Counter)
    # Spec-breaking (negative) requests mockai accepted (it is lenient where the spec lags the
    # API), and of those, how many answers echo an invalid part of the request back.
    accepted_invalid: int = 0
    echoed_invalid: int = 0

    def fail(self, check: str, case: Any, status: int, detail: str) -> None:
        self.failures[check] += 1
        shown = self.examples.setdefault(check, [])
        if len(shown) < self.shown:
            body = json.dumps(case.body, default=repr)[:600] if case.body is not None else ""
            mode = case.meta.generation.mode.value if case.meta is not None else "?"
            shown.append(
                f"{case.operation.label} ({mode}) -> {status}: {detail[:800]}\n"
                f"    path {case.formatted_path} query {case.query} body {body}"
            )

    def summary(self) -> str:
        """Operations, cases, 5xx, failures by check, then the examples."""
        lines = [
            f"operations: {self.operations}",
            f"cases: {self.cases}",
            f"5xx: {self.server_errors}",
            "failures by check: "
            + (", ".join(f"{check}={self.failures[check]}" for check in CHECKS)),
            (
                f"negative cases accepted: {self.accepted_invalid}"
                f" (answers echoing the invalid input: {self.echoed_invalid})"
            ),
        ]
        for check, shown in self.examples.items():
            lines.append(f"--- {check}")
            lines.extend(shown)
        return "\n".join(lines)


class Fuzzer:
    """Runs schemathesis cases against one server and checks every answer."""

    def __init__(self, server: MockServer, report: Report, log: LogWatch) -> None:
        self.server = server
        self.report = report
        self.log = log
        self.http = requests.Session()
        self.seeds = Seeds(server, self.http)

    def run(
        self,
        max_examples: int,
        modes: tuple[str, ...] = tuple(MODES),
        coverage: int | None = 0,
        coverage_caps: Mapping[str, int] | None = None,
    ) -> Report:
        """Every served operation: `coverage` cases of the coverage phase (None: all of them;
        `coverage_caps` lowers it for some operations), then `max_examples` random cases per
        mode."""
        for operation in operations():
            self.report.operations += 1
            limit = (coverage_caps or {}).get(operation.label, coverage)
            if limit is None or limit > 0:
                self._cover(operation, [MODES[mode] for mode in modes], limit)
            for mode in modes if max_examples > 0 else ():
                self._fuzz(operation, MODES[mode], max_examples)
        return self.report

    def _cover(self, operation: Any, modes: list[GenerationMode], limit: int | None) -> None:
        config = operation.schema.config.generation_for(operation=operation)
        cases = operation.schema.iter_coverage_cases(
            operation, generation_modes=modes, generation_config=config
        )
        for index, case in enumerate(itertools.islice(cases, limit)):
            mode = case.meta.generation.mode if case.meta is not None else GenerationMode.POSITIVE
            self.check(case, index % 2 == 0 and self.seeds.apply(case), mode)

    def _fuzz(self, operation: Any, mode: GenerationMode, max_examples: int) -> None:
        @settings(
            max_examples=max_examples,
            derandomize=True,  # the same cases every run
            database=None,
            deadline=None,
            phases=[Phase.generate],  # failures are counted, not raised: nothing to shrink
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode), existing=st.booleans())
        def one(case: Any, existing: bool) -> None:
            self.check(case, existing and self.seeds.apply(case), mode)

        one()

    def check(self, case: Any, seeded: bool, mode: GenerationMode) -> None:
        """Send one case and check the answer."""
        report = self.report
        report.cases += 1
        fault_asked = any(name.lower() == "x-mockai-fault" for name in case.headers or {})
        self.log.take()
        response = case.call(base_url=self.server.url, session=self.http, timeout=30)
        status = response.status_code
        report.statuses[(case.operation.label, mode.value, status)] += 1
        if status >= 500:
            report.server_errors += 1
            if not fault_asked:
                report.fail("not_a_server_error", case, status, response.text)
        logged = self.log.take()
        if logged:
            report.fail("server_log", case, status, " | ".join(logged))
        if status >= 400:
            self._check_error(case, response, mode)
        elif status < 300:
            self._check_answer(case, response, mode)
        changed = case.operation.method.upper() == "DELETE" or mode is GenerationMode.NEGATIVE
        if seeded and changed and status < 300:
            # The case deleted what the next ones use, or stored what the spec does not allow
            # (which later answers would show): start the next cases from fresh objects.
            self.seeds.refresh()

    def _check_error(self, case: Any, response: Any, mode: GenerationMode) -> None:
        status = response.status_code
        problem = _error_shape_problem(response)
        if problem is not None:
            self.report.fail("error_shape", case, status, problem)
            return
        error = response.json()["error"]
        if not _status_fits(case, status, error):
            self.report.fail("status_fits", case, status, json.dumps(error))
        if mode is GenerationMode.POSITIVE and status == 400:
            self.report.rejected_valid[f"{case.operation.label}: {error['message'][:120]}"] += 1

    def _check_answer(self, case: Any, response: Any, mode: GenerationMode) -> None:
        request_id = response.headers.get("x-request-id", [None])[0]
        entry = _journal_entry(self.server, request_id)
        if entry is None:
            self.report.fail("response_schema", case, response.status_code, "no journal entry")
            return
        if mode is GenerationMode.NEGATIVE:
            self.report.accepted_invalid += 1
        try:
            conformance.check_entry(entry)
        except (AssertionError, ValueError, KeyError, TypeError) as problem:
            if mode is GenerationMode.NEGATIVE and _echoes_request(problem, case.body):
                # Garbage in, garbage echoed (the API would have refused the request).
                self.report.echoed_invalid += 1
            else:
                self.report.fail("response_schema", case, response.status_code, str(problem))


def _error_shape_problem(response: Any) -> str | None:
    content_type = response.headers.get("content-type", [""])[0]
    if not content_type.startswith("application/json"):
        return f"content-type {content_type!r}: {response.text[:200]!r}"
    if not response.headers.get("x-request-id"):
        return "no x-request-id header"
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"not JSON: {response.text[:200]!r}"
    if not (isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], dict)):
        return f"not an error body: {response.text[:200]}"
    if set(body["error"]) != ERROR_KEYS or not isinstance(body["error"]["message"], str):
        return f"error keys {sorted(body['error'])}"
    return None


def _status_fits(case: Any, status: int, error: dict[str, Any]) -> bool:
    if status == 400 or status == 413:
        return True
    if status == 405:  # the coverage phase also tries the path with other methods
        return case.method.upper() != case.operation.method.upper()
    if status == 404:
        # An id or a model that does not exist; the operation itself always exists. (A
        # conversation a Responses request names is an id too: with --strict-requests an unknown
        # one is the API's 404.)
        return (
            bool(list(case.operation.path_parameters))
            or error["code"] == "model_not_found"
            or error["param"] == "conversation"
        )
    if status == 403:  # only fine-tuned models can be deleted: any other is the API's 403
        return (
            case.operation.method.upper() == "DELETE" and case.operation.path == "/models/{model}"
        )
    return False  # 401 (no key is required), 429 (no limits are set), ...


def _echoes_request(problem: Exception, body: Any) -> bool:
    """Whether the invalid part of an answer is a field the request sent (and the answer echoes,
    as Responses echo `tools` and `text`, and item lists echo the `items` added)."""
    cause = problem.__cause__
    path = list(getattr(cause, "absolute_path", ()))
    if path[:1] == ["response"]:  # inside a Responses stream event
        path = path[1:]
    if not path or not isinstance(body, dict):
        return False
    return path[0] in body or (path[0] == "data" and "items" in body)


def _journal_entry(server: MockServer, request_id: str | None) -> Any:
    for entry in reversed(server.requests):
        if entry.request_id == request_id:
            return entry
    return None


def fuzz(
    max_examples: int,
    *,
    modes: tuple[str, ...] = tuple(MODES),
    coverage: int | None = 0,
    coverage_caps: Mapping[str, int] | None = None,
    **options: Any,
) -> Report:
    """A run against a fresh server (`options` configure it, e.g. `strict_requests=True`):
    `coverage` cases per operation from the coverage phase (None: all; fewer for the operations
    `coverage_caps` names), `max_examples` random cases per operation and mode."""
    report = Report()
    with LogWatch().watching() as log, MockServer(log_requests=False, **options) as server:
        fuzzer = Fuzzer(server, report, log)
        try:
            fuzzer.run(max_examples, modes, coverage, coverage_caps)
        finally:
            fuzzer.http.close()
    return report
