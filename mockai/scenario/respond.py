"""Building the Reply for one request from a ReplySpec, and catching stale fixtures.

Templates are rendered with a Faker seeded from the request's content key, within one budget of
time and size for the whole reply; `arguments: auto` is generated from the offered tool's own
schema, and scripted tool arguments / JSON are checked against the schemas the request carries,
and the answer against its tool_choice (a `json` object answers a forced function as its call).
A mismatch is a *stale fixture*: a warning (the `x-mockai-warning` header, the journal and a log
line), or in strict mode a 400 `mockai_stale_fixture` error.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mockai.catalog import DEFAULT_MAX_OUTPUT, infer
from mockai.generate import budget, embeddings, prose
from mockai.generate.fallback import media_seed
from mockai.pipeline.exchange import Endpoint, Exchange, Tool
from mockai.pipeline.reply import Choice, Media, Reply, ToolCall
from mockai.scenario import schemas, templates
from mockai.scenario.replies import AUTO, ReplySpec, ToolCallSpec, Tree
from mockai.wire import jsonbytes

if TYPE_CHECKING:
    from faker import Faker

    from mockai.generate.fallback import FallbackGenerator

log = logging.getLogger("mockai")
_TALKING = (
    Endpoint.CHAT,
    Endpoint.RESPONSES,
    Endpoint.COMPLETIONS,
    Endpoint.TRANSCRIPTIONS,
    Endpoint.TRANSLATIONS,
)
# Endpoints answered with a picture or a sound (drawn from Reply.media by the codec).
_DRAWN = (
    Endpoint.IMAGES,
    Endpoint.IMAGE_EDITS,
    Endpoint.IMAGE_VARIATIONS,
    Endpoint.SPEECH,
)


class StaleFixture(Exception):
    """A scripted value contradicts the request's schema (an error in strict mode)."""


@dataclass
class Build:
    """Everything one reply build needs: the request, its key, the rule, and the switches."""

    exchange: Exchange
    key: bytes
    call: int
    label: str  # `rule 'weather' (scenarios/agent.yaml:4)`
    generator: Callable[[], FallbackGenerator]
    strict: bool
    warnings: list[str] = field(default_factory=list)

    def flag(self, message: str) -> None:
        """A stale-fixture finding: a warning, or an error in strict mode."""
        text = f"{self.label}: {message}"
        if self.strict:
            raise StaleFixture(text)
        self.warn(text)

    def warn(self, text: str) -> None:
        """A warning for the client (header), the journal and the log."""
        text = " ".join(text.split())  # one line: it travels in an HTTP header
        if text in self.warnings:
            return  # (two scripted calls to the same wrong tool: said once)
        log.warning("mockai: %s", text)
        self.warnings.append(text)


def constant_reply(spec: ReplySpec, exchange: Exchange) -> Reply | None:
    """`spec`'s Reply when it is the same for every request and `exchange` leaves nothing to
    draw or check, without building it (what `build_reply` would return); else None.

    A rule answering with a fixed text is the common case, and building its reply (a Build, the
    reply's parts, the stale-fixture checks) cost ~4 us a request for the same object."""
    reply = spec.constant_reply
    if reply is None:
        return None
    endpoint = exchange.endpoint
    if endpoint in _DRAWN:
        return None  # its picture or sound is drawn from the request's key
    if exchange.audio_output is not None and spec.media is not None:
        return None  # a chat answer in audio says the rule's sound
    if endpoint is Endpoint.EMBEDDINGS and spec.vectors is None and spec.embedding_seed is not None:
        return None  # its vectors are made from the request's inputs
    if endpoint in (Endpoint.CHAT, Endpoint.RESPONSES):
        fmt = exchange.response_format
        if fmt is not None and fmt.kind != "text":
            return None  # the text is checked against the format the request asks for
        if exchange.tool_choice.mode in ("named", "required"):
            return None  # the text answers a forced call, or is flagged for not making one
    return reply


