"""Any body on any new route gets an answer or an OpenAI-shaped 4xx: never a 500, never a hang."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockai import MockServer

POSTS = (
    "/images/generations",
    "/images/edits",
    "/images/variations",
    "/audio/speech",
    "/audio/transcriptions",
    "/audio/translations",
    "/files",
    "/batches",
    "/batches/batch_x/cancel",
)
GETS = ("/files", "/files/file-x", "/files/file-x/content", "/batches", "/batches/batch_x")

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5000) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(
        st.sampled_from(
            ["model", "prompt", "n", "size", "input", "voice", "response_format", "stream",
             "file", "purpose", "endpoint", "input_file_id", "completion_window", "images",
             "speed", "output_format", "partial_images", "background", "quality"]
        ),
        children,
        max_size=6,
    ),
    max_leaves=12,
)  # fmt: skip
FIELD_NAMES = st.sampled_from(
    ["model", "prompt", "n", "size", "file", "image", "image[]", "mask", "purpose",
     "response_format", "stream", "timestamp_granularities[]", "language", "expires_after[seconds]",
     "expires_after[anchor]", "include[]", "a[b][]", "x"]
)  # fmt: skip
VALUES = st.sampled_from(["", "0", "2", "-1", "true", "whisper-1", "gpt-image-1", "dall-e-3",
                          "batch", "verbose_json", "word", "9999x9999", "256x256", "x" * 50])  # fmt: skip


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with MockServer() as server:
        yield server.url


def _shaped(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text[:500]
    if answer.status_code >= 400:
        error = answer.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(POSTS), body=JSON)
def test_any_json_body(url: str, route: str, body: Any) -> None:
    _shaped(httpx.post(url + route, json=body, timeout=30))


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(POSTS),
    texts=st.lists(st.tuples(FIELD_NAMES, VALUES), max_size=6),
    files=st.lists(
        st.tuples(
            FIELD_NAMES, st.binary(max_size=64), st.sampled_from(["a.png", "b.mp3", "c.jsonl"])
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_any_multipart_form(
    url: str, route: str, texts: list[tuple[str, str]], files: list[tuple[str, bytes, str]]
) -> None:
    answer = httpx.post(
        url + route,
        data=dict(texts),
        files=[(name, (filename, data)) for name, data, filename in files],
        timeout=30,
    )
    _shaped(answer)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(GETS),
    query=st.dictionaries(
        st.sampled_from(["limit", "after", "order", "purpose"]), VALUES, max_size=3
    ),
)
def test_any_query(url: str, route: str, query: dict[str, str]) -> None:
    _shaped(httpx.get(url + route, params=query, timeout=30))
    _shaped(httpx.delete(url + route, timeout=30))
