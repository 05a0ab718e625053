"""Scenario files and folders -> a validated `ScenarioSet`, or every problem at once.

A folder loads its `*.yaml` / `*.yml` files (sub-folders included) in name order; rules keep file
order, first match wins. Checks span the whole set: rule names are unique, no rule is shadowed by
an earlier one, and settings given in several files agree. Loading is cached by path, size and
modification time, so a test suite starting one server per test compiles each file once.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mockai.delivery import faults, ratelimit
from mockai.delivery.faults import FaultType
from mockai.errors import ConfigError, Problem, ScenarioError
from mockai.scenario import yamlsrc
from mockai.scenario.problems import Problems, UnlocatedProblem, describe, suggest
from mockai.scenario.rules import Rule, compile_rule
from mockai.scenario.yamlsrc import line_of
from mockai.wire.errors import NAMED

log = logging.getLogger("mockai.scenario")

VERSION = 1
TOP_KEYS = (
    "mockai",
    "description",
    "seed",
    "models",
    "rules",
    "fallback",
    "chaos",
    "limits",
    "strict",
)
SETTINGS = ("seed", "models", "fallback", "chaos", "limits", "strict")
FALLBACKS = ("generate", "error")
# Chaos rates name a named error, a fault, or an alias such as `disconnect` (the contract's name
# for a drop somewhere mid-answer).
CHAOS_NAMES = tuple(dict.fromkeys((*NAMED, *(f.value for f in FaultType), *faults.ALIASES)))


@dataclass(frozen=True)
class Setting:
    """A scenario-level setting and where it was given."""

    value: Any
    file: str
    line: int


@dataclass(frozen=True)
class ScenarioSet:
    """Every rule of the loaded files, in order, and the settings they give."""

    files: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    settings: Mapping[str, Setting] = field(default_factory=dict)
    # `file:line: warning: ...` for what loads but probably means something else (`latency: 200`)
    warnings: tuple[Problem, ...] = ()

    def value(self, name: str) -> Any:
        """The setting's value, or None when no file gives it."""
        setting = self.settings.get(name)
        return None if setting is None else setting.value


EMPTY = ScenarioSet()


