"""Recording: what reaches the upstream, and what reaches the disk (secrets, data, other recorders).

Each test records through a real mockai from a loopback upstream (the `openai` SDK or httpx as
the client), then reads what was written, or replays it with the upstream gone.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import random
import string
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import conformance
import httpx
import openai
import pytest
import yaml
from aiohttp import web
from cassette_support import LoopbackApp, chat_completion, interactions
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai.cassette.redact import PLACEHOLDER, Scrubber, placeholder, redact_query
from mockai.errors import CassetteError
from mockai.wire.credentials import is_credential_header, is_credential_param

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}
SCRUBBER = Scrubber()


@contextlib.contextmanager
def sdk(url: str) -> Iterator[openai.OpenAI]:
    """The real SDK, no retries (a retry would hide the first answer)."""
    client = openai.OpenAI(base_url=url, api_key="sk-test-0000", max_retries=0)
    try:
        yield client
    finally:
        client.close()


def record(upstream: str, cassette: Path, mode: str = "once", **options: Any) -> Any:
    """A recording mockai (answers checked against the spec when it stops)."""
    return conformance.checked_server(
        cassette=str(cassette), record_mode=mode, upstream=upstream, **options
    )


async def echo_chat(request: web.Request) -> web.Response:
    """Answers a chat completion with the user's message."""
    content = (await request.json())["messages"][0]["content"]
    return web.json_response(chat_completion("chatcmpl-1", "gpt-4o-mini", content))


# --- 1. the upstream gets its own Host ------------------------------------------------------------


def test_the_upstream_is_sent_its_own_host_not_the_one_the_client_used(tmp_path: Path) -> None:
    hosts: list[str] = []

    async def virtual_host(request: web.Request) -> web.Response:
        # Like a CDN or an nginx virtual host: it answers only for the site it serves.
        hosts.append(request.headers["Host"])
        if request.headers["Host"] != f"127.0.0.1:{app.port}":
            return web.json_response({"error": {"message": "misdirected"}}, status=421)
        return await echo_chat(request)

    cassette = tmp_path / "host.yaml"
    with (
        LoopbackApp({"/v1/chat/completions": virtual_host}) as app,
        record(app.url, cassette) as recorder,
        sdk(recorder.url) as client,
    ):
        answer = client.chat.completions.create(**CHAT)
    assert answer.choices[0].message.content == "Say hello"
    assert hosts == [f"127.0.0.1:{app.port}"]
    (stored,) = interactions(cassette)
    assert "host" not in {name.lower() for name in stored.request_headers}


# --- 2. credential headers however their names are spelled ----------------------------------------

SPELLED_ANY_WAY = {
    "X-Api_Key": "3f9a1c0e8b7d4a2f9e1c0b8a7d6e5f40",
    "X-AccessToken": "tok_live_93HfA02kdLq8ZzP1",
    "X-ApiToken": "pat-na1-7c1e0d2a-5b8f-4c3e",
    "X-AuthToken": "ghx9_8dK2LmQ0rT5vW7yZ1aB",
    "x-sessiontoken": "lowercased_93HfA02kdLq8ZzP1",  # (as HTTP/2 and proxies send names)
    "X-Amz-Credential": "AKID0000EXAMPLE/20250101/us-east-1",
}


def test_credential_headers_named_with_underscores_or_camel_case_are_kept_nowhere(
    tmp_path: Path,
) -> None:
    cassette = tmp_path / "headers.yaml"
    with LoopbackApp({"/v1/chat/completions": echo_chat}) as app:
        with record(app.url, cassette) as recorder:
            answer = httpx.post(
                recorder.url + "/chat/completions", json=CHAT, headers=SPELLED_ANY_WAY
            )
            assert answer.status_code == 200, answer.text
            journal = httpx.get(recorder.url_for("/_mockai/requests")).text
        forwarded = {name.lower(): value for name, value in app.requests[0][1].items()}
    assert all(forwarded[name.lower()] == value for name, value in SPELLED_ANY_WAY.items())
    text = cassette.read_text()
    assert "Say hello" in text
    for value in SPELLED_ANY_WAY.values():
        assert value not in text
        assert value not in journal


