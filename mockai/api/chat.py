"""`POST /v1/chat/completions`: parse the request, render a Reply as JSON or as SSE chunks.

Wire details follow shared/reference/openai-wire-contract.md sections 7 and 8: `refusal` and
`logprobs` always present (null), `role` only in the first delta of each choice, a tool call's
id/type/name only in its first fragment, a final `delta: {}` chunk with the finish reason, and with
`include_usage` a `usage: null` on every chunk plus a last `choices: []` chunk carrying usage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NamedTuple

from mockai import tokens
from mockai.api import chat_audio, common, logprobs, obfuscation, reasoning
from mockai.api.base import Codec, ParseContext, RenderContext
from mockai.api.fieldrules import empty_array, invalid_value, missing, type_error
from mockai.api.shaping import (
    Shaped,
    cached_tokens,
    custom_tools,
    output_cap,
    shape,
    usage_numbers,
)
from mockai.catalog import answered_model, takes_json_object, takes_json_schema
from mockai.errors import ApiError
from mockai.pipeline.exchange import CalledTool, Endpoint, Exchange, Message
from mockai.pipeline.reply import Reply, ToolCall
from mockai.wire import errors, ids, jsonbytes, sse
from mockai.wire.outgoing import Body, EventStream, Outgoing

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_NEEDS_CONTENT = frozenset({"system", "user", "developer"})


# --- parse ---------------------------------------------------------------------------------------


def parse(body: Any, ctx: ParseContext) -> Exchange:
    """Validate a chat request the way the API does and normalise it into an Exchange."""
    body = common.require_object(body)
    common.check_fields(
        "chat", body, strict=ctx.strict, provider=ctx.provider, model_rules=ctx.model_rules
    )
    # Most of the optional fields are absent from most requests: each is looked up once, here,
    # and parsed only when given (this runs for every request whose bytes are new).
    get = body.get
    model = body["model"]
    info = ctx.catalog.get(model)
    rules = ctx.model_rules
    if rules and info.kind == "completion" and info.known and ctx.provider == "openai":
        # (As reported in github.com/Chanzhaoyu/chatgpt-web/issues/1428: the legacy
        # completion models are not chat models.)
        raise ApiError(
            404,
            "This is not a chat model and thus not supported in the v1/chat/completions "
            "endpoint. Did you mean to use v1/completions?",
            param="model",
        )
    # (Not over a cassette or an upstream, as the catalog's rules: there the recording's or the
    # upstream's answer is the one, and an OpenAI-compatible upstream takes schemas its own way.)
    openai_rules = ctx.provider in common.OPENAI_RULES and ctx.model_rules
    messages = _parse_messages(body["messages"], openai_rules=openai_rules)
    sent_tools = get("tools")
    if sent_tools == [] and openai_rules:
        # The API's 400, as apps sending `tools: []` for a turn without tools met it with gpt-4o
        # (continuedev/continue#3370, dnakov/anon-kode#20); mockai answered. The Responses API
        # takes it (a Response lists `tools: []`), and so do other servers.
        raise empty_array("tools")
    legacy_functions = not sent_tools and bool(get("functions"))
    raw_tools = _functions(body) if legacy_functions else sent_tools
    # (The deprecated `functions` are taken as they come: no report has the API refusing one
    # for a rule beyond JSON Schema's.)
    function_rules = openai_rules and not legacy_functions
    tools = (
        common.parse_tools(raw_tools, flat=False, openai_rules=function_rules) if raw_tools else ()
    )
    choice = get("tool_choice")
    if choice is None and "function_call" in body:  # (a null `tool_choice` is one not given)
        choice = _function_call(body)
        if not raw_tools and choice not in (None, "none") and rules:
            raise _function_call_alone()
    # (The API's 400s for a tool setting without tools, not over a cassette or an upstream: a
    # recording of an OpenAI-compatible server that took one replays as it was answered.)
    tool_choice = common.parse_tool_choice(choice, tools, flat=False, alone=not rules)
    alone = not raw_tools and get("parallel_tool_calls") is not None
    if alone and rules and ctx.provider == "openai":
        raise _parallel_tool_calls_alone()
    response_format = get("response_format")
    if response_format is not None:
        response_format = common.parse_format(
            response_format, "response_format", flat=False, openai_rules=openai_rules
        )
    if response_format is not None and rules and ctx.provider == "openai":
        # (Not Azure's: a deployment's name need not be its model's.)
        _check_format_for_model(response_format.kind, model)
    if (
        response_format is not None
        and response_format.kind == "json_object"
        and not any("json" in m.text.lower() for m in messages)
    ):
        raise ApiError(
            400,
            "'messages' must contain the word 'json' in some form, to use 'response_format' "
            "of type 'json_object'.",
            param="messages",
        )
    if get("metadata") is not None:  # (kept with a stored completion: the spec's Metadata only)
        common.parse_metadata(body["metadata"])
    stream, include_usage = common.stream_settings(body)
    # (The model's name is only the model's under OpenAI's profile: not an Azure deployment's.)
    named = bool(rules) and ctx.provider == "openai"
    audio_output = chat_audio.parse_output(
        body, model, stream=stream, openai_rules=bool(openai_rules), named=named
    )
    heard = chat_audio.input_tokens(body["messages"])
    if named:
        chat_audio.check_needs_audio(model, audio_output, heard > 0)
    common.check_logit_bias(body)
    if (
        get("top_logprobs") is not None
        and get("logprobs") is not True
        and ctx.provider == "openai"  # (OpenAI's rule: another provider's are its own)
        and rules  # (not over a cassette or an upstream: theirs is the answer)
    ):
        raise _top_logprobs_alone()
    # (Another provider's rules are its own.)
    reasons = rules and info.reasoning and ctx.provider in reasoning.PROVIDERS
    if reasons and get("max_tokens") is not None:
        raise ApiError(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    if (
        rules
        and get("reasoning_effort") is not None
        and reasoning.refuses_effort(info, ctx.provider)
    ):
        # Chat's words for it, as apps sending an effort to every model report them with gpt-4o
        # and gpt-4o-mini (AAswordman/Operit#1048, davidmigloz/langchain_dart#712,
        # umputun/tg-spam#304): an argument it does not know, with no param and no code.
        raise ApiError(400, "Unrecognized request argument supplied: reasoning_effort")
    verbosity = get("verbosity")
    if rules and verbosity in ("low", "high") and reasoning.refuses_effort(info, ctx.provider):
        # A model before gpt-5 writes at `medium` only: the API's 400 in chat's words, as
        # google-deepmind/concordia#164 met it with gpt-4o (the Responses API's twin is
        # `responses._verbosity_refused`); mockai answered, so such an app passed here.
        raise ApiError(
            400,
            f"Unsupported value: 'verbosity' does not support '{verbosity}' with this model. "
            "Supported values are: 'medium'.",
            param="verbosity",
            code="unsupported_value",
        )
    if rules and reasoning.refused_effort(info, ctx.provider, model, get("reasoning_effort")):
        # As the Responses API refuses it, in chat's words (nextai-translator#1841 quotes them
        # for `minimal` on gpt-5.1; livekit/agents#3966 their param and code): mockai reasoned
        # 0 tokens.
        raise ApiError(
            400,
            f"Unsupported value: 'reasoning_effort' does not support '{get('reasoning_effort')}' "
            f"with this model. Supported values are: {reasoning.supported_efforts(model)}.",
            param="reasoning_effort",
            code="unsupported_value",
        )
    effort = reasoning.effort(info, ctx.provider, get("reasoning_effort"))
    if effort is not None and rules:  # (a model reasoning with effort `none` samples as others do)
        _check_fixed_temperature(get("temperature"))
        _check_no_sampling(body)
    if reasons and get("stop") is not None:
        # Nor does a model that reasons take stop sequences, as agent frameworks sending their
        # own met with gpt-5, gpt-5-mini, o3 and o4-mini (huggingface/smolagents#1671,
        # n8n-io/n8n#18149, EleutherAI/lm-evaluation-harness#3215): mockai cut the answer at
        # them. With effort `none` too: gpt-5.1 and gpt-5.2 asked nothing refuse them
        # (smolagents#1868, #1893); `none` lets them sample (temperature, top_p, logprobs), no more.
        raise ApiError(
            400,
            "Unsupported parameter: 'stop' is not supported with this model.",
            param="stop",
            code="unsupported_parameter",
        )
    if (
        rules
        and get("max_tokens") is not None
        and get("max_completion_tokens") is not None
        and ctx.provider == "openai"  # (OpenAI's rule: another provider's are its own)
    ):
        # The API takes one or the other, in these words (quoted in langchain-ai/langgraph#5943,
        # for gpt-4.1, where a ChatOpenAI given both sent both): mockai obeyed the lower. (Not
        # over a cassette or an upstream: an OpenAI-compatible server recorded through this
        # profile, vLLM's, Ollama's, takes both, and its recorded answer must replay.)
        raise ApiError(
            400,
            "Setting 'max_tokens' and 'max_completion_tokens' at the same time is not supported.",
            param="max_tokens",
            code="invalid_parameter_combination",
        )
    max_tokens = None
    if get("max_completion_tokens") is not None:
        max_tokens = common.positive_int(body, "max_completion_tokens")
    elif get("max_tokens") is not None:
        max_tokens = common.positive_int(body, "max_tokens")
    # (`functions` are billed too, and a structured output's schema)
    prompt_tokens = common.prompt_tokens(messages, raw_tools, response_format) + heard
    lowered = common.lowers_output(ctx.provider, body)
    room = common.check_context(
        info, prompt_tokens, asked=max_tokens, lowered=lowered, enforced=rules
    )
    user_text, system_text, tool_result = _views(messages)
    n, stop, top_logprobs = get("n"), get("stop"), get("top_logprobs")
    parallel_tool_calls = get("parallel_tool_calls")
    return Exchange(
        endpoint=Endpoint.CHAT,
        model=model,
        body=body,
        headers=ctx.headers,
        stream=stream,
        messages=messages,
        user_text=user_text,
        system_text=system_text,
        tool_result=tool_result,
        tools=tools,
        tool_choice=tool_choice,
        # The functions API calls one function per answer.
        parallel_tool_calls=not legacy_functions
        and (True if parallel_tool_calls is None else parallel_tool_calls),
        legacy_functions=legacy_functions,
        response_format=response_format,
        n=1 if n is None else n,
        max_tokens=max_tokens,
        model_max_output=info.max_output_tokens,
        context_room=room,
        stop=() if stop is None else common.parse_stop(stop),
        include_usage=include_usage,
        obfuscate=stream and obfuscation.wanted(body, ctx.provider),
        logprobs=bool(get("logprobs")),
        top_logprobs=0 if top_logprobs is None else top_logprobs,
        prompt_tokens=prompt_tokens,
        provider=ctx.provider,
        reasoning=effort,
        audio_output=audio_output,
        audio_prompt_tokens=heard,
    )


def _top_logprobs_alone() -> ApiError:
    # The spec: "`logprobs` must be set to `true` if this parameter is used" (any value: the
    # spec makes no exception for 0; null is a parameter not given). The API refuses it rather
    # than answer without logprobs, in these words and with no code (a 400 quoted in
    # IBM/unitxt#1193, for `top_logprobs: 20`).
    return ApiError(
        400,
        "The 'top_logprobs' parameter is only allowed when 'logprobs' is enabled.",
        param="top_logprobs",
    )


def _function_call_alone() -> ApiError:
    # The deprecated `function_call` without `functions`, in the API's words for it (quoted in
    # PlexPt/chatgpt-java#150): mockai named `tool_choice`, which the client never sent.
    return ApiError(
        400,
        "Invalid value for 'function_call': 'function_call' is only allowed when 'functions' "
        "are specified.",
        param="function_call",
    )


def _parallel_tool_calls_alone() -> ApiError:
    # The API refuses `parallel_tool_calls` (true or false) in a request without tools, as it
    # refuses `tool_choice` there, in these words (quoted in Upsonic/Upsonic#323; clients strip
    # the field when they have no tools for it: camel-ai/camel#3706). (The Responses API echoes
    # it instead.)
    return ApiError(
        400,
        "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when "
        "'tools' are specified.",
        param="parallel_tool_calls",
    )


_ABSENT: Any = object()  # (a field not in the body, where null means something else)


def _functions(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The deprecated `functions` list, as `tools` entries."""
    return [{"type": "function", "function": f} for f in body["functions"]]


