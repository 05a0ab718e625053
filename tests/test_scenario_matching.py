"""Matching: every `match` key and operator, first match wins, sequences, limits, near misses."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance
import openai
import pytest
from sdk import sdk

from mockai import MockServer

MATCHING = """
mockai: 1
rules:
  - name: header-case
    match: {headers: {X-Test-Case: {equals: abc}}}
    reply: header matched
  - name: cold-body
    match: {body: {temperature: 0}}
    reply: temperature zero
  - name: json-mode
    match: {body: {response_format: {type: json_object}}}
    reply: {json: {mode: json}}
  - name: stop-list
    match: {body: {stop: [END, STOP]}}
    reply: stop list
  - name: streamed
    match: {stream: true, user: stream}
    reply: streamed answer
  - name: not-streamed
    match: {stream: false, user: stream}
    reply: plain answer
  - name: pirate
    match: {system: {contains: pirate}}
    reply: arr
  - name: exact
    match: {user: {equals: ping}}
    reply: pong
  - name: prefix
    match: {user: {startswith: "Translate:"}}
    reply: translated
  - name: suffix
    match: {user: {endswith: "?!"}}
    reply: surprised
  - name: regex
    match: {user: {regex: "^order #\\\\d+$"}}
    reply: order found
  - name: ignoring-case
    match: {user: {equals: hello, ignore_case: true}}
    reply: hi there
  - name: not-goodbye
    match: {user: {not: {contains: bye}}, model: gpt-3.5-turbo}
    reply: still here
  - name: mini-only
    match: {model: gpt-4o-mini, user: model}
    reply: mini
  - name: gpt4-family
    match: {model: "gpt-4*", user: model}
    reply: gpt-4 family
  - name: third-turn
    match: {turn: 3}
    reply: third turn
  - name: later-turns
    match: {turn: {min: 4}}
    reply: later turn
  - name: tool-result-18
    match: {tool_result: {contains: 18C}}
    reply: mild
  - name: any-tool-result
    match: {has_tool_result: true}
    reply: got a result
  - name: with-tools
    match: {tools: [search, fetch]}
    reply: both tools offered
  - name: legacy
    match: {endpoint: completions}
    reply: " legacy"
  - name: pinned-vector
    match: {endpoint: embeddings, user: {equals: pin}}
    reply: {vector: [0.6, 0.8]}
  - name: flagged
    match: {endpoint: moderations, user: {contains: forbidden}}
    reply: {categories: {violence: true}}
  - name: conversation
    match: {endpoint: [chat, responses], user: both}
    reply: either endpoint
  - name: bare-string
    match: {user: weather}
    reply: contains weather
