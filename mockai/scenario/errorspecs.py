"""Scripted errors: `error: rate_limit`, or `{status, type, code, message, param, headers, ...}`.

A free-form error starts from the named error with its status when there is one (`{status: 503}`
is `overloaded` with its message, type, code and `retry-after`), or from `name:`; the keys given
override. `retry_after` sets both `retry-after` (seconds) and `retry-after-ms`, which the SDKs
honour before their own backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mockai.errors import ApiError
from mockai.scenario.problems import Problems, describe, suggest
from mockai.scenario.yamlsrc import line_of
from mockai.timing import parse_duration
from mockai.wire import errors as wire_errors

if TYPE_CHECKING:
    pass

ERROR_KEYS = ("name", "status", "type", "code", "message", "param", "headers", "retry_after")
# A free-form `error: {status: N}` starts from the named error with that status, when there is one.
_BY_STATUS = {
    400: "bad_request",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "model_not_found",
    429: "rate_limit",
    500: "server_error",
    502: "bad_gateway",
    503: "overloaded",
    504: "timeout",
}


@dataclass(frozen=True)
class ErrorSpec:
    """A compiled `error:`: a named error, optionally with fields and headers overridden."""

    base: str | None  # a NAMED error, or None for a status without one
    status: int
    overrides: Mapping[str, Any]
    headers: Mapping[str, str]

    def build(self) -> ApiError:
        """A fresh ApiError for one request."""
        if self.base is not None:
            error = wire_errors.named(self.base)
        else:
            kind = "server_error" if self.status >= 500 else "invalid_request_error"
            error = ApiError(self.status, f"mockai scripted error {self.status}", type=kind)
        error.status = self.status
        for name, value in self.overrides.items():
            setattr(error, name, value)
        error.args = (error.message,)
        error.headers = {**error.headers, **self.headers}
        return error


def compile_error(value: Any, line: int, where: str, problems: Problems) -> ErrorSpec | None:
    """The ErrorSpec for an `error:` value (a name or a mapping)."""
    if isinstance(value, str):
        return _named(value, line, where, problems)
    if not isinstance(value, Mapping):
        problems.add(
            line,
            f"{where}: error must be a named error (rate_limit, server_error, ...) or a mapping "
            f"such as {{status: 503}}, got {describe(value)}",
        )
        return None
    before = len(problems.items)
    for key in value:
        if key not in ERROR_KEYS:
            problems.add(
                line_of(value, key),
                f"unknown key '{key}' in {where} error" + suggest(key, ERROR_KEYS),
            )
    base = (
        _named(value["name"], line_of(value, "name"), where, problems) if "name" in value else None
    )
    status = value.get("status", base.status if base is not None else None)
    if status is None:
        problems.add(line, f"{where} error needs a status (400-599) or a name such as rate_limit")
        return None
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        problems.add(
            line_of(value, "status"),
            f"{where} error.status must be an HTTP error status (400-599), got {describe(status)}",
        )
        return None
    overrides = _error_fields(value, where, problems)
    headers = _error_headers(value, where, problems)
    if len(problems.items) > before:
        return None
    name = base.base if base is not None else _BY_STATUS.get(status)
    if base is not None:
        overrides = {**base.overrides, **overrides}
    return ErrorSpec(name, status, overrides, headers)


def _named(name: Any, line: int, where: str, problems: Problems) -> ErrorSpec | None:
    if name not in wire_errors.NAMED:
        problems.add(
            line,
            f"{where}: {describe(name)} is not a named error"
            + suggest(name, wire_errors.NAMED, noun="named errors"),
        )
        return None
    return ErrorSpec(name, wire_errors.named(name).status, {}, {})


def _error_fields(value: Mapping[str, Any], where: str, problems: Problems) -> dict[str, Any]:
    out = {}
    for key in ("type", "code", "message", "param"):
        if key not in value:
            continue
        text = value[key]
        nullable = key in ("code", "param")
        if not isinstance(text, str) and not (nullable and text is None):
            problems.add(
                line_of(value, key),
                f"{where} error.{key} must be a string{' or null' if nullable else ''}, "
                f"got {describe(text)}",
            )
        out[key] = text
    return out


def _error_headers(value: Mapping[str, Any], where: str, problems: Problems) -> dict[str, str]:
    headers: dict[str, str] = {}
    raw = value.get("headers") or {}
    if not isinstance(raw, Mapping):
        problems.add(line_of(value, "headers"), f"{where} error.headers must be a mapping")
        raw = {}
    for name, setting in raw.items():
        if isinstance(setting, bool) or not isinstance(setting, (str, int, float)):
            problems.add(
                line_of(raw, name), f"{where} error.headers.{name} must be a string or a number"
            )
            continue
        headers[str(name).lower()] = str(setting)
    if "retry_after" in value:
        try:
            seconds = parse_duration(value["retry_after"])
        except ValueError as error:
            problems.add(line_of(value, "retry_after"), f"{where} error.retry_after: {error}")
        else:
            headers["retry-after"] = f"{seconds:g}" if seconds < 1e15 else str(int(seconds))
            headers["retry-after-ms"] = str(round(seconds * 1000))
    return headers
