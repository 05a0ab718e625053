"""Cassettes as users keep them: a damaged compressed body is refused at load (serve does not
start, check names its line) instead of replayed raw; `new_episodes` appends into the file's
own text, its comments kept; a conversation item's null-valued keys match their absence."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import brotli
import conformance
import pytest
import yaml
import zstandard
from cassette_support import SECRET_KEY
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sdk import sdk
from vcr.serializers import yamlserializer

from mockai import MockServer
from mockai.cassette import CassetteFile, DecodeError
from mockai.cassette.encodings import UndecodableBody, decoded
from mockai.cassette.format import Interaction
from mockai.cassette.matching import MATCHERS, RequestView, failures
from mockai.cassette.modes import RecordMode
from mockai.cassette.redact import Scrubber
from mockai.cassette.splice import Splice
from mockai.cassette.writer import CassetteRecorder
from mockai.cli import main

ROOT = Path(__file__).resolve().parent.parent
ANSWER = {
    "id": "chatcmpl-kept",
    "object": "chat.completion",
    "created": 1735689600,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Kept.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
ANSWER_BYTES = json.dumps(ANSWER).encode()

# --- 1. a damaged compressed body is refused, never replayed raw ---------------------------------


def _encoded_cassette(body: bytes, encoding: str) -> str:
    packed = base64.b64encode(body).decode()
    return (
        "interactions:\n"
        "- request:\n    body: null\n    headers: {}\n    method: GET\n"
        "    uri: https://api.openai.com/v1/models\n  response:\n"
        f"    body: {{string: !!binary '{packed}'}}\n"
        f"    headers:\n      Content-Encoding: ['{encoding}']\n"
        "      Content-Type: [application/json]\n"
        "    status: {code: 200, message: OK}\n"
        "version: 1\n"
    )


def _flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x55]) + data[at + 1 :]


GZIPPED = gzip.compress(ANSWER_BYTES, mtime=0)


def test_a_damaged_gzip_body_stops_serve_and_check_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged, truncated = tmp_path / "damaged.yaml", tmp_path / "truncated.yaml"
    damaged.write_text(_encoded_cassette(_flipped(GZIPPED, len(GZIPPED) // 2), "gzip"))
    truncated.write_text(_encoded_cassette(GZIPPED[: len(GZIPPED) // 2], "gzip"))
    said = "interaction 0: its gzip body is damaged or truncated: it does not decode"
    assert f"mockai: {damaged}:2: {said}" in _refused_to_serve(damaged)
    assert main(["check", str(tmp_path)]) == 1
    assert [line.split(", and is")[0] for line in capsys.readouterr().err.splitlines()] == [
        f"{damaged}:2: {said}",
        f"{truncated}:2: {said}",
        "mockai check: 2 problem(s)",
    ]


def _refused_to_serve(cassette: Path) -> str:
    """What `mockai serve --cassette` said as it exited with 2 (a failure, at once, if it starts
    listening instead: it would answer until stopped)."""
    with subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--cassette", str(cassette)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as server:
        assert server.stdout is not None
        said = []
        for line in server.stdout:  # (ends when the process does)
            said.append(line)
            if "listening on" in line:
                server.kill()
                pytest.fail("mockai serve started:\n" + "".join(said))
        assert server.wait(timeout=30) == 2, "".join(said)
    return "".join(said)


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
    "br": brotli.compress,
}


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_a_body_that_does_not_decompress_is_refused_unless_it_is_text(
    tmp_path: Path, encoding: str
) -> None:
    path = tmp_path / f"{encoding}.yaml"
    packed = ENCODERS[encoding](ANSWER_BYTES * 20)
    path.write_text(_encoded_cassette(packed[: len(packed) // 2], encoding))
    with pytest.raises(DecodeError, match=f":2: interaction 0: its {encoding} body is damaged"):
        CassetteFile.load(path)
    # What a client that decompresses (aiohttp) records under the header: kept as it is.
    path.write_text(_encoded_cassette(ANSWER_BYTES, encoding))
    assert CassetteFile.load(path).interactions[0].response_body == ANSWER_BYTES


def _refused_or_original(body: bytes, encoding: str, original: bytes) -> None:
    try:
        result = decoded(body, [encoding])
    except UndecodableBody as error:
        assert "damaged or truncated" in str(error)
        return
    assert result == original  # (a changed header byte the decoder does not read)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(), original=st.binary(max_size=300), encoding=st.sampled_from(["gzip", "deflate"])
)
def test_a_damaged_gzip_or_deflate_body_is_refused_or_its_original_never_raw(
    data: st.DataObject, original: bytes, encoding: str
) -> None:
    packed = ENCODERS[encoding](original)
    assert decoded(packed, [encoding]) == original
    # (Cut to its first byte, a deflate stream is `x`: text, which a body recorded decoded is.)
    cut = data.draw(st.integers(1 if encoding == "gzip" else 2, len(packed) - 1), label="cut")
    _refused_or_original(packed[:cut], encoding, original)
    at = data.draw(st.integers(0, len(packed) - 1), label="at")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != packed[at]), label="byte")
    _refused_or_original(packed[:at] + bytes([byte]) + packed[at + 1 :], encoding, original)


# --- 2. new_episodes keeps the file's own text --------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockServer]:
    with conformance.checked_server(seed=1) as server:
        yield server


def test_new_episodes_keeps_the_comments_of_the_cassette_it_appends_to(
    tmp_path: Path, upstream: MockServer
) -> None:
    original = (ROOT / "cassettes" / "chat_json.yaml").read_text().splitlines(keepends=True)
    original.insert(0, "# Recorded against gpt-4o-mini; see ENG-123.\n")
    method = next(n for n, line in enumerate(original) if line.startswith("    method:"))
    original[method] = original[method].rstrip("\n") + "  # the only call the app makes\n"
    original.insert(method + 1, "    # keep: the app asserts on this exact answer\n")
    original.append("# end\n")
    path = tmp_path / "commented.yaml"
    path.write_text("".join(original))
    with (
        conformance.checked_server(
            cassette=str(path), record_mode="new_episodes", upstream=upstream.url
        ) as server,
        sdk(server) as client,
    ):
        question = [{"role": "user", "content": "a brand new question"}]
        client.chat.completions.create(model="gpt-4o-mini", messages=question)  # type: ignore[arg-type]
    after = path.read_text().splitlines(keepends=True)
    assert _in_order(original, after), "".join(after)
    [old, new] = CassetteFile.load(path).interactions
    assert b"capital of France" in (old.request_body or b"")
    assert b"a brand new question" in (new.request_body or b"")


def _in_order(lines: list[str], within: list[str]) -> bool:
    rest = iter(within)
    return all(any(line == other for other in rest) for line in lines)


def _new(n: int) -> Interaction:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"new {n}"}]})
    uri = "https://api.openai.com/v1/chat/completions"
    return Interaction("POST", uri, body.encode(), {}, 200, "OK", {}, ANSWER_BYTES)


def _record(path: Path, interactions: list[Interaction]) -> CassetteRecorder:
    """`interactions` recorded into `path` with `new_episodes`, as a recording server does."""
    loaded = CassetteFile.load(path, keep_raw=True)
    recorder = CassetteRecorder(path, RecordMode.NEW_EPISODES, loaded, Scrubber())

    async def record() -> None:
        for interaction in interactions:
            assert recorder.add(interaction)
        await recorder.flush()

    asyncio.run(record())
    return recorder


COMMENT_TEXT = st.text(st.characters(categories=("L", "N", "P", "S", "Zs")), max_size=30)
OLD_BODY = '{{"model":"m","messages":[{{"role":"user","content":"old {n}"}}]}}'


@st.composite
def commented_cassettes(draw: st.DrawFn) -> tuple[str, int]:
    """A cassette of 0 to 3 interactions with comments (any text) on lines of their own and
    after values, anywhere YAML takes one; its list at column 0 or 2, `version` first or last."""
    old = draw(st.integers(0, 3))
    indent = draw(st.sampled_from(["", "  "]))

    def own_line(at: str) -> list[str]:
        return [f"{at}#{draw(COMMENT_TEXT)}\n"] if draw(st.booleans()) else []

    def after() -> str:
        return f"  #{draw(COMMENT_TEXT)}" if draw(st.booleans()) else ""

    lines = [*own_line(""), f"interactions:{' []' if old == 0 else ''}{after()}\n"]
    for n in range(old):
        lines += [
            *own_line(indent),
            f"{indent}- request:{after()}\n",
            f"{indent}    body: '{OLD_BODY.format(n=n)}'{after()}\n",
            f"{indent}    headers: {{}}\n",
            *own_line(indent + "    "),
            f"{indent}    method: POST{after()}\n",
            f"{indent}    uri: https://api.openai.com/v1/chat/completions\n",
            f"{indent}  response:\n",
            *own_line(indent + "  "),
            f"{indent}    body: {{string: '{{}}'}}{after()}\n",
            f"{indent}    headers: {{content-type: [application/json]}}\n",
            f"{indent}    status: {{code: 200, message: OK}}{after()}\n",
        ]
    version = [f"version: 1{after()}\n"]
    lines = version + lines if draw(st.booleans()) else lines + version
    return "".join(lines + own_line("")), old


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cassette=commented_cassettes(), new=st.integers(1, 3), crlf=st.booleans())
def test_appending_keeps_every_line_of_a_commented_cassette_in_order(
    cassette: tuple[str, int], new: int, crlf: bool
) -> None:
    text, old = cassette
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_bytes(text.encode().replace(b"\n", b"\r\n") if crlf else text.encode())
        _record(path, [_new(n) for n in range(new)])
        written = path.read_bytes()
        loaded = CassetteFile.load(path).interactions
        assert not path.with_name("c.yaml.bak").exists()
    # The file keeps its line endings: a CRLF file's new lines are CRLF too.
    assert written.count(b"\n") == (written.count(b"\r\n") if crlf else written.count(b"\n"))
    assert crlf or b"\r" not in written
    after = written.decode().replace("\r\n", "\n")
    lines = text.splitlines(keepends=True)
    if old == 0:  # (`interactions: []` loses its brackets, and only them)
        lines = [line.replace("interactions: []", "interactions:") for line in lines]
    assert _in_order(lines, after.splitlines(keepends=True)), after
    asked = [json.loads(i.request_body or b"")["messages"][0]["content"] for i in loaded]
    assert asked == [f"old {n}" for n in range(old)] + [f"new {n}" for n in range(new)]


# What a file may hold around its list that bears on how new items read back: an anchor in an
# old item, an alias after the list (which a new item's anchor of the same name would capture),
# a second `interactions` key or a merge at the root (a load keeps another list), a directive
# that renames the tags, a second document.
HOSTILE = {
    "anchor": lambda text: text.replace("- request:", "- request: &id001", 1),
    "alias after": lambda text: text + "again: *id001\n",
    "second key": lambda text: text + "interactions: []\n",
    "merge": lambda text: text + "<<: {x: 1}\n",
    "tag directive": lambda text: "%TAG !! tag:example.com,2000:\n---\n" + text,
    "second document": lambda text: text + "---\nx: 1\n",
}
ITEM_VALUES = st.dictionaries(
    st.sampled_from(["a", "b", "request", "<<"]),
    st.one_of(st.text(max_size=20), st.integers(), st.none()),
    max_size=3,
)


@st.composite
def new_items(draw: st.DrawFn) -> str:
    """A block list at column 0 as a YAML dumper writes one, its items sharing values (anchors
    and aliases) or holding block scalars and tagged ones."""
    shared = draw(ITEM_VALUES)
    items: list[Any] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["plain", "shared", "block", "binary"]))
        if kind == "shared":
            items.append({"request": shared, "response": shared})
        elif kind == "block":
            items.append({"request": {"body": draw(st.text(max_size=40)) + "\nline two\n"}})
        elif kind == "binary":
            items.append({"request": {"body": draw(st.binary(max_size=20))}})
        else:
            items.append(draw(ITEM_VALUES))
    return str(yaml.dump(items, default_flow_style=False, allow_unicode=True))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cassette=commented_cassettes(),
    hostile=st.lists(st.sampled_from(sorted(HOSTILE)), max_size=3, unique=True),
    items=new_items(),
)
# (A directive renaming `!!`: a new item's `!!binary` body would mean another tag in the file.)
@example(
    cassette=("interactions:\n- request: {}\nversion: 1\n", 1),
    hostile=["tag directive"],
    items=yaml.dump([{"request": {"body": b"\xff"}}]),
)
def test_a_splice_reads_back_as_the_file_then_the_new_items_or_is_not_made(
    cassette: tuple[str, int], hostile: list[str], items: str
) -> None:
    # The splice is judged by the YAML parser's events, not by loading the result (a save of a
    # large cassette had loaded it whole, ~1.2 s a save for 3 MB): whatever the file holds
    # around its list, a splice made reads back, by vcrpy's loader, as the file's document with
    # the new items after its own; and a plain file always takes one.
    text, _ = cassette
    for name in hostile:
        text = HOSTILE[name](text)
    try:
        before = yamlserializer.deserialize(text)
    except yaml.YAMLError:
        before = None  # (not a cassette vcrpy reads: no splice may be made of it)
    splice = Splice.of(text)
    result = splice.appended(items) if splice is not None else None
    if not hostile and "&" not in items:
        assert result is not None
    if result is not None:
        assert isinstance(before, dict)
        expected = {**before, "interactions": [*before["interactions"], *yaml.safe_load(items)]}
        assert yamlserializer.deserialize(result) == expected


def test_appending_to_a_crlf_cassette_keeps_it_crlf(tmp_path: Path) -> None:
    """A cassette checked out with Windows line endings gets its new interactions in them too
    (a session's diff is its new lines, not every line's ending)."""
    shipped = (Path(__file__).parent.parent / "cassettes" / "chat_json.yaml").read_bytes()
    path = tmp_path / "c.yaml"
    path.write_bytes(b"# recorded on Windows\r\n" + shipped.replace(b"\n", b"\r\n"))
    _record(path, [_new(0)])
    after = path.read_bytes()
    assert after.count(b"\n") == after.count(b"\r\n") > shipped.count(b"\n") + 1
    assert after.startswith(b"# recorded on Windows\r\n")
    assert len(CassetteFile.load(path).interactions) == 2


def _vcrpy_json(path: Path) -> str:
    """A JSON cassette of one interaction, as vcrpy's JSON serializer writes it."""
    yaml_path = path.with_suffix(".yaml")
    yaml_path.write_text(_encoded_cassette(b"{}", "identity"))
    loaded = CassetteFile.load(yaml_path)
    return CassetteFile.dumps(type(loaded)(path, loaded.interactions))


