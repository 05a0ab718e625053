"""The cassette building blocks on their own: SSE splitting, the file format, matching,
redaction and the secret scan."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai.api.codecs import Codecs
from mockai.cassette import (
    MATCHERS,
    Cassette,
    CassetteFile,
    DecodeError,
    Interaction,
    NotFound,
    RecordMode,
    RequestView,
    Scrubber,
    validate_record_mode,
)
from mockai.cassette.configure import has_cassettes
from mockai.cassette.format import Timing, atomic_write
from mockai.cassette.matching import Index, MatcherRegistry, body_differences, route_of
from mockai.cassette.redact import is_secret_header, placeholder
from mockai.cassette.replay import ENDPOINT_ROUTES
from mockai.cassette.scan import refuse_leaks, scan_interaction, streamed_text
from mockai.config import RECORD_MODES
from mockai.errors import ConfigError, SecretLeakError
from mockai.wire.events import EventSplitter, completing_tail, split_events

# --- SSE events ----------------------------------------------------------------------------------

STREAM = (
    b'data: {"a":1}\n\n'
    b'event: response.output_text.delta\r\ndata: {"b":2}\r\n\r\n'
    b": keep-alive\r\r"
    b'data: {"c":\n'
    b"data: 3}\n\n"
    b"data: [DONE]\n\n"
)


def test_events_split_at_blank_lines_with_any_line_ending() -> None:
    assert split_events(STREAM) == [
        b'data: {"a":1}\n\n',
        b'event: response.output_text.delta\r\ndata: {"b":2}\r\n\r\n',
        b": keep-alive\r\r",
        b'data: {"c":\ndata: 3}\n\n',
        b"data: [DONE]\n\n",
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_events_split_the_same_whatever_the_chunks(size: int) -> None:
    splitter = EventSplitter()
    frames = []
    for start in range(0, len(STREAM), size):
        frames += splitter.feed(STREAM[start : start + size])
    assert splitter.close() is None
    assert frames == split_events(STREAM)
    assert b"".join(frames) == STREAM  # byte-exact


def test_an_unterminated_last_event_is_kept() -> None:
    assert split_events(b"data: 1\n\ndata: 2") == [b"data: 1\n\n", b"data: 2"]
    assert split_events(b"\n\ndata: 1\n\n\n") == [b"\n\ndata: 1\n\n\n"]


def test_the_tail_counts_the_frames_that_complete_a_stream() -> None:
    chunk = b'data: {"choices":[{"delta":{"content":"x"},"finish_reason":null}]}\n\n'
    finish = b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
    usage = b'data: {"choices":[],"usage":{"total_tokens":3}}\n\n'
    done = b"data: [DONE]\n\n"
    completed = b'event: response.completed\ndata: {"type":"response.completed"}\n\n'
    assert completing_tail([chunk, chunk, finish, usage, done]) == 3
    assert completing_tail([chunk, completed]) == 1
    assert completing_tail([chunk, chunk]) == 0


# --- format --------------------------------------------------------------------------------------


def interaction(body: str = "hi", **changes: object) -> Interaction:
    item = Interaction(
        method="POST",
        uri="https://api.openai.com/v1/chat/completions",
        request_body=json.dumps(
            {"model": "m", "messages": [{"role": "user", "content": body}]}
        ).encode(),
        request_headers={"Content-Type": ["application/json"]},
        status=200,
        reason="OK",
        response_headers={"Content-Type": ["text/event-stream"]},
        response_body=b"data: 1\n\ndata: [DONE]\n\n",
        timing=Timing(latency=0.25, duration=0.5, events=(0.1, 0.2)),
    )
    for key, value in changes.items():
        setattr(item, key, value)
    return item


def test_a_cassette_round_trips_through_vcrpys_serializer(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    text = CassetteFile.dumps(Cassette(path, [interaction()], metadata={"k": 1}))
    assert text.startswith("interactions:\n- request:\n")
    assert "version: 1" in text and "mockai:" in text
    CassetteFile.save(path, text)
    loaded = CassetteFile.load(path)
    assert loaded.interactions == [interaction()]
    assert loaded.metadata == {"k": 1}


def test_a_json_cassette_uses_vcrpys_json_serializer(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    CassetteFile.save(path, CassetteFile.dumps(Cassette(path, [interaction()])))
    assert json.loads(path.read_text())["version"] == 1
    assert CassetteFile.load(path).interactions == [interaction()]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version: 2\ninteractions: []\n",
            "cassette format version 2 is not supported: mockai reads vcrpy cassettes with `version: 1`. Record it again, or set `version: 1` if it was written by a tool that left the version out.",
        ),
        ("interactions: []\n", "cassette format version None is not supported"),
        (
            "- request: {}\n",
            "this cassette was written by vcrpy before 1.0 (no version, a bare list). Convert it with `python -m vcr.migration PATH` or record it again.",
        ),
        ("hello: world\n", "not a cassette (a vcrpy cassette has `interactions: [...]`)"),
        ("version: 1\ninteractions: [{request: {}}]\n", "interaction 0 is not a vcrpy interaction"),
        ("version: 1\ninteractions: [\n", ":3: not a valid cassette"),
    ],
)
def test_unreadable_cassettes_say_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DecodeError) as raised:
        CassetteFile.load(path)
    assert str(raised.value).startswith(str(path))
    assert message in str(raised.value)


def test_missing_and_empty_cassettes_are_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        CassetteFile.load(tmp_path / "none.yaml")
    (tmp_path / "empty.yaml").write_text("\n")
    with pytest.raises(NotFound):
        CassetteFile.load(tmp_path / "empty.yaml")


@settings(max_examples=40, deadline=None)
@given(
    blank=st.sampled_from([0, 1, 65_535, 65_536, 65_537, 200_000]),
    spaces=st.sampled_from([" ", "\n", "\t", "\r\n"]),
    text=st.sampled_from(["", "x", "interactions: []", "\u00e9", "\x00"]),
    after=st.integers(0, 3),
)
def test_a_cassette_counts_as_there_when_it_holds_more_than_whitespace(
    blank: int, spaces: str, text: str, after: int
) -> None:
    """Read a chunk at a time up to the first byte that is not whitespace: whatever the file's
    size, and wherever that byte falls against the reads, the answer is the whole file's."""
    content = (spaces * blank)[:blank].encode() + text.encode() + b" " * after
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_bytes(content)
        assert has_cassettes(path) == bool(content.strip())
        assert has_cassettes(Path(folder)) == bool(content.strip())


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("old")

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, b"new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["c.yaml"]


