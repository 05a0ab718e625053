"""Rules: what to match, what to answer (reply | error | sequence), how often, and with what timing.

A `Rule` is immutable once compiled (it may be shared by every server that loads the same file);
how many times it has answered lives in the serving `RuleBook`. A rule answers with its n-th step
on the n-th matching call: a rule with `reply` or `error` has one step, a `sequence` has several,
and after the last one either the last repeats (`then: repeat`, the default) or the rule stops
matching (`then: fallthrough`). `times: N` caps how often a rule answers in total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mockai.exchange import Exchange
from mockai.faults import NO_FAULTS, Faults, parse_faults
from mockai.scenario.matchers import Matcher, compile_match
from mockai.scenario.problems import Problems, describe, suggest
from mockai.scenario.replies import ErrorSpec, ReplySpec, compile_error, compile_reply
from mockai.scenario.yamlsrc import line_of
from mockai.timing import Delay, StreamTiming, parse_delay, parse_stream

RULE_KEYS = (
    "name",
    "description",
    "match",
    "reply",
    "error",
    "sequence",
    "then",
    "times",
    "latency",
    "stream",
    "faults",
)
STEP_KEYS = ("reply", "error", "latency", "stream", "faults")
ANSWERS = ("reply", "error", "sequence")
THEN = ("repeat", "fallthrough")


@dataclass(frozen=True)
class Delivery:
    """Timing and faults of a rule or step (None: not set here)."""

    latency: Delay | None = None
    stream: StreamTiming | None = None
    faults: Faults | None = None

    def over(self, base: Delivery) -> Delivery:
        """These settings, falling back to `base` for what is not set here."""
        faults = self.faults
        if base.faults is not None:
            faults = base.faults if faults is None else base.faults.merged(faults)
        return Delivery(
            self.latency if self.latency is not None else base.latency,
            self.stream if self.stream is not None else base.stream,
            faults,
        )


@dataclass(frozen=True)
class Step:
    """One answer: a reply or an error, with its own delivery settings."""

    reply: ReplySpec | None
    error: ErrorSpec | None
    delivery: Delivery
    line: int


@dataclass(frozen=True)
class Rule:
    """A compiled rule."""

    name: str
    file: str  # `<runtime>` / `<admin>` for rules given as data
    line: int
    kind: str  # "scenario" (from a file) or "rule" (runtime), as the journal shows it
    conditions: tuple[Matcher, ...]  # in the order written (for reports)
    steps: tuple[Step, ...]
    fallthrough: bool = False
    times: int | None = None
    is_sequence: bool = False

    def __post_init__(self) -> None:
        # The hot path tests cheap conditions first.
        object.__setattr__(
            self, "_ordered", tuple(sorted(self.conditions, key=lambda c: c.cost))
        )

    @property
    def origin(self) -> str:
        """`file:line`, or just the pseudo-file for rules given as data."""
        return f"{self.file}:{self.line}" if self.line else self.file

    @property
    def label(self) -> str:
        """`rule 'weather' (scenarios/agent.yaml:4)`."""
        return f"rule '{self.name}' ({self.origin})"

    @property
    def limit(self) -> int | None:
        """How many times the rule can answer (None: without limit)."""
        limits = [n for n in (self.times, len(self.steps) if self.fallthrough else None) if n]
        return min(limits) if limits else None

    def matches(self, exchange: Exchange) -> bool:
        """True when every condition holds."""
        for condition in self._ordered:  # type: ignore[attr-defined]
            if not condition.holds(exchange):
                return False
        return True

    def step(self, served: int) -> Step:
        """The step for the call after `served` earlier ones (the last step repeats)."""
        return self.steps[min(served, len(self.steps) - 1)]

    def shadows(self, later: Rule) -> bool:
        """True when this rule, asked first, answers every request `later` could match."""
        if self.limit is not None:
            return False
        for mine in self.conditions:
            if not any(
                theirs.subject == mine.subject and theirs.implies(mine) for theirs in later.conditions
            ):
                return False
        return True


def compile_rule(
    value: Any,
    *,
    file: str,
    line: int,
    name: str,
    kind: str,
    problems: Problems,
) -> Rule | None:
    """The Rule for one entry of `rules:`; `name` is used when the rule has none."""
    if not isinstance(value, Mapping):
        problems.add(
            line, f"a rule must be a mapping with match and reply (or error, sequence), got {describe(value)}"
        )
        return None
    given = value.get("name", name)
    if not isinstance(given, str) or not given.strip():
        problems.add(line_of(value, "name"), f"a rule name must be a non-empty string, got {describe(given)}")
        given = name
    where = f"rule '{given}'"
    before = len(problems.items)
    unknown = [key for key in value if key not in RULE_KEYS]
    for key in unknown:
        problems.add(line_of(value, key), f"unknown key '{key}' in {where}" + suggest(key, RULE_KEYS))
    if "description" in value and not isinstance(value["description"], str):
        problems.add(line_of(value, "description"), f"{where}: description must be a string")
    conditions = compile_match(value.get("match"), line_of(value, "match"), where, problems)
    # A misspelt `reply` is reported as such, not also as "no answer".
    steps = _steps(value, line, where, problems) if not unknown or _answers(value) else None
    fallthrough = _then(value, where, problems)
    times = _times(value, where, problems)
    if len(problems.items) > before or conditions is None or steps is None:
        return None
    return Rule(
        name=given,
        file=file,
        line=line,
        kind=kind,
        conditions=tuple(conditions),
        steps=steps,
        fallthrough=fallthrough,
        times=times,
        is_sequence="sequence" in value,
    )


def _answers(value: Mapping[str, Any]) -> list[str]:
    return [key for key in ANSWERS if key in value]


def _steps(value: Mapping[str, Any], line: int, where: str, problems: Problems) -> tuple[Step, ...] | None:
    answers = _answers(value)
    if len(answers) != 1:
        spot = line_of(value, answers[1]) if len(answers) > 1 else line
        found = " and ".join(f"'{a}'" for a in answers)
        problems.add(
            spot,
            f"{where} has both {found}: give exactly one of reply, error, sequence"
            if answers
            else f"{where} has no answer: give one of reply, error, sequence",
        )
        return None
    delivery = _delivery(value, where, problems)
    if answers[0] != "sequence":
        step = _step(value, line, where, problems, delivery_keys=False)
        return None if step is None else (Step(step.reply, step.error, delivery, line),)
    raw = value["sequence"]
    spot = line_of(value, "sequence")
    if not isinstance(raw, list) or not raw:
        problems.add(
            spot,
            f"{where} sequence must be a non-empty list of steps such as "
            "[{error: rate_limit}, {reply: {content: ok}}]",
        )
        return None
    steps = []
    for index, item in enumerate(raw):
        step = _step(item, line_of(raw, index), f"{where} sequence step {index + 1}", problems)
        if step is not None:
            steps.append(Step(step.reply, step.error, step.delivery.over(delivery), step.line))
    return tuple(steps) if len(steps) == len(raw) else None


def _step(
    value: Any, line: int, where: str, problems: Problems, *, delivery_keys: bool = True
) -> Step | None:
    if not delivery_keys:  # the rule itself: its keys were checked as rule keys
        pass
    elif not isinstance(value, Mapping):
        problems.add(
            line, f"{where} must be a mapping with reply or error, got {describe(value)}"
        )
        return None
    else:
        for key in value:
            if key not in STEP_KEYS:
                problems.add(
                    line_of(value, key), f"unknown key '{key}' in {where}" + suggest(key, STEP_KEYS)
                )
        answers = [key for key in ("reply", "error") if key in value]
        if len(answers) != 1:
            problems.add(
                line_of(value, "error") if len(answers) > 1 else line,
                f"{where} has both 'reply' and 'error': give exactly one"
                if answers
                else f"{where} has no answer: give reply or error",
            )
            return None
    reply = error = None
    if "reply" in value:
        reply = compile_reply(value["reply"], line_of(value, "reply"), where, problems)
        if reply is None:
            return None
    else:
        error = compile_error(value["error"], line_of(value, "error"), where, problems)
        if error is None:
            return None
    delivery = _delivery(value, where, problems) if delivery_keys else Delivery()
    return Step(reply, error, delivery, line)


def _delivery(value: Mapping[str, Any], where: str, problems: Problems) -> Delivery:
    latency = stream = faults = None
    if "latency" in value:
        try:
            latency = parse_delay(value["latency"])
        except ValueError as error:
            problems.add(line_of(value, "latency"), f"{where} latency: {error}")
    if "stream" in value:
        try:
            stream = parse_stream(value["stream"])
        except ValueError as error:
            problems.add(line_of(value, "stream"), f"{where} stream: {error}")
    if "faults" in value:
        try:
            faults = parse_faults(value["faults"])
        except ValueError as error:
            problems.add(line_of(value, "faults"), f"{where} faults: {error}")
    return Delivery(latency, stream, faults)


def _then(value: Mapping[str, Any], where: str, problems: Problems) -> bool:
    if "then" not in value:
        return False
    then, spot = value["then"], line_of(value, "then")
    if "sequence" not in value:
        problems.add(spot, f"{where}: 'then' only applies to a sequence (use times: N to limit a reply)")
        return False
    if then not in THEN:
        problems.add(spot, f"{where} then: {describe(then)} is not valid (use repeat or fallthrough)")
        return False
    return bool(then == "fallthrough")


def _times(value: Mapping[str, Any], where: str, problems: Problems) -> int | None:
    if "times" not in value:
        return None
    times = value["times"]
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        problems.add(
            line_of(value, "times"), f"{where} times must be a whole number >= 1, got {describe(times)}"
        )
        return None
    return times


def faults_of(step: Step) -> Faults:
    """The step's faults (none when unset)."""
    return step.delivery.faults if step.delivery.faults is not None else NO_FAULTS
