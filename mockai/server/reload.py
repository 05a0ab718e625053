"""`--watch`: reload scenario files when they change, atomically.

The files (and folders) given with `--scenario` are watched with watchfiles (inotify on Linux; the
parent folder of each file is watched, so editors that save by writing a new file and renaming it
are seen; a folder moved, copied or made inside a watched one counts as a change of the files it
holds). After a change settles, the whole set is loaded again *off the event loop* and, only if
every file is valid, swapped into the RuleBook in one step: requests see the old rules or the new
ones, never a mix. A change of dot-entries alone (an editor's swap file; a Kubernetes ConfigMap's
`..data` link, which its files are links through) loads them again only if they now hold other
rules, quietly otherwise. A broken edit (or a rule taking the name of a rule added at runtime) is
logged with each problem's `file:line` and the previous rules keep serving. Only rules reload;
settings (seed, models, chaos, limits) take a restart.

The watcher is set up before the server says it is listening, and then loads whatever changed
since the files were first loaded (an edit made while it started brings no event), so every
`--workers` process ends up on the files as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from mockai import scenario
from mockai.errors import ConfigError, ScenarioError
from mockai.scenario.book import RuleBook
from mockai.server.state import STATE

log = logging.getLogger("mockai")

DEBOUNCE_MS = 150  # changes closer together than this are one reload (an editor's save)
SUFFIXES = (".yaml", ".yml")
ARM_TIMEOUT = 10.0  # seconds the start waits for the watcher to be set up


def require_watchfiles() -> None:
    """A ConfigError naming the extra to install when watchfiles is missing."""
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        raise ConfigError(
            "watch: reloading scenario files needs watchfiles; pip install 'mockai-server[service]'"
        ) from None


async def watch_lifespan(app: web.Application) -> AsyncIterator[None]:
    """An aiohttp cleanup context: watch while the server runs (when `--watch` asked for it)."""
    state = app[STATE]
    if not state.config.watch or not state.config.scenarios or state.rules is None:
        yield
        return
    stop = asyncio.Event()
    armed = asyncio.Event()
    task = asyncio.create_task(watch(state.config.scenarios, state.rules, stop, armed))
    # The server says it is listening once this context is entered: an edit made from then on
    # must be seen, so the watcher is set up first. (Bounded: a watcher slow to start, a huge
    # folder, still catches up with the files once it is; one that failed is reported when the
    # server stops.)
    arming = asyncio.create_task(armed.wait())
    await asyncio.wait({task, arming}, timeout=ARM_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    arming.cancel()
    yield
    stop.set()
    with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
        await asyncio.wait_for(task, 5)


async def watch(
    paths: Sequence[str], book: RuleBook, stop: asyncio.Event, armed: asyncio.Event | None = None
) -> None:
    """Reload `paths` into `book` on every change, until `stop` is set; `armed` is set once
    every later change is sure to be seen (and what changed before is loaded)."""
    from watchfiles import awatch

    # Absolute, symlinks left as they are: a file given through a link is watched in the folder
    # holding the link, where a Kubernetes ConfigMap's update happens (`rules.yaml ->
    # ..data/rules.yaml`, `..data` swapped for a new folder, the old one deleted). Resolved, the
    # watch was on the old folder, gone with the update, and no later edit was ever seen.
    targets = [Path(os.path.abspath(path)) for path in paths]
    roots = sorted({str(t if t.is_dir() else t.parent) for t in targets})
    folders = await asyncio.to_thread(_folders, targets)

    def beside(path: Path) -> bool:
        """A dot-entry right in a watched folder (or in one a watched file is in): no scenario
        file, but what one may be a link through. A ConfigMap's update changes only those
        (`..data`, `..2025_01_01_...`): the files' own links stay as they were."""
        return path.name.startswith(".") and str(path.parent) in roots

    def quiet(batch: set[tuple[Any, str]]) -> bool:
        """Whether `batch` changed dot-entries only: the files are loaded again only if they
        now hold other rules, and quietly otherwise (an editor's swap file changes often)."""
        return all(beside(Path(changed)) and Path(changed) not in targets for _, changed in batch)

    def relevant(_change: object, changed: str) -> bool:
        path = Path(changed)
        if path in targets:  # (a file given by name: loaded even when its name starts with a dot)
            return True
        if beside(path):
            return True  # (checked quietly: `quiet`)
        within = next((path.relative_to(t) for t in targets if t in path.parents), None)
        # Dot-files and dot-folders (an editor's `.#rules.yaml`, `.rules.yaml.swp`) are not
        # scenario files: the loader skips them too (`scenario.loader.expand`).
        if within is None or any(part.startswith(".") for part in within.parts):
            return False
        # A folder moved, copied or made in brings no event for the files it holds (nor does
        # one moved out): it changes the set as they would.
        return path.suffix in SUFFIXES or path.is_dir() or path in folders

    log.info("mockai: watching %s for changes", ", ".join(paths))
    changes = awatch(
        *roots, watch_filter=relevant, stop_event=stop, debounce=DEBOUNCE_MS, step=50
    ).__aiter__()
    pending = asyncio.create_task(_next(changes))
    try:
        # awatch sets its watcher up (inotify) in its first step, before it first waits, in a
        # thread, for a change: once that step ran, every later edit brings an event.
        await asyncio.sleep(0)
        # An edit made between the load this server started with and now brought none (made
        # just after the banner, or while a `--workers` worker was starting): load it now.
        await catch_up(paths, book)
        if armed is not None:
            armed.set()
        while (batch := await pending) is not None:
            await (catch_up(paths, book) if quiet(batch) else reload(paths, book))
            folders = await asyncio.to_thread(_folders, targets)
            pending = asyncio.create_task(_next(changes))
    finally:
        pending.cancel()


