"""Request parsing shared by the endpoint codecs: field checks, text, tools, formats, stops."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mockai import tokens
from mockai.api import schemacheck
from mockai.api.fieldrules import (
    FieldRule,
    invalid_value,
    missing,
    type_error,
    unknown_parameter,
)
from mockai.api.spec_fields import FIELDS
from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.pipeline import workload
from mockai.pipeline.exchange import Endpoint, Message, ResponseFormat, Tool, ToolChoice
from mockai.wire import jsonbytes

# The spec's rule for function and response-format names: "Must be a-z, A-Z, 0-9, or contain
# underscores and dashes, with a maximum length of 64." (Matched whole: `$` would let a trailing
# newline through.)
_NAME = re.compile(r"[a-zA-Z0-9_-]+")
_MAX_NAME = 64
# A chat function's description, in characters (the API's 400 past it: quoted in
# getsentry/sentry-mcp#106, langchain-ai/open_deep_research#80, microsoft/genaiscript#1381, for
# MCP tools whose descriptions run to thousands).
_MAX_DESCRIPTION = 1024


def item_type(item: Mapping[str, Any]) -> Any:
    """A Responses input item's type, as the API reads an item sent without one: a reference
    when it only names an item (`{"id": ...}`: a reference's `type` is optional), else an "easy"
    message (`{"role": ..., "content": ...}`). Whatever a `type` given holds is returned as is."""
    kind = item.get("type")
    if kind is not None:
        return kind
    if "id" in item and "role" not in item and "content" not in item:
        return "item_reference"
    return "message"


def require_object(body: Any) -> Mapping[str, Any]:
    """The body must be a JSON object."""
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "Invalid body: expected a JSON object at the top level.",
            param=None,
            code="invalid_type",
        )
    return body


def check_fields(
    endpoint: str,
    body: Mapping[str, Any],
    *,
    strict: bool,
    provider: str = "openai",
    model_rules: bool = True,
) -> None:
    """Check every top-level field against the spec's table.

    Lenient by default, because the spec lags the API: unknown fields pass, `null` means "not
    given", and enums (which gain values between spec releases) are not enforced. `strict` rejects
    all three the way the API does, and under a provider's profile (`provider`) as that provider
    does: its own fields and values are known, and one that ignores unknown fields ignores them.
    Under OpenAI's own profile, chat's content arrays are held to the spec's part unions either
    way (no spec lag there: the API refuses them), and `strict` walks into messages, parts,
    chat tools and Responses input messages for their keys and types too. Not `model_rules`
    (`ParseContext.model_rules`: over a cassette or an upstream), `"model": ""` is left to it.
    """
    if strict and provider != "openai":
        rules, others_pass = _provider_rules(endpoint, provider)
    else:
        rules, others_pass = (FIELDS[endpoint] if strict else _lenient(endpoint)), not strict
    for name, value in body.items():
        rule = rules.get(name)
        if rule is None:
            if not others_pass:
                raise unknown_parameter(name)
            continue
        if type(value) in rule.passing:
            continue
        if value is None and not strict and not rule.required:
            continue
        rule.check(name, value)
    for name in _required(endpoint):
        if body.get(name) is None:
            if name == "model" and endpoint in _MODEL_ROUTED and provider == "openai":
                raise no_model()
            raise missing(name)
    if endpoint in _MODEL_ROUTED and provider == "openai" and model_rules and body["model"] == "":
        # (Not over a cassette or an upstream: a server that serves one model, llama.cpp's,
        # takes `""`, and a recording of it must replay.)
        raise no_model()
    if endpoint == "chat" and provider != "openai":  # (a provider's own messages are not OpenAI's)
        return
    if endpoint == "chat":
        _check_messages(body.get("messages"), keys=strict)
        if strict:
            _check_chat_tools(body.get("tools"))
    elif endpoint == "responses" and strict:
        _check_input_keys(body.get("input"))
    # Their types always (the API's 400 for `reasoning.effort: 5`), their values with `strict`.
    _check_nested_enums(endpoint, body, values=strict)


# The endpoints whose requests the API routes by their model before reading them: a request
# naming none (or "") is refused in the router's words, not as a missing parameter.
_MODEL_ROUTED = frozenset({"chat", "completions", "embeddings"})


def no_model() -> ApiError:
    """The API's 400 for a chat, completions or embeddings request without a model (or with
    ""), in its own words, with no param and no code (as apps sending none report it:
    mckaywrigley/chatbot-ui#656, transitive-bullshit/agentic#530, council's curl against
    api.openai.com in chain-ml/council#45); mockai said "Missing required parameter: 'model'."
    with a param and a code, and answered `"model": ""`."""
    return ApiError(400, "you must provide a model parameter")


# The spec's enums inside a field, which the generated table (top-level fields) does not hold:
# `IncludeEnum`, `ReasoningEffort` and `Reasoning.summary`, in the spec's order (the API lists
# them so in its 400). Enforced with `strict` only, as the top-level enums are.
INCLUDE_VALUES = (
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
)
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
REASONING_SUMMARIES = ("auto", "concise", "detailed")
VERBOSITIES = ("low", "medium", "high")  # `Verbosity`
# The `type`s of the spec's `ToolChoiceParam` objects (allowed tools, `ToolChoiceTypes`' hosted
# tools, a function, MCP, custom, and the specific built-in choices), in the spec's order.
TOOL_CHOICE_TYPES = (
    "allowed_tools",
    "file_search",
    "web_search_preview",
    "computer",
    "computer_use_preview",
    "computer_use",
    "web_search_preview_2025_03_11",
    "image_generation",
    "code_interpreter",
    "function",
    "mcp",
    "custom",
    "programmatic_tool_calling",
    "apply_patch",
    "shell",
)
# Per endpoint: (field, key in it, allowed values); key None: each item of the array field.
_NESTED_ENUMS: dict[str, tuple[tuple[str, str | None, tuple[str, ...]], ...]] = {
    "chat": (("modalities", None, ("text", "audio")),),
    "responses": (
        ("include", None, INCLUDE_VALUES),
        ("reasoning", "effort", REASONING_EFFORTS),
        ("reasoning", "summary", REASONING_SUMMARIES),
        ("text", "verbosity", VERBOSITIES),
        ("tool_choice", "type", TOOL_CHOICE_TYPES),
    ),
}


def _check_nested_enums(endpoint: str, body: Mapping[str, Any], *, values: bool) -> None:
    """The API's 400 for an enum of an array's items or an object's key that is not a string,
    and (`values`) for one outside the enum."""
    for name, key, allowed in _NESTED_ENUMS.get(endpoint, ()):
        value = body.get(name)
        if key is None and isinstance(value, list):
            for index, item in enumerate(value):
                _check_enum(f"{name}[{index}]", item, allowed, values)
        elif key is not None and isinstance(value, dict) and value.get(key) is not None:
            _check_enum(f"{name}.{key}", value[key], allowed, values)


def _check_enum(param: str, value: Any, allowed: tuple[str, ...], values: bool = True) -> None:
    if not isinstance(value, str):
        raise type_error(param, ("string",), value)
    if values and value not in allowed:
        raise invalid_value(param, value, allowed)


# Chat's closed unions inside `messages`, from the spec's `ChatCompletionRequest*Message`
# schemas: the part types each role's content array takes (its `*ContentPart` union), and the
# keys each message (`properties`) and each part type may carry (the keys with `--strict-requests`
# only). The deprecated `function` role takes no array: its content is left to the codec.
# tests/test_fix6_content_parts.py checks these tables against the vendored spec.
_ROLE_PARTS: dict[str, tuple[str, ...]] = {  # (in the spec's order: the 400 lists them so)
    "developer": ("text",),
    "system": ("text",),
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
}
_MESSAGE_KEYS: dict[str, frozenset[str]] = {
    "developer": frozenset({"role", "content", "name"}),
    "system": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    # (+ `annotations`: the API's answer carries them (`[]`), so the SDK's tool loop,
    # `messages.append(completion.choices[0].message)`, sends them back; the spec lags)
    "assistant": frozenset(
        {
            "role",
            "content",
            "refusal",
            "name",
            "audio",
            "tool_calls",
            "function_call",
            "annotations",
        }
    ),
    # (+ `name`: the OpenAI cookbook's tool loop sends it to the API, as LangChain JS's
    # ToolMessage and litellm's docs do; the spec lags)
    "tool": frozenset({"role", "content", "tool_call_id", "name"}),
    "function": frozenset({"role", "content", "name"}),
}
_PART_KEYS: dict[str, frozenset[str]] = {
    "text": frozenset({"type", "text", "prompt_cache_breakpoint"}),
    "image_url": frozenset({"type", "image_url", "prompt_cache_breakpoint"}),
    "input_audio": frozenset({"type", "input_audio", "prompt_cache_breakpoint"}),
    "file": frozenset({"type", "file", "prompt_cache_breakpoint"}),
    "refusal": frozenset({"type", "refusal"}),
}
# What each part type requires: a string (text, refusal) or an object, and that object's
# required strings (`image_url.url`, `input_audio.data` / `.format`; a `file` names none).
_PART_STRINGS = frozenset({"text", "refusal"})
_PART_OBJECTS: dict[str, tuple[str, ...]] = {
    "image_url": ("url",),
    "input_audio": ("data", "format"),
    "file": (),
}
# A content array holds at least one part (every message schema's `minItems: 1`).
_CONTENT_ARRAY = FieldRule(types=frozenset({"array"}), min_items=1)


def _check_messages(messages: Any, *, keys: bool) -> None:
    """Chat's content arrays against their role's part union, and with `keys` every message's
    and part's keys (the API's `Unknown parameter: 'messages[0].id'.`). Stops at the first
    message the codec refuses on its own (not an object, no known role), so that its error,
    not a later message's, is the one reported."""
    if type(messages) is not list:
        return
    for index, message in enumerate(messages):
        if type(message) is not dict:
            return
        role = message.get("role")
        if not isinstance(role, str) or role not in _MESSAGE_KEYS:
            return
        if keys:
            _check_keys(message, _MESSAGE_KEYS[role], f"messages[{index}]")
        content = message.get("content")
        if (
            type(content) is list
            and role in _ROLE_PARTS
            and (keys or not content or not all(_plain_part(part, role) for part in content))
        ):
            where = f"messages[{index}].content"
            _check_chat_parts(content, where, _ROLE_PARTS[role], keys=keys)


