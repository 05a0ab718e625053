"""A chat answer rendered before is kept (`mockai/api/chat.py`, in the server's `KeptAnswers`): the
next request answered with the same reply, shaped alike, gets the kept bytes with its own ids.

The property: whatever the reply (text, refusal, tool calls, several choices, scripted usage,
finish reasons, arbitrary Unicode) and whatever the request (n, max_tokens, stop, model,
streaming, logprobs), and whatever was rendered before it, an answer is byte for byte what
rendering it afresh gives. Then, end to end: repeats through a real server differ only in
their id.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import numpy
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_chat import WEATHER_TOOL

from mockai import MockServer
from mockai.api import chat
from mockai.api import embeddings as embeddings_codec
from mockai.api.base import KeptAnswers, ParseContext, RenderContext
from mockai.catalog import Catalog
from mockai.generate import embeddings as generated_embeddings
from mockai.pipeline.reply import Choice, Reply, ToolCall
from mockai.wire.ids import tool_call_id
from mockai.wire.outgoing import Body, EventStream

CATALOG = Catalog()
texts = st.text(max_size=40) | st.sampled_from(
    [
        "",
        "Hello there.",
        'a\u2028b \U0001f600 "q"',
        "The weather is fine. Then the rain came, and it rained for the whole afternoon.",
        " ".join(["thirty", "words", "of", "text,", "each", "one", "token."] * 6),
    ]
)
choices = st.builds(
    Choice,
    content=st.none() | texts,
    refusal=st.none() | texts,
    tool_calls=st.just(())
    | st.lists(
        st.builds(
            ToolCall,
            st.sampled_from(["w", "f"]),
            st.just('{"city":"Paris"}'),
            # None or "": the id comes from the request's key
            st.sampled_from([None, "", "call_scripted"]),
        ),
        max_size=2,
    ).map(tuple),
    finish_reason=st.none() | st.sampled_from(["stop", "length", "content_filter"]),
)
replies = st.builds(
    Reply,
    choices=st.lists(choices, min_size=1, max_size=3).map(tuple),
    usage=st.none() | st.fixed_dictionaries({"prompt_tokens": st.integers(0, 99)}),
)
requests = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["gpt-4o-mini", "gpt-4o", "o3-mini"]),
        "messages": st.sampled_from(["hi", "a longer question, of more tokens"]).map(
            lambda text: [{"role": "user", "content": text}]
        ),
    },
    optional={
        "n": st.integers(1, 3),
        "max_completion_tokens": st.integers(1, 30),
        "stop": st.sampled_from(["e", ["th", "."], "x"]),
        "stream": st.booleans(),
        "logprobs": st.booleans(),
        "functions": st.just([{"name": "w", "parameters": {"type": "object"}}]),
    },
).map(lambda body: _answerable(body))
# What may differ between an earlier request and this one (besides the ids' key; the clock and
# the tool-call ids' format, a provider's, are varied as well).
VARIED = [
    "model",
    "messages",
    "n",
    "max_completion_tokens",
    "stop",
    "stream",
    "logprobs",
    "functions",
]


def _answerable(body: dict[str, Any]) -> dict[str, Any]:
    """`body` as the API answers it: a model that reasons takes no `stop` and no `logprobs`
    (the API's 400 and 403)."""
    if body["model"].startswith("o"):
        return {k: v for k, v in body.items() if k not in ("stop", "logprobs")}
    return body


def _render(
    reply: Reply,
    body: dict[str, Any],
    key: bytes,
    created: int,
    call_ids: Any = tool_call_id,
    kept: KeptAnswers | None = None,
) -> Any:
    """`reply` rendered for `body`, from and into `kept` (None: afresh, nothing kept)."""
    exchange = chat.parse(body, ParseContext({}, CATALOG))
    ctx = RenderContext(key, created, tool_call_id=call_ids, kept=kept)
    return chat.render(reply, exchange, ctx)


def _other_call_ids(key: bytes, index: int) -> str:
    """A provider's own tool-call id format (as a profile's `tool_call_id`)."""
    return f"toolu_{key.hex()[:8]}{index}"


def _wire(outgoing: Any) -> Any:
    if isinstance(outgoing, Body):
        return outgoing.status, outgoing.body, outgoing.usage
    assert isinstance(outgoing, EventStream)
    return list(outgoing.frames)


def _earlier(
    data: st.DataObject,
    body: dict[str, Any],
    changed: str | None,
    drawn: st.SearchStrategy[dict[str, Any]] = requests,
) -> dict[str, Any]:
    """`body`, or `body` with the field `changed` changed (or dropped, or added) as in another
    request `drawn`."""
    if changed is None:
        return body
    other = data.draw(drawn.filter(lambda o: o.get(changed) != body.get(changed)))
    earlier = {k: v for k, v in body.items() if k != changed}
    if changed in other:
        earlier[changed] = other[changed]
    return _answerable(earlier)


@pytest.mark.parametrize("changed", [None, "created", "call ids", *VARIED])
@settings(max_examples=150)  # (cheap: no server)
@given(data=st.data(), pair=st.tuples(replies, replies), key=st.binary(min_size=8, max_size=32))
def test_an_answer_is_what_rendering_it_afresh_gives(
    changed: str | None, data: st.DataObject, pair: tuple[Reply, Reply], key: bytes
) -> None:
    body = data.draw(requests, label="body")
    created = 1735689600
    # Rendered before (kept or not): the same reply for this request, or for one differing in
    # the field `changed` (or at another clock), with another key; perhaps another in between.
    earlier = _earlier(data, body, changed if changed in VARIED else None)
    then = 7 if changed == "created" else created
    call_ids = _other_call_ids if changed == "call ids" else tool_call_id
    earlier_key = data.draw(st.binary(min_size=8), label="earlier key")
    kept = KeptAnswers()
    # (twice: the first rendering of a reply is only marked, the second is kept)
    for _ in range(data.draw(st.integers(1, 2), label="renderings before")):
        _render(pair[0], earlier, earlier_key, then, call_ids, kept)
    if data.draw(st.booleans(), label="another reply in between"):
        _render(pair[1], data.draw(requests), key, created, kept=kept)
    answer = _wire(_render(pair[0], body, key, created, kept=kept))
    assert answer == _wire(_render(pair[0], body, key, created))


def test_a_call_id_the_text_also_holds_is_not_taken_for_the_id() -> None:
    """The kept answer is cut where the ids are: a string in the body equal to a call id (here
    the text, which is the id the request before got) must not be taken for the id."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    earlier_key, key = b"earlier-" * 2, b"this-one" * 2
    quoted = tool_call_id(earlier_key, 0)
    reply = Reply(choices=(Choice(content=quoted, tool_calls=(ToolCall("w"),)),))
    kept = KeptAnswers()
    for _ in range(2):  # (kept the second time)
        _render(reply, body, earlier_key, 1, kept=kept)
    answer = _wire(_render(reply, body, key, 1, kept=kept))
    assert answer == _wire(_render(reply, body, key, 1))


def _asked_four_times(server: MockServer, content: str, **more: Any) -> list[dict[str, Any]]:
    """The same two-choice chat request sent four times through the SDK, its answers as JSON."""
    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
    ask: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": content}],
        "n": 2,
        **more,
    }
    return [client.chat.completions.create(**ask).model_dump() for _ in range(4)]


def test_tool_calls_repeated_through_a_server_differ_only_in_their_ids() -> None:
    with MockServer(log_requests=False) as server:
        answers = _asked_four_times(
            server, "Weather in Paris and Rome?", tools=[WEATHER_TOOL], tool_choice="required"
        )
    call_ids = [
        [call.pop("id") for choice in a["choices"] for call in choice["message"]["tool_calls"]]
        for a in answers
    ]
    assert call_ids[0] and len({i for ids in call_ids for i in ids}) == 4 * len(call_ids[0])
    assert len({a.pop("id") for a in answers}) == 4
    assert all(a == answers[0] for a in answers)


def test_an_answer_is_kept_the_second_time_its_reply_is_rendered() -> None:
    """Traffic that never repeats (fresh prompts) pays for no cutting and keeping: the first
    rendering of a reply only marks it; the second keeps it; the third is answered from it."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    reply = Reply(choices=(Choice(content="Kept the second time."),))
    kept = KeptAnswers()
    answers = []
    for index in range(3):
        answers.append(_wire(_render(reply, body, b"key-%d-padding" % index, 1, kept=kept)))
        assert len(kept) == (0 if index == 0 else 1)
    assert answers[2] == _wire(_render(reply, body, b"key-2-padding", 1))


def test_repeats_through_a_server_differ_only_in_their_id() -> None:
    with MockServer(log_requests=False) as server:
        answers = _asked_four_times(server, "kept answers?")
        assert len(server.state.kept_answers) == 1  # the server's own table holds the answer
        server.reset()
        assert len(server.state.kept_answers) == 0  # a reset forgets it
        assert len({a.pop("id") for a in answers}) == 4
        assert all(a == answers[0] for a in answers)
        assert answers[0]["usage"]["completion_tokens"] > 0


# --- embeddings: an answer without ids, kept whole -----------------------------------------------

embedding_requests = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["text-embedding-3-small", "text-embedding-ada-002"]),
        "input": st.lists(
            st.sampled_from(["a", "b c", "kept vectors", "\U0001f600"]), min_size=1, max_size=3
        ),
    },
    optional={
        "encoding_format": st.sampled_from(["float", "base64"]),
        "dimensions": st.integers(1, 8),
    },
).filter(lambda body: "dimensions" not in body or body["model"] != "text-embedding-ada-002")
scripted_vectors = st.lists(
    st.lists(st.floats(-1, 1, width=32), min_size=1, max_size=6).map(tuple), min_size=1, max_size=3
).map(tuple)