def test_record_modes_are_vcrpys() -> None:
    assert [mode.value for mode in RecordMode] == list(RECORD_MODES)
    assert validate_record_mode("new_episodes") is RecordMode.NEW_EPISODES
    with pytest.raises(ValueError) as raised:
        validate_record_mode("sometimes")
    assert str(raised.value) == (
        "'sometimes' is not a valid record_mode. Valid modes are: none, once, new_episodes, all."
    )


# --- matching ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/v1/chat/completions", "/chat/completions"),
        ("/chat/completions", "/chat/completions"),
        ("/api/v1/chat/completions", "/chat/completions"),  # OpenRouter
        ("/openai/v1/completions", "/completions"),  # Groq
        ("/openai/deployments/gpt4/chat/completions", "/chat/completions"),  # Azure
        ("/v1/responses", "/responses"),
        ("/v1/models", "/models"),
        ("/v1", "/"),
    ],
)
def test_routes_ignore_prefixes(path: str, route: str) -> None:
    assert route_of(path) == route


def test_every_endpoint_has_its_route() -> None:
    assert {e.value: c.path for e, c in Codecs().items()} == ENDPOINT_ROUTES


def view(body: object, uri: str = "https://api.openai.com/v1/chat/completions") -> RequestView:
    return RequestView.recorded("POST", uri, json.dumps(body).encode(), Scrubber())


