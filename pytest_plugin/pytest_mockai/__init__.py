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
import sys
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from pytest_mockai.options import OPTION_NAMES, add_options, marker_line, merged_options

if TYPE_CHECKING:
    from pytest_mockai.fixture import MockaiFixture

__all__ = ["OPTION_NAMES", "MockaiFixture"]

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
# Cassette conflict files (`<cassette>.conflict`, `-2`, ...) the session's servers wrote; under
# pytest-xdist each worker sends its own to the controller, which says them all once.
_CONFLICTS = pytest.StashKey[set[str]]()
_WORKER_CONFLICTS = "mockai_conflicts"


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


def _test_failed_or_skipped(node: pytest.Item) -> bool:
    """Whether the test's outcome is already said: failed, xfailed (a skipped report with
    `wasxfail`), or skipped partway. A no-match report on top would say it twice, or turn a skip
    into an error; a test that passed, xpassed included, still gets it."""
    reports = node.stash.get(_REPORTS, {})
    return any(r.failed or r.skipped for r in reports.values())


@pytest.fixture
def mockai_config() -> dict[str, Any]:
    """Override to configure every `mockai` fixture in a module or conftest (returns options)."""
    return {}


@pytest.fixture
def mockai(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, mockai_config: dict[str, Any]
) -> Iterator[MockaiFixture]:
    """A fresh mockai server for this test; OPENAI_BASE_URL and OPENAI_API_KEY point at it."""
    from pytest_mockai.fixture import FAKE_API_KEY, MockaiFixture

    options = merged_options(request, mockai_config)  # (runs the pytest_mockai_configure hooks)
    if options.get("cassette") is not None and _pytest_recording_patches(request):
        pytest.fail(
            "mockai: this test has both @pytest.mark.vcr (pytest-recording) and the mockai "
            f"fixture with a cassette ({options['cassette']}). pytest-recording's vcrpy would "
            "record every call made in the test's process, mockai's own to the upstream with "
            "your API key included, into its cassette (by default that same file). Drop "
            "@pytest.mark.vcr from tests that use the mockai fixture (mockai replays "
            "pytest-recording's cassettes itself), or run with -p no:recording.",
            pytrace=False,
        )
    fixture = MockaiFixture.start(options)
    module_client = _fresh_module_client(monkeypatch)
    monkeypatch.setenv("OPENAI_BASE_URL", fixture.url)
    _bypass_proxies(monkeypatch, fixture.url)
    if "OPENAI_API_BASE" in os.environ:
        # LangChain's ChatOpenAI (and litellm) read it before OPENAI_BASE_URL: left as the user's
        # shell set it (a proxy, a gateway), their clients would call that, not this server.
        monkeypatch.setenv("OPENAI_API_BASE", fixture.url)
    # Recording forwards the client's key to the upstream: keep a real one if the user has it.
    recording = options.get("record_mode", "none") != "none" and options.get("upstream")
    if options.get("api_key") or not (recording and os.environ.get("OPENAI_API_KEY")):
        monkeypatch.setenv("OPENAI_API_KEY", options.get("api_key") or FAKE_API_KEY)
    if "AZURE_OPENAI_ENDPOINT" in os.environ:
        # `AzureOpenAI()` (and LangChain's `AzureChatOpenAI`) read it, never OPENAI_BASE_URL:
        # left as the user's shell set it, an Azure client built in the code under test called
        # their real resource, with their real key. (Set only when set: an app may choose Azure
        # by its presence.) The server's root, where Azure's `/openai/...` routes are.
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", fixture.base_url)
        if os.environ.get("AZURE_OPENAI_API_KEY") and (options.get("api_key") or not recording):
            monkeypatch.setenv("AZURE_OPENAI_API_KEY", options.get("api_key") or FAKE_API_KEY)
    try:
        yield fixture
    finally:
        try:
            fixture.close_clients()
            _close_module_client(module_client)
        finally:
            fixture.stop()
        _note_conflicts(request.config, fixture.new_conflict_files())
    assert isinstance(request.node, pytest.Item)
    if fixture.strict and not _test_failed_or_skipped(request.node):
        fixture.check_unmatched()


