"""Keep secrets out of cassettes: drop credential headers, scrub key-shaped strings, scan.

Three layers, because one is not enough:
1. headers that carry credentials (`authorization`, `api-key`, cookies, anything named like a key
   or token) are dropped before an interaction is kept;
2. key-shaped strings in bodies, URLs and the remaining headers — `sk-...`, bearer tokens, other
   providers' key formats, the user's `--redact` patterns, and the exact credentials the request
   was sent with — are replaced by stable placeholders such as `sk-REDACTED-1a2b3c4d` (a hash of
   the secret: the same secret always maps to the same placeholder, so requests that contained a
   key still match on replay, where the incoming request is scrubbed the same way); in a body
   that is not UTF-8 (a binary upload) each is cut or padded to the secret's length, so the file
   keeps its size;
3. the text about to be written is scanned once more, and the write is refused (SecretLeakError)
   if anything token-like is left, saying where — never printing the secret itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from mockai.errors import ConfigError
from mockai.wire.credentials import is_credential_header, is_credential_param

# Headers dropped from cassettes: the ones the journal redacts (one definition for both).
is_secret_header = is_credential_header
# A placeholder, with the key prefix it keeps visible: all of it is no secret, and the scan sees
# none of it (a key glued after another key's end must not take the `sk-` of its placeholder as
# its own last characters, nor the other way round).
PLACEHOLDER = re.compile(r"(?:sk-|gsk_|xai-|hf_|AIza)?REDACTED-[0-9a-f]{8}")
# A replacement: the span `[start, end)` of a text, and what stands in for it.
Edit = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class SecretPattern:
    """A shape of secret: `regex` finds it, `group` is the secret part, `prefix` stays visible."""

    name: str
    regex: re.Pattern[str]
    prefix: str = ""
    group: int = 0
    # Lower-case strings of which a match must contain one: a cheap `in` test skips the regex
    # for most texts (the hot path scrubs every replayed request). Empty: always search.
    markers: tuple[str, ...] = ()

    def may_match(self, lowered: str) -> bool:
        """False when `regex` cannot match the text whose lower-case form is `lowered`."""
        return not self.markers or any(marker in lowered for marker in self.markers)


def _pattern(
    name: str, regex: str, markers: tuple[str, ...], prefix: str = "", group: int = 0
) -> SecretPattern:
    return SecretPattern(name, re.compile(regex), prefix, group, markers)


# Where a secret may start: not right after a letter, so that a word ending in a key's prefix is
# no key (`task-...` is no `sk-` key, `cupbearer ...` no bearer token); right after a digit, `_`,
# `-` or any other character it is one, as keys are pasted glued to what precedes them
# (`OPENAI_API_KEY_sk-...`, `0sk-...`). A letter is an ASCII one: a key glued to a CJK word or an
# accented letter is caught too. Right after a JSON string escape (`\n`, `\t`, `\u00e9`), whose
# last character is a letter or a hex digit in the text while the string it encodes has a line
# break or an `é` there, a key starts too: a JSONL line in a multipart upload, a bare-string body
# and a non-JSON event are scrubbed as text. So is one right after a URL's percent escape
# (`?next=%2Fv1%3Fkey%3Dsk-...`: `%3D` is an `=`, whose text ends in a letter).
_ESCAPED = r"(?<=\\[nrtbf])|(?<=\\u[0-9A-Fa-f]{4})|(?<=%[0-9A-Fa-f]{2})"
_B = rf"(?:(?<![A-Za-z])|{_ESCAPED})"
# `sk-proj-` and `sk-svcacct-` keys are keys after anything, a letter included: no word ends in
# them. (`sk-admin-`, `sk-ant-`, `sk-or-v1-` keep the letter rule: `task-admin-permissions` and
# `desk-ant-colony` are words an answer may hold.)
_SK_PARTS = r"sk-(?:proj|svcacct)-"
_SK_START = rf"(?:(?<![A-Za-z])|{_ESCAPED}|(?={_SK_PARTS}))"
# Google keys and AWS key ids are spelled in base64's own letters, so base64 data (an embedding,
# an image, audio) holds such a run by chance now and then; rewriting it would corrupt the data
# (the replayed embedding no longer decodes). Such a key ends a run: no base64 letter (`+`, `/`,
# `=` padding included) right after it, which a run inside the data always has; a key standing
# alone, in JSON, a URL query, after a JSON escape or glued to a name before it is still one.
_B64_END = r"(?![A-Za-z0-9_+/=-])"
DEFAULT_PATTERNS: tuple[SecretPattern, ...] = (
    # OpenAI (sk-, sk-proj-, sk-svcacct-, sk-admin-), Anthropic (sk-ant-), OpenRouter
    # (sk-or-v1-), DeepSeek...
    _pattern("an sk- API key", _SK_START + r"sk-(?!REDACTED-)[A-Za-z0-9_-]{20,}", ("sk-",), "sk-"),
    _pattern(
        "a bearer token",
        _B + r"(?i:bearer)[ \t]+((?!REDACTED-)[A-Za-z0-9._~+/-]{16,}=*)",
        ("bearer",),
        group=1,
    ),
    _pattern("a Groq API key", _B + r"gsk_(?!REDACTED-)[A-Za-z0-9]{20,}", ("gsk_",), "gsk_"),
    _pattern("an xAI API key", _B + r"xai-(?!REDACTED-)[A-Za-z0-9]{20,}", ("xai-",), "xai-"),
    _pattern(
        "a Google API key",
        _B + r"AIza(?!REDACTED-)[0-9A-Za-z_-]{35}" + _B64_END,
        ("aiza",),
        "AIza",
    ),
    _pattern("a Hugging Face token", _B + r"hf_(?!REDACTED-)[A-Za-z0-9]{30,}", ("hf_",), "hf_"),
    _pattern(
        "a GitHub token",
        _B + r"(?:gh[pousr]_|github_pat_)(?!REDACTED-)[A-Za-z0-9_]{30,}",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    _pattern(
        "an AWS access key id",
        _B + r"(?:AKIA|ASIA)[0-9A-Z]{16}" + _B64_END,
        ("akia", "asia"),
    ),
    _pattern("a Slack token", _B + r"xox[abposr]-(?!REDACTED-)[A-Za-z0-9-]{10,}", ("xox",)),
    _pattern(
        "a JSON web token",
        _B + r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        ("eyj",),
    ),
    _pattern("a private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----", ("private key",)),
)
# Credentials shorter than this are not hunted for in bodies: `Bearer ollama` must not turn the
# model name `ollama` into a placeholder everywhere.
MIN_LITERAL_SECRET = 12


def placeholder(secret: str, prefix: str = "") -> str:
    """The stable stand-in for `secret`: its visible prefix, `REDACTED-`, 8 hex of a hash."""
    digest = hashlib.blake2b(secret.encode(), digest_size=4, person=b"mockai-redact").hexdigest()
    return f"{prefix}REDACTED-{digest}"


def mask(secret: str) -> str:
    """How a secret is named in messages: its first 6 characters and its length."""
    return f"{secret[:6]}... ({len(secret)} chars)"


@dataclass(frozen=True, slots=True)
class Finding:
    """A secret-looking string found by `Scrubber.scan`: what it looks like, and where."""

    what: str  # the pattern's name, e.g. "an sk- API key"
    sample: str  # masked, never the secret itself
    offset: int  # in the scanned text


class Scrubber:
    """Replaces secrets with placeholders and finds any that are left."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.patterns = DEFAULT_PATTERNS + tuple(_user_pattern(regex) for regex in extra)
        # Every pattern's markers in one search: most texts (every replayed request is checked)
        # hold none, which one C-speed scan says, instead of ~20 `in` tests in 11 generators.
        markers = sorted({marker for p in self.patterns for marker in p.markers})
        self._any_marker = re.compile("|".join(map(re.escape, markers))) if markers else None
        self._unmarked = tuple(p for p in self.patterns if not p.markers)  # always searched
        # Bytes read as Latin-1 are no letters: `\b` must not take `é` (0xE9) for a word
        # character and miss the `Bearer` after it.
        self._byte_patterns = tuple(map(_ascii, self.patterns))

    # --- scrubbing -----------------------------------------------------------------------------

    def scrub_text(self, text: str, secrets: Sequence[str] = ()) -> str:
        """`text` with every known secret and every key-shaped string replaced."""
        if secrets:
            holding = self._keys_holding(text, secrets)
            if holding:
                text = _applied(text, holding)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, placeholder(secret, _visible_prefix(secret)))
        while True:
            lowered = text.lower()
            scrubbed = text
            for pattern in self.patterns:
                if pattern.may_match(lowered):
                    scrubbed = _scrub_matches(scrubbed, pattern)
            if scrubbed == text:
                return text
            # Once more: a placeholder can expose a key that an earlier pattern could not see
            # (`-----BEGIN RSA PRIVATE KEY-----sk-...`: the `sk-` follows a `-` until the header
            # is replaced). Each pass adds placeholders, never matched again, so this ends.
            text = scrubbed

    def replacements(self, text: str, secrets: Sequence[str] = ()) -> list[Edit]:
        """What `scrub_text` replaces in `text`, as `(start, end, placeholder)` spans of `text`,
        in order, none overlapping: for text that is stored in pieces (a stream's deltas), whose
        secrets may cross from one piece into the next. The same passes as `scrub_text`, so the
        spans applied give exactly what it gives."""
        edits = _Edits(text)
        if secrets:
            edits.apply(self._keys_holding(text, secrets))
        for secret in secrets:
            if secret:
                edits.apply(_occurrences(edits.text, secret))
        while True:
            before = edits.text
            lowered = before.lower()
            for pattern in self.patterns:
                if pattern.may_match(lowered):
                    edits.apply(_matches(edits.text, pattern))
            if edits.text == before:
                return edits.spans

    def _keys_holding(
        self, text: str, secrets: Sequence[str], patterns: Sequence[SecretPattern] | None = None
    ) -> list[Edit]:
        """Where a key-shaped string of `text` and one of `secrets` overlap without being the
        same span (a cookie value that is part of a key an answer quotes): the two together,
        replaced first. Either pass alone replaces its part, and what it leaves of the other
        is too short to look like a key any more (a 16-character cookie inside a 55-character
        key left 39 characters of the key on disk, which the scan passed)."""
        occurrences = [
            (start, end)
            for secret in secrets
            if secret
            for start, end, _ in _occurrences(text, secret)
        ]
        if not occurrences:
            return []
        lowered = text.lower()
        spans: list[tuple[int, int]] = []
        for pattern in self.patterns if patterns is None else patterns:
            if not pattern.may_match(lowered):
                continue
            for start, end, _ in _matches(text, pattern):
                met = [
                    (s, e)
                    for s, e in occurrences
                    if s < end and start < e and (s, e) != (start, end)
                ]
                if met:
                    spans.append((min(start, *(s for s, _ in met)), max(end, *(e for _, e in met))))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for start, end in spans:  # (overlapping ones as one)
            if merged and start < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return [
            (start, end, placeholder(text[start:end], _visible_prefix(text[start:end])))
            for start, end in merged
        ]

    def needs_scrubbing(self, text: str, secrets: Sequence[str] = ()) -> bool:
        """True if `scrub_text` might change `text` (the cheap check on the hot path; False
        means it would not)."""
        if secrets and any(secret in text for secret in secrets):
            return True
        lowered = text.lower()
        neutral = _neutral(text)  # (as `scrub_text` and `scan` see it)
        if self._any_marker is not None and self._any_marker.search(lowered):
            return any(p.may_match(lowered) and p.regex.search(neutral) for p in self.patterns)
        return any(p.regex.search(neutral) for p in self._unmarked)

    def scrub_json(self, value: Any, secrets: Sequence[str] = ()) -> Any:
        """A copy of a parsed JSON value with every string scrubbed (keys are left alone)."""
        if isinstance(value, str):
            return self.scrub_text(value, secrets)
        if isinstance(value, Mapping):
            return {key: self.scrub_json(item, secrets) for key, item in value.items()}
        if isinstance(value, list):
            return [self.scrub_json(item, secrets) for item in value]
        return value

    def scrub_body(self, body: bytes, secrets: Sequence[str] = ()) -> bytes:
        """A body scrubbed without moving a byte it does not have to: JSON value by value (its
        text kept when only the secrets change), SSE line by line, so events keep their
        boundaries."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return self.scrub_binary(body, secrets)
        if _is_json(text):
            scrubbed = self._scrub_json_text(text, secrets)
        else:
            scrubbed = "".join(
                self._scrub_line(line, secrets) for line in text.splitlines(keepends=True)
            )
        return body if scrubbed == text else scrubbed.encode("utf-8")

    def scrub_binary(self, body: bytes, secrets: Sequence[str] = ()) -> bytes:
        """A body that is not UTF-8 (a file, a form uploading one) with its key-shaped byte runs
        replaced by their placeholders cut or padded to their length: the file keeps its size
        and every offset in it (an archive's index, a PDF's xref). Read as Latin-1, one
        character a byte, as the scan reads it: the patterns are ASCII."""
        text = body.decode("latin-1")
        # (Its bytes, as they appear here; a header's lone surrogate cannot be in a body.)
        raws = [secret.encode("utf-8", "replace").decode("latin-1") for secret in secrets]
        holding = self._keys_holding(text, raws, self._byte_patterns) if secrets else []
        if holding:  # (a key and a secret overlapping: the two together, as for text)
            text = _applied(text, [(s, e, _fitted(new, e - s)) for s, e, new in holding])
        for secret, raw in zip(secrets, raws, strict=True):
            if raw in text:
                stand_in = placeholder(secret, _visible_prefix(secret))
                text = text.replace(raw, _fitted(stand_in, len(raw)))
        for _ in range(_BINARY_PASSES):
            lowered = text.lower()
            scrubbed = text
            for pattern in self._byte_patterns:
                if pattern.may_match(lowered):
                    scrubbed = _scrub_matches(scrubbed, pattern, fit=True)
            if scrubbed == text:
                break
            # Once more, as for text (a placeholder can expose a key); bounded, because a cut
            # placeholder is not blanked out like a whole one, and a `--redact` pattern may
            # match it again: whatever is left, the scan still refuses.
            text = scrubbed
        return text.encode("latin-1")

    def _scrub_json_text(self, text: str, secrets: Sequence[str]) -> str:
        value = json.loads(text)
        wanted = self.scrub_json(value, secrets)
        if wanted == value:
            return text
        # Replacing in the text keeps the upstream's exact formatting; if that would not give
        # the same JSON (a pattern crossing quotes, an escaped secret), write the JSON anew.
        candidate = self.scrub_text(text, secrets)
        try:
            if json.loads(candidate) == wanted:
                return candidate
        except ValueError:
            pass
        return json.dumps(wanted, ensure_ascii=False, separators=(",", ":"))

    def _scrub_line(self, line: str, secrets: Sequence[str]) -> str:
        content = line.rstrip("\r\n")
        ending = line[len(content) :]
        if content.startswith("data:"):
            prefix = "data: " if content.startswith("data: ") else "data:"
            payload = content[len(prefix) :]
            if _is_json(payload):
                return prefix + self._scrub_json_text(payload, secrets) + ending
        return self.scrub_text(content, secrets) + ending

    # --- scanning ------------------------------------------------------------------------------

    def scan(self, text: str, secrets: Sequence[str] = ()) -> list[Finding]:
        """Every secret-looking string left in `text` (placeholders do not count)."""
        neutral = _neutral(text)
        findings = []
        for secret in secrets:
            start = neutral.find(secret)
            if start >= 0:
                findings.append(
                    Finding("a credential the request was sent with", mask(secret), start)
                )
        lowered = neutral.lower()
        for pattern in self.patterns:
            if not pattern.may_match(lowered):
                continue
            for match in pattern.regex.finditer(neutral):
                secret = match.group(pattern.group)
                if secret and "\0" not in secret:
                    findings.append(Finding(pattern.name, mask(secret), match.start(pattern.group)))
        return sorted(findings, key=lambda f: f.offset)


def _neutral(text: str) -> str:
    """`text` with its placeholders blanked out (NULs, the same length, so offsets stay true):
    how scrubbing and the scan both see it. A placeholder is no secret, and a key right after one
    is still a key (`REDACTED-1a2b3c4dsk-...`: its last hex digit must not hide the `sk-`)."""
    if "REDACTED-" not in text:
        return text
    return PLACEHOLDER.sub(lambda match: "\0" * len(match.group()), text)


def _scrub_matches(text: str, pattern: SecretPattern, *, fit: bool = False) -> str:
    """`text` with each of `pattern`'s secrets replaced by its placeholder, found as `scan`
    finds them (in the neutral view; a match over a placeholder, or a NUL, is left alone);
    `fit`: each placeholder cut or padded to the secret's length."""
    pieces: list[str] = []
    last = 0
    for start, end, stand_in in _matches(text, pattern):
        pieces += (text[last:start], _fitted(stand_in, end - start) if fit else stand_in)
        last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _applied(text: str, edits: Sequence[Edit]) -> str:
    """`text` with `edits` (in order, none overlapping) made."""
    pieces: list[str] = []
    last = 0
    for start, end, stand_in in edits:
        pieces += (text[last:start], stand_in)
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _matches(text: str, pattern: SecretPattern) -> list[Edit]:
    """Where `pattern` finds secrets in `text`, each with its placeholder, as `scan` finds them
    (in the neutral view; a match over a placeholder, or a NUL, is left alone)."""
    neutral = _neutral(text)
    found = []
    for match in pattern.regex.finditer(neutral):
        start, end = match.span(pattern.group)
        if start == end or "\0" in neutral[start:end]:
            continue
        secret = text[start:end]
        found.append((start, end, placeholder(secret, pattern.prefix or _visible_prefix(secret))))
    return found


