"""YAML text -> plain Python values that remember the line each key and item came from.

PyYAML's constructed values forget where they were written, so scenario files are *composed*
(`yaml.compose`, safe tags only) and the values built here: mappings become `LocatedDict`, lists
`LocatedList`, each holding the 1-based line of the node and of every key / item. Scalars are
resolved by PyYAML's SafeConstructor, so `yes`, `0x10` and `1e3` mean what they mean in YAML.
A duplicate key is a problem (PyYAML silently keeps the last one), reported with both lines.
Literal block scalars (`|`) also remember the line their text starts on: their lines map one to one
onto the file's, so a problem inside a multi-line template points at its own line (`block_line`).

Runtime rules (`MockServer.add_rule`, `POST /_mockai/rules`) are plain dicts and lists: `line_of`
answers 0 for them, which the problem reports render without a line number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml


class LocatedDict(dict[Any, Any]):
    """A mapping from a YAML file: `line` of the mapping, `lines[key]` of each key."""

    line: int
    lines: dict[Any, int]
    blocks: dict[Any, int]  # key -> first text line, for literal block scalar values


class LocatedList(list[Any]):
    """A sequence from a YAML file: `line` of the sequence, `lines[i]` of each item."""

    line: int
    lines: list[int]
    blocks: dict[int, int]  # index -> first text line, for literal block scalar items


def line_of(container: Any, key: Any = None) -> int:
    """The line of `container[key]` (or of the container itself); 0 when nothing is known."""
    if key is None:
        return int(getattr(container, "line", 0))
    if isinstance(container, LocatedDict):
        return container.lines.get(key, container.line)
    if isinstance(container, LocatedList) and isinstance(key, int) and 0 <= key < len(container):
        return container.lines[key]
    return line_of(container)


def located(values: dict[Any, Any], line: int, *, blocks: dict[Any, int]) -> LocatedDict:
    """A LocatedDict built in code (every key at `line`), for shorthands standing for a mapping."""
    out = LocatedDict(values)
    out.line, out.lines = line, dict.fromkeys(values, line)
    out.blocks = {key: block for key, block in blocks.items() if block}
    return out


def block_line(container: Any, key: Any) -> int:
    """The file line of the first text line of `container[key]` when it is a literal block
    scalar (`key: |`), whose text lines are the file's lines one to one; else 0."""
    blocks = getattr(container, "blocks", None)
    return blocks.get(key, 0) if blocks else 0


def _block_start(node: yaml.Node) -> int:
    import yaml

    # The node starts at the `|` indicator; its text starts on the next line.
    if isinstance(node, yaml.ScalarNode) and node.style == "|":
        return int(node.start_mark.line) + 2
    return 0


Report = Callable[[int, str], None]


class _Builder:
    def __init__(self, report: Report) -> None:
        import yaml

        self.report = report
        self.constructor = yaml.constructor.SafeConstructor()
        self.yaml = yaml
        self.depth = 0

    def build(self, node: yaml.Node) -> Any:
        self.depth += 1
        try:
            if self.depth > 100:  # a recursive alias (`&a [*a]`) has no finite value
                self.report(node.start_mark.line + 1, "YAML nesting too deep (recursive alias?)")
                return None
            if isinstance(node, self.yaml.MappingNode):
                return self._mapping(node)
            if isinstance(node, self.yaml.SequenceNode):
                return self._sequence(node)
            return self._scalar(node)
        finally:
            self.depth -= 1

    def _mapping(self, node: yaml.MappingNode) -> LocatedDict:
        self.constructor.flatten_mapping(node)  # resolves `<<: *defaults` merge keys
        out = LocatedDict()
        out.line, out.lines, out.blocks = node.start_mark.line + 1, {}, {}
        for key_node, value_node in node.value:
            key = self.build(key_node)
            line = key_node.start_mark.line + 1
            try:
                hash(key)
            except TypeError:
                self.report(line, "a mapping key must be a plain value, not a list or mapping")
                continue
            if key in out.lines:
                self.report(line, f"duplicate key '{key}' (first at line {out.lines[key]})")
                continue
            out[key] = self.build(value_node)
            out.lines[key] = line
            if block := _block_start(value_node):
                out.blocks[key] = block
        return out

    def _sequence(self, node: yaml.SequenceNode) -> LocatedList:
        out = LocatedList(self.build(item) for item in node.value)
        out.line = node.start_mark.line + 1
        out.lines = [item.start_mark.line + 1 for item in node.value]
        out.blocks = {i: b for i, item in enumerate(node.value) if (b := _block_start(item))}
        return out

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except self.yaml.YAMLError as error:
            self.report(node.start_mark.line + 1, f"invalid YAML value: {error}")
            return None


def load(text: str, report: Report) -> Any:
    """The document in `text` as located values; syntax errors go to `report(line, message)`.

    Returns None for an empty document or one that could not be parsed.
    """
    import yaml  # (when a file is loaded: a server without scenario files never needs it)

    # libyaml's composer is ~10x faster and keeps the same marks; PyYAML's when it is not built in.
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        detail = error.problem or "syntax error"
        if error.context:
            detail = f"{detail} ({error.context})"
        report(line, f"invalid YAML: {detail}")
        return None
    except yaml.YAMLError as error:
        report(1, f"invalid YAML: {error}")
        return None
    if node is None:
        return None
    return _Builder(report).build(node)
