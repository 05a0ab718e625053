"""The parsed request every later stage works on: `Exchange` and its parts.

Endpoint codecs (`mockai.api.*`) build an Exchange from the raw JSON body; sources (rules,
cassettes, the generator) read it to decide what to answer; renderers read it to shape the answer
(n, stop, max_tokens, stream options). It is immutable and knows nothing about HTTP beyond the
headers it was sent with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from mockai.records import record

if TYPE_CHECKING:
    from mockai.wire.multipart import Upload  # (the form parser loads with the first form)


class Endpoint(str, Enum):
    """The endpoints the pipeline serves, by the name scenario files use in `match.endpoint`."""

    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    RESPONSES = "responses"
    MODERATIONS = "moderations"
    IMAGES = "images"  # POST /images/generations
    IMAGE_EDITS = "image_edits"
    IMAGE_VARIATIONS = "image_variations"
    SPEECH = "speech"  # POST /audio/speech
    TRANSCRIPTIONS = "transcriptions"
    TRANSLATIONS = "translations"
    FILES = "files"  # every /files route: the file store answers what no source does
    BATCHES = "batches"  # every /batches route: the batch store answers what no source does

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class CalledTool:
    """A tool call already present in the conversation (an earlier assistant turn)."""

    id: str
    name: str
    arguments: str


@record  # (frozen to the type checker only: every request's every message makes one)
class Message:
    """One conversation turn, normalised across chat messages and Responses input items."""

    role: str  # system | developer | user | assistant | tool | function
    text: str  # the text content; parts are joined with "\n"
    tool_call_id: str | None = None  # tool results: the call they answer
    name: str | None = None
    tool_calls: tuple[CalledTool, ...] = ()  # assistant turns that called tools
    images: int = 0  # image parts (they cost prompt tokens)


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the client offers; `parameters` is its JSON schema (or None)."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] | None = None
    strict: bool = False
    kind: Literal["function", "custom"] = "function"


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """`none`, `auto`, `required`, or a named function the model must call."""

    mode: Literal["none", "auto", "required", "named"] = "auto"
    name: str | None = None
    allowed: tuple[str, ...] = ()  # `allowed_tools`: restricts the candidates


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """The requested output format: plain text, any JSON object, or a JSON schema."""

    kind: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: Mapping[str, Any] | None = None
    strict: bool = False


@dataclass(frozen=True, slots=True)
class AudioOutput:
    """A chat answer asked in audio (`modalities` with `audio`): the voice (a custom voice's
    id) and the format (`wav`, `aac`, `mp3`, `flac`, `opus`, `pcm16`)."""

    voice: str
    format: str


@record
class Exchange:
    """A validated OpenAI request, in the shape every pipeline stage understands."""

    endpoint: Endpoint
    model: str
    body: Mapping[str, Any]
    headers: Mapping[str, str]
    stream: bool = False
    messages: tuple[Message, ...] = ()
    # Views for matching, computed once by the codec: the last user text, the system /
    # developer / instructions text, and the latest tool result (None if there is none).
    user_text: str = ""
    system_text: str = ""
    tool_result: str | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    parallel_tool_calls: bool = True
    # Chat requests offering the deprecated `functions` (no `tools`) get the deprecated answer
    # shape: one `function_call` instead of `tool_calls`, and `finish_reason: function_call`.
    legacy_functions: bool = False
    response_format: ResponseFormat | None = None
    n: int = 1
    max_tokens: int | None = None  # what the request asked for (max_tokens, max_output_tokens, ...)
    model_max_output: int | None = None  # the model's output-token limit (catalog.py)
    # What the model's context window leaves after the prompt (the longest prompt, for legacy
    # completions: each is its own completion); None where the codec does not know the window.
    context_room: int | None = None
    stop: tuple[str, ...] = ()
    include_usage: bool = False
    obfuscate: bool = False  # pad streamed deltas with `obfuscation` (the API's default)
    logprobs: bool = False
    top_logprobs: int = 0
    # Chat: the audio the answer is asked in (None: text only), and the audio tokens of the
    # recordings the messages hold (part of `prompt_tokens`).
    audio_output: AudioOutput | None = None
    audio_prompt_tokens: int = 0
    # Embeddings, moderations and legacy completions work on a list of inputs.
    inputs: tuple[str, ...] = ()
    encoding_format: str | None = None
    dimensions: int | None = None
    model_dimensions: int | None = None  # embedding models: the native vector size (catalog.py)
    echo: bool = False
    prompt_tokens: int = 0  # the request's estimated prompt size, computed by the codec
    # The effort a reasoning model thinks with before it answers (`medium`, `high`, ...): its
    # reasoning tokens come first out of the output limit (mockai.api.reasoning). None: the
    # model does not reason.
    reasoning: str | None = None
    # The effort a reasoning model reasons with when the request names none, as a Response echoes
    # it: its default, `none` included (gpt-5.1 and later), where `reasoning` is then None.
    default_effort: str | None = None
    # The summary of its reasoning a Responses request asks that model for (`auto`, `concise`,
    # `detailed`); None: none (the item's `summary` is empty).
    reasoning_summary: str | None = None
    provider: str = "openai"  # the provider profile the request came through (mockai.profiles)
    # Multipart requests: the uploaded files (the body holds their summaries: name, size,
    # digest), and the raw form as sent, for an upstream (a recording proxy) to forward.
    uploads: tuple[Upload, ...] = ()
    form: bytes | None = None
    # Routes with an id in the path (files, batches): the method, and the route as the API
    # names it (`/files/file-abc/content`); generating endpoints leave them to the codec's path.
    method: str = "POST"
    route: str | None = None
    # The request's query string, every route's: a list's `limit`, Azure's `api-version` (an
    # upstream needs them as the client sent them).
    query: Mapping[str, str] = field(default_factory=dict)
    head: bool = False  # a HEAD answered as its GET: a store shows, and moves nothing (a batch)
    # An Azure deployment route's deployment (`/openai/deployments/{deployment}/...`): the model,
    # and, for a recording proxy, where the upstream resource serves the request.
    deployment: str | None = None

    @property
    def output_limit(self) -> int | None:
        """The most tokens one answer may hold: the lowest of the request's `max_tokens` (or
        equivalent), the model's own limit and the room its context window leaves after the
        prompt (prompt and answer never outgrow the window); None when none is known."""
        limit = self.max_tokens
        for other in (self.model_max_output, self.context_room):
            if other is not None and (limit is None or other < limit):
                limit = other
        return limit

    @property
    def turn(self) -> int:
        """How many user turns the conversation holds (1 for a first question)."""
        return sum(1 for message in self.messages if message.role == "user")

    @property
    def has_tool_result(self) -> bool:
        """True when the latest message answers a tool call (the agent loop's second leg)."""
        return bool(self.messages) and self.messages[-1].role in ("tool", "function")

    def tool(self, name: str) -> Tool | None:
        """The offered tool called `name`, if any."""
        for tool in self.tools:
            if tool.name == name:
                return tool
        return None


def addressed(exchange: Exchange, query: Mapping[str, str], deployment: str | None) -> Exchange:
    """`exchange` with the query string and the Azure deployment of the route it came by: the
    generating endpoints' codecs read the body alone (the routes with ids set their own query)."""
    if exchange.route is not None or (not query and deployment is None):
        return exchange
    return replace(exchange, query=query, deployment=deployment)