def _function_call(body: dict[str, Any]) -> Any:
    """The deprecated `function_call`, as a `tool_choice` value."""
    value = body.get("function_call")
    if isinstance(value, dict):
        return {"type": "function", "function": {"name": value.get("name")}}
    return value


def _parse_messages(raw: list[Any], *, openai_rules: bool) -> tuple[Message, ...]:
    """`openai_rules`: whether the messages are held to the API's own rules beyond the shape
    every OpenAI-compatible server takes (OpenAI's and Azure's profiles, not over a recording)."""
    messages = [_parse_message(item, index, openai_rules) for index, item in enumerate(raw)]
    _check_tool_pairs(messages)
    return tuple(messages)


def _parse_message(item: Any, index: int, openai_rules: bool) -> Message:
    # (`where`, the message's name in an error, is only made for an error)
    if not isinstance(item, dict):
        raise type_error(f"messages[{index}]", ("object",), item)
    get = item.get
    role = get("role")
    if role is None:
        raise missing(f"messages[{index}].role")
    if role not in ROLES:
        raise invalid_value(f"messages[{index}].role", role, ROLES)
    content = get("content", _ABSENT)
    if content is _ABSENT:
        if role in _NEEDS_CONTENT or (role == "tool" and openai_rules):
            raise missing(f"messages[{index}].content")
        content = None
    elif content is None and openai_rules and not _may_lack_content(item):
        # The API's 400 in these words (param `messages.[i].content`, no code), as agents met
        # it for a tool that returned nothing (run-llama/llama_index#17555, docker/docker-agent#63)
        # and for an assistant turn with neither text nor calls (vercel/ai#13744); mockai
        # answered. Other servers take null.
        raise ApiError(
            400,
            "Invalid value for 'content': expected a string, got null.",
            param=f"messages.[{index}].content",
        )
    if type(content) is str:
        text, images = content, 0
    else:
        text, images = common.content_text(content, f"messages[{index}].content")
    calls: tuple[CalledTool, ...] = ()
    if role == "assistant":
        raw_calls = get("tool_calls")
        if raw_calls == [] and openai_rules:
            # The API's 400 (quoted in home-assistant/core#118577 and openai/openai-node#1341,
            # whose helpers sent back the `[]` a message without calls had): an assistant turn
            # without calls leaves `tool_calls` out. Other servers take it.
            raise empty_array(f"messages[{index}].tool_calls")
        if raw_calls:
            if not isinstance(raw_calls, list):
                raise type_error(f"messages[{index}].tool_calls", ("array",), raw_calls)
            calls = tuple(
                _called_tool(call, f"messages[{index}].tool_calls[{i}]")
                for i, call in enumerate(raw_calls)
            )
    tool_call_id = get("tool_call_id")
    if role == "tool" and not isinstance(tool_call_id, str):
        if tool_call_id is not None:
            raise type_error(f"messages[{index}].tool_call_id", ("string",), tool_call_id)
        # The API's words for it, not its usual "Missing required parameter" (quoted in
        # langchain-ai/langchain#22600, for a ToolMessage that lost its id on the way).
        raise ApiError(
            400,
            "Missing parameter 'tool_call_id': messages with role 'tool' must have a "
            "'tool_call_id'.",
            param=f"messages.[{index}].tool_call_id",
        )
    name = get("name")
    return Message(
        role=role,
        text=text,
        tool_call_id=tool_call_id,
        name=name if isinstance(name, str) else None,
        tool_calls=calls,
        images=images,
    )


