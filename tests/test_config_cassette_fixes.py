"""Configuration values and cassette checks: a model, fault or key given twice in one `--limits`
/ `--chaos` / `--latency` value (and a value holding only separators, or a nameless or
window-only budget) is refused, as scenario files refuse the contradiction; `match_on` is checked
however it is given, an empty list included; and a bad cassette gets the same `file:line` from
`mockai check` and `mockai serve` (a wrong version at its `version:` line, a pre-1.0 bare list
as a cassette, an empty file as a cassette with nothing to replay)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk import sdk

from mockai import Config, ConfigError, MockServer
from mockai.cassette import register_matcher
from mockai.cassette.check import is_cassette
from mockai.cassette.matching import MATCHERS, RequestView
from mockai.cli import main
from mockai.config import parse_rates
from mockai.delivery.ratelimit import ALL_MODELS, Limit, parse_limits
from mockai.delivery.timing import parse_timing_spec, split_pairs
from mockai.errors import CassetteError

REPO = Path(__file__).resolve().parent.parent
CASSETTE = REPO / "cassettes" / "chat_json.yaml"


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mockai serve` that is expected to stop before it listens (bounded all the same)."""
    return subprocess.run(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


# --- 1. a key given twice in one --limits / --chaos / --latency value ---------------------------

TWICE = [
    (
        "limits",
        "gpt-4o:rpm=3;gpt-4o:rpm=5",
        "'gpt-4o' is given twice, gpt-4o:rpm=3 and gpt-4o:rpm=5; give each model once",
    ),
    (
        "limits",
        "rpm=3;*:rpm=4",
        "every model's budget is given twice, rpm=3 and rpm=4; give each model once",
    ),
    ("limits", "rpm=60,rpm=70", "'rpm' is given twice, rpm=60 and rpm=70; give it once"),
    (
        "chaos",
        "rate_limit=1,rate_limit=0",
        "'rate_limit' is given twice, rate_limit=1 and rate_limit=0; give each fault once",
    ),
    ("latency", "ttft=1ms,ttft=2ms", "'ttft' is given twice, ttft=1ms and ttft=2ms; give it once"),
]

SENSELESS = [
    ("limits", ";;", "';;' holds no budget; write e.g. rpm=60,tpm=40000 or gpt-4o:rpm=3"),
    (
        "limits",
        ":rpm=3",
        (
            "':rpm=3' names no model before ':'; write MODEL:rpm=N, or leave out the ':' for a "
            "budget for every model"
        ),
    ),
    ("limits", "window=2s", "window=2s: give rpm, tpm or both"),
    ("chaos", " , ", "' , ' holds no NAME=RATE (e.g. rate_limit=0.1)"),
    (
        "chaos",
        "=0.1",
        (
            "'=0.1' is not NAME=RATE with a rate between 0 and 1 "
            "(e.g. rate_limit=0.1,server_error=0.02)"
        ),
    ),
]


@pytest.mark.parametrize(("option", "value", "said"), TWICE + SENSELESS)
def test_a_senseless_spec_is_refused_by_keyword_and_variable(
    option: str, value: str, said: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        MockServer(log_requests=False, **{option: value})
    assert str(refused.value) == f"{option}: {said}"
    with pytest.raises(ConfigError) as refused:
        Config.from_env({f"MOCKAI_{option.upper()}": value})
    assert str(refused.value) == f"MOCKAI_{option.upper()}: {said}"


@pytest.mark.parametrize(("option", "value", "said"), TWICE[:1] + TWICE[3:])
def test_mockai_serve_stops_with_exit_2_on_a_key_given_twice(
    option: str, value: str, said: str
) -> None:
    done = _serve(f"--{option}", value)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == f"mockai serve: error: argument --{option}: {said}"


def test_a_mapping_gives_each_model_once_and_an_empty_value_sets_nothing() -> None:
    with pytest.raises(ConfigError, match="every model's budget is given twice, rpm=3 and rpm=4"):
        MockServer(limits={"rpm": 3, "*": {"rpm": 4}}, log_requests=False)
    # (what was valid still is: nothing set, or a stray separator after a part)
    assert parse_limits({}) == {} and parse_limits("") == {}
    assert parse_limits("gpt-4o:rpm=3,window=2s;") == {"gpt-4o": Limit(rpm=3, window=2.0)}
    assert parse_rates("") == {} and parse_rates("rate_limit=0.1,") == {"rate_limit": 0.1}


MODELS = st.sampled_from([ALL_MODELS, "gpt-4o", "gpt-4o-mini", "o3", "text-embedding-3-small"])
FAULTS = st.sampled_from(["rate_limit", "server_error", "timeout", "reset", "overloaded"])
COUNTS = st.integers(min_value=1, max_value=10**6)
# (at most 5 faults of rate <= 0.2: they add up to 1 or less, so only a repeat can be refused)
RATES = st.sampled_from([0.0, 0.05, 0.1, 0.2])


def _budget(pattern: str, rpm: int) -> str:
    return f"rpm={rpm}" if pattern == ALL_MODELS else f"{pattern}:rpm={rpm}"


@settings(max_examples=150)
@given(st.lists(st.tuples(MODELS, COUNTS), min_size=1, max_size=5))
def test_limits_parse_iff_no_model_repeats(parts: list[tuple[str, int]]) -> None:
    spec = ";".join(_budget(pattern, rpm) for pattern, rpm in parts)
    patterns = [pattern for pattern, _ in parts]
    if len(set(patterns)) < len(patterns):
        with pytest.raises(ConfigError, match="is given twice"):
            parse_limits(spec)
    else:
        assert parse_limits(spec) == {pattern: Limit(rpm=rpm) for pattern, rpm in parts}


@settings(max_examples=150)
@given(st.lists(st.tuples(FAULTS, RATES), min_size=1, max_size=5))
def test_chaos_rates_parse_iff_no_fault_repeats(parts: list[tuple[str, float]]) -> None:
    spec = ",".join(f"{name}={rate}" for name, rate in parts)
    names = [name for name, _ in parts]
    if len(set(names)) < len(names):
        with pytest.raises(ConfigError, match="is given twice"):
            parse_rates(spec)
    else:
        assert parse_rates(spec) == dict(parts)
        assert Config().merged(chaos=spec).chaos == dict(parts)


TIMING = {
    "latency": st.sampled_from(["0ms", "5ms", "1.5s"]),
    "ttft": st.sampled_from(["0ms", "300ms", "10ms-20ms"]),
    "chunk_delay": st.sampled_from(["1ms", "20ms"]),
    "jitter": st.sampled_from(["0", "0.1", "1"]),
}
TIMING_PAIRS = st.sampled_from(sorted(TIMING)).flatmap(
    lambda key: st.tuples(st.just(key), TIMING[key])
)


@settings(max_examples=150)
@given(st.lists(TIMING_PAIRS, min_size=1, max_size=5))
def test_latency_specs_parse_iff_no_key_repeats(parts: list[tuple[str, str]]) -> None:
    spec = ",".join(f"{key}={value}" for key, value in parts)
    keys = [key for key, _ in parts]
    if len(set(keys)) < len(keys):
        with pytest.raises(ValueError, match="is given twice"):
            parse_timing_spec(spec)
    else:
        assert split_pairs(spec) == dict(parts)
        parse_timing_spec(spec)  # (each value valid: the spec is)


# --- 2. match_on checked however it is given ----------------------------------------------------


@pytest.mark.parametrize(
    ("match_on", "said"),
    [
        ("method,pth", "match_on: unknown matcher(s) 'pth' (did you mean 'path'?)"),
        ("", f"match_on: give at least one of: {', '.join(MATCHERS.names())}"),
        ([], f"match_on: give at least one of: {', '.join(MATCHERS.names())}"),
        (" , ", f"match_on: give at least one of: {', '.join(MATCHERS.names())}"),
    ],
)
def test_match_on_is_checked_when_the_server_is_made(match_on: Any, said: str) -> None:
    with pytest.raises(ConfigError) as refused:
        MockServer(cassette=str(CASSETTE), match_on=match_on, log_requests=False)
    assert str(refused.value) == said
    with pytest.raises(ConfigError) as refused:  # (no cassette yet: a mistake all the same)
        MockServer(match_on=match_on, log_requests=False)
    assert str(refused.value) == said


@pytest.fixture
def own_matcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A matcher registered as users do (`register_matcher`), gone after the test."""
    monkeypatch.setattr(MATCHERS, "_matchers", dict(MATCHERS._matchers))
    monkeypatch.setattr(MATCHERS, "_keys", dict(MATCHERS._keys))

    def same_model(recorded: RequestView, incoming: RequestView) -> None:
        if recorded.body.get("model") != incoming.body.get("model"):
            raise AssertionError(f"{recorded.body.get('model')} != {incoming.body.get('model')}")

    register_matcher("same_model", same_model)
    yield "same_model"


def test_a_registered_matcher_is_known_and_a_near_miss_is_not(own_matcher: str) -> None:
    with pytest.raises(ConfigError, match=r"'same_modle' \(did you mean 'same_model'\?\)"):
        MockServer(match_on="path,same_modle", log_requests=False)
    with (
        MockServer(
            cassette=str(CASSETTE), match_on=f"path,{own_matcher}", log_requests=False
        ) as server,
        sdk(server) as client,
    ):
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "not recorded"}]
        )
    assert reply.choices[0].message.content  # the recording, matched by path and model
    assert server.requests[-1].source == "cassette"


# --- 3. bad cassettes: the same file:line from check and serve ----------------------------------


@pytest.fixture
def bad_cassettes(tmp_path: Path) -> dict[str, Path]:
    text = CASSETTE.read_text(encoding="utf-8")
    assert text.count("\nversion: 1\n") == 1
    files = {
        "v2.yaml": text.replace("\nversion: 1\n", "\nversion: 2\n"),
        "bare_list.yaml": '# vcrpy 0.x\n- request: {method: GET, uri: "http://x/v1/models"}\n',
        "empty.yaml": "\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    return {name: tmp_path / name for name in files}


def _version_line(path: Path) -> int:
    return path.read_text(encoding="utf-8").splitlines().index("version: 2") + 1


def _checked(path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["check", str(path)]) == 1
    return capsys.readouterr().err.splitlines()[:-1]  # (the last: "mockai check: N problem(s)")


def _said(name: str, path: Path) -> str:
    """What check and serve both say of bad cassette `name` (at `path`)."""
    if name == "v2.yaml":
        return (
            f"{path}:{_version_line(path)}: cassette format version 2 is not supported: mockai "
            "reads vcrpy cassettes with `version: 1`. Record it again, or set `version: 1` if "
            "it was written by a tool that left the version out."
        )
    if name == "bare_list.yaml":
        return (
            f"{path}:1: this cassette was written by vcrpy before 1.0 (no version, a bare "
            "list). Convert it with `python -m vcr.migration PATH` or record it again."
        )
    return (
        f"{path}:1: the file is empty: a cassette with nothing to replay (record into it: "
        f"mockai serve --cassette {path} --record-mode once --upstream URL)"
    )


@pytest.mark.parametrize("name", ["v2.yaml", "bare_list.yaml", "empty.yaml"])
def test_check_and_serve_say_the_same_file_line(
    name: str, bad_cassettes: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = bad_cassettes[name]
    said = _said(name, path)
    served = _serve("--cassette", str(path))
    assert served.returncode != 0, served.stderr
    assert served.stderr.splitlines()[-1] == f"mockai: {said}"
    if name == "empty.yaml":  # (an empty file is no scenario file either: check says so too)
        said += "; nor is it a scenario file ('mockai: 1' and 'rules:')"
    assert _checked(path, capsys) == [said]


def test_an_empty_cassette_is_refused_for_replay_and_recorded_into(
    bad_cassettes: dict[str, Path],
) -> None:
    empty = bad_cassettes["empty.yaml"]
    with pytest.raises(CassetteError, match=r":1: the file is empty: a cassette with nothing"):
        MockServer(cassette=str(empty), log_requests=False).start()
    upstream = "http://127.0.0.1:9/v1"  # (not asked: nothing is sent)
    with MockServer(
        cassette=str(empty), record_mode="once", upstream=upstream, log_requests=False
    ) as server:
        assert server.url  # (vcrpy's reading: a cassette not recorded yet, recorded into)


def test_a_file_in_a_cassette_folder_that_is_none_has_a_line(tmp_path: Path) -> None:
    (tmp_path / "chat_json.yaml").write_text(CASSETTE.read_text(encoding="utf-8"))
    (tmp_path / "notes.yaml").write_text("notes: hello\n")
    with pytest.raises(CassetteError) as refused:
        MockServer(cassette=str(tmp_path), log_requests=False).start()
    assert str(refused.value) == (
        f"{tmp_path / 'notes.yaml'}:1: not a cassette (a vcrpy cassette has `interactions: [...]`)"
    )


def test_a_config_built_directly_beats_the_scenario_files_settings(tmp_path: Path) -> None:
    """What a `Config(...)` sets beyond the defaults was set explicitly: a scenario file's
    `seed:` and `fallback:` fill in only what it left alone."""
    scenario = tmp_path / "settings.yaml"
    scenario.write_text("mockai: 1\nseed: 7\nfallback: error\nrules: []\n", encoding="utf-8")
    with MockServer(Config(seed=3, scenarios=(str(scenario),))) as server:
        assert (server.config.seed, server.config.fallback) == (3, "error")
    explicit = Config(scenarios=(str(scenario),)).merged(seed=0, fallback="generate")
    with MockServer(explicit) as server:
        assert (server.config.seed, server.config.fallback) == (0, "generate")


# --- 4. blank lines do not slow telling a file's kind --------------------------------------------

BLANK_LINES = "\n" * 20_000


@pytest.mark.timeout(20)  # (the search was cubic in them, hours for these files: fail, not hang)
@pytest.mark.parametrize(
    ("name", "tail", "cassette"),
    [
        ("rules.yaml", "mockai: 1\nrules:\n  - name: r\n    reply: hi\n", False),
        ("notes.yaml", "notes: hello\n", False),
        ("recorded.yaml", CASSETTE.read_text(encoding="utf-8"), True),
        ("recorded.json", '{\n  "version": 1,\n  "interactions": []\n}\n', True),
        ("old.yaml", '[\n  {"request": {}, "response": {}}\n]\n', True),  # (vcrpy 0.x)
    ],
)
def test_blank_lines_ahead_are_told_apart_quickly(name: str, tail: str, cassette: bool) -> None:
    started = time.perf_counter()
    assert is_cassette(name, BLANK_LINES + tail) is cassette
    assert time.perf_counter() - started < 1.0


@pytest.mark.timeout(20)
def test_check_takes_a_scenario_after_blank_lines_for_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(BLANK_LINES + "mockai: 1\nrules:\n  - name: r\n    reply: hi\n")
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "mockai check: 1 path(s) OK"


# What told a cassette before (cubic on blank lines: a reference for small files only).
_KEY_BEFORE = re.compile(r'^(interactions\s*:|\s*\{?\s*"interactions"\s*:)', re.MULTILINE)
_BARE_LIST_BEFORE = re.compile(
    r'\A(?:[ \t]*(?:#[^\n]*)?\n|---[ \t]*\n)*(?:-[ \t]+|\s*\[\s*\{\s*)"?(request|response)"?\s*:'
)


def _was_cassette(name: str, text: str) -> bool:
    looks = bool(_KEY_BEFORE.search(text) or _BARE_LIST_BEFORE.match(text))
    return looks and (name.endswith(".json") or "\nmockai:" not in "\n" + text)


def _is_compact_json_cassette(name: str, text: str) -> bool:
    """What the twenty-fourth session added for JSON files (test_compact_json_cassettes.py): the
    key anywhere, in a file that does not parse or whose top-level object holds it."""
    if not name.endswith(".json") or not re.search(r'"interactions"\s*:', text):
        return False
    try:
        loaded = json.loads(text)
    except ValueError:
        return True
    return isinstance(loaded, dict) and "interactions" in loaded


_PIECES = [" ", "\t", "{", "[", "}", "interactions:", "interactions :", '"interactions":']
_PIECES += ['"interactions"', ":", "- request:", '"request":', "response:", "mockai: 1"]
_PIECES += ["rules: []", "# note", "---", "x: 1"]
_LINE = st.lists(st.sampled_from(_PIECES), max_size=3).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(_LINE, max_size=6),
    end=st.sampled_from(["", "\n"]),
    name=st.sampled_from(["c.yaml", "c.json"]),
)
def test_what_is_a_cassette_is_what_it_was(lines: list[str], end: str, name: str) -> None:
    """Files as cassettes and scenario files start (JSON's `{` on a line of its own, a bare
    list, blank and indented lines), told apart as before the search was made linear."""
    text = "\n".join(lines) + end
    expected = _was_cassette(name, text) or _is_compact_json_cassette(name, text)
    assert is_cassette(name, text) == expected
