"""The pytest plugin, exercised the way users meet it: test files run by pytester."""

from __future__ import annotations

import pytest

from mockai import MockServer

pytest_plugins = ["pytester"]


@pytest.fixture
def run(pytester: pytest.Pytester):  # type: ignore[no-untyped-def]
    """Run a test file in a fresh pytest session (in-process) and return the result."""

    def go(source: str, *args: str, ini: str = "") -> pytest.RunResult:
        pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n" + ini)
        pytester.makepyfile(test_user=source)
        return pytester.runpytest("-p", "no:cacheprovider", *args)

    return go


def test_fixture_points_clients_at_a_fresh_server(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import os, openai

        def test_one(mockai):
            assert os.environ["OPENAI_BASE_URL"] == mockai.url
            assert mockai.url.endswith("/v1")
            with openai.OpenAI() as client:
                reply = client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
            assert reply.choices[0].message.content
            assert len(mockai.requests) == 1
            assert mockai.requests[0].body["messages"][0]["content"] == "hi"
            mockai.assert_called(1, endpoint="chat")

        def test_two_gets_its_own_server(mockai):
            assert mockai.requests == []
        """
    )
    result.assert_outcomes(passed=2)


def test_client_created_in_another_fixture(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import openai, pytest

        @pytest.fixture
        def client(mockai):
            with openai.OpenAI(max_retries=0) as client:
                yield client

        def test_uses_it(client, mockai):
            client.models.list()
            mockai.assert_called(1)
        """
    )
    result.assert_outcomes(passed=1)


def test_async_tests(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import openai, pytest

        @pytest.mark.asyncio
        async def test_asyncio(mockai):
            async with openai.AsyncOpenAI() as client:
                reply = await client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
                )
                assert [c async for c in reply]
            assert len(mockai.requests) == 1

        @pytest.mark.anyio
        async def test_anyio(mockai):
            async with openai.AsyncOpenAI() as client:
                assert (await client.models.retrieve("gpt-4o")).id == "gpt-4o"

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """,
        "-p",
        "asyncio",
    )
    result.assert_outcomes(passed=2)


def test_precedence_ini_cli_fixture_marker(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import pytest

        @pytest.fixture
        def mockai_config():
            return {"chaos": "rate_limit=0", "models": ["from-fixture"]}

        def test_ini_and_cli(mockai):
            config = mockai.server.config
            assert config.seed == 22            # --mockai-seed beats the ini's 11
            assert config.record_mode == "none"
            assert config.models == ("from-fixture",)

        @pytest.mark.mockai(seed=33, models=["from-marker"])
        def test_marker_wins(mockai):
            assert mockai.server.config.seed == 33
            assert mockai.server.config.models == ("from-marker",)
        """,
        "--mockai-seed=22",
        ini="mockai_seed = 11\n",
    )
    result.assert_outcomes(passed=2)


def test_ini_alone(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        def test_seed(mockai):
            assert mockai.server.config.seed == 11
        """,
        ini="mockai_seed = 11\n",
    )
    result.assert_outcomes(passed=1)


def test_marker_is_registered(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import pytest

        @pytest.mark.mockai(seed=1)
        def test_marked(mockai):
            pass
        """,
        "--strict-markers",
    )
    result.assert_outcomes(passed=1)
    markers = run("def test_x(): pass", "--markers")
    markers.stdout.fnmatch_lines(["*@pytest.mark.mockai(scenario=None, cassette=None*"])


def test_bad_option_is_a_clear_error(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import pytest

        @pytest.mark.mockai(sed=1)
        def test_typo(mockai):
            pass
        """
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown option(s): sed*"])


def test_missing_cassette_fails_loudly(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import pytest

        @pytest.mark.mockai(cassette=True)
        def test_needs_recording(mockai):
            pass
        """
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*no recording at *cassettes/test_user/test_needs_recording.yaml*--mockai-record-mode=once*"
        ]
    )


def test_configure_hook(run, pytester: pytest.Pytester) -> None:  # type: ignore[no-untyped-def]
    pytester.makeconftest(
        """
        def pytest_mockai_configure(options, request):
            options["seed"] = 99
        """
    )
    result = run(
        """
        def test_hooked(mockai):
            assert mockai.server.config.seed == 99
        """
    )
    result.assert_outcomes(passed=1)


