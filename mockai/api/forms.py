"""Multipart requests, as the codecs that take files see them.

A form carries every value as text (`n=2`, `stream=true`); the spec types them. `typed` turns a
form's fields into the JSON-like body the same request would have as JSON, using the endpoint's
field table, so that the codec, the rules (`body: {n: 2}`) and the fingerprint see one body
whatever the encoding. Text that does not read as the field's type is left as text, and the field
check then answers the API's `invalid_type` error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from mockai.api.fieldrules import missing
from mockai.api.spec_fields import FIELDS
from mockai.errors import ApiError
from mockai.wire.multipart import Upload

_INTEGER = re.compile(r"[+-]?\d{1,18}")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def typed(endpoint: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The form's fields with the values the spec types as numbers, booleans or null converted
    (nested objects' numeric texts too: `expires_after[seconds]=3600`)."""
    rules = FIELDS[endpoint]
    out: dict[str, Any] = {}
    for name, value in values.items():
        rule = rules.get(name)
        out[name] = _convert(value, rule.types if rule is not None else frozenset())
    return out


def _convert(value: Any, types: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {key: _nested(item) for key, item in value.items()}
    if not isinstance(value, str):
        return value
    if "integer" in types and "number" not in types and _INTEGER.fullmatch(value):
        return int(value)
    if "number" in types and _NUMBER.fullmatch(value):
        number = float(value)
        if not math.isfinite(number):
            # `1e400` overflows a double: left as text (the field check's invalid_type), as the
            # same number in a JSON body is refused, since no JSON can write it back (the
            # journal, and cassettes, could not).
            return value
        return int(number) if number.is_integer() and "." not in value else number
    if "boolean" in types and value in ("true", "false"):
        return value == "true"
    if "null" in types and value == "" and "string" not in types:
        return None
    return value


def _nested(value: Any) -> Any:
    # Objects inside a form (`expires_after`) have no table here: digits read as integers.
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    if isinstance(value, dict):
        return {key: _nested(item) for key, item in value.items()}
    return value


def upload(value: Any, param: str) -> Upload:
    """A required file field: the Upload, or the API's 400 when it is absent or not a file."""
    if value is None:
        raise missing(param)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, Upload):
        got = "several files" if isinstance(value, list) else "text without a file name"
        raise ApiError(
            400,
            f"Invalid type for '{param}': expected a file (a multipart part with a filename), "
            f"but got {got} instead.",
            param=param,
            code="invalid_type",
        )
    return value


def not_a_form(content_type: str | None) -> ApiError:
    """What the API answers to a JSON (or other) body on a route that only takes forms."""
    shown = (content_type or "none").split(";", 1)[0].strip() or "none"
    return ApiError(
        400,
        f"Invalid Content-Type header ({shown}), expected multipart/form-data. (HINT: If you're "
        "using curl, you can pass -F 'file=@<path>' to upload a file.)",
        param=None,
        code=None,
    )
