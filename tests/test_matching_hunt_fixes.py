"""Scenario matching and its no-match report: bugs found by the hunt, each met as users meet them
(a served scenario's answers, its no-match error and its log), with properties on the pure parts.

1. The no-match report cut the texts it shows at 40 characters (its table re-cut what `shorten`
   had quoted), hiding a trailing newline and cutting an escape in two.
2. A `regex` that timed out inside `not:` made the condition hold while the log said it did not.
"""

from __future__ import annotations

import ast
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conformance import checked_server
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from mockai import regexes
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.scenario import nearmiss
from mockai.scenario.operators import compile_text
from mockai.scenario.problems import Problems
from mockai.scenario.rules import Rule, compile_rule

FOX = "The quick brown fox jumps over the lazy dog"  # 43 characters: past the old cut at 40
XS = "x" * 37
COSTLY = "^(?:(a|a)+c|a+x)$"  # `a+x` matches HOSTILE; `(a|a)+c` backtracks 2^32 ways first
HOSTILE = "a" * 32 + "x"
ANSWER_WITHIN = 10.0  # seconds: generous for a loaded machine; a hang fails instead of waiting

SCENARIO = f"""\
mockai: 1
rules:
  - name: fox
    match: {{user: {{equals: "{FOX}"}}}}
    reply: fox
  - name: xs
    match: {{user: {{equals: "{XS} tail"}}}}
    reply: xs
"""

COSTLY_SCENARIO = f"""\
mockai: 1
rules:
  - name: not-costly
    match: {{user: {{not: {{regex: "{COSTLY}"}}}}}}
    reply: the regex did not match
  - name: not-costly-ignoring-case
    match: {{user: {{not: {{regex: "{COSTLY}", ignore_case: true}}}}}}
    reply: the regex did not match, ignoring case
  - name: rest
    reply: other
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("report")
    (folder / "report.yaml").write_text(SCENARIO)
    with checked_server(scenarios=[str(folder / "report.yaml")]) as serving:
        yield serving


@pytest.fixture(scope="module")
def costly_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("costly")
    (folder / "costly.yaml").write_text(COSTLY_SCENARIO)
    with checked_server(scenarios=[str(folder / "costly.yaml")]) as serving:
        yield serving


def _chat(server: Any, user: str) -> httpx.Response:
    return httpx.post(
        server.url_for("/v1/chat/completions"),
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": user}]},
        timeout=ANSWER_WITHIN,
    )


def _user_row(message: str, rule_text: str) -> str:
    """The report's row for the `user: equals rule_text` condition."""
    start = f"user: equals {rule_text!r}"
    return next(line for line in message.splitlines() if line.startswith(start))


# --- 1. the report shows texts up to 60 characters, escapes whole --------------------------------


@pytest.mark.parametrize(
    ("rule_text", "content", "shown"),
    [
        # The reproduction: the trailing newline was cut off, both sides reading the same.
        (FOX, FOX + "\n", repr(FOX + "\n")),
        # `\n` at the 38th character: the old cut left `\` alone before the ellipsis.
        (f"{XS} tail", f"{XS}\ntail", repr(f"{XS}\ntail")),
        # Past 60 characters: cut there, not at 40.
        (FOX, FOX + " and then some more words", repr((FOX + " and then some more wo")[:59] + "…")),
    ],
    ids=["trailing-newline", "escape-at-38", "past-60"],
)
def test_the_no_match_report_shows_texts_up_to_sixty_characters(
    server: Any, rule_text: str, content: str, shown: str
) -> None:
    response = _chat(server, content)
    assert response.status_code == 400
    row = _user_row(response.json()["error"]["message"], rule_text)
    assert row == f"user: equals {rule_text!r} | {shown}  <<<<< user does not match"


def _rule(text: str) -> Rule:
    problems = Problems("<test>")
    rule = compile_rule(
        {"match": {"user": {"equals": text}}, "reply": "hi"},
        file="<test>",
        line=1,
        name="r",
        kind="rule",
        problems=problems,
    )
    assert rule is not None and not problems.items, problems.items
    return rule


