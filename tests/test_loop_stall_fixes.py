"""Loop stalls in reading the journal and counting tokens, each met as users meet them: a real
`mockai serve` process, a request in flight, and `GET /v1/models` timed meanwhile.

1. `GET /_mockai/requests` parsed every kept body and wrote it again, on the loop: a page of
   16 bodies of 0.9 MB (many small objects) took 3.1 s of CPU on every read, and the model
   lists waited as long. Bodies the pipeline parsed on arrival are now copied into the page as
   their bytes; bodies nothing parsed are parsed in the worker thread.
2. Counting a long prompt's tokens ran on the loop (~57 ms a MB), even when the answer was the
   context_length 400: a 48 MB chat message held the server 2.8 s. Such requests are now parsed
   (and their tokens counted) in the worker thread; the counts and messages are unchanged.
3. Scoring prompts (legacy completions' `echo` with `logprobs`, lm-evaluation-harness's
   loglikelihood) ran on the loop, ~100 us a token with 5 alternatives: 20 prompts of 16,000
   tokens held the server ~26 s. Such answers are now made in the worker thread.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from service_support import ServeProcess

from mockai import tokens
from mockai.api import common
from mockai.catalog import Catalog
from mockai.pipeline.exchange import Endpoint
from mockai.pipeline.journal import JournalEntry
from mockai.wire import jsonbytes

KEY = "sk-loop-stall-tests"
AUTH = {"Authorization": f"Bearer {KEY}", "content-type": "application/json"}
# Generous for a shared 2-core machine: before the fixes the lists waited 1-3 s.
STALL_AT_MOST = 0.5


@pytest.fixture(scope="module")
def served() -> Iterator[ServeProcess]:
    """One server for the module, with a key required (requests refused before their bodies are
    parsed leave bytes that nothing parsed in the journal)."""
    with ServeProcess(["--quiet", "--require-api-key", KEY]) as serving:
        yield serving


def _meanwhile(
    server: ServeProcess, send: Callable[[httpx.Client], httpx.Response]
) -> tuple[httpx.Response, float]:
    """`send` in a thread of its own, the model list asked again and again while it is in
    flight: (its answer, the longest a model list waited meanwhile)."""
    answered: dict[str, httpx.Response] = {}

    def sender() -> None:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            answered["response"] = send(client)

    thread = threading.Thread(target=sender)
    longest, lists = 0.0, 0
    with httpx.Client(base_url=server.base_url, timeout=30, headers=AUTH) as lister:
        thread.start()
        while thread.is_alive():  # (each list asked while it is in flight: the longest wait)
            started = time.monotonic()
            assert lister.get("/v1/models").status_code == 200
            longest = max(longest, time.monotonic() - started)
            lists += 1
    thread.join()
    assert lists > 0
    return answered["response"], longest


def _many_objects(count: int, tag: int) -> bytes:
    """A chat body with an extra field of `count` empty objects: cheap to send, ~10 us an
    object to parse (every container walked for its depth)."""
    extra = ",".join(["{}"] * count)
    return (
        f'{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"hi {tag}"}}],'
        f'"extra":[{extra}]}}'
    ).encode()


# --- 1. reading the journal ---------------------------------------------------------------------


def test_a_page_of_16_large_bodies_is_served_without_holding_the_server(
    served: ServeProcess,
) -> None:
    with httpx.Client(base_url=served.base_url, timeout=60, headers=AUTH) as client:
        client.post("/_mockai/reset").raise_for_status()
        sent = [_many_objects(100_000, tag) for tag in range(16)]
        for body in sent:
            assert client.post("/v1/chat/completions", content=body).status_code == 200

    page, longest = _meanwhile(
        served, lambda client: client.get("/_mockai/requests", params={"limit": 1000})
    )
    assert longest < STALL_AT_MOST, longest
    assert page.status_code == 200
    entries = [e for e in json.loads(page.content)["data"] if e["endpoint"] == "chat"]
    assert [entry["body"] for entry in entries] == [json.loads(body) for body in sent]
    assert all(entry["status"] == 200 and not entry["dropped"] for entry in entries)


def test_bodies_nothing_parsed_are_parsed_for_the_page_off_the_loop(
    served: ServeProcess,
) -> None:
    """Refused for their key, these bodies were never parsed: the page parses them, in the
    worker thread."""
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        client.post("/_mockai/reset", headers=AUTH).raise_for_status()
        sent = [_many_objects(150_000, tag) for tag in range(8)]
        for body in sent:
            wrong = {"Authorization": "Bearer sk-wrong", "content-type": "application/json"}
            assert client.post("/v1/chat/completions", content=body, headers=wrong).is_error

    page, longest = _meanwhile(
        served,
        lambda client: client.get("/_mockai/requests", params={"limit": 1000}, headers=AUTH),
    )
    assert longest < STALL_AT_MOST, longest
    entries = [e for e in json.loads(page.content)["data"] if e["endpoint"] == "chat"]
    assert [entry["body"] for entry in entries] == [json.loads(body) for body in sent]
    assert {entry["status"] for entry in entries} == {401}


# Bodies as clients write them: any JSON value in any of several layouts, and bytes that are
# not JSON at all (text, broken JSON, a byte order mark, invalid UTF-8).
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)  # (past 64 bits too: parsed exactly, by the standard library)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)
_LAYOUTS: list[Callable[[Any], bytes]] = [
    lambda value: json.dumps(value).encode(),  # ASCII, \u escapes
    lambda value: json.dumps(value, ensure_ascii=False, indent=2).encode(),
    lambda value: b" \r\n\t" + json.dumps(value, ensure_ascii=False).encode() + b"\n ",
    jsonbytes.dumps,
]
_JSON_BYTES = st.builds(lambda value, layout: layout(value), _VALUE, st.sampled_from(_LAYOUTS))
_OTHER_BYTES = st.binary(max_size=60) | st.sampled_from(
    [b"\xef\xbb\xbf{}", b'{"a": 1', b'{"a":"\\ud800"}', b"[NaN]", b"1e999", b"", b"-0", b"[1,]"]
)


@settings(max_examples=300, deadline=None)
@given(kept=_JSON_BYTES | _OTHER_BYTES, parsed=st.booleans())
def test_a_page_reads_back_as_the_entries_json_whatever_their_bodies(
    kept: bytes, parsed: bool
) -> None:
    """The page copies a body the pipeline parsed as its bytes: read back, it is the value the
    entry's JSON (`as_json`, what the page wrote before) holds; other bodies are as before."""
    entry = JournalEntry(1, "req_1", "POST", "/v1/chat/completions", 0.0, 0.0, {}, kept)
    if parsed:  # (as the pipeline does on arrival)
        try:
            entry.parse_kept(kept)
        except ValueError:
            assert entry.kept_json is False
    written = jsonbytes.dumps({"data": [entry.page_json()]})
    expected = json.loads(json.dumps({"data": [entry.as_json()]}, ensure_ascii=False))
    assert json.loads(written) == expected


