"""Is a request's JSON Schema a schema? (tool `parameters`, `response_format` / `text.format`).

The API refuses a request whose schema is not valid JSON Schema with a 400 naming the parameter;
mockai must too, before anything walks the schema (the generator, the validators of scripted
answers). Checking against the metaschema costs 0.3-1 ms, so verdicts are cached by the schema's
JSON text: agents resend the same tools and formats on every call.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft7Validator, Draft202012Validator, exceptions

from mockai.wire import jsonbytes

_CACHE_SIZE = 512
_verdicts: OrderedDict[str, str | None] = OrderedDict()
_lock = threading.Lock()
_MAX_MESSAGE = 300


def problem(schema: Mapping[str, Any]) -> str | None:
    """Why `schema` is not a JSON Schema (`In context=('properties', 'a'), 5 is not valid ...`),
    or None when it is one."""
    key = jsonbytes.dumps_str(schema)  # insertion order: repeats of one request's schema match
    with _lock:
        if key in _verdicts:
            _verdicts.move_to_end(key)
            return _verdicts[key]
    verdict = _check(schema)
    with _lock:
        _verdicts[key] = verdict
        if len(_verdicts) > _CACHE_SIZE:
            _verdicts.popitem(last=False)
    return verdict


@functools.cache
def _metaschemas() -> tuple[Any, ...]:
    """The metaschemas' validators, built on first use (not at import).

    A schema passes when it is valid 2020-12 *or* draft-07: schemas written for the older draft
    (tuple `items: [...]`, `definitions`) work with the API and with mockai's generator alike.
    Without format checks: a `pattern` in ECMA syntax Python cannot compile is the generator's
    to skip, not a reason to refuse a schema the API takes.
    """
    return tuple(kind(kind.META_SCHEMA) for kind in (Draft202012Validator, Draft7Validator))


def _check(schema: Mapping[str, Any]) -> str | None:
    metaschemas = _metaschemas()
    try:
        if any(meta.is_valid(schema) for meta in metaschemas):
            return None
        error = exceptions.best_match(metaschemas[0].iter_errors(schema))
    except RecursionError:  # unreachable within jsonbytes.MAX_DEPTH; kept as a last resort
        return "the schema is nested too deeply"
    if error is None:  # (cannot happen: it was not valid)
        return "the schema is not valid JSON Schema"
    context = ", ".join(repr(part) for part in error.absolute_path)
    if len(error.absolute_path) == 1:
        context += ","
    message = f"In context=({context}), {error.message}"
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."
