"""Secrets on disk from recording: none in any field a stream spells a key across, in a `.bak`,
in a cookie an upstream echoes; `.bak` and conflict files as private as the cassette; a
compressed request body forwarded decoded is not labelled compressed.

Properties: a key split at any points across the deltas of any field path of a streamed choice
(a provider's own field included) is scrubbed, and never reaches the cassette when recorded; every
cookie value long enough to hunt for is hunted for.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import stat
import string
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web
from cassette_support import LoopbackApp, chat_completion, interactions
from conformance import checked_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockai import MockServer
from mockai.cassette import Cassette, CassetteFile
from mockai.cassette.format import Interaction
from mockai.cassette.redact import Scrubber, request_secrets
from mockai.cassette.scan import scan_interaction, scrub_interaction

MODEL = "gpt-4o-mini"
KEY = "sk-proj-SPELLEDKEY0123456789abcdefABCDEFghij"  # key-shaped, never real
COOKIE_SECRET = "COOKIESESSIONSECRET0123456"
COOKIE = f"session={COOKIE_SECRET}; theme=dark"
VCR_KEY = "sk-proj-VCRLEAKEDKEY0123456789abcdefABCDEFgh"


def _windows(secret: str, width: int = 12) -> list[str]:
    """Every run of `width` characters of `secret`: none may be on disk, the key cut or whole."""
    return [secret[i : i + width] for i in range(len(secret) - width + 1)]


def _leaks(text: str, secret: str) -> list[str]:
    return [window for window in _windows(secret) if window in text]


# A delta field path: keys, each maybe followed by a list item's `index` (a tool call's); the
# last is a key. `["audio", "transcript"]`, `["tool_calls", 0, "function", "arguments"]`.
FieldPath = list[str | int]


def _nested(path: FieldPath, leaf: str) -> Any:
    """The delta holding `leaf` at `path`."""
    value: Any = leaf
    for part in reversed(path):
        value = [{"index": part, **value}] if isinstance(part, int) else {part: value}
    return value


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-spell",
        "object": "chat.completion.chunk",
        "created": 1735689600,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _pieces(text: str, cuts: list[int]) -> list[str]:
    points = sorted({cut % (len(text) + 1) for cut in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points)] or [text]


async def _spell(request: web.Request) -> web.StreamResponse:
    """A chat stream whose deltas spell the user message's `pieces` (in hex: the request must
    not hold the key) at its `path`; with a Cookie, a chat answer (stream or JSON) echoing it."""
    body = await request.json()
    cookie = request.headers.get("Cookie")
    if cookie is not None:
        text = f"your cookie is {cookie} ok"
        if not body.get("stream"):
            return web.json_response(chat_completion("chatcmpl-cookie", MODEL, text))
        path, pieces = ["content"], [text[i : i + 5] for i in range(0, len(text), 5)]
    else:
        spec = json.loads(body["messages"][-1]["content"])
        path, pieces = spec["path"], [bytes.fromhex(piece).decode() for piece in spec["pieces"]]
    answer = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await answer.prepare(request)
    for piece in pieces:
        await answer.write(_chunk(_nested(path, piece)))
    await answer.write(_chunk({}, "stop") + b"data: [DONE]\n\n")
    return answer


@pytest.fixture(scope="module")
def upstream() -> Iterator[LoopbackApp]:
    with LoopbackApp({"/v1/chat/completions": _spell}) as app:
        yield app


def _record_spelled(url: str, path: FieldPath, pieces: list[str]) -> None:
    spec = json.dumps({"path": path, "pieces": [piece.encode().hex() for piece in pieces]})
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": spec}]}
    with httpx.stream("POST", url + "/chat/completions", json=body, timeout=10) as response:
        assert response.status_code == 200
        response.read()


# --- 1. a key spelled across the deltas of any field --------------------------------------------

PROVIDER_FIELDS: list[FieldPath] = [
    ["reasoning"],  # OpenRouter, Ollama, Groq
    ["function_call", "arguments"],  # legacy functions
    ["audio", "transcript"],
]


def test_a_key_spelled_in_any_delta_field_is_scrubbed_when_recorded(
    upstream: LoopbackApp, tmp_path: Path
) -> None:
    cassette = tmp_path / "spell.yaml"
    text = f"your key is {KEY} ok"
    pieces = [text[i : i + 6] for i in range(0, len(text), 6)]
    with MockServer(
        log_requests=False, upstream=upstream.url, cassette=str(cassette), record_mode="once"
    ) as recorder:
        for path in PROVIDER_FIELDS:
            _record_spelled(recorder.url, path, pieces)
    stored = cassette.read_text()
    assert _leaks(stored, KEY) == []
    recorded = interactions(cassette)
    assert len(recorded) == len(PROVIDER_FIELDS)
    for path, interaction in zip(PROVIDER_FIELDS, recorded, strict=True):
        spelled = "".join(_at(payload, path) for payload in _payloads(interaction.response_body))
        assert spelled == Scrubber().scrub_text(text)  # the placeholder where the key was
    checked = subprocess.run(
        [sys.executable, "-m", "mockai", "check", str(cassette)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _payloads(body: bytes) -> list[dict[str, Any]]:
    lines = body.decode().splitlines()
    return [json.loads(line[6:]) for line in lines if line.startswith("data: {")]


def _at(payload: dict[str, Any], path: FieldPath) -> str:
    node: Any = payload["choices"][0]["delta"]
    for part in path:
        if isinstance(part, int):
            node = node[0] if isinstance(node, list) and node else {}
        else:
            node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, str) else ""


def test_check_finds_a_key_spelled_across_reasoning_deltas(tmp_path: Path) -> None:
    text = f"think {KEY} done"
    body = b"".join(_chunk({"reasoning": text[i : i + 7]}) for i in range(0, len(text), 7))
    cassette = tmp_path / "leaky.yaml"
    text_of = CassetteFile.dumps(Cassette(cassette, [_interaction(body + b"data: [DONE]\n\n")]))
    cassette.write_text(text_of)
    assert _leaks(cassette.read_text(), KEY) == []  # (cut: no event holds 12 of it)
    checked = subprocess.run(
        [sys.executable, "-m", "mockai", "check", str(cassette)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode != 0
    assert "spells out an sk- API key across events" in checked.stdout + checked.stderr


def _interaction(stream: bytes) -> Interaction:
    return Interaction(
        method="POST",
        uri="https://api.openai.com/v1/chat/completions",
        request_body=b'{"model":"gpt-4o-mini","stream":true}',
        request_headers={"Content-Type": ["application/json"]},
        status=200,
        reason="OK",
        response_headers={"Content-Type": ["text/event-stream"]},
        response_body=stream,
    )


_KEYS = st.text(string.ascii_lowercase + "_", min_size=1, max_size=10).filter(
    lambda key: key != "index"
)
_PATHS = st.lists(
    st.tuples(_KEYS, st.none() | st.integers(min_value=0, max_value=3)), min_size=1, max_size=4
).map(lambda segments: _path(segments))
_SPELLED_KEYS = st.text(string.ascii_letters + string.digits, min_size=40, max_size=48).map(
    lambda tail: "sk-proj-" + tail
)


def _path(segments: list[tuple[str, int | None]]) -> FieldPath:
    path: FieldPath = []
    for number, (key, index) in enumerate(segments):
        path.append(key)
        if index is not None and number < len(segments) - 1:
            path.append(index)
    return path


@settings(max_examples=120, deadline=None)
@given(
    path=_PATHS,
    secret=_SPELLED_KEYS,
    cuts=st.lists(st.integers(min_value=0), min_size=1, max_size=12),
)
def test_a_key_split_across_any_delta_path_is_never_written(
    path: FieldPath, secret: str, cuts: list[int]
) -> None:
    text = f"a {secret} b"
    body = b"".join(_chunk(_nested(path, piece)) for piece in _pieces(text, cuts))
    scrubbed = scrub_interaction(_interaction(body + b"data: [DONE]\n\n"), Scrubber())
    assert scan_interaction(scrubbed, Scrubber()) == []
    written = CassetteFile.dumps(Cassette(Path("spell.yaml"), [scrubbed]))
    assert _leaks(written, secret) == []
    spelled = "".join(_at(payload, path) for payload in _payloads(scrubbed.response_body))
    assert spelled == Scrubber().scrub_text(text)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=_PATHS,
    secret=_SPELLED_KEYS,
    cuts=st.lists(st.integers(min_value=0), min_size=1, max_size=8),
)
def test_a_key_recorded_split_across_any_delta_path_is_never_on_disk(
    upstream: LoopbackApp, tmp_path: Path, path: FieldPath, secret: str, cuts: list[int]
) -> None:
    cassette = Path(tempfile.mkdtemp(dir=tmp_path)) / "spell.yaml"
    with MockServer(
        log_requests=False, upstream=upstream.url, cassette=str(cassette), record_mode="once"
    ) as recorder:
        _record_spelled(recorder.url, path, _pieces(f"a {secret} b", cuts))
    assert len(interactions(cassette)) == 1
    assert _leaks(cassette.read_text(), secret) == []


# --- 2. `.bak` and conflict files ---------------------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    """A umask that lets a file be 0644 (what a `.bak` of a 0600 cassette must not be)."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _vcr_cassette(path: Path, authorization: str, note: str = "") -> Path:
    answer = chat_completion("chatcmpl-old", MODEL, "old")
    path.write_text(
        note
        + "interactions:\n- request:\n"
        + f"    body: '{json.dumps({'model': MODEL, 'messages': []})}'\n"
        + f"    headers:\n      authorization:\n      - {authorization}\n"
        + "    method: POST\n    uri: https://api.openai.com/v1/chat/completions\n"
        + f"  response:\n    body:\n      string: '{json.dumps(answer)}'\n"
        + "    headers:\n      content-type:\n      - application/json\n"
        + "    status:\n      code: 200\n      message: OK\nversion: 1\n"
    )
    path.chmod(0o600)
    return path


