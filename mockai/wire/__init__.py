"""Wire-level building blocks shared by every endpoint: JSON bytes, SSE framing, ids, headers."""
