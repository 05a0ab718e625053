"""Exceptions raised by mockai.

    MockaiError                  base of everything mockai raises on purpose
    ├── ConfigError              an option, env var or marker value that makes no sense
    │                            (also a ValueError)
    ├── ScenarioError            scenario files with problems (all of them, as `file:line: ...`)
    ├── CassetteError            a cassette that cannot be read, matched or written
    │   └── SecretLeakError      a cassette about to be written still holds a secret
    ├── ServerError              server lifecycle misuse ("already running", failed start)
    └── ApiError                 an answer for the HTTP client: an OpenAI-shaped error body

`ApiError` is what the pipeline turns into `{"error": {message, type, param, code}}`; every other
class is for the Python user (CLI, pytest plugin, `MockServer`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class MockaiError(Exception):
    """Base class of every error mockai raises on purpose."""


class RelayBrokeOff(ConnectionResetError):
    """Raised by a Relay's `chunks` when the answer it passes on broke off at its source (an
    upstream failing mid-answer) and the source has said so in its own log line: the client's
    connection is dropped too, with no second report. Any other error from `chunks` is
    unexpected and keeps its traceback. (Here, not in delivery/deliver.py: a compiled module
    cannot define a subclass of a built-in exception.)"""


class ConfigError(MockaiError, ValueError):
    """A configuration value (CLI option, env var, fixture or marker argument) is invalid.

    Also a ValueError: what Python code passing a bad argument (`MockServer(port=99999)`) expects.
    """


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a file, reported as `file:line: message`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ScenarioError(MockaiError):
    """One or more scenario files are invalid; `problems` lists every one found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class CassetteError(MockaiError):
    """A cassette cannot be read, matched or written."""


class SecretLeakError(CassetteError):
    """A cassette about to be written still contains something that looks like a secret."""


class ServerError(MockaiError):
    """The server was used wrongly (started twice, stopped before start) or failed to start."""


class ApiError(MockaiError):
    """An error answered to the HTTP client as the OpenAI API would: status + four-key body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers: Mapping[str, str] = headers or {}
        # Which named error this is (`rate_limit`, ...), while nothing overrode it: a provider
        # profile renders a named error its own way (OpenRouter's `insufficient_quota` is a 402).
        self.name: str | None = None
        # What a provider's error envelope carries beyond the four keys (OpenRouter's
        # `metadata`, Mistral's `detail` list, Gemini's `details`); OpenAI's ignores it.
        self.data: Mapping[str, Any] = data or {}

    def body(self) -> dict[str, dict[str, str | None]]:
        """The JSON body the OpenAI API sends for this error (all four keys, always)."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.message!r}, type={self.type!r}, code={self.code!r})"
