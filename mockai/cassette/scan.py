"""Secrets and whole interactions: scrub one before it is kept, scan one and a cassette's text
before anything is written, and say where a leak is (`file:line`, interaction, field)."""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from mockai.cassette.redact import (
    MIN_LITERAL_SECRET,
    PLACEHOLDER,
    Edit,
    Scrubber,
    is_secret_header,
    redact_query,
)
from mockai.errors import Problem, SecretLeakError
from mockai.wire.events import event_data, split_events

if TYPE_CHECKING:
    from mockai.cassette.format import Interaction


def without_userinfo(url: str) -> str:
    """`url` without `user:password@`."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


# Response headers that name a session or an account rather than authenticate one: mockai drops
# them when it records, but does not call a vcrpy recording that kept them a leak.
_ACCOUNT = frozenset({"set-cookie", "openai-organization", "openai-project"})


def scrub_interaction(
    interaction: Interaction, scrubber: Scrubber, secrets: Sequence[str] = ()
) -> Interaction:
    """A copy fit for a cassette: credential headers dropped, secrets in the URL (credential
    query parameters included), header values and bodies (also inside SSE events) replaced by
    placeholders."""

    def headers(values: dict[str, list[str]]) -> dict[str, list[str]]:
        return {
            name: [scrubber.scrub_text(value, secrets) for value in items]
            for name, items in values.items()
            if not is_secret_header(name)
        }

    request_body = interaction.request_body
    response_body = interaction.response_body
    if interaction.is_stream:
        # A secret the deltas spell out together first (each event alone may hold none), then
        # each event as any body; once more if that exposed one (a contrived split: bounded).
        response_body = scrub_stream(response_body, scrubber, secrets)
        response_body = scrubber.scrub_body(response_body, secrets)
        response_body = scrub_stream(response_body, scrubber, secrets)
    else:
        response_body = scrubber.scrub_body(response_body, secrets)
    return dataclasses.replace(
        interaction,
        uri=scrubber.scrub_text(redact_query(without_userinfo(interaction.uri))[0], secrets),
        request_body=None if request_body is None else scrubber.scrub_body(request_body, secrets),
        request_headers=headers(interaction.request_headers),
        response_headers=headers(interaction.response_headers),
        response_body=response_body,
        raw=None,  # (no longer what the file held: written anew)
    )


def scan_interaction(
    interaction: Interaction, scrubber: Scrubber, secrets: Sequence[str] = ()
) -> list[str]:
    """Where secrets remain in one interaction, e.g. `response.body: an sk- API key (sk-pro...)`."""
    fields: list[tuple[str, str]] = [("request.uri", interaction.uri)]
    fields += [("request.body", _text(interaction.request_body))]
    for side, values in (
        ("request", interaction.request_headers),
        ("response", interaction.response_headers),
    ):
        for name, items in values.items():
            if (
                is_secret_header(name)
                and not (side == "response" and name.lower() in _ACCOUNT)
                and any(holds_credential(value, scrubber) for value in items)
            ):
                fields.append((f"{side}.headers.{name}", "<a credential header>"))
            fields += [(f"{side}.headers.{name}", value) for value in items]
    fields.append(("response.body", _text(interaction.response_body)))
    problems = []
    if redact_query(interaction.uri)[0] != interaction.uri:
        problems.append("request.uri: credential query parameters are never stored")
    for where, text in fields:
        if text == "<a credential header>":
            problems.append(f"{where}: credential headers are never stored")
            continue
        problems += [f"{where}: {f.what} ({f.sample})" for f in scrubber.scan(text, secrets)]
    if interaction.is_stream and not problems:
        problems += [
            f"response.body: the streamed text spells out {f.what} across events ({f.sample})"
            for streamed in streamed_texts(interaction.response_body)
            for f in scrubber.scan(streamed, secrets)
        ]
    return problems


# Where a header value splits into the pieces judged one by one (`Bearer TOKEN`, a cookie's
# `a=1; b=2`, `Credential=..., Signature=...`).
_PIECES = re.compile(r"[\s,;]+")
# What users write instead of a credential (vcrpy's `filter_headers=[("authorization",
# "DUMMY")]`): `<API_KEY>`, `[REDACTED]`, `{token}`, or a run of one mask character (`***`).
_STAND_IN = re.compile(r"<[^<>]*>|\[[^\[\]]*\]|\{[^{}]*\}|(.)\1*")


def holds_credential(value: str, scrubber: Scrubber) -> bool:
    """Whether a credential header's value is a credential rather than what stands in for one
    (`DUMMY`, `REDACTED`, `***`, `<token>`, empty, mockai's own placeholders): a key shape the
    scanner knows, or a token of a real key's length and mix (12+ characters with a digit or
    both cases: `Bearer ollama`, `DUMMY_API_KEY` are none). Each piece is judged (a cookie's
    values each; the value of `name=value`, base64's `=` padding aside)."""
    if scrubber.scan(value):
        return True
    for piece in _PIECES.split(PLACEHOLDER.sub("", value)):
        name, equals, token = piece.rstrip("=").partition("=")
        if _token_like(token if equals else name):
            return True
    return False


def _token_like(token: str) -> bool:
    if len(token) < MIN_LITERAL_SECRET or _STAND_IN.fullmatch(token):
        return False
    has_digit = any(c.isdigit() for c in token)
    return has_digit or (any(c.islower() for c in token) and any(c.isupper() for c in token))


def _text(data: bytes | None) -> str:
    if not data:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def streamed_text(body: bytes) -> str:
    """The text a stream spells out, its deltas joined (a key can be split across events)."""
    return "".join(text for _, text in _streamed(_events(body)))


def streamed_texts(body: bytes) -> list[str]:
    """What each of a stream's texts spells out (a choice's content, a tool call's arguments, a
    Responses output's text), its deltas joined: where a key split across events shows."""
    texts: dict[str, list[str]] = {}
    for channel, text in _streamed(_events(body)):
        texts.setdefault(channel, []).append(text)
    return ["".join(pieces) for pieces in texts.values()]


def scrub_stream(body: bytes, scrubber: Scrubber, secrets: Sequence[str] = ()) -> bytes:
    """`body` with each secret that a stream's deltas spell out together replaced: its
    placeholder in the delta where it begins, the parts of it in later deltas cut out; the text
    around it, every event (the count and the boundaries) and every other field kept. Joined,
    each text's deltas give what `scrub_text` makes of the text joined (so a streamed answer
    holding a key is recorded, as a JSON one is, and replays the same placeholder)."""
    events = _events(body)
    slots: dict[str, list[tuple[int, Any, Any]]] = {}
    for index, (_, payload) in enumerate(events):
        for channel, holder, key in _slots(payload):
            slots.setdefault(channel, []).append((index, holder, key))
    changed: set[int] = set()
    for spots in slots.values():
        pieces = [holder[key] for _, holder, key in spots]
        edits = scrubber.replacements("".join(pieces), secrets)
        if not edits:
            continue
        for (index, holder, key), old, new in zip(
            spots, pieces, _spread(pieces, edits), strict=True
        ):
            if new != old:
                holder[key] = new
                changed.add(index)
    if not changed:
        return body
    return b"".join(
        _with_data(frame, payload) if index in changed else frame
        for index, (frame, payload) in enumerate(events)
    )


def _spread(pieces: list[str], edits: list[Edit]) -> list[str]:
    """`pieces` rewritten so that, joined, they give their joined text with `edits` made: each
    placeholder in the piece where its span begins, the span cut out of the others."""
    joined = "".join(pieces)
    ends = list(itertools.accumulate(map(len, pieces)))
    out: list[list[str]] = [[] for _ in pieces]
    cursor = 0
    for start, end, stand_in in [*edits, (len(joined), len(joined), "")]:
        while cursor < start:  # the kept text before this span, piece by piece
            index = bisect.bisect_right(ends, cursor)
            stop = min(start, ends[index])
            out[index].append(joined[cursor:stop])
            cursor = stop
        if start < len(joined):
            out[bisect.bisect_right(ends, start)].append(stand_in)  # (never an empty piece)
        cursor = end
    return ["".join(parts) for parts in out]


def _events(body: bytes) -> list[tuple[bytes, Any]]:
    """A stream's events, each with its parsed JSON data (None: no data, `[DONE]`, not JSON)."""
    events: list[tuple[bytes, Any]] = []
    for frame in split_events(body):
        data = event_data(frame)
        events.append((frame, None if data is None else _parsed(data)))
    return events


def _parsed(data: str) -> Any:
    if data.startswith("[DONE]"):
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def _streamed(events: list[tuple[bytes, Any]]) -> list[tuple[str, str]]:
    return [
        (channel, holder[key]) for _, payload in events for channel, holder, key in _slots(payload)
    ]


# (channel, holder, key): `holder[key]` is a string that the channel's next event goes on with.
_Slot = tuple[str, Any, Any]


def _slots(payload: Any) -> list[_Slot]:
    """Where an event's deltas are: a Responses `*.delta`; else every string inside each choice
    (in its `delta`: `content`, `reasoning`, a tool call's `arguments`, an audio `transcript`,
    whatever field a provider adds; its logprobs' tokens; a legacy completion's `text`) and
    inside an event's own `delta` object, each path its own channel, so that no provider field
    needs naming here for a key it spells across events to be found."""
    if not isinstance(payload, dict):
        return []
    delta = payload.get("delta")
    if isinstance(delta, str):  # Responses API *.delta events
        where = ("type", "item_id", "output_index", "content_index", "summary_index")
        return [(repr([payload.get(name) for name in where]), payload, "delta")]
    out: list[_Slot] = []
    choices = payload.get("choices")
    for position, choice in enumerate(choices if isinstance(choices, list) else []):
        if isinstance(choice, dict):
            _strings(choice, repr(choice.get("index", position)), out)
    if isinstance(delta, dict):  # (an Assistants `thread.message.delta`, `thread.run.step.delta`)
        _strings(delta, f"delta {payload.get('id')!r}", out)
    return out


def _strings(root: dict[str, Any], channel: str, out: list[_Slot]) -> None:
    """Append the slot of every string under `root`, each channel's in document order. The
    channel is the path, where a list item with an `index` (a tool call) is that index, and any
    other list's items (logprobs' tokens) go on one channel, in order. Iterative: upstream JSON
    may nest deeper than the interpreter's stack."""
    stack: list[tuple[Any, str]] = [(root, channel)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            items: list[tuple[Any, Any, str]] = [
                (key, value, f"{where}.{key!r}") for key, value in node.items()
            ]
        else:
            items = [
                (
                    position,
                    item,
                    f"{where}[{item['index']!r}]"
                    if isinstance(item, dict) and "index" in item
                    else f"{where}[]",
                )
                for position, item in enumerate(node)
            ]
        nested = []
        for key, value, path in items:
            if isinstance(value, str):
                out.append((path, node, key))
            elif isinstance(value, (dict, list)):
                nested.append((value, path))
        stack.extend(reversed(nested))  # (depth first, in order: one path's strings stay in order)


def _with_data(frame: bytes, payload: Any) -> bytes:
    """`frame` with its data replaced by `payload` (one `data:` line; its other lines kept)."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    lines: list[bytes] = []
    written = False
    for line in frame.splitlines(keepends=True):
        if not line.startswith(b"data:"):
            lines.append(line)
        elif not written:
            ending = line[len(line.rstrip(b"\r\n")) :]
            lines.append(b"data: " + data + ending)
            written = True
    return b"".join(lines)


# --- a cassette's text ---------------------------------------------------------------------------


def scan_document(path: Path, text: str, scrubber: Scrubber) -> list[Problem]:
    """Every secret-looking string in a cassette's text, as `file:line` problems."""
    findings = scrubber.scan(text)
    if not findings:
        return []
    locate = _Locator(text)
    problems = []
    for finding in findings:
        line, where = locate(finding.offset)
        problems.append(
            Problem(
                str(path), line, f"{where}: {finding.what} ({finding.sample}) must not be stored"
            )
        )
    return problems


def refuse_leaks(path: Path, text: str, scrubber: Scrubber) -> None:
    """Raise SecretLeakError, saying where, if the text about to be written holds a secret."""
    problems = scan_document(path, text, scrubber)
    if problems:
        raise SecretLeakError(
            f"refusing to write {path}: it would contain secrets\n"
            + "\n".join(f"  {problem}" for problem in problems)
            + "\nScrub them (or add a --redact pattern) and record again."
        )


class _Locator:
    """Maps an offset in a cassette's text to its line and `interaction N field.path`."""

    def __init__(self, text: str) -> None:
        self._starts: list[int] = []
        self._spans: list[tuple[int, int, str]] = []
        try:
            root = yaml.compose(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            root = None
        if root is not None:
            self._walk(root, [])
        self._spans.sort()
        self._starts = [start for start, _, _ in self._spans]
        self._text = text

    def _walk(self, node: yaml.Node, path: list[str]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self._walk(value, [*path, str(key.value)])
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, [*path, str(index)])
        else:
            self._spans.append((node.start_mark.index, node.end_mark.index, _describe(path)))

    def __call__(self, offset: int) -> tuple[int, str]:
        line = self._text.count("\n", 0, offset) + 1
        position = bisect.bisect_right(self._starts, offset) - 1
        if position >= 0:
            start, end, where = self._spans[position]
            if start <= offset <= end:
                return line, where
        return line, "cassette"


def _describe(path: list[str]) -> str:
    if len(path) >= 2 and path[0] == "interactions":
        return f"interaction {path[1]} " + ".".join(path[2:])
    return ".".join(path) or "cassette"
