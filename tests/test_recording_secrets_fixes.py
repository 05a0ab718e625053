"""Secrets in recordings: a key that a streamed answer spells out across events is redacted and
the answer kept (not dropped), what cannot be scrubbed is reported on one line, and headers named
like a credential in the plural or numbered (`X-Keys`, `X-Api-Key2`, `sessionid`) are kept
nowhere."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import pytest
from aiohttp import web
from cassette_support import SECRET_KEY, LoopbackApp, chat_completion, interactions
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai.cassette.format import Interaction
from mockai.cassette.redact import Scrubber
from mockai.cassette.scan import scan_interaction, scrub_interaction, streamed_text
from mockai.wire.credentials import is_credential_header
from mockai.wire.events import split_events

SCRUBBER = Scrubber()
# The key the client records with: not key-shaped, so only "the request's own credential" finds
# it when the upstream echoes it back.
OWN_KEY = "Qw3rTy9uIo0pAs1dFg07HjKl"
SECRETS = {
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "sk": SECRET_KEY,
    "github": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "pem": "-----BEGIN RSA PRIVATE KEY-----",
    "own": OWN_KEY,
}


def _reply(case: str) -> str:
    return f"Here it is: {SECRETS[case]} (keep it safe)."


def _chat(client: openai.OpenAI, case: str) -> str:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": case}], stream=True
    )
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def _responses(client: openai.OpenAI, case: str) -> str:
    stream = client.responses.create(model="gpt-4o-mini", input=case, stream=True)
    return "".join(event.delta for event in stream if event.type == "response.output_text.delta")


ASK = {"chat": _chat, "responses": _responses}


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _logged() -> Iterator[list[str]]:
    """What the `mockai` logger says meanwhile (warnings and errors)."""
    handler = _Kept()
    logger = logging.getLogger("mockai")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case streamed through a recorder (chat and Responses), then replayed from its
    cassette: what the client saw each time, the cassette, and what the recorder logged."""
    cassette = tmp_path_factory.mktemp("streams") / "streams.yaml"
    live: dict[tuple[str, str], str] = {}
    with conformance.checked_server() as upstream:
        upstream.add_rules(
            [{"match": {"user": case}, "reply": {"content": _reply(case)}} for case in SECRETS]
        )
        with (
            _logged() as logged,
            conformance.checked_server(
                cassette=str(cassette), record_mode="once", upstream=upstream.url
            ) as recorder,
            openai.OpenAI(base_url=recorder.url, api_key=OWN_KEY, max_retries=0) as client,
        ):
            for api, ask in ASK.items():
                for case in SECRETS:
                    live[api, case] = ask(client, case)
    replayed: dict[tuple[str, str], str] = {}
    with (
        conformance.checked_server(cassette=str(cassette), record_mode="none") as player,
        openai.OpenAI(base_url=player.url, api_key=OWN_KEY, max_retries=0) as client,
    ):
        for api, ask in ASK.items():
            for case in SECRETS:
                replayed[api, case] = ask(client, case)
    return {"live": live, "replayed": replayed, "cassette": cassette, "logged": logged}


@pytest.mark.parametrize("api", list(ASK))
@pytest.mark.parametrize("case", list(SECRETS))
def test_a_key_a_stream_spells_out_across_events_is_redacted_and_the_answer_kept(
    streamed: dict[str, Any], api: str, case: str
) -> None:
    assert streamed["live"][api, case] == _reply(case)  # (the client got the real answer)
    assert not [m for m in streamed["logged"] if "not recording" in m]
    text = streamed["cassette"].read_text()
    assert SECRETS[case] not in text
    # The whole key's placeholder, in the delta where it began: replay spells out what a JSON
    # answer holding the same text would be recorded as.
    expected = SCRUBBER.scrub_text(_reply(case), [OWN_KEY])
    assert "REDACTED-" in expected
    assert streamed["replayed"][api, case] == expected