async def _next(changes: AsyncIterator[set[tuple[Any, str]]]) -> set[tuple[Any, str]] | None:
    """The next batch of changes, or None once the watch is stopped."""
    try:
        return await changes.__anext__()
    except StopAsyncIteration:
        return None


async def catch_up(paths: Sequence[str], book: RuleBook) -> bool:
    """Reload `paths` when `book` does not serve what they hold now (quietly when it does)."""
    if await asyncio.to_thread(_current, paths, book):
        return True
    return await reload(paths, book)


def _current(paths: Sequence[str], book: RuleBook) -> bool:
    """True when `book` serves the rules `paths` hold now. (Loading is cached by each file's
    size and modification time in nanoseconds: files unchanged give the very rules the book was
    made from, and an edit, even within the same second, gives new ones.)"""
    try:
        return scenario.load(list(paths)).rules == book.scenario_rules
    except (ScenarioError, OSError):  # (a reload says what is wrong)
        return False


def _folders(targets: Sequence[Path]) -> set[Path]:
    """The folders inside the watched ones (to know a deleted path was one: it cannot be asked)."""
    return {found for t in targets if t.is_dir() for found in t.rglob("*") if found.is_dir()}


async def reload(paths: Sequence[str], book: RuleBook) -> bool:
    """Load `paths` again and serve their rules; on a problem keep the current ones."""
    try:
        loaded = await asyncio.to_thread(scenario.load, list(paths))
        book.replace_scenario(loaded.rules)  # (refused when a rule takes a runtime rule's name)
    except ScenarioError as problems:
        log.error(
            "mockai: reload refused, the previous rules keep serving:\n%s",
            "\n".join(f"  {line}" for line in str(problems).splitlines()),
        )
        return False
    except OSError as error:  # a file gone between the change and the read
        log.error("mockai: reload refused (%s), the previous rules keep serving", error)
        return False
    log.info("mockai: reloaded %d rule(s) from %s", len(loaded.rules), ", ".join(paths))
    return True
