"""YAML text -> plain Python values that remember the line each key and item came from.

PyYAML's constructed values forget where they were written, so scenario files are *composed*
(`yaml.compose`, safe tags only) and the values built here: mappings become `LocatedDict`, lists
`LocatedList`, each holding the 1-based line of the node and of every key / item. Scalars are
resolved by PyYAML's SafeConstructor, so `yes`, `0x10` and `1e3` mean what they mean in YAML.
A duplicate key is a problem (PyYAML silently keeps the last one), reported with both lines; a key
merged in with `<<: *defaults` is not a duplicate of one the mapping writes itself, which overrides
it (the YAML merge-key spec). Aliases that would build too many values (nested aliases of aliases,
a "billion laughs") are a problem at the outermost alias's anchor.
Literal block scalars (`|`) also remember the line their text starts on: their lines map one to one
onto the file's, so a problem inside a multi-line template points at its own line (`block_line`).

Runtime rules (`MockServer.add_rule`, `POST /_mockai/rules`) are plain dicts and lists: `line_of`
answers 0 for them, which the problem reports render without a line number.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml


class LocatedDict(dict[Any, Any]):
    """A mapping from a YAML file: `line` of the mapping, `lines[key]` of each key."""

    line: int
    lines: dict[Any, int]
    blocks: dict[Any, int]  # key -> first text line, for literal block scalar values
    texts: dict[Any, str]  # key -> its text in the file, for keys YAML read as no string (`on`)


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
    out.texts = {}
    return out


def json_key_problem(container: Any, key: Any) -> str | None:
    """Why `key` of a mapping meant as JSON (scripted `json`, tool `arguments`, a `body`
    condition) is no JSON key, else None: YAML reads an unquoted `on`, `no`, `null` or `2` as a
    boolean, null or number, which would turn into 'True', 'None', '2'. Asked for quotes, never
    guessed."""
    if isinstance(key, str):
        return None
    written = getattr(container, "texts", {}).get(key, str(key))
    kind = _kind(key)
    return f'the key {written} is read as {kind}, but JSON keys are strings: quote it ("{written}")'


def json_value_problem(value: Any) -> str | None:
    """Why a scalar meant as JSON is no JSON value (YAML reads `2024-01-01` as a date), else
    None. Mappings and lists are the caller's to walk."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float) and math.isfinite(value):
        return None
    shown = value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        shown = value.isoformat()
    if isinstance(value, datetime.date):  # (written as plain text, unlike `.inf` or `!!binary`)
        return f'{shown} is read as {_kind(value)}, which JSON does not have: quote it ("{shown}")'
    return f"{shown} is {_kind(value)}, not a JSON value"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, datetime.datetime):
        return "a timestamp"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


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


# A YAML alias re-uses its anchor's value, so nested aliases of aliases build exponentially many
# values from a few hundred bytes (a "billion laughs"). Values built again through an alias are
# counted, and a document may build this many of them, plus ten per value it writes out (so a
# large file merging `<<: *defaults` into every rule keeps loading).
ALIASED_VALUES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _too_many(allowed: int) -> str:
    return (
        f"YAML aliases expand to too many values (over {allowed:,} built again; "
        "nested aliases of aliases?): write the values out, or alias them less"
    )