def _plain_part(part: Any, role: str) -> bool:
    """Whether `part` is beyond reproach for `role` (the way nearly every request's parts are),
    told without making a string: every chat request walks its parts, and the paths of the
    400 (`messages[0].content[1].image_url`) are made only for a part that may need one."""
    if type(part) is not dict:
        return True  # (a bare string is read as text; anything else is content_text's 400)
    kind = part.get("type")
    if kind not in _ROLE_PARTS[role]:
        return False
    if kind in _PART_STRINGS:
        return type(part.get(kind)) is str
    inner = part.get(kind)
    return type(inner) is dict and all(type(inner.get(key)) is str for key in _PART_OBJECTS[kind])


def _check_chat_parts(
    content: list[Any], where: str, allowed: tuple[str, ...], *, keys: bool
) -> None:
    """One message's content parts: each of a type its role takes, with what that type requires
    (the API's 400 naming `where[j].field`, in the words the moderations endpoint uses too)."""
    _CONTENT_ARRAY.check(where, content)
    for index, part in enumerate(content):
        if type(part) is not dict:
            continue  # (as `_plain_part`)
        at = f"{where}[{index}]"
        kind = part.get("type")
        if kind is None:
            raise missing(f"{at}.type")
        _check_enum(f"{at}.type", kind, allowed)
        if kind in _PART_STRINGS:
            required_string(part, kind, at)
        else:
            inner = object_field(part, kind, at)
            for key in _PART_OBJECTS[kind]:
                required_string(inner, key, f"{at}.{kind}")
        if keys:
            _check_keys(part, _PART_KEYS[kind], at)


