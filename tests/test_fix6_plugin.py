"""The pytest plugin's fixes from the sixth bug hunt, each exercised through pytester the way a
user meets it (a test file, a pytest run, its outcome, what it printed and the files it left):
the real key in recording runs, long test names that record, the documented configure hook under
`-p no:mockai`, the fixture's clients closed, xfail/skip after a miss, and bad marker values."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pytest_mockai.options import flag

from mockai import MockServer
from mockai.cassette import format as cassette_format
from mockai.cassette.format import TEMPORARY_EXTRA, fitting_name
from mockai.cassette.writer import sibling
from mockai.scenario import respond, templates

# Loaded before any pytester run: pytester forgets the modules first imported during a run (see
# test_plugin_hunt_fixes.py).
assert cassette_format.CASSETTE_SUFFIXES and respond.StaleFixture and templates

pytest_plugins = ["pytester"]

REAL_KEY = "sk-real-KEY-" + "4f9a2c7e1b" * 3  # what the upstream requires (never a real key)
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "pytest-plugin.md"


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockServer]:
    """An OpenAI-compatible API to record from, that takes only the real key (as OpenAI would)."""
    with MockServer(log_requests=False, require_api_key=REAL_KEY) as server:
        yield server


def _run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makeini(INI)
    pytester.makepyfile(test_app=source)
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def _recording(upstream: MockServer) -> tuple[str, ...]:
    return ("--mockai-record-mode=once", f"--mockai-upstream={upstream.url}")


# --- 1. the fixture's clients carry the real key in a recording run ----------------------------

FAST_CLIENTS = """
    import asyncio

    def test_sync(mockai):
        with mockai.openai_client(max_retries=0) as client:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "sync"}]
            )

    def test_async(mockai):
        async def go():
            async with mockai.async_openai_client(max_retries=0) as client:
                await client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "async"}]
                )
        asyncio.run(go())
"""


def test_fixture_clients_record_with_the_users_real_key(
    pytester: pytest.Pytester, upstream: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", REAL_KEY)
    _run(pytester, FAST_CLIENTS, *_recording(upstream)).assert_outcomes(passed=2)
    folder = pytester.path / "cassettes" / "test_app"
    assert sorted(p.name for p in folder.iterdir()) == ["test_async.yaml", "test_sync.yaml"]
    leaked = [
        p for p in pytester.path.rglob("*") if p.is_file() and REAL_KEY.encode() in p.read_bytes()
    ]
    assert leaked == []
    # And they replay with no key at all: the fixture's fake one.
    monkeypatch.delenv("OPENAI_API_KEY")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


# --- 2. long test names record and replay ------------------------------------------------------

LONG_NAMES = """
    import openai, pytest

    RECORDING = WHETHER

    # 300 characters: pytest-recording's rule shortens the cassette's name to 255 bytes exactly;
    # 225: kept, too long for `.NAME.conflict-999.XXXXXXXX.tmp` but not for the file system.
    @pytest.mark.parametrize("q", ["x" * 300, "y" * 225], ids=lambda q: q)
    def test_long(mockai, q):
        with mockai.openai_client(max_retries=0) as client:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": q[:20]}]
            )
        assert mockai.requests[0].source == ("upstream" if RECORDING else "cassette")
