"""`POST /v1/responses`: parse a Responses request, render a Reply as a `Response` or as SSE events.

Wire details follow shared/reference/openai-wire-contract.md section 12:
- requests carry flat function tools, `input` as a string or a list of items (messages,
  `function_call`, `function_call_output`, ...), `instructions`, `text.format` and
  `max_output_tokens`; `{}` is a valid request;
- the JSON answer is a full `Response` object with every key the spec requires, echoing the
  request's settings the way the API does;
- `stream: true` answers with named events (`event: <type>` + JSON repeating `type`) numbered by
  `sequence_number` from 0, in the order the SDK's `responses.stream()` helper insists on, ending
  with `response.completed` (or `response.incomplete`) and no `[DONE]`.

In-band stream errors use the spec's `error` event, whose `sequence_number` depends on where the
delivery stage injects it: `EventStream.error_frame` is `error_event`, called with that number.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from mockai import tokens
from mockai.api import common, logprobs, obfuscation, reasoning
from mockai.api.base import Codec, ParseContext, RenderContext
from mockai.api.fieldrules import invalid_value, missing, type_error, unknown_parameter
from mockai.api.shaping import Shaped, cached_tokens, output_cap, shape, usage_numbers
from mockai.catalog import answered_model, takes_json_object, takes_json_schema
from mockai.errors import ApiError
from mockai.pipeline.exchange import CalledTool, Endpoint, Exchange, Message, ResponseFormat, Tool
from mockai.pipeline.reply import Choice, Reply, ToolCall
from mockai.profiles.places import PLACES, STATEFUL_FIELDS
from mockai.wire import errors, ids, jsonbytes, sse
from mockai.wire.outgoing import Body, EventStream, Outgoing

ROLES = ("user", "system", "developer", "assistant")
SERVER_ERROR_MESSAGE = "The server had an error while processing your request."

# `include` value that asks for token log probabilities on output text.
_LOGPROBS_INCLUDE = "message.output_text.logprobs"
# The service tier only Responses knows (its `ServiceTierResponses`), reported as requested.
_OWN_TIERS = frozenset({"ultrafast"})
# Why a response stopped early, by the shaped finish reason.
_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


# --- parse ---------------------------------------------------------------------------------------


def _both_histories() -> ApiError:
    # The spec: `previous_response_id` "cannot be used in conjunction with `conversation`". The
    # API's wording and code, as quoted in github.com/praxis-proxy/ai/pull/999 (a proxy that
    # copies it).
    return ApiError(
        400,
        "Mutually exclusive parameters: Ensure you are only providing one of: "
        "'previous_response_id' or 'conversation'.",
        code="mutually_exclusive_parameters",
    )


def parse(body: Any, ctx: ParseContext) -> Exchange:
    """Validate a Responses request the way the API does and normalise it into an Exchange."""
    body = common.require_object(body)
    common.check_fields("responses", body, strict=ctx.strict, provider=ctx.provider)
    # As chat's: `stream_options` flags are booleans (`"false"` would leave the padding on).
    stream, _ = common.stream_settings(body)
    if body.get("previous_response_id") is not None and body.get("conversation") is not None:
        raise _both_histories()
    _check_conversation(body.get("conversation"), strict=ctx.strict)
    if body.get("background") is True and body.get("store") is False:
        raise _unstored_background()
    model = body.get("model")
    if model is None:  # the spec requires no field: `{}` answers with the default model
        model = ctx.catalog.default("chat")
    info = ctx.catalog.get(model)
    if (
        ctx.model_rules
        and _asked_effort(body) is not None
        and reasoning.refuses_effort(info, ctx.provider)
    ):
        raise _effort_unsupported()
    asked_effort = _asked_effort(body)
    if ctx.model_rules and reasoning.refused_effort(info, ctx.provider, model, asked_effort):
        raise _effort_refused(model, asked_effort)
    summary = _asked_summary(body)
    if (
        ctx.model_rules
        and summary[1] == "concise"
        and reasoning.refuses_concise(info, ctx.provider)
    ):
        raise _concise_refused(model, summary[0])
    verbosity = body["text"].get("verbosity") if isinstance(body.get("text"), dict) else None
    if (
        ctx.model_rules
        and verbosity in ("low", "high")
        and reasoning.refuses_effort(info, ctx.provider)
    ):
        raise _verbosity_refused(model, verbosity)
    history = _history(body, ctx)
    messages = _conversation(body, history)
    if isinstance(body.get("input"), list):
        check_unique_ids(body["input"], _held(body, ctx) or (), "input", ctx.previous_ids)
    self_contained = _self_contained(body, known_history=history is not None)
    if self_contained:
        _check_tool_pairs(messages)
    # (Not over a cassette or an upstream, as the catalog's rules: there the recording's or the
    # upstream's answer is the one, and an OpenAI-compatible upstream takes schemas its own way.)
    openai_rules = ctx.provider in common.OPENAI_RULES and ctx.model_rules
    response_format = _parse_format(body.get("text"), openai_rules=openai_rules)
    if response_format is not None and ctx.model_rules and ctx.provider == "openai":
        # (Not Azure's: a deployment's name need not be its model's.)
        _check_format_for_model(response_format.kind, model)
    if response_format is not None and response_format.kind == "json_object" and self_contained:
        _check_json_word(messages[1:] if body.get("instructions") else messages)
    tools = _parse_tools(body.get("tools"), openai_rules=openai_rules)
    tool_choice = common.parse_tool_choice(
        body.get("tool_choice"), tools, flat=True, alone=not ctx.model_rules
    )
    prompt_tokens = common.prompt_tokens(messages, body.get("tools"), response_format)
    if prompt_tokens > info.context_window and body.get("truncation") == "auto":
        messages, prompt_tokens = _truncated(
            messages, bool(body.get("instructions")), prompt_tokens, info.context_window
        )
    # (`max_output_tokens` past the room is not refused, as far as the references say: the
    # answer stops where the window ends)
    room: int | None = info.context_window - prompt_tokens
    if prompt_tokens > info.context_window:
        if ctx.model_rules:
            raise errors.responses_context_exceeded()
        room = None  # (over a cassette or an upstream, its answer is the one: `check_context`)
    if body.get("metadata") is not None:  # (echoed on the Response: the spec's Metadata only)
        common.parse_metadata(body["metadata"])
    top_logprobs = common.optional(body, "top_logprobs", 0)
    effort = reasoning.effort(info, ctx.provider, _asked_effort(body))
    if effort is not None and ctx.model_rules:
        _refuse_sampling(body)
    return Exchange(
        endpoint=Endpoint.RESPONSES,
        model=model,
        body=body,
        headers=ctx.headers,
        stream=stream,
        messages=messages,
        user_text=_last_text(messages, "user") or "",
        system_text="\n".join(m.text for m in messages if m.role in ("system", "developer")),
        tool_result=_last_text(messages, "tool"),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=common.optional(body, "parallel_tool_calls", True),
        response_format=response_format,
        max_tokens=body.get("max_output_tokens"),
        model_max_output=info.max_output_tokens,
        context_room=room,
        logprobs=top_logprobs > 0 or _LOGPROBS_INCLUDE in (body.get("include") or ()),
        obfuscate=obfuscation.wanted(body, ctx.provider),
        top_logprobs=top_logprobs,
        prompt_tokens=prompt_tokens,
        provider=ctx.provider,
        reasoning=effort,
        default_effort=(
            info.default_effort if info.reasoning and ctx.provider in reasoning.PROVIDERS else None
        ),
        reasoning_summary=reasoning.summary_asked(effort, body.get("reasoning")),
    )


def _refuse_sampling(body: Mapping[str, Any]) -> None:
    """A model that reasons takes no sampling settings in the Responses API (the API's 400 as
    reported with gpt-5: openai/openai-python#2540, OpenHands/software-agent-sdk#1837; with
    reasoning effort `none`, gpt-5.1 and later take them), nor logprobs."""
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            raise ApiError(
                400,
                f"Unsupported parameter: '{name}' is not supported with this model.",
                param=name,
            )
    include = body.get("include")
    if isinstance(include, list) and _LOGPROBS_INCLUDE in include:
        # The API's 400 as vllm-project/vllm#23319 quotes it for gpt-5-mini: mockai sent
        # logprobs a reasoning model never has (chat's `logprobs` is its 403 there).
        raise ApiError(
            400,
            "logprobs are not supported with reasoning models.",
            param="include",
            code="unsupported_parameter",
        )


def _asked_effort(body: Mapping[str, Any]) -> Any:
    asked = body.get("reasoning")
    return asked.get("effort") if isinstance(asked, dict) else None


def _effort_refused(model: Any, asked: Any) -> ApiError:
    # The API's wording, as openai/openai-agents-python#2089 quotes it for `minimal` on gpt-5.1
    # (CortexReach/memory-lancedb-pro#201 for `xhigh`).
    return ApiError(
        400,
        f"Unsupported value: '{asked}' is not supported with the '{model}' model. "
        f"Supported values are: {reasoning.supported_efforts(model)}.",
        param="reasoning.effort",
        code="unsupported_value",
    )


def _asked_summary(body: Mapping[str, Any]) -> tuple[str, Any]:
    """The reasoning summary a request names, under the key it uses: `summary`, or the spec's
    deprecated `generate_summary`."""
    asked = body.get("reasoning")
    if not isinstance(asked, dict):
        return "summary", None
    if asked.get("summary") is None and asked.get("generate_summary") is not None:
        return "generate_summary", asked["generate_summary"]
    return "summary", asked.get("summary")


def _concise_refused(model: Any, key: str) -> ApiError:
    # The API's 400 for a `concise` summary asked of a model before gpt-5.1 (the wording and code
    # as an OpenAI gateway quotes them; the spec: "`concise` is supported for
    # `computer-use-preview` models and all reasoning models after `gpt-5`"); mockai summarised.
    return ApiError(
        400,
        f"Unsupported value: 'concise' is not supported with the '{model}' model. "
        "Supported values are: 'auto' and 'detailed'.",
        param=f"reasoning.{key}",
        code="unsupported_value",
    )


def _verbosity_refused(model: Any, asked: Any) -> ApiError:
    # A model before gpt-5 takes `text.verbosity` `medium` only: the API's 400 as apps met it
    # with gpt-4.1, gpt-4.1-mini and gpt-4o-mini (setting `low` to shorten answers); mockai
    # answered it, so such an app passed here and failed against OpenAI. (The models that
    # refuse a reasoning effort, `reasoning.refuses_effort`: gpt-5 and later take all three.)
    return ApiError(
        400,
        f"Unsupported value: '{asked}' is not supported with the '{model}' model. "
        "Supported values are: 'medium'.",
        param="text.verbosity",
        code="unsupported_value",
    )


def _effort_unsupported() -> ApiError:
    # The API's 400 for `reasoning.effort` on a model that does not reason, as reported with
    # gpt-4o and gpt-4.1 (RageAgainstThePixel/OpenAI-DotNet#500, BoundaryML/baml#2708,
    # BerriAI/litellm#38842); a `reasoning` with only a `summary` is taken (litellm#38842).
    return ApiError(
        400,
        "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
        param="reasoning.effort",
        code="unsupported_parameter",
    )


def _unstored_background() -> ApiError:
    # mockai's choice (the wire contract says nothing of it): a background response is kept so
    # that it can be polled (the API's background-mode guide), and one not stored could only
    # be answered done at once, or queued with nothing left to poll.
    return ApiError(
        400,
        "Background mode requires 'store' to be true: a background response is stored so "
        "that it can be polled.",
        param="background",
    )


def _check_conversation(conversation: Any, *, strict: bool) -> None:
    """The API's 400 for a `conversation` object without a string `id` (the spec's
    `ConversationParam`): let through, the request would continue no conversation and its
    Response would echo an id no client can read. (check_fields has checked its JSON type.)"""
    if not isinstance(conversation, Mapping):
        return
    unknown = next((key for key in conversation if key != "id"), None) if strict else None
    if unknown is not None:
        raise unknown_parameter(f"conversation.{unknown}")
    if conversation.get("id") is None:
        raise missing("conversation.id")
    if not isinstance(conversation["id"], str):
        raise type_error("conversation.id", ("string",), conversation["id"])


def _truncated(
    messages: tuple[Message, ...], instructed: bool, total: int, window: int
) -> tuple[tuple[Message, ...], int]:
    """`truncation: "auto"`: the conversation without its earliest items, until its `total`
    prompt tokens fit the context window (the instructions stay; the last item always stays,
    and may still not fit); and its new total."""
    keep = 1 if instructed else 0
    first = keep  # the earliest item still in
    while first < len(messages) - 1 and total > window:
        total -= common.message_tokens(messages[first])
        first += 1
    return messages[:keep] + messages[first:], total


def _history(body: Mapping[str, Any], ctx: ParseContext) -> tuple[Message, ...] | None:
    """The conversation before this request, when this server holds it: the one before
    `previous_response_id`, or the items of the `conversation`."""
    previous = body.get("previous_response_id")
    if isinstance(previous, str) and ctx.history is not None:
        return ctx.history(previous)
    held = _held(body, ctx)
    return None if held is None else parse_items(held, "conversation")


def _held(body: Mapping[str, Any], ctx: ParseContext) -> Sequence[Any] | None:
    """The items of the request's `conversation`, when this server holds it."""
    conversation = conversation_id(body)
    if conversation is None or ctx.conversation is None:
        return None
    return ctx.conversation(conversation)


