"""JSON in and out of the wire, in one place.

`loads` only returns values the rest of mockai can always walk and write back: whatever parses
here can be hashed, matched, counted, journaled, recorded and sent without a RecursionError or an
encoding error, so those stages never need to guard against hostile input themselves.

orjson does the work (3-6x faster than the standard library both ways); the standard library
takes over for what orjson does differently: integers beyond 64 bits (orjson reads them as
floats, and cannot write them), keys that are not strings, and strings with lone surrogates
(which must fail with UnicodeEncodeError, as callers expect). The bytes are the standard
library's compact `ensure_ascii=False` output, except floats with an exponent: orjson writes
`0.00001` and `1e-7` where Python writes `1e-05` and `1e-07` (both the shortest text reading
back as the same double). NaN and Infinity never get here: `loads` refuses them and scenario
files cannot script them (orjson would write `null`).

What orjson writes is copied once into bytes of its own length (`_own_size`): orjson hands back
its working buffer without shrinking it, so each result holds ~4 KiB at least and up to twice
its length, and what mockai keeps (journal entries, stored answers, kept answers, a cassette's
canonical requests) is bounded by the bytes it counts, not by what they hide.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

import orjson

# The deepest nesting `loads` accepts (the top-level object or array is level 1). Real requests
# nest a few levels, up to ~25 with a deep tool schema; the limit leaves every recursive walk
# over a parsed body (jsonschema's metaschema check, YAML dumping for cassettes, canonical JSON)
# far from Python's recursion limit, wherever it runs.
MAX_DEPTH = 64

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
# What the encoder above uses for str values (the C implementation when available).
_encode_string = json.encoder.encode_basestring


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999: JSON syntax, but no double holds it (nor could we send it back)
        raise ValueError(f"number out of range: {text[:32]}")
    return value


# The largest double, exactly. An integer literal past it (1 followed by 309 zeros) is exact as a
# Python int, but numeric fields meet doubles somewhere (a range check, a schema bound, a random
# draw between bounds), where it raises OverflowError; the API reads numbers as doubles, so such a
# literal is as unreadable as 1e309. (Refused from the largest double on, not from where `float()`
# overflows: one just below that still overflows once a bound is widened by a step.)
_DOUBLE_MAX = int(sys.float_info.max)


def _within_double(text: str) -> int:
    value = int(text)
    if not -_DOUBLE_MAX <= value <= _DOUBLE_MAX:
        raise ValueError(f"number out of range: {text[:32]}")
    return value


# Strict JSON: no NaN / Infinity literals and no numbers that overflow a double (as a float or
# as an integer literal), which Python's parser accepts but which no JSON encoder (ours included:
# allow_nan=False) can write back, or no double can hold.
_decoder = json.JSONDecoder(
    parse_constant=_no_constant, parse_float=_finite, parse_int=_within_double
)


_NOTHING = b""


def _own_size(written: bytes) -> bytes:
    """`written` in a buffer of its own length.

    orjson (3.12 and later) returns the bytes object it wrote into, whose buffer starts at ~4 KiB
    and doubles as it fills, and never shrinks it: a 600-byte chat answer holds 4 KiB; 100,000
    small results held 393 MiB of RSS, their copies 5.5 MiB; a cassette of 10,000 chat requests
    held 78 MiB in its canonical request texts (measured). The copy costs ~0.06 us for a chat
    answer (~0.3 us to write it), 5% of the writing for a 560 KB body."""
    return _NOTHING.join((written, _NOTHING))


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as the OpenAI API writes it."""
    try:
        return _own_size(orjson.dumps(value))
    except orjson.JSONEncodeError:  # big integers, non-string keys, lone surrogates, ...
        return _encoder.encode(value).encode()


def string(text: str) -> bytes:
    """One JSON string, byte-identical to how `dumps` writes it (for splicing hot-path frames).

    Left in orjson's buffer (see `_own_size`): it is spliced into other bytes, never kept."""
    try:
        return orjson.dumps(text)
    except orjson.JSONEncodeError:  # lone surrogates: UnicodeEncodeError, as from `dumps`
        return _encode_string(text).encode()


