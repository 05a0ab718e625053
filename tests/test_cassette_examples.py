"""Every example cassette in `cassettes/` replays, validates, and is shown in docs/cassettes.md."""

from __future__ import annotations

import json
from pathlib import Path

import conformance
import httpx
import openai
import pytest

from mockai.cassette import CassetteFile
from mockai.cassette.matching import route_of
from mockai.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "cassettes").rglob("*.yaml"))


def test_there_are_examples() -> None:
    names = {path.name for path in EXAMPLES}
    assert {
        "chat_json.yaml",
        "chat_stream.yaml",
        "responses_stream.yaml",
        "embeddings.yaml",
    } <= names
    assert "test_summarize.yaml" in names  # the pytest-recording layout, gzip and !!binary


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_recorded_interaction_replays_byte_for_byte(path: Path) -> None:
    cassette = CassetteFile.load(path)
    with conformance.checked_server(cassette=str(path)) as server, httpx.Client() as http:
        for number, interaction in enumerate(cassette.interactions):
            route = route_of(httpx.URL(interaction.uri).path)
            response = http.post(
                server.url + route,
                content=interaction.request_body,
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == interaction.status, (number, response.text)
            assert response.content == interaction.response_body, number
    assert [entry.source for entry in server.requests] == ["cassette"] * len(cassette.interactions)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_is_shown_in_the_docs(path: Path) -> None:
    assert str(path.relative_to(ROOT)) in (ROOT / "docs" / "cassettes.md").read_text()


def test_the_examples_pass_mockai_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ROOT / "cassettes")]) == 0
    assert capsys.readouterr().out == "mockai check: 1 path(s) OK\n"


def test_the_docs_stream_example() -> None:
    # docs/cassettes.md: `mockai serve --cassette cassettes/chat_stream.yaml`, then the SDK as usual.
    with (
        conformance.checked_server(cassette=str(ROOT / "cassettes" / "chat_stream.yaml")) as server,
        openai.OpenAI(base_url=server.url, api_key="sk-anything") as client,
    ):
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Write a haiku about rivers."}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text


def test_the_pytest_recording_example_replays_through_the_sdk() -> None:
    path = ROOT / "cassettes" / "pytest-recording" / "test_openai_app" / "test_summarize.yaml"
    assert "!!binary" in path.read_text()
    question = [{"role": "user", "content": "Summarize what rivers do, in one sentence."}]
    with (
        conformance.checked_server(cassette=str(path)) as server,
        openai.OpenAI(base_url=server.url, api_key="sk-anything") as client,
    ):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=question)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=question, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in stream)
    assert (
        reply.choices[0].message.content == "Rivers carve valleys, carry sediment and feed deltas."
    )
    assert streamed == "Deltas form where rivers slow."


@pytest.mark.parametrize("name", ["responses_stream.yaml", "chat_stream.yaml"])
def test_an_error_event_fault_ends_a_replayed_stream_as_its_api_does(name: str) -> None:
    """`error_event_after` on a replay ends it with the endpoint's own in-band error: for the
    Responses API its `error` event, which the Python SDK yields as an event (a replay had ended
    with chat's `{"error": ...}` chunk, which the SDK raises as an APIError); for chat, that
    chunk, raised."""
    path = ROOT / "cassettes" / name
    recorded = CassetteFile.load(path).interactions[0]
    body = json.loads(recorded.request_body or b"{}")
    fault = {"x-mockai-fault": "error_event_after=3"}
    with (
        conformance.checked_server(cassette=str(path)) as server,
        openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client,
    ):
        if name.startswith("responses"):
            events = list(client.responses.create(**body, extra_headers=fault))
            assert [event.type for event in events][-1] == "error"
            assert events[-1].sequence_number == 3 and len(events) == 4
        else:
            with pytest.raises(openai.APIError):
                list(client.chat.completions.create(**body, extra_headers=fault))


def test_budgets_the_user_set_count_down_on_replayed_answers() -> None:
    """With budgets (`limits`), the six `x-ratelimit-*` count down on every answer, replays
    included (they had kept the recording's 10000 / 9999 up to the 429); without budgets a
    replay carries the recorded ones."""
    path = ROOT / "cassettes" / "chat_json.yaml"
    recorded = CassetteFile.load(path).interactions[0]
    body = json.loads(recorded.request_body or b"{}")
    with (
        conformance.checked_server(
            cassette=str(path), allow_repeats=True, limits="rpm=2,window=60s"
        ) as server,
        httpx.Client() as http,
    ):
        answers = [http.post(server.url + "/chat/completions", json=body) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["x-ratelimit-limit-requests"] for a in answers] == ["2", "2", "2"]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == ["1", "0", "0"]
    assert answers[0].content == recorded.response_body  # the recording itself, as recorded
    with conformance.checked_server(cassette=str(path)) as server, httpx.Client() as http:
        plain = http.post(server.url + "/chat/completions", json=body)
    assert plain.headers["x-ratelimit-limit-requests"] == recorded.header(
        "x-ratelimit-limit-requests"
    )
