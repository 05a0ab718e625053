"""The pytest plugin's fixes from the tenth bug hunt, each through pytester as a user meets it: a
test file, a pytest run, its outcome and what it printed."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture
def run(pytester: pytest.Pytester):  # type: ignore[no-untyped-def]
    """Run a test file in a fresh pytest session (in-process) and return the result."""

    def go(source: str, *args: str, ini: str = "") -> pytest.RunResult:
        pytester.makeini(INI + ini)
        pytester.makepyfile(test_user=source)
        return pytester.runpytest("-p", "no:cacheprovider", *args)

    return go


def test_the_openai_modules_own_client_talks_to_each_tests_server(run) -> None:  # type: ignore[no-untyped-def]
    # `openai.chat.completions.create(...)` builds one client on first use and keeps it for the
    # process: the second test's call went to the first test's server, stopped since.
    result = run(
        """
        import openai, pytest

        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_module_client(mockai, n):
            reply = openai.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], timeout=5
            )
            assert reply.choices[0].message.content
            mockai.assert_called(1)

        def test_after_them_the_module_is_as_before():
            assert openai._client is None
            assert openai.api_key is None  # (not the fixture's fake key)
            assert openai.http_client is None
        """,
        "-W",
        "error",
    )
    result.assert_outcomes(passed=4)


def test_the_ini_files_scenarios_are_found_from_any_folder(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `mockai_scenario` was read relative to the folder pytest ran in: the same pytest.ini failed
    # every test with "no such file" when run from the tests' folder (`cd tests && pytest`).
    pytester.makeini(INI + "mockai_scenario = scenarios/faq.yaml\n")
    pytester.mkdir("scenarios").joinpath("faq.yaml").write_text(
        "mockai: 1\nrules:\n  - name: hi\n    match: {user: hi}\n    reply: hello\n"
    )
    tests = pytester.mkdir("tests")
    tests.joinpath("test_user.py").write_text(
        "import openai\n\n"
        "def test_scripted(mockai):\n"
        "    with mockai.openai_client(max_retries=0) as client:\n"
        "        reply = client.chat.completions.create(\n"
        '            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]\n'
        "        )\n"
        '    assert reply.choices[0].message.content == "hello"\n'
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    monkeypatch.chdir(tests)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_langchain_talks_to_the_mock_whatever_openai_api_base_says(
    run, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    # LangChain's ChatOpenAI reads OPENAI_API_BASE before OPENAI_BASE_URL: set in the user's
    # shell (a proxy), it sent the test's calls there instead of to the test's server.
    monkeypatch.setenv("OPENAI_API_BASE", "http://127.0.0.1:9/v1")
    result = run(
        """
        import os
        from langchain_openai import ChatOpenAI

        def test_chat_openai(mockai):
            mockai.add_rule({"match": {"user": "hi"}, "reply": "hello"})
            llm = ChatOpenAI(model="gpt-4o-mini", max_retries=0, timeout=5)
            assert llm.invoke("hi").content == "hello"

        def test_after_it_the_users_value_is_back():
            assert os.environ["OPENAI_API_BASE"] == "http://127.0.0.1:9/v1"
        """
    )
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("proxy", ["HTTP_PROXY", "all_proxy"])
def test_clients_reach_the_server_past_a_proxy_the_environment_sets(
    run, monkeypatch: pytest.MonkeyPatch, proxy: str
) -> None:  # type: ignore[no-untyped-def]
    # httpx sends a loopback URL through HTTP_PROXY / ALL_PROXY too (a corporate network's, a CI
    # runner's): the proxy cannot reach the test's loopback, so every call was a connection error.
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(proxy, "http://127.0.0.1:9")  # (nothing listens there)
    result = run(
        """
        import os, openai

        def test_sdk_client(mockai):
            with openai.OpenAI(max_retries=0, timeout=5) as client:
                assert client.models.list().data

        def test_fixture_client(mockai):
            with mockai.openai_client(max_retries=0, timeout=5) as client:
                assert client.models.list().data

        def test_after_them_no_proxy_is_unset_again():
            assert "NO_PROXY" not in os.environ
        """
    )
    result.assert_outcomes(passed=3)


def test_a_marked_test_gets_its_server_without_naming_the_fixture(
    run, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    # As `@pytest.mark.vcr` does in pytest-recording: a test moved to `@pytest.mark.mockai(...)`
    # as it was ignored the marker and called the real API (with the user's real key).
    pytester.makefile(".yaml", faq="mockai: 1\nrules:\n  - match: {user: hi}\n    reply: hello\n")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    result = run(
        """
        import os, openai, pytest

        @pytest.mark.mockai(scenario="faq.yaml")
        def test_marked_only():
            with openai.OpenAI(max_retries=0) as client:
                reply = client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
            assert reply.choices[0].message.content == "hello"

        def test_unmarked_and_without_the_fixture_gets_none():
            assert "OPENAI_BASE_URL" not in os.environ
        """
    )
    result.assert_outcomes(passed=2)


def test_the_factory_takes_the_logging_options(run) -> None:  # type: ignore[no-untyped-def]
    # It passed `log_requests=False` itself: `log_requests=True` was a TypeError (given twice),
    # `quiet=False` a ConfigError (an option and its alias).
    result = run(
        """
        import pytest

        @pytest.mark.parametrize(
            ("options", "logs"),
            [({"log_requests": True}, True), ({"quiet": False}, True), ({"quiet": True}, False),
             ({}, False)],
        )
        def test_logging(make_mockai_server, options, logs):
            server = make_mockai_server(**options)
            assert server.running
            assert server.config.log_requests is logs
        """
    )
    result.assert_outcomes(passed=4)


def test_a_tests_scenarios_beats_its_modules_scenario(run, pytester: pytest.Pytester) -> None:  # type: ignore[no-untyped-def]
    # `scenarios=` (MockServer's name, "the same" as `scenario=`) went to the server as its own
    # key, which the module's `scenario=` then replaced: the closest marker lost.
    for name, reply in (("faq", "module"), ("own", "test")):
        pytester.makefile(
            ".yaml", **{name: f"mockai: 1\nrules:\n  - match: {{user: hi}}\n    reply: {reply}\n"}
        )
    result = run(
        """
        import pytest

        pytestmark = pytest.mark.mockai(scenario="faq.yaml")

        def ask(mockai):
            with mockai.openai_client(max_retries=0) as client:
                reply = client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
            return reply.choices[0].message.content

        @pytest.mark.mockai(scenarios="own.yaml")
        def test_own_scenarios(mockai):
            assert ask(mockai) == "test"

        def test_the_modules(mockai):
            assert ask(mockai) == "module"

        @pytest.mark.mockai(scenario="own.yaml", scenarios="faq.yaml")
        def test_both_spellings_at_once(mockai):
            pass
        """
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*scenario= and scenarios= name the same option*"])


def test_quiet_and_log_requests_in_two_layers_the_closer_wins(run) -> None:  # type: ignore[no-untyped-def]
    # `quiet=` is `log_requests=` turned around: one in the module's marker (or `mockai_config`)
    # and the other in the test's reached the server together, a ConfigError at setup.
    result = run(
        """
        import pytest

        pytestmark = pytest.mark.mockai(quiet=True)

        @pytest.mark.mockai(log_requests=True)
        def test_own_marker(mockai):
            assert mockai.server.config.log_requests is True

        def test_the_modules(mockai):
            assert mockai.server.config.log_requests is False

        class TestConfigured:
            @pytest.fixture
            def mockai_config(self):
                return {"log_requests": True}

            def test_the_marker_beats_the_fixture(self, mockai):
                assert mockai.server.config.log_requests is False
        """
    )
    result.assert_outcomes(passed=3)