def test_factory_makes_extra_servers(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import httpx

        def test_two(make_mockai_server):
            a, b = make_mockai_server(seed=1), make_mockai_server(seed=2)
            assert a.url != b.url
            body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
            first = httpx.post(a.url + "/chat/completions", json=body).json()
            second = httpx.post(b.url + "/chat/completions", json=body).json()
            assert first["choices"] != second["choices"]
        """
    )
    result.assert_outcomes(passed=1)


def test_plugin_can_be_disabled(run) -> None:  # type: ignore[no-untyped-def]
    result = run("def test_x(mockai): pass", "-p", "no:mockai")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'mockai' not found*"])


def test_xdist_workers_each_run_their_own_servers(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_many="""
        import openai, pytest

        @pytest.mark.parametrize("n", range(8))
        def test_call(mockai, n):
            with openai.OpenAI() as client:
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": str(n)}])
            assert len(mockai.requests) == 1
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)


def test_cheap_clients(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import pytest

        def test_sync(mockai):
            with mockai.openai_client(max_retries=0) as client:
                assert client.models.retrieve("gpt-4o").id == "gpt-4o"
            assert str(client.base_url).rstrip("/") == mockai.url

        @pytest.mark.asyncio
        async def test_async(mockai):
            async with mockai.async_openai_client() as client:
                assert (await client.models.list()).data
            mockai.assert_called(1)
        """
    )
    result.assert_outcomes(passed=2)


UNMATCHED = """
    import openai, pytest

    @pytest.fixture
    def client(mockai):
        mockai.add_rule({"name": "greeting", "match": {"user": "hi"}, "reply": {"content": "hello"}})
        with mockai.openai_client(max_retries=0) as client:
            yield client

    def ask_and_swallow(client, text):
        try:
            return client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
            ).choices[0].message.content
        except openai.APIError:
            return "fallback answer"   # the app under test hides the failure
"""


def test_unmatched_request_fails_the_test_at_teardown(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        UNMATCHED
        + """
    def test_swallowed(client):
        assert ask_and_swallow(client, "hi") == "hello"
        assert ask_and_swallow(client, "goodbye") == "fallback answer"
    """
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*mockai: 1 request(s) matched no rule or recording*",
            "*greeting*",  # the near-miss report names the closest rule ...
            "*goodbye*",  # ... and what the request said instead
            "*timeline:*",
            "*#2 *POST /v1/chat/completions*-> 400 mockai_no_match*",
        ]
    )


def test_unmatched_check_stays_quiet_when_the_test_failed(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        UNMATCHED
        + """
    def test_fails_anyway(client):
        ask_and_swallow(client, "goodbye")
        assert False, "the real failure"
    """
    )
    result.assert_outcomes(failed=1)
    assert "matched no rule" not in result.stdout.str()


def test_strict_false_allows_unmatched(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        UNMATCHED
        + """
    @pytest.mark.mockai(strict=False)
    def test_lenient(client, mockai):
        assert ask_and_swallow(client, "goodbye") == "fallback answer"
        assert len(mockai.unmatched) == 1
    """
    )
    result.assert_outcomes(passed=1)


def test_retry_assertions(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import httpx, pytest

        RULE = {
            "match": {"user": "flaky"},
            "sequence": [
                {"error": {"status": 429, "retry_after": 0.2}},
                {"error": {"status": 503, "retry_after": 0.2}},
                {"reply": {"content": "finally"}},
            ],
        }

        def test_sdk_respects_retry_after(mockai):
            mockai.add_rule(RULE)
            with mockai.openai_client(max_retries=2) as client:
                reply = client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "flaky"}]
                )
            assert reply.choices[0].message.content == "finally"
            mockai.assert_called(3)
            mockai.assert_retries_respected()

        def test_impatient_client_is_caught(mockai):
            # (asked to wait 30 s: three requests sent back to back come sooner on any machine)
            mockai.add_rule({**RULE, "sequence": [
                {"error": {"status": 429, "retry_after": 30}},
                {"error": {"status": 503, "retry_after": 30}},
                {"reply": {"content": "finally"}},
            ]})
            body = {"model": "m", "messages": [{"role": "user", "content": "flaky"}]}
            for attempt in range(3):
                headers = {"x-stainless-retry-count": str(attempt)}
                httpx.post(mockai.url + "/chat/completions", json=body, headers=headers)
            with pytest.raises(AssertionError) as caught:
                mockai.assert_retries_respected()
            message = str(caught.value)
            assert "asked to wait 30.000s" in message
            assert "timeline:" in message and "retry=2" in message
        """
    )
    result.assert_outcomes(passed=2)


