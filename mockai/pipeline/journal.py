"""The journal: what came in, what answered it, what went out, and when.

Bounded twice, so that a long load test cannot grow memory without limit whatever the bodies
weigh: at most `maxlen` entries (the oldest go first), and at most `max_bytes` bytes of request
headers and request and response bodies (the bodies of the oldest entries are dropped first,
and their headers past `DROPPED_HEADER_BYTES`; their entries stay, with `dropped` set). What is
weighed is what is held: a request body is kept as its bytes and parsed when read (parsed, a
0.9 MB body of many small objects held ~20 MB). Thread-safe, because the pytest plugin reads
it from the test's thread while the server's event loop writes it. Secrets in request headers
are redacted before they are stored.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from mypy_extensions import mypyc_attr

from mockai.pipeline.workload import off_loop
from mockai.wire import jsonbytes
from mockai.wire.credentials import is_credential_header
from mockai.wire.events import split_events
from mockai.wire.outgoing import Body, EventStream, Outgoing, Relay, held_bytes

# Request and response bodies the journal keeps, in bytes (older bodies are dropped past this).
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
# What a dropped entry keeps of its request headers: an SDK's two dozen (~1 KB) fit; a client's
# hundred 8 KB headers do not (1,000 such entries held 827 MiB).
DROPPED_HEADER_BYTES = 4096

REDACTED = "<redacted>"
T = TypeVar("T")


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers with credentials replaced (`wire.credentials`: the same headers cassettes
    drop), safe to keep and to show."""
    names = _JUDGED
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lowered, secret = names[name]
        kept[lowered] = REDACTED if secret else value
    return kept


class NameTable(dict[str, T]):
    """What `compute` makes of a header name, made once per name: a client sends the same
    dozen names with every request, and an answer carries the same dozen. Bounded (names a
    client or a rule made up are computed each time past 4,096)."""

    def __init__(self, compute: Callable[[str], T]) -> None:
        super().__init__()
        self._compute = compute

    def __missing__(self, name: str) -> T:
        made = self._compute(name)
        if len(self) < 4096:
            self[name] = made
        return made


# Request header names lowered and judged (credential or not): the SDK's 17 took ~3.2 us a
# request to judge afresh.
_JUDGED: NameTable[tuple[str, bool]] = NameTable(
    lambda name: (name.lower(), is_credential_header(name))
)


def readable_body(raw: bytes) -> Any:
    """A request body as the journal keeps it: its JSON, else its text (None when empty)."""
    if not raw:
        return None
    try:
        return jsonbytes.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def ascii_count(value: str | None, max_digits: int = 9) -> int | None:
    """A header's whole number, or None: ASCII digits only, because `str.isdigit` also accepts
    `²` and other digits `int` refuses, and a few of them only, because any client may send it."""
    if value is None or not 0 < len(value) <= max_digits:
        return None
    return int(value) if value.isascii() and value.isdigit() else None


