"""Batches this server runs: created from an uploaded JSONL file, advanced by being looked at.

Like background responses, a batch moves one status per retrieval, not by time, so a client's
polling loop runs and ends without sleeping: `validating` -> `in_progress` (or `failed`, with the
input file's errors) -> `finalizing` (every line has been answered) -> `completed` (the output
and error files are written). `cancel` makes it `cancelling`, and the next retrieval
`cancelled`. Listing shows batches as they stand, without moving them.

The lines are answered when the batch leaves `in_progress`, one after another in file order, by
the pipeline (`mockai.pipeline.batch`): rules, cassettes and chaos answer each as they would
answer the same request sent alone, and a sequence rule's steps go to the lines in order.

The state sits behind small methods (`create`, `get`, `listed`, and the record's fields) so that a
shared-state backend can hold it instead.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mockai.api import batches as codec
from mockai.errors import ApiError
from mockai.pipeline.exchange import Exchange
from mockai.stores import items
from mockai.stores.files import FileStore
from mockai.wire import ids, jsonbytes
from mockai.wire.outgoing import Body, Outgoing

DEFAULT_CAPACITY = 1000
TERMINAL = ("completed", "failed", "cancelled", "expired")


@dataclass(frozen=True, slots=True)
class LineAnswer:
    """How the pipeline answered one line: its status, its body (JSON text), its request id."""

    status: int
    body: bytes
    request_id: str


# Answers one line of a batch: (line, batch id, the creating request's headers) -> answer.
Runner = Callable[[codec.Line, str, Mapping[str, str]], Awaitable[LineAnswer]]


@dataclass(slots=True)
class BatchRecord:
    """One batch and where it stands."""

    id: str
    endpoint: str
    input_file_id: str
    created_at: int
    metadata: Mapping[str, str] | None
    output_expiry: int | None
    headers: Mapping[str, str]  # the creating request's (lines see its Host, not its key)
    key: bytes
    status: str = "validating"
    times: dict[str, int | None] = field(default_factory=dict)
    errors: list[dict[str, Any]] | None = None
    lines: list[codec.Line] = field(default_factory=list)
    answers: list[LineAnswer] = field(default_factory=list)
    counts: tuple[int, int, int] = (0, 0, 0)
    output_file_id: str | None = None
    error_file_id: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    running: asyncio.Future[None] | None = None  # the lines being answered

    def shown(self) -> dict[str, Any]:
        """The Batch object as it stands."""
        return codec.batch_object(
            codec.Shown(
                id=self.id,
                endpoint=self.endpoint,
                input_file_id=self.input_file_id,
                status=self.status,
                created_at=self.created_at,
                expires_at=self.created_at + codec.WINDOW,
                times=self.times,
                counts=self.counts,
                errors=self.errors,
                output_file_id=self.output_file_id,
                error_file_id=self.error_file_id,
                metadata=self.metadata,
                model=self.model,
                usage=self.usage,
            )
        )


class BatchStore:
    """Batches by id, oldest first (bounded: the oldest finished batch goes first)."""

    def __init__(self, files: FileStore, created: int, capacity: int = DEFAULT_CAPACITY) -> None:
        self.files = files
        self.created = created
        self.capacity = capacity
        self.runner: Runner | None = None  # set by the server once its pipeline exists
        self._batches: OrderedDict[str, BatchRecord] = OrderedDict()
        self._count = 0
        self._clock = 0  # seconds past a batch's creation, for its *_at times

    # --- the state ------------------------------------------------------------------------------

    def create(self, exchange: Exchange, key: bytes) -> BatchRecord:
        """A new batch, `validating`."""
        self._count += 1
        digest = hashlib.blake2b(self._count.to_bytes(8, "big"), key=key[:64]).digest()
        body = exchange.body
        expiry = body.get("output_expires_after")
        record = BatchRecord(
            id=ids.batch_id(digest),
            endpoint=str(body["endpoint"]),
            input_file_id=str(body["input_file_id"]),
            created_at=self.created + self._count,
            metadata=body.get("metadata"),
            output_expiry=expiry.get("seconds") if isinstance(expiry, dict) else None,
            headers={k: v for k, v in exchange.headers.items() if k.lower() == "host"},
            key=digest,
        )
        self._batches[record.id] = record
        self._evict()
        return record

    def get(self, batch_id: str) -> BatchRecord:
        """A held batch; the API's 404 otherwise."""
        record = self._batches.get(batch_id)
        if record is None:
            raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
        return record

    def listed(self) -> list[BatchRecord]:
        """Every held batch, oldest first."""
        return list(self._batches.values())

    def clear(self) -> None:
        """Forget every batch (the server's reset)."""
        self._batches.clear()
        self._count = 0

    def __len__(self) -> int:
        return len(self._batches)

    def _evict(self) -> None:
        while len(self._batches) > self.capacity:
            finished = next((bid for bid, b in self._batches.items() if b.status in TERMINAL), None)
            self._batches.pop(finished if finished is not None else next(iter(self._batches)))

    # --- the /batches routes --------------------------------------------------------------------

    async def answer(self, exchange: Exchange, key: bytes) -> Outgoing:
        """What the API answers to a /batches request that no rule or recording answered."""
        parts = (exchange.route or "/batches").strip("/").split("/")
        if len(parts) == 1:
            if exchange.method == "POST":
                return _json(self.create(exchange, key).shown())
            shown = [record.shown() for record in self.listed()]
            return _json(items.page(shown, {"order": "desc", **exchange.query}))
        record = self.get(parts[1])
        if len(parts) == 3:
            return _json(self.cancel(record))
        await self.advance(record)
        return _json(record.shown())

    def cancel(self, record: BatchRecord) -> dict[str, Any]:
        """`cancelling` now, `cancelled` at the next retrieval; the API's 400 once finished."""
        if record.status in TERMINAL or record.status == "cancelling":
            raise ApiError(
                400,
                f"Cannot cancel a batch with status '{record.status}'.",
                param="batch_id",
            )
        record.status = "cancelling"
        record.times["cancelling_at"] = self._at(record)
        return record.shown()

    async def advance(self, record: BatchRecord) -> None:
        """Move a batch one status on (what a retrieval does)."""
        if record.status == "validating":
            self._validate(record)
        elif record.status == "in_progress":
            await self._run(record)
            if record.status == "in_progress":
                record.status = "finalizing"
                record.times["finalizing_at"] = self._at(record)
        elif record.status == "finalizing":
            self._finish(record)
            record.status = "completed"
            record.times["completed_at"] = self._at(record)
        elif record.status == "cancelling":
            if record.answers:
                self._finish(record)
            record.status = "cancelled"
            record.times["cancelled_at"] = self._at(record)

    def _at(self, record: BatchRecord) -> int:
        self._clock += 1
        return record.created_at + self._clock

    def _validate(self, record: BatchRecord) -> None:
        stored = self.files.data(record.input_file_id)
        listed = {f.id: f for f in self.files.listed()}
        if stored is None:
            errors = [_file_error(f"No such File object: {record.input_file_id}")]
            lines: list[codec.Line] = []
        elif listed[record.input_file_id].purpose != "batch":
            errors = [_file_error("The input file must be uploaded with purpose 'batch'.")]
            lines = []
        else:
            lines, errors = codec.read_lines(stored, record.endpoint)
        if errors:
            record.errors = errors
            record.status = "failed"
            record.times["failed_at"] = self._at(record)
            return
        record.lines = lines
        record.counts = (len(lines), 0, 0)
        models = [line.body.get("model") for line in lines if isinstance(line.body, dict)]
        record.model = next((m for m in models if isinstance(m, str)), None)
        record.status = "in_progress"
        record.times["in_progress_at"] = self._at(record)

    async def _run(self, record: BatchRecord) -> None:
        """Answer every line (once, however many retrievals wait for it)."""
        if record.running is None:
            record.running = asyncio.ensure_future(self._answer_lines(record))
        await asyncio.shield(record.running)

    async def _answer_lines(self, record: BatchRecord) -> None:
        if self.runner is None:
            raise ApiError(500, "mockai: this server cannot run batches", type="server_error")
        answers = []
        for line in record.lines:
            answers.append(await self.runner(line, record.id, record.headers))
        record.answers = answers
        failed = sum(1 for answer in answers if answer.status != 200)
        record.counts = (len(answers), len(answers) - failed, failed)
        record.usage = codec.usage_of(jsonbytes.loads(a.body) for a in answers if a.status == 200)

    def _finish(self, record: BatchRecord) -> None:
        """Write the output file (answers with status 200) and the error file (the others)."""
        if record.output_file_id is not None or record.error_file_id is not None:
            return
        good: list[bytes] = []
        bad: list[bytes] = []
        for line, answer in zip(record.lines, record.answers, strict=False):
            text = codec.output_line(
                ids.batch_request_id(record.key, line.number),
                line.custom_id,
                answer.status,
                answer.request_id,
                answer.body,
            )
            (good if answer.status == 200 else bad).append(text)
        name = record.id
        if good:
            output = self.files.add(
                f"{name}_output.jsonl",
                "batch_output",
                b"".join(good),
                record.key,
                record.output_expiry,
            )
            record.output_file_id = output.id
        if bad:
            errors = self.files.add(
                f"{name}_error.jsonl",
                "batch_output",
                b"".join(bad),
                record.key,
                record.output_expiry,
            )
            record.error_file_id = errors.id


def _file_error(message: str) -> dict[str, Any]:
    return {"code": "invalid_file", "message": message, "param": "input_file_id", "line": None}


def _json(value: Any) -> Body:
    return Body(200, jsonbytes.dumps(value))