def _ask(url: str) -> None:
    spec = json.dumps({"path": ["content"], "pieces": [b"new".hex()]})
    client = openai.OpenAI(base_url=url, api_key="sk-test-0000", max_retries=0)
    with client:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": spec}], stream=True
        ).response.read()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_re_recording_a_cassette_with_a_credential_keeps_a_scrubbed_private_bak(
    upstream: LoopbackApp, tmp_path: Path
) -> None:
    cassette = _vcr_cassette(tmp_path / "vcr.yaml", f"Bearer {VCR_KEY}")
    with checked_server(upstream=upstream.url, cassette=str(cassette), record_mode="all") as rec:
        _ask(rec.url)
    backup = tmp_path / "vcr.yaml.bak"
    assert _leaks(backup.read_text(), VCR_KEY) == []
    assert _mode(backup) == _mode(cassette) == 0o600
    (old,) = interactions(backup)  # the previous version, its credential header dropped
    assert "authorization" not in {name.lower() for name in old.request_headers}
    assert json.loads(old.response_body)["choices"][0]["message"]["content"] == "old"
    assert all(_leaks(p.read_text(), VCR_KEY) == [] for p in tmp_path.iterdir())


@pytest.mark.usefixtures("umask_022")
def test_a_clean_cassettes_bak_is_its_bytes_with_its_mode(
    upstream: LoopbackApp, tmp_path: Path
) -> None:
    cassette = _vcr_cassette(tmp_path / "clean.yaml", "DUMMY", note="# kept as it was\n")
    before = cassette.read_bytes()
    with checked_server(upstream=upstream.url, cassette=str(cassette), record_mode="all") as rec:
        _ask(rec.url)
    backup = tmp_path / "clean.yaml.bak"
    assert backup.read_bytes() == before
    assert _mode(backup) == 0o600


