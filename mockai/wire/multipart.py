"""`multipart/form-data` bodies (RFC 7578): split into parts, and the fields the SDKs flatten.

The SDKs upload files (audio to transcribe, images to edit, files for batches) as multipart forms
and flatten the other parameters into form fields the way `qs` does: `timestamp_granularities[]`
for each item of a list, `expires_after[seconds]` for a key of an object. `parse` splits a body
already read into its parts; `fields` rebuilds the JSON-like value the client meant, with the
uploaded files in it as `Upload`s. Pure functions over bytes: the codecs call them at the parse
stage, and cassettes normalise recorded forms with them (a fresh boundary every request, so the
raw bytes never match).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Any

CONTENT_TYPE = "multipart/form-data"
# More parts than any API request has; a hostile form of tiny parts must not cost a million.
MAX_PARTS = 1000
_CRLF = b"\r\n"
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


class MultipartError(ValueError):
    """A body that is not the multipart form its Content-Type says it is."""


@dataclass(frozen=True, slots=True)
class Part:
    """One part: its field name, its bytes, and the file name / type when it is a file."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded file: what the client called it, its declared type, and its bytes."""

    filename: str
    data: bytes = field(repr=False)
    content_type: str = "application/octet-stream"

    @property
    def digest(self) -> str:
        """The SHA-256 of the bytes (hex): the file's identity for matching and determinism."""
        return hashlib.sha256(self.data).hexdigest()

    def summary(self) -> dict[str, Any]:
        """What the journal, rules and cassettes see of the file (never its bytes)."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "bytes": len(self.data),
            "sha256": self.digest,
        }


def is_form(content_type: str | None) -> bool:
    """Whether a Content-Type header says multipart/form-data."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == CONTENT_TYPE


def boundary_of(content_type: str) -> str | None:
    """The `boundary` parameter of a multipart Content-Type (None when it has none)."""
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    return boundary if isinstance(boundary, str) and boundary else None


def sniff_boundary(body: bytes) -> str | None:
    """The boundary of a body that starts like a multipart form (`--boundary` CRLF), else None:
    recorded requests do not always keep their Content-Type."""
    if not body.startswith(b"--"):
        return None
    end = body.find(_CRLF, 2, 200)
    if end <= 2:
        return None
    candidate = body[2:end].rstrip(b" \t")
    if not re.fullmatch(rb"[0-9A-Za-z'()+_,./:=?-]{1,70}", candidate):
        return None
    return candidate.decode("ascii")


def parse(body: bytes, boundary: str) -> list[Part]:
    """The parts of a multipart body, in order (MultipartError when it is not one)."""
    delimiter = b"--" + boundary.encode("latin-1")
    if body.startswith(delimiter):
        position = len(delimiter)
    else:  # a preamble before the first delimiter is allowed, and ignored
        found = body.find(_CRLF + delimiter)
        if found < 0:
            raise MultipartError(f"the body holds no part delimited by the boundary {boundary!r}")
        position = found + 2 + len(delimiter)
    separator = _CRLF + delimiter
    parts: list[Part] = []
    while True:
        if body.startswith(b"--", position):
            return parts  # the closing delimiter (an epilogue after it is ignored)
        line_end = body.find(_CRLF, position)
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            raise MultipartError("a boundary delimiter is not followed by a line break")
        start = line_end + 2
        end = body.find(separator, start)
        if end < 0:
            raise MultipartError("the body ends before the closing boundary delimiter")
        if len(parts) >= MAX_PARTS:
            raise MultipartError(f"the form has more than {MAX_PARTS} parts")
        parts.append(_part(body, start, end))
        position = end + len(separator)


