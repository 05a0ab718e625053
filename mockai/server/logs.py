"""Log lines: one per request (`mockai.access`), as text or as JSON (`--log-format json`).

A text line is made of what the client sent (the path, the model) and is read by people and by
line-based tools: a newline in a model name, or `%0a` in a path (decoded), would write a second
line that looks like another request's. So every character `str.isprintable` refuses (control
characters, line and paragraph separators, bidi and other format characters, surrogates) is
written as its escape (`\\n`, `\\x1b`, `\\u2028`): each request is one line. JSON lines keep the
values as sent, their `message` is the text line's; what JSON itself leaves raw (DEL, C1
controls, U+2028, which Python's `splitlines` breaks lines at, lone surrogates, which stderr
cannot encode) is written as a `\\uXXXX` escape, so a JSON line is one line too.

A JSON line carries what a log pipeline filters on: the request id (also sent as `x-request-id`),
what answered (source and rule or cassette entry), the faults injected and the timings, plus the
worker's pid so lines from `--workers N` can be told apart. Every other `mockai` log line (warnings,
near-miss reports, tracebacks) goes through the same formatter, so a JSON log stays JSON.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from typing import Any, TextIO

from mockai.pipeline.journal import JournalEntry

ACCESS_LOGGER = "mockai.access"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; an access line's fields are at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "mockai", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return dumps(data)


def dumps(data: dict[str, Any]) -> str:
    """`data` as one JSON line, non-ASCII text as itself and every character that is not
    printable as a `\\uXXXX` escape (see the module)."""
    line = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    if line.isprintable():  # (almost every line: a check in C)
        return line
    # Outside strings a JSON text is printable ASCII: these are all in strings, where an escape
    # stands for the same character.
    return "".join(char if char.isprintable() else _json_escape(char) for char in line)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # (JSON escapes a character beyond the BMP as its UTF-16 surrogate pair)
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _timestamp(created: float) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{whole}.{int(created % 1 * 1000):03d}Z"


def access_fields(entry: JournalEntry) -> dict[str, Any]:
    """What one request's log line says, as data."""
    headers_ms = entry.headers_ms
    return {
        "request_id": entry.request_id,
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
        "endpoint": entry.endpoint,
        "model": entry.model,
        "stream": entry.stream,
        "source": entry.source,
        "rule": entry.rule,
        "faults": list(entry.faults),
        "error": (entry.error or {}).get("code") if entry.error else None,
        "duration_ms": round(entry.duration_ms, 3),
        "headers_ms": None if headers_ms is None else float(headers_ms),
        "pid": os.getpid(),
    }


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escaped(text: str) -> str:
    """`text` with every character `str.isprintable` refuses written as its escape (see the
    module): one line, whatever the client sent."""
    if text.isprintable():  # (almost every line: a check in C, ~100 ns)
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    named = _ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def json_line(message: str, fields: dict[str, Any] | None = None, *, level: str = "info") -> str:
    """A `mockai` line that is not a log record's (the banner, the shutdown notice, a startup
    error) as the JSON formatter would write it, for `--log-format json`, where every line is
    JSON."""
    data: dict[str, Any] = {
        "ts": _timestamp(time.time()),
        "level": level,
        "logger": "mockai",
        "message": message,
    }
    data.update(fields or {})
    return dumps(data)


def log_request(sink: logging.Logger | StreamAccessLog, entry: JournalEntry) -> None:
    """The request's line: readable text, with the same fields attached for the JSON format
    (through `logging`, or straight to `mockai serve`'s stream: StreamAccessLog)."""
    if isinstance(sink, StreamAccessLog):
        sink.write(entry)
        return
    logger = sink
    answered = entry.source + (f":{entry.rule}" if entry.rule else "")
    extra = f" faults={','.join(entry.faults)}" if entry.faults else ""
    logger.info(
        "%s %s %d %s%s %.1fms %s%s %s",
        escaped(entry.method),
        escaped(entry.path),
        entry.status,
        escaped(entry.model or "-"),
        " stream" if entry.stream else "",
        entry.duration_ms,
        escaped(answered),
        escaped(extra),
        escaped(entry.request_id),
        extra={"mockai": access_fields(entry)},
    )


def access_message(entry: JournalEntry) -> str:
    """The access line's message, as `log_request`'s format makes it from the same fields."""
    answered = entry.source + (f":{entry.rule}" if entry.rule else "")
    extra = f" faults={','.join(entry.faults)}" if entry.faults else ""
    stream = " stream" if entry.stream else ""
    # Escaped whole: the parts mockai adds are printable, so this is each field escaped.
    return escaped(
        f"{entry.method} {entry.path} {entry.status:d} {entry.model or '-'}{stream} "
        f"{entry.duration_ms:.1f}ms {answered}{extra} {entry.request_id}"
    )


class StreamAccessLog:
    """`mockai serve`'s access lines, written straight to the stream its logging writes to
    (stderr), as its handler would format them (`HH:MM:SS mockai.access message`, or the JSON
    formatter's object), without a LogRecord and a handler call for each.

    Through `logging` the line cost ~23% of a chat load's throughput (py-spy: 17% of the
    server's time). Only `mockai serve` uses it, whose logging the command line configures;
    a server made in Python (MockServer, the pytest fixture) logs through the `mockai.access`
    logger, for its owner's handlers. A stream that fails (closed, a broken pipe) loses the
    line, never the answer.
    """

    def __init__(self, stream: TextIO, *, json_lines: bool = False) -> None:
        self.stream = stream
        self.json_lines = json_lines
        self._shown: tuple[int, str] = (-1, "")  # the time of day, formatted once a second
        self._utc: tuple[int, str] = (-1, "")  # the JSON lines' date and time, the same

    def write(self, entry: JournalEntry) -> None:
        now = time.time()
        message = access_message(entry)
        if self.json_lines:
            data = {"ts": self.stamp(now), "level": "info", "logger": ACCESS_LOGGER}
            data["message"] = message
            data.update(access_fields(entry))
            line = dumps(data)
        else:
            line = f"{self._clock(now)} {ACCESS_LOGGER} {message}"
        with contextlib.suppress(OSError, ValueError):  # (a closed stream, a broken pipe)
            self.stream.write(line + "\n")

    def stamp(self, now: float) -> str:
        """`now` as the JSON formatter's `ts` (`_timestamp`), its date and time formatted once
        a second (`strftime` cost ~1.5 us a line)."""
        second = int(now)
        utc = self._utc
        if utc[0] != second:
            utc = self._utc = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)))
        return f"{utc[1]}.{int(now % 1 * 1000):03d}Z"

    def _clock(self, now: float) -> str:
        second = int(now)
        shown = self._shown
        if shown[0] != second:
            shown = self._shown = (second, time.strftime("%H:%M:%S", time.localtime(now)))
        return shown[1]
