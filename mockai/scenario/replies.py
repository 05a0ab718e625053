"""Scripted answers: `reply:` and `error:` blocks, compiled at load time, built per request.

A `ReplySpec` becomes a `mockai.reply.Reply` for one request: templates rendered, `arguments: auto`
generated from the tool's own schema, and scripted tool arguments / JSON checked against the schemas
the request carries. A mismatch is a *stale fixture*: a warning (`x-mockai-warning` header and a
log line), or in strict mode a 400 `mockai_stale_fixture` error.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mockai.errors import ApiError
from mockai.exchange import Endpoint, Exchange
from mockai.generate import embeddings, moderation, prose, schema
from mockai.reply import Choice, Reply, ToolCall
from mockai.scenario import schemas, templates
from mockai.scenario.problems import Problems, describe, suggest
from mockai.scenario.yamlsrc import line_of
from mockai.timing import parse_duration
from mockai.wire import errors as wire_errors
from mockai.wire import jsonbytes

if TYPE_CHECKING:
    from faker import Faker

    from mockai.generate.fallback import FallbackGenerator

log = logging.getLogger("mockai")

REPLY_KEYS = (
    "content",
    "json",
    "tool_calls",
    "refusal",
    "finish_reason",
    "usage",
    "vector",
    "vectors",
    "seed",
    "flagged",
    "categories",
    "category_scores",
)
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")
USAGE_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "input_tokens",
    "output_tokens",
)
TOOL_CALL_KEYS = ("name", "arguments", "id")
ERROR_KEYS = ("name", "status", "type", "code", "message", "param", "headers", "retry_after")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_TALKING = (Endpoint.CHAT, Endpoint.RESPONSES, Endpoint.COMPLETIONS)
# A free-form `error: {status: N}` starts from the named error with that status, when there is one.
_BY_STATUS = {
    400: "bad_request",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "model_not_found",
    429: "rate_limit",
    500: "server_error",
    502: "bad_gateway",
    503: "overloaded",
    504: "timeout",
}


class StaleFixture(Exception):
    """A scripted value contradicts the request's schema (an error in strict mode)."""


# --- values with template leaves ------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    """A JSON value whose strings may be templates; constant trees are serialised once."""

    value: Any  # dict / list / Text / scalar
    constant: bool
    text: str | None = None  # the compact JSON of a constant tree

    def render(self, ctx: Mapping[str, Any]) -> Any:
        """The value for this request."""
        return _render_tree(self.value, ctx)

    def json(self, ctx: Mapping[str, Any]) -> str:
        """The compact JSON text for this request."""
        if self.text is not None:
            return self.text
        return jsonbytes.dumps_str(self.render(ctx))


def _render_tree(value: Any, ctx: Mapping[str, Any]) -> Any:
    if isinstance(value, templates.Text):
        return value.render(ctx)
    if isinstance(value, dict):
        return {key: _render_tree(item, ctx) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_tree(item, ctx) for item in value]
    return value


def compile_tree(value: Any, line: int, where: str, problems: Problems) -> Tree | None:
    """A Tree for a JSON-like YAML value (problems recorded for values JSON cannot hold)."""
    before = len(problems.items)
    built, constant = _tree(value, line, where, problems)
    if len(problems.items) > before:
        return None
    return Tree(built, constant, jsonbytes.dumps_str(built) if constant else None)


def _tree(value: Any, line: int, where: str, problems: Problems) -> tuple[Any, bool]:
    if isinstance(value, str):
        text = templates.compile_text(value, line, where, problems)
        if text is None or not text.dynamic:
            return value, True
        return text, False
    if isinstance(value, Mapping):
        out, constant = {}, True
        for key, item in value.items():
            out[str(key)], const = _tree(item, line_of(value, key), where, problems)
            constant &= const
        return out, constant
    if isinstance(value, list):
        items = [_tree(item, line_of(value, i), where, problems) for i, item in enumerate(value)]
        return [built for built, _ in items], all(const for _, const in items)
    if value is None or isinstance(value, (bool, int)):
        return value, True
    if isinstance(value, float) and math.isfinite(value):
        return value, True
    problems.add(line, f"{where}: {value!r} cannot be sent as JSON")
    return None, True


# --- reply specs ----------------------------------------------------------------------------------

AUTO = "auto"