def conversation_id(body: Mapping[str, Any]) -> str | None:
    """The `conversation` a request continues (a string id or `{"id": ...}`), if any."""
    conversation = body.get("conversation")
    if isinstance(conversation, Mapping):
        conversation = conversation.get("id")
    return conversation if isinstance(conversation, str) else None


def parse_items(raw: Sequence[Any], where: str) -> tuple[Message, ...]:
    """Responses items (as in `input`) as the conversation's Messages; bad items are the API's
    400 naming them (`where[i].field`)."""
    messages: list[Message] = []
    for index, item in enumerate(raw):
        message = _input_item(item, f"{where}[{index}]")
        if message is not None:
            _append(messages, message)
    return tuple(messages)


def _conversation(
    body: Mapping[str, Any], history: tuple[Message, ...] | None
) -> tuple[Message, ...]:
    """`instructions` (as a leading system message), the conversation the server holds before
    this request (`previous_response_id` or `conversation`), then the `input` items.

    With the history, rules match a chained request as they match the same conversation sent
    whole to chat completions (the last user message, the turn count, the earlier tool calls).
    `instructions` are not carried over from earlier responses, as in the API.
    """
    messages: list[Message] = []
    instructions = body.get("instructions")
    if instructions:
        messages.append(Message(role="system", text=instructions))
    messages.extend(history or ())
    raw = body.get("input")
    if isinstance(raw, str):
        messages.append(Message(role="user", text=raw))
    elif raw is not None:  # check_fields guarantees a list here
        for message in parse_items(raw, "input"):
            _append(messages, message)
    return tuple(messages)


