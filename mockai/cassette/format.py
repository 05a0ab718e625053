"""Cassette files: vcrpy's format, read and written with vcrpy's own serializers.

A cassette is `{version: 1, interactions: [{request, response}]}` exactly as vcrpy writes it
(`vcr.serialize`, its YAML or JSON serializer), so cassettes recorded by vcrpy / pytest-recording
load here and mockai's recordings load in vcrpy. mockai adds one field of its own, inside the
response where vcrpy keeps but ignores it:

    response:
      status: {code: 200, message: OK}
      headers: {content-type: [text/event-stream; charset=utf-8]}
      body: {string: "data: {...}\\n\\ndata: [DONE]\\n\\n"}
      mockai:
        latency: 0.231        # seconds from sending the request to the response headers
        duration: 0.874       # seconds until the whole body had arrived
        events: [0.05, 0.061] # streams: when each SSE event arrived, seconds after the headers
        base64: [response]    # JSON cassettes only: these bodies are stored as base64 text

JSON has no bytes, and vcrpy's JSON serializer refuses a body that is not UTF-8 text (an mp3 from
audio/speech, an uploaded file): mockai stores such a body as its base64 text, in the place the
body always has (a request's `body`, a response's `body.string`), and names it in `base64`
(`request`, `response`). Text bodies stay text, readable and diffable. vcrpy loads these files
(it sees the base64 text as the body); mockai decodes them back to the exact bytes.

Writes are atomic (a temporary file in the same folder, fsync, `os.replace`): a killed process
leaves the previous cassette or the new one, never half of one.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import logging
import math
import os
import re
import reprlib
import secrets
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from vcr.request import Request as VcrRequest
from vcr.serialize import CASSETTE_FORMAT_VERSION
from vcr.serializers import compat, jsonserializer, yamlserializer

from mockai.cassette.encodings import UndecodableBody, decoded
from mockai.cassette.lines import NodeLines
from mockai.errors import CassetteError
from mockai.scenario.yamlsrc import alias_problem_in, not_utf8

CASSETTE_SUFFIXES = (".yaml", ".yml", ".json")
OWN_FIELD = "mockai"  # our key inside each response; vcrpy keeps it and ignores it
BASE64 = "base64"  # in OWN_FIELD: which bodies a JSON cassette holds as base64 text
_SIDES = ("request", "response")
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

log = logging.getLogger("mockai.cassette")


class NotFound(CassetteError):
    """The cassette file does not exist (or is empty, which vcrpy treats the same way)."""


class DecodeError(CassetteError):
    """The cassette exists but is not a readable vcrpy cassette; the message says where and why."""


MAX_SECONDS = 86400.0  # a day: the cap on every duration mockai takes (docs/faults.md)
# One thing wrong in the own field: where (its path under `mockai`) and what.
TimingProblem = tuple[tuple[str | int, ...], str]


@dataclass(frozen=True, slots=True)
class Timing:
    """When the recorded answer arrived (mockai's own field; absent in vcrpy's recordings)."""

    latency: float | None = None  # request sent -> response headers
    duration: float | None = None  # request sent -> last byte
    events: tuple[float, ...] | None = None  # per SSE event, seconds after the headers
    # What the file held that replay cannot use, left out above: a server refuses the cassette
    # for it (a NaN offset would go unpaced, a year-long one never answer); `mockai check` lists it.
    problems: tuple[TimingProblem, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The YAML form (rounded to 0.1 ms: enough for pacing, stable in diffs)."""
        out: dict[str, Any] = {}
        if self.latency is not None:
            out["latency"] = round(self.latency, 4)
        if self.duration is not None:
            out["duration"] = round(self.duration, 4)
        if self.events is not None:
            out["events"] = [round(offset, 4) for offset in self.events]
        return out

    @classmethod
    def from_dict(cls, value: Any) -> Timing:
        """Read the own field: a number of seconds (finite, not negative, at most a day) is kept;
        anything else is left out and named in `problems`."""
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            return cls(problems=(((), f"{OWN_FIELD} is {reprlib.repr(value)}, not a mapping"),))
        problems: list[TimingProblem] = []
        latency = _seconds(value.get("latency"), ("latency",), problems)
        duration = _seconds(value.get("duration"), ("duration",), problems)
        return cls(latency, duration, _offsets(value.get("events"), problems), tuple(problems))


