"""The Redis shared state (`--state redis://`), as the hunt found it wanting:

- Redis refusing a command (full, an ACL, a script running too long) is the API's 503 with
  `retry-after`, as when Redis is down, never a 500 with tracebacks.
- A URL Redis refuses at startup (a database it lacks, a wrong password) stops `mockai serve`
  with exit 2 and the reason, its password hidden, with `--workers` too.
- `unix:///path/redis.sock` works, as documented.
- A reset leaves alone the servers whose prefix extends its own (`mockai:budget`,
  `mockai:records`) or that its prefix's glob characters would match (`run[1]`, `team*`).
- The journal's byte bound (`MOCKAI_JOURNAL_BYTES`) holds on Redis: the oldest bodies go.

Against real redis-servers on loopback (service_support) and mockai servers as users run them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import redis as redis_client
from hypothesis import given, settings
from hypothesis import strategies as st
from service_support import REDIS_SERVER, RedisServer, ServeProcess, redis_server

from mockai import MockServer
from mockai.backend import StateUnavailable
from mockai.backend.redis_state import RedisBackend, split_url
from mockai.pipeline.journal import DROPPED_HEADER_BYTES, Journal, JournalEntry
from mockai.stores import kept
from mockai.wire import jsonbytes

MODEL = "gpt-4o-mini"
SERVE = (sys.executable, "-m", "mockai", "serve", "--port", "0")
CHAT = "/v1/chat/completions"  # (after a server's `base_url`)


def _sdk(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)


def _chat(client: openai.OpenAI, text: str = "hi") -> Any:
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])


def _refused(client: openai.OpenAI) -> openai.APIStatusError:
    """The error a chat request gets (it must fail)."""
    with pytest.raises(openai.APIStatusError) as caught:
        _chat(client)
    return caught.value


def _assert_unavailable(error: openai.APIStatusError, *said: str) -> None:
    assert error.status_code == 503
    assert error.response.headers["retry-after"] == "1"
    body = error.response.json()["error"]
    assert body["code"] == "mockai_state_unavailable"
    assert body["type"] == "service_unavailable_error"
    for words in said:
        assert words in body["message"]


# --- 1. Redis refusing a command ------------------------------------------------------------------


def test_a_full_redis_is_the_503_not_a_500_with_tracebacks() -> None:
    """maxmemory reached, with the default policy (noeviction): Redis refuses writes (OOM)."""
    with redis_server() as full:
        with ServeProcess(["--state", full.url()]) as served, _sdk(served.url) as client:
            _chat(client)  # (fine while there is room)
            with redis_client.Redis(port=full.port) as admin:
                # Below what it holds already: every write is refused from now on (filling it
                # up instead leaves it just under the bound once the refused write is freed).
                admin.config_set("maxmemory", 1)
                with pytest.raises(redis_client.exceptions.OutOfMemoryError):
                    admin.set("probe", "x")
            for _ in range(2):  # (the second too: nothing left broken by the first)
                _assert_unavailable(_refused(client), "OOM", "maxmemory")
            with pytest.raises(openai.APIStatusError) as upload:
                client.files.create(file=("notes.txt", b"hello"), purpose="assistants")
            _assert_unavailable(upload.value, "OOM")
        printed = served.all_output()
        assert "Traceback" not in printed
        assert "occurrences" not in printed  # (no key is ever shown)


def test_an_acl_refusing_the_keys_is_the_503_without_the_password(redis: RedisServer) -> None:
    admin = redis_client.Redis(port=redis.port)
    user = f"narrow-{uuid.uuid4().hex[:6]}"
    admin.execute_command("ACL", "SETUSER", user, "on", ">n4rrowPW", "~elsewhere:*", "+@all")
    admin.close()
    url = f"redis://{user}:n4rrowPW@127.0.0.1:{redis.port}/0?prefix=acl"
    with MockServer(state=url, log_requests=False) as server, _sdk(server.url) as client:
        error = _refused(client)
        _assert_unavailable(error, "Redis refused the command", "access")
        assert "n4rrowPW" not in error.response.text


def test_a_redis_busy_running_a_script_is_the_503_and_service_resumes(
    redis: RedisServer,
) -> None:
    """BUSY: another client's script runs past `busy-reply-threshold`; once it is killed, the
    next request is served at once (a refusal does not pause the server's calls)."""
    admin = redis_client.Redis(port=redis.port)
    admin.config_set("busy-reply-threshold", 50)
    stuck = threading.Thread(target=_run_forever, args=(redis.port,), daemon=True)
    with MockServer(state=redis.url(), log_requests=False) as server, _sdk(server.url) as client:
        _chat(client)
        stuck.start()
        try:
            _wait_until_busy(admin)
            _assert_unavailable(_refused(client), "BUSY")
        finally:
            _kill_script(admin)
            stuck.join(10)
            admin.config_set("busy-reply-threshold", 5000)
            admin.close()
        assert _chat(client).choices[0].message.content


@settings(max_examples=25, deadline=None)
@given(key=st.text(min_size=1, max_size=20), value=st.text(min_size=1, max_size=60))
def test_a_refused_change_to_a_record_never_shows_its_key_or_value(
    redis: RedisServer, key: str, value: str
) -> None:
    """A record changed in a transaction (a conversation's turns) on a full Redis: the 503's
    message is Redis's reason, not the command (redis-py's error quotes its keys and values)."""
    key, value = "key-" + key, "value-" + value  # (not words the message has anyway)

    async def run() -> str:
        backend = RedisBackend(redis.url())
        await backend.connect()
        records = backend.records("notes", kept.JsonCodec(list, list), 10)
        try:
            await records.put(key, ["first"])
            await backend.client.config_set("maxmemory", 1)
            try:
                await records.update(key, lambda record: record.append(value))
            except StateUnavailable as error:
                return error.message
            raise AssertionError("a full Redis took the change")
        finally:
            await backend.client.config_set("maxmemory", 0)
            await backend.forget_all()
            await backend.close()

    message = asyncio.run(run())
    assert "Redis refused the command: OOM" in message
    assert key not in message
    assert value not in message


def _run_forever(port: int) -> None:
    """A script that loops until SCRIPT KILL (which makes this call raise)."""
    with (
        contextlib.suppress(redis_client.exceptions.ResponseError),
        redis_client.Redis(port=port) as looping,
    ):
        looping.eval("while true do end", 0)


def _wait_until_busy(admin: redis_client.Redis, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            admin.ping()
        except redis_client.exceptions.ResponseError as error:
            if str(error).startswith("BUSY"):
                return
            raise
        time.sleep(0.01)
    raise AssertionError("the script never made Redis busy")


def _kill_script(admin: redis_client.Redis, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(redis_client.exceptions.ResponseError):  # (NOTBUSY: not yet)
            admin.script_kill()
        with contextlib.suppress(redis_client.exceptions.ResponseError):
            if admin.ping():
                return
        time.sleep(0.01)
    raise AssertionError("the script could not be killed")


# --- 2. a URL Redis refuses at startup -----------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(
    ("password", "database", "said"),
    [
        ("s3cretPW", "16", "DB index is out of range"),
        ("wr0ngPW", "0", "invalid username-password pair"),
    ],
    ids=["no-such-database", "wrong-password"],
)
def test_a_url_redis_refuses_stops_serve_with_exit_2(
    redis: RedisServer, password: str, database: str, said: str, workers: int
) -> None:
    with redis_client.Redis(port=redis.port) as admin:
        admin.execute_command("ACL", "SETUSER", "guarded", "on", ">s3cretPW", "~*", "+@all")
    url = f"redis://guarded:{password}@127.0.0.1:{redis.port}/{database}"
    done = subprocess.run(
        [*SERVE, "--state", url, "--workers", str(workers)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert said in done.stderr
    assert "was refused by Redis" in done.stderr
    assert "/0 to /15" in done.stderr  # (what is accepted)
    assert "Traceback" not in done.stderr
    assert password not in done.stderr + done.stdout
    assert "guarded:***@127.0.0.1" in done.stderr


# --- 3. unix sockets -----------------------------------------------------------------------------


NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


@contextlib.contextmanager
def _redis_on_a_unix_socket() -> Iterator[str]:
    """A redis-server listening only on a unix socket; yields the socket's path."""
    folder = tempfile.mkdtemp(prefix="mr-")  # (short: a socket's path has ~100 bytes at most)
    path = os.path.join(folder, "redis.sock")
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", "0", "--unixsocket", path, *NO_PERSISTENCE, "--dir", folder],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not _answers_on(path):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start on its unix socket")
            time.sleep(0.02)
        yield path
    finally:
        process.kill()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _answers_on(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(0.5)
            conn.connect(path)
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_state_on_a_unix_socket_is_shared() -> None:
    with _redis_on_a_unix_socket() as path:
        url = f"unix://{path}?prefix=sock"
        with (
            ServeProcess(["--state", url]) as served,
            MockServer(state=url, log_requests=False) as other,
            _sdk(other.url) as client,
        ):
            assert f"state unix://{path}" in served.printed()
            rule = {"name": "sock", "match": {"user": "ping"}, "reply": "pong over the socket"}
            httpx.post(served.url_for("/_mockai/rules"), json=rule).raise_for_status()
            answer = _chat(client, "ping")
            assert answer.choices[0].message.content == "pong over the socket"


PATHS = st.lists(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12),
    min_size=1,
    max_size=4,
).map(lambda parts: "/" + "/".join(parts))
PREFIXES = st.text("abcdefghijklmnopqrstuvwxyz0123456789:[]*?-", min_size=1, max_size=12)


@settings(max_examples=60)
@given(path=PATHS, prefix=st.none() | PREFIXES, db=st.none() | st.integers(0, 15))
def test_split_url_keeps_a_unix_socket_path_for_the_client(
    path: str, prefix: str | None, db: int | None
) -> None:
    """Whatever the socket's path and options, the client is given `unix://PATH` (the Redis
    client refuses `unix:/PATH`), with the options but the prefix."""
    from redis.asyncio import from_url

    query = [(name, str(value)) for name, value in (("prefix", prefix), ("db", db)) if value]
    url = f"unix://{path}" + ("?" + "&".join(f"{n}={v}" for n, v in query) if query else "")
    client_url, got_prefix, shown = split_url(url)
    assert got_prefix == (prefix or "mockai")
    assert shown == f"unix://{path}"
    kwargs = from_url(client_url).connection_pool.connection_kwargs
    assert kwargs["path"] == path
    assert kwargs.get("db", 0) == (db or 0)


# --- 4. a reset under one prefix and the others -----------------------------------------------


def _remaining(server: MockServer) -> int:
    """A chat's `x-ratelimit-remaining-requests` (it spends one request of the budget; the
    runtime rule of a test answers it)."""
    answer = httpx.post(
        server.base_url + CHAT,
        json={"model": MODEL, "messages": [{"role": "user", "content": "ping"}]},
    )
    answer.raise_for_status()
    return int(answer.headers["x-ratelimit-remaining-requests"])


@pytest.mark.parametrize("longer", ["mockai:budget", "mockai:records"])
def test_a_reset_leaves_a_server_whose_prefix_extends_its_own_alone(longer: str) -> None:
    with (
        redis_server() as shared,
        MockServer(state=shared.url("mockai"), limits="rpm=100", log_requests=False) as a,
        MockServer(state=shared.url(longer), limits="rpm=100", log_requests=False) as b,
        _sdk(b.url) as client,
    ):
        rule = {"name": "b-rule", "match": {"user": "ping"}, "reply": "pong"}
        httpx.post(b.base_url + "/_mockai/rules", json=rule).raise_for_status()
        uploaded = client.files.create(file=("notes.txt", b"kept"), purpose="assistants")
        stored = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "ping"}], store=True
        )
        b_left = _remaining(b)
        assert _remaining(a) == 99

        assert httpx.post(a.base_url + "/_mockai/reset").json() == {"reset": True}

        names = [r["name"] for r in httpx.get(b.base_url + "/_mockai/rules").json()["data"]]
        assert names == ["b-rule"]
        assert client.files.retrieve(uploaded.id).id == uploaded.id
        assert client.chat.completions.retrieve(stored.id).id == stored.id
        assert _remaining(b) == b_left - 1  # B's budget still counts what it spent
        assert httpx.get(b.base_url + "/_mockai/requests").json()["data"]
        assert _remaining(a) == 99  # ... and A's own reset did its job


