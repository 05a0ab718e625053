"""A rule's fixed-text reply is made once, not per request (`respond.constant_reply`): for every
reply a scenario can write and every request, the kept Reply is exactly what building it for
that request gives, and it is used for the plain case (a fixed text answering a chat request).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mockai.catalog import Catalog
from mockai.generate.fallback import FallbackGenerator
from mockai.pipeline.exchange import Endpoint, Exchange, ResponseFormat
from mockai.scenario.problems import Problems
from mockai.scenario.replies import compile_reply
from mockai.scenario.respond import Build, build_reply, constant_reply

REPLIES: list[Any] = [
    "a fixed answer",
    {"content": "fixed", "finish_reason": "length"},
    {"content": "fixed", "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
    {"json": {"answer": 42, "items": [1, 2]}},
    {"json": {"who": "{{ faker.name() }}"}},  # a template: built per request
    {"content": "Hello {{ request.model }}"},  # a template: built per request
    {"refusal": "I can't help with that."},
    {"content": "flagged", "flagged": True, "categories": {"violence": True}},
    {"vectors": [[0.1, 0.2, 0.3]]},
    {"seed": 7},
    {"content": "text and vectors", "seed": 7},
    {"content": "with a picture", "image": {"color": "#ff0000"}},
    {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
    {},  # nothing scripted: the generator answers
]
FORMATS = [
    None,
    ResponseFormat("text"),
    ResponseFormat("json_object"),
    ResponseFormat("json_schema", "answer", {"type": "object", "required": ["answer"]}),
]
ENDPOINTS = [
    Endpoint.CHAT,
    Endpoint.RESPONSES,
    Endpoint.COMPLETIONS,
    Endpoint.EMBEDDINGS,
    Endpoint.MODERATIONS,
    Endpoint.IMAGES,
    Endpoint.SPEECH,
]
GENERATOR = FallbackGenerator(0, Catalog())


def _exchange(endpoint: Endpoint, fmt: ResponseFormat | None, text: str) -> Exchange:
    inputs = (text,) if endpoint in (Endpoint.EMBEDDINGS, Endpoint.MODERATIONS) else ()
    model = "text-embedding-3-small" if endpoint is Endpoint.EMBEDDINGS else "gpt-4o-mini"
    return Exchange(
        endpoint=endpoint,
        model=model,
        body={},
        headers={},
        user_text=text,
        inputs=inputs,
        response_format=fmt,
    )


@settings(max_examples=300)
@given(
    st.sampled_from(REPLIES),
    st.sampled_from(ENDPOINTS),
    st.sampled_from(FORMATS),
    st.text(max_size=30),
    st.binary(min_size=32, max_size=32),
)
def test_a_kept_reply_is_what_building_it_gives(
    value: Any, endpoint: Endpoint, fmt: ResponseFormat | None, text: str, key: bytes
) -> None:
    problems = Problems("<test>")
    spec = compile_reply(value, 1, "rule 't'", problems)
    assert spec is not None and not problems.items, problems.items
    exchange = _exchange(endpoint, fmt, text)
    kept = constant_reply(spec, exchange)
    if kept is None:
        return
    build = Build(exchange, key, 1, "rule 't'", lambda: GENERATOR, strict=True)
    assert build_reply(spec, build) == kept
    assert not build.warnings  # (nothing a build would have flagged is skipped)


def test_a_fixed_text_answering_chat_is_kept_and_a_template_is_not() -> None:
    problems = Problems("<test>")
    fixed = compile_reply("a fixed answer", 1, "rule 't'", problems)
    template = compile_reply({"content": "Hi {{ request.model }}"}, 1, "rule 't'", problems)
    assert fixed is not None and template is not None
    chat = _exchange(Endpoint.CHAT, None, "hello")
    kept = constant_reply(fixed, chat)
    assert kept is not None and kept.choices[0].content == "a fixed answer"
    assert constant_reply(fixed, chat) is kept  # the same object, every request
    assert constant_reply(template, chat) is None
    # A request asking for JSON has the fixed text checked against it: built, not kept.
    asks_json = _exchange(Endpoint.CHAT, ResponseFormat("json_object"), "hello")
    assert constant_reply(fixed, asks_json) is None
