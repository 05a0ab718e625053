"""Log lines: one per request (`mockai.access`), as text or as JSON (`--log-format json`).

A JSON line carries what a log pipeline filters on: the request id (also sent as `x-request-id`),
what answered (source and rule or cassette entry), the faults injected and the timings, plus the
worker's pid so lines from `--workers N` can be told apart. Every other `mockai` log line (warnings,
near-miss reports, tracebacks) goes through the same formatter, so a JSON log stays JSON.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

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
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


def _timestamp(created: float) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{whole}.{int(created % 1 * 1000):03d}Z"


def access_fields(entry: JournalEntry) -> dict[str, Any]:
    """What one request's log line says, as data."""
    headers_ms = entry.response_headers.get("openai-processing-ms")
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
        "headers_ms": float(headers_ms) if headers_ms and _is_number(headers_ms) else None,
        "pid": os.getpid(),
    }


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def log_request(logger: logging.Logger, entry: JournalEntry) -> None:
    """The request's line: readable text, with the same fields attached for the JSON format."""
    answered = entry.source + (f":{entry.rule}" if entry.rule else "")
    extra = f" faults={','.join(entry.faults)}" if entry.faults else ""
    logger.info(
        "%s %s %d %s%s %.1fms %s%s %s",
        entry.method,
        entry.path,
        entry.status,
        entry.model or "-",
        " stream" if entry.stream else "",
        entry.duration_ms,
        answered,
        extra,
        entry.request_id,
        extra={"mockai": access_fields(entry)},
    )
