"""`MockaiFixture`: what the `mockai` fixture gives a test — the server, its rules, its journal,
and assertions about how the client behaved (attempts, waits, retries)."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import glob
import itertools
import json
import os
import ssl
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mockai.options import PLUGIN_KEYS, refuse

if TYPE_CHECKING:
    from mockai import MockServer
    from mockai.pipeline.journal import JournalEntry

NO_MATCH = "mockai_no_match"
FAKE_API_KEY = "sk-mockai-test"  # OPENAI_API_KEY while a test's server runs, unless recording
# Statuses the OpenAI SDKs retry (wire contract section 2), unless `x-should-retry` says otherwise.
RETRIED_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
# The py 3.x SDK honours a server-given delay up to this; above it, it does not retry at all.
MAX_RETRY_AFTER = 120.0
# Timer granularity and scheduling noise allowed when checking that a client waited long enough.
WAIT_SLACK = 0.02


class MockaiFixture:
    """A running mockai server for one test, and assertions on what its clients did."""

    __test__ = False

    def __init__(self, server: MockServer, *, strict: bool, cassette: Path | None = None) -> None:
        self.server = server
        self.strict = strict
        # Counted by the server, unlike the journal never cleared nor bounded (`check_unmatched`).
        self._no_matches_before = self._no_matches()
        self._cassette = cassette
        self._conflicts_before = self._conflict_files()
        self._built: list[Callable[[], None]] = []  # closes the HTTP clients built for the test

    @classmethod
    def start(cls, options: Mapping[str, Any]) -> MockaiFixture:
        """Start a server for the merged plugin `options`."""
        from mockai import MockServer
        from mockai.errors import MockaiError

        settings = {k: v for k, v in options.items() if k not in PLUGIN_KEYS and v is not None}
        if options.get("scenario"):
            scenario = options["scenario"]
            single = isinstance(scenario, (str, Path))
            settings["scenarios"] = (scenario,) if single else tuple(scenario)
        cassette = options.get("cassette")
        if cassette is not None:
            _require_recording(Path(cassette), settings.get("record_mode", "none"))
            settings["cassette"] = str(cassette)
        if options.get("strict_fixtures") is not None:  # the server's `strict` (`--strict`)
            settings["strict"] = bool(options["strict_fixtures"])
        # Where conflict files may appear: beside the cassette this server records into.
        recorded = None
        if cassette is not None and settings.get("record_mode", "none") != "none":
            recorded = Path(cassette)
        try:
            server = MockServer(**settings).start()
        except MockaiError as error:
            # (The server's CLI names its option `--upstream`; under pytest it is this one.)
            said = str(error).replace("give --upstream URL", "give --mockai-upstream URL")
            refuse(said)
        # None (a `pytest_mockai_configure` hook may set it) means "not set": strict by default.
        strict = options.get("strict")
        return cls(
            server,
            strict=True if strict is None else bool(strict),
            cassette=recorded,
        )

    def stop(self) -> None:
        """Stop the server (the fixture does this after the test, unless the test did)."""
        if self.server.running:
            self.server.stop()

    def new_conflict_files(self) -> list[Path]:
        """Conflict files (`<cassette>.conflict`, `-2`...) that appeared beside the cassette this
        test recorded into: its recordings, or a concurrent recorder's, went there instead."""
        return sorted(self._conflict_files() - self._conflicts_before)

    def _conflict_files(self) -> set[Path]:
        path = self._cassette
        if path is None:
            return set()
        from mockai.cassette.writer import sibling  # (a long name's are named after its hash)

        first = sibling(path, ".conflict")
        return set(path.parent.glob(glob.escape(first.name) + "*"))

    def _no_matches(self) -> int:
        return self.server.state.decider.no_matches

    # --- where it is ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL for OpenAI clients, with `/v1` (what OPENAI_BASE_URL is set to)."""
        return self.server.url

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`, without `/v1`."""
        return self.server.base_url

    def provider_url(self, name: str) -> str:
        """The base URL of provider profile `name`: `http://127.0.0.1:PORT/groq/openai/v1`, ..."""
        return self.server.provider_url(name)

    # --- clients -------------------------------------------------------------------------------

    def openai_client(self, **options: Any) -> Any:
        """An `openai.OpenAI` for this server, built in ~0.1 ms instead of ~20 ms.

        Building an SDK client normally loads the system's CA certificates into a new SSL context;
        this one shares one context per process (unused anyway: the server speaks plain HTTP).
        The HTTP client built for it is closed after the test (the SDK never closes one it was
        given, and its sockets would be left to the garbage collector's ResourceWarning).
        """
        import openai

        options.setdefault("base_url", self.url)
        options.setdefault("api_key", _api_key())
        if "http_client" not in options:
            options["http_client"] = openai.DefaultHttpxClient(verify=_ssl_context())
            self._built.append(options["http_client"].close)
        return openai.OpenAI(**options)

    def async_openai_client(self, **options: Any) -> Any:
        """An `openai.AsyncOpenAI` for this server, built as cheaply as `openai_client`; its HTTP
        client is closed in its event loop, when that loop shuts down or after the test."""
        import openai

        options.setdefault("base_url", self.url)
        options.setdefault("api_key", _api_key())
        if "http_client" not in options:
            closing = _ClosedWithItsLoop()
            options["http_client"] = closing.http = openai.DefaultAsyncHttpxClient(
                verify=_ssl_context(), event_hooks={"request": [closing.on_request]}
            )
            self._built.append(closing.close)
        return openai.AsyncOpenAI(**options)

    def close_clients(self) -> None:
        """Close the HTTP clients `openai_client` and `async_openai_client` built (the fixture
        does this after the test)."""
        built, self._built = self._built, []
        for close in built:
            close()

    # --- scripting -----------------------------------------------------------------------------

    def add_rule(self, rule: Mapping[str, Any]) -> str:
        """Add a scenario rule (the YAML format, as a dict); returns its name."""
        return str(self.server.add_rule(dict(rule)))

    def add_rules(self, rules: Iterable[Mapping[str, Any]]) -> list[str]:
        """Add several rules, in order, all or none (a ScenarioError lists every problem)."""
        return [str(name) for name in self.server.add_rules(list(rules))]

    def remove_rule(self, name: str) -> None:
        """Remove a rule added at runtime."""
        self.server.remove_rule(name)

    def clear_rules(self) -> None:
        """Remove every rule added at runtime."""
        self.server.clear_rules()

    def load(self, path: str | Path) -> None:
        """Load a scenario file or folder into the running server."""
        self.server.load(str(path))

    def reset(self) -> None:
        """Forget requests, sequence positions and rate-limit usage, and what clients stored
        (responses, conversations, chat completions, files, batches), as `MockServer.reset()`."""
        self.server.reset()

    # --- the journal ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[JournalEntry]:
        """Every request the server got, oldest first: body, headers, rule, faults, timing.

        The journal lists requests as the server began handling them; concurrent requests may
        begin in another order than their bytes arrived (`arrived`, stamped at the socket), so
        this view sorts them by arrival (ties keep the journal's order).
        """
        return sorted(self.server.requests, key=_arrival)

    def calls(self, **where: Any) -> list[JournalEntry]:
        """The requests whose fields equal `where` (e.g. `endpoint="chat"`, `rule="greet"`;
        `rule` matches any of the rules that answered a batch of inputs)."""
        return [e for e in self.requests if all(_has(e, k, v) for k, v in where.items())]

    @property
    def unmatched(self) -> list[JournalEntry]:
        """Requests no rule or recording matched."""
        return [e for e in self.requests if (e.error or {}).get("code") == NO_MATCH]

    def timeline(self, entries: Iterable[JournalEntry] | None = None) -> str:
        """One line per request: when it came, what it asked, what it got."""
        entries = sorted(self.requests if entries is None else entries, key=_arrival)
        if not entries:
            return "  (no requests)"
        from mockai.server.logs import escaped

        start = entries[0].arrived  # the earliest arrival: no line shows a negative time
        # Escaped as the access log is: a path, rule name or fault the client or the test made
        # up holding a newline would otherwise forge lines of its own.
        return "\n".join(escaped(_timeline_line(e, start)) for e in entries)

    # --- assertions ----------------------------------------------------------------------------

    def assert_called(
        self, n: int | None = None, *, times: int | None = None, **where: Any
    ) -> None:
        """At least one matching request, or exactly `n` of them (`times=` is the same)."""
        if times is not None:
            if n is not None and n != times:
                raise TypeError(f"assert_called: n={n} and times={times} disagree; give one")
            n = times
        found = self.calls(**where)
        ok = len(found) == n if n is not None else bool(found)
        if not ok:
            wanted = f"exactly {n}" if n is not None else "at least one"
            filters = f" matching {where}" if where else ""
            raise AssertionError(
                f"expected {wanted} request(s){filters}, got {len(found)}:\n{self.timeline()}"
            )

    def assert_not_called(self, **where: Any) -> None:
        """No matching request at all."""
        self.assert_called(0, **where)

    def assert_retries_respected(self, max_retries: int = 2) -> None:
        """The client retried like the OpenAI SDKs should.

        For every logical call (a first attempt and its retries): at most `max_retries` retries;
        none after an answer that must not be retried (a 4xx other than 408/409/429,
        `x-should-retry: false`, a Retry-After over 120 s) or after a stream that had started;
        and before each retry at least the `retry-after-ms` / `retry-after` it was given.
        """
        problems = []
        for attempts in _logical_calls(self.requests):
            problems.extend(_retry_problems(attempts, max_retries))
        if problems:
            raise AssertionError(
                "the client did not respect the server's retry signals:\n  "
                + "\n  ".join(problems)
                + "\ntimeline:\n"
                + self.timeline()
            )

    def check_unmatched(self) -> None:
        """Fail the test if a request matched nothing (the teardown check in strict mode).

        The server counts its no-match answers; the journal keeps their reports only while it
        holds their entries (`reset()` empties it, and it keeps the latest 1,000), so a miss is
        caught either way, and reported in full when its entry is still there.
        """
        misses = self.unmatched
        count = max(len(misses), self._no_matches() - self._no_matches_before)
        if not count:
            return
        reports = [str((e.error or {}).get("message", "")) for e in misses]
        gone = count - len(misses)
        if gone:
            kept = self.server.config.journal_size
            reports.append(
                f"{gone} of them left the journal with their details: it keeps the latest "
                f"{kept:,} requests (more with the marker's `journal_size=`), and `reset()` "
                "empties it (read mockai.unmatched before a reset to see them)."
            )
        said = "\n\n".join(reports)
        pytest.fail(
            f"mockai: {count} request(s) matched no rule or recording (the client may have "
            f"swallowed the error; strict=False allows it):\n\n{said}\n\ntimeline:\n"
            f"{self.timeline()}",
            pytrace=False,
        )