@dataclass(frozen=True)
class ToolCallSpec:
    """One scripted tool call: `arguments` is a Tree, a template Text, or `auto`."""

    name: str
    arguments: Tree | templates.Text | str
    id: str | None = None


@dataclass(frozen=True)
class ReplySpec:
    """A compiled `reply:` block."""

    content: templates.Text | None = None
    json: Tree | None = None
    tool_calls: tuple[ToolCallSpec, ...] = ()
    refusal: templates.Text | None = None
    finish_reason: str | None = None
    usage: Mapping[str, int] | None = None
    vectors: tuple[tuple[float, ...], ...] | None = None
    embedding_seed: int | None = None
    moderation: Mapping[str, Any] | None = None
    dynamic: bool = field(default=False)  # needs a seeded faker (templates, auto arguments)

    @property
    def generated(self) -> bool:
        """True when nothing is scripted for the text: the generator fills the answer in."""
        return (
            self.content is None
            and self.json is None
            and not self.tool_calls
            and self.refusal is None
        )


def compile_reply(value: Any, line: int, where: str, problems: Problems) -> ReplySpec | None:
    """The ReplySpec for a `reply:` value; every problem recorded."""
    if isinstance(value, str):  # shorthand: `reply: hello` is `reply: {content: hello}`
        value = {"content": value}
    if not isinstance(value, Mapping):
        problems.add(
            line, f"{where}: reply must be a mapping such as {{content: hi}}, got {describe(value)}"
        )
        return None
    before = len(problems.items)
    for key in value:
        if key not in REPLY_KEYS:
            problems.add(
                line_of(value, key),
                f"unknown key '{key}' in {where} reply" + suggest(key, REPLY_KEYS),
            )
    _exclusive(value, ("content", "json", "refusal"), line, where, problems)
    _exclusive(value, ("refusal", "tool_calls"), line, where, problems)
    _exclusive(value, ("vector", "vectors", "seed"), line, where, problems)
    at = f"{where} reply"
    spec = ReplySpec(
        content=_text(value, "content", at, problems),
        json=_json(value, at, problems),
        tool_calls=_tool_calls(value, at, problems),
        refusal=_text(value, "refusal", at, problems),
        finish_reason=_finish_reason(value, at, problems),
        usage=_usage(value, at, problems),
        vectors=_vectors(value, at, problems),
        embedding_seed=_embedding_seed(value, at, problems),
        moderation=_moderation(value, at, problems),
    )
    if len(problems.items) > before:
        return None
    dynamic = any(isinstance(t, templates.Text) and t.dynamic for t in (spec.content, spec.refusal))
    dynamic |= spec.json is not None and not spec.json.constant
    for call in spec.tool_calls:
        args = call.arguments
        dynamic |= args == AUTO or (isinstance(args, templates.Text) and args.dynamic)
        dynamic |= isinstance(args, Tree) and not args.constant
    return dataclasses.replace(spec, dynamic=dynamic)


def _exclusive(
    value: Mapping[str, Any], keys: tuple[str, ...], line: int, where: str, problems: Problems
) -> None:
    given = [key for key in keys if key in value]
    if len(given) > 1:
        problems.add(
            line_of(value, given[1]),
            f"{where} reply has both '{given[0]}' and '{given[1]}': give only one of "
            + ", ".join(keys),
        )


def _text(value: Mapping[str, Any], key: str, where: str, problems: Problems) -> Any:
    if key not in value:
        return None
    text, line = value[key], line_of(value, key)
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):
        problems.add(line, f"{where}.{key} must be a string, got {describe(text)}")
        return None
    return templates.compile_text(text, line, f"{where}.{key}", problems)


def _json(value: Mapping[str, Any], where: str, problems: Problems) -> Tree | None:
    if "json" not in value:
        return None
    return compile_tree(value["json"], line_of(value, "json"), f"{where}.json", problems)


def _tool_calls(
    value: Mapping[str, Any], where: str, problems: Problems
) -> tuple[ToolCallSpec, ...]:
    raw = value.get("tool_calls")
    if raw is None:
        return ()
    line = line_of(value, "tool_calls")
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list) or not items:
        problems.add(
            line,
            f"{where}.tool_calls must be a list such as [{{name: get_weather, arguments: "
            f"{{city: Paris}}}}], got {describe(raw)}",
        )
        return ()
    calls = []
    for index, item in enumerate(items):
        spot = line_of(items, index) if items is raw else line
        call = _tool_call(item, spot, f"{where}.tool_calls[{index}]", problems)
        if call is not None:
            calls.append(call)
    return tuple(calls)


