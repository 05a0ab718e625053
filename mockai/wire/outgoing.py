"""The rendered answer, ready for delivery: a whole body, or a list of SSE frames."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Body:
    """A complete (non-streaming) response."""

    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
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


Outgoing = Body | EventStream
