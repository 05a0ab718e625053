"""Pictures answered by URL (`response_format: url`), kept and served by the server itself.

DALL-E answers with a link to a blob that expires an hour later; mockai answers with a link to
itself, `/_mockai/images/img-....png?se=...&sig=...`, that works for an hour and then answers as
an expired blob does (403, Azure's `AuthenticationFailed`). The link carries its expiry and an
HMAC of the name and expiry with a per-server secret, so it cannot be extended by editing it.

The store is bounded by count and by bytes (the oldest go first); a picture evicted or from a
reset server answers 404 (`BlobNotFound`), as a deleted blob does. It lives in the server's state
backend: with `--state redis://` a link answered by one worker is served by every other (the
signing secret is shared there too, the first worker's).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from mockai.backend.base import Records, RecordsFactory
from mockai.backend.memory import MemoryBackend
from mockai.pipeline.exchange import Exchange
from mockai.stores import IMAGES_PATH, kept
from mockai.stores.files import RawBytes
from mockai.wire import jsonbytes
from mockai.wire.outgoing import ATTACHMENT_SCHEME, Body, Outgoing

LIFETIME = 3600.0  # seconds: DALL-E's image URLs expire after an hour
DEFAULT_CAPACITY = 256
DEFAULT_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Picture:
    """A kept picture."""

    data: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class _Held:
    """What the store knows of a picture without its bytes (for its bounds)."""

    name: str
    size: int
    content_type: str


_HELD = kept.JsonCodec(lambda held: [held.name, held.size, held.content_type], lambda d: _Held(*d))


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a GET of a picture's URL answers: a status, a content type and bytes."""

    status: int
    content_type: str
    body: bytes


class ImageStore:
    """Pictures by name, with signed, expiring links (bounded, oldest evicted first)."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        max_bytes: int = DEFAULT_BYTES,
        clock: Callable[[], float] = time.time,
        backend: RecordsFactory | None = None,
    ) -> None:
        backend = backend or MemoryBackend()
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.clock = clock  # wall-clock seconds (links carry dates), replaceable in tests
        # A picture is two records: its size and type (for the bounds), and its bytes.
        self._held: Records[_Held] = backend.records("images", _HELD, capacity)
        self._data: Records[bytes] = backend.records("image-data", RawBytes(), capacity)
        # The collection a reset keeps (see `Backend.forget_all`): links outlive a reset.
        self._secrets: Records[bytes] = backend.records("secrets", RawBytes(), 16)
        self._secret: bytes | None = None  # the server's signing secret, once known here
        # A shared secret is read at each signing, not kept: a Redis restarted empty takes the
        # secret of the first worker asking after it, and a worker keeping the one from before
        # signed links every other worker refused (403), and refused theirs, until restarted.
        self._keeps_secret = not getattr(backend, "shared", False)

    async def keep(self, exchange: Exchange, outgoing: Outgoing) -> Outgoing:
        """Keep the pictures an answer links to, and put their links in its body."""
        if not isinstance(outgoing, Body) or not outgoing.attachments:
            return outgoing
        base = base_url(exchange.headers)
        body = outgoing.body
        for attachment in outgoing.attachments:
            await self._put(attachment.name, Picture(attachment.data, attachment.content_type))
            link = await self.link(base, attachment.name)
            # (as JSON string text: the link goes inside the answer's JSON)
            text = jsonbytes.string(link)[1:-1]
            body = body.replace(ATTACHMENT_SCHEME + attachment.name.encode(), text)
        return Body(outgoing.status, body, outgoing.content_type, outgoing.headers)

    async def link(self, base: str, name: str) -> str:
        """The signed link to a kept picture, valid for LIFETIME seconds from now."""
        now = self.clock()
        start, expiry = _stamp(now), _stamp(now + LIFETIME)
        signature = await self._sign(name, expiry)
        return (
            f"{base}{IMAGES_PATH}{quote(name)}?st={quote(start)}&se={quote(expiry)}&sp=r"
            f"&sv=2021-08-06&sr=b&sig={signature}"
        )

    async def fetch(self, name: str, query: Mapping[str, str]) -> Fetched:
        """What a client fetching a link gets: the picture, or the blob store's errors."""
        expiry, signature = query.get("se", ""), query.get("sig", "")
        # (compared as bytes: `compare_digest` raises on a `str` with a character past ASCII,
        # which any client may put in `sig`, and the link answered a 500)
        expected = (await self._sign(name, expiry)).encode()
        if not hmac.compare_digest(signature.encode("utf-8", "surrogatepass"), expected):
            return _error(403, "AuthenticationFailed", "Signature did not match.")
        try:
            expires = datetime.strptime(expiry, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return _error(403, "AuthenticationFailed", "Signed expiry time is not valid.")
        if self.clock() > expires.timestamp():
            return _error(
                403,
                "AuthenticationFailed",
                f"Signed expiry time [{expires:%a, %d %b %Y %H:%M:%S} GMT] must be after "
                "signed start time and the current time.",
            )
        held = await self._held.get(name)
        data = await self._data.get(name) if held is not None else None
        if held is None or data is None:
            return _error(404, "BlobNotFound", "The specified blob does not exist.")
        return Fetched(200, held.content_type, data)

    async def clear(self) -> None:
        """Forget every picture (the server's reset); the secret stays, so an old link answers
        404, as a deleted blob does."""
        await self._held.clear()
        await self._data.clear()

    async def _put(self, name: str, picture: Picture) -> None:
        await self._data.put(name, picture.data)  # the bytes first: a held picture can be read
        await self._held.put(name, _Held(name, len(picture.data), picture.content_type))
        held = await self._held.values()
        total = sum(h.size for h in held)
        for oldest in held[:-1]:  # past the byte bound the oldest go (the newest always stays)
            if total <= self.max_bytes:
                break
            await self._held.pop(oldest.name)
            await self._data.pop(oldest.name)
            total -= oldest.size

    async def _sign(self, name: str, expiry: str) -> str:
        secret = self._secret
        if secret is None:
            # Every worker signs with the first one's secret.
            secret = await self._secrets.setdefault("images", os.urandom(32))
            if self._keeps_secret:
                self._secret = secret
        mac = hmac.new(secret, f"{name}\n{expiry}".encode(), hashlib.sha256)
        return mac.hexdigest()[:43]


def base_url(headers: Mapping[str, str]) -> str:
    """This server as the client reached it (`Host`, and `X-Forwarded-Proto` behind a proxy).

    Only what a URL's authority and scheme may hold is taken from them: a Host header with a quote
    or a space (anything can be sent) had gone into the answer's JSON as it was, breaking it; a
    link to such a host could not be followed anyway, so it names the loopback address instead."""
    host = _header(headers, "host")
    if host is None or not _AUTHORITY.fullmatch(host):
        host = "127.0.0.1"
    proto = (_header(headers, "x-forwarded-proto") or "http").split(",")[0].strip().lower()
    return f"{proto if proto in ('http', 'https') else 'http'}://{host}"


# RFC 3986's authority without userinfo: a name or IPv4 address, or an IP literal (`[::1]`), and
# a port.
_AUTHORITY = re.compile(
    r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9._~%!$&'()*+,;=-]{1,253})"  # the host
    r"(?::\d{1,5})?"  # the port
)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    found = headers.get(name)
    if found is None and not hasattr(headers, "getall"):
        found = next((v for k, v in headers.items() if k.lower() == name), None)
    return found


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, code: str, message: str) -> Fetched:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Fetched(status, "application/xml", body.encode())