"""

TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


def scenario(tmp: Path, text: str) -> str:
    path = tmp / "scenario.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def matching_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    return scenario(tmp_path_factory.mktemp("matching"), MATCHING)


@pytest.fixture
def server(matching_file: str) -> Iterator[MockServer]:
    with conformance.checked_server(scenarios=(matching_file,)) as running:
        yield running


@pytest.fixture
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


def ask(client: openai.OpenAI, text: str, model: str = "gpt-4o-mini", **options: Any) -> str | None:
    messages = options.pop("messages", None) or [{"role": "user", "content": text}]
    answer = client.chat.completions.create(model=model, messages=messages, **options)
    return answer.choices[0].message.content


def answered_by(server: MockServer) -> str | None:
    return server.requests[-1].rule


# --- text operators --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule", "answer"),
    [
        ("ping", "exact", "pong"),
        ("Translate: bonjour", "prefix", "translated"),
        ("You did what?!", "suffix", "surprised"),
        ("order #1234", "regex", "order found"),
        ("HeLLo", "ignoring-case", "hi there"),
        ("what's the weather like", "bare-string", "contains weather"),
    ],
)
def test_text_operators(
    client: openai.OpenAI, server: MockServer, text: str, rule: str, answer: str
) -> None:
    assert ask(client, text) == answer
    assert answered_by(server) == rule


@pytest.mark.parametrize(
    "text", ["ping pong", "Please Translate: x", "order #12a", "hello!", "rainy"]
)
def test_text_operators_do_not_overmatch(client: openai.OpenAI, text: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        ask(client, text)
    assert raised.value.code == "mockai_no_match"


def test_not_operator(client: openai.OpenAI, server: MockServer) -> None:
    assert ask(client, "anything at all", model="gpt-3.5-turbo") == "still here"
    with pytest.raises(openai.BadRequestError):
        ask(client, "bye now", model="gpt-3.5-turbo")


# --- each match key --------------------------------------------------------------------------------


def test_model_globs(client: openai.OpenAI, server: MockServer) -> None:
    assert ask(client, "which model?", model="gpt-4o-mini") == "mini"
    assert ask(client, "which model?", model="gpt-4.1") == "gpt-4 family"
    with pytest.raises(openai.BadRequestError):
        ask(client, "which model?", model="o3-mini")


def test_system_matches_system_developer_and_instructions(client: openai.OpenAI) -> None:
    for role in ("system", "developer"):
        messages = [
            {"role": role, "content": "You are a pirate."},
            {"role": "user", "content": "hi"},
        ]
        assert ask(client, "", messages=messages) == "arr"
    response = client.responses.create(
        model="gpt-4o-mini", instructions="Talk like a pirate", input="hi"
    )
    assert response.output_text == "arr"


def test_stream_flag(client: openai.OpenAI) -> None:
    assert ask(client, "stream please") == "plain answer"
    chunks = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "stream please"}], stream=True
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed answer"
    )


def test_headers_ignore_case(client: openai.OpenAI, server: MockServer) -> None:
    assert ask(client, "x", extra_headers={"x-test-case": "abc"}) == "header matched"
    with pytest.raises(openai.BadRequestError) as raised:
        ask(client, "x", extra_headers={"X-TEST-CASE": "abcd"})
    report = raised.value.body["message"]  # type: ignore[index]
    assert report.splitlines()[4].startswith("rule 'header-case'")  # 'abcd' is nearest 'abc'
    assert "headers.x-test-case: equals 'abc' | 'abcd'" in report


def test_body_subset(client: openai.OpenAI, server: MockServer) -> None:
    assert ask(client, "x", temperature=0) == "temperature zero"
    assert ask(client, "x json", response_format={"type": "json_object"}) == '{"mode":"json"}'
    assert ask(client, "x", stop=["END", "STOP"]) == "stop list"
    with pytest.raises(openai.BadRequestError):
        ask(client, "x", stop=["STOP", "END"])  # lists match in order
    with pytest.raises(openai.BadRequestError):
        ask(client, "x", temperature=0.5)


def test_turn_counts_user_turns(client: openai.OpenAI, server: MockServer) -> None:
    def conversation(turns: int) -> list[dict[str, str]]:
        messages = []
        for index in range(turns):
            messages.append({"role": "user", "content": f"question {index}"})
            messages.append({"role": "assistant", "content": f"answer {index}"})
        return messages[:-1]

    assert ask(client, "", messages=conversation(3)) == "third turn"
    assert ask(client, "", messages=conversation(5)) == "later turn"
    with pytest.raises(openai.BadRequestError):
        ask(client, "", messages=conversation(2))


def _with_result(result: str) -> list[dict[str, Any]]:
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    return [
        {"role": "user", "content": "temperature in Paris"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": result},
    ]


def test_tool_result_and_has_tool_result(client: openai.OpenAI, server: MockServer) -> None:
    assert ask(client, "", messages=_with_result("18C and sunny"), tools=[TOOL]) == "mild"
    assert ask(client, "", messages=_with_result("31C"), tools=[TOOL]) == "got a result"
    assert answered_by(server) == "any-tool-result"


def test_tools_offered(client: openai.OpenAI, server: MockServer) -> None:
    def tool(name: str) -> dict[str, Any]:
        return {"type": "function", "function": {"name": name}}

    assert (
        ask(client, "x", tools=[tool("fetch"), tool("other"), tool("search")])
        == "both tools offered"
    )
    with pytest.raises(openai.BadRequestError):
        ask(client, "x", tools=[tool("search")])


def test_endpoints(client: openai.OpenAI, server: MockServer) -> None:
    assert ask(client, "both please") == "either endpoint"
    assert (
        client.responses.create(model="gpt-4o-mini", input="both please").output_text
        == "either endpoint"
    )
    legacy = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="say something")
    assert legacy.choices[0].text == " legacy"
    vectors = client.embeddings.create(model="text-embedding-3-small", input=["other text", "pin"])
    # One input matching is enough for the rule to answer it (the SDK asks for base64: float32
    # precision); the other input gets what it gets alone: no rule matches it, so a generated one.
    assert vectors.data[1].embedding == pytest.approx([0.6, 0.8])
    assert len(vectors.data[0].embedding) == 1536
    moderation = client.moderations.create(input="something forbidden")
    assert moderation.results[0].categories.violence is True
    assert moderation.results[0].flagged is True


def test_first_match_wins(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        """
        mockai: 1
        rules:
          - {name: specific, match: {user: hello, model: gpt-4o}, reply: specific}
          - {name: general, match: {user: hello}, reply: general}
        """,
    )
    with conformance.checked_server(scenarios=(path,)) as server, sdk(server) as client:
        assert ask(client, "hello", model="gpt-4o") == "specific"
        assert ask(client, "hello", model="gpt-4o-mini") == "general"


# --- sequences and limits --------------------------------------------------------------------------

SEQUENCES = """
mockai: 1
rules:
  - name: counting
    match: {user: count}
    sequence:
      - reply: one
      - reply: two
      - reply: "three (call {{ call }})"
  - name: drain
    match: {user: drain}
    sequence:
      - reply: first
      - reply: second
    then: fallthrough
  - name: drain-after
    match: {user: drain}
    reply: after the sequence
  - name: twice
    match: {user: twice}
    times: 2
    reply: limited