def _input_item(item: Any, where: str) -> Message | None:
    """One `input` item as a Message; None for items the mock has no use for."""
    if not isinstance(item, dict):
        raise type_error(where, ("object",), item)
    kind = common.item_type(item)  # (an "easy" message, or a reference, may come without one)
    if not isinstance(kind, str):
        raise type_error(f"{where}.type", ("string",), kind)
    for key in ("id", "status"):  # (kept, and shown back, by the stores that list items)
        value = item.get(key)
        if value is not None and not isinstance(value, str):
            raise type_error(f"{where}.{key}", ("string",), value)
    if kind == "message":
        return _message_item(item, where)
    if kind == "function_call":
        return _function_call_item(item, where)
    if kind == "function_call_output" or kind == "custom_tool_call_output":
        return _function_output_item(item, where)
    if kind == "custom_tool_call":
        return _custom_call_item(item, where)
    if kind not in ITEM_TYPES:
        # The spec's unions are closed: the API refuses a type outside them (stored, it would
        # be listed in a shape no client can read).
        raise invalid_value(f"{where}.type", kind, ITEM_TYPES)
    # reasoning, item_reference, hosted-tool calls and their outputs: accepted, not needed to answer
    return None


# Every item type the spec's `InputItem` union takes (its `Item`s, the compaction trigger, the
# reference, programs), which covers what its `ConversationItem` lists.
ITEM_TYPES = (
    "message",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "item_reference",
    "reasoning",
    "compaction",
    "compaction_trigger",
    "additional_tools",
    "program",
    "program_output",
    "file_search_call",
    "web_search_call",
    "computer_call",
    "computer_call_output",
    "code_interpreter_call",
    "image_generation_call",
    "local_shell_call",
    "local_shell_call_output",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
    "tool_search_call",
    "tool_search_output",
    "mcp_call",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
)


def check_unique_ids(
    raw: Sequence[Any], held: Sequence[Any], param: str, chained: Collection[str] = ()
) -> None:
    """The API's 400 for an item id sent twice, or one the conversation holds already (a
    reference names an item held: it is no copy), or one of the `chained` ids (the items of
    the responses before `previous_response_id`: agent loops that re-send them get it from
    the API). Kept, a repeated id would make every cursor that names it ambiguous."""
    seen = {item.get("id") for item in held if isinstance(item, dict)}
    for item in raw:
        if not isinstance(item, dict) or common.item_type(item) == "item_reference":
            continue
        item_id = item.get("id")
        if not isinstance(item_id, str):
            continue
        if item_id in seen or item_id in chained:
            raise ApiError(
                400,
                f"Duplicate item found with id {item_id}. "
                "Remove duplicate items from your input and try again.",
                param=param,
            )
        seen.add(item_id)


