"""Stored chat completions: what `store: true` keeps, and the routes that read it.

A chat request with `store: true` is kept by the API; `GET /chat/completions` lists the kept ones
(filtered by `model` and `metadata[key]=value`), `GET /chat/completions/{id}` retrieves one,
`POST` updates its metadata, `DELETE` forgets it, and `GET /chat/completions/{id}/messages` lists
the request's messages. mockai keeps the same per server, bounded like the journal, so evaluation
and distillation code that reads stored completions can be tested.

Like the Responses store, an answer is kept as sent and read only when asked for; a streamed one is
rebuilt from its chunks the way the SDKs accumulate them. A stream a fault cuts is kept as the
client got it: the chunks before the cut, so no finish reason (null) and no usage. An id pushed
out of the store, deleted, or too heavy to keep is a 404 that says why (as a response's), and a
list cursor naming it still names its place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mockai.api import common
from mockai.backend.base import Records, RecordsFactory
from mockai.backend.memory import MemoryBackend
from mockai.catalog import SNAPSHOTS
from mockai.delivery.deliver import as_delivered
from mockai.delivery.faults import NO_FAULTS, Faults
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.stores import items, kept
from mockai.wire.outgoing import Body, EventStream, Outgoing

DEFAULT_CAPACITY = 1000
# Ids that left the store (and their places) are remembered for this many times as many ids as
# it keeps: the oldest are forgotten first, then such an id is unknown.
REMEMBERED = 10
# Why a kept completion is gone, once the store has pushed it out (it says nothing when it drops
# one: every kept id is filed under this first); spelled out when the id is named again.
_PUSHED_OUT = "pushed out"
_COMPLETION_ID = re.compile(rb'"id"\s*:\s*"(chatcmpl-[^"\\]+)"')
_METADATA_KEY = re.compile(r"^metadata\[(.+)\]$")


@dataclass(slots=True)
class _Stored:
    answer: Body | EventStream  # as it was sent
    model: str
    messages: list[Any]  # the request's messages
    metadata: dict[str, str]
    settings: dict[str, Any]  # what the API echoes on a stored completion
    place: int = 0  # its place in the list (1, 2, 3, ... as kept): cursors name places
    logprobs: bool = False  # asked for: a streamed answer's choices then carry them, if empty


def _stored_json(stored: _Stored) -> dict[str, Any]:
    return {
        "answer": kept.answer_json(stored.answer),
        "model": stored.model,
        "messages": stored.messages,
        "metadata": stored.metadata,
        "settings": stored.settings,
        "place": stored.place,
        "logprobs": stored.logprobs,
    }


def _stored_from_json(data: Any) -> _Stored:
    return _Stored(
        answer=kept.answer_from_json(data["answer"]),
        model=str(data["model"]),
        messages=list(data["messages"]),
        metadata=dict(data["metadata"]),
        settings=dict(data["settings"]),
        place=int(data.get("place") or 0),
        logprobs=bool(data.get("logprobs")),
    )


_CODEC = kept.JsonCodec(_stored_json, _stored_from_json)


def _left_from_json(data: Any) -> tuple[int, str]:
    return int(data[0]), str(data[1])


_LEFT = kept.JsonCodec(list, _left_from_json)


class CompletionStore:
    """Chat completions answered with `store: true`, by id (bounded, oldest evicted first)."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        backend: RecordsFactory | None = None,
        max_bytes: int = kept.DEFAULT_MAX_BYTES,
    ) -> None:
        backend = backend or MemoryBackend()
        self._stored: Records[_Stored] = backend.records("completions", _CODEC, capacity, max_bytes)
        # In-process the completions share `max_bytes`: one heavier alone is not kept, and said
        # so (Redis holds a shared backend's by count).
        self.budget = None if getattr(backend, "shared", False) else max_bytes
        # Each completion that is (or was) kept: its place and why it would be gone (deleted,
        # too heavy, pushed out). A cursor naming one that left still names its place (a
        # client deleting while it pages, or paging past what the store dropped), and naming
        # it again says why it is gone. Bounded by count: REMEMBERED times the store's.
        self._left: Records[tuple[int, str]] = backend.records(
            "completions:left", _LEFT, capacity * REMEMBERED
        )

    async def keep(
        self, exchange: Exchange, outgoing: Outgoing, faults: Faults = NO_FAULTS
    ) -> None:
        """Remember a chat answer if its request asked for `store: true`, as the client gets it
        with `faults` (the stream faults that will be applied to it)."""
        if exchange.endpoint is not Endpoint.CHAT or exchange.body.get("store") is not True:
            return
        if outgoing.status != 200 or not isinstance(outgoing, Body | EventStream):
            return
        outgoing = as_delivered(outgoing, faults)
        completion_id = kept.answer_id(outgoing, _COMPLETION_ID)
        if completion_id is None:
            return
        body = exchange.body
        metadata = body.get("metadata")
        stored = _Stored(
            answer=outgoing,
            model=exchange.model,
            messages=list(body.get("messages") or ()),
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
            settings={
                key: body.get(key)
                for key in (
                    "temperature",
                    "top_p",
                    "seed",
                    "tools",
                    "tool_choice",
                    "response_format",
                )
            },
            logprobs=exchange.logprobs,
        )
        # The answer, its messages and the settings it echoes: `tools` and a `response_format`
        # schema may outweigh the rest (64 tools of 6 KB each weighed nothing, and a 1 MiB
        # budget held 60 such completions, 22 MiB of tools).
        weight = kept.weight(outgoing, 0, stored.messages) + kept.size_of(stored.settings)
        stored.place = await self._stored.next_serial()
        if self.budget is not None and weight > self.budget:
            # Not kept (it would have emptied the store, then gone itself): a plain 404 would
            # hide why it cannot be read back.
            reason = (
                f"not kept: it weighs {weight} bytes, more than the {self.budget} bytes the "
                "store holds (MOCKAI_STORE_BYTES)"
            )
            await self._left.put(completion_id, (stored.place, reason))
            return
        await self._left.put(completion_id, (stored.place, _PUSHED_OUT))
        await self._stored.put(completion_id, stored, weight)

    async def list(self, query: Mapping[str, str]) -> dict[str, Any]:
        """`GET /chat/completions`: the kept completions, oldest first unless `order=desc`."""
        model = query.get("model")
        wanted = {
            match.group(1): value
            for key, value in query.items()
            if (match := _METADATA_KEY.match(key)) is not None
        }
        every = await self._stored.values()
        chosen = [
            stored
            for stored in every
            # (as asked, or as its answer names it: an alias's snapshot, `catalog.SNAPSHOTS`)
            if (model is None or model in (stored.model, SNAPSHOTS.get(stored.model)))
            and all(stored.metadata.get(key) == value for key, value in wanted.items())
        ]
        # An `after` filtered out, deleted, or pushed out still names its place.
        after = query.get("after")
        elsewhere = None
        if after is not None:
            held = await self._stored.get(after)
            left = None if held is not None else await self._left.get(after)
            elsewhere = held.place if held is not None else left[0] if left else None
        # Paged by id, and only the page's completions shown: showing one parses its answer (a
        # streamed one's every chunk), and showing all 1,000 kept for each page of 20 held the
        # server ~0.5 s a page, answering nothing, and an auto-pager's 50 pages ~25 s.
        by_id = {kept.answer_id(stored.answer, _COMPLETION_ID): stored for stored in chosen}
        page = items.page(
            [{"id": completion_id} for completion_id in by_id],
            query,
            default_order="asc",
            places=[stored.place for stored in by_id.values()],
            elsewhere=elsewhere,
        )
        page["data"] = [self._shown(by_id[listed["id"]]) for listed in page["data"]]
        return page

    async def retrieve(self, completion_id: str) -> dict[str, Any]:
        return self._shown(await self._find(completion_id), completion_id)

    async def update(self, completion_id: str, body: Any) -> dict[str, Any]:
        """`POST /chat/completions/{id}`: `{metadata}` replaces the metadata."""
        metadata = common.metadata_update(body)

        def change(stored: _Stored) -> dict[str, Any]:
            stored.metadata = metadata
            return self._shown(stored, completion_id)

        try:
            return await self._stored.update(completion_id, change)
        except KeyError:
            raise await self._not_found(completion_id) from None

    async def delete(self, completion_id: str) -> dict[str, Any]:
        stored = await self._stored.pop(completion_id)
        if stored is None:
            raise await self._not_found(completion_id)
        await self._left.put(completion_id, (stored.place, "deleted"))
        return {"object": "chat.completion.deleted", "id": completion_id, "deleted": True}

    async def messages(self, completion_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """`GET /chat/completions/{id}/messages`: the request's messages, with ids."""
        stored = await self._find(completion_id)
        listed = [
            _listed_message(message, f"{completion_id}-{index}")
            for index, message in enumerate(stored.messages)
            if isinstance(message, dict)
        ]
        return items.page(listed, query, default_order="asc")

    async def clear(self) -> None:
        await self._stored.clear()
        await self._left.clear()

    async def _find(self, completion_id: str) -> _Stored:
        stored = await self._stored.get(completion_id)
        if stored is None:
            raise await self._not_found(completion_id)
        return stored

    async def _not_found(self, completion_id: str) -> ApiError:
        """The API's 404, saying why when this server kept the id and no longer has it."""
        left = await self._left.get(completion_id)
        why = ""
        if left is not None:
            reason = left[1]
            if reason == _PUSHED_OUT:
                held = f" within {self.budget} bytes (MOCKAI_STORE_BYTES)" if self.budget else ""
                reason = (
                    "pushed out of the store: it keeps the last "
                    f"{self._stored.capacity} chat completions{held}"
                )
            why = f" (mockai: it was {reason}.)"
        return ApiError(
            404, f"Chat completion with id '{completion_id}' not found.{why}", param=None
        )

    @staticmethod
    def _shown(stored: _Stored, completion_id: str | None = None) -> dict[str, Any]:
        completion = completion_of(stored.answer, logprobs=stored.logprobs)
        if completion is None:
            shown_id = completion_id or kept.answer_id(stored.answer, _COMPLETION_ID)
            raise ApiError(
                500,
                f"mockai: the answer stored as {shown_id} holds no chat completion to show",
                type="server_error",
            )
        return {**completion, **stored.settings, "metadata": stored.metadata}


def completion_of(answer: Body | EventStream, *, logprobs: bool = False) -> dict[str, Any] | None:
    """The chat completion an answer holds: its JSON body, or its chunks accumulated (`logprobs`:
    the request asked for them)."""
    if isinstance(answer, Body):
        return kept.body_object(answer)
    chunks = list(kept.event_objects(answer))
    return _accumulated(chunks, logprobs) if chunks else None


def _accumulated(chunks: list[dict[str, Any]], logprobs: bool = False) -> dict[str, Any]:
    """Chunks merged into the `chat.completion` they stream (text concatenated, tool calls merged
    by index, the finish reason and usage kept; with `logprobs` asked for, a choice no chunk
    carried any for has them empty, as unstreamed: a tool call's chunks carry none)."""
    first = chunks[0]
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            message = choices.setdefault(
                index,
                {
                    "index": index,
                    # (chunks carry no `annotations`: the answer's message has an empty list)
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": None,
                },
            )
            _merge_delta(message["message"], choice.get("delta") or {})
            _merge_logprobs(message, choice.get("logprobs"))
            if choice.get("finish_reason") is not None:
                message["finish_reason"] = choice["finish_reason"]
    for choice in choices.values() if logprobs else ():
        if choice["logprobs"] is None:  # (as chat's `_logprobs` for a choice of no tokens)
            refused = choice["message"]["refusal"] is not None
            choice["logprobs"] = {
                "content": None if refused else [],
                "refusal": [] if refused else None,
            }
    completion: dict[str, Any] = {
        "id": first.get("id"),
        "object": "chat.completion",
        "created": first.get("created"),
        "model": first.get("model"),
        "choices": [choices[index] for index in sorted(choices)],
    }
    if usage is not None:
        completion["usage"] = usage
    for key in ("service_tier", "system_fingerprint"):
        if key in first:
            completion[key] = first[key]
    return completion


def _merge_logprobs(choice: dict[str, Any], logprobs: Any) -> None:
    """A chunk's `logprobs` (`{content, refusal}`, one list of token entries set) appended."""
    if not isinstance(logprobs, Mapping):
        return
    merged = choice["logprobs"] or {"content": None, "refusal": None}
    for key in ("content", "refusal"):
        entries = logprobs.get(key)
        if isinstance(entries, list):
            merged[key] = (merged[key] or []) + entries
    choice["logprobs"] = merged


def _merge_delta(message: dict[str, Any], delta: Mapping[str, Any]) -> None:
    for key in ("content", "refusal"):
        piece = delta.get(key)
        if isinstance(piece, str):
            message[key] = (message.get(key) or "") + piece
    for fragment in delta.get("tool_calls") or ():
        calls = message.setdefault("tool_calls", [])
        index = fragment.get("index", 0)
        while len(calls) <= index:
            calls.append({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
        call = calls[index]
        call["id"] = fragment.get("id") or call["id"]
        function = fragment.get("function") or {}
        call["function"]["name"] += function.get("name") or ""
        call["function"]["arguments"] += function.get("arguments") or ""
    function_call = delta.get("function_call")
    if isinstance(function_call, dict):
        merged = message.setdefault("function_call", {"name": "", "arguments": ""})
        merged["name"] += function_call.get("name") or ""
        merged["arguments"] += function_call.get("arguments") or ""
    audio = delta.get("audio")
    if isinstance(audio, dict):
        _merge_audio(message, audio)


def _merge_audio(message: dict[str, Any], audio: Mapping[str, Any]) -> None:
    """An answer in audio's `delta.audio` piece: its id and expiry kept, its transcript and its
    base64 sound joined (the pieces cut the sound at multiples of 3 bytes), as the SDKs' stream
    helpers join them into `message.audio`. (A stored stream lost its audio.)"""
    merged = message.setdefault("audio", {"id": "", "data": "", "expires_at": 0, "transcript": ""})
    for key in ("id", "expires_at"):
        if audio.get(key) is not None:
            merged[key] = audio[key]
    for key in ("data", "transcript"):
        piece = audio.get(key)
        if isinstance(piece, str):
            merged[key] += piece


def _listed_message(message: Mapping[str, Any], message_id: str) -> dict[str, Any]:
    """A request message as the stored-messages list shows it (text content, parts aside)."""
    content = message.get("content")
    parts = content if isinstance(content, list) else None
    text = (
        "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)
        if isinstance(content, list)
        else content
    )
    shown = {**message, "id": message_id, "content": text, "content_parts": parts}
    shown.setdefault("refusal", None)
    return shown
