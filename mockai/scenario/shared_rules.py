"""Runtime rules kept in the shared state (`--state redis://`), as one server reads them.

Another server (another host, another mockai version) checked a shared rule before posting it;
this one compiles it again and may not be able to (a picture file only that host has, a match key
its version does not know). Such a rule is not served here but stays listed, with its problem,
and deletable (`Unserved`); each is logged once. Helpers of `book.RuleBook`'s shared paths.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from mockai.wire import jsonbytes

if TYPE_CHECKING:
    from mockai.scenario.rules import Rule

log = logging.getLogger("mockai")


class Unserved(NamedTuple):
    """A runtime rule in the shared state that this server does not serve: it does not compile
    here (a file only another host has, a key of another mockai version) or it takes the name
    of one of this server's scenario rules. It stays listed, and deletable, by its definition."""

    name: str
    origin: str
    problem: str


def compile_definition(definition: Any) -> Rule | Unserved:
    """A shared definition (`{"name", "file", "rule"}`) as a rule, or why it is not one here."""
    from mockai.scenario.problems import Problems
    from mockai.scenario.rules import compile_rule

    name = definition_name(definition)
    file = definition.get("file") if isinstance(definition, dict) else None
    origin = file if isinstance(file, str) else "<shared>"
    problems = Problems(origin)
    try:
        compiled = compile_rule(
            definition["rule"], file=origin, line=0, name=name, kind="rule", problems=problems
        )
    except Exception as error:  # (data another process wrote: it must not break this one)
        detail = f"{type(error).__name__}: {error}"
        return Unserved(name, origin, f"is not a rule this mockai version reads ({detail})")
    if problems or compiled is None:
        text = "; ".join(p.message for p in problems.items) or "does not compile"
        return Unserved(name, origin, f"does not compile here: {text}")
    return compiled


def definition_name(definition: Any) -> str:
    """A shared definition's name (`?` when it has none: written by something else)."""
    name = definition.get("name") if isinstance(definition, dict) else None
    return name if isinstance(name, str) else "?"


def clash(name: str, first: str) -> str:
    return f"is not served here: the rule at {first} has the name '{name}' (rule names are unique)"


def taken(name: str, origin: str) -> str:
    return (
        f"rule '{name}' takes the name of a runtime rule in the shared state (added at {origin});"
        f" rename it, or remove that rule first (DELETE /_mockai/rules/{name})"
    )


def report(reports: Sequence[str]) -> None:
    """Log shared runtime rules this server skips (each once: see `RuleBook._take`)."""
    if reports:
        log.warning(
            "mockai: shared runtime rule(s) not served by this server (still listed, and"
            " deletable):\n%s",
            "\n".join(f"  {line}" for line in reports),
        )


def own_name(value: Any) -> str | None:
    """The name a runtime rule gives itself (checked when it compiles), or None."""
    name = value.get("name") if isinstance(value, Mapping) else None
    return name if isinstance(name, str) else None


def shareable(value: Any) -> Any:
    """A rule as JSON data (what a shared backend keeps); ScenarioError if it is not data."""
    try:
        return jsonbytes.loads(jsonbytes.dumps(value))
    except (TypeError, ValueError):
        from mockai.scenario.problems import Problems

        problems = Problems("<runtime>")
        problems.add(0, "rules shared through --state must be JSON data (strings, numbers, ...)")
        problems.raise_if_any()
        raise
