"""The RuleBook: the scenario and runtime rules one server answers from (a decide.Source).

Runtime rules (added by a test or `POST /_mockai/rules`) are asked first, then the scenario files'
rules in file order; the first rule whose conditions all hold and that is not used up answers.
How many times each rule answered is kept here, per server, so compiled rules can be shared.

Thread safety: servers usually run on a background loop thread while the test thread adds rules.
The rule lists are immutable tuples swapped under a lock, and picking a rule + counting the call is
one locked step, so a rule with `times: 1` answers once even when `reset()` races with a request.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mockai.delivery.faults import NO_FAULTS
from mockai.errors import ApiError, ScenarioError
from mockai.generate.fallback import FallbackGenerator
from mockai.pipeline.exchange import Exchange
from mockai.pipeline.reply import Plan, Reply, Timing
from mockai.scenario import loader, nearmiss, per_input
from mockai.scenario.problems import Problems
from mockai.scenario.respond import Build, StaleFixture, build_reply
from mockai.scenario.rules import Rule, Step, compile_rule
from mockai.scenario.templates import TemplateRenderError

log = logging.getLogger("mockai")


@dataclass(frozen=True)
class RuleInfo:
    """A rule as `MockServer.rules` and `GET /_mockai/rules` describe it."""

    name: str
    source: str  # "rule" (runtime) or "scenario"
    origin: str  # file:line, or <runtime> / <admin>
    served: int
    limit: int | None
    conditions: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "name": self.name,
            "source": self.source,
            "origin": self.origin,
            "served": self.served,
            "limit": self.limit,
            "match": list(self.conditions),
        }


class RuleBook:
    """Scenario + runtime rules with their serve counts; answers requests as a decide.Source."""

    def __init__(
        self,
        scenario_rules: Sequence[Rule] = (),
        *,
        strict: bool = False,
        generator: FallbackGenerator | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._runtime: tuple[Rule, ...] = ()
        self._scenario: tuple[Rule, ...] = tuple(scenario_rules)
        self._served: dict[str, int] = {}
        self._names = itertools.count(1)
        self.strict = strict
        self.fallback_generator = generator  # the server's; set by create_app

    # --- the Source protocol --------------------------------------------------------------------

    async def plan(self, exchange: Exchange, key: bytes) -> Plan | None:
        """The Plan of the first rule that matches and is not used up, or None."""
        if per_input.splittable(exchange):
            return self._plan_batch(exchange, key)
        picked = self.pick(exchange)
        if picked is None:
            return None
        rule, step, call = picked
        return self.answer(rule, step, call, exchange, key)

    def near_misses(self, exchange: Exchange) -> list[str]:
        """The closest rules and, field by field, why each did not match."""
        with self._lock:
            rules = self._runtime + self._scenario
            served = dict(self._served)
        return nearmiss.report(rules, served, exchange)

    def __len__(self) -> int:
        return len(self._runtime) + len(self._scenario)

    @property
    def loaded(self) -> bool:
        """True once the book holds a rule (the Decider's default fallback becomes `error`)."""
        return len(self) > 0

    # --- matching -------------------------------------------------------------------------------

    def pick(self, exchange: Exchange) -> tuple[Rule, Step, int] | None:
        """The rule answering `exchange`, its step and the call number; counts the call."""
        with self._lock:
            for rules in (self._runtime, self._scenario):
                for rule in rules:
                    for check in rule.checks:  # Rule.matches, inlined: this is the hot loop
                        if not check(exchange):
                            break
                    else:
                        picked = self._count(rule)
                        if picked is not None:
                            return picked
        return None

    def _first(self, exchange: Exchange) -> Rule | None:
        """The first rule that matches `exchange` and is not used up; the caller holds the lock."""
        for rules in (self._runtime, self._scenario):
            for rule in rules:
                if all(check(exchange) for check in rule.checks):
                    limit = rule.limit
                    if limit is None or self._served.get(rule.name, 0) < limit:
                        return rule
        return None

    def _plan_batch(self, exchange: Exchange, key: bytes) -> Plan | None:
        """A batch of embeddings / moderation inputs: each answered as if sent alone.

        See `per_input`. Every rule that answers some inputs counts one call (the batch is one
        request to it); a rule answering with an error answers the whole request with it.
        """
        with self._lock:
            whole = self._first(exchange)
            if whole is None:
                return None
            if not per_input.tests_inputs(whole):
                picked = self._count(whole)
                assert picked is not None  # _first skips used-up rules
                return self.answer(*picked, exchange, key)
            singles = [per_input.alone(exchange, (i,)) for i in range(len(exchange.inputs))]
            groups = per_input.group([self._first(single) for single in singles])
            if all(g.rule is None for g in groups):
                # The batch as a whole matched (say a `body` condition on the whole input
                # list), no input alone does: the rule answers the batch, as written.
                picked = self._count(whole)
                assert picked is not None
                return self.answer(*picked, exchange, key)
            counted = [(g, self._count(g.rule) if g.rule is not None else None) for g in groups]
        parts: list[tuple[per_input.Group, list[Any]]] = []
        plans: list[Plan] = []
        seed = self.generator().seed
        for group, picked in counted:
            inputs = per_input.alone(exchange, group.indexes)
            reply = None
            if picked is not None:
                plan = self.answer(*picked, inputs, key)
                if plan.reply is None or plan.reply.error is not None:
                    return plan  # an error answers for the whole batch
                plans.append(plan)
                reply = plan.reply
            parts.append((group, per_input.answers(reply, inputs, seed)))
        first = plans[0]  # some group has a rule (checked above)
        assert first.reply is not None
        warnings = tuple(w for plan in plans if plan.reply for w in plan.reply.warnings)
        base = replace(first.reply, warnings=warnings)
        return replace(
            first,
            reply=per_input.merged(exchange, parts, base),
            name=" + ".join(plan.name or "" for plan in plans),
        )

    def _count(self, rule: Rule) -> tuple[Rule, Step, int] | None:
        """Count a call for `rule` (None when it is used up); the caller holds the lock."""
        served = self._served.get(rule.name, 0)
        limit = rule.limit
        if limit is not None and served >= limit:
            return None  # used up: fall through to later rules
        self._served[rule.name] = served + 1
        return rule, rule.step(served), served + 1

    def answer(self, rule: Rule, step: Step, call: int, exchange: Exchange, key: bytes) -> Plan:
        """The Plan for `rule` answering `exchange` with `step`."""
        delivery = step.delivery
        timing = Timing(
            latency=delivery.latency,
            stream=delivery.stream,
            seed=int.from_bytes(key[24:32], "big"),
        )
        faults = delivery.faults if delivery.faults is not None else NO_FAULTS
        if step.error is not None:
            reply = Reply(error=step.error.build(exchange.model))
        else:
            assert step.reply is not None
            reply = self._reply(rule, step, call, exchange, key)
        return Plan(source=rule.kind, reply=reply, name=rule.name, timing=timing, faults=faults)

    def _reply(self, rule: Rule, step: Step, call: int, exchange: Exchange, key: bytes) -> Reply:
        assert step.reply is not None
        build = Build(exchange, key, call, rule.label, self.generator, self.strict)
        try:
            reply = build_reply(step.reply, build)
        except StaleFixture as error:
            return Reply(
                error=ApiError(400, f"mockai strict mode: {error}", code="mockai_stale_fixture")
            )
        except TemplateRenderError as error:
            # The template's own place when known (`rule 'a' reply.content (a.yaml:6)`).
            message = f"{error.origin or rule.label}: the reply template failed: {error}"
            log.warning("mockai: %s", message)
            return Reply(error=ApiError(400, message, code="mockai_template_error"))
        return _loop_guard(rule, reply, exchange)

    def generator(self) -> FallbackGenerator:
        """The generator filling in replies that script no text (the server's, once attached)."""
        if self.fallback_generator is None:
            from mockai.catalog import Catalog

            self.fallback_generator = FallbackGenerator(0, Catalog())
        return self.fallback_generator

    # --- runtime rules --------------------------------------------------------------------------

    def add(self, rules: Iterable[Mapping[str, Any]], *, file: str = "<runtime>") -> list[str]:
        """Validate and append runtime rules; ScenarioError lists every problem (none are added)."""
        problems = Problems(file)
        with self._lock:
            compiled, names = [], []
            for value in rules:
                default = f"rule-{next(self._names)}"
                while self._has(default):
                    default = f"rule-{next(self._names)}"
                names.append((file, loader.rule_name(value, default), 0))
                rule = compile_rule(
                    value, file=file, line=0, name=default, kind="rule", problems=problems
                )
                if rule is not None:
                    compiled.append(rule)
            existing = [(r.file, r.name, r.line) for r in self._runtime + self._scenario]
            found = loader.duplicate_names([*existing, *names])
            found += loader.shadowed(compiled, earlier=self._runtime)
            problems.items.extend(found)
            problems.raise_if_any()
            self._runtime = self._runtime + tuple(compiled)
        for warning in problems.warnings:
            log.warning("%s", warning)
        return [rule.name for rule in compiled]

    def _has(self, name: str) -> bool:
        return any(rule.name == name for rule in self._runtime + self._scenario)

    def load(self, scenario_set: loader.ScenarioSet) -> list[str]:
        """Append a scenario set's rules after the current scenario rules."""
        with self._lock:
            existing = [(r.file, r.name, r.line) for r in self._runtime + self._scenario]
            added = [(r.file, r.name, r.line) for r in scenario_set.rules]
            found = loader.duplicate_names([*existing, *added])
            found += loader.shadowed(scenario_set.rules, earlier=self._scenario)
            if found:
                raise ScenarioError(found)
            self._scenario = self._scenario + scenario_set.rules
        return [rule.name for rule in scenario_set.rules]

    def remove(self, name: str) -> None:
        """Remove the rule called `name` (runtime or scenario); ScenarioError if there is none."""
        with self._lock:
            if not self._has(name):
                names = ", ".join(rule.name for rule in self._runtime + self._scenario) or "none"
                problems = Problems("<runtime>")
                problems.add(0, f"no rule named '{name}' (rules: {names})")
                problems.raise_if_any()
            self._runtime = tuple(r for r in self._runtime if r.name != name)
            self._scenario = tuple(r for r in self._scenario if r.name != name)
            self._served.pop(name, None)

    def clear(self) -> int:
        """Remove every runtime rule (scenario rules stay); returns how many were removed."""
        with self._lock:
            removed = len(self._runtime)
            for rule in self._runtime:
                self._served.pop(rule.name, None)
            self._runtime = ()
        return removed

    def reset(self) -> None:
        """Forget how often each rule answered (sequences start over, `times` refill)."""
        with self._lock:
            self._served.clear()

    def describe(self) -> list[RuleInfo]:
        """Every rule, in the order they are asked."""
        with self._lock:
            rules = self._runtime + self._scenario
            served = dict(self._served)
        return [
            RuleInfo(
                rule.name,
                rule.kind,
                rule.origin,
                served.get(rule.name, 0),
                rule.limit,
                tuple(f"{c.subject}: {c.expected()}" for c in rule.conditions),
            )
            for rule in rules
        ]


def _loop_guard(rule: Rule, reply: Reply, exchange: Exchange) -> Reply:
    """Warn when a rule answers a tool result with the very call that produced it (a loop)."""
    calls = reply.choices[0].tool_calls if reply.choices else ()
    if not calls or not exchange.has_tool_result:
        return reply
    previous = next(
        (
            m.tool_calls
            for m in reversed(exchange.messages)
            if m.role == "assistant" and m.tool_calls
        ),
        (),
    )
    if sorted(c.name for c in calls) != sorted(c.name for c in previous):
        return reply
    names = ", ".join(c.name for c in calls)
    text = " ".join(
        f"{rule.label} answered a tool result with the same tool call(s) again ({names}): an "
        "agent would loop. Add `has_tool_result: false` to its match, or put a rule matching "
        "the tool result before it".split()
    )
    log.warning("mockai: %s", text)
    return replace(reply, warnings=(*reply.warnings, text))


def from_paths(paths: Sequence[str], *, strict: bool = False) -> RuleBook:
    """A RuleBook serving the rules of these scenario files and folders."""
    return RuleBook(loader.load(paths).rules, strict=strict)
