"""`match:` conditions: one class per key, self-registering into a read-only registry.

Each class declares the `match` key it handles (`class User(Matcher, key="user")`); defining two
classes for one key is an error naming both. `compile` turns the YAML value into one or more
conditions (a `headers` or `body` block gives one per header or leaf, so a near-miss report can say
exactly which field failed). The pipeline's hot path only calls `holds(exchange)`; the other
methods serve diagnostics (`expected`, `actual`) and the load-time shadowing check (`implies`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from types import MappingProxyType
from typing import Any, ClassVar

from mockai.exchange import Endpoint, Exchange
from mockai.scenario.operators import Op, TextTest, compile_text
from mockai.scenario.problems import Problems, describe, suggest
from mockai.scenario.yamlsrc import line_of

_registry: dict[str, type[Matcher]] = {}
REGISTRY: Mapping[str, type[Matcher]] = MappingProxyType(_registry)
ENDPOINTS = tuple(e.value for e in Endpoint)


def shorten(text: str, limit: int = 60) -> str:
    """`text` as a quoted one-liner, cut with an ellipsis past `limit` characters."""
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


@dataclass(frozen=True)
class Matcher:
    """One condition of a rule's `match` block."""

    key: ClassVar[str]
    cost: ClassVar[int] = 1  # cheap conditions are tested first
    weight: ClassVar[float] = 1.0  # how much a holding condition counts in near-miss ranking

    line: int

    def __init_subclass__(cls, key: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not key:
            return
        if key in _registry:
            raise TypeError(
                f"match key '{key}' is handled by both {_registry[key].__qualname__} "
                f"and {cls.__qualname__}"
            )
        cls.key = key
        _registry[key] = cls

    @classmethod
    def compile(cls, value: Any, line: int, where: str, problems: Problems) -> list[Matcher]:
        """The conditions for `value` (an empty list when it is invalid; problems recorded)."""
        raise NotImplementedError

    @property
    def subject(self) -> str:
        """What the condition looks at (`user`, `headers.x-case`, `body.temperature`)."""
        return self.key

    def holds(self, exchange: Exchange) -> bool:
        """True when the request satisfies this condition."""
        raise NotImplementedError

    def predicate(self) -> Callable[[Exchange], bool]:
        """`holds` as one plain function, with everything it needs bound (the hot path)."""
        return self.holds

    def expected(self) -> str:
        """The condition, for people: `contains 'weather'`."""
        raise NotImplementedError

    def actual(self, exchange: Exchange) -> str:
        """What the request has in its place, for people."""
        raise NotImplementedError

    def implies(self, other: Matcher) -> bool:
        """True when any request satisfying `self` certainly satisfies `other` (same subject)."""
        return self == other

    def distance(self, exchange: Exchange) -> float:
        """0 when the condition holds, up to 1 when the request is nowhere near (for ranking)."""
        return 0.0 if self.holds(exchange) else 1.0

    def support(self) -> float:
        """How much this condition holding says about a request being close to the rule."""
        test = getattr(self, "test", None)
        # `not ...` holds for almost everything: weak evidence.
        return self.weight * (0.2 if isinstance(test, TextTest) and test.negate else 1.0)


def text_distance(test: TextTest, text: str | None) -> float:
    """How far `text` is from satisfying `test`: 0 (it does) to 1 (nothing alike)."""
    holds = test.test(text) if text is not None else test.negate
    if holds:
        return 0.0
    if text is None or test.negate or test.op is Op.REGEX or not test.value:
        return 1.0
    wanted, got = test.value.casefold(), text[:2000].casefold()
    if test.op is Op.CONTAINS:
        found = SequenceMatcher(None, wanted, got, autojunk=False).find_longest_match()
        return 1.0 - found.size / len(wanted)
    if test.op is Op.STARTSWITH:
        got = got[: len(wanted)]
    elif test.op is Op.ENDSWITH:
        got = got[-len(wanted) :]
    return 1.0 - SequenceMatcher(None, wanted, got, autojunk=False).ratio()


# --- simple values --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointIs(Matcher, key="endpoint"):
    """`endpoint: chat` or `endpoint: [chat, responses]`."""

    endpoints: frozenset[str]
    weight: ClassVar[float] = 0.3

    @classmethod
    def compile(cls, value: Any, line: int, where: str, problems: Problems) -> list[Matcher]:
        names = value if isinstance(value, list) else [value]
        bad = [n for n in names if n not in ENDPOINTS]
        if not names or bad:
            shown = describe(bad[0]) if bad else "an empty list"
            problems.add(
                line,
                f"{where}.endpoint: {shown} is not an endpoint"
                + suggest(bad[0] if bad else "", ENDPOINTS, noun="endpoints"),
            )
            return []
        return [cls(line, frozenset(names))]

    def holds(self, exchange: Exchange) -> bool:
        return exchange.endpoint.value in self.endpoints

    def predicate(self) -> Callable[[Exchange], bool]:
        wanted = frozenset(Endpoint(name) for name in self.endpoints)
        return lambda exchange: exchange.endpoint in wanted

    def expected(self) -> str:
        return " | ".join(e for e in ENDPOINTS if e in self.endpoints)

    def actual(self, exchange: Exchange) -> str:
        return exchange.endpoint.value

    def implies(self, other: Matcher) -> bool:
        return isinstance(other, EndpointIs) and self.endpoints <= other.endpoints


@dataclass(frozen=True)
class ModelGlob(Matcher, key="model"):
    """`model: "gpt-4o*"`: a shell-style glob (case-sensitive), translated to a regex once."""

    glob: str
    pattern: re.Pattern[str] | None  # None: no wildcard, compared as a string

    @classmethod
    def compile(cls, value: Any, line: int, where: str, problems: Problems) -> list[Matcher]:
        if not isinstance(value, str) or not value:
            problems.add(
                line,
                f"{where}.model must be a model id or a glob like 'gpt-4o*', got {describe(value)}",
            )
            return []
        wild = any(ch in value for ch in "*?[")
        return [cls(line, value, re.compile(fnmatch.translate(value)) if wild else None)]

    def holds(self, exchange: Exchange) -> bool:
        if self.pattern is None:
            return exchange.model == self.glob
        return self.pattern.match(exchange.model) is not None

    def predicate(self) -> Callable[[Exchange], bool]:
        glob, pattern = self.glob, self.pattern
        if pattern is None:
            return lambda exchange: exchange.model == glob
        match = pattern.match
        return lambda exchange: match(exchange.model) is not None

    def expected(self) -> str:
        return repr(self.glob) if self.pattern is None else f"glob {self.glob!r}"

    def actual(self, exchange: Exchange) -> str:
        return repr(exchange.model)

    def distance(self, exchange: Exchange) -> float:
        if self.holds(exchange):
            return 0.0
        # Model ids share prefixes ("gpt-"): a different model is never very near.
        return 1.0 - 0.5 * SequenceMatcher(None, self.glob.rstrip("*"), exchange.model).ratio()

    def implies(self, other: Matcher) -> bool:
        if not isinstance(other, ModelGlob):
            return False
        if self.glob == other.glob or other.glob == "*":
            return True
        return (
            self.pattern is None
            and other.pattern is not None
            and bool(other.pattern.match(self.glob))
        )


@dataclass(frozen=True)
class _Flag(Matcher):
    """A boolean condition."""

    wanted: bool
    weight: ClassVar[float] = 0.3

    @classmethod
    def compile(cls, value: Any, line: int, where: str, problems: Problems) -> list[Matcher]:
        if not isinstance(value, bool):
            problems.add(line, f"{where}.{cls.key} must be true or false, got {describe(value)}")
            return []
        return [cls(line, value)]

    def value(self, exchange: Exchange) -> bool:
        raise NotImplementedError

    def holds(self, exchange: Exchange) -> bool:
        return self.value(exchange) is self.wanted

    def expected(self) -> str:
        return "true" if self.wanted else "false"

    def actual(self, exchange: Exchange) -> str:
        return "true" if self.value(exchange) else "false"


@dataclass(frozen=True)
class Stream(_Flag, key="stream"):
    """`stream: true`: the request asks for a stream."""

    def value(self, exchange: Exchange) -> bool:
        return exchange.stream


@dataclass(frozen=True)
class HasToolResult(_Flag, key="has_tool_result"):
    """`has_tool_result: true`: the latest message is a tool result (the agent loop's 2nd leg)."""

    cost: ClassVar[int] = 2

    def value(self, exchange: Exchange) -> bool:
        return exchange.has_tool_result


@dataclass(frozen=True)
class Turn(Matcher, key="turn"):
    """`turn: 2` or `turn: {min: 2, max: 3}`: how many user turns the conversation holds."""

    low: int
    high: int | None
    weight: ClassVar[float] = 0.3
    cost: ClassVar[int] = 3  # counts messages

    @classmethod
    def compile(cls, value: Any, line: int, where: str, problems: Problems) -> list[Matcher]:
        if _is_int(value) and value >= 1:
            return [cls(line, value, value)]
        if isinstance(value, Mapping) and value and set(value) <= {"min", "max"}:
            low, high = value.get("min", 1), value.get("max")
            if _is_int(low) and low >= 1 and (high is None or (_is_int(high) and high >= low)):
                return [cls(line, low, high)]
        problems.add(
            line,
            f"{where}.turn must be a number >= 1 or {{min: N, max: M}} with 1 <= N <= M, "
            f"got {describe(value)}",
        )
        return []

    def holds(self, exchange: Exchange) -> bool:
        turn = exchange.turn
        return self.low <= turn and (self.high is None or turn <= self.high)

    def expected(self) -> str:
        if self.high == self.low:
            return str(self.low)
        return f"{self.low}..{'' if self.high is None else self.high}"

    def actual(self, exchange: Exchange) -> str:
        return str(exchange.turn)

    def implies(self, other: Matcher) -> bool:
        if not isinstance(other, Turn) or self.low < other.low:
            return False
        return other.high is None or (self.high is not None and self.high <= other.high)


@dataclass(frozen=True)
class Tools(Matcher, key="tools"):
    """`tools: [get_weather]`: the request offers every one of these tools."""

    names: frozenset[str]
    cost: ClassVar[int] = 2

    @classmethod
    def compile(cls, value: Any, line: int, where: str, problems: Problems) -> list[Matcher]:
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            problems.add(line, f"{where}.tools must be a list of tool names, got {describe(value)}")
            return []
        return [cls(line, frozenset(names))]

    def holds(self, exchange: Exchange) -> bool:
        offered = {tool.name for tool in exchange.tools}
        return self.names <= offered

    def expected(self) -> str:
        return "offers " + ", ".join(sorted(self.names))

    def actual(self, exchange: Exchange) -> str:
        offered = [tool.name for tool in exchange.tools]
        return ("offers " + ", ".join(offered)) if offered else "(no tools)"

    def implies(self, other: Matcher) -> bool:
        return isinstance(other, Tools) and other.names <= self.names

    def distance(self, exchange: Exchange) -> float:
        offered = {tool.name for tool in exchange.tools}
        return len(self.names - offered) / len(self.names)


# --- texts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Text(Matcher):
    """A text operator applied to one text of the request."""

    test: TextTest
    cost: ClassVar[int] = 3

    @classmethod
    def compile(cls, value: Any, line: int, where: str, problems: Problems) -> list[Matcher]:
        test = compile_text(value, f"{where}.{cls.key}", line, problems)
        return [] if test is None else [cls(line, test)]

    def text(self, exchange: Exchange) -> str | None:
        raise NotImplementedError

    def holds(self, exchange: Exchange) -> bool:
        text = self.text(exchange)
        return self.test.negate if text is None else self.test.test(text)

    def predicate(self) -> Callable[[Exchange], bool]:
        test, text, absent = self.test.test, self.text, self.test.negate

        def holds(exchange: Exchange) -> bool:
            found = text(exchange)
            return absent if found is None else test(found)

        return holds

    def expected(self) -> str:
        return self.test.describe()

    def actual(self, exchange: Exchange) -> str:
        text = self.text(exchange)
        return "(none)" if text is None else shorten(text)

    def implies(self, other: Matcher) -> bool:
        return (
            type(other) is type(self) and isinstance(other, _Text) and self.test.implies(other.test)
        )

    def distance(self, exchange: Exchange) -> float:
        return 0.0 if self.holds(exchange) else text_distance(self.test, self.text(exchange))


@dataclass(frozen=True)
class User(_Text, key="user"):
    """The last user message (responses: last user input; completions: the prompt).

    On embeddings and moderations, the inputs: the condition holds when one of them satisfies it.
    """

    def holds(self, exchange: Exchange) -> bool:
        return self.predicate()(exchange)

    def predicate(self) -> Callable[[Exchange], bool]:
        test = self.test.test
        embeddings, moderations = Endpoint.EMBEDDINGS, Endpoint.MODERATIONS

        def holds(exchange: Exchange) -> bool:
            endpoint = exchange.endpoint
            if (endpoint is embeddings or endpoint is moderations) and exchange.inputs:
                return any(test(text) for text in exchange.inputs)
            return test(exchange.user_text)

        return holds

    def text(self, exchange: Exchange) -> str | None:
        return exchange.user_text


@dataclass(frozen=True)
class System(_Text, key="system"):
    """The system / developer messages, or the Responses API's `instructions`."""

    def text(self, exchange: Exchange) -> str | None:
        return exchange.system_text

    def predicate(self) -> Callable[[Exchange], bool]:
        test = self.test.test
        return lambda exchange: test(exchange.system_text)

    def actual(self, exchange: Exchange) -> str:
        return shorten(exchange.system_text) if exchange.system_text else "(no system message)"


@dataclass(frozen=True)
class ToolResult(_Text, key="tool_result"):
    """The latest tool-result message (absent: the condition does not hold)."""

    def text(self, exchange: Exchange) -> str | None:
        return exchange.tool_result

    def actual(self, exchange: Exchange) -> str:
        result = exchange.tool_result
        return "(no tool result)" if result is None else shorten(result)


# --- headers and body -----------------------------------------------------------------------------


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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
