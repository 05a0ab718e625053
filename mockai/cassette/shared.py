"""Replayed cassettes loaded once per process and shared by the servers that replay them.

A test suite starting one server per test, each replaying the same cassette, would parse it for
every test: ~0.3 ms a recording (YAML, the wire answers, the index), 150 ms a test for 500
recordings. What a `ReplaySource` replays (its entries, index and alike-table) is read-only once
made, so a second server replaying the same files, unchanged on disk, with the same settings,
shares them and keeps only its own play counts (`ReplaySource.sharing`), as scenario files are
compiled once (`scenario/loader.py`).

A cassette is kept the second time it is loaded, not the first: a suite with one cassette per
test (pytest-recording's layout) loads each once, and keeping them all would only hold memory.
"Unchanged" is the files' path, size, modification and change times and inode (a rewrite, even
an atomic one, or another file put in its place with the same size and time, changes one of
them); one kept version per cassette and settings, and at most `KEPT_RECORDINGS` recordings
kept in all (the oldest kept cassette goes first).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from pathlib import Path

from mockai.cassette.format import cassette_files
from mockai.cassette.replay import ReplaySource

# Recordings kept for sharing, over every kept cassette (~5 KiB each once loaded).
KEPT_RECORDINGS = 20_000
# Cassettes remembered as loaded once (their signatures only: a few hundred bytes each).
SEEN = 4096

Signature = tuple[tuple[str, int, int, int, int], ...]

_lock = threading.Lock()
_seen: dict[Hashable, Signature] = {}
_kept: dict[Hashable, tuple[Signature, ReplaySource]] = {}


def signature(path: Path) -> Signature:
    """What says the cassette files under `path` are unchanged: each one's path, size,
    modification and change times and inode (-1s for a file that cannot be stat'ed, whose load
    then fails: nothing is kept for it)."""
    marks = []
    for file in cassette_files(path):
        try:
            info = os.stat(file)
        except OSError:
            marks.append((str(file.absolute()), -1, -1, -1, -1))
            continue
        marks.append(
            (str(file.absolute()), info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        )
    return tuple(marks)


def replay_source(
    path: Path,
    settings: Hashable,
    load: Callable[[], ReplaySource],
    *,
    allow_repeats: bool,
) -> ReplaySource:
    """A ReplaySource for the cassettes under `path`: sharing what an earlier load with the same
    `settings` made, if the files are unchanged since, else `load()`ed (and kept the second
    time). `settings`: everything else the source's entries and index depend on."""
    key = (str(path.absolute()), settings)
    marks = signature(path)
    with _lock:
        kept = _kept.get(key)
        if kept is not None and kept[0] == marks:
            return ReplaySource.sharing(kept[1], allow_repeats=allow_repeats)
        again = _seen.get(key) == marks
    loaded = load()
    with _lock:
        _kept.pop(key, None)  # (an older version of these files: never asked for again)
        if again and len(loaded.entries) <= KEPT_RECORDINGS:
            _kept[key] = (marks, loaded)
            _evict()
        else:
            if len(_seen) >= SEEN:
                _seen.pop(next(iter(_seen)))
            _seen[key] = marks
    return loaded


def _evict() -> None:
    """Drop the oldest kept cassettes until the kept recordings fit `KEPT_RECORDINGS` (the one
    just kept fits on its own, so it stays)."""
    held = sum(len(source.entries) for _, source in _kept.values())
    while held > KEPT_RECORDINGS:
        oldest = next(iter(_kept))
        held -= len(_kept.pop(oldest)[1].entries)
