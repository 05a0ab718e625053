"""Wire invariants over arbitrary content, through the real SDK and a real server.

Whatever a rule scripts — any Unicode, any JSON value with any keys, any tool arguments — the
stream, joined as the SDKs join it, is exactly the JSON answer, on chat, legacy completions and the
Responses API; `max_tokens` cuts a prefix, the same streamed or not; every SSE event is valid
framing and valid JSON; and a cassette recorded from any answer replays the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples, json_objects, json_values, texts

from mockai import MockServer
from mockai.wire.events import split_events

MODEL = "gpt-4o-mini"
ASK = [{"role": "user", "content": "go"}]


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    # One server for all examples of a test (hypothesis runs many per test); every answer it
    # sent is validated against the spec when it stops.
    with conformance.checked_server() as running:
        yield running


@pytest.fixture(scope="module")
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


def script(server: MockServer, reply: dict[str, Any]) -> None:
    """Make `reply` the answer to every request."""
    server.clear_rules()
    server.add_rule({"name": "scripted", "reply": reply})


# --- SSE framing, checked on the raw bytes ---------------------------------------------------------


def sse_payloads(raw: bytes, *, done: bool) -> list[Any]:
    """The JSON payloads of a raw SSE body, asserting strict framing on the way.

    Every event is `[event: <type>\\n]data: <one line>\\n\\n` (nothing a parser could split
    differently: no bare CR, no second data line), its data is JSON, and the body ends with
    `data: [DONE]` exactly when `done`.
    """
    assert raw.endswith(b"\n\n"), "the last event must be terminated (Python drops it otherwise)"
    events = split_events(raw)
    assert b"".join(events) == raw
    payloads = []
    for index, event in enumerate(events):
        text = event.decode("utf-8")  # strict: invalid UTF-8 raises
        assert text.endswith("\n\n") and "\r" not in text
        lines = text[:-2].split("\n")
        named = None
        if lines[0].startswith("event: "):
            named = lines.pop(0)[len("event: ") :]
        assert len(lines) == 1 and lines[0].startswith("data: "), event
        data = lines[0][len("data: ") :]
        if data == "[DONE]":
            assert done and index == len(events) - 1, "[DONE] only as the last event"
            continue
        payload = json.loads(data)
        assert isinstance(payload, dict)
        if named is not None:
            assert payload["type"] == named
        payloads.append(payload)
    if done:
        assert events[-1] == b"data: [DONE]\n\n"
    return payloads


_http = httpx.Client(timeout=30)  # one pool for every example (a client costs an SSL context)


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    _http.close()


def raw_stream(server: MockServer, path: str, body: dict[str, Any]) -> bytes:
    with _http.stream("POST", server.url + path, json={**body, "stream": True}) as r:
        assert r.status_code == 200, r.read()
        return r.read()


# --- chat ---------------------------------------------------------------------------------------


def joined_chat(chunks: list[Any], n: int) -> list[dict[str, Any]]:
    """Choices as the SDK's stream consumers rebuild them: content, tool calls, finish."""
    out: list[dict[str, Any]] = [
        {"content": None, "tool_calls": {}, "function_call": None, "finish": None, "role": None}
        for _ in range(n)
    ]
    for chunk in chunks:
        for choice in chunk.choices:
            got = out[choice.index]
            delta = choice.delta
            if delta.role is not None:
                assert got["role"] is None, "role only in the first delta"
                got["role"] = delta.role
            if delta.content is not None:
                got["content"] = (got["content"] or "") + delta.content
            for call in delta.tool_calls or ():
                slot = got["tool_calls"].setdefault(call.index, {"name": "", "arguments": ""})
                if call.id is not None:
                    assert "id" not in slot, "a tool call's id only in its first fragment"
                    slot["id"] = call.id
                if call.function is not None:
                    slot["name"] += call.function.name or ""
                    slot["arguments"] += call.function.arguments or ""
            if delta.function_call is not None:  # (the deprecated functions API)
                joined = got["function_call"] or {"name": "", "arguments": ""}
                joined["name"] += delta.function_call.name or ""
                joined["arguments"] += delta.function_call.arguments or ""
                got["function_call"] = joined
            if choice.finish_reason is not None:
                got["finish"] = choice.finish_reason
    return out


