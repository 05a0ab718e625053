"""The Responses API's server-side state: stored responses, their input items, background runs.

The API keeps every response unless the request said `store: false`: `GET /responses/{id}`
retrieves it, `DELETE` forgets it, `GET /responses/{id}/input_items` lists what it was asked,
`POST /responses/{id}/cancel` stops a background run, and `previous_response_id` must name a
response that is still stored. mockai keeps the same state, per server, so that code using these
calls can be tested — and so that the classic bug (chaining `previous_response_id` onto a
response created with `store: false`) fails here as it fails against the API.

Keeping costs one dict insert per answer: the answer is kept as sent (its bytes or SSE frames)
and parsed only when someone asks for it. The store is bounded like the journal; an id pushed
out of it, like one too heavy to keep at all (in-process, past the whole `store_bytes`), is
refused saying so (the 400 as `previous_response_id`, a 404 that says why on retrieval).

Background runs (`background: true`, not streamed) answer `queued`; each retrieval moves them one
step on (`in_progress`, then the finished response), so a client's polling loop runs and ends
deterministically, without timing. Cancelling one that has not finished makes it `cancelled`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from mockai.backend.base import Records, RecordsFactory
from mockai.backend.memory import MemoryBackend
from mockai.errors import ApiError
from mockai.pipeline.exchange import CalledTool, Endpoint, Exchange, Message
from mockai.profiles.places import PLACES
from mockai.stores import items, kept
from mockai.wire import jsonbytes
from mockai.wire.outgoing import Body, EventStream, Outgoing

DEFAULT_CAPACITY = 1000
# Why ids are gone is remembered for this many times as many ids as the store keeps (a short
# reason each; the oldest are forgotten first, then such an id is unknown).
REMEMBERED = 10
# The reason every kept id is filed under, so that it holds once the id is pushed out (the
# store's records say nothing when they drop one); spelled out when an id is named again.
_PUSHED_OUT = "pushed out"
_RESPONSE_ID = re.compile(rb'"id"\s*:\s*"(resp_[^"\\]+)"')
# The `obfuscation` field of a padded delta event: alphanumeric, and its JSON's last field
# (`api.obfuscation`), so no key of a client's (a `metadata` key) matches.
_PADDING = re.compile(rb',"obfuscation":"[0-9A-Za-z]*"(?=}\r?\n)')
_TERMINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")
T = TypeVar("T")


@dataclass(slots=True)
class _Stored:
    answer: Body | EventStream  # as it was sent
    input: Any  # the request's `input`, for input_items
    key: bytes  # derives the ids of input items that came without one
    background: bool
    conversation: tuple[Message, ...]  # what the request held, without its instructions
    stage: str = "queued"  # a background run's: queued, in_progress, completed or cancelled
    history: tuple[Message, ...] | None = None  # the conversation and the answer, once asked
    # The ids of the items of the responses before it (its `previous_response_id`'s chain), as
    # they stood when it was kept: one lookup, however long the chain, to refuse them re-sent.
    earlier: frozenset[str] = frozenset()
    ids: frozenset[str] | None = None  # `earlier` and its own items' ids, once asked


def _stored_json(stored: _Stored) -> dict[str, Any]:
    return {
        "answer": kept.answer_json(stored.answer),
        "input": stored.input,
        "key": stored.key.decode(),
        "background": stored.background,
        "conversation": [kept.message_json(message) for message in stored.conversation],
        "stage": stored.stage,
        "earlier": sorted(stored.earlier),
    }


def _stored_from_json(data: Any) -> _Stored:
    return _Stored(
        answer=kept.answer_from_json(data["answer"]),
        input=data["input"],
        key=str(data["key"]).encode(),
        background=bool(data["background"]),
        conversation=tuple(kept.message_from_json(m) for m in data["conversation"]),
        stage=str(data["stage"]),
        earlier=frozenset(data.get("earlier") or ()),  # (none in what older versions kept)
    )


_CODEC = kept.JsonCodec(_stored_json, _stored_from_json)
_REASON = kept.JsonCodec(str, str)


class ResponseStore:
    """Responses this server answered, by id (bounded, oldest evicted first)."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        backend: RecordsFactory | None = None,
        max_bytes: int = kept.DEFAULT_MAX_BYTES,
    ) -> None:
        backend = backend or MemoryBackend()
        self._stored: Records[_Stored] = backend.records("responses", _CODEC, capacity, max_bytes)
        # In-process the responses share `max_bytes`: one heavier alone is not kept, and said
        # so (Redis holds a shared backend's by count).
        self.budget = None if getattr(backend, "shared", False) else max_bytes
        # Why ids are not (or may soon not be) stored: answered with `store: false`, deleted,
        # too heavy to keep, or kept (pushed out, once the store has dropped it). Naming one
        # later is the API's 400/404, with why. Bounded by count: REMEMBERED times the store's.
        self._gone: Records[str] = backend.records("responses:gone", _REASON, capacity * REMEMBERED)

    @property
    def capacity(self) -> int:
        """How many answers are kept at most (the oldest go first)."""
        return self._stored.capacity

    @capacity.setter
    def capacity(self, capacity: int) -> None:
        self._stored.capacity = capacity
        self._gone.capacity = capacity * REMEMBERED

    # --- while serving POST /responses ------------------------------------------------------

    async def check_previous(self, exchange: Exchange, *, strict: bool) -> None:
        """Refuse a `previous_response_id` the API would not find.

        Ids this server answered but did not store (or deleted) are refused always; ids it never
        saw are accepted, since a test may chain onto a response from elsewhere, unless `strict`.
        """
        if exchange.endpoint is not Endpoint.RESPONSES:
            return
        previous = exchange.body.get("previous_response_id")
        if not isinstance(previous, str) or await self._stored.has(previous):
            return
        reason = await self._gone.get(previous)
        if reason is not None or strict:
            raise ApiError(
                400,
                f"Previous response with id '{previous}' not found." + self._why(reason),
                param="previous_response_id",
                code="previous_response_not_found",
            )

    async def keep(self, exchange: Exchange, outgoing: Outgoing) -> Outgoing:
        """Remember a Responses answer; returns what to send (`queued`, for a background run)."""
        if exchange.endpoint is not Endpoint.RESPONSES or outgoing.status != 200:
            return outgoing
        if not isinstance(outgoing, Body | EventStream):
            return outgoing  # relayed from an upstream: the upstream keeps it
        response_id = kept.answer_id(outgoing, _RESPONSE_ID)
        if response_id is None:
            return outgoing
        body = exchange.body
        place = PLACES.get(exchange.provider)
        if place is not None and not place.keeps_responses:
            return outgoing  # (a stateless provider's: nothing to retrieve, continue or poll)
        if body.get("store") is False:
            await self._gone.put(response_id, "answered with store: false")
            return outgoing
        background = bool(body.get("background"))
        # The codec puts `instructions` first; the API does not carry them over to a next turn.
        conversation = exchange.messages[1:] if body.get("instructions") else exchange.messages
        stored = _Stored(
            outgoing, body.get("input"), response_id.encode(), background, conversation
        )
        previous = body.get("previous_response_id")
        if isinstance(previous, str):
            stored.earlier = await self.item_ids(previous)
        if isinstance(outgoing, EventStream):
            # A streamed run is complete once its stream is made (its events show it queued,
            # then done): retrieving it shows it finished, and cancelling it is refused as
            # for any finished background run, not as if it had not been one.
            stored.stage = "completed"
        weight = kept.weight(outgoing, exchange.prompt_tokens, body.get("input"))
        # (the ids' strings are the earlier record's: its own set's table is ~32 bytes an id)
        weight += 32 * len(stored.earlier)
        if self.budget is not None and weight > self.budget:
            # Not kept (it would have emptied the store, then gone itself): an unknown id later
            # would hide why the next turn lost its context.
            await self._gone.put(
                response_id,
                f"not kept: it weighs {weight} bytes, more than the {self.budget} bytes the "
                "store holds (MOCKAI_STORE_BYTES)",
            )
            return outgoing
        # Filed before it is kept: it says why once the store pushes it out (one write, as the
        # `pop` of an earlier reason for this id was).
        await self._gone.put(response_id, _PUSHED_OUT)
        await self._stored.put(response_id, stored, weight)
        response = response_of(outgoing) if background and stored.stage == "queued" else None
        if response is None:
            return outgoing
        queued = _pending(response, "queued")
        return Body(200, jsonbytes.dumps(queued), outgoing.content_type, outgoing.headers)

    async def unkeep(self, answer: Outgoing) -> None:
        """Forget the answer `keep` just kept, which its client will not get (its conversation
        refused to hold it): its id is then one this server never answered."""
        if not isinstance(answer, Body | EventStream):
            return
        response_id = kept.answer_id(answer, _RESPONSE_ID)
        if response_id is not None:
            await self._stored.pop(response_id)
            await self._gone.pop(response_id)

    async def history(self, response_id: str) -> tuple[Message, ...] | None:
        """The conversation up to and including a stored response's answer (None if unknown)."""
        stored = await self._stored.get(response_id)
        if stored is None:
            return None
        if stored.background and stored.stage != "completed":
            # A run still queued or cancelled has said nothing anyone got: only its input joins
            # the next turn (its output does once a retrieval finds it done, as in a conversation).
            return stored.conversation
        if stored.history is None:  # (kept on the record in-process; a shared copy recomputes)
            response = response_of(stored.answer) or {}
            stored.history = stored.conversation + _answer_messages(response.get("output") or ())
        return stored.history

    async def item_ids(self, response_id: str) -> frozenset[str]:
        """The ids of every input and output item of a stored response's chain (none if it is
        not stored): sent again with `previous_response_id`, the API's 400 "Duplicate item"."""
        stored = await self._stored.get(response_id)
        if stored is None:
            return frozenset()
        if stored.ids is not None:
            return stored.ids
        own = {item["id"] for item in items.listed(stored.input, stored.key)}
        done = not stored.background or stored.stage == "completed"
        if done:  # (a run still queued or cancelled has shown no output: as in `history`)
            output = (response_of(stored.answer) or {}).get("output")
            for item in output if isinstance(output, list) else ():
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    own.add(item["id"])
        ids = stored.earlier | own
        if done:  # (kept on the record in-process; a shared copy recomputes)
            stored.ids = ids
        return ids

    # --- the /responses/{id} routes ---------------------------------------------------------

    async def retrieve(self, response_id: str) -> tuple[dict[str, Any], bool]:
        """The response as it stands now (a background run moves one step on per retrieval),
        and whether this retrieval finished its run (its output then joins its conversation)."""

        found = await self._find(response_id)
        if not found.background or found.stage == "completed":
            # A read (a run's end is final): no change of the record, which with shared state
            # raced every other retrieval of it (150 at once: a third got 503s).
            return _readable(response_id, found), False

        def advance(stored: _Stored) -> tuple[dict[str, Any], bool]:
            response = _readable(response_id, stored)
            if not stored.background or stored.stage == "completed":
                return response, False
            if stored.stage == "queued":
                stored.stage = "in_progress"
            elif stored.stage == "in_progress":
                stored.stage = "completed"
                return response, True
            return _pending(response, stored.stage), False

        return await self._change(response_id, advance)

    async def peek(self, response_id: str) -> dict[str, Any]:
        """The response as it stands, not moved on: what a HEAD shows (a probe, `curl -I`, is
        no poll: it must not finish a run, nor add its output to a conversation)."""
        stored = await self._find(response_id)
        response = _readable(response_id, stored)
        if not stored.background or stored.stage == "completed":
            return response
        return _pending(response, stored.stage)

    async def resume(
        self, response_id: str, starting_after: str | None, padded: bool = True
    ) -> EventStream:
        """`GET /responses/{id}?stream=true`: a streamed response's events again, from the one
        after `starting_after` (a sequence number), as a client resuming a stream asks; without
        the deltas' `obfuscation` padding when it says `include_obfuscation=false` (not
        `padded`), as the API's retrieval takes it."""
        stored = await self._find(response_id)
        if not isinstance(stored.answer, EventStream):
            raise ApiError(
                400,
                "This response cannot be streamed because it was not created with stream=true.",
                param="stream",
            )
        first = 0
        if starting_after is not None:
            try:
                first = int(starting_after) + 1
            except ValueError:
                raise ApiError(
                    400,
                    f"Invalid 'starting_after': expected an integer, got {starting_after!r}.",
                    param="starting_after",
                    code="invalid_type",
                ) from None
        frames = stored.answer.frames[max(first, 0) :]
        if not padded:
            frames = tuple(_PADDING.sub(b"", frame) for frame in frames)
        return EventStream(
            frames=frames,
            tail=min(stored.answer.tail, len(frames)),
            content_type=stored.answer.content_type,
        )

    async def delete(self, response_id: str) -> dict[str, Any]:
        """Forget a response; the API's deletion confirmation."""
        if await self._stored.pop(response_id) is None:
            raise await self._not_found(response_id)
        await self._gone.put(response_id, "deleted")
        return {"id": response_id, "object": "response", "deleted": True}

    async def cancel(self, response_id: str) -> dict[str, Any]:
        """Stop a background run that has not finished."""

        def stop(stored: _Stored) -> dict[str, Any]:
            if not stored.background:
                raise ApiError(400, "Only responses created with background=true can be cancelled.")
            if stored.stage == "completed":
                raise ApiError(400, "Cannot cancel a completed response.")
            stored.stage = "cancelled"
            return _pending(_readable(response_id, stored), "cancelled")

        return await self._change(response_id, stop)

    async def input_items(self, response_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """The input items of a response, paged like every list of the API (newest first)."""
        stored = await self._find(response_id)
        return items.page(items.listed(stored.input, stored.key), query)

    async def clear(self) -> None:
        """Forget everything (the server's reset)."""
        await self._stored.clear()
        await self._gone.clear()

    async def _find(self, response_id: str) -> _Stored:
        stored = await self._stored.get(response_id)
        if stored is None:
            raise await self._not_found(response_id)
        return stored

    async def _change(self, response_id: str, change: Callable[[_Stored], T]) -> T:
        try:
            return await self._stored.update(response_id, change)
        except KeyError:
            raise await self._not_found(response_id) from None

    async def _not_found(self, response_id: str) -> ApiError:
        """The API's 404, saying why when this server answered the id and did not keep it."""
        reason = await self._gone.get(response_id)
        return ApiError(404, f"Response with id '{response_id}' not found." + self._why(reason))

    def _why(self, reason: str | None) -> str:
        """mockai's note on a gone id's error ("" for an id this server never answered)."""
        if reason is None:
            return ""
        if reason == _PUSHED_OUT:
            held = f" within {self.budget} bytes (MOCKAI_STORE_BYTES)" if self.budget else ""
            reason = f"pushed out of the store: it keeps the last {self.capacity} responses{held}"
        return f" (mockai: it was {reason}.)"


def _readable(response_id: str, stored: _Stored) -> dict[str, Any]:
    response = response_of(stored.answer)
    if response is None:
        raise ApiError(
            500,
            f"mockai: the answer stored as {response_id} holds no Response object to show",
            type="server_error",
        )
    return response


def response_of(answer: Body | EventStream) -> dict[str, Any] | None:
    """The Response object of an answer: the JSON body, or the stream's terminal event's; None
    when there is none (a replayed recording may hold anything).

    A stream that ends before its terminal event (cut by a fault, or by an in-band error event)
    shows a `failed` response, with the error event's error (else a `server_error`) and the
    output the client received: each item as far as its events went, `incomplete` if its
    `output_item.done` never came. `in_progress` would be what the client last saw, but nothing
    would ever finish it (a polling loop would never end), and the spec's `incomplete` reasons
    (`max_output_tokens`, `content_filter`) are not what happened.
    """
    if isinstance(answer, Body):
        return kept.body_object(answer)
    last: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
    output = _Output()
    for event in kept.event_objects(answer):
        if isinstance(event.get("response"), dict):
            last = event["response"]  # created, in_progress, then a terminal event
            if event.get("type") in _TERMINAL_EVENTS:
                return last
        elif failure is None:
            failure = _stream_error(event)
            if failure is None:
                output.add(event)
    if last is None:
        return None
    return {**_pending(last, "failed"), "output": output.items(), "error": failure or _CUT}


_CUT = {"code": "server_error", "message": "The stream ended before the response was complete."}

# Delta events: (whether the delta extends the item or its content part, the field it extends).
_DELTAS = {
    "response.output_text.delta": ("part", "text"),
    "response.refusal.delta": ("part", "refusal"),
    "response.function_call_arguments.delta": ("item", "arguments"),
    "response.custom_tool_call_input.delta": ("item", "input"),
}


class _Output:
    """A stream's output items, built from its events as the SDKs' stream helpers build them."""

    def __init__(self) -> None:
        self._items: dict[int, dict[str, Any]] = {}
        self._done: set[int] = set()

    def add(self, event: dict[str, Any]) -> None:
        kind, index = event.get("type"), event.get("output_index")
        if not isinstance(index, int):
            return
        if kind in ("response.output_item.added", "response.output_item.done"):
            if isinstance(event.get("item"), dict):
                self._items[index] = event["item"]  # (parsed for this call alone: ours to change)
                if kind == "response.output_item.done":
                    self._done.add(index)
            return
        item = self._items.get(index)
        if item is None:
            return  # an event for an item never added: the SDK helper refuses it too
        if str(kind).startswith("response.reasoning_summary_"):
            _add_summary(item, event)
            return
        content = item.get("content")
        parts = content if isinstance(content, list) else []
        where = event.get("content_index")
        if kind in ("response.content_part.added", "response.content_part.done"):
            part = event.get("part")
            if isinstance(part, dict) and isinstance(where, int) and 0 <= where <= len(parts):
                parts[where : where + 1] = [part]
                item["content"] = parts
            return
        extends = _DELTAS.get(str(kind))
        delta = event.get("delta")
        if extends is None or not isinstance(delta, str):
            return  # (a `.done` event repeats what the deltas built)
        target, field = extends
        if target == "part":
            if not isinstance(where, int) or not 0 <= where < len(parts):
                return
            item = parts[where]
        if isinstance(item, dict):
            item[field] = str(item.get(field) or "") + delta

    def items(self) -> list[dict[str, Any]]:
        """The items, in order; those not done are `incomplete` (the stream ended inside them)."""
        return [
            item if index in self._done else {**item, "status": "incomplete"}
            for index, item in sorted(self._items.items())
        ]


def _add_summary(item: dict[str, Any], event: dict[str, Any]) -> None:
    """A reasoning item's summary as far as its events went: a part added (or done) at its
    `summary_index`, and the text deltas appended to it (a stream cut inside the summary keeps
    the text its client got)."""
    summary = item.get("summary")
    parts = summary if isinstance(summary, list) else []
    at, kind = event.get("summary_index"), event.get("type")
    if not isinstance(at, int):
        return
    if kind in ("response.reasoning_summary_part.added", "response.reasoning_summary_part.done"):
        part = event.get("part")
        if isinstance(part, dict) and 0 <= at <= len(parts):
            parts[at : at + 1] = [part]
            item["summary"] = parts
    elif kind == "response.reasoning_summary_text.delta":
        delta = event.get("delta")
        if isinstance(delta, str) and 0 <= at < len(parts) and isinstance(parts[at], dict):
            parts[at]["text"] = str(parts[at].get("text") or "") + delta


def _stream_error(event: dict[str, Any]) -> dict[str, Any] | None:
    """The Response `error` an in-band error event stands for: the Responses `error` event, or
    the chat-shaped `{"error": {...}}` a fault puts in a replayed stream; None for other events."""
    if event.get("type") == "error":
        error: Any = event
    elif "type" not in event:
        error = event.get("error")
    else:
        return None
    if not isinstance(error, dict):
        return None
    code, message = error.get("code"), error.get("message")
    return {
        # (the spec's ResponseError: a code from its enum and a message, both required)
        "code": code if isinstance(code, str) else "server_error",
        "message": message if isinstance(message, str) else "The server had an error.",
    }


def _answer_messages(output: Any) -> tuple[Message, ...]:
    """A response's output items as the assistant turn of a conversation (one message)."""
    texts: list[str] = []
    calls: list[CalledTool] = []
    for item in output:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            texts.extend(
                str(part.get("text", ""))
                for part in item.get("content") or ()
                if isinstance(part, dict) and part.get("type") == "output_text"
            )
        elif item.get("type") in ("function_call", "custom_tool_call"):
            # (a custom call's `input` stands for its arguments, as when a client sends one
            # back: `api/responses._custom_call_item`)
            arguments = item.get("arguments" if item["type"] == "function_call" else "input", "")
            calls.append(
                CalledTool(
                    id=str(item.get("call_id", "")),
                    name=str(item.get("name", "")),
                    arguments=str(arguments),
                )
            )
    if not texts and not calls:
        return ()
    return (Message(role="assistant", text="".join(texts), tool_calls=tuple(calls)),)


def _pending(response: dict[str, Any], status: str) -> dict[str, Any]:
    """The response as a run that has not finished (or was cancelled, or failed) shows it.

    No `usage` yet: the API sends null, the spec's `usage` is not nullable, and a missing field
    satisfies both (as in the stream's opening events).
    """
    return {
        **{key: value for key, value in response.items() if key != "usage"},
        "status": status,
        "output": [],
        "completed_at": None,
        "incomplete_details": None,
    }