def _tool_call(item: Any, line: int, where: str, problems: Problems) -> ToolCallSpec | None:
    if not isinstance(item, Mapping):
        problems.add(line, f"{where} must be a mapping with a name, got {describe(item)}")
        return None
    for key in item:
        if key not in TOOL_CALL_KEYS:
            problems.add(
                line_of(item, key), f"unknown key '{key}' in {where}" + suggest(key, TOOL_CALL_KEYS)
            )
    name = item.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        problems.add(
            line_of(item, "name") if "name" in item else line,
            f"{where} needs a name of letters, digits, _ or - (at most 64), got {describe(name)}",
        )
        return None
    call_id = item.get("id")
    if call_id is not None and not isinstance(call_id, str):
        problems.add(line_of(item, "id"), f"{where}.id must be a string, got {describe(call_id)}")
    arguments = _arguments(item, line, where, problems)
    if arguments is None:
        return None
    return ToolCallSpec(name, arguments, call_id)


def _arguments(item: Mapping[str, Any], line: int, where: str, problems: Problems) -> Any:
    raw = item.get("arguments", {})
    spot = line_of(item, "arguments") if "arguments" in item else line
    if raw == AUTO:
        return AUTO
    if isinstance(raw, str):  # a JSON string, sent as is (maybe broken on purpose)
        return templates.compile_text(raw, spot, f"{where}.arguments", problems)
    if isinstance(raw, Mapping):
        return compile_tree(raw, spot, f"{where}.arguments", problems)
    problems.add(
        spot,
        f"{where}.arguments must be a mapping, a JSON string or 'auto', got {describe(raw)}",
    )
    return None


def _finish_reason(value: Mapping[str, Any], where: str, problems: Problems) -> str | None:
    reason = value.get("finish_reason")
    if reason is None:
        return None
    if reason not in FINISH_REASONS:
        problems.add(
            line_of(value, "finish_reason"),
            f"{where}.finish_reason: {describe(reason)} is not a finish reason"
            + suggest(reason, FINISH_REASONS, noun="valid"),
        )
        return None
    return str(reason)


def _usage(value: Mapping[str, Any], where: str, problems: Problems) -> Mapping[str, int] | None:
    raw = value.get("usage")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.add(
            line_of(value, "usage"),
            f"{where}.usage must be a mapping such as {{prompt_tokens: 10, completion_tokens: 5}}",
        )
        return None
    usage = {}
    for key, number in raw.items():
        spot = line_of(raw, key)
        if key not in USAGE_KEYS:
            problems.add(spot, f"unknown key '{key}' in {where}.usage" + suggest(key, USAGE_KEYS))
        elif not isinstance(number, int) or isinstance(number, bool) or number < 0:
            problems.add(
                spot, f"{where}.usage.{key} must be a whole number >= 0, got {describe(number)}"
            )
        else:
            usage[key] = number
    return usage


def _numbers(raw: Any) -> tuple[float, ...] | None:
    if not isinstance(raw, list) or not raw:
        return None
    if not all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in raw
    ):
        return None
    return tuple(float(x) for x in raw)


def _vectors(value: Mapping[str, Any], where: str, problems: Problems) -> Any:
    if "vector" in value:
        vector = _numbers(value["vector"])
        if vector is None:
            problems.add(
                line_of(value, "vector"), f"{where}.vector must be a non-empty list of numbers"
            )
            return None
        return (vector,)
    if "vectors" not in value:
        return None
    raw = value["vectors"]
    vectors = [_numbers(v) for v in raw] if isinstance(raw, list) and raw else [None]
    if any(v is None for v in vectors):
        problems.add(
            line_of(value, "vectors"),
            f"{where}.vectors must be a list of non-empty lists of numbers (one per input)",
        )
        return None
    return tuple(vectors)


