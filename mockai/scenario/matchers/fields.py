"""Conditions on the raw request: headers (one per header) and body (one per leaf)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, ClassVar

from mockai.pipeline.exchange import Exchange
from mockai.scenario.matchers.base import Matcher, shorten, text_distance
from mockai.scenario.operators import TextTest, compile_text
from mockai.scenario.problems import Problems, describe
from mockai.scenario.yamlsrc import line_of


@dataclass(frozen=True)
class Header(Matcher, key="headers"):
    """`headers: {x-test-case: {equals: abc}}`: one condition per header (names ignore case)."""

    name: str
    test: TextTest
    cost: ClassVar[int] = 2

    @classmethod
    def compile(cls, value: Any, line: int, where: str, problems: Problems) -> list[Matcher]:
        if not isinstance(value, Mapping) or not value:
            problems.add(
                line,
                f"{where}.headers must be a mapping of header names to conditions, "
                f"got {describe(value)}",
            )
            return []
        out: list[Matcher] = []
        for name, condition in value.items():
            spot = line_of(value, name)
            test = compile_text(condition, f"{where}.headers.{name}", spot, problems)
            if test is not None:
                out.append(cls(spot, str(name).lower(), test))
        return out

    @property
    def subject(self) -> str:
        return f"headers.{self.name}"

    def value(self, exchange: Exchange) -> str | None:
        headers = exchange.headers
        found = headers.get(self.name)
        if found is None and not hasattr(headers, "getall"):  # a plain dict: match names loosely
            found = next((v for k, v in headers.items() if k.lower() == self.name), None)
        return found

    def holds(self, exchange: Exchange) -> bool:
        found = self.value(exchange)
        return self.test.negate if found is None else self.test.test(found)

    def expected(self) -> str:
        return self.test.describe()

    def actual(self, exchange: Exchange) -> str:
        found = self.value(exchange)
        return "(absent)" if found is None else shorten(found)

    def implies(self, other: Matcher) -> bool:
        return (
            isinstance(other, Header) and other.name == self.name and self.test.implies(other.test)
        )

    def distance(self, exchange: Exchange) -> float:
        return 0.0 if self.holds(exchange) else text_distance(self.test, self.value(exchange))


_ABSENT: Any = object()


@dataclass(frozen=True)
class BodyField(Matcher, key="body"):
    """`body: {temperature: 0, response_format: {type: json_schema}}`: a subset of the JSON body.

    Nested mappings match as subsets, lists and scalars by equality (`true` is not `1`). One
    condition per leaf, so a no-match report names the exact field.
    """

    path: tuple[str, ...]
    wanted: Any  # a scalar, a list, or {} ("any mapping")
    cost: ClassVar[int] = 2

    @classmethod
    def compile(cls, value: Any, line: int, where: str, problems: Problems) -> list[Matcher]:
        if not isinstance(value, Mapping):
            problems.add(
                line,
                f"{where}.body must be a mapping (a subset of the JSON body), "
                f"got {describe(value)}",
            )
            return []
        return list(cls._leaves(value, (), line))

    @classmethod
    def _leaves(cls, value: Mapping[Any, Any], path: tuple[str, ...], line: int) -> Any:
        if not value and path:
            yield cls(line, path, _freeze({}))
        for key, item in value.items():
            spot = line_of(value, key)
            if isinstance(item, Mapping):
                yield from cls._leaves(item, (*path, str(key)), spot)
            else:
                yield cls(spot, (*path, str(key)), _freeze(item))

    @property
    def subject(self) -> str:
        return "body." + ".".join(self.path)

    def found(self, exchange: Exchange) -> Any:
        node: Any = exchange.body
        for part in self.path:
            if not isinstance(node, Mapping) or part not in node:
                return _ABSENT
            node = node[part]
        return node

    def holds(self, exchange: Exchange) -> bool:
        return _same(self.wanted, self.found(exchange))

    def predicate(self) -> Callable[[Exchange], bool]:
        wanted, path = self.wanted, self.path
        if len(path) != 1 or isinstance(wanted, (_FrozenMap, tuple, bool)):
            return self.holds
        key = path[0]
        # The common case, `body: {temperature: 0}`: one lookup, one comparison.
        return lambda exchange: _same(wanted, exchange.body.get(key, _ABSENT))

    def expected(self) -> str:
        return _json(self.wanted)

    def distance(self, exchange: Exchange) -> float:
        found = self.found(exchange)
        if _same(self.wanted, found):
            return 0.0
        if found is _ABSENT:
            return 1.0
        if isinstance(self.wanted, str) and isinstance(found, str):
            return 1.0 - SequenceMatcher(None, self.wanted, found).ratio()
        return 0.5  # present, with another value

    def actual(self, exchange: Exchange) -> str:
        found = self.found(exchange)
        return "(absent)" if found is _ABSENT else _json(found)


def _freeze(value: Any) -> Any:
    """A hashable copy (lists -> tuples, mappings -> sorted item tuples marked as mappings)."""
    if isinstance(value, Mapping):
        return _FrozenMap(tuple(sorted((str(k), _freeze(v)) for k, v in value.items())))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class _FrozenMap:
    items: tuple[tuple[str, Any], ...]


def _same(wanted: Any, got: Any) -> bool:
    if isinstance(wanted, _FrozenMap):
        if not isinstance(got, Mapping):
            return False
        return all(k in got and _same(v, got[k]) for k, v in wanted.items)
    if isinstance(wanted, tuple):
        return (
            isinstance(got, list)
            and len(got) == len(wanted)
            and all(_same(w, g) for w, g in zip(wanted, got, strict=True))
        )
    if isinstance(wanted, bool) or isinstance(got, bool):
        return wanted is got
    if isinstance(got, (list, dict)):
        return False
    return bool(wanted == got)


def _json(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, _FrozenMap):
        return "{" + ", ".join(f"{k}: {_json(v)}" for k, v in value.items) + "}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_json(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_json(v)}" for k, v in value.items()) + "}"
    text = describe(value)
    return text if len(text) <= 60 else text[:59] + "…"
