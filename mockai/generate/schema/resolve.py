"""`$ref` resolution inside the root document, and `allOf` members (and the `dependentSchemas` of
keys every object holds) merged into one schema.

Merging is what lets the rest of the generator look at one dict per node: bounds are tightened,
types intersected, `required` and `properties` united. What cannot be merged exactly (two
`pattern`s, two `$ref`s) is deferred to a later flattening step or left as a check on the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from mockai.generate.schema.nodes import (
    CONDITIONAL,
    HARD_DEPTH,
    MISSING,
    Flat,
    SchemaGenerationError,
    as_node,
    constrains,
    escape,
    freeze,
    infer_type,
    type_list,
)

_LOWER_BOUNDS = frozenset({"minimum", "minLength", "minItems", "minProperties", "minContains"})
_UPPER_BOUNDS = frozenset({"maximum", "maxLength", "maxItems", "maxProperties", "maxContains"})
_SUBSCHEMAS = frozenset(
    {
        "items", "contains", "propertyNames", "additionalProperties", "unevaluatedProperties",
        "additionalItems", "unevaluatedItems",
    }
)  # fmt: skip
_DEFERRED = frozenset({"$ref", "anyOf", "oneOf"})  # merged later, one at a time, via allOf
_DATA = frozenset({"const", "enum", "default", "examples", "example"})  # values, not schemas


# --- $ref ----------------------------------------------------------------------------------------


def follow_ref(root: Mapping[str, Any], node: Mapping[str, Any], flat: Flat) -> Mapping[str, Any]:
    """The target of `node`'s `$ref`, merged with the keywords beside it; one hop deeper."""
    flat.depth += 1
    ref = node["$ref"]
    if flat.depth > HARD_DEPTH:
        raise SchemaGenerationError(_too_deep(ref, flat.refs), pointer=flat.ptr)
    target = as_node(resolve(root, ref, flat.ptr), ref)
    flat.refs.append(ref)
    rest = {key: value for key, value in node.items() if key != "$ref"}
    if any(constrains(key) for key in rest):
        return merge(target, rest, flat)  # 2020-12: siblings of $ref apply too
    flat.ptr = ref
    return target


def follow_dynamic_ref(
    root: Mapping[str, Any], node: Mapping[str, Any], flat: Flat, anchors: Mapping[str, str] | None
) -> Mapping[str, Any]:
    """`node`'s `$dynamicRef` (2019-09: `$recursiveRef`) followed as the `$ref` it amounts to in a
    document without embedded resources (`anchors` is None for one that has some: an `$id`
    below the root). There the dynamic scope holds one resource, so `#name` is the only node
    with `$dynamicAnchor` (or `$anchor`) `name`, and `#`, `#/...` are plain pointers; other
    dynamic references are refused, not ignored (ignored, the value would break the schema)."""
    key = "$dynamicRef" if "$dynamicRef" in node else "$recursiveRef"
    ref = node[key]
    target: str | None = None
    if anchors is not None and isinstance(ref, str) and ref.startswith("#"):
        fragment = unquote(ref[1:])
        target = ref if not fragment or fragment.startswith("/") else anchors.get(fragment)
    if target is None:
        raise SchemaGenerationError(
            f"{key} {ref!r} is not supported (only to a `#` pointer or a `$dynamicAnchor` "
            "defined once, in a document without an `$id` below its root)",
            pointer=flat.ptr,
        )
    rest = {name: value for name, value in node.items() if name != key}
    return follow_ref(root, {**rest, "$ref": target}, flat)