def expand(path: str) -> list[str]:
    """The scenario files a path names: itself, or a folder's YAML files in name order (but
    its cassettes)."""
    if not os.path.isdir(path):
        return [path]
    from mockai.cassette.check import is_cassette_file  # (only for folders)

    root = Path(path)
    found = [p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
    # A cassette in the folder is `--cassette`'s, as `mockai check FOLDER` takes it.
    cassettes = [p for p in found if is_cassette_file(p)]
    for cassette in cassettes:
        log.debug("mockai: %s is a cassette, not a scenario file: skipped", cassette)
    kept = [p for p in found if p not in cassettes]
    return [os.path.join(path, p.relative_to(root).as_posix()) for p in sorted(kept, key=_order)]


def _order(path: Path) -> tuple[str, ...]:
    return path.parts


# --- one file -------------------------------------------------------------------------------------


@dataclass
class _File:
    name: str
    rules: list[Rule] = field(default_factory=list)
    settings: dict[str, Setting] = field(default_factory=dict)
    names: list[tuple[str, int]] = field(default_factory=list)  # every rule's, valid or not


def read_file(path: str, problems: Problems) -> Any:
    """The located YAML document of `path` (None, with a problem, when it cannot be read)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.add(0, "no such file or directory")
        return None
    except (OSError, UnicodeDecodeError) as error:
        problems.add(0, f"cannot read the file: {error}")
        return None
    return yamlsrc.load(text, problems.add)


def _compile_file(path: str, problems: Problems, label: str | None = None) -> _File:
    loaded = _File(path)
    document = read_file(path, problems)
    if problems:
        return loaded
    if not isinstance(document, Mapping):
        problems.add(
            yamlsrc.line_of(document) or 1,
            "a scenario file is a mapping starting with 'mockai: 1' followed by 'rules:'"
            + (" (the file is empty)" if document is None else f", got {describe(document)}"),
        )
        return loaded
    _version(document, problems)
    for key in document:
        if key not in TOP_KEYS:
            problems.add(
                line_of(document, key), f"unknown top-level key '{key}'" + suggest(key, TOP_KEYS)
            )
    for name in SETTINGS:
        if name in document:
            checked = _SETTING_CHECKS[name](document[name], line_of(document, name), problems)
            if checked is not None:
                loaded.settings[name] = Setting(checked, path, line_of(document, name))
    loaded.rules, loaded.names = _rules(document, path, problems, label)
    return loaded


def _version(document: Mapping[str, Any], problems: Problems) -> None:
    if "mockai" not in document:
        problems.add(
            document_line(document),
            "missing 'mockai: 1' (the format version) at the top of the file",
        )
        return
    version = document["mockai"]
    if version != VERSION or isinstance(version, bool):
        problems.add(
            line_of(document, "mockai"),
            f"'mockai: {describe(version).strip(chr(39))}' is not a supported format version "
            f"(this mockai reads version {VERSION})",
        )


def document_line(document: Any) -> int:
    """The line of a document's first key (1 if unknown)."""
    lines = getattr(document, "lines", None)
    return min(lines.values()) if lines else 1


def _rules(
    document: Mapping[str, Any], path: str, problems: Problems, label: str | None = None
) -> tuple[list[Rule], list[tuple[str, int]]]:
    raw = document.get("rules")
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        problems.add(
            line_of(document, "rules"), f"rules must be a list of rules, got {describe(raw)}"
        )
        return [], []
    rules, names = [], []
    base = label or os.path.basename(path)
    for index, item in enumerate(raw):
        line = line_of(raw, index)
        default = f"{base}:{line}"
        names.append((rule_name(item, default), line))
        rule = compile_rule(
            item, file=path, line=line, name=default, kind="scenario", problems=problems
        )
        if rule is not None:
            rules.append(rule)
    return rules, names


def _seed(value: Any, line: int, problems: Problems) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    problems.add(line, f"seed must be a whole number, got {describe(value)}")
    return None


def _models(value: Any, line: int, problems: Problems) -> Any:
    if isinstance(value, list) and value and all(isinstance(m, str) and m for m in value):
        return tuple(value)
    problems.add(
        line, f"models must be a list of model ids such as [gpt-4o-mini], got {describe(value)}"
    )
    return None


def _fallback(value: Any, line: int, problems: Problems) -> Any:
    if value in FALLBACKS:
        return value
    problems.add(line, f"fallback: {describe(value)} is not valid (use generate or error)")
    return None


def _strict(value: Any, line: int, problems: Problems) -> Any:
    if isinstance(value, bool):
        return value
    problems.add(line, f"strict must be true or false, got {describe(value)}")
    return None


def _chaos(value: Any, line: int, problems: Problems) -> Any:
    if not isinstance(value, Mapping):
        problems.add(
            line,
            "chaos must be a mapping of fault or error names to rates, such as {rate_limit: 0.1}",
        )
        return None
    rates: dict[str, float] = {}
    for name, rate in value.items():
        spot = line_of(value, name)
        if name not in CHAOS_NAMES:
            problems.add(
                spot,
                f"chaos: '{name}' is not a named error or fault"
                + suggest(name, CHAOS_NAMES, noun="valid names"),
            )
        elif isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            problems.add(spot, f"chaos.{name} must be a rate between 0 and 1, got {describe(rate)}")
        else:
            rates[str(name)] = float(rate)
    if len(rates) != len(value):
        return None
    if sum(rates.values()) > 1 + 1e-9:
        problems.add(
            line,
            f"chaos rates add up to {sum(rates.values()):g}: a request gets at most one fault, "
            "so they must add up to 1 or less",
        )
        return None
    try:  # the fault module owns the chaos vocabulary: it has the last word
        faults.ChaosRates.parse(rates)
    except ValueError as error:
        problems.add(line, f"chaos: {error}")
        return None
    return rates


def _limits(value: Any, line: int, problems: Problems) -> Any:
    # Budgets as `mockai serve --limits` takes them: a mapping ({rpm: 60, gpt-4o: {rpm: 3}}) or
    # the same text; the rate-limit module validates both.
    try:
        ratelimit.parse_limits(value)
    except ConfigError as error:  # its message starts with `limits: `
        problems.add(line, str(error))
        return None
    return value


_SETTING_CHECKS = {
    "seed": _seed,
    "models": _models,
    "fallback": _fallback,
    "strict": _strict,
    "chaos": _chaos,
    "limits": _limits,
}


# --- a set of files -------------------------------------------------------------------------------


def rule_name(value: Any, default: str) -> str:
    """The name a rule is known by (its own when valid, else `default`)."""
    name = value.get("name") if isinstance(value, Mapping) else None
    return name if isinstance(name, str) and name.strip() else default


def collect(files: Sequence[str]) -> tuple[ScenarioSet, list[Problem]]:
    """Compile `files` as one set: the result and every problem found (in file, line order)."""
    compiled: list[_File] = []
    found: list[Problem] = []
    warnings: list[Problem] = []
    labels = default_labels(files)
    for path in files:
        problems = Problems(path)
        compiled.append(_compile_file(path, problems, labels[path]))
        found.extend(problems.items)
        warnings.extend(problems.warnings)
    rules = [rule for loaded in compiled for rule in loaded.rules]
    found.extend(duplicate_names([(f.name, n, line) for f in compiled for n, line in f.names]))
    found.extend(shadowed(rules))
    settings, conflicts = _merge_settings(compiled)
    found.extend(conflicts)
    order = {path: index for index, path in enumerate(files)}
    found.sort(key=lambda p: (order.get(p.file, -1), p.line))
    warnings.sort(key=lambda p: (order.get(p.file, -1), p.line))
    return ScenarioSet(tuple(files), tuple(rules), settings, tuple(warnings)), found


def default_labels(files: Sequence[str]) -> dict[str, str]:
    """What an unnamed rule's default name (`label:line`) says of each file: its path from the
    folder holding every file of the set, so `chat/basic.yaml` and `responses/basic.yaml` of one
    folder differ (a single file, or a folder's top-level files, give their file name)."""
    where = {file: os.path.abspath(file) for file in files}
    try:
        root = os.path.commonpath([os.path.dirname(path) for path in where.values()])
    except ValueError:  # (no common folder: paths on two Windows drives)
        return {file: file for file in files}
    return {file: Path(os.path.relpath(path, root)).as_posix() for file, path in where.items()}


def duplicate_names(entries: Iterable[tuple[str, str, int]]) -> list[Problem]:
    """A problem for every (file, name, line) whose name an earlier entry already uses."""
    found = []
    first: dict[str, tuple[str, int]] = {}
    for file, name, line in entries:
        if name not in first:
            first[name] = (file, line)
            continue
        where = _place(*first[name], file)
        problems = Problems(file)
        problems.add(
            line, f"duplicate rule name '{name}' (first used at {where}); rule names must be unique"
        )
        found.extend(problems.items)
    return found


def shadowed(rules: Sequence[Rule], earlier: Sequence[Rule] = ()) -> list[Problem]:
    """A problem for every rule of `rules` that an earlier, unlimited rule answers first."""
    found = []
    # Unlimited rules grouped by the subjects they test: a rule can only be shadowed by rules
    # whose subjects are a subset of its own, so most pairs are never compared. Rules of
    # `equals` conditions alone (a scenario of thousands of questions) are looked up by their
    # conditions' keys instead: compared in pairs, 5,000 such rules took 20 s to load.
    groups: dict[frozenset[str], list[tuple[int, Rule]]] = {}
    exact: dict[frozenset[Hashable], tuple[int, Rule]] = {}

    def remember(order: int, rule: Rule) -> None:
        if rule.limit is not None:
            return
        keys = _exact_keys(rule)
        if keys is None:
            groups.setdefault(rule.subjects, []).append((order, rule))
        else:
            exact.setdefault(keys, (order, rule))  # (the first of equals: it answers first)

    for order, rule in enumerate((*earlier, *rules)):
        if order < len(earlier):
            remember(order, rule)
            continue
        shadow = _first_shadow(rule, groups, exact)
        if shadow is not None:
            problems = Problems(rule.file)
            problems.add(
                rule.line,
                f"rule '{rule.name}' can never match: rule '{shadow.name}' "
                f"({_place(shadow.file, shadow.line, rule.file)}) matches everything it does "
                f"(put '{rule.name}' first, or narrow '{shadow.name}')",
            )
            found.extend(problems.items)
        remember(order, rule)
    return found


# A rule with more `equals` conditions than this is compared with the indexed rules one by one
# rather than by looking up each subset of its conditions (2 ** n lookups).
_MOST_SUBSET_LOOKUPS = 8


def _exact_keys(rule: Rule) -> frozenset[Hashable] | None:
    """The keys of a rule whose every condition has one (`Matcher.exact_key`), else None."""
    keys = [condition.exact_key() for condition in rule.conditions]
    if not keys or any(key is None for key in keys):
        return None
    return frozenset(keys)


def _first_shadow(
    rule: Rule,
    groups: Mapping[frozenset[str], list[tuple[int, Rule]]],
    exact: Mapping[frozenset[Hashable], tuple[int, Rule]],
) -> Rule | None:
    candidates = [
        next(((order, r) for order, r in members if r.shadows(rule)), None)
        for subjects, members in groups.items()
        if subjects <= rule.subjects
    ]
    # An exact rule shadows `rule` when each of its conditions is implied by one of `rule`'s:
    # by one of equal key (`exact_key`), so when its keys are a subset of `rule`'s.
    mine = {key for key in (c.exact_key() for c in rule.conditions) if key is not None}
    if len(mine) <= _MOST_SUBSET_LOOKUPS:
        subsets = (
            frozenset(subset)
            for size in range(1, len(mine) + 1)
            for subset in itertools.combinations(mine, size)
        )
        candidates += [exact.get(subset) for subset in subsets]
    else:
        candidates += [entry for keys, entry in exact.items() if keys <= mine]
    found = [c for c in candidates if c is not None]
    return min(found, key=lambda c: c[0])[1] if found else None


def _place(file: str, line: int, seen_from: str) -> str:
    if not line:
        return file
    return f"line {line}" if file == seen_from else f"{file}:{line}"


def _merge_settings(compiled: Iterable[_File]) -> tuple[dict[str, Setting], list[Problem]]:
    settings: dict[str, Setting] = {}
    conflicts: list[Problem] = []
    chaos: list[Setting] = []  # each file's, when their rates are merged
    for loaded in compiled:
        if "chaos" in loaded.settings:
            chaos.append(loaded.settings["chaos"])
        for name, setting in loaded.settings.items():
            known = settings.get(name)
            if known is None or known.value == setting.value:
                settings.setdefault(name, setting)
            elif name == "models":  # each file lists the models it uses: serve them all
                merged = tuple(dict.fromkeys((*known.value, *setting.value)))
                settings[name] = Setting(merged, known.file, known.line)
            elif name == "chaos" and not set(known.value) & set(setting.value):
                settings[name] = Setting({**known.value, **setting.value}, known.file, known.line)
            else:
                conflicts.append(
                    Problem(
                        setting.file,
                        setting.line,
                        f"{name}: {_show(setting.value)} conflicts with {name}: "
                        f"{_show(known.value)} in {known.file}:{known.line} "
                        "(set it in one file only)",
                    )
                )
    if len(chaos) > 1 and "chaos" in settings:
        conflicts.extend(_chaos_total(settings["chaos"].value, chaos))
    return settings, conflicts


def _chaos_total(merged: Mapping[str, float], parts: Sequence[Setting]) -> list[Problem]:
    """The problem of chaos rates that pass file by file but add up to more than 1 merged
    (as `serve` merges them), at the last file's line, naming every file that gave some."""
    total = sum(merged.values())
    if total <= 1 + 1e-9:
        return []
    last = parts[-1]
    given = "; ".join(f"{_show(part.value)} in {part.file}:{part.line}" for part in parts)
    return [
        Problem(
            last.file,
            last.line,
            f"chaos rates of several files add up to {total:g} ({given}): a request gets at "
            "most one fault, so together they must add up to 1 or less",
        )
    ]


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v:g}" for k, v in value.items()) + "}"
    return describe(value).strip("'")