# The variables that send HTTP clients (httpx, so the SDKs; requests; urllib) through a proxy.
_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})


def _bypass_proxies(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Add the server's host to NO_PROXY while the test runs, when a proxy is set.

    httpx (the SDKs' client) sends even a loopback URL through `HTTP_PROXY` / `ALL_PROXY`, which
    a corporate network or a CI runner often sets: the proxy cannot reach the test's own
    loopback, and every call failed with "Connection error". Left alone without a proxy, so the
    environment the code under test sees is the one it had.
    """
    if not any(name.lower() in _PROXY_VARIABLES and value for name, value in os.environ.items()):
        return
    host = urlsplit(url).hostname or "127.0.0.1"
    # (urllib, which httpx asks, prefers `no_proxy` to `NO_PROXY` when both are set.)
    for name in [n for n in ("no_proxy", "NO_PROXY") if n in os.environ] or ["NO_PROXY"]:
        kept = os.environ.get(name, "").strip().rstrip(",")
        monkeypatch.setenv(name, f"{kept},{host}" if kept else host)


# What the `openai` module's own client (`openai.chat.completions.create(...)`, no `OpenAI()`)
# keeps in the module: the client, built once on first use and then kept for the process, and
# the settings its construction writes back (`api_key` and `http_client`, from the environment
# of the test that built it; `api_type`... as it found them).
_MODULE_CLIENT_STATE = (
    "_client",
    "http_client",
    "api_key",
    "admin_api_key",
    "organization",
    "project",
    "webhook_secret",
    "api_type",
    "api_version",
    "azure_endpoint",
)


def _fresh_module_client(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any] | None:
    """Make the `openai` module build its own client anew in this test, from the environment the
    fixture sets, and put its state back after the test (monkeypatch undoes it).

    Kept, the client a previous test built would send this test's calls to that test's server,
    stopped since (a connection error), and the key it read would outlive its test. Returns the
    state as it was, None if the SDK is not imported yet (`_close_module_client` then resets
    what the test's use of it wrote). Only looked up: importing the SDK here would cost every
    test that never uses it.
    """
    sdk = sys.modules.get("openai")
    if sdk is None:
        return None
    saved = {name: getattr(sdk, name) for name in _MODULE_CLIENT_STATE if hasattr(sdk, name)}
    for name, value in saved.items():
        monkeypatch.setattr(sdk, name, value)
    monkeypatch.setattr(sdk, "_client", None)
    return saved


def _close_module_client(saved: dict[str, Any] | None) -> None:
    """Close the HTTP client the module's own client opened in the test (it only ever talked to
    the test's server). If the SDK was first imported during the test, forget that client and
    the settings its construction wrote, as a fresh import has none; otherwise monkeypatch puts
    back those of before the test."""
    sdk = sys.modules.get("openai")
    if sdk is None or getattr(sdk, "_client", None) is None:
        return
    http = getattr(sdk, "http_client", None)
    if http is not None and http is not (saved or {}).get("http_client"):
        http.close()
    if saved is None:
        for name in ("_client", "http_client", "api_key", "organization", "project"):
            if hasattr(sdk, name):
                setattr(sdk, name, None)


def _pytest_recording_patches(request: pytest.FixtureRequest) -> bool:
    """Whether pytest-recording puts vcrpy in this test's process: its autouse `vcr` fixture
    does for a test marked `vcr`, unless `--disable-recording` (or `-p no:recording`, which
    takes the fixture away). vcrpy then records every HTTP call made in-process, mockai's own
    to the upstream included, into the file mockai records into."""
    if request.node.get_closest_marker("vcr") is None or "vcr" not in request.fixturenames:
        return False
    return not request.config.getoption("disable_recording", default=False)


@pytest.fixture(autouse=True)
def _mockai_first(request: pytest.FixtureRequest) -> None:
    """Start a test's `mockai` server before its other function-scoped fixtures.

    pytest sets fixtures up in the order the test names them, so `def test(client, mockai)`
    would build `client` before OPENAI_BASE_URL points at the mock: it would call the real API
    with the user's key. Autouse fixtures come first among a test's function-scoped fixtures
    (after every higher-scoped one, which cannot depend on `mockai` anyway), and a plugin's before
    any conftest's; from here `mockai` is set up with its own dependencies, as pytest resolves
    them.

    A test marked `mockai` gets its server without naming the fixture, as a test marked `vcr`
    gets its cassette from pytest-recording: a test moved from `@pytest.mark.vcr` to
    `@pytest.mark.mockai(cassette=True)` as it was would otherwise ignore the marker and call the
    real API with the user's key. A test with neither pays a membership test and a marker lookup.
    """
    if "mockai" in request.fixturenames or request.node.get_closest_marker("mockai") is not None:
        request.getfixturevalue("mockai")


@pytest.fixture
def make_mockai_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A factory for extra servers in one test: `make_mockai_server(seed=3)`; all stop after it."""
    from mockai import MockServer

    started: list[MockServer] = []

    def make(**options: Any) -> MockServer:
        # Quiet unless asked otherwise (`log_requests=True`, or its alias `quiet=False`): given
        # both ways, the option was a TypeError or a ConfigError.
        if "quiet" not in options:
            options.setdefault("log_requests", False)
        server = MockServer(**options)
        started.append(server.start())
        return server

    yield make
    _stop_all(started)


def _stop_all(servers: Iterable[Any]) -> None:
    """Stop every server still running (a test may have stopped one itself, to see its app cope
    with the API going away); one that fails to stop does not leave the others running."""
    errors: list[Exception] = []
    for server in servers:
        if not server.running:
            continue
        try:
            server.stop()
        except Exception as error:
            errors.append(error)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        said = "; ".join(f"{type(e).__name__}: {e}" for e in errors)
        raise RuntimeError(f"mockai: {len(errors)} servers failed to stop: {said}") from errors[0]


def _note_conflicts(config: pytest.Config, files: Iterable[Path]) -> None:
    config.stash.setdefault(_CONFLICTS, set()).update(str(path) for path in files)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a pytest-xdist worker, hand the conflict files to the controller (it says them)."""
    output = getattr(session.config, "workeroutput", None)
    conflicts = session.config.stash.get(_CONFLICTS, set())
    if output is not None and conflicts:
        output[_WORKER_CONFLICTS] = sorted(conflicts)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist's controller: a worker finished; keep the conflict files it reported."""
    found = getattr(node, "workeroutput", {}).get(_WORKER_CONFLICTS, ())
    if found:
        _note_conflicts(node.config, (Path(name) for name in found))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which recordings went to conflict files instead of their cassettes.

    A warning, not a failure: the tests got the upstream's real answers, and nothing recorded is
    lost (docs/cassettes.md: the cassette is never overwritten, the session is saved beside it
    and mockai says so). But until they are merged, a replay misses those recordings.
    """
    conflicts = terminalreporter.config.stash.get(_CONFLICTS, set())
    if not conflicts:
        return
    terminalreporter.write_sep("=", "mockai: cassette conflicts", yellow=True, bold=True)
    terminalreporter.write_line(
        f"{len(conflicts)} recording session(s) were saved to conflict files, not into their "
        "cassettes, which changed on disk while they recorded (several pytest-xdist workers "
        "recording one cassette?). Until merged, a replay misses these recordings:"
    )
    for name in sorted(conflicts):
        terminalreporter.write_line(f"  {name}")
    terminalreporter.write_line(
        "Merge each into its cassette and delete it, or delete them and record again without "
        "xdist (-n 0)."
    )
