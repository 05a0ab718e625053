"""Scenario files and folders -> a validated `ScenarioSet`, or every problem at once.

A folder loads its `*.yaml` / `*.yml` files (sub-folders included, dot-files and dot-folders not)
in name order; rules keep file order, first match wins. Checks span the whole set: rule names are
unique, no rule is shadowed by an earlier one, and settings given in several files agree. Loading
is cached by path, size and modification time, so a test suite starting one server per test
compiles each file once.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import stat
import threading
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mockai.delivery import faults, ratelimit
from mockai.delivery.faults import FaultType
from mockai.errors import ConfigError, Problem, ScenarioError
from mockai.scenario import yamlsrc
from mockai.scenario.matchers import Matcher
from mockai.scenario.matchers.base import shorten
from mockai.scenario.matchers.values import ModelGlob
from mockai.scenario.operators import Op, TextTest
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
    found = list(_yaml_files(root))
    # A cassette in the folder is `--cassette`'s, as `mockai check FOLDER` takes it.
    cassettes = [p for p in found if is_cassette_file(p)]
    for cassette in cassettes:
        log.debug("mockai: %s is a cassette, not a scenario file: skipped", cassette)
    kept = [p for p in found if p not in cassettes]
    return [os.path.join(path, p.relative_to(root).as_posix()) for p in sorted(kept, key=_order)]


def _order(path: Path) -> tuple[str, ...]:
    return path.parts


def _yaml_files(root: Path) -> Iterable[Path]:
    """The YAML files in `root` and its sub-folders, but for dot-files and dot-folders: an
    editor's lock file `.#faq.yaml` is no scenario (and `--watch` ignores them all)."""
    for found in root.rglob("*"):
        yaml = found.suffix in (".yaml", ".yml")
        if yaml and not _hidden(found.relative_to(root)) and found.is_file():
            yield found


def _hidden(path: Path) -> bool:
    """True for a dot-file, or a path through a dot-folder (relative to the folder given)."""
    return any(part.startswith(".") for part in path.parts)


def special_file(path: str) -> str | None:
    """What `path` is when it is there but neither a regular file nor a folder (`a FIFO`), else
    None: reading a FIFO waits for a writer forever, a device such as /dev/zero never ends."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # (missing, unreadable, a NUL in the name: said when read)
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return file_kind(mode)


def file_kind(mode: int) -> str:
    """`a FIFO`, `a socket`, ... for a file's `st_mode` that is no regular file nor folder."""
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((kind for test, kind in kinds if test(mode)), "a special file")


# --- one file -------------------------------------------------------------------------------------


@dataclass
class _File:
    name: str
    rules: list[Rule] = field(default_factory=list)
    settings: dict[str, Setting] = field(default_factory=dict)
    names: list[tuple[str, int]] = field(default_factory=list)  # every rule's, valid or not


def read_file(path: str, problems: Problems) -> Any:
    """The located YAML document of `path` (None, with a problem, when it cannot be read)."""
    text = _read_text(path, problems)
    return None if text is None else yamlsrc.load(text, problems.add)


def _read_text(path: str, problems: Problems) -> str | None:
    special = special_file(path)
    if special is not None:
        problems.add(0, f"not a regular file ({special})")
        return None
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        problems.add(0, "no such file or directory")
        return None
    except OSError as error:
        problems.add(0, f"cannot read the file: {error}")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        problems.add(*yamlsrc.not_utf8(raw, error))
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # (as text mode reads lines)


