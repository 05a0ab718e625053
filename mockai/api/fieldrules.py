"""A field's allowed JSON types and bounds, and the API's wording when a value breaks them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from mockai.errors import ApiError

# How the API names JSON types in its messages ("expected an array, but got a string instead").
_TYPE_NAMES = {
    "array": "an array",
    "boolean": "a boolean",
    "integer": "an integer",
    "null": "null",
    "number": "a decimal",
    "object": "an object",
    "string": "a string",
}


# The JSON type of each type a JSON parser makes, looked up by exact type (`bool` is an `int`
# to `isinstance`, not to this table).
_JSON_TYPES: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def json_type(value: Any) -> str:
    """The JSON type name of a parsed value."""
    kind = _JSON_TYPES.get(type(value))
    if kind is not None:
        return kind
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def type_error(param: str, expected: Collection[str], value: Any) -> ApiError:
    """`Invalid type for 'x': expected an integer, but got a string instead.`"""
    wanted = [
        t for t in ("string", "array", "object", "integer", "number", "boolean") if t in expected
    ]
    if "number" in wanted and "integer" in wanted:
        wanted.remove("integer")
    names = [_TYPE_NAMES[t] for t in wanted] or ["a value"]
    what = names[0] if len(names) == 1 else "one of " + " or ".join(names)
    got = _TYPE_NAMES[json_type(value)]
    return ApiError(
        400,
        f"Invalid type for '{param}': expected {what}, but got {got} instead.",
        param=param,
        code="invalid_type",
    )


def missing(param: str) -> ApiError:
    """`Missing required parameter: 'messages'.`"""
    return ApiError(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def empty_array(param: str) -> ApiError:
    """`Invalid 'tools': empty array. Expected an array with minimum length 1, ...`"""
    return ApiError(
        400,
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an "
        "empty array instead.",
        param=param,
        code="empty_array",
    )


def invalid_value(param: str, value: Any, allowed: Collection[Any]) -> ApiError:
    """`Invalid value: 'x'. Supported values are: 'a', 'b', and 'c'.`"""
    quoted = [f"'{v}'" for v in allowed]
    if len(quoted) <= 2:
        listed = " and ".join(quoted)
    else:
        listed = ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
    return ApiError(
        400,
        f"Invalid value: '{value}'. Supported values are: {listed}.",
        param=param,
        code="invalid_value",
    )


def unknown_parameter(param: str) -> ApiError:
    """`Unknown parameter: 'foo'.` (what the API says to fields it does not know)."""
    return ApiError(400, f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")


@dataclass(frozen=True, slots=True)
class FieldRule:
    """What the spec allows for one request field."""

    types: frozenset[str]
    required: bool = False
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_items: int | None = None
    max_items: int | None = None
    max_length: int | None = None
    # The Python types whose values pass on their type alone (no enum, bounds or sizes to
    # check): most fields of most requests, checked with one set lookup (`check_fields`).
    passing: frozenset[type] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "passing", frozenset(self._passing_types()))

    def _passing_types(self) -> list[type]:
        types = self.types
        unbounded = self.minimum is None and self.maximum is None
        passing: list[type] = []
        if "null" in types:
            passing.append(type(None))
        if "boolean" in types:
            passing.append(bool)
        if ("integer" in types or "number" in types) and unbounded:
            passing.append(int)
        if "number" in types and unbounded:
            passing.append(float)
        if "string" in types and self.enum is None and self.max_length is None:
            passing.append(str)
        if "array" in types and self.min_items is None and self.max_items is None:
            passing.append(list)
        if "object" in types:
            passing.append(dict)
        return passing

    def check(self, param: str, value: Any) -> None:
        """Raise the API's 400 if `value` breaks this rule."""
        kind = json_type(value)
        if kind not in self.types and not (kind == "integer" and "number" in self.types):
            raise type_error(param, self.types, value)
        if value is None:
            return
        if self.enum is not None and kind == "string" and value not in self.enum:
            raise invalid_value(param, value, self.enum)
        if kind in ("integer", "number"):
            self._check_bounds(param, value, kind)
        elif kind == "array":
            self._check_items(param, value)
        elif kind == "string" and self.max_length is not None and len(value) > self.max_length:
            raise ApiError(
                400,
                f"Invalid '{param}': string too long. Expected a string with maximum length "
                f"{self.max_length}, but got a string with length {len(value)} instead.",
                param=param,
                code="string_above_max_length",
            )

    def _check_bounds(self, param: str, value: float, kind: str) -> None:
        noun = "decimal" if "number" in self.types else "integer"
        if self.minimum is not None and value < self.minimum:
            raise ApiError(
                400,
                f"Invalid '{param}': {noun} below minimum value. Expected a value >= "
                f"{_num(self.minimum)}, but got {_num(value)} instead.",
                param=param,
                code=f"{noun}_below_min_value",
            )
        if self.maximum is not None and value > self.maximum:
            raise ApiError(
                400,
                f"Invalid '{param}': {noun} above maximum value. Expected a value <= "
                f"{_num(self.maximum)}, but got {_num(value)} instead.",
                param=param,
                code=f"{noun}_above_max_value",
            )

    def _check_items(self, param: str, value: list[Any]) -> None:
        if self.min_items is not None and len(value) < self.min_items:
            if not value:
                raise ApiError(
                    400,
                    f"Invalid '{param}': empty array. Expected an array with minimum length "
                    f"{self.min_items}, but got an empty array instead.",
                    param=param,
                    code="empty_array",
                )
            raise ApiError(
                400,
                f"Invalid '{param}': array too short. Expected an array with minimum length "
                f"{self.min_items}, but got an array with length {len(value)} instead.",
                param=param,
                code="array_below_min_length",
            )
        if self.max_items is not None and len(value) > self.max_items:
            raise ApiError(
                400,
                f"Invalid '{param}': array too long. Expected an array with maximum length "
                f"{self.max_items}, but got an array with length {len(value)} instead.",
                param=param,
                code="array_above_max_length",
            )


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
