"""Which cassette sources a configuration asks for (replay, the upstream, both, or none).

| record mode    | cassette exists              | cassette missing                       |
|----------------|------------------------------|----------------------------------------|
| `none`         | replay; a miss is an error   | error at startup (nothing to replay)   |
| `once`         | replay; a miss is an error   | record everything into a new cassette  |
| `new_episodes` | replay, record the misses    | record everything into a new cassette  |
| `all`          | record everything (re-record; the old file is kept as `.bak`)         |

`--upstream` without `--cassette` is a passthrough proxy: everything is forwarded, nothing stored.

Recording takes one process: with `--workers N` each worker would hold a recorder of its own,
each would take the others' saves for edits made under its feet, and recordings would be lost;
`check_workers` refuses that at startup (replaying with N workers is fine).
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from mockai.cassette import shared
from mockai.cassette.format import (
    Cassette,
    Interaction,
    cassette_files,
    empty_cassette,
    load_all,
)
from mockai.cassette.matching import (
    DEFAULT_MATCH_ON,
    MATCHERS,
    MatcherRegistry,
    RequestView,
    failures,
)
from mockai.cassette.modes import RecordMode, validate_record_mode
from mockai.cassette.record import UpstreamSource
from mockai.cassette.redact import Scrubber
from mockai.cassette.replay import ReplaySource
from mockai.cassette.writer import CassetteRecorder, Supersedes
from mockai.config import Config
from mockai.errors import CassetteError, ConfigError
from mockai.pipeline.decide import Source

log = logging.getLogger("mockai.cassette")


def cassette_sources(config: Config, registry: MatcherRegistry = MATCHERS) -> list[Source]:
    """The cassette replay and upstream sources `config` describes, in the order they are asked."""
    try:
        mode = validate_record_mode(config.record_mode)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    scrubber = Scrubber(config.redact)
    # (only None is "not given": an empty list is refused, never quietly the default)
    match_on = registry.resolve(DEFAULT_MATCH_ON if config.match_on is None else config.match_on)
    if config.cassette is None:
        if config.upstream is None:
            return []
        return [UpstreamSource(config.upstream, scrubber=scrubber, record_errors=False)]
    path = Path(config.cassette)
    _probe(path)
    records = _records(mode, path)
    _refuse_workers(config, mode, path, records)
    if mode is RecordMode.NONE and not path.exists():
        raise CassetteError(
            f"cassette {path} does not exist, so there is nothing to replay. Record it first: "
            f"mockai serve --cassette {path} --record-mode once --upstream URL"
        )
    if mode is RecordMode.NONE and not has_cassettes(path):
        # (an empty file is what vcrpy takes for one not recorded yet: as a missing one, above;
        # so is a folder holding none but empty files, or nothing)
        raise CassetteError(empty_cassette(path) if path.is_file() else _no_cassette(path))
    sources: list[Source] = []
    # Recording: the recorder appends to the cassettes it was given, replay answers from them.
    # (Each interaction as the file holds it is kept too: a save writes it back unchanged.)
    cassettes = load_all(path, keep_raw=True) if records and path.exists() else []
    if mode is not RecordMode.ALL and not (mode is RecordMode.ONCE and records):
        if records:
            replay = _replay(path, config, match_on, registry, scrubber, cassettes)
        else:  # replay only: the files loaded once per process (cassette/shared.py)
            settings = (
                str(path),
                match_on,
                tuple((registry.matcher(name), registry.key(name)) for name in match_on),
                tuple(config.redact),
                config.replay_speed,
            )
            replay = shared.replay_source(
                path,
                settings,
                lambda: _replay(path, config, match_on, registry, scrubber, replay_only=True),
                allow_repeats=config.allow_repeats,
            )
        sources.append(replay)
        log.info("mockai: replaying %d interaction(s) from %s", len(replay.entries), path)
    if records:
        upstream = _upstream(config, path, mode, cassettes, scrubber, match_on, registry)
        log.info("mockai: recording (%s) into %s from %s", mode, path, upstream.shown)
        sources.append(upstream)
    elif config.upstream is not None:
        log.warning("mockai: --upstream is not used: record mode %s records nothing here", mode)
    return sources


def _replayed(path: Path) -> list[Cassette]:
    """The cassettes under `path` that replay alone answers from: a folder whose YAML files are
    all scenario files holds none, and is refused as a missing cassette is (served, every
    request had been a no-match)."""
    cassettes = load_all(path)
    if not cassettes:
        raise CassetteError(_no_cassette(path))
    return cassettes


def _no_cassette(folder: Path) -> str:
    return (
        f"cassette folder {folder} holds no cassette, so there is nothing to replay. Record one "
        f"first: mockai serve --cassette {folder / 'recorded.yaml'} --record-mode once "
        "--upstream URL"
    )


def _probe(path: Path) -> None:
    """A CassetteError for a path the system refuses to look at (a name too long, no permission):
    pathlib's checks below raise on those rather than answer False; and for one that is neither
    a file nor a folder (a FIFO, a device)."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return  # (said below: nothing to replay, or nowhere to record)
    except OSError as error:
        raise CassetteError(f"cassette {path}: {error.strerror or error}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        # A FIFO would be replayed as an empty cassette, or wait for a writer forever.
        from mockai.scenario.loader import file_kind

        raise CassetteError(f"cassette {path}: not a regular file ({file_kind(mode)})")


def _records(mode: RecordMode, path: Path) -> bool:
    """Whether `mode` records into `path` (`once` only into a cassette that is not there yet)."""
    if mode in (RecordMode.NEW_EPISODES, RecordMode.ALL):
        return True
    return mode is RecordMode.ONCE and not has_cassettes(path)


def check_workers(config: Config) -> None:
    """A ConfigError if `config` records with several worker processes: said before they are
    forked (`mockai serve`'s preflight), once, and the server does not start."""
    if config.cassette is None or config.workers <= 1:
        return
    try:
        mode = validate_record_mode(config.record_mode)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    path = Path(config.cassette)
    _probe(path)
    _refuse_workers(config, mode, path, _records(mode, path))


def _refuse_workers(config: Config, mode: RecordMode, path: Path, records: bool) -> None:
    # Each worker would record on its own into the one file: every save of one looks to the
    # others like an edit made under their feet, so they write `.conflict` files over each
    # other's and recordings are lost. One recorder per cassette keeps every recording.
    if records and config.workers > 1:
        raise ConfigError(
            f"--workers {config.workers} cannot record (--record-mode {mode}) into {path}: "
            "each worker process would save the cassette on its own and lose the others' "
            "recordings. Record with --workers 1; replaying with several workers is fine"
        )


def _replay(
    path: Path,
    config: Config,
    match_on: tuple[str, ...],
    registry: MatcherRegistry,
    scrubber: Scrubber,
    cassettes: list[Cassette] | None = None,
    *,
    replay_only: bool = False,
) -> ReplaySource:
    """The replay of the files under `path`, laid out anew (`ReplaySource.compact`) once what
    it was made from is gone: the files are read for it, a temporary of this call, unless a
    recorder's `cassettes` are given (it keeps them, appending what it records). `replay_only`:
    a folder holding no cassette is refused (`_replayed`).

    The files read are handed to the ReplaySource as a temporary that no variable here holds:
    compacting frees them as it goes, so the loaded and the compacted forms are not resident
    together (a held list kept ~6 KiB an interaction more at startup, whose pages stayed with
    the process: tests/test_cassette_compact.py)."""
    replay = ReplaySource(
        cassettes
        if cassettes is not None
        else _replayed(path)
        if replay_only
        else load_all(path)
        if path.exists()
        else [],
        label=str(path),
        match_on=match_on,
        registry=registry,
        scrubber=scrubber,
        speed=config.replay_speed,
        allow_repeats=config.allow_repeats,
    )
    replay.compact()
    return replay


def has_cassettes(path: Path) -> bool:
    """True if `path` is a non-empty cassette file, or a folder holding at least one."""
    return any(file.is_file() and _holds_text(file) for file in cassette_files(path))


# What `_holds_text` reads at a time: a cassette's first bytes say it is not empty.
_CHUNK = 64 * 1024


def _holds_text(file: Path) -> bool:
    """Whether `file` holds anything but whitespace, read up to the first byte that is not
    (every server start asks: a 10,000-interaction cassette is 7.7 MB, read whole for this)."""
    with file.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            if chunk.strip():
                return True
    return False


def _upstream(
    config: Config,
    path: Path,
    mode: RecordMode,
    cassettes: list[Cassette],
    scrubber: Scrubber,
    match_on: tuple[str, ...],
    registry: MatcherRegistry,
) -> UpstreamSource:
    if config.upstream is None:
        raise ConfigError(
            f"record mode {mode} records from an upstream: give --upstream URL, the "
            "OpenAI-compatible base URL to record from (e.g. https://api.openai.com/v1)"
        )
    if path.is_dir():
        raise ConfigError(
            f"cassette {path} is a folder: recording needs a file, e.g. {path / 'recorded.yaml'}"
        )
    recorder = CassetteRecorder(
        path,
        mode,
        cassettes[0] if cassettes else None,
        scrubber,
        supersedes=_supersedes(match_on, registry, scrubber),
    )
    return UpstreamSource(
        config.upstream, recorder=recorder, scrubber=scrubber, record_errors=config.record_errors
    )


def _supersedes(
    match_on: tuple[str, ...], registry: MatcherRegistry, scrubber: Scrubber
) -> Supersedes:
    def view(interaction: Interaction) -> RequestView:
        return RequestView.recorded(
            interaction.method, interaction.uri, interaction.request_body, scrubber
        )

    def supersedes(new: Interaction, old: Interaction) -> bool:
        return not failures(view(old), view(new), match_on, registry)

    return supersedes