"""


@pytest.fixture
def sequenced(tmp_path: Path) -> Iterator[tuple[MockServer, openai.OpenAI]]:
    path = scenario(tmp_path, SEQUENCES)
    with conformance.checked_server(scenarios=(path,)) as server, sdk(server) as client:
        yield server, client


def test_sequence_steps_then_the_last_repeats(sequenced: tuple[MockServer, openai.OpenAI]) -> None:
    server, client = sequenced
    assert [ask(client, "count") for _ in range(5)] == [
        "one",
        "two",
        "three (call 3)",
        "three (call 4)",
        "three (call 5)",
    ]
    server.reset()  # counters start over
    assert ask(client, "count") == "one"


def test_sequence_then_fallthrough(sequenced: tuple[MockServer, openai.OpenAI]) -> None:
    server, client = sequenced
    assert [ask(client, "drain") for _ in range(4)] == [
        "first",
        "second",
        "after the sequence",
        "after the sequence",
    ]
    assert [e.rule for e in server.requests] == ["drain", "drain", "drain-after", "drain-after"]


def test_times_then_already_consumed(sequenced: tuple[MockServer, openai.OpenAI]) -> None:
    _server, client = sequenced
    assert [ask(client, "twice") for _ in range(2)] == ["limited", "limited"]
    with pytest.raises(openai.BadRequestError) as raised:
        ask(client, "twice")
    message = raised.value.body["message"]  # type: ignore[index]
    assert "rule 'twice'" in message
    assert "every condition holds, but the rule is used up" in message
    assert "<<<<< already consumed (served 2 of 2 times)" in message


def test_sequences_count_per_rule_across_endpoints(
    sequenced: tuple[MockServer, openai.OpenAI],
) -> None:
    _, client = sequenced
    assert ask(client, "count") == "one"
    assert client.responses.create(model="gpt-4o-mini", input="count").output_text == "two"
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "count"}], stream=True
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "three (call 3)"
    )


# --- no match ---------------------------------------------------------------------------------------

AGENT = """
mockai: 1
rules:
  - name: weather-call
    match: {user: weather, tools: [get_weather], has_tool_result: false}
    reply: {tool_calls: [{name: get_weather, arguments: {city: Paris}}]}
  - name: greeting
    match: {user: {startswith: hello}}
    reply: hi
  - name: farewell
    match: {user: goodbye, stream: true}
    reply: bye
