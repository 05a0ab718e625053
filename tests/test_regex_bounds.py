"""Regular expressions that backtrack for ever do not hang the server.

A schema `pattern` (response_format, tool parameters) or a scenario `regex:` condition such as
`^(a|a)+b`, searched in 36 `a`s, takes Python's `re` 2^36 steps while it holds the GIL: before
the fix every other request waited and stopping the server hung too. So these tests run the
server in its own process (tests/service_support.py), which they can always kill, and bound
every request with a client timeout.
"""

from __future__ import annotations

import re
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from service_support import ServeProcess

from mockai import regexes

# `^(a|a)+b` never matches a run of `a`s, and `re` tries every way of splitting the run first.
COSTLY = "^(a|a)+b"
RUN = "a" * 36
ANSWER_WITHIN = 10.0  # seconds: a hung server fails the test instead of hanging it


def _chat(user: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": user}], **extra}


def _format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}


@pytest.fixture
def server() -> Any:
    with ServeProcess([]) as serving:
        yield serving


def test_a_costly_response_format_pattern_is_refused_while_others_are_served(
    server: ServeProcess,
) -> None:
    """The reproduction: the generated candidate (36 `a`s, for the first pattern) is checked
    against the second; the answer is a clear 400 in bounded time, and a model list asked for
    meanwhile is answered."""
    schema = {
        "type": "object",
        "properties": {
            "s": {"type": "string", "allOf": [{"pattern": "^a{36}$"}, {"pattern": COSTLY}]}
        },
        "required": ["s"],
        "additionalProperties": False,
    }
    body = _chat("x", response_format=_format(schema))
    with httpx.Client(timeout=ANSWER_WITHIN) as client, ThreadPoolExecutor(2) as pool:
        costly = pool.submit(client.post, server.url + "/chat/completions", json=body)
        models = pool.submit(client.get, server.url + "/models")
        listed, refused = models.result(ANSWER_WITHIN + 5), costly.result(ANSWER_WITHIN + 5)
    assert listed.status_code == 200 and listed.json()["data"]
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "mockai_generation_failed"
    assert "#/properties/s" in error["message"]
    assert f"regular expression {COSTLY!r} is too costly to match" in error["message"]
    # The server still answers after it (nothing is left running).
    with httpx.Client(timeout=ANSWER_WITHIN) as client:
        assert client.post(server.url + "/chat/completions", json=_chat("hi")).status_code == 200


def test_a_costly_tool_parameter_pattern_is_refused(server: ServeProcess) -> None:
    """Tool parameters: a property's name (36 `a`s) is searched with every `patternProperties`
    pattern to find its schema. (A required property, not one the generator names after a
    pattern it picks at random: which pattern it picked followed the request's key, and a
    change to the key made it pick the costly one, whose own expansion is cheap to search.)"""
    name = "a" * 36
    tool = {
        "type": "function",
        "function": {
            "name": "record",
            "parameters": {
                "type": "object",
                "properties": {name: {"type": "integer"}},
                "required": [name],
                "patternProperties": {COSTLY: {"type": "string"}},
                "additionalProperties": False,
            },
        },
    }
    client = openai.OpenAI(
        base_url=server.url, api_key="sk-test", max_retries=0, timeout=ANSWER_WITHIN
    )
    with client, pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "record it"}],
            tools=[tool],  # type: ignore[list-item]
            tool_choice="required",
        )
    assert refused.value.code == "mockai_generation_failed"
    assert f"regular expression {COSTLY!r} is too costly to match" in refused.value.message


SCENARIO = textwrap.dedent(
    f"""\
    mockai: 1
    rules:
      - name: greedy
        match:
          user: {{regex: "{COSTLY}"}}
        reply: {{content: matched}}
      - name: scripted
        match: {{user: scripted}}
        reply:
          json: {{s: {RUN}}}
      - name: rest
        reply: {{content: other}}
    """
)


@pytest.fixture
def scenario_server(tmp_path: Path) -> Any:
    path = tmp_path / "rules.yaml"
    path.write_text(SCENARIO)
    with ServeProcess(["--scenario", str(path)]) as serving:
        yield serving, path


