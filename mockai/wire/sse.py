"""Server-sent events framing, exactly as the OpenAI SDKs parse it.

Rules from the wire contract (section 6): only `data:` lines for chat and legacy completions,
`event:` + `data:` for the Responses API, never `id:` lines, every event terminated by a blank line
(Python drops an unterminated last event), and `data: [DONE]` to end chat / completions streams.
"""

from __future__ import annotations

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"
CONTENT_TYPE = "text/event-stream; charset=utf-8"


def data_frame(payload: bytes) -> bytes:
    """A data-only event (chat and completions chunks)."""
    return b"data: " + payload + b"\n\n"


def named_frame(event: str, payload: bytes) -> bytes:
    """An event with a name line (the Responses API repeats `type` as the event name)."""
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"
