"""Seeded chaos over all traffic: the same seed and requests give the same faults, in any order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys

import conformance
import httpx
import pytest
from sdkcall import attempts

from mockai import MockServer
from mockai.cli import build_parser, config_from_args
from mockai.errors import ConfigError

CHAOS = {
    "rate_limit": 0.1,
    "server_error": 0.05,
    "overloaded": 0.05,
    "disconnect": 0.05,
    "reset": 0.02,
    "non_json": 0.03,
}


def body(i: int, stream: bool = False) -> dict[str, object]:
    # 40 different questions, each asked 5 times: repeats draw again (their own occurrence).
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"question {i % 40}"}],
        "stream": stream,
        "max_tokens": 12,
    }


def outcome(http: httpx.Client, i: int, stream: bool = False) -> str:
    """What the client saw: a status, or the kind of transport error."""
    try:
        response = http.post("/chat/completions", json=body(i, stream))
        return str(response.status_code)
    except httpx.TransportError as error:
        return type(error).__name__


def run(seed: int, count: int = 200, chaos: dict[str, float] = CHAOS) -> tuple[list, list]:
    with (
        conformance.checked_server(seed=seed, chaos=chaos) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        seen = [outcome(http, i) for i in range(count)]
        return [e.faults for e in attempts(server)], seen


def test_same_seed_same_faults() -> None:
    faults, seen = run(seed=7)
    again, seen_again = run(seed=7)
    assert faults == again
    assert seen == seen_again
    hit = sum(1 for f in faults if f)
    assert 0.15 * 200 <= hit <= 0.45 * 200  # 30% of requests on average
    names = {name.split("=")[0] for f in faults for name in f}
    assert {"rate_limit", "server_error"} <= names
    assert "ReadError" in seen or "RemoteProtocolError" in seen  # resets and cut bodies
    other, _ = run(seed=8)
    assert other != faults


def test_the_sequence_follows_the_requests_not_the_concurrency() -> None:
    sequential, _ = run(seed=3, count=120)

    async def concurrently() -> list[list[str]]:
        with conformance.checked_server(seed=3, chaos=CHAOS) as server:
            async with httpx.AsyncClient(base_url=server.url) as http:

                async def one(i: int) -> None:
                    with contextlib.suppress(httpx.TransportError):
                        await http.post("/chat/completions", json=body(i))

                # Repeats of a question keep their order; different questions interleave freely.
                for wave in range(3):
                    await asyncio.gather(*(one(i) for i in range(wave * 40, wave * 40 + 40)))
            by_question: dict[str, list[list[str]]] = {}
            for entry in attempts(server):
                by_question.setdefault(entry.body["messages"][0]["content"], []).append(
                    entry.faults
                )
            return [f for q in sorted(by_question) for f in by_question[q]]

    expected: dict[int, list[list[str]]] = {}
    for i, faults in enumerate(sequential):
        expected.setdefault(i % 40, []).append(faults)
    ordered = [f for q in sorted(expected, key=lambda q: f"question {q}") for f in expected[q]]
    assert asyncio.run(concurrently()) == ordered


def test_streams_get_seeded_stream_faults() -> None:
    chaos = {"disconnect": 0.2, "malformed_chunk": 0.2, "truncate_after": 0.2}

    def streamed(seed: int) -> tuple[list[list[str]], list[int]]:
        with (
            conformance.checked_server(seed=seed, chaos=chaos) as server,
            httpx.Client(base_url=server.url) as http,
        ):
            sizes = []
            for i in range(40):
                try:
                    sizes.append(len(http.post("/chat/completions", json=body(i, True)).content))
                except httpx.TransportError:
                    sizes.append(-1)
            return [e.faults for e in attempts(server)], sizes

    first = streamed(5)
    assert first == streamed(5)
    faults = [name for f in first[0] for name in f]
    assert any(name.startswith("malformed_chunk=") for name in faults)
    assert all(1 <= int(name.split("=")[1]) <= 8 for name in faults)  # a chunk the seed picked
    assert -1 in first[1]  # some were cut


def test_requests_that_ask_for_faults_get_no_chaos() -> None:
    with (
        conformance.checked_server(chaos={"server_error": 1.0}) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        chaotic = http.post("/chat/completions", json=body(1))
        asked = http.post(
            "/chat/completions",
            json=body(1),
            headers={"x-mockai-fault": "reset;attempts=1", "x-stainless-retry-count": "1"},
        )
    assert chaotic.status_code == 500
    assert asked.status_code == 200  # its own fault was for the first attempt only


def test_a_retry_layer_above_the_sdk_is_counted_with_count_requests() -> None:
    """LangChain JS retries by calling the SDK again (its own layer): every attempt says
    `x-stainless-retry-count: 0`. By that count every attempt is a first one and fails for ever;
    `count=requests` has the server number identical requests instead."""
    first_attempt = {"x-stainless-retry-count": "0"}
    with (
        conformance.checked_server() as server,
        httpx.Client(base_url=server.url) as http,
    ):
        by_sdk = {**first_attempt, "x-mockai-fault": "server_error;attempts=2"}
        statuses = [http.post("/chat/completions", json=body(0), headers=by_sdk).status_code]
        statuses += [http.post("/chat/completions", json=body(0), headers=by_sdk).status_code]
        assert statuses == [500, 500]  # (and so on: each says it is a first attempt)
        by_server = {**first_attempt, "x-mockai-fault": "server_error;attempts=2;count=requests"}
        counted = [
            http.post("/chat/completions", json=body(1), headers=by_server).status_code
            for _ in range(4)
        ]
    # Two failures, the call ends with the pass, and the next identical request starts over.
    assert counted == [500, 500, 200, 500]


def test_a_reset_starts_the_chaos_sequence_over() -> None:
    with (
        conformance.checked_server(seed=1, chaos={"rate_limit": 0.5}) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        first = [http.post("/chat/completions", json=body(0)).status_code for _ in range(20)]
        server.reset()
        second = [http.post("/chat/completions", json=body(0)).status_code for _ in range(20)]
    assert first == second
    assert 429 in first and 200 in first


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chaos": {"boom": 0.1}}, "chaos: 'boom' is not a fault or a named error"),
        ({"chaos": "rate_limit=0.8,reset=0.8"}, "chaos: the rates add up to 1.6"),
        ({"latency": "soon"}, "latency: 'soon' is not a duration"),
        ({"latency": "ttft=1s,speed=3"}, "latency: unknown timing key 'speed' (known: "),
        (
            {"latency": "ttft=1s,chunk_dely=3ms"},
            "latency: unknown timing key 'chunk_dely' (did you mean 'chunk_delay'?)",
        ),
        ({"limits": "rpm=-1"}, "limits: rpm=-1: rpm must be a whole number >= 1"),
    ],
)
def test_bad_options_stop_the_server_from_starting(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        MockServer(**options)
    assert str(caught.value).startswith(message)


def test_command_line_options() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--chaos",
            "rate_limit=0.1,server_error=0.02",
            "--seed",
            "7",
            "--latency",
            "100ms-300ms",
            "--limits",
            "gpt-4o:rpm=3,window=2s;gpt-4o-mini:rpm=100",
        ]
    )
    config = config_from_args(args, environ={})
    assert config.chaos == {"rate_limit": 0.1, "server_error": 0.02}
    assert config.seed == 7
    assert config.latency == "100ms-300ms"
    assert config.limits == "gpt-4o:rpm=3,window=2s;gpt-4o-mini:rpm=100"
    server = MockServer(config)
    assert server.state.ratelimits.limit_for("gpt-4o").rpm == 3
    assert server.state.faults.defaults.latency is not None
    env = {"MOCKAI_CHAOS": "reset=0.5", "MOCKAI_LATENCY": "ttft=1s", "MOCKAI_LIMITS": "rpm=9"}
    from_env = config_from_args(build_parser().parse_args(["serve"]), environ=env)
    assert (from_env.chaos, from_env.latency, from_env.limits) == (
        {"reset": 0.5},
        "ttft=1s",
        "rpm=9",
    )


def _serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_mockai_serve_with_chaos_matches_the_library() -> None:
    chaos = "rate_limit=0.3,server_error=0.1"
    process = _serve("--chaos", chaos, "--seed", "7", "--latency", "20ms")
    try:
        assert process.stdout is not None
        url = ""
        for line in process.stdout:
            if "listening on" in line:
                url = line.split("listening on ")[1].split()[0]
                break
        assert url, process.stderr.read() if process.stderr else ""
        with httpx.Client(base_url=url + "/v1") as http:
            served = [http.post("/chat/completions", json=body(i)) for i in range(30)]
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert all(r.elapsed.total_seconds() >= 0.018 for r in served)
    statuses = [r.status_code for r in served]
    assert 429 in statuses and 200 in statuses
    # The same seed in-process gives the same answers: chaos depends on the seed and requests.
    with (
        conformance.checked_server(seed=7, chaos=chaos) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        assert [http.post("/chat/completions", json=body(i)).status_code for i in range(30)] == (
            statuses
        )


def test_mockai_serve_refuses_bad_chaos() -> None:
    process = _serve("--chaos", "boom=0.1")
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 2
    assert "error: argument --chaos: 'boom' is not a fault or a named error" in stderr
    assert "Traceback" not in stderr
