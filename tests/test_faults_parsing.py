"""The fault vocabulary as data: rule/step mappings, the x-mockai-fault header, chaos rates."""

from __future__ import annotations

import random

import pytest

from mockai.delivery.faults import (
    HALFWAY,
    SOMEWHERE,
    SOMEWHERE_MAX,
    ChaosRates,
    ErrorFault,
    Faults,
    fault_names,
    parse_fault_header,
    parse_faults,
)
from mockai.wire import errors
from mockai.wire.outgoing import Body, EventStream, Relay


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"disconnect_after": 3}, Faults(disconnect_after=3)),
        ({"malformed_chunk": True}, Faults(malformed_chunk=1)),  # true means chunk 1
        ({"reset": True}, Faults(reset=True)),  # flags take true
        ({"reset": False, "stall_after": None}, Faults()),
        ({"hang": True, "truncate_after": 2}, Faults(hang=True, truncate_after=2)),
        ({"disconnect": True}, Faults(disconnect_after=SOMEWHERE)),  # the contract's chaos name
        ({"rate_limit": True}, Faults(error=ErrorFault("rate_limit"))),
        (
            {"overloaded": {"retry_after": "250ms", "should_retry": False}},
            Faults(error=ErrorFault("overloaded", 0.25, False)),
        ),
        ({"split_chunk": "2"}, Faults(split_chunk=2)),
    ],
)
def test_parse_faults(mapping: dict[str, object], expected: Faults) -> None:
    assert parse_faults(mapping) == expected


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"explode": True}, "'explode' is not a fault or a named error (valid names: "),
        ({"rset": True}, "'rset' is not a fault or a named error (did you mean 'reset'?)"),
        ({"reset": 3}, "reset is a flag: use `reset: true`"),
        ({"disconnect_after": 0}, "disconnect_after takes a chunk number >= 1, got 0"),
        ({"stall_after": "soon"}, "stall_after takes a chunk number >= 1, got 'soon'"),
        (
            {"rate_limit": {"foo": 1}},
            "rate_limit: unknown option 'foo' (known: retry_after, should_retry)",
        ),
        (
            {"rate_limit": {"retry_afer": 1}},
            "rate_limit: unknown option 'retry_afer' (did you mean 'retry_after'?)",
        ),
        ({"rate_limit": {"retry_after": 0}}, "rate_limit: retry_after must be more than 0"),
        ({"rate_limit": True, "server_error": True}, "only one named error per answer"),
        ({"overloaded": {"should_retry": "maybe"}}, "should_retry must be true or false"),
        (["reset"], "faults is a mapping such as"),
    ],
)
def test_parse_faults_explains_what_is_wrong(mapping: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_faults(mapping)
    assert message in str(caught.value)


def test_every_named_error_and_fault_is_in_the_vocabulary() -> None:
    names = fault_names()
    assert {"rate_limit", "server_error", "overloaded", "timeout", "bad_gateway"} <= set(names)
    assert {"reset", "hang", "non_json", "empty_response", "disconnect", "split_chunk"} <= set(
        names
    )
    for name in names:
        parse_faults({name: True})


def test_names_are_what_the_journal_shows() -> None:
    faults = Faults(error=ErrorFault("rate_limit", 0.3), disconnect_after=3, reset=True)
    assert faults.names() == ["rate_limit;retry_after=0.3s", "disconnect_after=3", "reset"]
    assert Faults().names() == []
    assert not Faults() and Faults(hang=True)


def test_merged_lets_the_other_side_win_field_by_field() -> None:
    rule = Faults(disconnect_after=3, malformed_chunk=1)
    header = Faults(disconnect_after=5, reset=True)
    assert rule.merged(header) == Faults(disconnect_after=5, malformed_chunk=1, reset=True)
    assert rule.merged(Faults()) is rule


def test_somewhere_is_resolved_by_the_seed() -> None:
    faults = parse_faults({"disconnect": True})
    picks = {faults.resolved(random.Random(seed)).disconnect_after for seed in range(200)}
    assert picks == set(range(1, SOMEWHERE_MAX + 1))
    same = [faults.resolved(random.Random(7)).disconnect_after for _ in range(3)]
    assert len(set(same)) == 1


def test_for_answer_keeps_only_the_faults_that_apply() -> None:
    faults = Faults(malformed_chunk=1, disconnect_after=2, stall_after=3, reset=True)
    assert faults.for_answer(EventStream(frames=[b"data: {}\n\n"] * 4)) is faults
    # A JSON body is cut halfway, whatever the chunk (journaled as `disconnect`, `stall_after`).
    assert faults.for_answer(Body(200, b"{}")) == Faults(
        disconnect_after=HALFWAY, stall_after=HALFWAY, reset=True
    )

    async def nothing():  # type: ignore[no-untyped-def]
        yield b""

    assert faults.for_answer(Relay(200, nothing())) == Faults(reset=True)


# --- the x-mockai-fault header -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "attempt", "expected"),
    [
        ("rate_limit", 0, Faults(error=ErrorFault("rate_limit"))),
        ("reset", 5, Faults(reset=True)),
        ("reset=true", 0, Faults(reset=True)),
        ("reset=false, hang", 0, Faults(hang=True)),
        ("disconnect_after=3", 0, Faults(disconnect_after=3)),
        ("disconnect_after", 0, Faults(disconnect_after=1)),
        ("disconnect", 0, Faults(disconnect_after=SOMEWHERE)),
        (
            "malformed_chunk=2, split_chunk=1",
            0,
            Faults(malformed_chunk=2, split_chunk=1),
        ),
        (
            "rate_limit;retry_after=300ms;should_retry=false",
            0,
            Faults(error=ErrorFault("rate_limit", 0.3, False)),
        ),
        ("server_error;attempts=2", 1, Faults(error=ErrorFault("server_error"))),
        ("server_error;attempts=2", 2, Faults()),
        ("server_error;attempts=1, disconnect_after=2", 1, Faults(disconnect_after=2)),
    ],
)
def test_fault_header(header: str, attempt: int, expected: Faults) -> None:
    assert parse_fault_header(header).for_attempt(attempt) == expected