def test_a_cassette_that_cannot_take_items_in_its_own_text_is_kept_in_bak(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flow = tmp_path / "flow.yaml"  # (a comment, and a flow-style list: written anew)
    flow.write_text("# mine\n" + json.dumps(json.loads(_vcrpy_json(tmp_path / "x.json"))))
    hand = tmp_path / "hand.json"  # (JSON formatted by hand)
    hand.write_text(json.dumps(json.loads(_vcrpy_json(hand)), indent=1))
    vcrpy = tmp_path / "vcrpy.json"  # (as vcrpy writes it: written anew, it is unchanged)
    vcrpy.write_text(_vcrpy_json(vcrpy))
    for path in (flow, hand, vcrpy):
        before = path.read_bytes()
        with caplog.at_level(logging.WARNING, logger="mockai.cassette"):
            _record(path, [_new(0), _new(1)])
        assert len(CassetteFile.load(path).interactions) == 3
        backup = path.with_name(path.name + ".bak")
        if path is vcrpy:
            assert not backup.exists()
            assert path.read_bytes().startswith(before.rsplit(b"}", 3)[0])
        else:
            assert backup.read_bytes() == before
    said = [r.getMessage() for r in caplog.records if "writes it anew" in r.getMessage()]
    assert said == [
        f"mockai: appending to {path} writes it anew (a JSON or flow-style cassette cannot take "
        "new interactions in its own text: its comments and formatting would be lost); the "
        f"previous version is kept in {path}.bak"
        for path in (flow, hand)
    ]


def test_a_comment_holding_a_key_is_not_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keyed.yaml"
    path.write_text(f"# recorded with {SECRET_KEY}\n" + _encoded_cassette(b"{}", "identity"))
    with caplog.at_level(logging.WARNING, logger="mockai.cassette"):
        recorder = _record(path, [_new(0)])
    assert recorder.saves >= 1
    assert SECRET_KEY not in path.read_text()
    assert len(CassetteFile.load(path).interactions) == 2
    assert not path.with_name("keyed.yaml.bak").exists()
    assert f"mockai: {path} holds what looks like a secret outside its interactions" in caplog.text


# --- 3. a conversation item's null-valued key matches its absence -------------------------------

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_the_shipped_tool_cassette_replays_the_agent_loop_the_docs_show() -> None:
    cassette = ROOT / "cassettes" / "chat_tools.yaml"
    with conformance.checked_server(cassette=str(cassette)) as server, sdk(server) as client:
        messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
        first = client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
        )
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        # The message object itself, as docs/scenarios.md appends it: `content: null`, `refusal:
        # null` go on the wire, where the recording has neither.
        messages += [
            first.choices[0].message,
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'},
        ]
        second = client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL]
        )
    assert second.choices[0].message.content


