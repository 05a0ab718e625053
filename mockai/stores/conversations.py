"""Conversations: the Responses API's durable conversation objects (`/v1/conversations`).

A conversation holds items (messages, function calls and their outputs). A Responses request
naming it with `conversation` is answered with its items as the context, and the request's input
and the answer's output are then appended to it — how the OpenAI Agents SDK's conversation
sessions and other stateful clients work. mockai keeps conversations per server, bounded like the
journal (1,000 conversations and, in-process, `store_bytes` of their items and metadata as JSON:
past either bound, the one changed least recently goes; a change that would take one past the
whole budget alone is refused, and it stays as it was), with the API's routes: create,
retrieve, update (metadata), delete, and the items (list, add, retrieve, delete).

Ids are reproducible, as responses' are: a conversation's derives from its creation request
(the seed and the exact body) and how many times that same request was made before, so a server
with the same seed gives the same creations the same ids whatever other conversations were made
meanwhile, and repeats get new ones; item ids derive from the conversation's (a Responses
request's input items from the response's, as its `input_items` lists them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mockai.api import common
from mockai.api.fieldrules import missing, type_error
from mockai.api.responses import check_unique_ids, conversation_id, parse_items
from mockai.backend.base import Backend, Records
from mockai.backend.memory import MemoryBackend
from mockai.errors import ApiError
from mockai.pipeline import fingerprint
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.stores import items, kept
from mockai.stores.responses import response_of
from mockai.wire import ids
from mockai.wire.outgoing import Body, EventStream, Outgoing

DEFAULT_CAPACITY = 1000
MAX_ITEMS_PER_CALL = 20  # the API adds at most 20 items per call
# Why conversations are gone is remembered for this many times as many as the store keeps (a
# short reason each; the oldest are forgotten first, then such an id is unknown).
REMEMBERED = 10
# The reason every kept conversation is filed under, so that it holds once the store pushes it
# out (its records say nothing when they drop one); spelled out when the id is named again.
_PUSHED_OUT = "pushed out"
T = TypeVar("T")


@dataclass(slots=True)
class _Conversation:
    id: str
    created_at: int
    metadata: dict[str, str]
    items: list[dict[str, Any]] = field(default_factory=list)
    added: int = 0  # items ever added: numbers the ids of new ones
    # Its items' bytes as JSON, kept up to date as they come and go (not re-serialised on every
    # change): with its metadata, what it weighs against the store's byte budget.
    items_bytes: int = 0
    # Each item's place in the conversation (`added` when it came): a cursor naming an item
    # deleted since still names its place, kept for the last `_REMOVED_KEPT` deleted ones.
    places: list[int] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "conversation",
            "created_at": self.created_at,
            "metadata": self.metadata,
        }

    # (Each change weighs first and then changes: nothing is half done if weighing raised.)

    def add(
        self,
        new: list[dict[str, Any]],
        budget: int | None,
        param: str,
        output: list[Any] | None = None,
        sent: int = 0,
    ) -> list[dict[str, Any]]:
        """Append items as listed (`listed`: of `sent` items as sent), then a response's
        `output` items as they are (they carry their own ids); returns the items added. Past
        `budget` (the store's bytes, in-process) nothing is added: the 400 naming `param`."""
        output = output or []
        size = _bytes_of(new) + _bytes_of(output)
        if budget is not None:
            self.fits(size, budget, param)
        count = len(new) + len(output)
        self.places.extend(range(self.added, self.added + count))
        # (past every item sent, listed or not: the next ones' ids derive from the numbers after)
        self.added += max(count, sent)
        self.items.extend(new)
        self.items.extend(output)
        self.items_bytes += size
        return new

    def fits(self, size: int, budget: int, param: str) -> None:
        """The 400 naming `param` when `size` more bytes would take it past `budget`."""
        if _weight(self) + size > budget:
            raise _too_heavy(self.id, _weight(self) + size, budget, param)

    def listed(self, raw: Any) -> list[dict[str, Any]]:
        """Items a client adds (as sent) as listed, their ids derived from the conversation's."""
        return items.listed(raw, self.id.encode(), start=self.added)

    def remove(self, position: int) -> None:
        """Delete the item at `position` (its id is not reused; its place is remembered)."""
        self.items_bytes -= _bytes_of(self.items[position : position + 1])
        item_id = self.items[position].get("id")
        if isinstance(item_id, str):
            self.removed[item_id] = self.places[position]
            while len(self.removed) > _REMOVED_KEPT:
                del self.removed[next(iter(self.removed))]
        del self.items[position]
        del self.places[position]


# Deleted items whose place a conversation remembers (for cursors that name them): a client
# deleting the items of each page it reads names the last of at most 100 (the largest page).
_REMOVED_KEPT = items.MAX_LIMIT


def _too_heavy(conversation_id: str, weight: int, budget: int, param: str) -> ApiError:
    return ApiError(
        400,
        f"mockai: conversation '{conversation_id}' would weigh {weight} bytes, more than the "
        f"{budget} bytes its store holds (MOCKAI_STORE_BYTES); it was left as it was. Raise "
        "MOCKAI_STORE_BYTES, or start a new conversation.",
        param=param,
        code="mockai_storage_full",
    )


def _bytes_of(held: list[Any]) -> int:
    return sum(map(_size, held))


_size = kept.size_of


# What a conversation weighs beyond its items and metadata (its id, numbers, the objects; its
# places, a number per item and at most `_REMOVED_KEPT` deleted ids, are within what its items'
# weight errs heavy by).
_OVERHEAD = 256


def _weight(conversation: _Conversation) -> int:
    """What a conversation counts against the store's byte budget."""
    return conversation.items_bytes + _size(conversation.metadata) + _OVERHEAD


def _conversation_json(conversation: _Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "created_at": conversation.created_at,
        "metadata": conversation.metadata,
        "items": conversation.items,
        "added": conversation.added,
        "items_bytes": conversation.items_bytes,
        "places": conversation.places,
        "removed": conversation.removed,
    }


def _conversation_from_json(data: Any) -> _Conversation:
    held = list(data["items"])
    return _Conversation(
        id=str(data["id"]),
        created_at=int(data["created_at"]),
        metadata=dict(data["metadata"]),
        items=held,
        added=int(data["added"]),
        # (weighed again only for a record written before the weight was kept)
        items_bytes=int(data["items_bytes"]) if "items_bytes" in data else _bytes_of(held),
        # (numbered by position for a record written before places were kept)
        places=[int(n) for n in data.get("places", range(len(held)))],
        removed={str(k): int(v) for k, v in (data.get("removed") or {}).items()},
    )


_CODEC = kept.JsonCodec(_conversation_json, _conversation_from_json)
_REASON = kept.JsonCodec(str, str)


class ConversationStore:
    """The conversations of one server, by id, bounded in count and in bytes (the one changed
    least recently goes first; a shared backend bounds them by count)."""

    def __init__(
        self,
        seed: int = 0,
        created: int = 0,
        capacity: int = DEFAULT_CAPACITY,
        backend: Backend | None = None,
        max_bytes: int = kept.DEFAULT_MAX_BYTES,
    ) -> None:
        self.seed = seed
        self.created = created
        backend = backend or MemoryBackend()
        # In-process the conversations share `max_bytes`: one that would pass it alone is
        # refused growing (Redis holds a shared backend's by count).
        self.budget = None if getattr(backend, "shared", False) else max_bytes
        self._conversations: Records[_Conversation] = backend.records(
            "conversations", _CODEC, capacity, max_bytes
        )
        # Why ids are no longer (or may soon not be) held: deleted, or kept (pushed out, once
        # the store has dropped it). A Responses request naming one is the API's 404, saying
        # why, as a retrieval is: answering it as a new conversation (as one never seen is)
        # would lose its context without a word. Bounded by count: REMEMBERED times the store's.
        self._gone: Records[str] = backend.records(
            "conversations:gone", _REASON, capacity * REMEMBERED
        )
        # How many times each creation request was made (shared by workers, like the server's
        # own count of requests): a conversation's id derives from it.
        self._made = backend.occurrences()

    # --- the /conversations routes ----------------------------------------------------------

    async def create(self, body: Any) -> dict[str, Any]:
        """`POST /conversations`: `{items?, metadata?}` (no body: an empty conversation)."""
        body = common.require_object({} if body is None else body)
        metadata = common.parse_metadata(body.get("metadata"))
        raw = _new_items(body.get("items"), "items")
        conversation = _Conversation(await self._new_id(body), self.created, metadata)
        conversation.add(conversation.listed(raw), self.budget, "items", sent=len(raw))
        # Filed before it is kept: it says why once the store pushes it out.
        await self._gone.put(conversation.id, _PUSHED_OUT)
        await self._conversations.put(conversation.id, conversation, _weight(conversation))
        return conversation.resource()

    async def _new_id(self, body: Mapping[str, Any]) -> str:
        """A new conversation's id, from its creation request and how many times that exact
        request was made before, as a response's: a serial number would make every later id, and
        so every answer in those conversations (their ids are part of the requests' keys), depend
        on how many conversations were made first."""
        # ("conversations" keeps these keys apart from any request's in the shared count)
        exact = fingerprint.request_keys(self.seed, "conversations", body)[1]
        while True:
            key = fingerprint.occurrence_key(exact, await self._made.take(exact))
            made = "conv_" + ids.hexid(key, "conv", 48)
            # (a count past its bound starts over: never hand out an id the store holds)
            if not await self._conversations.has(made):
                return made

    async def retrieve(self, conversation_id: str) -> dict[str, Any]:
        return (await self._find(conversation_id)).resource()

    async def update(self, conversation_id: str, body: Any) -> dict[str, Any]:
        """`POST /conversations/{id}`: `{metadata}` replaces the metadata."""
        metadata = common.metadata_update(body)

        def change(conversation: _Conversation) -> dict[str, Any]:
            if self.budget is not None:
                grown = _size(metadata) - _size(conversation.metadata)
                conversation.fits(grown, self.budget, "metadata")
            conversation.metadata = metadata
            return conversation.resource()

        return await self._change(conversation_id, change)

    async def delete(self, conversation_id: str) -> dict[str, Any]:
        if await self._conversations.pop(conversation_id) is None:
            raise await self._not_found(conversation_id)
        await self._gone.put(conversation_id, "deleted")
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    async def list_items(self, conversation_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        conversation = await self._find(conversation_id)
        after = query.get("after")
        return items.page(
            conversation.items,
            query,
            places=conversation.places,
            elsewhere=None if after is None else conversation.removed.get(after),
        )

    async def add_items(self, conversation_id: str, body: Any) -> dict[str, Any]:
        """`POST /conversations/{id}/items`: `{items}`; answers with the added items."""
        await self._find(conversation_id)  # an unknown id is a 404 before the body's problems
        body = common.require_object({} if body is None else body)
        if "items" not in body:
            raise missing("items")
        new = _new_items(body["items"], "items")

        def add(conversation: _Conversation) -> list[dict[str, Any]]:
            check_unique_ids(new, conversation.items, "items")
            return conversation.add(conversation.listed(new), self.budget, "items", sent=len(new))

        added = await self._change(conversation_id, add)
        return {
            "object": "list",
            "data": added,
            "first_id": added[0]["id"] if added else None,
            "last_id": added[-1]["id"] if added else None,
            "has_more": False,
        }

    async def item(self, conversation_id: str, item_id: str) -> dict[str, Any]:
        conversation = await self._find(conversation_id)
        return conversation.items[self._position(conversation, item_id)]

    async def delete_item(self, conversation_id: str, item_id: str) -> dict[str, Any]:
        """Remove one item; the API answers with the conversation."""

        def change(conversation: _Conversation) -> dict[str, Any]:
            conversation.remove(self._position(conversation, item_id))
            return conversation.resource()

        return await self._change(conversation_id, change)

    # --- while serving POST /responses ------------------------------------------------------

    async def held_items(self, conversation_id: str) -> list[dict[str, Any]] | None:
        """A conversation's items, the context of a request that names it (None if unknown)."""
        conversation = await self._conversations.get(conversation_id)
        return None if conversation is None else conversation.items

    async def check(self, exchange: Exchange, *, strict: bool, storing: bool = True) -> None:
        """Refuse a `conversation` the API would not find: a deleted one (or one pushed out of the
        store) always, saying so, an unknown one only when `strict` (tests may name
        conversations from elsewhere); and, `storing` (a response, not a count of its tokens),
        input that would not fit in it."""
        if exchange.endpoint is not Endpoint.RESPONSES:
            return
        wanted = conversation_id(exchange.body)
        if wanted is None:
            return
        held = await self._conversations.get(wanted)
        if held is not None:
            if self.budget is not None and storing:
                # Input that alone would take it past the budget: refused before it is answered
                # (`extend` refuses what the answer's output adds past it).
                sent = items.listed(exchange.body.get("input"), b"")
                held.fits(_bytes_of(sent), self.budget, "input")
            return
        reason = await self._gone.get(wanted)
        if strict or reason is not None:
            raise self._missing(wanted, reason, param="conversation")

    async def extend(self, exchange: Exchange, answer: Outgoing, *, output: bool = True) -> None:
        """After a response in a conversation: append its input, then its output items (not
        `output`: a background run's, appended when it is done: `add_output`)."""
        if exchange.endpoint is not Endpoint.RESPONSES or "conversation" not in exchange.body:
            return
        wanted = conversation_id(exchange.body)
        if wanted is None or answer.status != 200:
            return
        if not isinstance(answer, Body | EventStream):
            return  # relayed from an upstream: the upstream keeps its conversations
        response = response_of(answer) or {}
        said = response.get("output")
        if not isinstance(said, list):
            return  # not a Response (a replayed recording may hold anything): nothing to add
        # The input as the response's `input_items` lists it (the ids derive from the
        # response's): one item, one id, wherever it is listed.
        sent = items.listed(exchange.body.get("input"), str(response.get("id", "")).encode())

        def append(conversation: _Conversation) -> None:
            conversation.add(sent, self.budget, "input", said if output else None)

        try:
            await self._conversations.update(wanted, append, _weight)
        except KeyError:
            return  # deleted (or evicted) meanwhile: nothing to extend

    async def add_output(self, response: Mapping[str, Any]) -> None:
        """A finished background run's output items, appended to its conversation."""
        conversation = response.get("conversation")
        wanted = conversation.get("id") if isinstance(conversation, Mapping) else None
        said = response.get("output")
        if not isinstance(wanted, str) or not isinstance(said, list):
            return
        try:
            # (no budget: the run was answered; past it, it stays, and others go first)
            await self._conversations.update(
                wanted, lambda held: held.add([], None, "input", said), _weight
            )
        except KeyError:
            return  # deleted (or evicted) meanwhile: nothing to extend

    async def clear(self) -> None:
        """Forget everything (the server's reset)."""
        await self._conversations.clear()
        await self._gone.clear()
        await self._made.forget()

    async def _find(self, conversation_id: str) -> _Conversation:
        conversation = await self._conversations.get(conversation_id)
        if conversation is None:
            raise await self._not_found(conversation_id)
        return conversation

    async def _change(self, conversation_id: str, change: Callable[[_Conversation], T]) -> T:
        try:
            return await self._conversations.update(conversation_id, change, _weight)
        except KeyError:
            raise await self._not_found(conversation_id) from None

    async def _not_found(self, conversation_id: str) -> ApiError:
        """The API's 404, saying why when this server held the id and no longer does."""
        return self._missing(conversation_id, await self._gone.get(conversation_id))

    def _missing(
        self, conversation_id: str, reason: str | None, param: str | None = None
    ) -> ApiError:
        why = ""
        if reason is not None:
            if reason == _PUSHED_OUT:
                held = f" within {self.budget} bytes (MOCKAI_STORE_BYTES)" if self.budget else ""
                reason = (
                    "pushed out of the store: it keeps the "
                    f"{self._conversations.capacity} conversations changed last{held}"
                )
            why = f" (mockai: it was {reason}.)"
        return ApiError(
            404, f"Conversation with id '{conversation_id}' not found.{why}", param=param
        )

    @staticmethod
    def _position(conversation: _Conversation, item_id: str) -> int:
        for position, item in enumerate(conversation.items):
            if item.get("id") == item_id:
                return position
        raise ApiError(
            404, f"Item with id '{item_id}' not found in conversation '{conversation.id}'."
        )


def _new_items(raw: Any, param: str) -> list[Any]:
    """Items a client adds: a list of up to 20 valid input items."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise type_error(param, ("array",), raw)
    if len(raw) > MAX_ITEMS_PER_CALL:
        raise ApiError(
            400,
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{MAX_ITEMS_PER_CALL}, but got an array with length {len(raw)} instead.",
            param=param,
            code="array_above_max_length",
        )
    parse_items(raw, param)  # each item as the Responses API validates input items
    check_unique_ids(raw, (), param)
    return raw