def _message_item(item: Mapping[str, Any], where: str) -> Message:
    role = item.get("role")
    if role is None:
        raise missing(f"{where}.role")
    if role not in ROLES:
        raise invalid_value(f"{where}.role", role, ROLES)
    if "content" not in item:
        raise missing(f"{where}.content")
    parts = OUTPUT_PARTS if role == "assistant" else INPUT_PARTS
    _check_parts(item["content"], f"{where}.content", parts)
    text, images = common.content_text(item["content"], f"{where}.content")
    return Message(role=role, text=text, images=images)


# The part types the spec's closed content unions take: what a client sends (its `InputContent`,
# also a tool output's parts) and an assistant's earlier answer (`OutputMessageContent`).
INPUT_PARTS = ("input_text", "input_image", "input_file")
OUTPUT_PARTS = ("output_text", "refusal")


def _check_parts(content: Any, where: str, allowed: tuple[str, ...]) -> None:
    """The API's 400 for a content part outside `allowed` (`where[j].type`): chat's part types,
    audio, a user's `output_text`, stored, would be listed in a shape no client can read."""
    if not isinstance(content, list):
        return  # a string; anything else is content_text's type error
    for index, part in enumerate(content):
        if not isinstance(part, dict):
            raise type_error(f"{where}[{index}]", ("object",), part)
        kind = part.get("type")
        if kind is None:
            raise missing(f"{where}[{index}].type")
        if kind not in allowed:
            raise invalid_value(f"{where}[{index}].type", kind, allowed)
        if kind == "refusal" and not isinstance(part.get("refusal"), str):
            raise type_error(f"{where}[{index}].refusal", ("string",), part.get("refusal"))


def _function_call_item(item: Mapping[str, Any], where: str) -> Message:
    """An earlier call the model made, echoed back: an assistant turn with that tool call."""
    call = CalledTool(
        id=common.required_string(item, "call_id", where),
        name=common.required_string(item, "name", where),
        arguments=common.required_string(item, "arguments", where),
    )
    return Message(role="assistant", text="", tool_calls=(call,))


def _custom_call_item(item: Mapping[str, Any], where: str) -> Message:
    """An earlier custom tool call, echoed back: as a function call, its `input` the arguments
    (as chat's custom calls): the agent loop then sees the tool called (`tools.tool_to_call`)."""
    call = CalledTool(
        id=common.required_string(item, "call_id", where),
        name=common.required_string(item, "name", where),
        arguments=common.required_string(item, "input", where),
    )
    return Message(role="assistant", text="", tool_calls=(call,))


def _function_output_item(item: Mapping[str, Any], where: str) -> Message:
    """The client's result for a call: a tool message answering `call_id`."""
    call_id = common.required_string(item, "call_id", where)
    if item.get("output") is None:
        raise missing(f"{where}.output")
    # `output` is a string or a list of input_text / input_image / input_file parts.
    _check_parts(item["output"], f"{where}.output", INPUT_PARTS)
    text, images = common.content_text(item["output"], f"{where}.output")
    return Message(role="tool", text=text, tool_call_id=call_id, images=images)


def _append(messages: list[Message], message: Message) -> None:
    """Add `message`, folding consecutive assistant items into one turn.

    The Responses API lists an answer's text and each of its (parallel) calls as separate items;
    chat holds them in one assistant message, and so does the Exchange, whatever the endpoint.
    """
    previous = messages[-1] if messages else None
    if message.tool_calls and previous is not None and previous.role == "assistant":
        messages[-1] = replace(previous, tool_calls=previous.tool_calls + message.tool_calls)
    else:
        messages.append(message)


def _self_contained(body: Mapping[str, Any], *, known_history: bool) -> bool:
    """True when every earlier call and result is in the conversation the mock sees.

    With a `previous_response_id` or a `conversation` this server does not hold, or with
    `item_reference` items, the other half of a call/result pair may live server-side, where the
    mock cannot see it.
    """
    chained = body.get("previous_response_id") is not None or body.get("conversation") is not None
    if chained and not known_history:
        return False
    raw = body.get("input")
    return not (
        isinstance(raw, list)
        and any(isinstance(i, dict) and common.item_type(i) == "item_reference" for i in raw)
    )


def _check_tool_pairs(messages: tuple[Message, ...]) -> None:
    """Every function_call_output answers a function_call in the input, and vice versa."""
    called = [call.id for message in messages for call in message.tool_calls]
    answered = [m.tool_call_id for m in messages if m.role == "tool"]
    for call_id in answered:
        if call_id not in called:
            raise ApiError(
                400,
                f"No tool call found for function call output with call_id {call_id}.",
                param="input",
            )
    for call_id in called:
        if call_id not in answered:
            raise ApiError(400, f"No tool output found for function call {call_id}.", param="input")


def _check_format_for_model(kind: str, model: Any) -> None:
    """The API's 400 for a `text.format` older than the model, in the Responses API's words
    (naming the model: "... is not supported with model version `gpt-3.5-turbo`.", as apps
    asking gpt-3.5-turbo and gpt-4 for structured output quote it); chat's own is
    `chat._check_format_for_model`. mockai answered with the JSON."""
    if (kind == "json_schema" and not takes_json_schema(str(model))) or (
        kind == "json_object" and not takes_json_object(str(model))
    ):
        raise ApiError(
            400,
            f"Invalid parameter: 'text.format' of type '{kind}' is not supported with model "
            f"version `{model}`.",
            param="text.format",
        )


def _check_json_word(messages: tuple[Message, ...]) -> None:
    """JSON mode needs the word "json" in the input (as chat's messages): the API's 400 when it is
    missing. `instructions` do not count (the API checks the input messages only); the earlier
    turns this server holds do, and so does a system or developer message in the input."""
    if not any("json" in message.text.lower() for message in messages):
        raise ApiError(
            400,
            "Response input messages must contain the word 'json' in some form to use "
            "'text.format' of type 'json_object'.",
            param="input",
        )


