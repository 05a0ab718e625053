"""`anyOf` / `oneOf` branches, `if`/`then`/`else`, `not`, and other keywords checked afterwards.

A branch or a side of a condition is chosen by the RNG and merged into the node; retries walk the
other choices. What generation cannot aim for (`not`, `oneOf` exclusivity, `maxContains`,
`dependentSchemas`) becomes a check on the finished value.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from mockai.generate.schema.nodes import (
    ANY_ORDER,
    CONDITIONAL,
    NULL_CHANCE,
    Flat,
    SchemaGenerationError,
    as_node,
    constrains,
    type_list,
)
from mockai.generate.schema.resolve import merge

_FINISH_KEYS = frozenset(
    {"not", "maxContains", "dependentSchemas", "unevaluatedProperties", "unevaluatedItems"}
)


# --- anyOf / oneOf -------------------------------------------------------------------------------


def pick_branch(rng: random.Random, node: Mapping[str, Any], flat: Flat) -> Mapping[str, Any]:
    """One branch of `node`'s `anyOf` (or `oneOf`), merged with the keywords beside it."""
    key = "anyOf" if "anyOf" in node else "oneOf"
    branches = node[key]
    if not isinstance(branches, list) or not branches:
        raise SchemaGenerationError(f"{key} must be a non-empty list", pointer=flat.ptr)
    flat.branched = True
    if key == "oneOf":
        flat.checks.append({"oneOf": branches})
    # The first attempt takes the preferred branch; retries walk all branches in order.
    index = (
        branch_order(rng, branches, flat.minimal)[0]
        if flat.attempt == 0
        else ((flat.attempt - 1) % len(branches))
    )
    branch = as_node(branches[index], f"{flat.ptr}/{key}/{index}")
    rest = {name: value for name, value in node.items() if name != key}
    if any(constrains(name) for name in rest):
        return merge(rest, branch, flat)
    flat.ptr = f"{flat.ptr}/{key}/{index}"
    return branch


def branch_order(rng: random.Random, branches: Sequence[Any], minimal: bool) -> list[int]:
    """Branch indexes, preferred first: non-null ones usually; null and ref-free if minimal;
    numbers before the bare string of a number-or-string union."""
    order = list(range(len(branches)))
    rng.shuffle(order)
    nulls = [i for i in order if _is_null_schema(branches[i])]
    others = [i for i in order if i not in nulls]
    if len(others) > 1 and _number_or_text(branches, others):
        # pydantic's Decimal is `anyOf: [number, string]` (ByteSize: [string with a pattern,
        # integer]): the string is a number written out, which prose is not. A number is valid
        # under either reading.
        others.sort(key=lambda i: not _is_numeric_schema(branches[i]))
    if minimal:
        simple = [i for i in others if not _mentions_ref(branches[i])]
        return [*nulls, *simple, *(i for i in others if i not in simple)]
    if nulls and rng.random() < NULL_CHANCE:
        return [*nulls, *others]
    return [*others, *nulls]


def _number_or_text(branches: Sequence[Any], indexes: Sequence[int]) -> bool:
    """Whether the branches at `indexes` are numbers and strings with no format or values."""
    numeric = text = False
    for i in indexes:
        branch = branches[i]
        if _is_numeric_schema(branch):
            numeric = True
        elif (
            isinstance(branch, Mapping)
            and branch.get("type") == "string"
            and not {"format", "enum", "const"} & branch.keys()
        ):
            text = True
        else:
            return False
    return numeric and text


def _is_numeric_schema(schema: Any) -> bool:
    return isinstance(schema, Mapping) and schema.get("type") in ("number", "integer")


def _is_null_schema(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    return schema.get("type") == "null" or ("const" in schema and schema["const"] is None)


def _mentions_ref(schema: Any) -> bool:
    if isinstance(schema, Mapping):
        return "$ref" in schema or any(_mentions_ref(value) for value in schema.values())
    if isinstance(schema, list):
        return any(_mentions_ref(value) for value in schema)
    return False


# --- if / then / else ----------------------------------------------------------------------------


def condition_first(node: Mapping[str, Any]) -> bool:
    """Whether `node`'s own `if` must be resolved before its `allOf` is merged.

    A node holds one `if`: `merge` defers a second one into `allOf`. Merging that `allOf` back
    while the node still has its own `if` would defer it again, forever.
    """
    return "if" in node and any(
        isinstance(part, Mapping) and "if" in part for part in node["allOf"]
    )


def pick_condition(rng: random.Random, node: Mapping[str, Any], flat: Flat) -> Mapping[str, Any]:
    """`if`/`then`/`else`: aim for one side (the `then` side also merges `if`), then check."""
    flat.branched = True
    flat.checks.append({key: node[key] for key in CONDITIONAL if key in node})
    rest: Mapping[str, Any] = {k: v for k, v in node.items() if k not in CONDITIONAL}
    then = rng.random() < 0.5 if flat.attempt == 0 else flat.attempt % 2 == 1
    if then:
        rest = merge(rest, as_node(node["if"], f"{flat.ptr}/if"), flat)
    side = node.get("then" if then else "else", True)
    return merge(rest, as_node(side, flat.ptr), flat)


# --- not, and keywords only checked --------------------------------------------------------------


def finish(node: Mapping[str, Any], flat: Flat) -> Mapping[str, Any]:
    """Last touches on a flat node: `not` and other keywords become checks."""
    if _FINISH_KEYS.isdisjoint(node):
        return node
    out = dict(node)
    if "not" in out:
        _apply_not(out, out.pop("not"), flat)
    if "maxContains" in out:
        flat.checks.append(
            {k: out[k] for k in ("contains", "minContains", "maxContains") if k in out}
        )
    if "dependentSchemas" in out:
        flat.checks.append({"dependentSchemas": out["dependentSchemas"]})
    if "unevaluatedProperties" in out:  # allOf is merged: all properties are evaluated here
        out.setdefault("additionalProperties", out["unevaluatedProperties"])
    if "unevaluatedItems" in out:
        out.setdefault("items", out["unevaluatedItems"])
    return out


def _apply_not(out: dict[str, Any], negated: Any, flat: Flat) -> None:
    """`not` is checked on the value; a plain `not: {type: ...}` also narrows `type` up front."""
    flat.checks.append({"not": negated})
    if isinstance(negated, Mapping) and set(negated) == {"type"}:
        banned = type_list(negated["type"])
        current = type_list(out["type"]) if "type" in out else list(ANY_ORDER)
        kept = [
            t for t in current if t not in banned and not (t == "integer" and "number" in banned)
        ]
        if not kept:
            raise SchemaGenerationError(
                f"`not` forbids every allowed type {current}", pointer=flat.ptr
            )
        out["type"] = kept