class _Edits:
    """Replacements made one batch after another, kept as spans of the text they began with:
    `(start, end, stand_in)`, in order, none overlapping."""

    def __init__(self, text: str) -> None:
        self.original = text
        self.spans: list[Edit] = []
        self.text = text  # as it is now

    def apply(self, batch: list[Edit]) -> None:
        """Make `batch` (spans of the text as it is now, in order, none overlapping)."""
        if not batch:
            return
        made = [
            (self._origin(start, end=False), self._origin(end, end=True), new)
            for start, end, new in batch
        ]
        # A new span swallows the earlier ones inside it (a literal secret holding a placeholder).
        kept = [
            old for old in self.spans if not any(s <= old[0] and old[1] <= e for s, e, _ in made)
        ]
        self.spans = sorted(kept + made)
        pieces: list[str] = []
        last = 0
        for start, end, new in self.spans:
            pieces += (self.original[last:start], new)
            last = end
        pieces.append(self.original[last:])
        self.text = "".join(pieces)

    def _origin(self, position: int, *, end: bool) -> int:
        # Where `position` of the text as it is now was in the original; inside a placeholder,
        # its span's start (or end).
        shift = 0  # (now minus original, before the span at hand)
        for start, stop, new in self.spans:
            if position <= start + shift:
                break
            if position < start + shift + len(new):
                return stop if end else start
            shift += len(new) - (stop - start)
        return position - shift


