"""`mockai check PATH...`: validate scenario files and cassettes without serving."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from mockai.errors import Problem


def check_paths(paths: Iterable[str]) -> list[Problem]:
    """Every problem found in the given files and folders (empty when all are valid)."""
    return check_all(paths)[0]


def check_all(paths: Iterable[str]) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) of the given files and folders; warnings never make a file invalid."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    checked: set[str] = set()  # (real paths: a file named twice, or in a folder named too)
    scenarios: list[list[str]] = []  # each path's scenario files
    for path in paths:
        named = {os.path.realpath(file) for file in _named(path)}
        if named and named <= checked:  # (checked already: its problems are said once)
            continue
        checked |= named
        found, warned, loaded = _check_one(path)
        problems.extend(found)
        warnings.extend(warned)
        if loaded:
            scenarios.append(loaded)
    if len(scenarios) > 1 and not problems:
        warnings.extend(_served_together(scenarios))
    return problems, warnings


def _served_together(scenarios: list[list[str]]) -> list[Problem]:
    """What `mockai serve` would refuse in the paths' scenario files loaded as one set (a name
    two of them use, a rule another's rule shadows, settings that disagree) though each path is
    valid alone: warnings, since the paths may be meant for different servers."""
    from mockai.scenario import loader

    _, together = loader.collect([file for files in scenarios for file in files])
    return [
        dataclasses.replace(
            problem,
            message=f"warning: {problem.message} (only if these paths are served together: "
            "one `mockai serve` with a `--scenario` for each refuses them)",
        )
        for problem in together
    ]


def _check_one(path: str) -> tuple[list[Problem], list[Problem], list[str]]:
    """(problems, warnings, the scenario files loaded) of one path."""
    # Scenario files and cassettes are told apart by their top-level keys (`mockai:` versus
    # `interactions:`); each package validates its own kind. A folder's scenario files are
    # checked together, as `mockai serve --scenario FOLDER` would load them.
    from mockai.scenario import loader

    special = None if os.path.isdir(path) else loader.special_file(path)
    if special is not None:  # (read, a FIFO would wait for a writer forever)
        return [_unlocated(path, f"not a regular file ({special})")], [], []
    files = _files(path) if os.path.isdir(path) else [path]
    if os.path.isdir(path) and not files:
        empty = "no scenario files or cassettes (*.yaml, *.yml, *.json) found"
        return [_unlocated(path, empty)], [], []
    if os.path.isdir(path):
        # `--cassette FOLDER` reads a suffix in any case (`Chat.YAML`: see
        # `cassette.format.cassette_files`), `--scenario FOLDER` a lower-case one: a scenario
        # file (or a JSON file that is no cassette) named so is neither's, and left alone.
        files = [f for f in files if _suffix(f) == Path(f).suffix or not _other_kind(f)]
    texts = {file: _read(file) for file in files}
    # An empty file is either kind's: said once, as `mockai serve --cassette` says it (a
    # scenario file that empty is refused too), rather than as a scenario file's problem only.
    # (In a folder, JSON files that are no cassette are left alone: an empty one too.)
    blank = [
        f
        for f in files
        if texts[f] is not None
        and not (texts[f] or "").strip()
        and not (_suffix(f) == ".json" and os.path.isdir(path))
    ]
    cassettes = [f for f in files if f not in blank and _is_cassette(f, texts[f] or "")]
    scenarios = [f for f in files if f not in cassettes + blank and _suffix(f) != ".json"]
    problems = [_empty(file) for file in blank] + _check_cassettes(cassettes, texts)
    if not os.path.isdir(path) and _suffix(path) == ".json" and path not in cassettes + blank:
        # Named on its own, a JSON file that is no cassette is checked by nothing: say so
        # rather than call it OK. (In a folder, other JSON files are left alone.)
        problems.append(_unlocated(path, _not_a_cassette(path, texts[path])))
    warnings: list[Problem] = []
    if scenarios:
        scenario_set, found = loader.collect(scenarios)
        problems.extend(found)
        warnings.extend(scenario_set.warnings)
    return problems, warnings, scenarios


def _named(path: str) -> list[str]:
    """The files `path` names: itself, or a folder's files."""
    return _files(path) if os.path.isdir(path) else [path]


def _suffix(file: str) -> str:
    return Path(file).suffix.lower()


def _files(folder: str) -> list[str]:
    """A folder's YAML (and JSON cassette) files, in name order, sub-folders included (but for
    dot-files and dot-folders, which `serve` skips too)."""
    root = Path(folder)
    found = [
        p
        for p in root.rglob("*")
        if p.suffix.lower() in (".yaml", ".yml", ".json")
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return [os.path.join(folder, p.relative_to(root).as_posix()) for p in sorted(found)]


def _read(file: str) -> str | None:
    try:
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # the scenario loader reports unreadable files with the right message


def _is_cassette(file: str, text: str) -> bool:
    """A vcrpy cassette: a top-level `interactions:` key (and no `mockai:` scenario version)."""
    from mockai.cassette.check import is_cassette

    return is_cassette(file, text)


def _other_kind(file: str) -> bool:
    from mockai.cassette.check import other_kind

    return other_kind(file, _read(file) or "")


def _check_cassettes(files: Sequence[str], texts: dict[str, str | None]) -> list[Problem]:
    if not files:
        return []
    from mockai.cassette.check import check_cassette

    return [problem for file in files for problem in check_cassette(Path(file), texts[file] or "")]


def _empty(file: str) -> Problem:
    from mockai.cassette.format import empty_cassette

    where, _, message = empty_cassette(Path(file)).partition(":1: ")
    return Problem(where, 1, f"{message}; nor is it a scenario file ('mockai: 1' and 'rules:')")


def _not_a_cassette(path: str, text: str | None) -> str:
    if not os.path.exists(path):
        return "no such file or directory"
    if text is None:
        return "cannot read the file (unreadable, or not UTF-8)"
    return (
        "not a cassette: a cassette has a top-level 'interactions' list "
        "(scenario files are YAML: *.yaml, *.yml)"
    )


def _unlocated(path: str, message: str) -> Problem:
    from mockai.scenario.problems import UnlocatedProblem

    return UnlocatedProblem(path, 0, message)
