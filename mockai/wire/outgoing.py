"""The answer, ready for delivery: a whole body, a list of SSE frames, or a live relay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mockai.records import rebuilt, record

JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file an answer links to instead of carrying it (an image's `url`): the server keeps it
    and serves it. Until then the body holds `ATTACHMENT_SCHEME + name` where the URL goes."""

    name: str
    data: bytes
    content_type: str

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return rebuilt(self)  # (picklable once compiled: `records.rebuilt`)


ATTACHMENT_SCHEME = b"mockai-attachment:"


@record
class Body:
    """A complete (non-streaming) response."""

    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    # The usage object the body holds, when its codec says so (the metrics count tokens from it
    # instead of searching the body's bytes for it).
    usage: Mapping[str, Any] | None = None
    # What the codec warns of besides the reply's own warnings (both reach `x-mockai-warning`
    # and the journal's `warnings`).
    warnings: tuple[str, ...] = ()


@record
class EventStream:
    """A streaming response as pre-framed SSE events.

    `tail` counts the trailing frames that *complete* the stream (the finish chunk, the usage
    chunk, `[DONE]`, `response.completed`): stream faults such as `truncate_after` never send them.
    `offsets`, when present, are recorded arrival times (seconds from the first frame) used to
    replay a cassette at its original pace.
    """

    frames: Sequence[bytes]
    tail: int = 1
    status: int = 200
    content_type: str = "text/event-stream; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)
    offsets: Sequence[float] | None = None
    # The in-band error frame in this endpoint's own shape, for `error_event_after`; it is given
    # the number of frames already sent (the Responses API numbers its events).
    error_frame: Callable[[int], bytes] | None = None
    # The usage the stream reports (chat), also when the client did not ask for it: a provider
    # profile that always streams usage, or puts it elsewhere, takes it from here.
    usage: Mapping[str, Any] | None = None
    warnings: tuple[str, ...] = ()  # as Body's
    # Leading frames that are no chunk of the answer (Azure's `choices: []` filter frame): sent
    # first, but stream faults do not count them, so a fault lands on the same chunk as on /v1.
    preamble: int = 0


@dataclass(frozen=True, slots=True)
class Relay:
    """An answer still arriving from an upstream server, passed on chunk by chunk as it comes.

    `chunks` yields the body's bytes; whoever made the Relay (the recording proxy) observes them
    on the way to keep a copy. `finish` is awaited once the client got everything (or went away).
    `received` is a live view of the bytes passed on so far, for the journal.
    """

    status: int
    chunks: AsyncIterator[bytes]
    content_type: str = JSON_CONTENT_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)
    finish: Callable[[], Awaitable[None]] | None = None
    received: Sequence[bytes] = ()


Outgoing = Body | EventStream | Relay


def streamed(answer: Outgoing) -> bool:
    """Whether `answer` is sent as a stream: SSE frames, or an upstream's event stream relayed."""
    if isinstance(answer, Relay):
        return answer.content_type.split(";")[0].strip().lower() == "text/event-stream"
    return isinstance(answer, EventStream)


def held_bytes(answer: Body | EventStream) -> int:
    """What keeping `answer` costs in memory, roughly: its body, or its frames plus each frame's
    object (~40 bytes): the weight byte budgets (the journal, the stores) count it by."""
    if isinstance(answer, Body):
        return len(answer.body)
    return sum(map(len, answer.frames)) + 40 * len(answer.frames)