def _may_lack_content(item: dict[str, Any]) -> bool:
    """Whether a message may say `content: null`, as the spec has it: an assistant turn that
    calls (or refuses, or answered in audio), and the deprecated function result."""
    if item["role"] == "function":
        return True
    return item["role"] == "assistant" and any(
        item.get(key) for key in ("tool_calls", "function_call", "refusal", "audio")
    )


def _called_tool(call: Any, where: str) -> CalledTool:
    if not isinstance(call, dict):
        raise type_error(where, ("object",), call)
    if not isinstance(call.get("id"), str):
        raise missing(f"{where}.id")
    kind = "custom" if call.get("type") == "custom" else "function"
    function = common.object_field(call, kind, where)
    name = function.get("name")
    if not isinstance(name, str):
        raise missing(f"{where}.{kind}.name")
    # (a custom tool's call carries `input`, a function's `arguments`)
    arguments = function.get("input" if kind == "custom" else "arguments", "")
    return CalledTool(id=call["id"], name=name, arguments=str(arguments))


def _check_tool_pairs(messages: list[Message]) -> None:
    """Tool results must answer a preceding assistant tool call, and every call needs a result."""
    pending: dict[str, int] = {}  # tool_call_id -> index of the assistant message
    for index, message in enumerate(messages):
        if message.role == "tool":
            if message.tool_call_id not in pending:
                raise ApiError(
                    400,
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    param=f"messages.[{index}].role",
                )
            del pending[message.tool_call_id]
            continue
        if pending:
            _unanswered(pending)
        pending = {call.id: index for call in message.tool_calls}
    if pending:
        _unanswered(pending)