@dataclass(slots=True)
class JournalEntry:
    """One request and its answer."""

    seq: int
    request_id: str
    method: str
    path: str
    received_at: float  # wall clock (time.time()), for people
    arrived: float  # monotonic clock, for measuring gaps between attempts
    headers: dict[str, str]
    # The request body as held: its bytes as they came (read as `body`), or a readable form the
    # pipeline made of them (a form's fields, its files summarised), or None.
    kept_body: Any
    endpoint: str | None = None
    model: str | None = None
    stream: bool = False
    # rule | scenario | cassette | upstream | generator | store (files, batches) | error | admin,
    # or `fault` (answered by
    # an x-mockai-fault header or chaos before any source; `rule` says which) | `limits` (a 429
    # from a rate-limit budget)
    source: str = ""
    rule: str | None = None  # the rule or cassette entry that answered (the first, see `rules`)
    status: int = 0  # 0: no response was sent (reset, hang, empty_response), or not yet
    faults: list[str] = field(default_factory=list)  # injected on purpose, as `name` / `name=N`
    error: dict[str, Any] | None = None  # the error object sent, for error answers
    duration_ms: float = 0.0
    response: Outgoing | None = None
    response_headers: dict[str, str] = field(default_factory=dict)  # what was sent (lower-case)
    # When the headers went out, in ms from arrival (mockai's own `openai-processing-ms`: the
    # header sent may be another's, an upstream's relayed or a profile's empty one); None
    # when none were sent, or not yet.
    headers_ms: int | None = None
    warnings: list[str] = field(default_factory=list)
    # True once the journal dropped this entry's bodies (`body`, `response`) to stay within its
    # byte budget; everything else about the exchange is still here.
    dropped: bool = False
    weight: int = 0  # bytes of headers and bodies this entry counts against the journal's budget
    # True once the journal let go of the entry (pushed out, or cleared): an answer completing
    # after that is not held, so it must not weigh against the budget either.
    released: bool = False
    batch: str | None = None  # a line of this batch (answered inside the server, not sent)
    # The other rules that answered, after `rule`, when a batch's inputs had several.
    more_rules: tuple[str, ...] = ()
    # What the pipeline found the kept bytes to be when it parsed them (`parse_kept`): True for
    # JSON, which a page of the journal then copies as it is instead of parsing it again (a
    # 0.9 MB body of many small objects took ~0.2 s to parse, on every read); False for bytes
    # that are not JSON, shown as text without a parse; None when nothing parsed them.
    kept_json: bool | None = None

    @property
    def body(self) -> Any:
        """The request body: its JSON parsed, or its text when it is not JSON (None when there
        was none, or the journal dropped it). Parsed at each read, so that the journal holds
        the bytes it weighs, not the objects (which take ~5-25x more)."""
        kept = self.kept_body
        if isinstance(kept, bytes | bytearray):
            if self.kept_json is False:  # (they did not parse when they came)
                return kept.decode("utf-8", "replace")
            return readable_body(bytes(kept))
        return kept

    @body.setter
    def body(self, value: Any) -> None:
        self.kept_body = value
        self.kept_json = None

    def parse_kept(self, raw: bytes) -> Any:
        """`raw`, the bytes this entry keeps, parsed (`jsonbytes.loads`: ValueError when they are
        not JSON); whether they were JSON is remembered for the journal's pages (`kept_json`)."""
        try:
            parsed = jsonbytes.loads(raw)
        except ValueError:
            if self.kept_body is raw:
                self.kept_json = False
            raise
        if self.kept_body is raw:  # (not once dropped: the flag is about these very bytes)
            self.kept_json = True
        return parsed

    @property
    def rules(self) -> list[str]:
        """Every rule (or cassette entry) that answered: `rule`, and for a batch of inputs
        answered by several rules, the others after it."""
        return [self.rule, *self.more_rules] if self.rule is not None else []

    @property
    def retry_count(self) -> int | None:
        """The SDK's `x-stainless-retry-count` (0 on the first attempt), if the client sent it."""
        return ascii_count(self.headers.get("x-stainless-retry-count"))

    def response_json(self) -> Any:
        """The JSON body sent (non-streaming answers), or None."""
        response = self.response
        if isinstance(response, Body):
            body = response.body
        elif isinstance(response, Relay) and not _is_event_stream(response.content_type):
            body = b"".join(response.received)  # what the upstream sent so far
        else:
            return None
        try:
            return jsonbytes.loads(body)
        except ValueError:
            return None

    def response_events(self) -> list[bytes]:
        """The SSE frames sent (streaming answers), or an empty list."""
        response = self.response
        if isinstance(response, EventStream):
            return list(response.frames)
        if isinstance(response, Relay) and _is_event_stream(response.content_type):
            return split_events(b"".join(response.received))
        return []

    def as_json(self) -> dict[str, Any]:
        """A JSON-friendly view (what `GET /_mockai/requests` returns); always serializable."""
        return self._json(self.body)

    def _json(self, body: Any) -> dict[str, Any]:
        return {
            "seq": self.seq,
            # (an upstream's x-request-id, relayed, and its headers, below, are decoded from
            # whatever bytes it sent: those that are not UTF-8 as lone surrogates, which no
            # JSON page can carry)
            "request_id": jsonbytes.valid_unicode(self.request_id),
            "method": self.method,
            "path": jsonbytes.valid_unicode(self.path),
            "received_at": self.received_at,
            "arrived": self.arrived,
            "headers": {
                jsonbytes.valid_unicode(name): jsonbytes.valid_unicode(value)
                for name, value in self.headers.items()
            },
            "body": body,
            "endpoint": self.endpoint,
            "model": self.model,
            "stream": self.stream,
            "source": self.source,
            "rule": self.rule,
            "rules": self.rules,
            "status": self.status,
            "faults": self.faults,
            "error": self.error
            and {
                key: jsonbytes.valid_unicode(value) if isinstance(value, str) else value
                for key, value in self.error.items()
            },
            "duration_ms": round(self.duration_ms, 3),
            "retry_count": self.retry_count,
            "headers_ms": self.headers_ms,
            "response_headers": {
                jsonbytes.valid_unicode(name): jsonbytes.valid_unicode(value)
                # (a copy, taken in one step: a page made in a worker thread reads the dict
                # delivery is still adding to, on the loop, until the answer is over)
                for name, value in list(self.response_headers.items())
            },
            "warnings": self.warnings,
            "dropped": self.dropped,
            "batch": self.batch,
        }

    def page_json(self, bodies: bool = True) -> dict[str, Any]:
        """`as_json` as a page of the journal writes it: a body known to be JSON is its bytes as
        they came, copied into the page by orjson (`orjson.Fragment`) instead of parsed and
        written again. It reads back as the same value: `jsonbytes.loads` took these bytes, and
        refuses whatever would not (a byte order mark, NaN, lone surrogates). Without `bodies`,
        no `body` key (and nothing parsed or copied for one)."""
        if not bodies:
            listed = self._json(None)
            del listed["body"]
            return listed
        kept = self.kept_body  # (read once: the loop may drop it while a worker writes a page)
        if self.kept_json and isinstance(kept, bytes | bytearray):
            return self._json(orjson.Fragment(bytes(kept)))
        return self.as_json()