def _parse_tools(raw: Any, *, openai_rules: bool) -> tuple[Tool, ...]:
    # The spec's `Tool` union is closed, and every Response echoes `tools`: a type outside it is
    # the API's 400 (echoed, no client could read the Response), strict or not, as an input
    # item's type. (Chat echoes no tools.)
    for index, tool in enumerate(raw or ()):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind is not None and not isinstance(kind, str):
            raise type_error(f"tools[{index}].type", ("string",), kind)
        if kind is not None and kind not in TOOL_TYPES:
            raise invalid_value(f"tools[{index}].type", kind, TOOL_TYPES)
    # Unlike chat, a Responses function tool is strict unless the request says `strict: false`.
    return common.parse_tools(raw, flat=True, strict_default=True, openai_rules=openai_rules)


# The types of the spec's `Tool` union, in its order.
TOOL_TYPES = (
    "function",
    "file_search",
    "computer",
    "computer_use_preview",
    "web_search",
    "web_search_2025_08_26",
    "mcp",
    "code_interpreter",
    "programmatic_tool_calling",
    "image_generation",
    "local_shell",
    "shell",
    "custom",
    "namespace",
    "tool_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "apply_patch",
)


def _parse_format(text: Any, *, openai_rules: bool) -> ResponseFormat | None:
    """`text.format` (flat: `{"type": "json_schema", "name", "schema", "strict"}`)."""
    if text is None:
        return None
    response_format = common.parse_format(
        text.get("format"), "text.format", flat=True, openai_rules=openai_rules
    )
    if (
        response_format is not None
        and response_format.kind == "json_schema"
        and response_format.schema is None
    ):
        raise missing("text.format.schema")
    return response_format


def _last_text(messages: tuple[Message, ...], role: str) -> str | None:
    """The text of the latest message with `role` (None if there is none)."""
    for message in reversed(messages):
        if message.role == role:
            return message.text
    return None


# --- render: the Response object -----------------------------------------------------------------


def render(reply: Reply, exchange: Exchange, ctx: RenderContext) -> Outgoing:
    """The `Response` for `reply`, as one JSON body or as the SSE event sequence."""
    thought = reasoning.tokens(reply, exchange, ctx)  # (a reasoning model's, spent first)
    shaped = shape(reply, exchange, ctx.key, count=1, reserved=thought)[0]
    response = _response(reply, shaped, exchange, ctx, thought)
    warnings = _hosted_warning(shaped, exchange)
    if exchange.stream:
        padding = obfuscation.padding(exchange, ctx)
        return replace(_stream(response, shaped, padding), warnings=warnings)
    return Body(200, jsonbytes.dumps(response), warnings=warnings)


def _hosted_warning(shaped: Shaped, exchange: Exchange) -> tuple[str, ...]:
    """A warning (the header's and the journal's, after the reply's own) when the request
    requires a call only a hosted tool could make (`tool_choice` `{"type": "file_search"}`,
    or `required` offering hosted tools only) and the answer is text: mockai never calls
    hosted tools, and answers rather than refuses, so that a test of the app's text path still
    runs."""
    choice = exchange.tool_choice
    if choice.mode != "required" or shaped.tool_calls:
        return ()
    hosted = [tool.name for tool in exchange.tools if tool.name.startswith("<")]
    callable_ = [
        tool
        for tool in exchange.tools
        if not tool.name.startswith("<") and (not choice.allowed or tool.name in choice.allowed)
    ]
    if callable_ or not hosted:
        return ()
    names = ", ".join(dict.fromkeys(name[1:-1] for name in (choice.allowed or hosted)))
    note = (
        f"tool_choice requires a call to a hosted tool ({names}), but mockai does not call "
        "hosted tools: the answer is text"
    )
    return (note,)


def _response(
    reply: Reply, shaped: Shaped, exchange: Exchange, ctx: RenderContext, thought: int
) -> dict[str, Any]:
    """The complete `Response` object: status, output items, usage, and the echoed settings
    (`thought`: the reasoning tokens spent before the answer)."""
    body = _as_taken(exchange)
    reason = _INCOMPLETE_REASONS.get(shaped.finish_reason)
    status = "completed" if reason is None else "incomplete"
    response: dict[str, Any] = {
        "id": ids.response_id(ctx.key),
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "background": bool(body.get("background")),
        "completed_at": ctx.created if status == "completed" else None,
        "error": None,
        "incomplete_details": None if reason is None else {"reason": reason},
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": answered_model(exchange.model, exchange.provider),
        "output": _output(shaped, exchange, ctx, status, _cut_call(reply, shaped)),
    }
    thinking = reasoning.item(reply, exchange, ctx)
    if thinking is not None:  # (first: the model reasoned before it answered)
        response["output"] = _after_reasoning(thinking, response["output"], shaped)
    response.update(_settings(body, exchange))
    cap = output_cap(exchange, 1)
    output_tokens = shaped.completion_tokens + thought
    response["usage"] = _usage(reply, exchange.prompt_tokens, output_tokens, cap, thought)
    if body.get("user") is not None:
        # The spec types `user` as a string (not nullable): absent rather than null when not given.
        response["user"] = body["user"]
    response["metadata"] = common.optional(body, "metadata", {})
    return response


def _as_taken(exchange: Exchange) -> Mapping[str, Any]:
    """The request as its provider took it: a stateless Responses API (Ollama's) ignores the
    fields that need state and stores nothing, and its answer says so."""
    body = exchange.body
    place = PLACES.get(exchange.provider)
    if place is None or place.keeps_responses:
        return body
    return {**{k: v for k, v in body.items() if k not in STATEFUL_FIELDS}, "store": False}


