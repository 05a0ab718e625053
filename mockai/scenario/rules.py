"""Rules: what to match, what to answer (reply | error | sequence), how often, and with what timing.

A `Rule` is immutable once compiled (it may be shared by every server that loads the same file);
how many times it has answered lives in the serving `RuleBook`. A rule answers with its n-th step
on the n-th matching call: a rule with `reply` or `error` has one step, a `sequence` has several,
and after the last one either the last repeats (`then: repeat`, the default) or the rule stops
matching (`then: fallthrough`). `times: N` caps how often a rule answers in total.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mockai.delivery.faults import Faults, fault_names, parse_faults
from mockai.delivery.timing import Delay, StreamTiming, parse_delay, parse_stream, unit_warnings
from mockai.pipeline.exchange import Exchange
from mockai.scenario.errorspecs import ErrorSpec, compile_error
from mockai.scenario.matchers import Matcher, compile_match
from mockai.scenario.problems import Problems, describe, suggest
from mockai.scenario.replies import ReplySpec, compile_reply
from mockai.scenario.yamlsrc import block_line, line_of

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
    # The base's faults this step switches off: those it sets to `false` (`faults: {}`: all).
    # `Faults` cannot say it, `false` meaning "not this one" there.
    cleared: frozenset[str] = frozenset()

    def over(self, base: Delivery) -> Delivery:
        """These settings, falling back to `base` for what is not set here; faults add to the
        base's, less the ones cleared here."""
        faults = self.faults
        if base.faults is not None:
            kept = base.faults.without(self.cleared)
            faults = kept if faults is None else kept.merged(faults)
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
    line: int  # 0 for rules given as data
    kind: str  # "scenario" (from a file) or "rule" (runtime), as the journal shows it
    conditions: tuple[Matcher, ...]  # in the order written (for reports)
    steps: tuple[Step, ...]
    fallthrough: bool = False
    times: int | None = None
    checks: tuple[Callable[[Exchange], bool], ...] = field(init=False, repr=False, compare=False)
    subjects: frozenset[str] = field(init=False, repr=False, compare=False)
    limit: int | None = field(init=False, repr=False, compare=False)  # None: without limit
    # `rule 'weather' (scenarios/agent.yaml:4)`: how messages name the rule (made once, since
    # every reply build carries it)
    label: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # How many times the rule can answer: `times`, or the steps of a fallthrough sequence.
        limits = [n for n in (self.times, len(self.steps) if self.fallthrough else None) if n]
        object.__setattr__(self, "limit", min(limits) if limits else None)
        # The hot path: one plain function per condition, cheap conditions first.
        cheap_first = sorted(self.conditions, key=lambda c: c.cost)
        object.__setattr__(self, "checks", tuple(c.predicate() for c in cheap_first))
        object.__setattr__(self, "subjects", frozenset(c.subject for c in self.conditions))
        object.__setattr__(self, "label", f"rule '{self.name}' ({self.origin})")

    @property
    def origin(self) -> str:
        """`file:line`, or just the pseudo-file for rules given as data."""
        return f"{self.file}:{self.line}" if self.line else self.file

    def matches(self, exchange: Exchange) -> bool:
        """True when every condition holds."""
        return all(check(exchange) for check in self.checks)

    def step(self, served: int) -> Step:
        """The step for the call after `served` earlier ones (the last step repeats)."""
        return self.steps[min(served, len(self.steps) - 1)]

    def shadows(self, later: Rule) -> bool:
        """True when this rule, asked first, certainly answers every request `later` matches.

        Conservative: each of this rule's conditions must be implied by one of `later`'s on the
        same subject (`contains 'hello'` by `startswith 'hello world'`, a glob by a model it
        matches, ...), and this rule must never run out (no `times`, no `then: fallthrough`).
        """
        if self.limit is not None or not self.subjects <= later.subjects:
            return False
        return all(
            any(
                theirs.subject == mine.subject and theirs.implies(mine)
                for theirs in later.conditions
            )
            for mine in self.conditions
        )


# --- compiling ------------------------------------------------------------------------------------


def compile_rule(
    value: Any, *, file: str, line: int, name: str, kind: str, problems: Problems
) -> Rule | None:
    """The Rule for one entry of `rules:`, or None (with problems); `name` if it has none."""
    if not isinstance(value, Mapping):
        problems.add(
            line,
            "a rule must be a mapping with match and reply (or error, sequence), "
            f"got {describe(value)}",
        )
        return None
    name = _name(value, name, problems)
    where = f"rule '{name}'"
    before = len(problems.items)
    misspelt = _unknown_keys(value, RULE_KEYS, where, problems)
    if not isinstance(value.get("description", ""), str):
        problems.add(line_of(value, "description"), f"{where}: description must be a string")
    conditions = compile_match(value.get("match"), line_of(value, "match"), where, problems)
    steps = _rule_steps(value, line, where, problems, quiet=misspelt)
    fallthrough, times = _then(value, where, problems), _times(value, where, problems)
    if len(problems.items) > before or conditions is None or steps is None:
        return None
    return Rule(name, file, line, kind, tuple(conditions), steps, fallthrough, times)


def _name(value: Mapping[str, Any], default: str, problems: Problems) -> str:
    name = value.get("name", default)
    if isinstance(name, str) and name.strip():
        return name
    problems.add(
        line_of(value, "name"), f"a rule name must be a non-empty string, got {describe(name)}"
    )
    return default


def _unknown_keys(
    value: Mapping[str, Any], known: tuple[str, ...], where: str, problems: Problems
) -> bool:
    unknown = [key for key in value if key not in known]
    for key in unknown:
        problems.add(line_of(value, key), f"unknown key '{key}' in {where}" + suggest(key, known))
    return bool(unknown)