# Binary bodies: scrubbing passes at most (text needs one or two; see `scrub_binary`).
_BINARY_PASSES = 4
# What pads a placeholder to its secret's length in a binary body: no key character, so a key
# right after it is still seen as one (as the blanked-out placeholder lets text see it).
_PAD = "*"


def _ascii(pattern: SecretPattern) -> SecretPattern:
    """`pattern` matching as over bytes: its word boundaries, classes and case folding ASCII
    only."""
    try:
        regex = re.compile(pattern.regex.pattern, (pattern.regex.flags & ~re.UNICODE) | re.ASCII)
    except re.error:  # (a --redact pattern ASCII mode refuses: kept as it is)
        return pattern
    return dataclasses.replace(pattern, regex=regex)


def _fitted(stand_in: str, length: int) -> str:
    """`stand_in` padded, or cut, to `length` characters (a secret shorter than its
    placeholder: a 16-character bearer token, a 15-character Slack token)."""
    return stand_in[:length].ljust(length, _PAD)


_KNOWN_PREFIXES = ("sk-", "gsk_", "xai-", "hf_")


def _occurrences(text: str, secret: str) -> list[Edit]:
    """`secret` in `text`, left to right, none overlapping (as `str.replace` finds it)."""
    stand_in = placeholder(secret, _visible_prefix(secret))
    found = []
    start = text.find(secret)
    while start >= 0:
        found.append((start, start + len(secret), stand_in))
        start = text.find(secret, start + len(secret))
    return found


