"""`POST /v1/embeddings`: inputs in, one vector per input out, as floats or base64.

Wire details follow shared/reference/openai-wire-contract.md section 10. The SDK asks for base64
by default and decodes it as little-endian float32; the float form is written with 9 significant
digits, enough for every float32 to round-trip, so both forms carry exactly the same vectors.
`dimensions` truncates and renormalises, as text-embedding-3 does. Generated vectors (float32
arrays) are written with the shortest text that reads back as the same float32, scripted ones
with 9 significant digits.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import orjson

from mockai import tokens
from mockai.api import common
from mockai.api.base import Codec, ParseContext, RenderContext
from mockai.api.fieldrules import invalid_value, type_error
from mockai.api.shaping import usage_numbers
from mockai.catalog import ModelInfo, infer
from mockai.errors import ApiError
from mockai.generate import embeddings
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Reply
from mockai.wire import jsonbytes
from mockai.wire.outgoing import Body, Outgoing

if TYPE_CHECKING:
    from mockai.generate.embeddings import Vector

MAX_INPUTS = 2048
# The name the API's answers give a model asked for under another: text-embedding-ada-002's say
# `text-embedding-ada-002-v2` (recorded answers and OpenAI's usage API show it; the
# text-embedding-3 models' say their own name). Not listed as a model: only answers name it.
ANSWERED_AS = {"text-embedding-ada-002": "text-embedding-ada-002-v2"}
MAX_TOKENS_PER_REQUEST = 300_000
ENCODINGS = ("float", "base64")
# OpenAI's audio and image models, which the chat catalog does not list (their own endpoints
# check them): named here, they are refused as the catalog's other models that do not embed,
# where mockai had answered whisper-1 or dall-e-3 with vectors. (Written out, not imported: a
# server that only embeds does not load the media codecs.)
MEDIA_MODELS = frozenset(
    {
        "whisper-1",
        "gpt-4o-mini-transcribe",
        "tts-1",
        "tts-1-hd",
        "gpt-4o-mini-tts",
        "dall-e-2",
        "dall-e-3",
        "gpt-image-1",
        "gpt-image-1-mini",
        "gpt-image-1.5",
        "gpt-image-2",
    }
)


# --- parse ---------------------------------------------------------------------------------------


def parse(body: Any, ctx: ParseContext) -> Exchange:
    """Validate an embeddings request the way the API does and normalise it into an Exchange."""
    body = common.require_object(body)
    common.check_fields(
        "embeddings", body, strict=ctx.strict, provider=ctx.provider, model_rules=ctx.model_rules
    )
    model = body["model"]
    info = ctx.catalog.get(model)
    known = info.known or model in MEDIA_MODELS
    if ctx.model_rules and info.kind != "embedding" and known and ctx.provider == "openai":
        # The API's answer to a chat (or completion, or moderation) model here, as RAG apps
        # configured with gpt-4o as their embedding model meet it (infiniflow/ragflow#1835: a
        # 403 with no param and no code): mockai answered with vectors, and the mistake passed.
        raise ApiError(403, "You are not allowed to generate embeddings from this model")
    inputs, counts = _inputs(body["input"])
    if ctx.model_rules:  # (over a cassette or an upstream, its answer is the one)
        _check_lengths(info, counts)
    return Exchange(
        endpoint=Endpoint.EMBEDDINGS,
        model=model,
        body=body,
        headers=ctx.headers,
        user_text="\n".join(inputs),
        inputs=inputs,
        encoding_format=_encoding(body.get("encoding_format")),
        dimensions=_dimensions(body.get("dimensions"), info, checked=ctx.model_rules),
        # From the catalog of the provider the request came through (a profile's own models
        # have their own sizes: mistral-embed's 1024), for every vector generated later.
        model_dimensions=info.dimensions,
        prompt_tokens=sum(counts),
        provider=ctx.provider,
    )


def _inputs(raw: Any) -> tuple[tuple[str, ...], list[int]]:
    """The inputs as text (token arrays in a `<id> <id>` form) and their token counts.

    `input` is a string, a list of strings, one token array, or a list of token arrays.
    """
    if isinstance(raw, str):
        return (_text(raw),), [tokens.count(raw)]
    if not raw:
        raise _invalid_input()
    if len(raw) > MAX_INPUTS:
        raise ApiError(
            400,
            f"Invalid 'input': array too long. Expected an array with maximum length "
            f"{MAX_INPUTS}, but got an array with length {len(raw)} instead.",
            param="input",
            code="array_above_max_length",
        )
    if all(_is_token(item) for item in raw):
        return (_token_text(raw),), [len(raw)]
    texts: list[str] = []
    counts: list[int] = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            texts.append(_text(item))
            counts.append(tokens.count(item))
        elif isinstance(item, list):
            texts.append(_token_array(item, f"input[{index}]"))
            counts.append(len(item))
        else:
            raise type_error(f"input[{index}]", ("string", "array"), item)
    return tuple(texts), counts


def _text(value: str) -> str:
    if not value:
        raise _invalid_input()
    return value


def _token_array(value: list[Any], param: str) -> str:
    if not value:
        raise _invalid_input()
    for index, token in enumerate(value):
        if not _is_token(token):
            raise type_error(f"{param}[{index}]", ("integer",), token)
    return _token_text(value)


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _token_text(token_ids: Sequence[int]) -> str:
    # Without a vocabulary, token ids stand for themselves (the legacy completions codec agrees).
    return " ".join(f"<{t}>" for t in token_ids)


def _invalid_input() -> ApiError:
    # The API's own (unhelpful) wording for an empty string, an empty list or an empty token array,
    # and, as its answers show, with no `param` (`'param': None` in the SDK's tracebacks): an app
    # telling its own errors apart by `param == "input"` passed here and failed against the API.
    return ApiError(
        400,
        "'$.input' is invalid. Please check the API reference: "
        "https://platform.openai.com/docs/api-reference.",
    )


def _check_lengths(info: ModelInfo, counts: list[int]) -> None:
    """Each input must fit the model's context, and all of them 300,000 tokens."""
    longest = max(counts, default=0)
    if longest > info.context_window:
        raise ApiError(
            400,
            f"This model's maximum context length is {info.context_window} tokens, however you "
            f"requested {longest} tokens ({longest} in your prompt; 0 for the completion). "
            "Please reduce your prompt; or completion length.",
        )
    total = sum(counts)
    if total > MAX_TOKENS_PER_REQUEST:
        raise ApiError(
            400,
            f"Requested {total} tokens, max {MAX_TOKENS_PER_REQUEST} tokens per request",
            type="max_tokens_per_request",
            code="max_tokens_per_request",
        )


