"""vcrpy cassettes as vcrpy has them: what vcrpy would not read is refused, repeated headers
replay whole, a byte order mark is no scenario, placeholders are no credentials, and
`new_episodes` only appends."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import pytest
import vcr
import yaml
from aiohttp import web
from cassette_support import LoopbackApp, chat_completion
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vcr.request import Request as VcrRequest
from vcr.serialize import deserialize as vcr_deserialize
from vcr.serialize import serialize as vcr_serialize
from vcr.serializers import jsonserializer, yamlserializer
from vcr.stubs import httpx_stubs

from mockai.cassette import CassetteFile
from mockai.cassette.check import is_cassette
from mockai.cassette.format import DecodeError, Interaction, parse_cassette
from mockai.cassette.modes import RecordMode
from mockai.cassette.redact import Scrubber
from mockai.cassette.replay import replayed_headers
from mockai.cassette.writer import CassetteRecorder
from mockai.check import check_paths

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = chat_completion("chatcmpl-1", "gpt-4o-mini", "hello")
URI = "https://api.openai.com/v1/chat/completions"


def _cassette(response: dict[str, Any], request_headers: dict[str, list[str]] | None = None) -> str:
    """A one-interaction YAML cassette (vcrpy's layout) answering CHAT with `response`."""
    request = {"body": json.dumps(CHAT), "headers": request_headers or {}, "method": "POST"}
    document = {"interactions": [{"request": {**request, "uri": URI}, "response": response}]}
    return yaml.safe_dump({**document, "version": 1}, sort_keys=True)


def _response(**changes: Any) -> dict[str, Any]:
    response = {
        "body": {"string": json.dumps(ANSWER)},
        "headers": {"content-type": ["application/json"]},
        "status": {"code": 200, "message": "OK"},
    }
    return {**response, **changes}


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in _response().items() if k != key}


def _messages(path: Path) -> list[str]:
    return [str(problem) for problem in check_paths([str(path)])]


# --- 1. a response vcrpy would not read ----------------------------------------------------------

MISSING = "vcrpy cannot read it (a typo?), and mockai does not replay it"


@pytest.mark.parametrize(
    ("response", "at", "what"),
    [
        (_response(body={"strng": "{}"}), "body", "response.body has no `string`"),
        (_without("body") | {"bdy": {"string": "{}"}}, "response", "response has no `body: {"),
        (_without("headers"), "response", "response has no `headers`"),
        (_response(status={"code": 200}), "status", "response has no `status: {code, message}`"),
        (_response(body={"string": 5}), "body", "response.body.string is 5, not text"),
    ],
)
def test_a_response_vcrpy_would_not_read_is_refused_at_its_line(
    tmp_path: Path, response: dict[str, Any], at: str, what: str
) -> None:
    path = tmp_path / "typo.yaml"
    text = _cassette(response)
    path.write_text(text)
    lines = text.splitlines()
    start = lines.index("  response:")
    line = 1 + next(n for n in range(start, len(lines)) if lines[n].strip() == f"{at}:")
    [message] = _messages(path)
    assert message.startswith(f"{path}:{line}: interaction 0: {what}")
    assert message.endswith(MISSING)
    # ... and a server stops before it listens, saying the same (it replayed an empty 200).
    with pytest.raises(DecodeError, match=f"^{path}:{line}: interaction 0: "):
        conformance.checked_server(cassette=str(path)).__enter__()


def _vcrpy_replays(text: str) -> bool:
    """Whether vcrpy reads the cassette and its httpx stub (the OpenAI SDK's) makes the answer."""
    try:
        _, responses = vcr_deserialize(text, yamlserializer)
        httpx_stubs._deserialize_response(responses[0], httpx).read()
    except Exception:
        return False
    return True


def _mockai_replays(text: str) -> bool:
    try:
        parse_cassette(Path("c.yaml"), text)
    except DecodeError:
        return False
    return True


_STRINGS = st.one_of(st.text(max_size=8), st.binary(max_size=8), st.none(), st.integers())


