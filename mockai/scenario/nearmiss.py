"""The no-match report: the closest rules and, field by field, why each did not match.

Rules are ranked by distance, as WireMock does: each failing condition adds how far the request
is from satisfying it (0..1: `'abcd'` is near `equals 'abc'`), each condition that holds
subtracts a little (vcrpy's "most matches"; flags such as `stream` count less). The best three
are shown in WireMock's two-column layout: the rule's condition on the left, what the request had
on the right, `<<<<<` on the rows that failed. A rule whose conditions all hold but that is used
up says "already consumed", a regex condition whose search was stopped says so (UNDECIDED), and
a rule whose conditions all hold and that is not used up was not reached: matching stopped
before it, the request's regex searches having run out of time (the error says where).
Everything registered is listed last, grouped by where it came from.

A batch of inputs (embeddings, moderations, legacy completions prompts) is matched input by input
(`per_input`), so each rule is shown against the input it comes closest to, as the request of
that input alone (its `user`, `turn` and `body`), the header naming which (`prompt 2 of 3`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from mockai import regexes
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.scenario import per_input
from mockai.scenario.matchers.base import Matcher
from mockai.scenario.operators import Op, TextTest
from mockai.scenario.rules import Rule

SHOWN = 3
# A regex condition whose search was stopped (it backtracked past its bound, or the request's
# time for regex searches ran out): it does not hold, but nothing was decided about the text.
# The report asks again what matching asked, and such a search is not run again (`regexes`).
UNDECIDED = "regex search stopped at its time bound: undecided, so it does not hold"
# Cells are never cut here: texts arrive quoted and already cut at 60 characters (`shorten`, which
# cuts the text, not its repr, so no escape is split), and cutting them again hid the very
# difference the report is for. A column is as wide as its widest cell up to these widths (a
# shortened text, 62 characters, fits the right one); a wider cell, such as a rule's long text,
# is written whole and moves its row's `|` to the right.
_LEFT, _RIGHT = 80, 64
_LISTED = 20
# A batch's inputs each rule is compared with (the first ones): a report over 2,048 embeddings
# inputs times every rule would cost more than the request it explains.
_INPUTS = 20
_LOOKED_AT = 2000  # characters of a request text compared by their looks (as `text_distance`)


@dataclass(frozen=True)
class _Row:
    left: str
    right: str
    failure: str | None = None


@dataclass(frozen=True)
class _Verdict:
    rule: Rule
    rows: tuple[_Row, ...]
    failed: int
    held: int
    consumed: bool = False
    score: float = 0.0  # lower is closer
    request: str = ""  # which of a batch's inputs the rows show (`, prompt 2 of 3`)


def evaluate(rule: Rule, served: int, exchange: Exchange) -> _Verdict:
    """Every condition of `rule` checked against `exchange`, plus whether it is used up."""
    rows: list[_Row] = []
    failed = held = 0
    score = 0.0
    for condition in rule.conditions:
        stopped = regexes.stops()
        try:
            ok = condition.holds(exchange)
            undecided = not ok and regexes.stops() > stopped
        except regexes.RegexTimeout:  # (the request's time for regex searches ran out)
            ok, undecided = False, True
        failure = None if ok else f"{condition.subject} does not match"
        if undecided:
            failure = f"{condition.subject}: {UNDECIDED}"
        left, right = f"{condition.subject}: {condition.expected()}", condition.actual(exchange)
        if not ok and _look_alike(condition, exchange):
            # Escaped, so that the report shows what differs: `'\ufb01le'` beside `'file'`.
            left, right = _escaped(left), _escaped(right)
        rows.append(_Row(left, right, failure))
        failed, held = failed + (not ok), held + ok
        # WireMock-style distance: near values rank close; conditions that hold pull closer.
        # (Undecided: as far as can be, without searching again.)
        if ok:
            score -= 0.5 * condition.support()
        else:
            score += 1.0 if undecided else condition.distance(exchange)
    if not rule.conditions:
        rows.append(_Row("(no conditions: matches every request)", ""))
    limit = rule.limit
    consumed = limit is not None and served >= limit
    if limit is not None and consumed:
        failed += 1
        rows.append(_Row(_limit_text(rule), f"served {served}", _consumed(served, limit)))
    return _Verdict(rule, tuple(rows), failed, held, consumed, score)


def _look_alike(condition: Matcher, exchange: Exchange) -> bool:
    """Whether a text condition that failed would hold were the texts compared by how they look:
    compatibility forms (the `fi` ligature, full-width letters) as their letters, and without
    marks and invisible characters, which print the same or not at all."""
    test = getattr(condition, "test", None)
    text_of = getattr(condition, "text", None)
    if not isinstance(test, TextTest) or text_of is None or test.op is Op.REGEX or test.negate:
        return False
    text = text_of(exchange)
    if text is None or (text.isascii() and test.value.isascii()):
        return False
    looks = TextTest.make(test.op, _looks(test.value), ignore_case=test.ignore_case)
    return looks.test(_looks(text[:_LOOKED_AT]))


def _looks(text: str) -> str:
    kept = unicodedata.normalize("NFKD", text)
    return "".join(
        ch for ch in kept if not unicodedata.combining(ch) and unicodedata.category(ch) != "Cf"
    )


def _escaped(cell: str) -> str:
    return cell.encode("ascii", "backslashreplace").decode("ascii")


def _limit_text(rule: Rule) -> str:
    parts = []
    if rule.fallthrough:
        parts.append(f"sequence of {len(rule.steps)}, then fallthrough")
    if rule.times is not None:
        parts.append(f"times: {rule.times}")
    return "; ".join(parts)


def _consumed(served: int, limit: int) -> str:
    noun = "time" if limit == 1 else "times"
    return f"already consumed (served {served} of {limit} {noun})"


def report(rules: Sequence[Rule], served: Mapping[str, int], exchange: Exchange) -> list[str]:
    """The lines of the no-match report for `exchange` (empty when there are no rules)."""
    if not rules:
        return []
    views = _views(exchange)
    verdicts = [_closest(rule, served.get(rule.name, 0), views) for rule in rules]
    ranked = sorted(enumerate(verdicts), key=lambda iv: (iv[1].score, iv[0]))
    lines = ["", f"Closest rules (of {len(rules)}), best first:"]
    for _, verdict in ranked[:SHOWN]:
        lines.append("")
        lines.extend(_table(verdict, exchange))
    lines.append("")
    lines.extend(_listing(rules))
    return lines


def _views(exchange: Exchange) -> list[tuple[str, Exchange]]:
    """What rules are compared with: the request, or each input of a batch as sent alone, with
    the header's words naming it."""
    if not per_input.splittable(exchange):
        return [("", exchange)]
    noun = "prompt" if exchange.endpoint is Endpoint.COMPLETIONS else "input"
    count = len(exchange.inputs)
    return [
        (f", {noun} {i + 1} of {count}", per_input.alone(exchange, (i,)))
        for i in range(min(count, _INPUTS))
    ]