FILLER = ["x", "my", "proxy", "gateway", "custom", "azure", "portkey", "access", "api", "user"]
CREDENTIAL = ["key", "token", "secret", "auth", "password", "session", "credential", "apikey"]


def _spelled(words: list[str], cases: list[str], joins: list[str]) -> str:
    """`words` joined the ways clients join them: `-`, `_`, or camelCase (a capital)."""
    cased = [getattr(word, case)() for word, case in zip(words, cases, strict=False)]
    name = cased[0]
    for word, join in zip(cased[1:], joins, strict=False):
        if join:
            name += join + word
        elif name[-1].isupper() and len(word) == 1:
            name += "_" + word  # (`KEY` + `X` run together is one word, for anyone)
        else:
            name += word.title()  # (run together: the capital splits)
    return name


def _names(middle: list[str]) -> st.SearchStrategy[str]:
    before = st.lists(st.sampled_from(FILLER), max_size=2)
    after = st.lists(st.sampled_from(FILLER), max_size=2)
    return st.tuples(before, after).flatmap(
        lambda parts: st.builds(
            _spelled,
            st.just([*parts[0], *middle, *parts[1]]),
            st.lists(st.sampled_from(["lower", "upper", "title"]), min_size=6, max_size=6),
            st.lists(st.sampled_from(["-", "_", ""]), min_size=5, max_size=5),
        )
    )


CREDENTIAL_NAMES = st.sampled_from(CREDENTIAL).flatmap(lambda word: _names([word]))
RATE_LIMIT_NAMES = st.sampled_from(
    [["ratelimit", "remaining", "tokens"], ["rate", "limit", "limit", "tokens"], ["ratelimit"]]
).flatmap(_names)


@settings(max_examples=300, deadline=None)
@given(credential=CREDENTIAL_NAMES, rate_limit=RATE_LIMIT_NAMES)
def test_a_credential_word_is_found_however_the_name_joins_and_cases_its_words(
    credential: str, rate_limit: str
) -> None:
    assert is_credential_header(credential), credential
    assert is_credential_param(credential), credential
    assert not is_credential_header(rate_limit), rate_limit  # (a count, never a secret)


# --- 3. a credential in the upstream URL's query ----------------------------------------------

AZURE_KEY = "3f9a1c0e8b7d4a2f9e1c0b8a7d6e5f40"


def test_a_key_in_the_upstream_query_is_not_recorded_and_the_cassette_replays(
    tmp_path: Path,
) -> None:
    async def azure(request: web.Request) -> web.Response:
        if request.query.get("api-key") != AZURE_KEY:
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        # (an upstream that echoes the key: it must not reach the cassette that way either)
        answer = chat_completion("chatcmpl-1", "gpt-4o-mini", f"Hello, {AZURE_KEY}")
        return web.json_response(answer)

    cassette = tmp_path / "azure.yaml"
    with LoopbackApp({"/openai/deployments/gpt4/chat/completions": azure}) as app:
        base = f"http://127.0.0.1:{app.port}/openai/deployments/gpt4"
        upstream = f"{base}?api-version=2024-10-21&api-key={AZURE_KEY}"
        with record(upstream, cassette) as recorder, sdk(recorder.url) as client:
            live = client.chat.completions.create(**CHAT).choices[0].message.content
    assert live == f"Hello, {AZURE_KEY}"  # (the client gets the upstream's answer as it is)
    text = cassette.read_text()
    assert AZURE_KEY not in text
    (stored,) = interactions(cassette)
    query = dict(parse_qsl(urlsplit(stored.uri).query))
    assert query["api-version"] == "2024-10-21"
    assert PLACEHOLDER.fullmatch(query["api-key"])
    with conformance.checked_server(cassette=str(cassette)) as replayer, sdk(replayer.url) as c:
        replayed = c.chat.completions.create(**CHAT).choices[0].message.content
    assert replayed is not None and replayed.startswith("Hello, REDACTED-")


