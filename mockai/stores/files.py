"""Files this server holds: uploads, and the output and error files of batches.

Kept per server, like the other stores, in the server's state backend: in this process by
default, in Redis with `--state redis://` (every worker and replica then holds the same files).
A file is two records, what the API shows of it and its bytes, so that listing never reads the
bytes. Bounded by count and bytes, but never by forgetting: past the bounds an upload is refused
(a 400 saying it is mockai's bound), since a file evicted under a running batch would be data
lost. What the files take is held in one more collection, a charge per file (its size), added
within the bounds and given back in one atomic step each (one script in Redis): workers
uploading at the same instant cannot pass the bounds together, and never wait on each other.

Ids and timestamps are reproducible: a file's `created_at` is the configured creation time + n
seconds, n counting the files and the batches' steps of the server (one clock for both, `tick`:
a batch is never older than its input file, nor its output file than its finalizing), so lists
sort as uploaded; its id derives from the upload's content key and how many times the same
upload was made before (as a response's id: other files uploaded first change no file's id).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mockai.api import files as codec
from mockai.backend.base import Backend, Records
from mockai.backend.memory import MemoryBackend
from mockai.errors import ApiError
from mockai.pipeline.exchange import Exchange
from mockai.pipeline.fingerprint import occurrence_key
from mockai.stores import items, kept
from mockai.wire import ids, jsonbytes
from mockai.wire.outgoing import Body, Outgoing

DEFAULT_CAPACITY = 10_000
DEFAULT_BYTES = 1024 * 1024 * 1024  # 1 GiB of files per server
BATCH_EXPIRY = 30 * 24 * 3600  # batch files expire after 30 days unless told otherwise
LIST_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file as the API shows it (its bytes are kept apart: `FileStore.data`)."""

    id: str
    filename: str
    purpose: str
    size: int
    created_at: int
    expires_at: int | None

    def shown(self) -> dict[str, Any]:
        """The File object."""
        return codec.file_object(
            self.id, self.filename, self.purpose, self.size, self.created_at, self.expires_at
        )


class RawBytes:
    """A RecordCodec for records that are bytes already."""

    def encode(self, record: bytes) -> bytes:
        return record

    def decode(self, data: bytes) -> bytes:
        return bytes(data)


_FILES = kept.JsonCodec(asdict, lambda data: StoredFile(**data))
_PLACE = kept.JsonCodec(int, int)


