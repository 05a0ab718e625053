"""Batches through the real SDK: every line answered by the pipeline, statuses by polling."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from conformance import checked_server

from mockai import MockServer

TERMINAL = ("completed", "failed", "cancelled", "expired")


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(line) for line in lines).encode() + b"\n"


def chat_line(custom_id: str, text: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **body},
    }


def run(client: openai.OpenAI, data: bytes, endpoint: Any = "/v1/chat/completions") -> list[Any]:
    """Upload, create, and poll until the batch ends; every state seen, in order."""
    upload = client.files.create(file=("requests.jsonl", data), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint=endpoint, completion_window="24h"
    )
    seen = [batch]
    while seen[-1].status not in TERMINAL:
        seen.append(client.batches.retrieve(batch.id))
        assert len(seen) < 10
    return seen


def lines_of(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


@pytest.fixture
def generating() -> Iterator[MockServer]:
    """A server with rules that still generates what they do not match."""
    with checked_server(fallback="generate") as server:
        yield server


def test_a_hundred_lines_scripted_generated_and_one_malformed(generating: MockServer) -> None:
    generating.add_rule(
        {
            "name": "scripted",
            "match": {"endpoint": "chat", "user": {"startswith": "scripted"}},
            "reply": {"content": "Scripted: {{ request.user }}"},
        }
    )
    lines = []
    for i in range(100):
        text = f"scripted question {i}" if i % 5 == 0 else f"open question {i}"
        lines.append(chat_line(f"task-{i:03d}", text))
    lines[42]["body"] = {"model": "gpt-4o-mini"}  # malformed: no messages
    with openai.OpenAI(base_url=generating.url, api_key="k", max_retries=0) as client:
        states = run(client, jsonl(lines))
        assert [s.status for s in states] == [
            "validating",
            "in_progress",
            "finalizing",
            "completed",
        ]
        batch = states[-1]
        assert (batch.request_counts.total, batch.request_counts.completed) == (100, 99)
        assert batch.request_counts.failed == 1
        assert batch.model == "gpt-4o-mini" and batch.errors is None
        created, moved = batch.created_at, [batch.in_progress_at, batch.finalizing_at]
        assert created < moved[0] < moved[1] < (batch.completed_at or 0)
        output = lines_of(client, batch.output_file_id)
        errors = lines_of(client, batch.error_file_id)
        output_file = client.files.retrieve(batch.output_file_id or "")
    # The output holds the 99 answers in request order, by custom_id.
    assert [line["custom_id"] for line in output] == [
        f"task-{i:03d}" for i in range(100) if i != 42
    ]
    assert output_file.purpose == "batch_output"
    assert output_file.filename == f"{batch.id}_output.jsonl"
    for line in output:
        number = int(line["custom_id"][5:])
        assert line["id"].startswith("batch_req_") and line["error"] is None
        response = line["response"]
        assert response["status_code"] == 200 and response["request_id"].startswith("req_")
        content = response["body"]["choices"][0]["message"]["content"]
        if number % 5 == 0:
            assert content == f"Scripted: scripted question {number}"
        else:
            assert content and not content.startswith("Scripted")
    # The malformed line is in the error file, with the API's 400.
    [failed] = errors
    assert failed["custom_id"] == "task-042"
    assert failed["response"]["status_code"] == 400
    assert failed["response"]["body"]["error"]["param"] == "messages"
    # Usage adds up the answers' own.
    assert batch.usage is not None
    bodies = [line["response"]["body"] for line in output]
    assert batch.usage.input_tokens == sum(b["usage"]["prompt_tokens"] for b in bodies)
    assert batch.usage.output_tokens == sum(b["usage"]["completion_tokens"] for b in bodies)
    # Each line was journaled like a request, naming its batch and what answered it.
    answered = [e for e in generating.requests if e.batch == batch.id]
    assert len(answered) == 100
    assert [e.rule for e in answered[:6]] == ["scripted", None, None, None, None, "scripted"]
    assert {e.source for e in answered} == {"rule", "generator", "error"}
    assert answered[0].headers["x-mockai-custom-id"] == "task-000"


def test_lines_are_answered_as_the_same_requests_alone(generating: MockServer) -> None:
    # The generated answer of a line is the answer the same request gets on its own.
    with openai.OpenAI(base_url=generating.url, api_key="k", max_retries=0) as client:
        alone = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "same question"}]
        )
        batch = run(client, jsonl([chat_line("only", "same question")]))[-1]
        [line] = lines_of(client, batch.output_file_id)
    assert line["response"]["body"]["choices"][0]["message"]["content"] == (
        alone.choices[0].message.content
    )


def test_a_sequence_rule_answers_the_lines_in_order(generating: MockServer) -> None:
    generating.add_rule(
        {
            "match": {"user": "retry me"},
            "sequence": [
                {"error": "rate_limit"},
                {"error": {"status": 500}},
                {"reply": "third time lucky"},
            ],
        }
    )
    with openai.OpenAI(base_url=generating.url, api_key="k", max_retries=0) as client:
        batch = run(client, jsonl([chat_line(f"r{i}", "retry me") for i in range(3)]))[-1]
        errors = lines_of(client, batch.error_file_id)
        [good] = lines_of(client, batch.output_file_id)
    assert [(e["custom_id"], e["response"]["status_code"]) for e in errors] == [
        ("r0", 429),
        ("r1", 500),
    ]
    assert errors[0]["response"]["body"]["error"]["code"] == "rate_limit_exceeded"
    assert good["custom_id"] == "r2"
    assert good["response"]["body"]["choices"][0]["message"]["content"] == "third time lucky"


def test_a_rule_can_script_one_line_by_its_custom_id(generating: MockServer) -> None:
    generating.add_rule(
        {"match": {"headers": {"x-mockai-custom-id": "vip"}}, "reply": "for the vip line"}
    )
    with openai.OpenAI(base_url=generating.url, api_key="k", max_retries=0) as client:
        batch = run(client, jsonl([chat_line("vip", "hi"), chat_line("plain", "hi")]))[-1]
        answers = {
            line["custom_id"]: line["response"]["body"]["choices"][0]["message"]["content"]
            for line in lines_of(client, batch.output_file_id)
        }
    assert answers["vip"] == "for the vip line" and answers["plain"] != "for the vip line"


def test_chaos_fails_the_same_lines_for_the_same_seed() -> None:
    def failed_lines() -> list[str]:
        with (
            MockServer(chaos="server_error=0.3", seed=5) as server,
            openai.OpenAI(base_url=server.url, api_key="k", max_retries=20) as client,
        ):
            lines = [chat_line(f"c{i}", f"question {i}") for i in range(30)]
            batch = run(client, jsonl(lines))[-1]
            assert batch.status == "completed"
            errors = lines_of(client, batch.error_file_id)
            assert {e["response"]["status_code"] for e in errors} == {500}
            return [e["custom_id"] for e in errors]

    first = failed_lines()
    assert 3 <= len(first) <= 20
    assert failed_lines() == first


@pytest.mark.parametrize(
    ("content", "code", "line"),
    [
        (
            b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n{oops\n',
            "invalid_json_line",
            2,
        ),
        (jsonl([chat_line("a", "x"), chat_line("a", "y")]), "duplicate_custom_id", 2),
        (
            jsonl([chat_line("a", "x"), {**chat_line("b", "y"), "url": "/v1/embeddings"}]),
            "url_mismatch",
            2,
        ),
        (
            jsonl([chat_line("a", "x"), chat_line("b", "y", model="gpt-4o")]),
            "model_mismatch",
            2,
        ),
        (
            jsonl([{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions"}]),
            "missing_required_parameter",
            1,
        ),
        (b"\n\n", "empty_file", None),
    ],
)
def test_an_input_file_the_api_refuses_fails_the_batch(
    client: openai.OpenAI, content: bytes, code: str, line: int | None
) -> None:
    states = run(client, content)
    assert [s.status for s in states] == ["validating", "failed"]
    failed = states[-1]
    assert failed.failed_at is not None and failed.output_file_id is None
    assert failed.errors is not None and failed.errors.data
    error = failed.errors.data[0]
    assert (error.code, error.line) == (code, line)


def test_the_input_file_must_exist_and_be_for_batches(client: openai.OpenAI) -> None:
    other = client.files.create(file=("x.jsonl", jsonl([chat_line("a", "b")])), purpose="evals")
    for file_id, message in ((other.id, "purpose 'batch'"), ("file-missing", "No such File")):
        batch = client.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        failed = client.batches.retrieve(batch.id)
        assert failed.status == "failed" and failed.errors is not None
        assert message in (failed.errors.data[0].message or "")


def test_cancel_list_and_errors(client: openai.OpenAI) -> None:
    upload = client.files.create(file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="batch")
    made = [
        client.batches.create(
            input_file_id=upload.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"run": str(i)},
        )
        for i in range(3)
    ]
    assert [b.id for b in client.batches.list().data] == [b.id for b in reversed(made)]
    assert [b.id for b in client.batches.list(limit=1)] == [b.id for b in reversed(made)]
    cancelling = client.batches.cancel(made[0].id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    cancelled = client.batches.retrieve(made[0].id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    assert cancelled.metadata == {"run": "0"}
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(made[0].id)
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")
    with pytest.raises(openai.BadRequestError) as refused:
        client.batches.create(
            input_file_id=upload.id,
            endpoint="/v1/videos",  # type: ignore[arg-type]
            completion_window="24h",
        )
    assert refused.value.body["param"] == "endpoint"  # type: ignore[index]


def test_streaming_lines_are_refused_in_the_error_file(client: openai.OpenAI) -> None:
    batch = run(client, jsonl([chat_line("s", "x", stream=True)]))[-1]
    [error] = lines_of(client, batch.error_file_id)
    assert error["response"]["status_code"] == 400
    assert "Streaming is not supported" in error["response"]["body"]["error"]["message"]


def test_embeddings_and_image_batches(client: openai.OpenAI) -> None:
    embeddings = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": f"text {i}", "dimensions": 8},
        }
        for i in range(3)
    ]
    batch = run(client, jsonl(embeddings), "/v1/embeddings")[-1]
    vectors = [
        line["response"]["body"]["data"][0]["embedding"]
        for line in lines_of(client, batch.output_file_id)
    ]
    assert [len(v) for v in vectors] == [8, 8, 8]
    images = [
        {
            "custom_id": "img",
            "method": "POST",
            "url": "/v1/images/generations",
            "body": {"model": "gpt-image-1", "prompt": "a boat", "quality": "low"},
        }
    ]
    batch = run(client, jsonl(images), "/v1/images/generations")[-1]
    [line] = lines_of(client, batch.output_file_id)
    assert line["response"]["body"]["usage"]["output_tokens"] == 272


def test_sync_raw_responses(client: openai.OpenAI) -> None:
    upload = client.files.create(file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="batch")
    raw = client.batches.with_raw_response.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert raw.status_code == 200 and raw.parse().status == "validating"
    polled = client.batches.with_raw_response.retrieve(raw.parse().id)
    assert polled.headers["x-request-id"].startswith("req_")
    assert polled.parse().status == "in_progress"
    assert client.batches.with_raw_response.cancel(raw.parse().id).parse().status == "cancelling"
    assert [b.id for b in client.batches.with_raw_response.list().parse().data] == [raw.parse().id]


@pytest.mark.asyncio
async def test_async_polling_and_raw(aclient: openai.AsyncOpenAI) -> None:
    upload = await aclient.files.create(
        file=("in.jsonl", jsonl([chat_line("a", "hello"), chat_line("b", "there")])),
        purpose="batch",
    )
    raw = await aclient.batches.with_raw_response.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert raw.status_code == 200 and raw.headers["x-request-id"].startswith("req_")
    batch = raw.parse()
    while batch.status not in TERMINAL:
        batch = await aclient.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.request_counts.completed == 2
    content = await aclient.files.content(batch.output_file_id or "")
    assert [json.loads(line)["custom_id"] for line in content.text.splitlines()] == ["a", "b"]
