"""The Redis shared state when another program overwrote one of mockai's keys (a key of another
type, a counter that is no number, a record that is not mockai's): every answer stays the API's
JSON — the 503 naming the keys, which the SDKs retry, or the answer itself when only a journal
update failed (design.md, "Failures are the API's 503") — never a 500 or aiohttp's plain-text
page. Genuine bugs of ours (a script that does not compile, an unknown command) stay visible.

Against a real redis-server on loopback (the module's `redis` fixture) and one mockai server
shared by the module, under a prefix of its own.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis as redis_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import exceptions as redis_errors
from service_support import RedisServer

from mockai import MockServer
from mockai.backend.redis_state import _overwritten_key

PREFIX = f"overwritten-{uuid.uuid4().hex[:8]}"
MODEL = "gpt-4o"
FREE = "free question"  # a rule without a limit
COUNTED = "counted question"  # a rule with `times` (the script compares its count)


@dataclass
class Shared:
    server: MockServer
    http: httpx.Client
    redis: redis_client.Redis
    response_id: str  # a stored response (a store's record)
    keys: list[str] = field(default_factory=list)  # every key the server keeps (after PREFIX)

    def chat(self, text: str = FREE) -> httpx.Response:
        body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
        return self.http.post("/v1/chat/completions", json=body)


@pytest.fixture(scope="module")
def shared(redis: RedisServer) -> Iterator[Shared]:
    with (
        MockServer(state=redis.url(PREFIX), log_requests=False) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
        redis_client.Redis(port=redis.port) as admin,
    ):
        server.add_rules(
            [
                {"match": {"user": FREE}, "reply": {"content": "free"}},
                {"match": {"user": COUNTED}, "reply": {"content": "counted"}, "times": 10**6},
            ]
        )
        stored = http.post("/v1/responses", json={"model": MODEL, "input": FREE})
        assert stored.status_code == 200, stored.text
        shared = Shared(server, http, admin, stored.json()["id"])
        for answer, statuses in _round(shared):  # (every key exists now)
            assert answer.status_code in statuses, answer.text
        found = shared.redis.keys(f"{PREFIX}:*")
        shared.keys = sorted(key.decode().removeprefix(f"{PREFIX}:") for key in found)
        yield shared


def _assert_api_json(answer: httpx.Response, *allowed: int) -> None:
    """The API's JSON: the answer itself, or the shared state's 503 in the API's error shape."""
    assert answer.headers["content-type"].startswith("application/json"), answer.text
    assert answer.status_code in {*allowed, 503}, answer.text
    if answer.status_code == 503:
        body = answer.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
        assert body["error"]["code"] == "mockai_state_unavailable"
        assert answer.headers["retry-after"] == "1"


def _assert_overwritten(answer: httpx.Response, keys: str) -> None:
    """The 503 that names the keys another program overwrote."""
    _assert_api_json(answer)
    assert answer.status_code == 503, answer.text
    message = answer.json()["error"]["message"]
    assert f"a key mockai keeps ({PREFIX}:{keys}) was overwritten by another program" in message


@contextlib.contextmanager
def _overwritten(shared: Shared, key: str, write: Callable[[str], Any]) -> Iterator[None]:
    """A key of the server's (after the prefix) replaced by what `write` writes to the full key,
    then put back as it was: the server serves again."""
    full = f"{PREFIX}:{key}"
    dumped: Any = shared.redis.dump(full)
    shared.redis.delete(full)
    write(full)
    try:
        yield
    finally:
        shared.redis.delete(full)
        if dumped is not None:
            shared.redis.restore(full, 0, dumped)
    assert shared.chat().status_code == 200  # (service resumes once the key is mockai's again)


# --- each kind of key ---------------------------------------------------------------------------


def test_a_journal_numbering_that_is_no_number_leaves_the_answer_alone(shared: Shared) -> None:
    """The reproduction: `SET mockai:journal:seq abc` made every request aiohttp's plain-text
    500. A journal update never breaks an answer: the answer goes out, unjournaled."""
    with _overwritten(shared, "journal:seq", lambda key: shared.redis.set(key, "abc")):
        answer = shared.chat()
        _assert_api_json(answer, 200)
        assert answer.status_code == 200


def test_a_journal_of_another_type_is_the_503_where_it_is_read(shared: Shared) -> None:
    with _overwritten(shared, "journal:entries", lambda key: shared.redis.set(key, "x")):
        answer = shared.chat()  # (not published: the answer goes out all the same)
        _assert_api_json(answer, 200)
        assert answer.status_code == 200
        read = shared.http.get("/_mockai/requests", params={"limit": 5})
        _assert_overwritten(read, "journal:*")


def test_occurrences_of_another_type_are_the_503(shared: Shared) -> None:
    """The reproduction: `SET mockai:occurrences x` was the 500 "mockai internal error"."""
    with _overwritten(shared, "occurrences", lambda key: shared.redis.set(key, "x")):
        _assert_overwritten(shared.chat(), "occurrences")


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda r, key: r.hset(key, "a", "b"), id="of-another-type"),
        pytest.param(lambda r, key: r.set(key, "not json"), id="not-mockais-json"),
        pytest.param(lambda r, key: r.set(key, "[1, 2]"), id="json-of-another-shape"),
    ],
)
def test_a_stored_record_another_program_wrote_is_the_503_naming_it(
    shared: Shared, write: Callable[[Any, str], Any]
) -> None:
    key = f"records:responses:r:{shared.response_id}"
    with _overwritten(shared, key, lambda full: write(shared.redis, full)):
        answer = shared.http.get(f"/v1/responses/{shared.response_id}")
    _assert_api_json(answer)
    assert answer.status_code == 503, answer.text
    message = answer.json()["error"]["message"]
    assert "was overwritten by another program" in message
    assert f"{PREFIX}:records:responses:" in message
    assert "not json" not in message and "[1, 2]" not in message  # (their value is not shown)


