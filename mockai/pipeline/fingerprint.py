"""Per-request keys that make generated output reproducible.

`request_keys` gives two. The content key depends on the seed and on what the request *asks*
(model, messages, tools, ...), not on how the answer is presented (`stream`, `n`, `max_tokens`,
`stop`, ...): the same question gets the same text streamed or not, and a truncated answer is a
prefix of the full one. The exact key adds the presentation fields back, identifying the exact
request; `Occurrences` numbers repeats of the same exact request so that ids still differ between
them, while staying independent of the order in which *different* requests arrive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from mypy_extensions import mypyc_attr

from mockai.wire import jsonbytes

# Fields that change how an answer is presented or billed, not what it says.
PRESENTATION_FIELDS = frozenset(
    {
        "stream",
        "stream_options",
        "n",
        "max_tokens",
        "max_completion_tokens",
        "max_output_tokens",
        "stop",
        "logprobs",
        "top_logprobs",
        "echo",
        "encoding_format",
        "dimensions",
        "user",
        "metadata",
        "store",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "previous_response_id",
    }
)


# On the media endpoints more fields only say how the answer is sent: the same recording gets
# the same transcript in every format, the same text the same sound in every encoding, the same
# prompt the same picture as base64 or a link, PNG or WebP.
MEDIA_PRESENTATION_FIELDS: Mapping[str, frozenset[str]] = {
    "images": frozenset(
        {"response_format", "output_format", "output_compression", "partial_images"}
    ),
    "image_edits": frozenset(
        {"response_format", "output_format", "output_compression", "partial_images"}
    ),
    "image_variations": frozenset({"response_format"}),
    "speech": frozenset({"response_format", "stream_format"}),
    "transcriptions": frozenset({"response_format", "timestamp_granularities", "include"}),
    "translations": frozenset({"response_format"}),
}
_NONE: frozenset[str] = frozenset()


def content_key(seed: int, endpoint: str, body: Mapping[str, Any]) -> bytes:
    """A 32-byte key for what this request asks, under this seed."""
    return request_keys(seed, endpoint, body)[0]


def request_keys(seed: int, endpoint: str, body: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The request's content key (what it asks, under this seed: 32 bytes) and its exact key:
    the content key refined by the presentation fields, which identifies the exact request, for
    its ids (the content key itself when it has none). Its fields are sorted in one pass."""
    more = MEDIA_PRESENTATION_FIELDS.get(endpoint, _NONE)
    asked: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    for name, value in body.items():
        if name in PRESENTATION_FIELDS:
            shown[name] = value
        elif name not in more:
            asked[name] = _untyped(value) if more else value
    material = f"{seed}|{endpoint}|".encode() + jsonbytes.canonical(asked)
    key = hashlib.blake2b(material, digest_size=32).digest()
    if not shown:
        return key, key
    return key, hashlib.blake2b(jsonbytes.canonical(shown), key=key, digest_size=32).digest()


def _untyped(value: Any) -> Any:
    """A form field with its uploads' declared types left out: clients guess a file's type
    differently (the SDK sends audio/mpeg, curl application/octet-stream), and the same file
    must get the same answer. (Media endpoints only: the others carry no uploads.)"""
    if isinstance(value, dict) and "sha256" in value and "content_type" in value:
        return {key: item for key, item in value.items() if key != "content_type"}
    if isinstance(value, list):
        return [_untyped(item) for item in value]
    return value


def occurrence_key(key: bytes, occurrence: int) -> bytes:
    """The key for the n-th repeat (from 0) of the same request."""
    if occurrence == 0:
        return key
    return hashlib.blake2b(occurrence.to_bytes(8, "big"), key=key, digest_size=32).digest()


# The shared state subclasses it (backend/redis_state.py); a class compiled by mypyc
# (setup.py) refuses subclasses it did not compile unless it allows them.
@mypyc_attr(allow_interpreted_subclasses=True)
class Occurrences:
    """Counts how often each content key was seen (bounded: a long load test must not leak)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._seen: dict[bytes, int] = {}

    def next(self, key: bytes) -> int:
        """How many times `key` was seen before this call."""
        count = self._seen.get(key, 0)
        if count == 0 and len(self._seen) >= self._limit:
            self._seen.clear()  # rare; repeats after this start their numbering over
        self._seen[key] = count + 1
        return count

    async def take(self, key: bytes) -> int:
        """`next`, as the state backends share it (a shared backend counts across workers)."""
        return self.next(key)

    async def forget(self) -> None:
        """`clear`, as the state backends share it."""
        self._seen.clear()

    def clear(self) -> None:
        """Forget every count (a server reset)."""
        self._seen.clear()
