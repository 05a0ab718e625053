"""Conditions on simple values: endpoint, model, provider, stream, has_tool_result, turn, tools."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, ClassVar

from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.scenario.matchers.base import Matcher
from mockai.scenario.problems import Problems, describe, suggest

ENDPOINTS = tuple(e.value for e in Endpoint)


@dataclass(frozen=True)
class EndpointIs(Matcher, key="endpoint"):
    """`endpoint: chat` or `endpoint: [chat, responses]`."""

    endpoints: frozenset[str]
    weight: ClassVar[float] = 0.3

    @classmethod
    def compile(cls, value: Any, line: int, where: str, problems: Problems) -> list[Matcher]:
        names = value if isinstance(value, list) else [value]
        bad = [n for n in names if not isinstance(n, str) or n not in ENDPOINTS]
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
        prefix = glob[:-1]
        if glob.endswith("*") and not any(ch in prefix for ch in "*?["):
            # `gpt-4o*`, the usual glob: a prefix test, several times cheaper than the regex
            return lambda exchange: exchange.model.startswith(prefix)
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
        if other.pattern is None:
            return False  # (a model id is implied by itself alone)
        if self.pattern is None:
            return bool(other.pattern.match(self.glob))
        # Two globs: claimed only where it is certain and cheap, for `other` of the form `P*S`
        # (one `*`, no other wildcard), which holds for a model starting with P and ending with
        # S: every model `self` matches starts with its text before its first wildcard and ends
        # with its text after its last, and these never overlap in the model.
        parts = other.glob.split("*")
        if len(parts) != 2 or any(ch in other.glob for ch in "?[]"):
            return False
        head, tail = parts
        mine = re.split(r"[*?\[\]]", self.glob)
        return mine[0].startswith(head) and mine[-1].endswith(tail)


@dataclass(frozen=True)
class Provider(Matcher, key="provider"):
    """`provider: groq` or `provider: [groq, openrouter]`: the provider profile the request came
    through (its prefix, or the server's `--profile`)."""

    names: frozenset[str]
    weight: ClassVar[float] = 0.5

    @classmethod
    def compile(cls, value: Any, line: int, where: str, problems: Problems) -> list[Matcher]:
        from mockai.profiles import PROFILES  # (the profiles import the scenario's neighbours)

        names = value if isinstance(value, list) else [value]
        # (`[[groq]]` or `{groq: true}` cannot be looked up in a mapping: unhashable)
        bad = [n for n in names if not isinstance(n, str) or n not in PROFILES]
        if not names or bad:
            shown = describe(bad[0]) if bad else "an empty list"
            problems.add(
                line,
                f"{where}.provider: {shown} is not a provider profile"
                + suggest(bad[0] if bad else "", list(PROFILES), noun="profiles"),
            )
            return []
        return [cls(line, frozenset(names))]

    def holds(self, exchange: Exchange) -> bool:
        return exchange.provider in self.names

    def predicate(self) -> Callable[[Exchange], bool]:
        names = self.names
        return lambda exchange: exchange.provider in names

    def expected(self) -> str:
        return " | ".join(sorted(self.names))

    def actual(self, exchange: Exchange) -> str:
        return exchange.provider

    def implies(self, other: Matcher) -> bool:
        return isinstance(other, Provider) and self.names <= other.names


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

    def implies(self, other: Matcher) -> bool:
        return (
            isinstance(other, _Flag) and type(other) is type(self) and other.wanted is self.wanted
        )

    def exact_key(self) -> Hashable | None:
        return (type(self), self.wanted)  # (implied by the same flag with the same value only)


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
    """`tools: [get_weather]`: the request offers every one of these tools; a Responses hosted
    tool (`{"type": "web_search"}`) by its type, `web_search`."""

    names: frozenset[str]
    cost: ClassVar[int] = 2

    @classmethod
    def compile(cls, value: Any, line: int, where: str, problems: Problems) -> list[Matcher]:
        names = [value] if isinstance(value, str) else value
        if (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, str) and n for n in names)
        ):
            problems.add(line, f"{where}.tools must be a list of tool names, got {describe(value)}")
            return []
        # (`<web_search>`, the codec's inner name of a hosted tool, matched before hosted tools
        # matched by type: rules written so keep working)
        return [cls(line, frozenset(map(_tool_name, names)))]

    def holds(self, exchange: Exchange) -> bool:
        return self.names <= _offered(exchange)

    def expected(self) -> str:
        return "offers " + ", ".join(sorted(self.names))

    def actual(self, exchange: Exchange) -> str:
        offered = [_tool_name(tool.name) for tool in exchange.tools]
        return ("offers " + ", ".join(offered)) if offered else "(no tools)"

    def implies(self, other: Matcher) -> bool:
        return isinstance(other, Tools) and other.names <= self.names

    def distance(self, exchange: Exchange) -> float:
        return len(self.names - _offered(exchange)) / len(self.names)


def _tool_name(name: str) -> str:
    """A tool's name as rules give it: a hosted tool, which the codec names `<web_search>` (no
    function can be: names are letters, digits, `_` and `-`), by its type."""
    return name[1:-1] if name.startswith("<") and name.endswith(">") else name


def _offered(exchange: Exchange) -> set[str]:
    return {_tool_name(tool.name) for tool in exchange.tools}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
