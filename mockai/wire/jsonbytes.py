"""JSON in and out of the wire, in one place (so the encoder can be swapped for speed)."""

from __future__ import annotations

import json
from typing import Any

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
# What the encoder above uses for str values (the C implementation when available).
_encode_string = json.encoder.encode_basestring
_decoder = json.JSONDecoder()


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as the OpenAI API writes it."""
    return _encoder.encode(value).encode()


def string(text: str) -> bytes:
    """One JSON string, byte-identical to how `dumps` writes it (for splicing hot-path frames)."""
    return _encode_string(text).encode()


def dumps_str(value: Any) -> str:
    """Compact JSON text (for values embedded in other JSON, such as tool-call arguments)."""
    return _encoder.encode(value)


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ValueError (json.JSONDecodeError or UnicodeDecodeError) on bad input."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return _decoder.decode(data)


def canonical(value: Any) -> bytes:
    """Key-order independent JSON, for hashing and matching (never sent on the wire)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
