"""Files this server holds: uploads, and the output and error files of batches.

Kept per server, like the other stores, behind a few small methods (`add`, `get`, `data`,
`listed`, `delete`) so that a shared-state backend can hold them instead. Bounded by count and
bytes, but never by forgetting: past the bounds an upload is refused (a 400 saying it is
mockai's bound), since a file evicted under a running batch would be data lost.

Ids and timestamps are reproducible: the n-th file of a server gets `created_at` = the
configured creation time + n seconds (so lists sort as uploaded), and an id derived from the
upload's content key and n.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mockai.api import files as codec
from mockai.errors import ApiError
from mockai.pipeline.exchange import Exchange
from mockai.stores import items
from mockai.wire import ids, jsonbytes
from mockai.wire.outgoing import Body, Outgoing

DEFAULT_CAPACITY = 10_000
DEFAULT_BYTES = 1024 * 1024 * 1024  # 1 GiB of files per server
BATCH_EXPIRY = 30 * 24 * 3600  # batch files expire after 30 days unless told otherwise
LIST_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file: what the API shows of it, and its bytes."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int
    expires_at: int | None

    def shown(self) -> dict[str, Any]:
        """The File object."""
        return codec.file_object(
            self.id, self.filename, self.purpose, len(self.data), self.created_at, self.expires_at
        )


class FileStore:
    """Files by id, in upload order."""

    def __init__(
        self, created: int, capacity: int = DEFAULT_CAPACITY, max_bytes: int = DEFAULT_BYTES
    ) -> None:
        self.created = created
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._bytes = 0
        self._count = 0  # files ever added (their ids and times derive from it)
        self._lock = threading.Lock()

    # --- the state (small methods, for a shared backend to take over) ---------------------------

    def add(
        self,
        filename: str,
        purpose: str,
        data: bytes,
        key: bytes,
        expires_after: int | None = None,
    ) -> StoredFile:
        """Keep a new file; the 400 when the store is full (mockai's bound)."""
        with self._lock:
            if len(self._files) >= self.capacity or self._bytes + len(data) > self.max_bytes:
                raise ApiError(
                    400,
                    f"mockai holds at most {self.capacity} files and {self.max_bytes} bytes per "
                    "server; delete files (or reset the server) to upload more.",
                    param="file",
                    code="mockai_storage_full",
                )
            self._count += 1
            number = self._count
            created = self.created + number
            if expires_after is None and purpose in ("batch", "batch_output"):
                expires_after = BATCH_EXPIRY
            stored = StoredFile(
                ids.file_id(hashlib.blake2b(number.to_bytes(8, "big"), key=key[:64]).digest()),
                filename,
                purpose,
                data,
                created,
                created + expires_after if expires_after is not None else None,
            )
            self._files[stored.id] = stored
            self._bytes += len(data)
            return stored

    def get(self, file_id: str) -> StoredFile:
        """A held file; the API's 404 otherwise."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise not_found(file_id)
        return stored

    def data(self, file_id: str) -> bytes | None:
        """A held file's bytes (None if there is no such file)."""
        with self._lock:
            stored = self._files.get(file_id)
        return None if stored is None else stored.data

    def listed(self, purpose: str | None = None) -> list[StoredFile]:
        """Every held file (of one purpose), oldest first."""
        with self._lock:
            every = list(self._files.values())
        return [f for f in every if purpose is None or f.purpose == purpose]

    def delete(self, file_id: str) -> StoredFile:
        """Forget a file; the API's 404 if there is none."""
        with self._lock:
            stored = self._files.pop(file_id, None)
            if stored is not None:
                self._bytes -= len(stored.data)
        if stored is None:
            raise not_found(file_id)
        return stored

    def clear(self) -> None:
        """Forget every file (the server's reset)."""
        with self._lock:
            self._files.clear()
            self._bytes = 0
            self._count = 0

    def __len__(self) -> int:
        return len(self._files)

    # --- the /files routes --------------------------------------------------------------------

    async def answer(self, exchange: Exchange, key: bytes) -> Outgoing:
        """What the API answers to a /files request that no rule or recording answered."""
        parts = (exchange.route or "/files").strip("/").split("/")
        if len(parts) == 1:
            if exchange.method == "POST":
                return _json(self._upload(exchange, key).shown())
            return _json(self._page(exchange.query))
        file_id = parts[1]
        if len(parts) == 3:
            stored = self.get(file_id)
            return Body(200, stored.data, _content_type(stored.filename))
        if exchange.method == "DELETE":
            return _json(codec.deleted(self.delete(file_id).id))
        return _json(self.get(file_id).shown())

    def _upload(self, exchange: Exchange, key: bytes) -> StoredFile:
        upload = exchange.uploads[0]
        expiry = exchange.body.get("expires_after")
        seconds = expiry.get("seconds") if isinstance(expiry, Mapping) else None
        return self.add(upload.filename, str(exchange.body["purpose"]), upload.data, key, seconds)

    def _page(self, query: Mapping[str, str]) -> dict[str, Any]:
        shown = [stored.shown() for stored in self.listed(query.get("purpose"))]
        return items.page(shown, query, default_limit=LIST_LIMIT, max_limit=LIST_LIMIT)


def not_found(file_id: str) -> ApiError:
    """The API's 404 for a file it does not hold."""
    return ApiError(404, f"No such File object: {file_id}", param="id")


def _json(value: Any) -> Body:
    return Body(200, jsonbytes.dumps(value))


def _content_type(filename: str) -> str:
    # The API sends file contents as bytes whatever they hold.
    return "application/octet-stream"
