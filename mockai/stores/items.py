"""Items of the Responses API as its list endpoints show them: typed, with ids, paged.

`GET /responses/{id}/input_items` and the conversation item lists show what a client sent (plain
strings, "easy" messages without a type or id) as the API stores it: every item typed, with an id
and a status, message text as typed content parts. Ids the client did not give are derived from
the owner's key, so the same item has the same id on every listing and cursors work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mockai.api.common import item_type
from mockai.errors import ApiError
from mockai.wire import ids

MAX_LIMIT = 100


def listed(raw: Any, key: bytes, start: int = 0) -> list[dict[str, Any]]:
    """A request's `input` (a string or a list of items) as the API lists it; `start` numbers
    the items after others the owner already holds (for their ids)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [{"role": "user", "content": raw}]
    out: list[dict[str, Any]] = []
    for index, item in enumerate(raw, start):
        if not isinstance(item, dict) or item_type(item) in _NOT_LISTED:
            continue
        out.append(_item(item, key, index))
    return out


# Input items that are not content, so nothing is listed for them: a reference names an item
# stored elsewhere; a compaction trigger asks for the context to be compacted (the API's listed
# items have no form for it; mockai does not compact).
# (A tuple: its test compares, so a `type` of any JSON value is only not found.)
_NOT_LISTED = ("item_reference", "compaction_trigger")

# What the listed forms of newer items require that their input forms may leave out, as the
# spec's output schemas allow it: no environment, no time or output length limit, no call id
# (a mapping: the defaults of the object sent under that key). A tool search not said
# otherwise is the hosted tool's, which runs on the server.
_LISTED_DEFAULTS: dict[str, dict[str, Any]] = {
    "shell_call": {
        "environment": None,
        "action": {"timeout_ms": None, "max_output_length": None},
    },
    "shell_call_output": {"max_output_length": None},
    "tool_search_call": {"call_id": None, "execution": "server"},
    "tool_search_output": {"call_id": None, "execution": "server"},
}


# Fields input items may send as null that the listed forms take only with a value: left out,
# as they are optional there (the listed forms do not take null).
_NULL_LEFT_OUT: dict[str, tuple[str, ...]] = {
    "function_call_output": ("call_id", "name", "namespace"),
    "computer_call_output": ("acknowledged_safety_checks",),
}


