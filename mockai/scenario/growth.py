"""How long a string operation's result will be, computed before the operation makes it.

A template's size limit (templates.RENDER_CHARACTERS) has to hold before a big string exists:
`'a'.ljust(5 * 10**8)` allocates its 500 MB before any look at the result could refuse it. Each
function here gives, from the arguments alone, the length of the result or a lower bound of it
(never more, so that nothing under the limit is refused), in time linear in the inputs at worst;
None when the arguments are not what the operation takes (it then raises its own error).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

# `'%-10.3f'`: mapping key, flags, width, precision, length modifier, conversion.
_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?"
    r"(?:\.(?P<precision>\*|\d*))?[hlL]?(?P<type>.)",
    re.S,
)
# str.format's standard spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_SPEC = re.compile(
    r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?(?P<type>[a-zA-Z%]?)",
    re.S,
)
# Conversions whose precision pads or adds digits (`%.9d`, `{:.9f}`); with s, r, a it truncates,
# with g it caps the significant digits.
_PERCENT_GROWS = frozenset("diouxXeEfF")
_SPEC_GROWS = frozenset("eEfF%")
_WIDTHS = frozenset({"ljust", "rjust", "center", "zfill"})


def method_size(
    subject: str | bytes, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> int | None:
    """The length of `subject.<name>(*args, **kwargs)` for the str / bytes methods that grow."""
    if name in _WIDTHS:
        return max(len(subject), args[0]) if args and isinstance(args[0], int) else None
    if name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        return expandtabs_size(subject, tabsize) if isinstance(tabsize, int) else None
    if name == "replace" and len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        return replace_size(subject, args[0], args[1], count)
    if name == "translate" and isinstance(subject, str) and args and isinstance(args[0], dict):
        return translate_size(subject, args[0])
    return None


def replace_size(subject: Any, old: Any, new: Any, count: Any = -1) -> int | None:
    """The length of `subject.replace(old, new, count)`."""
    kind = str if isinstance(subject, str) else bytes
    if not all(isinstance(part, kind) for part in (subject, old, new)):
        return None
    if not isinstance(count, int):
        return None
    found = subject.count(old) if old else len(subject) + 1  # ('' matches between every two)
    if count >= 0:
        found = min(found, count)
    return int(len(subject) + found * (len(new) - len(old)))


def expandtabs_size(subject: str | bytes, tabsize: int) -> int:
    """The length of `subject.expandtabs(tabsize)` (each tab runs to the next multiple of it)."""
    text = subject.decode("latin-1") if isinstance(subject, bytes) else subject  # (same rules)
    tabs = text.count("\t")
    if tabsize <= 1 or not tabs:
        return len(text) + (tabsize - 1) * tabs if tabsize >= 0 else len(text) - tabs
    if len(text) + tabs * (tabsize - 1) < 1_000_000:  # (surely small: cheap to measure)
        return len(text.expandtabs(tabsize))
    return columns_size(text, tabsize)


def columns_size(text: str, tabsize: int) -> int:
    """The length of `text.expandtabs(tabsize)` (tabsize > 0), walked from tab to tab."""
    size = 0
    for line in text.replace("\r", "\n").split("\n"):  # (both end a column)
        column = 0
        *tabbed, last = line.split("\t")
        for piece in tabbed:
            column += len(piece)
            column += tabsize - column % tabsize
        size += column + len(last) + 1
    return size - 1


def translate_size(subject: str, table: dict[Any, Any]) -> int:
    """The length of `subject.translate(table)` (a dict table: str.maketrans's kind)."""
    size = 0
    for char, times in Counter(subject).items():
        mapped = table.get(ord(char), char)
        size += times * (len(mapped) if isinstance(mapped, str) else 0 if mapped is None else 1)
    return size


# Containers whose text (`str()`, `repr()`, JSON) spells out every item: a list repeating one
# big list (`[['x' * 1000] * 1000] * 1000`) is small to hold and 1 GB to print.
CONTAINERS = (list, tuple, dict, set, frozenset)


def printed_size(value: Any, limit: int) -> int:
    """A lower bound of the length of `str(value)` for a container (its strings' characters,
    brackets, separators, a character for any other item), counted only until it passes `limit`:
    walking a container repeating itself stops there, however large its text would be. Anything
    else counts 0 (strings are counted as they are written)."""
    if not isinstance(value, CONTAINERS):
        return 0
    size = 0
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            size += len(item) + 2  # (quoted)
        elif isinstance(item, bytes):
            size += len(item) + 3  # b''
        elif isinstance(item, dict):
            size += 2 + 2 * len(item) + 2 * max(len(item) - 1, 0)  # `{}`, `: ` and `, `
            if size > limit:
                return size
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, CONTAINERS):
            size += 2 + 2 * max(len(item) - 1, 0)  # the brackets and `, `
            if size > limit:
                return size
            pending.extend(item)
        else:
            size += 1
        if size > limit:
            return size
    return size


