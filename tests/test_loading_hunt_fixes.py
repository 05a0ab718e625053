"""Scenario loading, `--watch` and the no-match report: bugs found by the hunt, each met as users
meet them (`mockai check`, `mockai serve --watch`, a served scenario's no-match error)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conformance import checked_server
from hypothesis import given, settings
from hypothesis import strategies as st
from service_support import ServeProcess
from test_rule_index import compiled

from mockai.scenario import loader
from mockai.scenario.matchers.base import shorten
from mockai.scenario.rules import Rule


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def check(*paths: Path, timeout: float = 60) -> tuple[int, str]:
    """`mockai check PATH...` in its own process: (exit code, what it printed)."""
    done = subprocess.run(
        [sys.executable, "-m", "mockai", "check", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr


# --- 1. the "can never match" check is quadratic beyond `equals` rules ---------------------------

# The forms of large scenario files (a help desk's questions, ticket prefixes, per-model answers):
# none shadows another, so the old check compared every pair (4,000 rules: 22 s).
FORMS = (
    '{{user: "question number {n:05d}?"}}',
    '{{user: {{startswith: "ticket {n:05d}:"}}}}',
    '{{user: {{equals: "q{n}"}}, model: "gpt-4o*"}}',
    '{{user: {{endswith: " #{n:05d}", ignore_case: true}}, model: gpt-4o-mini}}',
    '{{system: "persona {n:05d}", headers: {{x-case: {{contains: "c{n:05d}"}}}}}}',
)


def test_ten_thousand_rules_of_every_form_are_checked_quickly(tmp_path: Path) -> None:
    lines = ["mockai: 1", "rules:"]
    for n in range(10_000):
        match = FORMS[n % len(FORMS)].format(n=n)
        lines += [f"  - name: r{n}", f"    match: {match}", f'    reply: "answer {n}"']
    # ... and one the check must still find, at the end of them all
    lines += ["  - name: late", '    match: {user: "question number 00005? and more"}']
    lines += ['    reply: "never"']
    path = tmp_path / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    # Loading itself takes a few seconds here; the pairwise check took minutes.
    code, printed = check(path, timeout=45)
    assert code == 1, printed
    assert f"big.yaml:{len(lines) - 2}: rule 'late' can never match: rule 'r5' (line 18)" in printed
    assert "1 problem(s)" in printed


# Few letters, so that needles fall inside one another, prefixes and suffixes meet, and `ß`
# casefolds to `ss` (keys and slices must agree with `implies`).
LETTERS = "abAß"
NEEDLE = st.text(alphabet=LETTERS, min_size=1, max_size=3)
OPS = ("contains", "startswith", "endswith", "equals", "regex")
MODELS = ("gpt-4o*", "gpt-4o", "gpt-4o-mini", "*", "gpt-?o", "gpt-[4]o*", "o3", "o3*")


@st.composite
def text_conditions(draw: st.DrawFn) -> Any:
    op = draw(st.sampled_from(OPS))
    value = draw(NEEDLE) if op != "regex" else draw(st.sampled_from(["^a", "b$", "a+"]))
    condition: Any = {op: value}
    if draw(st.booleans()):
        condition["ignore_case"] = True
    if draw(st.integers(0, 5)) == 0:
        condition = {"not": condition}
    return value if op == "contains" and draw(st.booleans()) else condition


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    match: dict[str, Any] = {}
    if draw(st.integers(0, 6)):  # the user text mostly: rules of the same subjects collide
        match["user"] = draw(text_conditions())
    if draw(st.integers(0, 3)) == 0:
        match["system"] = draw(text_conditions())
    if draw(st.integers(0, 3)) == 0:
        match["headers"] = {"x-case": draw(text_conditions())}
    if draw(st.integers(0, 2)) == 0:
        match["model"] = draw(st.sampled_from(MODELS))
    if draw(st.integers(0, 6)) == 0:
        match["turn"] = {"min": draw(st.integers(1, 2))}
    if draw(st.integers(0, 6)) == 0:
        match["stream"] = draw(st.booleans())
    definition: dict[str, Any] = {"match": match, "reply": "scripted"}
    if draw(st.integers(0, 6)) == 0:
        definition["times"] = 1  # a rule that runs out shadows nothing
    return definition


def pairwise(rules: list[Rule], earlier: list[Rule]) -> list[tuple[str, str]]:
    """The reference: each rule's first earlier unlimited rule shadowing it, every pair compared."""
    found = []
    every = [*earlier, *rules]
    for position, rule in enumerate(every):
        if position < len(earlier):
            continue
        shadow = next((r for r in every[:position] if r.shadows(rule)), None)
        if shadow is not None:
            found.append((rule.name, shadow.name))
    return found


