"""Recorded requests parsed once (mockai/pipeline/recorded.py): a replayed request whose bytes
a cassette recorded is answered from the parse made when the cassette loaded, the first time
too; a server sharing a cassette another server loaded parses each the first time it comes.

The property: three servers load the same cassette of arbitrary recorded requests (valid,
hostile, invalid, to every endpoint whose parses are pinned); the first pins their parses at
load, the second never keeps a parse, the third shares the second's load and pins the parses as
the requests come. Replaying the recorded bytes with any request headers gets the same answers
and the same journal entries from all three. Then: the first replay is served from the pin, a
sharing server parses nothing at start and pins on the first replay (where other bytes are kept
the second time they come), a recording the server refuses is not pinned, and a pin the catalog
outdated is not used, then made again.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_any_input import TEMPLATES, hostile_bodies
from test_parsed_requests import HEADER_SETS, PATHS, RULES, _answer, _journaled

from mockai import MockServer
from mockai.pipeline.parsed import ParsedRequests


def _cassette(folder: Path, recorded: list[tuple[str, bytes]]) -> Path:
    """A vcrpy JSON cassette: each (path, body) recorded with an answer naming its place."""
    interactions = [
        {
            "request": {
                "body": body.decode("utf-8"),
                "headers": {"Content-Type": ["application/json"]},
                "method": "POST",
                "uri": f"https://api.openai.com{path}",
            },
            "response": {
                "body": {"string": json.dumps({"recorded": place})},
                "headers": {"Content-Type": ["application/json"]},
                "status": {"code": 200, "message": "OK"},
            },
        }
        for place, (path, body) in enumerate(recorded)
    ]
    path = folder / "recorded.json"
    path.write_text(json.dumps({"version": 1, "interactions": interactions}))
    return path


@st.composite
def recordings(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """Recorded requests: each endpoint's template as sent, or with a node replaced by anything
    (as text a cassette can hold)."""
    drawn = []
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        body = draw(st.just(json.dumps(TEMPLATES[path]).encode()) | hostile_bodies(TEMPLATES[path]))
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            body = json.dumps(TEMPLATES[path], indent=1).encode()
        drawn.append((path, body))
    return drawn


def _servers(cassette: Path) -> tuple[MockServer, MockServer, MockServer]:
    """A server pinning the cassette's recorded parses at load, one keeping no parse at all, and
    one sharing their cassette (loaded twice: cassette/shared.py), pinning parses as they come."""
    pinning = MockServer(cassette=str(cassette), allow_repeats=True, log_requests=False)
    parsing = MockServer(cassette=str(cassette), allow_repeats=True, log_requests=False)
    parsing.state.parsed = ParsedRequests(slots=0)
    expecting = MockServer(cassette=str(cassette), allow_repeats=True, log_requests=False)
    assert expecting.state.parsed.pinned == 0  # (shared: nothing parsed at start)
    for server in (pinning, parsing, expecting):
        server.add_rules(RULES)
    return pinning, parsing, expecting


@settings(
    max_examples=int(os.environ.get("MOCKAI_FUZZ_EXAMPLES", "25")),
    derandomize="MOCKAI_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(recorded=recordings(), data=st.data())
def test_a_replayed_request_answers_as_if_parsed_when_it_came(
    recorded: list[tuple[str, bytes]], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        pinning, parsing, expecting = _servers(_cassette(Path(folder), recorded))
    with pinning, parsing, expecting, httpx.Client() as http:
        for recorded_path, body in recorded:
            # (the recorded bytes sent where they were recorded, or to another endpoint)
            path = data.draw(st.sampled_from([recorded_path, *PATHS]), label="sent to")
            for headers in data.draw(
                st.lists(st.sampled_from(HEADER_SETS), min_size=1, max_size=3)
            ):
                expected = _answer(http, parsing, path, body, headers)
                assert _answer(http, pinning, path, body, headers) == expected
                assert _answer(http, expecting, path, body, headers) == expected
                assert _journaled(pinning) == _journaled(parsing) == _journaled(expecting)
        assert parsing.state.parsed.pinned == 0 and parsing.state.parsed.hits == 0


def _chat(content: str) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}


# Two questions and an embedding, recorded with the openai SDK, then replayed with it.
THREE_ASKS = [
    ("/v1/chat/completions", _chat("first question")),
    ("/v1/chat/completions", _chat("second question")),
    ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "a text"}),
]


def _recorded_with_the_sdk(folder: Path, asks: list[tuple[str, dict[str, Any]]]) -> Path:
    """A cassette of `asks` as the openai SDK sends them (the bytes it sends again to replay)."""
    sent: list[tuple[str, bytes]] = []

    def keep(request: httpx.Request) -> None:
        sent.append((request.url.path, request.content))

    with (
        MockServer(log_requests=False) as upstream,
        httpx.Client(event_hooks={"request": [keep]}) as http,
    ):
        client = openai.OpenAI(base_url=upstream.url, api_key="k", max_retries=0, http_client=http)
        for path, ask in asks:
            if path == "/v1/embeddings":
                client.embeddings.create(**ask)
            else:
                client.chat.completions.create(**ask)
    assert [path for path, _ in sent] == [path for path, _ in asks]
    return _cassette(folder, sent)


def test_the_first_replay_is_answered_from_the_parse_made_at_load(tmp_path: Path) -> None:
    asks = THREE_ASKS
    cassette = _recorded_with_the_sdk(tmp_path, asks)
    with MockServer(cassette=str(cassette), allow_repeats=True, log_requests=False) as server:
        assert server.state.parsed.pinned == 3
        client = openai.OpenAI(base_url=server.url, api_key="k", max_retries=0)
        first = client.chat.completions.with_raw_response.create(**asks[0][1])
        second = client.chat.completions.with_raw_response.create(**asks[1][1])
        vectors = client.embeddings.with_raw_response.create(**asks[2][1])
        assert [json.loads(a.content) for a in (first, second, vectors)] == [
            {"recorded": 0},
            {"recorded": 1},
            {"recorded": 2},
        ]
        assert server.state.parsed.hits == 3  # none of them parsed its body
        entries = server.requests
        assert [e.model for e in entries] == [
            "gpt-4o-mini",
            "gpt-4o-mini",
            "text-embedding-3-small",
        ]
        assert [e.source for e in entries] == ["cassette"] * 3
        # The same question in other bytes (indented) is parsed as it comes, and matches too.
        again = httpx.post(
            server.url + "/chat/completions", content=json.dumps(asks[0][1], indent=2)
        )
        assert again.json() == {"recorded": 0}
        assert server.state.parsed.hits == 3


def test_a_server_sharing_a_cassette_parses_each_recording_the_first_time_it_comes(
    tmp_path: Path,
) -> None:
    asks = THREE_ASKS
    cassette = _recorded_with_the_sdk(tmp_path, asks)
    for _ in range(2):  # (kept for sharing the second time it is loaded)
        with MockServer(cassette=str(cassette), log_requests=False) as loading:
            assert (loading.state.parsed.pinned, loading.state.parsed.expected) == (3, 0)
    with MockServer(cassette=str(cassette), allow_repeats=True, log_requests=False) as server:
        parsed = server.state.parsed
        assert (parsed.expected, parsed.pinned) == (3, 0)  # nothing parsed at start
        client = openai.OpenAI(base_url=server.url, api_key="k", max_retries=0)

        def replay() -> list[Any]:
            first = client.chat.completions.with_raw_response.create(**asks[0][1])
            second = client.chat.completions.with_raw_response.create(**asks[1][1])
            vectors = client.embeddings.with_raw_response.create(**asks[2][1])
            return [json.loads(a.content) for a in (first, second, vectors)]

        assert replay() == [{"recorded": 0}, {"recorded": 1}, {"recorded": 2}]
        assert (parsed.expected, parsed.pinned, parsed.hits) == (0, 3, 0)  # parsed, and pinned
        assert replay() == [{"recorded": 0}, {"recorded": 1}, {"recorded": 2}]
        assert parsed.hits == 3  # none of them parsed its body again
        # Bytes no cassette recorded are kept the second time they come, not the first (answered
        # 400: no recording matches; parsed all the same).
        unrecorded = json.dumps(_chat("not recorded"))
        for _ in range(2):
            httpx.post(server.url + "/chat/completions", content=unrecorded)
        assert (parsed.pinned, parsed.hits) == (3, 3)
        httpx.post(server.url + "/chat/completions", content=unrecorded)
        assert parsed.hits == 4


def test_a_recording_the_server_refuses_is_not_pinned_and_is_refused_when_it_comes(
    tmp_path: Path,
) -> None:
    refused = json.dumps({"model": "gpt-4o-mini", "messages": []}).encode()  # no message
    valid = json.dumps(_chat("valid")).encode()
    cassette = _cassette(
        tmp_path, [("/v1/chat/completions", refused), ("/v1/chat/completions", valid)]
    )
    with MockServer(cassette=str(cassette), log_requests=False) as server:
        assert server.state.parsed.pinned == 1
        answer = httpx.post(server.url + "/chat/completions", content=refused)
        assert answer.status_code == 400
        assert answer.json()["error"]["param"] == "messages"


def test_a_pin_the_catalog_outdated_is_parsed_and_pinned_again(tmp_path: Path) -> None:
    model = "ft:gpt-4o-mini:org:x:pinned"
    ask = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    cassette = _recorded_with_the_sdk(tmp_path, [("/v1/chat/completions", ask)])
    with MockServer(cassette=str(cassette), allow_repeats=True, log_requests=False) as server:
        client = openai.OpenAI(base_url=server.url, api_key="k", max_retries=0)
        assert client.chat.completions.with_raw_response.create(**ask).status_code == 200
        assert server.state.parsed.hits == 1
        client.models.delete(model)
        with pytest.raises(openai.NotFoundError) as gone:
            client.chat.completions.create(**ask)
        assert gone.value.code == "model_not_found"
        assert server.state.parsed.hits == 1  # the pin was made against the catalog before
        server.reset()  # the deletion is forgotten; the pin is outdated (the catalog restored)
        assert server.state.parsed.pinned == 1
        assert client.chat.completions.with_raw_response.create(**ask).status_code == 200
        assert server.state.parsed.hits == 0  # (a reset counts anew) parsed, and pinned again
        assert client.chat.completions.with_raw_response.create(**ask).status_code == 200
        assert server.state.parsed.hits == 1
