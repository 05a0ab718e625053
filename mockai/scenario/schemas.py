"""Validating scripted values against the request's own schemas, with compiled validators cached.

Requests carry their schemas (tool `parameters`, `response_format` json_schema) on every call, so a
validator is looked up by the schema's canonical JSON text: an agent loop sending the same tools
fifty times compiles one validator.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from mockai import regexes
from mockai.wire import jsonbytes

_MAX = 256
_cache: OrderedDict[bytes, Any] = OrderedDict()
_lock = threading.Lock()


def _validator(schema: Mapping[str, Any]) -> Any:
    key = jsonbytes.canonical(schema)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    from jsonschema import validators  # (on first use: slow to import)

    kind = validators.validator_for(schema, default=validators.Draft202012Validator)
    # The request's patterns are the client's: searched within a time bound (regexes).
    compiled = regexes.validator_class(kind)(schema)
    with _lock:
        _cache[key] = compiled
        if len(_cache) > _MAX:
            _cache.popitem(last=False)
    return compiled


def violation(schema: Mapping[str, Any], value: Any) -> str | None:
    """Why `value` breaks `schema` (`at $.unit: 'kelvin' is not one of [...]`), or None."""
    from jsonschema import exceptions

    try:
        validator = _validator(schema)
        with regexes.budget():
            error = exceptions.best_match(validator.iter_errors(value))
    except exceptions.SchemaError as problem:  # the request's own schema is broken
        return f"the request's schema is invalid ({problem.message})"
    except Exception:  # an unresolvable remote $ref and the like: nothing to check against
        return None
    if error is None:
        return None
    where = "$" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
    )
    return f"at {where}: {error.message}"