def _given(value: Mapping[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [key for key in keys if key in value]


def _rule_steps(
    value: Mapping[str, Any], line: int, where: str, problems: Problems, *, quiet: bool
) -> tuple[Step, ...] | None:
    answers = _given(value, ANSWERS)
    if len(answers) > 1:
        both = " and ".join(f"'{a}'" for a in answers)
        problems.add(
            line_of(value, answers[1]),
            f"{where} has both {both}: give exactly one of reply, error, sequence",
        )
        return None
    if not answers:
        if not quiet:  # a misspelt `reply` is reported as such, not also as "no answer"
            problems.add(line, f"{where} has no answer: give one of reply, error, sequence")
        return None
    delivery = _delivery(value, where, problems)
    if answers[0] == "sequence":
        return _sequence(value, delivery, where, problems)
    answer = _answer(value, where, problems)
    return None if answer is None else (Step(*answer, delivery, line),)


def _answer(
    value: Mapping[str, Any], where: str, problems: Problems
) -> tuple[ReplySpec | None, ErrorSpec | None] | None:
    if "reply" in value:
        line, block = line_of(value, "reply"), block_line(value, "reply")
        reply = compile_reply(value["reply"], line, where, problems, block=block)
        return None if reply is None else (reply, None)
    error = compile_error(value["error"], line_of(value, "error"), where, problems)
    return None if error is None else (None, error)


def _sequence(
    value: Mapping[str, Any], base: Delivery, where: str, problems: Problems
) -> tuple[Step, ...] | None:
    raw = value["sequence"]
    if not isinstance(raw, list) or not raw:
        problems.add(
            line_of(value, "sequence"),
            f"{where} sequence must be a non-empty list of steps such as "
            "[{error: rate_limit}, {reply: {content: ok}}]",
        )
        return None
    steps = [
        _step(item, line_of(raw, index), f"{where} sequence step {index + 1}", base, problems)
        for index, item in enumerate(raw)
    ]
    return tuple(s for s in steps if s is not None) if all(steps) else None


def _step(value: Any, line: int, where: str, base: Delivery, problems: Problems) -> Step | None:
    """One step of a sequence: its own reply or error, and delivery settings over the rule's."""
    if not isinstance(value, Mapping):
        problems.add(line, f"{where} must be a mapping with reply or error, got {describe(value)}")
        return None
    _unknown_keys(value, STEP_KEYS, where, problems)
    answers = _given(value, ("reply", "error"))
    if len(answers) != 1:
        problems.add(
            line_of(value, "error") if answers else line,
            f"{where} has both 'reply' and 'error': give exactly one"
            if answers
            else f"{where} has no answer: give reply or error",
        )
        return None
    answer = _answer(value, where, problems)
    delivery = _delivery(value, where, problems).over(base)
    return None if answer is None else Step(*answer, delivery, line)


def _delivery(value: Mapping[str, Any], where: str, problems: Problems) -> Delivery:
    """`latency`, `stream` and `faults`, parsed by the timing and fault modules."""
    parsed: dict[str, Any] = {}
    for key, parse in (
        ("latency", parse_delay),
        ("stream", parse_stream),
        ("faults", parse_faults),
    ):
        if key not in value:
            continue
        try:
            parsed[key] = parse(value[key])
        except ValueError as error:
            problems.add(line_of(value, key), f"{where} {key}: {error}")
            continue
        _warn_bare_seconds(value, key, where, problems)
    return Delivery(**parsed, cleared=_cleared(value.get("faults")))


def _cleared(faults: Any) -> frozenset[str]:
    """The faults a step's `faults:` switches off: those set to false or null; `{}` all."""
    if not isinstance(faults, Mapping):
        return frozenset()
    if not faults:
        return frozenset(fault_names())
    return frozenset(str(name) for name, setting in faults.items() if setting in (False, None))


def _warn_bare_seconds(value: Mapping[str, Any], key: str, where: str, problems: Problems) -> None:
    """`latency: 200` is 200 seconds: say so where it was written, with both spellings."""
    setting = value[key]
    if key == "latency":
        found = [(line_of(value, key), message) for message in unit_warnings(setting)]
    elif key == "stream" and isinstance(setting, Mapping):
        found = [
            (line_of(setting, part), f"stream.{message}")
            for part in ("ttft", "chunk_delay")
            if part in setting
            for message in unit_warnings(setting[part], part)
        ]
    elif key == "stream":
        found = [(line_of(value, key), f"stream.{message}") for message in unit_warnings(setting)]
    else:  # faults: the named error's retry_after
        found = [
            (line_of(options, "retry_after"), f"faults.{name}.{message}")
            for name, options in setting.items()
            if isinstance(options, Mapping) and "retry_after" in options
            for message in unit_warnings(options["retry_after"], "retry_after")
        ]
    for line, message in found:
        problems.warn(line, f"{where} {message}")


def _then(value: Mapping[str, Any], where: str, problems: Problems) -> bool:
    if "then" not in value:
        return False
    then, spot = value["then"], line_of(value, "then")
    if "sequence" not in value:
        problems.add(
            spot, f"{where}: 'then' only applies to a sequence (use times: N to limit a reply)"
        )
        return False
    if then not in THEN:
        problems.add(
            spot, f"{where} then: {describe(then)} is not valid (use repeat or fallthrough)"
        )
        return False
    return bool(then == "fallthrough")


def _times(value: Mapping[str, Any], where: str, problems: Problems) -> int | None:
    if "times" not in value:
        return None
    times = value["times"]
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        problems.add(
            line_of(value, "times"),
            f"{where} times must be a whole number >= 1, got {describe(times)}",
        )
        return None
    return times
