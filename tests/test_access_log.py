"""`mockai serve`'s access lines, written straight to stderr (server/logs.StreamAccessLog).

Through `logging` a line cost ~23% of a chat load's throughput. Written directly, each line must
be what the command line's logging would have written for it, in text and in JSON: a property
holds the two to each other over arbitrary requests, and a real `mockai serve` is read.
"""

from __future__ import annotations

import io
import json
import logging
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai import MockServer
from mockai.cli import text_formatter
from mockai.config import Config
from mockai.pipeline.journal import JournalEntry
from mockai.server.logs import (
    ACCESS_LOGGER,
    JsonFormatter,
    StreamAccessLog,
    _timestamp,
    log_request,
)

_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)


@st.composite
def entries(draw: st.DrawFn) -> JournalEntry:
    entry = JournalEntry(
        draw(st.integers(1, 10**6)),
        draw(_TEXT),
        draw(st.sampled_from(["GET", "POST", "DELETE"]) | _TEXT),
        draw(_TEXT),
        0.0,
        0.0,
        {},
        None,
    )
    entry.endpoint = draw(st.none() | _TEXT)
    entry.model = draw(st.none() | _TEXT)
    entry.stream = draw(st.booleans())
    entry.source = draw(st.sampled_from(["generator", "rule", "cassette", "fault"]) | _TEXT)
    entry.rule = draw(st.none() | _TEXT)
    entry.status = draw(st.integers(0, 599))
    entry.faults = draw(st.lists(_TEXT, max_size=3))
    entry.error = draw(st.none() | st.fixed_dictionaries({"code": st.none() | _TEXT}))
    entry.duration_ms = draw(st.floats(0, 1e7, allow_nan=False))
    entry.response_headers = draw(
        st.just({}) | st.fixed_dictionaries({"openai-processing-ms": _TEXT | st.just("12")})
    )
    entry.headers_ms = draw(st.none() | st.integers(0, 10**9))
    return entry


def _through_logging(entry: JournalEntry, formatter: logging.Formatter) -> str:
    """The line the command line's logging handler writes for `entry`."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger(ACCESS_LOGGER)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        log_request(logger, entry)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
    return out.getvalue()


def _directly(entry: JournalEntry, json_lines: bool) -> str:
    out = io.StringIO()
    log_request(StreamAccessLog(out, json_lines=json_lines), entry)
    return out.getvalue()


@given(entries())
def test_a_line_written_directly_is_the_one_logging_would_write(entry: JournalEntry) -> None:
    logged, direct = _through_logging(entry, text_formatter()), _directly(entry, False)
    clock = re.compile(r"\d\d:\d\d:\d\d ")
    assert clock.match(logged) and clock.match(direct)
    assert direct[9:] == logged[9:]  # (the time of day aside: the two were written apart)
    logged_json = json.loads(_through_logging(entry, JsonFormatter()))
    direct_json = json.loads(_directly(entry, True))
    assert direct_json.pop("ts")[:4] == logged_json.pop("ts")[:4]
    assert direct_json == logged_json
    assert list(direct_json) == list(logged_json)  # the same keys in the same order


@given(st.lists(st.floats(0, 4 * 10**9, allow_nan=False), max_size=20))
def test_the_json_lines_time_formatted_once_a_second_is_the_formatters(times: list[float]) -> None:
    """For any times, in any order (a clock stepped back too): the stamp kept a second is the
    JSON formatter's."""
    log = StreamAccessLog(io.StringIO(), json_lines=True)
    for now in times:
        assert log.stamp(now) == _timestamp(now)


def test_a_failing_stream_loses_the_line_not_the_answer() -> None:
    closed = io.StringIO()
    closed.close()
    entry = JournalEntry(1, "req_1", "POST", "/v1/chat/completions", 0.0, 0.0, {}, None)
    StreamAccessLog(closed).write(entry)  # no exception: the request it logs is answered


def test_mockai_serve_writes_its_access_lines_to_stderr() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = ""
        for line in process.stdout:
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        ask: dict[str, Any] = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
        }
        answers = [httpx.post(url + "/v1/chat/completions", json=ask, timeout=30) for _ in range(2)]
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    ids = [answer.headers["x-request-id"] for answer in answers]
    access = [line for line in stderr.splitlines() if " mockai.access " in line]
    assert len(access) == 2, stderr
    for line, request_id in zip(access, ids, strict=True):
        assert re.fullmatch(
            r"\d\d:\d\d:\d\d mockai\.access POST /v1/chat/completions 200 gpt-4o-mini "
            rf"\d+\.\dms generator {request_id}",
            line,
        ), line


