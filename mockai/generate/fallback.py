"""The fallback generator: a plausible, reproducible answer to any request.

Everything is derived from the request's content key (seed + what was asked), so the same request
gets the same answer on every server started with the same seed, whatever else was asked before.
What it answers:
- a tool call when the request forces one (`tool_choice` required or named), or when tools are
  offered with `auto`, the conversation awaits an answer to a user turn, and a tool's name or
  description shares a word with the question; arguments validate against the tool's schema;
- JSON for `json_object`, and a schema-valid instance for `json_schema` formats;
- otherwise a few sentences of faker prose (after a tool result, prefaced by what the tool said).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from mockai.catalog import Catalog
from mockai.errors import ApiError
from mockai.exchange import Endpoint, Exchange, Tool
from mockai.generate import embeddings, moderation, prose, schema
from mockai.reply import Choice, Reply, ToolCall
from mockai.wire import jsonbytes


def words(text: str) -> set[str]:
    """Content words of `text` (stemmed, no stopwords); `_` and `-` split tool names into words."""
    return set(embeddings.words(text.replace("_", " ").replace("-", " ")))


_CACHE_SIZE = 1024


class FallbackGenerator:
    """Answers any request plausibly; one instance per server."""

    def __init__(self, seed: int, catalog: Catalog) -> None:
        self.seed = seed
        self.catalog = catalog
        self._cache: dict[tuple[bytes, int, Endpoint], Reply] = {}
        self._by_endpoint: dict[Endpoint, Callable[[Exchange, bytes], Reply]] = {
            Endpoint.CHAT: self._conversation,
            Endpoint.RESPONSES: self._conversation,
            Endpoint.COMPLETIONS: self._completion,
            Endpoint.EMBEDDINGS: self._embeddings,
            Endpoint.MODERATIONS: self._moderation,
        }

    def reply(self, exchange: Exchange, key: bytes) -> Reply:
        """The generated answer for `exchange`; `key` is its content key."""
        # The answer is a pure function of the key and the number of choices asked for, so load
        # tests repeating a request skip the generation (Replies are immutable).
        cache_key = (key, exchange.n, exchange.endpoint)
        reply = self._cache.get(cache_key)
        if reply is None:
            reply = self._by_endpoint[exchange.endpoint](exchange, key)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))  # oldest first: dicts keep order
            self._cache[cache_key] = reply
        return reply

    # --- per endpoint ----------------------------------------------------------------------------

    def _conversation(self, exchange: Exchange, key: bytes) -> Reply:
        choices = tuple(
            self._choice(exchange, self._rng(key, index)) for index in range(exchange.n)
        )
        return Reply(choices=choices)

    def _completion(self, exchange: Exchange, key: bytes) -> Reply:
        count = max(len(exchange.inputs), 1) * exchange.n
        return Reply(
            choices=tuple(
                Choice(content=" " + self._prose(self._rng(key, index))) for index in range(count)
            )
        )

    def _embeddings(self, exchange: Exchange, key: bytes) -> Reply:
        dimensions = self.catalog.get(exchange.model).dimensions
        return embeddings.reply_for(exchange, dimensions, self.seed)

    def _moderation(self, exchange: Exchange, key: bytes) -> Reply:
        return moderation.reply_for(exchange, self.seed)

    # --- building blocks -------------------------------------------------------------------------

    def _rng(self, key: bytes, index: int) -> random.Random:
        return random.Random(int.from_bytes(key[:16], "big") + index)

    def _instance(self, schema_: Mapping[str, Any], rng: random.Random, context: str) -> Any:
        with prose.seeded_faker(rng.getrandbits(64)) as faker:
            try:
                return schema.instance(schema_, rng, faker=faker, context=context)
            except schema.SchemaGenerationError as error:
                # A 4xx the SDKs do not retry, saying what to do, rather than a 500.
                raise ApiError(
                    400,
                    f"mockai cannot generate a value for this schema ({error}); script the "
                    "answer with a rule instead.",
                    code="mockai_generation_failed",
                ) from None

    def _choice(self, exchange: Exchange, rng: random.Random) -> Choice:
        tool = self._tool_to_call(exchange)
        if tool is not None:
            return Choice(tool_calls=(self._tool_call(tool, exchange, rng),))
        fmt = exchange.response_format
        if fmt is not None and fmt.kind == "json_schema" and fmt.schema is not None:
            value = self._instance(fmt.schema, rng, exchange.user_text)
            return Choice(content=jsonbytes.dumps_str(value))
        if fmt is not None and fmt.kind in ("json_object", "json_schema"):
            return Choice(content=jsonbytes.dumps_str({"answer": self._prose(rng)}))
        return Choice(content=self._answer(exchange, rng))

    def _tool_to_call(self, exchange: Exchange) -> Tool | None:
        choice = exchange.tool_choice
        candidates = [
            t
            for t in exchange.tools
            if t.kind == "function" and (not choice.allowed or t.name in choice.allowed)
        ]
        if choice.mode == "none" or not candidates:
            return None
        if choice.mode == "named":
            return exchange.tool(choice.name or "")
        asked = words(exchange.user_text)
        scored = [
            (len(asked & words(f"{t.name} {t.description}")), -i, t)
            for i, t in enumerate(candidates)
        ]
        best_score, _, best = max(scored, key=lambda item: item[:2])
        if choice.mode == "required":
            return best
        # `auto`: call a tool only to answer a fresh user turn that is about one of the tools.
        awaiting_answer = bool(exchange.messages) and exchange.messages[-1].role == "user"
        return best if awaiting_answer and best_score > 0 else None

    def _tool_call(self, tool: Tool, exchange: Exchange, rng: random.Random) -> ToolCall:
        parameters = tool.parameters or {"type": "object", "properties": {}}
        arguments = self._instance(parameters, rng, exchange.user_text)
        return ToolCall(name=tool.name, arguments=jsonbytes.dumps_str(arguments))

    def _answer(self, exchange: Exchange, rng: random.Random) -> str:
        prose = self._prose(rng)
        if exchange.tool_result is not None and exchange.has_tool_result:
            said = " ".join(exchange.tool_result.split())[:200]
            return f"Based on the tool result ({said}): {prose}"
        return prose

    def _prose(self, rng: random.Random) -> str:
        return prose.sentences(rng, rng.randint(2, 4))
