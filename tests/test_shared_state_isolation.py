"""Shared state (`--state redis://`): servers sharing a database by prefix stay apart, the store
bounds evict as in memory, and a bad state URL is a clean startup error that hides its password.

Against a real redis-server on a free loopback port (`service_support.RedisServer`).
"""

from __future__ import annotations

import os
import string
import subprocess
import sys
import uuid

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from service_support import RedisServer
from strategies import examples

from mockai import MockServer
from mockai.config import Config
from mockai.errors import ConfigError

MODEL = "gpt-4o-mini"


def _sdk(server: MockServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)


def test_a_reset_leaves_a_server_whose_prefix_extends_its_own_alone(redis: RedisServer) -> None:
    """`mockai` and `mockai:b` share a database: resetting the first must not touch the second
    (`<prefix>:*` as a SCAN pattern also matches `mockai:b:...`)."""
    outer = f"run-{uuid.uuid4().hex[:8]}"
    with (
        MockServer(state=redis.url(outer), log_requests=False) as a,
        MockServer(state=redis.url(outer + ":b"), log_requests=False) as b,
        _sdk(b) as client,
    ):
        rule = {"name": "b-rule", "match": {"user": "ping"}, "reply": "pong"}
        httpx.post(b.base_url + "/_mockai/rules", json=rule).raise_for_status()
        uploaded = client.files.create(file=("notes.txt", b"kept"), purpose="assistants")
        answer = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "ping"}], store=True
        )
        journal_before = httpx.get(b.base_url + "/_mockai/requests").json()["data"]

        assert httpx.post(a.base_url + "/_mockai/reset").json() == {"reset": True}

        names = [r["name"] for r in httpx.get(b.base_url + "/_mockai/rules").json()["data"]]
        assert names == ["b-rule"]
        assert client.files.retrieve(uploaded.id).id == uploaded.id
        assert client.chat.completions.retrieve(answer.id).id == answer.id
        journal_after = httpx.get(b.base_url + "/_mockai/requests").json()["data"]
        assert len(journal_after) > len(journal_before)  # B's journal kept, still numbering on
        # ... and A's own reset still does its job on A.
        httpx.post(a.base_url + "/_mockai/rules", json=rule).raise_for_status()
        with _sdk(a) as a_client:
            a_client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "ping"}]
            )
        httpx.post(a.base_url + "/_mockai/reset").raise_for_status()
        served = httpx.get(a.base_url + "/_mockai/rules").json()["data"]
        assert [(r["name"], r["served"]) for r in served] == [("b-rule", 0)]


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "redis"])
def test_the_conversation_in_use_outlives_idle_ones(redis: RedisServer, shared: bool) -> None:
    """The store keeps 1,000 conversations, the least recently changed going first: one that a
    turn was just added to stays, on Redis as in memory."""
    state = redis.url() if shared else None
    with MockServer(state=state, log_requests=False) as server, _sdk(server) as client:
        created = [client.conversations.create().id for _ in range(1000)]
        in_use, idle = created[0], created[1]
        client.responses.create(model=MODEL, input="one more turn", conversation=in_use)
        client.conversations.create()  # the 1,001st: one must go
        assert client.conversations.retrieve(in_use).id == in_use
        with pytest.raises(openai.NotFoundError):
            client.conversations.retrieve(idle)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("redis://:s3cretPW@127.0.0.1:notaport/0", "has a port that is not a number"),
        ("redis://:s3cretPW@127.0.0.1:99999/0", "has a port out of range"),
        ("redis://:s3cretPW@127.0.0.1:6379/abc", "names database 'abc'"),
        ("redis://:s3cretPW@127.0.0.1:6379/0?db=x", "Invalid value for 'db'"),
        ("redis://:s3cretPW@127.0.0.1:6379/0?socket_timeout=abc", "Invalid value"),
        ("redis://:s3cretPW@127.0.0.1:6379/0?no_such_option=1", "no_such_option"),
    ],
)
@pytest.mark.parametrize("where", ["flag", "env"])
def test_a_bad_state_url_stops_serve_cleanly_without_its_password(
    url: str, said: str, where: str
) -> None:
    command = [sys.executable, "-m", "mockai", "serve", "--port", "0"]
    env = None
    if where == "flag":
        command += ["--state", url]
    else:
        env = {**os.environ, "MOCKAI_STATE": url}
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr
    assert "s3cretPW" not in done.stderr + done.stdout
    assert ":***@127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("special", ["*", "?", "[x]", "\\"])
def test_a_reset_reads_glob_characters_of_its_prefix_literally(
    redis: RedisServer, special: str
) -> None:
    """A SCAN pattern made of the prefix: `t*` unescaped would match `tx`'s keys too."""
    run = uuid.uuid4().hex[:8]
    with (
        MockServer(state=redis.url(f"{run}t{special}"), log_requests=False) as a,
        MockServer(state=redis.url(f"{run}tx"), log_requests=False) as b,
        _sdk(b) as client,
    ):
        uploaded = client.files.create(file=("notes.txt", b"kept"), purpose="assistants")
        assert httpx.post(a.base_url + "/_mockai/reset").json() == {"reset": True}
        assert client.files.retrieve(uploaded.id).id == uploaded.id


@settings(max_examples=examples(100), deadline=None)
@given(
    user=st.text(alphabet=string.ascii_letters, max_size=6),
    password=st.text(alphabet=string.ascii_letters + string.digits + "@:!$&'()*+,;=-._~%"),
    port=st.sampled_from(["notaport", "99999", "6379/abc"]),
)
def test_no_bad_state_url_error_shows_its_password(user: str, password: str, port: str) -> None:
    """Whatever the password holds (`@` and `:` too, as typed), the error shows `***`."""
    secret = "PW" + password  # (a text no other part of the URL holds)
    url = f"redis://{user}:{secret}@127.0.0.1:{port}"
    with pytest.raises(ConfigError) as raised:
        Config(state=url)
    assert secret not in str(raised.value)
    assert f"{user}:***@127.0.0.1" in str(raised.value)


@settings(max_examples=examples(100), deadline=None)
@given(
    password=st.text(
        alphabet=string.ascii_letters + string.digits + "@:!$'()*+,=-._~%", max_size=20
    ),
    spelled=st.sampled_from(["password", "PASSWORD", "Password"]),
    before=st.sampled_from(["", "socket_timeout=1&", "db=1&"]),
    problem=st.sampled_from(["/abc", "/0?socket_timeout=abc&", "/0?no_such_option=1&"]),
)
def test_no_bad_state_url_error_shows_a_password_given_as_a_query_option(
    password: str, spelled: str, before: str, problem: str
) -> None:
    """redis-py takes `?password=` too (the server starts with it, its banner dropping the
    query): an error about such a URL printed it whole before."""
    secret = "PW" + password
    joint = "&" if "?" in problem else "?"
    url = f"redis://127.0.0.1:6379{problem}{joint}{before}{spelled}={secret}"
    with pytest.raises(ConfigError) as raised:
        Config(state=url)
    assert secret not in str(raised.value)
    assert f"{spelled}=***" in str(raised.value)
