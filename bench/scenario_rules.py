"""Benchmark: loading a 100-rule scenario file, and matching a request against its rules.

    python bench/scenario_rules.py [RULES]

Prints the uncached load time (parse + validate + compile + shadowing checks), the matching
cost per rule (a request no rule matches, so every rule is tried: the worst case), the cost of
a first-rule hit, and of building the no-match report.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from multidict import CIMultiDict

from mockai.api import chat
from mockai.api.base import ParseContext
from mockai.catalog import Catalog
from mockai.pipeline.fingerprint import content_key
from mockai.scenario import loader
from mockai.scenario.book import RuleBook

KINDS = [
    "match: {{user: 'question {i}?'}}",
    "match: {{user: {{equals: 'exact question {i}'}}, model: 'gpt-4o*'}}",
    "match: {{user: {{regex: '^order #{i}\\\\b'}}, endpoint: chat}}",
    "match: {{system: {{startswith: 'persona {i}:'}}, stream: false}}",
    "match: {{headers: {{x-case: {{equals: 'case-{i}'}}}}, tools: [tool_{i}]}}",
    "match: {{body: {{temperature: 0, metadata: {{case: '{i}'}}}}, turn: {{min: 1, max: 3}}}}",
]


def scenario(rules: int) -> str:
    lines = ["mockai: 1", "rules:"]
    for i in range(rules):
        lines += [
            f"  - name: rule-{i}",
            "    " + KINDS[i % len(KINDS)].format(i=i),
            "    reply:",
            f"      content: 'Answer {i} for {{{{ request.model }}}}: {{{{ faker.sentence() }}}}'",
        ]
    return "\n".join(lines) + "\n"


def per_call(fn: object, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - start) / repeat


def main(rules: int = 100) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "many.yaml"
        path.write_text(scenario(rules))
        loader.collect([str(path)])  # warm imports and the shared Faker
        load = per_call(lambda: loader.collect([str(path)]), 20)
        scenario_set = loader.load([str(path)])
    book = RuleBook(scenario_set.rules)

    def exchange(text: str) -> tuple[object, bytes]:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
        parsed = chat.parse(body, ParseContext(CIMultiDict(), Catalog()))
        return parsed, content_key(0, "chat", body)

    miss, _ = exchange("nothing matches this")
    hit, key = exchange("question 0?")
    miss_time = per_call(lambda: book.pick(miss), 2000)  # type: ignore[arg-type]
    hit_time = per_call(lambda: book.pick(hit), 2000)  # type: ignore[arg-type]

    def plan() -> None:
        picked = book.pick(hit)  # type: ignore[arg-type]
        assert picked is not None
        book.answer(*picked, hit, key)  # type: ignore[arg-type]

    plan_time = per_call(plan, 500)
    report_time = per_call(lambda: book.near_misses(miss), 20)  # type: ignore[arg-type]
    print(f"rules: {rules}")
    print(f"load (parse, validate, compile, shadowing), uncached: {load * 1000:.1f} ms")
    per_rule = miss_time / rules * 1e9
    print(f"match a request no rule matches: {miss_time * 1e6:.1f} us = {per_rule:.0f} ns per rule")
    print(f"match a request the first rule matches: {hit_time * 1e6:.2f} us")
    print(f"match + answer (a template with a seeded faker): {plan_time * 1e6:.0f} us")
    print(f"no-match report over all rules: {report_time * 1000:.2f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
