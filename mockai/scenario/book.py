"""The RuleBook: the scenario and runtime rules one server answers from (a decide.Source).

Runtime rules (added by a test or `POST /_mockai/rules`) are asked first, then the scenario files'
rules in file order; the first rule whose conditions all hold and that is not used up answers.
How many times each rule answered is kept here, per server, so compiled rules can be shared.

Thread safety: servers usually run on a background loop thread while the test thread adds rules.
The rule lists are immutable tuples swapped under a lock, and picking a rule + counting the call is
one locked step, so a rule with `times: 1` answers once even when `reset()` races with a request.

Every server has a RuleBook, and most never get a rule: the scenario machinery (the loader, the
matchers, replies, templates, the near-miss report) is imported when the first rule arrives, not
with this module, so that a plain `mockai serve` starts without it. An empty book answers
`plan` with one test.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from mockai.delivery.faults import NO_FAULTS
from mockai.errors import ApiError, Problem, ScenarioError
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import NO_TIMING, Plan, Reply, Timing
from mockai.wire import jsonbytes

if TYPE_CHECKING:  # the scenario machinery loads with the first rule (see the module docstring)
    from mockai.backend.base import SharedRules
    from mockai.generate.fallback import FallbackGenerator
    from mockai.pipeline.decide import Undecided
    from mockai.regexes import Allowance, RegexTimeout
    from mockai.scenario import per_input, shared_rules
    from mockai.scenario.index import RuleIndex
    from mockai.scenario.loader import ScenarioSet
    from mockai.scenario.problems import Problems
    from mockai.scenario.replies import ReplySpec
    from mockai.scenario.respond import Build, StaleFixture
    from mockai.scenario.rules import Rule, Step
    from mockai.scenario.templates import TemplateRenderError

log = logging.getLogger("mockai")

# The regex allowance of the request this task is matching (regexes.MATCH_SECONDS for all its
# regex conditions), with its exchange: `plan` opens it, and the no-match report, asked for the
# same exchange after it, draws on what is left and on what it found too costly, rather than
# search the same texts again. (A context variable: the Decider asks both in the request's task.)
# Only books with a regex rule open it (`_scoped`): the others never touch it.
_matching: ContextVar[tuple[Exchange, Allowance] | None] = ContextVar(
    "mockai_matching", default=None
)


@dataclass(frozen=True)
class RuleInfo:
    """A rule as `MockServer.rules` and `GET /_mockai/rules` describe it."""

    name: str
    source: str  # "rule" (runtime) or "scenario"
    origin: str  # file:line, or <runtime> / <admin>
    served: int
    limit: int | None
    conditions: tuple[str, ...]
    problem: str | None = None  # why this server does not serve it (a shared runtime rule)

    def as_json(self) -> dict[str, Any]:
        """A JSON-friendly view (`problem` only for a rule this server does not serve)."""
        view = {
            "name": self.name,
            "source": self.source,
            "origin": self.origin,
            "served": self.served,
            "limit": self.limit,
            "match": list(self.conditions),
        }
        if self.problem is not None:
            view["problem"] = self.problem
        return view


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
        self._next_number = 1  # of the next default name, `rule-N`
        self.strict = strict
        self.fallback_generator = generator  # the server's; set by create_app
        # With a shared backend (`--state redis://`): runtime rules and counts live there, and
        # this book holds a copy of them as of `_version` (see `sync`).
        self.shared: SharedRules | None = None
        self._version = ""
        self._definitions: tuple[dict[str, Any], ...] = ()
        self._files: tuple[Rule, ...] = self._scenario  # scenario rules before runtime removals
        self._removed: frozenset[str] = frozenset()
        self._named = 0  # default names the shared rules handed out (`rule-1` to `rule-N`)
        self._compiled: dict[bytes, Rule | shared_rules.Unserved] = {}  # compiled once per worker
        self._listed: tuple[
            Rule | shared_rules.Unserved, ...
        ] = ()  # the definitions, as listed here
        self._clashes: tuple[Problem, ...] = ()  # scenario rules taking a shared rule's name
        self._reported: set[str] = set()  # unserved rules already logged (once each)
        # (runtime, scenario, their index): see `_index`; built on the first request.
        self._indexed: tuple[tuple[Rule, ...], tuple[Rule, ...], RuleIndex | None] = ((), (), None)
        self._searches = False  # whether a rule of the index has a regex condition

    # --- the Source protocol --------------------------------------------------------------------

    async def plan(self, exchange: Exchange, key: bytes) -> Plan | None:
        """The Plan of the first rule that matches and is not used up, or None."""
        if self.shared is None and not (self._runtime or self._scenario):
            return None  # no rule (what most servers have): nothing to match
        if exchange.endpoint in _BATCHED and _machinery().splittable(exchange):
            if self.shared is None:
                plan = self._plan_batch(exchange, key)
            else:
                plan = await self._plan_batch_shared(exchange, key)
        else:
            picked = (
                self.pick(exchange) if self.shared is None else await self._pick_shared(exchange)
            )
            plan = None if picked is None else self.answer(*picked, exchange, key)
        if plan is not None and self._searches:
            # (answered: no report will ask. A book without regex rules never set it, and a
            # context-variable write per request is what its hot path must not pay.)
            _matching.set(None)
        return plan

    def near_misses(self, exchange: Exchange) -> list[str]:
        """The closest rules and, field by field, why each did not match."""
        with self._lock:
            rules = self._runtime + self._scenario
            served = dict(self._served)
        if not rules:
            return []
        from mockai.scenario import nearmiss

        try:
            with _searching(exchange):
                return nearmiss.report(rules, served, exchange)
        finally:
            _matching.set(None)  # (the request's last search)

    def __len__(self) -> int:
        return len(self._runtime) + len(self._scenario)

    @property
    def loaded(self) -> bool:
        """True once the book holds a rule (the Decider's default fallback becomes `error`)."""
        return len(self) > 0

    @property
    def scenario_rules(self) -> tuple[Rule, ...]:
        """The scenario files' rules as last loaded (before runtime removals): `--watch`
        compares them with the files to see whether an edit went unseen."""
        return self._files

    # --- matching -------------------------------------------------------------------------------

    def pick(self, exchange: Exchange) -> tuple[Rule, Step, int] | None:
        """The rule answering `exchange`, its step and the call number; counts the call.
        Raises decide.Undecided when the request's regex searches run out of time before a rule
        answers (see `_undecided`)."""
        with self._lock:
            index = self._index()
            if not self._searches:
                return self._pick_in(index, exchange)
            with _searching(exchange):
                return self._pick_in(index, exchange)

    def _pick_in(self, index: RuleIndex, exchange: Exchange) -> tuple[Rule, Step, int] | None:
        """`pick`'s scan; the caller holds the lock."""
        try:
            for rule in index.candidates(exchange):
                for check in rule.checks:  # Rule.matches, inlined: this is the hot loop
                    if not check(exchange):
                        break
                else:
                    picked = self._count(rule)
                    if picked is not None:
                        return picked
        # (Raised only by a regex search, so `_machinery` is loaded by then; the clause is
        # looked up only when something is raised.)
        except _machinery().RegexTimeout as error:
            raise _undecided(rule) from error
        return None

    def _matching_rules(
        self, index: RuleIndex, exchange: Exchange
    ) -> tuple[list[Rule], Rule | None]:
        """Every rule that matches `exchange`, in order, up to the one where the request's regex
        searches ran out of time (the second item: None when they did not); the caller holds
        the lock."""
        matching = []
        for rule in index.candidates(exchange):
            try:
                if all(check(exchange) for check in rule.checks):
                    matching.append(rule)
            except _machinery().RegexTimeout:
                return matching, rule
        return matching, None

    def _scoped(self, exchange: Exchange) -> AbstractContextManager[None]:
        """`_searching(exchange)` for a book with a regex rule, else nothing (`_searches` is
        as of the last `_index()`); the caller holds the lock."""
        return _searching(exchange) if self._searches else _UNSCOPED

    def _index(self) -> RuleIndex:
        """The index over the runtime then scenario rules, rebuilt when either list was swapped;
        the caller holds the lock."""
        runtime, scenario, index = self._indexed
        if index is None or runtime is not self._runtime or scenario is not self._scenario:
            from mockai.scenario.index import RuleIndex

            rules = self._runtime + self._scenario
            index = RuleIndex(rules)
            self._indexed = (self._runtime, self._scenario, index)
            self._searches = any(map(_searches, rules))
        return index

    def _first(self, exchange: Exchange, after: Rule | None = None) -> Rule | None:
        """The first rule that matches `exchange` and is not used up (with `after`, the first
        asked after that rule which matches the batch `exchange` as a whole: one testing no
        input, see per_input.tests_inputs); the caller holds the lock."""
        import mockai.scenario.per_input as per_input

        looking = after is None
        for rules in (self._runtime, self._scenario):
            for rule in rules:
                if not looking:
                    looking = rule is after
                    continue
                if after is not None and per_input.tests_inputs(rule):
                    continue
                try:
                    holds = all(check(exchange) for check in rule.checks)
                except _machinery().RegexTimeout as error:  # (see `_pick_in`)
                    raise _undecided(rule) from error
                if holds:
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
            self._index()  # (for `_searches`)
            with self._scoped(exchange):
                chosen = self._choose_batch(exchange)
            if chosen is None:
                return None
            if not isinstance(chosen, list):
                picked = self._count(chosen)
                assert picked is not None  # _first skips used-up rules
                return self.answer(*picked, exchange, key)
            counted = [(g, self._count(g.rule) if g.rule is not None else None) for g in chosen]
        return self._merge_batch(exchange, key, counted)

    async def _plan_batch_shared(self, exchange: Exchange, key: bytes) -> Plan | None:
        """`_plan_batch` across workers: the rules are chosen here on the shared counts, and the
        chosen rules' calls are counted in the backend, all in one step; if another worker used
        one up meanwhile (or changed the rules), none is counted and the batch is planned again
        on the new counts."""
        assert self.shared is not None
        while True:
            await self.sync()  # the current counts decide which rules are used up
            with self._lock:
                self._index()  # (for `_searches`)
                with self._scoped(exchange):
                    chosen = self._choose_batch(exchange)
                version = self._version
            if chosen is None:
                return None
            if not isinstance(chosen, list):  # one rule answers the whole request: the plain path
                picked = await self._pick_shared(exchange)
                return None if picked is None else self.answer(*picked, exchange, key)
            ruled = [group.rule for group in chosen if group.rule is not None]
            counts = await self.shared.pick_each(version, [(r.name, r.limit) for r in ruled])
            if counts is None:  # stale, or used up meanwhile: plan again (nothing was counted)
                continue
            numbers = iter(counts)
            counted: list[tuple[per_input.Group, tuple[Rule, Step, int] | None]] = []
            for group in chosen:
                rule = group.rule
                if rule is None:
                    counted.append((group, None))
                    continue
                count = next(numbers)
                counted.append((group, (rule, rule.step(count - 1), count)))
            return self._merge_batch(exchange, key, counted)

    def _choose_batch(self, exchange: Exchange) -> Rule | list[per_input.Group] | None:
        """Who answers a batch: no rule (None), one rule for the whole request, or a rule (or
        none) per group of inputs. The caller holds the lock."""
        import mockai.scenario.per_input as per_input

        whole = self._first(exchange)
        split = self._splits_before(whole, exchange)
        if not split and (whole is None or not per_input.tests_inputs(whole)):
            # No rule asked before `whole` sees an input alone otherwise than in the batch (a
            # `user` condition failing the batch fails each of its inputs), so none answers an
            # input alone, and `whole` answers them all: the plain path.
            return whole
        firsts = [self._first(per_input.alone(exchange, (i,))) for i in range(len(exchange.inputs))]
        if whole is not None:
            firsts = self._whole_answers(whole, firsts, exchange)
        groups = per_input.group(firsts)
        if all(g.rule is None for g in groups):
            return whole  # (None: `whole` would answer some input)
        only = groups[0].rule if len(groups) == 1 else None
        if only is not None and only is whole and not per_input.tests_inputs(only):
            return whole  # (every input alone is the batch's rule's, as the plain path answers)
        return groups

    def _whole_answers(
        self, whole: Rule, firsts: list[Rule | None], exchange: Exchange
    ) -> list[Rule | None]:
        """Each input's rule, given `whole` matched the batch `exchange` and `firsts` (each
        input's first rule alone); the caller holds the lock.

        A rule testing the inputs (`user`) that answers some of them alone answers those, and
        the others get their own rules (or the generator), unless a rule after it matches the
        batch as a whole: that one then answers them as below. A rule that matched the batch as
        a whole (say `body: {input: [a, b]}`) answers every input, except those a rule before
        it answers alone (asked first, that rule wins them, as it would alone); a rule after it
        never does, though alone each input may fail `whole`."""
        import mockai.scenario.per_input as per_input

        if per_input.tests_inputs(whole) and any(rule is whole for rule in firsts):
            # (A `user: {equals: q}` rule before a `body: {input: [q, d1, d2]}` one took `q`, and
            # the documents were generated: the batch's own rule answered none of them.)
            later = self._first(exchange, after=whole)
            if later is None:
                return firsts
            whole = later
        before: set[int] = set()
        for rule in (*self._runtime, *self._scenario):
            if rule is whole:
                break
            before.add(id(rule))
        return [rule if rule is not None and id(rule) in before else whole for rule in firsts]

    def _splits_before(self, whole: Rule | None, exchange: Exchange) -> bool:
        """Whether a rule asked before `whole` (every rule when None) has a `body` condition on
        the batch's inputs (per_input.splits); the caller holds the lock."""
        import mockai.scenario.per_input as per_input

        for rule in (*self._runtime, *self._scenario):
            if rule is whole:
                return False
            if per_input.splits(rule, exchange):
                return True
        return False

    def _merge_batch(
        self,
        exchange: Exchange,
        key: bytes,
        counted: Sequence[tuple[per_input.Group, tuple[Rule, Step, int] | None]],
    ) -> Plan:
        """One Plan from each group's rule (or the generator, for inputs no rule answers)."""
        import mockai.scenario.per_input as per_input

        parts: list[tuple[per_input.Group, list[Any]]] = []
        plans: list[Plan] = []
        generator = self.generator()
        for group, picked in counted:
            inputs = per_input.alone(exchange, group.indexes)
            reply = None
            if picked is not None:
                plan = self.answer(*picked, inputs, key)
                if plan.reply is None or plan.reply.error is not None:
                    return plan  # an error answers for the whole batch
                plans.append(plan)
                reply = plan.reply
            parts.append((group, per_input.answers(reply, inputs, generator)))
        first = plans[0]  # some group has a rule (checked above)
        assert first.reply is not None
        warnings = tuple(w for plan in plans if plan.reply for w in plan.reply.warnings)
        base = replace(first.reply, warnings=warnings)
        # Each rule that answered counts one call: the journal and the metrics name them all.
        names = [plan.name for plan in plans if plan.name is not None]
        return replace(
            first,
            reply=per_input.merged(exchange, parts, base),
            name=names[0] if names else None,
            more_names=tuple(names[1:]),
        )

    def _count(self, rule: Rule) -> tuple[Rule, Step, int] | None:
        """Count a call for `rule` (None when it is used up); the caller holds the lock."""
        served = self._served.get(rule.name, 0)
        limit = rule.limit
        if limit is not None and served >= limit:
            return None  # used up: fall through to later rules
        self._served[rule.name] = served + 1
        return rule, rule.step(served), served + 1

    async def _pick_shared(self, exchange: Exchange) -> tuple[Rule, Step, int] | None:
        """`pick` across workers: match here, count (and check for newer rules) in the backend."""
        assert self.shared is not None
        while True:
            with self._lock:
                index = self._index()  # (the index narrows, as for `pick`)
                with self._scoped(exchange):
                    version = self._version
                    candidates, stopped = self._matching_rules(index, exchange)
            picked = await self.shared.pick(version, [(r.name, r.limit) for r in candidates])
            if picked.stale:  # another worker changed the rules: take them, match again
                await self.sync()
                continue
            with self._lock:
                if picked.served is not None:
                    self._served = dict(picked.served)  # for the near-miss report
                if picked.index is None:
                    if stopped is not None:  # (the rules before it are used up)
                        raise _undecided(stopped)
                    return None
                rule = candidates[picked.index]
                self._served[rule.name] = picked.count
            return rule, rule.step(picked.count - 1), picked.count

    def answer(self, rule: Rule, step: Step, call: int, exchange: Exchange, key: bytes) -> Plan:
        """The Plan for `rule` answering `exchange` with `step`."""
        delivery = step.delivery
        timing = NO_TIMING  # nothing to sample: no seed to derive
        if delivery.latency is not None or delivery.stream is not None:
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
        machinery = _machinery()
        constant = machinery.constant_reply(step.reply, exchange)
        if constant is not None:  # (a fixed text: nothing to build)
            return _loop_guard(rule, constant, exchange)
        build = machinery.new_build(exchange, key, call, rule.label, self.generator, self.strict)
        try:
            reply = machinery.build_reply(step.reply, build)
        except machinery.StaleFixture as error:
            return Reply(
                error=ApiError(400, f"mockai strict mode: {error}", code="mockai_stale_fixture")
            )
        except machinery.TemplateRenderError as error:
            # The template's own place when known (`rule 'a' reply.content (a.yaml:6)`).
            message = f"{error.origin or rule.label}: the reply template failed: {error}"
            log.warning("mockai: %s", message)
            return Reply(error=ApiError(400, message, code="mockai_template_error"))
        return _loop_guard(rule, reply, exchange)

    def generator(self) -> FallbackGenerator:
        """The generator filling in replies that script no text (the server's, once attached)."""
        if self.fallback_generator is None:
            from mockai.catalog import Catalog
            from mockai.generate.fallback import FallbackGenerator

            self.fallback_generator = FallbackGenerator(0, Catalog())
        return self.fallback_generator

    # --- runtime rules --------------------------------------------------------------------------

    def add(self, rules: Iterable[Mapping[str, Any]], *, file: str = "<runtime>") -> list[str]:
        """Validate and append runtime rules; ScenarioError lists every problem (none are added)."""
        with self._lock:
            first = self._next_number
            try:
                compiled, problems = self._compile_new(list(rules), file, self._default_name)
            except ScenarioError:
                self._next_number = first  # a rejected rule takes no default name's number
                raise
            self._runtime = self._runtime + tuple(compiled)
        for warning in problems.warnings:
            log.warning("%s", warning)
        return [rule.name for rule in compiled]

    async def _add_off_loop(self, values: list[Mapping[str, Any]], file: str) -> list[str]:
        """`add`, the rules checked in a worker thread against the rules as they stand, then
        appended on the loop if those have not changed meanwhile: matching, which holds the
        lock, never waits for the check. If they changed (another client added or removed a
        rule), the check is made again, and past `_OFF_LOOP_TRIES` under the lock as `add`
        does: a client adding a rule every 100 ms kept a batch of 2,000 (checked in ~0.6 s)
        being checked again for good, its client never answered."""
        for _ in range(_OFF_LOOP_TRIES):
            with self._lock:
                standing = self._standing()
                numbers = _DefaultNames(self._next_number - 1, self._has)
            try:
                compiled, problems = await asyncio.to_thread(
                    self._compile_new, values, file, numbers
                )
            except ScenarioError:
                # Against rules that changed meanwhile, a problem may be none: a default name
                # an add took meanwhile is a "duplicate", which the batch was refused for.
                with self._lock:
                    if self._unchanged(standing):
                        raise
                continue
            with self._lock:
                if self._unchanged(standing):
                    self._next_number = numbers.last + 1
                    self._runtime = self._runtime + tuple(compiled)
                    break
        else:
            return self.add(values, file=file)
        for warning in problems.warnings:
            log.warning("%s", warning)
        return [rule.name for rule in compiled]

    def _standing(self) -> tuple[Any, ...]:
        """What the rules added after the current ones are checked against (the caller holds
        the lock): the lists, swapped whole on each change, and the next default number."""
        return (self._runtime, self._scenario, self._listed, self._next_number)

    def _unchanged(self, standing: tuple[Any, ...]) -> bool:
        """Whether the rules are still as `_standing` was (the caller holds the lock)."""
        now = self._standing()
        return all(a is b for a, b in zip(now[:3], standing[:3], strict=True)) and (
            now[3] == standing[3]
        )

    def _default_name(self) -> str:
        while True:
            default = f"rule-{self._next_number}"
            self._next_number += 1
            if not self._has(default):
                return default

    def _compile_new(
        self, rules: Sequence[Mapping[str, Any]], file: str, defaults: Callable[[], str]
    ) -> tuple[list[Rule], Problems]:
        """Rules to add after the current ones, checked against them (the caller holds the lock,
        or checks after that they did not change: `_add_off_loop`); ScenarioError lists every
        problem."""
        from mockai.scenario import loader, shared_rules
        from mockai.scenario.problems import Problems
        from mockai.scenario.rules import compile_rule

        problems = Problems(file)
        compiled, names = [], []
        for value in rules:
            # Only a rule without a name of its own takes a default one (and uses up its number).
            given = shared_rules.own_name(value)
            default = given if given is not None else defaults()
            names.append((file, loader.rule_name(value, default), 0))
            rule = compile_rule(
                value, file=file, line=0, name=default, kind="rule", problems=problems
            )
            if rule is not None:
                compiled.append(rule)
        existing = [(r.file, r.name, r.line) for r in self._runtime + self._scenario]
        existing += [(u.origin, u.name, 0) for u in self._unserved()]  # (taken all the same)
        found = loader.duplicate_names([*existing, *names])
        found += loader.shadowed(compiled, earlier=self._runtime)
        problems.items.extend(found)
        problems.raise_if_any()
        return compiled, problems

    def _has(self, name: str) -> bool:
        return name in self._names()

    def _names(self) -> list[str]:
        """Every rule's name, served here or not; the caller holds the lock."""
        names = [rule.name for rule in self._runtime + self._scenario]
        return names + [entry.name for entry in self._unserved()]

    def _unserved(self) -> Iterable[shared_rules.Unserved]:
        from mockai.scenario import shared_rules

        return (entry for entry in self._listed if isinstance(entry, shared_rules.Unserved))

    def load(self, scenario_set: ScenarioSet) -> list[str]:
        """Append a scenario set's rules after the current scenario rules."""
        from mockai.scenario import loader

        with self._lock:
            existing = [(r.file, r.name, r.line) for r in self._runtime + self._scenario]
            added = [(r.file, r.name, r.line) for r in scenario_set.rules]
            found = loader.duplicate_names([*existing, *added])
            found += loader.shadowed(scenario_set.rules, earlier=self._scenario)
            if found:
                raise ScenarioError(found)
            self._files = self._files + scenario_set.rules
            self._scenario = self._scenario + scenario_set.rules
        return [rule.name for rule in scenario_set.rules]

    def replace_scenario(self, rules: Sequence[Rule]) -> None:
        """Serve these scenario rules instead of the current ones (a reload), in one step:
        a request sees either the old set or the new one. Counts of rules that keep their
        name carry on (a sequence half-way stays half-way). ScenarioError, and the current
        rules stay, when a rule takes a runtime rule's name (as adding that rule is refused)."""
        from mockai.scenario import loader, shared_rules

        with self._lock:
            serving = tuple(r for r in rules if r.name not in self._removed)
            # (counts are by name: two rules of one name would share one)
            found = loader.duplicate_names(
                (r.file, r.name, r.line) for r in (*self._runtime, *serving)
            )
            if found:
                raise ScenarioError(found)
            self._files = tuple(rules)
            self._scenario = serving
            reports: list[str] = []
            if self.shared is not None:  # (a runtime rule skipped for a name now free is back)
                reports = self._take(self._definitions, self._removed)
        shared_rules.report(reports)

    def remove(self, name: str) -> None:
        """Remove the rule called `name` (runtime or scenario); ScenarioError if there is none."""
        with self._lock:
            if not self._has(name):
                names = ", ".join(self._names()) or "none"
                from mockai.scenario.problems import Problems

                problems = Problems("<runtime>")
                problems.add(0, f"no rule named '{name}' (rules: {names})")
                problems.raise_if_any()
            # Only a scenario rule stays removed across reloads: a runtime rule's name says
            # nothing about a file rule that takes it later (as in `remove_async`).
            if any(rule.name == name for rule in self._scenario):
                self._removed = self._removed | {name}
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

    # --- shared across workers (`--state redis://`): the same operations, through the backend --

    async def sync(self) -> None:
        """Take the shared rules and counts, when a backend shares them (else nothing)."""
        from mockai.scenario import shared_rules

        if self.shared is not None:
            shared_rules.report(await self._sync(self.shared))

    async def start(self) -> None:
        """The first `sync`, as the server starts: ScenarioError when a scenario rule takes the
        name of a runtime rule already in the shared state (as a reload taking it is refused)."""
        from mockai.scenario import shared_rules

        if self.shared is None:
            return
        reports = await self._sync(self.shared)
        with self._lock:
            clashes = self._clashes
        if clashes:
            raise ScenarioError(clashes)  # (said instead of the warning: nothing is served)
        shared_rules.report(reports)

    async def _sync(self, shared: SharedRules) -> list[str]:
        """`sync`; returns what to log about rules it skips (see `_take`)."""
        snapshot = await shared.snapshot()
        reports: list[str] = []
        with self._lock:
            if snapshot.version != self._version:
                reports = self._take(snapshot.definitions, snapshot.removed)
                self._definitions = snapshot.definitions
                self._removed = snapshot.removed
                self._version = snapshot.version
            self._named = snapshot.named  # (changes only with the version: one snapshot)
            self._served = dict(snapshot.served)
        return reports

    def _take(self, definitions: Sequence[dict[str, Any]], removed: frozenset[str]) -> list[str]:
        """Serve the shared definitions beside the scenario rules; the caller holds the lock.

        Other workers validated each definition, but on their host and their mockai version:
        one that does not compile here, or takes a scenario rule's name here, is skipped (not
        served, still listed and deletable) rather than fail every request. Returns what to
        log about skipped rules not logged before.
        """
        from mockai.scenario import shared_rules

        self._scenario = tuple(r for r in self._files if r.name not in removed)
        # The scenario's names are taken first: a runtime rule taking one is refused in-process.
        scenario = {r.name: r for r in self._scenario}
        taken = {name: rule.origin for name, rule in scenario.items()}
        listed: list[Rule | shared_rules.Unserved] = []
        clashes: list[Problem] = []
        for definition in definitions:
            entry = self._compile_shared(definition)
            first = taken.get(entry.name)
            if first is None:
                taken[entry.name] = entry.origin
            elif not isinstance(entry, shared_rules.Unserved):
                entry = shared_rules.Unserved(
                    entry.name, entry.origin, shared_rules.clash(entry.name, first)
                )
            rule = scenario.get(entry.name)
            if rule is not None:
                clashes.append(
                    Problem(rule.file, rule.line, shared_rules.taken(rule.name, entry.origin))
                )
            listed.append(entry)
        self._listed = tuple(listed)
        self._runtime = tuple(e for e in listed if not isinstance(e, shared_rules.Unserved))
        self._clashes = tuple(clashes)
        reports = [f"{u.origin}: rule '{u.name}' {u.problem}" for u in self._unserved()]
        fresh = [text for text in reports if text not in self._reported]
        self._reported.update(fresh)
        return fresh

    def _compile_shared(self, definition: Any) -> Rule | shared_rules.Unserved:
        """A runtime rule from the shared state, compiled once; `Unserved` saying why when it does
        not compile here."""
        from mockai.scenario import shared_rules

        key = jsonbytes.dumps(definition)
        entry = self._compiled.get(key)
        if entry is None:
            entry = self._compiled[key] = shared_rules.compile_definition(definition)
        return entry

    async def add_async(
        self, rules: Iterable[Mapping[str, Any]], *, file: str = "<runtime>"
    ) -> list[str]:
        """`add`, for every worker when the rules are shared; off the event loop when they are
        many (checking 20,000 rules takes seconds, which every client would wait)."""
        from mockai.scenario import shared_rules

        if self.shared is None:
            values = list(rules)
            if len(values) < RULES_OFF_LOOP:
                return self.add(values, file=file)
            return await self._add_off_loop(values, file)
        values = [dict(value) if isinstance(value, Mapping) else value for value in rules]
        while True:
            await self.sync()
            with self._lock:
                # Numbered from the snapshot's last number, and the new last one is stored with
                # the definitions in one step: a worker losing the race to another takes no
                # number (it numbers again from the winner's), nor does a rejected rule.
                version, definitions = self._version, self._definitions
                removed, fresh = self._removed, _DefaultNames(self._named, self._has)
                compiled, problems = self._compile_new(values, file, fresh)
            added = tuple(
                {"name": rule.name, "file": file, "rule": shared_rules.shareable(value)}
                for rule, value in zip(compiled, values, strict=True)
            )
            if await self.shared.replace(version, definitions + added, removed, (), fresh.last):
                break
        for warning in problems.warnings:
            log.warning("%s", warning)
        await self.sync()
        return [rule.name for rule in compiled]

    async def remove_async(self, name: str) -> None:
        """`remove`, for every worker when the rules are shared."""
        from mockai.scenario import shared_rules

        if self.shared is None:
            return self.remove(name)
        while True:
            await self.sync()
            with self._lock:
                version, definitions, removed = self._version, self._definitions, self._removed
                # (by definition: a rule this server does not serve is removed all the same)
                runtime = any(shared_rules.definition_name(d) == name for d in definitions)
                known = runtime or any(rule.name == name for rule in self._scenario)
            if not known:
                self.remove(name)  # raises the ScenarioError naming the rules there are
            kept = tuple(d for d in definitions if shared_rules.definition_name(d) != name)
            removed = removed if runtime else removed | {name}
            if await self.shared.replace(version, kept, removed, (name,)):
                break
        await self.sync()

    async def clear_async(self) -> int:
        """`clear`, for every worker when the rules are shared."""
        from mockai.scenario import shared_rules

        if self.shared is None:
            return self.clear()
        while True:
            await self.sync()
            with self._lock:
                version, names = (
                    self._version,
                    [shared_rules.definition_name(d) for d in self._definitions],
                )
            if await self.shared.replace(version, (), self._removed, names):
                break
        await self.sync()
        return len(names)

    async def reset_async(self) -> None:
        """`reset`, for every worker when the counts are shared."""
        self.reset()
        if self.shared is not None:
            await self.shared.reset_counts()

    async def describe_async(self) -> list[RuleInfo]:
        """`describe`, with the counts of every worker when they are shared."""
        await self.sync()
        return self.describe()

    def describe(self) -> list[RuleInfo]:
        """Every rule, in the order they are asked (with shared rules: those this server does
        not serve too, where they would be asked, saying why)."""
        with self._lock:
            runtime = self._runtime if self.shared is None else self._listed
            rules = runtime + self._scenario
            served = dict(self._served)
        return [_info(rule, served) for rule in rules]


# Runtime rules added at once from which they are checked off the event loop (a few are checked
# in well under a millisecond: a thread's hop would cost more).
RULES_OFF_LOOP = 100
# Checks of such rules made off the loop before one is made on it (see `_add_off_loop`).
_OFF_LOOP_TRIES = 3


class _DefaultNames:
    """Default rule names, `rule-N`, after the number `last`; names `taken` says are taken (a
    rule named so by hand) are skipped, their numbers used up as in-process."""

    def __init__(self, last: int, taken: Callable[[str], bool]) -> None:
        self.last = last  # the number of the last name handed out
        self._taken = taken

    def __call__(self) -> str:
        while True:
            self.last += 1
            name = f"rule-{self.last}"
            if not self._taken(name):
                return name


def _info(rule: Rule | shared_rules.Unserved, served: Mapping[str, int]) -> RuleInfo:
    from mockai.scenario import shared_rules

    if isinstance(rule, shared_rules.Unserved):
        return RuleInfo(rule.name, "rule", rule.origin, 0, None, (), rule.problem)
    conditions = tuple(f"{c.subject}: {c.expected()}" for c in rule.conditions)
    return RuleInfo(
        rule.name, rule.kind, rule.origin, served.get(rule.name, 0), rule.limit, conditions
    )


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


# Endpoints whose inputs may be asked about one by one (see per_input.splittable).
_BATCHED = frozenset({Endpoint.EMBEDDINGS, Endpoint.MODERATIONS, Endpoint.COMPLETIONS})


class _Machinery(NamedTuple):
    """What answering with a rule uses from the scenario modules (see `_machinery`)."""

    allowance: Callable[[], Allowance]  # a new one, regexes.MATCH_SECONDS long
    drawing_on: Callable[[Allowance], AbstractContextManager[None]]
    RegexTimeout: type[RegexTimeout]
    splittable: Callable[[Exchange], bool]
    new_build: Callable[..., Build]
    constant_reply: Callable[[ReplySpec, Exchange], Reply | None]
    build_reply: Callable[[ReplySpec, Build], Reply]
    StaleFixture: type[StaleFixture]
    TemplateRenderError: type[TemplateRenderError]


def _searches(rule: Rule) -> bool:
    """Whether `rule` has a regex condition (a condition whose text test has a pattern)."""
    return any(getattr(getattr(c, "test", None), "pattern", None) for c in rule.conditions)


_UNSCOPED: AbstractContextManager[None] = nullcontext()  # (reusable: it holds nothing)


def _undecided(rule: Rule) -> Undecided:
    """Matching stopped at `rule`: the request's regex searches ran out of their shared time
    (regexes.MATCH_SECONDS) there. A search of `rule` was cut short, and those of the rules
    after it would not run at all, so a later rule (a catch-all, say) answering would be a
    wrong answer the author cannot see: the request gets the no-match error saying so."""
    from mockai import regexes
    from mockai.pipeline.decide import Undecided

    return Undecided(
        f"Matching stopped at {rule.label}: this request's regex searches ran out of their time "
        f"bound ({regexes.MATCH_SECONDS} s for all the regex searches of one request), so "
        "neither that rule nor any after it answers. Put fewer regex rules ahead of it, send a "
        "shorter prompt, or use `contains` / `startswith` conditions instead of regexes."
    )


def _searching(exchange: Exchange) -> AbstractContextManager[None]:
    """A block whose regex searches draw on `exchange`'s allowance (see `_matching`): the one
    this task opened for it, or a new one."""
    machinery = _machinery()
    held = _matching.get()
    if held is None or held[0] is not exchange:
        held = (exchange, machinery.allowance())
        _matching.set(held)
    return machinery.drawing_on(held[1])


@functools.cache
def _machinery() -> _Machinery:
    """Imported on the first request a rule answers, then kept: an import statement in the hot
    path costs ~1.3 us a request even when the module is loaded."""
    from mockai import regexes
    from mockai.scenario import per_input, respond, templates

    return _Machinery(
        regexes.matching,
        regexes.drawing_on,
        regexes.RegexTimeout,
        per_input.splittable,
        respond.Build,
        respond.constant_reply,
        respond.build_reply,
        respond.StaleFixture,
        templates.TemplateRenderError,
    )


def from_paths(paths: Sequence[str], *, strict: bool = False) -> RuleBook:
    """A RuleBook serving the rules of these scenario files and folders."""
    if not paths:
        return RuleBook(strict=strict)  # (the loader loads with the first file)
    from mockai.scenario import loader

    return RuleBook(loader.load(paths).rules, strict=strict)