def build_reply(spec: ReplySpec, build: Build) -> Reply:
    """The Reply for one request (raises StaleFixture in strict mode, TemplateRenderError)."""
    if spec.dynamic:
        # One render budget for all of the reply's templates (a JSON tree of a thousand leaves
        # gets the time and size limits once, not a thousand times).
        with _faker_for(spec, build) as faker, templates.render_limits():
            ctx = templates.context(build.exchange, faker, build.call) if faker is not None else {}
            choices = _choices(spec, build, ctx, faker)
            media = _media(spec, build, ctx)
            thought = _summary(spec, build.exchange, ctx)
    else:  # constant text: no Faker to seed, no template context to build
        choices = _choices(spec, build, _NO_CONTEXT, None)
        media = _media(spec, build, _NO_CONTEXT)
        thought = _summary(spec, build.exchange, _NO_CONTEXT)
    reply = Reply(
        choices=_json_as_call(spec, choices, build.exchange),
        embeddings=_embeddings(spec, build.exchange),
        moderation=(spec.moderation,) if spec.moderation else None,
        media=media,
        usage=spec.usage,
        reasoning=thought,
    )
    _check(spec, reply, build)
    return dataclasses.replace(reply, warnings=tuple(build.warnings)) if build.warnings else reply


_NO_CONTEXT: Mapping[str, Any] = {}


def _summary(spec: ReplySpec, exchange: Exchange, ctx: Mapping[str, Any]) -> str | None:
    """The rule's reasoning summary, rendered only for a request that asks for one: a template
    that fails on another request (a chat one, a model that does not reason) must not fail it."""
    if spec.reasoning is None or exchange.reasoning_summary is None:
        return None
    return spec.reasoning.render(ctx)


@contextmanager
def _faker_for(spec: ReplySpec, build: Build) -> Iterator[Faker | None]:
    """This thread's Faker seeded for this request, for the build; None if nothing needs it."""
    if not spec.dynamic:
        yield None
        return
    with prose.seeded_faker(int.from_bytes(build.key[16:24], "big")) as faker:
        yield faker


def _choices(
    spec: ReplySpec, build: Build, ctx: Mapping[str, Any], faker: Faker | None
) -> tuple[Choice, ...]:
    exchange = build.exchange
    if spec.constant_choices is not None:
        return spec.constant_choices
    if spec.generated:
        if exchange.endpoint not in _TALKING:
            return (Choice(content=""),)
        choices = build.generator().reply(exchange, build.key).choices
    else:
        content = spec.content.render(ctx) if spec.content is not None else None
        if spec.json is not None:
            content = spec.json.json(ctx)
        calls = tuple(
            _tool_call_for(call, index, build, ctx, faker)
            for index, call in enumerate(spec.tool_calls)
        )
        refusal = spec.refusal.render(ctx) if spec.refusal is not None else None
        choices = (Choice(content=content, tool_calls=calls, refusal=refusal),)
    if spec.finish_reason is not None:
        choices = tuple(dataclasses.replace(c, finish_reason=spec.finish_reason) for c in choices)
    return choices


def _json_as_call(
    spec: ReplySpec, choices: tuple[Choice, ...], exchange: Exchange
) -> tuple[Choice, ...]:
    """A `json` object answering a request that forces one function tool: a call to that tool
    with the object as its arguments, as a model told to call `Person` answers. Apps ask for
    structured output through `response_format` or through a forced function (LangChain's
    `function_calling`, instructor's TOOLS), and one fixture serves both."""
    if spec.json is None or spec.tool_calls or not isinstance(spec.json.value, dict):
        return choices  # (an array or a scalar is no function's arguments: flagged as text)
    forced = _forced(exchange)
    if len(forced) != 1 or forced[0].kind != "function":
        return choices  # which tool, or what custom input, would be a guess: flagged as text
    name = forced[0].name
    return tuple(
        dataclasses.replace(c, content=None, tool_calls=(ToolCall(name, c.content),))
        if c.content is not None
        else c
        for c in choices
    )


def _forced(exchange: Exchange) -> tuple[Tool, ...]:
    """The offered tools the request's tool_choice makes the answer call one of (a named
    choice, `required`, allowed_tools in required mode); () when text is a valid answer.
    Hosted tools (`<file_search>`) are left out: mockai never calls them, and the Responses
    codec says so when only they are required."""
    choice = exchange.tool_choice
    if choice.mode == "named":
        tool = exchange.tool(choice.name or "")
        return (tool,) if tool is not None else ()
    if choice.mode != "required":
        return ()
    return tuple(
        tool
        for tool in exchange.tools
        if not tool.name.startswith("<") and (not choice.allowed or tool.name in choice.allowed)
    )