NAMED = re.compile(r"rule '(r\d+)' can never match: rule '(r\d+)'")


@settings(max_examples=400, deadline=None)
@given(st.lists(definitions(), max_size=20), st.integers(0, 20))
def test_the_indexed_check_names_what_comparing_every_pair_names(
    given_definitions: list[dict[str, Any]], split: int
) -> None:
    rules = compiled(given_definitions)
    earlier, later = rules[:split], rules[split:]
    problems = loader.shadowed(later, earlier=earlier)
    named = [match.groups() for p in problems if (match := NAMED.search(str(p)))]
    assert len(named) == len(problems)
    assert named == pairwise(later, earlier)


# --- 2. `--watch` and folders moved, copied or made in the scenario folder ------------------------


def rule(name: str, question: str, answer: str) -> str:
    """A scenario file of one rule."""
    return f"mockai: 1\nrules:\n  - name: {name}\n    match: {{user: {question}}}\n    reply: {answer}\n"


def answer(http: httpx.Client, served: ServeProcess, question: str) -> str | None:
    """The scripted answer to `question`, or None when no rule answers it."""
    response = http.post(
        served.url_for("/v1/chat/completions"),
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]},
        timeout=10,
    )
    return response.json()["choices"][0]["message"]["content"] if response.is_success else None


def becomes(
    http: httpx.Client,
    served: ServeProcess,
    question: str,
    expected: str | None,
    timeout: float = 15,
) -> bool:
    """True once the server answers `question` with `expected` (polled, for at most `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answer(http, served, question) == expected:
            return True
        time.sleep(0.05)
    return False


def watching(http: httpx.Client, served: ServeProcess, file: Path) -> None:
    """Edit `file` until its edit is served: the watcher runs (it starts after the server)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        file.write_text(rule("ready", "ready", "watching"))
        if becomes(http, served, "ready", "watching", timeout=0.5):
            return
    raise AssertionError("--watch never reloaded:\n" + served.printed()[-3000:])


def test_watch_loads_folders_moved_copied_or_made_in_the_scenario_folder(tmp_path: Path) -> None:
    watched, staging = tmp_path / "scenarios", tmp_path / "staging"
    write(watched / "a.yaml", rule("a", "hello", "from a"))
    write(staging / "billing" / "c.yaml", rule("c", "billing", "from billing"))
    write(staging / "sales" / "deep" / "d.yaml", rule("d", "sales", "from sales"))
    with (
        ServeProcess(["--scenario", str(watched), "--watch", "--quiet"]) as served,
        httpx.Client() as http,
    ):
        watching(http, served, watched / "ready.yaml")
        (staging / "billing").rename(watched / "billing")  # mv
        assert becomes(http, served, "billing", "from billing"), served.printed()[-3000:]
        shutil.copytree(staging / "sales", watched / "sales")  # cp -r
        assert becomes(http, served, "sales", "from sales"), served.printed()[-3000:]
        (watched / "new").mkdir()  # mkdir, then at once a file in it
        (watched / "new" / "e.yaml").write_text(rule("e", "newest", "from new"))
        assert becomes(http, served, "newest", "from new"), served.printed()[-3000:]
        (watched / "billing").rename(tmp_path / "billing")  # moved out: its rules go
        assert becomes(http, served, "billing", None), served.printed()[-3000:]
        assert answer(http, served, "sales") == "from sales"


# --- 3. dot-files: `--watch` ignored them, the loader loaded them ---------------------------------


