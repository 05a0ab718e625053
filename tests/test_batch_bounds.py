"""A batch's output is held within the server's bound on files (`file_bytes`).

A batch of thousands of embeddings answers gigabytes: 3,000 lines of `text-embedding-3-large`
write a 122 MB output file. The lines whose answers do not fit what the file store may still
hold fail, in the error file (`mockai_storage_full`, as the API reports a line it did not run),
and the batch completes with what fits; the server never holds more than its bound. A batch's
usage adds up its lines' own, read from each answer's tail; and a batch in progress keeps its
input's bytes, not its lines parsed.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from cassette_support import chat_completion, recorded_chat
from conformance import checked_server
from hypothesis import given
from hypothesis import strategies as st
from service_support import redis_server
from strategies import json_objects, texts
from test_batches import jsonl, lines_of, run

from mockai import Config, MockServer
from mockai.api import batches as batch_codec
from mockai.config import ConfigError
from mockai.stores.batches import _RESULTS, _RESULTS_HEAD, Results

MIB = 1024 * 1024
LINES = 120  # each answer ~40 KB: ~4.8 MB of output against a 1 MiB bound


def embedding_line(i: int) -> dict[str, Any]:
    return {
        "custom_id": f"e{i:03d}",
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "text-embedding-3-large", "input": f"text number {i}"},
    }


def test_lines_past_the_file_bound_fail_and_the_batch_completes() -> None:
    with (
        checked_server(file_bytes=MIB) as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
    ):
        batch = run(client, jsonl([embedding_line(i) for i in range(LINES)]), "/v1/embeddings")[-1]
        assert batch.status == "completed"
        kept = batch.request_counts.completed
        assert 0 < kept < LINES
        assert batch.request_counts.failed == LINES - kept
        assert batch.request_counts.total == LINES

        output = lines_of(client, batch.output_file_id)
        assert [line["custom_id"] for line in output] == [f"e{i:03d}" for i in range(kept)]
        assert all(line["response"]["status_code"] == 200 for line in output)
        errors = lines_of(client, batch.error_file_id)
        assert [line["custom_id"] for line in errors] == [f"e{i:03d}" for i in range(kept, LINES)]
        for line in errors:
            assert line["response"] is None
            assert line["error"]["code"] == "mockai_storage_full"
            assert "MOCKAI_FILE_BYTES" in line["error"]["message"]
        # Every file the server holds, the input included, within the bound; and as much
        # output as fitted (the next line's answer would not have).
        files = client.files.list().data
        assert sum(f.bytes for f in files) <= MIB
        assert sum(f.bytes for f in files) > MIB - 60_000
        # The usage counts the lines answered in the output, not those that did not fit.
        assert batch.usage is not None
        assert batch.usage.input_tokens == sum(
            line["response"]["body"]["usage"]["prompt_tokens"] for line in output
        )
        # The first line that did not fit was answered; the lines after it were not run.
        answered = [e for e in server.requests if e.batch == batch.id]
        assert len(answered) == kept + 1


def test_a_batch_past_what_redis_holds_in_one_value_fails_its_last_lines() -> None:
    """With --state redis://, a batch's results and each file are one Redis value, and Redis
    refuses a value longer than its proto-max-bulk-len (and drops the connection): the batch
    had answered 503 at every retrieval. The output is kept within that too."""
    with (
        redis_server("--proto-max-bulk-len", "1mb") as redis,
        checked_server(state=redis.url()) as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
    ):
        batch = run(client, jsonl([embedding_line(i) for i in range(60)]), "/v1/embeddings")[-1]
        assert batch.status == "completed"
        kept = batch.request_counts.completed
        assert 0 < kept < 60 and batch.request_counts.failed == 60 - kept
        errors = lines_of(client, batch.error_file_id)
        assert [line["custom_id"] for line in errors] == [f"e{i:03d}" for i in range(kept, 60)]
        assert all("proto-max-bulk-len" in line["error"]["message"] for line in errors)
        assert all(f.bytes <= MIB for f in client.files.list().data)
        with pytest.raises(openai.BadRequestError) as refused:
            client.files.create(file=("big.jsonl", b"{}\n" * 400_000), purpose="batch")
        assert refused.value.code == "mockai_storage_full"
        assert "proto-max-bulk-len" in refused.value.message


def test_a_batch_whose_error_lines_do_not_fit_fails_saying_so() -> None:
    data = jsonl([embedding_line(i) for i in range(10)])
    with (
        checked_server(file_bytes=len(data) + 100) as server,  # (an error line is ~400 bytes)
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
    ):
        seen = run(client, data, "/v1/embeddings")
        batch = seen[-1]
        assert [b.status for b in seen][-2:] == ["finalizing", "failed"]
        assert batch.failed_at is not None and batch.completed_at is None
        assert batch.errors is not None and batch.errors.data is not None
        [error] = batch.errors.data
        assert error.code == "mockai_storage_full"
        assert error.message is not None and "MOCKAI_FILE_BYTES" in error.message
        assert (batch.output_file_id, batch.error_file_id) == (None, None)
        assert [f.purpose for f in client.files.list().data] == ["batch"]  # the input only
        assert client.batches.retrieve(batch.id).status == "failed"  # and it stays so


def test_a_batch_cancelled_once_answered_whose_files_do_not_fit_is_cancelled_saying_so() -> None:
    data = jsonl([embedding_line(i) for i in range(10)])
    with (
        checked_server(file_bytes=len(data) + 100) as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
    ):
        upload = client.files.create(file=("requests.jsonl", data), purpose="batch")
        batch = client.batches.create(
            input_file_id=upload.id, endpoint="/v1/embeddings", completion_window="24h"
        )
        while batch.status != "finalizing":  # (every line answered)
            batch = client.batches.retrieve(batch.id)
        assert client.batches.cancel(batch.id).status == "cancelling"
        batch = client.batches.retrieve(batch.id)
        assert batch.status == "cancelled" and batch.cancelled_at is not None
        assert batch.failed_at is None
        assert batch.errors is not None and batch.errors.data is not None
        assert [e.code for e in batch.errors.data] == ["mockai_storage_full"]
        assert (batch.output_file_id, batch.error_file_id) == (None, None)
        assert [f.purpose for f in client.files.list().data] == ["batch"]


def test_a_batch_whose_store_filled_before_its_files_were_written_keeps_none_of_them() -> None:
    """The output file fits what is left, the error file does not: neither is kept."""
    lines = [
        *(embedding_line(i) for i in range(3)),
        {**embedding_line(3), "body": {"model": "text-embedding-3-large", "input": ""}},  # a 400
    ]
    data = jsonl(lines)
    bound = 8 * MIB
    with (
        checked_server(file_bytes=bound) as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
    ):
        done = run(client, data, "/v1/embeddings")[-1]  # the same batch, to learn its files' sizes
        assert done.status == "completed"
        output_bytes = client.files.retrieve(done.output_file_id or "").bytes
        error_bytes = client.files.retrieve(done.error_file_id or "").bytes
        for file_id in (done.output_file_id, done.error_file_id):
            client.files.delete(file_id or "")

        upload = client.files.create(file=("requests.jsonl", data), purpose="batch")
        batch = client.batches.create(
            input_file_id=upload.id, endpoint="/v1/embeddings", completion_window="24h"
        )
        while batch.status != "finalizing":
            batch = client.batches.retrieve(batch.id)
        held = sum(f.bytes for f in client.files.list().data)
        room = output_bytes + error_bytes // 2
        client.files.create(file=("filler.jsonl", b"x" * (bound - held - room)), purpose="batch")

        batch = client.batches.retrieve(batch.id)
        assert batch.status == "failed"
        assert batch.errors is not None and batch.errors.data is not None
        assert [e.code for e in batch.errors.data] == ["mockai_storage_full"]
        assert batch.request_counts is not None and batch.request_counts.failed == 1
        assert sorted(f.filename for f in client.files.list().data) == [
            "filler.jsonl",
            "requests.jsonl",
            "requests.jsonl",
        ]


def test_a_batch_within_the_bound_keeps_every_line() -> None:
    with (
        checked_server(file_bytes=8 * MIB) as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
    ):
        batch = run(client, jsonl([embedding_line(i) for i in range(LINES)]), "/v1/embeddings")[-1]
        assert (batch.request_counts.completed, batch.request_counts.failed) == (LINES, 0)
        assert batch.error_file_id is None
        assert len(lines_of(client, batch.output_file_id)) == LINES


def test_an_upload_past_the_bound_is_refused_naming_it() -> None:
    with (
        checked_server(file_bytes=MIB) as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
    ):
        client.files.create(file=("a.jsonl", b"{}\n" * 200_000), purpose="batch")
        with pytest.raises(openai.BadRequestError) as refused:
            client.files.create(file=("b.jsonl", b"{}\n" * 200_000), purpose="batch")
        assert refused.value.code == "mockai_storage_full"
        assert "MOCKAI_FILE_BYTES" in refused.value.message


def test_the_bound_is_configured_by_its_variable() -> None:
    assert Config.from_env({"MOCKAI_FILE_BYTES": str(MIB)}).file_bytes == MIB
    assert Config().file_bytes == 1024 * MIB
    with pytest.raises(ConfigError, match="FILE_BYTES"):
        Config.from_env({"MOCKAI_FILE_BYTES": "-1"})


def _recorded(question: str, usage: dict[str, Any], usage_first: bool) -> dict[str, Any]:
    """A recorded chat interaction answering `question`, its JSON pretty-printed as the API's
    is, its usage last (as the API writes it) or first (found by parsing the whole body)."""
    answer = chat_completion(f"chatcmpl-{question}", "o3-mini", "x", usage=usage)
    if usage_first:
        answer = {"usage": answer.pop("usage"), **answer}
    body = {"model": "o3-mini", "messages": [{"role": "user", "content": question}]}
    return recorded_chat(body, answer, indent=2)


def test_usage_details_add_up_over_the_lines(tmp_path: Path) -> None:
    usages = [
        {
            "prompt_tokens": 10 + i,
            "completion_tokens": 20 + i,
            "total_tokens": 30 + 2 * i,
            "prompt_tokens_details": {"cached_tokens": 3 + i},
            "completion_tokens_details": {"reasoning_tokens": 7 + i},
        }
        for i in range(4)
    ]
    cassette = tmp_path / "recorded.yaml"
    interactions = [_recorded(f"q{i}", usages[i], usage_first=i % 2 == 1) for i in range(4)]
    cassette.write_text(yaml.safe_dump({"interactions": interactions, "version": 1}))
    chat = [
        {
            "custom_id": f"c{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "o3-mini", "messages": [{"role": "user", "content": f"q{i}"}]},
        }
        for i in range(4)
    ]
    with (
        checked_server(cassette=str(cassette)) as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
    ):
        batch = run(client, jsonl(chat))[-1]
        assert batch.request_counts.completed == 4
    assert batch.usage is not None
    assert batch.usage.model_dump() == {
        "input_tokens": 10 + 11 + 12 + 13,
        "input_tokens_details": {"cached_tokens": 3 + 4 + 5 + 6},
        "output_tokens": 20 + 21 + 22 + 23,
        "output_tokens_details": {"reasoning_tokens": 7 + 8 + 9 + 10},
        "total_tokens": 46 + 86,
    }


def test_batches_of_one_file_do_not_each_hold_it_parsed() -> None:
    """A batch keeps its input's bytes (the file store's own), not its lines parsed: ten
    batches made from one 18 MB file had held ~330 MB of parsed lines until answered."""
    lines = [chat_line(i) for i in range(4000)]
    data = jsonl(lines)  # ~0.6 MB
    with (
        MockServer(log_requests=False) as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
    ):
        upload = client.files.create(file=("requests.jsonl", data), purpose="batch")
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            batches = []
            for _ in range(8):
                batch = client.batches.create(
                    input_file_id=upload.id,
                    endpoint="/v1/chat/completions",
                    completion_window="24h",
                )
                batches.append(client.batches.retrieve(batch.id))  # validated: in progress
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert all(b.status == "in_progress" for b in batches)
        # Held parsed, 8 batches of this file took 37 MiB; now ~0.5 MiB (the journal's entries
        # and the batches' records).
        assert held < 4 * len(data), f"{held / MIB:.1f} MiB held by 8 batches of a 1 MB file"
        # The input may go: a batch in progress answers from what it kept.
        client.files.delete(upload.id)
        finished = batches[0]
        while finished.status not in ("completed", "failed"):
            finished = client.batches.retrieve(finished.id)
        assert (finished.status, finished.request_counts.completed) == ("completed", 4000)
        output = lines_of(client, finished.output_file_id)
        assert [line["custom_id"] for line in output] == [line["custom_id"] for line in lines]


def test_a_file_of_bad_lines_fails_without_an_error_held_per_line() -> None:
    """Validation stops at the errors a failed batch lists (1,000): a file whose every line is
    wrong (a CSV named .jsonl) had been read to its end, an error kept per line and every line
    split out first (64 MB of `{}` lines: ~20 million errors, gigabytes, minutes of a blocked
    server)."""
    data = b"{}\n" * 300_000  # 0.9 MB; every line lacks its custom_id
    with (
        MockServer(log_requests=False) as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client,
    ):
        upload = client.files.create(file=("requests.jsonl", data), purpose="batch")
        batch = client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        tracemalloc.start()
        try:
            batch = client.batches.retrieve(batch.id)  # (validated: failed)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert batch.status == "failed" and batch.errors is not None
    errors = batch.errors.data
    assert [(e.code, e.param, e.line) for e in errors[:2]] == [
        ("missing_required_parameter", "custom_id", 1),
        ("missing_required_parameter", "custom_id", 2),
    ]
    assert len(errors) == batch_codec.MAX_ERRORS and errors[-1].line == batch_codec.MAX_ERRORS
    # An error per line had peaked at ~110 MiB for this file; now ~2 MiB (the file decoded,
    # the 1,000 errors listed).
    assert peak < 8 * len(data), (
        f"{peak / MIB:.1f} MiB to validate a {len(data) / MIB:.1f} MiB file"
    )


def chat_line(i: int) -> dict[str, Any]:
    return {
        "custom_id": f"c{i}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": f"question {i}: " + "tell me more. " * 5}],
        },
    }


@given(good=st.binary(max_size=300), bad=st.binary(max_size=300))
def test_results_kept_in_shared_state_read_back_as_written(good: bytes, bad: bytes) -> None:
    """A batch's results are one Redis value: the output's length, the output, the errors."""
    written = _RESULTS.encode(Results(good, bad))
    assert len(written) == len(good) + len(bad) + _RESULTS_HEAD  # (what the bound counts)
    assert _RESULTS.decode(written) == Results(good, bad)


# Between the lines of an input file: what `splitlines` splits on, and blank lines.
SEPARATORS = ("\n", "\r\n", "\n\n", "\n \n", "\r", "\n\t\n")


@given(
    requests=st.lists(
        st.tuples(texts(max_size=12), json_objects(max_leaves=4), st.sampled_from(SEPARATORS)),
        max_size=8,
    ),
    ascii_only=st.booleans(),
)
def test_a_batch_reads_its_kept_input_as_validation_read_it(
    requests: list[tuple[str, dict[str, Any], str]], ascii_only: bool
) -> None:
    """A batch keeps its input's bytes and parses its lines again as it answers them: the same
    lines, numbered alike (each request's id derives from its number), for any valid input."""
    data = "".join(
        json.dumps(
            {"custom_id": f"{i}-{custom}", "method": "POST", "url": "/v1/embeddings", "body": body},
            ensure_ascii=ascii_only,
        )
        + separator
        for i, (custom, body, separator) in enumerate(requests)
    ).encode("utf-8", "surrogatepass")
    try:
        lines, errors = batch_codec.read_lines(data, "/v1/embeddings")
    except UnicodeDecodeError:  # (lone surrogates: not UTF-8, refused before any line)
        return
    if errors:
        return  # (a line split by a separator inside a string, or too many inputs: failed)
    assert list(batch_codec.valid_lines(data, "/v1/embeddings")) == lines
