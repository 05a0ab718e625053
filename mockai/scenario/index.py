"""Which rules could answer a request, found without asking each one: an index over literal texts.

A scenario of many rules usually tells them apart by what the user says (`user: weather`,
`user: {equals: "topic 17"}`), and checking every rule in turn costs a few microseconds a rule: a
request answered by the 20th rule paid for 19 that never could. A rule whose `user` condition is a
plain literal (contains, equals, startswith or endswith; case-sensitive, not negated) can only
match a request whose user text *contains* that literal, so the index keeps, per literal, the
rules it gates; a request tests each distinct literal once (`literal in text`, no function call;
the text composed (NFC), as the conditions compare it) and only the rules gated by a literal
found, plus the rules without such a gate, are checked in full, in their order.

The index only narrows: every candidate still runs all its conditions, so a rule is picked
exactly when the plain scan would pick it (tests/test_rule_index.py states this as a property).
Embeddings and moderation inputs (and legacy completions prompts) are matched one input at a time
(the `user` condition holds when any input does), so there the index steps aside and every rule is
a candidate.
"""

from __future__ import annotations

from collections.abc import Sequence

from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.scenario.matchers.texts import User
from mockai.scenario.operators import Op, composed
from mockai.scenario.rules import Rule

# Operators whose literal must occur in a text that passes them.
_OCCURRING = frozenset({Op.EQUALS, Op.CONTAINS, Op.STARTSWITH, Op.ENDSWITH})
_INPUTS = frozenset({Endpoint.EMBEDDINGS, Endpoint.MODERATIONS})
# Fewer gated rules than this are checked in turn: with one or two, looking their literals up
# costs about what checking them does.
_WORTH_INDEXING = 3


def gate(rule: Rule) -> str | None:
    """A literal every request `rule` matches has in its user text (the longest), or None."""
    literals = [
        condition.test.value
        for condition in rule.conditions
        if isinstance(condition, User)
        and condition.test.op in _OCCURRING
        and not condition.test.negate
        and not condition.test.ignore_case
    ]
    return max(literals, key=len) if literals else None


class RuleIndex:
    """The rules of one book, in order, with their literal gates (immutable once built)."""

    __slots__ = ("_by_literal", "_literals", "_ungated", "rules")

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        by_literal: dict[str, list[int]] = {}
        ungated: list[int] = []
        for position, rule in enumerate(self.rules):
            literal = gate(rule)
            if literal is None:
                ungated.append(position)
            else:
                by_literal.setdefault(literal, []).append(position)
        if sum(map(len, by_literal.values())) < _WORTH_INDEXING:
            by_literal, ungated = {}, list(range(len(self.rules)))  # a scan is as quick
        self._by_literal = {literal: tuple(at) for literal, at in by_literal.items()}
        self._literals = tuple(self._by_literal)
        self._ungated = tuple(ungated)

    def candidates(self, exchange: Exchange) -> Sequence[Rule]:
        """The rules that could match `exchange`, in order (a superset of those that do)."""
        # (a legacy completions request's user text is one prompt of its several)
        if not self._literals or exchange.endpoint in _INPUTS or len(exchange.inputs) > 1:
            return self.rules
        # Composed, as the conditions compare it (their literals are composed when compiled): a
        # decomposed `é` (macOS) must find the rule its composed form does.
        text = composed(exchange.user_text)
        found = [literal for literal in self._literals if literal in text]
        if not found:
            positions: Sequence[int] = self._ungated
        elif len(found) == 1 and not self._ungated:
            positions = self._by_literal[found[0]]
        else:
            merged = set(self._ungated)
            for literal in found:
                merged.update(self._by_literal[literal])
            positions = sorted(merged)
        rules = self.rules
        return [rules[position] for position in positions]