def _seconds(
    value: Any, path: tuple[str | int, ...], problems: list[TimingProblem]
) -> float | None:
    if value is None:
        return None
    problem = seconds_problem(value)
    if problem is not None:
        where = OWN_FIELD + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        problems.append((path, f"{where} {problem}"))
        return None
    return float(value)


def _offsets(value: Any, problems: list[TimingProblem]) -> tuple[float, ...] | None:
    """The events' offsets, or None (replay unpaced) when any of them is unusable."""
    if value is None:
        return None
    if not isinstance(value, list):
        problems.append(
            (("events",), f"{OWN_FIELD}.events is {reprlib.repr(value)}, not a list of seconds")
        )
        return None
    before = len(problems)
    offsets = [_seconds(offset, ("events", index), problems) for index, offset in enumerate(value)]
    if len(problems) > before:
        del problems[before + 1 :]  # (the first says what is wrong; a list of NaNs says no more)
        return None
    return tuple(offset for offset in offsets if offset is not None)


def seconds_problem(value: Any) -> str | None:
    """Why `value` is no recorded number of seconds, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"is {reprlib.repr(value)}, not a number of seconds"  # (short: hand-edited)
    if isinstance(value, float) and not math.isfinite(value):
        return f"is {value}, not a finite number of seconds"
    if value < 0:
        return f"is {value} s: negative"
    if value > MAX_SECONDS:
        return f"is {value} s: over a day (at most {MAX_SECONDS:g} s)"
    return None


@dataclass(slots=True)
class Interaction:
    """One recorded request and its answer, with the response body decoded (decompressed)."""

    method: str
    uri: str
    request_body: bytes | None
    request_headers: dict[str, list[str]]
    status: int
    reason: str
    response_headers: dict[str, list[str]]
    response_body: bytes
    timing: Timing = field(default_factory=Timing)
    extra: dict[str, Any] = field(default_factory=dict)  # other response keys, kept verbatim
    # The interaction as its file held it (parsed, untouched: a gzip body still `!!binary`, its
    # Content-Encoding, cookies), when loaded to record into: a save writes it back as it was,
    # so appending never rewrites what a user recorded. None once changed (scrubbed), or new.
    raw: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def header(self, name: str, default: str = "") -> str:
        """The first value of a response header (case-insensitive)."""
        lowered = name.lower()
        for key, values in self.response_headers.items():
            if key.lower() == lowered and values:
                return values[0]
        return default

    @property
    def content_type(self) -> str:
        """The response's content type (JSON when the recording does not say)."""
        return self.header("content-type", "application/json")

    @property
    def is_stream(self) -> bool:
        """True for server-sent events."""
        return self.content_type.split(";")[0].strip().lower() == "text/event-stream"

    def to_vcr(self, *, text_only: bool = False) -> tuple[VcrRequest, dict[str, Any]]:
        """vcrpy's (Request, response dict) pair, ready for `vcr.serialize.serialize`.

        `text_only` (a JSON cassette): a body that is not UTF-8 text is given as its base64 text
        and named in the own field's `base64`, since JSON cannot hold bytes."""
        request_body, response_body = self.request_body, self.response_body
        encoded: list[str] = []
        if text_only and request_body is not None and not _is_utf8(request_body):
            request_body = base64.b64encode(request_body)
            encoded.append("request")
        if text_only and not _is_utf8(response_body):
            response_body = base64.b64encode(response_body)
            encoded.append("response")
        headers = {str(name): values for name, values in self.request_headers.items()}
        request = VcrRequest(self.method, self.uri, request_body, headers)
        response: dict[str, Any] = {
            "status": {"code": self.status, "message": self.reason},
            "headers": self.response_headers,
            "body": {"string": response_body},
            **self.extra,
        }
        own = self.timing.as_dict()
        if encoded:
            own[BASE64] = encoded
        if own:
            response[OWN_FIELD] = own
        return request, response

    @classmethod
    def from_vcr(cls, request: VcrRequest, response: Mapping[str, Any]) -> Interaction:
        """From vcrpy's Request and response dict (any vcrpy version's shape)."""
        response = _decoded(_modern(response))
        status = response["status"]
        known = {"status", "headers", "body", OWN_FIELD}
        return cls(
            method=str(request.method).upper(),
            uri=str(request.uri),
            request_body=_request_body(request),
            request_headers={str(k): [str(v)] for k, v in request.headers.items()},
            status=int(status["code"]),
            reason=str(status.get("message") or ""),
            response_headers=response["headers"],
            response_body=response["body"]["string"],
            timing=Timing.from_dict(response.get(OWN_FIELD)),
            extra={k: v for k, v in response.items() if k not in known},
        )


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _unpacked(raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An interaction's request and response dicts, with the bodies a JSON cassette stored as
    base64 text (`mockai.base64`) decoded back to their bytes. A marker that is not a list of
    `request` / `response` is refused: ignored, it had replayed an MP3 as its base64 text."""
    request, response = dict(raw["request"]), dict(raw["response"])
    own = response.get(OWN_FIELD)
    if not isinstance(own, Mapping) or BASE64 not in own:
        return request, response
    encoded = own[BASE64]
    if not isinstance(encoded, list) or not all(side in _SIDES for side in encoded):
        raise _NotBase64(f'{OWN_FIELD}.{BASE64} must be a list of "request"/"response"')
    try:
        if "request" in encoded and request.get("body") is not None:
            request["body"] = base64.b64decode(request["body"], validate=True)
        body = response.get("body")
        if "response" in encoded and isinstance(body, Mapping):
            response["body"] = {**body, "string": base64.b64decode(body["string"], validate=True)}
    except (binascii.Error, TypeError, ValueError) as error:
        sides = " and ".join(side for side in _SIDES if side in encoded)
        raise _NotBase64(
            f"mockai.base64 says the {sides} body is base64 text, but it is not ({error})"
        ) from None
    return request, response


class _Unreadable(ValueError):
    """An interaction mockai cannot replay, and why (said after `interaction N`)."""

    joint = ": "
    at: tuple[str, ...] = ()  # where, under the interaction (its line is the error's)


class _NotInteraction(_Unreadable):
    """An interaction without the fields vcrpy writes (or with values of the wrong kind)."""

    joint = " "


class _NotBase64(_Unreadable):
    """A body `mockai.base64` names that does not decode (a hand-edited cassette)."""


class _BadHeader(_Unreadable):
    """A response header whose name or value is no text; `at` is where, under its `headers`."""

    def __init__(self, what: str, at: tuple[str, ...]) -> None:
        super().__init__(what)
        self.at = ("response", "headers", *at)


class _BadRequest(_Unreadable):
    """A recorded request no incoming request can ever match; `at` is where, under it."""

    def __init__(self, what: str, key: str) -> None:
        super().__init__(f"{what}: no request ever matches it, so it is never replayed")
        self.at = ("request", key)


class _Missing(_Unreadable):
    """A response without a field vcrpy reads; `at` is where, under the interaction."""

    def __init__(self, what: str, at: tuple[str, ...]) -> None:
        super().__init__(f"{what}: vcrpy cannot read it (a typo?), and mockai does not replay it")
        self.at = at


def _modern(response: Mapping[str, Any]) -> dict[str, Any]:
    """vcrpy's current response shape, from older httpx-stub cassettes too; a response vcrpy
    would not read (no `status.code` / `status.message`, `headers` or `body.string`: a typo
    such as `strng:`) is refused, since replaying it had sent an empty 200."""
    out = dict(response)
    if "status_code" in out:  # vcrpy < 4.3 wrote httpx answers flat (and reads them so)
        for key in ("headers", "content"):
            if key not in out:
                raise _Missing(f"response has no `{key}`", ("response",))
        out = {
            "status": {"code": out.pop("status_code"), "message": ""},
            "headers": out.pop("headers"),
            "body": {"string": out.pop("content")},
            **out,
        }
    _require_shape(out)
    out["headers"] = _header_lists(out["headers"])
    string = out["body"]["string"]
    if isinstance(string, str):
        string = string.encode("utf-8")
    out["body"] = {"string": bytes(string)}
    return out


def _header_lists(headers: Mapping[Any, Any]) -> dict[str, list[str]]:
    """A response's headers as name -> values (vcrpy writes a list of values; a bare one is a
    list of one). A name or value that is no text is refused: replayed, a hand-edited
    `x: [null]` had been sent as `None`, and `x: [[a, b]]` as `['a', 'b']`. A number is its
    digits (`retry-after: [5]`), as a scripted header's is."""
    out: dict[str, list[str]] = {}
    for name, values in headers.items():
        if not _is_text(name):
            raise _BadHeader(f"response header name {_shown(name)} is not text: quote it", ())
        listed = values if isinstance(values, list) else [values]
        for value in listed:
            if not _is_text(value):
                raise _BadHeader(
                    f"response header {name}: {_shown(value)} is not text (a header's values "
                    "are strings: quote it, or leave the header out)",
                    (str(name),),
                )
        out[str(name)] = [str(value) for value in listed]
    return out