def test_a_folder_skips_dot_files_and_dot_folders_as_watch_does(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    write(folder / "a.yaml", rule("a", "hello", "from a"))
    write(folder / ".local.yaml", rule("local", "local", "from a dot-file"))
    write(folder / ".drafts" / "b.yaml", rule("b", "draft", "from a dot-folder"))
    write(folder / ".#a.yaml", "mockai: 1\nrules: [an editor's lock file, not YAML\n")
    code, printed = check(folder)
    assert code == 0, printed
    with (
        ServeProcess(["--scenario", str(folder), "--watch", "--quiet"]) as served,
        httpx.Client() as http,
    ):
        assert answer(http, served, "hello") == "from a"
        assert answer(http, served, "local") is None
        assert answer(http, served, "draft") is None
        watching(http, served, folder / "ready.yaml")
        (folder / ".local.yaml").write_text(rule("local", "local", "edited"))
        (folder / "a.yaml").write_text(rule("a", "hello", "edited a"))  # a reload, at last
        assert becomes(http, served, "hello", "edited a"), served.printed()[-3000:]
        assert answer(http, served, "local") is None
    # A folder of dot-files alone says why nothing loads.
    drafts = write(tmp_path / "drafts" / ".local.yaml", rule("local", "local", "v1")).parent
    refused = subprocess.run(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--scenario", str(drafts)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert refused.stderr.splitlines()[-1] == (
        f"mockai: {drafts}: no scenario files (*.yaml, *.yml) found; files and folders whose "
        "name starts with a dot are skipped: rename them"
    )


def test_watch_reloads_a_dot_file_named_on_its_own(tmp_path: Path) -> None:
    local = write(tmp_path / ".local.yaml", rule("local", "local", "v1"))
    with (
        ServeProcess(["--scenario", str(local), "--watch", "--quiet"]) as served,
        httpx.Client() as http,
    ):
        assert answer(http, served, "local") == "v1"
        watching(http, served, local)  # its edits are served


def configmap_update(folder: Path, version: str, files: dict[str, str]) -> None:
    """What the kubelet does to a mounted ConfigMap: its files in a new dot-folder, the
    `..data` link swapped to it in one rename, the old folder deleted; each `NAME.yaml` in
    `folder` is a link to `..data/NAME.yaml`, made once and never changed."""
    old = (folder / "..data").resolve() if (folder / "..data").exists() else None
    for name, text in files.items():
        write(folder / f"..{version}" / name, text)
    (folder / "..data_tmp").symlink_to(f"..{version}")
    (folder / "..data_tmp").rename(folder / "..data")
    for name in files:
        if not (folder / name).is_symlink():
            (folder / name).symlink_to(f"..data/{name}")
    if old is not None:
        shutil.rmtree(old)


@pytest.mark.parametrize("given", ["folder", "file"])
def test_watch_reloads_a_kubernetes_configmap_update(tmp_path: Path, given: str) -> None:
    # A ConfigMap mounted at /scenarios is updated by swapping its `..data` link: no scenario
    # file changes, only dot-entries, which the watch ignored (the folder given), or the watch
    # was on the resolved file's folder, deleted by the update (the file given).
    folder = tmp_path / "scenarios"
    configmap_update(folder, "v1", {"faq.yaml": rule("faq", "hello", "version one")})
    scenario = folder if given == "folder" else folder / "faq.yaml"
    with (
        ServeProcess(["--scenario", str(scenario), "--watch", "--quiet"]) as served,
        httpx.Client() as http,
    ):
        assert answer(http, served, "hello") == "version one"
        for version in ("v2", "v3"):  # (the second: the watch outlived the first)
            configmap_update(folder, version, {"faq.yaml": rule("faq", "hello", version)})
            assert becomes(http, served, "hello", version), served.printed()[-3000:]


def test_a_change_of_dot_files_alone_reloads_nothing_and_says_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    write(folder / "a.yaml", rule("a", "hello", "from a"))
    with (
        ServeProcess(["--scenario", str(folder), "--watch", "--quiet"]) as served,
        httpx.Client() as http,
    ):
        watching(http, served, folder / "ready.yaml")
        time.sleep(1)  # (a reload of the last of watching's edits may still be on its way)
        reloads = served.printed().count("reloaded")
        for n in range(3):  # an editor's swap file, written as the user types
            (folder / ".a.yaml.swp").write_text(f"swap {n}")
            time.sleep(0.3)
        (folder / "a.yaml").write_text(rule("a", "hello", "edited a"))
        assert becomes(http, served, "hello", "edited a"), served.printed()[-3000:]
        assert served.printed().count("reloaded") == reloads + 1, served.printed()[-3000:]


# --- 4. the no-match report collapsed whitespace -------------------------------------------------

EXACT = """
mockai: 1
rules:
  - name: exact
    match: {user: {equals: "hello world"}}
    reply: hi
"""


@pytest.mark.parametrize(
    ("content", "shown"),
    [
        ("hello world\n", r"'hello world\n'"),
        ("hello  world", "'hello  world'"),
        ("hello\tworld", r"'hello\tworld'"),
        ([{"type": "text", "text": "hello"}, {"type": "text", "text": "world"}], r"'hello\nworld'"),
    ],
)
def test_the_no_match_report_shows_the_whitespace_that_differs(
    tmp_path: Path, content: Any, shown: str
) -> None:
    scenario = write(tmp_path / "exact.yaml", EXACT)
    with checked_server(scenarios=[str(scenario)]) as server, httpx.Client() as http:
        response = http.post(
            server.url_for("/v1/chat/completions"),
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]},
            timeout=10,
        )
    assert response.status_code == 400
    row = f"user: equals 'hello world' | {shown}  <<<<< user does not match"
    assert row in response.json()["error"]["message"]


