"""An unpaced stream past 64 KiB is written in slices, each once the socket has drained (so a
client that stops reading holds about a slice, not the stream: tests/test_memory_bounds_rss.py).
The invariant the slicing must keep for every answer: the client reads every event whole and in
order, and the stream says what the same request answers without streaming (an answer past the
model's output limit is cut the same way both), whatever its size around the slice boundary,
its characters, or its number of choices."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from strategies import examples

from mockai import MockServer
from mockai.wire import jsonbytes

# Words of 1-4 bytes each in UTF-8 (and one that is two code points), so answers of any size
# cross slice and chunk boundaries inside multi-byte characters.
WORDS = ["a", "_", "é", "中文", "𝄞", "👍🏽", "x y", "\\", '"']


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


@settings(
    max_examples=examples(12),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    words=st.integers(0, 40_000),
    seed=st.integers(0, 2**16),
    choices=st.integers(1, 3),
)
@example(words=40_000, seed=1, choices=2)  # (hundreds of KB: many slices)
@example(words=0, seed=0, choices=1)
def test_a_sliced_stream_reads_back_as_its_answer(
    server: MockServer, words: int, seed: int, choices: int
) -> None:
    content = " ".join(WORDS[(seed + index * 7) % len(WORDS)] for index in range(words))
    name = f"long-{words}-{seed}-{choices}"
    server.clear_rules()  # (hypothesis replays an example: its rule's name is then taken)
    server.add_rule({"name": name, "match": {"user": name}, "reply": {"content": content}})
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": name}],
        "stream": True,
        "n": choices,
        "max_tokens": 100_000,
    }
    whole = httpx.post(server.url + "/chat/completions", json={**body, "stream": False}, timeout=60)
    expected = [choice["message"]["content"] for choice in whole.json()["choices"]]
    raw = httpx.post(server.url + "/chat/completions", json=body, timeout=60).content
    events = raw.split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]"  # whole, and ended
    texts = [""] * choices
    for event in events[:-2]:
        assert event.startswith(b"data: "), event[:80]
        for choice in jsonbytes.loads(event[len(b"data: ") :])["choices"]:
            texts[choice["index"]] += choice["delta"].get("content") or ""
    assert texts == expected