@settings(max_examples=60, deadline=None)
@given(
    keep=st.fixed_dictionaries(
        {key: st.booleans() for key in ("status", "code", "message", "headers", "body", "string")}
    ),
    string=_STRINGS,
)
def test_mockai_reads_a_response_exactly_when_vcrpy_does(
    keep: dict[str, bool], string: Any
) -> None:
    status = {k: v for k, v in {"code": 200, "message": "OK"}.items() if keep[k]}
    response: dict[str, Any] = {
        "status": status,
        "headers": {"content-type": ["application/json"]},
        "body": {"string": string} if keep["string"] else {},
    }
    response = {k: v for k, v in response.items() if keep[k]}
    text = _cassette(response)
    assert _mockai_replays(text) == _vcrpy_replays(text)


# --- 2. a header recorded with several values --------------------------------------------------

REPEATED = {
    "content-type": ["application/json"],
    "x-multi": ["first", "second"],
    "vary": ["Origin", "Accept-Encoding"],
    "x-once": ["only"],
}


def _sse() -> str:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    delta = {"index": 0, "delta": {"content": "hi"}, "logprobs": None, "finish_reason": "stop"}
    return f"data: {json.dumps({**chunk, 'choices': [delta]})}\n\ndata: [DONE]\n\n"


@pytest.fixture(scope="module")
def repeated_cassette(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("repeated") / "repeated.yaml"
    stream_headers = {**REPEATED, "content-type": ["text/event-stream; charset=utf-8"]}
    interactions = [
        {
            "request": {"body": json.dumps(body), "headers": {}, "method": "POST", "uri": URI},
            "response": _response(headers=headers, body={"string": answer}),
        }
        for body, headers, answer in (
            (CHAT, REPEATED, json.dumps(ANSWER)),
            ({**CHAT, "stream": True}, stream_headers, _sse()),
        )
    ]
    path.write_text(yaml.safe_dump({"interactions": interactions, "version": 1}))
    return path


@pytest.mark.parametrize("stream", [False, True])
def test_every_value_of_a_repeated_header_is_replayed_as_vcrpy_does(
    repeated_cassette: Path, stream: bool
) -> None:
    body = {**CHAT, "stream": True} if stream else CHAT
    with vcr.use_cassette(str(repeated_cassette), record_mode="none"):
        recorded = httpx.post(URI, json=body)
    with conformance.checked_server(cassette=str(repeated_cassette)) as server:
        replayed = httpx.post(server.url + "/chat/completions", json=body)
    for name in ("x-multi", "vary", "x-once"):
        assert replayed.headers.get_list(name) == recorded.headers.get_list(name), name
    assert replayed.headers.get_list("x-multi") == ["first", "second"]


_NAMES = st.sampled_from(["x-multi", "X-Multi", "vary", "link", "retry-after", "date", "cf-ray"])
_VALUES = st.lists(st.text(alphabet="abcXYZ019 ,;=-", min_size=1, max_size=6), max_size=3)


@settings(max_examples=100, deadline=None)
@given(headers=st.dictionaries(_NAMES, _VALUES, max_size=6))
def test_replayed_headers_keep_each_value_in_order(headers: dict[str, list[str]]) -> None:
    interaction = Interaction("POST", URI, None, {}, 200, "OK", headers, b"{}")
    replayed = replayed_headers(interaction)
    pairs = list(replayed.items())
    expected = [
        (name.lower(), value)
        for name, values in headers.items()
        if name.lower() not in ("date", "cf-ray")  # (the connection's own, Cloudflare's)
        for value in values
    ]
    assert pairs == expected


# --- 3. a cassette saved with a byte order mark ---------------------------------------------------

RULES = "mockai: 1\nrules:\n  - name: hi\n    match: {user: hello there}\n    reply: scripted\n"


def test_a_cassette_with_a_bom_is_still_a_cassette(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "recorded.yaml").write_text("\ufeff" + _cassette(_response()), encoding="utf-8")
    (folder / "rules.yaml").write_text("\ufeff" + RULES, encoding="utf-8")  # a BOM here too
    assert _messages(folder) == []
    question = [{"role": "user", "content": "hello there"}]
    # `--scenario FOLDER` leaves the cassette alone; `--cassette FOLDER` leaves the rules alone.
    with conformance.checked_server(scenario=str(folder)) as server:
        answer = httpx.post(server.url + "/chat/completions", json={**CHAT, "messages": question})
        assert answer.json()["choices"][0]["message"]["content"] == "scripted"
    with conformance.checked_server(cassette=str(folder)) as server:
        answer = httpx.post(server.url + "/chat/completions", json=CHAT)
        assert answer.json() == ANSWER


_LINES = st.sampled_from(["interactions: []", "version: 1", "mockai: 1", "rules: []", "# note"])


@settings(max_examples=100, deadline=None)
@given(lines=st.lists(_LINES, max_size=4), name=st.sampled_from(["c.yaml", "c.json"]))
def test_a_bom_never_changes_what_a_file_is(lines: list[str], name: str) -> None:
    text = "\n".join(lines) + "\n"
    assert is_cassette(name, "\ufeff" + text) == is_cassette(name, text)


# --- 4. placeholders are no credentials -----------------------------------------------------------

PLACEHOLDERS = [
    "",
    "DUMMY",
    "REDACTED",
    "FILTERED",
    "***",
    "**********************",
    "XXXXXXXXXXXXXXXXXXXXXXXX",
    "<API_KEY>",
    "<REDACTED>",
    "[FILTERED]",
    "{token}",
    "Bearer DUMMY",
    "Bearer <OPENAI_API_KEY>",
    "Bearer sk-REDACTED-1a2b3c4d",
    "fake-key",
    "DUMMY_API_KEY_VALUE",
    "__cf_bm=abc",
    "__cf_bm=REDACTED; _cfuvid=<cookie>",
]
_KEY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_TOKENS = st.text(alphabet=_KEY_CHARS, min_size=24, max_size=48).filter(
    lambda t: any(c.isdigit() for c in t) and any(c.isalpha() for c in t)
)
REAL_KEYS = st.one_of(
    _TOKENS.map(lambda t: "sk-proj-" + t),
    _TOKENS.map(lambda t: "Bearer " + t),
    st.binary(min_size=16, max_size=16).map(bytes.hex).filter(lambda t: not t.isalpha()),
    _TOKENS.map(lambda t: f"Basic {t}=="),
    _TOKENS.map(lambda t: f"__cf_bm={t}; _cfuvid=abc"),
)
CREDENTIAL_HEADERS = st.sampled_from(["authorization", "api-key", "x-api-key", "cookie"])


def _flagged(header: str, value: str) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_text(_cassette(_response(), {header: [value]}))
        return [m for m in _messages(path) if f"request.headers.{header}" in m]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=CREDENTIAL_HEADERS, placeholder=st.sampled_from(PLACEHOLDERS), key=REAL_KEYS)