"""


def test_long_test_names_record_and_replay(
    pytester: pytest.Pytester, upstream: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", REAL_KEY)
    recording = LONG_NAMES.replace("WHETHER", "True")
    _run(pytester, recording, *_recording(upstream)).assert_outcomes(passed=2)
    folder = pytester.path / "cassettes" / "test_app"
    names = sorted(len(os.fsencode(p.name)) for p in folder.iterdir())
    assert names == [len("test_long[]") + 225 + len(".yaml"), 255]  # no temporary left behind
    _run(pytester, LONG_NAMES.replace("WHETHER", "False")).assert_outcomes(passed=2)


def test_a_longest_name_keeps_its_backup_and_conflict_files(
    tmp_path: Path, upstream: MockServer
) -> None:
    """A cassette named with all 255 bytes re-records (`all`: its `.bak`) and, changed on disk
    meanwhile, saves into a conflict file: each named after its hash, and found by that name."""
    cassette = tmp_path / ("z" * (255 - len(".yaml")) + ".yaml")
    for mode in ("once", "all", "new_episodes"):
        with _recorder(upstream, cassette, mode) as server:
            if mode == "new_episodes":
                cassette.write_text(cassette.read_text() + "\n")  # (changed on disk meanwhile)
            _chat(server.url, mode)
    backup, conflict = sibling(cassette, ".bak"), sibling(cassette, ".conflict")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [cassette.name, backup.name, conflict.name]
    )
    assert "new_episodes" in conflict.read_text() and "new_episodes" not in cassette.read_text()
    assert backup.name.startswith("z" * 100) and len(os.fsencode(backup.name)) < 255


def _recorder(upstream: MockServer, cassette: Path, mode: str) -> MockServer:
    return MockServer(
        log_requests=False, cassette=str(cassette), record_mode=mode, upstream=upstream.url
    )


def _chat(url: str, text: str) -> None:
    with openai.OpenAI(base_url=url, api_key=REAL_KEY, max_retries=0) as client:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
        )


@given(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), max_size=300),
    st.integers(0, 60),
)
@example("y" * 250, TEMPORARY_EXTRA)
def test_a_fitting_name_always_fits_and_is_the_name_when_it_can_be(name: str, room: int) -> None:
    fitted = fitting_name(name, room, 255)
    assert len(os.fsencode(fitted)) + room <= 255
    if len(os.fsencode(name)) + room <= 255:
        assert fitted == name  # the documented `.NAME.conflict-N`, `.NAME.XXXXXXXX.tmp`
    else:
        assert fitting_name(name + "!", room, 255) != fitted  # (a hash of all of it)


# --- 3. the documented configure hook, with the plugin off -------------------------------------


def _docs_conftest() -> str:
    """The `conftest.py` docs/pytest-plugin.md shows for `pytest_mockai_configure`."""
    found = re.search(
        r"<!-- docs: file conftest.py -->\n```python\n(.*?)```", DOCS.read_text(), re.S
    )
    assert found is not None, "docs/pytest-plugin.md lost its conftest.py example"
    return found.group(1)


SEEDED = """
    def test_seed(request):
        if "mockai" in request.fixturenames:
            assert request.getfixturevalue("mockai").server.config.seed == 42

    def test_with(mockai):
        assert mockai.server.config.seed == 42
"""


def test_the_documented_configure_hook_works_with_the_plugin_off(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(_docs_conftest())
    result = _run(pytester, SEEDED, "-p", "no:mockai", "-k", "test_seed")
    result.assert_outcomes(passed=1, deselected=1)
    assert result.ret == 0
    _run(pytester, SEEDED).assert_outcomes(passed=2)


# --- 4. the fixture's clients leave no socket to the garbage collector -------------------------

CLIENTS_NOT_CLOSED = """
    import gc, pytest

    def test_sync(mockai):
        mockai.openai_client().models.list()

    @pytest.mark.asyncio
    async def test_asyncio(mockai):
        await mockai.async_openai_client().models.list()

    @pytest.mark.anyio
    async def test_anyio(mockai):
        await mockai.async_openai_client().models.list()

    @pytest.fixture
    def anyio_backend():
        return "asyncio"

    def test_last():  # an unclosed socket's warning comes when the collector frees it: now
        gc.collect()
"""


def test_fixture_clients_are_closed_after_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_app=CLIENTS_NOT_CLOSED)
    # (In a process of its own: the collector's ResourceWarning must be this run's.)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    assert "ResourceWarning" not in result.stdout.str()
    result.assert_outcomes(passed=4)


# --- 5. strict mode stays quiet when the outcome is already said -------------------------------

MISSED = """
    import openai, pytest

    def miss(mockai):
        mockai.add_rule({"match": {"user": "hi"}, "reply": "hello"})
        with mockai.openai_client(max_retries=0) as client:
            try:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "unscripted"}]
                )
            except openai.BadRequestError:
                pass

    @pytest.mark.xfail(reason="known bug in the app")
    def test_xfail(mockai):
        miss(mockai)
        assert False

    def test_skipped_midway(mockai):
        miss(mockai)
        pytest.skip("not on this platform")

    def test_swallowed(mockai):
        miss(mockai)
