"""The lines of a batch, answered through the pipeline like requests sent on their own.

Each line goes through `run.answer` (parse, faults, rules, cassettes, the upstream, the
generator, render, the stores) and is journaled like a request, with `batch` naming its batch
and the line's `custom_id` in an `x-mockai-custom-id` header, so a rule can script one line
(`match: {headers: {x-mockai-custom-id: ...}}`) and a test can assert on what answered it.

What cannot happen to a line is not done to it: nothing is delayed (latency, pacing), rate-limit
budgets are not charged (the Batch API has its own queue limits), and a connection fault (a
reset, a hang, a body dropped or stalled halfway: `disconnect_after`, `stall_after`,
`disconnect`) leaves the line failed with a 500, as a line the API could not complete. Named
errors (a chaos 429, a rule's error) are the line's answer, and land in the batch's error file.
The line's journal entry lists its faults as a request's does.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Mapping

from mockai import profiles
from mockai.api import batches as batch_codec
from mockai.api.base import Codec
from mockai.backend import StateUnavailable
from mockai.delivery.faults import NO_FAULTS
from mockai.errors import ApiError
from mockai.pipeline.journal import JournalEntry, redact_headers
from mockai.pipeline.run import Turn, answer, parse_context
from mockai.profiles.base import Profile
from mockai.server.state import ServerState
from mockai.stores.batches import LineAnswer, Runner
from mockai.wire import ids, jsonbytes
from mockai.wire.outgoing import Body, EventStream, Relay

log = logging.getLogger("mockai")

# A batch's `endpoint` (and each line's `url`) -> the endpoint that answers it.
ENDPOINTS = batch_codec.ENDPOINTS


def runner(state: ServerState) -> Runner:
    """The function that answers a line of a batch on this server."""

    async def run_line(
        line: batch_codec.Line, batch_id: str, headers: Mapping[str, str], provider: str
    ) -> LineAnswer:
        codec = state.codecs[ENDPOINTS[batch_codec.versioned(line.url)]]
        # (a name this version has no profile for: a record another version kept in Redis)
        profile = profiles.PROFILES.get(provider, state.profile)
        line_headers = {**headers, "x-mockai-custom-id": line.custom_id}
        entry = JournalEntry(
            seq=state.journal.next_seq(),
            request_id=ids.batch_line_request_id(batch_id, line.number),
            method="POST",
            path=line.url,
            received_at=time.time(),
            arrived=time.monotonic(),
            headers=redact_headers(line_headers),
            kept_body=line.body,  # (kept as its JSON bytes: the journal weighs those)
            endpoint=codec.endpoint.value,
            batch=batch_id,
        )
        state.journal.add(entry)
        shared = state.backend.shared  # (every worker's journal shows the line too)
        if shared:
            await _journaled(state.journal_view.publish(entry))
        status, body = await _answer(state, codec, line, line_headers, entry, profile)
        entry.status = status
        entry.duration_ms = (time.monotonic() - entry.arrived) * 1000
        state.journal.completed(entry)  # its answer's bytes count against the budget
        if shared:
            await _journaled(state.journal_view.complete(entry))
        return LineAnswer(status, body, entry.request_id)

    return run_line


async def _journaled(update: Awaitable[None]) -> None:
    """A shared journal update that must not fail the line when the shared state is away."""
    with contextlib.suppress(StateUnavailable):
        await update


async def _answer(
    state: ServerState,
    codec: Codec,
    line: batch_codec.Line,
    headers: Mapping[str, str],
    entry: JournalEntry,
    profile: Profile,
) -> tuple[int, bytes]:
    """The line's status and its answer's body as JSON text (kept as bytes: a batch of large
    answers, thousands of embeddings, must not be held as Python objects), as `profile`'s
    provider answers the same request alone (its fields, its checks, its error envelope)."""
    turn = Turn(budgets=False)
    refused: Body | None = None  # the error answered (a rule's, chaos's 429, the endpoint's)
    try:
        if isinstance(line.body, dict) and line.body.get("stream"):
            raise ApiError(
                400,
                "Streaming is not supported in the Batch API: remove 'stream' from the request.",
                param="stream",
            )
        context = parse_context(state, headers, profile)
        outgoing = await answer(state, codec, line.body, context, entry, turn, profile)
    except ApiError as error:
        error = profile.errors.adapt(error)
        entry.error = error.body()["error"]
        outgoing = refused = profile.errors.render(error)
    except Exception:
        log.exception("mockai failed while answering line %d of a batch", line.number)
        failure = ApiError(500, "mockai internal error (see the server log)", type="server_error")
        entry.error = failure.body()["error"]
        return 500, jsonbytes.dumps(failure.body())
    plan = turn.plan
    # The faults as they happen to this answer, journaled as for a request sent alone; one that
    # leaves it without a whole answer (sent alone, a connection error) fails the line.
    faults = plan.faults.for_answer(outgoing) if plan is not None else NO_FAULTS
    entry.faults = faults.names()
    if faults.no_response or faults.cuts_body:
        failure = ApiError(
            500,
            "The server had an error while processing your request (mockai: the injected "
            f"fault {', '.join(entry.faults)} left this line without an answer).",
            type="server_error",
        )
        entry.error = failure.body()["error"]
        return 500, jsonbytes.dumps(failure.body())
    if refused is not None:
        entry.response = refused
        return refused.status, refused.body
    if isinstance(outgoing, Relay):  # a line forwarded to an upstream: read it whole
        data = b"".join([chunk async for chunk in outgoing.chunks])
        if outgoing.finish is not None:
            await outgoing.finish()
        outgoing = Body(outgoing.status, data, outgoing.content_type, outgoing.headers)
    entry.response = outgoing
    if isinstance(outgoing, Body) and plan is not None and plan.recorded is None:
        # mockai's codecs wrote it (orjson: compact, one line): nothing to check. Parsing it
        # was a third of a batch of embeddings' time.
        return outgoing.status, outgoing.body
    if isinstance(outgoing, EventStream):  # (refused above; a recording may still be one)
        text = b"".join(outgoing.frames).decode("utf-8", "replace")
        return outgoing.status, jsonbytes.dumps(text)
    try:
        parsed = jsonbytes.loads(outgoing.body)
    except ValueError:  # not JSON (a recorded gateway page): the body as a JSON string
        return outgoing.status, jsonbytes.dumps(outgoing.body.decode("utf-8", "replace"))
    if b"\n" in outgoing.body or b"\r" in outgoing.body:
        # A recorded answer, pretty-printed as the API sends it: one line of JSONL needs it
        # compact.
        return outgoing.status, jsonbytes.dumps(parsed)
    return outgoing.status, outgoing.body