def anchors(root: Mapping[str, Any]) -> dict[str, str] | None:
    """The JSON pointer (`#/$defs/node`) of each `$dynamicAnchor` / `$anchor` name defined once
    in `root`; None if `root` embeds another resource (an `$id` below it)."""
    found: dict[str, str | None] = {}
    pending: list[tuple[Any, str]] = [(root, "#")]
    while pending:  # (iteratively: schemas nest deep)
        value, ptr = pending.pop()
        if isinstance(value, Mapping):
            if isinstance(value.get("$id"), str) and value is not root:
                return None
            for keyword in ("$dynamicAnchor", "$anchor"):
                name = value.get(keyword)
                if isinstance(name, str) and found.setdefault(name, ptr) != ptr:
                    found[name] = None  # (a name twice: which one is meant is unclear)
            pending += [
                (v, f"{ptr}/{escape(str(k)).replace('%', '%25')}")  # (`resolve` unquotes)
                for k, v in value.items()
                if k not in _DATA
            ]
        elif isinstance(value, list):
            pending += [(v, f"{ptr}/{i}") for i, v in enumerate(value)]
    return {name: ptr for name, ptr in found.items() if ptr is not None}


def _too_deep(ref: Any, path: list[Any]) -> str:
    """Why a `$ref` one past HARD_DEPTH is not followed: a recursion when the path went through
    it already (a model that requires itself), else a chain of models deeper than mockai goes."""
    if ref in path:
        return f"recursion through $ref {ref!r} never reaches a finite instance"
    return f"more than {HARD_DEPTH} nested $ref levels (mockai's limit), at $ref {ref!r}"


def resolve(root: Mapping[str, Any], ref: Any, ptr: str) -> Any:
    """What the local `$ref` `ref` points to in `root` (`#`, `#/$defs/...`, escaped segments)."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise SchemaGenerationError(
            f"only local $ref ('#/$defs/...') are supported, got {ref!r}", pointer=ptr
        )
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        raise SchemaGenerationError(f"$ref to an anchor is not supported: {ref!r}", pointer=ptr)
    node: Any = root
    for part in fragment.split("/")[1:]:
        node = _step(node, part.replace("~1", "/").replace("~0", "~"))
        if node is MISSING:
            raise SchemaGenerationError(f"$ref {ref!r} cannot be resolved", pointer=ptr)
    return node


def _step(node: Any, part: str) -> Any:
    if isinstance(node, Mapping):
        return node.get(part, MISSING)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return MISSING


# --- allOf ---------------------------------------------------------------------------------------


def merge_all(node: Mapping[str, Any], flat: Flat) -> Mapping[str, Any]:
    """`node` with its `allOf` members merged in."""
    merged: Mapping[str, Any] = {key: value for key, value in node.items() if key != "allOf"}
    for index, part in enumerate(node["allOf"]):
        merged = merge(merged, as_node(part, f"{flat.ptr}/allOf/{index}"), flat)
    return merged


def merge(a: Mapping[str, Any], b: Mapping[str, Any], flat: Flat) -> dict[str, Any]:
    """One schema requiring both `a` and `b`; what cannot be merged is deferred or checked."""
    out = dict(a)
    deferred: list[Mapping[str, Any]] = []
    if "if" in a and "if" in b:  # two conditionals: handle b's after a's
        deferred.append({key: b[key] for key in CONDITIONAL if key in b})
        b = {key: value for key, value in b.items() if key not in CONDITIONAL}
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif out[key] != value:
            _combine(out, key, value, flat, deferred)
    if deferred:
        out["allOf"] = [*out.get("allOf", ()), *deferred]
    _close(out, a, b, flat.ptr)
    return out


def _combine(
    out: dict[str, Any], key: str, value: Any, flat: Flat, deferred: list[Mapping[str, Any]]
) -> None:
    """Fold `value` into `out[key]`, which both schemas set, differently."""
    current = out[key]
    if key in _LOWER_BOUNDS:
        out[key] = max(current, value)
    elif key in _UPPER_BOUNDS:
        out[key] = min(current, value)
    elif key == "type":
        out[key] = _intersect_types(current, value, flat.ptr)
    elif key == "required":
        out[key] = list(dict.fromkeys([*current, *value]))
    elif key == "enum":
        out[key] = [v for v in current if any(freeze(v) == freeze(w) for w in value)]
        if not out[key]:
            raise SchemaGenerationError("allOf members share no enum value", pointer=flat.ptr)
    elif key == "const":
        raise SchemaGenerationError(
            f"allOf requires const {current!r} and {value!r}", pointer=flat.ptr
        )
    elif key in ("properties", "patternProperties", "dependentSchemas"):
        out[key] = {**current, **{k: _both(current[k], v) if k in current else v
                                  for k, v in value.items()}}  # fmt: skip
    elif key in _SUBSCHEMAS:
        out[key] = _both(current, value)
    elif key == "not":
        out[key] = {"anyOf": [current, value]}
    elif key == "allOf":
        out[key] = [*current, *value]
    elif key in _DEFERRED:
        deferred.append({key: value})
    elif key == "uniqueItems":
        out[key] = bool(current) or bool(value)
    elif key == "nullable":
        out[key] = bool(current) and bool(value)
    elif constrains(key):
        flat.checks.append({key: value})  # pattern, format, multipleOf, prefixItems, ...


def _both(a: Any, b: Any) -> Any:
    """A subschema requiring both `a` and `b`, without nesting when one of them is trivial."""
    if a is False or b is False:
        return False
    if a is True or a == {}:
        return b
    if b is True or b == {}:
        return a
    return {"allOf": [a, b]}


def _close(out: dict[str, Any], a: Mapping[str, Any], b: Mapping[str, Any], ptr: str) -> None:
    """`additionalProperties: false` in one member forbids the other member's extra properties."""
    allowed = [keys for keys in (_closed_keys(a), _closed_keys(b)) if keys is not None]
    if not allowed:
        return
    keep = set.intersection(*allowed)
    out["properties"] = {k: v for k, v in (out.get("properties") or {}).items() if k in keep}
    out["additionalProperties"] = False
    banned = [key for key in out.get("required", ()) if key not in keep]
    if banned:
        raise SchemaGenerationError(
            f"allOf requires {banned} but additionalProperties: false forbids them", pointer=ptr
        )


