"""The rule index only narrows: over any rules and any request, the rules it leaves out are rules
that could not have matched, and the first rule picked is the one a plain scan picks."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.scenario.index import RuleIndex, gate
from mockai.scenario.problems import Problems
from mockai.scenario.rules import Rule, compile_rule

# Few letters, so that literals and texts overlap often (prefixes, repeats, one inside another).
# Both cases of a letter too, so that an ignore_case condition can match where the exact one fails.
TEXT = st.text(alphabet="aAb_éÉ\U0001f600 ", max_size=8)
LITERAL = st.text(alphabet="aAb_éÉ\U0001f600 ", min_size=1, max_size=4)
OPS = ("contains", "equals", "startswith", "endswith", "regex")


@st.composite
def user_conditions(draw: st.DrawFn) -> Any:
    op = draw(st.sampled_from(OPS))
    value = draw(LITERAL) if op != "regex" else draw(st.sampled_from(["^a", "b$", "a+", "É|_"]))
    condition: Any = {op: value}
    if draw(st.booleans()):
        condition["ignore_case"] = True
    if draw(st.integers(0, 4)) == 0:
        condition = {"not": condition}
    return draw(st.sampled_from([condition, value])) if op == "contains" else condition


@st.composite
def rule_definitions(draw: st.DrawFn) -> dict[str, Any]:
    match: dict[str, Any] = {}
    if draw(st.integers(0, 5)):  # most rules test the user text, some do not
        match["user"] = draw(user_conditions())
    if draw(st.booleans()):
        match["model"] = draw(st.sampled_from(["gpt-4o*", "gpt-4o-mini", "*", "o?-*"]))
    if draw(st.booleans()):
        match["system"] = draw(LITERAL)
    return {"match": match, "reply": "scripted"}


def compiled(definitions: list[dict[str, Any]]) -> list[Rule]:
    problems = Problems("<test>")
    rules = [
        compile_rule(d, file="<test>", line=0, name=f"r{n}", kind="rule", problems=problems)
        for n, d in enumerate(definitions)
    ]
    assert not problems.items, problems.items
    return [rule for rule in rules if rule is not None]


def exchange(endpoint: Endpoint, model: str, user: str, system: str, inputs: list[str]) -> Exchange:
    return Exchange(
        endpoint=endpoint,
        model=model,
        body={},
        headers={},
        user_text=user,
        system_text=system,
        inputs=tuple(inputs) if endpoint in (Endpoint.EMBEDDINGS, Endpoint.MODERATIONS) else (),
    )


@settings(max_examples=400)
@given(
    st.lists(rule_definitions(), max_size=12),
    st.sampled_from([Endpoint.CHAT, Endpoint.RESPONSES, Endpoint.EMBEDDINGS, Endpoint.MODERATIONS]),
    st.sampled_from(["gpt-4o-mini", "gpt-4o", "o3-mini", "gpt-4o\nx"]),
    TEXT,
    TEXT,
    st.lists(TEXT, max_size=3),
)
def test_the_candidates_hold_every_matching_rule_in_order(
    definitions: list[dict[str, Any]],
    endpoint: Endpoint,
    model: str,
    user: str,
    system: str,
    inputs: list[str],
) -> None:
    rules = compiled(definitions)
    request = exchange(endpoint, model, user, system, inputs)
    candidates = RuleIndex(rules).candidates(request)
    # in order, without repeats, drawn from the rules
    positions = [rules.index(rule) for rule in candidates]
    assert positions == sorted(set(positions))
    assert [r for r in candidates if r.matches(request)] == [r for r in rules if r.matches(request)]


@settings(max_examples=300)
@given(rule_definitions(), TEXT)
def test_a_gate_is_in_every_user_text_its_rule_matches(
    definition: dict[str, Any], text: str
) -> None:
    (rule,) = compiled([definition])
    literal = gate(rule)
    request = exchange(Endpoint.CHAT, "gpt-4o-mini", text, "", [])
    if literal is not None and rule.matches(request):
        assert literal in text


def test_rules_without_a_literal_user_text_are_always_candidates() -> None:
    # (three gated rules: with fewer, every rule is a candidate, as a scan is as quick)
    rules = compiled(
        [
            {"match": {"user": "weather"}, "reply": "a"},
            {"match": {"model": "gpt-4o*"}, "reply": "b"},
            {"match": {"user": {"regex": "^hi"}}, "reply": "c"},
            {"match": {"user": {"contains": "Weather", "ignore_case": True}}, "reply": "d"},
            {"match": {"user": {"not": {"contains": "rain"}}}, "reply": "e"},
            {"match": {"user": {"equals": "topic 20"}}, "reply": "f"},
            {"match": {"user": {"startswith": "topic"}}, "reply": "g"},
        ]
    )
    names = [
        rule.name
        for rule in RuleIndex(rules).candidates(exchange(Endpoint.CHAT, "gpt-4o", "hello", "", []))
    ]
    assert names == ["r1", "r2", "r3", "r4"]
    names = [
        rule.name
        for rule in RuleIndex(rules).candidates(
            exchange(Endpoint.CHAT, "gpt-4o", "topic 20 weather", "", [])
        )
    ]
    assert names == ["r0", "r1", "r2", "r3", "r4", "r5", "r6"]