def chat_both_ways(
    client: openai.OpenAI,
    server: MockServer,
    stream_options: dict[str, Any] | None = None,
    **params: Any,
) -> tuple[Any, list[Any], list[Any]]:
    """The JSON answer, the SDK's stream chunks, and the raw stream's payloads."""
    body = {"model": MODEL, "messages": ASK, **params}
    answer = client.chat.completions.create(**body)
    streamed = {**body, "stream_options": stream_options} if stream_options else body
    chunks = list(client.chat.completions.create(**streamed, stream=True))
    payloads = sse_payloads(raw_stream(server, "/chat/completions", streamed), done=True)
    return answer, chunks, payloads


@settings(max_examples=examples(40))
@given(
    content=texts(),
    n=st.integers(min_value=1, max_value=3),
    obfuscate=st.booleans(),
    usage=st.booleans(),
)
def test_chat_streams_join_to_the_json_answer(
    client: openai.OpenAI, server: MockServer, content: str, n: int, obfuscate: bool, usage: bool
) -> None:
    script(server, {"content": content})
    options = {"include_obfuscation": obfuscate, "include_usage": usage}
    answer, chunks, payloads = chat_both_ways(client, server, n=n, stream_options=options)
    assert [c.message.content for c in answer.choices] == [content] * n
    joined = joined_chat(chunks, n)
    assert [j["content"] for j in joined] == [c.message.content for c in answer.choices]
    assert [j["finish"] for j in joined] == [c.finish_reason for c in answer.choices]
    assert all(j["role"] == "assistant" for j in joined)
    # The raw payloads say the same as the SDK's objects, and obfuscation is there iff asked.
    assert len(payloads) == len(chunks)
    padded = [p for p in payloads if "obfuscation" in p]
    assert bool(padded) == (obfuscate and any(p["choices"] for p in payloads))
    if usage:
        assert all("usage" in p for p in payloads)
        assert chunks[-1].choices == [] and chunks[-1].usage == answer.usage
        assert all(p["usage"] is None for p in payloads[:-1])
    else:
        assert all(p.get("usage") is None for p in payloads)


@settings(max_examples=examples(30))
@given(value=json_values())
def test_a_json_answer_streams_as_the_same_json(
    client: openai.OpenAI, server: MockServer, value: Any
) -> None:
    script(server, {"json": value})
    answer, chunks, _ = chat_both_ways(client, server)
    sent = answer.choices[0].message.content
    assert json.loads(sent) == value
    assert joined_chat(chunks, 1)[0]["content"] == sent


@settings(max_examples=examples(30))
@given(
    calls=st.lists(
        st.tuples(st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_-]{0,20}", fullmatch=True), json_objects()),
        min_size=1,
        max_size=3,
    ),
    content=st.one_of(st.none(), texts()),
    legacy=st.booleans(),
)
def test_streamed_tool_arguments_join_to_the_scripted_arguments(
    client: openai.OpenAI,
    server: MockServer,
    calls: list[tuple[str, dict[str, Any]]],
    content: str | None,
    legacy: bool,
) -> None:
    """Text said before the calls, and the calls, stream exactly once each: joined as the SDK
    joins them, the stream is the JSON answer."""
    reply: dict[str, Any] = {"tool_calls": [{"name": n, "arguments": a} for n, a in calls]}
    if content is not None:
        reply["content"] = content
    script(server, reply)
    if legacy:  # the deprecated functions API: one call, `function_call` deltas
        calls = calls[:1]
        functions = [{"name": name, "parameters": {"type": "object"}} for name, _ in calls]
        answer, chunks, _ = chat_both_ways(client, server, functions=functions)
        message = answer.choices[0].message
        assert (message.content or "") == (content or "")
        assert message.function_call is not None
        assert (message.function_call.name, json.loads(message.function_call.arguments)) == calls[0]
        streamed = joined_chat(chunks, 1)[0]
        assert (streamed["content"] or "") == (content or "")  # the text, once
        assert streamed["function_call"] == {
            "name": message.function_call.name,
            "arguments": message.function_call.arguments,
        }
        return
    answer, chunks, _ = chat_both_ways(client, server)
    message = answer.choices[0].message
    assert (message.content or "") == (content or "")
    sent = message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in sent] == calls
    streamed = joined_chat(chunks, 1)[0]
    assert (streamed["content"] or "") == (content or "")  # the text, once
    assert streamed["finish"] == answer.choices[0].finish_reason == "tool_calls"
    rebuilt = [streamed["tool_calls"][index] for index in sorted(streamed["tool_calls"])]
    # (ids differ: a streamed request is another request, and ids derive from the request)
    assert all(call.pop("id").startswith("call_") for call in rebuilt)
    assert rebuilt == [{"name": c.function.name, "arguments": c.function.arguments} for c in sent]