def test_every_streamed_interaction_is_in_the_cassette_and_none_holds_a_secret(
    streamed: dict[str, Any],
) -> None:
    stored = interactions(streamed["cassette"])
    assert len(stored) == len(ASK) * len(SECRETS)
    assert all(item.is_stream for item in stored)
    assert [p for item in stored for p in scan_interaction(item, SCRUBBER, [OWN_KEY])] == []


# --- the rewrite, as a property ------------------------------------------------------------------

KEY_SHAPES = st.sampled_from([*SECRETS.values(), "Bearer Zq8xW2vL9mN4bR7tY1cK5pH3"])
AROUND = st.text(max_size=12)


def _pieces(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted(cut % (len(text) + 1) for cut in cuts), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def _chat_event(piece: str) -> str:
    chunk = {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": piece}}]}
    return "data: " + json.dumps(chunk) + "\n\n"


def _responses_event(piece: str) -> str:
    event = {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0}
    event |= {"content_index": 0, "delta": piece}
    return f"event: response.output_text.delta\ndata: {json.dumps(event)}\n\n"


def _stream(pieces: list[str], event: Any) -> Interaction:
    body = "".join(map(event, pieces)) + "data: [DONE]\n\n"
    return Interaction(
        method="POST",
        uri="https://api.openai.com/v1/chat/completions",
        request_body=b"{}",
        request_headers={"Content-Type": ["application/json"]},
        status=200,
        reason="OK",
        response_headers={"Content-Type": ["text/event-stream"]},
        response_body=body.encode(),
    )


@settings(max_examples=150, deadline=None)
@given(
    before=AROUND,
    secret=KEY_SHAPES,
    after=AROUND,
    cuts=st.lists(st.integers(min_value=0), max_size=12),
    event=st.sampled_from([_chat_event, _responses_event]),
)
def test_a_scrubbed_stream_spells_out_the_scrubbed_text_in_as_many_events(
    before: str, secret: str, after: str, cuts: list[int], event: Any
) -> None:
    text = f"{before} {secret} {after}"
    recorded = _stream(_pieces(text, cuts), event)
    scrubbed = scrub_interaction(recorded, SCRUBBER, [OWN_KEY])
    assert streamed_text(scrubbed.response_body) == SCRUBBER.scrub_text(text, [OWN_KEY])
    assert scan_interaction(scrubbed, SCRUBBER, [OWN_KEY]) == []
    assert secret not in scrubbed.response_body.decode()
    assert len(split_events(scrubbed.response_body)) == len(split_events(recorded.response_body))


@settings(max_examples=150, deadline=None)
@given(
    pieces=st.lists(st.one_of(st.text(max_size=8), KEY_SHAPES), max_size=6),
    own=st.booleans(),
)
def test_replacements_made_give_exactly_what_scrub_text_gives(pieces: list[str], own: bool) -> None:
    text = "".join(pieces)
    secrets = [OWN_KEY] if own else []
    made, last = [], 0
    for start, end, stand_in in SCRUBBER.replacements(text, secrets):
        assert last <= start < end
        made += [text[last:start], stand_in]
        last = end
    assert "".join([*made, text[last:]]) == SCRUBBER.scrub_text(text, secrets)


# --- what cannot be scrubbed: one log line --------------------------------------------------------


def test_an_interaction_that_cannot_be_scrubbed_is_refused_in_one_log_line(tmp_path: Path) -> None:
    async def speech(request: web.Request) -> web.Response:
        # Not UTF-8: placeholders are cut to each match's length, and `[A-Z]{8}` matches the cut
        # placeholder (`REDACTED`) again, so scrubbing cannot get rid of it.
        return web.Response(body=b"\xff\xfeID3 ABCDEFGH QWERTYUI \x00", content_type="audio/mpeg")

    cassette = tmp_path / "speech.yaml"
    with (
        _logged() as logged,
        LoopbackApp({"/v1/audio/speech": speech}) as app,
        conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=app.url, redact=("[A-Z]{8}",)
        ) as recorder,
    ):
        answer = httpx.post(
            recorder.url + "/audio/speech",
            json={"model": "tts-1", "input": "hi", "voice": "alloy"},
            timeout=5,
        )
        assert answer.status_code == 200
    (line,) = [m for m in logged if "not recording" in m]
    assert "\n" not in line
    assert line.count("response.body: a match of --redact") == 2
    assert "it still holds secrets: response.body" in line


# --- headers named like a credential --------------------------------------------------------------

PLURAL_OR_NUMBERED = {
    "X-Api-Key2": "Qw3rTy9uIo0pAs1dFg05",
    "X-Credentials": "Qw3rTy9uIo0pAs1dFg01",
    "X-Tokens": "Qw3rTy9uIo0pAs1dFg02",
    "X-Keys": "Qw3rTy9uIo0pAs1dFg03",
    "sessionid": "Qw3rTy9uIo0pAs1dFg04",
    "Authorization2": "Qw3rTy9uIo0pAs1dFg07",
    "Cookie2": "Qw3rTy9uIo0pAs1dFg08",
    "X-Session-Id": "Qw3rTy9uIo0pAs1dFg06",
}


def test_headers_named_like_a_credential_in_any_number_are_kept_nowhere(tmp_path: Path) -> None:
    async def echo(request: web.Request) -> web.Response:
        content = (await request.json())["messages"][0]["content"]
        headers = {
            "Set-Cookie2": "sid=Qw3rTy9uIo0pAs1dFg09",
            "X-Session-Tokens": "Qw3rTy9uIo0pAs1dFg10",
        }
        headers |= {"Access-Control-Allow-Credentials": "true", "x-ratelimit-remaining-tokens": "9"}
        answer = chat_completion("chatcmpl-1", "gpt-4o-mini", content)
        return web.json_response(answer, headers=headers)

    cassette = tmp_path / "headers.yaml"
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}
    with (
        LoopbackApp({"/v1/chat/completions": echo}) as app,
        conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=app.url
        ) as recorder,
    ):
        answer = httpx.post(
            recorder.url + "/chat/completions", json=chat, headers=PLURAL_OR_NUMBERED, timeout=5
        )
        assert answer.status_code == 200, answer.text
        journal = httpx.get(recorder.url_for("/_mockai/requests"), timeout=5).text
    forwarded = {name.lower(): value for name, value in app.requests[0][1].items()}
    assert all(forwarded[name.lower()] == value for name, value in PLURAL_OR_NUMBERED.items())
    text = cassette.read_text()
    assert "Say hello" in text
    assert "Qw3rTy" not in text and "Qw3rTy" not in journal
    (stored,) = interactions(cassette)
    kept = {name.lower() for name in stored.response_headers}
    assert {"access-control-allow-credentials", "x-ratelimit-remaining-tokens"} <= kept