def _settings(body: Mapping[str, Any], exchange: Exchange) -> dict[str, Any]:
    """The request's settings as the API echoes them, with its defaults filled in."""
    settings: dict[str, Any] = {
        "parallel_tool_calls": exchange.parallel_tool_calls,
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": _reasoning(body.get("reasoning"), exchange.default_effort),
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": common.service_tier(body.get("service_tier"), _OWN_TIERS),
        "store": common.optional(body, "store", True),
        # As numbers, not as spelled (1 or 1.0): every SDK gets the same answer.
        "temperature": float(common.optional(body, "temperature", 1.0)),
        "text": _text(body.get("text")),
        "tool_choice": _tool_choice(body.get("tool_choice")),
        "tools": [_tool(raw) for raw in body.get("tools") or ()],
        "top_logprobs": common.optional(body, "top_logprobs", 0),
        "top_p": float(common.optional(body, "top_p", 1.0)),
        "truncation": _truncation(body.get("truncation")),
    }
    conversation = body.get("conversation")
    if conversation is not None:  # a string id or `{"id": ...}`; the API answers with the object
        conversation_id = conversation if isinstance(conversation, str) else conversation.get("id")
        settings["conversation"] = {"id": conversation_id}
    return settings


def _truncation(raw: Any) -> str:
    """A value outside the spec's enum (let through when not strict) is echoed as the default:
    echoed as sent, the Response would break the spec's schema."""
    return raw if raw in ("auto", "disabled") else "disabled"


def _reasoning(raw: Any, reasons_with: str | None) -> dict[str, Any]:
    """`reasoning` as echoed: an effort not given is the one the model reasons with
    (`reasons_with`: its default, `medium`, or `none` for gpt-5.1 and later), as the API echoes
    it (captures of real o3, gpt-5 and gpt-5-nano streams asked nothing and say
    `"effort":"medium"`; gpt-5.4's say `"effort":"none"`)."""
    # A value outside the spec's enum (let through when not strict) is echoed as not given: the
    # Response must stay valid for the SDKs that check it.
    raw = raw if isinstance(raw, dict) else {}
    effort, summary = raw.get("effort"), raw.get("summary")
    if summary is None:  # (the spec's deprecated name for it)
        summary = raw.get("generate_summary")
    if effort is None:
        effort = reasons_with
    return {
        "effort": effort if effort in common.REASONING_EFFORTS else None,
        "summary": summary if summary in common.REASONING_SUMMARIES else None,
    }


def _tool_choice(raw: Any) -> Any:
    """A choice outside the spec's (let through when not strict: a hosted tool's type the spec
    does not list as a choice, `{"type": "web_search"}`) is echoed as the default, `auto`: the
    Response must stay valid for the SDKs that check it."""
    if isinstance(raw, dict) and raw.get("type") not in common.TOOL_CHOICE_TYPES:
        return "auto"
    return "auto" if raw is None else raw


def _text(raw: Any) -> dict[str, Any]:
    """`text`: the requested format (or `{"type": "text"}`) and verbosity, echoed (a verbosity
    outside the spec's enum, let through when not strict, as the default: the Response must
    stay valid)."""
    raw = raw if isinstance(raw, dict) else {}
    text: dict[str, Any] = {"format": _format(raw.get("format"))}
    text.update((key, value) for key, value in raw.items() if key != "format")
    if text.get("verbosity", "medium") not in (*common.VERBOSITIES, None):
        text["verbosity"] = "medium"
    text.setdefault("verbosity", "medium")
    return text


def _format(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {"type": "text"}
    if raw.get("type") != "json_schema":
        return dict(raw)
    # The spec's echoed json_schema format always carries `strict` (false unless asked for).
    echoed = dict(raw)
    echoed["strict"] = bool(raw.get("strict"))
    return echoed


def _tool(raw: Any) -> Any:
    """A tool as the API echoes it: a function's description / parameters / strict always
    present; an MCP server's without what authenticates to it (`_mcp_tool`)."""
    if isinstance(raw, dict) and raw.get("type") == "mcp":
        return _mcp_tool(raw)
    if not isinstance(raw, dict) or raw.get("type") != "function":
        return raw
    echoed = dict(raw)
    echoed.setdefault("description", None)
    echoed.setdefault("parameters", None)
    echoed["strict"] = raw.get("strict") is not False  # strict by default on this endpoint
    return echoed


def _mcp_tool(raw: dict[str, Any]) -> dict[str, Any]:
    """An `mcp` tool as the Response object shows it: its `headers` and `authorization` (API
    keys, OAuth tokens) are not in it, and its `server_url` is cut to the server (some servers
    put a credential in the path: `example.com/mcp` is `example.com`), as the API's remote MCP
    guide says. Echoed whole, every answer and stored response spelled out the client's tokens."""
    echoed = {k: v for k, v in raw.items() if k not in ("headers", "authorization")}
    url = raw.get("server_url")
    if isinstance(url, str):
        scheme, found, rest = url.partition("://")
        server = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
        echoed["server_url"] = f"{scheme}://{server}" if found and server else url
    return echoed


def _usage(
    reply: Reply, input_tokens: int, output_tokens: int, cap: int | None, thought: int
) -> dict[str, Any]:
    # All three detail objects are always sent: the SDK's strict mode requires them. The
    # reasoning tokens are part of the output's (within a scripted count).
    prompt, completion, total = usage_numbers(reply, input_tokens, output_tokens, cap)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": cached_tokens(reply, prompt),
            "cache_write_tokens": 0,
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": min(thought, completion)},
        "total_tokens": total,
    }


def _after_reasoning(
    thinking: dict[str, Any], output: list[dict[str, Any]], shaped: Shaped
) -> list[dict[str, Any]]:
    """The output items after the reasoning item. An answer the reasoning left no tokens for
    (cut for length before a word or call was written) has no message: the API's output is then
    the reasoning item alone, and `output_text` is empty."""
    used_up = (
        shaped.finish_reason == "length"
        and not shaped.content
        and shaped.refusal is None
        and not shaped.tool_calls
    )
    return [thinking] if used_up else [thinking, *output]