def _with_defaults(shown: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    """Fill in `defaults` that `shown` leaves out (a copy of a nested object sent is filled in
    its turn; one not sent is not made up)."""
    for name, value in defaults.items():
        if isinstance(value, Mapping):
            sent = shown.get(name)
            if isinstance(sent, dict):
                shown[name] = nested = dict(sent)
                _with_defaults(nested, value)
        else:
            shown.setdefault(name, value)


def _item(item: Mapping[str, Any], key: bytes, index: int) -> dict[str, Any]:
    kind = item_type(item)
    shown: dict[str, Any] = {"type": kind, **item}
    shown["type"] = kind
    if kind == "message":
        shown["content"] = _message_content(item.get("content"), item.get("role"))
        prefix = "msg"
    elif kind == "function_call_output" and isinstance(item.get("output"), list):
        shown["output"] = [_part(part) for part in item["output"]]
        prefix = "fco"
    else:
        prefix = {"function_call": "fc", "function_call_output": "fco"}.get(str(kind), "item")
        _with_defaults(shown, _LISTED_DEFAULTS.get(str(kind), {}))
    if kind == "mcp_approval_response" and "request_id" not in shown:
        # The spec requires a `request_id` it never defines, of both forms; the SDKs know no
        # such field and never send it (refusing their items would break every approval
        # flow). Listed, it names the approval request answered, which it can only mean.
        shown["request_id"] = item.get("approval_request_id")
    for name in _NULL_LEFT_OUT.get(str(kind), ()):
        if name in shown and shown[name] is None:
            del shown[name]
    # A null `id` or `status` (which input items may send) is one the API fills in; and an item
    # the client sent is complete once stored, whatever status it was sent with.
    if shown.get("id") is None:
        shown["id"] = ids.item_id(key, prefix, 1000 + index)
    if shown.get("status") in (None, "in_progress"):
        shown["status"] = "completed"
    return shown


def _part(part: Any) -> Any:
    """A content part as the API lists it: an image's `detail` defaults to `auto`, a resent
    answer's text has its `annotations` and `logprobs` (none, unless sent), and optional
    settings sent as null are left out (the listed forms do not take null)."""
    if not isinstance(part, dict):
        return part
    shown = {key: value for key, value in part.items() if value is not None or key in _NULLABLE}
    kind = shown.get("type")
    if kind == "input_image":
        shown.setdefault("detail", "auto")
    elif kind == "output_text":
        # Clients resend earlier answers as `{type, text}` alone (the API takes that), but the
        # listed form requires both lists: the SDKs' strict mode refuses the list without them.
        shown.setdefault("annotations", [])
        shown.setdefault("logprobs", [])
    return shown


# Part fields whose listed form takes null (the rest are left out when sent as null).
_NULLABLE = frozenset({"image_url", "file_id"})


def _message_content(content: Any, role: Any) -> Any:
    """Plain-string message content as the typed parts the API lists it with."""
    if isinstance(content, list):
        return [_part(part) for part in content]
    if not isinstance(content, str):
        return content
    if role == "assistant":
        return [{"type": "output_text", "text": content, "annotations": [], "logprobs": []}]
    return [{"type": "input_text", "text": content}]


def page(
    every: Sequence[dict[str, Any]],
    query: Mapping[str, str],
    *,
    default_order: str = "desc",
    default_limit: int = 20,
    max_limit: int = MAX_LIMIT,
    places: Sequence[int] | None = None,
    elsewhere: int | None = None,
) -> dict[str, Any]:
    """One page of a list (`order`, `limit`, `after`; newest first unless the list's default
    says otherwise), as the API's list objects: `data`, `first_id`, `last_id`, `has_more`.

    `after` names a place in the list, as the spec says: the page holds the items beyond it.
    `places` numbers the items in list order (their positions unless given: a store numbers
    them for good, so that an item deleted or filtered out still has its place; `every` is
    listed in their order, whatever order it comes in); `elsewhere`
    is the place of an `after` not among `every` (None: the server never had it, the 400).
    The page never starts at or before the cursor, so an auto-pager always ends."""
    order = query.get("order", default_order)
    if order not in ("asc", "desc"):
        raise ApiError(
            400,
            f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.",
            param="order",
            code="invalid_value",
        )
    limit = _limit(query.get("limit", str(default_limit)), max_limit)
    numbered = list(zip(range(len(every)) if places is None else places, every, strict=True))
    if places is not None:
        # The list is in place order whatever order the store holds it in: workers numbering
        # and storing items at once store them out of order, and a cursor's place must split
        # the list in two (else the pager skips some items and repeats others).
        numbered.sort(key=lambda pair: pair[0])
    if order == "desc":
        numbered.reverse()
    after = query.get("after")
    if after is not None:
        place = _cursor(numbered, after, elsewhere, ascending=order == "asc")
        numbered = [
            (n, item) for n, item in numbered if (n > place if order == "asc" else n < place)
        ]
    data = [item for _, item in numbered[:limit]]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(numbered) > limit,
    }


def _cursor(
    numbered: Sequence[tuple[int, Mapping[str, Any]]],
    after: str,
    elsewhere: int | None,
    *,
    ascending: bool,
) -> int:
    """The place `after` names: the furthest one in the paging direction, should an id be
    listed twice (the pager then moves on past both), else the caller's `elsewhere`."""
    found = [n for n, item in numbered if item.get("id") == after]
    if found:
        return max(found) if ascending else min(found)
    if elsewhere is None:
        raise ApiError(400, f"No item with id '{after}' in this list.", param="after")
    return elsewhere


def _limit(raw: str, most: int) -> int:
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= most:
        raise ApiError(
            400,
            f"Invalid 'limit': integer between 1 and {most} expected, got {raw!r}.",
            param="limit",
            code="integer_out_of_range",
        )
    return limit