CREDENTIAL_WORDS = ["key", "token", "secret", "auth", "authorization", "password", "session"]
CREDENTIAL_WORDS += ["credential", "apikey", "cookie", "accesstoken", "sessionid"]
FILLER = ["x", "my", "proxy", "gateway", "custom", "azure", "api", "user", "id", "upstream"]
# The wire contract's OpenAI headers (both ways), and the exempt ones: never credentials.
ORDINARY = [
    "x-request-id",
    "openai-processing-ms",
    "openai-version",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "content-type",
    "accept",
    "user-agent",
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-os",
    "x-stainless-arch",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-async",
    "x-stainless-retry-count",
    "x-stainless-read-timeout",
    "x-stainless-raw-response",
    "access-control-allow-credentials",
    *(
        f"x-ratelimit-{kind}-{unit}{variant}"
        for kind in ("limit", "remaining", "reset")
        for unit in ("requests", "tokens")
        for variant in ("", "_usage_based")
    ),
]


def _spelled(words: list[str], cases: list[str], joins: list[str]) -> str:
    """`words` joined as clients join them: `-`, `_`, or run together in camelCase."""
    name: str = getattr(words[0], cases[0])()
    for word, case, join in zip(words[1:], cases[1:], joins, strict=False):
        if join:
            name += join + getattr(word, case)()
        elif name[-1].isupper() and len(word) == 1:
            name += "_" + getattr(word, case)()  # (`KEY` + `X` run together is one word)
        else:
            name += word.title()  # (run together: the capital splits)
    return name


