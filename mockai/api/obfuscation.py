"""The `obfuscation` padding the API adds to streamed deltas.

Since mid-2025 the API pads every streamed chat chunk, and every Responses `*.delta` event, with
an `obfuscation` string of random characters that evens out payload sizes (a mitigation against
side channels that infer tokens from packet lengths), unless the request sets
`stream_options.include_obfuscation: false`. Clients ignore the field; mockai sends it so that
streams have the API's shape and byte sizes, and leaves it out when asked to.

The padding brings each event's JSON up to a multiple of `WIDTH` bytes, as the API's does; its
characters come from the request's content key (what it asks), not from its ids' key: repeats of
an identical request differ only in their ids, as the docs promise, and the same request gets
the same padding whatever came before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mockai.api.base import RenderContext, content_key
from mockai.pipeline.exchange import Exchange
from mockai.wire import ids

WIDTH = 16
_POOL = 64
_OPEN = b',"obfuscation":"'
_FIXED = len(_OPEN) + 1  # the field's own bytes besides the padding (the opening and the quote)


# The providers whose streams carry the padding: OpenAI, and Azure OpenAI (OpenAI's backend).
# Another provider's stream comes from its own servers, which send none.
PADDED_BY = frozenset({"openai", "azure"})


def wanted(body: Mapping[str, Any], provider: str = "openai") -> bool:
    """True unless a streaming request turned the padding off (or its provider sends none)."""
    if not body.get("stream") or provider not in PADDED_BY:
        return False
    options = body.get("stream_options")
    return not (isinstance(options, Mapping) and options.get("include_obfuscation") is False)


def padding(exchange: Exchange, ctx: RenderContext) -> Padding | None:
    """The padding for a request's stream (None when it asked for none), drawn from its content
    key under the server's seed: the ids' key differs on every repeat."""
    if not exchange.obfuscate:
        return None
    return Padding(content_key(exchange, ctx))


class Padding:
    """Padding fields for the events of one stream."""

    def __init__(self, key: bytes) -> None:
        self._pool = ids.alnum(key, "obfuscation", _POOL).encode("ascii")

    def field(self, size: int) -> bytes:
        """`,"obfuscation":"…"` for an event whose JSON is `size` bytes long without it (and
        without its closing brace): 1 to WIDTH characters, so that the whole is a multiple of
        WIDTH."""
        length = WIDTH - (size + _FIXED + 1) % WIDTH
        start = size % (_POOL - WIDTH)
        return _OPEN + self._pool[start : start + length] + b'"'
