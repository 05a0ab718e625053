"""Secrets and whole interactions: scrub one before it is kept, scan one and a cassette's text
before anything is written, and say where a leak is (`file:line`, interaction, field)."""

from __future__ import annotations

import bisect
import dataclasses
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
    return dataclasses.replace(
        interaction,
        uri=scrubber.scrub_text(redact_query(without_userinfo(interaction.uri))[0], secrets),
        request_body=None if request_body is None else scrubber.scrub_body(request_body, secrets),
        request_headers=headers(interaction.request_headers),
        response_headers=headers(interaction.response_headers),
        response_body=scrubber.scrub_body(interaction.response_body, secrets),
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
        streamed = streamed_text(interaction.response_body)
        problems += [
            f"response.body: the streamed text spells out {f.what} across events ({f.sample})"
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
    pieces: list[str] = []
    for frame in split_events(body):
        data = event_data(frame)
        if data is None or data.startswith("[DONE]"):
            continue
        try:
            payload = json.loads(data)
        except ValueError:
            continue
        pieces.extend(_deltas(payload))
    return "".join(pieces)


def _deltas(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return []
    if isinstance(payload.get("delta"), str):  # Responses API *.delta events
        return [payload["delta"]]
    out = []
    for choice in payload.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        delta: dict[str, Any] = choice["delta"] if isinstance(choice.get("delta"), dict) else choice
        for key in ("content", "refusal", "text", "reasoning_content"):
            if isinstance(delta.get(key), str):
                out.append(delta[key])
        for call in delta.get("tool_calls") or []:
            arguments = (
                (call.get("function") or {}).get("arguments") if isinstance(call, dict) else None
            )
            if isinstance(arguments, str):
                out.append(arguments)
    return out


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
