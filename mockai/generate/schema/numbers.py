"""Integers and numbers: a plausible value for the property's name, moved inside the bounds.

Bounds come in draft-04 (`exclusiveMinimum: true` beside `minimum`) and 2020-12 (a number)
spelling. `multipleOf` is satisfied with exact decimal products and checked the way jsonschema
checks it, float quirks included.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from mockai.generate.schema.names import number_hint
from mockai.generate.schema.nodes import (
    Flat,
    SchemaGenerationError,
    freeze,
    is_integer,
    is_number,
)
from mockai.generate.schema.plausible import preset

if TYPE_CHECKING:
    from mockai.generate.schema.generator import Generator

_Bounds = tuple[float | None, bool, float | None, bool]  # low, low exclusive, high, high excl.


def integer_value(gen: Generator, flat: Flat, name: str) -> int:
    node = flat.node
    low, high = _integer_bounds(node, flat.ptr)
    step = node.get("multipleOf")
    avoid = flat.avoid
    example = preset(gen.rng, node)
    fits = is_integer(example) and _integer_fits(example, low, high, step)
    if fits and not _taken(example, avoid):
        return int(example)
    hint = number_hint(name)[:2]
    if avoid:
        hint = _widened(hint, len(avoid), _unit(step, 1.0))
    a, b = _window(low, high, hint)
    target = gen.rng.randint(math.ceil(a), max(math.ceil(a), math.floor(b)))
    if step is None:  # (_window kept it inside the bounds)
        return target if not avoid else _free_near(target, low, high, avoid)
    reach = _NEIGHBOURS + (len(avoid) if avoid else 0)
    taken: int | None = None  # (a duplicate, which uniqueItems reports, is still a value)
    for candidate in _multiples_near(target, step, low, high, reach):
        if is_integer(candidate) and _integer_fits(int(candidate), low, high, step):
            if not _taken(candidate, avoid):
                return int(candidate)
            taken = int(candidate) if taken is None else taken
    if taken is not None:
        return taken
    raise SchemaGenerationError(
        f"no integer multiple of {step} between {low} and {high}", pointer=flat.ptr
    )


def number_value(gen: Generator, flat: Flat, name: str) -> float | int:
    node = flat.node
    bounds = _number_bounds(node, flat.ptr)
    step = node.get("multipleOf")
    example = preset(gen.rng, node)
    if is_number(example) and _number_fits(example, bounds, step):
        return float(example) if isinstance(example, float) else int(example)
    hint_low, hint_high, decimals = number_hint(name)
    hint: tuple[float, float] = (hint_low, hint_high)
    avoid = flat.avoid
    if avoid:
        hint = _widened(hint, len(avoid), _unit(step, 10.0**-decimals))
    a, b = _window(bounds[0], bounds[2], hint)
    target = gen.rng.uniform(a, b)
    candidates: Iterator[float | int]
    if step is None:
        candidates = _rounded_near(target, decimals, bounds)
    else:
        reach = _NEIGHBOURS + (len(avoid) if avoid else 0)
        candidates = _multiples_near(target, step, bounds[0], bounds[2], reach)
    taken: float | int | None = None  # (a duplicate, which uniqueItems reports, is still a value)
    for candidate in candidates:
        if _number_fits(candidate, bounds, step):
            if not _taken(candidate, avoid):
                return candidate
            taken = candidate if taken is None else taken
    if taken is not None:
        return taken
    raise SchemaGenerationError(f"no number satisfies {_bounds_text(node)}", pointer=flat.ptr)


# --- bounds --------------------------------------------------------------------------------------


def _number_bounds(node: Mapping[str, Any], ptr: str) -> _Bounds:
    low, high = node.get("minimum"), node.get("maximum")
    low_ex = high_ex = False
    ex_low, ex_high = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
    if isinstance(ex_low, bool):  # draft-04 / OpenAPI 3.0: a flag on `minimum`
        low_ex = ex_low and low is not None
    elif ex_low is not None and (low is None or ex_low >= low):
        low, low_ex = ex_low, True
    if isinstance(ex_high, bool):
        high_ex = ex_high and high is not None
    elif ex_high is not None and (high is None or ex_high <= high):
        high, high_ex = ex_high, True
    for bound in (low, high):
        if bound is not None and not is_number(bound):
            raise SchemaGenerationError(f"bound {bound!r} is not a number", pointer=ptr)
    if (
        low is not None
        and high is not None
        and (low > high or (low == high and (low_ex or high_ex)))
    ):
        raise SchemaGenerationError(f"no number satisfies {_bounds_text(node)}", pointer=ptr)
    return low, low_ex, high, high_ex


def _integer_bounds(node: Mapping[str, Any], ptr: str) -> tuple[int | None, int | None]:
    low, low_ex, high, high_ex = _number_bounds(node, ptr)
    int_low = None if low is None else (math.floor(low) + 1 if low_ex else math.ceil(low))
    int_high = None if high is None else (math.ceil(high) - 1 if high_ex else math.floor(high))
    if int_low is not None and int_high is not None and int_low > int_high:
        raise SchemaGenerationError(f"no integer satisfies {_bounds_text(node)}", pointer=ptr)
    return int_low, int_high


def _bounds_text(node: Mapping[str, Any]) -> str:
    keys = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf")
    return ", ".join(f"{key} {node[key]}" for key in keys if key in node) or "the bounds"


def _number_fits(value: Any, bounds: _Bounds, step: Any) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return False  # past the largest float (`exclusiveMinimum: 1.79e308`): JSON has no inf
    low, low_ex, high, high_ex = bounds
    if low is not None and (value < low or (low_ex and value == low)):
        return False
    if high is not None and (value > high or (high_ex and value == high)):
        return False
    return step is None or _multiple_ok(value, step)


def _integer_fits(value: int, low: int | None, high: int | None, step: Any) -> bool:
    in_range = (low is None or value >= low) and (high is None or value <= high)
    return in_range and (step is None or _multiple_ok(value, step))


def _multiple_ok(value: float | int, step: Any) -> bool:
    """jsonschema's own `multipleOf` test, float quirks included (3 / 0.1 is not 30.0)."""
    if not is_number(step) or step <= 0:
        return False
    if isinstance(step, float):
        quotient = value / step
        try:
            return int(quotient) == quotient
        except OverflowError:
            return (Fraction(value) / Fraction(step)).denominator == 1
    return bool(value % step == 0)