def _is_event_stream(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "text/event-stream"


def _weight(value: Any) -> int:
    """Bytes an answer weighs: its wire size."""
    if value is None:
        return 0
    if isinstance(value, Body | EventStream):
        return held_bytes(value)
    if isinstance(value, Relay):
        return sum(map(len, value.received))
    return 0


def _request_weight(entry: JournalEntry) -> int:
    """Bytes a request weighs: its headers and its body's bytes. A body given parsed (a batch's
    line) is kept as its JSON bytes, the form it is weighed in."""
    kept = entry.kept_body
    if kept is not None and not isinstance(kept, bytes | bytearray | str):
        try:
            kept = entry.kept_body = jsonbytes.dumps(kept)
        except (TypeError, ValueError):
            kept = None
    return (len(kept) if kept else 0) + headers_weight(entry.headers)


def headers_weight(headers: Mapping[str, str]) -> int:
    """The characters of headers' names and values."""
    return sum(map(len, headers)) + sum(map(len, headers.values()))


def _trimmed(headers: dict[str, str]) -> dict[str, str]:
    """What a dropped entry keeps of its headers: those that fit in DROPPED_HEADER_BYTES, in
    order (the small ones the SDKs send, such as `x-stainless-retry-count`, all do)."""
    if headers_weight(headers) <= DROPPED_HEADER_BYTES:
        return headers
    kept: dict[str, str] = {}
    room = DROPPED_HEADER_BYTES
    for name, value in headers.items():
        size = len(name) + len(value)
        if size <= room:
            kept[name] = value
            room -= size
    return kept


def _drop_bodies(entry: JournalEntry) -> None:
    """An entry past the byte budget: its bodies go, the rest of it stays (`dropped: true`)."""
    entry.kept_body = entry.response = None
    entry.headers = _trimmed(entry.headers)
    entry.dropped = True


class Journal:
    """A bounded, thread-safe log of JournalEntry (see the module docstring for the bounds)."""

    def __init__(self, maxlen: int = 1000, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._seq = 0
        self.max_bytes = max_bytes
        self._bytes = 0  # bodies' weight held, over every entry
        # Entries whose bodies count, oldest first: where to drop bodies from.
        self._weighed: deque[JournalEntry] = deque()

    def next_seq(self) -> int:
        """A sequence number for a new entry (1, 2, ...)."""
        with self._lock:
            self._seq += 1
            return self._seq

    def requests_so_far(self) -> int:
        """How many requests were given a sequence number (`clear` does not reset it); read
        without the lock, as a reader polling for "anything new" may."""
        return self._seq

    def add(self, entry: JournalEntry) -> None:
        """Record an exchange as it arrives (its answer is recorded with `completed`)."""
        with self._lock:
            if not self._entries.maxlen:
                # A journal of no entries (`journal_size=0`) holds none: weighed, the entry's
                # bodies were kept out of sight until they filled the byte budget (16 MiB).
                entry.released = True
                return
            if len(self._entries) == self._entries.maxlen and self._entries:
                self._release(self._entries[0])  # (skipped when _weighed reaches it)
            self._entries.append(entry)
            self._add_weight(entry, _request_weight(entry))

    def completed(self, entry: JournalEntry) -> None:
        """Count the answer `entry` now holds against the byte budget (once per entry)."""
        with self._lock:
            if entry.released:
                return
            if entry.dropped:  # (its request alone was over the budget)
                entry.response = None
            else:
                self._add_weight(entry, _weight(entry.response))

    def _release(self, entry: JournalEntry) -> None:
        self._bytes -= entry.weight
        entry.weight = 0
        entry.released = True

    def _add_weight(self, entry: JournalEntry, weight: int) -> None:
        if not weight:
            return
        if entry.weight + weight > self.max_bytes:
            # Heavier than the whole budget: its own bodies go as it is added, and nothing older
            # is evicted for it (they would all go and this one still not fit).
            self._bytes -= entry.weight
            entry.weight = 0
            _drop_bodies(entry)
            return
        if not entry.weight:
            self._weighed.append(entry)
        entry.weight += weight
        self._bytes += weight
        weighed = self._weighed
        while weighed and (not weighed[0].weight or self._bytes > self.max_bytes):
            oldest = weighed.popleft()
            if oldest.weight:  # over budget: its bodies go, the rest of the entry stays
                self._bytes -= oldest.weight
                oldest.weight = 0
                _drop_bodies(oldest)

    @property
    def bytes(self) -> int:
        """Bytes of request headers and bodies held (at most `max_bytes`)."""
        with self._lock:
            return self._bytes

    def entries(self) -> list[JournalEntry]:
        """A snapshot, oldest first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget every entry (sequence numbers keep counting)."""
        with self._lock:
            for entry in self._entries:  # (some may still be answered: see `completed`)
                self._release(entry)
            self._entries.clear()
            self._weighed.clear()
            self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


PAGE_MAX = 1000  # entries one `GET /_mockai/requests` answers at most


# The shared state subclasses it (backend/redis_state.py); a class compiled by mypyc
# (setup.py) refuses subclasses it did not compile unless it allows them.
@mypyc_attr(allow_interpreted_subclasses=True)
class JournalView:
    """The journal as the admin API and the inspector read it, across workers when shared.

    In-process it is this server's `Journal`; a shared backend (`--state redis://`) also
    publishes every entry (before its answer goes out, so a client that saw the answer finds the
    entry) and completes it once delivered.
    """

    def __init__(self, local: Journal) -> None:
        self.local = local

    async def publish(self, entry: JournalEntry) -> None:
        """Make the entry visible to every worker (in-process: it already is)."""

    async def complete(self, entry: JournalEntry) -> None:
        """Record what only delivery knew (duration, headers sent)."""

    async def page(
        self, limit: int, after: int | None, bodies: bool = True
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to `limit` entries as JSON, oldest first: those after sequence number `after`,
        or the newest ones when `after` is None; and whether more are there (later ones after
        `after`, older ones otherwise). Bodies known to be JSON are `orjson.Fragment`s of their
        bytes (`JournalEntry.page_json`), for orjson to copy: a page of the journal's 16 MiB of
        bodies once took seconds of parsing and writing, the loop blocked meanwhile. Without
        `bodies` the entries have no `body` key (the inspector's listing, polled every second)."""
        entries = self.local.entries()
        if after is not None:
            newer = [entry for entry in entries if entry.seq > after]
            chosen, more = newer[:limit], len(newer) > limit
        else:
            chosen = entries[-limit:] if limit else []
            more = len(entries) > len(chosen)
        if not bodies:
            return [entry.page_json(bodies=False) for entry in chosen], more
        if _unparsed(chosen) > PAGE_PARSED_ON_LOOP:
            # Bodies nothing parsed yet (a request refused before its body was read, a route
            # that takes none) are parsed here: ~0.25 s a MB of small objects, in the worker.
            return await off_loop(_page_json, chosen), more
        return _page_json(chosen), more

    async def clear(self) -> None:
        """Forget every entry."""
        self.local.clear()


# Bytes of request bodies not known to be JSON or not that a page parses on the loop (~15 ms of
# parsing at most); a page with more is made in the worker thread.
PAGE_PARSED_ON_LOOP = 64 * 1024


def _unparsed(entries: list[JournalEntry]) -> int:
    """Bytes of the entries' bodies a page must parse to show (those `parse_kept` did not see)."""
    total = 0
    for entry in entries:
        kept = entry.kept_body
        if entry.kept_json is None and isinstance(kept, bytes | bytearray):
            total += len(kept)
    return total


def _page_json(entries: list[JournalEntry]) -> list[dict[str, Any]]:
    return [entry.page_json() for entry in entries]
