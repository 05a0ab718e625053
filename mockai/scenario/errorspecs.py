"""Scripted errors: `error: rate_limit`, or `{status, type, code, message, param, headers, ...}`.

A free-form error starts from the named error with its status when there is one (`{status: 503}`
is `overloaded` with its message, type, code and `retry-after`), or from `name:`; the keys given
override. `retry_after` sets both `retry-after` (seconds) and `retry-after-ms`, which the SDKs
honour before their own backoff. Validation here points at lines; building is
`mockai.wire.errors.from_spec`, shared with `x-mockai-fault` and chaos.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mockai.delivery.timing import parse_duration, unit_warnings
from mockai.errors import ApiError
from mockai.scenario.problems import Problems, describe, suggest
from mockai.scenario.yamlsrc import line_of
from mockai.wire import errors as wire_errors

ERROR_KEYS = (
    "name",
    "status",
    "type",
    "code",
    "message",
    "param",
    "headers",
    "retry_after",
    "should_retry",
)


@dataclass(frozen=True)
class ErrorSpec:
    """A compiled `error:`: a name or a validated free-form mapping, built per request by
    `mockai.wire.errors.from_spec` (the one place that knows what each error looks like)."""

    spec: str | Mapping[str, Any]
    status: int

    def build(self, model: str | None = None) -> ApiError:
        """A fresh ApiError for one request (`model` appears in messages that name one)."""
        return wire_errors.from_spec(self.spec, model=model)


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
        if "name" not in value:  # (a name that is none was said above: not a missing one too)
            problems.add(
                line, f"{where} error needs a status (400-599) or a name such as rate_limit"
            )
        return None
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        problems.add(
            line_of(value, "status"),
            f"{where} error.status must be an HTTP error status (400-599), got {describe(status)}",
        )
        return None
    _check_fields(value, where, problems)
    _check_headers(value, where, problems)
    if len(problems.items) > before:
        return None
    spec = dict(value)
    try:  # anything the located checks above did not catch
        wire_errors.from_spec(spec)
    except ValueError as error:
        problems.add(line, f"{where} error: {error}")
        return None
    return ErrorSpec(spec, status)


def _named(name: Any, line: int, where: str, problems: Problems) -> ErrorSpec | None:
    # (a string first: `name: [rate_limit]` cannot be looked up in a mapping, being unhashable)
    if not isinstance(name, str) or name not in wire_errors.NAMED:
        problems.add(
            line,
            f"{where}: {describe(name)} is not a named error"
            + suggest(name, wire_errors.NAMED, noun="named errors"),
        )
        return None
    return ErrorSpec(name, wire_errors.named(name).status)


def _check_fields(value: Mapping[str, Any], where: str, problems: Problems) -> None:
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
    should_retry = value.get("should_retry")
    if should_retry is not None and not isinstance(should_retry, bool):
        problems.add(
            line_of(value, "should_retry"),
            f"{where} error.should_retry must be true or false, got {describe(should_retry)}",
        )


def _check_headers(value: Mapping[str, Any], where: str, problems: Problems) -> None:
    raw = value.get("headers") or {}
    if not isinstance(raw, Mapping):
        problems.add(line_of(value, "headers"), f"{where} error.headers must be a mapping")
        raw = {}
    for name, setting in raw.items():
        problem = wire_errors.scripted_header_problem(name, setting)
        if problem is not None:
            problems.add(line_of(raw, name), f"{where} error.headers: {problem}")
        elif isinstance(setting, bool) or not isinstance(setting, (str, int, float)):
            problems.add(
                line_of(raw, name), f"{where} error.headers.{name} must be a string or a number"
            )
    if "retry_after" in value:
        spot = line_of(value, "retry_after")
        try:
            parse_duration(value["retry_after"])
        except ValueError as error:
            problems.add(spot, f"{where} error.retry_after: {error}")
            return
        for message in unit_warnings(value["retry_after"], "retry_after"):
            problems.warn(spot, f"{where} error.{message}")