class _ClosedWithItsLoop:
    """Closes an async HTTP client in the event loop its connections belong to.

    Its sockets belong to the loop of its first request, and only that loop can close them. The
    fixture's teardown comes too late for a loop made for the test (pytest-asyncio's and anyio's
    close before it, and so does `asyncio.run`); so a task started in that loop closes the client
    when the loop shuts down (`asyncio.Runner`, which all three use, cancels the tasks left), and
    the teardown closes it in a loop still open then (a session-scoped one). Under trio no task
    is started: the SDK's own clients are left to the collector there too.
    """

    def __init__(self) -> None:
        self.http: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: asyncio.Task[None] | None = None  # (held here: the loop holds tasks weakly)

    async def on_request(self, request: Any) -> None:
        if self._guard is not None:
            return
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # (not asyncio: trio)
            return
        self._guard = self._loop.create_task(self._close_at_shutdown())

    async def _close_at_shutdown(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await self.http.aclose()

    def close(self) -> None:
        loop, guard = self._loop, self._guard
        if loop is None or guard is None or guard.done() or loop.is_closed() or loop.is_running():
            return
        guard.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(guard)


def _api_key() -> str:
    """The key a client built in the test gets: OPENAI_API_KEY as the fixture set it (in a
    recording run, the user's real key, forwarded to the upstream; never saved in a cassette)."""
    return os.environ.get("OPENAI_API_KEY") or FAKE_API_KEY


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _require_recording(path: Path, record_mode: str) -> None:
    if record_mode == "none" and not path.exists():
        pytest.fail(
            f"mockai: no recording at {path}. Record it once with "
            "`--mockai-record-mode=once --mockai-upstream=<base URL>` (and a real API key), "
            "then commit the cassette.",
            pytrace=False,
        )


def _arrival(entry: JournalEntry) -> float:
    return entry.arrived


def _has(entry: JournalEntry, field: str, value: Any) -> bool:
    if field == "rule":  # (several rules answer a batch of inputs: each one was called)
        return value in entry.rules if value is not None else entry.rule is None
    return bool(getattr(entry, field) == value)


def _timeline_line(entry: JournalEntry, start: float) -> str:
    what = f"{entry.method} {entry.path}"
    retry = f" retry={entry.retry_count}" if entry.retry_count is not None else ""
    answer = str(entry.status or "dropped")
    code = (entry.error or {}).get("code")
    if code:
        answer += f" {code}"
    wait = _server_delay(entry)
    if wait is not None:
        answer += f" (retry after {wait:.3g}s)"
    if entry.faults:
        answer += f" faults={','.join(entry.faults)}"
    source = f" [{entry.source}{':' + ','.join(entry.rules) if entry.rule else ''}]"
    return f"  #{entry.seq} +{entry.arrived - start:7.3f}s {what}{retry} -> {answer}{source}"


def _logical_calls(entries: list[JournalEntry]) -> list[list[JournalEntry]]:
    """Group attempts into logical calls (a first attempt and its retries), oldest first.

    Concurrent calls interleave in the journal, so a retry is not simply the entry before it.
    The SDKs number their attempts (`x-stainless-retry-count`: 0, then 1, 2...) and resend the
    same method, path and body, so attempt n+1 belongs to a call of that identity whose latest
    attempt is attempt n. Identical concurrent calls leave a choice between such calls: the most
    plausible one is taken (`_fit`), so a wait is reported as too short only when no call could
    have been the one retried after a long enough wait. Attempts without the header (not an SDK)
    keep the simple rule: a request identical to the one just before it is its retry, unless
    that one succeeded (no client retries a success: polling, or asking again, is a new call).
    """
    calls: list[list[JournalEntry]] = []
    # Calls whose latest attempt carries the SDK's count, by (identity, that count), oldest first.
    open_calls: dict[tuple[str, str, str, int], list[list[JournalEntry]]] = {}
    previous: list[JournalEntry] | None = None  # the call the previous journal entry joined
    for entry in entries:
        count = entry.retry_count
        call: list[JournalEntry] | None = None
        if count is None:
            if (
                previous is not None
                and _same_request(entry, previous[-1])
                and not _succeeded(previous[-1])
            ):
                call = previous
        else:
            identity = _identity(entry)
            waiting = open_calls.get((*identity, count - 1)) if count > 0 else None
            if waiting:
                call = min(waiting, key=lambda candidate: _fit(entry, candidate))
                waiting.remove(call)
        if call is None:
            call = []
            calls.append(call)
        call.append(entry)
        if count is not None:
            open_calls.setdefault((*identity, count), []).append(call)
        previous = call
    return calls


def _same_request(entry: JournalEntry, other: JournalEntry) -> bool:
    return (entry.method, entry.path, entry.body) == (other.method, other.path, other.body)


def _identity(entry: JournalEntry) -> tuple[str, str, str]:
    """What every attempt of one call repeats; the body as canonical JSON, to be a dict key."""
    body = json.dumps(entry.body, sort_keys=True, default=repr)
    return entry.method, entry.path, body


def _fit(retry: JournalEntry, call: list[JournalEntry]) -> tuple[int, float]:
    """How plausibly `retry` is the next attempt of `call` (lowest first).

    0: its latest attempt failed in a way the SDK retries and `retry` came after the wait it was
    given (the call whose wait ended first is taken: calls retry in the order they can). 1: it
    came too early, a problem to report; the call whose wait ends last is taken, so that those
    whose waits end sooner stay free for the retries still to come, and one impatient retry is
    reported once, not once per identical call. 2: that answer must not be retried. 3: that
    answer was a success, which the SDK never retries.
    """
    last = call[-1]
    if _succeeded(last):
        return 3, 0.0
    if _must_not_retry(last):
        return 2, 0.0
    ready = last.arrived + (_server_delay(last) or 0.0)
    if retry.arrived + WAIT_SLACK >= ready:
        return 0, ready
    return 1, -ready


def _succeeded(entry: JournalEntry) -> bool:
    """Whether `entry` was answered whole and without error: an answer no client retries (a
    chunk split in two or sent twice still ends the stream as it should)."""
    return (
        bool(entry.status)
        and entry.status < 400
        and all(fault.startswith(_WHOLE_FAULTS) for fault in entry.faults)
    )


# Faults after which the answer still arrives whole, as `Faults.names()` writes them.
_WHOLE_FAULTS = ("split_chunk=", "duplicate_chunk=")


def _retry_problems(attempts: list[JournalEntry], max_retries: int) -> list[str]:
    problems = []
    if len(attempts) - 1 > max_retries:
        problems.append(
            f"#{attempts[0].seq}: {len(attempts) - 1} retries, more than the {max_retries} allowed"
        )
    for previous, retry in itertools.pairwise(attempts):
        reason = _must_not_retry(previous)
        if reason:
            problems.append(f"#{retry.seq} retried #{previous.seq}, which {reason}")
            continue
        wait = _server_delay(previous)
        # From when the answer went out, as the client counts it (a rule's latency, or a
        # stalled 429, delays the answer: counted from its arrival, an early retry passed).
        waited = retry.arrived - (previous.arrived + previous.duration_ms / 1000)
        if wait is not None and waited + WAIT_SLACK < wait:
            problems.append(
                f"#{retry.seq} came {waited:.3f}s after #{previous.seq}, which asked to wait "
                f"{wait:.3f}s"
            )
    return problems


def _must_not_retry(entry: JournalEntry) -> str | None:
    headers = entry.response_headers
    should = headers.get("x-should-retry")
    wait = _server_delay(entry)
    if wait is not None and wait > MAX_RETRY_AFTER:
        return f"asked to wait {wait:.0f}s (over {MAX_RETRY_AFTER:.0f}s: no retry)"
    if should == "false":
        return "said x-should-retry: false"
    if entry.status == 200 and entry.stream and entry.faults:
        return "had already started streaming (a failure after a 200 stream is never retried)"
    if should == "true" or not entry.status:
        return None
    if entry.status < 400 or entry.status in RETRIED_STATUSES:
        return None
    return f"answered {entry.status}, which is not retried"


def _server_delay(entry: JournalEntry) -> float | None:
    """The delay the server asked for, read the way the SDK reads it (wire contract section 3):
    the first that parses of `retry-after-ms`, `retry-after` in seconds and `retry-after` as an
    HTTP date; None when there is none, or it is not above 0 (the SDK then backs off)."""
    headers = entry.response_headers
    seconds: float | None = None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
            break
        except ValueError:
            continue
    else:
        seconds = _date_delay(headers.get("retry-after"), entry)
    return seconds if seconds is not None and seconds > 0 else None


def _date_delay(value: str | None, entry: JournalEntry) -> float | None:
    """Seconds from when the answer went out until an HTTP-date `retry-after`, as the SDK counts
    them when it reads the answer (`parsedate_tz`, then `mktime_tz`): None if it is no date."""
    date = email.utils.parsedate_tz(value) if value else None
    if date is None:
        return None
    answered = entry.received_at + entry.duration_ms / 1000  # (wall clock, as the date is)
    return float(email.utils.mktime_tz(date) - answered)