def test_retry_assertions_take_a_request_after_a_success_for_a_new_call(run) -> None:  # type: ignore[no-untyped-def]
    # A client without the SDK's retry count (curl, requests, the Vercel AI SDK) asking the same
    # thing again after an answer was not retrying: it was counted as one call's fourth retry.
    result = run(
        """
        import time, httpx, pytest

        def test_asking_again_is_no_retry(mockai):
            mockai.add_rule({
                "match": {"user": "same"},
                "sequence": [
                    {"reply": "ok"}, {"reply": "ok"},
                    {"error": {"status": 429, "retry_after": 0.05}}, {"reply": "ok"},
                ],
            })
            body = {"model": "m", "messages": [{"role": "user", "content": "same"}]}
            statuses = []
            for _ in range(4):
                statuses.append(httpx.post(mockai.url + "/chat/completions", json=body).status_code)
                time.sleep(0.1 if statuses[-1] == 429 else 0)  # (waits as it is told)
            assert statuses == [200, 200, 429, 200]
            for _ in range(3):
                httpx.get(mockai.url + "/models")  # (a poll, asked again and again)
            mockai.assert_retries_respected()

        def test_retries_after_a_failure_are_still_counted(mockai):
            mockai.add_rule({"match": {"user": "down"}, "error": {"status": 503}})
            body = {"model": "m", "messages": [{"role": "user", "content": "down"}]}
            for _ in range(4):
                httpx.post(mockai.url + "/chat/completions", json=body)
            with pytest.raises(AssertionError, match="#1: 3 retries, more than the 2 allowed"):
                mockai.assert_retries_respected()

        def test_asking_again_after_a_stream_that_ended_whole_is_no_retry(mockai):
            body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "s"}]}
            for fault in ("split_chunk=2", "duplicate_chunk=2", "split_chunk=1"):
                headers = {"x-mockai-fault": fault}
                with httpx.stream("POST", mockai.url + "/chat/completions", json=body,
                                  headers=headers) as answer:
                    assert answer.read().endswith(b"data: [DONE]\\n\\n")
            mockai.assert_retries_respected()
        """
    )
    result.assert_outcomes(passed=3)


def test_strict_off_from_ini_and_back_on_from_the_command_line(run) -> None:  # type: ignore[no-untyped-def]
    source = (
        UNMATCHED
        + """
    def test_swallowed(client):
        ask_and_swallow(client, "goodbye")
    """
    )
    run(source, ini="mockai_strict = false\n").assert_outcomes(passed=1)
    run(source, "--mockai-strict=true", ini="mockai_strict = false\n").assert_outcomes(
        passed=1, errors=1
    )


