"""`POST /v1/completions` (legacy): prompts in, `text_completion` objects or chunks out.

Faithful to the legacy API's quirks: `max_tokens` defaults to 16 (so long answers end with
`finish_reason: "length"`), `echo` prepends the prompt, several prompts times `n` give
`len(prompts) * n` choices indexed prompt-major, and `logprobs` uses the old parallel-list shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from mockai import tokens
from mockai.api import common, logprobs
from mockai.api.base import Codec, ParseContext, RenderContext
from mockai.api.fieldrules import empty_array, type_error
from mockai.api.shaping import Shaped, output_cap, shape, usage_numbers
from mockai.catalog import answered_model
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint, Exchange, Message
from mockai.pipeline.reply import Choice, Reply
from mockai.wire import errors, ids, jsonbytes, sse
from mockai.wire.outgoing import Body, EventStream, Outgoing

DEFAULT_MAX_TOKENS = 16
# "The prompt parameter can hold up to 20 unique prompts." (OpenAI's production best practices
# guide, developers.openai.com/api/docs/guides/production-best-practices). With `n` up to 128
# that bounds one request at 2,560 choices.
MAX_PROMPTS = 20


def parse(body: Any, ctx: ParseContext) -> Exchange:
    """Validate a legacy completions request and normalise it into an Exchange."""
    body = common.require_object(body)
    common.check_fields(
        "completions", body, strict=ctx.strict, provider=ctx.provider, model_rules=ctx.model_rules
    )
    model = body["model"]
    info = ctx.catalog.get(model)
    if ctx.model_rules and info.kind == "chat" and info.known and ctx.provider == "openai":
        # The API's answer to a chat model here (and its 404: the SDKs' NotFoundError), as
        # apps moving off the legacy endpoint met it (github.com/RomanHotsiy/commitgpt/issues/43,
        # hegelai/prompttools/issues/115): mockai answered, and the app's mistake passed its tests.
        raise ApiError(
            404,
            "This is a chat model and not supported in the v1/completions endpoint. "
            "Did you mean to use v1/chat/completions?",
            param="model",
        )
    if (
        ctx.model_rules
        and ctx.provider == "openai"
        and body.get("echo")
        and body.get("logprobs") is not None
        and _scores_no_prompts(model)
    ):
        # gpt-3.5-turbo-instruct does not score prompts: only davinci-002 and babbage-002 do
        # (lm-evaluation-harness#2866), and it refuses in these words (fastai/lm-hackers#7,
        # keirp/automatic_prompt_engineer#25). mockai scored them, and the eval passed its tests.
        raise ApiError(
            400, "Setting 'echo' and 'logprobs' at the same time is not supported for this model."
        )
    prompts, counts = _prompts(body["prompt"])
    suffix = body.get("suffix")
    if isinstance(suffix, str) and suffix:
        # The text to insert before (`suffix`) is part of each prompt's input: the model reads
        # both, so each completion is billed it and holds it in its window.
        counts = [count + tokens.count(suffix) for count in counts]
    n = common.optional(body, "n", 1)
    best_of = body.get("best_of")
    if best_of is not None and best_of < n:
        raise ApiError(
            400, "best_of must be greater than or equal to n.", param="best_of", code=None
        )
    stream, include_usage = common.stream_settings(body)
    if stream and best_of is not None and best_of > 1:
        # The spec's `best_of`: "Results cannot be streamed" (the server picks the best after
        # generating them all).
        raise ApiError(400, "Cannot stream results with best_of > 1.", param="best_of", code=None)
    common.check_logit_bias(body)
    # Each prompt is its own completion in its own context window: the longest must fit, not
    # their sum (lm-evaluation-harness sends batches of long prompts). The usage bills them all.
    max_tokens = body.get("max_tokens")
    if not ctx.model_rules:  # (over a cassette or an upstream, its answer is the one)
        room = common.check_context(info, max(counts), "prompt", enforced=False)
    elif ctx.provider == "openai":
        room = _check_context(info.context_window, max(counts), max_tokens)
    else:
        lowered = common.lowers_output(ctx.provider, body)
        room = common.check_context(info, max(counts), "prompt", asked=max_tokens, lowered=lowered)
    prompt_tokens = sum(counts)
    top = body.get("logprobs")
    return Exchange(
        endpoint=Endpoint.COMPLETIONS,
        model=model,
        body=body,
        headers=ctx.headers,
        stream=stream,
        # One user turn, whatever the number of prompts: each prompt is a request of its own
        # (rules match them one by one, as sent alone), not a turn of one conversation.
        messages=(Message("user", prompts[-1]),),
        user_text=prompts[-1],
        n=n,
        max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
        model_max_output=info.max_output_tokens,
        context_room=room,
        stop=common.parse_stop(body.get("stop")),
        include_usage=include_usage,
        logprobs=top is not None,
        top_logprobs=top or 0,
        inputs=prompts,
        echo=bool(body.get("echo")),
        prompt_tokens=prompt_tokens,
        provider=ctx.provider,
    )


def _check_context(window: int, prompt_tokens: int, max_tokens: int | None) -> int:
    """The room `window` leaves beside the prompt; else the legacy endpoint's own 400, not
    chat's: its words, no param and no code, and the default `max_tokens` (16) counted as one
    asked for ("... however you requested 4337 tokens (4321 in your prompt; 16 for the
    completion). Please reduce your prompt; or completion length.", with `'param': None,
    'code': None`, from gpt-3.5-turbo-instruct in OpenHands/OpenHands#1126; spacy-llm's tests
    match the same words). mockai answered such a prompt, cut at the window."""
    asked = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    if prompt_tokens + asked > window:
        raise ApiError(400, errors.legacy_context_message(window, prompt_tokens, asked))
    return window - prompt_tokens


def _scores_no_prompts(model: str) -> bool:
    """gpt-3.5-turbo-instruct and its snapshots (`-0914`): no logprobs for an echoed prompt."""
    return model == "gpt-3.5-turbo-instruct" or model.startswith("gpt-3.5-turbo-instruct-")


def _prompts(raw: Any) -> tuple[tuple[str, ...], list[int]]:
    """The prompts as text (token arrays in a `<id> <id>` form) and their token counts (a token
    array's is its length, not its text's): a string, a list of strings, a token array, or a
    list of token arrays."""
    if isinstance(raw, str):
        return (raw,), [tokens.count(raw)]
    if not raw:
        raise empty_array("prompt")
    if all(_is_token(t) for t in raw):
        return (_tokens_text(raw, "prompt"),), [len(raw)]
    if len(raw) > MAX_PROMPTS:
        raise ApiError(
            400,
            f"Invalid 'prompt': array too long. Expected an array with maximum length "
            f"{MAX_PROMPTS}, but got an array with length {len(raw)} instead.",
            param="prompt",
            code="array_above_max_length",
        )
    texts, counts = [], []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            texts.append(item)
            counts.append(tokens.count(item))
        elif isinstance(item, list):
            if not item:  # (the spec's token arrays, inner ones too, have `minItems: 1`)
                raise empty_array(f"prompt[{index}]")
            texts.append(_tokens_text(item, f"prompt[{index}]"))
            counts.append(len(item))
        else:
            raise type_error(f"prompt[{index}]", ("string", "array"), item)
    return tuple(texts), counts


def _tokens_text(token_ids: list[Any], param: str) -> str:
    # Without a vocabulary, token ids stand for themselves: equal ids give equal text.
    for index, token in enumerate(token_ids):
        if not isinstance(token, int) or isinstance(token, bool):
            raise type_error(f"{param}[{index}]", ("integer",), token)
    return " ".join(f"<{t}>" for t in token_ids)


def render(reply: Reply, exchange: Exchange, ctx: RenderContext) -> Outgoing:
    """The `text_completion` for `reply`: one body, or chunks ending with `[DONE]`."""
    prompts = exchange.inputs or ("",)
    shaped = shape(
        _said(reply), exchange, ctx.key, count=len(prompts) * exchange.n, keep_stop=ctx.keep_stop
    )
    completion_tokens = sum(s.completion_tokens for s in shaped)
    cap = output_cap(exchange, len(shaped))
    prompt, completion, total = usage_numbers(reply, exchange.prompt_tokens, completion_tokens, cap)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
    head = {
        "id": ids.completion_id(ctx.key),
        "object": "text_completion",
        "created": ctx.created,
        "model": answered_model(exchange.model, exchange.provider),
    }
    if exchange.stream:
        return _stream(head, shaped, prompts, exchange, ctx, usage)
    choices = []
    lp_key = logprobs.key(exchange, ctx) if exchange.logprobs else b""
    for s in shaped:
        prefix = prompts[s.index // exchange.n] if exchange.echo else ""
        choices.append(
            {
                "text": prefix + (s.content or ""),
                "index": s.index,
                "logprobs": _logprobs(s, exchange, lp_key, prefix),
                "finish_reason": _finish_reason(s),
            }
        )
    body = {**head, "choices": choices, "usage": usage}
    body["system_fingerprint"] = ids.system_fingerprint(exchange.model)
    return Body(200, jsonbytes.dumps(body))


def _said(reply: Reply) -> Reply:
    """The reply as legacy completions say it: its text alone. They know no tool calls, so a
    rule's calls neither use up `max_tokens` nor count in the usage; and no refusal field, so a
    rule's refusal is the text the model writes (left a refusal, the body said `""` while its
    logprobs, its usage and the stream said the refusal's words)."""
    if not any(choice.tool_calls or choice.refusal is not None for choice in reply.choices):
        return reply
    return replace(
        reply,
        choices=tuple(
            Choice(
                choice.content if choice.refusal is None else choice.refusal,
                (),
                None,
                choice.finish_reason,
            )
            for choice in reply.choices
        ),
    )


def _finish_reason(s: Shaped) -> str:
    # Legacy completions know no tool calls: anything but a cut answer "stopped".
    return s.finish_reason if s.finish_reason in ("length", "content_filter") else "stop"


def _logprobs(s: Shaped, exchange: Exchange, key: bytes, echoed: str) -> Any:
    """A choice's legacy logprobs (`key`: `logprobs.key`, the same streamed or not); with `echo`,
    its prompt's tokens first (`echoed`), scored."""
    if not exchange.logprobs:
        return None
    answer = logprobs.legacy(s.pieces, _choice_key(s, key), exchange.top_logprobs, len(echoed))
    if not exchange.echo:
        return answer
    prompt = _prompt_logprobs(exchange, key, echoed, s.index // exchange.n)
    return logprobs.joined(prompt, answer)


def _choice_key(s: Shaped, key: bytes) -> bytes:
    return key + bytes([s.index % 256])


def _prompt_logprobs(exchange: Exchange, key: bytes, prompt: str, index: int) -> Any:
    # Scoring a prompt samples nothing: one prompt text gets the same numbers in every choice
    # (hence no choice's key), and the answer's own numbers do not move with echo.
    return logprobs.echoed(
        _prompt_pieces(exchange, prompt, index), key + b"prompt", exchange.top_logprobs
    )


def _prompt_pieces(exchange: Exchange, prompt: str, index: int) -> Sequence[str]:
    """The tokens of prompt `index` (`prompt`, its text) as echoed: a token array's ids one
    token each, as many as the usage bills. lm-evaluation-harness sends token arrays and slices
    the echoed logprobs by the prompt's length; split as text, `<15496>` was four tokens."""
    raw = exchange.body.get("prompt")
    if isinstance(raw, list) and not all(_is_token(t) for t in raw):
        raw = raw[index]  # (a list of prompts: this one, a string or a token array)
    if isinstance(raw, list):
        return [f"<{t}>" if i == 0 else f" <{t}>" for i, t in enumerate(raw)]
    return tokens.split(prompt)


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _stream(
    head: dict[str, Any],
    shaped: list[Shaped],
    prompts: tuple[str, ...],
    exchange: Exchange,
    ctx: RenderContext,
    usage: dict[str, int],
) -> EventStream:
    prefix = b"data: " + jsonbytes.dumps(head)[:-1] + b',"choices":'
    # Unlike chat chunks, the spec's legacy chunk has no nullable `usage`: leave it out.
    suffix = b"}\n\n"

    def frame(index: int, text: str, finish: str | None, lp: Any = None) -> bytes:
        choice = {"text": text, "index": index, "logprobs": lp, "finish_reason": finish}
        return prefix + jsonbytes.dumps([choice]) + suffix

    frames = []
    lp_key = logprobs.key(exchange, ctx) if exchange.logprobs else b""
    for s in shaped:
        # Each chunk's logprobs as the choice's whole text numbers them (`_logprobs`): positions
        # and offsets run on from the chunks before.
        echoed = prompts[s.index // exchange.n] if exchange.echo else ""
        if exchange.echo:
            prompt_index = s.index // exchange.n
            lp = (
                _prompt_logprobs(exchange, lp_key, echoed, prompt_index)
                if exchange.logprobs
                else None
            )
            frames.append(frame(s.index, echoed, None, lp))
        offset = len(echoed)
        for step, piece in enumerate(s.pieces):
            lp = None
            if exchange.logprobs:
                key = _choice_key(s, lp_key)
                lp = logprobs.legacy((piece,), key, exchange.top_logprobs, offset, step)
            frames.append(frame(s.index, piece, None, lp))
            offset += len(piece)
    tail = [frame(s.index, "", _finish_reason(s)) for s in shaped]
    if exchange.include_usage:
        tail.append(prefix + b'[],"usage":' + jsonbytes.dumps(usage) + b"}\n\n")
    tail.append(sse.DONE)
    return EventStream(
        frames=frames + tail, tail=len(tail), error_frame=errors.stream_error_frame, usage=usage
    )


CODEC = Codec(Endpoint.COMPLETIONS, "/completions", parse, render)