def _is_text(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _shown(value: Any) -> str:
    return "null" if value is None else reprlib.repr(value)


def _require_shape(response: Mapping[str, Any]) -> None:
    """What vcrpy's stubs read from every response (`vcr/stubs`: `status.code`,
    `status.message`, `headers`, `body.string`), there and of a kind they can use."""
    status = response.get("status")
    if not isinstance(status, Mapping) or "code" not in status or "message" not in status:
        raise _Missing("response has no `status: {code, message}`", ("response", "status"))
    if not isinstance(response.get("headers"), Mapping):
        raise _Missing("response has no `headers` mapping", ("response", "headers"))
    body = response.get("body")
    if not isinstance(body, Mapping):
        raise _Missing("response has no `body: {string: ...}`", ("response", "body"))
    if "string" not in body:
        raise _Missing("response.body has no `string`", ("response", "body"))
    string = body["string"]
    if not isinstance(string, str | bytes):  # (None too: httpx's stub cannot read it)
        raise _Missing(
            f"response.body.string is {reprlib.repr(string)}, not text", ("response", "body")
        )


# An HTTP method is a token (RFC 9110 5.6.2): what a client can send, and so match.
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _require_request(request: Mapping[str, Any]) -> None:
    """A hand-edited request whose method, uri or body no request can ever match (`method: 123`
    or `null`, `uri: ''`, a body written as YAML rather than text) is refused at its line: loaded,
    it sat in the cassette answering nothing, and `mockai check` called the file OK. (A key left
    out is vcrpy's to say: see `_interaction`.)"""
    method = request.get("method", "GET")
    if not isinstance(method, str) or not _METHOD.fullmatch(method):
        raise _BadRequest(f"request method {_shown(method)} is not an HTTP method", "method")
    uri = request.get("uri", "/")
    if not isinstance(uri, str) or not uri.strip():
        raise _BadRequest(f"request uri {_shown(uri)} is not a URL", "uri")
    body = request.get("body")
    if body is not None and not isinstance(body, str | bytes):
        raise _BadRequest(
            f"request body {_shown(body)} is not text (a body is a string, JSON quoted as one, "
            "or !!binary bytes)",
            "body",
        )


def _decoded(response: dict[str, Any]) -> dict[str, Any]:
    """Decompress a gzip/deflate/br/zstd body (vcrpy records what the wire carried; see
    `encodings`) and drop the headers that described the compressed bytes: replay sends the body
    as it is, without them. An encoding mockai cannot decode, or a body past the bound, is
    refused."""
    headers = response["headers"]
    encodings: list[str] = []
    for name in list(headers):
        lowered = name.lower()
        if lowered == "content-encoding":
            encodings += [e.strip().lower() for v in headers[name] for e in v.split(",")]
        if lowered in ("content-encoding", "content-length", "transfer-encoding"):
            del headers[name]
    try:
        body = decoded(response["body"]["string"], encodings)
    except UndecodableBody as error:
        raise _Unreadable(str(error)) from None
    response["body"] = {**response["body"], "string": body}
    return response


def _request_body(request: VcrRequest) -> bytes | None:
    body = request.body
    if body is None:
        return None
    if hasattr(body, "read"):
        body = body.read()
    elif not isinstance(body, (bytes, bytearray, str)):
        body = b"".join(p if isinstance(p, bytes) else str(p).encode() for p in body)
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


@dataclass(slots=True)
class Cassette:
    """A cassette file's interactions (and vcrpy metadata, if any)."""

    path: Path
    interactions: list[Interaction] = field(default_factory=list)
    metadata: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """The file name, for journal entries and reports."""
        return self.path.name


def _serializer(path: Path) -> Any:
    return jsonserializer if path.suffix.lower() == ".json" else yamlserializer


class CassetteFile:
    """Loads and saves cassettes on the filesystem (the persister, as in vcrpy)."""

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, keep_raw: bool = False) -> Cassette:
        """Read a cassette; NotFound if it is missing or empty, DecodeError if unreadable.
        `keep_raw`: keep each interaction as the file held it (`Interaction.raw`), to record
        into (replay alone does not pay for the copy)."""
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"{path}: no such cassette")
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            # (where, as a scenario file's is said: `mockai check` says it so of a cassette)
            line, message = not_utf8(raw, error)
            raise DecodeError(f"{path}:{line}: {message}") from None
        text = text.replace("\r\n", "\n").replace("\r", "\n")  # (as read_text reads it)
        if not text.strip():
            raise NotFound(f"{path}: the cassette is empty")
        return parse_cassette(path, text, keep_raw=keep_raw)

    @classmethod
    def dumps(cls, cassette: Cassette) -> str:
        """The file's text, written by vcrpy's serializer."""
        serializer = _serializer(cassette.path)
        text_only = serializer is jsonserializer
        data: dict[str, Any] = {
            "version": CASSETTE_FORMAT_VERSION,
            "interactions": [_document(i, text_only) for i in cassette.interactions],
        }
        if cassette.metadata:
            data["metadata"] = cassette.metadata
        text: str = serializer.serialize(data)
        return text

    @classmethod
    def save(cls, path: str | os.PathLike[str], text: str) -> None:
        """Write `text` atomically: the old file or the new one, never a mix, even if killed."""
        atomic_write(Path(path), text.encode("utf-8"))


