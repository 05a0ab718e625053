"""Is a request's JSON Schema a schema? (tool `parameters`, `response_format` / `text.format`).

The API refuses a request whose schema is not valid JSON Schema with a 400 naming the parameter;
mockai must too, before anything walks the schema (the generator, the validators of scripted
answers). Checking against the metaschema costs 0.3-1 ms for a typical schema, so verdicts are
cached by the schema's JSON text: agents resend the same tools and formats on every call. It
grows with the schema (~40 ms per thousand properties): a schema whose text is `OFF_LOOP_CHARS`
or longer is checked in the worker thread before its request is parsed (`common.settle_schemas`),
so that one request does not stall the others while it is checked.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from mockai.wire import jsonbytes

_CACHE_SIZE = 512
_verdicts: OrderedDict[str, str | None] = OrderedDict()
_lock = threading.Lock()
_MAX_MESSAGE = 300
# A schema whose JSON text is this long takes ~5 ms or more to check (~250 properties): worth
# the worker thread. Shorter ones, nearly all, are checked on the loop, where a hop would cost
# more than the check.
OFF_LOOP_CHARS = 8 * 1024
_UNKNOWN: Any = object()  # "no verdict kept", where None is a verdict


def problem(schema: Mapping[str, Any]) -> str | None:
    """Why `schema` is not a JSON Schema (`In context=('properties', 'a'), 5 is not valid ...`),
    or None when it is one."""
    key = jsonbytes.dumps_str(schema)  # insertion order: repeats of one request's schema match
    verdict = _kept(key)
    if verdict is _UNKNOWN:
        verdict = _check(schema)
        with _lock:
            _verdicts[key] = verdict
            if len(_verdicts) > _CACHE_SIZE:
                _verdicts.popitem(last=False)
    return verdict  # type: ignore[no-any-return]


def costly(schema: Mapping[str, Any]) -> bool:
    """Whether `problem(schema)` would check a long schema rather than answer from the cache."""
    key = jsonbytes.dumps_str(schema)
    return len(key) >= OFF_LOOP_CHARS and _kept(key) is _UNKNOWN


def _kept(key: str) -> Any:
    """The verdict kept for the schema of JSON text `key`, or `_UNKNOWN`."""
    with _lock:
        verdict = _verdicts.get(key, _UNKNOWN)
        if verdict is not _UNKNOWN:
            _verdicts.move_to_end(key)
        return verdict


@functools.cache
def _metaschemas() -> tuple[Any, ...]:
    """The metaschemas' validators, built on first use (not at import).

    A schema passes when it is valid 2020-12 *or* draft-07: schemas written for the older draft
    (tuple `items: [...]`, `definitions`) work with the API and with mockai's generator alike.
    Without format checks: a `pattern` in ECMA syntax Python cannot compile is the generator's
    to skip, not a reason to refuse a schema the API takes.
    """
    from jsonschema import Draft7Validator, Draft202012Validator  # (here: slow to import)

    return tuple(kind(kind.META_SCHEMA) for kind in (Draft202012Validator, Draft7Validator))


def _check(schema: Mapping[str, Any]) -> str | None:
    from jsonschema.exceptions import best_match

    draft2020, draft7 = _metaschemas()
    try:
        # Draft-07 first: its metaschema is ~5x quicker to check against (2020-12's dynamic
        # references are slow in jsonschema), and nearly every schema is valid under both. Only
        # a schema it refuses walks 2020-12's, once, for the verdict and the message together.
        if draft7.is_valid(schema):
            return None
        error = best_match(draft2020.iter_errors(schema))
    except RecursionError:  # unreachable within jsonbytes.MAX_DEPTH; kept as a last resort
        return "the schema is nested too deeply"
    if error is None:  # valid 2020-12 only
        return None
    context = ", ".join(repr(part) for part in error.absolute_path)
    if len(error.absolute_path) == 1:
        context += ","
    message = f"In context=({context}), {error.message}"
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."