class _Builder:
    def __init__(self, report: Report, budget: int = ALIASED_VALUES) -> None:
        import yaml

        self.report = report
        self.constructor = yaml.constructor.SafeConstructor()
        self.yaml = yaml
        self.depth = 0
        self.seen: set[int] = set()  # id() of every node built once
        self.allowed = budget
        self.budget = budget  # values left to build again through aliases
        self.alias_line = 0  # the line of the outermost alias being built again, else 0
        self.explicit: dict[int, set[int]] = {}  # mapping node -> its own (not merged) key nodes
        self.flattening: set[int] = set()  # mapping nodes whose merges are being flattened

    def build(self, node: yaml.Node) -> Any:
        again = id(node) in self.seen
        if again and not self._spend(node):
            return None
        self.seen.add(id(node))
        outermost = again and not self.alias_line
        if outermost:
            self.alias_line = node.start_mark.line + 1
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
            if outermost:
                self.alias_line = 0

    def _spend(self, node: yaml.Node) -> bool:
        """Count one value built again through an alias; False (reported once) past the budget."""
        self.budget -= 1
        if self.budget == -1:
            self.report(self.alias_line or node.start_mark.line + 1, _too_many(self.allowed))
        return self.budget >= 0

    def _mapping(self, node: yaml.MappingNode) -> LocatedDict:
        # The keys written in this mapping itself, before `<<: *defaults` merges are flattened
        # in: they override merged keys (the merge-key spec), and only two of them are a
        # duplicate. Remembered per node: flattening edits it, and an alias builds it again.
        own = self.explicit.setdefault(
            id(node), {id(key) for key, _ in node.value if key.tag != _MERGE_TAG}
        )
        out = LocatedDict()
        out.line, out.lines, out.blocks, out.texts = node.start_mark.line + 1, {}, {}, {}
        problem = self._flatten(node)
        if problem is not None:  # `<<: 5`: a merge of something not a mapping
            self.report(node.start_mark.line + 1, f"invalid YAML merge: {problem}")
            return out
        written: set[Any] = set()
        for key_node, value_node in node.value:
            key = self.build(key_node)
            line = key_node.start_mark.line + 1
            try:
                hash(key)
            except TypeError:
                self.report(line, "a mapping key must be a plain value, not a list or mapping")
                continue
            if key in written:
                self.report(line, f"duplicate key '{key}' (first at line {out.lines[key]})")
                continue
            if id(key_node) in own:
                written.add(key)
            out[key] = self.build(value_node)  # (merged keys come first: a later one wins)
            out.lines[key] = line
            if not isinstance(key, str) and isinstance(key_node, self.yaml.ScalarNode):
                out.texts[key] = key_node.value
            out.blocks.pop(key, None)
            if block := _block_start(value_node):
                out.blocks[key] = block
        return out

    def _flatten(self, node: yaml.MappingNode) -> str | None:
        """Put the pairs `<<:` merges into `node` in its own (as PyYAML's flatten_mapping does),
        ordered so that the pair that must win comes last (`_mapping` keeps the last): the
        mapping's own keys, then, of `<<: [*a, *b]`, `a`'s over `b`'s, as the merge-key spec
        says ("keys in mapping nodes earlier in the sequence override keys specified in later
        mapping nodes"). PyYAML's own order changed in 6.0.4, where `b`'s won for keys of more
        than one letter (yaml/pyyaml#953). What is wrong with a merge, else None."""
        merged: list[tuple[yaml.Node, yaml.Node]] = []  # lowest precedence first
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                if key_node.tag == _VALUE_TAG:  # (`=` as a key: text, as PyYAML reads it)
                    key_node.tag = _STANDARD_TAG + "str"
                own.append((key_node, value_node))
                continue
            if isinstance(value_node, self.yaml.SequenceNode):
                sources = list(value_node.value)
            else:
                sources = [value_node]
            for source in sources:
                if not isinstance(source, self.yaml.MappingNode):
                    found = getattr(source, "id", "a value")
                    return f"expected a mapping or list of mappings for merging, but found {found}"
            if any(id(source) in self.flattening for source in sources):
                return "a mapping cannot merge itself (a recursive alias)"
            self.flattening.add(id(node))
            try:
                for source in reversed(sources):  # (the first source last: it wins)
                    problem = self._flatten(source)
                    if problem is not None:
                        return problem
                    merged.extend(source.value)
            finally:
                self.flattening.discard(id(node))
        if len(own) < len(node.value):  # (merges were flattened in)
            node.value = _last_of_each(merged) + own
        return None

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
        except _UNREADABLE:
            # A standard tag on text it cannot read (`!!int abc`): PyYAML's constructors do not
            # check first, they fail converting (int('abc'), bool_values['x'], a regex that did
            # not match), so these are the file's mistakes, not ours.
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            tag = node.tag.replace(_STANDARD_TAG, "!!")
            self.report(node.start_mark.line + 1, f"cannot read {shown!r} as {tag}")
        return None


_STANDARD_TAG = "tag:yaml.org,2002:"
_VALUE_TAG = _STANDARD_TAG + "value"