# --- loading, cached ------------------------------------------------------------------------------

_cache: dict[tuple[tuple[str, int, int], ...], ScenarioSet] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 64


def load(paths: Sequence[str]) -> ScenarioSet:
    """The ScenarioSet of `paths` (files, folders), or a ScenarioError with every problem."""
    if not paths:
        return EMPTY
    files = [file for path in paths for file in expand(path)]
    signature = tuple(_stat(file) for file in files)
    with _cache_lock:
        cached = _cache.get(signature)
    if cached is not None:
        return cached
    scenario_set, problems = collect(files)
    if not files:
        problems.append(_no_files(paths))
    if problems:
        raise ScenarioError(problems)
    for warning in scenario_set.warnings:  # once per compile: a cached set was already shown
        log.warning("%s", warning)
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[signature] = scenario_set
    return scenario_set


def _stat(file: str) -> tuple[str, int, int]:
    try:
        info = os.stat(file)
    except OSError:
        return (os.path.abspath(file), -1, -1)
    return (os.path.abspath(file), info.st_mtime_ns, info.st_size)


def _no_files(paths: Sequence[str]) -> Problem:
    message = "no scenario files (*.yaml, *.yml) found"
    if _holds_cassettes(paths):  # (skipped by `expand`: say where they belong)
        message += "; the YAML files there are cassettes: replay them with --cassette PATH"
    return UnlocatedProblem(", ".join(paths), 0, message)


def _holds_cassettes(paths: Sequence[str]) -> bool:
    from mockai.cassette.check import is_cassette_file

    return any(
        is_cassette_file(found)
        for path in paths
        if os.path.isdir(path)
        for found in Path(path).rglob("*")
        if found.suffix in (".yaml", ".yml") and found.is_file()
    )