def _document(interaction: Interaction, text_only: bool) -> dict[str, Any]:
    """One interaction as the file holds it: as it was loaded, if it was (`raw`), else as
    `vcr.serialize.serialize` writes one (its body, which takes whole lists, inlined here so
    that loaded interactions and new ones go into one document)."""
    if interaction.raw is not None:
        return interaction.raw
    request, response = interaction.to_vcr(text_only=text_only)
    return {
        "request": compat.convert_to_unicode(request._to_dict()),
        "response": compat.convert_to_unicode(copy.deepcopy(response)),
    }


def parse_cassette(
    path: Path, text: str, *, servable: bool = True, keep_raw: bool = False
) -> Cassette:
    """A Cassette from a file's text; DecodeError says what is wrong, where, and how to fix it.

    `servable`: refuse what the file holds but a server cannot send (a status that is not
    HTTP's, timing replay cannot use); `mockai check` reads it all and reports that among the
    file's other problems."""
    serializer = _serializer(path)
    # An editor's UTF-8 byte order mark (Notepad's, PowerShell's `-Encoding utf8`) is no part of
    # the file: PyYAML skips it, `json.loads` refused a JSON cassette for it ("decode using
    # utf-8-sig") though `mockai check` and a folder took the file for a cassette.
    text = text.removeprefix("\ufeff")
    try:
        data = _counted(path, text) if _may_alias(text) else serializer.deserialize(text)
    except (yaml.YAMLError, ValueError) as error:
        raise DecodeError(f"{path}:{_error_line(error)}: not a valid cassette: {error}") from None
    # (Every problem with a line, as `mockai check` and `mockai serve` both say it: the file's
    # first line when the whole file is wrong, else the `version:` key's.)
    if isinstance(data, list):
        raise DecodeError(
            f"{path}:1: this cassette was written by vcrpy before 1.0 (no version, a bare list). "
            "Convert it with `python -m vcr.migration PATH` or record it again."
        )
    if not isinstance(data, Mapping) or not isinstance(data.get("interactions"), list):
        raise DecodeError(f"{path}:1: not a cassette (a vcrpy cassette has `interactions: [...]`)")
    version = data.get("version")
    if version != CASSETTE_FORMAT_VERSION:
        line = NodeLines(text).of("version") if "version" in data else 1
        raise DecodeError(
            f"{path}:{line}: cassette format version {version!r} is not supported: mockai reads "
            f"vcrpy cassettes with `version: {CASSETTE_FORMAT_VERSION}`. Record it again, or "
            "set `version: 1` if it was written by a tool that left the version out."
        )
    interactions = []
    for index, raw in enumerate(data["interactions"]):
        try:
            interaction = _interaction(raw, keep_raw)
            if servable and (problem := status_problem(interaction.status)) is not None:
                raise _Unreadable(problem)
        except _Unreadable as error:
            # (The lines are found only now: composing the text again costs a second load.)
            line = NodeLines(text).of("interactions", index, *error.at)
            raise DecodeError(f"{path}:{line}: interaction {index}{error.joint}{error}") from None
        if servable and interaction.timing.problems:
            where, problem = interaction.timing.problems[0]
            line = NodeLines(text).of("interactions", index, "response", OWN_FIELD, *where)
            raise DecodeError(f"{path}:{line}: interaction {index}: {problem}")
        interactions.append(interaction)
    metadata = data.get("metadata")
    return Cassette(path, interactions, dict(metadata) if isinstance(metadata, Mapping) else None)