def _unanswered(pending: dict[str, int]) -> None:
    index = next(iter(pending.values()))
    raise ApiError(
        400,
        "An assistant message with 'tool_calls' must be followed by tool messages responding to "
        "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(pending),
        param=f"messages.[{index}].role",
    )


def _check_fixed_temperature(temperature: Any) -> None:
    """A reasoning model samples at its own temperature: any other than 1 is the API's 400, as
    apps passing `temperature=0` met with o1, o3 and gpt-5 (the error as reported in
    github.com/cline/cline/issues/341, BeehiveInnovations/pal-mcp-server/issues/78,
    diffbot/code-gpt-docs/issues/445)."""
    if temperature is None or isinstance(temperature, bool):
        return  # (not given; a boolean is the type check's to refuse)
    if isinstance(temperature, (int, float)) and temperature != 1:
        shown = int(temperature) if float(temperature).is_integer() else temperature
        raise ApiError(
            400,
            f"Unsupported value: 'temperature' does not support {shown} with this model. "
            "Only the default (1) value is supported.",
            param="temperature",
            code="unsupported_value",
        )


# What a model that reasons refuses outright, whatever the value, in the API's words (as apps
# and evaluation tools sending their defaults met with o1, o3, o4-mini and gpt-5-mini:
# aandrew-me/tgpt#333 and lobehub/lobehub#7747 quote `top_p`, nextai-translator#1781
# `presence_penalty`, stanford-crfm/helm#3617 and simonw/llm#731 name `frequency_penalty` too).
_NO_SAMPLING = ("top_p", "frequency_penalty", "presence_penalty")


def _check_no_sampling(body: Mapping[str, Any]) -> None:
    """A reasoning model takes no `top_p`, penalties or `logprobs` (mockai sampled with them)."""
    for name in _NO_SAMPLING:
        if body.get(name) is not None:
            raise ApiError(
                400,
                f"Unsupported parameter: '{name}' is not supported with this model.",
                param=name,
                code="unsupported_parameter",
            )
    if body.get("logprobs") is True:
        # A 403 with neither param nor code, as deepeval's G-Eval met with o4-mini
        # (confident-ai/deepeval#2184; #1358 for o3-mini): mockai sent logprobs the model has not.
        raise ApiError(403, "You are not allowed to request logprobs from this model")


