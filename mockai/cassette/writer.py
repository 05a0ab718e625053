"""Saving recordings: many concurrent recordings into one cassette, nothing lost, nothing torn.

Every completed interaction is appended in memory and triggers a save; saves run one at a time
(one drain task per cassette) in a worker thread, and a save started while another runs is
coalesced into the next, so 50 concurrent recordings cost a handful of rewrites, never a lost
interaction. Each save is atomic (`format.atomic_write`) and scanned for secrets first.

A cassette is never silently overwritten:
- `once` only ever creates a cassette; `new_episodes` only appends to one, into the file's own
  text (`splice`: its comments, formatting and key order stay); a file that cannot take them so
  (JSON, a flow-style list) is written anew, and kept as it was in `<cassette>.bak` (logged)
  unless writing it anew changes none of its bytes;
- `all` replaces re-recorded interactions, and keeps the file as it was before the session in
  `<cassette>.bak` (logged);
- if the file changes on disk while mockai records into it (another process, an editor), mockai
  does not overwrite it: it saves to `<cassette>.conflict` and says so; that file is this
  recorder's own, created for it (`.conflict-2`, `-3`, ... when another session, or a recorder
  racing with this one, already has `.conflict`), so no two sessions write into one.

One interaction that cannot be written (its serializer refuses it, or its text would look like
a secret) never costs the others: it is set aside, named in one error line with the reason, and
the cassette is saved without it. Otherwise every later save would retry it and fail, and the
session's later recordings would be lost too.

One process records into a cassette: `mockai serve --workers N` refuses to record (configure.py),
since each worker's recorder would take the others' saves for an edit made under its feet.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

from mockai.cassette.format import (
    TEMPORARY_EXTRA,
    Cassette,
    CassetteFile,
    Interaction,
    atomic_write,
    fitting_name,
    longest_name,
)
from mockai.cassette.modes import RecordMode
from mockai.cassette.redact import Scrubber
from mockai.cassette.scan import refuse_leaks, scan_document, scan_interaction, scrub_interaction
from mockai.cassette.splice import Splice
from mockai.errors import CassetteError, MockaiError

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

log = logging.getLogger("mockai.cassette")

Supersedes = Callable[[Interaction, Interaction], bool]  # (new, old) -> new replaces old


def _disk_state(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    except OSError as error:  # a folder on the way is a file, a name too long, no permission
        raise CassetteError(f"cannot record into {path}: {error.strerror or error}") from None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


# A save writes a temporary next to its target first (format.atomic_write: `.NAME.<8 hex>.tmp`);
# the targets are the cassette, its `.bak` and, after a conflict, `.conflict` or `.conflict-N`.
_MOST_CONFLICTS = 999  # `.conflict-999`: beyond, recording stops (said) rather than pile up more
_LONGEST_SIBLING = TEMPORARY_EXTRA + len(f".conflict-{_MOST_CONFLICTS}")
_REPLACED = "mockai: re-recording %s; the previous version is kept in %s"
_REPLACED_SCRUBBED = (
    "mockai: re-recording %s; the previous version is kept in %s, with its credentials scrubbed "
    "(written anew, without its comments)"
)
_REWRITTEN = (
    "mockai: appending to %s writes it anew (a JSON or flow-style cassette cannot take new "
    "interactions in its own text: its comments and formatting would be lost); the previous "
    "version is kept in %s"
)


def check_recordable(path: Path) -> None:
    """A CassetteError, said at startup, if saving into `path` is bound to fail; otherwise every
    save would fail once recording started, and the session's recordings would be lost."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # (atomic_write makes the missing folders)
    if not folder.is_dir():
        raise CassetteError(f"cannot record into {path}: {folder} is not a folder")
    longest = longest_name(folder)
    # (The files saved beside it, temporaries and conflict files, are named to fit: `sibling`.)
    if len(os.fsencode(path.name)) > longest:
        raise CassetteError(
            f"cannot record into {path}: {os.strerror(errno.ENAMETOOLONG)} (the file system "
            f"takes names up to {longest} bytes): give the cassette a shorter name"
        )
    _disk_state(path)
    # Every save writes a temporary beside the cassette (or makes its folders): one is tried now
    # (a read-only folder, a full disk, another user's folder), and removed at once.
    try:
        handle, trial = tempfile.mkstemp(prefix=".mockai-", suffix=".tmp", dir=folder)
    except OSError as error:
        raise CassetteError(
            f"cannot record into {path}: {folder} cannot be written to ({error.strerror})"
        ) from None
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(trial)