def _output(
    shaped: Shaped, exchange: Exchange, ctx: RenderContext, status: str, cut: int | None
) -> list[dict[str, Any]]:
    """A message item (text or refusal) unless the answer is only tool calls, then each call
    (the one at index `cut` stopped by the output limit: "incomplete", as a cut message is).
    (A reasoning item goes before them: `_after_reasoning`.)"""
    items: list[dict[str, Any]] = []
    if shaped.refusal is not None or shaped.content or not shaped.tool_calls:
        # A message followed by calls was written whole (the limit leaves no call after a cut
        # text): it is `completed`, as the API marks an item once it is done, before the next
        # starts; only the item the limit stopped in is `incomplete`.
        message_status = "completed" if shaped.tool_calls else status
        items.append(_message(shaped, exchange, ctx, message_status))
    for index, call in enumerate(shaped.tool_calls):
        call_status = "incomplete" if index == cut else "completed"
        if call.kind == "custom":
            items.append(_custom_tool_call(call, ctx, len(items), call_status))
        else:
            items.append(_function_call(call, ctx, len(items), call_status))
    return items


def _cut_call(reply: Reply, shaped: Shaped) -> int | None:
    """The index of the call the output limit cut (its arguments shorter than the reply's: the
    last one kept, when any was), or None when every call is whole."""
    if not shaped.tool_calls:
        return None
    scripted = (reply.choices or (Choice(content=""),))[0].tool_calls  # (shape()'s choice 0)
    last = len(shaped.tool_calls) - 1
    whole = last < len(scripted) and scripted[last].arguments == shaped.tool_calls[last].arguments
    return None if whole else last


def _message(shaped: Shaped, exchange: Exchange, ctx: RenderContext, status: str) -> dict[str, Any]:
    part: dict[str, Any]
    if shaped.refusal is not None:
        part = {"type": "refusal", "refusal": shaped.refusal}
    else:
        part = {
            "type": "output_text",
            "text": shaped.content or "",
            "annotations": [],
            "logprobs": _logprobs(shaped.pieces, exchange, ctx),
        }
    return {
        "type": "message",
        "id": ids.item_id(ctx.key, "msg", 0),  # the message is always the first output item
        "status": "incomplete" if status == "incomplete" else "completed",
        "role": "assistant",
        "content": [part],
    }


def _function_call(call: ToolCall, ctx: RenderContext, index: int, status: str) -> dict[str, Any]:
    # `call.id` is always set by shape(); the `or ""` only satisfies the type checker.
    return {
        "type": "function_call",
        "id": ids.item_id(ctx.key, "fc", index),
        "call_id": call.id or "",
        "name": call.name,
        "arguments": call.arguments,
        "status": status,
    }


def _custom_tool_call(
    call: ToolCall, ctx: RenderContext, index: int, status: str
) -> dict[str, Any]:
    # The spec's `CustomToolCall`; the API sends `status` too, as on function calls.
    return {
        "type": "custom_tool_call",
        "id": ids.item_id(ctx.key, "ctc", index),
        "call_id": call.id or "",
        "name": call.name,
        "input": call.arguments,
        "status": status,
    }


def _logprobs(
    pieces: Sequence[str], exchange: Exchange, ctx: RenderContext
) -> list[dict[str, Any]]:
    """`output_text.logprobs` in the spec's `LogProb` shape, or [] when not requested."""
    if not exchange.logprobs:
        return []
    # The request's content key (`logprobs.key`), as chat's: the same numbers streamed or not.
    return logprobs.chat(pieces, logprobs.key(exchange, ctx) + b"\0", exchange.top_logprobs)


# --- render: the event stream --------------------------------------------------------------------


class _Events:
    """The frames of one stream; `sequence_number` counts every event of it from 0.

    With `padding`, the `*.delta` events carry the API's `obfuscation` field.
    """

    def __init__(self, padding: obfuscation.Padding | None = None) -> None:
        self.frames: list[bytes] = []
        self.padding = padding

    def emit(self, kind: str, **fields: Any) -> None:
        """Append one event: `event: <kind>` and JSON that repeats the kind as `type`."""
        event = {"type": kind, **fields, "sequence_number": len(self.frames)}
        payload = jsonbytes.dumps(event)
        if self.padding is not None and kind.endswith(".delta"):
            payload = self._padded(payload)
        self.frames.append(sse.named_frame(kind, payload))

    def _padded(self, payload: bytes) -> bytes:
        assert self.padding is not None
        return payload[:-1] + self.padding.field(len(payload) - 1) + b"}"

    def emit_delta(self, kind: str, where: bytes, piece: str, extra: bytes = b"") -> None:
        """`emit(kind, **where, delta=piece, ...)` spliced from bytes: the hot path of a stream.

        `where` is the JSON of the location fields (without braces), `extra` any fields after
        `delta` (with their leading comma); the bytes are identical to what `emit` writes.
        """
        payload = b'{"type":"%s",%s,"delta":%s%s,"sequence_number":%d}' % (
            kind.encode(),
            where,
            jsonbytes.string(piece),
            extra,
            len(self.frames),
        )
        if self.padding is not None:
            payload = self._padded(payload)
        self.frames.append(sse.named_frame(kind, payload))


