"""Identifiers in OpenAI's formats, derived deterministically from a per-request key.

The same key (seed + request + occurrence) always gives the same ids, so two servers with the same
seed answer the same requests with the same bytes; `request_id()` is the exception: it only goes in
the `x-request-id` header, where uniqueness matters more than reproducibility (a batch line's
goes into a file: `batch_line_request_id`).
"""

from __future__ import annotations

import functools
import hashlib
import os

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# byte -> one of the 62 characters (a 256-entry table: `bytes.translate` maps a digest at C speed;
# the slight bias towards the first characters does not matter for ids).
_TO_ALNUM = bytes((_ALNUM * 5)[:256], "ascii")


def _digest(key: bytes, label: str, size: int = 32) -> bytes:
    return hashlib.blake2b(label.encode(), key=key[:64], digest_size=size).digest()


def alnum(key: bytes, label: str, length: int) -> str:
    """`length` base62 characters derived from key and label (length <= 64)."""
    return _digest(key, label, 64).translate(_TO_ALNUM)[:length].decode("ascii")


def hexid(key: bytes, label: str, length: int) -> str:
    """`length` lowercase hex characters derived from key and label."""
    return _digest(key, label, (length + 1) // 2).hex()[:length]


def chat_completion_id(key: bytes) -> str:
    return "chatcmpl-" + alnum(key, "chatcmpl", 29)


def completion_id(key: bytes) -> str:
    return "cmpl-" + alnum(key, "cmpl", 29)


def tool_call_id(key: bytes, index: int) -> str:
    return "call_" + alnum(key, f"call{index}", 24)


def response_id(key: bytes) -> str:
    return "resp_" + hexid(key, "resp", 50)


def item_id(key: bytes, prefix: str, index: int) -> str:
    """Output item ids of the Responses API: msg_, fc_, rs_ followed by 50 hex characters."""
    return f"{prefix}_" + hexid(key, f"{prefix}{index}", 50)


def moderation_id(key: bytes) -> str:
    return "modr-" + hexid(key, "modr", 32)


def image_id(key: bytes, index: int) -> str:
    """The name an image answered by URL is kept under (like the API's `img-...` blobs)."""
    return "img-" + alnum(key, f"img{index}", 24)


def file_id(key: bytes) -> str:
    """`file-` + 22 base62 characters, like the Files API's ids."""
    return "file-" + alnum(key, "file", 22)


def batch_id(key: bytes) -> str:
    """`batch_` + 32 hex characters, like the Batch API's ids."""
    return "batch_" + hexid(key, "batch", 32)


def batch_line_request_id(batch_id: str, line: int) -> str:
    """`req_` + 32 hex characters: the `request_id` of a batch line's answer (in the output or
    error file, and the line's journal entry). A file's bytes are an answer: derived from the
    batch's id (reproducible for the seed), not `request_id()`'s random one, which made every
    output file differ from run to run."""
    return "req_" + hexid(batch_id.encode(), f"req{line}", 32)


def batch_request_id(key: bytes, line: int) -> str:
    """`batch_req_` + 32 hex characters: the id of one line's answer in a batch's output."""
    return "batch_req_" + hexid(key, f"batch_req{line}", 32)


@functools.lru_cache(maxsize=256)
def system_fingerprint(model: str) -> str:
    """Stable per model, like the real API's `fp_…` values."""
    return "fp_" + hashlib.blake2b(model.encode(), digest_size=5).hexdigest()


def request_id() -> str:
    """A fresh `req_` + 32 hex id for the `x-request-id` header."""
    return "req_" + os.urandom(16).hex()
