"""The state of one `instance()` call, and the step every node goes through.

`Generator.value` flattens a node (`$ref`, `anyOf`/`oneOf`, `allOf`, `if` resolved into one dict),
generates a value of one of its types, checks what flattening could not fold in, and retries a
few times when that check fails. The makers for each type live in their own modules.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mockai import regexes
from mockai.generate.schema import (
    arrays,
    checks,
    combinators,
    numbers,
    objects,
    patterns,
    resolve,
    strings,
)
from mockai.generate.schema.nodes import (
    ANY_ORDER,
    ATTEMPTS,
    BUDGET,
    CHARS_PER_TOKEN,
    LEAN_SIZE,
    NULL_CHANCE,
    TYPES,
    Flat,
    SchemaGenerationError,
    as_node,
    constrains,
    has_type,
    infer_type,
    plain,
    type_list,
)
from mockai.regexes import RegexTimeout

if TYPE_CHECKING:
    from faker import Faker

    from mockai.generate.schema.xeger import Xeger


class Generator:
    """The state of one `instance()` call: root schema, RNG, Faker, a work and a size budget."""

    def __init__(
        self,
        root: Mapping[str, Any],
        rng: random.Random,
        faker: Faker | None,
        context: str,
        size: int | None = None,
    ) -> None:
        # Annotated: the modules of the type makers refer back to this class (for type checking
        # only), and mypy cannot infer attribute types through that cycle.
        self.root: Mapping[str, Any] = root
        self.rng: random.Random = rng
        self.faker: Faker | None = faker
        self.context: str = " ".join(context.split())  # one line: it becomes a JSON string value
        self.budget: int = BUDGET
        self.xeger: Xeger | None = None  # made on first use, see patterns.expand
        self._validator: Any = None
        self.steps: checks.Steps = checks.Steps()  # what the value's checks may still walk
        self.refs: list[Any] = []  # the `$ref`s followed on the way to the node being made
        # The size budget, in (under-estimated) tokens of the value's JSON: the answer it becomes
        # is cut at the output-token limit anyway, so once that much is made, nothing more is
        # (a schema may ask for 150,000 strings of 1,000 characters). None: unbounded. What is
        # spent is counted either way: past LEAN_SIZE the rest of the value is built lean.
        self.size: int | None = size
        self.spent = 0

    def generate(self) -> Any:
        # Patterns come from the client: their searches share one time budget (regexes), so
        # a schema of a thousand costly patterns answers in bounded time too.
        with regexes.budget():
            return self.value(self.root, "#", 0, "")

    # --- the size budget -------------------------------------------------------------------------

    @property
    def exhausted(self) -> bool:
        """True once the value made so far is as long as the answer can be (the rest is cut)."""
        return self.size is not None and self.spent >= self.size

    @property
    def lean(self) -> bool:
        """True once the value made so far is long enough that the rest is built lean."""
        return self.spent >= LEAN_SIZE

    def room(self) -> int | None:
        """Characters a string may still have before the budget runs out (None: unbounded)."""
        if self.size is None:
            return None
        return max(self.size - self.spent, 0) * CHARS_PER_TOKEN + CHARS_PER_TOKEN

    def _charge(self, value: Any) -> None:
        """Count `value`'s own JSON tokens (its children were counted when they were made)."""
        if isinstance(value, str):
            self.spent += len(value) // CHARS_PER_TOKEN + 1
        elif isinstance(value, dict):
            self.spent += 1 + sum(len(key) // CHARS_PER_TOKEN + 1 for key in value)
        else:  # a number, true, false, null; or a list's brackets (its commas often share a
            self.spent += 1  # token with the next item: `,true` is one)

    # --- one node: flatten, generate, check, retry -----------------------------------------------

    def value(
        self, schema: Any, ptr: str, depth: int, name: str, avoid: set[Any] | None = None
    ) -> Any:
        """A value for `schema` (at JSON pointer `ptr`), `name` being its property name; not one
        of `avoid` (frozen values) if the maker can steer clear of them (numbers do).

        Past the size budget, values are no longer checked (what they do not satisfy is cut off
        with them) and new ones are None: the caller sends the answer cut at its token limit.
        """
        if self.exhausted:
            return None
        self.budget -= 1
        if self.budget < 0:
            raise SchemaGenerationError(
                f"gave up after {BUDGET} sub-values: too much backtracking", pointer=ptr
            )
        mark = len(self.refs)
        try:
            return self._attempts(schema, ptr, depth, name, avoid)
        finally:
            del self.refs[mark:]  # this node's `$ref`s are off the path again

    def _attempts(
        self, schema: Any, ptr: str, depth: int, name: str, avoid: set[Any] | None
    ) -> Any:
        """`value`'s tries at one node, each from the same path of `$ref`s."""
        mark = len(self.refs)
        error: SchemaGenerationError | None = None
        for attempt in range(ATTEMPTS):
            del self.refs[mark:]
            flat = Flat({}, ptr, depth, attempt, lean=self.lean, avoid=avoid, refs=self.refs)
            try:
                self.flatten(schema, flat)
                value = self.flat_value(flat, name)
            except SchemaGenerationError as exc:
                if not (flat.branched or flat.checks):
                    raise  # nothing would be chosen differently on a retry
                error = exc
                continue
            if self.exhausted or all(self.is_valid(check, value, ptr) for check in flat.checks):
                self._charge(value)
                return value
            keywords = ", ".join(sorted({key for check in flat.checks for key in check}))
            error = SchemaGenerationError(f"no value found that satisfies {keywords}", pointer=ptr)
        raise error if error is not None else SchemaGenerationError("no value", pointer=ptr)

    def flatten(self, schema: Any, flat: Flat) -> None:
        """Reduce `schema` into `flat.node`, one combinator at a time, until none is left."""
        node = as_node(schema, flat.ptr)
        merged: set[str] = set()  # `dependentSchemas` keys merged already (a schema of one
        # may `$ref` back to the node: merged once, it is still checked on the value)
        while True:
            if "$ref" in node:
                node = resolve.follow_ref(self.root, node, flat)
            elif "$dynamicRef" in node or "$recursiveRef" in node:
                node = resolve.follow_dynamic_ref(self.root, node, flat, self.anchors)
            elif "anyOf" in node or "oneOf" in node:
                node = combinators.pick_branch(self.rng, node, flat)
            elif "allOf" in node and not combinators.condition_first(node):
                node = resolve.merge_all(node, flat)
            elif "if" in node:
                node = combinators.pick_condition(self.rng, node, flat)
            elif due := resolve.dependents_due(node, merged):
                merged.update(due)
                node = resolve.merge_dependents(node, due, flat)
            else:
                break
        flat.node = combinators.finish(node, flat)

    @cached_property
    def anchors(self) -> dict[str, str] | None:
        """`resolve.anchors` of the root schema, found on first use (a `$dynamicRef`)."""
        return resolve.anchors(self.root)

    def is_valid(self, schema: Any, value: Any, ptr: str) -> bool:
        """jsonschema's verdict on `value` against a part of the root schema (within the
        generation's check steps: see `checks`)."""
        if self._validator is None:
            self._validator = checks.validator_class()(self.root)
        try:
            with checks.drawing_on(self.steps):
                return bool(self._validator.evolve(schema=schema).is_valid(value))
        except RegexTimeout as exc:  # a `pattern` the value was checked against backtracks
            raise patterns.refuse(exc, ptr) from None
        except checks.TooCostly:
            raise SchemaGenerationError(
                "the schema is too costly to check: checking the value walked more than "
                f"{checks.CHECK_STEPS:,} `$ref`s and `allOf` / `anyOf` / `oneOf` branches",
                pointer=ptr,
            ) from None
        except Exception as exc:  # bad regex, unresolvable ref, ...: jsonschema's many errors
            raise SchemaGenerationError(f"cannot evaluate {schema!r}: {exc}", pointer=ptr) from exc

    # --- a flat node -----------------------------------------------------------------------------

    def flat_value(self, flat: Flat, name: str) -> Any:
        node = flat.node
        # A `const` is an enum of one: held to the node's other keywords as well, so that
        # `{"type": "integer", "const": "abc"}` is refused rather than answered with "abc".
        if "const" in node:
            return self.listed_value(flat, [node["const"]], "const")
        if "enum" in node:
            return self.listed_value(flat, list(node["enum"]), "enum")
        error: SchemaGenerationError | None = None
        for kind in self.type_order(flat):
            try:
                return _MAKERS[kind](self, flat, name)
            except SchemaGenerationError as exc:
                error = exc  # another allowed type may still work
        raise error if error is not None else SchemaGenerationError("no type", pointer=flat.ptr)

    def listed_value(self, flat: Flat, values: list[Any], keyword: str) -> Any:
        """One of the `values` that `keyword` (`enum`, `const`) lists which the node's other
        keywords allow too (a `const` beside an `enum` must be one of its values)."""
        node = flat.node
        if "type" in node:
            kinds = type_list(node["type"])
            values = [v for v in values if any(has_type(v, kind) for kind in kinds)]
        if any(constrains(key) for key in node if key not in (keyword, "type", "nullable")):
            values = [v for v in values if self.is_valid(node, v, flat.ptr)]
        if not values:
            raise SchemaGenerationError(
                f"no {keyword} value satisfies the other constraints", pointer=flat.ptr
            )
        if keyword == "const":  # (drawing nothing: the values after it stay as they were)
            return plain(values[0])
        return plain(self.rng.choice(values))

    def type_order(self, flat: Flat) -> list[str]:
        """The types to try, most plausible first."""
        node = flat.node
        declared = node.get("type")
        if declared is None:
            kind = infer_type(node)
            if kind != "any":
                return [kind]
            start = flat.attempt % len(ANY_ORDER)  # retries of a failed `not` try other types
            return [*ANY_ORDER[start:], *ANY_ORDER[:start]]
        kinds = type_list(declared)
        unknown = [kind for kind in kinds if kind not in TYPES]
        if unknown or not kinds:
            raise SchemaGenerationError(f"unsupported type {declared!r}", pointer=flat.ptr)
        solid = [kind for kind in kinds if kind != "null"]
        if len(solid) > 1:
            self.rng.shuffle(solid)
        if len(solid) < len(kinds):
            null_first = flat.minimal or self.rng.random() < NULL_CHANCE
            solid = ["null", *solid] if null_first else [*solid, "null"]
        elif node.get("nullable") is True:
            solid.append("null")
        return solid


def boolean_value(gen: Generator, flat: Flat, name: str) -> bool:
    return gen.rng.random() < 0.5


def null_value(gen: Generator, flat: Flat, name: str) -> None:
    return None


_MAKERS: dict[str, Callable[[Generator, Flat, str], Any]] = {
    "object": objects.object_value,
    "array": arrays.array_value,
    "string": strings.string_value,
    "integer": numbers.integer_value,
    "number": numbers.number_value,
    "boolean": boolean_value,
    "null": null_value,
}
