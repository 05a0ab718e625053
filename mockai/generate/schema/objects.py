"""Objects: which properties to include, and entries beyond the declared ones.

Required properties always, optional ones by chance (less often deeper down, never past
`MAX_DEPTH`; at least one when none is required, unless the object must be empty), extra keys
from `patternProperties` / `propertyNames` / `additionalProperties` up to `minProperties`, or a
few for map-like objects (`dict[str, int]`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mockai.generate.schema.nodes import (
    MAX_DEPTH,
    Flat,
    SchemaGenerationError,
    count_bounds,
    escape,
)
from mockai.generate.schema.patterns import expand, regex, search
from mockai.generate.schema.plausible import text, word

if TYPE_CHECKING:
    from mockai.generate.schema.generator import Generator

_OPTIONAL_CHANCE = 0.7  # optional property included, at the top level; less when nested
_MISSES = 64  # tries in a row without a new property name before minProperties gives up


def object_value(gen: Generator, flat: Flat, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _object_keys(gen, flat):
        if gen.exhausted:  # the answer is cut before the next property (see Generator.size)
            break
        schema, ptr = _property_schema(flat, key)
        out[key] = gen.value(schema, ptr, flat.depth, key)
    _add_entries(gen, flat, out)
    return out


def _object_keys(gen: Generator, flat: Flat) -> list[str]:
    """Required keys, some optional ones, within min/maxProperties, in declaration order."""
    node = flat.node
    props: Mapping[str, Any] = node.get("properties") or {}
    required = list(dict.fromkeys(node.get("required") or ()))
    low, high = count_bounds(node, "minProperties", "maxProperties", flat.ptr)
    if high is not None and len(required) > high:
        raise SchemaGenerationError(
            f"{len(required)} required properties but maxProperties {high}", pointer=flat.ptr
        )
    optional = [key for key in props if key not in required and props[key] is not False]
    chance = 0.0 if flat.minimal else max(0.3, _OPTIONAL_CHANCE - 0.1 * flat.depth)
    chosen = required + [key for key in optional if gen.rng.random() < chance]
    if not chosen and optional and flat.depth <= MAX_DEPTH and (high is None or high > 0):
        # An object that declares properties but requires none still says something: `{}` as
        # tool arguments is an empty `list[User]` for instructor, or a validation error. (Also
        # when lean: one property more keeps a long answer's objects meaningful, and recursion
        # still ends at MAX_DEPTH.)
        chosen = [gen.rng.choice(optional)]
    chosen += [key for key in optional if key not in chosen][: max(0, low - len(chosen))]
    chosen = _with_dependencies(node, chosen)
    while high is not None and len(chosen) > high:
        chosen.remove(next(key for key in reversed(chosen) if key not in required))
    picked = set(chosen)
    return [key for key in props if key in picked] + [k for k in chosen if k not in props]


def _add_entries(gen: Generator, flat: Flat, out: dict[str, Any]) -> None:
    """Keys beyond `properties`: up to minProperties, or a few for map-like objects."""
    node = flat.node
    low, high = count_bounds(node, "minProperties", "maxProperties", flat.ptr)
    wanted = low
    if _is_map(node) and not flat.minimal:
        wanted = max(low, len(out) + gen.rng.randint(1, 3))
        wanted = wanted if high is None else min(wanted, high)
    misses = 0
    for _ in range(4 * max(0, wanted - len(out))):
        if len(out) >= wanted or gen.exhausted or misses > _MISSES:
            break
        key = _extra_key(gen, flat, out)
        misses = 0 if key is not None else misses + 1
        if key is not None:
            schema, ptr = _property_schema(flat, key)
            out[key] = gen.value(schema, ptr, flat.depth, key)
    if len(out) < low and not gen.exhausted:
        raise SchemaGenerationError(
            f"cannot find {low} allowed property names (minProperties)", pointer=flat.ptr
        )


def _extra_key(gen: Generator, flat: Flat, taken: Mapping[str, Any]) -> str | None:
    """A new property name the object allows, or None if this try found none."""
    node = flat.node
    patterns = list(node.get("patternProperties") or {})
    closed = node.get("additionalProperties", True) is False
    names = node.get("propertyNames", True)
    key: Any
    if patterns and (closed or gen.rng.random() < 0.5):
        key = _pattern_key(gen, flat, gen.rng.choice(patterns), taken)
        if key is None:
            return None
    elif closed:
        return None
    elif names is not True:
        key = gen.value(names, f"{flat.ptr}/propertyNames", flat.depth, "key")
    else:
        key = text(gen, "word")
    if not isinstance(key, str) or key in taken or key in (node.get("properties") or {}):
        return None
    return key if names is True or gen.is_valid(names, key, flat.ptr) else None


def _pattern_key(gen: Generator, flat: Flat, pattern: str, taken: Mapping[str, Any]) -> str | None:
    """A name `pattern` matches: what it expands to, or that and a word when the expansion is
    taken or the pattern lets a name go on after it (`^S_` always expands to `S_`, so an object
    that needs two such names would never get a second)."""
    compiled = regex(pattern, flat.ptr)
    key = expand(gen, pattern)
    if key is None or not search(compiled, key, flat.ptr):
        return None
    open_end = not pattern.endswith(("$", "\\Z")) or pattern.endswith("\\$")
    if (
        key in taken
        or key in (flat.node.get("properties") or {})
        or (open_end and not key[-1:].isalnum())
    ):
        longer = key + word(gen.rng)
        if search(compiled, longer, flat.ptr):
            return longer
    return key


def _property_schema(flat: Flat, key: str) -> tuple[Any, str]:
    """The schema(s) a property must satisfy: its own, matching patterns, or additional."""
    node = flat.node
    props = node.get("properties") or {}
    schemas: list[Any] = []
    ptr = f"{flat.ptr}/properties/{escape(key)}"
    if key in props:
        schemas.append(props[key])
    for pattern, schema in (node.get("patternProperties") or {}).items():
        if search(regex(pattern, flat.ptr), key, flat.ptr):
            schemas.append(schema)
            ptr = f"{flat.ptr}/patternProperties/{escape(pattern)}"
    if not schemas:
        extra = node.get("additionalProperties", True)
        if extra is False:
            raise SchemaGenerationError(
                f"property {key!r} is required but additionalProperties is false", pointer=flat.ptr
            )
        schemas.append(extra)
        ptr = f"{flat.ptr}/additionalProperties"
    return (schemas[0] if len(schemas) == 1 else {"allOf": schemas}), ptr


def _with_dependencies(node: Mapping[str, Any], keys: list[str]) -> list[str]:
    """`keys` plus everything `dependentRequired` asks for, transitively."""
    dependencies: Mapping[str, Sequence[str]] = node.get("dependentRequired") or {}
    out = list(keys)
    for key in out:  # grows while iterating: that is the transitive closure
        out += [dep for dep in dependencies.get(key, ()) if dep not in out]
    return out


def _is_map(node: Mapping[str, Any]) -> bool:
    """An object used as a dictionary (`dict[str, int]`): entries are made up, not declared."""
    extra = node.get("additionalProperties")
    return not node.get("properties") and (
        bool(node.get("patternProperties")) or (isinstance(extra, Mapping) and bool(extra))
    )
