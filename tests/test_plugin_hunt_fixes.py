"""The pytest plugin's fixes from the second bug hunt, each exercised through pytester the way a
user meets it: a test file, a pytest run, its outcome and what it printed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_mockai.options import cassette_name

from mockai import MockServer
from mockai.cassette import format as cassette_format
from mockai.scenario import respond, templates

# Loaded before any pytester run: pytester forgets the modules first imported during a run, and
# what outlives it would keep the first copies (PyYAML's C loader refuses the fresh `yaml`
# module's tags; the rule book, caching the reply machinery, would not catch a fresh
# StaleFixture).
assert cassette_format.CASSETTE_SUFFIXES and respond.StaleFixture and templates

pytest_plugins = ["pytester"]

EMPTY_CASSETTE = "interactions: []\nversion: 1\n"


@pytest.fixture
def run(pytester: pytest.Pytester):  # type: ignore[no-untyped-def]
    """Run a test file in a fresh pytest session (in-process) and return the result."""

    def go(source: str, *args: str) -> pytest.RunResult:
        pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
        pytester.makepyfile(test_user=source)
        return pytester.runpytest("-p", "no:cacheprovider", *args)

    return go


@pytest.fixture
def upstream() -> Iterator[MockServer]:
    """An OpenAI-compatible API to record from (another mockai, answering anything)."""
    with MockServer(log_requests=False) as server:
        yield server


SWALLOWED = """
    import httpx, openai, pytest

    def swallowed_miss(mockai):
        with mockai.openai_client(max_retries=0) as client:
            try:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "unscripted"}]
                )
            except openai.BadRequestError:
                pass  # the app's own fallback hides it
