"""The fallback generator: a plausible, reproducible answer to any request.

Everything is derived from the request's content key (seed + what was asked) and the messages it
is answered in (for a Responses request continuing a stored response or conversation, the turns
the server holds), so the same request gets the same answer on every server started with the
same seed, whatever else was asked before.
What it answers:
- a tool call when the request forces one (`tool_choice` required or named), or when tools are
  offered with `auto`, the conversation awaits an answer to a user turn, and a tool's name or
  description shares a word with the question (which tool: `tools.tool_to_call`, so that agent
  loops end); arguments validate against the tool's schema; a custom (freeform) tool's `input`
  is text, or a string matching its grammar when the grammar is a regex (a Lark grammar gets
  text, with an `x-mockai-warning`: mockai does not generate from Lark grammars);
- a schema-valid instance for `json_schema` formats, and for `json_object` (or a text request
  asking for JSON) whose messages hold a JSON Schema (`prompted`); other JSON mode requests get
  `{"answer": ...}`;
- otherwise a few sentences of faker prose (after a tool result, prefaced by what the tool said).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from typing import Any

from mockai.catalog import Catalog
from mockai.errors import ApiError
from mockai.generate import budget, prompted, prose, tools
from mockai.pipeline.exchange import Endpoint, Exchange, Tool
from mockai.pipeline.reply import Choice, Media, Reply, ToolCall
from mockai.wire import jsonbytes

_CACHE_SIZE = 1024
_CACHE_BYTES = 8 * 1024 * 1024  # what the cached replies may weigh together
_CACHE_ITEM = 256 * 1024  # the most one cached reply may weigh


def _weight(reply: Reply) -> int:
    """Roughly what `reply` weighs in memory, in bytes: text, vectors, moderation results."""
    size = sum(
        len(c.content or "") + sum(len(call.arguments) for call in c.tool_calls)
        for c in reply.choices
    )
    for vector in reply.embeddings or ():
        size += getattr(vector, "nbytes", 32 * len(vector))  # float32 arrays, or Python floats
    size += 1000 * len(reply.moderation or ())  # ~1,000 characters of JSON per result
    return size + 200


def _refers_to_stored(exchange: Exchange) -> bool:
    """Whether `exchange` is answered in a context the server holds: a Responses request with a
    `previous_response_id` or a `conversation` (resolved into its messages when parsed); the
    caller tests the endpoint first (the hot path, chat, pays one identity test)."""
    body = exchange.body
    return body.get("previous_response_id") is not None or body.get("conversation") is not None


def media_seed(key: bytes) -> Media:
    """What a generated picture or sound derives from: the request's content key."""
    return Media(seed=int.from_bytes(key[:8], "big"))


