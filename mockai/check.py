"""`mockai check PATH...`: validate scenario files and cassettes without serving."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from mockai.errors import Problem


def check_paths(paths: Iterable[str]) -> list[Problem]:
    """Every problem found in the given files and folders (empty when all are valid)."""
    problems: list[Problem] = []
    for path in paths:
        problems.extend(_check_one(path))
    return problems


def _check_one(path: str) -> list[Problem]:
    # Scenario files and cassettes are told apart by their top-level keys (`mockai:` versus
    # `interactions:`); each package validates its own kind. A folder's scenario files are
    # checked together, as `mockai serve --scenario FOLDER` would load them.
    from mockai.scenario import loader

    files = loader.expand(path)
    if os.path.isdir(path) and not files:
        return [_unlocated(path, "no scenario files or cassettes (*.yaml, *.yml) found")]
    cassettes = [file for file in files if _kind(file) == "cassette"]
    scenarios = [file for file in files if file not in cassettes]
    problems = _check_cassettes(cassettes)
    if scenarios:
        problems.extend(loader.collect(scenarios)[1])
    return problems


def _kind(file: str) -> str:
    """`cassette` for a YAML mapping with `interactions:` and no `mockai:`, else `scenario`."""
    from mockai.scenario import loader
    from mockai.scenario.problems import Problems

    document = loader.read_file(file, Problems(file))
    is_cassette = isinstance(document, dict) and "interactions" in document
    return "cassette" if is_cassette and "mockai" not in document else "scenario"


def _check_cassettes(files: Sequence[str]) -> list[Problem]:
    # Filled in by the cassette package: validate each cassette, return its problems.
    return []


def _unlocated(path: str, message: str) -> Problem:
    from mockai.scenario.problems import UnlocatedProblem

    return UnlocatedProblem(path, 0, message)