def _embeddings_reply(data: st.DataObject, body: dict[str, Any]) -> Reply:
    """Vectors generated from `body`'s inputs (as the generator's reply holds them) or scripted."""
    if data.draw(st.booleans(), label="generated"):
        exchange = embeddings_codec.parse(body, ParseContext({}, CATALOG))
        return generated_embeddings.reply_for(exchange, 8, seed=3)
    return Reply(embeddings=data.draw(scripted_vectors, label="scripted"))


def _render_embeddings(
    reply: Reply, body: dict[str, Any], kept: KeptAnswers | None, honor_base64: bool = True
) -> Any:
    exchange = embeddings_codec.parse(body, ParseContext({}, CATALOG))
    ctx = RenderContext(b"key-padding-16by", 1, honor_base64=honor_base64, kept=kept)
    return _wire(embeddings_codec.render(reply, exchange, ctx))


@pytest.mark.parametrize(
    "changed", [None, "honor base64", "model", "input", "encoding_format", "dimensions"]
)
@settings(max_examples=100)  # (cheap: no server)
@given(data=st.data())
def test_an_embeddings_answer_is_what_rendering_it_afresh_gives(
    changed: str | None, data: st.DataObject
) -> None:
    """Whatever was rendered (and kept) before with the same reply for a request differing in
    one thing (model, number of inputs, encoding, size, the server honouring base64)."""
    body = data.draw(embedding_requests, label="body")
    reply = _embeddings_reply(data, body)
    honor = data.draw(st.booleans(), label="honor base64")
    then = not honor if changed == "honor base64" else honor
    earlier = body if changed == "honor base64" else _earlier_embeddings(data, body, changed)
    kept = KeptAnswers()
    # (twice: the first rendering of a reply is only marked, the second is kept)
    for _ in range(data.draw(st.integers(1, 2), label="renderings before")):
        _render_embeddings(reply, earlier, kept, then)
    for _ in range(3):
        assert _render_embeddings(reply, body, kept, honor) == _render_embeddings(
            reply, body, None, honor
        )