def _closest(rule: Rule, served: int, views: Sequence[tuple[str, Exchange]]) -> _Verdict:
    """`rule`'s verdict on the view it comes closest to (the first of equally close ones)."""
    best: _Verdict | None = None
    for request, view in views:
        verdict = evaluate(rule, served, view)
        if best is None or verdict.score < best.score:
            best = replace(verdict, request=request)
    assert best is not None  # (a view at least: the request itself)
    return best


def _table(verdict: _Verdict, exchange: Exchange) -> list[str]:
    rule = verdict.rule
    left = min(_LEFT, max(len(r.left) for r in verdict.rows))
    header = f"{exchange.endpoint.value} request{verdict.request}"
    right = min(_RIGHT, max([len(r.right) for r in verdict.rows] + [len(header)]))

    def row(a: str, b: str, failure: str | None = None) -> str:
        text = f"{a:<{left}} | {b:<{right}}"
        return (text + f"  <<<<< {failure}") if failure else text.rstrip()

    rule_line = f"{rule.label}: {_summary(verdict)}"
    lines = [
        rule_line,
        row("Closest rule", header),
        "-" * (left + right + 3),
    ]
    lines.extend(row(r.left, r.right, r.failure) for r in verdict.rows)
    return lines


def _summary(verdict: _Verdict) -> str:
    total = len(verdict.rule.conditions)
    failing = verdict.failed - verdict.consumed
    if failing == 0 and verdict.consumed:
        return "every condition holds, but the rule is used up"
    if failing == 0:  # (matching would have picked it, had it got this far)
        return "every condition holds, but matching stopped before it reached this rule"
    noun = "condition" if total == 1 else "conditions"
    return f"{failing} of {total} {noun} failed"


def _listing(rules: Sequence[Rule]) -> list[str]:
    groups: dict[str, list[str]] = {}
    for rule in rules:
        origin = "runtime rules" if rule.kind == "rule" else rule.file
        groups.setdefault(origin, []).append(rule.name)
    lines = ["All rules, in the order they are asked:"]
    for origin, names in groups.items():
        shown = ", ".join(names[:_LISTED])
        more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
        lines.append(f"  {origin}: {shown}{more}")
    return lines
