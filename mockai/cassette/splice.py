"""Appending to a YAML cassette in its own text: what `new_episodes` writes.

Writing the whole file anew through the serializer (as `all` does) would drop what the user
put in it: comments, its formatting, its key order. So a save keeps every byte of the file as
it was loaded and puts the new interactions at the end of its `interactions:` list, in the
list's own indentation. A file where that cannot be done (JSON, a flow-style list `[...]`,
YAML the result of splicing would not read back as the old interactions then the new) gets no
`Splice`: the writer writes it anew and keeps the file as it was in `.bak`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from vcr.serializers import yamlserializer

# (The C composer when PyYAML has it: its marks count characters, as the Python one's do.)
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KEY = "interactions"


@dataclass(frozen=True, slots=True)
class Splice:
    """A cassette's text cut where more interactions go, and what it held (to check a result)."""

    head: str  # the text up to where new items go (a line's start)
    tail: str  # the rest, kept as it is
    indent: int  # the column of the list's items
    loaded: dict[str, Any]  # the file as the serializer reads it

    @classmethod
    def of(cls, text: str) -> Splice | None:
        """Where `text` takes more interactions, or None if it cannot without a rewrite."""
        try:
            root = yaml.compose(text, Loader=_Loader)
            loaded = yamlserializer.deserialize(text)
        except yaml.YAMLError:
            return None
        if not isinstance(root, yaml.MappingNode) or not isinstance(loaded, dict):
            return None
        node = next((v for k, v in root.value if k.value == _KEY), None)
        if not isinstance(node, yaml.SequenceNode) or _flow(root, text):
            return None
        start, end = node.start_mark.index, node.end_mark.index
        if not _flow(node, text):
            return cls.at(text, end, node.start_mark.column, loaded)
        if node.value:  # (a flow list with items: `[{...}]` takes no block items)
            return None
        # `interactions: []`: the brackets go (a comment after them stays), the items follow.
        eol = text.find("\n", end)
        eol = len(text) if eol < 0 else eol + 1
        key = next(k for k, v in root.value if v is node)
        rest = text[end:eol] if text[end:eol].endswith("\n") else text[end:eol] + _eol(text)
        head = text[:start].rstrip(" ") + rest
        return cls(head, text[eol:], key.start_mark.column, loaded)

    @classmethod
    def at(cls, text: str, end: int, indent: int, loaded: dict[str, Any]) -> Splice:
        """Cut at the end of a block list: the start of the line where the list ends (trailing
        comments stay with the old items), on a line of its own if the file ends mid-line."""
        line = text.rfind("\n", 0, end) + 1
        if not text[line:end].strip():
            return cls(text[:line], text[line:], indent, loaded)
        return cls(text[:end] + _eol(text), text[end:], indent, loaded)

    def appended(self, items: str) -> str | None:
        """The text with `items` (a YAML block list at column 0, as the serializer writes one)
        appended to its list; None if the result would not read back as the file's interactions
        followed by the new ones, all else equal."""
        pad = " " * self.indent
        # (Every line moves right alike, block scalars' too, so their content keeps its meaning;
        # an empty line is empty in any indentation.)
        shifted = "".join(line if line == "\n" else pad + line for line in _lines(items))
        if "\r\n" in self.head or "\r\n" in self.tail:  # (a CRLF file stays CRLF throughout)
            shifted = shifted.replace("\n", "\r\n")
        text = self.head + shifted + self.tail
        try:
            result = yamlserializer.deserialize(text)
            new = yamlserializer.deserialize(items) or []
        except yaml.YAMLError:
            return None
        expected = {**self.loaded, _KEY: [*self.loaded[_KEY], *new]}
        return text if result == expected else None


def _flow(node: yaml.Node, text: str) -> bool:
    return text[node.start_mark.index : node.start_mark.index + 1] in ("[", "{")


def _eol(text: str) -> str:
    """The file's line ending: CRLF if it has any (Windows checkouts), else LF."""
    return "\r\n" if "\r\n" in text else "\n"


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)
