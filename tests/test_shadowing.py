"""The "can never match" check finds, for every rule, the first earlier rule that answers all it
would, whether it compares the pair or looks the earlier rule up by its `equals` conditions'
keys (`scenario/loader.py`: thousands of such rules load in a blink instead of in quadratic
time). Over any rules, it names exactly what comparing every pair names."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rule_index import LITERAL, compiled, user_conditions

from mockai.scenario import loader
from mockai.scenario.rules import Rule

# Case-folding pairs too ("ß" folds to "ss"): keys must agree with `implies`.
EQUALS_TEXT = st.text(alphabet="aAßsS", min_size=1, max_size=2)


@st.composite
def equals_conditions(draw: st.DrawFn) -> Any:
    condition: Any = {"equals": draw(EQUALS_TEXT)}
    if draw(st.booleans()):
        condition["ignore_case"] = True
    if draw(st.integers(0, 5)) == 0:
        condition = {"not": condition}
    return condition


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    match: dict[str, Any] = {}
    for subject in ("user", "system", "tool_result"):
        # (the user text mostly, the others seldom: rules of the same subjects, to collide)
        kind = draw(st.integers(1, 3) if subject == "user" else st.sampled_from([0, 0, 0, 1, 2]))
        if kind == 1 or (kind == 2 and subject == "user"):
            match[subject] = draw(equals_conditions())
        elif kind == 2:
            match[subject] = draw(LITERAL)
        elif kind == 3 and subject == "user":
            match[subject] = draw(user_conditions())
    if draw(st.integers(0, 3)) == 0:
        match["model"] = draw(st.sampled_from(["gpt-4o*", "gpt-4o-mini"]))
    definition: dict[str, Any] = {"match": match, "reply": "scripted"}
    if draw(st.integers(0, 5)) == 0:
        definition["times"] = 1  # a rule that runs out shadows nothing
    return definition


def pairwise(rules: list[Rule], earlier: list[Rule]) -> list[tuple[str, str]]:
    """What comparing every pair finds: each rule's first earlier unlimited rule shadowing it."""
    found = []
    every = [*earlier, *rules]
    for position, rule in enumerate(every):
        if position < len(earlier):
            continue
        shadow = next((r for r in every[:position] if r.shadows(rule)), None)
        if shadow is not None:
            found.append((rule.name, shadow.name))
    return found


NAMED = re.compile(r"rule '(r\d+)' can never match: rule '(r\d+)'")


@settings(max_examples=300, deadline=None)
@given(st.lists(definitions(), max_size=25), st.integers(0, 25))
def test_the_check_names_what_comparing_every_pair_names(
    given_definitions: list[dict[str, Any]], split: int
) -> None:
    rules = compiled(given_definitions)
    earlier, later = rules[:split], rules[split:]
    problems = loader.shadowed(later, earlier=earlier)
    named = [match.groups() for p in problems if (match := NAMED.search(str(p)))]
    assert len(named) == len(problems)
    assert named == pairwise(later, earlier)


def test_thousands_of_exact_questions_are_checked_by_lookup() -> None:
    """5,000 `equals` rules (a FAQ): every pair compared was 12.5 million comparisons (~20 s);
    looked up, ~5,000. Counted, not timed: `shadows` is what comparing a pair calls."""
    rules = compiled(
        [{"match": {"user": {"equals": f"question {n}"}}, "reply": "x"} for n in range(5_000)]
        + [{"match": {"user": {"equals": "question 7"}, "model": "gpt-4o"}, "reply": "x"}]
    )
    calls = 0
    original = Rule.shadows

    def counted(self: Rule, later: Rule) -> bool:
        nonlocal calls
        calls += 1
        return original(self, later)

    Rule.shadows = counted  # type: ignore[method-assign]
    try:
        problems = loader.shadowed(rules)
    finally:
        Rule.shadows = original  # type: ignore[method-assign]
    assert [NAMED.search(str(p)).groups() for p in problems] == [("r5000", "r7")]  # type: ignore[union-attr]
    assert calls < 100


