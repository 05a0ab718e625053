"""Header sets the proxy and the replayer share."""

from __future__ import annotations

# Hop-by-hop and framing headers: they describe one connection or one encoding of the body, never
# the answer itself, so they are neither forwarded, relayed nor replayed.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
    }
)
