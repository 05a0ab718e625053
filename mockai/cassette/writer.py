"""Saving recordings: many concurrent recordings into one cassette, nothing lost, nothing torn.

Every completed interaction is appended in memory and triggers a save; saves run one at a time
(one drain task per cassette) in a worker thread, and a save started while another runs is
coalesced into the next, so 50 concurrent recordings cost a handful of rewrites, never a lost
interaction. Each save is atomic (`format.atomic_write`) and scanned for secrets first.

A cassette is never silently overwritten:
- `once` only ever creates a cassette; `new_episodes` only appends to one;
- `all` replaces re-recorded interactions, and keeps the file as it was before the session in
  `<cassette>.bak` (logged);
- if the file changes on disk while mockai records into it (another process, an editor), mockai
  does not overwrite it: it saves to `<cassette>.conflict` and says so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from mockai.cassette.format import Cassette, CassetteFile, Interaction, atomic_write
from mockai.cassette.modes import RecordMode
from mockai.cassette.redact import Scrubber
from mockai.cassette.scan import refuse_leaks, scan_interaction, scrub_interaction
from mockai.errors import MockaiError

log = logging.getLogger("mockai.cassette")

Supersedes = Callable[[Interaction, Interaction], bool]  # (new, old) -> new replaces old


def _disk_state(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class CassetteRecorder:
    """Appends recorded interactions to one cassette file."""

    def __init__(
        self,
        path: Path,
        mode: RecordMode,
        loaded: Cassette | None,
        scrubber: Scrubber,
        supersedes: Supersedes | None = None,
    ) -> None:
        self.path = path
        self.mode = mode
        self.scrubber = scrubber
        self.supersedes = supersedes
        self._base = self._scrubbed_base(loaded.interactions if loaded else [])
        self._metadata = loaded.metadata if loaded else None
        self._new: list[Interaction] = []
        self._expected = _disk_state(path)
        self._target = path
        self._backed_up = mode is not RecordMode.ALL or self._expected is None
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self.saves = 0  # completed writes (for tests and measurements)
        self.refused = 0  # interactions not recorded because they still held a secret

    def _scrubbed_base(self, interactions: list[Interaction]) -> list[Interaction]:
        scrubbed = [scrub_interaction(i, self.scrubber) for i in interactions]
        changed = sum(old != new for old, new in zip(interactions, scrubbed, strict=True))
        if changed:
            log.warning(
                "mockai: %d interaction(s) of %s hold credentials or key-like strings; they are "
                "scrubbed when the cassette is saved",
                changed,
                self.path,
            )
        return scrubbed

    @property
    def recorded(self) -> int:
        """How many interactions this session recorded."""
        return len(self._new)

    def add(self, interaction: Interaction, secrets: tuple[str, ...] = ()) -> bool:
        """Keep a (scrubbed) interaction and schedule a save; False if it still holds a secret."""
        problems = scan_interaction(interaction, self.scrubber, secrets)
        if problems:
            self.refused += 1
            log.error(
                "mockai: not recording %s %s into %s: it still holds secrets:\n  %s",
                interaction.method,
                interaction.uri,
                self.path,
                "\n  ".join(problems),
            )
            return False
        self._new.append(interaction)
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return True

    async def flush(self) -> None:
        """Wait until everything recorded so far is on disk (or its save failed, logged)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        while self._dirty:
            self._dirty = False
            snapshot = self.contents()
            try:
                await asyncio.to_thread(self._write, snapshot)
            except (MockaiError, OSError) as error:
                log.error("mockai: cassette not saved: %s", error)
            except Exception:  # a bug: keep recording, keep the traceback
                log.exception("mockai: cassette %s not saved", self.path)

    def contents(self) -> Cassette:
        """What the cassette holds now: the loaded interactions (minus those re-recorded, in
        `all` mode) followed by this session's recordings."""
        new = list(self._new)
        base = self._base
        if self.mode is RecordMode.ALL and self.supersedes is not None:
            supersedes = self.supersedes
            base = [old for old in base if not any(supersedes(n, old) for n in new)]
        return Cassette(self.path, base + new, self._metadata)

    def _write(self, cassette: Cassette) -> None:
        # Runs in a worker thread, one at a time (the drain task awaits each write).
        text = CassetteFile.dumps(cassette)
        refuse_leaks(self._target, text, self.scrubber)
        if self._target == self.path and _disk_state(self.path) != self._expected:
            self._target = self.path.with_name(self.path.name + ".conflict")
            log.error(
                "mockai: %s changed on disk while mockai was recording into it; not "
                "overwriting it. This session's cassette is saved to %s instead.",
                self.path,
                self._target,
            )
        if not self._backed_up and self._target == self.path:
            backup = self.path.with_name(self.path.name + ".bak")
            atomic_write(backup, self.path.read_bytes())
            log.warning(
                "mockai: re-recording %s; the previous version is kept in %s", self.path, backup
            )
            self._backed_up = True
        atomic_write(self._target, text.encode("utf-8"))
        if self._target == self.path:
            self._expected = _disk_state(self.path)
        self.saves += 1


def stale_temporaries(path: Path) -> list[Path]:
    """Temporary files a killed writer of `path` left behind (hidden, harmless, deletable)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]+\.tmp")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    return [path.parent / name for name in names if pattern.fullmatch(name)]