def sibling(path: Path, suffix: str) -> Path:
    """The file `<cassette><suffix>` (`.bak`, `.conflict-N`) beside `path`; for a cassette name
    too long to take `.conflict-999` and a temporary's `..XXXXXXXX.tmp`, its start, `~` and a
    hash of it stand for the name (`format.fitting_name`), so that every such file fits."""
    stem = fitting_name(path.name, _LONGEST_SIBLING, longest_name(path.parent))
    return path.with_name(stem + suffix)


class _Unsavable(Exception):
    """Interactions of this session that cannot be written, each with the reason."""

    def __init__(self, culprits: list[tuple[Interaction, str]]) -> None:
        super().__init__(culprits)
        self.culprits = culprits


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
        if path.is_symlink():
            # The cassette a link names is the one recorded into (its `.bak`, temporaries and
            # conflict files beside it): a save renamed onto the link replaced it with a file
            # of its own, and the linked cassette never got the recordings.
            path = Path(os.path.realpath(path))
        self.path = path
        self.mode = mode
        self.scrubber = scrubber
        self.supersedes = supersedes
        self._base = self._scrubbed_base(loaded.interactions if loaded else [])
        # (Then the file as it was holds a credential: a `.bak` keeps it scrubbed, see _previous.)
        self._held_secrets = loaded is not None and any(
            old is not kept for old, kept in zip(loaded.interactions, self._base, strict=True)
        )
        self._metadata = loaded.metadata if loaded else None
        self._new: list[Interaction] = []
        check_recordable(path)
        self._expected = _disk_state(path)
        self._target = path
        self._backed_up = mode is not RecordMode.ALL or self._expected is None
        self._backup_note = _REPLACED
        self._splice: Splice | None = None
        if loaded is not None and mode is not RecordMode.ALL and self._expected is not None:
            self._splice = self._own_text(loaded)
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self.saves = 0  # completed writes (for tests and measurements)
        self.refused = 0  # interactions not recorded because they still held a secret

    def _scrubbed_base(self, interactions: list[Interaction]) -> list[Interaction]:
        """The loaded interactions as they will be saved: as the file holds them (`raw`, written
        back unchanged: `new_episodes` only appends), but for one that holds a credential or a
        key-like string, which is scrubbed (and so written anew)."""
        scrubbed = [self._kept(i) for i in interactions]
        changed = sum(old != new for old, new in zip(interactions, scrubbed, strict=True))
        if changed:
            log.warning(
                "mockai: %d interaction(s) of %s hold credentials or key-like strings; they are "
                "scrubbed when the cassette is saved, which writes it anew (without its comments)",
                changed,
                self.path,
            )
        return scrubbed

    def _own_text(self, loaded: Cassette) -> Splice | None:
        """Where the file's own text takes this session's interactions, or None: then saves
        write it anew, first keeping it in `.bak` if that would change its bytes."""
        if any(old is not kept for old, kept in zip(loaded.interactions, self._base, strict=True)):
            return None  # (scrubbed: the credential must go, and no `.bak` may keep it; said)
        try:  # (bytes: reading text would turn the file's CRLFs into LFs)
            text = self.path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None  # (it loaded a moment ago: the save will say what is wrong)
        if scan_document(self.path, text, self.scrubber):  # (not in an interaction: scrubbed)
            log.warning(
                "mockai: %s holds what looks like a secret outside its interactions (a "
                "comment?); saving writes the cassette anew, without its comments",
                self.path,
            )
            return None  # (kept, each save would be refused; and no `.bak` may keep it)
        own = Splice.of(text) if self.path.suffix.lower() != ".json" else None
        anew = Cassette(self.path, self._base, self._metadata)
        if own is None and CassetteFile.dumps(anew) != text:
            self._rewrite()
        return own

    def _rewrite(self) -> None:
        """Saves write the file anew: the first keeps it as it was in `.bak`, and says so."""
        self._splice = None
        self._backed_up = False
        self._backup_note = _REWRITTEN

    def _kept(self, interaction: Interaction) -> Interaction:
        if interaction.raw is not None and not scan_interaction(interaction, self.scrubber):
            return interaction  # (what scrubbing would still drop, a `DUMMY` header, is no secret)
        return scrub_interaction(interaction, self.scrubber)

    @property
    def recorded(self) -> int:
        """How many interactions this session recorded."""
        return len(self._new)

    def add(self, interaction: Interaction, secrets: tuple[str, ...] = ()) -> bool:
        """Keep a (scrubbed) interaction and schedule a save; False if it still holds a secret."""
        problems = scan_interaction(interaction, self.scrubber, secrets)
        if problems:
            self.refused += 1
            log.error(  # (one line: log collectors split records at line breaks)
                "mockai: not recording %s %s into %s: it still holds secrets: %s",
                interaction.method,
                interaction.uri,
                self.path,
                "; ".join(problems),
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
        # Bounded: a turn that is not the last either saved or set aside at least one interaction.
        while self._dirty:
            self._dirty = False
            snapshot = self.contents()
            try:
                await _off_the_loop(self._write, snapshot, list(self._new))
            except _Unsavable as unsavable:
                self._set_aside(unsavable.culprits)
                self._dirty = True  # save the others now
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

    def _set_aside(self, culprits: list[tuple[Interaction, str]]) -> None:
        """Leave out of the cassette what cannot be written (said once each, no traceback)."""
        unsavable = {id(interaction) for interaction, _ in culprits}
        self._new = [i for i in self._new if id(i) not in unsavable]
        self.refused += len(culprits)
        for interaction, reason in culprits:
            log.error(
                "mockai: not saving %s %s in %s: %s. The cassette's other interactions are "
                "saved without it.",
                interaction.method,
                interaction.uri,
                self.path,
                reason,
            )

    def _write(self, cassette: Cassette, new: list[Interaction]) -> None:
        # Runs in a worker thread, one at a time (the drain task awaits each write).
        try:
            text, written = self._text(cassette, new)
            # (A spliced save's head and tail are the file's bytes, found clean as it loaded: only
            # what is new, and the lines it joins, is looked through; a finding there has the
            # whole text looked through, which says where it is.)
            if written is None or self.scrubber.scan(written):
                refuse_leaks(self._target, text, self.scrubber)
        except Exception:
            # Which of this session's interactions is it? Those are set aside and the rest saved;
            # if none is to blame alone (the loaded cassette is), the save fails as a whole.
            culprits = [(i, reason) for i in new if (reason := self._unsavable(i)) is not None]
            if culprits:
                raise _Unsavable(culprits) from None
            raise
        # Check and write as one step: between another recorder's check and its rename, a save
        # of this one would be overwritten unseen (pytest-xdist workers recording one cassette).
        with _saving_lock(self.path.parent):
            self._save(text)

    def _text(self, cassette: Cassette, new: list[Interaction]) -> tuple[str, str | None]:
        """The file's next text: its own text with `new` appended, when it takes them so
        (`cassette` is then the loaded interactions and `new`), else `cassette` written anew;
        and, when appended, the part of it that is new, with the ends of what it joins."""
        splice = self._splice
        if splice is not None:
            text = splice.appended(_block_list(self.path, new))
            if text is not None:
                begin = max(len(splice.head) - _JOINED, 0)
                return text, text[begin : len(text) - len(splice.tail) + _JOINED]
            self._rewrite()  # (YAML that splicing would change: written anew, after a `.bak`)
        return CassetteFile.dumps(cassette), None

    def _save(self, text: str) -> None:
        if self._target == self.path and _disk_state(self.path) != self._expected:
            self._target = claim_conflict_file(self.path)
            log.error(
                "mockai: %s changed on disk while mockai was recording into it; not "
                "overwriting it. This session's cassette is saved to %s instead.",
                self.path,
                self._target,
            )
        if not self._backed_up and self._target == self.path:
            backup = sibling(self.path, ".bak")
            previous, note = self._previous()
            if previous is not None:
                _mode_like(backup, self.path)
                atomic_write(backup, previous)
                log.warning(note, self.path, backup)
            self._backed_up = True
        atomic_write(self._target, text.encode("utf-8"))
        if self._target == self.path:
            self._expected = _disk_state(self.path)
        self.saves += 1

    def _previous(self) -> tuple[bytes | None, str]:
        """What `.bak` keeps, and the line saying so: the file as it was; or, when it held a
        credential (scrubbed when it loaded) or key-like text outside its interactions (a
        comment), its interactions scrubbed and written anew, since no `.bak` may keep one (a
        `cassettes/` folder is committed whole); None if even that would hold one (said)."""
        data = self.path.read_bytes()
        text = data.decode("utf-8", "replace")
        if not self._held_secrets and not scan_document(self.path, text, self.scrubber):
            return data, self._backup_note
        anew = CassetteFile.dumps(Cassette(self.path, self._base, self._metadata))
        if scan_document(self.path, anew, self.scrubber):
            log.warning("mockai: %s holds secrets even scrubbed; no .bak of it is kept", self.path)
            return None, ""
        note = _REPLACED_SCRUBBED if self._backup_note is _REPLACED else self._backup_note
        return anew.encode("utf-8"), note

    def _unsavable(self, interaction: Interaction) -> str | None:
        """Why `interaction` alone cannot be written into this cassette, or None."""
        alone = Cassette(self.path, [interaction])
        try:
            text = CassetteFile.dumps(alone)
        except Exception as error:  # whatever the serializer raises: it is said, not thrown
            kind = "JSON" if self.path.suffix.lower() == ".json" else "YAML"
            return f"the {kind} serializer refused it ({type(error).__name__}: {error})"
        problems = scan_document(self.path, text, self.scrubber)
        if problems:
            found = "; ".join(p.message.removeprefix("interaction 0 ") for p in problems)
            return f"its text would hold what looks like a secret ({found})"
        return None


# How much of the file's own text on each side of a spliced save's new part is scanned with it:
# no secret pattern crosses a line's end, and the new part begins and ends one.
_JOINED = 256


async def _off_the_loop(write: Callable[..., None], *args: object) -> None:
    """`write(*args)` in a worker thread; on the loop's own thread once the interpreter is
    exiting, when the threads' pool takes no more work (a server still running then is stopped,
    see `mockai.server.background`, and its last recordings saved rather than lost)."""
    loop = asyncio.get_running_loop()
    try:
        done = loop.run_in_executor(None, functools.partial(write, *args))
    except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
        write(*args)
        return
    await done


def _block_list(path: Path, interactions: list[Interaction]) -> str:
    """`interactions` as the serializer writes the items of a cassette's list (at column 0)."""
    if not interactions:
        return ""
    text = CassetteFile.dumps(Cassette(path, interactions))
    # ("interactions:" then the items, then "version: 1": the document's only keys, sorted.)
    return text.removeprefix("interactions:\n").removesuffix("version: 1\n")


def _mode_of(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None


def _mode_like(path: Path, cassette: Path) -> None:
    """`path` (created empty if missing) with the cassette's permissions before it is written:
    atomic_write's temporary takes the mode of the file it replaces, so a `.bak` of a 0600
    cassette is never, not even for a moment, readable by more than the cassette is."""
    mode = _mode_of(cassette)
    if mode is None:
        return
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), mode))
    os.chmod(path, mode)  # (an existing file's mode, and bits the umask took, set exactly)


