"""The API surface and every fault, as openai-node reads them (tests/node/openai_sdk.mjs).

A wire detail is right when the clients users run accept it: openai-python is tested everywhere
else; these tests run the same answers through openai-node (the version tests/node's lockfile
pins, installed by scripts/test-env) against a real mockai, and compare what it made of them with
what the server sent (its journal) and with what openai-python reads from the same request.

The fault tests assert what the wire contract (shared/reference/openai-wire-contract.md sections
2, 3, 6 and 16) says openai-node does, observed here: where it differs from openai-python, the
test says so. docs/faults.md's table has both columns. Bounds on time are generous.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
import wave
from collections.abc import Iterator
from typing import Any

import conformance
import jsonschema
import numpy
import openai
import pytest
from node_clients import run_script
from PIL import Image

from mockai import MockServer
from mockai.pipeline.journal import JournalEntry
from mockai.wire import errors

CHAT = "gpt-4o-mini"
PLACE = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": PLACE,
        "strict": True,
    },
}


def node(server: MockServer, *cases: dict[str, Any], retries: int = 0) -> list[dict[str, Any]]:
    """Run `cases` through one openai-node client (`retries`: its maxRetries); one entry per
    case: `result`, or `error` (with the `events` a stream yielded first), and `ms`."""
    spec = {"baseURL": server.url, "maxRetries": retries, "cases": list(cases)}
    results: list[dict[str, Any]] = run_script("openai_sdk.mjs", spec)
    assert len(results) == len(cases)
    return results


def chat(content: str = "Tell me how a stream breaks.", **body: Any) -> dict[str, Any]:
    return {"model": CHAT, "messages": [{"role": "user", "content": content}], **body}


def case(call: str, args: Any = None, **settings: Any) -> dict[str, Any]:
    return {"call": call, "args": args if args is not None else {}, **settings}


def fault(value: str, **options: Any) -> dict[str, Any]:
    return {"headers": {"x-mockai-fault": value}, **options}


def upload(name: str, data: bytes, content_type: str) -> dict[str, Any]:
    return {
        "$file": {"name": name, "base64": base64.b64encode(data).decode(), "type": content_type}
    }


def attempts(server: MockServer) -> list[JournalEntry]:
    return [entry for entry in server.requests if entry.endpoint is not None]


def gaps(entries: list[JournalEntry]) -> list[float]:
    return [b.arrived - a.arrived for a, b in itertools.pairwise(entries)]


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        (c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices")
    )


@pytest.fixture
def python_sdk(server: MockServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url, api_key="sk-python", max_retries=0) as client:
        yield client


# --- the API surface ---------------------------------------------------------------------------


def test_chat_answers_streams_tools_and_structured_output(server: MockServer) -> None:
    body = chat()
    answer, streamed, helper, tools, parsed = node(
        server,
        case("chat.completions.create", body, mode="raw"),
        case(
            "chat.completions.create",
            {**body, "stream": True, "stream_options": {"include_usage": True}},
            mode="events",
        ),
        case("chat.completions.stream", body, mode="helper", final="finalChatCompletion"),
        case(
            "chat.completions.create",
            chat("What is the weather in Paris?", tools=[WEATHER], tool_choice="required"),
        ),
        case(
            "chat.completions.parse",
            chat(
                "Describe Paris's weather",
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "weather", "strict": True, "schema": PLACE},
                },
            ),
        ),
    )
    raw = answer["result"]
    assert raw["status"] == 200
    data = raw["data"]
    content = data["choices"][0]["message"]["content"]
    assert content and data["choices"][0]["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # The SDK's request id is the header the server sent and journaled.
    assert data["_request_id"] == raw["headers"]["x-request-id"] == server.requests[0].request_id
    # The stream, read by the SDK's SSE parser, says what the whole answer said.
    chunks = streamed["result"]["events"]
    assert text_of(chunks) == content
    assert chunks[-1]["choices"] == []  # the usage chunk
    assert chunks[-1]["usage"]["completion_tokens"] == usage["completion_tokens"]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    final = helper["result"]["final"]
    assert final["choices"][0]["message"]["content"] == content
    assert text_of(helper["result"]["events"]) == content
    # Tool arguments that parse and fit the tool's schema; structured output the helper parsed.
    call = tools["result"]["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    jsonschema.validate(json.loads(call["function"]["arguments"]), PLACE)
    message = parsed["result"]["choices"][0]["message"]
    assert message["parsed"] == json.loads(message["content"])
    jsonschema.validate(message["parsed"], PLACE)


def test_responses_create_stream_and_retrieve(server: MockServer) -> None:
    ask = {"model": CHAT, "input": "Tell me about lighthouses."}
    made, helper, streamed, fetched = node(
        server,
        case("responses.create", ask),
        case("responses.stream", ask, mode="helper", final="finalResponse"),
        case("responses.create", {**ask, "stream": True}, mode="events"),
        {"call": "responses.retrieve", "argv": [{"$ref": "0.result.id"}]},
    )
    response = made["result"]
    assert response["status"] == "completed" and response["output_text"]
    conformance.validate("Response", {k: v for k, v in response.items() if k != "_request_id"})
    events = helper["result"]["events"]
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == helper["result"]["final"]["output_text"] == response["output_text"]
    numbers = [e["sequence_number"] for e in streamed["result"]["events"]]
    assert numbers == list(range(len(numbers)))
    assert fetched["result"]["id"] == response["id"]
    assert fetched["result"]["output_text"] == response["output_text"]


def test_a_reasoning_models_item_summary_and_tokens(server: MockServer) -> None:
    """openai-node's stream helper builds the reasoning item from its summary events, and reads
    the reasoning tokens a chat completion bills."""
    ask = {"model": "o4-mini", "input": "Why is the sky blue?", "reasoning": {"summary": "auto"}}
    made, helper, chat_made = node(
        server,
        case("responses.create", ask),
        case("responses.stream", ask, mode="helper", final="finalResponse"),
        case("chat.completions.create", {**chat(), "model": "o4-mini"}),
    )
    response = made["result"]
    reasoning, message = response["output"]
    assert reasoning["type"] == "reasoning" and message["type"] == "message"
    [part] = reasoning["summary"]
    events = helper["result"]["events"]
    deltas = "".join(
        e["delta"] for e in events if e["type"] == "response.reasoning_summary_text.delta"
    )
    assert deltas == part["text"]
    final = helper["result"]["final"]
    assert final["output"][0]["summary"] == reasoning["summary"]
    assert final["output_text"] == response["output_text"]
    assert final["usage"] == response["usage"]
    assert response["usage"]["output_tokens_details"]["reasoning_tokens"] > 0
    usage = chat_made["result"]["usage"]
    assert 0 < usage["completion_tokens_details"]["reasoning_tokens"] < usage["completion_tokens"]


def test_completions_models_and_moderations(server: MockServer) -> None:
    prompt = {"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon a time", "max_tokens": 12}
    completion, streamed, models, model, moderation = node(
        server,
        case("completions.create", prompt),
        case("completions.create", {**prompt, "stream": True}, mode="events"),
        case("models.list", mode="pages"),
        {"call": "models.retrieve", "argv": [CHAT]},
        case("moderations.create", {"input": ["I will hurt you", "a sunny day"]}),
    )
    text = completion["result"]["choices"][0]["text"]
    assert text and "".join(c["choices"][0]["text"] for c in streamed["result"]["events"]) == text
    ids = [m["id"] for m in models["result"]["items"]]
    assert CHAT in ids and len(ids) == len(set(ids))
    assert model["result"]["id"] == CHAT and model["result"]["object"] == "model"
    flagged = [r["flagged"] for r in moderation["result"]["results"]]
    assert flagged == [True, False]


def test_embeddings_decoded_from_base64_are_the_float_vectors(
    server: MockServer, python_sdk: openai.OpenAI
) -> None:
    texts = ["a cat on a mat", "Ünïcödé ✓ text", "the cat sat"]
    request = {"model": "text-embedding-3-small", "input": texts}
    default, floats, short = node(
        server,
        case("embeddings.create", request),  # openai-node asks for base64 and decodes it
        case("embeddings.create", {**request, "encoding_format": "float"}),
        case("embeddings.create", {**request, "dimensions": 64}),
    )
    assert server.requests[0].body["encoding_format"] == "base64"
    decoded = [numpy.array(d["embedding"], numpy.float64) for d in default["result"]["data"]]
    written = [numpy.array(d["embedding"], numpy.float64) for d in floats["result"]["data"]]
    from_python = python_sdk.embeddings.create(**request, encoding_format="float")
    for index, vector in enumerate(decoded):
        assert len(vector) == 1536
        # Every decoded value is a float32, and the text form reads back as the same float32.
        assert numpy.array_equal(vector, vector.astype(numpy.float32))
        assert numpy.array_equal(vector.astype(numpy.float32), written[index].astype(numpy.float32))
        expected = numpy.array(from_python.data[index].embedding, numpy.float32)
        assert numpy.array_equal(vector.astype(numpy.float32), expected)
        assert abs(numpy.linalg.norm(vector) - 1) < 1e-5
    assert [len(d["embedding"]) for d in short["result"]["data"]] == [64] * 3


def test_images_speech_and_transcripts(server: MockServer, python_sdk: openai.OpenAI) -> None:
    recording = python_sdk.audio.speech.create(
        model="tts-1", voice="nova", input="The sun rises in the east. It sets in the west."
    ).read()
    listen = {"model": "whisper-1", "file": upload("talk.mp3", recording, "audio/mpeg")}
    image, speech, as_json, as_text, as_srt, as_vtt, verbose = node(
        server,
        case("images.generate", {"model": "gpt-image-1", "prompt": "a lighthouse", "n": 1}),
        case(
            "audio.speech.create",
            {"model": "tts-1", "voice": "alloy", "input": "Hello there"},
            mode="binary",
        ),
        case("audio.transcriptions.create", listen),
        case("audio.transcriptions.create", {**listen, "response_format": "text"}),
        case("audio.transcriptions.create", {**listen, "response_format": "srt"}),
        case("audio.transcriptions.create", {**listen, "response_format": "vtt"}),
        case(
            "audio.transcriptions.create",
            {**listen, "response_format": "verbose_json", "timestamp_granularities": ["word"]},
        ),
    )
    png = base64.b64decode(image["result"]["data"][0]["b64_json"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert speech["result"]["contentType"] == "audio/mpeg" and speech["result"]["size"] > 500
    assert speech["result"]["head"].startswith(("494433", "fff"))  # an ID3 tag or an MPEG frame
    text = as_json["result"]["text"]
    assert text
    # Text formats come back as strings: the SDK reads a text/plain answer as text.
    assert as_text["result"] == text + "\n"
    assert as_srt["result"].startswith("1\n00:00:00,000 --> ")
    assert as_vtt["result"].startswith("WEBVTT\n\n00:00:00.000 --> ")
    words = verbose["result"]["words"]
    assert [w["word"] for w in words] == re.findall(r"[\w']+", verbose["result"]["text"])
    uploads = [e for e in server.requests if e.path.endswith("/audio/transcriptions")]
    assert all(e.status == 200 for e in uploads) and len(uploads) == 5


def test_an_edits_picture_needs_its_type_declared(server: MockServer) -> None:
    """The API reads an edit's picture type from the part's Content-Type: openai-node sends a
    `File` or `toFile` without `type` as application/octet-stream (openai-node#1468), which the
    API refuses whatever the bytes are; mockai took it. The mask is not held to it."""
    out = io.BytesIO()
    Image.new("RGBA", (64, 64), "blue").save(out, "PNG")
    png = out.getvalue()
    typed, untyped = upload("a.png", png, "image/png"), upload("a.png", png, "")
    edit = {"model": "gpt-image-1", "prompt": "add a hat"}
    ok, masked, bare, second, dall_e = node(
        server,
        case("images.edit", {**edit, "image": typed}),
        case("images.edit", {**edit, "image": typed, "mask": untyped}),
        case("images.edit", {**edit, "image": untyped}),
        case("images.edit", {**edit, "image": [typed, untyped]}),
        case("images.edit", {**edit, "model": "dall-e-2", "image": untyped}),
    )
    assert len(ok["result"]["data"]) == 1 and len(masked["result"]["data"]) == 1
    gpt_types = "'image/jpeg', 'image/png', and 'image/webp'"
    assert [
        (e["error"]["status"], e["error"]["code"], e["error"]["param"]) for e in (bare, second)
    ] == [
        (400, "unsupported_file_mimetype", "image"),
        (400, "unsupported_file_mimetype", "image[1]"),
    ]
    assert bare["error"]["message"] == (
        "400 Invalid file 'image': unsupported mimetype ('application/octet-stream'). "
        f"Supported file formats are {gpt_types}."
    )
    assert dall_e["error"]["message"].endswith("Supported file formats are 'image/png'.")


def test_a_recording_is_known_by_its_file_name(server: MockServer) -> None:
    """The API tells a recording's format by its file name: `toFile(buffer)` with no name
    (openai-node names it `unknown_file`) is its 400 whatever the bytes (openai-node#270), where
    mockai transcribed it."""
    wav = io.BytesIO()
    with wave.open(wav, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(bytes(32000))
    recording = base64.b64encode(wav.getvalue()).decode()
    named, bare, text = node(
        server,
        case(
            "audio.transcriptions.create",
            {"model": "whisper-1", "file": upload("m.wav", wav.getvalue(), "audio/wav")},
        ),
        case(
            "audio.transcriptions.create",
            {"model": "whisper-1", "file": {"$file": {"base64": recording}}},
        ),
        case(
            "audio.translations.create",
            {"model": "whisper-1", "file": upload("m.txt", wav.getvalue(), "audio/wav")},
        ),
    )
    assert named["result"]["text"]
    formats = "['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']"
    for refused in (bare, text):
        error = refused["error"]
        assert (error["name"], error["code"], error["param"]) == ("BadRequestError", None, None)
        assert error["message"] == f"400 Unrecognized file format. Supported formats: {formats}"


def test_files_batches_and_pages(server: MockServer) -> None:
    line = {"custom_id": "one", "method": "POST", "url": "/v1/chat/completions", "body": chat()}
    data = (json.dumps(line) + "\n").encode()
    results = node(
        server,
        case(
            "files.create",
            {"file": upload("in.jsonl", data, "application/jsonl"), "purpose": "batch"},
        ),
        {"call": "files.retrieve", "argv": [{"$ref": "0.result.id"}]},
        {
            "call": "files.content",
            "argv": [{"$ref": "0.result.id"}],
            "mode": "binary",
            "text": True,
        },
        case("files.list", mode="pages"),
        case(
            "batches.create",
            {
                "input_file_id": {"$ref": "0.result.id"},
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        ),
        {"call": "batches.retrieve", "argv": [{"$ref": "4.result.id"}]},
        case("batches.list", mode="pages"),
        {"call": "files.delete", "argv": [{"$ref": "0.result.id"}]},
        {"call": "files.retrieve", "argv": [{"$ref": "0.result.id"}]},
    )
    made, fetched, content, listed, batch, batch_again, batches, deleted, gone = results
    file_id = made["result"]["id"]
    assert made["result"]["bytes"] == len(data) and made["result"]["filename"] == "in.jsonl"
    assert fetched["result"]["id"] == file_id
    assert content["result"]["text"] == data.decode()
    assert file_id in [f["id"] for f in listed["result"]["items"]]
    assert batch["result"]["input_file_id"] == file_id
    assert batch_again["result"]["id"] == batch["result"]["id"]
    assert [b["id"] for b in batches["result"]["items"]] == [batch["result"]["id"]]
    assert {k: v for k, v in deleted["result"].items() if k != "_request_id"} == {
        "id": file_id,
        "object": "file",
        "deleted": True,
    }
    assert gone["error"]["name"] == "NotFoundError" and gone["error"]["status"] == 404


def test_conversations_and_their_items(server: MockServer) -> None:
    first = {"type": "message", "role": "user", "content": "Remember: the code is 42."}
    made, answered, items = node(
        server,
        case("conversations.create", {"items": [first]}),
        case(
            "responses.create",
            {"model": CHAT, "conversation": {"$ref": "0.result.id"}, "input": "What is the code?"},
        ),
        {"call": "conversations.items.list", "argv": [{"$ref": "0.result.id"}], "mode": "pages"},
    )
    assert made["result"]["object"] == "conversation"
    listed = items["result"]["items"]
    roles = [(item["type"], item.get("role")) for item in listed]
    # Newest first, as the API lists them: the answer, the question, the first item.
    assert roles == [("message", "assistant"), ("message", "user"), ("message", "user")]
    assert listed[0]["content"][0]["text"] == answered["result"]["output_text"]
    for item in listed:
        conformance.validate("ConversationItem", item)


def test_errors_map_to_the_sdks_classes() -> None:
    with conformance.checked_server(models=(CHAT,)) as server:  # others are the API's 404
        missing, invalid, no_model, bad_fault = node(
            server,
            case("chat.completions.create", chat(model="gpt-nonexistent")),
            case("chat.completions.create", {"model": CHAT, "messages": []}),
            {"call": "models.retrieve", "argv": ["gpt-nonexistent"]},
            case("chat.completions.create", chat(), options=fault("explode")),
        )
    error = missing["error"]
    assert error["name"] == "NotFoundError" and error["status"] == 404
    assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
    # openai-node's message is "<status> <the error's message>" (wire contract, section 4).
    assert error["message"] == f"404 {error['error']['message']}"
    assert error["requestID"] == server.requests[0].request_id
    assert invalid["error"]["name"] == "BadRequestError" and invalid["error"]["param"] == "messages"
    assert invalid["error"]["code"] == "empty_array"
    assert no_model["error"]["name"] == "NotFoundError" and no_model["error"]["status"] == 404
    assert bad_fault["error"]["name"] == "BadRequestError"
    assert bad_fault["error"]["param"] == "x-mockai-fault"


# --- faults: what openai-node does about them ---------------------------------------------------


def test_rate_limit_with_retry_after_ms_is_retried_at_that_pace(server: MockServer) -> None:
    (outcome,) = node(
        server,
        case("chat.completions.create", chat(), options=fault("rate_limit;retry_after=300ms")),
        retries=2,
    )
    assert outcome["error"]["name"] == "RateLimitError" and outcome["error"]["status"] == 429
    assert outcome["error"]["code"] == "rate_limit_exceeded"
    seen = attempts(server)
    assert [e.retry_count for e in seen] == [0, 1, 2]  # openai-node counts its retries too
    assert all(0.28 <= gap < 1.5 for gap in gaps(seen)), gaps(seen)


@pytest.mark.parametrize(
    ("header", "error_class", "tries"),
    [
        ("overloaded;should_retry=false", "InternalServerError", 1),
        ("rate_limit;should_retry=false", "RateLimitError", 1),
        # Over 60 s openai-node falls back to its own backoff and still retries (openai-python
        # 3.x gives up over 120 s): the wire contract, section 2.
        ("rate_limit;retry_after=121s", "RateLimitError", 2),
        # ... and reads x-should-retry first (openai-python 3.x: the Retry-After over 120 s).
        ("rate_limit;retry_after=121s;should_retry=true", "RateLimitError", 2),
        ("insufficient_quota", "RateLimitError", 2),  # a 429: retried unless told not to
    ],
)
def test_which_errors_are_retried(
    server: MockServer, header: str, error_class: str, tries: int
) -> None:
    (outcome,) = node(
        server, case("chat.completions.create", chat(), options=fault(header)), retries=1
    )
    assert outcome["error"]["name"] == error_class
    seen = attempts(server)
    assert len(seen) == tries
    if tries == 2:
        assert gaps(seen)[0] < 1.5  # the SDK's backoff, not the 121 s asked for


def test_fail_the_first_attempts_then_succeed(server: MockServer) -> None:
    (outcome,) = node(
        server,
        case(
            "chat.completions.create",
            chat(),
            options=fault("server_error;attempts=2;retry_after=100ms"),
        ),
        retries=2,
    )
    assert outcome["result"]["choices"][0]["message"]["content"]
    seen = attempts(server)
    assert [(e.retry_count, e.status) for e in seen] == [(0, 500), (1, 500), (2, 200)]
    assert all(0.09 <= gap < 1.5 for gap in gaps(seen))


def test_bad_gateway_html_page(server: MockServer) -> None:
    (outcome,) = node(
        server, case("chat.completions.create", chat(), options=fault("non_json")), retries=1
    )
    error = outcome["error"]
    assert error["name"] == "InternalServerError" and error["status"] == 502
    # Not JSON: the message is the status and the raw page, and there is no code.
    assert error["message"].startswith("502 ") and "502 Bad Gateway" in error["message"]
    assert error["code"] is None
    seen = attempts(server)
    assert [e.status for e in seen] == [502, 502]
    assert 0.3 <= gaps(seen)[0] < 1.5  # the SDK's own backoff (no retry-after)


@pytest.mark.parametrize("name", ["reset", "empty_response"])
def test_connection_closed_before_any_response_is_retried(server: MockServer, name: str) -> None:
    (outcome,) = node(
        server, case("chat.completions.create", chat(), options=fault(name)), retries=1
    )
    assert outcome["error"]["name"] == "APIConnectionError"
    seen = attempts(server)
    assert [(e.status, e.faults) for e in seen] == [(0, [name]), (0, [name])]
    assert 0.3 <= gaps(seen)[0] < 1.5


def test_hang_times_out_on_every_attempt(server: MockServer) -> None:
    (outcome,) = node(
        server,
        case("chat.completions.create", chat(), options=fault("hang", timeout=300)),
        retries=1,
    )
    assert outcome["error"]["name"] == "APIConnectionTimeoutError"
    seen = attempts(server)
    assert [(e.status, e.faults) for e in seen] == [(0, ["hang"]), (0, ["hang"])]
    assert 0.25 + 0.3 <= gaps(seen)[0] < 0.3 + 1.5


def test_a_json_answer_cut_halfway_is_not_retried(server: MockServer) -> None:
    """openai-python retries a body cut short (APIConnectionError); openai-node has its answer
    once the headers came, and the body's read fails outside its retry loop: fetch's own error
    (`TypeError: terminated`), one attempt."""
    (outcome,) = node(
        server,
        case("chat.completions.create", chat(), options=fault("disconnect_after=1")),
        retries=1,
    )
    assert outcome["error"]["name"] == "TypeError" and outcome["error"]["message"] == "terminated"
    assert len(attempts(server)) == 1


def test_stream_faults(server: MockServer) -> None:
    streaming = chat(stream=True)
    clean, cut, malformed, errored, truncated, duplicated, split = node(
        server,
        case("chat.completions.create", streaming, mode="events"),
        case(
            "chat.completions.create", streaming, mode="events", options=fault("disconnect_after=3")
        ),
        case(
            "chat.completions.create", streaming, mode="events", options=fault("malformed_chunk=2")
        ),
        case(
            "chat.completions.create",
            streaming,
            mode="events",
            options=fault("error_event_after=2"),
        ),
        case(
            "chat.completions.create", streaming, mode="events", options=fault("truncate_after=2")
        ),
        case(
            "chat.completions.create", streaming, mode="events", options=fault("duplicate_chunk=2")
        ),
        case("chat.completions.create", streaming, mode="events", options=fault("split_chunk=2")),
    )
    chunks = clean["result"]["events"]
    # A dropped connection: fetch's error, as is (not an APIConnectionError), after 3 chunks.
    assert cut["error"]["name"] == "TypeError" and cut["error"]["message"] == "terminated"
    assert len(cut["events"]) == 3
    # A chunk that is not JSON: a SyntaxError naming the event.
    assert malformed["error"]["name"] == "SyntaxError"
    assert "malformed server-sent event" in malformed["error"]["message"]
    assert len(malformed["events"]) == 1
    # The in-band error: APIError with its message, no status.
    expected = json.loads(errors.stream_error_frame(2)[len(b"data: ") :])["error"]["message"]
    assert errored["error"]["name"] == "APIError" and errored["error"]["status"] is None
    assert errored["error"]["message"] == expected and len(errored["events"]) == 2
    # Cut clean: no error, no finish.
    events = truncated["result"]["events"]
    assert len(events) == 2 and all(e["choices"][0]["finish_reason"] is None for e in events)
    piece = chunks[1]["choices"][0]["delta"]["content"]
    assert text_of(duplicated["result"]["events"]) == piece + text_of(chunks)
    assert text_of(split["result"]["events"]) == text_of(chunks)
    assert len(split["result"]["events"]) == len(chunks)
    assert len(attempts(server)) == 7  # a stream that started is never retried


def test_a_stalled_stream_outlives_the_sdks_timeout(server: MockServer) -> None:
    """openai-node's `timeout` covers a stream until its headers only (wire contract, section
    3): a stream that stalls afterwards is still waiting at five times the timeout, where
    openai-python raises APITimeoutError once its read timeout passes."""
    (outcome,) = node(
        server,
        case(
            "chat.completions.create",
            chat(stream=True),
            mode="events",
            options=fault("stall_after=2", timeout=300),
            within=1500,
        ),
    )
    assert outcome.get("pending") is True and len(outcome["events"]) == 2
    assert len(attempts(server)) == 1


def test_a_stalled_json_body_times_out_and_is_retried(server: MockServer) -> None:
    """A JSON body is read within the timeout too (openai-node 7.60's `parseResponseWithTimeout`,
    newer than the wire contract's 7.57), and a body that timed out is retried."""
    (outcome,) = node(
        server,
        case("chat.completions.create", chat(), options=fault("stall_after=1", timeout=300)),
        retries=1,
    )
    assert outcome["error"]["name"] == "APIConnectionTimeoutError"
    seen = attempts(server)
    assert [(e.status, e.faults) for e in seen] == [(200, ["stall_after"])] * 2  # (halfway)
    assert 0.25 + 0.3 <= gaps(seen)[0] < 0.3 + 1.5  # the timeout, then the backoff


def test_responses_and_completions_stream_faults(server: MockServer) -> None:
    ask = {"model": CHAT, "input": "Tell me how a stream breaks.", "stream": True}
    prompt = {"model": "gpt-3.5-turbo-instruct", "prompt": "Once", "max_tokens": 16, "stream": True}
    cut, errored, completions = node(
        server,
        case("responses.create", ask, mode="events", options=fault("disconnect_after=3")),
        case("responses.create", ask, mode="events", options=fault("error_event_after=2")),
        case("completions.create", prompt, mode="events", options=fault("error_event_after=1")),
    )
    assert cut["error"]["message"] == "terminated"
    assert [e["type"] for e in cut["events"]] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
    ]
    # openai-python yields the spec's `error` event; openai-node throws on an event named error.
    assert errored["error"]["name"] == "APIError"
    assert [e["type"] for e in errored["events"]] == ["response.created", "response.in_progress"]
    assert completions["error"]["name"] == "APIError" and len(completions["events"]) == 1


def test_latency_and_pacing_headers(server: MockServer) -> None:
    delayed, paced = node(
        server,
        case("chat.completions.create", chat(), options={"headers": {"x-mockai-latency": "200ms"}}),
        case(
            "chat.completions.create",
            chat(stream=True, max_tokens=8),
            mode="events",
            options={"headers": {"x-mockai-stream": "ttft=150ms,chunk_delay=10ms"}},
        ),
    )
    assert delayed["result"]["choices"][0]["message"]["content"] and delayed["ms"] >= 190
    frames = len(paced["result"]["events"]) + 1  # and [DONE]
    assert paced["ms"] >= 150 + (frames - 1) * 10 * 0.9


# --- Azure OpenAI, from Node ----------------------------------------------------------------------


def test_azure_openai_from_node() -> None:
    """openai-node's AzureOpenAI: the deployment in the path, `api-key`, `api-version`; a
    deployment fixed on the client, and one given per request as the model."""
    key, version = "azure-node-key", "2024-10-21"
    hello = [{"role": "user", "content": "Hello there"}]
    with conformance.checked_server(require_api_key=key) as server:
        azure = {"endpoint": server.base_url, "apiKey": key, "apiVersion": version}
        answer, streamed, vectors = run_script(
            "openai_sdk.mjs",
            {
                "azure": azure,
                "cases": [
                    case("chat.completions.create", {"model": "prod-gpt4o", "messages": hello}),
                    case(
                        "chat.completions.create",
                        {"model": "prod-gpt4o", "messages": hello, "stream": True},
                        mode="events",
                    ),
                    case("embeddings.create", {"model": "prod-embeddings", "input": ["a", "b"]}),
                ],
            },
        )
        (fixed,) = run_script(
            "openai_sdk.mjs",
            {
                "azure": {**azure, "deployment": "team-deployment"},
                "cases": [case("chat.completions.create", {"model": "ignored", "messages": hello})],
            },
        )
        seen = [(e.path, e.status, e.headers.get("api-key")) for e in server.requests]
        queries = {e.path: e for e in server.requests}
    text = answer["result"]["choices"][0]["message"]["content"]
    assert answer["result"]["model"] == "prod-gpt4o" and text
    assert text_of(streamed["result"]["events"]) == text
    assert [len(d["embedding"]) for d in vectors["result"]["data"]] == [1536, 1536]
    assert fixed["result"]["model"] == "team-deployment"
    assert seen == [
        ("/openai/deployments/prod-gpt4o/chat/completions", 200, "<redacted>"),
        ("/openai/deployments/prod-gpt4o/chat/completions", 200, "<redacted>"),
        ("/openai/deployments/prod-embeddings/embeddings", 200, "<redacted>"),
        ("/openai/deployments/team-deployment/chat/completions", 200, "<redacted>"),
    ]
    assert queries["/openai/deployments/prod-embeddings/embeddings"].body["encoding_format"] == (
        "base64"
    )


# --- the SDK's helpers that take JavaScript: runTools, zod ----------------------------------------


def test_run_tools_and_zod_helpers(server: MockServer) -> None:
    """tests/node/openai_helpers.mjs: `runTools` calls the tool with the arguments the model
    sent and sends its result back until the model answers (streamed too); `parse`, `stream`
    and `responses.parse` with zod formats give values zod itself accepts."""
    out = run_script("openai_helpers.mjs", {"baseURL": server.url})
    ran = out["runTools"]
    roles = [m["role"] for m in ran["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    (call,) = ran["messages"][1]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert ran["calls"] == [json.loads(call["function"]["arguments"])]
    assert ran["calls"][0]["city"] == "Paris" and ran["calls"][0]["unit"] in ("c", "f")
    assert ran["messages"][2]["tool_call_id"] == call["id"]
    assert ran["finalContent"] == ran["messages"][3]["content"]
    assert '"forecast":"sunny"' in ran["finalContent"]  # the tool's result reached the model
    # The journal: the second request carried the tool's result under the call's id.
    sent_back = server.requests[1].body["messages"]
    assert sent_back[-1] == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": ran["messages"][2]["content"],
    }
    streamed = out["runToolsStreamed"]
    assert streamed["calls"][0]["city"] == "Rome"
    assert streamed["streamedText"] == streamed["finalContent"] and streamed["finalContent"]
    assert out["valid"] == [True, True, True]
    assert out["parse"]["parsed"] == json.loads(out["parse"]["content"])
    assert out["parse"]["parsed"]["city"] == "Oslo"  # (the prompt names it)
    assert out["stream"]["parsed"] == out["parse"]["parsed"]  # the same request, streamed
    assert out["stream"]["partials"] > 1  # parsed as it streamed
    assert out["responsesParse"]["parsed"] == json.loads(out["responsesParse"]["text"])
    assert [e.path for e in server.requests] == ["/v1/chat/completions"] * 6 + ["/v1/responses"]