class FallbackGenerator:
    """Answers any request plausibly; one instance per server."""

    def __init__(self, seed: int, catalog: Catalog) -> None:
        self.seed = seed
        self.catalog = catalog
        self._cache: dict[
            tuple[bytes, int, Endpoint, int | None, int | None], tuple[Reply, int]
        ] = {}
        self._cached_bytes = 0
        self._prompt_schemas = prompted.PromptSchemas()
        self._by_endpoint: dict[Endpoint, Callable[[Exchange, bytes], Reply]] = {
            Endpoint.CHAT: self._conversation,
            Endpoint.RESPONSES: self._conversation,
            Endpoint.COMPLETIONS: self._completion,
            Endpoint.EMBEDDINGS: self._embeddings,
            Endpoint.MODERATIONS: self._moderation,
            Endpoint.IMAGES: self._media,
            Endpoint.IMAGE_EDITS: self._media,
            Endpoint.IMAGE_VARIATIONS: self._media,
            Endpoint.SPEECH: self._media,
            Endpoint.TRANSCRIPTIONS: self._transcript,
            Endpoint.TRANSLATIONS: self._transcript,
        }

    def reply(self, exchange: Exchange, key: bytes) -> Reply:
        """The generated answer for `exchange`; `key` is its content key."""
        if exchange.endpoint is Endpoint.RESPONSES and _refers_to_stored(exchange):
            # Its answer also depends on what the server holds (the turns before its
            # `previous_response_id`, its conversation's items), which the key leaves out: a
            # cached answer could be another chain's, or from before a reset.
            return self._by_endpoint[exchange.endpoint](exchange, key)
        # Otherwise the answer is a pure function of the key and the number of choices asked
        # for, so load tests repeating a request skip the generation (Replies are immutable).
        # And of the vectors' size, which the catalog of the request's provider gives: one body
        # asked of `/ollama/v1` (nomic-embed-text:latest, 768) and of `/v1` (1536) got the size
        # of whichever came first.
        cache_key = (
            key,
            exchange.n,
            exchange.endpoint,
            exchange.output_limit,
            exchange.model_dimensions,
        )
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached[0]
        reply = self._by_endpoint[exchange.endpoint](exchange, key)
        weight = _weight(reply)
        if weight > _CACHE_ITEM:
            return reply  # (a big answer is rarely asked twice, and would hold megabytes)
        # Bounded in entries and in bytes; the oldest go first (dicts keep their order).
        while self._cache and (
            len(self._cache) >= _CACHE_SIZE or self._cached_bytes + weight > _CACHE_BYTES
        ):
            _, gone = self._cache.pop(next(iter(self._cache)))
            self._cached_bytes -= gone
        self._cache[cache_key] = (reply, weight)
        self._cached_bytes += weight
        return reply

    @property
    def cached_bytes(self) -> int:
        """What the cached replies weigh (see `_weight`), at most 8 MiB."""
        return self._cached_bytes

    # --- per endpoint ----------------------------------------------------------------------------

    def _conversation(self, exchange: Exchange, key: bytes) -> Reply:
        warnings: list[str] = []
        choices = tuple(
            self._choice(exchange, self._rng(key, index), warnings) for index in range(exchange.n)
        )
        if warnings:  # (the same for every choice: said once)
            return Reply(choices=choices, warnings=tuple(dict.fromkeys(warnings)))
        return Reply(choices=choices)

    def _completion(self, exchange: Exchange, key: bytes) -> Reply:
        count = max(len(exchange.inputs), 1) * exchange.n
        return Reply(
            choices=tuple(
                Choice(content=" " + self._prose(self._rng(key, index))) for index in range(count)
            )
        )

    def _embeddings(self, exchange: Exchange, key: bytes) -> Reply:
        # (Imported on first use, as for moderations and transcripts: after that, a lookup.)
        import mockai.generate.embeddings as embeddings

        # The catalog of the provider the request came through, as parsed (this generator's
        # catalog is the server's own profile's, not the one under a provider's prefix).
        dimensions = exchange.model_dimensions or self.catalog.get(exchange.model).dimensions
        return embeddings.reply_for(exchange, dimensions, self.seed)

    def _moderation(self, exchange: Exchange, key: bytes) -> Reply:
        import mockai.generate.moderation as moderation

        return moderation.reply_for(exchange, self.seed)

    def _media(self, exchange: Exchange, key: bytes) -> Reply:
        # Pictures and sounds are drawn by the codec (off the loop) from this seed.
        return Reply(media=media_seed(key))

    def _transcript(self, exchange: Exchange, key: bytes) -> Reply:
        import mockai.generate.transcript as transcript

        return Reply.text(transcript.text(exchange, self._rng(key, 0)))

    # --- building blocks -------------------------------------------------------------------------

    def _rng(self, key: bytes, index: int) -> random.Random:
        return random.Random(int.from_bytes(key[:16], "big") + index)

    def _instance(
        self, schema_: Mapping[str, Any], rng: random.Random, context: str, size: int
    ) -> tuple[str, bool]:
        """The JSON text of a value for `schema_`, and whether it is whole: past `size` tokens
        (budget.answer_tokens) the value is not made, and its text is cut there."""
        from mockai.generate import schema  # (on first use: tools and JSON answers only)

        with prose.seeded_faker(rng.getrandbits(64)) as faker:
            value, whole = schema.instance_within(schema_, rng, size, faker=faker, context=context)
        text = jsonbytes.dumps_str(value)
        return (text, True) if whole else (budget.cut(text, size), False)

    def _required_instance(
        self, schema_: Mapping[str, Any], rng: random.Random, context: str, size: int
    ) -> tuple[str, bool]:
        """`_instance` for a schema the answer must follow (a response format, a tool's
        parameters): one it cannot meet is a 4xx the SDKs do not retry, saying what to do,
        rather than a 500."""
        from mockai.generate.schema.nodes import SchemaGenerationError

        try:
            return self._instance(schema_, rng, context, size)
        except SchemaGenerationError as error:
            raise ApiError(
                400,
                f"mockai cannot generate a value for this schema ({error}); script the "
                "answer with a rule instead.",
                code="mockai_generation_failed",
            ) from None

    def _choice(self, exchange: Exchange, rng: random.Random, warnings: list[str]) -> Choice:
        tool = tools.tool_to_call(exchange)
        if tool is not None:
            if tool.kind == "custom":
                call, whole = self._custom_call(tool, exchange, rng, warnings)
            else:
                call, whole = self._tool_call(tool, exchange, rng)
            return Choice(tool_calls=(call,), finish_reason=None if whole else "length")
        fmt = exchange.response_format
        if fmt is not None and fmt.kind == "json_schema" and fmt.schema is not None:
            size = budget.answer_tokens(exchange)
            text, whole = self._required_instance(fmt.schema, rng, exchange.user_text, size)
            return Choice(content=text, finish_reason=None if whole else "length")
        kind = "text" if fmt is None else fmt.kind
        if kind != "json_schema":
            prompted_choice = self._prompted_json(exchange, rng, json_mode=kind == "json_object")
            if prompted_choice is not None:
                return prompted_choice
        if kind != "text":
            return Choice(content=jsonbytes.dumps_str({"answer": self._prose(rng)}))
        return Choice(content=self._answer(exchange, rng))

    def _prompted_json(
        self, exchange: Exchange, rng: random.Random, *, json_mode: bool
    ) -> Choice | None:
        """JSON valid against a schema the prompt holds (within the answer's token limit: a
        schema in a prompt can be as hostile as one in `response_format`), or None.

        In JSON mode any schema in a system, developer or user message counts; in text mode only
        one whose message (or the latest user message) asks for JSON, and the answer comes in a
        ```json block when the instructions ask for a code block (instructor's MD_JSON).
        """
        found: prompted.Found | None = None
        holder = ""
        asked = json_mode or prompted.mentions_json(exchange.user_text)
        for message in exchange.messages:
            if message.role in ("system", "developer", "user") and (
                asked or prompted.mentions_json(message.text)  # text mode: a cheap test first
            ):
                candidate = self._prompt_schemas.find(message.text)
                if candidate is not None and (
                    found is None or len(candidate.span) >= len(found.span)
                ):
                    found, holder = candidate, message.text
        if found is None:
            return None
        instructions = (
            holder.replace(found.span, " ") + "\n" + exchange.user_text.replace(found.span, " ")
        )
        if not json_mode and not prompted.mentions_json(instructions):
            return None
        context = exchange.user_text.replace(found.span, " ")
        from mockai.generate.schema.nodes import SchemaGenerationError

        try:
            text, whole = self._instance(found.schema, rng, context, budget.answer_tokens(exchange))
        except SchemaGenerationError:
            return None  # a schema that cannot be met gets the schema-less answer
        finish = None if whole else "length"
        if not json_mode and prompted.wants_fence(instructions) and whole:
            return Choice(content=f"```json\n{text}\n```")
        return Choice(content=text, finish_reason=finish)

    def _tool_call(
        self, tool: Tool, exchange: Exchange, rng: random.Random
    ) -> tuple[ToolCall, bool]:
        parameters = tool.parameters or {"type": "object", "properties": {}}
        size = budget.answer_tokens(exchange)
        arguments, whole = self._required_instance(parameters, rng, exchange.user_text, size)
        return ToolCall(name=tool.name, arguments=arguments), whole

    def _custom_call(
        self, tool: Tool, exchange: Exchange, rng: random.Random, warnings: list[str]
    ) -> tuple[ToolCall, bool]:
        """A call to a custom tool: its `input` follows the tool's `format` as far as mockai
        can. Text (the default) is any text; a regex grammar gets a string matching the whole
        regex, made as a schema `pattern` is (Python's `re` dialect, which OpenAI's regex
        grammars share but for a few constructs); a Lark grammar, or a regex mockai cannot
        expand, gets text and a warning (a rule scripts an input that must parse)."""
        grammar = tools.custom_grammar(exchange, tool.name)
        text, whole = None, True
        if grammar is not None:
            syntax, definition = grammar
            if syntax == "regex":
                text, whole = self._matching(definition, exchange, rng)
            if text is None:
                warnings.append(
                    f"the input of custom tool '{tool.name}' is plain text: mockai does not "
                    f"generate from its {syntax} grammar; script the call with a rule"
                )
        if text is None:
            text = self._prose(rng)
        return ToolCall(name=tool.name, arguments=text, kind="custom"), whole

    def _matching(
        self, regex: str, exchange: Exchange, rng: random.Random
    ) -> tuple[str | None, bool]:
        """A string the whole of `regex` matches (within the answer's token budget: not
        `whole` when cut), or None when none is found."""
        from mockai.generate import schema
        from mockai.generate.schema.nodes import SchemaGenerationError

        # A grammar constrains the whole input; a schema `pattern` is searched for: anchored.
        anchored = {"type": "string", "pattern": _whole_pattern(regex)}
        size = budget.answer_tokens(exchange)
        try:
            with prose.seeded_faker(rng.getrandbits(64)) as faker:
                value, whole = schema.instance_within(
                    anchored, rng, size, faker=faker, context=exchange.user_text
                )
        except SchemaGenerationError:
            return None, True
        return (value, whole) if isinstance(value, str) else (None, True)

    def _answer(self, exchange: Exchange, rng: random.Random) -> str:
        prose = self._prose(rng)
        if exchange.tool_result is not None and exchange.has_tool_result:
            said = " ".join(exchange.tool_result.split())[:200]
            return f"Based on the tool result ({said}): {prose}"
        return prose

    def _prose(self, rng: random.Random) -> str:
        return prose.sentences(rng, rng.randint(2, 4))


# Global inline flags (`(?i)`, `(?s)(?x)`): Python takes them only at the very start of a pattern
# ("global flags not at the start" otherwise), so they stay in front of the anchors.
_LEADING_FLAGS = re.compile(r"(?:\(\?[aiLmsux]+\))+")


def _whole_pattern(regex: str) -> str:
    """A pattern that a string matches (searched for, as a schema `pattern` is) exactly when
    `regex` matches the whole of it."""
    found = _LEADING_FLAGS.match(regex)
    flags = found.group() if found else ""
    body = regex[len(flags) :]
    # Verbose (`x`): a comment the regex ends with would swallow the closing parenthesis; a
    # newline ends the comment, and is itself ignored there.
    end = "\n" if "x" in flags else ""
    return rf"{flags}\A(?:{body}{end})\Z"