def test_a_key_the_client_sends_in_the_query_replays_under_match_on_uri_and_is_never_shown(
    tmp_path: Path,
) -> None:
    query = {"api-version": "2024-10-21", "api-key": AZURE_KEY}
    cassette = tmp_path / "query.yaml"
    with (
        LoopbackApp({"/v1/chat/completions": echo_chat}) as app,
        record(app.url, cassette) as recorder,
        sdk(recorder.url) as client,
    ):
        client.chat.completions.create(**CHAT, extra_query=query)
    assert AZURE_KEY not in cassette.read_text()
    other_key = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
    with conformance.checked_server(
        cassette=str(cassette), match_on=("method", "uri", "body")
    ) as replayer:
        # The same key: the recording's placeholder stands for it, as it does in bodies.
        replayed = httpx.post(replayer.url + "/chat/completions", params=query, json=CHAT)
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["choices"][0]["message"]["content"] == "Say hello"
        # Another key: a near miss, which names neither key (it is logged and journaled too).
        missed = httpx.post(
            replayer.url + "/chat/completions", params={**query, "api-key": other_key}, json=CHAT
        )
        assert missed.status_code == 400 and "differs in uri" in missed.text
        journaled = json.dumps([entry.error for entry in replayer.requests])
    for shown in (missed.text, journaled):
        assert other_key not in shown and AZURE_KEY not in shown


def test_check_names_a_cassette_whose_uri_holds_a_credential_parameter(tmp_path: Path) -> None:
    uri = f"https://example.openai.azure.com/openai/deployments/gpt4/chat/completions?api-version=1&api-key={AZURE_KEY}"
    answer = chat_completion("chatcmpl-1", "gpt-4o-mini", "Hello")
    cassette = tmp_path / "leaky.yaml"
    cassette.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "interactions": [
                    {
                        "request": {
                            "body": json.dumps(CHAT),
                            "headers": {"Content-Type": ["application/json"]},
                            "method": "POST",
                            "uri": uri,
                        },
                        "response": {
                            "body": {"string": json.dumps(answer)},
                            "headers": {"Content-Type": ["application/json"]},
                            "status": {"code": 200, "message": "OK"},
                        },
                    }
                ],
            }
        )
    )
    checked = subprocess.run(
        [sys.executable, "-m", "mockai", "check", str(cassette)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode != 0
    assert "credential query parameters are never stored" in checked.stdout + checked.stderr
    assert AZURE_KEY not in checked.stdout + checked.stderr


PARAM_NAMES = st.one_of(
    st.sampled_from(
        ["api-key", "key", "subscription-key", "access_token", "token", "sig", "X-Amz-Signature"]
    ),
    st.sampled_from(["api-version", "limit", "after", "order", "pageToken", "next_token", "se"]),
    st.text(alphabet=string.ascii_letters + "-_", min_size=1, max_size=12),
)
PARAM_VALUES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), max_size=6))
def test_credential_parameters_are_redacted_and_every_other_parameter_kept(
    params: list[tuple[str, str]],
) -> None:
    url = "https://example.com/openai/deployments/d/chat/completions"
    query = urlencode(params)
    redacted, secrets = redact_query(f"{url}?{query}" if query else url)
    assert redact_query(redacted) == (redacted, [])  # (an earlier save's placeholders stay)
    kept = parse_qsl(urlsplit(redacted).query, keep_blank_values=True)
    assert [name for name, _ in kept] == [name for name, _ in params]
    for (name, value), (_, stored) in zip(params, kept, strict=True):
        if is_credential_param(name) and not PLACEHOLDER.search(value):
            assert stored.endswith(placeholder(value))  # (`sk-REDACTED-...` for an sk- key)
            assert (value in secrets) == (len(value) >= 12)
        else:
            assert stored == value
    if not any(is_credential_param(name) for name, _ in params):
        assert redacted == (f"{url}?{query}" if query else url)  # byte for byte


# --- 4. base64 data is data, not a Google key -----------------------------------------------------

B64_LETTERS = string.ascii_letters + string.digits + "+/"
FLOAT32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


def _splice(data: str, run: str, at: int) -> str:
    """`data` with `run` (base64 letters) written over it at `at`: still valid base64."""
    at = min(at, max(0, len(data.rstrip("=")) - len(run)))
    return data[:at] + run + data[at + len(run) :]


KEYLIKE_RUNS = st.one_of(
    st.builds("AIza{}".format, st.text(alphabet=B64_LETTERS, min_size=35, max_size=35)),
    st.builds(
        "AKIA{}".format,
        st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16),
    ),
)


