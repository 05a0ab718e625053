"""Conditions on the raw request: headers (one per header) and body (one per leaf)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, ClassVar

from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.journal import REDACTED
from mockai.scenario.matchers.base import Matcher, shorten, text_distance
from mockai.scenario.operators import TextTest, compile_text
from mockai.scenario.problems import Problems, describe
from mockai.scenario.yamlsrc import json_key_problem, json_value_problem, line_of
from mockai.wire.credentials import is_credential_header


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
        if not is_credential_header(self.name):
            return self.test.describe()
        # The rule's own value hidden too: when the client's key is the one the rule wants, the
        # condition holds and this side would show the client's key.
        shown = f"{'not ' if self.test.negate else ''}{self.test.op.value} {REDACTED}"
        return shown + (" (ignoring case)" if self.test.ignore_case else "")

    def actual(self, exchange: Exchange) -> str:
        found = self.value(exchange)
        if found is None:
            return "(absent)"
        # A no-match report is logged, journaled, shown by the inspector and written into test
        # reports: a credential shows there as the journal keeps it.
        return REDACTED if is_credential_header(self.name) else shorten(found)

    def implies(self, other: Matcher) -> bool:
        return (
            isinstance(other, Header) and other.name == self.name and self.test.implies(other.test)
        )

    def distance(self, exchange: Exchange) -> float:
        return 0.0 if self.holds(exchange) else text_distance(self.test, self.value(exchange))


_ABSENT: Any = object()

# The body field holding an endpoint's inputs (prompts, for legacy completions), which may be one
# input or a list of them.
INPUTS_FIELD = {
    Endpoint.EMBEDDINGS: "input",
    Endpoint.MODERATIONS: "input",
    Endpoint.COMPLETIONS: "prompt",
}


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
        before = len(problems.items)
        leaves = list(cls._leaves(value, (), line, f"{where}.body", problems))
        return [] if len(problems.items) > before else leaves

    @classmethod
    def _leaves(
        cls,
        value: Mapping[Any, Any],
        path: tuple[str, ...],
        line: int,
        where: str,
        problems: Problems,
    ) -> Any:
        if not value and path:
            yield cls(line, path, _freeze({}))
        for key, item in value.items():
            spot = line_of(value, key)
            if trouble := json_key_problem(value, key):
                problems.add(spot, f"{where}: {trouble}")
            elif isinstance(item, Mapping):
                yield from cls._leaves(item, (*path, key), spot, f"{where}.{key}", problems)
            elif _json(item, spot, f"{where}.{key}", problems):
                yield cls(spot, (*path, key), _freeze(item))

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
        found = self.found(exchange)
        if self.path[0] == INPUTS_FIELD.get(exchange.endpoint) and len(self.path) == 1:
            # One input sent alone is a text or a list of one, as clients please (the SDK and
            # LangChain send `["q"]`, a request of one input of a batch is `"q"`): both are that
            # input, for the rule as for the request.
            return _same(_item(self.wanted), _item(found))
        return _same(self.wanted, found)

    def predicate(self) -> Callable[[Exchange], bool]:
        wanted, path = self.wanted, self.path
        if len(path) != 1 or isinstance(wanted, (_FrozenMap, tuple, bool)):
            return self.holds
        if path[0] in ("input", "prompt"):
            return self.holds  # (an inputs field, maybe: see `holds`)
        key = path[0]
        # The common case, `body: {temperature: 0}`: one lookup, one comparison.
        return lambda exchange: _same(wanted, exchange.body.get(key, _ABSENT))

    def expected(self) -> str:
        return _show(self.wanted)

    def distance(self, exchange: Exchange) -> float:
        if self.holds(exchange):
            return 0.0
        found = self.found(exchange)
        if found is _ABSENT:
            return 1.0
        if isinstance(self.wanted, str) and isinstance(found, str):
            return 1.0 - SequenceMatcher(None, self.wanted, found).ratio()
        return 0.5  # present, with another value

    def actual(self, exchange: Exchange) -> str:
        found = self.found(exchange)
        return "(absent)" if found is _ABSENT else _show(found)

    def implies(self, other: Matcher) -> bool:
        return self.exact_key() == other.exact_key()

    def exact_key(self) -> Hashable | None:
        # Implied only by a condition on the same field wanting the same value, as `_same`
        # compares it: `true` is not `1` (though Python's `True == 1`).
        return (BodyField, self.path, _typed(self.wanted))


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


def _item(value: Any) -> Any:
    """A list (or a frozen one) of one item: that item; anything else as it is."""
    return value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value


def _typed(wanted: Any) -> Any:
    """`wanted` with booleans told apart from the numbers Python finds equal to them."""
    if isinstance(wanted, bool):
        return (bool, wanted)
    if isinstance(wanted, _FrozenMap):
        return _FrozenMap(tuple((k, _typed(v)) for k, v in wanted.items))
    if isinstance(wanted, tuple):
        return tuple(_typed(v) for v in wanted)
    return wanted


def _json(value: Any, line: int, where: str, problems: Problems) -> bool:
    """True when `value` (a list or scalar of a body condition) is JSON; else problems say why
    (`2024-01-01`, read by YAML as a date, would never equal the request's text)."""
    if isinstance(value, Mapping):
        valid = True
        for key, item in value.items():
            spot = line_of(value, key)
            if trouble := json_key_problem(value, key):
                problems.add(spot, f"{where}: {trouble}")
                valid = False
            else:
                valid &= _json(item, spot, f"{where}.{key}", problems)
        return valid
    if isinstance(value, list):
        checked = [_json(v, line_of(value, i), where, problems) for i, v in enumerate(value)]
        return all(checked)
    if trouble := json_value_problem(value):
        problems.add(line, f"{where}: {trouble}")
        return False
    return True


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, _FrozenMap):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items) + "}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    text = describe(value)
    return text if len(text) <= 60 else text[:59] + "…"