def _check_format_for_model(kind: str, model: Any) -> None:
    """The API's 400 for a response format older than the model: langchain-openai reads the
    `json_schema` one to warn that its default `with_structured_output` method needs another
    (langchain-ai/langchain#31490); `json_object` on the first gpt-4 as apps met it
    (mrwadams/stride-gpt#19, openai/openai-python#887). mockai answered with the JSON."""
    if kind == "json_schema" and not takes_json_schema(model):
        raise ApiError(
            400,
            "Invalid parameter: 'response_format' of type 'json_schema' is not supported with "
            "this model. Learn more about supported models at the Structured Outputs guide: "
            "https://platform.openai.com/docs/guides/structured-outputs",
        )
    if kind == "json_object" and not takes_json_object(model):
        raise ApiError(
            400,
            "Invalid parameter: 'response_format' of type 'json_object' is not supported with "
            "this model.",
            param="response_format",
        )


def _views(messages: tuple[Message, ...]) -> tuple[str, str, str | None]:
    """What rules match on, in one pass: the last user text ("" if none), the system and
    developer texts joined, and the last tool result (None if none)."""
    user_text, tool_result = "", None
    system: list[str] = []
    for message in messages:
        role = message.role
        if role == "user":
            user_text = message.text
        elif role == "tool" or role == "function":
            tool_result = message.text
        elif role == "system" or role == "developer":
            system.append(message.text)
    return user_text, "\n".join(system), tool_result


# --- render --------------------------------------------------------------------------------------


def render(reply: Reply, exchange: Exchange, ctx: RenderContext) -> Outgoing:
    """The chat completion for `reply`, as one JSON body or as the SSE chunk sequence."""
    # A reasoning model's tokens before each answer (0 for most: nothing to work out).
    thought = reasoning.tokens(reply, exchange, ctx)
    # (Not an answer in audio: its sound is made anew, and its audio id is the request's.)
    keeps = not exchange.stream and not exchange.logprobs and exchange.audio_output is None
    table = ctx.kept if keeps else None
    if table is not None:
        shaped_by = _shaped_by(exchange, ctx, thought)
        held = table.get(reply, shaped_by)
        if held is not None and held is not table.SEEN:  # answered before: only the ids are new
            return Body(200, held.spliced(ctx), usage=held.usage)
    shaped = shape(
        reply,
        exchange,
        ctx.key,
        call_id=ctx.tool_call_id,
        keep_stop=ctx.keep_stop,
        reserved=thought,
    )
    if exchange.legacy_functions:
        shaped = [_as_function_call(s) for s in shaped]
    thought *= len(shaped)  # (each answer reasoned for itself)
    completion_tokens = sum(s.completion_tokens for s in shaped) + thought
    spoken = _spoken(shaped, reply, exchange, ctx)
    said = sum(s.tokens for s in spoken if s is not None)
    completion_tokens += said  # (the transcript's tokens and the sound's)
    cap = output_cap(exchange, len(shaped))
    usage = _usage(reply, exchange.prompt_tokens, completion_tokens, cap, thought)
    if exchange.audio_prompt_tokens or said:
        _bill_audio(usage, exchange.audio_prompt_tokens, said)
    if exchange.stream:
        return _stream(shaped, exchange, ctx, usage, spoken)
    body = _head(exchange, ctx, "chat.completion")
    lp_key = logprobs.key(exchange, ctx) if exchange.logprobs else b""
    body["choices"] = [
        _choice(s, exchange, lp_key, said) for s, said in zip(shaped, spoken, strict=True)
    ]
    body["usage"] = usage
    body["service_tier"] = common.service_tier(exchange.body.get("service_tier"))
    body["system_fingerprint"] = ids.system_fingerprint(exchange.model)
    answer = jsonbytes.dumps(body)
    if table is not None:
        if held is None:  # the first time: only marked (most replies never come again)
            table.mark(reply, shaped_by)
        else:
            kept = _Answer.of(answer, body["id"], reply, shaped, usage)
            if kept is not None:
                table.keep(reply, shaped_by, kept, sum(map(len, kept.parts)))
    return Body(200, answer, usage=usage)


class _Answer(NamedTuple):
    """A rendered answer as the bytes around the values its request's key made: the completion
    id, then the ids of the tool calls the reply left to mockai (`calls`: their choice and
    position, which `shape` derives them from), in the order the body holds them."""

    parts: tuple[bytes, ...]  # len(calls) + 1 pieces: after the completion id, after each call id
    calls: tuple[tuple[int, int], ...]
    usage: dict[str, Any]

    @classmethod
    def of(
        cls,
        answer: bytes,
        completion_id: str,
        reply: Reply,
        shaped: list[Shaped],
        usage: dict[str, Any],
    ) -> _Answer | None:
        """`answer` cut at its key-made ids; None when they cannot be told apart from the rest
        (a call id the body holds twice) or the body does not hold them (the functions API's
        `function_call` has no id). The parts do not depend on the ids' format (a provider's):
        `spliced` makes each id with the format of the request it answers."""
        choices = reply.choices or ()
        calls = [
            (s.index, position, call.id)
            for s in shaped
            for position, call in enumerate(s.tool_calls)
            # (as `shape` decides: a call without an id, or with an empty one, gets one)
            if choices and not choices[s.index % len(choices)].tool_calls[position].id
        ]
        rest = answer[len(b'{"id":') + len(jsonbytes.string(completion_id)) :]
        parts: list[bytes] = []
        for _, _, call_id in calls:
            written = jsonbytes.string(call_id or "")
            if rest.count(written) != 1:
                return None
            before, _, rest = rest.partition(written)
            parts.append(before)
        parts.append(rest)
        return cls(tuple(parts), tuple((index, position) for index, position, _ in calls), usage)

    def spliced(self, ctx: RenderContext) -> bytes:
        """The answer with the ids `ctx`'s key makes."""
        pieces = [b'{"id":', jsonbytes.string(ids.chat_completion_id(ctx.key)), self.parts[0]]
        for (index, position), after in zip(self.calls, self.parts[1:], strict=True):
            pieces += (jsonbytes.string(ctx.tool_call_id(ctx.key, index * 64 + position)), after)
        return b"".join(pieces)


