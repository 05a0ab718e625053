"""Listed items against the spec, over arbitrary input items.

Invariant: every item the spec's `InputItem` allows is listed (`stores/items.listed`, what the
conversation item lists and a response's `input_items` show) in a form the spec's
`ConversationItem` allows, or not at all when it only refers to an item or asks for work (a
reference, with or without its optional `type`; a compaction trigger). The items are drawn by
mockai's own JSON-schema generator from the spec's `InputItem` schema, one seed per example, so
every kind of item and every optional field comes up.
"""

from __future__ import annotations

import random
from typing import Any

import conformance
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai.api.common import item_type
from mockai.api.responses import parse_items
from mockai.errors import ApiError
from mockai.generate.schema import instance
from mockai.stores import items

INPUT_ITEM = {
    "$ref": "#/components/schemas/InputItem",
    "components": conformance.spec()["components"],
}
NOT_LISTED = {"item_reference", "compaction_trigger"}


def _input_item(seed: int) -> dict[str, Any]:
    item = instance(INPUT_ITEM, random.Random(seed))
    conformance.validate("InputItem", item)  # (the generator's own promise, checked)
    return item


@settings(max_examples=150)
@given(seeds=st.lists(st.integers(min_value=0, max_value=2**32), min_size=1, max_size=4))
def test_every_input_item_is_listed_in_a_form_the_spec_lists(seeds: list[int]) -> None:
    sent = [_input_item(seed) for seed in seeds]
    listed = items.listed(sent, b"k" * 16)
    kept = [item for item in sent if item_type(item) not in NOT_LISTED]
    assert len(listed) == len(kept)
    for shown, item in zip(listed, kept, strict=True):
        conformance.validate("ConversationItem", shown)
        assert shown["type"] == item_type(item) and isinstance(shown["id"], str)
    # Listing again gives the same items (ids derive from the owner's key and the position).
    assert items.listed(sent, b"k" * 16) == listed


# Part types a client might put in a message or a tool's output: the spec's own (by role) and
# others (chat's `text`, audio, made up), which the API refuses.
PART_TYPES = (
    "input_text",
    "input_image",
    "input_file",
    "output_text",
    "refusal",
    "text",
    "input_audio",
    "bogus",
)


def _with_part_types(item: dict[str, Any], kinds: list[str]) -> dict[str, Any]:
    """`item` with its content parts (a message's, a tool output's) retyped from `kinds`."""
    key = (
        "output"
        if item_type(item) in ("function_call_output", "custom_tool_call_output")
        else "content"
    )
    parts = item.get(key)
    if not isinstance(parts, list) or not kinds:
        return item
    retyped = [
        {**part, "type": kinds[index % len(kinds)]} if isinstance(part, dict) else part
        for index, part in enumerate(parts)
    ]
    return {**item, key: retyped}


@settings(max_examples=100)
@given(
    seeds=st.lists(st.integers(min_value=0, max_value=2**32), min_size=1, max_size=4),
    kinds=st.lists(st.sampled_from(PART_TYPES), max_size=3),
    role=st.sampled_from((None, "user", "assistant", "system", "developer")),
)
def test_every_input_item_accepted_is_listed_in_a_form_the_spec_lists(
    seeds: list[int], kinds: list[str], role: str | None
) -> None:
    # Items as a client may send them, their parts' types or a message's role changed: those the
    # parser (what POST /responses and the conversation routes run) accepts are listed in the
    # forms the spec's resources take, on both lists; the others are the API's 400.
    sent = []
    for seed in seeds:
        item = _with_part_types(_input_item(seed), kinds)
        if role is not None and item_type(item) == "message":
            item = {**item, "role": role}
        sent.append(item)
    try:
        parse_items(sent, "input")
    except ApiError as error:
        assert error.status == 400
        return
    for shown in items.listed(sent, b"k" * 16):
        conformance.validate("ConversationItem", shown)
        conformance.validate("ItemResource", shown)