@contextlib.contextmanager
def _saving_lock(folder: Path) -> Iterator[None]:
    """Hold the lock of the cassettes' folder (flock; every mockai saving into it takes it, in
    this process or another). Where there is no flock (Windows, a filesystem that refuses it),
    the save goes on unlocked: the check before the write still catches all but a close race."""
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(descriptor, fcntl.LOCK_EX)  # (released on close, also if the thread dies)
        yield
    finally:
        os.close(descriptor)


def claim_conflict_file(path: Path) -> Path:
    """A new, empty file next to `path` for one recorder's session: `<cassette>.conflict`, or
    `.conflict-2`, `-3`, ... when taken. Created here (O_EXCL), never reused: several recorders of
    one cassette (pytest-xdist workers, several servers) would otherwise overwrite each other."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    mode = _mode_of(path)  # (the session's recordings are as private as the cassette)
    for number in range(1, _MOST_CONFLICTS + 1):
        suffix = ".conflict" if number == 1 else f".conflict-{number}"
        candidate = sibling(path, suffix)
        try:
            # (a cassette deleted meanwhile has no mode: the umask decides, as it did for it)
            os.close(os.open(candidate, flags, 0o666 if mode is None else mode))
        except FileExistsError:
            continue
        if mode is not None:
            os.chmod(candidate, mode)  # (exactly: the umask may have taken bits it has)
        return candidate
    first, last = sibling(path, ".conflict").name, sibling(path, f".conflict-{_MOST_CONFLICTS}")
    raise CassetteError(
        f"cannot save into {path}: it changed on disk, and {first} to {last.name} all exist; "
        "merge or delete them"
    )


def stale_temporaries(path: Path) -> list[Path]:
    """Temporary files a killed writer of `path` left behind (hidden, harmless, deletable)."""
    stem = fitting_name(path.name, TEMPORARY_EXTRA, longest_name(path.parent))
    pattern = re.compile(rf"\.{re.escape(stem)}\.[a-z0-9_]+\.tmp")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    return [path.parent / name for name in names if pattern.fullmatch(name)]
