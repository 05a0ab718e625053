"""Collecting validation problems: every one found, each as `file:line: what is wrong (the fix)`.

Validation never stops at the first problem: a `Problems` collector is passed down, each check adds
what it finds, and the loader raises one `ScenarioError` with all of them at the end.
"""

from __future__ import annotations

from typing import Any

from mockai.errors import Problem, ScenarioError
from mockai.hints import suggest

__all__ = ["Problems", "UnlocatedProblem", "describe", "suggest"]


class UnlocatedProblem(Problem):
    """A problem in a rule given as data (no file, no line): rendered as `<runtime>: message`
    (`MockServer.add_rule`, the fixture) or `<admin>: message` (`POST /_mockai/rules`)."""

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


class Problems:
    """The problems found in one file (or one batch of runtime rules)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[Problem] = []
        # What loads but probably does not say what its author meant (`latency: 200`): shown by
        # `mockai check` and logged at load, never a reason to refuse the file.
        self.warnings: list[Problem] = []

    def add(self, line: int, message: str) -> None:
        """Record a problem at `line` (0: no line is known)."""
        self.items.append(self._at(line, message))

    def warn(self, line: int, message: str) -> None:
        """Record a warning at `line`: rendered `file:line: warning: message`."""
        self.warnings.append(self._at(line, f"warning: {message}"))

    def _at(self, line: int, message: str) -> Problem:
        if line > 0:
            return Problem(self.file, line, message)
        return UnlocatedProblem(self.file, 0, message)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        """Raise ScenarioError with every problem recorded so far."""
        if self.items:
            raise ScenarioError(self.items)


def describe(value: Any) -> str:
    """A short, YAML-flavoured rendering of a value for messages (`'hi'`, `[1, 2]`, `{a: 1}`)."""
    text = _flow(value)
    if len(text) <= 60:
        return text
    return "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else text


def _flow(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return str(value)
