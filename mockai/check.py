"""`mockai check PATH...`: validate scenario files and cassettes without serving."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

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
    if os.path.isdir(path):
        return [problem for file in _files(path) for problem in _check_one(file)]
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return [Problem(path, 0, "no such file or folder")]
    except (OSError, UnicodeDecodeError) as error:
        return [Problem(path, 0, f"cannot read it: {error}")]
    from mockai.cassette.check import check_cassette, looks_like_cassette

    if looks_like_cassette(text):
        return check_cassette(Path(path), text)
    return []


def _files(folder: str) -> list[str]:
    suffixes = (".yaml", ".yml", ".json")
    return sorted(
        str(file)
        for file in Path(folder).rglob("*")
        if file.is_file() and file.suffix.lower() in suffixes and not file.name.startswith(".")
    )