@settings(max_examples=examples(30))
@given(content=texts(min_size=1), limit=st.integers(min_value=1, max_value=12))
def test_max_tokens_cuts_a_prefix_the_same_streamed_or_not(
    client: openai.OpenAI, server: MockServer, content: str, limit: int
) -> None:
    script(server, {"content": content})
    full = client.chat.completions.create(model=MODEL, messages=ASK).choices[0]
    answer, chunks, _ = chat_both_ways(client, server, max_tokens=limit)
    cut = answer.choices[0]
    assert full.message.content.startswith(cut.message.content)
    streamed = joined_chat(chunks, 1)[0]
    assert (streamed["content"] or "") == cut.message.content
    assert streamed["finish"] == cut.finish_reason
    assert (cut.finish_reason == "length") == (cut.message.content != full.message.content)
    assert answer.usage.completion_tokens <= limit


@settings(max_examples=examples(15))
@given(limit=st.integers(min_value=1, max_value=40), seed=st.integers(0, 2**31))
def test_generated_answers_cut_by_max_tokens_are_prefixes_of_the_full_answer(
    client: openai.OpenAI, server: MockServer, limit: int, seed: int
) -> None:
    server.clear_rules()  # the generator answers
    messages = [{"role": "user", "content": f"Tell me about {seed}"}]
    full = client.chat.completions.create(model=MODEL, messages=messages)
    cut = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=limit)
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=limit, stream=True
    )
    streamed = joined_chat(list(stream), 1)[0]["content"] or ""
    assert full.choices[0].message.content.startswith(cut.choices[0].message.content)
    assert streamed == cut.choices[0].message.content


# --- legacy completions ---------------------------------------------------------------------------


@settings(max_examples=examples(30))
@given(content=texts(), n=st.integers(min_value=1, max_value=3), usage=st.booleans())
def test_completions_streams_join_to_the_json_answer(
    client: openai.OpenAI, server: MockServer, content: str, n: int, usage: bool
) -> None:
    script(server, {"content": content})
    # (the legacy API's max_tokens defaults to 16: ask for room for the whole answer)
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "go", "n": n, "max_tokens": 4000}
    answer = client.completions.create(**body)
    assert [c.text for c in answer.choices] == [content] * n
    options = {"include_usage": True} if usage else None
    joined: dict[int, str] = {}
    finishes: dict[int, str | None] = {}
    chunks = list(client.completions.create(**body, stream=True, stream_options=options))
    for chunk in chunks:
        for choice in chunk.choices:
            joined[choice.index] = joined.get(choice.index, "") + choice.text
            if choice.finish_reason is not None:
                finishes[choice.index] = choice.finish_reason
    assert [joined.get(i, "") for i in range(n)] == [c.text for c in answer.choices]
    assert [finishes.get(i) for i in range(n)] == [c.finish_reason for c in answer.choices]
    if usage:
        assert chunks[-1].usage == answer.usage
    raw = raw_stream(server, "/completions", {**body, "stream_options": options})
    assert len(sse_payloads(raw, done=True)) == len(chunks)


# --- the Responses API ------------------------------------------------------------------------------


@settings(max_examples=examples(30))
@given(content=texts(), obfuscate=st.booleans())
def test_responses_streams_join_to_the_json_answer(
    client: openai.OpenAI, server: MockServer, content: str, obfuscate: bool
) -> None:
    script(server, {"content": content})
    answer = client.responses.create(model=MODEL, input="go")
    assert answer.output_text == content
    options = {"include_obfuscation": obfuscate}
    deltas = []
    # The SDK's helper enforces the event order (created first, parts before deltas, ...).
    with client.responses.stream(model=MODEL, input="go", stream_options=options) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
            if event.type == "response.output_text.done":
                assert event.text == content
        final = stream.get_final_response()
    assert "".join(deltas) == content
    assert final.output_text == answer.output_text
    assert final.usage == answer.usage
    raw = raw_stream(
        server, "/responses", {"model": MODEL, "input": "go", "stream_options": options}
    )
    payloads = sse_payloads(raw, done=False)
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    assert payloads[-1]["type"] == "response.completed"
    padded = [p for p in payloads if "obfuscation" in p]
    assert bool(padded) == (obfuscate and bool(deltas))