@pytest.mark.parametrize(
    "raw",
    [b'{"model": "m", "messages": "\\ud800"}', b'{"n": NaN}', b"[" * 70 + b"]" * 70],
)
def test_a_recorded_body_the_server_would_refuse_as_json_is_kept_as_text(raw: bytes) -> None:
    """A lone surrogate, NaN or nesting past the limit: a request holding one is refused before
    it is matched, and its recording is held as the text it is (loading it had failed on the
    lone surrogate: its canonical JSON could not be written)."""
    recorded = RequestView.recorded("POST", "https://x/v1/chat/completions", raw, Scrubber())
    assert recorded.body == raw.decode()


def test_the_body_matcher_ignores_order_whitespace_and_volatile_fields() -> None:
    recorded = view(
        {
            "messages": [
                {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function"}]}
            ],
            "model": "m",
            "user": "a",
            "stream": False,
        }
    )
    incoming = RequestView.incoming(
        "/chat/completions",
        {
            "model": "m",
            "messages": [
                {"tool_calls": [{"type": "function", "id": "call_2"}], "role": "assistant"}
            ],
            "metadata": {"x": 1},
            "stream_options": {"include_usage": True},
        },
        Scrubber(),
    )
    MATCHERS.matcher("body")(recorded, incoming)
    with pytest.raises(AssertionError) as raised:
        MATCHERS.matcher("raw_body")(recorded, incoming)
    assert "user: recorded 'a', not in this request" in str(raised.value)


def test_field_matchers_say_recorded_versus_this_request() -> None:
    with pytest.raises(AssertionError) as raised:
        MATCHERS.matcher("model")(view({"model": "gpt-4o"}), view({"model": "gpt-4o-mini"}))
    assert str(raised.value) == "model: recorded 'gpt-4o', this request 'gpt-4o-mini'"


def test_body_differences_name_the_message_and_the_parameter() -> None:
    recorded = {
        "model": "m",
        "temperature": 0,
        "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
    }
    incoming = {
        "model": "m",
        "top_p": 1,
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Hello"},
            {"role": "user", "content": "More"},
        ],
    }
    assert body_differences(recorded, incoming) == [
        "messages[1] (user) changed:\n    recorded:     'Hi'\n    this request: 'Hello'",
        "messages[2] (user) 'More' is not recorded",
        "temperature: recorded 0, not in this request",
        "top_p: not recorded, this request 1",
    ]


def test_custom_matchers_register_and_unknown_names_list_the_known() -> None:
    registry = MatcherRegistry()

    def temperature(recorded: RequestView, incoming: RequestView) -> None:
        if recorded.body.get("temperature") != incoming.body.get("temperature"):
            raise AssertionError("temperature differs")

    registry.register("temperature", temperature)  # no key: the index compares one by one
    index = Index([view({"temperature": 1}), view({"temperature": 0})], ["temperature"], registry)
    assert index.candidates(view({"temperature": 0})) == [1]
    with pytest.raises(ConfigError) as raised:
        registry.resolve(["temperature", "colour"])
    assert (
        str(raised.value) == "match_on: unknown matcher(s) 'colour' (known matchers: temperature)"
    )


def test_lookup_cost_does_not_grow_with_the_cassette() -> None:
    def body(n: int) -> dict[str, object]:
        return {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": f"question {n} " * 20}],
        }

    names = ("method", "path", "body")
    small = Index([view(body(n)) for n in range(10)], names, MATCHERS)
    large = Index([view(body(n)) for n in range(5000)], names, MATCHERS)
    scrubber = Scrubber()

    def cost(index: Index) -> float:
        started = time.perf_counter()
        for n in range(200):
            incoming = RequestView.incoming("/chat/completions", body(n % 10), scrubber)
            assert index.candidates(incoming) == [n % 10]
        return (time.perf_counter() - started) / 200

    cost(small)  # warm up
    # The best of five rounds each, taken in turn: a busy machine slows some rounds. Even the
    # best read 9 us small against 47 us large on a loaded CI (5,000 entries' index out of the
    # caches other processes thrash), so the bound is loose: a lookup scanning the cassette
    # would take ~100 ns an entry, 500 us here.
    rounds = [(cost(small), cost(large)) for _ in range(5)]
    small_cost = min(pair[0] for pair in rounds)
    large_cost = min(pair[1] for pair in rounds)
    assert large_cost < small_cost * 10 + 100e-6
    assert large_cost < 1e-3  # per request, normalisation included