# What is right before and after the run: any base64 letter, `/` and `+` often (not word
# characters, yet inside the data).
BESIDE = st.one_of(st.sampled_from("/+"), st.sampled_from(B64_LETTERS))
GOOGLE_KEYS = st.builds(
    "AIza{}".format,
    st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=35, max_size=35),
)


@settings(max_examples=300, deadline=None)
@given(
    vector=st.lists(FLOAT32, min_size=16, max_size=64),
    run=KEYLIKE_RUNS,
    before=BESIDE,
    after=BESIDE,
    at=st.integers(min_value=0, max_value=400),
    key=GOOGLE_KEYS,
    around=st.sampled_from(["{}", " {} ", "key={}&x=1", "\n{}\n", "'{}'"]),
)
def test_base64_data_survives_scrubbing_and_a_key_standing_alone_does_not(
    vector: list[float], run: str, before: str, after: str, at: int, key: str, around: str
) -> None:
    packed = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    spliced = _splice(packed, before + run + after, at)  # (a key-shaped run inside the data)
    assert len(base64.b64decode(spliced, validate=True)) == 4 * len(vector)
    for data in (packed, spliced):
        body = json.dumps({"object": "list", "data": [{"embedding": data}]}).encode()
        assert SCRUBBER.scrub_body(body) == body
        assert SCRUBBER.scan(body.decode()) == []
    # A real key, alone in text or in JSON (after a JSONL line's `\n` too), is still one.
    assert key not in SCRUBBER.scrub_text(around.format(key))
    body = json.dumps({"key": key, "note": f"use {key}", "jsonl": f"{{}}\n{key}"}).encode()
    scrubbed = SCRUBBER.scrub_body(body)
    assert key.encode() not in scrubbed and b"AIzaREDACTED-" in scrubbed


def test_a_recorded_embedding_whose_base64_spells_a_key_replays_intact(tmp_path: Path) -> None:
    numbers = random.Random(7)
    floats = [numbers.uniform(-0.1, 0.1) for _ in range(256)]
    packed = base64.b64encode(struct.pack("<256f", *floats)).decode()
    packed = _splice(packed, "/AIzaSyD3x9Kq0mZ4pQ7vW2bN8cR5tY1uE6hJ0kLz", 400)

    async def embeddings(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "model": "text-embedding-3-small",
                "data": [{"object": "embedding", "index": 0, "embedding": packed}],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        )

    cassette = tmp_path / "embeddings.yaml"
    expected = list(struct.unpack("<256f", base64.b64decode(packed)))
    with (
        LoopbackApp({"/v1/embeddings": embeddings}) as app,
        record(app.url, cassette) as recorder,
        sdk(recorder.url) as client,
    ):
        live = client.embeddings.create(model="text-embedding-3-small", input="x")
    assert live.data[0].embedding == expected
    assert "REDACTED" not in cassette.read_text()
    with conformance.checked_server(cassette=str(cassette)) as replayer, sdk(replayer.url) as c:
        replayed = c.embeddings.create(model="text-embedding-3-small", input="x")
    assert replayed.data[0].embedding == expected


# --- 5. several recorders of one cassette ---------------------------------------------------------


def _questions(paths: list[Path]) -> list[str]:
    return sorted(
        json.loads(i.request_body or b"")["messages"][0]["content"]
        for path in paths
        for i in interactions(path)
    )


def test_three_recorders_of_one_cassette_each_keep_their_own_conflict_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cassette = tmp_path / "shared.yaml"
    with (
        caplog.at_level(logging.INFO, logger="mockai"),
        LoopbackApp({"/v1/chat/completions": echo_chat}) as app,
        contextlib.ExitStack() as stack,
    ):
        servers = [stack.enter_context(record(app.url, cassette, "new_episodes")) for _ in range(3)]
        clients = [stack.enter_context(sdk(server.url)) for server in servers]
        for round_ in range(3):
            for number, client in enumerate(clients):
                question = f"server {number} round {round_}"
                messages = [{"role": "user", "content": question}]
                client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    files = sorted(tmp_path.glob("shared.yaml*"))
    assert [f.name for f in files] == [
        "shared.yaml",
        "shared.yaml.conflict",
        "shared.yaml.conflict-2",
    ]
    expected = sorted(f"server {n} round {r}" for n in range(3) for r in range(3))
    assert _questions(files) == expected  # nine recorded, nine kept, none twice
    said = [r.getMessage() for r in caplog.records if "changed on disk" in r.getMessage()]
    assert len(said) == 2
    assert any(m.endswith(f"saved to {cassette}.conflict instead.") for m in said)
    assert any(m.endswith(f"saved to {cassette}.conflict-2 instead.") for m in said)


