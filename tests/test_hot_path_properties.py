"""Properties of the hot path's shortcuts: each gives exactly what the plain computation gives."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import json_values

from mockai import tokens
from mockai.api import common
from mockai.api.chat import _views
from mockai.api.fieldrules import missing, unknown_parameter
from mockai.api.spec_fields import FIELDS
from mockai.delivery.ratelimit import _reset_text
from mockai.delivery.timing import go_duration
from mockai.errors import ApiError
from mockai.pipeline import journal
from mockai.pipeline.exchange import Message
from mockai.pipeline.fingerprint import (
    MEDIA_PRESENTATION_FIELDS,
    PRESENTATION_FIELDS,
    content_key,
    request_keys,
)
from mockai.server.metrics import Metrics
from mockai.wire import jsonbytes
from mockai.wire.credentials import is_credential_header
from mockai.wire.outgoing import Body

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(ROLES), st.text(max_size=20)), max_size=12))
def test_the_match_views_are_the_last_user_text_the_joined_system_texts_and_the_last_tool_result(
    turns: list[tuple[str, str]],
) -> None:
    messages = tuple(Message(role=role, text=text) for role, text in turns)
    users = [m.text for m in messages if m.role == "user"]
    tools = [m.text for m in messages if m.role in ("tool", "function")]
    system = "\n".join(m.text for m in messages if m.role in ("system", "developer"))
    assert _views(messages) == (users[-1] if users else "", system, tools[-1] if tools else None)


@settings(max_examples=500)
@given(st.floats(min_value=-10, max_value=100_000, allow_nan=False))
def test_a_cached_reset_time_reads_as_go_duration_writes_it(seconds: float) -> None:
    assert _reset_text(seconds) == go_duration(seconds)


COUNT = st.integers(min_value=0, max_value=2**40)
DETAILS = st.dictionaries(
    st.sampled_from(["cached_tokens", "audio_tokens", "reasoning_tokens"]), COUNT
)


@st.composite
def usages(draw: st.DrawFn) -> dict[str, object]:
    """Usage objects as the codecs render them: chat / embeddings or Responses names, details."""
    chat = draw(st.booleans())
    prompt, completion = (
        ("prompt_tokens", "completion_tokens") if chat else ("input_tokens", "output_tokens")
    )
    usage: dict[str, object] = {}
    for name in draw(st.permutations([prompt, completion, "total_tokens"]))[
        : draw(st.integers(1, 3))
    ]:
        usage[name] = draw(COUNT)
    if draw(st.booleans()):
        usage[f"{prompt}_details"] = draw(DETAILS)
    if draw(st.booleans()):
        usage[f"{completion}_details"] = draw(DETAILS)
    return usage


@settings(max_examples=400)
@given(usages(), st.text(max_size=50))
def test_tokens_counted_from_a_rendered_usage_equal_those_found_in_the_bytes(
    usage: dict[str, object], content: str
) -> None:
    # The content may say `"usage"` or `"prompt_tokens": 9` itself: it is escaped in the JSON.
    body = jsonbytes.dumps(
        {"id": content, "choices": [{"message": {"content": content}}], "usage": usage}
    )
    handed, searched = Metrics(), Metrics()
    handed._count_tokens("m", Body(200, body, usage=usage))
    searched._count_tokens("m", Body(200, body))
    assert handed.counters["tokens"] == searched.counters["tokens"]
    # and both are the usage's own numbers (zero counts are not recorded)
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    expected = {("m", kind): n for kind, n in (("prompt", prompt), ("completion", completion)) if n}
    assert handed.counters["tokens"] == expected


_HEADER_NAME = st.one_of(
    st.sampled_from(["Authorization", "api-key", "X-Api-Key", "Cookie", "Content-Type", "Host"]),
    st.text(min_size=1, max_size=24),
).flatmap(lambda name: st.sampled_from([name, name.upper(), name.lower(), name.title()]))


@given(st.dictionaries(_HEADER_NAME, st.text(max_size=30), max_size=12))
def test_redacting_with_the_judged_names_equals_judging_each_name_afresh(
    headers: dict[str, str],
) -> None:
    """The journal's header redaction judges each name once (a cache): whatever the names (any
    case, any Unicode), it keeps what judging every name afresh keeps, cache cold or warm."""
    expected = {
        name.lower(): (journal.REDACTED if is_credential_header(name) else value)
        for name, value in headers.items()
    }
    assert journal.redact_headers(headers) == expected
    assert journal.redact_headers(headers) == expected  # (the names are known now)
    secrets = {"authorization", "api-key", "x-api-key", "cookie"}
    assert all(expected[name] == journal.REDACTED for name in expected if name in secrets)


@given(
    st.lists(
        st.one_of(
            st.text(max_size=200),
            st.integers(4090, 4100).map(lambda n: "word " * (n // 5) + "x" * (n % 5)),
        ),
        max_size=6,
    ),
    st.booleans(),
)
def test_a_messages_cached_token_count_is_its_count(texts: list[str], named: bool) -> None:
    """Message texts' token counts are kept (a conversation is resent every turn): whatever the
    text (any Unicode, either side of the 4 KiB a kept text may hold), the count is the
    tokenizer's, the first time and every time after."""
    messages = tuple(Message("user", text, name="n" if named else None) for text in texts)
    expected = 3 + sum(3 + tokens.count(m.text) + int(named) for m in messages)
    assert common.prompt_tokens(messages, None) == expected
    assert common.prompt_tokens(messages, None) == expected