@pytest.mark.parametrize(
    ("text", "write"),
    [
        pytest.param(FREE, lambda r, key: r.set(key, "x"), id="of-another-type"),
        # HINCRBY on a count that is no number...
        pytest.param(FREE, lambda r, key: r.hset(key, "rule-1", "abc"), id="no-number"),
        # ... and the script comparing it with the rule's `times` (Lua's "compare nil").
        pytest.param(COUNTED, lambda r, key: r.hset(key, "rule-2", "abc"), id="no-number-counted"),
    ],
)
def test_a_rules_count_another_program_wrote_is_the_503(
    shared: Shared, text: str, write: Callable[[Any, str], Any]
) -> None:
    with _overwritten(shared, "rules:served", lambda full: write(shared.redis, full)):
        _assert_overwritten(shared.chat(text), "rules:*")


def test_the_budgets_of_another_type_are_the_503_on_a_reset(shared: Shared) -> None:
    """A request's charge was the 503 already (test_limits_hunt_fixes); a reset, which reads
    the windows' index, was a 500."""
    with _overwritten(shared, "budgets", lambda key: shared.redis.set(key, "x")):
        _assert_overwritten(shared.http.post("/_mockai/reset"), "budget*")


# --- any key, any wrong value -------------------------------------------------------------------

_WRONG_VALUES: dict[str, Callable[[Any, str, str], Any]] = {
    "string": lambda r, key, text: r.set(key, "~" + text),  # (neither a number nor JSON)
    "hash": lambda r, key, text: r.hset(key, "~" + text, text),
    "list": lambda r, key, text: r.rpush(key, "~" + text),
    "set": lambda r, key, text: r.sadd(key, "~" + text),
    "zset": lambda r, key, text: r.zadd(key, {"~" + text: 1}),
}


def _round(shared: Shared) -> list[tuple[httpx.Response, tuple[int, ...]]]:
    """Requests that touch every key the module's server keeps, with the statuses they answer
    when all is well."""
    files = {"file": ("notes.txt", b"hello"), "purpose": (None, "assistants")}
    fault = {"x-mockai-fault": "rate_limit;attempts=1"}
    body = {"model": MODEL, "messages": [{"role": "user", "content": FREE}]}
    return [
        (shared.chat(FREE), (200,)),
        (shared.chat(COUNTED), (200,)),
        (shared.http.post("/v1/chat/completions", json=body, headers=fault), (429, 200)),
        (shared.http.post("/v1/responses", json={"model": MODEL, "input": FREE}), (200,)),
        (shared.http.get(f"/v1/responses/{shared.response_id}"), (200,)),
        (shared.http.post("/v1/files", files=files), (200,)),
        (shared.http.get("/_mockai/requests", params={"limit": 3}), (200,)),
    ]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_key_overwritten_with_any_wrong_value_is_answered_in_json(
    shared: Shared, data: st.DataObject
) -> None:
    key = data.draw(st.sampled_from(shared.keys), label="key")
    kind = data.draw(st.sampled_from(sorted(_WRONG_VALUES)), label="value")
    text = data.draw(st.text(st.characters(codec="utf-8"), max_size=20), label="text")
    with _overwritten(shared, key, lambda full: _WRONG_VALUES[kind](shared.redis, full, text)):
        for answer, statuses in _round(shared):
            _assert_api_json(answer, *statuses)


# --- what is an overwritten key, and what a bug of ours ---------------------------------------

_OVERWRITTEN = (
    "WRONGTYPE Operation against a key holding the wrong kind of value",
    "value is not an integer or out of range",
    "hash value is not an integer",
    "increment or decrement would overflow",
    "user_script:7: attempt to compare nil with number",
    "user_script:3: attempt to compare number with nil",
    "user_script:12: attempt to perform arithmetic on a nil value",
    "user_script:12: attempt to perform arithmetic on local 'weight' (a nil value)",
)
_BUGS = (
    "Error compiling script (new function): user_script:1: '=' expected near 'x'",
    "unknown command 'NOPE', with args beginning with: ",
    "wrong number of arguments for 'hset' command",
    "user_script:4: attempt to call a nil value (field 'nope')",
    "user_script:4: attempt to index a nil value",
    "syntax error",
)


@settings(max_examples=200)
@given(
    said=st.sampled_from(_OVERWRITTEN + _BUGS),
    sha=st.text("0123456789abcdef", min_size=40, max_size=40),
    line=st.integers(1, 500),
    in_script=st.booleans(),
    command=st.none() | st.text(max_size=40),
)
def test_overwritten_keys_are_told_from_our_own_bugs(
    said: str, sha: str, line: int, in_script: bool, command: str | None
) -> None:
    """However redis-py and Redis wrap the words (a script's SHA and line, the command of a
    transaction with its values, which may quote any of them), the words decide."""
    text = said + (f" script: {sha}, on @user_script:{line}." if in_script else "")
    if command is not None:
        text = f"Command # 1 (EVALSHA {command}) of pipeline caused error: {text}"
    assert _overwritten_key(redis_errors.ResponseError(text)) == (said in _OVERWRITTEN)