def dumps_str(value: Any) -> str:
    """Compact JSON text (for values embedded in other JSON, such as tool-call arguments)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _encoder.encode(value)


def loads(data: bytes | str) -> Any:
    """Parse JSON that is safe to walk and to write back; ValueError on anything else.

    Refused besides malformed JSON and bytes that are not UTF-8: nesting deeper than MAX_DEPTH,
    lone surrogates (`"\\ud800"`: valid JSON escapes that no UTF-8 encoder can write back), NaN
    and Infinity, and numbers beyond a double's range. What the API answers to all of these is
    its "could not parse the JSON body" 400.
    """
    if _long_digit_run(data):  # maybe an integer beyond 64 bits, which orjson reads as a float
        return _checked(_loads_exactly(data))
    # orjson refuses lone surrogates, NaN and 1e999 itself (JSONDecodeError, a ValueError);
    # depth costs a count of brackets: few brackets cannot nest deeply.
    value = orjson.loads(data)
    brackets = data.count(b"[") + data.count(b"{") if isinstance(data, bytes) else _brackets(data)
    if brackets > MAX_DEPTH and _too_deep(value):
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def _brackets(text: str) -> int:
    return text.count("[") + text.count("{")


def _loads_exactly(data: bytes | str) -> tuple[Any, str]:
    """The standard library's parse (exact for integers of any size), and the text parsed."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    try:
        return _decoder.decode(data), data
    except RecursionError:  # deeper than the stack allows: deeper than MAX_DEPTH, too
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels") from None


def _checked(parsed: tuple[Any, str]) -> Any:
    value, data = parsed
    # Both checks cost a substring count on ordinary bodies: few brackets cannot nest deeply,
    # and a lone surrogate can only come from a `\\ud...` escape.
    if _brackets(data) > MAX_DEPTH and _too_deep(value):
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    if ("\\ud" in data or "\\uD" in data) and not _encodable(value):
        raise ValueError("JSON string with a lone surrogate (not valid Unicode)")
    return value


# bytes -> 1 for an ASCII digit, 0 otherwise: a run of 19 digits is then one `find`.
_DIGIT_FLAGS = bytes(1 if 0x30 <= byte <= 0x39 else 0 for byte in range(256))
_DIGIT_RUN = b"\x01" * 19


def _long_digit_run(data: bytes | str) -> bool:
    """Whether `data` holds 19 digits in a row (an integer orjson may not read exactly)."""
    if len(data) < 19:
        return False
    if isinstance(data, str):
        return re.search("[0-9]{19}", data) is not None
    return data.translate(_DIGIT_FLAGS).find(_DIGIT_RUN) >= 0


def _too_deep(value: Any) -> bool:
    """Whether containers nest deeper than MAX_DEPTH in `value` (iterative: any depth is safe)."""
    stack: list[tuple[dict[str, Any] | list[Any], int]] = []
    if isinstance(value, dict | list):
        stack.append((value, 1))
    while stack:
        node, depth = stack.pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                if depth >= MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


def _encodable(value: Any) -> bool:
    try:
        _encoder.encode(value).encode()
    except UnicodeEncodeError:
        return False
    return True


# (spelt with chr(): mypyc, which compiles this module, cannot hold a lone surrogate literal)
_SURROGATE = re.compile(f"[{chr(0xD800)}-{chr(0xDFFF)}]")


def valid_unicode(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD.

    aiohttp decodes header (and path) bytes that are not UTF-8 as lone surrogates
    ("surrogateescape"), which no UTF-8 JSON body can carry: answers and the journal quote such
    text through this.
    """
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def dumps_lenient(value: Any) -> bytes:
    """`dumps`, with lone surrogates in strings replaced by U+FFFD instead of failing: for
    messages that quote what a client sent (a header or path with undecodable bytes)."""
    try:
        return dumps(value)
    except UnicodeEncodeError:
        return dumps(_valid_tree(value))


def _valid_tree(value: Any) -> Any:
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, dict):
        return {_valid_tree(key): _valid_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_valid_tree(item) for item in value]
    return value


def canonical(value: Any) -> bytes:
    """Key-order independent JSON, for hashing and matching (never sent on the wire)."""
    try:
        return _own_size(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    except orjson.JSONEncodeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
