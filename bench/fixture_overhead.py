"""What the `mockai` fixture costs per test, against the alternatives.

    python bench/fixture_overhead.py [--tests 300] [--runs 3]

Generates test files of N tests that each make one chat call, runs each with pytest in a
subprocess, and reports the marginal cost per test: (time of N tests - time of 1 test) / (N - 1),
so pytest's start-up and imports cancel out. Variants:

  sdk + session server     the openai SDK against one server shared by all tests (no isolation)
  sdk + mockai fixture     the openai SDK against a fresh server per test (the plugin)
  sdk + mockai.openai_client()   the same, with the fixture's cheap-to-build client
  sdk + in-process mock    the openai SDK with an httpx2.MockTransport returning a canned body
  httpx + respx            plain httpx mocked in-process by respx (respx cannot patch httpx2,
                           the SDK's HTTP library since openai 3.x)
  httpx + mockai fixture   plain httpx against a fresh server per test
  sdk + mockai fixture + shared cassette
                           the plugin, every test replaying one cassette of 500 recordings
                           (loaded once per process: cassette/shared.py)

The fixture's overhead is "sdk + mockai fixture" minus "sdk + session server": the price of a
fresh, isolated server per test. Whole-run times on a shared machine are noisy (building an SDK
client alone costs ~20 ms), so each run also times every test's setup and teardown inside pytest
(a conftest hook): the fixture's own price is the difference of those between the two variants.
Bounded: N tests per run, a few runs, a time limit per run.

Needs the test and bench extras: `pip install -e '.[test,bench]'` (respx is only in `bench`).
A variant whose modules are missing is left out, saying which to install.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import perf  # bench/perf.py: its cassette of distinct questions

CALL = (
    'client.chat.completions.create(model="gpt-4o-mini", '
    'messages=[{"role": "user", "content": "hi"}])'
)
# A question bench/perf.py's cassette recorded (`perf.cassette_body(0)`).
RECORDED_CALL = (
    'client.chat.completions.create(model="gpt-4o-mini", '
    'messages=[{"role": "user", "content": "Question 0"}])'
)
JSON_HEADERS = '{"content-type": "application/json"}'
ASK = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'

# Every variant builds its client inside each test, as tests usually do: building an SDK client
# (its SSL context) costs far more than a mockai server, and must not be mistaken for the fixture.
VARIANTS = {
    "sdk + session server": f"""
        import openai, pytest
        from mockai import MockServer

        @pytest.fixture(scope="session")
        def server():
            with MockServer(log_requests=False) as server:
                yield server

        @pytest.mark.parametrize("n", range(N))
        def test_call(server, n):
            with openai.OpenAI(base_url=server.url, api_key="sk-x", max_retries=0) as client:
                assert {CALL}.choices
        """,
    "sdk + mockai fixture": f"""
        import openai, pytest

        @pytest.mark.parametrize("n", range(N))
        def test_call(mockai, n):
            with openai.OpenAI(max_retries=0) as client:
                assert {CALL}.choices
        """,
    "sdk + mockai.openai_client()": f"""
        import pytest

        @pytest.mark.parametrize("n", range(N))
        def test_call(mockai, n):
            with mockai.openai_client(max_retries=0) as client:
                assert {CALL}.choices
        """,
    "sdk + in-process mock": f"""
        import httpx2, json, openai, pytest

        BODY = json.dumps({{"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
            "model": "gpt-4o-mini", "choices": [{{"index": 0, "finish_reason": "stop",
            "message": {{"role": "assistant", "content": "hello"}}}}]}}).encode()

        def answer(request):
            return httpx2.Response(200, content=BODY, headers={JSON_HEADERS})

        @pytest.mark.parametrize("n", range(N))
        def test_call(n):
            http = httpx2.Client(transport=httpx2.MockTransport(answer))
            with openai.OpenAI(base_url="http://mock/v1", api_key="sk-x", max_retries=0,
                               http_client=http) as client:
                assert {CALL}.choices
        """,
    "httpx + respx": f"""
        import httpx, pytest, respx

        BODY = {{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{{"index": 0,
                "message": {{"role": "assistant", "content": "hello"}}, "finish_reason": "stop"}}]}}

        @pytest.mark.parametrize("n", range(N))
        def test_call(n):
            with respx.mock:
                respx.post("http://mock/v1/chat/completions").respond(json=BODY)
                with httpx.Client() as client:
                    answer = client.post("http://mock/v1/chat/completions", json={ASK})
                assert answer.json()["choices"]
        """,
    "sdk + mockai fixture + shared cassette": f"""
        import openai, pytest

        @pytest.mark.mockai(cassette="shared.yaml")
        @pytest.mark.parametrize("n", range(N))
        def test_call(mockai, n):
            with openai.OpenAI(max_retries=0) as client:
                assert {RECORDED_CALL}.choices
        """,
    "httpx + mockai fixture": f"""
        import httpx, pytest

        @pytest.mark.parametrize("n", range(N))
        def test_call(mockai, n):
            with httpx.Client() as client:
                answer = client.post(mockai.url + "/chat/completions", json={ASK})
            assert answer.json()["choices"]
        """,
}


# Times every test's setup + teardown (whatever fixtures it uses) and writes them all.
CONFTEST = """
import json, time, pytest
SPENT = {}

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    began = time.perf_counter(); yield
    SPENT[item.nodeid] = time.perf_counter() - began

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    began = time.perf_counter(); yield
    SPENT[item.nodeid] += time.perf_counter() - began