def test_a_rule_shadowed_by_one_of_its_own_name_is_said_once_as_a_duplicate(tmp_path: Any) -> None:
    """The shadowing message named the rule twice ("rule 'a' can never match: rule 'a' ... (put
    'a' first, or narrow 'a')") after the duplicate name, which is what to fix."""
    path = tmp_path / "scenario.yaml"
    path.write_text(
        "mockai: 1\nrules:\n"
        "  - {name: a, match: {user: hi}, reply: one}\n"
        "  - {name: a, match: {user: hi}, reply: two}\n"
        "  - {name: b, match: {user: hi}, reply: three}\n",
        encoding="utf-8",
    )
    _, problems = loader.collect([str(path)])
    assert [str(p) for p in problems] == [
        f"{path}:4: duplicate rule name 'a' (first used at line 3); rule names must be unique",
        (
            f"{path}:5: rule 'b' can never match: rule 'a' (line 3) matches everything it does "
            "(put 'b' first, or narrow 'a')"
        ),
    ]


def test_check_warns_of_what_serving_valid_paths_together_would_refuse(
    tmp_path: Any, capsys: Any
) -> None:
    """Each PATH is checked on its own (files of different tests are never served together),
    so what is wrong only between them passed `mockai check a b` in silence and then stopped
    `mockai serve --scenario a --scenario b`: now each is a warning (exit 0), worded as serve's
    problem."""
    from mockai import cli

    first, second, apart = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"
    first.write_text(
        "mockai: 1\nseed: 1\nrules:\n  - {name: hi, match: {user: hi}, reply: one}\n",
        encoding="utf-8",
    )
    second.write_text(
        "mockai: 1\nseed: 2\nrules:\n"
        "  - {name: hi, match: {user: {equals: hi}, model: gpt-4o}, reply: two}\n"
        "  - {name: there, match: {user: {equals: hi}}, reply: three}\n",
        encoding="utf-8",
    )
    apart.write_text("mockai: 1\nrules:\n  - {name: other, reply: four}\n", encoding="utf-8")
    _, refused = loader.collect([str(first), str(second)])
    assert len(refused) == 3  # the name, the shadowed rule, the seeds

    assert cli.main(["check", str(first), str(second)]) == 0
    printed = capsys.readouterr()
    said = " (only if these paths are served together: one `mockai serve` with a `--scenario` for each refuses them)"
    assert printed.err.splitlines() == [
        f"{p.file}:{p.line}: warning: {p.message}{said}"
        if p.line
        else f"{p.file}: warning: {p.message}{said}"
        for p in refused
    ]
    assert "2 path(s) OK (3 warning(s))" in printed.out

    assert cli.main(["check", str(first), str(apart)]) == 0  # nothing between them
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("first", "then", "shadowed"),
    [
        ({"equals": "hello", "ignore_case": True}, {"equals": "Hello"}, True),
        ({"equals": "STRASSE", "ignore_case": True}, {"equals": "straße"}, True),
        ({"equals": "Hello"}, {"equals": "hello", "ignore_case": True}, False),
        ({"equals": "hello", "ignore_case": True}, {"equals": "Help"}, False),
    ],
)
def test_an_equals_ignoring_case_shadows_the_same_text_written_otherwise(
    first: dict[str, Any], then: dict[str, Any], shadowed: bool
) -> None:
    """`check` missed a case-sensitive `equals` after the same text ignoring case (the rule can
    never answer), looked up as it is by one key per `equals`; many such rules are still looked
    up, not compared in pairs (test_thousands_of_exact_questions_are_checked_by_lookup)."""
    questions = [{"match": {"user": {"equals": f"question {n}"}}, "reply": "x"} for n in range(50)]
    rules = compiled(
        [
            *questions,
            {"match": {"user": first}, "reply": "a"},
            {"match": {"user": then}, "reply": "b"},
        ]
    )
    named = [m.groups() for p in loader.shadowed(rules) if (m := NAMED.search(str(p)))]
    assert named == ([("r51", "r50")] if shadowed else [])