@pytest.mark.parametrize(("own", "other"), [("run[1]", "run1"), ("team*", "team-b")])
def test_a_reset_under_a_prefix_with_glob_characters_resets_itself_only(
    own: str, other: str
) -> None:
    """`run[1]` as a SCAN pattern matches `run1`, not itself; `team*` matches `team-b`."""
    with (
        redis_server() as shared,
        MockServer(state=shared.url(own), limits="rpm=100", log_requests=False) as a,
        MockServer(state=shared.url(other), limits="rpm=100", log_requests=False) as b,
        _sdk(a.url) as a_client,
        _sdk(b.url) as b_client,
    ):
        a_file = a_client.files.create(file=("a.txt", b"a"), purpose="assistants")
        b_file = b_client.files.create(file=("b.txt", b"b"), purpose="assistants")
        for _ in range(3):
            _remaining(a)
        b_left = _remaining(b)

        httpx.post(a.base_url + "/_mockai/reset").raise_for_status()

        assert _remaining(a) == 99
        with pytest.raises(openai.NotFoundError):
            a_client.files.retrieve(a_file.id)
        assert _remaining(b) == b_left - 1
        assert b_client.files.retrieve(b_file.id).id == b_file.id


# --- 5. the journal's byte bound ------------------------------------------------------------------

