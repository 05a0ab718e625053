"""Faults and timing that arrive inside a Plan (a rule or a sequence step), and how they combine.

Until the scenario engine lands, a custom Source (mockai.pipeline.decide's public protocol) stands in for
a rule: it answers with a Plan carrying `faults` and `timing`, exactly as scenario rules will.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import conformance
import httpx
import openai
import pytest
from sdkcall import attempts, call

from mockai import MockServer
from mockai.delivery.faults import parse_faults
from mockai.delivery.timing import parse_delay, parse_stream
from mockai.pipeline.exchange import Exchange
from mockai.pipeline.reply import Plan, Reply, Timing
from mockai.wire import sse
from mockai.wire.outgoing import EventStream, Relay

TEXT = "one two three four five six seven eight nine ten"


class Scripted:
    """A Source answering every request with the Plan `make` builds; counts how often it was asked."""

    def __init__(self, make: Callable[[Exchange], Plan]) -> None:
        self.make = make
        self.asked = 0

    async def plan(self, exchange: Exchange, key: bytes) -> Plan | None:
        self.asked += 1
        return self.make(exchange)

    def near_misses(self, exchange: Exchange) -> list[str]:
        return []


def rule(**changes: Any) -> Scripted:
    """A rule answering TEXT, with the given Plan fields (faults, timing)."""
    return Scripted(lambda _: Plan(source="rule", name="r1", reply=Reply.text(TEXT), **changes))


def serve(source: Scripted, **options: object) -> contextlib.AbstractContextManager[MockServer]:
    """A server (answers checked against the spec at the end) whose only source is `source`."""
    return conformance.checked_server(sources=[source], **options)


@pytest.fixture
def flaky() -> Iterator[MockServer]:
    with serve(rule(faults=parse_faults({"disconnect_after": 2}))) as server:
        yield server


def test_a_rules_faults_apply(flaky: MockServer) -> None:
    outcome = call("sync", flaky, stream=True)
    assert type(outcome.error) is openai.APIConnectionError
    assert len(outcome.chunks) == 2
    (entry,) = attempts(flaky)
    assert (entry.source, entry.rule, entry.faults) == ("rule", "r1", ["disconnect_after=2"])


def test_the_request_header_beats_the_rule(flaky: MockServer) -> None:
    outcome = call("sync", flaky, {"x-mockai-fault": "disconnect_after=4"}, stream=True)
    assert len(outcome.chunks) == 4
    assert attempts(flaky)[-1].faults == ["disconnect_after=4"]


def test_a_rules_faults_beat_chaos() -> None:
    source = rule(faults=parse_faults({"disconnect_after": 2}))
    with serve(source, chaos={"disconnect": 1.0}, seed=3) as server:
        outcome = call("sync", server, stream=True)
        assert len(outcome.chunks) == 2
        # Without a rule fault, chaos picks a chunk with the seed.
        server.state.decider.sources[0] = rule()
        chaotic = call("sync", server, stream=True)
        assert type(chaotic.error) is openai.APIConnectionError
        assert attempts(server)[-1].faults == [f"disconnect_after={len(chaotic.chunks)}"]


def test_a_rules_timing_applies_and_the_header_beats_it() -> None:
    timing = Timing(
        latency=parse_delay("150ms"), stream=parse_stream({"ttft": "50ms", "chunk_delay": "5ms"})
    )
    with serve(rule(timing=timing)) as server:
        paced = call("sync", server, stream=True)
        assert paced.error is None
        assert paced.elapsed >= 0.15 + 0.05 + 5 * 0.005
        quick = call("sync", server, {"x-mockai-latency": "0ms"})
        assert quick.error is None
        # Measured by the server (arrival to last byte): the client's own set-up time under a
        # loaded machine is no part of what the header changed.
        assert attempts(server)[-1].duration_ms < 150


def test_a_named_error_in_a_rules_faults_answers_instead_of_the_reply() -> None:
    with serve(rule(faults=parse_faults({"rate_limit": {"retry_after": "50ms"}}))) as server:
        outcome = call("sync", server, retries=1)
        assert isinstance(outcome.error, openai.RateLimitError)
        assert [e.status for e in attempts(server)] == [429, 429]


def test_errors_before_the_answer_do_not_consume_the_script() -> None:
    # A sequence step must meet the retried request: a header (or chaos) error comes first.
    source = rule()
    with serve(source) as server:
        header = {"x-mockai-fault": "server_error;attempts=2;retry_after=50ms"}
        outcome = call("sync", server, header)
        assert outcome.error is None
        assert [e.source for e in attempts(server)] == ["fault", "fault", "rule"]
        assert [e.rule for e in attempts(server)] == ["x-mockai-fault", "x-mockai-fault", "r1"]
        assert source.asked == 1
        reset = call("sync", server, {"x-mockai-fault": "reset"}, retries=0)
        assert type(reset.error) is openai.APIConnectionError
        assert source.asked == 1


def _replay(exchange: Exchange) -> Plan:
    chunk = {
        "id": "chatcmpl-rec",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": exchange.model,
        "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}],
    }
    frames = [sse.data_frame(json.dumps(chunk).encode()) for _ in range(4)] + [sse.DONE]
    recorded = EventStream(frames=frames, tail=1, offsets=[0.0, 0.05, 0.1, 0.15, 0.2])
    return Plan(source="cassette", name="interaction 1", recorded=recorded)


def test_recorded_streams_keep_their_pace_and_take_faults() -> None:
    with serve(Scripted(_replay)) as server:
        replay = call("sync", server, stream=True)
        assert replay.error is None and len(replay.chunks) == 4
        assert replay.elapsed >= 0.19
        broken = call("sync", server, {"x-mockai-fault": "malformed_chunk=3"}, stream=True)
        assert isinstance(broken.error, json.JSONDecodeError)
        assert len(broken.chunks) == 2


class Upstream:
    """Relays that record whether they were finished (the upstream connection let go)."""

    def __init__(self) -> None:
        self.finished = 0

    def plan(self, exchange: Exchange) -> Plan:
        body = {
            "id": "chatcmpl-up",
            "object": "chat.completion",
            "created": 1,
            "model": exchange.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "relayed", "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
        }

        async def chunks() -> AsyncIterator[bytes]:
            data = json.dumps(body).encode()
            yield data[:10]
            yield data[10:]

        async def finish() -> None:
            self.finished += 1

        return Plan(source="upstream", recorded=Relay(200, chunks(), finish=finish))


def test_relays_take_latency_and_connection_faults() -> None:
    upstream = Upstream()
    with serve(Scripted(upstream.plan)) as server:
        slow = call("sync", server, {"x-mockai-latency": "120ms"})
        assert slow.error is None
        assert slow.result.choices[0].message.content == "relayed"
        assert slow.elapsed >= 0.11
        # The relay lets the upstream go right after the last byte, maybe after the client read it.
        deadline = time.monotonic() + 2
        while upstream.finished < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert upstream.finished == 1
        # A connection fault from chaos or a header comes before the upstream is asked...
        dropped = call("sync", server, {"x-mockai-fault": "reset"}, retries=0)
        assert type(dropped.error) is openai.APIConnectionError
        # ...and one from a rule lets the upstream go without relaying anything.
        server.state.decider.sources[0] = Scripted(
            lambda exchange: Plan(
                source="upstream",
                recorded=upstream.plan(exchange).recorded,
                faults=parse_faults({"empty_response": True}),
            )
        )
        empty = call("sync", server, retries=0)
        assert type(empty.error) is openai.APIConnectionError
        assert upstream.finished == 2  # `reset` came before the upstream was asked


@pytest.mark.parametrize(
    "error",
    [
        {"name": "rate_limit", "retry_after": "2.5s"},
        {"status": 429, "retry_after": 2.5},
    ],
)
def test_a_rules_retry_after_is_said_as_a_header_faults_is(error: dict[str, Any]) -> None:
    """The wait a rule's 429 gives is the same everywhere it is said: `retry-after(-ms)`, the
    message LangChain JS reads ("Please try again in 2.5s") and the `x-ratelimit-reset-*` other
    clients read, as the header fault `rate_limit;retry_after=2.5s` says it (the rule's said 1s
    in the message and the reset headers)."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    with conformance.checked_server() as server, httpx.Client() as http:
        by_header = http.post(
            server.url + "/chat/completions",
            json=body,
            headers={"x-mockai-fault": "rate_limit;retry_after=2.5s"},
        )
        server.add_rule({"name": "limited", "error": error})
        by_rule = http.post(server.url + "/chat/completions", json=body)
    assert by_rule.status_code == by_header.status_code == 429
    assert "Please try again in 2.5s." in by_rule.json()["error"]["message"]
    assert by_rule.json()["error"]["message"] == by_header.json()["error"]["message"]
    said = ("retry-after", "retry-after-ms", "x-ratelimit-reset-requests")
    assert [by_rule.headers[name] for name in said] == [by_header.headers[name] for name in said]
    assert by_rule.headers["x-ratelimit-reset-requests"] == "2.5s"
