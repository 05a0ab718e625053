"""What sources answer and what the pipeline executes: `Reply`, `Choice`, `ToolCall`, `Plan`.

Every source (runtime rules, scenario rules, the fallback generator) produces a `Reply`: the
*meaning* of an answer, independent of the endpoint. The endpoint codecs render it (the same reply
answers chat, responses and legacy completions, JSON or stream). Cassettes and the upstream answer
with a recorded wire response instead (`Plan.recorded`), which skips rendering. A `Plan` adds how to
deliver it: timing and faults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mockai.delivery.faults import NO_FAULTS, Faults
from mockai.delivery.timing import Delay, StreamTiming
from mockai.errors import ApiError
from mockai.records import rebuilt, record
from mockai.wire.outgoing import Outgoing


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model makes; `arguments` is the text sent on the wire: a function's JSON
    arguments, or a custom (freeform) tool's `input`."""

    name: str
    arguments: str = "{}"
    id: str | None = None  # None: derived from the request, deterministically
    # A reply may leave it "function": shaping makes a call to an offered custom tool "custom"
    # (a rule scripts a call by the tool's name, whatever its kind).
    kind: Literal["function", "custom"] = "function"


@dataclass(frozen=True, slots=True)
class Choice:
    """One answer: text, tool calls, or a refusal."""

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    finish_reason: str | None = None  # None: derived (tool_calls, stop, or length on truncation)


@dataclass(frozen=True, slots=True)
class Media:
    """What a picture or a sound is made from (images, speech): drawn by the codec.

    Everything left unset is generated from `seed` (the request's content key: the same prompt
    gets the same picture), so a rule can script as much or as little as it needs.
    """

    seed: int = 0
    path: str | None = None  # a picture or a sound to use (resized / re-encoded as asked)
    color: str | None = None  # images: one colour (`red`, `#ff8800`)
    pattern: str | None = None  # images: solid | gradient | stripes | checkerboard | shapes
    colors: tuple[str, ...] = ()  # images: the pattern's colours
    revised_prompt: str | None = None  # images (dall-e-3 sends one)
    duration: float | None = None  # speech: seconds of audio (otherwise the text's length)


@dataclass(frozen=True, slots=True)
class Reply:
    """What to answer, in endpoint-independent terms.

    `choices` holds one or more answers; a request for `n` choices cycles through them (a
    transcription's text is the first choice's content). `embeddings` (one vector per input) and
    `moderation` (one result per input) answer those endpoints, `media` images and speech; an
    `error` answers with an OpenAI-shaped error instead of a body. `usage` overrides individual
    usage numbers (`reasoning_tokens` among them). `warnings` reach the client in the
    `x-mockai-warning` header.
    """

    choices: tuple[Choice, ...] = (Choice(),)
    embeddings: tuple[Sequence[float], ...] | None = None
    moderation: tuple[Mapping[str, Any], ...] | None = None
    media: Media | None = None
    usage: Mapping[str, int] | None = None
    error: ApiError | None = None
    warnings: tuple[str, ...] = ()
    # A reasoning model's summary of its reasoning, sent when the request asks for one (the
    # Responses API's `reasoning.summary`); None: made up (mockai.api.reasoning).
    reasoning: str | None = None

    @classmethod
    def text(cls, content: str) -> Reply:
        """A plain text answer."""
        return cls(choices=(Choice(content=content),))


@dataclass(frozen=True, slots=True)
class Timing:
    """When to send: `latency` before headers, then the stream's pacing.

    Delays are distributions (mockai.delivery.timing), sampled by `deliver` with a generator
    seeded from `seed`, so the same seed gives the same delays.
    """

    latency: Delay | None = None
    stream: StreamTiming | None = None
    seed: int = 0

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return rebuilt(self)  # (picklable once compiled: `records.rebuilt`)

    @property
    def paced(self) -> bool:
        """True when a stream must be written chunk by chunk rather than all at once."""
        return self.stream is not None and (
            self.stream.ttft is not None or self.stream.chunk_delay is not None
        )


NO_TIMING = Timing()


@record
class Plan:
    """The decision for one request: an answer (a Reply, or a recorded wire response) + delivery.

    `source` says which kind of source answered (`rule`, `scenario`, `cassette`, `upstream`,
    `generator`, `error`) and `name` which rule or cassette entry, for the journal and the logs.
    """

    source: str
    reply: Reply | None = None
    recorded: Outgoing | None = None
    name: str | None = None
    timing: Timing = NO_TIMING
    faults: Faults = NO_FAULTS  # (frozen: one shared instance, which fast paths recognise)
    heavy: bool = (
        False  # a big generated answer: rendered off the event loop (mockai.pipeline.workload)
    )
    # The other rules that answered inputs of a batch, after `name` (the first one).
    more_names: tuple[str, ...] = ()
