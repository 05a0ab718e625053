"""Arrays: length, tuple layout (`prefixItems`, draft-07 `items: [...]`), `contains`, uniqueness."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mockai.generate.schema.nodes import (
    MISSING,
    Flat,
    SchemaGenerationError,
    count_bounds,
    freeze,
)

if TYPE_CHECKING:
    from mockai.generate.schema.generator import Generator

_UNIQUE_TRIES = 24  # draws per array item before `uniqueItems` gives up on it


def array_value(gen: Generator, flat: Flat, name: str) -> list[Any]:
    node = flat.node
    prefix, rest = _array_layout(node)
    low, high = count_bounds(node, "minItems", "maxItems", flat.ptr)
    if rest is False:
        high = len(prefix) if high is None else min(high, len(prefix))
    contains = node.get("contains")
    needed = 0 if contains is None else int(node.get("minContains", 1))
    low = max(low, needed)
    if high is not None and low > high:
        raise SchemaGenerationError(f"needs {low} items but at most {high}", pointer=flat.ptr)
    count = _array_length(gen, flat, low, high, len(prefix))
    # Forced `contains` matches can overshoot maxContains: every other retry, chance decides.
    if "maxContains" in node and flat.attempt % 2 == 1:
        needed = 0
    first = min(len(prefix), count - needed)  # `contains` items go after the tuple part
    seen: set[Any] | None = set() if node.get("uniqueItems") is True else None
    out: list[Any] = []
    for index in range(count):
        if gen.exhausted:  # the answer is cut before the next item (see Generator.size)
            break
        if gen.lean and index >= max(low, first + needed):
            break  # long enough already: no more items than asked (see nodes.LEAN_SIZE)
        schema, ptr = _item_schema(flat, prefix, rest, index)
        if first <= index < first + needed:
            schema = {"allOf": [schema, contains]}
        item = _array_item(gen, schema, ptr, flat.depth, name, seen)
        if item is MISSING:
            if len(out) >= low or gen.exhausted:
                break
            raise SchemaGenerationError(
                f"cannot find {low} distinct items (uniqueItems)", pointer=flat.ptr
            )
        out.append(item)
    return out


def _array_length(gen: Generator, flat: Flat, low: int, high: int | None, tuple_length: int) -> int:
    """A few items (fewer deep down), at least the tuple part, within min/maxItems."""
    if flat.minimal:
        return low
    count = max(gen.rng.randint(1, 3 if flat.depth < 2 else 2), tuple_length, low)
    return count if high is None else min(count, high)


def _array_item(
    gen: Generator, schema: Any, ptr: str, depth: int, name: str, seen: set[Any] | None
) -> Any:
    """A value for one item, not in `seen` if uniqueness is asked; MISSING if none is found.

    Numbers are told what is taken (`avoid`): they widen their plausible range to fit as many
    distinct values as asked and step to a free one, rather than redrawing from a window of ten.
    """
    for _ in range(_UNIQUE_TRIES):
        item = gen.value(schema, ptr, depth, name, seen)
        if seen is None:
            return item
        key = freeze(item)
        if key not in seen:
            seen.add(key)
            return item
    return MISSING


def _array_layout(node: Mapping[str, Any]) -> tuple[list[Any], Any]:
    """(tuple item schemas, schema of the rest) in 2020-12 or draft-07 (`items: [...]`) style."""
    items = node.get("items", True)
    if isinstance(items, list):
        return items, node.get("additionalItems", True)
    return list(node.get("prefixItems") or ()), items


def _item_schema(flat: Flat, prefix: list[Any], rest: Any, index: int) -> tuple[Any, str]:
    if index < len(prefix):
        return prefix[index], f"{flat.ptr}/prefixItems/{index}"
    return rest, f"{flat.ptr}/items"
