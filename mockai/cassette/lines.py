"""Where things are in a cassette's text: the line of each node, for `file:line` messages.

Shared by the loader (`format.py`, which asks only when an interaction is refused: composing the
whole document again costs as much as loading it) and `mockai check` (`check.py`). PyYAML's nodes
carry their marks; JSON cassettes compose as YAML too (JSON is, near enough, a YAML subset), and
a text that does not compose gives line 1 everywhere.
"""

from __future__ import annotations

from typing import Any

import yaml


class NodeLines:
    """Line numbers of the nodes of a YAML (or JSON) document, by path."""

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[Any, ...], int] = {}
        try:
            root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
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
