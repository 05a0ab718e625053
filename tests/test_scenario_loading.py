"""Loading scenario files: every problem at once, as `file:line: what is wrong (the fix)`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk import sdk

from mockai import ConfigError, MockServer, ScenarioError
from mockai.cli import main
from mockai.delivery.faults import parse_faults
from mockai.delivery.timing import parse_delay, parse_duration, parse_stream
from mockai.scenario import loader


def refusal(parse: Callable[[Any], object], value: Any) -> str:
    """The message a shared parser (timing, faults) gives for `value`: rules quote it after
    `file:line: rule 'x' key: `, so the table follows its wording wherever it is maintained."""
    try:
        parse(value)
    except ValueError as error:
        return str(error)
    raise AssertionError(f"{value!r} was accepted")


# (case id, file text, [(line, message), ...]): one broken file per row, every problem it has.
BROKEN = [
    (
        "yaml-syntax",
        """
        mockai: 1
        rules:
          - name: a
            reply: {content: "unterminated}
        """,
        [(5, "invalid YAML: found unexpected end of stream (while scanning a quoted scalar)")],
    ),
    (
        "empty-file",
        "",
        [
            (
                1,
                "a scenario file is a mapping starting with 'mockai: 1' followed by 'rules:' (the file is empty)",
            )
        ],
    ),
    (
        "top-level-list",
        "- mockai: 1\n",
        [
            (
                1,
                "a scenario file is a mapping starting with 'mockai: 1' followed by 'rules:', got [{mockai: 1}]",
            )
        ],
    ),
    (
        "missing-version",
        """
        rules:
          - reply: hi
        """,
        [(1, "missing 'mockai: 1' (the format version) at the top of the file")],
    ),
    (
        "unsupported-version",
        """
        mockai: 2
        rules: []
        """,
        [(1, "'mockai: 2' is not a supported format version (this mockai reads version 1)")],
    ),
    (
        "unknown-top-level-key",
        """
        mockai: 1
        rule:
          - reply: hi
        """,
        [(2, "unknown top-level key 'rule' (did you mean 'rules'?)")],
    ),
    (
        "rules-not-a-list",
        """
        mockai: 1
        rules: {name: a}
        """,
        [(2, "rules must be a list of rules, got {name: 'a'}")],
    ),
    (
        "rule-not-a-mapping",
        """
        mockai: 1
        rules:
          - just a string
        """,
        [
            (
                3,
                "a rule must be a mapping with match and reply (or error, sequence), got 'just a string'",
            )
        ],
    ),
    (
        "misspelt-rule-key",
        """
        mockai: 1
        rules:
          - name: greet
            match: {user: hi}
            repy: {content: hello}
        """,
        [(5, "unknown key 'repy' in rule 'greet' (did you mean 'reply'?)")],
    ),
    (
        "two-answers",
        """
        mockai: 1
        rules:
          - name: a
            reply: {content: x}
            error: rate_limit
        """,
        [(5, "rule 'a' has both 'reply' and 'error': give exactly one of reply, error, sequence")],
    ),
    (
        "no-answer",
        """
        mockai: 1
        rules:
          - name: a
            match: {user: x}
        """,
        [(3, "rule 'a' has no answer: give one of reply, error, sequence")],
    ),
    (
        "duplicate-rule-names",
        """
        mockai: 1
        rules:
          - name: a
            match: {user: x}
            reply: hi
          - name: a
            match: {user: y}
            reply: hi
        """,
        [(6, "duplicate rule name 'a' (first used at line 3); rule names must be unique")],
    ),
    (
        "duplicate-yaml-key",
        """
        mockai: 1
        rules:
          - name: a
            reply: hi
            reply: ho
        """,
        [(5, "duplicate key 'reply' (first at line 4)")],
    ),
    (
        "bad-regex",
        """
        mockai: 1
        rules:
          - name: a
            match:
              user: {regex: "(unclosed"}
            reply: hi
        """,
        [
            (
                5,
                "invalid regex '(unclosed' in rule 'a' match.user: missing ), unterminated subpattern at position 0",
            )
        ],
    ),
    (
        "regex-repeat-overflow",
        """
        mockai: 1
        rules:
          - name: a
            match:
              user: {regex: "a{99999999999}"}
            reply: hi
        """,
        [
            (
                5,
                "invalid regex 'a{99999999999}' in rule 'a' match.user: the repetition number is too large",
            )
        ],
    ),
    (
        "bad-header-regex",
        """
        mockai: 1
        rules:
          - name: a
            match:
              headers:
                x-case: {regex: "["}
            reply: hi
        """,
        [
            (
                6,
                "invalid regex '[' in rule 'a' match.headers.x-case: unterminated character set at position 0",
            )
        ],
    ),
    (
        "unknown-operator",
        """
        mockai: 1
        rules:
          - name: a
            match:
              user: {contain: hi}
            reply: hi
        """,
        [(5, "unknown operator 'contain' in rule 'a' match.user (did you mean 'contains'?)")],
    ),
    (
        "two-operators",
        """
        mockai: 1
        rules:
          - name: a
            match:
              user: {contains: hi, equals: ho}
            reply: hi
        """,
        [
            (
                5,
                "rule 'a' match.user takes exactly one operator (equals, contains, startswith, endswith, regex), got 2: contains, equals",
            )
        ],
    ),
    (
        "not-with-company",
        """
        mockai: 1
        rules:
          - name: a
            match: {user: {not: hi, equals: ho}}
            reply: hi
        """,
        [
            (
                4,
                "rule 'a' match.user: 'not' takes one condition and nothing beside it, got it with equals (write {not: {contains: text}})",
            )
        ],
    ),
    (
        "yaml-boolean-as-text",
        """
        mockai: 1
        rules:
          - name: a
            match: {user: yes}
            reply: hi
        """,
        [
            (
                4,
                "rule 'a' match.user must be a string or a mapping such as {contains: text}, got true (quote it if you meant the text)",
            )
        ],
    ),
    (
        "unknown-match-key",
        """
        mockai: 1
        rules:
          - name: a
            match: {usr: hi}
            reply: hi
        """,
        [(4, "unknown match key 'usr' in rule 'a' (did you mean 'user'?)")],
    ),
    (
        "unknown-endpoint",
        """
        mockai: 1
        rules:
          - name: a
            match: {endpoint: chats}
            reply: hi
        """,
        [(4, "rule 'a' match.endpoint: 'chats' is not an endpoint (did you mean 'chat'?)")],
    ),
    (
        "stream-not-a-boolean",
        """
        mockai: 1
        rules:
          - name: a
            match: {stream: 1}
            reply: hi
        """,
        [(4, "rule 'a' match.stream must be true or false, got 1")],
    ),
    (
        "turn-range-inverted",
        """
        mockai: 1
        rules:
          - name: a
            match: {turn: {min: 3, max: 1}}
            reply: hi
        """,
        [
            (
                4,
                "rule 'a' match.turn must be a number >= 1 or {min: N, max: M} with 1 <= N <= M, got {min: 3, max: 1}",
            )
        ],
    ),
    (
        "tools-not-names",
        """
        mockai: 1
        rules:
          - name: a
            match: {tools: [1]}
            reply: hi
        """,
        [(4, "rule 'a' match.tools must be a list of tool names, got [1]")],
    ),
    (
        "body-not-a-mapping",
        """
        mockai: 1
        rules:
          - name: a
            match:
              body: [temperature]
            reply: hi
        """,
        [
            (
                5,
                "rule 'a' match.body must be a mapping (a subset of the JSON body), got ['temperature']",
            )
        ],
    ),
    (
        "number-as-text",  # `user: 5` was silently read as "contains '5'"
        """
        mockai: 1
        rules:
          - name: a
            match: {user: 5}
            reply: hi
          - name: b
            match:
              user: {equals: 3.10}
              headers: {x-case: 12}
            reply: hi
          - name: c
            match: {system: {not: {contains: 1.5}}}
            reply: {content: 42}
        """,
        [
            (
                4,
                "rule 'a' match.user must be a string or a mapping such as {contains: text}, got 5 (quote it if you meant the text)",
            ),
            (
                8,
                "rule 'b' match.user: equals takes a string, got 3.1 (quote it if you meant the text)",
            ),
            (
                9,
                "rule 'b' match.headers.x-case must be a string or a mapping such as {contains: text}, got 12 (quote it if you meant the text)",
            ),
            (
                12,
                "rule 'c' match.system.not: contains takes a string, got 1.5 (quote it if you meant the text)",
            ),
            (
                13,
                "rule 'c' reply.content must be a string, got 42 (quote it if you meant the text)",
            ),
        ],
    ),
    (
        "empty-text-matches-everything",  # `user: ""` looks like "empty", means "anything"
        """
        mockai: 1
        rules:
          - name: a
            match: {user: "", tools: [""]}
            reply: hi
          - name: b
            match: {user: {equals: ""}, system: {not: {endswith: ""}}}
            reply: hi
        """,
        [
            (
                4,
                "rule 'a' match.user: contains '' is true of every text (use {equals: ''} for an empty text, or leave the condition out)",
            ),
            (4, "rule 'a' match.tools must be a list of tool names, got ['']"),
            (
                7,
                "rule 'b' match.system.not: endswith '' is true of every text (use {equals: ''} for an empty text, or leave the condition out)",
            ),
        ],
    ),
    (
        "limits-one-prefix",  # it was `limits: limits: limits: rpm must be ...`
        """
        mockai: 1
        limits: {rpm: 0}
        """,
        [(2, "limits: rpm must be a whole number >= 1, got 0")],
    ),
    (
        "limits-misspelt-key",
        """
        mockai: 1
        limits: {gpt-4o: {rmp: 3}}
        """,
        [(2, "limits: gpt-4o: unknown key 'rmp' (did you mean 'rpm'?)")],
    ),
    (
        "template-in-a-literal-block",  # each problem at its own line of the file
        """
        mockai: 1
        rules:
          - name: a
            reply:
              content: |
                Dear {{ request.user }},
                your order {{ request.body.order_id }} shipped.
                {{ request.modle }} thanks you.
          - name: b
            match: {user: b}
            reply: |
              line one
              line two {{ request.model
              line three
        """,
        [
            (
                8,
                "unknown field 'request.modle' in the template of rule 'a' reply.content (template line 3) (did you mean 'model'?)",
            ),
            (
                14,
                "invalid template in rule 'b' reply.content: expected token 'end of print statement', got 'line' (template line 3)",
            ),
        ],
    ),
    (
        "template-multi-line-quoted",  # no 1:1 map to the file: the key's line, and the inner one
        """
        mockai: 1
        rules:
          - name: a
            reply: {content: "one\\ntwo {{ requst.user }}"}
        """,
        [
            (
                4,
                "unknown name 'requst' in the template of rule 'a' reply.content (template line 2) (did you mean 'request'?)",
            )
        ],
    ),
    (
        "template-in-a-json-list-block",
        """
        mockai: 1
        rules:
          - name: a
            reply:
              json:
                items:
                  - fixed
                  - |
                    {{ request.user }}
                    {{ faker.nam() }}
        """,
        [
            (
                10,
                "unknown faker method 'faker.nam' in rule 'a' reply.json (template line 2) (did you mean 'name'?)",
            )
        ],
    ),
    (
        "template-unknown-filter-and-test",  # found only when compiling: now at load time
        """
        mockai: 1
        rules:
          - name: a
            reply:
              content: "{{ request.user | uper }}"
          - name: b
            match: {user: b}
            reply:
              content: "{% if call is evn %}even{% endif %}"
          - name: c
            match: {user: c}
            reply:
              content: "{% include 'header.txt' %}"
        """,
        [
            (
                5,
                "unknown filter 'uper' in the template of rule 'a' reply.content (did you mean 'upper'?)",
            ),
            (
                9,
                "unknown test 'evn' in the template of rule 'b' reply.content (did you mean 'even'?)",
            ),
            (
                13,
                "the template of rule 'c' reply.content cannot extend, include or import other templates",
            ),
        ],
    ),
    (
        "template-syntax",
        """
        mockai: 1
        rules:
          - name: a
            reply:
              content: "Hello {{ request.model }"
        """,
        [(5, "invalid template in rule 'a' reply.content: unexpected '}'")],
    ),
    (
        "template-unknown-name",
        """
        mockai: 1
        rules:
          - name: a
            reply:
              content: "Hello {{ requst.model }}"
        """,
        [
            (
                5,
                "unknown name 'requst' in the template of rule 'a' reply.content (did you mean 'request'?)",
            )
        ],
    ),
    (
        "template-unknown-field",
        """
        mockai: 1
        rules:
          - name: a
            reply:
              content: "Hello {{ request.modle }}"
        """,
        [
            (
                5,
                "unknown field 'request.modle' in the template of rule 'a' reply.content (did you mean 'model'?)",
            )
        ],
    ),
    (
        "template-unknown-faker-method",
        """
        mockai: 1
        rules:
          - name: a
            reply:
              content: "{{ faker.sentance() }}"
        """,
        [
            (
                5,
                "unknown faker method 'faker.sentance' in rule 'a' reply.content (did you mean 'sentence'?)",
            )
        ],
    ),
    (
        "template-in-tool-arguments",
        """
        mockai: 1
        rules:
          - name: a
            reply:
              tool_calls:
                - name: lookup
                  arguments:
                    query: "{{ request.usr }}"
        """,
        [
            (
                8,
                "unknown field 'request.usr' in the template of rule 'a' reply.tool_calls[0].arguments (did you mean 'user'?)",
            )
        ],
    ),
    (
        "misspelt-reply-key",
        """
        mockai: 1
        rules:
          - name: a
            reply: {contnet: hi}
        """,
        [(4, "unknown key 'contnet' in rule 'a' reply (did you mean 'content'?)")],
    ),
    (
        "content-and-json",
        """
        mockai: 1
        rules:
          - name: a
            reply:
              content: hi
              json: {a: 1}
        """,
        [
            (
                6,
                "rule 'a' reply has both 'content' and 'json': give only one of content, json, refusal",
            )
        ],
    ),
    (
        "unknown-finish-reason",
        """
        mockai: 1
        rules:
          - name: a
            reply: {content: hi, finish_reason: done}
        """,
        [
            (
                4,
                "rule 'a' reply.finish_reason: 'done' is not a finish reason (valid: stop, length, tool_calls, content_filter, function_call, eos, error, insufficient_system_resource, model_length)",
            )
        ],
    ),
    (
        "usage-values",
        """
        mockai: 1
        rules:
          - name: a
            reply:
              content: hi
              usage:
                prompt_tokens: -1
                tokens: 3
        """,
        [
            (7, "rule 'a' reply.usage.prompt_tokens must be a whole number >= 0, got -1"),
            (8, "unknown key 'tokens' in rule 'a' reply.usage (did you mean 'total_tokens'?)"),
        ],
    ),
    (
        "tool-call-without-name",
        """
        mockai: 1
        rules:
          - name: a
            reply:
              tool_calls:
                - arguments: {city: Paris}
        """,
        [
            (
                6,
                "rule 'a' reply.tool_calls[0] needs a name of letters, digits, _ or - (at most 64), got null",
            )
        ],
    ),
    (
        "tool-arguments-type",
        """
        mockai: 1
        rules:
          - name: a
            reply:
              tool_calls:
                - {name: f, arguments: [1, 2]}
        """,
        [
            (
                6,
                "rule 'a' reply.tool_calls[0].arguments must be a mapping, a JSON string or 'auto', got [1, 2]",
            )
        ],
    ),
    (
        "vector-not-numbers",
        """
        mockai: 1
        rules:
          - name: a
            reply: {vector: [1, x]}
        """,
        [(4, "rule 'a' reply.vector must be a non-empty list of numbers")],
    ),
    (
        "moderation-category",
        """
        mockai: 1
        rules:
          - name: a
            reply: {categories: {violent: true}}
        """,
        [
            (
                4,
                "rule 'a' reply.categories: 'violent' is not a moderation category (did you mean 'violence'?)",
            )
        ],
    ),
    (
        "unknown-named-error",
        """
        mockai: 1
        rules:
          - name: a
            error: rate_limited
        """,
        [(4, "rule 'a': 'rate_limited' is not a named error (did you mean 'rate_limit'?)")],
    ),
    (
        "error-status-not-an-error",
        """
        mockai: 1
        rules:
          - name: a
            error: {status: 200}
        """,
        [(4, "rule 'a' error.status must be an HTTP error status (400-599), got 200")],
    ),
    (
        "bad-retry-after",
        """
        mockai: 1
        rules:
          - name: a
            error:
              status: 429
              retry_after: soon
        """,
        [
            (
                6,
                "rule 'a' error.retry_after: " + refusal(parse_duration, "soon"),
            )
        ],
    ),
    (
        # HTTP cannot send these: the answer would fail as it is written (a traceback and a
        # connection closed with no answer, before this check)
        "unsendable-error-headers",
        """
        mockai: 1
        rules:
          - name: a
            error:
              status: 500
              headers:
                x-split: "one\\r\\nx-injected: two"
                bad name: x
        """,
        [
            (
                7,
                (
                    "rule 'a' error.headers: x-split must be one line of text, without line "
                    "breaks or control characters"
                ),
            ),
            (
                8,
                (
                    "rule 'a' error.headers: 'bad name' is not a header name (letters, digits "
                    "and !#$%&'*+-.^_`|~ only)"
                ),
            ),
        ],
    ),
    (
        "bad-latency",
        """
        mockai: 1
        rules:
          - name: a
            reply: hi
            latency: fast
        """,
        [
            (
                5,
                "rule 'a' latency: " + refusal(parse_delay, "fast"),
            )
        ],
    ),
    (
        "bad-stream-timing",
        """
        mockai: 1
        rules:
          - name: a
            reply: hi
            stream: {ttft: 1s, chunk_delay: 5ms, tokens_per_second: 10}
        """,
        [
            (
                5,
                "rule 'a' stream: "
                + refusal(
                    parse_stream, {"ttft": "1s", "chunk_delay": "5ms", "tokens_per_second": 10}
                ),
            )
        ],
    ),
    (
        "unknown-fault",
        """
        mockai: 1
        rules:
          - name: a
            reply: hi
            faults: {explode: 3}
        """,
        [
            (
                5,
                "rule 'a' faults: " + refusal(parse_faults, {"explode": 3}),
            )
        ],
    ),
    (
        "step-latency",
        """
        mockai: 1
        rules:
          - name: a
            sequence:
              - reply: hi
                latency: {min: 2s, max: 1s}
        """,
        [
            (
                6,
                "rule 'a' sequence step 1 latency: "
                + refusal(parse_delay, {"min": "2s", "max": "1s"}),
            )
        ],
    ),
    (
        "times-zero",
        """
        mockai: 1
        rules:
          - name: a
            reply: hi
            times: 0
        """,
        [(5, "rule 'a' times must be a whole number >= 1, got 0")],
    ),
    (
        "empty-sequence",
        """
        mockai: 1
        rules:
          - name: a
            sequence: []
        """,
        [
            (
                4,
                "rule 'a' sequence must be a non-empty list of steps such as [{error: rate_limit}, {reply: {content: ok}}]",
            )
        ],
    ),
    (
        "step-with-two-answers",
        """
        mockai: 1
        rules:
          - name: a
            sequence:
              - error: rate_limit
              - reply: hi
                error: server_error
        """,
        [(7, "rule 'a' sequence step 2 has both 'reply' and 'error': give exactly one")],
    ),
    (
        "then-without-sequence",
        """
        mockai: 1
        rules:
          - name: a
            reply: hi
            then: fallthrough
        """,
        [(5, "rule 'a': 'then' only applies to a sequence (use times: N to limit a reply)")],
    ),
    (
        "unknown-then",
        """
        mockai: 1
        rules:
          - name: a
            sequence: [{reply: hi}]
            then: stop
        """,
        [(5, "rule 'a' then: 'stop' is not valid (use repeat or fallthrough)")],
    ),
    (
        "unreachable-agent-answer",
        """
        mockai: 1
        rules:
          - name: weather
            match: {user: weather}
            reply: {tool_calls: [{name: get_weather}]}
          - name: weather-answer
            match: {user: weather, has_tool_result: true}
            reply: sunny
        """,
        [
            (
                6,
                "rule 'weather-answer' can never match: rule 'weather' (line 3) matches everything it does (put 'weather-answer' first, or narrow 'weather')",
            )
        ],
    ),
    (
        "unreachable-narrower-text",
        """
        mockai: 1
        rules:
          - name: a
            match: {user: {contains: hello}}
            reply: hi
          - name: b
            match: {user: {startswith: "hello world"}, stream: true}
            reply: hi
        """,
        [
            (
                6,
                "rule 'b' can never match: rule 'a' (line 3) matches everything it does (put 'b' first, or narrow 'a')",
            )
        ],
    ),
    (
        "unreachable-after-catch-all",
        """
        mockai: 1
        rules:
          - name: anything
            reply: hi
          - name: b
            match: {model: "gpt-4o*"}
            reply: hi
        """,
        [
            (
                5,
                "rule 'b' can never match: rule 'anything' (line 3) matches everything it does (put 'b' first, or narrow 'anything')",
            )
        ],
    ),
    (
        "bad-chaos",
        """
        mockai: 1
        chaos: {rate_limit: 2, explode: 0.1}
        """,
        [
            (2, "chaos.rate_limit must be a rate between 0 and 1, got 2"),
            (
                2,
                f"chaos: 'explode' is not a named error or fault (valid names: {', '.join(loader.CHAOS_NAMES)})",
            ),
        ],
    ),
    (
        "chaos-rates-above-one",
        """
        mockai: 1
        chaos:
          rate_limit: 0.7
          server_error: 0.5
        """,
        [
            (
                2,
                "chaos rates add up to 1.2: a request gets at most one fault, so they must add up to 1 or less",
            )
        ],
    ),
    (
        "bad-settings",
        """
        mockai: 1
        seed: abc
        models: gpt-4o
        fallback: guess
        strict: maybe
        """,
        [
            (2, "seed must be a whole number, got 'abc'"),
            (3, "models must be a list of model ids such as [gpt-4o-mini], got 'gpt-4o'"),
            (4, "fallback: 'guess' is not valid (use generate or error)"),
            (5, "strict must be true or false, got 'maybe'"),
        ],
    ),
]


def write(folder: Path, text: str, name: str = "scenario.yaml") -> Path:
    """A scenario file in `folder` (the text is dedented)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_file_reports_every_problem_with_its_line(
    tmp_path: Path, text: str, expected: list[tuple[int, str]]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as raised:
        loader.load([str(path)])
    assert [str(p) for p in raised.value.problems] == [
        f"{path}:{line}: {m}" for line, m in expected
    ]


def test_the_broken_table_is_large() -> None:
    assert len(BROKEN) >= 20


def test_all_problems_of_a_file_are_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        mockai: 1
        seeds: 4
        rules:
          - name: a
            match: {usr: hi}
            reply: {contnet: x}
          - name: b
            error: rate_limited
        """,
    )
    with pytest.raises(ScenarioError) as raised:
        MockServer(scenarios=(str(path),))
    assert [p.line for p in raised.value.problems] == [2, 5, 6, 8]
    assert str(raised.value).count(str(path)) == 4


def test_a_folder_loads_in_name_order_and_checks_across_files(tmp_path: Path) -> None:
    write(
        tmp_path, "mockai: 1\nrules:\n  - {name: second, match: {user: hi}, reply: two}\n", "b.yaml"
    )
    write(
        tmp_path,
        "mockai: 1\nrules:\n  - {name: first, match: {user: hi}, reply: one, times: 1}\n",
        "a.yml",
    )
    write(
        tmp_path,
        "mockai: 1\nrules:\n  - {name: third, match: {user: x}, reply: three}\n",
        "sub/c.yaml",
    )
    (tmp_path / "notes.txt").write_text("not a scenario")
    loaded = loader.load([str(tmp_path)])
    assert [rule.name for rule in loaded.rules] == ["first", "second", "third"]
    assert loaded.files[-1] == os.path.join(str(tmp_path), "sub/c.yaml")
    with (
        MockServer(scenarios=(str(tmp_path),), log_requests=False) as server,
        sdk(server) as client,
    ):
        said = [_ask(client, "hi") for _ in range(3)]
        assert said == ["one", "two", "two"]  # `first` serves once, then `second` takes over
    # Without its limit, `first` answers everything `second` could: unreachable, at its file:line.
    write(
        tmp_path, "mockai: 1\nrules:\n  - {name: first, match: {user: hi}, reply: one}\n", "a.yml"
    )
    os.utime(tmp_path / "a.yml", ns=(1, 1))
    assert [str(p) for p in _problems(tmp_path)] == [
        (
            f"{tmp_path / 'b.yaml'}:3: rule 'second' can never match: rule 'first' "
            f"({tmp_path / 'a.yml'}:3) matches everything it does (put 'second' first, or narrow 'first')"
        )
    ]


def _ask(client: openai.OpenAI, text: str) -> str | None:
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
    )
    return answer.choices[0].message.content


def _problems(path: Path) -> list[object]:
    with pytest.raises(ScenarioError) as raised:
        loader.load([str(path)])
    return list(raised.value.problems)


def test_names_are_unique_across_files(tmp_path: Path) -> None:
    write(
        tmp_path, "mockai: 1\nrules:\n  - {name: greet, match: {user: a}, reply: one}\n", "1.yaml"
    )
    write(
        tmp_path, "mockai: 1\nrules:\n  - {name: greet, match: {user: b}, reply: two}\n", "2.yaml"
    )
    assert [str(p) for p in _problems(tmp_path)] == [
        (
            f"{tmp_path / '2.yaml'}:3: duplicate rule name 'greet' (first used at "
            f"{tmp_path / '1.yaml'}:3); rule names must be unique"
        )
    ]


def test_settings_merge_across_files_and_conflicts_are_problems(tmp_path: Path) -> None:
    write(tmp_path, "mockai: 1\nseed: 3\nmodels: [gpt-4o]\nchaos: {rate_limit: 0.1}\n", "1.yaml")
    write(
        tmp_path,
        "mockai: 1\nseed: 3\nmodels: [gpt-4o-mini, gpt-4o]\nchaos: {reset: 0.2}\n",
        "2.yaml",
    )
    loaded = loader.load([str(tmp_path)])
    assert loaded.value("seed") == 3
    assert loaded.value("models") == ("gpt-4o", "gpt-4o-mini")
    assert loaded.value("chaos") == {"rate_limit": 0.1, "reset": 0.2}
    write(tmp_path, "mockai: 1\nseed: 4\n", "3.yaml")
    assert [str(p) for p in _problems(tmp_path)] == [
        (
            f"{tmp_path / '3.yaml'}:2: seed: 4 conflicts with seed: 3 in {tmp_path / '1.yaml'}:2 "
            "(set it in one file only)"
        )
    ]


def test_scenario_settings_sit_below_explicit_options(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        mockai: 1
        seed: 7
        models: [gpt-4o-mini]
        fallback: generate
        strict: true
        chaos: {server_error: 0.05}
        rules:
          - {name: hi, match: {user: hi}, reply: hello}
        """,
    )
    server = MockServer(scenarios=(str(path),))
    config = server.config
    assert (config.seed, config.models, config.fallback, config.strict) == (
        7,
        ("gpt-4o-mini",),
        "generate",
        True,
    )
    assert config.chaos == {"server_error": 0.05}
    explicit = MockServer(scenarios=(str(path),), seed=9, fallback="error", models=("gpt-4o",))
    assert (explicit.config.seed, explicit.config.fallback, explicit.config.models) == (
        9,
        "error",
        ("gpt-4o",),
    )


def test_loading_is_cached_until_the_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path, "mockai: 1\nrules:\n  - {name: a, reply: one}\n")
    first = loader.load([str(path)])
    assert loader.load([str(path)]) is first
    write(tmp_path, "mockai: 1\nrules:\n  - {name: b, reply: two, times: 1}\n")
    os.utime(path, ns=(1, 1))  # a new mtime even on coarse file systems
    assert [rule.name for rule in loader.load([str(path)]).rules] == ["b"]


def test_yaml_merge_keys_and_anchors_work(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        mockai: 1
        rules:
          - name: slow
            match: &weather {user: weather, endpoint: chat}
            reply: {content: slow}
            latency: 10ms
          - name: weather-stream
            match: {<<: *weather, stream: true}
            reply: {content: streamed}
        """,
    )
    # `weather-stream` is narrower than `slow`: unreachable, even through a merge key.
    assert "rule 'weather-stream' can never match" in str(_problems(path)[0])


# --- mockai check ----------------------------------------------------------------------------------


def test_check_accepts_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "scenarios"]) == 0
    assert "OK" in capsys.readouterr().out


def test_check_exits_1_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, "mockai: 2\nrules:\n  - {name: a, repy: x}\n")
    assert main(["check", str(bad), "scenarios/faq.yaml"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{bad}:1: 'mockai: 2' is not a supported format version (this mockai reads version 1)",
        f"{bad}:3: unknown key 'repy' in rule 'a' (did you mean 'reply'?)",
        "mockai check: 2 problem(s)",
    ]


def test_check_exits_1_with_template_problems_at_their_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(
        tmp_path,
        """
        mockai: 1
        rules:
          - name: a
            reply: |
              Hello {{ request.user }},
              {% if request.stream %}streamed{% endfi %}
        """,
    )
    assert main(["check", str(bad)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        (
            f"{bad}:6: invalid template in rule 'a' reply.content: Encountered unknown tag 'endfi'. "
            "Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost "
            "block that needs to be closed is 'if'. (template line 2)"
        ),
        "mockai check: 1 problem(s)",
    ]


def test_check_reports_missing_paths_and_empty_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["check", str(tmp_path / "nope.yaml"), str(tmp_path / "empty")]) == 1
    assert capsys.readouterr().err.splitlines()[:2] == [
        f"{tmp_path / 'nope.yaml'}: no such file or directory",
        f"{tmp_path / 'empty'}: no scenario files or cassettes (*.yaml, *.yml, *.json) found",
    ]


def test_check_leaves_cassettes_to_the_cassette_checker(tmp_path: Path) -> None:
    write(tmp_path, "version: 1\ninteractions: []\n", "tape.yaml")
    write(tmp_path, "mockai: 1\nrules: []\n", "rules.yaml")
    assert main(["check", str(tmp_path)]) == 0


def test_serve_refuses_to_start_with_a_broken_scenario(tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "mockai: 1\nrules:\n  - {name: a, match: {user: {regex: '('}}, reply: x}\n  - {name: b}\n",
    )
    done = subprocess.run(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--scenario", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{bad}:3: invalid regex '(' in rule 'a' match.user" in done.stderr
    assert f"{bad}:4: rule 'b' has no answer: give one of reply, error, sequence" in done.stderr
    assert "listening" not in done.stdout


def test_a_valid_scenario_serves(tmp_path: Path) -> None:
    path = write(tmp_path, "mockai: 1\nrules:\n  - {name: hi, match: {user: hi}, reply: hello}\n")
    with MockServer(scenarios=(str(path),), log_requests=False) as server, sdk(server) as client:
        answer = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == "hello"
        assert (server.requests[-1].source, server.requests[-1].rule) == ("scenario", "hi")


def test_the_contract_example_loads(tmp_path: Path) -> None:
    """The scenario example of ARCHITECTURE.md ("Contract: scenario files"), as written."""
    path = write(
        tmp_path,
        """
        mockai: 1                  # format version (required)
        seed: 7                    # makes generated text, ids and chaos reproducible
        models: [gpt-4o-mini, text-embedding-3-small]   # what /v1/models lists (a built-in set if absent)
        rules:                     # first match wins
          - name: weather          # unique; shown in logs, the journal and no-match reports
            match:                 # all given keys must hold; absent keys match anything
              endpoint: chat       # chat | completions | embeddings | responses | moderations
              model: "gpt-4o*"     # glob
              user: weather        # last user message; a bare string means "contains";
                                   # or {equals|contains|startswith|regex: ...}
              system: {contains: pirate}          # same operators, on the system/instructions text
              tool_result: {contains: "18C"}      # the latest tool-result message
              tools: [get_weather]                # the request offers these tools
              stream: true
              headers: {x-test-case: {equals: abc}}
              body: {temperature: 0}              # subset match on the JSON body
            reply:                 # what to answer (rendered per endpoint)
              content: "Sunny in {{ request.model }}: {{ faker.sentence() }}"   # template: request + seeded faker
              tool_calls: [{name: get_weather, arguments: {city: Paris}}]
              # also: refusal, finish_reason, usage, json (an object sent as JSON content)
            # a rule answers with exactly one of: reply | error | sequence
            latency: 200ms         # before headers; number = seconds, or "200ms" / "1.5s", or {min, max}
            stream: {ttft: 300ms, chunk_delay: 20ms}   # or tokens_per_second
            faults: {malformed_chunk: 3}               # see the fault vocabulary
          - name: flaky
            match: {user: flaky}
            sequence:              # the n-th matching call gets the n-th step; the last step repeats
              - error: rate_limit                  # a named error (below) or {status, type, code, message, retry_after}
              - error: {status: 503}
              - reply: {content: recovered}
        fallback: generate         # generate | error  (what a request matching nothing gets)
        chaos: {rate_limit: 0.1, server_error: 0.02, disconnect: 0.01}   # random faults over all traffic, seeded
        """,
    )
    loaded = loader.load([str(path)])
    assert [rule.name for rule in loaded.rules] == ["weather", "flaky"]
    assert loaded.value("chaos") == {"rate_limit": 0.1, "server_error": 0.02, "disconnect": 0.01}
    server = MockServer(scenarios=(str(path),))
    assert (server.config.seed, server.config.fallback) == (7, "generate")
    assert server.config.models == ("gpt-4o-mini", "text-embedding-3-small")


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(lambda path: {"scenario": str(path)}, id="scenario=str"),
        pytest.param(lambda path: {"scenario": path}, id="scenario=Path"),
        pytest.param(lambda path: {"scenario": [str(path)]}, id="scenario=list"),
        pytest.param(lambda path: {"scenarios": (str(path),)}, id="scenarios=tuple"),
        pytest.param(lambda path: {"scenarios": str(path)}, id="scenarios=str"),
    ],
)
def test_mockserver_takes_scenario_as_the_cli_and_the_marker_spell_it(
    tmp_path: Path, spelling: Callable[[Path], dict[str, Any]]
) -> None:
    path = write(tmp_path, "mockai: 1\nrules:\n  - match: {user: hi}\n    reply: hello\n")
    with MockServer(log_requests=False, **spelling(path)) as server, sdk(server) as client:
        assert server.config.scenarios == (str(path),)
        assert _ask(client, "hi") == "hello"


def test_scenario_and_scenarios_together_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "mockai: 1\nrules: []\n")
    with pytest.raises(ConfigError, match="scenario and scenarios name the same option"):
        MockServer(scenario=str(path), scenarios=(str(path),))


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=20),
        min_size=1,
        max_size=8,
    ),
    where=st.data(),
    bad=st.sampled_from([b"\xe9", b"\xff", b"\xc3(", b"\x80", b"\xed\xa0\x80"]),
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_a_byte_that_is_not_utf8_is_named_by_its_line_and_column(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[str],
    where: Any,
    bad: bytes,
    newline: bytes,
) -> None:
    # Wherever a Latin-1 editor left a byte, the problem says the line and column it is at
    # (the message had a byte offset and no line).
    row = where.draw(st.integers(0, len(lines) - 1))
    text = lines[row]
    column = where.draw(st.integers(0, len(text)))
    encoded = [line.encode() for line in lines]
    encoded[row] = text[:column].encode() + bad + text[column:].encode()
    path = tmp_path_factory.mktemp("latin") / "scenario.yaml"
    path.write_bytes(newline.join(encoded))  # (a lone CR ends a line too, as YAML reads it)
    with pytest.raises(ScenarioError) as raised:
        loader.load([str(path)])
    expected = f"byte 0x{bad[0]:02x} at column {column + 1} is not UTF-8 (save the file as UTF-8)"
    assert [str(p) for p in raised.value.problems] == [f"{path}:{row + 1}: {expected}"]
