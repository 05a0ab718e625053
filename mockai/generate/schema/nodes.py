"""What every part of the generator shares: the error, the flat node, limits, JSON value helpers."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mockai.errors import MockaiError

MAX_DEPTH = 4  # $ref hops after which only minimal instances are built
HARD_DEPTH = 40  # $ref hops on one path past which mockai gives up (recursive or not)
ATTEMPTS = 12  # regenerations of one node whose best-effort checks failed
BUDGET = 200_000  # sub-values per call: bounds backtracking on pathological schemas
NULL_CHANCE = 0.15  # `null` picked first where other types are allowed too
# Tokens (as the size budget counts them: ~800 real ones) a value may hold before the rest of it
# is built lean, as past MAX_DEPTH: optional properties left out, `null` / `$ref`-free branches
# first, arrays at minItems. Recursion through several fields at once (a manager, a mentor and
# reports, each an employee) otherwise multiplies at every level: 5,000-22,000 tokens from a
# 5-field model, past gpt-4o-mini's output limit. What a schema requires is still made in full.
LEAN_SIZE = 500
# Characters per token when the size budget counts a value's tokens: at least what text of words
# has (a word of up to 9 letters and its space is one token; longer words are cut in 5-letter
# pieces), so the count is an under-estimate and a value stopped at the budget still fills the
# answer up to its token limit, where the endpoint cuts it.
CHARS_PER_TOKEN = 10

TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
ANY_ORDER = ("string", "integer", "boolean", "null", "object", "array", "number")
CONDITIONAL = ("if", "then", "else")
ANNOTATIONS = frozenset(
    {
        "title", "description", "default", "examples", "example", "$comment", "deprecated",
        "readOnly", "writeOnly", "discriminator", "$schema", "$id", "$anchor", "$dynamicAnchor",
        "$defs", "definitions", "contentMediaType", "contentEncoding", "contentSchema", "xml",
        "externalDocs",
    }
)  # fmt: skip
_OBJECT_KEYS = frozenset(
    {
        "properties", "required", "additionalProperties", "patternProperties", "minProperties",
        "maxProperties", "propertyNames", "dependentRequired", "unevaluatedProperties",
    }
)  # fmt: skip
_ARRAY_KEYS = frozenset(
    {
        "items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains", "minContains",
        "maxContains", "additionalItems", "unevaluatedItems",
    }
)  # fmt: skip
_STRING_KEYS = frozenset({"minLength", "maxLength", "pattern", "format"})
_NUMBER_KEYS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)

MISSING: Any = object()  # "no value", where None is a value


class SchemaGenerationError(MockaiError, ValueError):
    """No value can be generated for a schema: a contradiction, or a `$ref` that is not supported.

    `pointer` is the JSON pointer (`#/properties/...`) of the schema location at fault; the
    message starts with it.
    """

    def __init__(self, message: str, *, pointer: str = "#") -> None:
        self.pointer = pointer
        super().__init__(f"{pointer}: {message}")


@dataclass
class Flat:
    """One schema node reduced to a single dict: no `$ref`, `allOf`, `anyOf`, `oneOf`, `if`.

    `checks` are the parts that generation could not fold in; the value is validated against them.
    `branched` says that a retry may choose differently (a branch, a condition).
    """

    node: Mapping[str, Any]
    ptr: str
    depth: int
    attempt: int
    checks: list[Mapping[str, Any]] = field(default_factory=list)
    branched: bool = False
    lean: bool = False  # the value made so far is past LEAN_SIZE
    avoid: set[Any] | None = None  # frozen values taken already (uniqueItems), see arrays
    # The `$ref`s followed on the way to this node, its own last: the Generator's path, shared.
    refs: list[Any] = field(default_factory=list)

    @property
    def minimal(self) -> bool:
        """Build the smallest valid value: deep in a recursion, or once the answer is long."""
        return self.lean or self.depth > MAX_DEPTH


# --- schema nodes --------------------------------------------------------------------------------


def as_node(schema: Any, ptr: str) -> Mapping[str, Any]:
    """`schema` as a dict of keywords: `true` is `{}`, `false` and non-schemas raise."""
    if schema is True:
        return {}
    if schema is False:
        raise SchemaGenerationError("schema is `false`: no value is valid", pointer=ptr)
    if not isinstance(schema, Mapping):
        raise SchemaGenerationError(f"not a schema: {schema!r}", pointer=ptr)
    return schema


def constrains(key: str) -> bool:
    """Whether keyword `key` restricts values (annotations and `x-` extensions do not)."""
    return key not in ANNOTATIONS and not key.startswith("x-")


def type_list(declared: Any) -> list[str]:
    return [declared] if isinstance(declared, str) else list(declared)


def infer_type(node: Mapping[str, Any]) -> str:
    """The type a schema without `type` is about, judging by its keywords ("any" if none)."""
    for keys, kind in (
        (_OBJECT_KEYS, "object"),
        (_ARRAY_KEYS, "array"),
        (_STRING_KEYS, "string"),
        (_NUMBER_KEYS, "number"),
    ):
        if any(key in node for key in keys):
            return kind
    return "any"


def count_bounds(
    node: Mapping[str, Any], low_key: str, high_key: str, ptr: str
) -> tuple[int, int | None]:
    """A (low, high) count from e.g. `minItems`/`maxItems`, rounded inwards; high None if open."""
    low, high = node.get(low_key, 0), node.get(high_key)
    if not is_number(low) or (high is not None and not is_number(high)):
        raise SchemaGenerationError(f"{low_key}/{high_key} must be numbers", pointer=ptr)
    low = max(0, math.ceil(low))
    high = None if high is None else math.floor(high)
    if high is not None and low > high:
        raise SchemaGenerationError(f"{low_key} {low} > {high_key} {high}", pointer=ptr)
    return low, high


def escape(key: str) -> str:
    """`key` as one JSON pointer segment."""
    return key.replace("~", "~0").replace("/", "~1")


# --- JSON values ---------------------------------------------------------------------------------


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    return is_number(value) and float(value).is_integer()


def has_type(value: Any, kind: str) -> bool:
    """Whether `value` is of JSON Schema type `kind` (1.0 is an integer, true is not)."""
    if kind == "integer":
        return is_integer(value)
    if kind == "number":
        return is_number(value)
    checks: dict[str, Callable[[Any], bool]] = {
        "null": lambda v: v is None,
        "boolean": lambda v: isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "array": lambda v: isinstance(v, (list, tuple)),
        "object": lambda v: isinstance(v, Mapping),
    }
    return kind in checks and checks[kind](value)


def freeze(value: Any) -> Any:
    """A hashable stand-in with JSON equality: 1 == 1.0, but true != 1."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, Mapping):
        return ("object", frozenset((key, freeze(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return ("array", tuple(freeze(item) for item in value))
    return ("value", value)


def plain(value: Any) -> Any:
    """A fresh JSON value (dicts and lists), so callers may mutate what the schema holds."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value