def _visible_prefix(secret: str) -> str:
    return next((p for p in _KNOWN_PREFIXES if secret.startswith(p)), "")


def _user_pattern(regex: str) -> SecretPattern:
    try:
        compiled = re.compile(regex)
    except (re.error, OverflowError) as error:  # (a repeat count past re's bound: `a{9999999999}`)
        raise ConfigError(f"redact: {regex!r} is not a valid regular expression: {error}") from None
    if compiled.search(""):
        raise ConfigError(f"redact: {regex!r} matches the empty string; it would redact nothing")
    return SecretPattern(
        f"a match of --redact {regex!r}", compiled, "", 1 if compiled.groups else 0
    )


def _is_json(text: str) -> bool:
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return False
    try:
        json.loads(stripped)
    except ValueError:
        return False
    return True


def request_secrets(headers: Mapping[str, str]) -> list[str]:
    """The credentials a request was sent with (long enough to hunt for in bodies): a credential
    header's token, a cookie header whole and each of its values (`session=...; csrf=...`: an
    upstream that echoes one value must not get it into a cassette either)."""
    found = []
    for name, value in headers.items():
        if not is_secret_header(name) or name.lower() == "set-cookie":
            continue
        if name.lower() in ("cookie", "cookie2"):
            found += [v for v in _cookie_values(value) if len(v) >= MIN_LITERAL_SECRET]
        scheme, _, token = value.partition(" ")
        secret = token.strip() if scheme.lower() in ("bearer", "basic", "token") else value.strip()
        if len(secret) >= MIN_LITERAL_SECRET:
            found.append(secret)
    return sorted(set(found), key=len, reverse=True)


