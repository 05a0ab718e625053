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