def _encoding(value: Any) -> str:
    """`encoding_format`: float (the API's default) or base64 (the SDK's default)."""
    if value is None:
        return "float"
    if value not in ENCODINGS:
        raise invalid_value("encoding_format", value, ENCODINGS)
    return str(value)


def _dimensions(value: Any, info: ModelInfo, *, checked: bool = True) -> int | None:
    """`dimensions` (already an integer >= 1): only text-embedding-3 models, at most native.

    A model the catalog does not know is taken to accept it: an Azure deployment is named as its
    owner likes (`embeddings`, `prod-vectors`) and is text-embedding-3 more often than not, and
    so is a proxy's alias; refused as ada-002 is, `AzureOpenAIEmbeddings(azure_deployment=
    "embeddings", dimensions=256)` failed here and worked against Azure. (Up to the size its name
    suggests: 3072 for a name with `large` in it, else 1536.)

    Not `checked` (`ParseContext.model_rules`: over a cassette or an upstream), the catalog's
    refusals are left to it, as its other refusals are: an upstream serving its own model under
    the name `text-embedding-ada-002` may take `dimensions`, and a recording of it must replay."""
    if value is None or not checked:
        return None if value is None else int(value)
    if not info.flexible_dimensions and info.known:
        raise ApiError(
            400, "This model does not support specifying dimensions.", param="dimensions"
        )
    if value > info.dimensions:
        raise ApiError(
            400,
            f"Invalid 'dimensions': integer above maximum value. Expected a value <= "
            f"{info.dimensions}, but got {value} instead.",
            param="dimensions",
            code="integer_above_max_value",
        )
    return int(value)


# --- render --------------------------------------------------------------------------------------


def render(reply: Reply, exchange: Exchange, ctx: RenderContext) -> Outgoing:
    """The `list` of `embedding` objects for `reply`, in the requested encoding.

    An answer holds no id: the same reply rendered alike is the same bytes. A load test sending
    one request again and again gets the same reply (the generator's cache) and, from its third
    request, the bytes kept in the server's `KeptAnswers` instead of 16 x 1536 floats written
    anew (~0.65 ms). Not for a reply without vectors of its own (a rule's, generated from each
    request's inputs)."""
    as_base64 = exchange.encoding_format == "base64" and ctx.honor_base64
    table = ctx.kept if reply.embeddings else None
    if table is not None:
        shaped_by = (
            Endpoint.EMBEDDINGS,
            as_base64,
            exchange.dimensions,
            len(exchange.inputs),
            exchange.model,
            exchange.provider,  # (which names the model: OpenAI's profile `...-v2`, see _written)
            exchange.prompt_tokens,
        )
        held = table.get(reply, shaped_by)
        if held is not None and held is not table.SEEN:
            return Body(200, held)
    body = _written(reply, exchange, ctx, as_base64)
    if table is not None:
        if held is None:  # the first time: only marked (most replies never come again)
            table.mark(reply, shaped_by)
        else:  # (the slot holds the reply, and so its vectors, as well as the bytes)
            table.keep(reply, shaped_by, body, len(body) + _weight(reply.embeddings or ()))
    return Body(200, body)


