"""JSON values valid against a JSON Schema, fully determined by a seeded `random.Random`.

mockai invents content when a request asks for structured output (`response_format` of type
`json_schema`, or the Responses API `text.format`) or for tool-call arguments (`arguments: auto`)
and nothing scripted them. The value must validate against the user's schema, so the code under
test can parse it, and it should look plausible (a `city` is a city, a `query` echoes the user's
message), so that test logs read like real traffic.

Schemas come from pydantic's `model_json_schema()`, OpenAI strict mode and hand-written JSON, so
this module covers what those use:

* `$ref` into the same document (`#`, `#/$defs/...`, `#/definitions/...`), including recursion;
  past `_MAX_DEPTH` `$ref` hops only the minimal instance is built (required properties, `minItems`
  items, the null / `$ref`-free branch of an `anyOf`), so recursive models terminate.
* `allOf` (merged into one schema), `anyOf` / `oneOf` (a branch picked by the RNG; `oneOf` is
  re-checked so that exactly one branch matches), `if`/`then`/`else`, `not`, `enum`, `const`,
  `type` as a string or list, and OpenAPI 3.0 `nullable`.
* objects (`properties`, `required`, `additionalProperties`, `patternProperties`,
  `minProperties`/`maxProperties`, `propertyNames`, `dependentRequired`), arrays (`items`,
  `prefixItems`, draft-07 tuple `items`, `minItems`/`maxItems`, `uniqueItems`, `contains`),
  strings (`minLength`/`maxLength`, `pattern`, common `format`s), numbers (`minimum`, `maximum`,
  exclusive bounds in draft-04 and 2020-12 spelling, `multipleOf`), booleans and null.

Limits, on purpose:

* Only local refs; remote refs, `$anchor`, `$dynamicRef` and `$id`-relative refs raise
  `SchemaGenerationError`.
* `not`, `oneOf` exclusivity, `if`/`then`/`else`, `maxContains`, `dependentSchemas` and
  `allOf` members that cannot be merged (two different `pattern`s, say) are best effort: the value
  is generated without them, checked with jsonschema, and regenerated a few times.
* `nullable: true` produces `null` only as a last resort: JSON Schema 2020-12 ignores `nullable`,
  so a non-null value is the one that is valid under both readings.
* `pattern` has Python `re` semantics, as in jsonschema. rstr expands it; a pattern rstr cannot
  expand (backreferences to unknown groups, some lookarounds) falls back to checked candidates.
* Unknown `format`s are ignored. For known ones a name-based value (a `birthday`'s birth date) is
  kept only if well-formed; otherwise mockai's own generators make one that passes jsonschema's
  format checkers. A format that conflicts with `pattern` or the length bounds may fail.

Determinism: every random choice goes through the `rng` argument; a Faker, when given, is reseeded
from it first. Nothing uses `hash()` of strings (set order of strings varies between processes),
the global `random` module or the clock.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import random
import re
import string
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import rstr
from jsonschema import Draft202012Validator

from mockai.errors import MockaiError

if TYPE_CHECKING:
    from faker import Faker

__all__ = ["SchemaGenerationError", "instance"]

_MAX_DEPTH = 4  # $ref hops after which only minimal instances are built
_HARD_DEPTH = 40  # $ref hops after which a recursion has no finite instance
_ATTEMPTS = 12  # regenerations of one node whose best-effort checks failed
_BUDGET = 200_000  # sub-values per call: bounds backtracking on pathological schemas
_UNIQUE_TRIES = 24  # draws per array item before `uniqueItems` gives up on it
_PATTERN_TRIES = 12
_REPEAT_SPAN = 8  # `*`, `+` and `{n,}` repeat at most this much beyond their minimum
_OPTIONAL_CHANCE = 0.7  # optional property included, at the top level; less when nested
_NULL_CHANCE = 0.15  # `null` picked first where other types are allowed too
_PRESET_CHANCE = 0.5  # a valid `default` / `examples` value used as is

_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
_ANY_ORDER = ("string", "integer", "boolean", "null", "object", "array", "number")
_ANNOTATIONS = frozenset(
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
_LOWER_BOUNDS = frozenset({"minimum", "minLength", "minItems", "minProperties", "minContains"})
_UPPER_BOUNDS = frozenset({"maximum", "maxLength", "maxItems", "maxProperties", "maxContains"})
_SUBSCHEMAS = frozenset(
    {
        "items", "contains", "propertyNames", "additionalProperties", "unevaluatedProperties",
        "additionalItems", "unevaluatedItems",
    }
)  # fmt: skip
_DEFERRED = frozenset({"$ref", "anyOf", "oneOf"})  # merged later, one at a time, via allOf
_CONDITIONAL = ("if", "then", "else")

_MISSING: Any = object()


class SchemaGenerationError(MockaiError, ValueError):
    """No value can be generated for a schema: a contradiction, or a `$ref` that is not supported.

    `pointer` is the JSON pointer (`#/properties/...`) of the schema location at fault; the
    message starts with it.
    """

    def __init__(self, message: str, *, pointer: str = "#") -> None:
        self.pointer = pointer
        super().__init__(f"{pointer}: {message}")


def instance(
    schema: Mapping[str, Any],
    rng: random.Random,
    *,
    faker: Faker | None = None,
    context: str = "",
) -> Any:
    """A value valid against `schema`, fully determined by the state of `rng`.

    `faker`, when given, is reseeded from `rng` and used for plausible names, cities, sentences.
    `context` (the user's message) is echoed into query-like string properties (`query`, `q`,
    `prompt`, ...). Raises `SchemaGenerationError` when the schema cannot be satisfied.
    """
    if faker is not None:
        faker.seed_instance(rng.getrandbits(32))
    return _Generator(schema, rng, faker, context).generate()


# --- the generator -------------------------------------------------------------------------------


@dataclass
class _Flat:
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

    @property
    def minimal(self) -> bool:
        return self.depth > _MAX_DEPTH


class _Xeger(rstr.Rstr):
    """rstr's regex expander with two changes we depend on.

    Negated classes (`[^"]`) pick from a `set` in rstr, whose order of strings changes between
    processes; here they pick from an ordered list. And `*`/`+` repeat up to 100 times in rstr,
    which makes implausibly long strings; here at most `_REPEAT_SPAN` beyond the minimum.
    """

    def _handle_in(self, value: Any) -> Any:
        candidates = list(chain.from_iterable(self._handle_state(item) for item in value))
        if candidates and candidates[0] is False:
            excluded = set(candidates[1:])
            candidates = [char for char in string.printable if char not in excluded]
        return self._random.choice(candidates)

    def _handle_repeat(self, start_range: int, end_range: int, value: str) -> str:
        times = self._random.randint(start_range, min(end_range, start_range + _REPEAT_SPAN))
        return "".join("".join(self._handle_state(item) for item in value) for _ in range(times))


class _Generator:
    """The state of one `instance()` call: root schema, RNG, Faker, and a work budget."""

    def __init__(
        self, root: Mapping[str, Any], rng: random.Random, faker: Faker | None, context: str
    ) -> None:
        self.root = root
        self.rng = rng
        self.faker = faker
        self.context = " ".join(context.split())  # one line: it becomes a JSON string value
        self.budget = _BUDGET
        self._validator: Any = None
        self._xeger: _Xeger | None = None

    def generate(self) -> Any:
        return self.value(self.root, "#", 0, "")

    # --- one node: flatten, generate, check, retry ------------------------------------------

    def value(self, schema: Any, ptr: str, depth: int, name: str) -> Any:
        """A value for `schema` (at JSON pointer `ptr`), `name` being its property name."""
        self.budget -= 1
        if self.budget < 0:
            raise SchemaGenerationError(
                f"gave up after {_BUDGET} sub-values: too much backtracking", pointer=ptr
            )
        error: SchemaGenerationError | None = None
        for attempt in range(_ATTEMPTS):
            flat = _Flat({}, ptr, depth, attempt)
            try:
                self.flatten(schema, flat)
                value = self.flat_value(flat, name)
            except SchemaGenerationError as exc:
                if not (flat.branched or flat.checks):
                    raise  # nothing would be chosen differently on a retry
                error = exc
                continue
            if all(self.is_valid(check, value, ptr) for check in flat.checks):
                return value
            keywords = ", ".join(sorted({key for check in flat.checks for key in check}))
            error = SchemaGenerationError(f"no value found that satisfies {keywords}", pointer=ptr)
        raise error if error is not None else SchemaGenerationError("no value", pointer=ptr)

    def flatten(self, schema: Any, flat: _Flat) -> None:
        node = _as_node(schema, flat.ptr)
        while True:
            if "$ref" in node:
                node = self.follow_ref(node, flat)
            elif "anyOf" in node or "oneOf" in node:
                node = self.pick_branch(node, flat)
            elif "allOf" in node:
                node = _merge_all(node, flat)
            elif "if" in node:
                node = self.pick_condition(node, flat)
            else:
                break
        flat.node = _finish(node, flat)

    def follow_ref(self, node: Mapping[str, Any], flat: _Flat) -> Mapping[str, Any]:
        flat.depth += 1
        if flat.depth > _HARD_DEPTH:
            raise SchemaGenerationError(
                "recursion through $ref never reaches a finite instance", pointer=flat.ptr
            )
        ref = node["$ref"]
        target = _as_node(self.resolve(ref, flat.ptr), ref)
        rest = {key: value for key, value in node.items() if key != "$ref"}
        if any(_constrains(key) for key in rest):
            return _merge(target, rest, flat)  # 2020-12: siblings of $ref apply too
        flat.ptr = ref
        return target

    def resolve(self, ref: Any, ptr: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaGenerationError(
                f"only local $ref ('#/$defs/...') are supported, got {ref!r}", pointer=ptr
            )
        fragment = unquote(ref[1:])
        if fragment and not fragment.startswith("/"):
            raise SchemaGenerationError(f"$ref to an anchor is not supported: {ref!r}", pointer=ptr)
        node: Any = self.root
        for part in fragment.split("/")[1:]:
            node = _step(node, part.replace("~1", "/").replace("~0", "~"))
            if node is _MISSING:
                raise SchemaGenerationError(f"$ref {ref!r} cannot be resolved", pointer=ptr)
        return node

    def pick_branch(self, node: Mapping[str, Any], flat: _Flat) -> Mapping[str, Any]:
        key = "anyOf" if "anyOf" in node else "oneOf"
        branches = node[key]
        if not isinstance(branches, list) or not branches:
            raise SchemaGenerationError(f"{key} must be a non-empty list", pointer=flat.ptr)
        flat.branched = True
        if key == "oneOf":
            flat.checks.append({"oneOf": branches})
        # The first attempt takes the preferred branch; retries walk all branches in order.
        index = (
            self.branch_order(branches, flat.minimal)[0]
            if flat.attempt == 0
            else ((flat.attempt - 1) % len(branches))
        )
        branch = _as_node(branches[index], f"{flat.ptr}/{key}/{index}")
        rest = {name: value for name, value in node.items() if name != key}
        if any(_constrains(name) for name in rest):
            return _merge(rest, branch, flat)
        flat.ptr = f"{flat.ptr}/{key}/{index}"
        return branch

    def branch_order(self, branches: Sequence[Any], minimal: bool) -> list[int]:
        """Branch indexes, preferred first: non-null ones usually; null and ref-free if minimal."""
        order = list(range(len(branches)))
        self.rng.shuffle(order)
        nulls = [i for i in order if _is_null_schema(branches[i])]
        others = [i for i in order if i not in nulls]
        if minimal:
            simple = [i for i in others if not _mentions_ref(branches[i])]
            return [*nulls, *simple, *(i for i in others if i not in simple)]
        if nulls and self.rng.random() < _NULL_CHANCE:
            return [*nulls, *others]
        return [*others, *nulls]

    def pick_condition(self, node: Mapping[str, Any], flat: _Flat) -> Mapping[str, Any]:
        """`if`/`then`/`else`: aim for one side (the `then` side also merges `if`), then check."""
        flat.branched = True
        flat.checks.append({key: node[key] for key in _CONDITIONAL if key in node})
        rest: Mapping[str, Any] = {k: v for k, v in node.items() if k not in _CONDITIONAL}
        then = self.rng.random() < 0.5 if flat.attempt == 0 else flat.attempt % 2 == 1
        if then:
            rest = _merge(rest, _as_node(node["if"], f"{flat.ptr}/if"), flat)
        side = node.get("then" if then else "else", True)
        return _merge(rest, _as_node(side, flat.ptr), flat)

    def is_valid(self, schema: Any, value: Any, ptr: str) -> bool:
        """jsonschema's verdict on `value` against a part of the root schema."""
        if self._validator is None:
            self._validator = Draft202012Validator(self.root)
        try:
            return bool(self._validator.evolve(schema=schema).is_valid(value))
        except Exception as exc:  # bad regex, unresolvable ref, ...: jsonschema's many errors
            raise SchemaGenerationError(f"cannot evaluate {schema!r}: {exc}", pointer=ptr) from exc

    # --- a flat node ------------------------------------------------------------------------

    def flat_value(self, flat: _Flat, name: str) -> Any:
        node = flat.node
        if "const" in node:
            return _plain(node["const"])
        if "enum" in node:
            return self.enum_value(flat)
        error: SchemaGenerationError | None = None
        for kind in self.type_order(flat):
            try:
                return _MAKERS[kind](self, flat, name)
            except SchemaGenerationError as exc:
                error = exc  # another allowed type may still work
        raise error if error is not None else SchemaGenerationError("no type", pointer=flat.ptr)

    def enum_value(self, flat: _Flat) -> Any:
        node = flat.node
        values = list(node["enum"])
        if "type" in node:
            kinds = _type_list(node["type"])
            values = [v for v in values if any(_has_type(v, kind) for kind in kinds)]
        if any(_constrains(key) for key in node if key not in ("enum", "type", "nullable")):
            values = [v for v in values if self.is_valid(node, v, flat.ptr)]
        if not values:
            raise SchemaGenerationError(
                "no enum value satisfies the other constraints", pointer=flat.ptr
            )
        return _plain(self.rng.choice(values))

    def type_order(self, flat: _Flat) -> list[str]:
        """The types to try, most plausible first."""
        node = flat.node
        declared = node.get("type")
        if declared is None:
            kind = _infer_type(node)
            if kind != "any":
                return [kind]
            start = flat.attempt % len(_ANY_ORDER)  # retries of a failed `not` try other types
            return [*_ANY_ORDER[start:], *_ANY_ORDER[:start]]
        kinds = _type_list(declared)
        unknown = [kind for kind in kinds if kind not in _TYPES]
        if unknown or not kinds:
            raise SchemaGenerationError(f"unsupported type {declared!r}", pointer=flat.ptr)
        solid = [kind for kind in kinds if kind != "null"]
        if len(solid) > 1:
            self.rng.shuffle(solid)
        if len(solid) < len(kinds):
            null_first = flat.minimal or self.rng.random() < _NULL_CHANCE
            solid = ["null", *solid] if null_first else [*solid, "null"]
        elif node.get("nullable") is True:
            solid.append("null")
        return solid

    # --- objects ----------------------------------------------------------------------------

    def object_value(self, flat: _Flat, name: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.object_keys(flat):
            schema, ptr = _property_schema(flat, key)
            out[key] = self.value(schema, ptr, flat.depth, key)
        self.add_entries(flat, out)
        return out

    def object_keys(self, flat: _Flat) -> list[str]:
        """Required keys, some optional ones, within min/maxProperties, in declaration order."""
        node = flat.node
        props: Mapping[str, Any] = node.get("properties") or {}
        required = list(dict.fromkeys(node.get("required") or ()))
        low, high = _count_bounds(node, "minProperties", "maxProperties", flat.ptr)
        if high is not None and len(required) > high:
            raise SchemaGenerationError(
                f"{len(required)} required properties but maxProperties {high}", pointer=flat.ptr
            )
        optional = [key for key in props if key not in required and props[key] is not False]
        chance = 0.0 if flat.minimal else max(0.3, _OPTIONAL_CHANCE - 0.1 * flat.depth)
        chosen = required + [key for key in optional if self.rng.random() < chance]
        chosen += [key for key in optional if key not in chosen][: max(0, low - len(chosen))]
        chosen = _with_dependencies(node, chosen)
        while high is not None and len(chosen) > high:
            chosen.remove(next(key for key in reversed(chosen) if key not in required))
        picked = set(chosen)
        return [key for key in props if key in picked] + [k for k in chosen if k not in props]

    def add_entries(self, flat: _Flat, out: dict[str, Any]) -> None:
        """Keys beyond `properties`: up to minProperties, or a few for map-like objects."""
        node = flat.node
        low, high = _count_bounds(node, "minProperties", "maxProperties", flat.ptr)
        wanted = low
        if _is_map(node) and not flat.minimal:
            wanted = max(low, len(out) + self.rng.randint(1, 3))
            wanted = wanted if high is None else min(wanted, high)
        for _ in range(4 * max(0, wanted - len(out))):
            if len(out) >= wanted:
                break
            key = self.extra_key(flat, out)
            if key is not None:
                schema, ptr = _property_schema(flat, key)
                out[key] = self.value(schema, ptr, flat.depth, key)
        if len(out) < low:
            raise SchemaGenerationError(
                f"cannot find {low} allowed property names (minProperties)", pointer=flat.ptr
            )

    def extra_key(self, flat: _Flat, taken: Mapping[str, Any]) -> str | None:
        node = flat.node
        patterns = list(node.get("patternProperties") or {})
        closed = node.get("additionalProperties", True) is False
        names = node.get("propertyNames", True)
        key: Any
        if patterns and (closed or self.rng.random() < 0.5):
            pattern = self.rng.choice(patterns)
            key = self.expand(pattern)
            if key is None or not _regex(pattern, flat.ptr).search(key):
                return None
        elif closed:
            return None
        elif names is not True:
            key = self.value(names, f"{flat.ptr}/propertyNames", flat.depth, "key")
        else:
            key = self.text("word")
        if not isinstance(key, str) or key in taken or key in (node.get("properties") or {}):
            return None
        return key if names is True or self.is_valid(names, key, flat.ptr) else None

    # --- arrays -----------------------------------------------------------------------------

    def array_value(self, flat: _Flat, name: str) -> list[Any]:
        node = flat.node
        prefix, rest = _array_layout(node)
        low, high = _count_bounds(node, "minItems", "maxItems", flat.ptr)
        if rest is False:
            high = len(prefix) if high is None else min(high, len(prefix))
        contains = node.get("contains")
        needed = 0 if contains is None else int(node.get("minContains", 1))
        low = max(low, needed)
        if high is not None and low > high:
            raise SchemaGenerationError(f"needs {low} items but at most {high}", pointer=flat.ptr)
        count = self.array_length(flat, low, high, len(prefix))
        # Forced `contains` matches can overshoot maxContains: every other retry, chance decides.
        if "maxContains" in node and flat.attempt % 2 == 1:
            needed = 0
        first = min(len(prefix), count - needed)  # `contains` items go after the tuple part
        seen: set[Any] | None = set() if node.get("uniqueItems") is True else None
        out: list[Any] = []
        for index in range(count):
            schema, ptr = _item_schema(flat, prefix, rest, index)
            if first <= index < first + needed:
                schema = {"allOf": [schema, contains]}
            item = self.array_item(schema, ptr, flat.depth, name, seen)
            if item is _MISSING:
                if len(out) >= low:
                    break
                raise SchemaGenerationError(
                    f"cannot find {low} distinct items (uniqueItems)", pointer=flat.ptr
                )
            out.append(item)
        return out

    def array_length(self, flat: _Flat, low: int, high: int | None, tuple_length: int) -> int:
        if flat.minimal:
            return low
        count = max(self.rng.randint(1, 3 if flat.depth < 2 else 2), tuple_length, low)
        return count if high is None else min(count, high)

    def array_item(
        self, schema: Any, ptr: str, depth: int, name: str, seen: set[Any] | None
    ) -> Any:
        for _ in range(_UNIQUE_TRIES):
            item = self.value(schema, ptr, depth, name)
            if seen is None:
                return item
            key = _freeze(item)
            if key not in seen:
                seen.add(key)
                return item
        return _MISSING

    # --- strings ----------------------------------------------------------------------------

    def string_value(self, flat: _Flat, name: str) -> str:
        node = flat.node
        low, high = _count_bounds(node, "minLength", "maxLength", flat.ptr)
        fmt = node.get("format") if node.get("format") in _FORMAT_MAKERS else None
        pattern = node.get("pattern")
        regex = None if pattern is None else _regex(pattern, flat.ptr)
        for candidate in self.string_candidates(flat, name, fmt, low, high):
            if _string_fits(candidate, low, high, regex, fmt):
                return candidate
        raise SchemaGenerationError(
            f"no string found with length {low}..{high}, format {fmt}, pattern {pattern!r}",
            pointer=flat.ptr,
        )

    def string_candidates(
        self, flat: _Flat, name: str, fmt: str | None, low: int, high: int | None
    ) -> Iterator[str]:
        """Plausible strings first, then ones built from the constraints; the caller checks."""
        preset = self.preset(flat.node)
        if isinstance(preset, str):
            yield preset
        if fmt is not None:
            kind = _string_kind(name)
            if kind is not None:  # a `birthday` with format date: a birth date, if well-formed
                yield self.text(kind)
            yield _FORMAT_MAKERS[fmt](self, True)
            yield _FORMAT_MAKERS[fmt](self, False)  # without Faker: always well-formed
        else:
            yield self.fit(self.plausible_text(name), low, high)
        pattern = flat.node.get("pattern")
        if pattern is not None:
            for _ in range(_PATTERN_TRIES):
                expanded = self.expand(pattern)
                if expanded is None:
                    break
                yield expanded
                yield self.fit(expanded, low, high)
        yield self.fit("", low, high)

    def plausible_text(self, name: str) -> str:
        if self.context and _is_query(name):
            return self.context
        kind = _string_kind(name)
        return self.text(kind) if kind is not None else self.text("sentence")

    def text(self, kind: str) -> str:
        """A string of a kind (`city`, `email`, ...): from Faker if it has one, else built in."""
        make = _FAKER_TEXT.get(kind)
        if self.faker is not None and make is not None:
            try:
                value = make(self.faker)
            except AttributeError:  # a provider missing for this Faker's locale
                value = None
            if isinstance(value, str) and value:
                return value
        return _BUILTIN_TEXT[kind](self)

    def fit(self, text: str, low: int, high: int | None) -> str:
        """`text` cut to `high` (at a word boundary when not too short), padded to `low`."""
        if high is not None and len(text) > high:
            cut = text[:high]
            space = cut.rfind(" ")
            if text[high] != " " and space >= max(low, high // 2):
                cut = cut[:space]
            text = cut.rstrip() if len(cut.rstrip()) >= low else cut
        parts = [text] if text else []
        length = len(text)
        while length < low:
            word = self.word()
            parts.append(word)
            length += len(word) + (1 if len(parts) > 1 else 0)
        text = " ".join(parts)
        return text if high is None else text[:high]

    def expand(self, pattern: str) -> str | None:
        if self._xeger is None:
            self._xeger = _Xeger(self.rng)
        try:
            return self._xeger.xeger(pattern)
        except Exception:  # rstr fails in many ways on regexes it cannot expand; we fall back
            return None

    # --- numbers, booleans, null --------------------------------------------------------------

    def integer_value(self, flat: _Flat, name: str) -> int:
        node = flat.node
        low, high = _integer_bounds(node, flat.ptr)
        step = node.get("multipleOf")
        preset = self.preset(node)
        if _is_integer(preset) and _integer_fits(preset, low, high, step):
            return int(preset)
        hint_low, hint_high, _ = _number_hint(name)
        a, b = _window(low, high, (hint_low, hint_high))
        target = self.rng.randint(math.ceil(a), max(math.ceil(a), math.floor(b)))
        if step is None:
            return target  # _window kept it inside the bounds
        for candidate in _multiples_near(target, step, low, high):
            if _is_integer(candidate) and _integer_fits(int(candidate), low, high, step):
                return int(candidate)
        raise SchemaGenerationError(
            f"no integer multiple of {step} between {low} and {high}", pointer=flat.ptr
        )

    def number_value(self, flat: _Flat, name: str) -> float | int:
        node = flat.node
        bounds = _number_bounds(node, flat.ptr)
        step = node.get("multipleOf")
        preset = self.preset(node)
        if _is_number(preset) and _number_fits(preset, bounds, step):
            return float(preset) if isinstance(preset, float) else int(preset)
        hint_low, hint_high, decimals = _number_hint(name)
        a, b = _window(bounds[0], bounds[2], (hint_low, hint_high))
        target = self.rng.uniform(a, b)
        candidates: Iterator[float | int]
        if step is None:
            candidates = _rounded_near(target, decimals, bounds)
        else:
            candidates = _multiples_near(target, step, bounds[0], bounds[2])
        for candidate in candidates:
            if _number_fits(candidate, bounds, step):
                return candidate
        raise SchemaGenerationError(f"no number satisfies {_bounds_text(node)}", pointer=flat.ptr)

    def boolean_value(self, flat: _Flat, name: str) -> bool:
        return self.rng.random() < 0.5

    def null_value(self, flat: _Flat, name: str) -> None:
        return None

    def preset(self, node: Mapping[str, Any]) -> Any:
        """Now and then, one of the schema's own `default` / `examples` values (caller checks)."""
        values = list(node.get("examples") or []) if isinstance(node.get("examples"), list) else []
        values += [node[key] for key in ("default", "example") if key in node]
        if not values or self.rng.random() >= _PRESET_CHANCE:
            return _MISSING
        return self.rng.choice(values)

    # --- small random pieces ---------------------------------------------------------------------

    def pick(self, options: Sequence[str]) -> str:
        return options[self.rng.randrange(len(options))]

    def word(self) -> str:
        return self.pick(_WORDS)

    def sentence(self, low: int = 4, high: int = 9) -> str:
        words = [self.word() for _ in range(self.rng.randint(low, high))]
        return " ".join(words).capitalize() + "."

    def hex(self, digits: int) -> str:
        return f"{self.rng.getrandbits(4 * digits):0{digits}x}"

    def date(self, first_year: int = 2018, last_year: int = 2026) -> dt.date:
        start = dt.date(first_year, 1, 1).toordinal()
        return dt.date.fromordinal(self.rng.randint(start, dt.date(last_year, 12, 31).toordinal()))

    def clock(self) -> str:
        rng = self.rng
        return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"

    def email(self) -> str:
        return f"{self.pick(_FIRST_NAMES)}.{self.pick(_LAST_NAMES)}@example.com".lower()

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ipv4(self) -> str:
        parts = (self.rng.randint(1, 223), *(self.rng.randint(0, 255) for _ in range(3)))
        return ".".join(map(str, parts))

    def duration(self) -> str:
        rng = self.rng
        return self.pick(
            (f"P{rng.randint(1, 30)}D", f"PT{rng.randint(1, 23)}H", f"PT{rng.randint(1, 59)}M",
             f"P{rng.randint(1, 6)}DT{rng.randint(1, 12)}H")
        )  # fmt: skip


_MAKERS: dict[str, Callable[[_Generator, _Flat, str], Any]] = {
    "object": _Generator.object_value,
    "array": _Generator.array_value,
    "string": _Generator.string_value,
    "integer": _Generator.integer_value,
    "number": _Generator.number_value,
    "boolean": _Generator.boolean_value,
    "null": _Generator.null_value,
}


# --- flattening: refs, allOf merging ---------------------------------------------------------


def _as_node(schema: Any, ptr: str) -> Mapping[str, Any]:
    if schema is True:
        return {}
    if schema is False:
        raise SchemaGenerationError("schema is `false`: no value is valid", pointer=ptr)
    if not isinstance(schema, Mapping):
        raise SchemaGenerationError(f"not a schema: {schema!r}", pointer=ptr)
    return schema


def _step(node: Any, part: str) -> Any:
    if isinstance(node, Mapping):
        return node.get(part, _MISSING)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return _MISSING


def _constrains(key: str) -> bool:
    return key not in _ANNOTATIONS and not key.startswith("x-")


def _merge_all(node: Mapping[str, Any], flat: _Flat) -> Mapping[str, Any]:
    merged: Mapping[str, Any] = {key: value for key, value in node.items() if key != "allOf"}
    for index, part in enumerate(node["allOf"]):
        merged = _merge(merged, _as_node(part, f"{flat.ptr}/allOf/{index}"), flat)
    return merged


def _merge(a: Mapping[str, Any], b: Mapping[str, Any], flat: _Flat) -> dict[str, Any]:
    """One schema requiring both `a` and `b`; what cannot be merged is deferred or checked."""
    out = dict(a)
    deferred: list[Mapping[str, Any]] = []
    if "if" in a and "if" in b:  # two conditionals: handle b's after a's
        deferred.append({key: b[key] for key in _CONDITIONAL if key in b})
        b = {key: value for key, value in b.items() if key not in _CONDITIONAL}
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
    out: dict[str, Any], key: str, value: Any, flat: _Flat, deferred: list[Mapping[str, Any]]
) -> None:
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
        out[key] = [v for v in current if any(_freeze(v) == _freeze(w) for w in value)]
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
    elif _constrains(key):
        flat.checks.append({key: value})  # pattern, format, multipleOf, prefixItems, ...


def _both(a: Any, b: Any) -> Any:
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
    if node.get("additionalProperties") is False and not node.get("patternProperties"):
        return set(node.get("properties") or {})
    return None


def _intersect_types(a: Any, b: Any, ptr: str) -> Any:
    left, right = _type_list(a), _type_list(b)
    both = [t for t in left if t in right or (t == "integer" and "number" in right)]
    both += [t for t in right if t == "integer" and "number" in left and t not in both]
    if not both:
        raise SchemaGenerationError(f"allOf requires type {left} and {right} at once", pointer=ptr)
    return both[0] if len(both) == 1 else both


def _finish(node: Mapping[str, Any], flat: _Flat) -> Mapping[str, Any]:
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


_FINISH_KEYS = frozenset(
    {"not", "maxContains", "dependentSchemas", "unevaluatedProperties", "unevaluatedItems"}
)


def _apply_not(out: dict[str, Any], negated: Any, flat: _Flat) -> None:
    flat.checks.append({"not": negated})
    if isinstance(negated, Mapping) and set(negated) == {"type"}:
        banned = _type_list(negated["type"])
        current = _type_list(out["type"]) if "type" in out else list(_ANY_ORDER)
        kept = [
            t for t in current if t not in banned and not (t == "integer" and "number" in banned)
        ]
        if not kept:
            raise SchemaGenerationError(
                f"`not` forbids every allowed type {current}", pointer=flat.ptr
            )
        out["type"] = kept


# --- objects and arrays: helpers -------------------------------------------------------------


def _property_schema(flat: _Flat, key: str) -> tuple[Any, str]:
    """The schema(s) a property must satisfy: its own, matching patterns, or additional."""
    node = flat.node
    props = node.get("properties") or {}
    schemas: list[Any] = []
    ptr = f"{flat.ptr}/properties/{_escape(key)}"
    if key in props:
        schemas.append(props[key])
    for pattern, schema in (node.get("patternProperties") or {}).items():
        if _regex(pattern, flat.ptr).search(key):
            schemas.append(schema)
            ptr = f"{flat.ptr}/patternProperties/{_escape(pattern)}"
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


def _array_layout(node: Mapping[str, Any]) -> tuple[list[Any], Any]:
    """(tuple item schemas, schema of the rest) in 2020-12 or draft-07 (`items: [...]`) style."""
    items = node.get("items", True)
    if isinstance(items, list):
        return items, node.get("additionalItems", True)
    return list(node.get("prefixItems") or ()), items


def _item_schema(flat: _Flat, prefix: list[Any], rest: Any, index: int) -> tuple[Any, str]:
    if index < len(prefix):
        return prefix[index], f"{flat.ptr}/prefixItems/{index}"
    return rest, f"{flat.ptr}/items"


def _count_bounds(
    node: Mapping[str, Any], low_key: str, high_key: str, ptr: str
) -> tuple[int, int | None]:
    low, high = node.get(low_key, 0), node.get(high_key)
    if not _is_number(low) or (high is not None and not _is_number(high)):
        raise SchemaGenerationError(f"{low_key}/{high_key} must be numbers", pointer=ptr)
    low = max(0, math.ceil(low))
    high = None if high is None else math.floor(high)
    if high is not None and low > high:
        raise SchemaGenerationError(f"{low_key} {low} > {high_key} {high}", pointer=ptr)
    return low, high


# --- strings: helpers ------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _regex(pattern: Any, ptr: str) -> re.Pattern[str]:
    compiled = _compiled(pattern) if isinstance(pattern, str) else None
    if compiled is None:
        raise SchemaGenerationError(f"invalid regular expression {pattern!r}", pointer=ptr)
    return compiled


def _string_fits(
    value: str, low: int, high: int | None, regex: re.Pattern[str] | None, fmt: str | None
) -> bool:
    if len(value) < low or (high is not None and len(value) > high):
        return False
    if regex is not None and not regex.search(value):
        return False
    return fmt is None or _format_ok(fmt, value)


def _format_ok(fmt: str, value: str) -> bool:
    check = _FORMAT_CHECKS.get(fmt)
    if check is None:
        return True
    try:
        return bool(check(value))
    except ValueError:
        return False


def _date_ok(value: str) -> bool:
    return len(value) == 10 and bool(dt.date.fromisoformat(value))


_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
_TIME = re.compile(r"\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")  # fmt: skip
_DURATION = re.compile(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?")

_FORMAT_CHECKS: dict[str, Callable[[str], object]] = {
    "date-time": lambda v: _DATE_TIME.fullmatch(v) and _date_ok(v[:10]),
    "date": _date_ok,
    "time": _TIME.fullmatch,
    "email": _EMAIL.fullmatch,
    "idn-email": _EMAIL.fullmatch,
    "uri": _URI.fullmatch,
    "url": _URI.fullmatch,
    "iri": _URI.fullmatch,
    "uuid": _UUID.fullmatch,
    "ipv4": ipaddress.IPv4Address,
    "ipv6": ipaddress.IPv6Address,
    "hostname": _HOSTNAME.fullmatch,
    "duration": _DURATION.fullmatch,
}

_FORMAT_MAKERS: dict[str, Callable[[_Generator, bool], str]] = {
    "date-time": lambda g, _: f"{g.date().isoformat()}T{g.clock()}Z",
    "date": lambda g, _: g.date().isoformat(),
    "time": lambda g, _: f"{g.clock()}Z",
    "email": lambda g, faker: g.text("email") if faker else g.email(),
    "idn-email": lambda g, faker: g.text("email") if faker else g.email(),
    "uri": lambda g, faker: g.text("url") if faker else f"https://example.com/{g.word()}",
    "url": lambda g, faker: g.text("url") if faker else f"https://example.com/{g.word()}",
    "iri": lambda g, faker: g.text("url") if faker else f"https://example.com/{g.word()}",
    "uri-reference": lambda g, _: f"/{g.word()}/{g.word()}",
    "iri-reference": lambda g, _: f"/{g.word()}/{g.word()}",
    "uri-template": lambda g, _: f"https://example.com/{g.word()}/{{id}}",
    "uuid": lambda g, _: g.uuid(),
    "ipv4": lambda g, _: g.ipv4(),
    "ipv6": lambda g, _: "2001:db8:" + ":".join(g.hex(4) for _ in range(6)),
    "hostname": lambda g, _: f"{g.word()}.example.com",
    "idn-hostname": lambda g, _: f"{g.word()}.example.com",
    "duration": lambda g, _: g.duration(),
    "json-pointer": lambda g, _: f"/{g.word()}/{g.rng.randint(0, 9)}",
    "relative-json-pointer": lambda g, _: f"{g.rng.randint(0, 3)}/{g.word()}",
    "regex": lambda g, _: f"^{g.word()}[0-9]*$",
    "byte": lambda g, _: "".join(g.pick("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef") for _ in range(8)),
    "password": lambda g, _: f"{g.word().capitalize()}{g.rng.randint(100, 999)}!",
}


# --- numbers: helpers ------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()


_Bounds = tuple[float | None, bool, float | None, bool]  # low, low exclusive, high, high excl.


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
        if bound is not None and not _is_number(bound):
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
    if not _is_number(step) or step <= 0:
        return False
    if isinstance(step, float):
        quotient = value / step
        try:
            return int(quotient) == quotient
        except OverflowError:
            return (Fraction(value) / Fraction(step)).denominator == 1
    return bool(value % step == 0)


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
    target: float, step: Any, low: float | None, high: float | None
) -> Iterator[float | int]:
    """Multiples of `step` near `target` (exact decimal products), clamped into the bounds."""
    if not _is_number(step) or step <= 0:
        return
    exact = Decimal(str(step))
    center = round(target / step)
    if low is not None:
        center = max(center, math.ceil(low / step))
    if high is not None:
        center = min(center, math.floor(high / step))
    for offset in range(40):  # a few neighbours: float rounding can reject a multiple
        for k in (center + offset, center - offset - 1):
            value = Decimal(k) * exact
            yield int(value) if value == value.to_integral_value() else float(value)


@lru_cache(maxsize=512)
def _number_hint(name: str) -> tuple[float, float, int]:
    """A plausible (low, high, decimals) for a number named `name` (`age`, `price`, ...)."""
    for token in reversed(_tokens(name)):
        hint = _NUMBER_HINTS.get(_singular(token))
        if hint is not None:
            return hint
    return 0, 100, 2


# --- names: what a property is about ---------------------------------------------------------


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_QUERY_WORDS = frozenset({"query", "q", "question", "search", "prompt", "text", "input"})


@lru_cache(maxsize=1024)
def _tokens(name: str) -> tuple[str, ...]:
    return tuple(t for t in re.split(r"[^a-z0-9]+", _CAMEL.sub("_", name).lower()) if t)


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def _is_query(name: str) -> bool:
    tokens = _tokens(name)
    return bool(tokens) and tokens[-1] in _QUERY_WORDS  # singular only: not a list of queries


@lru_cache(maxsize=1024)
def _string_kind(name: str) -> str | None:
    """The kind of text a string property holds, judging by its name, or None."""
    tokens = tuple(_singular(t) for t in _tokens(name))
    if len(tokens) >= 2 and (kind := _PAIR_KINDS.get(tokens[-2:])) is not None:
        return kind
    if len(tokens) >= 2 and tokens[-1] in ("at", "on"):  # created_at, updated_on
        return "datetime"
    for token in reversed(tokens):
        if token in _WORD_KINDS:
            return _WORD_KINDS[token]
    return None


def _kinds(**groups: str) -> dict[str, str]:
    """{word: kind} from kind=space-separated-words, to keep the table readable."""
    return {word: kind for kind, words in groups.items() for word in words.split()}


_WORD_KINDS = _kinds(
    name="name fullname author owner customer person contact recipient sender assignee",
    first_name="firstname forename",
    last_name="lastname surname",
    user_name="username login handle user",
    email="email mail",
    phone="phone mobile telephone tel fax",
    city="city town location place destination origin",
    country="country",
    state="state province region",
    address="address",
    street="street",
    postcode="zip zipcode postcode postal",
    company="company organization organisation org employer business vendor brand manufacturer "
    "publisher supplier",
    url="url uri website homepage link href",
    domain="domain host hostname",
    date="date",
    birthdate="birthday birthdate dob",
    datetime="datetime timestamp",
    time="time",
    title="title headline subject heading caption",
    sentence="description summary bio about comment note message content body reason explanation "
    "detail answer response feedback review instruction text reasoning rationale justification "
    "query question prompt input search",
    id="id identifier",
    uuid="uuid guid",
    currency="currency",
    language="language",
    language_code="lang",
    locale="locale",
    color="color colour",
    job="job occupation profession",
    word="word keyword tag label category topic genre type kind",
    timezone="timezone tz",
    ipv4="ip",
    slug="slug",
    password="password",
    token="token secret key",
    code="code sku",
    version="version",
    file_name="filename file",
    file_path="path filepath",
    status="status",
)
_PAIR_KINDS: dict[tuple[str, ...], str] = {
    ("first", "name"): "first_name", ("given", "name"): "first_name",
    ("middle", "name"): "first_name", ("last", "name"): "last_name",
    ("family", "name"): "last_name", ("full", "name"): "name", ("display", "name"): "name",
    ("user", "name"): "user_name", ("file", "name"): "file_name", ("company", "name"): "company",
    ("city", "name"): "city", ("country", "name"): "country", ("street", "name"): "street",
    ("country", "code"): "country_code", ("currency", "code"): "currency",
    ("language", "code"): "language_code", ("lang", "code"): "language_code",
    ("postal", "code"): "postcode", ("zip", "code"): "postcode", ("phone", "number"): "phone",
    ("email", "address"): "email", ("ip", "address"): "ipv4", ("street", "address"): "street",
    ("home", "page"): "url", ("web", "site"): "url",
}  # fmt: skip

_NUMBER_HINTS: dict[str, tuple[float, float, int]] = {
    "age": (18, 80, 0), "year": (1990, 2030, 0), "month": (1, 12, 0), "day": (1, 28, 0),
    "hour": (0, 23, 0), "minute": (0, 59, 0), "second": (0, 59, 0),
    "price": (1, 500, 2), "cost": (1, 500, 2), "amount": (1, 500, 2), "total": (1, 1000, 2),
    "fee": (1, 50, 2), "balance": (0, 5000, 2), "salary": (30000, 150000, 0),
    "budget": (100, 10000, 0), "quantity": (1, 10, 0), "qty": (1, 10, 0), "count": (1, 10, 0),
    "num": (1, 10, 0), "limit": (1, 20, 0), "page": (1, 5, 0), "k": (1, 10, 0),
    "latitude": (-90, 90, 4), "lat": (-90, 90, 4), "longitude": (-180, 180, 4),
    "lng": (-180, 180, 4), "lon": (-180, 180, 4), "rating": (1, 5, 1), "star": (1, 5, 0),
    "score": (0, 100, 1), "percent": (0, 100, 1), "percentage": (0, 100, 1),
    "temperature": (-10, 35, 1), "temp": (-10, 35, 1), "confidence": (0, 1, 2),
    "probability": (0, 1, 2), "weight": (1, 100, 1), "id": (1, 1000, 0), "distance": (1, 100, 1),
    "duration": (1, 120, 0),
}  # fmt: skip


# --- text: Faker when available, small built-in lists otherwise --------------------------------


_FAKER_TEXT: dict[str, Callable[[Any], Any]] = {
    "name": lambda f: f.name(),
    "first_name": lambda f: f.first_name(),
    "last_name": lambda f: f.last_name(),
    "user_name": lambda f: f.user_name(),
    "email": lambda f: f.email(),
    "phone": lambda f: f.phone_number(),
    "city": lambda f: f.city(),
    "country": lambda f: f.country(),
    "country_code": lambda f: f.country_code(),
    "state": lambda f: f.state(),
    "address": lambda f: f.address().replace("\n", ", "),
    "street": lambda f: f.street_address(),
    "postcode": lambda f: f.postcode(),
    "company": lambda f: f.company(),
    "url": lambda f: f.url(),
    "domain": lambda f: f.domain_name(),
    "date": lambda f: f.date(),
    "birthdate": lambda f: f.date_of_birth().isoformat(),
    "title": lambda f: f.sentence(nb_words=4).rstrip("."),
    "sentence": lambda f: f.sentence(),
    "currency": lambda f: f.currency_code(),
    "language": lambda f: f.language_name(),
    "language_code": lambda f: f.language_code(),
    "locale": lambda f: f.locale(),
    "color": lambda f: f.color_name(),
    "job": lambda f: f.job(),
    "word": lambda f: f.word(),
    "timezone": lambda f: f.timezone(),
    "slug": lambda f: f.slug(),
    "file_name": lambda f: f.file_name(),
    "file_path": lambda f: f.file_path(),
}

_WORDS = (
    "alpha", "amber", "anchor", "apple", "bright", "cedar", "cloud", "coral", "delta", "ember",
    "field", "forest", "garden", "harbor", "island", "lemon", "maple", "meadow", "north", "ocean",
    "orbit", "pebble", "river", "silver", "stone", "summit", "valley", "willow", "winter", "zephyr",
)  # fmt: skip
_FIRST_NAMES = ("Alice", "Bruno", "Chen", "Dana", "Elena", "Farid", "Grace", "Hiro", "Ines")
_LAST_NAMES = ("Garcia", "Smith", "Okafor", "Novak", "Tanaka", "Dubois", "Kowalski", "Silva")
_CITIES = ("Lisbon", "Toronto", "Osaka", "Nairobi", "Oslo", "Austin", "Lyon", "Melbourne", "Pune")
_LISTS: dict[str, tuple[str, ...]] = {
    "first_name": _FIRST_NAMES,
    "last_name": _LAST_NAMES,
    "city": _CITIES,
    "country": ("Portugal", "Canada", "Japan", "Kenya", "Norway", "France", "Brazil", "India"),
    "country_code": ("PT", "CA", "JP", "KE", "NO", "FR", "BR", "IN", "US", "DE"),
    "state": ("California", "Ontario", "Bavaria", "Queensland", "Texas", "Quebec"),
    "company": ("Acme Corp", "Globex", "Initech", "Umbrella Labs", "Stark Industries", "Hooli"),
    "currency": ("USD", "EUR", "GBP", "JPY", "CAD", "CHF", "AUD"),
    "language": ("English", "French", "Spanish", "Japanese", "German", "Portuguese"),
    "language_code": ("en", "fr", "es", "ja", "de", "pt"),
    "locale": ("en_US", "fr_FR", "es_ES", "ja_JP", "de_DE", "pt_BR"),
    "color": ("red", "blue", "green", "orange", "purple", "teal", "black"),
    "job": ("Engineer", "Teacher", "Designer", "Nurse", "Accountant", "Chef", "Pilot"),
    "timezone": ("UTC", "Europe/Lisbon", "America/New_York", "Asia/Tokyo", "Africa/Nairobi"),
    "status": ("active", "pending", "completed", "archived"),
    "word": _WORDS,
}


def _picker(options: Sequence[str]) -> Callable[[_Generator], str]:
    return lambda g: g.pick(options)


def _builtin_texts() -> dict[str, Callable[[_Generator], str]]:
    texts = {kind: _picker(options) for kind, options in _LISTS.items()}
    texts.update(
        name=lambda g: f"{g.pick(_FIRST_NAMES)} {g.pick(_LAST_NAMES)}",
        user_name=lambda g: f"{g.pick(_FIRST_NAMES).lower()}{g.rng.randint(1, 99)}",
        email=_Generator.email,
        phone=lambda g: f"+1-555-{g.rng.randint(100, 999)}-{g.rng.randint(1000, 9999)}",
        address=lambda g: f"{g.rng.randint(1, 999)} {g.word().capitalize()} St, {g.pick(_CITIES)}",
        street=lambda g: f"{g.rng.randint(1, 999)} {g.word().capitalize()} Street",
        postcode=lambda g: str(g.rng.randint(10000, 99999)),
        url=lambda g: f"https://example.com/{g.word()}",
        domain=lambda g: f"{g.word()}.example.com",
        date=lambda g: g.date().isoformat(),
        birthdate=lambda g: g.date(1950, 2005).isoformat(),
        datetime=lambda g: f"{g.date().isoformat()}T{g.clock()}Z",
        time=lambda g: g.clock()[:5],
        title=lambda g: g.sentence(2, 4).rstrip(".").title(),
        sentence=_Generator.sentence,
        id=lambda g: g.hex(8),
        uuid=_Generator.uuid,
        ipv4=_Generator.ipv4,
        slug=lambda g: f"{g.word()}-{g.word()}-{g.word()}",
        password=lambda g: f"{g.word().capitalize()}{g.rng.randint(100, 999)}!",
        token=lambda g: g.hex(16),
        code=lambda g: "".join(g.pick(string.ascii_uppercase + string.digits) for _ in range(6)),
        version=lambda g: f"{g.rng.randint(0, 3)}.{g.rng.randint(0, 20)}.{g.rng.randint(0, 9)}",
        file_name=lambda g: f"{g.word()}.{g.pick(('pdf', 'txt', 'csv', 'png'))}",
        file_path=lambda g: f"/data/{g.word()}/{g.word()}.{g.pick(('pdf', 'txt', 'csv'))}",
    )
    return texts


_BUILTIN_TEXT = _builtin_texts()


# --- JSON values -----------------------------------------------------------------------------


def _type_list(declared: Any) -> list[str]:
    return [declared] if isinstance(declared, str) else list(declared)


def _has_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return _is_integer(value)
    if kind == "number":
        return _is_number(value)
    checks: dict[str, Callable[[Any], bool]] = {
        "null": lambda v: v is None,
        "boolean": lambda v: isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "array": lambda v: isinstance(v, (list, tuple)),
        "object": lambda v: isinstance(v, Mapping),
    }
    return kind in checks and checks[kind](value)


def _infer_type(node: Mapping[str, Any]) -> str:
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


def _freeze(value: Any) -> Any:
    """A hashable stand-in with JSON equality: 1 == 1.0, but true != 1."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, Mapping):
        return ("object", frozenset((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return ("array", tuple(_freeze(item) for item in value))
    return ("value", value)


def _plain(value: Any) -> Any:
    """A fresh JSON value (dicts and lists), so callers may mutate what the schema holds."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