def _waiting_for_lock(folder: Path) -> bool:
    """True when some process waits for the flock on `folder` (Linux's /proc/locks says)."""
    inode = f":{folder.stat().st_ino} "
    with open("/proc/locks") as locks:
        return any("->" in line and inode in line for line in locks)


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="needs Linux's /proc/locks")
def test_a_save_waits_for_another_recorders_save_and_then_sees_it(tmp_path: Path) -> None:
    import fcntl  # (POSIX only, as the lock mockai takes)

    # Another recorder (another process, as pytest-xdist workers are) saves the cassette while
    # this one is about to: between a check and a rename, one save would overwrite the other.
    cassette = tmp_path / "raced.yaml"
    with LoopbackApp({"/v1/chat/completions": echo_chat}) as app:
        with record(app.url, tmp_path / "other.yaml") as other, sdk(other.url) as c:
            c.chat.completions.create(**CHAT)  # (what the other recorder saves)
        theirs = (tmp_path / "other.yaml").read_bytes()
        with record(app.url, cassette, "new_episodes") as recorder, sdk(recorder.url) as client:
            folder = os.open(tmp_path, os.O_RDONLY)
            try:
                fcntl.flock(folder, fcntl.LOCK_EX)  # the other recorder is saving
                messages = [{"role": "user", "content": "mine"}]
                client.chat.completions.create(model="gpt-4o-mini", messages=messages)
                deadline = time.monotonic() + 30  # (a bound, not a pace: the wait ends at once)
                while not (cassette.exists() or _waiting_for_lock(tmp_path)):
                    assert time.monotonic() < deadline, "the recorder neither saved nor waited"
                    time.sleep(0.01)
                cassette.write_bytes(theirs)  # its save lands
            finally:
                os.close(folder)  # (releases the lock)
    assert cassette.read_bytes() == theirs  # never overwritten
    assert _questions([cassette.with_name("raced.yaml.conflict")]) == ["mine"]


# --- 6. a cassette name with no room for its siblings' names --------------------------------------


def test_a_cassette_name_the_file_system_refuses_is_refused_at_startup(
    tmp_path: Path,
) -> None:
    longest = os.pathconf(tmp_path, "PC_NAME_MAX")
    sibling = len(".NAME.conflict-999.XXXXXXXX.tmp") - len("NAME")
    # (A name that fits but leaves no room for its siblings' records: tests/test_fix6_plugin.py.)
    too_long = tmp_path / ("t" * (longest + 1 - len(".yaml")) + ".yaml")
    refused = pytest.raises(CassetteError, match=r"File name too long")
    with refused, record("http://127.0.0.1:9/v1", too_long, "all"):
        pass
    # The longest name that starts can save its `.bak` and a numbered `.conflict` too.
    cassette = tmp_path / ("t" * (longest - sibling - len(".yaml")) + ".yaml")
    taken = cassette.with_name(cassette.name + ".conflict")
    with LoopbackApp({"/v1/chat/completions": echo_chat}) as app:
        for mode in ("once", "all"):
            with record(app.url, cassette, mode) as server, sdk(server.url) as client:
                client.chat.completions.create(**CHAT)
        taken.write_text("another session's")
        with record(app.url, cassette, "new_episodes") as server, sdk(server.url) as client:
            cassette.write_text(cassette.read_text() + "\n")  # (changed on disk meanwhile)
            client.chat.completions.create(
                **{**CHAT, "messages": [{"role": "user", "content": "b"}]}
            )
    assert len(interactions(cassette.with_name(cassette.name + ".bak"))) == 1
    assert taken.read_text() == "another session's"
    assert _questions([cassette.with_name(cassette.name + ".conflict-2")]) == ["Say hello", "b"]