def _embedding_seed(value: Mapping[str, Any], where: str, problems: Problems) -> int | None:
    seed = value.get("seed")
    if seed is None:
        return None
    if not isinstance(seed, int) or isinstance(seed, bool):
        problems.add(
            line_of(value, "seed"), f"{where}.seed must be a whole number, got {describe(seed)}"
        )
        return None
    return seed


def _moderation(value: Mapping[str, Any], where: str, problems: Problems) -> Any:
    result: dict[str, Any] = {}
    if "flagged" in value:
        if not isinstance(value["flagged"], bool):
            problems.add(line_of(value, "flagged"), f"{where}.flagged must be true or false")
        result["flagged"] = value["flagged"]
    for key, check in (("categories", _is_bool), ("category_scores", _is_score)):
        if key not in value:
            continue
        raw = value[key]
        if not isinstance(raw, Mapping):
            problems.add(line_of(value, key), f"{where}.{key} must be a mapping of categories")
            continue
        for name, setting in raw.items():
            if name not in moderation.CATEGORIES:
                problems.add(
                    line_of(raw, name),
                    f"{where}.{key}: '{name}' is not a moderation category"
                    + suggest(name, moderation.CATEGORIES, noun="categories"),
                )
            elif not check(setting):
                wanted = "true or false" if key == "categories" else "a number between 0 and 1"
                problems.add(line_of(raw, name), f"{where}.{key}.{name} must be {wanted}")
        result[key] = dict(raw)
    return result or None


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_score(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


# --- errors ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorSpec:
    """A compiled `error:`: a named error, optionally with fields and headers overridden."""

    base: str | None  # a NAMED error, or None for a status without one
    status: int
    overrides: Mapping[str, Any]
    headers: Mapping[str, str]

    def build(self) -> ApiError:
        """A fresh ApiError for one request."""
        if self.base is not None:
            error = wire_errors.named(self.base)
        else:
            kind = "server_error" if self.status >= 500 else "invalid_request_error"
            error = ApiError(self.status, f"mockai scripted error {self.status}", type=kind)
        error.status = self.status
        for name, value in self.overrides.items():
            setattr(error, name, value)
        error.args = (error.message,)
        error.headers = {**error.headers, **self.headers}
        return error


def compile_error(value: Any, line: int, where: str, problems: Problems) -> ErrorSpec | None:
    """The ErrorSpec for an `error:` value (a name or a mapping)."""
    if isinstance(value, str):
        return _named(value, line, where, problems)
    if not isinstance(value, Mapping):
        problems.add(
            line,
            f"{where}: error must be a named error (rate_limit, server_error, ...) or a mapping "
            f"such as {{status: 503}}, got {describe(value)}",
        )
        return None
    before = len(problems.items)
    for key in value:
        if key not in ERROR_KEYS:
            problems.add(
                line_of(value, key),
                f"unknown key '{key}' in {where} error" + suggest(key, ERROR_KEYS),
            )
    base = (
        _named(value["name"], line_of(value, "name"), where, problems) if "name" in value else None
    )
    status = value.get("status", base.status if base is not None else None)
    if status is None:
        problems.add(line, f"{where} error needs a status (400-599) or a name such as rate_limit")
        return None
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        problems.add(
            line_of(value, "status"),
            f"{where} error.status must be an HTTP error status (400-599), got {describe(status)}",
        )
        return None
    overrides = _error_fields(value, where, problems)
    headers = _error_headers(value, where, problems)
    if len(problems.items) > before:
        return None
    name = base.base if base is not None else _BY_STATUS.get(status)
    if base is not None:
        overrides = {**base.overrides, **overrides}
    return ErrorSpec(name, status, overrides, headers)


def _named(name: Any, line: int, where: str, problems: Problems) -> ErrorSpec | None:
    if name not in wire_errors.NAMED:
        problems.add(
            line,
            f"{where}: {describe(name)} is not a named error"
            + suggest(name, wire_errors.NAMED, noun="named errors"),
        )
        return None
    return ErrorSpec(name, wire_errors.named(name).status, {}, {})


def _error_fields(value: Mapping[str, Any], where: str, problems: Problems) -> dict[str, Any]:
    out = {}
    for key in ("type", "code", "message", "param"):
        if key not in value:
            continue
        text = value[key]
        nullable = key in ("code", "param")
        if not isinstance(text, str) and not (nullable and text is None):
            problems.add(
                line_of(value, key),
                f"{where} error.{key} must be a string{' or null' if nullable else ''}, "
                f"got {describe(text)}",
            )
        out[key] = text
    return out


def _error_headers(value: Mapping[str, Any], where: str, problems: Problems) -> dict[str, str]:
    headers: dict[str, str] = {}
    raw = value.get("headers") or {}
    if not isinstance(raw, Mapping):
        problems.add(line_of(value, "headers"), f"{where} error.headers must be a mapping")
        raw = {}
    for name, setting in raw.items():
        if isinstance(setting, bool) or not isinstance(setting, (str, int, float)):
            problems.add(
                line_of(raw, name), f"{where} error.headers.{name} must be a string or a number"
            )
            continue
        headers[str(name).lower()] = str(setting)
    if "retry_after" in value:
        try:
            seconds = parse_duration(value["retry_after"])
        except ValueError as error:
            problems.add(line_of(value, "retry_after"), f"{where} error.retry_after: {error}")
        else:
            headers["retry-after"] = f"{seconds:g}" if seconds < 1e15 else str(int(seconds))
            headers["retry-after-ms"] = str(round(seconds * 1000))
    return headers


# --- building a Reply for one request -------------------------------------------------------------


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
        log.warning("mockai: %s", text)
        self.warnings.append(text)


def build_reply(spec: ReplySpec, build: Build) -> Reply:
    """The Reply for one request (raises StaleFixture in strict mode, TemplateRenderError)."""
    with _faker_for(spec, build) as faker:
        ctx = templates.context(build.exchange, faker, build.call) if faker is not None else {}
        choices = _choices(spec, build, ctx, faker)
    reply = Reply(
        choices=choices,
        embeddings=_embeddings(spec, build.exchange),
        moderation=(spec.moderation,) if spec.moderation else None,
        usage=spec.usage,
    )
    _check(spec, reply, build)
    return dataclasses.replace(reply, warnings=tuple(build.warnings)) if build.warnings else reply


@contextmanager
def _faker_for(spec: ReplySpec, build: Build) -> Iterator[Faker | None]:
    if not spec.dynamic:
        with nullcontext():
            yield None
        return
    with prose.seeded_faker(int.from_bytes(build.key[16:24], "big")) as faker:
        yield faker


def _choices(
    spec: ReplySpec, build: Build, ctx: Mapping[str, Any], faker: Faker | None
) -> tuple[Choice, ...]:
    exchange = build.exchange
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
    parameters = tool.parameters or {"type": "object", "properties": {}}
    rng = random.Random(int.from_bytes(build.key[:16], "big") + 7919 * (index + 1))
    try:
        value = schema.instance(parameters, rng, faker=faker, context=build.exchange.user_text)
    except schema.SchemaGenerationError as error:
        build.warn(f"{build.label}: cannot generate arguments for tool '{name}': {error}")
        return "{}"
    return jsonbytes.dumps_str(value)


def _embeddings(spec: ReplySpec, exchange: Exchange) -> tuple[Any, ...] | None:
    if spec.vectors is not None:
        return spec.vectors
    if spec.embedding_seed is None or exchange.endpoint is not Endpoint.EMBEDDINGS:
        return None
    from mockai.catalog import infer

    return embeddings.reply_for(
        exchange, infer(exchange.model).dimensions, spec.embedding_seed
    ).embeddings


# --- stale fixtures -------------------------------------------------------------------------------


def _check(spec: ReplySpec, reply: Reply, build: Build) -> None:
    exchange = build.exchange
    if exchange.endpoint not in (Endpoint.CHAT, Endpoint.RESPONSES) or spec.generated:
        return
    choice = reply.choices[0]
    for call, scripted in zip(choice.tool_calls, spec.tool_calls, strict=True):
        _check_call(call, scripted, build)
    if len(choice.tool_calls) > 1 and not exchange.parallel_tool_calls:
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
    if scripted.arguments == AUTO or tool.parameters is None:
        return
    try:
        arguments = jsonbytes.loads(call.arguments)
    except ValueError:
        build.warn(f"{build.label}: the arguments of tool call '{call.name}' are not valid JSON")
        return
    problem = schemas.violation(tool.parameters, arguments)
    if problem is not None:
        build.flag(
            f"the arguments of tool call '{call.name}' do not match the tool's schema: {problem}"
        )


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