def test_record_modes_per_test_cassette(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    source = """
        import openai

        QUESTIONS = {questions}

        def test_ask(mockai):
            with mockai.openai_client(max_retries=0) as client:
                for question in QUESTIONS:
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{{"role": "user", "content": question}}]
                    )
        """
    cassette = pytester.path / "cassettes" / "test_app" / "test_ask.yaml"
    with MockServer(log_requests=False) as upstream:
        record = ["-p", "no:cacheprovider", f"--mockai-upstream={upstream.url}"]
        pytester.makepyfile(test_app=source.format(questions=["one"]))
        pytester.runpytest_subprocess(*record, "--mockai-record-mode=once").assert_outcomes(
            passed=1
        )
        assert cassette.read_text().count("uri:") == 1
        # A new question: `none` fails (nothing recorded for it), `new_episodes` appends it.
        pytester.makepyfile(test_app=source.format(questions=["one", "two"]))
        missed = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        missed.assert_outcomes(failed=1)
        missed.stdout.fnmatch_lines(
            ["*differs in body*", "*recorded:*'one'*", "*this request:*'two'*"]
        )
        appended = pytester.runpytest_subprocess(*record, "--mockai-record-mode=new_episodes")
        appended.assert_outcomes(passed=1)
        assert cassette.read_text().count("uri:") == 2
        assert len(upstream.requests) == 2  # "one" was replayed, only "two" went upstream
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_markers_merge_key_by_key_the_closest_winning(run, pytester: pytest.Pytester) -> None:  # type: ignore[no-untyped-def]
    pytester.makefile(
        ".yaml",
        faq="""
        mockai: 1
        rules:
          - name: refund
            match: {user: {contains: refund}}
            reply: {content: "within 30 days"}
        """,
    )
    result = run(
        """
        import pytest

        pytestmark = pytest.mark.mockai(scenario="faq.yaml", seed=1, models=["module"])

        def ask(mockai):
            with mockai.openai_client(max_retries=0) as client:
                return client.chat.completions.create(
                    model="module", messages=[{"role": "user", "content": "a refund?"}]
                ).choices[0].message.content

        @pytest.mark.mockai(seed=3)
        def test_own_marker_keeps_the_modules_scenario(mockai):
            assert ask(mockai) == "within 30 days"
            assert mockai.server.config.seed == 3
            assert mockai.server.config.models == ("module",)

        class TestGroup:
            pytestmark = pytest.mark.mockai(seed=2, strict=False)

            def test_class_over_module(self, mockai):
                assert ask(mockai) == "within 30 days"
                assert (mockai.server.config.seed, mockai.strict) == (2, False)

            @pytest.mark.mockai(models=["module", "test"])
            def test_test_over_class_over_module(self, mockai):
                assert ask(mockai) == "within 30 days"
                assert (mockai.server.config.seed, mockai.strict) == (2, False)
                assert mockai.server.config.models == ("module", "test")

        @pytest.mark.mockai(seed=5, latency="1ms")
        @pytest.mark.mockai(seed=4)  # stacked: the decorator nearest the def wins per key
        def test_stacked_markers(mockai):
            assert mockai.server.config.seed == 4
            assert mockai.server.config.latency is not None
            assert ask(mockai) == "within 30 days"
        """
    )
    result.assert_outcomes(passed=4)


def test_none_means_not_set(run, pytester: pytest.Pytester) -> None:  # type: ignore[no-untyped-def]
    pytester.makeconftest(
        """
        def pytest_mockai_configure(options, request):
            if request.node.name == "test_hook_none":
                options["strict"] = None
        """
    )
    result = run(
        UNMATCHED
        + """
    @pytest.fixture
    def mockai_config():
        return {"seed": None, "strict": None}

    @pytest.mark.mockai(strict=None, seed=None)
    def test_marker_none(client, mockai):
        assert mockai.server.config.seed == 7  # from the command line, below both Nones
        ask_and_swallow(client, "goodbye")

    def test_hook_none(client):
        ask_and_swallow(client, "goodbye")
    """,
        "--mockai-seed=7",
    )
    # Strict mode stayed on: each swallowed no-match fails its test at teardown. (Counted in the
    # errors' own sections, where the message opens a line: the short summary repeats it after
    # "ERROR ... - Failed:" only when the terminal is wide enough to hold it.)
    result.assert_outcomes(passed=2, errors=2)
    said = "mockai: 1 request(s) matched no rule or recording"
    assert sum(line.startswith(said) for line in result.outlines) == 2


def test_retry_assertions_with_concurrent_calls(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
        import asyncio, httpx, pytest

        def send(mockai, text, retry_count):
            body = {"model": "m", "messages": [{"role": "user", "content": text}]}
            headers = {"x-stainless-retry-count": str(retry_count)}
            return httpx.post(mockai.url + "/chat/completions", json=body, headers=headers)

        def test_interleaved_impatient_retries_are_caught(mockai):
            for word in ("alpha", "beta"):
                mockai.add_rule({
                    "match": {"user": word},
                    "sequence": [{"error": {"status": 429, "retry_after": 2}}, {"reply": "ok"}],
                })
            # Two calls in flight at once, each retried at once although told to wait 2 s.
            answers = [send(mockai, "alpha", 0), send(mockai, "beta", 0)]
            answers += [send(mockai, "alpha", 1), send(mockai, "beta", 1)]
            assert [a.status_code for a in answers] == [429, 429, 200, 200]
            with pytest.raises(AssertionError) as caught:
                mockai.assert_retries_respected()
            message = str(caught.value)
            assert "#3 came" in message and "after #1, which asked to wait 2.000s" in message
            assert "#4 came" in message and "after #2, which asked to wait 2.000s" in message

        def test_a_retry_is_not_taken_for_the_retry_of_a_success(mockai):
            mockai.add_rule({
                "match": {"user": "same"},
                "sequence": [
                    {"reply": "ok"}, {"error": {"status": 429, "retry_after": 2}}, {"reply": "ok"},
                ],
            })
            answers = [send(mockai, "same", 0), send(mockai, "same", 0), send(mockai, "same", 1)]
            assert [a.status_code for a in answers] == [200, 429, 200]
            with pytest.raises(AssertionError, match="#3 came .* after #2, which asked to wait"):
                mockai.assert_retries_respected()

        def test_identical_concurrent_sdk_calls_that_waited_pass(mockai):
            mockai.add_rule({
                "match": {"user": "same"},
                "sequence": [
                    {"error": {"status": 429, "retry_after": 0.5}},
                    {"error": {"status": 429, "retry_after": 0.5}},
                    {"reply": "ok"},
                ],
            })

            async def app():
                async with mockai.async_openai_client(max_retries=1) as client:
                    async def call(delay):
                        await asyncio.sleep(delay)
                        reply = await client.chat.completions.create(
                            model="m", messages=[{"role": "user", "content": "same"}]
                        )
                        return reply.choices[0].message.content

                    # The second call starts midway through the first one's wait, so the
                    # first one's retry comes 0.25 s after the second call's first attempt.
                    return await asyncio.gather(call(0), call(0.25))

            assert asyncio.run(app()) == ["ok", "ok"]
            assert [e.retry_count for e in mockai.requests] == [0, 0, 1, 1]
            mockai.assert_retries_respected(max_retries=1)
        """
    )
    result.assert_outcomes(passed=3)