def required_string(raw: Mapping[str, Any], key: str, where: str) -> str:
    """`raw[key]`, a string: else the API's 400 naming `where.key` (missing, or mistyped)."""
    value = raw.get(key)
    if value is None:
        raise missing(f"{where}.{key}")
    if not isinstance(value, str):
        raise type_error(f"{where}.{key}", ("string",), value)
    return value


# Chat's `tools` union (`ChatCompletionTool`, `CustomToolChatCompletions`): each type's keys
# nested under its name (`FunctionObject`'s properties, the custom tool's `custom`).
_CHAT_TOOL_KEYS: dict[str, frozenset[str]] = {
    "function": frozenset({"name", "description", "parameters", "strict"}),
    "custom": frozenset({"name", "description", "format"}),
}
_CHAT_TOOL_TYPES = tuple(_CHAT_TOOL_KEYS)


def _check_chat_tools(tools: Any) -> None:
    """With `--strict-requests`: each chat tool of a type in the spec's union, with its keys.
    (Without it, hosted tool types are accepted and ignored: `parse_tool`.)"""
    if type(tools) is not list:
        return
    for index, tool in enumerate(tools):
        if type(tool) is not dict or tool.get("type") is None:
            return  # (parse_tool's 400)
        at = f"tools[{index}]"
        kind = tool["type"]
        _check_enum(f"{at}.type", kind, _CHAT_TOOL_TYPES)
        _check_keys(tool, frozenset({"type", kind}), at)
        spec = tool.get(kind)
        if type(spec) is dict:
            _check_keys(spec, _CHAT_TOOL_KEYS[kind], f"{at}.{kind}")


# A Responses message item's keys (the union of the spec's `EasyInputMessage`, `InputMessage`
# and `OutputMessage`, which an agent resends with its `id`) and its parts' (`InputTextContent`,
# `InputImageContent`, `InputFileContent`, `OutputTextContent`, `RefusalContent`).
_INPUT_MESSAGE_KEYS = frozenset({"type", "id", "role", "content", "phase", "status"})
_INPUT_PART_KEYS: dict[str, frozenset[str]] = {
    "input_text": frozenset({"type", "text", "prompt_cache_breakpoint"}),
    "input_image": frozenset({"type", "image_url", "file_id", "detail", "prompt_cache_breakpoint"}),
    "input_file": frozenset(
        {
            "type",
            "file_id",
            "filename",
            "file_data",
            "file_url",
            "detail",
            "prompt_cache_breakpoint",
        }
    ),
    "output_text": frozenset({"type", "text", "annotations", "logprobs"}),
    "refusal": frozenset({"type", "refusal"}),
}


def _check_input_keys(items: Any) -> None:
    """With `--strict-requests`: the keys of Responses `input` message items and of their parts
    (the part types themselves are the codec's check, strict or not)."""
    if type(items) is not list:
        return
    for index, item in enumerate(items):
        if type(item) is not dict or item_type(item) != "message":
            continue
        at = f"input[{index}]"
        _check_keys(item, _INPUT_MESSAGE_KEYS, at)
        content = item.get("content")
        for place, part in enumerate(content if type(content) is list else ()):
            kind = part.get("type") if type(part) is dict else None
            allowed = _INPUT_PART_KEYS.get(kind) if isinstance(kind, str) else None
            if allowed is not None:
                _check_keys(part, allowed, f"{at}.content[{place}]")


