"""Batches: what a bug hunt found wrong, each kept fixed by a test through the SDK or HTTP.

- a JSON Lines file is split at `\\n` only: a text holding a raw U+2028, U+2029 or U+0085
  (what `json.dumps(..., ensure_ascii=False)` writes) is one valid line;
- the output and error files escape those characters, so `.text.splitlines()` reads them too;
- an embeddings batch counts a token array as one input, and counts its inputs whichever way its
  endpoint is spelled (`/embeddings`, Azure's);
- `output_expires_after` is checked as `/files` checks `expires_after` (its anchor too);
- HEAD shows a batch as it stands, and moves nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from conformance import checked_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk import sdk
from strategies import examples, json_objects, texts

from mockai import MockServer
from mockai.api import batches as batch_codec

TERMINAL = ("completed", "failed", "cancelled", "expired")
# What `str.splitlines` breaks at besides "\n" and "\r" that JSON may hold raw in a string.
RAW_BREAKS = ("\u2028", "\u2029", "\x85")
BREAKING = st.lists(st.one_of(texts(max_size=4), st.sampled_from(RAW_BREAKS)), max_size=6).map(
    "".join
)


def chat_line(custom_id: str, text: str) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]},
    }


def raw_jsonl(lines: list[dict[str, Any]]) -> bytes:
    """One line per request, non-ASCII written raw (as `ensure_ascii=False` writes it)."""
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()


def create(client: openai.OpenAI, data: bytes, endpoint: Any = "/v1/chat/completions") -> Any:
    upload = client.files.create(file=("requests.jsonl", data), purpose="batch")
    return client.batches.create(
        input_file_id=upload.id, endpoint=endpoint, completion_window="24h"
    )


def finish(client: openai.OpenAI, batch: Any) -> Any:
    for _ in range(10):
        if batch.status in TERMINAL:
            return batch
        batch = client.batches.retrieve(batch.id)
    raise AssertionError(f"batch {batch.id} still {batch.status} after 10 polls")


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with checked_server() as running:
        # Each chat line is answered with its own question: what the output file must carry.
        running.add_rule(
            {"match": {"endpoint": "chat"}, "reply": {"content": "{{ request.user }}"}}
        )
        yield running


@pytest.fixture(scope="module")
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with sdk(server) as built:
        yield built


# --- lines split at "\n" only, and written so that any reader splits them alike -----------------


def test_a_raw_line_separator_in_a_text_is_one_valid_line(client: openai.OpenAI) -> None:
    texts_sent = ["Zeile 1\u2028Zeile 2", "a\u2029b", "next\x85line", "plain"]
    lines = [chat_line(f"q{i}", text) for i, text in enumerate(texts_sent)]
    batch = finish(client, create(client, raw_jsonl(lines)))
    assert batch.errors is None and batch.status == "completed"
    assert batch.request_counts.completed == 4
    text = client.files.content(batch.output_file_id or "").text
    # The docs read the output with `.text.splitlines()`: no raw separator may split a line.
    assert not any(mark in text for mark in RAW_BREAKS)
    answers = [json.loads(row)["response"]["body"] for row in text.splitlines()]
    assert [a["choices"][0]["message"]["content"] for a in answers] == texts_sent


def test_a_bad_line_after_raw_separators_is_named_by_its_own_number(client: openai.OpenAI) -> None:
    lines = raw_jsonl([chat_line("a", "x\u2028y\u2029z\x85"), chat_line("b", "\u2028")])
    data = lines + b"\r\n" + b"not json\r\n"  # (a blank line, counted; "\r\n" endings too)
    batch = finish(client, create(client, data))
    assert batch.status == "failed" and batch.errors is not None
    assert [(e.code, e.line) for e in batch.errors.data] == [("invalid_json_line", 4)]


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(questions=st.lists(BREAKING.filter(str.strip), min_size=1, max_size=4))
def test_any_answer_reads_back_from_the_output_file_either_way(
    client: openai.OpenAI, questions: list[str]
) -> None:
    lines = [chat_line(f"q{i}", text) for i, text in enumerate(questions)]
    batch = finish(client, create(client, raw_jsonl(lines)))
    assert batch.status == "completed" and batch.request_counts.completed == len(questions)
    text = client.files.content(batch.output_file_id or "").text
    # Read as JSON Lines (split at "\n"), and as the docs read it (`splitlines`): the same rows.
    by_newline = [json.loads(row) for row in text.split("\n") if row]
    assert [json.loads(row) for row in text.splitlines()] == by_newline
    assert [row["custom_id"] for row in by_newline] == [line["custom_id"] for line in lines]
    got = [row["response"]["body"]["choices"][0]["message"]["content"] for row in by_newline]
    assert got == questions


@settings(max_examples=200, deadline=None)
@given(
    bodies=st.lists(
        st.tuples(json_objects(max_leaves=4), BREAKING, st.sampled_from(("\n", "\r\n", "\n\n"))),
        min_size=1,
        max_size=6,
    )
)
def test_any_json_lines_read_back_as_written_with_their_numbers(
    bodies: list[tuple[dict[str, Any], str, str]],
) -> None:
    """Any objects with arbitrary strings, one per line (`ensure_ascii=False`), read back as
    exactly those lines, numbered as a text editor numbers them (blank lines counted)."""
    text, expected, number = "", [], 1
    for i, (body, extra, ending) in enumerate(bodies):
        line = {"custom_id": f"{i}{extra}", "method": "POST", "url": "/v1/embeddings", "body": body}
        text += json.dumps(line, ensure_ascii=False) + ending
        expected.append((number, line["custom_id"], body))
        number += ending.count("\n")
    data = text.encode()
    lines, errors = batch_codec.read_lines(data, "/v1/embeddings")
    assert errors == []
    assert [(line.number, line.custom_id, line.body) for line in lines] == expected
    assert list(batch_codec.valid_lines(data, "/v1/embeddings")) == lines


# --- embedding inputs counted as the API counts them ---------------------------------------------


def embedding_lines(inputs: Any, count: int = 25) -> bytes:
    return raw_jsonl(
        [
            {
                "custom_id": f"e{i}",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": "text-embedding-3-small", "input": inputs},
            }
            for i in range(count)
        ]
    )


def validated(client: openai.OpenAI, data: bytes, endpoint: str = "/v1/embeddings") -> Any:
    """The batch once validated (in progress, or failed), cancelled if it may run."""
    batch = client.batches.retrieve(create(client, data, endpoint).id)
    if batch.status == "in_progress":
        client.batches.cancel(batch.id)  # (nothing of the 25 lines is needed)
    return batch


def test_a_token_array_is_one_embedding_input(client: openai.OpenAI) -> None:
    # 25 requests of one 2,048-token input each: 25 inputs, not 51,200.
    batch = validated(client, embedding_lines([100] * 2048))
    assert (batch.status, batch.errors) == ("in_progress", None)
    assert batch.request_counts.total == 25


@pytest.mark.parametrize("inputs", [["w"] * 2048, [[7, 8]] * 2048], ids=["strings", "token-arrays"])
@pytest.mark.parametrize("endpoint", ["/v1/embeddings", "/embeddings"])
def test_fifty_thousand_embedding_inputs_is_the_limit_whatever_the_spelling(
    client: openai.OpenAI, server: MockServer, inputs: list[Any], endpoint: str
) -> None:
    if endpoint == "/embeddings":  # (Azure's spelling: through Azure's routes)
        with openai.AzureOpenAI(
            azure_endpoint=server.base_url, api_key="k", api_version="2024-10-21", max_retries=0
        ) as azure:
            batch = validated(azure, embedding_lines(inputs), endpoint)
    else:
        batch = validated(client, embedding_lines(inputs), endpoint)  # 25 x 2,048 inputs
    assert batch.status == "failed" and batch.errors is not None
    [error] = batch.errors.data
    assert error.code == "too_many_tasks"
    assert error.message == "The batch holds 51200 embedding inputs; the limit is 50000."
    assert batch.endpoint == endpoint  # (shown as it was sent)


def test_openai_refuses_an_endpoint_without_its_version(client: openai.OpenAI) -> None:
    """`/chat/completions` is Azure's spelling: OpenAI's batches refuse it as any value not in
    their list (the 400 on `endpoint`), where mockai had run it."""
    upload = client.files.create(
        file=("r.jsonl", raw_jsonl([chat_line("q", "hi")])), purpose="batch"
    )
    for endpoint in ("/chat/completions", "/embeddings", "/responses"):
        with pytest.raises(openai.BadRequestError) as refused:
            client.batches.create(
                input_file_id=upload.id,
                endpoint=endpoint,  # type: ignore[arg-type]
                completion_window="24h",
            )
        error = refused.value.body
        assert isinstance(error, dict) and (error["param"], error["code"]) == (
            "endpoint",
            "invalid_value",
        )
        assert error["message"].startswith(f"Invalid value: '{endpoint}'.")


# --- output_expires_after --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expiry", "status", "param", "code"),
    [
        ({"seconds": 7200}, 400, "output_expires_after.anchor", "missing_required_parameter"),
        (
            {"anchor": "completed_at", "seconds": 7200},
            400,
            "output_expires_after.anchor",
            "invalid_value",
        ),
        (
            {"anchor": "created_at"},
            400,
            "output_expires_after.seconds",
            "missing_required_parameter",
        ),
        (
            {"anchor": "created_at", "seconds": 60},
            400,
            "output_expires_after.seconds",
            "invalid_value",
        ),
        ("7200", 400, "output_expires_after", "invalid_type"),
        ({"anchor": "created_at", "seconds": 7200}, 200, None, None),
    ],
)
def test_output_expires_after_is_checked_as_files_check_expires_after(
    client: openai.OpenAI,
    server: MockServer,
    expiry: Any,
    status: int,
    param: str | None,
    code: str | None,
) -> None:
    upload = client.files.create(
        file=("in.jsonl", raw_jsonl([chat_line("q", "hi")])), purpose="batch"
    )
    body = {
        "input_file_id": upload.id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "output_expires_after": expiry,
    }
    answer = httpx.post(f"{server.url}/batches", json=body, timeout=10)
    assert answer.status_code == status
    if status != 200:
        error = answer.json()["error"]
        assert (error["param"], error["code"], error["type"]) == (
            param,
            code,
            "invalid_request_error",
        )


# --- HEAD -------------------------------------------------------------------------------------------


def test_head_shows_a_batch_and_moves_nothing(client: openai.OpenAI, server: MockServer) -> None:
    batch = create(client, raw_jsonl([chat_line("q", "hi")]))
    with httpx.Client(timeout=10) as http:
        heads = [http.head(f"{server.url}/batches/{batch.id}") for _ in range(3)]
    assert [head.status_code for head in heads] == [200, 200, 200]
    assert len({head.headers["content-length"] for head in heads}) == 1  # (the same batch)
    assert not [e for e in server.requests if e.batch == batch.id]  # no line was run
    # The first retrieval moves it on, as if no HEAD had come.
    assert client.batches.retrieve(batch.id).status == "in_progress"


# --- a cancel refused ------------------------------------------------------------------------------


def test_cancelling_an_ended_batch_is_the_apis_409(client: openai.OpenAI) -> None:
    """The API refuses to cancel a batch that has ended with a 409 Conflict (clients catch the
    SDK's ConflictError for a batch that completed meanwhile: LiteLLM's tests against OpenAI
    do); mockai's 400 went past that handler."""
    completed = finish(client, create(client, raw_jsonl([chat_line("q", "hi")])))
    failed = finish(client, create(client, b"not json\n"))
    for ended in (completed, failed):
        with pytest.raises(openai.ConflictError) as refused:
            client.batches.cancel(ended.id)
        assert refused.value.status_code == 409
        assert refused.value.body == {
            "message": f"Cannot cancel a batch with status '{ended.status}'.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    assert (completed.status, failed.status) == ("completed", "failed")


# --- a batch's kept lines count against the files' bound, however its input file is deleted ------

MIB = 1 << 20


def test_the_lines_a_batch_keeps_count_against_the_file_bound_until_it_ends() -> None:
    # A batch in progress keeps its input's bytes, should the file be deleted: they stay within
    # MOCKAI_FILE_BYTES (deleting the file once freed its charge while the batch kept the bytes:
    # 30 such batches held 180 MiB under an 8 MiB bound).
    big = "x" * MIB
    lines = raw_jsonl([chat_line(f"r{n}", big) for n in range(3)])  # ~3 MiB
    with MockServer(log_requests=False, file_bytes=8 * MIB) as server, sdk(server) as client:
        batch = create(client, lines)
        batch = client.batches.retrieve(batch.id)
        assert batch.status == "in_progress"  # (validated: its lines are kept)
        client.files.delete(batch.input_file_id)
        with pytest.raises(openai.BadRequestError) as refused:
            client.files.create(file=("more.jsonl", b"y" * (6 * MIB)), purpose="batch")
        assert refused.value.code == "mockai_storage_full"
        client.files.create(file=("small.jsonl", b"y" * MIB), purpose="batch")  # room is left
        batch = finish(client, batch)
        assert batch.status == "completed"
        for listed in client.files.list():
            if listed.filename == "small.jsonl":
                client.files.delete(listed.id)
        # The batch ended: its lines, and their charge, are gone.
        client.files.create(file=("more.jsonl", b"y" * (6 * MIB)), purpose="batch")


def test_a_file_kept_by_its_batches_is_counted_once() -> None:
    # The bytes a batch keeps are its input file's: counted once, however many batches share
    # the file (each batch charged them again: a 4.3 MiB file under an 8 MiB bound failed every
    # line, and eight batches of one 1 MiB file left no room for another 1 MiB upload).
    lines = raw_jsonl([chat_line(f"r{n}", "x" * (MIB // 10)) for n in range(40)])  # ~4 MiB
    with MockServer(log_requests=False, file_bytes=8 * MIB) as server, sdk(server) as client:
        upload = client.files.create(file=("requests.jsonl", lines), purpose="batch")
        batches = [
            client.batches.create(
                input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            for _ in range(3)
        ]
        batches = [client.batches.retrieve(batch.id) for batch in batches]
        assert {batch.status for batch in batches} == {"in_progress"}
        client.files.create(file=("more.jsonl", b"y" * (3 * MIB)), purpose="batch")
        for batch in batches:
            done = finish(client, batch)
            assert done.status == "completed" and done.request_counts.completed == 40, done
