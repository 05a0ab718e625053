"""The token counts an answer's bytes report, found without parsing them.

An answer's own `usage` object comes last in its body (or in the last frames of its stream), so a
search from the last `"usage"` finds it: `prompt_tokens` (or the Responses API's `input_tokens`)
and `completion_tokens` (or `output_tokens`) within the next 600 bytes. The metrics count a
recorded or proxied answer's tokens this way; a codec that renders the usage itself hands it
over instead (`Body.usage`), and a replayed recording is searched once, when it is loaded.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mockai.wire import jsonbytes

_NUMBER = re.compile(rb"\s*(\d+)")
_REACH = 600  # bytes after `"usage"` the counts may be found in


def usage_in(text: bytes) -> dict[str, int]:
    """`{"prompt_tokens": p, "completion_tokens": c}` from the last usage object in `text`
    (either count 0 when absent; an empty dict when `text` holds no usage at all)."""
    start = text.rfind(b'"usage"')  # the answer's own usage comes last
    if start < 0:
        return {}
    return {
        "prompt_tokens": _number_after(text, start, b'"prompt_tokens":', b'"input_tokens":'),
        "completion_tokens": _number_after(
            text, start, b'"completion_tokens":', b'"output_tokens":'
        ),
    }


def _number_after(text: bytes, start: int, *names: bytes) -> int:
    """The number after the first of `names` in the usage object at `start` (0 if none)."""
    for name in names:
        at = text.find(name, start, start + _REACH)
        if at >= 0:
            found = _NUMBER.match(text, at + len(name))
            return int(found.group(1)) if found else 0
    return 0


_TOP_LEVEL_USAGE = re.compile(rb'[{,]\s*"usage"\s*:\s*')
_CLOSED_AT_END = re.compile(r"\s*}\s*\Z")
_UNKNOWN = object()


def top_level_usage(body: bytes) -> Any:
    """What `jsonbytes.loads(body).get("usage")` gives for a JSON `body` (None without a usage,
    or when the JSON is not an object), found without parsing the whole body when its usage is
    its last member, as mockai, OpenAI and the providers write it. (A body that is not JSON may
    answer either way: it is a batch line's answer, which `pipeline.batch` makes JSON.)

    A batch of embeddings holds thousands of answers of thousands of floats each: turning every
    float into a Python object to read a few token counts cost more than answering the line.
    """
    found = _tail_usage(body)
    if found is not _UNKNOWN:
        return found
    try:
        whole = jsonbytes.loads(body)
    except ValueError:
        return None
    return whole.get("usage") if isinstance(whole, dict) else None


def _tail_usage(body: bytes) -> Any:
    """The usage when it is the last member of the object `body` holds, else `_UNKNOWN`.

    Why the tail alone can be trusted: in valid JSON a quote after `{` or `,` opens a key (inside
    a string, a quote is escaped), so the last match is a real `usage` key at some depth; when
    its value is followed by nothing but the `}` that ends the body, that key belongs to the
    outermost object. Anything else (no match, a value that does not parse, more after it) is
    left to a full parse, which also rejects a body that is not JSON."""
    matches = list(_TOP_LEVEL_USAGE.finditer(body, max(0, len(body) - _TAIL_REACH)))
    if not matches:
        return _UNKNOWN
    start = matches[-1].end()
    try:
        text = body[start:].decode("utf-8")
        _, end = _DECODER.raw_decode(text)  # (where the value ends)
        if not body.startswith(b"{") or not _CLOSED_AT_END.match(text, end):
            return _UNKNOWN
        return jsonbytes.loads(text[:end])  # read as the whole body would be
    except ValueError:  # (UnicodeDecodeError is one)
        return _UNKNOWN


# How far from the end the usage is looked for: a usage object with every detail the API
# reports is a few hundred bytes; an answer whose usage is not near its end is parsed whole.
_TAIL_REACH = 4096
_DECODER = json.JSONDecoder()