def _stream(
    response: dict[str, Any], shaped: Shaped, padding: obfuscation.Padding | None
) -> EventStream:
    """The event sequence that builds `response` item by item (wire contract section 12)."""
    events = _Events(padding)
    # The lifecycle events carry the same response (same id), still empty and in progress.
    # The API sends `usage: null` here, but the spec's `usage` is not nullable: leaving it out
    # satisfies both the spec and the SDKs (a missing field reads as None).
    opening = {
        **{key: value for key, value in response.items() if key != "usage"},
        "status": "in_progress",
        "completed_at": None,
        "incomplete_details": None,
        "output": [],
    }
    if response.get("background"):
        # A background run is queued first (it can be resumed or polled; the wire contract 12).
        queued = {**opening, "status": "queued"}
        events.emit("response.created", response=queued)
        events.emit("response.queued", response=queued)
    else:
        events.emit("response.created", response=opening)
    events.emit("response.in_progress", response=opening)
    for index, item in enumerate(response["output"]):
        if item["type"] == "message":
            _stream_message(events, index, item, shaped.pieces)
        elif item["type"] == "reasoning":
            _stream_reasoning(events, index, item)
        elif item["type"] == "custom_tool_call":
            _stream_custom_tool_call(events, index, item)
        else:
            _stream_function_call(events, index, item)
    terminal = "response.completed" if response["status"] == "completed" else "response.incomplete"
    events.emit(terminal, response=response)
    return EventStream(frames=events.frames, tail=1, error_frame=error_event)


def _stream_message(
    events: _Events, index: int, item: dict[str, Any], pieces: Sequence[str]
) -> None:
    """added -> content_part.added -> deltas -> done -> content_part.done -> output_item.done."""
    events.emit(
        "response.output_item.added",
        output_index=index,
        item={**item, "status": "in_progress", "content": []},
    )
    part = item["content"][0]
    where = {"item_id": item["id"], "output_index": index, "content_index": 0}
    where_json = jsonbytes.dumps(where)[1:-1]
    if part["type"] == "refusal":
        events.emit("response.content_part.added", **where, part={"type": "refusal", "refusal": ""})
        for piece in pieces:
            events.emit_delta("response.refusal.delta", where_json, piece)
        events.emit("response.refusal.done", **where, refusal=part["refusal"])
    else:
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        # The SDK helper appends this part; a delta before it raises IndexError in the client.
        events.emit("response.content_part.added", **where, part=empty)
        entries = part["logprobs"]
        for step, piece in enumerate(pieces):
            if entries:
                step_logprobs = _event_logprobs(entries[step : step + 1])
                events.emit(
                    "response.output_text.delta", **where, delta=piece, logprobs=step_logprobs
                )
            else:
                events.emit_delta(
                    "response.output_text.delta", where_json, piece, b',"logprobs":[]'
                )
        events.emit(
            "response.output_text.done",
            **where,
            text=part["text"],
            logprobs=_event_logprobs(entries),
        )
    events.emit("response.content_part.done", **where, part=part)
    events.emit("response.output_item.done", output_index=index, item=item)


def _stream_reasoning(events: _Events, index: int, item: dict[str, Any]) -> None:
    """added (no summary yet) -> for its summary part: part added -> text deltas -> text done
    -> part done -> output_item.done (the spec's `response.reasoning_summary_*` events)."""
    events.emit("response.output_item.added", output_index=index, item={**item, "summary": []})
    for summary_index, part in enumerate(item["summary"]):
        where = {"item_id": item["id"], "output_index": index, "summary_index": summary_index}
        events.emit(
            "response.reasoning_summary_part.added",
            **where,
            part={"type": "summary_text", "text": ""},
        )
        where_json = jsonbytes.dumps(where)[1:-1]
        for piece in tokens.split(part["text"]):
            events.emit_delta("response.reasoning_summary_text.delta", where_json, piece)
        events.emit("response.reasoning_summary_text.done", **where, text=part["text"])
        events.emit("response.reasoning_summary_part.done", **where, part=part)
    events.emit("response.output_item.done", output_index=index, item=item)


def _stream_function_call(events: _Events, index: int, item: dict[str, Any]) -> None:
    """added (empty arguments) -> argument deltas -> arguments.done -> output_item.done."""
    done = {"item_id": item["id"], "name": item["name"], "output_index": index}
    _stream_call(events, index, item, "arguments", "function_call_arguments", done)


def _stream_custom_tool_call(events: _Events, index: int, item: dict[str, Any]) -> None:
    """added (empty input) -> input deltas -> input.done -> output_item.done, as the API streams
    a custom tool's input (`response.custom_tool_call_input.*`)."""
    done = {"item_id": item["id"], "output_index": index}
    _stream_call(events, index, item, "input", "custom_tool_call_input", done)


def _stream_call(
    events: _Events,
    index: int,
    item: dict[str, Any],
    field: str,
    kind: str,
    done: dict[str, Any],
) -> None:
    """A call item whose `field` (a function's arguments, a custom tool's input) streams in
    `response.<kind>.delta` events, then `response.<kind>.done` with `done`'s fields first."""
    events.emit(
        "response.output_item.added",
        output_index=index,
        item={**item, field: "", "status": "in_progress"},
    )
    # The API streams it a few characters at a time; token pieces are a faithful stand-in.
    text = item[field]
    where = jsonbytes.dumps({"item_id": item["id"], "output_index": index})[1:-1]
    for piece in tokens.split(text) if text else ():
        events.emit_delta(f"response.{kind}.delta", where, piece)
    events.emit(f"response.{kind}.done", **done, **{field: text})
    events.emit("response.output_item.done", output_index=index, item=item)


def _event_logprobs(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Stream events use the spec's `ResponseLogProb` (no `bytes`), unlike the output item."""
    return [
        {
            "token": entry["token"],
            "logprob": entry["logprob"],
            "top_logprobs": [
                {"token": alt["token"], "logprob": alt["logprob"]} for alt in entry["top_logprobs"]
            ],
        }
        for entry in entries
    ]


def error_event(sequence_number: int, message: str = SERVER_ERROR_MESSAGE) -> bytes:
    """The spec's in-stream `error` event, numbered where the delivery stage injects it.

    This is the shape the SDKs know (`ResponseErrorEvent`), not chat's `{"error": {...}}` chunk:
    Python yields it without raising, Node throws on the `error` event name.
    """
    event = {
        "type": "error",
        "code": "server_error",
        "message": message,
        "param": None,
        "sequence_number": sequence_number,
    }
    return sse.named_frame("error", jsonbytes.dumps(event))


CODEC = Codec(Endpoint.RESPONSES, "/responses", parse, render)