def _shaped_by(exchange: Exchange, ctx: RenderContext, thought: int) -> tuple[Any, ...]:
    """Everything a kept answer depends on besides its reply and its ids (shaping: n, the token
    limit, stop sequences, the reasoning tokens (`thought`, drawn from the question); usage:
    the prompt's tokens; the head: model, created, and the provider, which names the model:
    OpenAI's profile a snapshot, the others as asked; one body asked of `/v1` and of
    `/groq/openai/v1` got the `model` of whichever was answered twice first)."""
    return (
        thought,
        exchange.model,
        exchange.provider,
        exchange.n,
        exchange.output_limit,
        exchange.stop,
        exchange.prompt_tokens,
        exchange.legacy_functions,
        exchange.body.get("service_tier"),
        ctx.created,
        ctx.keep_stop,
        # A rule's reply calls a tool by name: offered as a custom tool, it renders as a custom
        # call (`shape`). (No tools, the common case: nothing to look at.)
        exchange.tools and custom_tools(exchange),
    )


def _as_function_call(s: Shaped) -> Shaped:
    """A choice for the deprecated functions API: its first tool call only, as `function_call`."""
    if not s.tool_calls:
        return s
    finish = "function_call" if s.finish_reason == "tool_calls" else s.finish_reason
    return replace(s, tool_calls=s.tool_calls[:1], finish_reason=finish)


def _head(exchange: Exchange, ctx: RenderContext, kind: str) -> dict[str, Any]:
    return {
        "id": ids.chat_completion_id(ctx.key),
        "object": kind,
        "created": ctx.created,
        "model": answered_model(exchange.model, exchange.provider),
    }


def _usage(
    reply: Reply, prompt_tokens: int, completion_tokens: int, cap: int | None, thought: int
) -> dict[str, Any]:
    """`thought`: the reasoning tokens, part of the completion's (within a scripted count)."""
    prompt, completion, total = usage_numbers(reply, prompt_tokens, completion_tokens, cap)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": {
            "cached_tokens": cached_tokens(reply, prompt),
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": min(thought, completion),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _spoken(
    shaped: list[Shaped], reply: Reply, exchange: Exchange, ctx: RenderContext
) -> list[chat_audio.Spoken | None]:
    """Each choice's answer said aloud, when the request asks for audio: its text (not a
    refusal, not tool calls alone) is the transcript. None: a choice with nothing to say."""
    output = exchange.audio_output
    if output is None:
        return [None] * len(shaped)
    return [
        chat_audio.speak(s.content, output, reply.media, ctx.key, s.index, ctx.created, len(shaped))
        if s.content and s.refusal is None
        else None
        for s in shaped
    ]


def _bill_audio(usage: dict[str, Any], heard: int, said: int) -> None:
    """The audio tokens among the prompt's and the completion's (within a scripted count)."""
    usage["prompt_tokens_details"]["audio_tokens"] = min(heard, usage["prompt_tokens"])
    usage["completion_tokens_details"]["audio_tokens"] = min(said, usage["completion_tokens"])


def _choice(
    shaped: Shaped, exchange: Exchange, lp_key: bytes, spoken: chat_audio.Spoken | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        # (An answer in audio says its text in the audio's `transcript`, as the API does.)
        "content": shaped.content if shaped.refusal is None and spoken is None else None,
        "refusal": shaped.refusal,
    }
    if spoken is not None:
        message["audio"] = spoken.as_json()
    message["annotations"] = []
    if shaped.tool_calls and exchange.legacy_functions:
        call = shaped.tool_calls[0]
        message["function_call"] = {"name": call.name, "arguments": call.arguments}
    elif shaped.tool_calls:
        message["tool_calls"] = [_tool_call(call) for call in shaped.tool_calls]
    return {
        "index": shaped.index,
        "message": message,
        "logprobs": _logprobs(shaped, exchange, lp_key, shaped.pieces)
        if exchange.logprobs
        else None,
        "finish_reason": shaped.finish_reason,
    }