def join_size(separator: str | bytes, items: Sequence[Any]) -> int:
    """The length of `separator.join(items)` (its str or bytes items: a lower bound)."""
    pieces = sum(len(item) for item in items if isinstance(item, (str, bytes)))
    return pieces + len(separator) * max(len(items) - 1, 0)


def percent_size(template: str | bytes, values: Any) -> int:
    """A lower bound of the length of `template % values`: its widths and growing precisions."""
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    positional = list(values) if isinstance(values, tuple) else [values]
    position = 0

    def take() -> Any:  # the next positional value (a `*` width or precision, or a value)
        nonlocal position
        position += 1
        return positional[position - 1] if position <= len(positional) else None

    size = len(text)
    for spec in _PERCENT.finditer(text):
        size -= len(spec[0])
        width = take() if spec["width"] == "*" else spec["width"]
        if isinstance(width, int):  # (a negative `*` width is a left-justified one)
            width = abs(width)
        precision = take() if spec["precision"] == "*" else spec["precision"]
        if spec["type"] == "%":
            size += 1
            continue
        if spec["key"] is None:
            take()
        grows = precision if spec["type"] in _PERCENT_GROWS else 0
        size += max(_number(width), _number(grows), 1 if spec["type"] == "c" else 0)
    return size


def spec_size(spec: str, value: Any) -> int:
    """A lower bound of the length of `format(value, spec)` (a standard spec's width and
    precision; 0 for other specs, such as a date's `%Y-%m-%d`)."""
    parsed = _SPEC.fullmatch(spec)
    if parsed is None:
        return 0
    grows = (
        parsed["precision"] if parsed["type"] in _SPEC_GROWS and not isinstance(value, str) else 0
    )
    return max(_number(parsed["width"]), _number(grows))


def indent_size(subject: str, width: Any, *, first: bool, blank: bool) -> int | None:
    """The length of jinja2's `subject|indent(width, first, blank)`."""
    indention = len(width) if isinstance(width, str) else width if isinstance(width, int) else None
    if indention is None:
        return None
    lines = (subject + "\n").splitlines()  # (as the filter splits it)
    indented = sum(1 for line in lines[1:] if blank or line) + (1 if first else 0)
    return sum(map(len, lines)) + len(lines) - 1 + max(indention, 0) * indented


def _number(value: Any) -> int:
    """A width or precision as a number (0: none, or not one a format accepts)."""
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str) and value.isdigit():
        return int(value) if len(value) < 20 else 10**20
    return 0


# jinja2's filters that can make more than they are given, by parameter name (their arguments
# bound to their signature): each gives the result's size, materializing an iterable argument
# in place when it must count it (the filter would make a list of it anyway).


def _center(arguments: dict[str, Any]) -> int | None:
    width = arguments["width"]
    return width if isinstance(width, int) else None


def _format(arguments: dict[str, Any]) -> int | None:
    value = arguments["value"]
    if not isinstance(value, str):
        return None
    return percent_size(value, arguments["kwargs"] or arguments["args"])


def _replace(arguments: dict[str, Any]) -> int | None:
    count = arguments["count"]
    old, new = arguments["old"], arguments["new"]
    return replace_size(arguments["s"], old, new, -1 if count is None else count)


def _indent(arguments: dict[str, Any]) -> int | None:
    subject = arguments["s"]
    if not isinstance(subject, str):
        return None
    return indent_size(
        subject, arguments["width"], first=arguments["first"], blank=arguments["blank"]
    )


def _join(arguments: dict[str, Any]) -> int | None:
    separator = arguments["d"]
    if arguments["attribute"] is not None or not isinstance(separator, str):
        return None
    items = arguments["value"] = list(arguments["value"])
    return join_size(separator, items)


def _sum(arguments: dict[str, Any]) -> int | None:
    start = arguments["start"]
    if arguments["attribute"] is not None or not isinstance(start, (list, tuple)):
        return None
    items = arguments["iterable"] = list(arguments["iterable"])
    return len(start) + sum(len(item) for item in items if isinstance(item, (list, tuple)))


def _batch(arguments: dict[str, Any]) -> int | None:
    count = arguments["linecount"]
    if arguments["fill_with"] is None or not isinstance(count, int) or count <= 0:
        return None
    items = arguments["value"] = list(arguments["value"])
    return count if len(items) % count else None  # (the last batch, filled up to `count`)


FILTER_SIZES = {
    "batch": _batch,
    "center": _center,
    "format": _format,
    "indent": _indent,
    "join": _join,
    "replace": _replace,
    "sum": _sum,
}