def _weight(vectors: Sequence[Sequence[float]]) -> int:
    """The bytes of a reply's vectors (float32 arrays; scripted lists as Python floats)."""
    return sum(getattr(vector, "nbytes", 0) or 32 * len(vector) for vector in vectors)


def _written(reply: Reply, exchange: Exchange, ctx: RenderContext, as_base64: bool) -> bytes:
    vectors = _vectors(reply, exchange, ctx.seed)
    prompt, _, total = usage_numbers(reply, exchange.prompt_tokens, 0)
    usage = jsonbytes.dumps({"prompt_tokens": prompt, "total_tokens": total})
    # Assembled by hand so the floats can be written compactly (see _floats), and in one join:
    # a 16 x 1536 body is 130-300 KB, and every intermediate copy of it costs a fresh mapping.
    parts = [b'{"object":"list","data":[']
    for index, vector in enumerate(vectors):
        if index:
            parts.append(b",")
        parts += _item(index, vector, as_base64)
    model = exchange.model
    if exchange.provider == "openai":  # (Azure's and other providers' name their own)
        model = ANSWERED_AS.get(model, model)
    parts += (b'],"model":', jsonbytes.dumps(model), b',"usage":', usage, b"}")
    return b"".join(parts)


def _vectors(reply: Reply, exchange: Exchange, seed: int) -> list[Sequence[float]]:
    """One vector per input, cut to `dimensions` when the request asked for fewer."""
    given = reply.embeddings or _generated(exchange, seed).embeddings
    if not given:
        return []
    # A rule may script fewer vectors than inputs: cycle through them, as choices cycle.
    count = len(exchange.inputs) or len(given)
    vectors = [given[index % len(given)] for index in range(count)]
    size = exchange.dimensions
    if size is None:
        return vectors
    return [embeddings.truncate(v, size) if len(v) > size else v for v in vectors]


def _generated(exchange: Exchange, seed: int) -> Reply:
    # Normally the fallback generator has filled `reply.embeddings`; a rule that scripts no
    # vectors gets them here, at the model's native size.
    return embeddings.reply_for(exchange, native_dimensions(exchange), seed)


def native_dimensions(exchange: Exchange) -> int:
    """The size of the model's own vectors: as the catalog of the request's provider said at
    parse time (an Exchange made elsewhere has none: the size its name suggests)."""
    return exchange.model_dimensions or infer(exchange.model).dimensions


def _item(index: int, vector: Sequence[float], as_base64: bool) -> tuple[bytes, ...]:
    """The pieces of one `embedding` object's JSON, in order (joined once, with the body)."""
    head = b'{"object":"embedding","index":%d,"embedding":' % index
    if not embeddings.is_vector(vector):  # scripted: a list of floats
        return head, _encoded(tuple(vector), as_base64), b"}"
    if as_base64:  # generated: a float32 array
        return head + b'"', embeddings.base64_bytes(cast("Vector", vector)), b'"}'
    # each value as the shortest text that reads back as the same float32 (orjson: ~40 µs for
    # 1536 values)
    return head, orjson.dumps(vector, option=orjson.OPT_SERIALIZE_NUMPY), b"}"


@functools.lru_cache(maxsize=64)
def _encoded(vector: tuple[float, ...], as_base64: bool) -> bytes:
    """A scripted vector's JSON value; cached, because writing 1536 numbers as text costs
    ~300 µs and a rule answers with the same vectors over and over."""
    if as_base64:
        return b'"' + embeddings.to_base64(vector).encode("ascii") + b'"'
    return b"[" + _floats(vector) + b"]"


def _floats(vector: Sequence[float]) -> bytes:
    """Comma-separated JSON numbers with 9 significant digits (every float32 round-trips).

    Shorter and about twice as fast as `repr`, whose 17 digits describe a double the API never had.
    """
    text = ",".join(map("%.9g".__mod__, vector))
    if "n" in text:  # "nan" or "inf": JSON has no such numbers (only a scripted vector has them)
        raise ValueError("embedding values must be finite numbers")
    return text.encode("ascii")


CODEC = Codec(Endpoint.EMBEDDINGS, "/embeddings", parse, render)