def _earlier_embeddings(
    data: st.DataObject, body: dict[str, Any], changed: str | None
) -> dict[str, Any]:
    """`_earlier` for an embeddings request (ada-002 takes no `dimensions`)."""
    earlier = dict(_earlier(data, body, changed, embedding_requests))
    if earlier["model"] == "text-embedding-ada-002":
        earlier.pop("dimensions", None)
    return earlier


def test_a_rules_reply_without_vectors_is_not_kept() -> None:
    """Its vectors are generated from each request's inputs: the same reply, other answers."""
    reply = Reply()
    kept = KeptAnswers()
    answers = {
        _render_embeddings(reply, {"model": "text-embedding-3-small", "input": text}, kept)
        for text in ("one", "two", "one", "two")
    }
    assert len(answers) == 2 and len(kept) == 0


@given(
    keeps=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 5_000)), max_size=60),
    slots=st.integers(1, 8),
    max_bytes=st.integers(0, 12_000),
)
def test_kept_answers_stay_within_their_byte_bound(
    keeps: list[tuple[int, int]], slots: int, max_bytes: int
) -> None:
    table = KeptAnswers(slots, max_bytes)
    replies = [Reply(embeddings=((float(n),),)) for n in range(41)]
    for which, size in keeps:
        if size % 3:
            table.keep(replies[which], (), b"x" * size, size)
        else:  # (a mark weighs nothing, and frees what its slot held)
            table.mark(replies[which], ())
        held = [
            len(answer) for reply in replies if isinstance(answer := table.get(reply, ()), bytes)
        ]
        assert table.total_bytes == sum(held) <= max_bytes
    if keeps and keeps[-1][1] <= max_bytes - table.total_bytes:
        assert table.get(replies[keeps[-1][0]], ()) is not None


def test_a_mark_does_not_keep_its_reply_alive() -> None:
    """The first rendering of a fresh embeddings reply marks it: its ~100 KB of vectors must go
    when the generator's cache lets the reply go (256 marks held 25 MB of vectors otherwise)."""
    table = KeptAnswers()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        reply = Reply(embeddings=(numpy.ones(250_000, dtype=numpy.float32),))  # 1 MB
        table.mark(reply, ())
        assert table.get(reply, ()) is table.SEEN
        del reply
        gc.collect()
        assert tracemalloc.get_traced_memory()[0] - before < 100_000
    finally:
        tracemalloc.stop()


def test_embeddings_repeated_through_a_server_are_answered_from_kept_bytes() -> None:
    ask = {
        "model": "text-embedding-3-small",
        "input": ["kept", "vectors"],
        "encoding_format": "float",
    }
    with MockServer(log_requests=False) as server:
        client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
        answers = [client.embeddings.create(**ask).model_dump() for _ in range(4)]  # type: ignore[arg-type]
        assert len(server.state.kept_answers) == 1
        assert 0 < server.state.kept_answers.total_bytes <= server.state.kept_answers.max_bytes
    assert all(answer == answers[0] for answer in answers)
    assert len(answers[0]["data"]) == 2 and len(answers[0]["data"][1]["embedding"]) == 1536
