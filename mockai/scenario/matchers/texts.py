"""Conditions on texts of the request: user, system, tool_result, file (an upload's name)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, ClassVar

from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.scenario.matchers.base import Matcher, shorten, text_distance
from mockai.scenario.operators import Op, TextTest, compile_text
from mockai.scenario.problems import Problems


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
        # An absent text fails every condition, `not` ones too (docs/scenarios.md, Match): a
        # `tool_result: {not: ...}` is about a tool result, and must not answer the first leg.
        return False if text is None else self.test.test(text)

    def predicate(self) -> Callable[[Exchange], bool]:
        test, text = self.test.test, self.text

        def holds(exchange: Exchange) -> bool:
            found = text(exchange)
            return False if found is None else test(found)

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

    def exact_key(self) -> Hashable | None:
        # What `TextTest.implies` says of an `equals`: implied only by an `equals` of the same
        # kind of text, case handling and (casefolded, ignoring case) value.
        test = self.test
        if test.op is not Op.EQUALS or test.negate:
            return None
        if not test.ignore_case:
            return (type(self), False, test.value)
        # (`implies` folds one side twice: the same, casefolding being idempotent)
        return (type(self), True, test.value.casefold())

    def implied_keys(self) -> tuple[Hashable, ...]:
        # A case-sensitive `equals 'Hello'` implies `equals 'hello'` ignoring case too (a text
        # equal to the one equals the other, once folded).
        key = self.exact_key()
        if key is None:
            return ()
        test = self.test
        if test.ignore_case:
            return (key,)
        return (key, (type(self), True, test.value.casefold()))

    def distance(self, exchange: Exchange) -> float:
        if self.holds(exchange):
            return 0.0
        text = self.text(exchange)
        # (`text_distance` counts an absent text as satisfying a `not`: here it fails)
        return 1.0 if text is None else text_distance(self.test, text)


@dataclass(frozen=True)
class User(_Text, key="user"):
    """The last user message (responses: last user input; completions: the prompt).

    On embeddings and moderations, the inputs (on legacy completions, the prompts): the
    condition holds when one of them satisfies it.
    """

    def holds(self, exchange: Exchange) -> bool:
        return self.predicate()(exchange)

    def predicate(self) -> Callable[[Exchange], bool]:
        test = self.test.test
        batched = (Endpoint.EMBEDDINGS, Endpoint.MODERATIONS, Endpoint.COMPLETIONS)

        def holds(exchange: Exchange) -> bool:
            if exchange.endpoint in batched and exchange.inputs:
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


@dataclass(frozen=True)
class File(_Text, key="file"):
    """`file: {endswith: standup.mp3}`: the name of an uploaded file (transcriptions, image
    edits, file uploads); with several files, any of them. No upload: the condition fails."""

    def holds(self, exchange: Exchange) -> bool:
        return self.predicate()(exchange)

    def predicate(self) -> Callable[[Exchange], bool]:
        test = self.test.test

        def holds(exchange: Exchange) -> bool:
            uploads = exchange.uploads
            # No upload fails `file: {not: ...}` too, as the docstring says.
            return bool(uploads) and any(test(upload.filename) for upload in uploads)

        return holds

    def text(self, exchange: Exchange) -> str | None:
        return exchange.uploads[0].filename if exchange.uploads else None

    def actual(self, exchange: Exchange) -> str:
        names = [upload.filename for upload in exchange.uploads]
        return ", ".join(shorten(name) for name in names) if names else "(no file uploaded)"
