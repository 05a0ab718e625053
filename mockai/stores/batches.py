"""Batches this server runs: created from an uploaded JSONL file, advanced by being looked at.

Like background responses, a batch moves one status per retrieval, not by time, so a client's
polling loop runs and ends without sleeping: `validating` -> `in_progress` (or `failed`, with the
input file's errors) -> `finalizing` (every line has been answered) -> `completed` (the output
and error files are written). `cancel` makes it `cancelling`, and the next retrieval
`cancelled` (once the lines being answered are, with their answers in the files). Listing, and
a HEAD, show batches as they stand, without moving them. Their times come from the clock the
file store keeps (`FileStore.tick`), one second a step.

The lines are answered when the batch leaves `in_progress`, one after another in file order, by
the pipeline (`mockai.pipeline.batch`): rules, cassettes and chaos answer each as they would
answer the same request sent alone, and a sequence rule's steps go to the lines in order.

The state lives in the server's state backend (in this process, or Redis with `--state`): the
batch records, their lines and results, shared by every worker; see `BatchStore`. The worker
answering a batch's lines holds them on a lease it renews while it answers: one that died
(`kill -9`, a replica gone) lets the next poll past the lease, on any worker, answer them anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from mockai.api import batches as codec
from mockai.backend.base import Records, RecordsFactory
from mockai.backend.memory import MemoryBackend
from mockai.errors import ApiError
from mockai.pipeline.exchange import Exchange
from mockai.pipeline.workload import off_loop
from mockai.stores import items, kept
from mockai.stores.files import FileStore, RawBytes
from mockai.wire import ids, jsonbytes
from mockai.wire.outgoing import Body, Outgoing
from mockai.wire.usage import top_level_usage

log = logging.getLogger("mockai")

DEFAULT_CAPACITY = 1000
DEFAULT_LEASE = 10.0  # seconds (MOCKAI_BATCH_LEASE)
_TURN = 0.005  # seconds of answering lines before other requests get the loop
TERMINAL = ("completed", "failed", "cancelled", "expired")
# What a batch may be in while it keeps its input file's bytes (its lines, until answered).
_KEEPING = ("validating", "in_progress", "cancelling")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class LineAnswer:
    """How the pipeline answered one line: its status, its body (JSON text), its request id."""

    status: int
    body: bytes
    request_id: str


# Answers one line of a batch: (line, batch id, the creating request's headers, the provider
# profile it came through) -> answer.
Runner = Callable[[codec.Line, str, Mapping[str, str], str], Awaitable[LineAnswer]]


@dataclass(slots=True)
class BatchRecord:
    """One batch and where it stands (its lines and their answers are kept apart, so that a
    poll reads only this)."""

    id: str
    endpoint: str
    input_file_id: str
    created_at: int
    metadata: Mapping[str, str] | None
    output_expiry: int | None
    headers: Mapping[str, str]  # the creating request's (lines see its Host, not its key)
    key: bytes
    # The provider profile the batch was created through: its lines are answered as that
    # provider answers them alone (kept with the record: with --state, another worker runs them).
    profile: str = "openai"
    window: str = "24h"  # its completion_window (Groq's run from 24h to 7d)
    status: str = "validating"
    times: dict[str, int | None] = field(default_factory=dict)
    errors: list[dict[str, Any]] | None = None
    counts: tuple[int, int, int] = (0, 0, 0)
    output_file_id: str | None = None
    error_file_id: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    # The process holding the batch (its store's token): answering its lines, or writing its
    # output files; None when none does.
    runner: str | None = None
    # When `runner` last said it still holds it (Unix seconds, the workers' clocks): past the
    # lease, another process may take it over.
    beat: float | None = None
    answered: bool = False  # every line has its answer (the output waits in the results)

    def shown(self) -> dict[str, Any]:
        """The Batch object as it stands."""
        return codec.batch_object(
            codec.Shown(
                id=self.id,
                endpoint=self.endpoint,
                input_file_id=self.input_file_id,
                status=self.status,
                created_at=self.created_at,
                completion_window=self.window,
                expires_at=self.created_at
                + (codec.window_seconds(self.window, self.profile) or codec.WINDOW),
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


@dataclass(frozen=True, slots=True)
class Results:
    """A batch's answered lines, as the output file (status 200) and error file will hold them."""

    good: bytes
    bad: bytes


