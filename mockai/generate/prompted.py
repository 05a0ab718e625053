"""JSON Schemas written into the prompt, as JSON modes send them.

instructor's `Mode.JSON` / `Mode.MD_JSON`, pydantic-ai's `PromptedOutput` and LangChain's
`json_mode` do not send the schema as `response_format: json_schema`: they ask for
`{"type": "json_object"}` (or plain text) and write the schema into the system or user message
("... match the following json_schema: {...}", "Always respond with a JSON object that's
compatible with this schema: {...}"). The generated answer must then fit that schema.

Finding it: every balanced `{...}` span of the text (braces inside JSON strings do not count, a
span that does not parse is searched inside) that parses as a JSON object and looks like a schema
(`properties` of schemas, a `type` with `items` / `enum` / `properties`, or `$defs` / combinators
around a `$ref`) and passes jsonschema's meta-schema check; the largest wins. Fenced
```` ```json ```` blocks are spans like any other. The work is linear in the text (a regex pass
over the structural characters, within a budget of a few passes), and `PromptSchemas` remembers
recent answers per text, since an agent sends the same system message on every step.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_STRUCTURAL = re.compile(r'[{}"]')
_MAX_TEXT = 256 * 1024  # longer messages are not searched (a schema is rarely in one)
_MAX_RESTARTS = 8  # unclosed `{` after which the scan restarts just past it
_WORK_PER_CHAR = 3  # the scan's budget: structural characters visited, per character of text
_MAX_NESTING = 3  # levels of a non-JSON span searched for JSON inside
_CACHE_SIZE = 256
# What the remembered schemas may weigh in all: each as five times its span's length (the span,
# and the schema parsed from it, whose objects take 1-4.6x their JSON: stores/kept.py). Counted
# alone, 256 schemas of a quarter MiB each held ~300 MiB.
_CACHE_BYTES = 16 * 1024 * 1024
_WEIGHT_PER_CHAR = 5
_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
_JSON_WORD = re.compile("json", re.IGNORECASE)
_FENCE_HINTS = ("```", "code block", "codeblock")


@dataclass(frozen=True, slots=True)
class Found:
    """A schema found in a text: the schema, and the exact span it was written as."""

    schema: Mapping[str, Any]
    span: str


class PromptSchemas:
    """Schemas found in prompt texts, remembered for the most recent texts (bounded in count
    and in bytes: the oldest go first)."""

    def __init__(self, size: int = _CACHE_SIZE, max_bytes: int = _CACHE_BYTES) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._found: dict[bytes, tuple[Found | None, int]] = {}  # the find, and its weight
        self.bytes = 0  # what the remembered finds weigh

    def find(self, text: str) -> Found | None:
        """The largest JSON Schema written in `text`, or None."""
        if '"' not in text or "{" not in text:
            return None  # the common case, answered without hashing the text
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        remembered = self._found.get(key)
        if remembered is not None:
            return remembered[0]
        found = find_schema(text)
        weight = 0 if found is None else _WEIGHT_PER_CHAR * len(found.span)
        if weight > self._max_bytes:
            return found  # (heavier than the whole budget: searched again when it comes again)
        found_map = self._found
        while found_map and (len(found_map) >= self._size or self.bytes + weight > self._max_bytes):
            self.bytes -= found_map.pop(next(iter(found_map)))[1]  # oldest first: dicts keep order
        found_map[key] = (found, weight)
        self.bytes += weight
        return found


def find_schema(text: str) -> Found | None:
    """The largest JSON Schema written in `text`, or None (uncached)."""
    if len(text) > _MAX_TEXT:
        return None
    best: Found | None = None
    for start, end, value in _json_objects(text):
        if (best is None or end - start > len(best.span)) and looks_like_schema(value):
            best = Found(value, text[start:end])
    return best


def mentions_json(text: str) -> bool:
    """Whether `text` says "JSON" in any case (what the API itself asks of JSON mode)."""
    return _JSON_WORD.search(text) is not None


def wants_fence(text: str) -> bool:
    """Whether an instruction asks for the JSON in a Markdown code block (instructor MD_JSON)."""
    lowered = text.lower()
    return any(hint in lowered for hint in _FENCE_HINTS)


def looks_like_schema(value: Any) -> bool:
    """Whether a parsed JSON value is a JSON Schema someone wants an instance of."""
    if not isinstance(value, dict):
        return False
    properties = value.get("properties")
    shaped = (
        (
            isinstance(properties, dict)
            and bool(properties)
            and all(isinstance(p, dict | bool) for p in properties.values())
        )
        or (
            _is_type(value.get("type"))
            and any(key in value for key in ("items", "enum", "prefixItems"))
        )
        or (
            isinstance(value.get("$defs", value.get("definitions")), dict)
            and any(key in value for key in ("$ref", "anyOf", "oneOf", "allOf"))
        )
    )
    if not shaped:
        return False
    from jsonschema import Draft202012Validator, SchemaError  # (on first use: slow to import)

    try:
        Draft202012Validator.check_schema(value)
    except SchemaError:
        return False
    return True


def _is_type(declared: Any) -> bool:
    if isinstance(declared, str):
        return declared in _TYPES
    return isinstance(declared, list) and bool(declared) and all(t in _TYPES for t in declared)


def _json_objects(text: str) -> Iterator[tuple[int, int, Any]]:
    """(start, end, value) of the outermost balanced `{...}` spans of `text` that are JSON."""
    return _Scan(text).spans(0, len(text), 0)


class _Scan:
    """One search of a text, sharing a work budget across restarts and nested searches.

    Braces inside JSON strings do not count. A balanced span that is not JSON (prose braces
    around a schema) is searched inside, a few levels deep. An unclosed `{` (a stray brace, a
    quote in prose) restarts the scan just after it. Outside braces the scan jumps from `{` to
    `{`; the budget (a few passes over the text) bounds hostile input like `{{{{...`.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.budget = _WORK_PER_CHAR * len(text)

    def spans(self, start: int, end: int, nesting: int) -> Iterator[tuple[int, int, Any]]:
        text = self.text
        position = start
        for _ in range(_MAX_RESTARTS + 1):
            opened = text.find("{", position, end)
            if opened < 0:
                return
            depth, in_string, closed = 1, False, -1
            for match in _STRUCTURAL.finditer(text, opened + 1, end):
                self.budget -= 1
                if self.budget < 0:
                    return
                char, index = match.group(), match.start()
                if depth == 0:
                    if char == "{":
                        depth, opened, in_string = 1, index, False
                elif in_string:
                    in_string = char != '"' or _escaped(text, index)
                elif char == '"':
                    in_string = True
                elif char == "{":
                    depth += 1
                elif char == "}":
                    depth -= 1
                    if depth == 0:
                        closed = index + 1
                        yield from self._span(opened, closed, nesting)
            if depth == 0:
                return
            position = max(opened + 1, closed)

    def _span(self, start: int, end: int, nesting: int) -> Iterator[tuple[int, int, Any]]:
        self.budget -= (end - start) // 8  # parsing is C-fast, but not free
        try:
            yield start, end, json.loads(self.text[start:end])
        except ValueError:
            if nesting < _MAX_NESTING:
                yield from self.spans(start + 1, end - 1, nesting + 1)
        except RecursionError:
            return


def _escaped(text: str, index: int) -> bool:
    """Whether the character at `index` is escaped by an odd run of backslashes before it."""
    backslashes = 0
    while index - backslashes - 1 >= 0 and text[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1