def _tool_call(call: ToolCall) -> dict[str, Any]:
    """A call as the message holds it: a function's JSON `arguments`, a custom tool's `input`."""
    if call.kind == "custom":
        return {
            "id": call.id,
            "type": "custom",
            "custom": {"name": call.name, "input": call.arguments},
        }
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def _logprobs(
    shaped: Shaped, exchange: Exchange, key: bytes, pieces: tuple[str, ...], start: int = 0
) -> dict[str, Any]:
    """A choice's `logprobs` for `pieces` (`key`: `logprobs.key`, the same streamed or not)."""
    entries = logprobs.chat(pieces, key + bytes([shaped.index % 256]), exchange.top_logprobs, start)
    if shaped.refusal is not None:
        return {"content": None, "refusal": entries}
    return {"content": entries, "refusal": None}


def _stream(
    shaped: list[Shaped],
    exchange: Exchange,
    ctx: RenderContext,
    usage: dict[str, Any],
    spoken: list[chat_audio.Spoken | None],
) -> EventStream:
    _check_streamable(shaped)
    head = _head(exchange, ctx, "chat.completion.chunk")
    head["service_tier"] = common.service_tier(exchange.body.get("service_tier"))
    head["system_fingerprint"] = ids.system_fingerprint(exchange.model)
    # Every chunk shares its head: serialise it once and splice each chunk's choices in.
    prefix = b"data: " + jsonbytes.dumps(head)[:-1] + b',"choices":'
    usage_null = b',"usage":null' if exchange.include_usage else b""
    padding = obfuscation.padding(exchange, ctx)

    def close(chunk: bytes) -> bytes:
        """End a chunk (`data: ` + its JSON so far): usage, obfuscation, brace, blank line."""
        chunk += usage_null
        if padding is not None:
            chunk += padding.field(len(chunk) - 6)  # the JSON's size, without `data: `
        return chunk + b"}\n\n"

    def frame(choices: list[dict[str, Any]]) -> bytes:
        return close(prefix + jsonbytes.dumps(choices))

    legacy = exchange.legacy_functions
    lp_key = logprobs.key(exchange, ctx) if exchange.logprobs else b""

    def no_tokens(s: Shaped) -> dict[str, Any] | None:
        """The logprobs of a chunk that samples no token of the answer (the role's, a call's
        arguments): with logprobs asked for, the API's empty lists (captures of real streams:
        `"logprobs":{"content":[],"refusal":null}`), so the helpers' snapshot holds what the
        unstreamed answer does; otherwise null."""
        return _logprobs(s, exchange, lp_key, ()) if exchange.logprobs else None

    pairs = list(zip(shaped, spoken, strict=True))
    frames = [frame([_first_delta(s, legacy, no_tokens(s), said is not None)]) for s, said in pairs]
    # An answer in audio streams its transcript and its sound in `delta.audio` pieces; the
    # choices with nothing to say (a refusal) stream their text as usual.
    for s, said in pairs:
        if said is not None:
            frames.extend(frame([_audio_delta(s, d)]) for d in said.deltas(s.pieces))
    texted = [s for s, said in pairs if said is None]
    if len(shaped) == 1 and texted and not exchange.logprobs:
        # The hot path of every stream: each piece spliced between two fixed byte strings.
        frames.extend(_piece_frames(shaped[0], prefix, usage_null, padding))
        longest = 0
    else:
        longest = max((len(s.pieces) for s in texted), default=0)
    for step in range(longest):
        for s in texted:
            if step >= len(s.pieces):
                continue
            if exchange.logprobs:
                frames.append(frame([_piece_delta(s, step, exchange, lp_key)]))
            else:  # splice the piece into fixed bytes
                frames.append(close(prefix + _delta_bytes(s, s.pieces[step])))
    for s in shaped:
        frames.extend(frame([d]) for d in _argument_deltas(s, legacy, no_tokens(s)))
    tail = [frame([_finish(s)]) for s in shaped]
    if exchange.include_usage:
        # Padded like every other chunk: the API's usage chunk carries `obfuscation` too (captures
        # of real streams end `..."rejected_prediction_tokens":0}},"obfuscation":"8618FsxJD2gV"}`).
        chunk = prefix + b'[],"usage":' + jsonbytes.dumps(usage)
        if padding is not None:
            chunk += padding.field(len(chunk) - 6)  # the JSON's size, without `data: `
        tail.append(chunk + b"}\n\n")
    tail.append(sse.DONE)
    return EventStream(
        frames=frames + tail, tail=len(tail), error_frame=errors.stream_error_frame, usage=usage
    )


def _check_streamable(shaped: list[Shaped]) -> None:
    """Refuse to stream a custom tool call: the spec's chunk (`ChatCompletionMessageToolCallChunk`)
    has no form for one (`type` is only `function`, there is no `custom` field) and the SDKs' delta
    types know none, so any bytes mockai made up would be wrong. A clear 400 says what works.

    The answer itself does not depend on `stream` (the same request gets the same answer streamed
    or not, generated or scripted): only whether it can be sent does.
    """
    for s in shaped:
        for call in s.tool_calls:
            if call.kind == "custom":
                raise ApiError(
                    400,
                    f"mockai cannot stream this answer, a call to the custom tool '{call.name}': "
                    "the API reference defines no chat stream chunk for custom tool calls. Send "
                    "stream: false, or use the Responses API, which streams them.",
                    param="stream",
                    code="mockai_unsupported",
                )