@st.composite
def _credential_names(draw: st.DrawFn) -> str:
    word = draw(st.sampled_from(CREDENTIAL_WORDS)) + draw(st.sampled_from(["", "s"]))
    word += draw(st.sampled_from(["", "2", "10"]))
    before = draw(st.lists(st.sampled_from(FILLER), max_size=2))
    after = draw(st.lists(st.sampled_from(FILLER), max_size=2))
    words = [*before, word, *after]
    cases = draw(st.lists(st.sampled_from(["lower", "upper", "title"]), min_size=5, max_size=5))
    joins = draw(st.lists(st.sampled_from(["-", "_", ""]), min_size=4, max_size=4))
    return _spelled(words, cases, joins)


@st.composite
def _ordinary_names(draw: st.DrawFn) -> str:
    words = draw(st.sampled_from(ORDINARY)).split("-")
    cases = draw(st.lists(st.sampled_from(["lower", "upper", "title"]), min_size=6, max_size=6))
    joins = draw(st.lists(st.sampled_from(["-", "_"]), min_size=5, max_size=5))
    return _spelled(words, cases, joins)


@settings(max_examples=200, deadline=None)
@given(credential=_credential_names(), ordinary=_ordinary_names())
def test_a_credential_word_in_the_plural_or_numbered_names_a_credential_header(
    credential: str, ordinary: str
) -> None:
    assert is_credential_header(credential), credential
    assert not is_credential_header(ordinary), ordinary


# An MCP tool's OAuth token and header: opaque, no key shape any pattern knows.
MCP_TOKEN = "ya29.a0AfB_byOpaqueOauthToken0123"
MCP_HEADER = "opaque.header.value.98765"
MCP_TOOL = {
    "type": "mcp",
    "server_label": "repos",
    "server_url": "https://mcp.example.com/sse",
    "authorization": MCP_TOKEN,
    "headers": {"X-Api-Key": MCP_HEADER, "X-Region": "eu-west-1"},
    "require_approval": "never",
}


def test_an_mcp_tools_token_and_key_header_are_kept_nowhere_and_the_cassette_replays(
    tmp_path: Path,
) -> None:
    """A Responses request's `mcp` tool carries the OAuth token and headers the API sends the
    MCP server: secrets of the body's own fields, which the cassette spelled out as they were."""
    cassette = tmp_path / "mcp.yaml"
    ask: dict[str, Any] = {"model": "gpt-4.1", "input": "list my repos", "tools": [MCP_TOOL]}
    with conformance.checked_server() as upstream:
        upstream.add_rule({"match": {"user": "list my repos"}, "reply": {"content": "3 repos"}})
        with (
            conformance.checked_server(
                cassette=str(cassette), record_mode="once", upstream=upstream.url
            ) as recorder,
            openai.OpenAI(base_url=recorder.url, api_key=OWN_KEY, max_retries=0) as client,
        ):
            assert client.responses.create(**ask).output_text == "3 repos"
        forwarded = upstream.requests[0].body["tools"][0]
    assert forwarded["authorization"] == MCP_TOKEN  # (the upstream gets them as sent)
    text = cassette.read_text()
    assert MCP_TOKEN not in text and MCP_HEADER not in text
    assert "eu-west-1" in text and "list my repos" in text
    # The same request replays: its secrets are replaced as the recording's were.
    with (
        conformance.checked_server(cassette=str(cassette), record_mode="none") as player,
        openai.OpenAI(base_url=player.url, api_key=OWN_KEY, max_retries=0) as client,
    ):
        assert client.responses.create(**ask).output_text == "3 repos"
        assert player.requests[-1].source == "cassette"
