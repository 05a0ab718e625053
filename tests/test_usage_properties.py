"""The usage of an answer read from its bytes' tail is the usage its whole JSON holds.

A batch adds up its lines' usage without parsing each answer whole (thousands of floats per
embedding). Whatever the body (any keys, any nesting, `"usage"` inside strings and keys, nested
`usage` members, duplicate keys, compact or pretty-printed), `top_level_usage` must give exactly
what a full parse gives: `loads(body).get("usage")`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st
from strategies import json_objects, json_values, texts

from mockai.wire.jsonbytes import loads
from mockai.wire.usage import top_level_usage

_TRICKY_KEYS = st.sampled_from(
    ["usage", 'x"usage', 'usage"', ',"usage":', "usage\\", "", "data", "u"]
)
_TRICKY_TEXTS = st.one_of(
    texts(),
    st.sampled_from(['{"usage":1}', ',"usage":{}}', '"usage":', '\\"usage\\":', "}", "\\"]),
)


def _members() -> st.SearchStrategy[list[tuple[str, Any]]]:
    value = st.one_of(
        json_values(max_leaves=6),
        _TRICKY_TEXTS,
        st.builds(lambda v: {"usage": v}, json_values(max_leaves=4)),  # a nested usage
        st.builds(lambda k, v: {k: v}, _TRICKY_KEYS, _TRICKY_TEXTS),
    )
    return st.lists(st.tuples(st.one_of(_TRICKY_KEYS, st.text(max_size=8)), value), max_size=6)


def _written(members: list[tuple[str, Any]], pretty: bool, ascii_only: bool) -> bytes:
    # Members written in order, duplicates kept (a dict would fold them): JSON allows them.
    parts = [
        json.dumps(key, ensure_ascii=ascii_only) + ":" + json.dumps(value, ensure_ascii=ascii_only)
        for key, value in members
    ]
    separator = ",\n  " if pretty else ","
    return ("{" + ("\n  " if pretty else "") + separator.join(parts) + "}").encode()


@given(
    members=_members(),
    usage=st.one_of(st.none(), json_values(max_leaves=6), json_objects(max_leaves=6)),
    where=st.sampled_from(["last", "first", "absent", "twice"]),
    pretty=st.booleans(),
    ascii_only=st.booleans(),
)
def test_the_tail_gives_what_the_whole_parse_gives(
    members: list[tuple[str, Any]], usage: Any, where: str, pretty: bool, ascii_only: bool
) -> None:
    if where == "last":
        members = [*members, ("usage", usage)]
    elif where == "first":
        members = [("usage", usage), *members]
    elif where == "twice":
        members = [("usage", {"stale": True}), *members, ("usage", usage)]
    body = _written(members, pretty, ascii_only)
    try:
        whole = loads(body)
    except ValueError:
        return  # (json.dumps can write what orjson refuses: lone surrogates, NaN)
    assert top_level_usage(body) == whole.get("usage")


@given(value=json_values(max_leaves=8))
def test_a_body_that_is_not_an_object_has_no_usage(value: Any) -> None:
    assert top_level_usage(orjson.dumps(value)) is (
        value.get("usage") if isinstance(value, dict) else None
    )


def test_a_usage_far_from_the_end_is_found_by_the_whole_parse() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    body = orjson.dumps({"usage": usage, "data": ["x" * 10_000]})
    assert top_level_usage(body) == usage
    body = orjson.dumps({"data": ["x" * 10_000], "usage": {"detail": "y" * 10_000}})
    assert top_level_usage(body) == {"detail": "y" * 10_000}


def test_bodies_that_are_not_json_have_no_usage() -> None:
    for body in (b"", b"not json", b"\xff\xfe", b'{"usage":', b'{"usage": 1'):
        assert top_level_usage(body) is None