def _media(spec: ReplySpec, build: Build, ctx: Mapping[str, Any]) -> Media | None:
    """The scripted picture or sound; what the rule leaves out is drawn from the request's
    content key, as a generated answer's (the same prompt, the same picture)."""
    # (A chat answer in audio says a rule's `audio:`; otherwise its sound is drawn from its
    # transcript, the same streamed or not: `chat_audio.speak`.)
    spoken = build.exchange.audio_output is not None
    if build.exchange.endpoint not in _DRAWN and not (spoken and spec.media is not None):
        return None
    seed = media_seed(build.key).seed
    scripted = spec.media
    if scripted is None:
        return Media(seed=seed)
    revised = scripted.revised_prompt
    return Media(
        seed=seed,
        path=scripted.path,
        color=scripted.color,
        pattern=scripted.pattern,
        colors=scripted.colors,
        revised_prompt=revised.render(ctx) if revised is not None else None,
        duration=scripted.duration,
    )


def _tool_call_for(
    call: ToolCallSpec, index: int, build: Build, ctx: Mapping[str, Any], faker: Faker | None
) -> ToolCall:
    arguments = call.arguments
    if isinstance(arguments, Tree):
        text = arguments.json(ctx)
    elif isinstance(arguments, templates.Text):
        text = arguments.render(ctx)
    else:
        text = _auto_arguments(call.name, index, build, faker)
    return ToolCall(call.name, text, call.id)


def _auto_arguments(name: str, index: int, build: Build, faker: Faker | None) -> str:
    tool = build.exchange.tool(name)
    if tool is None:
        return "{}"  # _check flags the tool as not offered
    rng = random.Random(int.from_bytes(build.key[:16], "big") + 7919 * (index + 1))
    if tool.kind == "custom":
        # A custom tool's input is text, or follows its grammar: made as a generated answer
        # makes it (a regex grammar gets a match; a Lark one text, and a warning).
        warnings: list[str] = []
        call, _ = build.generator()._custom_call(tool, build.exchange, rng, warnings)
        for warning in warnings:
            build.warn(f"{build.label}: {warning}")
        return call.arguments
    parameters = tool.parameters or {"type": "object", "properties": {}}
    # Bounded by the answer's token limit, whatever the request's schema asks (the endpoint
    # cuts the arguments there, with finish_reason `length`).
    size = build.exchange.output_limit or DEFAULT_MAX_OUTPUT
    from mockai.generate import schema  # (on first use: most rules script their arguments)

    try:
        value, whole = schema.instance_within(
            parameters, rng, size, faker=faker, context=build.exchange.user_text
        )
    except schema.SchemaGenerationError as error:
        build.warn(f"{build.label}: cannot generate arguments for tool '{name}': {error}")
        return "{}"
    text = jsonbytes.dumps_str(value)
    return text if whole else budget.cut(text, size)


def _embeddings(spec: ReplySpec, exchange: Exchange) -> tuple[Any, ...] | None:
    if spec.vectors is not None:
        return spec.vectors
    if spec.embedding_seed is None or exchange.endpoint is not Endpoint.EMBEDDINGS:
        return None
    # (the size the request's provider catalog gave the model at parse time)
    size = exchange.model_dimensions or infer(exchange.model).dimensions
    return embeddings.reply_for(exchange, size, spec.embedding_seed).embeddings


# --- stale fixtures -------------------------------------------------------------------------------


