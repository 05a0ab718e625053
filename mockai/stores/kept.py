"""What the stores keep, and how they read it back.

The stores (stored responses, chat completions, conversations) keep answers *as sent* — a JSON
body's bytes or a stream's SSE frames — and parse them only when someone asks, so that keeping
costs the hot path a dict insert. They are bounded like the journal: the oldest entry goes first.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Any, TypeVar

from mockai.wire import jsonbytes
from mockai.wire.events import event_data
from mockai.wire.outgoing import Body, EventStream

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def put(entries: OrderedDict[K, V], key: K, value: V, capacity: int) -> None:
    """Add or refresh `key` as the newest entry; the oldest go beyond `capacity`."""
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > capacity:
        entries.popitem(last=False)


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