BUDGET = 200_000


def test_the_journal_on_redis_keeps_its_byte_bound_dropping_the_oldest_bodies(
    redis: RedisServer,
) -> None:
    """As in-process (tests/test_memory_bounds.py): entries stay, the oldest bodies go."""
    with (
        MockServer(state=redis.url(), journal_bytes=BUDGET, log_requests=False) as server,
        httpx.Client(timeout=30) as client,
    ):
        padded = {"x-padding": "p" * 8000}  # past what a dropped entry keeps of headers
        for number in range(30):
            content = f"{number} " + "x" * 20_000
            client.post(
                server.base_url + CHAT,
                json={"model": MODEL, "messages": [{"role": "user", "content": content}]},
                headers=padded if number == 0 else None,
            ).raise_for_status()
        entries = client.get(server.base_url + "/_mockai/requests?limit=1000").json()["data"]
    assert len(entries) == 30
    dropped = [entry for entry in entries if entry["dropped"]]
    kept = [entry for entry in entries if not entry["dropped"]]
    assert dropped and kept
    assert max(e["seq"] for e in dropped) < min(e["seq"] for e in kept)  # the oldest went
    held = sum(len(jsonbytes.dumps(e["body"])) + len(jsonbytes.dumps(e["headers"])) for e in kept)
    assert held <= BUDGET
    assert kept[-1]["body"]["messages"][0]["content"].startswith("29 ")
    for entry in dropped:
        assert entry["body"] is None
        assert entry["headers"]["content-type"] == "application/json"
    assert "x-padding" not in dropped[0]["headers"]