def _part(body: bytes, start: int, end: int) -> Part:
    """The part in `body[start:end]`. Its content is the one copy made: a 20 MB upload sliced
    whole and then sliced again after its headers had held three copies of itself at once."""
    if body.startswith(_CRLF, start, end):
        head, data = b"", body[start + 2 : end]
    else:
        split = body.find(_CRLF * 2, start, end)
        if split < 0:
            raise MultipartError("a part has no blank line between its headers and its content")
        head, data = body[start:split], body[split + 4 : end]
    headers: dict[str, str] = {}
    for line in head.split(_CRLF):
        name, colon, value = line.decode("utf-8", "replace").partition(":")
        if not colon:
            raise MultipartError(f"a part has a malformed header line: {line[:60]!r}")
        headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise MultipartError("a part has no Content-Disposition header")
    message = Message()
    message["content-disposition"] = disposition
    field_name = _param(message, "name")
    if field_name is None:
        raise MultipartError("a part's Content-Disposition has no name")
    filename = _param(message, "filename")
    return Part(field_name, data, filename, headers.get("content-type"))


def _param(message: Message, name: str) -> str | None:
    """A Content-Disposition parameter, quoted or RFC 2231-encoded (`filename*=UTF-8''...`),
    unstripped (a name may begin or end with a space), with the HTML5 form encoding undone."""
    value = message.get_param(name, header="content-disposition")
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231 (`filename*=UTF-8''...`): percent-decoded here
        return collapse_rfc2231_value(value)
    # (`get_param` has taken the quotes off already: unquoting again, as collapse_rfc2231_value
    # does to a plain value, took a name's own quotes, or the brackets of `<draft>`, with them.)
    return _HTML5_CODES.sub(_decoded, value) if "%" in value else value


# HTML5 form encoding (browsers, httpx) writes `"`, CR and LF in names and file names as percent
# codes; httpx writes every control character but ESC so. (It leaves `%` itself as it is: a
# name holding `%22` cannot be told from one holding `"`.)
_HTML5_CODES = re.compile(r"%(22|0[0-9A-F]|1[0-9A-F])")


def _decoded(code: re.Match[str]) -> str:
    return chr(int(code.group(1), 16))


def fields(parts: Iterable[Part]) -> dict[str, Any]:
    """The form as the value the client flattened: `a[]` items make a list, `a[b]` an object;
    text parts are strings, file parts `Upload`s. A repeated plain name keeps its last value,
    as form decoders do."""
    out: dict[str, Any] = {}
    for part in parts:
        value: Any
        if part.filename is not None:
            value = Upload(
                part.filename, part.data, part.content_type or "application/octet-stream"
            )
        else:
            value = part.data.decode("utf-8", "replace")
        _put(out, part.name, value)
    return out


def _put(out: dict[str, Any], name: str, value: Any) -> None:
    base, _, rest = name.partition("[")
    if not rest or not base:
        out[name] = value
        return
    keys = _BRACKETS.findall("[" + rest)
    if "".join(f"[{key}]" for key in keys) != "[" + rest:
        out[name] = value  # not bracket notation after all (`a[b`): a plain name
        return
    node: Any = out
    path = [base, *keys]
    for index, key in enumerate(path):
        last = index == len(path) - 1
        following = None if last else path[index + 1]
        if isinstance(node, list):
            if key != "":
                return  # `a[][b]` mixes a list with keys: not something the SDKs send
            if last:
                node.append(value)
                return
            node.append([] if following == "" else {})
            node = node[-1]
            continue
        if last:
            node[key] = value
            return
        child = node.get(key)
        wanted: type = list if following == "" else dict
        if not isinstance(child, wanted):
            child = node[key] = wanted()
        node = child


def summarised(value: Any) -> Any:
    """`value` with every Upload replaced by its summary (JSON-friendly, bytes-free)."""
    if isinstance(value, Upload):
        return value.summary()
    if isinstance(value, Mapping):
        return {key: summarised(item) for key, item in value.items()}
    if isinstance(value, list):
        return [summarised(item) for item in value]
    return value


def uploads(value: Any) -> list[tuple[str, Upload]]:
    """Every Upload in a form's value, with the field it came in (`image`, `image[]`...)."""
    found: list[tuple[str, Upload]] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, Upload):
            found.append((where, node))
        elif isinstance(node, Mapping):
            for key, item in node.items():
                walk(item, key if not where else f"{where}.{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(value, "")
    return found
