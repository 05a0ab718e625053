"""Appending to a YAML cassette in its own text: what `new_episodes` writes.

Writing the whole file anew through the serializer (as `all` does) would drop what the user
put in it: comments, its formatting, its key order. So a save keeps every byte of the file as
it was loaded and puts the new interactions at the end of its `interactions:` list, in the
list's own indentation. A file where that cannot be done (JSON, a flow-style list `[...]`,
YAML the result of splicing would not read back as the old interactions then the new) gets no
`Splice`: the writer writes it anew and keeps the file as it was in `.bak`.

Whether a result reads back so is decided from the YAML parser's events, not by loading it: the
file's events up to the list's end, then the new items' own events, then the file's events from
the list's end on, each compared by what it means (the marks, and a collection's flow or block
style, say nothing of the value built). Equal events build equal values, but for anchors: a new
item may not define one the file defines (the loader refuses an anchor defined twice, and an alias
`*a` after the list would take the new item's), nor refer to one not its own. Loading a 3 MB
cassette to check a save took ~1.2 s, holding the interpreter; its events take ~0.2 s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

# (The C parser when PyYAML has it: its marks count characters, as the Python one's do.)
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KEY = "interactions"

# What an event means, less where it is and how it is laid out: its kind, anchor, tag, whether
# its tag is implied (how a plain scalar is resolved) and a scalar's text or an alias's anchor.
Meaning = tuple[type, Any, Any, Any, Any]


def _meaning(event: yaml.Event) -> Meaning:
    return (
        type(event),
        getattr(event, "anchor", None),
        getattr(event, "tag", None),
        getattr(event, "implicit", None),
        getattr(event, "value", None),
    )


def _digest(meanings: Iterable[Meaning], start: int = 0) -> int:
    digest = start
    for meaning in meanings:
        digest = hash((digest, meaning))
    return digest


def _events(text: str) -> Iterator[yaml.Event]:
    return yaml.parse(text, Loader=_Loader)


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where a cassette's `interactions:` list is, read from its events."""

    start: int  # where the list begins in the text (its first item, or its `[`)
    end: int  # where it ends
    column: int  # the column it begins at
    flow: bool  # whether it is written `[...]`
    empty: bool  # whether the list holds no items
    key_column: int  # the column of the `interactions` key
    before: int  # how many events come before the list's end
    before_digest: int  # ... and what they mean
    after_digest: int  # what the events from the list's end on mean
    anchors: frozenset[str]  # every anchor the file defines


def _layout(text: str) -> _Layout | None:
    """The list's place in `text`, or None unless the text is one document, a block mapping
    with one `interactions` key (and no merge, `<<`, that could bring another) whose value is a
    sequence."""
    depth = 0  # collections open
    nodes = 0  # the root mapping's keys and values begun
    key: str | None = None  # the root mapping's key whose value comes next, if a plain text
    keys: list[str] = []
    start: yaml.SequenceStartEvent | None = None
    end: yaml.SequenceEndEvent | None = None
    key_column = list_key_column = started = before = before_digest = digest = 0
    documents = 0
    anchors: set[str] = set()
    for count, event in enumerate(_events(text)):
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.AliasEvent):
            if anchor not in anchors:
                return None  # (an alias to no anchor before it: the loader refuses the file)
        elif anchor is not None:
            if anchor in anchors:
                return None  # (an anchor defined twice: the loader refuses that too)
            anchors.add(anchor)
        if isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            if depth == 1 and start is not None and end is None:
                # (the first collection to end at the root's values' depth once the list began)
                assert isinstance(event, yaml.SequenceEndEvent)
                end, before, before_digest, digest = event, count, digest, 0
        elif depth == 1 and isinstance(event, yaml.NodeEvent):  # a key or a value of the root
            if nodes % 2 == 0:
                key = event.value if isinstance(event, yaml.ScalarEvent) else None
                keys.append(key or "")
                key_column = _mark(event.start_mark).column
            elif key == _KEY and start is None and isinstance(event, yaml.SequenceStartEvent):
                start, started, list_key_column = event, count, key_column
            nodes += 1
        if isinstance(event, yaml.CollectionStartEvent):
            if depth == 0 and (not isinstance(event, yaml.MappingStartEvent) or event.flow_style):
                return None  # (a list, or `{interactions: [...]}`: no block items go in it)
            depth += 1
        digest = hash((digest, _meaning(event)))
    if documents != 1 or start is None or end is None:
        return None
    if keys.count(_KEY) != 1 or "<<" in keys:
        return None  # (a load keeps another `interactions` than the one found)
    return _Layout(
        start=_mark(start.start_mark).index,
        end=_mark(end.end_mark).index,
        column=_mark(start.start_mark).column,
        flow=bool(start.flow_style),
        empty=before == started + 1,
        key_column=list_key_column,
        before=before,
        before_digest=before_digest,
        after_digest=digest,
        anchors=frozenset(anchors),
    )