HEADER_SIZES = st.integers(0, 3 * DROPPED_HEADER_BYTES)
ENTRIES = st.lists(st.tuples(st.integers(0, 3000), HEADER_SIZES, st.booleans()), max_size=12)


@settings(max_examples=40, deadline=None)
@given(entries=ENTRIES, budget=st.integers(0, 12_000))
def test_the_redis_journal_drops_the_oldest_bodies_past_its_budget(
    redis: RedisServer, entries: list[tuple[int, int, bool]], budget: int
) -> None:
    """Any entries published to the shared journal read back as published, but for the oldest
    ones' bodies: dropped (body None, headers cut as in-process, `dropped`) while the bodies
    held would be over the byte budget, and only then."""
    published = [_entry(n, body, header, json) for n, (body, header, json) in enumerate(entries)]
    expected = [entry.as_json() for entry in published]

    async def run() -> list[dict[str, Any]]:
        backend = RedisBackend(redis.url())
        await backend.connect()
        try:
            journal = backend.journal(Journal(max_bytes=budget))
            for entry in published:
                await journal.publish(entry)
            page, _ = await journal.page(1000, None)
            return page
        finally:
            await backend.forget_all()
            await backend.close()

    page = asyncio.run(run())
    assert len(page) == len(expected)
    weights = [_weight(entry) for entry in expected]
    held = 0
    for newest_first, (got, want) in enumerate(
        zip(reversed(page), reversed(expected), strict=True)
    ):
        held += weights[len(expected) - 1 - newest_first]
        assert got["seq"] > 0
        want = {**want, "seq": got["seq"]}
        if held <= budget:
            assert got == want
            continue
        held = budget + 1  # every older entry is dropped too
        assert got == {**want, "body": None, "dropped": True, "headers": got["headers"]}
        assert list(got["headers"]) == [n for n in want["headers"] if n in got["headers"]]
        assert all(got["headers"][n] == want["headers"][n] for n in got["headers"])
        assert sum(len(n) + len(v) for n, v in got["headers"].items()) <= DROPPED_HEADER_BYTES


