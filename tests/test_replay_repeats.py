"""A cassette answers repeated and new requests alike: the shortcut for repeats never changes
which recording answers.

A repeated request's body is the object its kept parse holds, so the replay source makes its
match view once (`ReplaySource.view`, a small table by the body's identity). Whatever the order
of questions (the same few again and again, more distinct ones than the table holds, the same
question with its keys in another order or with a field the recordings lack), every answer must
be the one recording that request matches, through the real SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples

from mockai import MockServer
from mockai.api import chat
from mockai.api.base import ParseContext
from mockai.cassette import Cassette, ReplaySource
from mockai.catalog import Catalog

QUESTIONS = 150  # more than the views the source keeps (64), so they are evicted too


def _interaction(n: int) -> dict[str, Any]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {n}"}]}
    answer = {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": 1735689600,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"answer {n}", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    return {
        "request": {
            "body": json.dumps(body),
            "headers": {"Content-Type": ["application/json"]},
            "method": "POST",
            "uri": "https://api.openai.com/v1/chat/completions",
        },
        "response": {
            "body": {"string": json.dumps(answer)},
            "headers": {"Content-Type": ["application/json"]},
            "status": {"code": 200, "message": "OK"},
        },
    }


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    cassette: Path = tmp_path_factory.mktemp("replay") / "questions.yaml"
    interactions = [_interaction(n) for n in range(QUESTIONS)]
    cassette.write_text(yaml.safe_dump({"interactions": interactions, "version": 1}))
    with (
        # A journal of one entry: bodies are let go at once, so their ids come back quickly.
        MockServer(
            cassette=str(cassette), allow_repeats=True, log_requests=False, journal_size=1
        ) as server,
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


def test_a_new_body_where_a_freed_one_was_gets_its_own_view() -> None:
    """The table holds each body it has a view of: a body freed and another made at the same
    address (CPython reuses a freed dict's memory at once) must not get the old one's view. (A
    body holding a secret has a scrubbed copy in its view, so only the table holds it.)"""
    source = ReplaySource([Cassette(Path("c.yaml"), [])])
    context = ParseContext({}, Catalog())
    key = "sk-proj-" + "A1b2C3d4" * 6

    def asked(text: str) -> Any:
        message = {"role": "user", "content": f"{text} {key}"}
        return chat.CODEC.parse({"model": "gpt-4o-mini", "messages": [message]}, context)

    for n in range(200):
        first = asked(f"first {n}")
        assert source.view(first).body["messages"][0]["content"].startswith(f"first {n} ")
        del first
        second = asked(f"second {n}")
        view = source.view(second)
        assert view.body["messages"][0]["content"].startswith(f"second {n} ")
        assert key not in json.dumps(view.body)
        assert source.view(second) is view  # (kept: the same view again)