class FileStore:
    """Files by id, in upload order."""

    def __init__(
        self,
        created: int,
        capacity: int = DEFAULT_CAPACITY,
        max_bytes: int = DEFAULT_BYTES,
        backend: Backend | None = None,
    ) -> None:
        backend = backend or MemoryBackend()
        self.backend = backend
        self.created = created
        self.capacity = capacity
        self.max_bytes = max_bytes
        # Room for twice the bound: the bound refuses uploads, the records never evict a file.
        self._files: Records[StoredFile] = backend.records("files", _FILES, 2 * capacity)
        self._data: Records[bytes] = backend.records("file-data", RawBytes(), 2 * capacity)
        # A charge per held file (its size, weighing as much), numbered by the server's clock
        # of files and batches (`tick`): a file's charge is "n", its `created_at` the creation
        # time + n.
        self._charges: Records[int] = backend.records("file-charges", _PLACE, 2 * capacity)
        # Files deleted while a batch kept their bytes (its lines): each one's charge number. The
        # charge stays until no batch keeps them (`let_go`), so what the server holds stays
        # within the bound whatever is deleted, and is counted once however many batches share
        # a file.
        self._orphans: Records[int] = backend.records("file-orphans", _PLACE, capacity)
        # Whether a batch keeps a file's bytes (the batch store says, once it exists).
        self.kept: Callable[[str], Awaitable[bool]] | None = None
        # Deleted files' places in the list (their `created_at`): a cursor naming one still
        # names its place (a client deleting while it pages), for the last `capacity` deleted.
        self._places: Records[int] = backend.records("file-places", _PLACE, capacity)
        # How many times each upload was made (shared by workers): a file's id derives from it.
        self._made = backend.occurrences()

    # --- the state ------------------------------------------------------------------------------

    async def add(
        self,
        filename: str,
        purpose: str,
        data: bytes,
        key: bytes,
        expires_after: int | None = None,
    ) -> StoredFile:
        """Keep a new file; the 400 when the store is full (mockai's bound), or when the file is
        larger than the shared state can hold as one value."""
        largest = await self.backend.largest_record()
        if largest is not None and len(data) > largest:
            raise ApiError(
                400,
                "mockai keeps files in its shared state, which holds values of at most "
                f"{largest} bytes (Redis's proto-max-bulk-len); this file has {len(data)}.",
                param="file",
                code="mockai_storage_full",
            )
        number = await self._reserve(len(data))
        try:
            return await self._keep(number, filename, purpose, data, key, expires_after)
        except BaseException:
            with contextlib.suppress(Exception):  # (the state may be away: nothing to undo then)
                await self._charges.pop(str(number))
            raise

    async def _keep(
        self,
        number: int,
        filename: str,
        purpose: str,
        data: bytes,
        key: bytes,
        expires_after: int | None,
    ) -> StoredFile:
        created = self.created + number  # (the clock's second its charge was numbered at)
        if expires_after is None and purpose in ("batch", "batch_output"):
            expires_after = BATCH_EXPIRY
        stored = StoredFile(
            await self._new_id(key),
            filename,
            purpose,
            len(data),
            created,
            created + expires_after if expires_after is not None else None,
        )
        await self._data.put(stored.id, data)  # the bytes first: a listed file can be read
        await self._files.put(stored.id, stored)
        return stored

    async def _new_id(self, key: bytes) -> str:
        """A new file's id, from its upload's key and how many times that upload was made
        before (not from the count of files: then every id would depend on the uploads before)."""
        # (its own key: the server counts the upload's request under `key` itself)
        upload = hashlib.blake2b(b"file", key=key[:64], digest_size=32).digest()
        while True:
            made = ids.file_id(occurrence_key(upload, await self._made.take(upload)))
            # (a count past its bound starts over: never hand out an id the store holds)
            if not await self._files.has(made):
                return made

    async def _reserve(self, size: int) -> int:
        """Charge a new file of `size` bytes against the bounds: its number (the next `tick`),
        or the 400 when it would pass them. One atomic step, however many
        workers upload at once (never an optimistic retry: contention must not fail)."""
        number = await self._charges.add_within(size, size, self.capacity, self.max_bytes)
        if number is None:
            raise ApiError(
                400,
                f"mockai holds at most {self.capacity} files and {self.max_bytes} bytes of "
                "them per server (MOCKAI_FILE_BYTES); delete files (or reset the server) to "
                "upload more.",
                param="file",
                code="mockai_storage_full",
            )
        return number

    async def tick(self) -> int:
        """The next second of the clock files and batches share (the files' charges number
        their files by it: one counter, atomic whichever worker takes it)."""
        return await self._charges.next_serial()

    async def room(self) -> int:
        """The bytes a new file may still hold (a batch's output is kept within them): what the
        bound leaves, and no more than the shared state holds as one value."""
        _, charged = await self._charges.held()
        room = max(0, self.max_bytes - charged)
        largest = await self.backend.largest_record()
        return room if largest is None else min(room, largest)

    async def get(self, file_id: str) -> StoredFile:
        """A held file; the API's 404 otherwise."""
        stored = await self._files.get(file_id)
        if stored is None:
            raise codec.not_found(file_id)
        return stored

    async def data(self, file_id: str) -> bytes | None:
        """A held file's bytes (None if there is no such file)."""
        return await self._data.get(file_id)

    async def listed(self, purpose: str | None = None) -> list[StoredFile]:
        """Every held file (of one purpose), oldest first."""
        # (by `created_at`: workers adding files at once store them out of their order)
        every = sorted(await self._files.values(), key=lambda stored: stored.created_at)
        return [f for f in every if purpose is None or f.purpose == purpose]

    async def delete(self, file_id: str) -> StoredFile:
        """Forget a file; the API's 404 if there is none."""
        stored = await self.get(file_id)
        number = stored.created_at - self.created
        if self.kept is not None and await self.kept(file_id):
            # A batch in progress keeps its bytes: the charge stays, to go when it lets go.
            await self._orphans.put(file_id, number)
        else:
            # Its charge goes first, and alone (one step, given back once whoever else deletes
            # it): a delete cut short after it (the state gone) leaves the file held, uncharged,
            # until a retry deletes it; never its bytes charged for good with the file gone.
            await self._charges.pop(str(number))
        if await self._files.pop(file_id) is None:  # deleted meanwhile
            raise codec.not_found(file_id)
        await self._data.pop(file_id)
        await self._places.put(file_id, stored.created_at)
        return stored

    async def let_go(self, file_id: str) -> None:
        """A batch no longer keeps the bytes of `file_id`: if the file was deleted meanwhile, its
        charge goes once no other batch keeps them either."""
        number = await self._orphans.get(file_id)
        if number is None or (self.kept is not None and await self.kept(file_id)):
            return
        if await self._orphans.pop(file_id) is not None:
            await self._charges.pop(str(number))

    async def clear(self) -> None:
        """Forget every file (the server's reset)."""
        await self._files.clear()
        await self._data.clear()
        await self._charges.clear()
        await self._orphans.clear()
        await self._places.clear()
        await self._made.forget()

    # --- the /files routes --------------------------------------------------------------------

    async def answer(self, exchange: Exchange, key: bytes) -> Outgoing:
        """What the API answers to a /files request that no rule or recording answered."""
        parts = (exchange.route or "/files").strip("/").split("/")
        if len(parts) == 1:
            if exchange.method == "POST":
                return _json((await self._upload(exchange, key)).shown())
            return _json(await self._page(exchange.query))
        file_id = parts[1]
        if len(parts) == 3:
            stored = await self.get(file_id)
            data = await self.data(file_id)
            if data is None:  # deleted meanwhile
                raise codec.not_found(file_id)
            return Body(200, data, _content_type(stored.filename))
        if exchange.method == "DELETE":
            return _json(codec.deleted((await self.delete(file_id)).id))
        return _json((await self.get(file_id)).shown())

    async def _upload(self, exchange: Exchange, key: bytes) -> StoredFile:
        upload = exchange.uploads[0]
        expiry = exchange.body.get("expires_after")
        seconds = expiry.get("seconds") if isinstance(expiry, Mapping) else None
        return await self.add(
            upload.filename, str(exchange.body["purpose"]), upload.data, key, seconds
        )

    async def _page(self, query: Mapping[str, str]) -> dict[str, Any]:
        every = await self.listed()
        purpose = query.get("purpose")
        chosen = [stored for stored in every if purpose is None or stored.purpose == purpose]
        # A file's place is its `created_at` (one second per file, in upload order): an `after`
        # naming a file of another purpose, or one deleted, still names its place.
        after = query.get("after")
        elsewhere = None
        if after is not None:
            held = next((stored.created_at for stored in every if stored.id == after), None)
            elsewhere = held if held is not None else await self._places.get(after)
        return items.page(
            [stored.shown() for stored in chosen],
            query,
            default_limit=LIST_LIMIT,
            max_limit=LIST_LIMIT,
            places=[stored.created_at for stored in chosen],
            elsewhere=elsewhere,
        )


def _json(value: Any) -> Body:
    return Body(200, jsonbytes.dumps(value))


def _content_type(filename: str) -> str:
    # The API sends file contents as bytes whatever they hold.
    return "application/octet-stream"