# --- 2. counting a long prompt's tokens ---------------------------------------------------------


def test_a_32_mb_prompt_is_refused_without_holding_the_server(served: ServeProcess) -> None:
    repeats = 32 * 1024 * 1024 // 8
    text = "lengthy " * repeats  # (~1.3 s of counting: a few more pieces a MB take longer)
    counted = repeats + 1  # (" lengthy" each, and the last space: checked on a short text)
    assert tokens.count("lengthy " * 1000) == 1001
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]})
    answer, longest = _meanwhile(
        served,
        lambda client: client.post("/v1/chat/completions", content=body.encode(), headers=AUTH),
    )
    assert longest < STALL_AT_MOST, longest
    assert answer.status_code == 400
    window = Catalog().get("gpt-4o-mini").context_window
    prompt = counted + 3 + 3  # (a message's framing, and the reply's priming)
    assert answer.json()["error"] == {
        "message": f"This model's maximum context length is {window} tokens. However, your "
        f"messages resulted in {prompt} tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }


# Inputs long enough together that their request is parsed in the worker thread (each within
# text-embedding-3-small's 8,192 tokens).
_LONG_INPUTS = ["lorem ipsum dolor sit amet " * 300] * (common.COUNTED_OFF_LOOP // 8_100 + 1)


@settings(max_examples=8, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=200))
def test_texts_counted_in_the_worker_count_as_on_the_loop(served: ServeProcess, text: str) -> None:
    """Usage is the same whichever thread counted: an input beside long ones (whose request is
    parsed in the worker) counts what it counts alone."""
    assert common.counts_long_texts(Endpoint.EMBEDDINGS, {"input": [text, *_LONG_INPUTS]})
    assert not common.counts_long_texts(Endpoint.EMBEDDINGS, {"input": [text]})
    with httpx.Client(base_url=served.base_url, timeout=30, headers=AUTH) as client:
        usage = []
        for inputs in ([text], [text, *_LONG_INPUTS]):
            body = {"model": "text-embedding-3-small", "input": inputs, "dimensions": 4}
            answer = client.post("/v1/embeddings", json=body)
            assert answer.status_code == 200, answer.text
            usage.append(answer.json()["usage"]["prompt_tokens"])
    assert usage == [tokens.count(text), tokens.count(text) + tokens.count_all(_LONG_INPUTS)]


_BODY = st.recursive(
    st.none() | st.integers() | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=300), inner),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None)
