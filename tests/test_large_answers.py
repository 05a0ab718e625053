"""Large answers are written a slice at a time, byte for byte, without copies of themselves.

A file's content or thousands of embeddings can weigh tens of megabytes. Written whole, aiohttp
joined the answer to its head into a new bytes object and the transport kept a copy of what the
socket did not take at once; mockai writes a body of 1 MiB or more in 1 MiB slices, each once
the one before has drained (`delivery/deliver.py`). What the client receives must not change:
the same bytes, a Content-Length, no chunked framing, whatever the size around the slices.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterator

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples

from mockai import MockServer
from mockai.delivery.deliver import LARGE_BODY

MIB = 1 << 20


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


def _upload(server: MockServer, data: bytes) -> str:
    with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client:
        return client.files.create(file=("data.jsonl", data), purpose="batch").id


@settings(max_examples=examples(6), deadline=None)
@given(
    size=st.one_of(
        st.sampled_from([LARGE_BODY - 1, LARGE_BODY, LARGE_BODY + 1, 2 * MIB, 3 * MIB + 17]),
        st.integers(LARGE_BODY - 64, 3 * MIB),
    ),
    seed=st.binary(min_size=8, max_size=8),
)
def test_a_large_answer_arrives_byte_for_byte_with_its_length(
    server: MockServer, size: int, seed: bytes
) -> None:
    # Content that differs in every slice: a slice sent twice, dropped or out of order shows.
    blocks = (size + 63) // 64
    data = b"".join(hashlib.sha512(seed + n.to_bytes(4, "big")).digest() for n in range(blocks))
    data = data[:size]
    file_id = _upload(server, data)
    try:
        answer = httpx.get(f"{server.url}/files/{file_id}/content", timeout=10)
        assert answer.status_code == 200
        assert answer.headers["content-length"] == str(size)
        assert "transfer-encoding" not in answer.headers
        assert answer.content == data
    finally:
        httpx.delete(f"{server.url}/files/{file_id}", timeout=30)


def test_sending_a_large_file_makes_no_copy_of_it(server: MockServer) -> None:
    data = b"y" * (48 * MIB)
    file_id = _upload(server, data)
    with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            with client.files.with_streaming_response.content(file_id) as answer:
                received = sum(len(chunk) for chunk in answer.iter_bytes())
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        client.files.delete(file_id)
    assert received == len(data)
    # Python's own allocations while it was sent (this process runs the server too): a few
    # slices at most, where writing it whole allocated its 48 MiB again.
    assert peak < 8 * MIB, f"{peak / MIB:.1f} MiB allocated while sending 48 MiB"


def test_a_client_leaving_in_the_middle_of_a_large_answer_is_ordinary(
    server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    file_id = _upload(server, b"z" * (16 * MIB))
    with (
        httpx.Client(timeout=30) as http,
        http.stream("GET", f"{server.url}/files/{file_id}/content") as answer,
    ):
        next(answer.iter_raw(65536))
    # The server goes on answering, and logged no error for the client that left.
    with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client:
        assert client.files.content(file_id).read() == b"z" * (16 * MIB)
        client.files.delete(file_id)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_a_large_embeddings_answer_parses_in_the_sdk(server: MockServer) -> None:
    inputs = [f"input number {i}" for i in range(64)]
    with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as client:
        raw = client.embeddings.with_raw_response.create(
            model="text-embedding-3-large", input=inputs, encoding_format="float"
        )
        assert int(raw.headers["content-length"]) >= LARGE_BODY
        answer = raw.parse()
        alone = client.embeddings.create(
            model="text-embedding-3-large", input=inputs[-1], encoding_format="float"
        )
    assert [len(item.embedding) for item in answer.data] == [3072] * 64
    assert answer.data[-1].embedding == alone.data[0].embedding
