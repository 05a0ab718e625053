"""Scenario matching and loading: bugs found by the fifth hunt, each met as users meet them (a
served scenario's answers and no-match errors, `mockai check`).

1. Regex rules and one hostile text: each search was bounded (0.1 s) but a request's searches
   were not, and the no-match report ran them all again: 10 rules `^(a|a)+b<i>` held the server
   4.4 s on 40 `a`s, a `GET /v1/models` meanwhile too.
2. The unreachable-rule check compared regex rules in pairs: 4,000 of them took 24 s.
3. A duplicate key hid every other problem of its file.
4. `reply: 5` / `reply: yes` were not asked to be quoted, as `user: 5` is.
5. Once a request's shared regex time ran out, the regex conditions left did not hold and
   matching went on: 400 regex rules and a 1 MB prompt got the catch-all's answer, not the
   last regex rule's. Now matching stops there, with the no-match error saying where.
"""

from __future__ import annotations

import contextvars
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import openai
import pytest
from conformance import checked_server
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sdk import sdk
from service_support import ServeProcess, redis_server

from mockai import MockServer, regexes
from mockai.pipeline.decide import Undecided
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.scenario.book import RuleBook
from mockai.scenario.nearmiss import UNDECIDED
from mockai.scenario.operators import Op, TextTest
from mockai.scenario.problems import Problems
from mockai.scenario.rules import Rule, compile_rule

COSTLY = "^(a|a)+b"  # backtracks 2^n steps on n `a`s: stopped at each search's bound
HOSTILE = "a" * 40
# Generous bounds for a shared 2-core machine: before the fixes the waits were 4.4 s (10 rules)
# and ~20 s (50 rules).
STALL_AT_MOST = 1.0
ANSWERED_WITHIN = 2.0