def _compile_file(path: str, problems: Problems, label: str | None = None) -> _File:
    loaded = _File(path)
    text = _read_text(path, problems)
    if text is None:
        return loaded
    # Validation goes on past a duplicate key (the first value is kept, as a loader keeps one):
    # every other problem of the file is reported with it. A problem that leaves no tree (bad
    # syntax), or one with holes in it (a bad merge, aliases past the budget), ends it here.
    holes: list[str] = []  # the problems that leave none

    def report(line: int, message: str) -> None:
        problems.add(line, message)
        if not message.startswith("duplicate key "):  # (yamlsrc's wording)
            holes.append(message)

    document = yamlsrc.load(text, report)
    if holes:
        return loaded
    if isinstance(document, Mapping) and "interactions" in document and "mockai" not in document:
        # A cassette named on its own (a folder's are skipped: `expand`) was refused for a
        # missing `mockai: 1` and unknown keys `version` and `interactions`, never saying what
        # it is and where it belongs.
        problems.add(
            1, f"this is a cassette, not a scenario file: replay it with --cassette {path}"
        )
        return loaded
    if not isinstance(document, Mapping):
        problems.add(
            yamlsrc.line_of(document) or 1,
            "a scenario file is a mapping starting with 'mockai: 1' followed by 'rules:'"
            + (" (the file is empty)" if document is None else f", got {_glimpse(document)}"),
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
    loaded.rules, loaded.names = _rules(document, path, problems, label, text)
    return loaded


def _glimpse(document: Any) -> str:
    """A whole document that is no mapping, described on one line of ~60 characters: a text
    file given by mistake (/etc/passwd, a megabyte of words) is one long scalar, which
    `describe` would quote whole."""
    if isinstance(document, str):
        return shorten(document)
    text = describe(document)
    return text if len(text) <= 60 and "\n" not in text else shorten(text)


def _version(document: Mapping[str, Any], problems: Problems) -> None:
    if "mockai" not in document:
        problems.add(
            document_line(document),
            "missing 'mockai: 1' (the format version) at the top of the file",
        )
        return
    version = document["mockai"]
    if isinstance(version, str) and version.strip() == str(VERSION):
        problems.add(
            line_of(document, "mockai"),
            f'mockai: "{version}" is text, not a number: the format version is the number '
            f"{VERSION} (write mockai: {VERSION}, without quotes)",
        )
    elif version != VERSION or isinstance(version, bool):
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
    document: Mapping[str, Any],
    path: str,
    problems: Problems,
    label: str | None = None,
    text: str = "",
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
    lines = [line_of(raw, index) for index in range(len(raw))]
    # (items sharing a line: aliases, or a flow list `[{...}, {...}]` written on one line)
    shared = len(set(lines)) < len(lines)
    aliases = _aliased_rules(text) if shared and "*" in text else {}
    for index, item in enumerate(raw):
        line = lines[index]
        if index in aliases:
            line, anchor = aliases[index]
            if lines[index] in lines[:index]:  # (the alias of a rule written above)
                name = rule_name(item, f"{base}:{lines[index]}")
                _repeated(problems, line, anchor, name, lines[index])
                continue
        default = f"{base}:{line}"
        names.append((rule_name(item, default), line))
        rule = compile_rule(
            item, file=path, line=line, name=default, kind="scenario", problems=problems
        )
        if rule is not None:
            rules.append(rule)
    return rules, names


def _aliased_rules(text: str) -> dict[int, tuple[int, str]]:
    """The items of the top-level `rules:` list written as YAML aliases (`- *r`), by index: their
    line and anchor. A composed alias is its anchor's node, so it has the anchor's line: only
    composing again, noting each alias as it goes, tells where it is written."""
    import yaml

    found: dict[tuple[int, Any], tuple[int, str]] = {}

    class Noting(yaml.SafeLoader):
        def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()  # type: ignore[no-untyped-call]  # (untyped stub)
                found[(id(parent), index)] = (event.start_mark.line + 1, str(event.anchor))
            return super().compose_node(parent, index)

    composer = Noting(text)
    try:
        root = composer.get_single_node()
    except yaml.YAMLError:  # (already reported, by the first reading)
        return {}
    finally:
        composer.dispose()
    if not isinstance(root, yaml.MappingNode):
        return {}
    rules = next((v for k, v in root.value if k.value == "rules"), None)
    if rules is None:
        return {}
    return {index: where for (parent, index), where in found.items() if parent == id(rules)}


def _repeated(problems: Problems, line: int, anchor: str, name: str, first: int) -> None:
    problems.add(
        line,
        f"'*{anchor}' repeats rule '{name}' (line {first}): a rule is written once, under a name "
        f"of its own (to reuse its keys, merge them into a new rule: "
        f"`- {{<<: *{anchor}, name: other, match: ...}}`)",
    )


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
    files = distinct(files)
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


def distinct(files: Iterable[str]) -> list[str]:
    """`files` in order, each file once: one reached twice (named twice, by a folder and on its
    own, through a link) is loaded at its first place only. Loaded again, each of its rules had
    clashed with itself ('duplicate rule name', 'can never match')."""
    seen: set[str] = set()
    kept = []
    for file in files:
        real = os.path.realpath(file)
        if real not in seen:
            seen.add(real)
            kept.append(file)
    return kept


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
    index = _ShadowIndex()
    for order, rule in enumerate((*earlier, *rules)):
        shadow = index.first_shadow(rule) if order >= len(earlier) else None
        # (A rule shadowed by one of its own name is a duplicate name, said as that: "rule 'a'
        # can never match: rule 'a' ... (put 'a' first, or narrow 'a')" told nothing.)
        if shadow is not None and shadow.name != rule.name:
            problems = Problems(rule.file)
            problems.add(
                rule.line,
                f"rule '{rule.name}' can never match: rule '{shadow.name}' "
                f"({_place(shadow.file, shadow.line, rule.file)}) matches everything it does "
                f"(put '{rule.name}' first, or narrow '{shadow.name}')",
            )
            found.extend(problems.items)
        index.add(order, rule)
    return found


# A rule with more `equals` conditions than this is compared with the indexed rules one by one
# rather than by looking up each subset of its conditions (2 ** n lookups).
_MOST_SUBSET_LOOKUPS = 8
# The text operators whose value a shadowing rule's text must hold (`TextTest.implies`): as a
# part, a prefix, a suffix. (A model glob's fixed part is looked up as a prefix.)
_NEEDLE_OPS = {Op.CONTAINS: "part", Op.STARTSWITH: "prefix", Op.ENDSWITH: "suffix"}

_Entry = tuple[int, Rule]  # (order, rule): the lower order answers first
# What an anchor files a rule under: ("exact", key), ("same", subject, test) for a test implied
# only by the same test (a regex, a `not`), or (how, subject, ignore_case, needle).
_Anchor = tuple[Hashable, ...]
_Kind = tuple[str, str, bool]  # (how, subject, ignore_case): the needles compared alike


class _ShadowIndex:
    """The unlimited rules seen so far, filed so that a later rule is compared in full only with
    the rules that may shadow it: compared in pairs, 4,000 `user: "question N"` rules took 22 s.

    A rule shadows a later one only when each of its conditions is implied by one of the later
    rule's (`Rule.shadows`), so each rule is filed under one of its conditions, its anchor; a
    later rule looks up the anchors its conditions can imply (an `equals` key; the same regex or
    `not` test; the parts, prefixes and suffixes of its texts that are filed needles; the
    prefixes of a model id). Rules with no condition to anchor them (turns, flags) are grouped by
    subjects and compared in pairs, as are the members of an anchor.
    """

    def __init__(self) -> None:
        # Rules of `equals` conditions alone, by their keys (the first of equal ones answers)
        self.exact: dict[frozenset[Hashable], _Entry] = {}
        self.anchored: dict[_Anchor, list[_Entry]] = {}
        self.needles: dict[_Kind, dict[int, set[str]]] = {}  # of anchors, by length
        self.groups: dict[frozenset[str], list[_Entry]] = {}

    def add(self, order: int, rule: Rule) -> None:
        """File `rule` (a rule with a limit shadows nothing: it is left out)."""
        if rule.limit is not None:
            return
        keys = _exact_keys(rule)
        if keys is not None:
            self.exact.setdefault(keys, (order, rule))
            return
        anchors = [a for a in map(_anchor, rule.conditions) if a is not None]
        if not anchors:
            self.groups.setdefault(rule.subjects, []).append((order, rule))
            return
        # The anchor shared by the fewest rules yet: `model: "gpt-4o*"` on every rule is a bad one.
        anchor = min(anchors, key=lambda a: len(self.anchored.get(a, ())))
        self.anchored.setdefault(anchor, []).append((order, rule))
        if anchor[0] not in ("exact", "same"):
            how, subject, ignore_case, needle = anchor
            kind = (str(how), str(subject), bool(ignore_case))
            self.needles.setdefault(kind, {}).setdefault(len(str(needle)), set()).add(str(needle))

    def first_shadow(self, rule: Rule) -> Rule | None:
        """The first filed rule that shadows `rule`, if any."""
        found = [
            _first_in(members, rule)
            for subjects, members in self.groups.items()
            if subjects <= rule.subjects
        ]
        found += [self.exact.get(keys) for keys in _key_subsets(rule, self.exact)]
        probes = {probe for condition in rule.conditions for probe in self._probes(condition)}
        found += [_first_in(self.anchored[p], rule) for p in probes if p in self.anchored]
        entries = [entry for entry in found if entry is not None]
        return min(entries, key=lambda entry: entry[0])[1] if entries else None

    def _probes(self, condition: Matcher) -> Iterator[_Anchor]:
        """The anchors `condition` may imply (a superset: each candidate is then compared)."""
        for key in condition.implied_keys():
            yield ("exact", key)
        subject = condition.subject
        if isinstance(condition, ModelGlob):
            # A model id implies the globs matching it, which all start with their fixed part; a
            # glob implies only itself and `*`.
            fixed = condition.glob if condition.pattern is None else _fixed_part(condition.glob)
            for needle in self._held("prefix", subject, False, fixed):
                yield ("prefix", subject, False, needle)
        test = getattr(condition, "test", None)
        if not isinstance(test, TextTest):
            return
        if _only_itself(test):
            yield ("same", subject, test)  # (implies an identical test alone)
            return
        text = test.value.casefold() if test.ignore_case else test.value
        # (an `equals` is tested against the other condition, which casefolds once more; a
        # case-sensitive test implies tests ignoring case too, by its folded text)
        seen = {(True, text), (True, text.casefold())}
        if not test.ignore_case:
            seen = {(False, text), (True, text.casefold())}
        for ignore_case, looked_up in seen:
            for how in _NEEDLE_OPS.values():
                for needle in self._held(how, subject, ignore_case, looked_up):
                    yield (how, subject, ignore_case, needle)

    def _held(self, how: str, subject: str, ignore_case: bool, text: str) -> Iterable[str]:
        """The slices of `text` that may be filed needles of this kind (as a part, a prefix, a
        suffix), never more of them than there are filed needles."""
        lengths = self.needles.get((how, subject, ignore_case))
        if not lengths:
            return ()
        fits = [n for n in lengths if n <= len(text)]
        if how == "prefix":
            return (text[:n] for n in fits)
        if how == "suffix":
            return (text[len(text) - n :] for n in fits)
        if sum(len(text) - n + 1 for n in fits) > sum(map(len, lengths.values())):
            return (needle for n in fits for needle in lengths[n] if needle in text)
        return (text[i : i + n] for n in fits for i in range(len(text) - n + 1))


def _anchor(condition: Matcher) -> _Anchor | None:
    """What a later rule's condition must imply for `condition` to hold (`_ShadowIndex`)."""
    key = condition.exact_key()
    if key is not None:  # (implied by a condition of the same key only)
        return ("exact", key)
    if isinstance(condition, ModelGlob):  # (implied by itself, or by a model id it matches)
        return ("prefix", condition.subject, False, _fixed_part(condition.glob))
    test = getattr(condition, "test", None)  # a text condition: user, system, headers, ...
    if not isinstance(test, TextTest):
        return None
    if _only_itself(test):  # (the subject says which kind of text, and which header)
        return ("same", condition.subject, test)
    if test.op in _NEEDLE_OPS:
        needle = test.value.casefold() if test.ignore_case else test.value
        return (_NEEDLE_OPS[test.op], condition.subject, test.ignore_case, needle)
    return None


def _only_itself(test: TextTest) -> bool:
    """Whether `test` is implied by an identical test alone (`TextTest.implies`): a regex, and
    any `not`. (Equal tests hash alike: op, value, case handling and negation.)"""
    return test.negate or test.op is Op.REGEX


def _fixed_part(glob: str) -> str:
    """What every model a glob matches starts with: the glob up to its first wildcard."""
    return re.split(r"[*?\[]", glob, maxsplit=1)[0]


def _first_in(members: Iterable[_Entry], rule: Rule) -> _Entry | None:
    return next(((order, r) for order, r in members if r.shadows(rule)), None)


def _exact_keys(rule: Rule) -> frozenset[Hashable] | None:
    """The keys of a rule whose every condition has one (`Matcher.exact_key`), else None."""
    keys = [condition.exact_key() for condition in rule.conditions]
    if not keys or any(key is None for key in keys):
        return None
    return frozenset(keys)


def _key_subsets(
    rule: Rule, exact: Mapping[frozenset[Hashable], _Entry]
) -> Iterable[frozenset[Hashable]]:
    """The keys of the exact rules that may shadow `rule`: an exact rule shadows it when each of
    its conditions is implied by one of `rule`'s, by one of its keys (`implied_keys`), so when its
    keys are a subset of `rule`'s."""
    mine = {key for condition in rule.conditions for key in condition.implied_keys()}
    if len(mine) > _MOST_SUBSET_LOOKUPS:
        return [keys for keys in exact if keys <= mine]
    return (
        frozenset(subset)
        for size in range(1, len(mine) + 1)
        for subset in itertools.combinations(mine, size)
    )


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
            elif name == "limits":
                settings[name], clashes = _merged_limits(known, setting)
                conflicts.extend(clashes)
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


def _merged_limits(known: Setting, setting: Setting) -> tuple[Setting, list[Problem]]:
    """Budgets of two files as one: different models' budgets merge (as `{rpm: 60, gpt-4o:
    {rpm: 3}}` in one file would), and a model's budget given in both must be the same budget,
    however it is written (text or mapping)."""
    # (both values passed `_limits`: they parse)
    held, given = ratelimit.parse_limits(known.value), ratelimit.parse_limits(setting.value)
    clashes = [
        Problem(
            setting.file,
            setting.line,
            f"limits: {ratelimit.shown(pattern, limit)} conflicts with limits: "
            f"{ratelimit.shown(pattern, held[pattern])} in {known.file}:{known.line} "
            "(set it in one file only)",
        )
        for pattern, limit in given.items()
        if pattern in held and held[pattern] != limit
    ]
    added = {pattern: limit for pattern, limit in given.items() if pattern not in held}
    if not added:  # nothing new: the first file's value, as it was written
        return known, clashes
    merged = ratelimit.limits_mapping({**held, **added})
    return Setting(merged, known.file, known.line), clashes


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
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:g}"  # (a chaos rate: 0.1, not 0.1000...)
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
    elif _holds_dot_files(paths):  # (skipped by `expand` too)
        message += "; files and folders whose name starts with a dot are skipped: rename them"
    return UnlocatedProblem(", ".join(paths), 0, message)


def _holds_dot_files(paths: Sequence[str]) -> bool:
    return any(
        found.suffix in (".yaml", ".yml") and _hidden(found.relative_to(path))
        for path in paths
        if os.path.isdir(path)
        for found in Path(path).rglob("*")
    )


def _holds_cassettes(paths: Sequence[str]) -> bool:
    from mockai.cassette.check import is_cassette_file

    return any(
        is_cassette_file(found)
        for path in paths
        if os.path.isdir(path)
        for found in _yaml_files(Path(path))
    )
