"""What the stores keep, and how they read it back.

The stores (stored responses, chat completions, conversations) keep answers *as sent* — a JSON
body's bytes or a stream's SSE frames — and parse them only when someone asks, so that keeping
costs the hot path a dict insert. They are bounded like the journal, in entries and in bytes:
the oldest entry goes first (a `Shelf`).
"""

from __future__ import annotations

import base64
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from mockai.pipeline.exchange import CalledTool, Message
from mockai.wire import jsonbytes
from mockai.wire.events import event_data
from mockai.wire.outgoing import Body, EventStream, held_bytes

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


# Bytes of answers each store keeps (the oldest go first past it).
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


class Shelf(Generic[K, V]):
    """Kept answers by key, oldest first: at most `capacity` of them and `max_bytes` of their
    weight (what `put` was told each weighs); the oldest go first past either bound."""

    def __init__(self, capacity: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def put(self, key: K, value: V, weight: int) -> None:
        """Add or refresh `key` as the newest entry; the oldest others go past either bound.
        A new entry heavier than the whole budget is not kept (and evicts nothing: it would
        have emptied the shelf, then gone itself). An entry refreshed (changed) stays, whatever
        it now weighs: dropping the one just changed lost what a client was adding to (a
        store that must hold its budget refuses the change before making it)."""
        refreshed = key in self._entries
        self.pop(key)
        if weight > self.max_bytes and not refreshed:
            return
        self._entries[key] = (value, weight)
        self.bytes += weight
        # (the newest, last, never goes for the bytes: only a capacity of 0 holds nothing)
        while self._entries and (
            len(self._entries) > self.capacity
            or (len(self._entries) > 1 and self.bytes > self.max_bytes)
        ):
            _, (_, gone) = self._entries.popitem(last=False)
            self.bytes -= gone

    def get(self, key: K) -> V | None:
        held = self._entries.get(key)
        return None if held is None else held[0]

    def __getitem__(self, key: K) -> V:
        return self._entries[key][0]

    def pop(self, key: K) -> V | None:
        """Remove `key`; its value, or None if it was not kept."""
        held = self._entries.pop(key, None)
        if held is None:
            return None
        self.bytes -= held[1]
        return held[0]

    def items(self) -> Iterator[tuple[K, V]]:
        """(key, value), oldest first."""
        return ((key, held[0]) for key, held in self._entries.items())

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def weight(answer: Body | EventStream, prompt_tokens: int, request: Any = None) -> int:
    """What a kept answer weighs: its bytes (plus each frame's object, for a stream), the
    request's parts it keeps as sent (`request`: a Responses `input`, chat `messages`) by what
    their objects take (`size_of`), and what it keeps parsed from them by their tokens (~4
    bytes each). Tokens alone weighed an image part (a megabyte of base64) as the ~100 tokens
    it costs: the stores' byte budgets then held hundreds of megabytes of pictures."""
    return held_bytes(answer) + size_of(request) + 4 * prompt_tokens


def size_of(value: Any) -> int:
    """What holding `value` (parsed JSON) costs, about: its bytes as JSON plus its objects,
    counted off that JSON (0 for None). Its JSON alone weighed a request of 30,000 small text
    parts (810 KB) as a tenth of the 8.9 MB its objects take: 20 of them held 239 MiB."""
    if value is None:
        return 0
    try:
        text: bytes | str = jsonbytes.dumps(value)
    except UnicodeEncodeError:  # a lone surrogate (the standard library's parser lets one in)
        text = jsonbytes.dumps_str(value)
    return _objects_weight(text)


# Python's objects for parsed JSON, measured on CPython 3.11 (tracemalloc): a dict ~64 bytes
# and each member ~32 more, a list ~56, a string ~50 beyond its text (two quotes), an element
# ~32 (its slot and a number's object). Counted off the JSON's punctuation (a quoted `{` or `,`
# counts too: the weight errs heavy), it is at or above what the objects take: 1x for one long
# text, 1.1-1.6x for most shapes (300,000 empty objects: 24x their JSON), 2-4.6x for objects of
# many small members, or of `null`s and `true`s (shared objects in Python).
_OBJECT, _MEMBER, _ARRAY, _QUOTE, _ELEMENT = 64, 32, 56, 28, 32


def _objects_weight(text: bytes | str) -> int:
    if isinstance(text, str):
        return _objects_weight(text.encode("utf-8", "surrogatepass"))
    return (
        len(text)
        + _OBJECT * text.count(b"{")
        + _MEMBER * text.count(b":")
        + _ARRAY * text.count(b"[")
        + _QUOTE * text.count(b'"')
        + _ELEMENT * text.count(b",")
    )


def answer_id(answer: Body | EventStream, pattern: re.Pattern[bytes]) -> str | None:
    """The id an answer carries, read off its first bytes (the body, or the stream's first
    event) with `pattern`'s group 1, without parsing it."""
    head = answer.body if isinstance(answer, Body) else (answer.frames or (b"",))[0]
    found = pattern.search(head)
    return found.group(1).decode("ascii", "replace") if found else None


def body_object(answer: Body) -> dict[str, Any] | None:
    """A JSON answer's object (None if it is not one: a replayed recording may hold anything)."""
    try:
        parsed = jsonbytes.loads(answer.body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def event_objects(answer: EventStream) -> Iterator[dict[str, Any]]:
    """The JSON objects a stream's events carry, in order (`[DONE]` and broken events skipped)."""
    for frame in answer.frames:
        data = event_data(frame)
        if data is None or not data.startswith("{"):
            continue
        try:
            event = json.loads(data)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


# --- records as JSON, for shared state backends ---------------------------------------------


class JsonCodec(Generic[V]):
    """A RecordCodec from a pair of functions to and from JSON-friendly values."""

    def __init__(self, to_json: Callable[[V], Any], from_json: Callable[[Any], V]) -> None:
        self._to_json = to_json
        self._from_json = from_json

    def encode(self, record: V) -> bytes:
        return jsonbytes.dumps(self._to_json(record))

    def decode(self, data: bytes) -> V:
        return self._from_json(jsonbytes.loads(data))


def answer_json(answer: Body | EventStream) -> dict[str, Any]:
    """A kept answer as JSON (bytes as base64): what a stored record needs to show it again."""
    common = {"status": answer.status, "content_type": answer.content_type}
    common["headers"] = dict(answer.headers)
    if isinstance(answer, Body):
        return {**common, "body": _b64(answer.body)}
    return {**common, "frames": [_b64(frame) for frame in answer.frames], "tail": answer.tail}


def answer_from_json(data: Mapping[str, Any]) -> Body | EventStream:
    """The answer `answer_json` described."""
    headers = dict(data.get("headers") or {})
    if "frames" in data:
        return EventStream(
            frames=tuple(_unb64(frame) for frame in data["frames"]),
            tail=int(data["tail"]),
            status=int(data["status"]),
            content_type=str(data["content_type"]),
            headers=headers,
        )
    return Body(int(data["status"]), _unb64(data["body"]), str(data["content_type"]), headers)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def message_json(message: Message) -> dict[str, Any]:
    """A conversation turn as JSON."""
    return {
        "role": message.role,
        "text": message.text,
        "tool_call_id": message.tool_call_id,
        "name": message.name,
        "tool_calls": [[c.id, c.name, c.arguments] for c in message.tool_calls],
        "images": message.images,
    }


def message_from_json(data: Mapping[str, Any]) -> Message:
    """The turn `message_json` described."""
    return Message(
        role=str(data["role"]),
        text=str(data["text"]),
        tool_call_id=data.get("tool_call_id"),
        name=data.get("name"),
        tool_calls=tuple(CalledTool(*call) for call in data.get("tool_calls") or ()),
        images=int(data.get("images") or 0),
    )