def _check_keys(raw: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    """The API's 400 for a key the spec's schema of `where` does not list."""
    if raw.keys() <= allowed:
        return
    unknown = next(key for key in raw if key not in allowed)
    raise unknown_parameter(f"{where}.{unknown}")


@functools.cache
def _required(endpoint: str) -> tuple[str, ...]:
    """The endpoint's required fields (strict or not, the same ones)."""
    return tuple(name for name, rule in FIELDS[endpoint].items() if rule.required)


# A field the provider takes with any value (declared without values, and not OpenAI's).
_ANY_VALUE = FieldRule(
    types=frozenset({"string", "integer", "number", "boolean", "array", "object", "null"})
)


@functools.cache
def _provider_rules(endpoint: str, provider: str) -> tuple[Mapping[str, FieldRule], bool]:
    """The strict table for requests through `provider`'s profile: OpenAI's with the provider's
    own fields and values (its `extra_fields`, from providers.md), and whether the fields it does
    not know pass (the provider ignores them). Computed once per endpoint and provider."""
    from mockai.profiles import PROFILES  # (profiles import api modules: not at import time)

    profile = PROFILES.get(provider)
    if profile is None or endpoint not in profile.extra_fields.tables:
        return FIELDS[endpoint], False
    extra = profile.extra_fields
    rules = dict(FIELDS[endpoint])
    for name, values in extra.known.items():
        openai_rule = rules.get(name)
        if values is None:
            rules[name] = openai_rule or _ANY_VALUE
        elif openai_rule is not None:
            rules[name] = replace(openai_rule, enum=values)  # the provider's values, not OpenAI's
        else:
            rules[name] = FieldRule(types=frozenset({"string", "null"}), enum=values)
    return rules, extra.others_ignored


@functools.cache
def _lenient(endpoint: str) -> dict[str, FieldRule]:
    """The endpoint's rules without enums (computed once per endpoint)."""
    return {name: replace(rule, enum=None) for name, rule in FIELDS[endpoint].items()}


def object_field(raw: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    """`raw[key]`, which must be an object; else the API's 400 naming `where.key`."""
    value = raw.get(key)
    if value is None:
        raise missing(f"{where}.{key}")
    if not isinstance(value, dict):
        raise type_error(f"{where}.{key}", ("object",), value)
    return value


def optional_string(raw: Mapping[str, Any], key: str, where: str) -> str:
    """`raw[key]` if it is a string, "" if absent or null; else the API's 400."""
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise type_error(f"{where}.{key}", ("string",), value)
    return value


def stream_settings(body: Mapping[str, Any]) -> tuple[bool, bool]:
    """(`stream`, `stream_options.include_usage`); options without streaming are the API's 400."""
    stream = bool(body.get("stream"))
    options = body.get("stream_options")
    if options is not None and not stream:
        raise ApiError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    if not options:
        return stream, False
    # Read as booleans, never by truthiness: `"false"` would turn the usage chunk on.
    for key in _STREAM_FLAGS:
        flag = options.get(key)
        if flag is not None and not isinstance(flag, bool):
            raise type_error(f"stream_options.{key}", ("boolean",), flag)
    return stream, options.get("include_usage") is True


_STREAM_FLAGS = ("include_usage", "include_obfuscation")
# The spec's `logit_bias` is a map from token ids to integers, each a bias from -100 to 100.
_BIAS = FieldRule(types=frozenset({"integer"}), minimum=-100, maximum=100)


def check_logit_bias(body: Mapping[str, Any]) -> None:
    """`logit_bias`: token ids (digit strings) to integer biases in [-100, 100], as the API
    checks it (the field's own type is `check_fields`' concern)."""
    bias = body.get("logit_bias")
    if not isinstance(bias, dict):
        return
    for token, value in bias.items():
        if not (token.isascii() and token.isdigit()):
            raise ApiError(  # (the API's own words for a key that is not a token id)
                400,
                f"Invalid key in 'logit_bias': {token}. You should only be submitting "
                "non-negative integers.",
                param="logit_bias",
                code=None,
            )
        _BIAS.check(f"logit_bias.{token}", value)


# The tiers that serve a request (`service_tier`): what `auto` and `fast` resolve to, and others.
_TIERS = frozenset({"default", "flex", "scale", "priority"})


def service_tier(requested: Any, more: frozenset[str] = frozenset()) -> str:
    """The tier an answer reports (chat and Responses alike), by the spec's `ServiceTier`: `fast`
    is reported as `priority`; a tier that serves requests (`more`: an endpoint's own) as
    itself; `auto`, none, or one unknown (accepted without `--strict-requests`) as the project's
    tier, `default`."""
    if requested == "fast":
        return "priority"
    known = isinstance(requested, str) and (requested in _TIERS or requested in more)
    return requested if known else "default"


def optional(body: Mapping[str, Any], name: str, default: Any) -> Any:
    """`body[name]`, or `default` when absent or null."""
    value = body.get(name)
    return default if value is None else value


def content_text(content: Any, param: str) -> tuple[str, int]:
    """The text of a message `content` (a string or a list of parts) and its image count."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        raise type_error(param, ("string", "array"), content)
    texts: list[str] = []
    images = 0
    for index, part in enumerate(content):
        where = f"{param}[{index}]"
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            raise type_error(where, ("object",), part)
        kind = part.get("type")
        if not isinstance(kind, str):
            raise missing(f"{where}.type")
        if kind in ("text", "input_text", "output_text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise type_error(f"{where}.text", ("string",), text)
            texts.append(text)
        elif kind == "refusal":
            texts.append(str(part.get("refusal") or ""))
        elif kind in ("image_url", "input_image"):
            images += 1
    return "\n".join(texts), images


def parse_stop(value: Any) -> tuple[str, ...]:
    """`stop`: a string or up to four strings."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if len(value) > 4:
        raise ApiError(
            400,
            f"Invalid 'stop': array too long. Expected an array with maximum length 4, "
            f"but got an array with length {len(value)} instead.",
            param="stop",
            code="array_above_max_length",
        )
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise type_error(f"stop[{index}]", ("string",), item)
    return tuple(item for item in value if item)


def prompt_tokens(
    messages: tuple[Message, ...], raw_tools: Any, response_format: ResponseFormat | None = None
) -> int:
    """The prompt size of a conversation, the same on chat and the Responses API.

    OpenAI's accounting: ~3 tokens of framing per message, 1 per name, 3 to prime the reply,
    85 per (low-detail) image; tool definitions are billed roughly as their JSON text, and so
    is a structured output's schema (`format_tokens`).
    """
    total = 3
    for message in messages:
        total += message_tokens(message)
    if raw_tools:
        text = jsonbytes.dumps_str(raw_tools)
        total += _tools_tokens(text)
    if response_format is not None and response_format.schema is not None:
        total += format_tokens(response_format.schema)
    return total


def format_tokens(schema: Any) -> int:
    """What a `json_schema` response format adds to the prompt: the API shows the model its
    schema, and bills it, as the schema's compact JSON without `required`,
    `additionalProperties` and `$schema`, plus 9 tokens (measured against the API's usage in
    openai/openai-cookbook#2140). A structured request was billed as if it had no schema."""
    return _FORMAT_FRAMING + _tools_tokens(jsonbytes.dumps_str(_billed_schema(schema)))


_FORMAT_FRAMING = 9
# Schema keywords the model is not shown (strict mode's `required` and `additionalProperties`
# repeat what the properties say), and the maps whose keys are names, not keywords: a property
# named `required` is shown.
_UNBILLED_KEYWORDS = frozenset({"required", "additionalProperties", "$schema"})
_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})