def _record_json(record: BatchRecord) -> dict[str, Any]:
    return {**asdict(record), "key": record.key.hex(), "counts": list(record.counts)}


def _record_from_json(data: dict[str, Any]) -> BatchRecord:
    return BatchRecord(
        **{**data, "key": bytes.fromhex(data["key"]), "counts": tuple(data["counts"])}
    )


class _ResultsBytes:
    """A batch's results as one value of a shared backend: the output's length, the output,
    the errors (raw: base64 inside JSON weighed 4/3 of them, and more to encode)."""

    def encode(self, record: Results) -> bytes:
        return len(record.good).to_bytes(8, "big") + record.good + record.bad

    def decode(self, data: bytes) -> Results:
        size = int.from_bytes(data[:8], "big")
        return Results(data[8 : 8 + size], data[8 + size :])


_RESULTS_HEAD = 8  # the bytes `_ResultsBytes` adds to the results


_BATCHES = kept.JsonCodec(_record_json, _record_from_json)
_PLACE = kept.JsonCodec(int, int)
_RESULTS = _ResultsBytes()


class BatchStore:
    """Batches by id, oldest first (bounded: the oldest ended batch goes first; with none
    ended, a new batch is refused).

    The records live in the server's state backend (shared by every worker with `--state`):
    any worker moves a batch on when polled. The lines are answered by one process (the first
    to move the batch past `in_progress` claims it); its polls wait for them, other workers'
    polls show the batch as it stands until they are all answered. That process renews its claim
    every third of `lease` seconds while it answers; a claim not renewed for `lease` (its process
    died) is taken over by the next poll, whichever worker takes it.
    """

    def __init__(
        self,
        files: FileStore,
        created: int,
        capacity: int = DEFAULT_CAPACITY,
        backend: RecordsFactory | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        backend = backend or MemoryBackend()
        self.files = files
        files.kept = self._keeps_bytes_of  # (a file deleted under a batch stays charged)
        self.created = created
        self.capacity = capacity
        self.lease = lease
        self.runner: Runner | None = None  # set by the server once its pipeline exists
        # `_make_room` keeps `capacity`; the records' own bound, which drops the oldest whatever
        # its status, is twice that, so workers creating batches at once (each checking before
        # the others' are in) pass `capacity` rather than forget a running batch.
        held = 2 * capacity
        self._batches: Records[BatchRecord] = backend.records("batches", _BATCHES, held)
        # A batch's input file's bytes, once valid (parsed again line by line as it is answered:
        # in this process they are the file store's own bytes, shared by every batch of a file).
        self._lines: Records[bytes] = backend.records("batch-lines", RawBytes(), held)
        self._results: Records[Results] = backend.records("batch-results", _RESULTS, held)
        # Forgotten batches' places in the list (their `created_at`): a cursor naming one still
        # names its place (a client paging while new batches make room), for the last
        # `capacity` forgotten (as the file store keeps deleted files' places).
        self._places: Records[int] = backend.records("batch-places", _PLACE, capacity)
        self._token = secrets.token_hex(8)  # this process, as a batch's runner
        self._running: dict[str, asyncio.Future[None]] = {}  # lines this process is answering
        # Output files this process is writing (one writer however many retrievals come).
        self._writing: dict[str, asyncio.Future[BatchRecord]] = {}
        # Counts this process's resets: lines being answered stop at the next one (see
        # `_answer_lines`), rather than journaling and counting against the scenario's rules
        # after it.
        self._resets = 0

    # --- the state ------------------------------------------------------------------------------

    async def create(self, exchange: Exchange, key: bytes) -> BatchRecord:
        """A new batch, `validating`; the 400 when the store is full of running batches."""
        await self._make_room()  # (first: a refused batch takes no serial, no id, no time)
        number = await self._batches.next_serial()
        digest = hashlib.blake2b(number.to_bytes(8, "big"), key=key[:64]).digest()
        body = exchange.body
        expiry = body.get("output_expires_after")
        record = BatchRecord(
            id=ids.batch_id(digest),
            endpoint=str(body["endpoint"]),
            input_file_id=str(body["input_file_id"]),
            created_at=await self._now(),
            metadata=body.get("metadata"),
            output_expiry=expiry.get("seconds") if isinstance(expiry, dict) else None,
            headers={k: v for k, v in exchange.headers.items() if k.lower() == "host"},
            key=digest,
            profile=exchange.provider,
            window=str(body["completion_window"]),
        )
        await self._batches.put(record.id, record)
        return record

    async def get(self, batch_id: str) -> BatchRecord:
        """A held batch; the API's 404 otherwise."""
        record = await self._batches.get(batch_id)
        if record is None:
            raise codec.not_found(batch_id)
        return record

    async def listed(self) -> list[BatchRecord]:
        """Every held batch, oldest first."""
        return await self._batches.values()

    async def clear(self) -> None:
        """Forget every batch (the server's reset)."""
        self._resets += 1  # (first: a line being answered stops before its next one)
        for records in (self._batches, self._lines, self._results, self._places):
            await records.clear()
        self._running.clear()

    async def _make_room(self) -> None:
        """Before a new batch: at capacity, forget the oldest batch in a final state; the 400
        when none is (a batch is never forgotten before it ends)."""
        held = await self._batches.values()
        if len(held) < self.capacity:
            return
        victim = next((b for b in held if b.status in TERMINAL), None)
        if victim is None:  # a batch still running keeps its lines and answers until it ends
            raise ApiError(
                400,
                f"mockai holds at most {self.capacity} batches per server, and none of them "
                "has ended (completed, failed, cancelled or expired): retrieve or cancel "
                "batches until they end (or reset the server) to create more.",
                code="mockai_storage_full",
            )
        await self._places.put(victim.id, victim.created_at)
        await self._batches.pop(victim.id)
        await self._lines.pop(victim.id)
        await self.files.let_go(victim.input_file_id)
        await self._results.pop(victim.id)
        self._running.pop(victim.id, None)

    async def _change(self, batch_id: str, change: Callable[[BatchRecord], R]) -> R:
        try:
            return await self._batches.update(batch_id, change)
        except KeyError:
            raise codec.not_found(batch_id) from None

    async def _now(self) -> int:
        """The time of a batch's step: the configured creation time plus the clock files and
        batches share (one second a step), so a batch is never older than its input file, and
        its output file falls between its finalizing and its completion."""
        return self.created + await self.files.tick()

    # --- the /batches routes --------------------------------------------------------------------

    async def answer(self, exchange: Exchange, key: bytes) -> Outgoing:
        """What the API answers to a /batches request that no rule or recording answered."""
        parts = (exchange.route or "/batches").strip("/").split("/")
        if len(parts) == 1:
            if exchange.method == "POST":
                return _json((await self.create(exchange, key)).shown())
            return _json(await self._page(exchange.query))
        record = await self.get(parts[1])
        if len(parts) == 3:
            return _json(await self.cancel(record))
        if exchange.head:  # a probe (`curl -I`): the batch as it stands, not run by being looked at
            return _json(record.shown())
        return _json((await self.advance(record)).shown())

    async def _page(self, query: Mapping[str, str]) -> dict[str, Any]:
        """A page of the list, newest first. A batch's place is its `created_at` (one clock
        second each): an `after` naming a batch forgotten since still names its place."""
        held = await self.listed()
        after = query.get("after")
        elsewhere = None
        if after is not None and not any(record.id == after for record in held):
            elsewhere = await self._places.get(after)
        return items.page(
            [record.shown() for record in held],
            {"order": "desc", **query},
            places=[record.created_at for record in held],
            elsewhere=elsewhere,
        )

    async def cancel(self, record: BatchRecord) -> dict[str, Any]:
        """`cancelling` now, `cancelled` at the next retrieval; the API's 409 once finished."""
        if not _cancellable(record):
            raise _not_cancellable(record)  # (before the clock moves: a refusal is no step)
        now = await self._now()

        def change(record: BatchRecord) -> dict[str, Any]:
            if not _cancellable(record):  # (cancelled by another worker meanwhile)
                raise _not_cancellable(record)
            record.status = "cancelling"
            record.times["cancelling_at"] = now
            return record.shown()

        return await self._change(record.id, change)

    async def advance(self, record: BatchRecord) -> BatchRecord:
        """Move a batch one status on (what a retrieval does); returns it as it then stands.

        Each move is one atomic change of the record that holds only if the batch still stands
        where this retrieval found it, so workers polling at once move it once."""
        status = record.status
        if status == "validating":
            return await self._validate(record)
        if status == "in_progress":
            if not record.answered:
                await self._run(record)
                record = await self.get(record.id)  # (as the lines left it)
            if record.status != "in_progress" or not record.answered:
                # Nothing to move: another process is answering the lines, or the batch was
                # cancelled meanwhile. The shared clock moves only with a step.
                if record.status != "in_progress":
                    self._running.pop(record.id, None)
                return record
            now = await self._now()

            def finalizing(record: BatchRecord) -> BatchRecord:
                if record.status == "in_progress" and record.answered:
                    record.status = "finalizing"
                    record.times["finalizing_at"] = now
                return record

            moved = await self._change(record.id, finalizing)
            if moved.status != "in_progress":
                self._running.pop(record.id, None)
            return moved
        if status == "finalizing" or (status == "cancelling" and record.answered):
            return await self._finish(
                record, "completed" if status == "finalizing" else "cancelled"
            )
        if status == "cancelling":
            return await self._cancelled(record)
        return record

    async def _cancelled(self, record: BatchRecord) -> BatchRecord:
        """A batch cancelled before its lines were all answered: one whose lines this process
        is answering ends with what they answered (the spec's "partial results ... in the
        output file", request_counts as the files hold them), not with them left behind; one
        another worker answers shows as it stands until that worker has them (it ends with
        them then); one never claimed, or whose answering here failed, ends now, with the
        results kept (none, unless it failed after keeping them)."""
        running = self._running.get(record.id)
        if running is not None:
            answered = await _ran(running, record.id)
            self._running.pop(record.id, None)
            if answered or await self._results.has(record.id):
                return await self._finish(record, "cancelled")
            # Answering them failed (the state unreachable meanwhile): the batch ends now, with
            # no results, rather than the failure raised again at every retrieval.
        elif record.runner is not None and not self._lapsed(record, time.time()):
            return record  # (another worker answers them, and is alive: it ends the batch)
        # Never claimed, or its worker died answering them (its lease lapsed): it ends now, with
        # no results; the claim is let go, so that worker, were it only stalled, stops.
        moved = await self._move(record, "cancelling", "cancelled", release=True)
        if moved.status == "cancelled":
            await self._lines.pop(record.id)
            await self.files.let_go(record.input_file_id)
            await self._results.pop(record.id)
        return moved

    async def _move(
        self, record: BatchRecord, was: str, to: str, release: bool = False
    ) -> BatchRecord:
        now = await self._now()

        def move(record: BatchRecord) -> BatchRecord:
            if record.status == was:
                record.status = to
                record.times[f"{to}_at"] = now
                if release:
                    record.runner = None
            return record

        return await self._change(record.id, move)

    async def _validate(self, record: BatchRecord) -> BatchRecord:
        stored = await self.files.data(record.input_file_id)
        purpose = None
        if stored is not None:
            with contextlib.suppress(ApiError):  # (deleted meanwhile: as if never there)
                purpose = (await self.files.get(record.input_file_id)).purpose
        lines: list[codec.Line] = []
        if stored is None or purpose is None:
            errors = [_file_error(f"No such File object: {record.input_file_id}")]
        elif purpose != "batch":
            errors = [_file_error("The input file must be uploaded with purpose 'batch'.")]
        else:
            # Off the loop: a 60 MB file of 50,000 lines takes seconds to read, during which the
            # server had answered nothing (health checks included).
            lines, errors = await off_loop(codec.read_lines, stored, record.endpoint)
        models = [line.body.get("model") for line in lines if isinstance(line.body, dict)]
        model = next((m for m in models if isinstance(m, str)), None)
        if not errors:
            assert stored is not None
            await self._lines.put(record.id, stored)  # before any worker sees it in progress
        now = await self._now()

        def validated(record: BatchRecord) -> BatchRecord:
            if record.status != "validating":
                return record  # another worker's retrieval moved it first
            if errors:
                record.errors = errors
                record.status = "failed"
                record.times["failed_at"] = now
                return record
            record.counts = (len(lines), 0, 0)
            record.model = model
            record.status = "in_progress"
            record.times["in_progress_at"] = now
            return record

        try:
            moved = await self._change(record.id, validated)
        except ApiError:  # (forgotten while this read its lines, a reset: the bytes kept go too)
            await self._lines.pop(record.id)
            raise
        if moved.status == "failed":  # (its bytes are not kept)
            await self.files.let_go(record.input_file_id)
        elif moved.status == "cancelled" and not errors:
            # Cancelled, and ended by another retrieval, while this one read the lines: the
            # bytes it kept after that retrieval let them go are let go too.
            await self._lines.pop(record.id)
        return moved

    async def _keeps_bytes_of(self, file_id: str) -> bool:
        """Whether a batch keeps the bytes of file `file_id` (its lines, until it has answered
        them or ended)."""
        return any(
            batch.input_file_id == file_id and batch.status in _KEEPING and not batch.answered
            for batch in await self._batches.values()
        )

    async def _run(self, record: BatchRecord) -> None:
        """Answer every line (once, however many retrievals wait for it): this process claims
        the batch and answers, or waits for the answers it is already making; a batch another
        process answers is not waited for, unless its lease has lapsed: then this process takes
        the lines over, and answers them all (the other's answers went with it)."""
        running = self._running.get(record.id)
        if (
            running is not None
            and running.done()
            and (record.runner != self._token or _failed(running))
        ):
            # This process stopped answering them: another took them over (it had not renewed
            # its lease in time), and it may take them back should that one die too; or
            # answering them failed (the state unreachable for a while), which the poll that
            # waited for it was told: this one answers them again.
            self._running.pop(record.id, None)
            running = None
        if running is None:
            if not await self._claim(record.id, _unanswered, "answers them again"):
                return
            running = self._running.get(record.id)  # (another poll here claimed it meanwhile)
            if running is None:
                running = asyncio.ensure_future(self._answer_lines(record))
                self._running[record.id] = running
                keeper = asyncio.ensure_future(self._keep_lease(record.id))
                running.add_done_callback(lambda _: keeper.cancel())
        await asyncio.shield(running)

    async def _claim(
        self, batch_id: str, claimable: Callable[[BatchRecord], bool], then: str
    ) -> bool:
        """Claim a batch for this process (its lines to answer, or its results to write) if it
        is `claimable` and no other process holds it: none does, or the one that does has not
        renewed its lease for `lease` seconds (it died). True when this process holds it."""
        now = time.time()

        def claim(record: BatchRecord) -> bool:
            free = record.runner is None or self._lapsed(record, now)
            if free and claimable(record):
                if record.runner is not None and record.runner != self._token:
                    log.warning(
                        "batch %s: the worker holding it said nothing for %.1f s "
                        "(MOCKAI_BATCH_LEASE); this one %s",
                        record.id,
                        now - (record.beat or now),
                        then,
                    )
                record.runner = self._token
                record.beat = now
            return record.runner == self._token and claimable(record)

        return await self._change(batch_id, claim)

    def _lapsed(self, record: BatchRecord, now: float) -> bool:
        """Whether the process holding `record` has not renewed its claim for the lease (a
        record from before leases, with none, is lapsed)."""
        return record.beat is None or now - record.beat > self.lease

    async def _keep_lease(self, batch_id: str) -> None:
        """While this process holds a batch (answers its lines, writes its files): renew its
        claim every third of the lease (a task of its own: a line that takes long, a rule's
        latency, must not let it lapse)."""

        def renew(record: BatchRecord) -> bool:
            if record.runner != self._token:
                return False  # (taken over, or ended)
            record.beat = time.time()
            return True

        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                if not await self._batches.update(batch_id, renew):
                    return
            except KeyError:  # (forgotten: a reset)
                return
            except Exception as error:  # (the state unreachable: renewed at the next beat)
                log.debug("batch %s: its lease was not renewed (%s)", batch_id, error)

    async def _answer_lines(self, record: BatchRecord) -> None:
        """Answer the lines in order into the output and error files' bytes, within the room the
        file store has for them: the lines whose answers would not fit (a batch of thousands
        of embeddings) fail, in the error file, rather than the server holding gigabytes."""
        if self.runner is None:
            raise ApiError(500, "mockai: this server cannot run batches", type="server_error")
        resets = self._resets  # (a reset while the lines are measured stops them too)
        data = await self._lines.get(record.id) or b""
        room = await self.files.room()
        bound = f"the {self.files.max_bytes} bytes of files this server holds (MOCKAI_FILE_BYTES)"
        largest = await self.files.backend.largest_record()
        if largest is not None and largest - _RESULTS_HEAD < room:
            # The results are one value of the shared state, and so is each file.
            room = largest - _RESULTS_HEAD
            bound = f"the {largest} bytes Redis holds in one value (its proto-max-bulk-len)"
        message = (
            f"mockai could not keep this request's answer: the batch's output would pass {bound}."
            " Delete files, or raise the bound, and run the batch again."
        )

        def measured() -> tuple[list[tuple[int, str]], list[int]]:
            # Each line's number and custom_id, and the size of its error line should its answer
            # not fit (kept room for, for the lines still to come).
            named = [
                (line.number, line.custom_id) for line in codec.valid_lines(data, record.endpoint)
            ]
            return named, [
                len(self._unkept_line(record, message, *line)) for line in reversed(named)
            ]

        # Off the loop, as validation is: reading 50,000 lines (60 MB) takes seconds.
        named, sizes = await off_loop(measured)
        still_to_come = list(itertools.accumulate(sizes, initial=0))[::-1]
        # Written as they come, each answer once: a list joined at the end held them twice.
        good, bad = io.BytesIO(), io.BytesIO()
        completed = 0
        usage = codec.UsageTotals()
        turn_ends = time.monotonic() + _TURN
        for position, line in enumerate(codec.valid_lines(data, record.endpoint)):
            if time.monotonic() >= turn_ends:
                # A line answered in memory never waits, so the loop would serve nothing else
                # until every line was (50,000 lines: seconds): let it, every few ms of work.
                await asyncio.sleep(0)
                turn_ends = time.monotonic() + _TURN
                if not await self._still_answering(record, resets):
                    return
            if self._resets != resets:
                return
            answer = await self.runner(line, record.id, record.headers, record.profile)
            text = codec.output_line(
                ids.batch_request_id(record.key, line.number),
                line.custom_id,
                answer.status,
                answer.request_id,
                answer.body,
            )
            if good.tell() + bad.tell() + len(text) + still_to_come[position + 1] > room:
                bad.writelines(
                    self._unkept_line(record, message, *rest) for rest in named[position:]
                )
                log.warning(
                    "batch %s: %d of its %d lines failed (mockai_storage_full): their answers "
                    "would pass %s",
                    record.id,
                    len(named) - position,
                    len(named),
                    bound,
                )
                break
            if answer.status == 200:
                good.write(text)
                completed += 1
                usage.add(top_level_usage(answer.body))  # (not every float of it parsed)
            else:
                bad.write(text)
        if not await self._still_answering(record, resets):
            return
        await self._results.put(record.id, Results(good.getvalue(), bad.getvalue()))
        counts = (len(named), completed, len(named) - completed)

        def answered(record: BatchRecord) -> None:
            if record.runner != self._token:
                return  # (taken over since the last line: the results are the new runner's)
            record.answered = True
            record.counts = counts
            record.usage = usage.shown()
            record.runner = None  # (any process may now write the results, the first to claim)

        try:
            await self._batches.update(record.id, answered)
        except KeyError:  # (forgotten meanwhile, a reset: its results would be left behind)
            await self._results.pop(record.id)
        await self._lines.pop(record.id)
        await self.files.let_go(record.input_file_id)

    async def _still_answering(self, record: BatchRecord, resets: int) -> bool:
        """Whether the lines of `record` are still this process's to answer: no reset since
        (`resets`, here; with shared state, the record gone, or another one made under its id,
        after a reset on another worker). A batch forgotten by a reset stops before its next
        line: its lines were journaled and counted against the rules as they were answered,
        and a test resetting its server between tests saw them go on after it."""
        if self._resets != resets:
            return False
        held = await self._batches.get(record.id)
        return (
            held is not None and held.runner == self._token and held.created_at == record.created_at
        )

    def _unkept_line(self, record: BatchRecord, message: str, number: int, custom_id: str) -> bytes:
        """The error file's line for line `number` should its answer not fit in the file store
        (the first such line was answered, and journaled; the lines after it are not run)."""
        request_id = ids.batch_request_id(record.key, number)
        return codec.error_line(request_id, custom_id, "mockai_storage_full", message)

    async def _finish(self, record: BatchRecord, to: str) -> BatchRecord:
        """Write the output file (answers with status 200) and the error file (the others), and
        move the batch to `to`. One process writes them: the one that claims the batch, on a
        lease it renews while it writes; a retrieval elsewhere meanwhile shows the batch as it
        stands. The results are let go only once the batch has moved: a writer that dies before
        leaves them to the next claim, past its lease (it may leave a file it wrote unnamed)."""
        writing = self._writing.get(record.id)
        if writing is None:  # (else another retrieval here is writing them: its outcome is this)
            was = record.status

            def claimable(held: BatchRecord) -> bool:
                return held.status == was

            if not await self._claim(record.id, claimable, "writes its files"):
                return await self.get(record.id)
            writing = self._writing.get(record.id)  # (another retrieval here claimed it too)
            if writing is None:
                writing = asyncio.ensure_future(self._write_on_lease(record, to))
                self._writing[record.id] = writing
                writing.add_done_callback(lambda _: self._writing.pop(record.id, None))
        return await asyncio.shield(writing)

    async def _write_on_lease(self, record: BatchRecord, to: str) -> BatchRecord:
        keeper = asyncio.ensure_future(self._keep_lease(record.id))
        try:
            return await self._write_results(record, to)
        finally:
            keeper.cancel()

    async def _write_results(self, record: BatchRecord, to: str) -> BatchRecord:
        results = await self._results.get(record.id)
        if results is None:
            held = await self.get(record.id)
            if held.status != record.status:
                return held  # (written meanwhile: moved on)
            message = (
                "mockai lost this batch's answers before writing its output and error files "
                "(they are gone from the server's state: evicted, or lost with it). Run the "
                "batch again."
            )
            return await self._unkept(record, to, message, "mockai_results_lost")
        name = record.id
        output = error = None
        try:
            if results.good:
                output = await self.files.add(
                    f"{name}_output.jsonl",
                    "batch_output",
                    results.good,
                    record.key,
                    record.output_expiry,
                )
            if results.bad:
                error = await self.files.add(
                    f"{name}_error.jsonl",
                    "batch_output",
                    results.bad,
                    record.key,
                    record.output_expiry,
                )
        except BaseException as refused:
            if output is not None:  # (written again with the error file, or not at all)
                with contextlib.suppress(Exception):
                    await self.files.delete(output.id)
            if isinstance(refused, ApiError) and refused.code == "mockai_storage_full":
                size = len(results.good) + len(results.bad)
                message = (
                    f"mockai could not keep this batch's output and error files ({size} bytes): "
                    f"{refused.message} Run the batch again once there is room."
                )
                moved = await self._unkept(record, to, message, "mockai_storage_full")
                await self._results.pop(record.id)
                return moved
            raise  # (the state unreachable: the results stay, for the next retrieval)
        was = record.status
        now = await self._now()

        def finished(record: BatchRecord) -> BatchRecord:
            if record.status == was and record.runner == self._token:
                record.output_file_id = output.id if output is not None else None
                record.error_file_id = error.id if error is not None else None
                record.status = to
                record.times[f"{to}_at"] = now
            return record

        moved = await self._change(record.id, finished)
        ours = (
            moved.status == to
            and moved.output_file_id == (output.id if output is not None else None)
            and moved.error_file_id == (error.id if error is not None else None)
        )
        if ours:
            await self._results.pop(record.id)
        else:  # (another process wrote them meanwhile, past this one's lease: its files stand)
            for written in (output, error):
                if written is not None:
                    with contextlib.suppress(Exception):
                        await self.files.delete(written.id)
        return moved

    async def _unkept(self, record: BatchRecord, to: str, message: str, code: str) -> BatchRecord:
        """End a batch whose output and error files cannot be written (they do not fit what the
        file store holds now: it filled after the lines were answered, or its room was too
        small for even the error lines; or its answers were lost): `failed` (`cancelled` if it
        was cancelling) with `message` and `code` in its `errors`, rather than retrievals
        refused, or the batch finalizing, for good."""
        log.warning("batch %s: %s", record.id, message)
        was = record.status
        now = await self._now()

        def unkept(record: BatchRecord) -> BatchRecord:
            if record.status == was:
                record.status = "failed" if to == "completed" else to
                record.times[f"{record.status}_at"] = now
                record.errors = [{"code": code, "message": message, "param": None, "line": None}]
            return record

        return await self._change(record.id, unkept)


async def _ran(running: asyncio.Future[None], batch_id: str) -> bool:
    """Wait for this process's answering of a batch's lines: True once they are answered, False
    when it failed (logged here: the retrieval that waited for it was told, maybe not)."""
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        if not running.cancelled():
            raise  # (this retrieval was cancelled, not the answering)
        return False
    except Exception as error:
        log.warning("batch %s: answering its lines failed (%s); it ends cancelled", batch_id, error)
        return False
    return True


def _unanswered(record: BatchRecord) -> bool:
    return record.status == "in_progress" and not record.answered


def _failed(task: asyncio.Future[None]) -> bool:
    """Whether a finished task ended without answering (cancelled, or raised)."""
    return task.cancelled() or task.exception() is not None


def _cancellable(record: BatchRecord) -> bool:
    return record.status not in TERMINAL and record.status != "cancelling"


def _not_cancellable(record: BatchRecord) -> ApiError:
    # The API's 409 Conflict (the SDKs' ConflictError, which clients catch for a batch that
    # ended meanwhile), with no param.
    return ApiError(409, f"Cannot cancel a batch with status '{record.status}'.")


def _file_error(message: str) -> dict[str, Any]:
    return {"code": "invalid_file", "message": message, "param": "input_file_id", "line": None}


def _json(value: Any) -> Body:
    return Body(200, jsonbytes.dumps(value))