def test_a_scripted_value_checked_against_a_costly_pattern_is_flagged(
    scenario_server: tuple[ServeProcess, Path],
) -> None:
    """The stale-fixture check validates the scripted JSON against the request's schema: a
    pattern too costly for it is a finding saying so, and the scripted answer is sent."""
    server, _ = scenario_server
    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": COSTLY}},
        "required": ["s"],
        "additionalProperties": False,
    }
    with httpx.Client(timeout=ANSWER_WITHIN) as client:
        answer = client.post(
            server.url + "/chat/completions",
            json=_chat("scripted", response_format=_format(schema)),
        )
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == f'{{"s":"{RUN}"}}'
    assert answer.headers["x-mockai-warning"].endswith(
        "the JSON content does not match the response_format schema 'x': at $.s: regular "
        f"expression {COSTLY!r} is too costly to match (it backtracks for more than 0.1 s)"
    )


def test_a_regex_condition_on_hostile_text_does_not_hold_and_is_reported_once(
    scenario_server: tuple[ServeProcess, Path],
) -> None:
    """The request's text is the client's: a regex that backtracks on it too long fails the
    condition (the next rule answers), and the log says once which condition, where."""
    server, path = scenario_server
    with httpx.Client(timeout=ANSWER_WITHIN) as client:
        answers = [client.post(server.url + "/chat/completions", json=_chat(RUN)) for _ in range(2)]
        plain = client.post(server.url + "/chat/completions", json=_chat("aab"))
    for answer in answers:
        assert answer.status_code == 200
        assert answer.json()["choices"][0]["message"]["content"] == "other"
    assert plain.json()["choices"][0]["message"]["content"] == "matched"  # still a regex
    server.stop()
    logged = [line for line in server.all_output().splitlines() if "too costly" in line]
    assert len(logged) == 1, logged
    assert f"{path}:5: rule 'greedy' match.user: regular expression {COSTLY!r}" in logged[0]
    assert logged[0].endswith("the condition does not hold")


# --- the helper keeps `re`'s answers -------------------------------------------------------------

_ATOMS = st.sampled_from(
    ["a", "b", "ab", ".", r"\d", r"\w", r"\s", r"\W", "[ab]", "[^a]", "[a-c]", r"\.", "é", "^", "$"]
)
_QUANTIFIERS = st.sampled_from(["", "", "*", "+", "?", "{2}", "{1,3}", "*?", "+?", "??"])


def _regexes() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        group = st.builds(lambda body, q: f"({body}){q}", inner, _QUANTIFIERS)
        lookahead = st.builds(lambda body: f"(?={body})", inner)
        either = st.builds(lambda a, b: f"{a}|{b}", inner, inner)
        joined = st.lists(inner, min_size=2, max_size=3).map("".join)
        return group | lookahead | either | joined

    single = st.builds(lambda atom, q: atom + q, _ATOMS, _QUANTIFIERS)
    return st.recursive(single, extend, max_leaves=6).filter(_compiles)


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:  # (`^*`: nothing to repeat)
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(_regexes(), st.text(alphabet="abcAB1 .\n_éÉ-", max_size=12), st.booleans())
def test_bounded_searches_answer_as_re_does(pattern: str, text: str, ignore_case: bool) -> None:
    flags = re.IGNORECASE if ignore_case else 0
    expected = re.search(pattern, text, flags) is not None
    assert regexes.bounded(pattern, flags).search(text) is expected


def test_searches_share_a_budget() -> None:
    """Within a scope, searches stop once the scope's time is spent: many costly candidates
    cannot add up to a hang."""
    costly = regexes.bounded(COSTLY)
    start = time.perf_counter()
    with regexes.budget(0.3):
        for _ in range(100):
            with pytest.raises(regexes.RegexTimeout):
                costly.search(RUN)
    assert time.perf_counter() - start < 5  # 100 x 0.1-0.2 s without the budget
    assert costly.search("aab")  # outside the scope: ordinary searches go on


@pytest.mark.parametrize(
    "pattern", ["^a{10000000}$", "(?:a{1000}){1000}", "^((ab){100000}){100000}$", "(?=a{30000})"]
)
def test_a_pattern_regex_would_unroll_past_the_bound_is_searched_by_re(pattern: str) -> None:
    """`regex` compiles `a{10000000}` into 2.6 GB over seconds (the hostile-schema test of the
    suite was killed for its memory): such a pattern is searched with `re`, which counts."""
    started = time.process_time()
    searcher = regexes.bounded(pattern)
    assert searcher.search("a" * 50) == (re.search(pattern, "a" * 50) is not None)
    assert time.process_time() - started < 1.0  # (~1 ms; 7 s with `regex`)
