"""Replay semantics: matching, play counts, repeats, misses, folders, and the record modes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance
import httpx
import openai
import pytest
from cassette_support import interactions, paced_upstream

from mockai import MockServer
from mockai.cassette import Cassette, CassetteFile, Interaction
from mockai.errors import CassetteError, ConfigError


def chat_answer(text: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-" + text.replace(" ", "")[:20],
            "object": "chat.completion",
            "created": 1735689600,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
    ).encode()


def recorded(question: str, answer: str, **body: Any) -> Interaction:
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": question}],
        **body,
    }
    return Interaction(
        method="POST",
        uri="https://api.openai.com/v1/chat/completions",
        request_body=json.dumps(request).encode(),
        request_headers={"Content-Type": ["application/json"]},
        status=200,
        reason="OK",
        response_headers={"Content-Type": ["application/json"]},
        response_body=chat_answer(answer),
    )


def write(path: Path, *items: Interaction) -> Path:
    CassetteFile.save(path, CassetteFile.dumps(Cassette(path, list(items))))
    return path


@pytest.fixture
def clients() -> Iterator[list[openai.OpenAI]]:
    made: list[openai.OpenAI] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def sdk(clients: list[openai.OpenAI]) -> Any:
    def make(server: MockServer, retries: int = 0) -> openai.OpenAI:
        client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=retries)
        clients.append(client)
        return client

    return make


def ask(client: openai.OpenAI, question: str, **options: Any) -> str | None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": question}], **options
    )
    return reply.choices[0].message.content


def test_matching_ignores_host_prefix_key_order_and_volatile_fields(tmp_path: Path, sdk) -> None:
    cassette = write(tmp_path / "c.yaml", recorded("Hi", "Hello!", user="alice"))
    with conformance.checked_server(cassette=str(cassette)) as server:
        # Recorded against api.openai.com/v1; asked at the root of 127.0.0.1, other `user`,
        # metadata and stream options that only the official host gets.
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        with client:
            assert ask(client, "Hi", user="bob", metadata={"run": "7"}) == "Hello!"


def test_identical_requests_replay_in_recording_order(tmp_path: Path, sdk) -> None:
    cassette = write(
        tmp_path / "c.yaml", recorded("Roll", "one"), recorded("Roll", "two"), recorded("X", "x")
    )
    with conformance.checked_server(cassette=str(cassette)) as server:
        client = sdk(server, retries=2)
        assert [ask(client, "Roll"), ask(client, "Roll")] == ["one", "two"]
        with pytest.raises(openai.BadRequestError) as raised:
            ask(client, "Roll")
    assert len(server.requests) == 3  # a miss is a 400 the SDK does not retry
    assert raised.value.code == "mockai_no_match"
    assert "c.yaml#0, c.yaml#1 match(es) this request but were already played" in str(raised.value)


def test_a_server_reset_replays_the_cassette_from_the_start(tmp_path: Path, sdk) -> None:
    cassette = write(tmp_path / "c.yaml", recorded("Roll", "one"), recorded("Roll", "two"))
    with conformance.checked_server(cassette=str(cassette)) as server:
        client = sdk(server)
        assert [ask(client, "Roll"), ask(client, "Roll")] == ["one", "two"]
        server.reset()
        assert ask(client, "Roll") == "one"
        httpx.post(server.url_for("/_mockai/reset"))
        assert ask(client, "Roll") == "one"


def test_allow_repeats_replays_the_last_recording(tmp_path: Path, sdk) -> None:
    cassette = write(tmp_path / "c.yaml", recorded("Roll", "one"), recorded("Roll", "two"))
    with conformance.checked_server(cassette=str(cassette), allow_repeats=True) as server:
        client = sdk(server)
        assert [ask(client, "Roll") for _ in range(4)] == ["one", "two", "two", "two"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "application/json", "text/plain; charset=utf-8"],
)
def test_a_replayed_answer_keeps_its_recorded_content_type(
    tmp_path: Path, sdk, content_type: str
) -> None:
    """The recorded Content-Type goes out as it was, parameters and all (an upstream that says
    `charset=utf-8`): the media type alone would be a header the upstream never sent."""
    interaction = recorded("Hi", "Hello!")
    interaction.response_headers = {"Content-Type": [content_type]}
    cassette = write(tmp_path / "c.yaml", interaction)
    with conformance.checked_server(cassette=str(cassette)) as server:
        raw = sdk(server).chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )
    assert raw.headers["content-type"] == content_type
    assert raw.parse().choices[0].message.content == "Hello!"


def test_a_hand_edited_header_http_cannot_send_is_not_replayed(tmp_path: Path, sdk) -> None:
    """A line break in a recorded header (a hand edit: no upstream sends one) would fail the
    answer as it is written; the header is left out (`mockai check` names it) and the rest of
    the recording replays."""
    interaction = recorded("Hi", "Hello!")
    interaction.response_headers = {
        "Content-Type": ["application/json"],
        "x-note": ["one\r\nx-injected: two"],
        "x-ratelimit-limit-requests": ["5000"],
    }
    cassette = write(tmp_path / "c.yaml", interaction)
    with conformance.checked_server(cassette=str(cassette)) as server:
        raw = sdk(server).chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )
    assert raw.parse().choices[0].message.content == "Hello!"
    assert "x-note" not in raw.headers and "x-injected" not in raw.headers
    assert raw.headers["x-ratelimit-limit-requests"] == "5000"


@pytest.mark.parametrize("stream", [False, True])
def test_a_hand_edited_content_type_http_cannot_send_is_replayed_as_json(
    tmp_path: Path, sdk, stream: bool
) -> None:
    """A line break in the recorded content type would fail every replay as it is written;
    the answer goes out as JSON, as when the recording names no type."""
    interaction = recorded("Hi", "Hello!")
    content_type = "text/event-stream" if stream else "application/json"
    interaction.response_headers = {"Content-Type": [f"{content_type}\r\nx-injected: two"]}
    cassette = write(tmp_path / "c.yaml", interaction)
    with conformance.checked_server(cassette=str(cassette)) as server:
        raw = sdk(server).chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )
    assert raw.parse().choices[0].message.content == "Hello!"
    assert raw.headers["content-type"] == "application/json"
    assert "x-injected" not in raw.headers


def test_recorded_cors_headers_give_way_to_mockais_own(tmp_path: Path) -> None:
    """A recording made for a page of one origin replays to a page of any (and to clients that
    are not browsers without CORS headers at all)."""
    interaction = recorded("Hi", "Hello!")
    interaction.response_headers = {
        "Content-Type": ["application/json"],
        "Access-Control-Allow-Origin": ["http://recorded.example"],
        "access-control-expose-headers": ["X-Request-ID"],
        "x-ratelimit-limit-requests": ["5000"],
    }
    cassette = write(tmp_path / "c.yaml", interaction)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    with (
        conformance.checked_server(cassette=str(cassette), allow_repeats=True) as server,
        httpx.Client() as http,
    ):
        page = http.post(
            server.url + "/chat/completions", json=body, headers={"Origin": "http://app.test"}
        )
        plain = http.post(server.url + "/chat/completions", json=body)
    assert page.headers.get_list("access-control-allow-origin") == ["*"]
    assert page.headers.get_list("access-control-expose-headers") == ["X-Request-ID"]
    assert "access-control-allow-origin" not in plain.headers
    assert plain.headers["x-ratelimit-limit-requests"] == "5000"  # the rest is replayed


def test_a_miss_names_the_closest_recordings_and_what_differs(tmp_path: Path, sdk) -> None:
    cassette = write(
        tmp_path / "c.yaml",
        recorded("What is the weather in Paris?", "Sunny", temperature=0.2),
        recorded("Something else entirely", "Other"),
    )
    with (
        conformance.checked_server(cassette=str(cassette)) as server,
        pytest.raises(openai.BadRequestError) as raised,
    ):
        ask(sdk(server), "What is the weather in Rome?", temperature=0.7)
    assert raised.value.status_code == 400
    assert raised.value.message == (
        "Error code: 400 - mockai: no rule or recording matches this chat request.\n"
        f"cassette {cassette}: 2 interaction(s), match_on: method, path, body\n"
        "  closest:\n"
        "  c.yaml#0 (POST /chat/completions): matched method, path; differs in body\n"
        "    messages[0] (user) changed:\n"
        "        recorded:     'What is the weather in Paris?'\n"
        "        this request: 'What is the weather in Rome?'\n"
        "    temperature: recorded 0.2, this request 0.7\n"
        "  c.yaml#1 (POST /chat/completions): matched method, path; differs in body\n"
        "    messages[0] (user) changed:\n"
        "        recorded:     'Something else entirely'\n"
        "        this request: 'What is the weather in Rome?'\n"
        "    temperature: not recorded, this request 0.7"
    )


def test_match_on_is_configurable(tmp_path: Path, sdk) -> None:
    cassette = write(tmp_path / "c.yaml", recorded("Hi", "from the cassette", temperature=1))
    with conformance.checked_server(cassette=str(cassette), match_on=("path", "model")) as server:
        assert ask(sdk(server), "Anything at all") == "from the cassette"
    with pytest.raises(ConfigError) as raised:
        MockServer(cassette=str(cassette), match_on=("path", "host"))
    assert str(raised.value).startswith(
        "match_on: unknown matcher(s) 'host' (known matchers: body, messages, method, model,"
    )
    with pytest.raises(ConfigError, match=r"'bdy' \(did you mean 'body'\?\)"):
        MockServer(cassette=str(cassette), match_on=("path", "bdy"))


def test_fallback_generate_answers_what_the_cassette_does_not(tmp_path: Path, sdk) -> None:
    cassette = write(tmp_path / "c.yaml", recorded("Hi", "Hello!"))
    with conformance.checked_server(cassette=str(cassette), fallback="generate") as server:
        assert ask(sdk(server), "Not recorded")
    assert server.requests[0].source == "generator"


def test_a_folder_of_cassettes_replays_as_one(tmp_path: Path, sdk) -> None:
    write(tmp_path / "a" / "one.yaml", recorded("One", "1"))
    write(tmp_path / "b" / "two.yml", recorded("Two", "2"))
    (tmp_path / "b" / "one.yaml.bak").write_text("not a cassette")
    with conformance.checked_server(cassette=str(tmp_path)) as server:
        client = sdk(server)
        assert [ask(client, "Two"), ask(client, "One")] == ["2", "1"]
    assert [e.rule for e in server.requests] == ["b/two.yml#0", "a/one.yaml#0"]


def test_replaying_a_missing_cassette_fails_before_serving(tmp_path: Path) -> None:
    with pytest.raises(CassetteError) as raised:
        MockServer(cassette=str(tmp_path / "nope.yaml"))
    assert str(raised.value) == (
        f"cassette {tmp_path / 'nope.yaml'} does not exist, so there is nothing to replay. "
        f"Record it first: mockai serve --cassette {tmp_path / 'nope.yaml'} "
        "--record-mode once --upstream URL"
    )


def test_recording_needs_an_upstream(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="record mode once records from an upstream"):
        MockServer(cassette=str(tmp_path / "new.yaml"), record_mode="once")


# --- record modes --------------------------------------------------------------------------------


def _post(server: MockServer, question: str) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}
    return httpx.post(server.url + "/chat/completions", json=body)


def test_once_records_a_new_cassette_then_only_replays(tmp_path: Path) -> None:
    cassette = tmp_path / "once.yaml"
    with paced_upstream() as upstream:
        with conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=upstream.url
        ) as server:
            first = _post(server, "A").json()
        with conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=upstream.url
        ) as server:
            assert _post(server, "A").json() == first  # replayed
            assert _post(server, "B").json()["error"]["code"] == "mockai_no_match"
        assert len(upstream.requests) == 1
    assert len(interactions(cassette)) == 1


def test_new_episodes_replays_what_it_has_and_records_the_rest(tmp_path: Path) -> None:
    cassette = write(tmp_path / "c.yaml", recorded("A", "recorded A"))
    before = cassette.read_bytes()
    with paced_upstream() as upstream:
        with conformance.checked_server(
            cassette=str(cassette), record_mode="new_episodes", upstream=upstream.url
        ) as server:
            assert _post(server, "A").json()["choices"][0]["message"]["content"] == "recorded A"
            _post(server, "B")
        # (after stop: a relayed answer is journaled once the relay has finished)
        assert [e.source for e in server.requests] == ["cassette", "upstream"]
    after = interactions(cassette)
    assert len(after) == 2
    assert cassette.read_bytes().startswith(before[: before.index(b"version")])  # appended
    assert not cassette.with_name("c.yaml.bak").exists()


def test_all_re_records_and_keeps_the_previous_file(tmp_path: Path) -> None:
    cassette = write(tmp_path / "c.yaml", recorded("A", "old A"), recorded("Z", "old Z"))
    before = cassette.read_bytes()
    with paced_upstream() as upstream:
        with conformance.checked_server(
            cassette=str(cassette), record_mode="all", upstream=upstream.url
        ) as server:
            fresh = _post(server, "A").json()["choices"][0]["message"]["content"]
        assert server.requests[0].source == "upstream"  # never replayed in `all`
    answers = [
        json.loads(i.response_body)["choices"][0]["message"]["content"]
        for i in interactions(cassette)
    ]
    assert answers == ["old Z", fresh]  # A re-recorded, Z kept
    assert cassette.with_name("c.yaml.bak").read_bytes() == before


def test_a_cassette_changed_on_disk_is_not_overwritten(tmp_path: Path) -> None:
    cassette = write(tmp_path / "c.yaml", recorded("A", "A"))
    with (
        paced_upstream() as upstream,
        conformance.checked_server(
            cassette=str(cassette), record_mode="new_episodes", upstream=upstream.url
        ) as server,
    ):
        edited = write(tmp_path / "edited.yaml", recorded("E", "edited")).read_bytes()
        cassette.write_bytes(edited)  # someone else writes the file meanwhile
        _post(server, "B")
    assert cassette.read_bytes() == edited
    saved = interactions(tmp_path / "c.yaml.conflict")
    assert len(saved) == 2


def test_a_secret_scrubbing_cannot_reach_stops_the_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Planted where scrubbing never looks (a JSON key): only the scan before writing sees it.
    planted = recorded("A", "A")
    planted.response_body = planted.response_body.replace(
        b'"usage"', b'"sk-proj-PLANTEDplantedPLANTED0123456789"'
    )
    cassette = write(tmp_path / "c.yaml", planted)
    before = cassette.read_bytes()
    with (
        paced_upstream() as upstream,
        conformance.checked_server(
            cassette=str(cassette), record_mode="new_episodes", upstream=upstream.url
        ) as server,
    ):
        assert _post(server, "B").status_code == 200  # the client still gets its answer
    assert cassette.read_bytes() == before  # but nothing was written
    assert f"refusing to write {cassette}: it would contain secrets" in caplog.text
    assert "interaction 0 response.body.string: an sk- API key (sk-pro..." in caplog.text
    assert "PLANTEDplanted" not in caplog.text