def body_secrets(body: Any) -> list[str]:
    """The credentials a request body carries in the fields the API defines for them (long
    enough to hunt for): a Responses `mcp` tool's `authorization`, the OAuth token the upstream
    sends the MCP server, and its `headers` named like credentials (`Authorization: Bearer ...`,
    `X-Api-Key`). Not key-shaped, they reached cassettes as they were."""
    tools = body.get("tools") if isinstance(body, Mapping) else None
    if not isinstance(tools, list):  # (most requests: nothing to walk)
        return []
    found: set[str] = set()
    for tool in tools:
        if not isinstance(tool, Mapping) or tool.get("type") != "mcp":
            continue
        headers = tool.get("headers")
        if isinstance(headers, Mapping):
            found.update(
                request_secrets({str(k): v for k, v in headers.items() if isinstance(v, str)})
            )
        token = tool.get("authorization")
        if isinstance(token, str) and len(token.strip()) >= MIN_LITERAL_SECRET:
            found.add(token.strip())
    # (A recording's placeholder is no secret: replaced again, it no longer matched the request.)
    return sorted((s for s in found if not PLACEHOLDER.search(s)), key=len, reverse=True)


def _cookie_values(header: str) -> list[str]:
    """The values of a `Cookie` header's `name=value` pairs (a quoted one without its quotes)."""
    values = []
    for pair in header.split(";"):
        _, equals, value = pair.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if equals and value:
            values.append(value)
    return values


