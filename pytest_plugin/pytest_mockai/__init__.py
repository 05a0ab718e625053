"""pytest-mockai: a fresh mockai server for every test, in one fixture.

    def test_hello(mockai):
        mockai.add_rule({"match": {"user": "hi"}, "reply": {"content": "hello"}})
        client = openai.OpenAI()          # OPENAI_BASE_URL / OPENAI_API_KEY point at the server
        ...

Registered as the pytest11 entry point `mockai` (`-p no:mockai` turns it off). Configuration, one
precedence rule, later wins:

    ini `mockai_*` < `--mockai-*` < the `mockai_config` fixture < `@pytest.mark.mockai(...)`

(markers merged key by key, module < class < test; a None value means "not set").

This module only imports pytest: mockai itself (aiohttp, faker...) loads when a test first uses
the fixture, so installing the plugin costs nothing to test runs that do not use it.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mockai.options import OPTION_NAMES, add_options, marker_line, merged_options

if TYPE_CHECKING:
    from pytest_mockai.fixture import MockaiFixture

__all__ = ["OPTION_NAMES", "MockaiFixture"]

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """The `--mockai-*` options and `mockai_*` ini keys."""
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register `pytest_mockai_configure`, a hook to adjust every server's options."""
    from pytest_mockai import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_configure(config: pytest.Config) -> None:
    """Register the `mockai` marker with its signature."""
    config.addinivalue_line("markers", marker_line())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's report, so the fixture's teardown knows whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _test_failed(node: pytest.Item) -> bool:
    reports = node.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


@pytest.fixture
def mockai_config() -> dict[str, Any]:
    """Override to configure every `mockai` fixture in a module or conftest (returns options)."""
    return {}


@pytest.fixture
def mockai(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, mockai_config: dict[str, Any]
) -> Iterator[MockaiFixture]:
    """A fresh mockai server for this test; OPENAI_BASE_URL and OPENAI_API_KEY point at it."""
    from pytest_mockai.fixture import MockaiFixture

    options = merged_options(request, mockai_config)
    request.config.hook.pytest_mockai_configure(options=options, request=request)
    fixture = MockaiFixture.start(options)
    monkeypatch.setenv("OPENAI_BASE_URL", fixture.url)
    # Recording forwards the client's key to the upstream: keep a real one if the user has it.
    recording = options.get("record_mode", "none") != "none" and options.get("upstream")
    if options.get("api_key") or not (recording and os.environ.get("OPENAI_API_KEY")):
        monkeypatch.setenv("OPENAI_API_KEY", options.get("api_key") or "sk-mockai-test")
    try:
        yield fixture
    finally:
        fixture.stop()
    assert isinstance(request.node, pytest.Item)
    if fixture.strict and not _test_failed(request.node):
        fixture.check_unmatched()


@pytest.fixture
def make_mockai_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A factory for extra servers in one test: `make_mockai_server(seed=3)`; all stop after it."""
    from mockai import MockServer

    started: list[MockServer] = []

    def make(**options: Any) -> MockServer:
        server = MockServer(log_requests=False, **options)
        started.append(server.start())
        return server

    yield make
    for server in started:
        server.stop()