"""


def test_no_match_names_the_closest_rule_and_the_failing_field(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        conformance.checked_server(scenarios=(scenario(tmp_path, AGENT),)) as server,
        sdk(server) as client,
        caplog.at_level(logging.WARNING, logger="mockai"),
        pytest.raises(openai.BadRequestError) as raised,
    ):
        ask(client, "what's the weather in Paris?")
    error = raised.value
    assert error.status_code == 400 and error.code == "mockai_no_match"
    report = error.body["message"]  # type: ignore[index]
    lines = report.splitlines()
    assert lines[0] == "mockai: no rule or recording matches this chat request."
    closest = lines.index(next(line for line in lines if line.startswith("rule '")))
    assert (
        lines[closest]
        == f"rule 'weather-call' ({tmp_path / 'scenario.yaml'}:3): 1 of 3 conditions failed"
    )
    table = lines[closest + 1 : closest + 6]
    assert table[0].split("|")[0].strip() == "Closest rule"
    rows = {row.split("|")[0].split(":")[0].strip(): row for row in table[2:]}
    assert rows["user"].split("|")[1].strip() == '"what\'s the weather in Paris?"'
    assert "<<<<<" not in rows["user"] and "<<<<<" not in rows["has_tool_result"]
    assert rows["tools"].endswith("<<<<< tools does not match")
    assert "offers get_weather" in rows["tools"] and "(no tools)" in rows["tools"]
    assert "All rules, in the order they are asked:" in report
    assert f"{tmp_path / 'scenario.yaml'}: weather-call, greeting, farewell" in report
    # The same report reaches the server log, for the test author reading CI output.
    assert any(
        "rule 'weather-call'" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
    )
    assert server.requests[-1].source == "error"
    assert server.requests[-1].error["code"] == "mockai_no_match"


def test_no_match_ranks_by_failed_then_held_conditions(tmp_path: Path) -> None:
    with (
        conformance.checked_server(scenarios=(scenario(tmp_path, AGENT),)) as server,
        sdk(server) as client,
        pytest.raises(openai.BadRequestError) as raised,
    ):
        ask(client, "goodbye then")
    report = raised.value.body["message"]  # type: ignore[index]
    ranked = [line.split("'")[1] for line in report.splitlines() if line.startswith("rule '")]
    assert ranked == ["farewell", "greeting", "weather-call"]
    assert "stream: true             | false" in report


def test_no_match_status_and_explicit_generate_fallback(tmp_path: Path) -> None:
    path = scenario(tmp_path, AGENT)
    with (
        conformance.checked_server(scenarios=(path,), no_match_status=404) as server,
        sdk(server) as client,
        pytest.raises(openai.NotFoundError),
    ):
        ask(client, "nothing matches")
    with (
        conformance.checked_server(scenarios=(path,), fallback="generate") as server,
        sdk(server) as client,
    ):
        assert len(ask(client, "nothing matches") or "") > 10
        assert server.requests[-1].source == "generator"


def test_default_fallback_generates_until_a_rule_is_loaded() -> None:
    with conformance.checked_server() as server, sdk(server) as client:
        assert ask(client, "anything") is not None
        server.add_rule({"match": {"user": {"equals": "hi"}}, "reply": "hello"})
        with pytest.raises(openai.BadRequestError) as raised:
            ask(client, "anything")
        assert "rule 'rule-1' (<runtime>)" in raised.value.message
        server.clear_rules()
        assert ask(client, "anything") is not None


def test_embeddings_and_completions_match_on_their_inputs(
    client: openai.OpenAI, server: MockServer
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model="text-embedding-3-small", input="unpinned")
    assert "rule 'pinned-vector'" in raised.value.message


def test_many_literal_rules_answer_in_file_order_through_the_index(tmp_path: Path) -> None:
    # 30 rules told apart by their user text (what the rule index narrows on), two sharing a
    # literal with `times: 1`, a rule without a literal in the middle, and one that only a
    # longer text reaches: each request gets the first rule a plain scan would pick.
    rules = [
        f"  - {{name: topic-{n}, match: {{user: 'topic {n:02d}'}}, reply: 'answer {n}'}}"
        for n in range(1, 31)
    ]
    rules[4] = "  - {name: once, match: {user: 'topic 05'}, reply: first, times: 1}"
    rules.insert(5, "  - {name: then, match: {user: {startswith: 'topic 05'}}, reply: second}")
    rules.insert(10, "  - {name: mini, match: {model: gpt-4o-mini, user: {regex: 'x$'}}, reply: x}")
    path = tmp_path / "many.yaml"
    path.write_text("mockai: 1\nrules:\n" + "\n".join(rules) + "\n")
    with conformance.checked_server(scenarios=(str(path),)) as server, sdk(server) as client:
        assert ask(client, "topic 30") == "answer 30"
        assert ask(client, "topic 05") == "first"
        assert ask(client, "topic 05") == "second"  # `once` is used up: the next rule answers
        with pytest.raises(openai.BadRequestError):  # has the literal, matches no rule
            ask(client, "about topic 05")
        assert ask(client, "topic 29 then topic 07") == "answer 7"  # the earlier rule wins
        assert ask(client, "topic 30x") == "x"  # the ungated rule comes before topic-30
        server.add_rule({"name": "late", "match": {"user": "topic 30"}, "reply": "runtime"})
        assert ask(client, "topic 30") == "runtime"  # a runtime rule joins the index first
        with pytest.raises(openai.BadRequestError):
            ask(client, "topic 99")