# An anchor (`&name`) where YAML allows one: after a space, a line's start or a flow indicator
# (`[&a x]`, `{"k":&a x}`). An alias refers to an anchor, so a text without both has no alias,
# whatever `*` or `&` its bodies hold (markdown's `**bold**`, a URL's `?a=1&b=2`).
_ANCHOR = re.compile(r"(?:^|[\s\[\]{},:?\-\ufeff])&[^\s\[\]{},]", re.MULTILINE)


def _may_alias(text: str) -> bool:
    return "*" in text and "&" in text and _ANCHOR.search(text) is not None


def _counted(path: Path, text: str) -> Any:
    """What vcrpy's `deserialize` reads from `text` (a file that may hold YAML aliases), refused
    if its aliases would build too many values: nested aliases of aliases (a "billion laughs")
    build billions from a few hundred bytes. The budget is a scenario file's."""
    if _serializer(path) is jsonserializer:  # (JSON has no aliases)
        return jsonserializer.deserialize(text)
    # Counted from the parser's events, then built by vcrpy: parsed twice, but never composed
    # whole (every node of a large cassette held at once: its peak stayed resident).
    problem = alias_problem_in(yaml.parse(text, Loader=_SafeLoader))
    if problem is not None:
        line, message = problem
        raise DecodeError(f"{path}:{line}: {message}")
    return yamlserializer.deserialize(text)