"""


def test_strict_mode_sees_misses_the_journal_forgot(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        SWALLOWED
        + """
    def test_reset_after_the_miss(mockai):
        mockai.add_rule({"match": {"user": "known"}, "reply": "ok"})
        swallowed_miss(mockai)
        mockai.reset()
        assert mockai.unmatched == []

    @pytest.mark.mockai(journal_size=3)
    def test_miss_pushed_out_of_the_journal(mockai):
        mockai.add_rule({"match": {"user": "known"}, "reply": "ok"})
        swallowed_miss(mockai)
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "known"}]}
        for _ in range(3):
            assert httpx.post(mockai.url + "/chat/completions", json=body).status_code == 200
        assert mockai.unmatched == []

    @pytest.mark.mockai(journal_size=3)
    def test_one_kept_one_forgotten(mockai):
        mockai.add_rule({"name": "known", "match": {"user": "known"}, "reply": "ok"})
        swallowed_miss(mockai)
        mockai.reset()
        swallowed_miss(mockai)

    def test_no_miss_no_failure(mockai):
        mockai.add_rule({"match": {"user": "unscripted"}, "reply": "ok"})
        with mockai.openai_client(max_retries=0) as client:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "unscripted"}]
            )
        mockai.reset()
    """
    )
    result.assert_outcomes(passed=4, errors=3)
    # The report's lines in the ERRORS section only: under CI=true (or BUILD_NUMBER) pytest
    # prints each error's whole message again in the short summary, not one line of it.
    lines = result.outlines
    summary = [i for i, line in enumerate(lines) if "short test summary info" in line]
    lines = lines[: summary[0]] if summary else lines
    forgotten = "1 of them left the journal with their details"
    assert sum(line.startswith("mockai: 1 request(s) matched no rule") for line in lines) == 2
    assert sum(line.startswith("mockai: 2 request(s) matched no rule") for line in lines) == 1
    assert sum(line.startswith(forgotten) for line in lines) == 3
    # Why they left, and what keeps them: a journal too small (journal_size=3 above) or a reset.
    bound = "it keeps the latest 3 requests (more with the marker's `journal_size=`)"
    assert any(line.startswith(forgotten) and bound in line for line in lines)
    # The miss still in the journal keeps its no-match report (the closest rule, by name).
    result.stdout.fnmatch_lines(["*mockai: 2 request(s)*", "*rule 'known'*", forgotten + "*"])


def test_a_client_fixture_named_before_mockai_talks_to_the_mock(
    run, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-users-real-key")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    result = run(
        """
        import os, openai, pytest

        @pytest.fixture
        def client():
            with openai.OpenAI(max_retries=0) as client:
                yield client

        @pytest.fixture
        def mockai_config(tmp_path):
            (tmp_path / "configured").write_text("yes")
            return {}

        @pytest.fixture(scope="module")
        def module_base_url():
            return os.environ.get("OPENAI_BASE_URL")

        def test_client_named_first(client, mockai):
            assert str(client.base_url).rstrip("/") == mockai.url
            assert client.api_key == "sk-mockai-test"
            mockai.add_rule({"match": {"user": "hi"}, "reply": "hello"})
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.choices[0].message.content == "hello"

        def test_a_dependency_of_mockai_named_first(tmp_path, client, mockai):
            assert (tmp_path / "configured").read_text() == "yes"  # one tmp_path, set up once
            assert str(client.base_url).rstrip("/") == mockai.url

        def test_higher_scoped_fixtures_still_come_first(module_base_url, client, mockai):
            assert module_base_url is None
            assert str(client.base_url).rstrip("/") == mockai.url

        class TestInAClass:
            @pytest.fixture
            def own_client(self):
                with openai.OpenAI(max_retries=0) as client:
                    yield client

            def test_class_fixture_named_first(self, own_client, mockai):
                assert str(own_client.base_url).rstrip("/") == mockai.url

        def test_without_mockai(client):
            assert client.api_key == "sk-the-users-real-key"
        """
    )
    result.assert_outcomes(passed=5)


def test_cassette_false_is_neither_recorded_nor_forwarded(run, upstream: MockServer) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import openai, pytest

        @pytest.mark.mockai(cassette=False)
        def test_rules_only(mockai):
            mockai.add_rule({"match": {"user": "known"}, "reply": "scripted"})
            with mockai.openai_client(max_retries=0) as client:
                with pytest.raises(openai.BadRequestError, match="no rule or recording matches"):
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "unscripted"}]
                    )
            assert mockai.server.config.upstream is None
            assert mockai.server.config.record_mode == "none"
        """,
        "--mockai-record-mode=once",
        f"--mockai-upstream={upstream.url}",
        "--mockai-strict=false",
    )
    result.assert_outcomes(passed=1)
    assert upstream.requests == []


PARAMETRIZED = """
    import pytest

    @pytest.mark.parametrize("question", ["capital of France?", "a/b: c"])
    def test_ask(mockai, question):
        with mockai.openai_client(max_retries=0) as client:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{{"role": "user", "content": question}}]
            )
        assert mockai.requests[0].source == "{source}"
"""


def test_parametrized_cassettes_have_pytest_recordings_names(
    pytester: pytest.Pytester, upstream: MockServer
) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_app=PARAMETRIZED.format(source="upstream"))
    record = [f"--mockai-upstream={upstream.url}", "--mockai-record-mode=once"]
    pytester.runpytest("-p", "no:cacheprovider", *record).assert_outcomes(passed=2)
    folder = pytester.path / "cassettes" / "test_app"
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["test_ask[a-b- c].yaml", "test_ask[capital of France-].yaml"]
    # Replayed under those names; and a cassette kept under the name earlier versions gave
    # (everything outside [\w.-[]] as "_") still replays while the new name is missing.
    (folder / "test_ask[a-b- c].yaml").rename(folder / "test_ask[a_b__c].yaml")
    pytester.makepyfile(test_app=PARAMETRIZED.format(source="cassette"))
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def _pytest_recordings_name(class_name: str | None, test_name: str) -> str:
    """kiwicom/pytest-recording's `get_default_cassette_name`, as it is written there."""
    name = f"{class_name}.{test_name}" if class_name else test_name
    for character in r"<>?%*:|\"'/\\":
        name = name.replace(character, "-")
    return name