def _last_of_each(pairs: list[tuple[yaml.Node, yaml.Node]]) -> list[tuple[yaml.Node, yaml.Node]]:
    """`pairs` keeping, of the pairs whose keys are the same text, the last (the one a mapping
    keeps): merges of merges of one mapping (`<<: [*m, *m]`, nested) would otherwise grow their
    pairs exponentially, as the values built again through aliases grow (ALIASED_VALUES)."""
    kept: dict[Any, tuple[yaml.Node, yaml.Node]] = {}
    for index, (key_node, value_node) in enumerate(pairs):
        value = getattr(key_node, "value", None)
        key = (key_node.tag, value) if isinstance(value, str) else ("node", index)
        kept.pop(key, None)  # (a later pair takes the place its key has last)
        kept[key] = (key_node, value_node)
    return list(kept.values())


# What SafeConstructor raises for a tagged scalar whose text is not of its type.
_UNREADABLE = (ValueError, TypeError, LookupError, AttributeError, ArithmeticError)


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
    return _Builder(report, ALIASED_VALUES + 10 * _count(node)).build(node)


def _count(root: yaml.Node) -> int:
    """How many distinct nodes the document has (an alias is its anchor's node again)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node.value, list):  # a sequence's items, a mapping's (key, value) pairs
            for item in node.value:
                stack.extend(item if isinstance(item, tuple) else (item,))
    return len(seen)


_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def not_utf8(raw: bytes, error: UnicodeDecodeError) -> tuple[int, str]:
    """The line of a file's first byte that is not UTF-8, and what to say of it (its column, as
    an editor shows it: the characters before it on its line are UTF-8): scenario files and
    cassettes alike."""
    # (a lone CR breaks a line too, as YAML and text mode read it)
    lines = _LINE_BREAK.split(raw[: error.start])
    column = len(lines[-1].decode("utf-8")) + 1
    byte = raw[error.start]
    return len(lines), f"byte 0x{byte:02x} at column {column} is not UTF-8 (save the file as UTF-8)"


def alias_problem_in(events: Iterable[yaml.Event]) -> tuple[int, str] | None:
    """The line and message of what `load` would report of aliases in the document parsed as
    `events` (`yaml.parse`): values built again past the same budget, at the anchor of the
    alias that overdraws it; an alias inside its own anchor. For documents built by another
    constructor (vcrpy's, for cassettes), in time linear in the file's size and without
    composing it (a cassette of thousands of interactions composed whole held every node at
    once, and the server's resident memory kept that peak: tests/test_cassette_compact.py).
    Each alias in the file's order adds the size of the value it names, as building it would;
    the anchors open around an alias are not sized yet: an alias inside its own anchor."""
    import yaml  # (loaded already: the events came from it)

    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (values its node builds, its line)
    # The collections open around the current event: [values so far, anchor, line].
    open_: list[list[Any]] = [[0, None, 0]]
    aliases: list[tuple[int, int]] = []  # (size, the anchor's line), in the file's order
    nodes = 0
    for event in events:
        if isinstance(event, yaml.AliasEvent):
            if any(frame[1] == event.anchor for frame in open_):
                return _line(event) + 1, "a YAML alias inside its own anchor has no value"
            known = sizes.get(event.anchor)  # type: ignore[arg-type]
            if known is not None:  # (an unknown one is the parser's error, said by the loader)
                open_[-1][0] += known[0]
                aliases.append(known)
        elif isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
            nodes += 1
            line = _line(event)
            if isinstance(event, yaml.ScalarEvent):
                open_[-1][0] += 1
                if event.anchor is not None:
                    sizes[event.anchor] = (1, line)
            else:
                open_.append([1, event.anchor, line])
        elif isinstance(event, yaml.CollectionEndEvent) and len(open_) > 1:
            size, anchor, line = open_.pop()
            open_[-1][0] += size
            if anchor is not None:
                sizes[anchor] = (size, line)
    allowed = ALIASED_VALUES + 10 * nodes
    spent = 0
    for size, line in aliases:
        spent += size
        if spent > allowed:
            return line + 1, _too_many(allowed)
    return None


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return mark.line if mark is not None else 0