@pytest.mark.usefixtures("umask_022")
def test_a_conflict_file_is_as_private_as_the_cassette(
    upstream: LoopbackApp, tmp_path: Path
) -> None:
    cassette = _vcr_cassette(tmp_path / "shared.yaml", "DUMMY")
    with checked_server(
        upstream=upstream.url, cassette=str(cassette), record_mode="new_episodes"
    ) as rec:
        # Another process writes the cassette anew while this one records into it.
        other = _vcr_cassette(tmp_path / "other.yaml", "DUMMY", note="# theirs\n")
        os.replace(other, cassette)
        _ask(rec.url)
    conflict = tmp_path / "shared.yaml.conflict"
    assert len(interactions(conflict)) == 2
    assert _mode(conflict) == 0o600


# --- 3. a compressed request body is forwarded decoded, unlabelled ------------------------------


def test_a_gzip_request_body_is_forwarded_without_its_content_encoding(
    upstream: LoopbackApp,
) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "gzip"}]}
    spec = {"path": ["content"], "pieces": [b"hi".hex()]}
    body["messages"][0]["content"] = json.dumps(spec)
    sent = len(upstream.requests)
    with MockServer(log_requests=False, upstream=upstream.url) as proxy:
        answer = httpx.post(
            proxy.url + "/chat/completions",
            content=gzip.compress(json.dumps({**body, "stream": True}).encode()),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            timeout=10,
        )
    assert answer.status_code == 200, answer.text
    ((_, headers, forwarded),) = upstream.requests[sent:]
    names = {name.lower(): value for name, value in headers.items()}
    assert "content-encoding" not in names
    assert json.loads(forwarded)["messages"] == body["messages"]
    assert names.get("content-length", str(len(forwarded))) == str(len(forwarded))