def _check(spec: ReplySpec, reply: Reply, build: Build) -> None:
    exchange = build.exchange
    if exchange.endpoint not in (Endpoint.CHAT, Endpoint.RESPONSES) or spec.generated:
        return
    choice = reply.choices[0]
    if choice.tool_calls and not spec.tool_calls:  # the `json` answered as the forced call
        call = choice.tool_calls[0]
        tool = exchange.tool(call.name)
        assert tool is not None  # (_forced's: an offered tool)
        _check_arguments(
            call, tool, f"the arguments of tool call '{call.name}' (the rule's json)", build
        )
        return
    if not choice.tool_calls and (spec.content is not None or spec.json is not None):
        _check_text(build)
    for call, scripted in zip(choice.tool_calls, spec.tool_calls, strict=True):
        _check_call(call, scripted, build)
    if len(choice.tool_calls) > 1 and exchange.legacy_functions:
        build.flag(
            f"answers with {len(choice.tool_calls)} tool calls but the request offers the "
            "deprecated `functions`, which call one function per answer: only the first is sent"
        )
    elif len(choice.tool_calls) > 1 and not exchange.parallel_tool_calls:
        build.flag(
            f"answers with {len(choice.tool_calls)} tool calls but the request set "
            "parallel_tool_calls: false"
        )
    if choice.content is not None and (spec.json is not None or spec.content is not None):
        _check_json(choice.content, build)


def _check_call(call: ToolCall, scripted: ToolCallSpec, build: Build) -> None:
    exchange = build.exchange
    tool = exchange.tool(call.name)
    if tool is None or exchange.tool_choice.mode == "none":
        offered = ", ".join(t.name for t in exchange.tools)
        if exchange.tool_choice.mode == "none" and tool is not None:
            why = "the request set tool_choice: none"
        else:
            why = f"the request offers {offered}" if offered else "the request offers no tools"
        build.flag(f"calls tool '{call.name}', but {why}")
        return
    choice = exchange.tool_choice
    if choice.mode == "named" and call.name != choice.name:
        build.flag(
            f"calls tool '{call.name}', but the request's tool_choice forces '{choice.name}'"
        )
    elif choice.allowed and call.name not in choice.allowed:
        build.flag(
            f"calls tool '{call.name}', but the request's tool_choice allows only "
            f"{_names(choice.allowed)}"
        )
    if scripted.arguments != AUTO:
        _check_arguments(call, tool, f"the arguments of tool call '{call.name}'", build)


def _check_arguments(call: ToolCall, tool: Tool, what: str, build: Build) -> None:
    if tool.kind == "custom":
        return  # (its input is free text: nothing to parse)
    # A function's arguments are a JSON object (the API reference's `arguments`): anything else
    # breaks the agent's json.loads / `**arguments`, so strict mode refuses it like a schema
    # mismatch (a template rendering `Rome`, a string broken on purpose).
    try:
        arguments = jsonbytes.loads(call.arguments)
    except ValueError:
        build.flag(f"{what} are not valid JSON")
        return
    if not isinstance(arguments, dict):
        build.flag(f"{what} are not a JSON object")
        return
    if tool.parameters is None:
        return
    problem = schemas.violation(tool.parameters, arguments)
    if problem is not None:
        build.flag(f"{what} do not match the tool's schema: {problem}")


def _check_text(build: Build) -> None:
    """Text where the request's tool_choice forces a call: the real API never answers so, and
    an app reading `tool_calls[0]` gets nothing (LangChain's function_calling gives None)."""
    forced = _forced(build.exchange)
    if not forced:
        return
    choice = build.exchange.tool_choice
    if choice.mode == "named":
        why = f"the request's tool_choice forces a call to '{choice.name}'"
    else:
        why = f"the request's tool_choice requires a tool call (to {_names(forced)})"
    build.flag(
        f"answers with text, but {why} (script tool_calls, or a json object for one function)"
    )


def _names(tools: tuple[Tool, ...] | tuple[str, ...]) -> str:
    """Tool names for a message, hosted ones by their type (`<file_search>`: file_search)."""
    names = (tool if isinstance(tool, str) else tool.name for tool in tools)
    return ", ".join(name.strip("<>") for name in names)


def _check_json(content: str, build: Build) -> None:
    fmt = build.exchange.response_format
    if fmt is None or fmt.kind == "text":
        return
    try:
        value = jsonbytes.loads(content)
    except ValueError:
        build.flag(f"the request asks for {fmt.kind} output, but the content is not JSON")
        return
    if fmt.kind == "json_object":
        if not isinstance(value, dict):
            build.flag("the request asks for a JSON object, but the content is not an object")
        return
    if fmt.schema is not None:
        problem = schemas.violation(fmt.schema, value)
        if problem is not None:
            build.flag(
                f"the JSON content does not match the response_format schema "
                f"'{fmt.name}': {problem}"
            )