def _entry(number: int, body_size: int, header_size: int, json: bool) -> JournalEntry:
    headers = {"content-type": "application/json", "x-pad": "h" * header_size}
    body = jsonbytes.dumps({"n": number, "text": "b" * body_size}) if json else b"t" * body_size
    return JournalEntry(0, f"req_{number}", "POST", CHAT, 0.0, 0.0, headers, body or None)


def _weight(entry: dict[str, Any]) -> int:
    """What the shared journal weighs of an entry: its bodies as it holds them."""
    bodies = {"headers": entry["headers"], "body": entry["body"], "dropped": False}
    return len(jsonbytes.dumps(bodies))


# --- 6. the file store's bounds across workers ----------------------------------------------------


def test_uploads_at_once_on_several_workers_stay_within_the_file_bytes(redis: RedisServer) -> None:
    """MOCKAI_FILE_BYTES=1000 and twenty 600-byte uploads at once over two workers: one is kept,
    the others get the 400; once it is deleted, there is room again."""
    env = {"MOCKAI_FILE_BYTES": "1000"}
    with ServeProcess(["--state", redis.url(), "--workers", "2", "--quiet"], env) as served:
        statuses = asyncio.run(_uploads_at_once(served.url, 20))
        with _sdk(served.url) as client:
            held = client.files.list().data
            assert sorted(statuses) == [200] + [400] * 19
            assert [f.bytes for f in held] == [600]
            client.files.delete(held[0].id)
            assert client.files.create(file=("again.txt", b"a" * 600), purpose="assistants")


async def _uploads_at_once(url: str, count: int) -> list[int]:
    async def upload(number: int) -> int:
        # A client (a connection) each: the kernel spreads them over the workers.
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.post(
                url + "/files",
                data={"purpose": "assistants"},
                files={"file": (f"f{number}.txt", b"a" * 600)},
            )
            return answer.status_code

    return list(await asyncio.gather(*(upload(number) for number in range(count))))