# --- 4. cookie values are credentials -----------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_cookie_the_upstream_echoes_never_reaches_the_cassette(
    upstream: LoopbackApp, tmp_path: Path, stream: bool
) -> None:
    cassette = tmp_path / "cookie.yaml"
    with checked_server(upstream=upstream.url, cassette=str(cassette), record_mode="once") as rec:
        client = openai.OpenAI(base_url=rec.url, api_key="sk-test-0000", max_retries=0)
        with client:
            client.chat.completions.with_raw_response.create(
                model=MODEL,
                messages=[{"role": "user", "content": "hi"}],
                stream=stream,
                extra_headers={"Cookie": COOKIE},
            ).http_response.read()
    (recorded,) = interactions(cassette)
    assert _leaks(cassette.read_text(), COOKIE_SECRET) == []
    if stream:  # (no event holds 12 characters of it: the text the events spell)
        spelled = "".join(_at(p, ["content"]) for p in _payloads(recorded.response_body))
        assert spelled.startswith("your cookie is ") and "REDACTED-" in spelled
        assert COOKIE_SECRET not in spelled


_COOKIE_NAMES = st.text(string.ascii_letters + "_", min_size=1, max_size=8)
_COOKIE_VALUES = st.text(string.ascii_letters + string.digits + "-_.%", min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(st.tuples(_COOKIE_NAMES, _COOKIE_VALUES, st.booleans()), min_size=1),
    spaced=st.booleans(),
)
def test_every_long_cookie_value_is_hunted(
    pairs: list[tuple[str, str, bool]], spaced: bool
) -> None:
    header = ("; " if spaced else ";").join(
        f'{name}="{value}"' if quoted else f"{name}={value}" for name, value, quoted in pairs
    )
    hunted = request_secrets({"Cookie": header})
    assert header in hunted or len(header) < 12
    for _, value, _ in pairs:
        assert (value in hunted) == (len(value) >= 12)
    assert hunted == sorted(hunted, key=len, reverse=True)