def pytest_sessionfinish(session):
    with open("spent.json", "w") as out:
        json.dump(list(SPENT.values()), out)
"""


def setup_and_teardown(folder: Path) -> float:
    """Median seconds of a test's setup + teardown in the last run (see CONFTEST), the first
    test left out: its setup imports mockai (~0.4 s), once per run whatever the fixture."""
    spent = json.loads((folder / "spent.json").read_text())
    return statistics.median(spent[1:] or spent)


# What each variant imports beyond mockai and pytest, and the extra that installs it.
NEEDS = {
    "sdk + session server": ("openai",),
    "sdk + mockai fixture": ("openai",),
    "sdk + mockai.openai_client()": ("openai",),
    "sdk + in-process mock": ("openai", "httpx2"),
    "httpx + respx": ("httpx", "respx"),
    "httpx + mockai fixture": ("httpx",),
    "sdk + mockai fixture + shared cassette": ("openai",),
}
EXTRA = {"openai": "test", "httpx2": "test", "httpx": "test", "respx": "bench"}


SHARED_RECORDINGS = 500


class VariantFailed(Exception):
    """A variant's pytest run failed or timed out (the message says how)."""


def missing(name: str) -> list[str]:
    """The modules variant `name` needs that are not installed."""
    return [module for module in NEEDS[name] if importlib.util.find_spec(module) is None]


def run(folder: Path, source: str, tests: int) -> float:
    path = folder / "test_bench.py"
    path.write_text(textwrap.dedent(source).replace("range(N)", f"range({tests})"))
    began = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", str(path)],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        raise VariantFailed(f"{tests} tests did not finish in 300 s") from None
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        raise VariantFailed(result.stdout[-3000:] + result.stderr[-2000:])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tests", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.tests < 2 or args.runs < 1:
        parser.error("--tests must be at least 2 and --runs at least 1")
    per_test: dict[str, float] = {}
    fixtures: dict[str, float] = {}
    left_out: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "pytest.ini").write_text(
            "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        )
        (folder / "conftest.py").write_text(CONFTEST)
        perf.write_cassette(folder / "shared.yaml", SHARED_RECORDINGS)
        for name, source in VARIANTS.items():
            absent = missing(name)
            if absent:
                extras = sorted({EXTRA[module] for module in absent})
                left_out[name] = (
                    f"needs {', '.join(absent)}: pip install -e '.[{','.join(extras)}]'"
                )
                continue
            costs = []
            spent = []
            try:
                for _ in range(args.runs):
                    many = run(folder, source, args.tests)
                    spent.append(setup_and_teardown(folder))
                    one = run(folder, source, 1)
                    costs.append((many - one) / (args.tests - 1))
            except VariantFailed as error:
                left_out[name] = f"failed:\n{error}"
                continue
            per_test[name] = statistics.median(costs)
            fixtures[name] = min(spent)
    print(f"\nmarginal cost per test (median of {args.runs} runs of {args.tests} tests)\n")
    for name, cost in per_test.items():
        print(f"  {name:30} {cost * 1000:7.2f} ms")
    for name, why in left_out.items():
        print(f"  {name:30} left out: {why}")
    if {"sdk + mockai fixture", "sdk + session server"} <= per_test.keys():
        overhead = per_test["sdk + mockai fixture"] - per_test["sdk + session server"]
        print(
            "\nfixture overhead (fresh server per test vs one shared server): "
            f"{overhead * 1000:.2f} ms"
        )
    if {"sdk + mockai fixture", "sdk + session server"} <= fixtures.keys():
        own = fixtures["sdk + mockai fixture"] - fixtures["sdk + session server"]
        print(
            "the fixture's own setup + teardown per test, timed inside pytest (median test but "
            f"the first; fresh server minus shared server, best of {args.runs} runs): "
            f"{own * 1000:.2f} ms"
        )
    shared = "sdk + mockai fixture + shared cassette"
    if {shared, "sdk + mockai fixture"} <= fixtures.keys():
        own = fixtures[shared] - fixtures["sdk + mockai fixture"]
        print(
            f"a shared cassette of {SHARED_RECORDINGS} recordings, its setup per test over the "
            f"fixture's alone: {own * 1000:.2f} ms"
        )
    if {"httpx + mockai fixture", "httpx + respx"} <= per_test.keys():
        ratio = per_test["httpx + mockai fixture"] / per_test["httpx + respx"]
        print(f"httpx + mockai fixture vs httpx + respx: {ratio:.2f}x the time per test")
    if any(why.startswith("failed") for why in left_out.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