def _closed_keys(node: Mapping[str, Any]) -> set[str] | None:
    """The only property names `node` allows, or None if it allows others too."""
    if node.get("additionalProperties") is False and not node.get("patternProperties"):
        return set(node.get("properties") or {})
    return None


def _intersect_types(a: Any, b: Any, ptr: str) -> Any:
    left, right = type_list(a), type_list(b)
    both = [t for t in left if t in right or (t == "integer" and "number" in right)]
    both += [t for t in right if t == "integer" and "number" in left and t not in both]
    if not both:
        raise SchemaGenerationError(f"allOf requires type {left} and {right} at once", pointer=ptr)
    return both[0] if len(both) == 1 else both


# --- dependentSchemas ----------------------------------------------------------------------------


def dependents_due(node: Mapping[str, Any], merged: set[str]) -> list[str]:
    """The keys of `node`'s `dependentSchemas` (not `merged` yet) whose schemas apply to every
    value: the node makes objects, and those hold the key (it is required, or required by
    `dependentRequired` of a required key). Others stay a check on the value."""
    dependents = node.get("dependentSchemas")
    if not isinstance(dependents, Mapping) or not _makes_objects(node):
        return []
    return [key for key in _present(node) if key in dependents and key not in merged]


def merge_dependents(node: Mapping[str, Any], keys: list[str], flat: Flat) -> Mapping[str, Any]:
    """`node` with the `dependentSchemas` of `keys` merged in, as `allOf` members would be."""
    merged = node
    for key in keys:
        ptr = f"{flat.ptr}/dependentSchemas/{escape(key)}"
        merged = merge(merged, as_node(node["dependentSchemas"][key], ptr), flat)
    return merged


def _makes_objects(node: Mapping[str, Any]) -> bool:
    declared = node.get("type")
    if declared is None:
        return infer_type(node) == "object"
    return type_list(declared) == ["object"]


def _present(node: Mapping[str, Any]) -> list[str]:
    """The keys every object of `node` holds: `required`, and what `dependentRequired` adds."""
    required = node.get("required")
    keys = [key for key in required if isinstance(key, str)] if isinstance(required, list) else []
    also = node.get("dependentRequired")
    if isinstance(also, Mapping):
        for key in keys:  # (grows as it goes: transitively)
            more = also.get(key)
            if isinstance(more, list):
                keys += [each for each in more if isinstance(each, str) and each not in keys]
    return keys
