"""Is a request's JSON Schema a schema? (tool `parameters`, `response_format` / `text.format`).

The API refuses a request whose schema is not valid JSON Schema with a 400 naming the parameter;
mockai must too, before anything walks the schema (the generator, the validators of scripted
answers). Checking against the metaschema costs 0.3-1 ms for a typical schema, so verdicts are
cached by the schema's JSON text: agents resend the same tools and formats on every call. It
grows with the schema (~40 ms per thousand properties): a schema whose text is `OFF_LOOP_CHARS`
or longer is checked in the worker thread before its request is parsed (`common.settle_schemas`),
so that one request does not stall the others while it is checked.

The verdict kept also says what the API refuses in a valid JSON Schema (a walk over it): as a
function's parameters, an array without `items` (`function_problem`); with `strict: true`, that
and an object that leaves `additionalProperties` open or does not require all of its properties
(`strict_problem`).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from mockai.wire import jsonbytes

_CACHE_SIZE = 512
# A schema's verdicts, None for fine: why it is not a JSON Schema, why the API refuses it as a
# function's parameters, why strict mode refuses it.
_verdicts: OrderedDict[str, tuple[str | None, str | None, str | None]] = OrderedDict()
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
    return _verdict(schema)[0]


def function_problem(schema: Mapping[str, Any]) -> str | None:
    """Why the API refuses `schema`, a JSON Schema (`problem` is None), as a function's parameters
    without `strict: true`, or None when it takes it: an array without `items`, in its words, at
    the first one (depth first, in the order written): `In context=('properties', 'paths'), array
    schema missing items`."""
    return _verdict(schema)[1]


def strict_problem(schema: Mapping[str, Any]) -> str | None:
    """Why strict mode (`strict: true`) refuses `schema`, a JSON Schema (`problem` is None), or
    None when it takes it: in the API's words, at the first node (depth first, in the order
    written) that is an array without `items` or an object that does not set
    `additionalProperties: false` (`In context=('properties', 'a'), 'additionalProperties' is
    required to be supplied and to be false`) or whose `required` does not list exactly its
    properties. (The root's type is the caller's: a function's parameters are an object in every
    mode.)"""
    return _verdict(schema)[2]


def _verdict(schema: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    key = jsonbytes.dumps_str(schema)  # insertion order: repeats of one request's schema match
    verdict = _kept(key)
    if verdict is _UNKNOWN:
        found = _check(schema)
        if found is not None:
            verdict = (found, None, None)
        else:
            verdict = (None, _rules_check(schema, strict=False), _rules_check(schema, strict=True))
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
    message = f"In context=({_context(error.absolute_path)}), {error.message}"
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def _context(path: Any) -> str:
    """A schema path as the API writes it: a tuple's repr (`'properties', 'a'`; `'items',`)."""
    parts = list(path)
    return ", ".join(repr(part) for part in parts) + ("," if len(parts) == 1 else "")


# Where a schema holds schemas: keyed by name, in a list, or one.
_NAMED = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")
_LISTED = ("prefixItems", "items", "anyOf", "oneOf", "allOf")
_SINGLE = (
    "items",
    "additionalItems",
    "contains",
    "propertyNames",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "not",
    "if",
    "then",
    "else",
)


def _rules_check(schema: Mapping[str, Any], *, strict: bool) -> str | None:
    """`function_problem` or `strict_problem`, found: the schema's nodes walked depth first, in
    the order written (the API names a nested node's problem when its parent has none:
    `In context=('properties', 'etymology'), ...`; list indexes are strings there:
    `('anyOf', '0')`)."""
    pending: list[tuple[Any, tuple[str, ...]]] = [(schema, ())]
    while pending:
        node, path = pending.pop()
        if not isinstance(node, Mapping):
            continue  # (true / false)
        found = _itemless_array(node, path) or (_strict_object(node, path) if strict else None)
        if found is not None:
            return found
        inner: list[tuple[Any, tuple[str, ...]]] = []
        for key, value in node.items():
            if key in _NAMED and isinstance(value, Mapping):
                inner += [(sub, (*path, key, str(name))) for name, sub in value.items()]
            elif key in _LISTED and isinstance(value, list):
                inner += [(sub, (*path, key, str(i))) for i, sub in enumerate(value)]
            elif key in _SINGLE and isinstance(value, Mapping):
                inner.append((value, (*path, key)))
        pending += reversed(inner)
    return None


def _itemless_array(node: Mapping[str, Any], path: tuple[str, ...]) -> str | None:
    """An array without `items` (`prefixItems` aside), which the API refuses in a function's
    parameters whether strict or not (quoted from tools without `strict` in sigoden/aichat#1049,
    mark3labs/mcphost#35, gumloop/guMCP#136: `In context=('properties', 'values', 'items'),
    array schema missing items.`). A `type` list is named at the array's place in it
    (`('properties', 'arguments', 'items', 'type', '0')`: tidewave-ai/tidewave_phoenix#224)."""
    kind = node.get("type")
    if "items" in node or "prefixItems" in node:
        return None
    if kind == "array":
        return f"In context=({_context(path)}), array schema missing items"
    if isinstance(kind, list) and "array" in kind:
        where = (*path, "type", str(kind.index("array")))
        return f"In context=({_context(where)}), array schema missing items"
    return None


def _strict_object(node: Mapping[str, Any], path: tuple[str, ...]) -> str | None:
    """What strict mode refuses in one node, if it is an object's: an open object (a map, or
    `additionalProperties` not given) or a property not required (all are; optional ones are
    nullable instead), in the API's words (quoted in lastmile-ai/openai-agents-mcp#2,
    kevinwatt/mysql-mcp#5 and dotnet/extensions#6302)."""
    kind = node.get("type")
    if kind != "object" and not (isinstance(kind, list) and "object" in kind):
        return None
    where = f"In context=({_context(path)}), "
    if node.get("additionalProperties") is not False:
        return f"{where}'additionalProperties' is required to be supplied and to be false"
    properties = node.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    listed = node.get("required")
    listed = listed if isinstance(listed, list) else []
    required = set(listed)  # (a set: a schema may have thousands of properties)
    missing = next((name for name in properties if name not in required), None)
    if missing is not None:
        return (
            f"{where}'required' is required to be supplied and to be an array including every "
            f"key in properties. Missing {missing!r}"
        )
    extra = next((name for name in listed if name not in properties), None)
    if extra is not None:
        return (
            f"{where}'required' must be an array that includes every key in `properties`. Extra "
            f"required key {extra!r} supplied"
        )
    return None
