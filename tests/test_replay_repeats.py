"""A cassette finds a request's recording the same with its shortcut as without it.

A client replaying its recordings sends their very JSON, so the replay source looks a request's
canonical JSON up among its recordings' (`ReplaySource._recorded_alike`) before making the
request's match view (scrub check, normalising, two canonical texts). Whatever the order of
questions (the same few again and again, many distinct ones, the same question with its keys in
another order or with a field the recordings lack), every answer must be the one recording that
request matches, through the real SDK; and wherever the shortcut answers, it must answer what
the view does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from cassette_support import chat_completion, recorded_chat
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples

from mockai import MockServer
from mockai.api import chat
from mockai.api.base import ParseContext
from mockai.cassette import Cassette, Interaction, ReplaySource
from mockai.catalog import Catalog

QUESTIONS = 150


def _interaction(n: int) -> dict[str, Any]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {n}"}]}
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    answer = chat_completion(f"chatcmpl-{n}", "gpt-4o-mini", f"answer {n}", usage=usage)
    return recorded_chat(body, answer)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    cassette: Path = tmp_path_factory.mktemp("replay") / "questions.yaml"
    interactions = [_interaction(n) for n in range(QUESTIONS)]
    cassette.write_text(yaml.safe_dump({"interactions": interactions, "version": 1}))
    with (
        MockServer(cassette=str(cassette), allow_repeats=True, log_requests=False) as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as sdk,
    ):
        yield sdk


_ASKED = st.one_of(st.integers(0, 3), st.integers(0, QUESTIONS - 1))  # a few, again and again


@settings(max_examples=examples(12), deadline=None)
@given(
    asked=st.lists(
        st.tuples(_ASKED, st.sampled_from(["plain", "reordered", "unrecorded"])),
        min_size=1,
        max_size=90,
    )
)
def test_every_answer_is_the_recording_its_request_matches(
    client: openai.OpenAI, asked: list[tuple[int, str]]
) -> None:
    for n, how in asked:
        message = {"role": "user", "content": f"question {n}"}
        if how == "reordered":  # the same request, its JSON written in another order
            message = {"content": message["content"], "role": "user"}
        extra: dict[str, Any] = {"temperature": 0.5} if how == "unrecorded" else {}
        try:
            answer = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[message],  # type: ignore[list-item]
                **extra,
            )
        except openai.APIStatusError as missed:
            assert how == "unrecorded", missed
            assert missed.status_code == 404 or "cassette" in str(missed.message)
            continue
        assert how != "unrecorded"
        assert answer.choices[0].message.content == f"answer {n}"


_SECRET = "sk-proj-" + "A1b2C3d4" * 6


@st.composite
def _chat_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Chat bodies that differ in what matching normalises away (volatile fields, `stream:
    false`) and in what it does not, some holding a key that recordings keep scrubbed."""
    text = draw(st.sampled_from(["a", "b", f"key {_SECRET}"]))
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    for field, values in (
        ("user", st.sampled_from(["u1", "u2"])),
        ("metadata", st.dictionaries(st.sampled_from(["k", "j"]), st.sampled_from(["v", "w"]))),
        ("stream", st.just(False)),
        ("temperature", st.sampled_from([0, 0.5])),
    ):
        if draw(st.booleans()):
            body[field] = draw(values)
    return body


@settings(max_examples=examples(60), deadline=None)
@given(
    recorded=st.lists(_chat_bodies(), min_size=1, max_size=6),
    asked=st.lists(_chat_bodies(), min_size=1, max_size=6),
    match_on=st.lists(
        st.sampled_from(
            ["method", "path", "body", "raw_body", "uri", "query", "model", "stream", "messages"]
        ),
        min_size=1,
        unique=True,
    ),
)
def test_the_same_json_finds_what_the_view_finds(
    recorded: list[dict[str, Any]], asked: list[dict[str, Any]], match_on: list[str]
) -> None:
    """A request with a recorded request's very JSON gets its candidates without a view: they
    must be the candidates its view finds, and a request that is no recording's JSON is left to
    the view."""
    interactions = [
        Interaction(
            method="POST",
            uri="https://api.openai.com/v1/chat/completions",
            request_body=json.dumps(body).encode(),
            request_headers={},
            status=200,
            reason="OK",
            response_headers={},
            response_body=b"{}",
        )
        for body in recorded
    ]
    source = ReplaySource([Cassette(Path("c.yaml"), interactions)], match_on=match_on)
    context = ParseContext({}, Catalog())
    for body in [*recorded, *asked]:
        exchange = chat.CODEC.parse(dict(body), context)
        found = source._recorded_alike(exchange)
        if found is not None:
            assert found == source.index.candidates(source.view(exchange))
        else:
            assert _SECRET in json.dumps(body) or body not in recorded