@settings(max_examples=examples(25))
@given(name=st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True), args=json_objects())
def test_responses_function_call_arguments_join_to_the_scripted_arguments(
    client: openai.OpenAI, server: MockServer, name: str, args: dict[str, Any]
) -> None:
    script(server, {"tool_calls": [{"name": name, "arguments": args}]})
    answer = client.responses.create(model=MODEL, input="go")
    (call,) = [item for item in answer.output if item.type == "function_call"]
    assert call.name == name and json.loads(call.arguments) == args
    deltas = []
    with client.responses.stream(model=MODEL, input="go") as stream:
        for event in stream:
            if event.type == "response.function_call_arguments.delta":
                deltas.append(event.delta)
            if event.type == "response.function_call_arguments.done":
                assert event.arguments == call.arguments
        final = stream.get_final_response()
    assert "".join(deltas) == call.arguments
    (streamed,) = [item for item in final.output if item.type == "function_call"]
    assert (streamed.name, streamed.arguments) == (call.name, call.arguments)


# --- cassettes ----------------------------------------------------------------------------------


@settings(max_examples=examples(10))
@given(content=texts(), value=json_objects(max_leaves=6))
def test_a_cassette_recorded_from_any_answer_replays_the_same_bytes(
    server: MockServer, tmp_path_factory: pytest.TempPathFactory, content: str, value: Any
) -> None:
    # `server` (scripted) is the upstream; a second server records through it; a third replays.
    server.clear_rules()
    server.add_rules(
        [
            {"name": "text", "match": {"user": {"equals": "text"}}, "reply": {"content": content}},
            {"name": "json", "match": {"user": {"equals": "json"}}, "reply": {"json": value}},
        ]
    )
    cassette = tmp_path_factory.mktemp("cassette") / "any.yaml"
    requests = [
        ("/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": ask}]})
        for ask in ("text", "json")
    ] + [("/responses", {"model": MODEL, "input": [{"role": "user", "content": "text"}]})]

    def answers(url: str) -> list[bytes]:
        out = []
        for path, body in requests:
            out.append(_http.post(url + path, json=body).content)
            with _http.stream("POST", url + path, json={**body, "stream": True}) as r:
                out.append(r.read())
        return out

    with MockServer(
        cassette=str(cassette), record_mode="once", upstream=server.url, log_requests=False
    ) as recorder:
        recorded = answers(recorder.url)
    with MockServer(cassette=str(cassette), log_requests=False) as replayer:
        replayed = answers(replayer.url)
        entries = list(replayer.requests)
    assert replayed == recorded
    assert all(entry.source == "cassette" for entry in entries)
    for stream_body, entry in zip(recorded[1::2], entries[1::2], strict=True):
        assert list(entry.response_events()) == split_events(stream_body)
    assert json.loads(json.loads(recorded[2])["choices"][0]["message"]["content"]) == value


def test_the_cassette_keeps_what_it_recorded(tmp_path: Path) -> None:
    # The one example the property above must hold for, by name: a snake_case key in a stream.
    with MockServer(log_requests=False) as upstream:
        upstream.add_rule({"reply": {"json": {"first_name": "Ann", "city_name": "a_b"}}})
        with MockServer(
            cassette=str(tmp_path / "c.yaml"), record_mode="once", upstream=upstream.url
        ) as recorder:
            body = {"model": MODEL, "messages": ASK, "stream": True}
            raw = raw_stream(recorder, "/chat/completions", body)
    text = "".join(
        p["choices"][0]["delta"].get("content") or ""
        for p in sse_payloads(raw, done=True)
        if p["choices"]
    )
    assert json.loads(text) == {"first_name": "Ann", "city_name": "a_b"}


@settings(max_examples=examples(20))
@given(content=texts(min_size=1, max_size=80), limit=st.integers(min_value=16, max_value=40))
def test_responses_cut_by_max_output_tokens_the_same_streamed_or_not(
    client: openai.OpenAI, server: MockServer, content: str, limit: int
) -> None:
    script(server, {"content": content})
    full = client.responses.create(model=MODEL, input="go")
    cut = client.responses.create(model=MODEL, input="go", max_output_tokens=limit)
    assert full.output_text.startswith(cut.output_text)
    truncated = cut.output_text != full.output_text
    assert cut.status == ("incomplete" if truncated else "completed")
    events = list(
        client.responses.create(model=MODEL, input="go", max_output_tokens=limit, stream=True)
    )
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == cut.output_text
    last = events[-1]  # response.completed, or response.incomplete when cut
    assert last.type == f"response.{cut.status}"
    assert last.response.output_text == cut.output_text
    assert last.response.incomplete_details == cut.incomplete_details
