"""Pictures answered by URL (`response_format: url`), kept and served by the server itself.

DALL-E answers with a link to a blob that expires an hour later; mockai answers with a link to
itself, `/_mockai/images/img-....png?se=...&sig=...`, that works for an hour and then answers as
an expired blob does (403, Azure's `AuthenticationFailed`). The link carries its expiry and an
HMAC of the name and expiry with a per-server secret, so it cannot be extended by editing it.

The store is bounded by count and by bytes (the oldest go first); a picture evicted or from a
reset server answers 404 (`BlobNotFound`), as a deleted blob does.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from mockai.pipeline.exchange import Exchange
from mockai.wire.outgoing import ATTACHMENT_SCHEME, Body, Outgoing

LIFETIME = 3600.0  # seconds: DALL-E's image URLs expire after an hour
DEFAULT_CAPACITY = 256
DEFAULT_BYTES = 256 * 1024 * 1024
PATH = "/_mockai/images/"


@dataclass(frozen=True, slots=True)
class Picture:
    """A kept picture."""

    data: bytes
    content_type: str


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
    ) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.clock = clock  # wall-clock seconds (links carry dates), replaceable in tests
        self._secret = os.urandom(32)
        self._pictures: OrderedDict[str, Picture] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # batch lines and HTTP requests keep pictures alike

    def keep(self, exchange: Exchange, outgoing: Outgoing) -> Outgoing:
        """Keep the pictures an answer links to, and put their links in its body."""
        if not isinstance(outgoing, Body) or not outgoing.attachments:
            return outgoing
        base = base_url(exchange.headers)
        body = outgoing.body
        for attachment in outgoing.attachments:
            self._put(attachment.name, Picture(attachment.data, attachment.content_type))
            link = self.link(base, attachment.name)
            body = body.replace(ATTACHMENT_SCHEME + attachment.name.encode(), link.encode())
        return Body(outgoing.status, body, outgoing.content_type, outgoing.headers)

    def link(self, base: str, name: str) -> str:
        """The signed link to a kept picture, valid for LIFETIME seconds from now."""
        now = self.clock()
        start, expiry = _stamp(now), _stamp(now + LIFETIME)
        signature = self._sign(name, expiry)
        return (
            f"{base}{PATH}{quote(name)}?st={quote(start)}&se={quote(expiry)}&sp=r"
            f"&sv=2021-08-06&sr=b&sig={signature}"
        )

    def fetch(self, name: str, query: Mapping[str, str]) -> Fetched:
        """What a client fetching a link gets: the picture, or the blob store's errors."""
        expiry, signature = query.get("se", ""), query.get("sig", "")
        if not hmac.compare_digest(signature, self._sign(name, expiry)):
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
        with self._lock:
            picture = self._pictures.get(name)
        if picture is None:
            return _error(404, "BlobNotFound", "The specified blob does not exist.")
        return Fetched(200, picture.content_type, picture.data)

    def clear(self) -> None:
        """Forget every picture (the server's reset)."""
        with self._lock:
            self._pictures.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._pictures)

    def _put(self, name: str, picture: Picture) -> None:
        with self._lock:
            old = self._pictures.pop(name, None)
            if old is not None:
                self._bytes -= len(old.data)
            self._pictures[name] = picture
            self._bytes += len(picture.data)
            while len(self._pictures) > self.capacity or (
                self._bytes > self.max_bytes and len(self._pictures) > 1
            ):
                _, evicted = self._pictures.popitem(last=False)
                self._bytes -= len(evicted.data)

    def _sign(self, name: str, expiry: str) -> str:
        mac = hmac.new(self._secret, f"{name}\n{expiry}".encode(), hashlib.sha256)
        return mac.hexdigest()[:43]


def base_url(headers: Mapping[str, str]) -> str:
    """This server as the client reached it (`Host`, and `X-Forwarded-Proto` behind a proxy)."""
    host = _header(headers, "host") or "127.0.0.1"
    scheme = (_header(headers, "x-forwarded-proto") or "http").split(",")[0].strip()
    return f"{scheme}://{host}"


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