def empty_cassette(path: Path) -> str:
    """What an empty cassette file is, as `mockai check` and a replay-only server say it: vcrpy
    reads it as a cassette not recorded yet, so `once` records into it and `none` has nothing to
    replay."""
    return (
        f"{path}:1: the file is empty: a cassette with nothing to replay (record into it: "
        f"mockai serve --cassette {path} --record-mode once --upstream URL)"
    )


def status_problem(status: int) -> str | None:
    """Why a recorded status cannot be replayed (HTTP has three digits, 100 to 599: aiohttp would
    send `HTTP/1.1 4290`, which clients take for a broken connection), or None."""
    if 100 <= status <= 599:
        return None
    return f"response status {status} is not an HTTP status"


def _interaction(raw: Any, keep_raw: bool = False) -> Interaction:
    # (Copied first: reading converts the bodies in place.)
    pristine = _pristine(raw) if keep_raw else None
    try:
        request_dict, response_dict = _unpacked(raw)
        _require_request(request_dict)
        request = VcrRequest._from_dict(request_dict)
        if "status_code" not in response_dict:  # (said before vcrpy's conversion trips on it)
            _require_shape(response_dict)
        response = compat.convert_to_bytes(response_dict)
        interaction = Interaction.from_vcr(request, response)
        interaction.raw = pristine
        return interaction
    except _Unreadable:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise _NotInteraction(
            "is not a vcrpy interaction "
            "(request: method, uri, body, headers; response: status, headers, body): "
            f"{type(error).__name__}: {error}"
        ) from None