def _mark(mark: Any) -> yaml.Mark:
    """An event's mark (either parser's: both give every event its two)."""
    assert mark is not None
    return mark  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Splice:
    """A cassette's text cut where more interactions go, and what its events meant (to check a
    result)."""

    head: str  # the text up to where new items go (a line's start)
    tail: str  # the rest, kept as it is
    indent: int  # the column of the list's items
    layout: _Layout

    @classmethod
    def of(cls, text: str) -> Splice | None:
        """Where `text` takes more interactions, or None if it cannot without a rewrite."""
        try:
            layout = _layout(text)
        except yaml.YAMLError:
            return None
        if layout is None:
            return None
        start, end = layout.start, layout.end
        if not layout.flow:
            return cls.at(text, end, layout.column, layout)
        if not layout.empty:  # (a flow list with items, `[{...}]`, takes no block items)
            return None
        # `interactions: []`: the brackets go (a comment after them stays), the items follow.
        eol = text.find("\n", end)
        eol = len(text) if eol < 0 else eol + 1
        rest = text[end:eol] if text[end:eol].endswith("\n") else text[end:eol] + _eol(text)
        head = text[:start].rstrip(" ") + rest
        return cls(head, text[eol:], layout.key_column, layout)

    @classmethod
    def at(cls, text: str, end: int, indent: int, layout: _Layout) -> Splice:
        """Cut at the end of a block list: the start of the line where the list ends (trailing
        comments stay with the old items), on a line of its own if the file ends mid-line."""
        line = text.rfind("\n", 0, end) + 1
        if not text[line:end].strip():
            return cls(text[:line], text[line:], indent, layout)
        return cls(text[:end] + _eol(text), text[end:], indent, layout)

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
            new = [_meaning(event) for event in _events(items)]
            # (The stream, its document and its list around the items; nothing if no items.)
            new = new[3:-3] if len(new) > 6 else []
            if not self._anchored_apart(new):
                return None
            return text if self._reads_back(text, new) else None
        except yaml.YAMLError:
            return None

    def _anchored_apart(self, new: list[Meaning]) -> bool:
        """Whether the new items' anchors and aliases mean in the file what they mean alone:
        each alias refers to an anchor of theirs before it, and none of their anchors is one
        the file defines (twice in one document, the loader refuses it; and an alias after the
        list, to the file's, would refer to the new item's)."""
        defined: set[str] = set()
        for kind, anchor, *_ in new:
            if anchor is None:
                continue
            if kind is yaml.AliasEvent:
                if anchor not in defined:
                    return False
            elif anchor in defined or anchor in self.layout.anchors:
                return False
            else:
                defined.add(anchor)
        return True

    def _reads_back(self, text: str, new: list[Meaning]) -> bool:
        """Whether `text`'s events are the file's before its list's end, `new`, then the file's
        from the list's end on."""
        layout = self.layout
        events = _events(text)
        digest = 0
        for _ in range(layout.before):
            event = next(events, None)
            if event is None:
                return False
            digest = hash((digest, _meaning(event)))
        if digest != layout.before_digest:
            return False
        for meaning in new:
            event = next(events, None)
            if event is None or _meaning(event) != meaning:
                return False
        return _digest(map(_meaning, events)) == layout.after_digest


def _eol(text: str) -> str:
    """The file's line ending: CRLF if it has any (Windows checkouts), else LF."""
    return "\r\n" if "\r\n" in text else "\n"


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)