JSON_LEAF = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5)
TOOL_CALLS = st.lists(
    st.fixed_dictionaries(
        {"id": st.text(max_size=4), "type": st.just("function")},
        optional={"function": st.fixed_dictionaries({"name": st.text(max_size=4)})},
    ),
    max_size=2,
)
ITEMS = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "tool"])},
        optional={
            "content": JSON_LEAF,
            "refusal": JSON_LEAF,
            "name": JSON_LEAF,
            "tool_calls": TOOL_CALLS,
        },
    ),
    max_size=3,
)


def _nulls_changed(items: list[dict[str, Any]], draw: Callable[..., Any]) -> list[dict[str, Any]]:
    """`items` with null-valued keys added or removed (in the items and their tool calls)."""

    def changed(item: dict[str, Any]) -> dict[str, Any]:
        kept = {k: v for k, v in item.items() if v is not None or draw(st.booleans())}
        added = draw(st.lists(st.sampled_from(["content", "refusal", "name", "audio"]), max_size=2))
        return {**{k: None for k in added if k not in kept}, **kept}

    out = []
    for item in items:
        item = changed(item)
        if isinstance(item.get("tool_calls"), list):
            item["tool_calls"] = [changed(call) for call in item["tool_calls"]]
        out.append(item)
    return out


def _matches(recorded: dict[str, Any], incoming: dict[str, Any]) -> tuple[bool, bool, bool]:
    old = RequestView.build("POST", "/v1/chat/completions", "", recorded)
    new = RequestView.build("POST", "/v1/chat/completions", "", incoming)
    index_key = MATCHERS.key("body")
    assert index_key is not None
    return (
        not failures(old, new, ("method", "path", "body"), MATCHERS),
        not failures(old, new, ("messages",), MATCHERS),
        index_key(old) == index_key(new),
    )


@settings(max_examples=60, deadline=None)
@given(data=st.data(), recorded=ITEMS, field=st.sampled_from(["messages", "input"]))
def test_null_valued_keys_in_conversation_items_never_change_a_match(
    data: st.DataObject, recorded: list[dict[str, Any]], field: str
) -> None:
    incoming = data.draw(st.sampled_from([recorded, data.draw(ITEMS)]), label="incoming")
    before = _matches({"model": "m", field: recorded}, {"model": "m", field: incoming})
    after = _matches(
        {"model": "m", field: _nulls_changed(recorded, data.draw)},
        {"model": "m", field: _nulls_changed(incoming, data.draw)},
    )
    assert after == before