def test_count_says_who_numbers_the_attempts() -> None:
    assert parse_fault_header("rate_limit;attempts=1;count=requests").counts_requests
    assert not parse_fault_header("rate_limit;attempts=1;count=retries").counts_requests
    assert not parse_fault_header("rate_limit;attempts=1").counts_requests
    both = parse_fault_header("reset;attempts=1;count=requests, server_error;attempts=2")
    assert both.counts_requests  # (one count per header: the server's, if any item asks)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "empty; name a fault or a named error"),
        ("boom", "'boom' is not a fault or a named error"),
        ("rate_limit=3", "rate_limit is a named error and takes no `=3`"),
        ("reset;retry_after=1s", "unknown parameter 'retry_after' (known: attempts, count)"),
        ("reset;count=requests", "count= says how attempts are counted; add attempts=N"),
        ("reset;attempts=1;count=sdk", "count must be requests or retries, got 'sdk'"),
        ("reset;atempts=2", "unknown parameter 'atempts' (did you mean 'attempts'?)"),
        ("rate_limt", "'rate_limt' is not a fault or a named error (did you mean 'rate_limit'?)"),
        ("server_error;attempts=0", "attempts must be a whole number >= 1, got '0'"),
        ("server_error;attempts", "'attempts' in 'server_error;attempts' is not NAME=VALUE"),
        ("rate_limit;retry_after=soon", "'soon' is not a duration"),
        ("rate_limit, server_error", "only one named error per answer"),
    ],
)
def test_fault_header_errors(header: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_fault_header(header)
    assert message in str(caught.value)


# --- chaos rates -----------------------------------------------------------------------------------


def test_chaos_rates_draw_at_most_one_fault_in_proportion() -> None:
    chaos = ChaosRates.parse({"rate_limit": 0.5, "reset": 0.25, "disconnect": 0.25})
    drawn = [chaos.draw(random.Random(i)) for i in range(2000)]
    assert all(len(f.names()) == 1 for f in drawn)  # the rates add up to 1: always one
    errors_ = sum(1 for f in drawn if f.error is not None)
    assert 850 < errors_ < 1150
    # Counted faults drawn by chaos happen at a chunk the seed picks.
    assert {f.disconnect_after for f in drawn if f.disconnect_after} == {SOMEWHERE}


def test_chaos_rates_are_reproducible_and_can_be_empty() -> None:
    chaos = ChaosRates.parse({"server_error": 0.3, "malformed_chunk": 0.1})
    first = [chaos.draw(random.Random(i)).names() for i in range(100)]
    assert first == [chaos.draw(random.Random(i)).names() for i in range(100)]
    assert not ChaosRates.parse({})
    assert ChaosRates.parse({"reset": 0}).draw(random.Random(1)) == Faults()


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ({"rate_limit": 1.5}, "rate_limit: a rate is a number between 0 and 1, got 1.5"),
        ({"rate_limit": 0.7, "reset": 0.4}, "the rates add up to 1.1"),
        ({"boom": 0.1}, "'boom' is not a fault or a named error"),
        ({"reset": True}, "a rate is a number between 0 and 1"),
    ],
)
def test_chaos_rate_errors(rates: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        ChaosRates.parse(rates)
    assert message in str(caught.value)


def test_error_fault_builds_the_named_error_with_its_options() -> None:
    error = ErrorFault("rate_limit", retry_after=0.3, should_retry=False).build("gpt-4o")
    assert error.status == 429
    assert "Rate limit reached for gpt-4o" in error.message
    assert error.headers["retry-after-ms"] == "300"
    assert error.headers["retry-after"] == "1"
    assert error.headers["x-should-retry"] == "false"
    assert errors.named("rate_limit").headers["retry-after"] == "1"