def redact_query(url: str) -> tuple[str, list[str]]:
    """`url` with the value of each credential query parameter (`api-key=`, `key=`, `sig=`, as
    `is_credential_param` names them) replaced by its placeholder, and those values that are long
    enough to hunt for elsewhere (an upstream that echoes one must not get it into a cassette).
    The rest of the URL is kept as it was, byte for byte."""
    parts = urlsplit(url)
    if not parts.query:
        return url, []
    pieces: list[str] = []
    secrets: list[str] = []
    for piece in parts.query.split("&"):
        name, equals, value = piece.partition("=")
        secret = unquote_plus(value)
        # (An earlier save's placeholder stays: redacting it again would change it every save.)
        if (
            equals
            and secret
            and not PLACEHOLDER.search(secret)
            and is_credential_param(unquote_plus(name))
        ):
            piece = f"{name}={quote(placeholder(secret, _visible_prefix(secret)), safe='')}"
            if len(secret) >= MIN_LITERAL_SECRET:
                secrets.append(secret)
        pieces.append(piece)
    redacted = "&".join(pieces)
    if redacted == parts.query:
        return url, []
    return urlunsplit(parts._replace(query=redacted)), secrets


def safe_headers(headers: Mapping[str, Sequence[str]], scrubber: Scrubber) -> dict[str, list[str]]:
    """Headers fit for a cassette: credential headers dropped, values scrubbed."""
    return {
        name: [scrubber.scrub_text(value) for value in values]
        for name, values in headers.items()
        if not is_secret_header(name)
    }