# --- redaction and the scan ----------------------------------------------------------------------

KEY = "sk-proj-" + "AbCdEfGhIjKlMnOpQrStUvWx" * 2


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("authorization", True),
        ("Api-Key", True),
        ("x-api-key", True),
        ("OpenAI-Organization", True),
        ("openai-project", True),
        ("cookie", True),
        ("set-cookie", True),
        ("x-portkey-api-key", True),
        ("helicone-auth", True),
        ("x-ratelimit-remaining-tokens", False),
        ("content-type", False),
        ("x-request-id", False),
    ],
)
def test_credential_headers_are_recognised(name: str, secret: bool) -> None:
    assert is_secret_header(name) is secret


def test_placeholders_are_stable_and_scrubbing_twice_changes_nothing() -> None:
    scrubber = Scrubber()
    once = scrubber.scrub_text(f"key {KEY} and Bearer {KEY} and Bearer abcdefghijklmnopqrstu")
    assert once == (
        f"key {placeholder(KEY, 'sk-')} and Bearer {placeholder(KEY, 'sk-')} "
        f"and Bearer {placeholder('abcdefghijklmnopqrstu')}"
    )
    assert scrubber.scrub_text(once) == once
    assert placeholder(KEY, "sk-").startswith("sk-REDACTED-")


def test_scrubbing_a_stream_keeps_its_event_boundaries() -> None:
    stream = (
        f'data: {{"choices":[{{"delta":{{"content":"{KEY}"}}}}]}}\n\ndata: [DONE]\n\n'
    ).encode()
    scrubbed = Scrubber().scrub_body(stream)
    assert KEY.encode() not in scrubbed
    assert len(split_events(scrubbed)) == 2
    assert json.loads(split_events(scrubbed)[0][6:])["choices"][0]["delta"]["content"].startswith(
        "sk-REDACTED-"
    )


def test_user_patterns_scrub_too_and_keep_json_valid() -> None:
    scrubber = Scrubber([r'"secret": "[^"]*"', r"acct-(\d+)"])
    body = json.dumps({"note": 'x "secret": "hunter2" y', "account": "acct-12345"}).encode()
    scrubbed = scrubber.scrub_body(body)
    assert b"hunter2" not in scrubbed and b"12345" not in scrubbed
    assert json.loads(scrubbed)["account"].startswith("acct-REDACTED-")
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        Scrubber(["("])
    with pytest.raises(ConfigError, match="matches the empty string"):
        Scrubber(["x*"])


def test_a_key_split_across_stream_events_is_caught() -> None:
    halves = [KEY[:10], KEY[10:]]
    stream = "".join(
        f'data: {{"choices":[{{"delta":{{"content":"{half}"}}}}]}}\n\n' for half in halves
    ).encode()
    assert streamed_text(stream) == KEY
    leaky = interaction(response_body=stream)
    assert scan_interaction(leaky, Scrubber()) == [
        "response.body: the streamed text spells out an sk- API key across events (sk-pro... (56 chars))"
    ]


def test_the_scan_refuses_a_planted_secret_and_says_where(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    text = CassetteFile.dumps(Cassette(path, [interaction(), interaction(f"my key is {KEY}")]))
    with pytest.raises(SecretLeakError) as raised:
        refuse_leaks(path, text, Scrubber())
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "sk-proj" in t)
    assert str(raised.value) == (
        f"refusing to write {path}: it would contain secrets\n"
        f"  {path}:{line}: interaction 1 request.body: an sk- API key (sk-pro... (56 chars)) "
        "must not be stored\n"
        "Scrub them (or add a --redact pattern) and record again."
    )
    assert KEY not in str(raised.value)
