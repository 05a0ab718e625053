"""Server-sent events as recorded bytes: split a stream at its event boundaries, byte-exactly.

The recorder splits the upstream's answer as it arrives (chunks cut events anywhere, even between
the `\\r` and `\\n` of a line ending) to time-stamp each event; replay splits the stored body the
same way, so a replayed stream is written event by event at the recorded boundaries. Frames keep
every original byte: joined, they give back exactly the body that was recorded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

_LINE_END = re.compile(rb"\r\n|\r|\n")
# What the last events of a stream look like when they *complete* it (EventStream.tail).
_TERMINAL_TYPES = frozenset(
    {
        "response.completed",
        "response.incomplete",
        "response.failed",
        "image_generation.completed",
        "image_edit.completed",
        "speech.audio.done",
        "transcript.text.done",
    }
)


class EventSplitter:
    """Cuts an SSE byte stream into events, fed chunk by chunk (lines end in LF, CRLF or CR).

    An event ends at a blank line once it has at least one non-blank line, as the SDKs dispatch
    it; stray blank lines are kept with the event that follows them.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._scanned = 0  # bytes of the buffer already split into lines
        self._has_content = False  # the current event has a non-blank line

    def feed(self, chunk: bytes) -> list[bytes]:
        """The events completed by `chunk`, in order."""
        self._buffer += chunk
        events: list[bytes] = []
        start = 0  # where the current event begins in the buffer
        position = self._scanned
        for match in _LINE_END.finditer(self._buffer, position):
            if match.group() == b"\r" and match.end() == len(self._buffer):
                break  # maybe the first half of CRLF: wait for the next chunk
            blank = match.start() == position
            position = match.end()
            if not blank:
                self._has_content = True
            elif self._has_content:
                events.append(self._buffer[start:position])
                start = position
                self._has_content = False
        self._buffer = self._buffer[start:]
        self._scanned = position - start
        return events

    def close(self) -> bytes | None:
        """What is left after the last complete event (an unterminated event), if anything."""
        rest, self._buffer, self._scanned = self._buffer, b"", 0
        return rest or None


def split_events(body: bytes) -> list[bytes]:
    """A whole SSE body as its events; an unterminated last event is kept as the last frame."""
    splitter = EventSplitter()
    frames = splitter.feed(body)
    rest = splitter.close()
    if rest is not None:
        if frames and not rest.strip():
            frames[-1] += rest  # trailing blank lines belong to the last event
        else:
            frames.append(rest)
    return frames


def event_data(frame: bytes) -> str | None:
    """The `data` of one event (several data lines joined by newlines), or None."""
    lines = []
    for line in _LINE_END.split(frame):
        if line.startswith(b"data:"):
            value = line[5:]
            lines.append(
                (value[1:] if value.startswith(b" ") else value).decode("utf-8", "replace")
            )
    return "\n".join(lines) if lines else None


def completing_tail(frames: Sequence[bytes]) -> int:
    """How many trailing frames complete the stream: finish / usage chunks, `[DONE]`, and the
    Responses API's terminal events. Stream faults such as `truncate_after` never send these."""
    count = 0
    for frame in reversed(frames):
        if not _completes(event_data(frame)):
            break
        count += 1
    return count


def _completes(data: str | None) -> bool:
    if data is None:
        return False
    if data.startswith("[DONE]"):
        return True
    try:
        payload = json.loads(data)
    except ValueError:
        return False
    if not isinstance(payload, dict):
        return False
    if payload.get("type") in _TERMINAL_TYPES:
        return True
    choices = payload.get("choices")
    if choices == [] and payload.get("usage") is not None:
        return True  # the usage chunk of `stream_options.include_usage`
    return isinstance(choices, list) and any(
        isinstance(choice, dict) and choice.get("finish_reason") is not None for choice in choices
    )