@given(
    class_name=st.none() | st.from_regex(r"[A-Za-z_]\w{0,12}", fullmatch=True),
    test_name=st.text(max_size=40),
)
def test_cassette_names_follow_pytest_recordings_rule(
    class_name: str | None, test_name: str
) -> None:
    assert cassette_name(class_name, test_name) == _pytest_recordings_name(class_name, test_name)


def test_a_folders_configure_hook_stays_in_that_folder(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.mkpydir("a")
    pytester.mkpydir("b")
    (pytester.path / "a" / "conftest.py").write_text(
        "def pytest_mockai_configure(options, request):\n    options['seed'] = 42\n"
    )
    (pytester.path / "a" / "test_a.py").write_text(
        "def test_a(mockai):\n    assert mockai.server.config.seed == 42\n"
    )
    (pytester.path / "b" / "test_b.py").write_text(
        "def test_b(mockai):\n    assert mockai.server.config.seed != 42\n"
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


CONFLICTING = """
    import pathlib, pytest

    CASSETTE = pathlib.Path(__file__).parent / "shared.yaml"
    pytestmark = pytest.mark.mockai(
        cassette="shared.yaml", record_mode="new_episodes", upstream="{upstream}"
    )

    @pytest.mark.parametrize("question", ["one", "two"])
    def test_edited_while_recording(mockai, question):
        CASSETTE.write_text(CASSETTE.read_text() + "\\n")  # saved under the recorder's feet
        with mockai.openai_client(max_retries=0) as client:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{{"role": "user", "content": question}}]
            )
"""


def test_recordings_saved_to_conflict_files_are_reported(
    pytester: pytest.Pytester, upstream: MockServer
) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makefile(".yaml", shared=EMPTY_CASSETTE)
    pytester.makepyfile(test_rec=CONFLICTING.format(upstream=upstream.url))
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:warnings")
    result.assert_outcomes(passed=2)
    conflicts = sorted(path.name for path in pytester.path.glob("shared.yaml.conflict*"))
    assert conflicts == ["shared.yaml.conflict", "shared.yaml.conflict-2"]
    result.stdout.fnmatch_lines(
        [
            "*= mockai: cassette conflicts =*",
            "2 recording session(s) were saved to conflict files*",
            f"  {pytester.path / 'shared.yaml.conflict'}",
            f"  {pytester.path / 'shared.yaml.conflict-2'}",
            "Merge each into its cassette and delete it, or *record again without xdist (-n 0).",
        ]
    )
    # Under pytest-xdist the workers' conflict files are said by the controller.
    for path in pytester.path.glob("shared.yaml.conflict*"):
        path.unlink()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*= mockai: cassette conflicts =*", "2 recording session(s)*"])


def test_strict_fixtures_is_the_servers_strict(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import openai, pytest

        RULE = {
            "match": {"user": "weather"},
            "reply": {"tool_calls": [{"name": "get_weather", "arguments": {"city": 5}}]},
        }
        TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]

        def ask(mockai):
            mockai.add_rule(RULE)
            with mockai.openai_client(max_retries=0) as client:
                return client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "weather"}],
                    tools=TOOLS,
                )

        @pytest.mark.mockai(strict_fixtures=True)
        def test_stale_fixture_is_an_error(mockai):
            assert mockai.server.config.strict is True
            assert mockai.strict is True  # the plugin's own strict mode is another option
            with pytest.raises(openai.BadRequestError) as caught:
                ask(mockai)
            assert caught.value.code == "mockai_stale_fixture"

        def test_off_by_default(mockai):
            assert mockai.server.config.strict is False
            ask(mockai)
        """
    )
    result.assert_outcomes(passed=2)


def test_configure_hook_sets_the_cassette_like_a_marker(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(
        """
        WANTED = {"test_false": False, "test_true": True, "test_path": "shared.yaml"}

        def pytest_mockai_configure(options, request):
            if request.node.name in WANTED:
                options["cassette"] = WANTED[request.node.name]
        """
    )
    pytester.mkpydir("sub")
    (pytester.path / "sub" / "shared.yaml").write_text(EMPTY_CASSETTE)
    (pytester.path / "sub" / "test_hooked.py").write_text(
        "import pathlib\n\n"
        "def test_false(mockai):\n"
        "    assert mockai.server.config.cassette is None\n\n"
        "def test_true(mockai):\n"
        "    pass\n\n"
        "def test_path(mockai):\n"
        "    here = pathlib.Path(__file__).parent\n"
        "    assert str(mockai.server.config.cassette) == str(here / 'shared.yaml')\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*no recording at *sub/cassettes/test_hooked/test_true.yaml*"])
    assert "TypeError" not in result.stdout.str()


def test_tests_may_stop_their_servers_themselves(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import httpx, openai, pytest

        LEFT = []

        def test_outage(make_mockai_server):
            primary, backup = make_mockai_server(seed=1), make_mockai_server(seed=2)
            LEFT.append(backup.url)
            primary.stop()  # the API goes away mid-test
            with openai.OpenAI(base_url=primary.url, api_key="x", max_retries=0) as client:
                with pytest.raises(openai.APIConnectionError):
                    client.models.list()
            with openai.OpenAI(base_url=backup.url, api_key="x") as client:
                assert client.models.list().data

        def test_the_backup_was_stopped_after_it():
            with pytest.raises(httpx.ConnectError):
                httpx.get(LEFT[0] + "/models")

        def test_fixture_server_stopped(mockai):
            mockai.server.stop()
            with mockai.openai_client(max_retries=0) as client:
                with pytest.raises(openai.APIConnectionError):
                    client.models.list()
        """
    )
    result.assert_outcomes(passed=3)


