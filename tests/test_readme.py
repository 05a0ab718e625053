"""The README's pytest examples, run as a new user would run them (copied into a test file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mockai import MockServer

pytest_plugins = ["pytester"]

README = Path(__file__).parents[1] / "README.md"


def plugin_examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The pytest plugin", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_has_the_four_examples() -> None:
    names = [re.search(r"def (test_\w+)", block).group(1) for block in plugin_examples()]  # type: ignore[union-attr]
    assert names == [
        "test_hello",
        "test_retries_after_rate_limits",
        "test_stream_cut_off",
        "test_summarize",
    ]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_example_passes(pytester: pytest.Pytester, index: int) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_app=plugin_examples()[index])
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_cassette_example_records_once_then_replays_offline(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_app=plugin_examples()[3])
    # Without a recording, CI fails loudly.
    missing = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    missing.assert_outcomes(errors=1)
    missing.stdout.fnmatch_lines(["*no recording at*test_summarize.yaml*"])
    # Record once from an "upstream" (another mockai standing in for the real API) ...
    with MockServer(log_requests=False) as upstream:
        recorded = pytester.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "--mockai-record-mode=once",
            f"--mockai-upstream={upstream.url}",
        )
        recorded.assert_outcomes(passed=1)
        assert len(upstream.requests) == 1
    cassette = pytester.path / "cassettes" / "test_app" / "test_summarize.yaml"
    assert cassette.exists() and b"sk-mockai-test" not in cassette.read_bytes()
    # ... then replay with the upstream gone.
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
