"""The token counts an answer's bytes report, found without parsing them.

An answer's own `usage` object comes last in its body (or in the last frames of its stream), so a
search from the last `"usage"` finds it: `prompt_tokens` (or the Responses API's `input_tokens`)
and `completion_tokens` (or `output_tokens`) within the next 600 bytes. The metrics count a
recorded or proxied answer's tokens this way; a codec that renders the usage itself hands it
over instead (`Body.usage`), and a replayed recording is searched once, when it is loaded.
"""

from __future__ import annotations

import re

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
