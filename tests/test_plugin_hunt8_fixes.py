"""The pytest plugin's fixes from the eighth bug hunt (a pytest-recording user migrating), each
through pytester as a user meets it: a test file, a pytest run, its outcome, what it printed and
the cassettes it left."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mockai import MockServer
from mockai.cassette import format as cassette_format
from mockai.config import Config
from mockai.errors import ConfigError
from mockai.scenario import respond, templates

# Loaded before any pytester run: pytester forgets the modules first imported during a run (see
# test_plugin_hunt_fixes.py).
assert cassette_format.CASSETTE_SUFFIXES and respond.StaleFixture and templates

pytest_plugins = ["pytester"]

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockServer]:
    """An OpenAI-compatible API to record from."""
    with MockServer(log_requests=False) as server:
        yield server


def asking(ids: list[str]) -> str:
    return f"""
import pytest

@pytest.mark.parametrize("question", {ids!r})
def test_ask(mockai, question):
    with mockai.openai_client(max_retries=0) as client:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{{"role": "user", "content": question}}]
        )
"""


def test_a_new_test_never_takes_the_older_name_of_another_tests_cassette(
    pytester: pytest.Pytester, upstream: MockServer
) -> None:
    """`test_ask[hello world]` was once named `test_ask[hello_world].yaml` (every character but
    `\\w.-[]` became `_`): that is `test_ask[hello_world]`'s own cassette now. Found as the new
    test's older cassette, the new test recorded into the other's file (new_episodes) or could not
    record at all (once: a no-match against the other's recording)."""
    pytester.makeini(INI)
    recording = ("-p", "no:cacheprovider", "--mockai-record-mode=once")
    recording += (f"--mockai-upstream={upstream.url}",)
    pytester.makepyfile(test_app=asking(["hello_world"]))
    pytester.runpytest(*recording).assert_outcomes(passed=1)
    folder = pytester.path / "cassettes" / "test_app"
    first = folder / "test_ask[hello_world].yaml"
    before = first.read_bytes()
    pytester.makepyfile(test_app=asking(["hello_world", "hello world"]))
    pytester.runpytest(*recording).assert_outcomes(passed=2)
    second = folder / "test_ask[hello world].yaml"
    assert {p.name for p in folder.iterdir()} == {first.name, second.name}
    assert first.read_bytes() == before  # the other test's recording, untouched
    assert b"hello world" in second.read_bytes()
    # Replayed, each test gets its own.
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_a_recording_run_of_one_test_records_into_its_own_name(
    pytester: pytest.Pytester, upstream: MockServer
) -> None:
    """Selected alone (by node id, or `-k`), `test_ask[hello world]` does not see
    `test_ask[hello_world]` among the collected tests; a recording run records into its own
    name whatever was selected (an older name is read in replay runs only)."""
    pytester.makeini(INI)
    recording = ("-p", "no:cacheprovider", f"--mockai-upstream={upstream.url}")
    pytester.makepyfile(test_app=asking(["hello_world", "hello world"]))
    pytester.runpytest(
        *recording, "--mockai-record-mode=once", "-k", "hello_world"
    ).assert_outcomes(passed=1)
    folder = pytester.path / "cassettes" / "test_app"
    first = folder / "test_ask[hello_world].yaml"
    before = first.read_bytes()
    alone = "test_app.py::test_ask[hello world]"
    pytester.runpytest(*recording, "--mockai-record-mode=new_episodes", alone).assert_outcomes(
        passed=1
    )
    assert first.read_bytes() == before
    assert b"hello world" in (folder / "test_ask[hello world].yaml").read_bytes()


def test_a_replay_run_never_forwards_a_test_without_a_cassette_upstream(
    pytester: pytest.Pytester, upstream: MockServer
) -> None:
    """`mockai_upstream` in the ini file (the API to record from) and a replay run: a test with
    no cassette was forwarded to it (offline, 502s retried; online, the test's key sent to the
    real API). Its answer is the server's own, as for any test without a cassette."""
    pytester.makeini(INI + f"mockai_upstream = {upstream.url}\n")
    pytester.makepyfile(
        test_app="""
def test_ask(mockai):
    with mockai.openai_client(max_retries=0) as client:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "not recorded"}]
        )
    assert [entry.source for entry in mockai.requests] == ["generator"]
"""
    )
    upstream.reset()
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("setup", "said"),
    [
        ({"ini": "mockai_strict = maybe\n"}, "mockai_strict in *: invalid truth value 'maybe'"),
        (
            {"conftest": "import pytest\n\n@pytest.fixture\ndef mockai_config():\n    {}\n"},
            "mockai_config must return a dict of options, got None",
        ),
        (
            {"marker": '@pytest.mark.mockai(scenario="s\\x00.yaml")\n'},
            "scenarios: 's\\x00.yaml' holds a NUL character, which no file name can",
        ),
    ],
    ids=["ini", "mockai_config", "nul"],
)
def test_bad_options_are_said_without_a_traceback(
    pytester: pytest.Pytester, setup: dict[str, str], said: str
) -> None:
    pytester.makeini(INI + setup.get("ini", ""))
    if "conftest" in setup:
        pytester.makeconftest(setup["conftest"])
    pytester.makepyfile(
        test_app="import pytest\n\n" + setup.get("marker", "") + "def test_it(mockai):\n    pass\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*mockai could not start:*", f"*{said}*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*options.py:*")


def test_a_nul_is_refused_in_paths_only() -> None:
    """A regex to redact or a model id is no file name: the NUL refusal is the paths'."""
    with pytest.raises(ConfigError, match="holds a NUL character"):
        Config().merged(cassette="a\0.yaml")
    with pytest.raises(ConfigError, match="holds a NUL character"):
        Config().merged(scenarios=("s\0.yaml",))
    assert Config().merged(redact=("secret\0",)).redact == ("secret\0",)
    assert Config().merged(models=("gpt-4o\0",)).models == ("gpt-4o\0",)