"""


def test_an_xfailed_or_skipped_test_is_not_reported_again_for_a_miss(
    pytester: pytest.Pytester,
) -> None:
    result = _run(pytester, MISSED, "-rA")
    result.assert_outcomes(passed=1, xfailed=1, skipped=1, errors=1)  # (the error: swallowed)
    errors = [line for line in result.outlines if line.startswith("ERROR ")]
    assert errors == [errors[0]] and "test_swallowed" in errors[0]


# --- 6. bad marker values fail cleanly ----------------------------------------------------------

BAD_MARKERS = """
    import openai, pytest

    @pytest.mark.mockai("scen/bad.yaml")
    def test_positional(mockai): pass

    @pytest.mark.mockai(scenario=123)
    def test_scenario_int(mockai): pass

    @pytest.mark.mockai(scenario=["a.yaml", None])
    def test_scenario_list_none(mockai): pass

    @pytest.mark.mockai(cassette=123)
    def test_cassette_int(mockai): pass

    @pytest.mark.mockai(strict="maybe")
    def test_strict_maybe(mockai): pass

    @pytest.mark.mockai(strict_fixtures=[])
    def test_strict_fixtures_list(mockai): pass

    @pytest.mark.mockai(cassette="rec.yaml", record_mode="once")
    def test_recording_without_upstream(mockai): pass

    @pytest.mark.mockai(strict="false", strict_fixtures="yes")
    def test_words_are_booleans(mockai):
        assert mockai.strict is False and mockai.server.config.strict is True
        mockai.add_rule({"match": {"user": "hi"}, "reply": "hello"})
        with pytest.raises(openai.BadRequestError):  # a miss, allowed: strict is off
            mockai.openai_client(max_retries=0).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "unscripted"}]
            )
"""

REFUSED = {
    "test_positional": "@pytest.mark.mockai takes keyword arguments only, got 'scen/bad.yaml' (a scenario file is `scenario=...`)",
    "test_scenario_int": "scenario: expected a file or folder path, or a list of them, got 123",
    "test_scenario_list_none": "scenario: expected a file or folder path, or a list of them, got ['a.yaml', None]",
    "test_cassette_int": "cassette: expected True, False or a path, got 123",
    "test_strict_maybe": "strict: 'maybe' is neither true nor false",
    "test_strict_fixtures_list": "strict_fixtures: [] is neither true nor false",
    "test_recording_without_upstream": "give --mockai-upstream URL",
}


def test_bad_marker_values_fail_at_setup_saying_what_is_wrong(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    result = _run(pytester, BAD_MARKERS)
    result.assert_outcomes(passed=1, errors=len(REFUSED))
    out = result.stdout.str()
    for test, problem in REFUSED.items():
        said = re.split(r"\n[_=]", out.split(f"ERROR at setup of {test} ")[1])[0]
        assert "mockai could not start:\n" in said and problem in said, said
        assert said.count("could not start") == 1 and "Traceback" not in said, said
        assert "pytest_mockai" not in said and "UsageError" not in said, said


@given(
    st.sampled_from(["true", "1", "yes", "on", "false", "0", "no", "off"]),
    st.sampled_from([str.lower, str.upper, str.title]),
    st.sampled_from(["", " ", "\t"]),
)
def test_a_marker_boolean_reads_as_the_ini_reads_it(word: str, case: object, pad: str) -> None:
    assert callable(case)
    assert flag("strict", pad + case(word) + pad) is (word in ("true", "1", "yes", "on"))


@given(
    st.text(max_size=10).filter(
        lambda s: s.strip().lower() not in {"true", "1", "yes", "on", "false", "0", "no", "off"}
    )
)
def test_any_other_word_is_refused(word: str) -> None:
    with pytest.raises(pytest.fail.Exception, match="is neither true nor false"):
        flag("strict", word)