def _whitespace_variant() -> st.SearchStrategy[tuple[str, str]]:
    """A text and the same text with whitespace put in its first 60 characters."""

    @st.composite
    def variant(draw: st.DrawFn) -> tuple[str, str]:
        base = draw(st.text(max_size=100))
        at = draw(st.integers(0, min(59, len(base))))
        gap = draw(st.sampled_from([" ", "  ", "\n", "\t", "\r\n", "\x0b", "\u00a0"]))
        return base, base[:at] + gap + base[at:]

    return variant()


_PAIRS = st.one_of(st.tuples(st.text(max_size=100), st.text(max_size=100)), _whitespace_variant())


@settings(max_examples=150, deadline=None)
@given(_PAIRS, st.booleans())
def test_the_report_shows_both_texts_whole_up_to_sixty_characters(
    pair: tuple[str, str], swap: bool
) -> None:
    """Whatever the texts, where they differ in their first 60 characters the report shows the
    rule's text whole and the request's as Python writes it, cut past 60 characters only, and
    never inside an escape."""
    rule_text, request = reversed(pair) if swap else pair
    assume(rule_text[:60] != request[:60])
    exchange = Exchange(
        endpoint=Endpoint.CHAT, model="gpt-4o-mini", body={}, headers={}, user_text=request
    )
    row = _user_row("\n".join(nearmiss.report([_rule(rule_text)], {}, exchange)), rule_text)
    shown = re.fullmatch(r" *\| (.*?) *  <<<<< user does not match", row[row.index(" |") :])
    assert shown is not None, row
    # An escape cut in two is no Python string literal any more.
    visible = ast.literal_eval(shown.group(1))
    if len(repr(request)) <= 62:
        assert visible == request
    else:
        assert visible.endswith("…") and request.startswith(visible[:-1])
        if request[:60].isprintable() and "'" not in request[:60] and "\\" not in request[:60]:
            assert len(visible) == 60  # 59 characters of the text and the ellipsis


# --- 2. a regex that times out decides nothing, inside `not` too ---------------------------------


def test_a_costly_regex_under_not_does_not_hold(
    costly_server: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reproduction: the regex matches the text (after 0.1 s of backtracking it is stopped),
    so no `not` of it may hold, ignoring case or not: the rule after them answers. A search that
    finishes is still negated."""
    # Each search gets its whole 0.1 s bound: on a loaded machine two of them may take more
    # than the request's 0.25 s, and the second, cut short, would stop matching (a 4xx: see
    # test_scenario_hunt5_fixes.py), which is not what this test is about.
    monkeypatch.setattr(regexes, "MATCH_SECONDS", 10.0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="mockai"):
        answer = _chat(costly_server, HOSTILE)
    assert time.monotonic() - started < ANSWER_WITHIN
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "other"
    warnings = [r.getMessage() for r in caplog.records if "too costly" in r.getMessage()]
    assert warnings and all(w.endswith("the condition does not hold") for w in warnings)
    assert any("rule 'not-costly' match.user.not:" in w for w in warnings), warnings
    decided = _chat(costly_server, "b").json()
    assert decided["choices"][0]["message"]["content"] == "the regex did not match"


_PATTERNS = st.sampled_from(["^a+x$", "b", "^(hi|hello)\\b", "[0-9]{2}", "^$", "a|b"])


def _found(pattern: str, text: str) -> bool | None:
    """`re`'s answer, or None where mockai's search is stopped undecided (`re` would run on for
    2^32 steps)."""
    return None if (pattern, text) == (COSTLY, HOSTILE) else re.search(pattern, text) is not None


@settings(max_examples=100, deadline=None)
@given(_PATTERNS, st.text(alphabet="abhiloxAB0123 \n", max_size=12), st.integers(0, 3))
@example(COSTLY, HOSTILE, 1)
@example(COSTLY, HOSTILE, 2)  # (`not` twice is the regex itself)
def test_nested_nots_of_a_regex_hold_only_where_the_search_decides(
    pattern: str, text: str, depth: int
) -> None:
    """`not` wrapped `depth` times is `re`'s answer flipped `depth` times; an undecided search
    is neither answer, so no wrapping makes the condition hold."""
    value: Any = {"regex": pattern}
    for _ in range(depth):
        value = {"not": value}
    test = compile_text(value, "user", 1, Problems("<test>"))
    assert test is not None
    found = _found(pattern, text)
    assert test.test(text) is (False if found is None else found != (depth % 2 == 1))