def test_check_passes_placeholders_and_flags_real_keys(
    header: str, placeholder: str, key: str
) -> None:
    assert _flagged(header, placeholder) == []
    assert _flagged(header, key) != []


def test_vcrpys_filter_headers_placeholder_passes_mockai_check(tmp_path: Path) -> None:
    async def chat(request: web.Request) -> web.Response:
        return web.json_response(ANSWER)

    dummy, leaky = tmp_path / "dummy.json", tmp_path / "leaky.json"
    with LoopbackApp({"/v1/chat/completions": chat}) as upstream:
        credentials = {"authorization": "Bearer sk-proj-" + "Zq8xW2vL9mN4bR7tY1cK5pH3"}
        for path, filters in ((dummy, [("authorization", "DUMMY")]), (leaky, [])):
            with vcr.use_cassette(str(path), serializer="json", filter_headers=filters):
                httpx.post(upstream.url + "/chat/completions", json=CHAT, headers=credentials)
    assert '"DUMMY"' in dummy.read_text()
    checked = subprocess.run(
        [sys.executable, "-m", "mockai", "check", str(dummy), str(leaky)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 1
    assert str(dummy) not in checked.stdout + checked.stderr
    assert f"{leaky}:" in checked.stdout + checked.stderr  # (a real key is still refused)


# --- 5. new_episodes only appends -----------------------------------------------------------------

SPEECH = bytes(range(256)) * 4  # not UTF-8: `!!binary` in YAML


def _vcrpy_upstream() -> LoopbackApp:
    """An upstream answering as the API does: gzip JSON, cookies, an organization, audio."""

    async def chat(request: web.Request) -> web.Response:
        headers = {
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
            "set-cookie": "__cf_bm=abc; path=/",
            "openai-organization": "org-demo",
        }
        return web.Response(body=gzip.compress(json.dumps(ANSWER).encode()), headers=headers)

    async def speech(request: web.Request) -> web.Response:
        return web.Response(body=SPEECH, content_type="audio/mpeg")

    return LoopbackApp({"/v1/chat/completions": chat, "/v1/audio/speech": speech})


def _recorded_part(text: str, suffix: str) -> str:
    """The text of a cassette's interactions, up to the end of its last one."""
    end = text.rindex("version: 1") if suffix == ".yaml" else text.rindex("\n    ]")
    return text[:end]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_new_episodes_leaves_the_recorded_interactions_byte_for_byte(
    tmp_path: Path, suffix: str
) -> None:
    cassette = tmp_path / f"session{suffix}"
    # (vcrpy's JSON serializer refuses binary bodies: the gzip one is decoded, no audio.)
    text_only = suffix == ".json"
    options = {
        "serializer": "json" if text_only else "yaml",
        "decode_compressed_response": text_only,
    }
    with _vcrpy_upstream() as upstream:
        with vcr.use_cassette(str(cassette), **options), httpx.Client() as http:
            http.post(upstream.url + "/chat/completions", json=CHAT)
            http.post(upstream.url + "/chat/completions", json=CHAT)  # (sends the cookie)
            if not text_only:
                http.post(upstream.url + "/audio/speech", json={"model": "tts-1", "input": "hi"})
        before = cassette.read_text()
        assert "__cf_bm" in before and "org-demo" in before
        assert text_only or ("gzip" in before and "!!binary" in before)
        with (
            conformance.checked_server(
                cassette=str(cassette), record_mode="new_episodes", upstream=upstream.url
            ) as server,
            openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client,
        ):
            new = [{"role": "user", "content": "new"}]
            client.chat.completions.create(model="gpt-4o-mini", messages=new)
    after = cassette.read_text()
    assert after.startswith(_recorded_part(before, suffix))
    serializer = _SERIALIZERS[suffix]
    recorded = len(vcr_deserialize(before, serializer)[0])
    assert len(vcr_deserialize(after, serializer)[0]) == recorded + 1  # (vcrpy reads it all)


_SERIALIZERS = {".yaml": yamlserializer, ".json": jsonserializer}


def _vcrpy_interaction(gzipped: bool, binary: bool, cookies: bool, n: int) -> tuple[Any, Any]:
    """A request and response as vcrpy records them (its dict form)."""
    body = json.dumps({**ANSWER, "id": f"chatcmpl-{n}"}).encode()
    response_headers = {"Content-Type": ["application/json"], "x-request-id": [f"req_{n}"]}
    request_headers = {"accept-encoding": ["gzip, deflate"], "content-type": ["application/json"]}
    if gzipped:
        body = gzip.compress(body, mtime=0)
        response_headers |= {"Content-Encoding": ["gzip"], "Content-Length": [str(len(body))]}
    if binary:
        body, response_headers = SPEECH[n:], {"Content-Type": ["audio/mpeg"]}
    if cookies:
        request_headers["cookie"] = ["__cf_bm=abc"]
        response_headers |= {"set-cookie": ["__cf_bm=abc; path=/"], "openai-organization": ["o"]}
    request = VcrRequest("POST", URI, json.dumps({**CHAT, "n": n}), request_headers)
    status = {"code": 200, "message": "OK"}
    return request, {"status": status, "headers": response_headers, "body": {"string": body}}


_VARIANTS = st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variants=_VARIANTS, suffix=st.sampled_from([".yaml", ".json"]))
def test_saving_again_writes_what_vcrpy_wrote_unchanged(
    variants: list[tuple[bool, bool, bool]], suffix: str
) -> None:
    if suffix == ".json":  # (vcrpy's JSON serializer refuses binary bodies)
        variants = [(gzipped, False, cookies) for gzipped, _, cookies in variants if not gzipped]
        variants = variants or [(False, False, False)]
    pairs = [_vcrpy_interaction(*variant, n) for n, variant in enumerate(variants)]
    recorded = {"requests": [r for r, _ in pairs], "responses": [r for _, r in pairs]}
    text = vcr_serialize(recorded, _SERIALIZERS[suffix])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"c{suffix}"
        path.write_text(text)
        loaded = CassetteFile.load(path, keep_raw=True)
        recorder = CassetteRecorder(path, RecordMode.NEW_EPISODES, loaded, Scrubber())
        saved = recorder.contents()
    new = Interaction("POST", URI, b"{}", {}, 200, "OK", {}, json.dumps(ANSWER).encode())
    saved.interactions.append(new)
    assert CassetteFile.dumps(saved).startswith(_recorded_part(text, suffix))
