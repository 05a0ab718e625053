"""Where things are in a cassette's text: the line of each node, for `file:line` messages.

Shared by the loader (`format.py`, which asks only when an interaction is refused: composing the
whole document again costs as much as loading it) and `mockai check` (`check.py`). PyYAML's nodes
carry their marks; JSON cassettes compose as YAML too (JSON is, near enough, a YAML subset), and
a text that does not compose gives line 1 everywhere. What JSON holds and YAML refuses is made
composable first, on the same lines (`_composable`).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# A `\uD83D\uDE00` pair (how `json.dumps` writes a character beyond the BMP, an emoji) or a lone
# surrogate escape, not itself escaped (`\\uD83D` is a backslash, then text): YAML refuses
# surrogate escapes, and one of them in a JSON cassette had put every problem at line 1.
_SURROGATE_ESCAPE = re.compile(
    r"(?<!\\)((?:\\\\)*)\\u([dD][89abAB][0-9a-fA-F]{2})(?:\\u([dD][c-fC-F][0-9a-fA-F]{2}))?"
    r"|(?<!\\)((?:\\\\)*)\\u([dD][c-fC-F][0-9a-fA-F]{2})"
)
# Characters JSON strings hold raw that YAML refuses (controls, U+FFFE, U+FFFF, surrogates) or
# counts as line breaks (U+0085, U+2028, U+2029) where `file:line` counts only "\n".
_NOT_YAML = re.compile(
    f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff{chr(0xD800)}-{chr(0xDFFF)}]"
)


class NodeLines:
    """Line numbers of the nodes of a YAML (or JSON) document, by path."""

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[Any, ...], int] = {}
        try:
            root = yaml.compose(
                _composable(text), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            )
        except yaml.YAMLError:
            return
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: tuple[Any, ...]) -> None:
        self._lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self._walk(value, (*path, str(key.value)))
                self._lines[(*path, str(key.value))] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*path, index))

    def of(self, *path: Any) -> int:
        """The line of the deepest known node on `path` (1 if none is known)."""
        for end in range(len(path), 0, -1):
            line = self._lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


def _composable(text: str) -> str:
    """`text` with what YAML refuses in a JSON string replaced, line for line: a surrogate pair
    escape by YAML's `\\U` escape of its character, a lone one by U+FFFD's, a raw character by
    a space (JSON has none of them outside strings, so only string values change)."""
    if "\\u" in text:
        text = _SURROGATE_ESCAPE.sub(_escape, text)
    return _NOT_YAML.sub(" ", text)


def _escape(match: re.Match[str]) -> str:
    pairs, high, low, pairs_before_lone, _ = match.groups()
    if high is None or low is None:
        return f"{pairs or pairs_before_lone or ''}\\ufffd"
    code = 0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00)
    return f"{pairs}\\U{code:08x}"