def _first_delta(
    s: Shaped, legacy: bool, lp: dict[str, Any] | None, spoken: bool = False
) -> dict[str, Any]:
    """`spoken`: the choice's text comes as its audio's transcript (`delta.audio`)."""
    delta: dict[str, Any] = {"role": "assistant"}
    if spoken:
        delta["content"] = None
        delta["refusal"] = None
    elif s.tool_calls and not s.pieces:
        # A call with nothing said first opens in the role's delta, as the API sends it; text
        # said first streams in its pieces, and the call opens after it (`_argument_deltas`).
        delta["content"] = None
        if legacy:
            delta["function_call"] = _function_opening(s.tool_calls[0])
        else:
            delta["tool_calls"] = [_call_opening(0, s.tool_calls[0])]
        # Last, as the API's first delta has it (captures of real streams: `..."arguments":""}}],
        # "refusal":null}`, and `..."arguments":""},"refusal":null}` for `function_call`).
        delta["refusal"] = None
    elif s.refusal is not None:
        delta["content"] = None
        delta["refusal"] = ""
    else:
        delta["content"] = ""
        delta["refusal"] = None
    return {"index": s.index, "delta": delta, "logprobs": lp, "finish_reason": None}


def _audio_delta(s: Shaped, audio: dict[str, Any]) -> dict[str, Any]:
    return {"index": s.index, "delta": {"audio": audio}, "logprobs": None, "finish_reason": None}


def _call_opening(index: int, call: Any) -> dict[str, Any]:
    return {
        "index": index,
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }


def _function_opening(call: Any) -> dict[str, Any]:
    return {"name": call.name, "arguments": ""}


def _piece_frames(
    s: Shaped, prefix: bytes, usage_null: bytes, padding: obfuscation.Padding | None
) -> list[bytes]:
    """`close(prefix + _delta_bytes(s, piece))` for every piece of one choice, with the bytes
    around the piece made once."""
    field = b"refusal" if s.refusal is not None else b"content"
    opening = prefix + b'[{"index":%d,"delta":{"%s":' % (s.index, field)
    closing = b'},"logprobs":null,"finish_reason":null}]' + usage_null
    string = jsonbytes.string
    if padding is None:
        end = closing + b"}\n\n"
        return [opening + string(piece) + end for piece in s.pieces]
    frames = []
    for piece in s.pieces:
        chunk = opening + string(piece) + closing
        frames.append(chunk + padding.field(len(chunk) - 6) + b"}\n\n")
    return frames


def _delta_bytes(s: Shaped, piece: str) -> bytes:
    """Exactly `dumps([_piece_delta(...)])` without logprobs, five times faster."""
    field = b"refusal" if s.refusal is not None else b"content"
    return b'[{"index":%d,"delta":{"%s":%s},"logprobs":null,"finish_reason":null}]' % (
        s.index,
        field,
        jsonbytes.string(piece),
    )


def _piece_delta(s: Shaped, step: int, exchange: Exchange, lp_key: bytes) -> dict[str, Any]:
    piece = s.pieces[step]
    field = "refusal" if s.refusal is not None else "content"
    lp = _logprobs(s, exchange, lp_key, (piece,), step) if exchange.logprobs else None
    return {"index": s.index, "delta": {field: piece}, "logprobs": lp, "finish_reason": None}


def _argument_deltas(s: Shaped, legacy: bool, lp: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Tool-call argument fragments; each later call opens with its own id/name fragment."""
    opened = not s.pieces  # (the first call opened in the role's delta: `_first_delta`)
    if legacy:  # the deprecated functions API: one call, fragments of `function_call.arguments`
        fragments = [
            {"function_call": {"arguments": piece}}
            for call in s.tool_calls
            for piece in _argument_pieces(call.arguments)
        ]
        if s.tool_calls and not opened:
            fragments.insert(0, {"function_call": _function_opening(s.tool_calls[0])})
        return [
            {"index": s.index, "delta": delta, "logprobs": lp, "finish_reason": None}
            for delta in fragments
        ]
    out: list[dict[str, Any]] = []
    for position, call in enumerate(s.tool_calls):
        calls: list[dict[str, Any]] = []
        if position > 0 or not opened:
            calls.append(_call_opening(position, call))
        for piece in _argument_pieces(call.arguments):
            calls.append({"index": position, "function": {"arguments": piece}})
        out.extend(
            {"index": s.index, "delta": {"tool_calls": [c]}, "logprobs": lp, "finish_reason": None}
            for c in calls
        )
    return out


def _argument_pieces(arguments: str) -> tuple[str, ...]:
    # The API streams arguments a few characters at a time; token pieces are a faithful stand-in.
    return tokens.split(arguments) if arguments else ()


def _finish(s: Shaped) -> dict[str, Any]:
    return {"index": s.index, "delta": {}, "logprobs": None, "finish_reason": s.finish_reason}


CODEC = Codec(Endpoint.CHAT, "/chat/completions", parse, render)