@given(
    st.one_of(st.text(), st.integers(4090, 4100).map(lambda n: "a1 " * (n // 3) + "b" * (n % 3)))
)
def test_a_kept_token_count_is_the_tokenizers(text: str) -> None:
    """`tokens.count_again` keeps counts (texts of up to 4 KiB): cold or warm, whatever the text,
    it is `tokens.count`."""
    assert tokens.count_again(text) == tokens.count(text)
    assert tokens.count_again(text) == tokens.count(text)
    small = tokens.kept_counts(2, 16)  # (both sides of its own limit, and evictions)
    for piece in (text[:16], text, text[:16], text[:3], text[:16]):
        assert small(piece) == tokens.count(piece)


def _check_every_field(endpoint: str, body: dict[str, Any], strict: bool) -> None:
    """`common.check_fields` without its shortcut: every given field through its rule."""
    rules = FIELDS[endpoint] if strict else common._lenient(endpoint)
    for name, value in body.items():
        rule = rules.get(name)
        if rule is None:
            if strict:
                raise unknown_parameter(name)
            continue
        if value is None and not strict and not rule.required:
            continue
        rule.check(name, value)
    routed = endpoint in ("chat", "completions", "embeddings")  # (named by their model)
    for name, rule in rules.items():
        if rule.required and body.get(name) is None:
            raise common.no_model() if name == "model" and routed else missing(name)
    if routed and body["model"] == "":
        raise common.no_model()


def _outcome(check: Callable[[], None]) -> tuple[str, str | None] | None:
    try:
        check()
    except ApiError as error:
        return error.message, error.param
    return None


# Any value a field may be given: numbers around the bounds and strings around the lengths the
# rules hold them to. (Made once: building it on every draw took most of the test's time.)
FIELD_VALUE = st.one_of(
    json_values(max_leaves=4),
    st.integers(min_value=-3, max_value=300_000),
    st.floats(min_value=-3, max_value=3, allow_nan=False),
    st.sampled_from(["", "auto", "none", "x" * 600, "x" * 40_000]),
    st.just([]),
    st.lists(st.just("a"), max_size=130),
)
BODIES = {
    endpoint: st.dictionaries(
        st.sampled_from([*sorted(fields), "not_a_field"]), FIELD_VALUE, max_size=6
    )
    for endpoint, fields in FIELDS.items()
}


@st.composite
def field_values(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """An endpoint and a body of its fields (any of them, known or not) with arbitrary values."""
    endpoint = draw(st.sampled_from(sorted(FIELDS)))
    return endpoint, draw(BODIES[endpoint])


@settings(max_examples=600)
@given(field_values(), st.booleans())
def test_the_fields_passing_on_their_type_alone_are_those_their_rule_passes(
    given_body: tuple[str, dict[str, Any]], strict: bool
) -> None:
    endpoint, body = given_body
    for rules in (FIELDS[endpoint], common._lenient(endpoint)):
        for name, value in body.items():
            rule = rules.get(name)
            if rule is not None and type(value) in rule.passing:
                assert _outcome(partial(rule.check, name, value)) is None
    assert _outcome(lambda: common.check_fields(endpoint, body, strict=strict)) == _outcome(
        lambda: _check_every_field(endpoint, body, strict)
    )


PRESENTED = sorted(PRESENTATION_FIELDS)


@settings(max_examples=300)
@given(
    st.sampled_from(["chat", "embeddings", "images", "speech", "transcriptions"]),
    st.dictionaries(
        st.text(max_size=8).filter(lambda k: k not in PRESENTATION_FIELDS),
        json_values(max_leaves=4),
        max_size=4,
    ),
    st.dictionaries(st.sampled_from(PRESENTED), json_values(max_leaves=3), max_size=3),
    st.integers(min_value=0, max_value=2**31),
    st.randoms(use_true_random=False),
)
def test_the_content_key_ignores_presentation_and_the_exact_key_adds_it_back(
    endpoint: str,
    asked: dict[str, Any],
    shown: dict[str, Any],
    seed: int,
    order: random.Random,
) -> None:
    items = [*asked.items(), *shown.items()]
    order.shuffle(items)
    key, exact = request_keys(seed, endpoint, dict(items))
    media = MEDIA_PRESENTATION_FIELDS.get(endpoint, frozenset())
    bare = {k: v for k, v in asked.items() if k not in media}
    # What the request asks decides the content key, in any order, whatever its presentation.
    assert (
        key
        == request_keys(seed, endpoint, dict(reversed(bare.items())))[0]
        == content_key(seed, endpoint, dict(items))
    )
    assert len(key) == 32
    # The exact key is the content key when nothing is presented, and else depends on it.
    assert (exact == key) == (not shown)
    if shown:
        assert exact == request_keys(seed, endpoint, {**dict(reversed(shown.items())), **asked})[1]
        name = next(iter(shown))
        changed = {**asked, **shown, name: [shown[name]]}  # (another JSON value)
        changed_key, changed_exact = request_keys(seed, endpoint, changed)
        assert changed_key == key and changed_exact != exact
    assert request_keys(seed + 1, endpoint, dict(items))[0] != key