# --- candidates ----------------------------------------------------------------------------------


# --- uniqueness: values other items of the array hold already ------------------------------------

_NEIGHBOURS = 40  # multiples of `multipleOf` tried each side of the target
_SPREAD = 4  # a unique item's window holds this many values per item made so far


def _taken(value: Any, avoid: set[Any] | None) -> bool:
    return avoid is not None and freeze(value) in avoid


def _widened(hint: tuple[float, float], count: int, unit: float) -> tuple[float, float]:
    """The plausible window `hint`, stretched upwards to hold `_SPREAD` values per item taken.

    Draws from a window of ten `count`s repeat after a few items; stretched, an array of 100
    distinct ones still looks drawn (not 1, 2, 3, ...), and `_window` clamps it to the bounds.
    """
    low, high = hint
    return low, max(high, low + _SPREAD * (count + 1) * unit)


def _unit(step: Any, default: float) -> float:
    """The distance between two allowed values: `multipleOf`, else `default`."""
    return float(step) if isinstance(step, (int, float)) and step > 0 else default


def _free_near(target: int, low: int | None, high: int | None, avoid: set[Any]) -> int:
    """The integer nearest `target`, within the bounds, that `avoid` does not hold.

    Among the `len(avoid) + 1` in-bounds integers nearest `target` one is free, if the bounds
    hold that many: so a range holding exactly as many as asked is filled too. None free: a
    duplicate, which the array reports (the range is too small).
    """
    for offset in range(len(avoid) + 1):
        for value in (target + offset, target - offset) if offset else (target,):
            in_bounds = (low is None or value >= low) and (high is None or value <= high)
            if in_bounds and freeze(value) not in avoid:
                return value
    return target


def _window(
    low: float | None, high: float | None, hint: tuple[float, float]
) -> tuple[float, float]:
    """The plausible range `hint` moved inside [low, high], keeping its width where possible."""
    a, b = hint
    width = b - a
    if low is not None:
        a, b = max(a, low), max(b, low)
    if high is not None:
        a, b = min(a, high), min(b, high)
    if a < b:
        return a, b
    if low is not None and a == low:
        return low, low + width if high is None else min(high, low + width)
    return (a - width if low is None else max(low, a - width)), a


def _rounded_near(target: float, decimals: int, bounds: _Bounds) -> Iterator[float | int]:
    """`target` rounded plausibly, then less, then points safely inside tight bounds."""
    for places in (decimals, decimals + 2, 6):
        value = round(target, places)
        yield int(value) if places == 0 else value
    yield target
    low, _, high, _ = bounds
    if low is not None and high is not None:
        yield low + (high - low) / 2
    if low is not None:
        yield math.nextafter(low, math.inf)
    if high is not None:
        yield math.nextafter(high, -math.inf)


def _multiples_near(
    target: float, step: Any, low: float | None, high: float | None, reach: int = 40
) -> Iterator[float | int]:
    """Multiples of `step` near `target` (exact decimal products), clamped into the bounds;
    `reach` neighbours each side (float rounding can reject a multiple, uniqueness a few)."""
    if not is_number(step) or step <= 0:
        return
    exact = Decimal(str(step))
    try:
        center = round(target / step)
        if low is not None:
            center = max(center, math.ceil(low / step))
        if high is not None:
            center = min(center, math.floor(high / step))
    except OverflowError:  # huge bound or tiny step: the count of steps exceeds a float
        return
    for offset in range(reach):
        for k in (center + offset, center - offset - 1):
            value = Decimal(k) * exact
            yield int(value) if value == value.to_integral_value() else float(value)