def test_assert_called_takes_n_as_documented(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import pytest

        def test_counts(mockai):
            with mockai.openai_client(max_retries=0) as client:
                client.models.list()
            mockai.assert_called(n=1)
            mockai.assert_called(1, method="GET")
            mockai.assert_called(times=1)
            with pytest.raises(AssertionError, match="expected exactly 2 request"):
                mockai.assert_called(n=2)
            with pytest.raises(TypeError, match="n=1 and times=2 disagree"):
                mockai.assert_called(n=1, times=2)
        """
    )
    result.assert_outcomes(passed=1)


def test_requests_and_timeline_go_by_arrival(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import json, re, socket
        from urllib.parse import urlsplit

        def test_a_slow_body_is_listed_when_it_arrived(mockai):
            address = urlsplit(mockai.url)
            body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "a"}]})
            head = (
                f"POST /v1/chat/completions HTTP/1.1\\r\\nHost: x\\r\\n"
                f"Authorization: Bearer k\\r\\nContent-Type: application/json\\r\\n"
                f"Content-Length: {len(body)}\\r\\nConnection: close\\r\\n\\r\\n"
            )
            with socket.create_connection((address.hostname, address.port), timeout=10) as slow:
                # Request A starts arriving first, but its body is only finished after B is
                # answered: the server journals B first (it handles it first).
                slow.sendall((head + body[:10]).encode())
                with mockai.openai_client(max_retries=0) as client:
                    client.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": "b"}]
                    )
                slow.sendall(body[10:].encode())
                assert slow.recv(65536).startswith(b"HTTP/1.1 200")
            journal = mockai.server.requests
            assert [e.body["messages"][0]["content"] for e in journal] == ["b", "a"]
            seen = mockai.requests
            assert [e.body["messages"][0]["content"] for e in seen] == ["a", "b"]
            lines = mockai.timeline().splitlines()
            assert [line.split()[0] for line in lines] == [f"#{seen[0].seq}", f"#{seen[1].seq}"]
            assert not any(re.search(r"\\+ *-", line) for line in lines), lines
        """
    )
    result.assert_outcomes(passed=1)