@given(body=_BODY, threshold=st.integers(1, 2_000))
def test_a_request_counts_as_long_by_its_texts_keys_and_values(body: Any, threshold: int) -> None:
    """A body is parsed off the loop exactly when its strings (keys too) add up to the bound."""

    def characters(node: Any) -> int:
        if isinstance(node, str):
            return len(node)
        if isinstance(node, list):
            return sum(map(characters, node))
        if isinstance(node, dict):
            return sum(len(key) + characters(value) for key, value in node.items())
        return 0

    expected = characters(body) >= threshold
    with pytest.MonkeyPatch.context() as patch:  # (a bound that short bodies reach)
        patch.setattr(common, "COUNTED_OFF_LOOP", threshold)
        assert common.counts_long_texts(Endpoint.CHAT, body) is expected
        assert common.counts_long_texts(Endpoint.IMAGES, body) is False


# --- 3. scoring long prompts ---------------------------------------------------------------------


def test_scoring_long_prompts_does_not_hold_the_server(served: ServeProcess) -> None:
    prompts = [list(range(start, start + 4_000)) for start in range(0, 40_000, 4_000)]
    body = {"model": "davinci-002", "prompt": prompts, "echo": True, "logprobs": 5}
    answer, longest = _meanwhile(
        served,
        lambda client: client.post("/v1/completions", json={**body, "max_tokens": 0}, headers=AUTH),
    )
    assert longest < STALL_AT_MOST, longest
    assert answer.status_code == 200, answer.text
    choices = answer.json()["choices"]
    assert [len(choice["logprobs"]["tokens"]) for choice in choices] == [4_000] * 10
    assert all(len(tops) == 5 for tops in choices[0]["logprobs"]["top_logprobs"][1:])


# --- 4. embeddings of few, long inputs -----------------------------------------------------------


def test_few_long_embeddings_inputs_do_not_hold_the_server(served: ServeProcess) -> None:
    # Under 64 inputs an embeddings answer was made on the loop whatever their length: each word
    # not seen lately costs ~0.1 ms, and 40 inputs of 5,000 distinct words (identifiers, codes;
    # within the API's 300,000 tokens) held every other request 18 s.
    made = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    inputs = [" ".join("".join(made.choices(letters, k=7)) for _ in range(3_000)) for _ in range(8)]
    body = {"model": "text-embedding-3-small", "input": inputs, "encoding_format": "base64"}
    answer, longest = _meanwhile(
        served, lambda client: client.post("/v1/embeddings", json=body, headers=AUTH)
    )
    assert longest < STALL_AT_MOST, longest
    assert answer.status_code == 200, answer.text
    assert [item["index"] for item in answer.json()["data"]] == list(range(8))