@settings(max_examples=500)
@given(st.text(max_size=80), st.text(max_size=80), st.integers(8, 80))
def test_shortened_texts_stay_apart_on_one_bounded_line(a: str, b: str, limit: int) -> None:
    shown_a, shown_b = shorten(a, limit), shorten(b, limit)
    for text, shown in ((a, shown_a), (b, shown_b)):
        assert len(shown) <= limit + 2 and "\n" not in shown and "\r" not in shown
        if len(repr(text)) <= limit + 2:  # it fits: shown whole, as Python writes it
            assert shown == repr(text)
        else:
            assert shown.endswith(("…'", '…"'))
    fits = len(repr(a)) <= limit + 2 and len(repr(b)) <= limit + 2
    if fits and a != b:
        assert shown_a != shown_b


# --- 5. confusing messages: a rule repeated through an alias, a quoted format version -----------


def test_a_rule_repeated_through_an_alias_is_reported_at_the_alias(tmp_path: Path) -> None:
    path = write(
        tmp_path / "alias.yaml",
        """
        mockai: 1
        rules:
          - &r
            name: a
            match: {user: hi}
            reply: one
          - *r
          - {<<: *r, name: b, match: {user: bye}}
        """,
    )
    code, printed = check(path)
    assert code == 1
    repeated = (
        f"{path}:7: '*r' repeats rule 'a' (line 3): a rule is written once, under a name of its "
        "own (to reuse its keys, merge them into a new rule: `- {<<: *r, name: other, match: ...}`)"
    )
    assert printed.splitlines() == [repeated, "mockai check: 1 problem(s)"]
    # Rules sharing a line are no aliases of one another when written so.
    flow = write(
        tmp_path / "flow.yaml",
        """
        mockai: 1
        rules: [{name: a, match: {user: hi, model: "gpt-4o*"}, reply: one}, {name: b, reply: two}]
        """,
    )
    assert check(flow) == (0, "mockai check: 1 path(s) OK\n")


def test_a_quoted_format_version_asks_for_the_number(tmp_path: Path) -> None:
    path = write(tmp_path / "strver.yaml", 'mockai: "1"\nrules: []\n')
    code, printed = check(path)
    assert code == 1
    assert printed.splitlines()[0] == (
        f'{path}:1: mockai: "1" is text, not a number: the format version is the number 1 '
        "(write mockai: 1, without quotes)"
    )
