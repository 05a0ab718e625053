"""Checks of made values against parts of the schema (jsonschema), within a bound on their work.

Checking a value walks the schema, and a `$ref` is walked again wherever it is referred to: a
2 KB schema whose every level is `oneOf: [{$ref: next}, {allOf: [{$ref: next}, ...]}]` makes
one check of a three-letter string walk 2^depth nodes (depth 18: ~20 s of CPU). Only shared
subschemas multiply the work (a schema without `$ref`s is walked at most once per value node),
so the walk is bounded by counting the keywords that enter subschemas again: `$ref`,
`$dynamicRef`, `allOf`, `anyOf`, `oneOf`. One generated value's checks share CHECK_STEPS of
them; past that, the check raises TooCostly (the generator refuses the schema). A count, not a
clock: the same request gets the same answer on a loaded machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from mockai import regexes

# ~10 us each (jsonschema's dispatch and a descent), so ~0.5 s of checking per value at most.
# Ordinary schemas take far fewer: a pydantic model's checks of a whole value, a few hundred.
CHECK_STEPS = 50_000
_COUNTED = ("$ref", "$dynamicRef", "allOf", "anyOf", "oneOf")


class TooCostly(Exception):
    """A value's checks ran past CHECK_STEPS: the schema is too costly to check."""


class Steps:
    """What is left of one generated value's CHECK_STEPS."""

    __slots__ = ("left",)

    def __init__(self, left: int = CHECK_STEPS) -> None:
        self.left = left


_steps: ContextVar[Steps | None] = ContextVar("mockai_check_steps", default=None)


@contextmanager
def drawing_on(steps: Steps) -> Iterator[None]:
    """The checks made inside count against `steps` (outside any, checks are unbounded)."""
    token = _steps.set(steps)
    try:
        yield
    finally:
        _steps.reset(token)


@lru_cache(maxsize=1)
def validator_class() -> Any:
    """jsonschema's 2020-12 validator with bounded regex searches (timeouts raise) and counted
    steps."""
    from jsonschema import Draft202012Validator, validators  # (on first use: slow to import)

    bounded = regexes.validator_class(Draft202012Validator, raise_timeouts=True)
    counted = {key: _counted(bounded.VALIDATORS[key]) for key in _COUNTED}
    return validators.extend(bounded, counted)


def _counted(keyword: Any) -> Any:
    def step(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        steps = _steps.get()
        if steps is not None:
            steps.left -= 1
            if steps.left < 0:
                raise TooCostly
        return keyword(validator, value, instance, schema)

    return step