def check(path: Path, timeout: float = 30) -> tuple[int, str]:
    """`mockai check PATH` in its own process: (exit code, what it printed)."""
    done = subprocess.run(
        [sys.executable, "-m", "mockai", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr


def _hostile_rules(first: int, count: int) -> list[dict[str, Any]]:
    return [
        {"name": f"bt{i}", "match": {"user": {"regex": f"{COSTLY}{i}"}}, "reply": f"m{i}"}
        for i in range(first, first + count)
    ]


# --- 1. one hostile request does not hold the server -------------------------------------------


@pytest.fixture(scope="module")
def regex_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A server whose scenario has 10 regex rules backtracking on runs of `a`s."""
    path = tmp_path_factory.mktemp("hunt5") / "ten_regex.yaml"
    lines = ["mockai: 1", "rules:"]
    for rule in _hostile_rules(0, 10):
        pattern = rule["match"]["user"]["regex"]
        lines += [f"  - name: {rule['name']}", f'    match: {{user: {{regex: "{pattern}"}}}}']
        lines += [f"    reply: {rule['reply']}"]
    path.write_text("\n".join(lines) + "\n")
    with ServeProcess(["--scenario", str(path), "--quiet"]) as serving:
        yield serving


def _hostile_meanwhile(server: ServeProcess) -> tuple[httpx.Response, float, float]:
    """Send the hostile chat request, and list the models again and again while it is in
    flight: (its answer, how long it took, the longest a model list waited meanwhile)."""
    answered: dict[str, Any] = {}

    def hostile() -> None:
        started = time.monotonic()
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": HOSTILE}]}
        with httpx.Client(timeout=ANSWERED_WITHIN * 5) as client:
            answered["response"] = client.post(server.url + "/chat/completions", json=body)
        answered["took"] = time.monotonic() - started

    sender = threading.Thread(target=hostile)
    longest, lists = 0.0, 0
    with httpx.Client(timeout=30) as lister:
        sender.start()
        # Every list asked while the hostile request is in flight (the server is never idle
        # between them) waits for whatever holds the loop then: the longest wait is the stall.
        while sender.is_alive():
            started = time.monotonic()
            assert lister.get(server.url + "/models").status_code == 200
            longest = max(longest, time.monotonic() - started)
            lists += 1
    sender.join()
    assert lists > 0
    return answered["response"], answered["took"], longest


def test_hostile_text_against_10_then_50_regex_rules_holds_the_server_briefly(
    regex_server: ServeProcess,
) -> None:
    """The reproduction, with 10 rules and then 50 (40 added over HTTP): the model lists asked
    meanwhile wait less than a second, the hostile request gets the no-match 400 in bounded
    time, and its report says the regex searches were stopped, not that they did not match."""
    for added in (0, 40):
        if added:
            with httpx.Client(base_url=regex_server.base_url, timeout=10) as admin:
                posted = admin.post("/_mockai/rules", json=_hostile_rules(10, added))
                assert posted.status_code == 200, posted.text
        response, took, longest = _hostile_meanwhile(regex_server)
        assert longest < STALL_AT_MOST, (10 + added, longest)
        assert took < ANSWERED_WITHIN, (10 + added, took)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "mockai_no_match"
        assert f"user: {UNDECIDED}" in error["message"]
        assert "user does not match" not in error["message"]
    # The bound is the request's: the next one searches afresh, and a search that ends decides.
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "aab7"}]}
    with httpx.Client(timeout=10) as client:
        answer = client.post(regex_server.url + "/chat/completions", json=body)
    assert answer.json()["choices"][0]["message"]["content"] == "m7"


_PATTERNS = st.sampled_from([COSTLY, "^a+x$", "b", "^(hi|hello)\\b", "[0-9]{2}", "a|b"])
_TEXTS = st.sampled_from([HOSTILE, "aab", "hello", "12", "", "xa"])


@settings(max_examples=12, deadline=None)
@given(st.lists(st.tuples(_PATTERNS, _TEXTS), max_size=8))
@example([(COSTLY, HOSTILE), ("b", "aab"), (COSTLY, HOSTILE)])  # (as the no-match report asks)
def test_searches_within_one_allowance_are_bounded_together_and_never_repeated(
    searches: list[tuple[str, str]],
) -> None:
    """Within one allowance (a request's matching), every search answers as `re` does or is
    stopped; all of them together stop near the allowance; and a search asked before (the
    costly pattern on the hostile text, stopped; any other, answered) is not run again."""
    allowance = regexes.Allowance(0.3)
    started = time.perf_counter()
    asked: set[tuple[str, str]] = set()
    with regexes.drawing_on(allowance):
        for pattern, text in searches:
            searched = allowance.searched
            again = (pattern, text) in asked
            asked.add((pattern, text))
            try:
                found = regexes.bounded(pattern).search(text)
            except regexes.RegexTimeout:
                found = None
            if again:
                assert allowance.searched == searched  # (answered, or stopped, as before)
            if found is None:
                continue
            assert found == (re.search(pattern, text) is not None)
            assert (pattern, text) != (COSTLY, HOSTILE)  # (2^40 steps: never finishes)
    # One search may overrun its bound about 2x (`regex` looks at its clock now and then).
    assert time.perf_counter() - started < 0.3 + 2 * regexes.SEARCH_SECONDS
    assert allowance.stops >= sum(1 for s in searches if s == (COSTLY, HOSTILE))


# --- 2. the unreachable-rule check files regex rules by their text -----------------------------


def test_four_thousand_regex_rules_are_checked_quickly_and_a_repeated_regex_is_reported(
    tmp_path: Path,
) -> None:
    """The reproduction: 4,000 rules of distinct regexes (24 s before), then one repeating rule
    r5's regex, which the check must still find."""
    lines = ["mockai: 1", "rules:"]
    for n in range(4000):
        lines += [f"  - name: r{n}", f'    match: {{user: {{regex: "r{n}x.*"}}}}']
        lines += [f"    reply: ok{n}"]
    lines += ["  - name: late", '    match: {user: {regex: "r5x.*"}, stream: false}']
    lines += ["    reply: never"]
    path = tmp_path / "regexes.yaml"
    path.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    code, printed = check(path)
    assert time.monotonic() - started < 10, printed  # (~1.5 s here, loading included)
    assert code == 1, printed
    assert f"regexes.yaml:{len(lines) - 2}: rule 'late' can never match: rule 'r5' (line 18)" in (
        printed
    )
    assert "1 problem(s)" in printed


_VALUES = st.text(alphabet="ab^$.*+", min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(_VALUES, _VALUES, st.booleans(), st.booleans())
def test_a_regex_is_implied_by_the_same_regex_alone(
    text: str, pattern: str, ignore_case: bool, negate: bool
) -> None:
    """An `equals` text (or any other test) implies a regex only when it is that regex, with
    the same case handling and negation: what lets the check file regexes by their text."""
    try:
        regex = TextTest.make(Op.REGEX, pattern, ignore_case=ignore_case, negate=negate)
    except re.error:
        return
    for op in Op:
        other = TextTest.make(op, text) if op is not Op.REGEX or _compiles(text) else None
        if other is not None:
            assert other.implies(regex) == (other == regex)
    assert TextTest.make(Op.REGEX, pattern, ignore_case=ignore_case, negate=negate).implies(regex)


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


# --- 3. a duplicate key no longer hides the file's other problems ------------------------------


def test_a_duplicate_key_is_reported_with_every_other_problem_of_its_file(tmp_path: Path) -> None:
    """The reproduction: the misspelt keys of rule 'b' were reported only once the duplicate
    key of rule 'a' was fixed."""
    path = tmp_path / "dupkey.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            mockai: 1
            rules:
              - name: a
                match: {user: hi, user: ho}
                reply: hello
              - name: b
                match: {usr: x}
                repyl: hello
            """
        )
    )
    code, printed = check(path)
    assert code == 1
    assert printed.splitlines() == [
        f"{path}:4: duplicate key 'user' (first at line 4)",
        f"{path}:7: unknown match key 'usr' in rule 'b' (did you mean 'user'?)",
        f"{path}:8: unknown key 'repyl' in rule 'b' (did you mean 'reply'?)",
        "mockai check: 3 problem(s)",
    ]


# --- 4. a reply YAML reads as no text asks for quotes ------------------------------------------

_SHAPE = "reply must be a text (reply: hi) or a mapping such as {content: hi}"


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("5", f"{_SHAPE}, got 5 (quote it if you meant the text)"),
        ("yes", f"{_SHAPE}, got true (quote it if you meant the text)"),
        ("3.10", f"{_SHAPE}, got 3.1 (quote it if you meant the text)"),
        ("[hi]", f"{_SHAPE}, got ['hi']"),
    ],
)
def test_a_reply_that_is_no_text_nor_mapping_says_how_to_write_it(
    tmp_path: Path, written: str, message: str
) -> None:
    path = tmp_path / "reply.yaml"
    path.write_text(
        f"mockai: 1\nrules:\n  - name: a\n    match: {{user: a}}\n    reply: {written}\n"
    )
    code, printed = check(path)
    assert code == 1
    assert f"{path}:5: rule 'a': {message}\n" in printed


# --- 5. past the request's regex time, no later rule answers -----------------------------------

# Rule i's name is on line 3 + 3i; the stop names it with its `file:line`.
STOPPED = re.compile(
    r"Matching stopped at rule '(?P<name>[^']+)' \(.*?(?P<file>[\w.]+):(?P<line>\d+)\): this "
    r"request's regex searches ran out of their time bound \((?P<bound>[\d.]+) s for all the "
    r"regex searches of one request\), so neither that rule nor any after it answers\. Put fewer "
    r"regex rules ahead of it, send a shorter prompt, or use `contains` / `startswith` "
    r"conditions instead of regexes\."
)

STOP_SCENARIO = f"""\
mockai: 1
rules:
  - name: plain
    match: {{user: {{startswith: hello}}}}
    reply: plain
  - name: greeting
    match: {{user: {{regex: "^hel+o"}}}}
    reply: greeting
  - name: costly
    match: {{user: {{regex: "{COSTLY}"}}}}
    reply: costly
  - name: catchall
    reply: catch-all
"""


@pytest.fixture(scope="module")
def stop_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    path = tmp_path_factory.mktemp("stop") / "stop.yaml"
    path.write_text(STOP_SCENARIO)
    with checked_server(scenario=str(path)) as serving:
        yield serving


def _stopped_at(error: Any) -> re.Match[str]:
    """The stop named by a no-match error's message (its second line), which must be there."""
    assert error["code"] == "mockai_no_match", error
    lines = error["message"].splitlines()
    assert lines[0] == "mockai: no rule or recording matches this chat request.", lines
    found = STOPPED.fullmatch(lines[1])
    assert found is not None, lines[1]
    return found


def test_past_the_requests_regex_time_no_later_rule_answers(
    stop_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no regex time at all (the bound lowered: it is read per request), a rule before the
    first regex rule answers as ever, and any request getting that far stops at it: the
    no-match 400 says where and why, never the catch-all's answer. So do batches."""
    monkeypatch.setattr(regexes, "MATCH_SECONDS", 0.0)
    with sdk(stop_server) as client:
        answered = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}]
        )
        assert answered.choices[0].message.content == "plain"
        for text in ("helo", HOSTILE, "anything"):
            with pytest.raises(openai.BadRequestError) as refused:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
                )
            assert isinstance(refused.value.body, dict)
            stop = _stopped_at(refused.value.body)
            assert (stop["name"], stop["file"], stop["line"]) == ("greeting", "stop.yaml", "6")
            assert stop["bound"] == "0.0"
            message = refused.value.body["message"]
            assert f"user: {UNDECIDED}" in message
            assert (
                "rule 'catchall' (" in message
                and "every condition holds, but matching stopped before it reached this rule"
                in message
            )
        with pytest.raises(openai.BadRequestError) as refused:
            client.embeddings.create(model="text-embedding-3-small", input=["helo", "hi"])
    assert isinstance(refused.value.body, dict)
    assert "Matching stopped at rule 'greeting' (" in refused.value.body["message"]


def test_a_pattern_stopped_at_its_own_bound_does_not_hold_and_matching_goes_on(
    stop_server: Any,
) -> None:
    """The request's time is not spent by one costly search (0.1 s of its 0.25 s): that
    condition does not hold, and the rule after it (no regex) answers, as documented."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": HOSTILE}]}
    answer = httpx.post(stop_server.url_for("/v1/chat/completions"), json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "catch-all"


def test_400_regex_rules_and_a_megabyte_prompt_never_get_the_catch_all(tmp_path: Path) -> None:
    """The reproduction: 400 ordinary regex rules, a catch-all, a 1 MB prompt the last regex
    rule matches. The last rule answers if the request's regex time lasts (a fast machine), or
    the no-match 400 names the rule where it ran out; the catch-all answered before."""
    rules = 400
    lines = ["mockai: 1", "rules:"]
    for i in range(rules):
        lines += [f"  - name: r{i}", f"    match: {{user: {{regex: '(?i)\\b\\w+ing{i}\\b'}}}}"]
        lines += [f"    reply: rule {i}"]
    lines += ["  - name: catchall", "    match: {}", "    reply: catch-all"]
    path = tmp_path / "many.yaml"
    path.write_text("\n".join(lines) + "\n")
    prompt = "lorem ipsum dolor sit amet consectetur " * 25_000 + f" testing{rules - 1}"
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": prompt}]}
    with MockServer(scenario=str(path), log_requests=False) as server:
        answer = httpx.post(server.url_for("/v1/chat/completions"), json=body, timeout=30)
    if answer.status_code == 200:
        assert answer.json()["choices"][0]["message"]["content"] == f"rule {rules - 1}"
        return
    assert answer.status_code == 400, answer.text
    stop = _stopped_at(answer.json()["error"])
    number = int(stop["name"].removeprefix("r"))
    assert stop["name"] == f"r{number}" and 0 <= number < rules
    assert (stop["file"], int(stop["line"])) == ("many.yaml", 3 + 3 * number)


def test_a_book_shared_across_workers_stops_where_the_regex_time_runs_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same stop with the rules and counts in a shared backend (`--state redis://`), after
    a rule before it is used up; while it lasts, that rule answers."""
    path = tmp_path / "stop.yaml"
    path.write_text(STOP_SCENARIO.replace("reply: plain", "reply: plain\n    times: 1"))
    monkeypatch.setattr(regexes, "MATCH_SECONDS", 0.0)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
    with (
        redis_server() as redis,
        MockServer(scenario=str(path), state=redis.url(), log_requests=False) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        first = client.post("/chat/completions", json=body)
        assert first.json()["choices"][0]["message"]["content"] == "plain"
        second = client.post("/chat/completions", json=body)
    assert second.status_code == 400, second.text
    assert _stopped_at(second.json()["error"])["name"] == "greeting"


# --- the pick, rule by rule ---------------------------------------------------------------------


def _compiled(number: int, regex: bool, text: str) -> Rule:
    problems = Problems("rules.yaml")
    condition = {"regex": re.escape(text)} if regex else {"contains": text}
    rule = compile_rule(
        {"match": {"user": condition}, "reply": f"reply {number}"},
        file="rules.yaml",
        line=3 + 3 * number,
        name=f"r{number}",
        kind="scenario",
        problems=problems,
    )
    assert rule is not None and not problems.items, problems.items
    return rule


def _chat_exchange(text: str) -> Exchange:
    return Exchange(
        endpoint=Endpoint.CHAT, model="gpt-4o-mini", body={}, headers={}, user_text=text
    )


_RULES = st.lists(st.tuples(st.booleans(), st.sampled_from(["a", "b", "ab", "c"])), max_size=8)


@settings(max_examples=60, deadline=None)
@given(_RULES, st.sampled_from(["a", "b", "ab", "abc", "x", ""]))
def test_a_pick_answers_from_before_the_first_regex_rule_or_stops_there(
    written: list[tuple[bool, str]], text: str
) -> None:
    """With no regex time, the pick is the first `contains` rule that matches before the first
    regex rule; else it stops at that regex rule (Undecided names it); else nothing matches.
    Never a rule after a regex rule."""
    rules = [_compiled(i, regex, value) for i, (regex, value) in enumerate(written)]
    expected: tuple[str, int] | None = None
    for i, (regex, value) in enumerate(written):
        if regex or value in text:
            expected = ("stop" if regex else "answer", i)
            break
    book = RuleBook(rules)
    with mock.patch.object(regexes, "MATCH_SECONDS", 0.0):
        try:
            picked = book.pick(_chat_exchange(text))
        except Undecided as stopped:
            assert expected is not None and expected[0] == "stop", (expected, stopped)
            assert f"Matching stopped at rule 'r{expected[1]}' (rules.yaml:" in str(stopped)
            return
    if expected is None:
        assert picked is None
    else:
        assert expected[0] == "answer" and picked is not None
        assert picked[0].name == f"r{expected[1]}"


def _planned(book: RuleBook, text: str) -> contextvars.Context:
    """The context `book.plan` ran in, answering a chat request with `text`: a new, empty one,
    so that it holds what `plan` wrote (a book without a shared backend awaits nothing)."""
    context = contextvars.Context()
    coroutine = book.plan(_chat_exchange(text), bytes(32))
    with pytest.raises(StopIteration) as done:
        context.run(coroutine.send, None)
    assert done.value.value is not None  # (answered)
    return context


def test_a_book_without_regex_rules_writes_no_context_variable_answering() -> None:
    """Answering, a book without regex rules pays for no regex allowance: no context variable
    is written (it was, on every answered request); a book with one releases its allowance."""
    plain = RuleBook([_compiled(0, False, "hello")])
    assert list(_planned(plain, "hello there")) == []
    searching = RuleBook([_compiled(0, True, "hel"), _compiled(1, False, "hello")])
    written = dict(_planned(searching, "say hello"))
    assert [var.name for var in written] == ["mockai_matching"]
    assert list(written.values()) == [None]  # (released: no report will ask)
