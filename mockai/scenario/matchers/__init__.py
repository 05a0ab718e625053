"""`match:` conditions: one class per key, self-registering into a read-only registry.

Each class declares the `match` key it handles (`class User(Matcher, key="user")`); defining two
classes for one key is an error naming both. `compile` turns the YAML value into one or more
conditions (a `headers` or `body` block gives one per header or leaf, so a near-miss report can say
exactly which field failed). The hot path calls `predicate()`'s plain function, built once per
condition with everything it needs bound; the other methods serve diagnostics (`expected`,
`actual`, `distance`) and the load-time shadowing check (`implies`).

    base      Matcher, the registry, text distances
    values    endpoint, model, stream, has_tool_result, turn, tools
    texts     user, system, tool_result, file
    fields    headers, body
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mockai.scenario.matchers import fields, texts, values  # noqa: F401  (they register)
from mockai.scenario.matchers.base import REGISTRY, Matcher
from mockai.scenario.problems import Problems, describe, suggest
from mockai.scenario.yamlsrc import line_of

__all__ = ["REGISTRY", "Matcher", "compile_match"]


def compile_match(value: Any, line: int, where: str, problems: Problems) -> list[Matcher] | None:
    """Every condition of a `match` block (None when the block itself is invalid)."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        problems.add(
            line,
            f"{where}: match must be a mapping of conditions (such as {{user: hi}}), "
            f"got {describe(value)}",
        )
        return None
    conditions: list[Matcher] = []
    for key, item in value.items():
        spot = line_of(value, key)
        kind = REGISTRY.get(key)
        if kind is None:
            problems.add(
                spot,
                f"unknown match key '{key}' in {where}" + suggest(key, REGISTRY, noun="match keys"),
            )
            continue
        conditions.extend(kind.compile(item, spot, f"{where} match", problems))
    return conditions