def _billed_schema(node: Any, names: bool = False) -> Any:
    """`node` without `_UNBILLED_KEYWORDS` at any depth (`names`: a map of names to schemas).
    (Parsed bodies nest at most `jsonbytes.MAX_DEPTH` deep: the recursion is bounded.)"""
    if isinstance(node, list):
        return [_billed_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {key: _billed_schema(value) for key, value in node.items()}
    return {
        key: _billed_schema(value, names=key in _NAME_MAPS)
        for key, value in node.items()
        if key not in _UNBILLED_KEYWORDS
    }


# An app sends the same tool definitions with every request: their count (a tokenizer pass
# over a few KB of JSON, ~10% of a tool-calling request) is kept for the last 128 sets of up
# to 32 KiB each.
_tools_tokens = tokens.kept_counts(128, 32 * 1024)


def message_tokens(message: Message) -> int:
    """One message's share of `prompt_tokens` (a conversation is resent with every turn: an
    agent loop's turn counts its new messages, the others' counts are kept)."""
    total = 3 + tokens.count_again(message.text) + (1 if message.name else 0)
    total += 85 * message.images
    for call in message.tool_calls:
        total += 4 + tokens.count_again(call.name) + tokens.count_again(call.arguments)
    return total


# The providers whose API holds schemas to OpenAI's rules beyond JSON Schema's, refusing them
# otherwise: a function's parameters hold no array without `items`, and a schema sent with
# `strict: true` has every object closed and every property required. OpenAI's, and Azure's,
# which serves the same models (the same 400s: outlines#844). Others take schemas their own way.
OPENAI_RULES = frozenset({"openai", "azure"})


def parse_tool(
    raw: Any, param: str, *, flat: bool, strict_default: bool = False, openai_rules: bool = False
) -> Tool:
    """One entry of `tools`: nested under `function` for chat, flat for the Responses API.

    `openai_rules`: whether the function is held to OpenAI's rules (`OPENAI_RULES`): its
    schema to strict mode's when it asks for `strict: true`, else to the few the API holds every
    function to; a chat function's description to 1024 characters.
    """
    if not isinstance(raw, dict):
        raise type_error(param, ("object",), raw)
    kind = raw.get("type")
    if kind is None:
        raise missing(f"{param}.type")
    if kind == "custom":
        spec = raw if flat else object_field(raw, "custom", param)
        where = param if flat else f"{param}.custom"
        name = spec.get("name")
        if not isinstance(name, str):
            raise missing(f"{where}.name")
        _check_custom_format(spec.get("format"), f"{where}.format", flat=flat)
        return Tool(
            name=name, description=optional_string(spec, "description", where), kind="custom"
        )
    if kind != "function" and openai_rules and not flat and raw.get("function") is None:
        # Chat takes function and custom tools only: a Responses API hosted tool sent to it
        # (`{"type": "web_search_preview"}`) is the API's 400 in these words (quoted in
        # BerriAI/litellm#9914); mockai answered as if it were offered. (A type the spec does
        # not list beside a function definition is `--strict-requests`'s to refuse, as other
        # enum values are: the spec lags the API.)
        raise ApiError(
            400,
            f"Invalid type for '{param}.function': expected a function definition, but got "
            "null instead.",
            param=f"{param}.function",
            code="invalid_type",
        )
    if kind != "function":
        # Hosted tools (web_search, file_search, ...) are accepted; the mock never calls them.
        return Tool(name=f"<{kind}>", kind="custom")
    spec = raw if flat else object_field(raw, "function", param)
    where = param if flat else f"{param}.function"
    name = spec.get("name")
    if name is None:
        raise missing(f"{where}.name")
    if not isinstance(name, str):
        raise type_error(f"{where}.name", ("string",), name)
    _check_name(name, f"{where}.name")
    description = optional_string(spec, "description", where)
    if openai_rules and not flat and len(description) > _MAX_DESCRIPTION:
        # (Chat's rule: the Responses API takes longer ones, as Codex's tools have.)
        raise ApiError(
            400,
            f"Invalid '{where}.description': string too long. Expected a string with maximum "
            f"length {_MAX_DESCRIPTION}, but got a string with length {len(description)} "
            "instead.",
            param=f"{where}.description",
            code="string_above_max_length",
        )
    parameters = spec.get("parameters")
    if parameters is not None:
        _check_schema(
            parameters, f"{where}.parameters", f"function '{name}'", "invalid_function_parameters"
        )
        _check_object_schema(parameters, f"{where}.parameters", name, openai_rules=openai_rules)
        if openai_rules:
            # (Strict mode's rules only when asked for: a Responses function that leaves `strict`
            # out is made strict where its schema allows it, and called best effort where it
            # does not.)
            _check_rules(
                parameters,
                f"{where}.parameters",
                f"function '{name}'",
                "invalid_function_parameters",
                strict=spec.get("strict") is True,
            )
            _check_has_properties(parameters, f"{where}.parameters", name)
    return Tool(
        name=name,
        description=description,
        parameters=parameters,
        strict=strict_default if spec.get("strict") is None else bool(spec["strict"]),
    )


def _check_name(name: str, param: str) -> None:
    """A function's or a response format's name: the API's 400 when too long or when it holds
    other characters than letters, digits, `_` and `-` (the length is checked first)."""
    if len(name) > _MAX_NAME:
        raise ApiError(
            400,
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{_MAX_NAME}, but got a string with length {len(name)} instead.",
            param=param,
            code="string_above_max_length",
        )
    if not _NAME.fullmatch(name):
        raise ApiError(
            400,
            f"Invalid '{param}': string does not match pattern. Expected a string that "
            f"matches the pattern '^[a-zA-Z0-9_-]+$'.",
            param=param,
            code="invalid_value",
        )


def _check_object_schema(
    parameters: Mapping[str, Any], param: str, name: str, *, openai_rules: bool = False
) -> None:
    """A function's arguments are a JSON object: the API refuses parameters of another top-level
    type. `{}` is taken as an object (a function without arguments); so is any schema without
    `type` unless held to OpenAI's rules (`OPENAI_RULES`), which refuse one that says something
    else, a root `anyOf` (Zod's discriminatedUnion, TypeBox's Union) or `properties` alone, as
    of type None (the API's words quoted by the AI SDK's and TypeBox's users: `got 'type:
    "None"'`)."""
    kind = parameters.get("type", None if openai_rules and parameters else "object")
    if kind != "object":
        raise _not_an_object(f"function '{name}'", kind, param, "invalid_function_parameters")


def _not_an_object(owner: str, kind: Any, param: str, code: str | None) -> ApiError:
    """The API's 400 for a schema that must be an object's and is not (`kind`: its `type`, None
    when it has none, which the API prints as Python does)."""
    got = f'"{kind}"' if isinstance(kind, str) or kind is None else jsonbytes.dumps_str(kind)
    return ApiError(
        400,
        f"Invalid schema for {owner}: schema must be a JSON Schema of 'type: \"object\"', got "
        f"'type: {got}'.",
        param=param,
        code=code,
    )


def _check_has_properties(parameters: Mapping[str, Any], param: str, name: str) -> None:
    """The API refuses a function whose parameters are `{"type": "object"}` with no `properties`
    (an MCP tool without arguments, say), strict or not, on chat and the Responses API alike, in
    these words (quoted in evalstate/fast-agent#143, karakeep-app/karakeep#1696,
    tailcallhq/forgecode#1359); `"properties": {}` is the fix those projects made. A function
    without `parameters` is taken."""
    if parameters.get("type") == "object" and "properties" not in parameters:
        raise ApiError(
            400,
            f"Invalid schema for function '{name}': In context=(), object schema missing "
            "properties.",
            param=param,
            code="invalid_function_parameters",
        )


def _check_custom_format(fmt: Any, where: str, *, flat: bool) -> None:
    """A custom tool's `format`: `{"type": "text"}`, or a grammar, `{"type": "grammar",
    "syntax": "lark" | "regex", "definition": str}`, with `syntax` and `definition` nested under
    `grammar` on chat (the generator reads them from the body: `tools.custom_grammar`)."""
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise type_error(where, ("object",), fmt)
    kind = fmt.get("type")
    if kind is None:
        raise missing(f"{where}.type")
    if kind == "text":
        return
    if kind != "grammar":
        raise invalid_value(f"{where}.type", kind, ("text", "grammar"))
    grammar: Any = fmt
    if not flat:
        where, grammar = f"{where}.grammar", fmt.get("grammar")
        if grammar is None:
            raise missing(where)
        if not isinstance(grammar, dict):
            raise type_error(where, ("object",), grammar)
    for key in ("definition", "syntax"):
        if grammar.get(key) is None:
            raise missing(f"{where}.{key}")
    if not isinstance(grammar["definition"], str):
        raise type_error(f"{where}.definition", ("string",), grammar["definition"])
    if grammar["syntax"] not in ("lark", "regex"):
        raise invalid_value(f"{where}.syntax", grammar["syntax"], ("lark", "regex"))


def parse_tools(
    raw: Any, *, flat: bool, strict_default: bool = False, openai_rules: bool = False
) -> tuple[Tool, ...]:
    """The `tools` list (already type-checked as an array).

    `strict_default`: whether a function tool that does not say `strict` is strict (the
    Responses API treats it as strict, chat does not).
    """
    if not raw:
        return ()
    tools = tuple(
        parse_tool(
            item, f"tools[{i}]", flat=flat, strict_default=strict_default, openai_rules=openai_rules
        )
        for i, item in enumerate(raw)
    )
    seen: set[str] = set()
    for tool in tools:
        if tool.name in seen and not tool.name.startswith("<"):
            raise ApiError(
                400,
                f"Invalid 'tools': duplicate function name '{tool.name}'.",
                param="tools",
                code="invalid_value",
            )
        seen.add(tool.name)
    return tools


_AUTO, _NONE = ToolChoice("auto"), ToolChoice("none")  # (frozen: every request may share them)


def parse_tool_choice(
    raw: Any, tools: tuple[Tool, ...], *, flat: bool, alone: bool = False
) -> ToolChoice:
    """`tool_choice`: none | auto | required | a named function or custom tool | allowed_tools |
    a hosted tool (`{"type": "file_search"}`: a call required among the offered tools of that
    type). `alone`: one without tools is taken, as nothing to call (over a cassette or an
    upstream, whose answer is the recording's or the upstream's, not the API's 400)."""
    if raw is None or (alone and not tools):
        return _AUTO if tools else _NONE
    if not tools and raw != "none":
        raise ApiError(
            400,
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
            "specified.",
            param="tool_choice",
            code=None,
        )
    if isinstance(raw, str):
        if raw not in ("none", "auto", "required"):
            raise invalid_value("tool_choice", raw, ("none", "auto", "required"))
        return ToolChoice(raw)  # type: ignore[arg-type]
    if not isinstance(raw, dict):
        raise type_error("tool_choice", ("string", "object"), raw)
    kind = raw.get("type")
    if kind == "allowed_tools":
        spec = raw if flat else object_field(raw, "allowed_tools", "tool_choice")
        where = "tool_choice" if flat else "tool_choice.allowed_tools"
        mode = spec.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise invalid_value(f"{where}.mode", mode, ("auto", "required"))
        allowed = _allowed_names(spec, where)
        for listed in allowed:
            if listed.startswith("<"):  # a hosted tool, `<file_search>`: offered by its type
                _offered_hosted(listed[1:-1], tools)
            else:
                _check_offered(listed, tools)
        return ToolChoice(mode, allowed=allowed)
    if kind in ("function", "custom"):
        spec = raw if flat else object_field(raw, kind, "tool_choice")
        name = spec.get("name")
        if not isinstance(name, str):
            raise missing("tool_choice.name" if flat else f"tool_choice.{kind}.name")
        _check_offered(name, tools)
        return ToolChoice("named", name=name)
    if not isinstance(kind, str):
        return _AUTO  # (no `type` to go by: left to the model)
    # A hosted tool ({"type": "file_search"}, ...): a call to one of the offered tools of that
    # type is required. mockai never makes one; its answer is text, and says so (a warning).
    return ToolChoice("required", allowed=_offered_hosted(kind, tools))


def _check_offered(name: str, tools: tuple[Tool, ...]) -> None:
    """A tool_choice may only name a tool the request offers (the API's 400, named or allowed)."""
    if all(tool.name != name for tool in tools):
        raise ApiError(
            400,
            f"Invalid value for 'tool_choice': function '{name}' is not in 'tools'.",
            param="tool_choice",
            code="invalid_value",
        )


# Hosted tool types one choice takes for another: a dated version of a tool and its undated
# name, and the computer-use choices and tools.
_HOSTED_FAMILIES = (
    frozenset({"web_search_preview", "web_search_preview_2025_03_11"}),
    frozenset({"web_search", "web_search_2025_08_26"}),
    frozenset({"computer", "computer_use", "computer_use_preview"}),
)


def _offered_hosted(kind: str, tools: tuple[Tool, ...]) -> tuple[str, ...]:
    """The names (`<file_search>`: `parse_tool`'s) of the offered hosted tools a choice of the
    hosted tool `kind` names; none is the API's 400 (its words, as clients quote them)."""
    family = next((types for types in _HOSTED_FAMILIES if kind in types), frozenset({kind}))
    offered = tuple(
        tool.name for tool in tools if tool.name.startswith("<") and tool.name[1:-1] in family
    )
    if not offered:
        raise ApiError(
            400,
            f"Tool choice '{kind}' not found in 'tools' parameter.",
            param="tool_choice",
            code=None,
        )
    return offered


def _allowed_names(spec: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """The tool names `allowed_tools.tools` lists (`{type, function: {name}}`, `{type, custom:
    {name}}` or `{type, name}`); a hosted tool (`{type: "web_search"}`) by the name `parse_tool`
    gives it."""
    listed = spec.get("tools") or ()
    if not isinstance(listed, list | tuple):
        raise type_error(f"{where}.tools", ("array",), listed)
    names = []
    for index, item in enumerate(listed):
        if not isinstance(item, dict):
            raise type_error(f"{where}.tools[{index}]", ("object",), item)
        kind = item.get("type", "function")
        if kind not in ("function", "custom"):
            names.append(f"<{kind}>")
            continue
        # (chat nests the name under the tool's type, the Responses API does not)
        named = item.get(kind, item)
        if not isinstance(named, dict):
            raise type_error(f"{where}.tools[{index}].{kind}", ("object",), named)
        name = named.get("name")
        if not isinstance(name, str):
            nested = f".{kind}" if kind in item else ""
            raise missing(f"{where}.tools[{index}]{nested}.name")
        names.append(name)
    return tuple(names)


def parse_format(
    raw: Any, param: str, *, flat: bool, openai_rules: bool = False
) -> ResponseFormat | None:
    """`response_format` (chat; schema under `json_schema`) or `text.format` (flat).

    `openai_rules`: as for `parse_tool`.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise type_error(param, ("object",), raw)
    kind = raw.get("type")
    if kind is None:
        raise missing(f"{param}.type")
    if kind == "text":
        return ResponseFormat("text")
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind != "json_schema":
        raise invalid_value(f"{param}.type", kind, ("text", "json_object", "json_schema"))
    spec = raw if flat else raw.get("json_schema")
    where = param if flat else f"{param}.json_schema"
    if not isinstance(spec, dict):
        raise missing(where)
    name = spec.get("name")
    if not isinstance(name, str):
        raise missing(f"{where}.name")
    _check_name(name, f"{where}.name")
    schema = spec.get("schema")
    if schema is not None:
        _check_schema(schema, f"{where}.schema", f"response_format '{name}'", "invalid_json_schema")
        if openai_rules and spec.get("strict") is True:
            _check_strict_format(schema, name, flat=flat)
    return ResponseFormat("json_schema", name=name, schema=schema, strict=bool(spec.get("strict")))


# Text this long in one request takes ~15 ms or more to count the tokens of (`tokens.count`:
# ~57 ms a MB; a 48 MB prompt took 2.8 s, before its context_length_exceeded 400): such a
# request is parsed in the worker thread (`run._parse`), where the context and token-budget
# checks count it while the loop goes on serving. (Parsing never waits on the server's state:
# `run.with_held` reads what a request refers to first.)
COUNTED_OFF_LOOP = 256 * 1024
# The endpoints whose parse counts the tokens of the texts a request holds.
_COUNTING = frozenset(
    {
        Endpoint.CHAT,
        Endpoint.RESPONSES,
        Endpoint.COMPLETIONS,
        Endpoint.EMBEDDINGS,
        Endpoint.MODERATIONS,
    }
)


def counts_long_texts(endpoint: Endpoint, body: Any) -> bool:
    """Whether parsing `body` may count the tokens of `COUNTED_OFF_LOOP` characters or more: its
    strings' lengths (keys' too: tool definitions are counted as their JSON text), summed until
    they reach it. Exact types, no ABCs: it runs on every such request (~1 us for a chat)."""
    if endpoint not in _COUNTING:
        return False
    total = 0
    pending: list[Any] = [body]
    while pending:
        node = pending.pop()
        kind = type(node)
        if kind is dict:
            for key, value in node.items():
                total += len(key) if type(key) is str else 0
                if type(value) is str:
                    total += len(value)
                elif type(value) in _CONTAINERS:
                    pending.append(value)
        elif kind is list:
            for item in node:
                if type(item) is str:
                    total += len(item)
                elif type(item) in _CONTAINERS:
                    pending.append(item)
        elif kind is str:
            total += len(node)
        if total >= COUNTED_OFF_LOOP:
            return True
    return False


_CONTAINERS = frozenset({dict, list})


async def settle_schemas(body: Any) -> None:
    """Check the long JSON schemas `body` holds in the worker thread, before it is parsed, so that
    `_check_schema` finds their verdicts kept: a 700 KB schema takes about a second to check against
    the metaschema, and on the loop every other client would wait for it."""
    for schema in _sent_schemas(body):
        if schemacheck.costly(schema):
            await workload.off_loop(schemacheck.problem, schema)


def _sent_schemas(body: Any) -> list[Mapping[str, Any]]:
    """The JSON schemas of a chat or Responses body, where `parse_tool` and `parse_format` find
    them (tools' `parameters`, legacy `functions`, `response_format`, `text.format`)."""
    if not isinstance(body, dict):
        return []
    found = [_field(body, "response_format", "json_schema", "schema")]
    found.append(_field(body, "text", "format", "schema"))
    for key in ("tools", "functions"):
        listed = body.get(key)
        for tool in listed if isinstance(listed, list) else ():
            found += [_field(tool, "function", "parameters"), _field(tool, "parameters")]
    return [schema for schema in found if isinstance(schema, dict)]


def _field(raw: Any, *keys: str) -> Any:
    """`raw[k1][k2]...`, or None where a step is not an object or lacks its key."""
    for key in keys:
        if not isinstance(raw, dict):
            return None
        raw = raw.get(key)
    return raw


def _check_schema(schema: Any, param: str, owner: str, code: str) -> None:
    """The API's 400 for a JSON schema that is not an object or that it would not accept."""
    if not isinstance(schema, dict):
        raise type_error(param, ("object",), schema)
    problem = schemacheck.problem(schema)
    if problem is not None:
        raise ApiError(400, f"Invalid schema for {owner}: {problem}.", param=param, code=code)


def _check_rules(
    schema: Mapping[str, Any], param: str, owner: str, code: str | None, *, strict: bool
) -> None:
    """The API's 400 for a JSON Schema (`_check_schema`'s) that it refuses as a function's
    parameters or, with `strict`, that strict mode refuses."""
    found = schemacheck.strict_problem if strict else schemacheck.function_problem
    problem = found(schema)
    if problem is not None:
        raise ApiError(400, f"Invalid schema for {owner}: {problem}.", param=param, code=code)


def _check_strict_format(schema: Mapping[str, Any], name: str, *, flat: bool) -> None:
    """A strict `response_format` / `text.format` schema: an object, each of whose objects is
    closed and requires all of its properties. The API names `response_format` with no code on
    chat (outlines#844, podly_pure_podcasts#89), `text.format.schema` with `invalid_json_schema`
    on the Responses API (mavam/pi-web-providers#14)."""
    param, code = (
        ("text.format.schema", "invalid_json_schema") if flat else ("response_format", None)
    )
    kind = schema.get("type")
    if kind != "object":  # (a root `anyOf`, a union of shapes, too: `got 'type: "None"'`)
        raise _not_an_object(f"response_format '{name}'", kind, param, code)
    _check_rules(schema, param, f"response_format '{name}'", code, strict=True)


def check_context(
    info: ModelInfo,
    prompt_tokens: int,
    param: str = "messages",
    *,
    asked: int | None = None,
    lowered: bool = False,
    enforced: bool = True,
) -> int | None:
    """The API's 400 when the prompt does not fit the model's context window, or when an output
    limit the request sets (`asked`) does not fit beside it, unless the provider lowers that
    limit instead (`lowered`); else the room the window leaves for the answer, which no answer
    outgrows (`Exchange.output_limit`).

    Not `enforced` over a cassette or an upstream (`ParseContext.model_rules`), whose answer is
    the one: the window is the catalog's (128,000 tokens for a model it does not know, where
    Gemini's take a million) and the count an estimate, so a prompt the upstream takes was
    refused with mockai's 400, never forwarded nor recorded. Then the room is None when the
    prompt does not fit."""
    window = info.context_window
    if not enforced:
        return window - prompt_tokens if prompt_tokens <= window else None
    if prompt_tokens > window:
        raise ApiError(
            400,
            f"This model's maximum context length is {window} tokens. However, "
            f"your messages resulted in {prompt_tokens} tokens. Please reduce the length of "
            "the messages.",
            param=param,
            code="context_length_exceeded",
        )
    if asked is not None and not lowered and prompt_tokens + asked > window:
        # The spec: "The token count of your prompt plus `max_tokens` cannot exceed the model's
        # context length"; providers.md §8: "OpenAI returns an error".
        raise ApiError(
            400,
            f"This model's maximum context length is {window} tokens. However, you requested "
            f"{prompt_tokens + asked} tokens ({prompt_tokens} in the messages, {asked} in the "
            "completion). Please reduce the length of the messages or completion.",
            param=param,
            code="context_length_exceeded",
        )
    return window - prompt_tokens


# The field by which a provider that takes it chooses between lowering an output limit that
# does not fit beside the prompt (`truncate`, its default) and OpenAI's 400 (`error`): Fireworks'
# (providers.md §8, "Behaviour differences").
_OVERFLOW_FIELD = "context_length_exceeded_behavior"


def lowers_output(provider: str, body: Mapping[str, Any]) -> bool:
    """Whether `provider` silently lowers a request's output limit that does not fit beside its
    prompt instead of refusing the request: one whose profile takes `_OVERFLOW_FIELD` does,
    unless the request asks for the error."""
    if provider == "openai" or body.get(_OVERFLOW_FIELD) == "error":
        return False
    from mockai.profiles import PROFILES  # (profiles import api modules: not at import time)

    profile = PROFILES.get(provider)
    return profile is not None and _OVERFLOW_FIELD in profile.extra_fields.known


def positive_int(body: Mapping[str, Any], name: str) -> int | None:
    """An optional integer parameter that must be at least 1 when given."""
    value = body.get(name)
    if value is None:
        return None
    if value < 1:
        raise ApiError(
            400,
            f"Invalid '{name}': integer below minimum value. Expected a value >= 1, "
            f"but got {value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    return int(value)


MAX_METADATA_KEYS = 16


def parse_metadata(raw: Any) -> dict[str, str]:
    """`metadata`: up to 16 string pairs (keys up to 64 characters, values up to 512)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise type_error("metadata", ("object",), raw)
    if len(raw) > MAX_METADATA_KEYS:
        raise ApiError(
            400,
            f"Invalid 'metadata': too many properties. Expected an object with at most "
            f"{MAX_METADATA_KEYS} properties, but got an object with {len(raw)} properties "
            "instead.",
            param="metadata",
            code="object_above_max_properties",
        )
    for key, value in raw.items():
        if len(key) > 64:
            raise ApiError(
                400,
                f"Invalid 'metadata': key {key!r} is longer than 64 characters.",
                param="metadata",
            )
        if not isinstance(value, str):
            raise type_error(f"metadata.{key}", ("string",), value)
        if len(value) > 512:
            raise ApiError(
                400,
                f"Invalid 'metadata.{key}': string too long. Expected a string with maximum "
                f"length 512, but got a string with length {len(value)} instead.",
                param=f"metadata.{key}",
                code="string_above_max_length",
            )
    return dict(raw)


def metadata_update(body: Any) -> dict[str, str]:
    """The new metadata of an update request (`{metadata}`, required) for a stored object."""
    body = require_object(body)
    if "metadata" not in body:
        raise missing("metadata")
    return parse_metadata(body["metadata"])