# --- one line per request, whatever the client sent ----------------------------------------------

# Any character at all, surrogates and line separators included.
_ANY = st.text(st.characters(), max_size=20)


@st.composite
def hostile_entries(draw: st.DrawFn) -> JournalEntry:
    """An entry whose every text field is any text (`entries` keeps to valid strings)."""
    entry = draw(entries())
    entry.request_id, entry.method, entry.path = draw(_ANY), draw(_ANY), draw(_ANY)
    entry.model, entry.source, entry.rule = draw(_ANY), draw(_ANY), draw(st.none() | _ANY)
    entry.faults = draw(st.lists(_ANY, max_size=3))
    return entry


def _one_line(text: str) -> bool:
    """`text` is one line ending in a newline, by any tool's idea of a line: no character that
    Python's `splitlines` or a terminal takes for a line break or a control, or could not print."""
    return text.endswith("\n") and text[:-1].isprintable()


@given(hostile_entries())
def test_any_request_is_one_text_line_and_its_json_keeps_the_values(entry: JournalEntry) -> None:
    direct = _directly(entry, False)
    assert _one_line(direct), direct
    assert _through_logging(entry, text_formatter())[9:] == direct[9:]
    line = _directly(entry, True)
    assert _one_line(line), line
    data = json.loads(line)
    assert data["model"] == entry.model and data["path"] == entry.path  # as sent, not escaped
    assert data["message"] == direct[9 + len(ACCESS_LOGGER) + 1 : -1]  # the text line's


@pytest.fixture(scope="module")
def logged_server() -> Iterator[tuple[MockServer, list[str]]]:
    """A MockServer whose access lines are written in `mockai serve`'s text form, into a list."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record) + "\n")  # (as a StreamHandler ends each one)

    handler = Collect()
    handler.setFormatter(text_formatter())
    logger = logging.getLogger(ACCESS_LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with MockServer(Config(), port=0) as server:
            yield server, lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# What httpx sends in a header value: printable ASCII and tabs, not at either end.
_HEADER = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"), max_size=20
).map(lambda text: text.strip(" \t"))
_SENT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)  # (UTF-8 has no Cs)


@settings(max_examples=60)
@given(model=_SENT, segment=_SENT, header=_HEADER)
def test_a_real_server_logs_any_model_path_and_header_on_one_line(
    logged_server: tuple[MockServer, list[str]], model: str, segment: str, header: str
) -> None:
    server, lines = logged_server
    ask = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-mockai-fault": header, "x-request-id": header}
    with httpx.Client(timeout=30) as http:
        start = len(lines)
        http.post(server.url + "/chat/completions", json=ask, headers=headers)
        # (the path's text decoded by the server: `%0a` is a newline in `request.path`)
        http.get(server.url + "/models/" + urllib.parse.quote(segment, safe=""), headers=headers)
        deadline = time.monotonic() + 10
        while len(lines) < start + 2 and time.monotonic() < deadline:
            time.sleep(0.005)
    written = lines[start:]
    assert len(written) == 2, written
    for line in written:
        assert _one_line(line), line
        assert "".join(written).count("\n") == 2


def test_mockai_serve_writes_a_forged_looking_model_and_path_on_their_own_lines() -> None:
    """A newline in a model name, or `%0a` in a path, once wrote a second access line that looked
    like another request's."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = ""
        for line in process.stdout:
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        forged = "00:00:00 mockai.access POST /v1/admin/forged 200 gpt-4o 1.0ms generator req_x"
        ask = {"model": "gpt-4o-mini\n" + forged, "messages": [{"role": "user", "content": "hi"}]}
        httpx.post(url + "/v1/chat/completions", json=ask, timeout=30)
        httpx.post(
            url + "/v1/chat/completions%0a" + forged.replace(" ", "%20"), json={}, timeout=30
        )
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    access = [line for line in stderr.splitlines() if "mockai.access" in line]
    assert len(access) == 2, stderr
    assert access[0].count("mockai.access") == 2 and "gpt-4o-mini\\n00:00:00" in access[0]
    assert "/v1/chat/completions\\n00:00:00" in access[1]
    assert all(re.match(r"\d\d:\d\d:\d\d mockai\.access POST /v1/chat/", line) for line in access)