def _pristine(raw: Any) -> dict[str, Any] | None:
    """A copy of an interaction as parsed, or None (written mockai's way) if it cannot be
    copied (a file-like body an old vcrpy pickled)."""
    try:
        return copy.deepcopy(raw) if isinstance(raw, dict) else None
    except (copy.Error, TypeError, ValueError, AttributeError):  # (the interaction still loads)
        return None


def _error_line(error: Exception) -> int:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    return int(getattr(error, "lineno", 0) or 0)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: temp file in the same folder, fsync, rename, fsync folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = _temporary(path)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


# `.NAME.XXXXXXXX.tmp`: what a temporary adds to the name of the file it replaces.
TEMPORARY_EXTRA = len("..12345678.tmp")


def longest_name(folder: Path) -> int:
    """The longest file name, in bytes, that `folder` (or its nearest existing parent) takes."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # (not every system or filesystem says)
        return 255


def fitting_name(name: str, room: int, longest: int) -> str:
    """`name`, or when `room` more bytes would make it longer than `longest` bytes, its start,
    `~` and a hash of all of it, `room` bytes short of `longest` (a name derived from a long one,
    a temporary's, must still fit; the hash keeps two long names apart)."""
    encoded = os.fsencode(name)
    if len(encoded) + room <= longest:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:16]
    start = encoded[: max(longest - room - len(digest) - 1, 0)]
    return start.decode("utf-8", "ignore") + "~" + digest  # ("ignore": no half a character)


def _temporary(path: Path) -> tuple[int, str]:
    """A new hidden file next to `path`, with the mode `path` has (or the umask's default);
    named `.NAME.XXXXXXXX.tmp`, NAME shortened if the whole would be too long for a file name."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    stem = fitting_name(path.name, TEMPORARY_EXTRA, longest_name(path.parent))
    while True:
        name = str(path.parent / f".{stem}.{secrets.token_hex(4)}.tmp")
        try:
            handle = os.open(name, flags, 0o666)  # not mkstemp's 0600: the umask decides
        except FileExistsError:
            continue
        if path.exists():
            os.chmod(name, stat.S_IMODE(path.stat().st_mode))
        return handle, name


def _fsync_folder(folder: Path) -> None:
    # The rename is only durable once the folder itself is on disk (POSIX; a no-op elsewhere).
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def cassette_files(path: Path) -> list[Path]:
    """The cassette files of a folder (recursively, in name order), or the file itself.

    Dot-files and whatever is in a dot-folder (`.git/`, an editor's or a tool's own) are
    skipped, as `--scenario` and `mockai check` skip them: a folder is what all three see."""
    if path.is_dir():
        return sorted(
            p
            for p in path.rglob("*")
            if p.suffix.lower() in CASSETTE_SUFFIXES
            and not _hidden(p.relative_to(path))
            and p.is_file()
        )
    return [path]


def _hidden(path: Path) -> bool:
    """True for a dot-file, or a path through a dot-folder (relative to the folder given: the
    folder itself may be one)."""
    return any(part.startswith(".") for part in path.parts)


def load_all(path: Path, *, keep_raw: bool = False) -> list[Cassette]:
    """Every cassette under `path` (a file or a folder); empty files count as empty cassettes.

    A folder's scenario files (and JSON files that are no cassette) are left alone, as
    `mockai check FOLDER` leaves them to the scenario checker."""
    from mockai.cassette.check import other_kind

    cassettes = []
    folder = path.is_dir()
    for file in cassette_files(path):
        try:
            cassette = CassetteFile.load(file, keep_raw=keep_raw)
        except NotFound:
            if not file.exists():
                raise
            cassette = Cassette(file)
        except DecodeError:
            if folder and other_kind(file.name, _text(file)):
                log.info("mockai: %s is not a cassette: skipped", file)
                continue
            raise
        cassettes.append(cassette)
    return cassettes


def _text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def header_lists(headers: Mapping[str, str] | Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Headers as vcrpy stores them: name -> list of values (repeated headers kept)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, list[str]] = {}
    for name, value in items:
        out.setdefault(str(name), []).append(str(value))  # plain str: no multidict `istr` on disk
    return out
