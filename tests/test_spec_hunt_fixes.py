"""Spec conformance found by the hunt: logprobs that are a distribution (distinct `top_logprobs`,
most likely first, the sampled token among them), legacy `echo` scoring the prompt, streamed
stored completions keeping their logprobs, `metadata` held to the spec's Metadata on chat and
Responses create, and chat's `service_tier` reported as Responses report it.

One server for the module (`conformance.checked_server`: every answer it sent is validated
against the spec when it stops), asked over real HTTP (httpx) and through the real SDK.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import conformance
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples, texts

from mockai import MockServer, tokens

CHAT_MODEL = "gpt-4o-mini"
LEGACY_MODEL = "gpt-3.5-turbo-instruct"
# The models that score an echoed prompt (lm-evaluation-harness#2866): gpt-3.5-turbo-instruct
# refuses `echo` with `logprobs`.
SCORING_MODEL = "davinci-002"


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with conformance.checked_server() as running:
        yield running


@pytest.fixture(scope="module")
def http(server: MockServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def _ok(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = http.post(path, json=body)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def _chunks(http: httpx.Client, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON data of every SSE event of a stream (`[DONE]` left out)."""
    answer = http.post(path, json={**body, "stream": True})
    assert answer.status_code == 200, answer.text
    # Split at the SSE's own line breaks only (text may hold U+2028, which `splitlines` cuts at).
    lines = answer.content.split(b"\n")
    return [json.loads(line[6:]) for line in lines if line.startswith(b"data: {")]


# --- 1. top_logprobs: distinct, most likely first, the sampled token among them ------------------


def _check_tops(token: str, logprob: float, tops: list[tuple[str, float]], top: int) -> None:
    names = [name for name, _ in tops]
    values = [value for _, value in tops]
    assert len(tops) == top
    assert len(set(names)) == len(names), tops
    assert values == sorted(values, reverse=True), tops
    if top:
        assert (token, logprob) in tops, (token, logprob, tops)
    assert math.fsum(math.exp(v) for v in values) <= 1.0, tops
    assert logprob < 0


def _chat_entries(http: httpx.Client, body: dict[str, Any], stream: bool) -> list[Any]:
    if not stream:
        answer = _ok(http, "/chat/completions", body)
        return [e for c in answer["choices"] for e in c["logprobs"]["content"]]
    return [
        e
        for chunk in _chunks(http, "/chat/completions", body)
        for c in chunk["choices"]
        for e in (c["logprobs"] or {}).get("content") or ()
    ]


def _responses_entries(http: httpx.Client, body: dict[str, Any], stream: bool) -> list[Any]:
    if not stream:
        answer = _ok(http, "/responses", body)
        return [
            e
            for item in answer["output"]
            for part in item.get("content") or ()
            for e in part.get("logprobs") or ()
        ]
    events = _chunks(http, "/responses", body)
    return [
        e for ev in events if ev["type"] == "response.output_text.delta" for e in ev["logprobs"]
    ]


@settings(max_examples=examples(30))
@given(
    text=texts(min_size=1),
    top=st.integers(0, 20),
    n=st.integers(1, 2),
    stream=st.booleans(),
    endpoint=st.sampled_from(["chat", "responses"]),
)
def test_top_logprobs_are_distinct_sorted_and_hold_the_sampled_token(
    http: httpx.Client, text: str, top: int, n: int, stream: bool, endpoint: str
) -> None:
    if endpoint == "chat":
        body = {
            "model": CHAT_MODEL,
            "messages": [{"role": "user", "content": text}],
            "logprobs": True,
            "top_logprobs": top,
            "n": n,
            "max_completion_tokens": 40,
        }
        entries = _chat_entries(http, body, stream)
    else:
        body = {
            "model": CHAT_MODEL,
            "input": text,
            "top_logprobs": top,
            "include": ["message.output_text.logprobs"],
            "max_output_tokens": 40,
        }
        entries = _responses_entries(http, body, stream)
    assert entries
    for entry in entries:
        tops = [(t["token"], t["logprob"]) for t in entry["top_logprobs"]]
        _check_tops(entry["token"], entry["logprob"], tops, top)


@settings(max_examples=examples(20))
@given(text=texts(min_size=1), top=st.integers(0, 5))
def test_a_responses_logprobs_are_the_same_streamed_or_not(
    http: httpx.Client, text: str, top: int
) -> None:
    """`output_text.logprobs` derive from the request's content, not from `stream`."""
    body = {
        "model": CHAT_MODEL,
        "input": text,
        "top_logprobs": top,
        "include": ["message.output_text.logprobs"],
        "max_output_tokens": 40,
    }
    whole = _responses_entries(http, body, stream=False)
    streamed = _responses_entries(http, body, stream=True)
    assert [(e["token"], e["logprob"]) for e in streamed] == [
        (e["token"], e["logprob"]) for e in whole
    ]

    def tops(entries: list[Any]) -> list[list[tuple[str, float]]]:
        # (the stream events' alternatives carry no `bytes`: the spec's event shape)
        return [[(t["token"], t["logprob"]) for t in e["top_logprobs"]] for e in entries]

    assert tops(streamed) == tops(whole)


@settings(max_examples=examples(30))
@given(text=texts(min_size=1), top=st.integers(0, 5), n=st.integers(1, 2), stream=st.booleans())
def test_legacy_top_logprobs_hold_one_entry_per_requested_token(
    http: httpx.Client, text: str, top: int, n: int, stream: bool
) -> None:
    body = {"model": LEGACY_MODEL, "prompt": text, "logprobs": top, "n": n, "max_tokens": 40}
    for lp in _legacy_logprobs(http, body, stream).values():
        assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"])
        for token, logprob, tops in zip(
            lp["tokens"], lp["token_logprobs"], lp["top_logprobs"], strict=True
        ):
            _check_tops(token, logprob, list(tops.items()), top)


# --- 5. legacy echo: the prompt's tokens scored first --------------------------------------------


def _legacy_logprobs(
    http: httpx.Client, body: dict[str, Any], stream: bool
) -> dict[int, dict[str, list[Any]]]:
    """Each choice's legacy logprobs (a stream's chunks joined) and, under "text", its text."""
    if not stream:
        answer = _ok(http, "/completions", body)
        return {c["index"]: {**c["logprobs"], "text": c["text"]} for c in answer["choices"]}
    joined: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(http, "/completions", body):
        for c in chunk["choices"]:
            lists = joined.setdefault(
                c["index"],
                {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []},
            )
            lists["text"] = lists.get("text", "") + c["text"]
            for name, values in (c["logprobs"] or {}).items():
                lists[name] += values
    return joined


@settings(max_examples=examples(40))
@given(
    prompts=st.lists(texts(min_size=1), min_size=1, max_size=2),
    max_tokens=st.integers(0, 6),
    top=st.integers(0, 5),
    n=st.integers(1, 2),
)
def test_echo_scores_the_prompt_tokens_first(
    http: httpx.Client, prompts: list[str], max_tokens: int, top: int, n: int
) -> None:
    body = {
        "model": SCORING_MODEL,
        "prompt": prompts,
        "echo": True,
        "logprobs": top,
        "max_tokens": max_tokens,
        "n": n,
    }
    whole = _legacy_logprobs(http, body, stream=False)
    assert whole == _legacy_logprobs(http, body, stream=True)  # chunk by chunk, the same lists
    scored_prompts: dict[str, Any] = {}
    for index, lp in whole.items():
        text, prompt = lp.pop("text"), prompts[index // n]
        assert "".join(lp["tokens"]) == text and text.startswith(prompt)
        offsets = [sum(map(len, lp["tokens"][:i])) for i in range(len(lp["tokens"]))]
        assert lp["text_offset"] == offsets
        assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
        assert all(isinstance(value, float) for value in lp["token_logprobs"][1:])
        # Every choice of one prompt scores it alike: the prompt's tokens come first.
        count = next(i for i in range(len(lp["tokens"]) + 1) if "".join(lp["tokens"][:i]) == prompt)
        scored = {name: values[:count] for name, values in lp.items()}
        assert scored_prompts.setdefault(prompt, scored) == scored


def test_echo_with_no_tokens_to_generate_scores_the_prompt(http: httpx.Client) -> None:
    """lm-evaluation-harness's loglikelihood: `echo`, `max_tokens: 0`, `logprobs`."""
    with openai.OpenAI(base_url=str(http.base_url), api_key="sk-test", max_retries=0) as sdk:
        answer = sdk.completions.create(
            model=SCORING_MODEL,
            prompt="The capital of France is",
            echo=True,
            logprobs=1,
            max_tokens=0,
        )
    lp = answer.choices[0].logprobs
    assert lp is not None and lp.tokens is not None and lp.token_logprobs is not None
    assert lp.tokens == ["The", " capital", " of", " France", " is"]
    assert lp.text_offset == [0, 3, 11, 14, 21]
    assert lp.token_logprobs[0] is None and all(v < 0 for v in lp.token_logprobs[1:])


@pytest.mark.parametrize(
    "prompt", [[15496, 995, 11], [[15496, 995, 11], [40, 1101]], ["Hello world", [40, 1101, 7]]]
)
def test_an_echoed_token_array_scores_one_token_per_id(http: httpx.Client, prompt: Any) -> None:
    """lm-evaluation-harness's loglikelihood sends token arrays and reads the continuation's
    logprobs as `token_logprobs[len(context):-1]`: each id must be one echoed token, as the
    usage bills it. mockai split `<15496>` as text, four tokens, and the slice read the prompt."""
    body = {"model": SCORING_MODEL, "prompt": prompt, "echo": True, "max_tokens": 1}
    with openai.OpenAI(base_url=str(http.base_url), api_key="sk-test", max_retries=0) as sdk:
        answer = sdk.completions.create(**body, logprobs=1, temperature=0, seed=1234)
    arrays = [prompt] if isinstance(prompt[0], int) else prompt
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == sum(
        len(p) if isinstance(p, list) else tokens.count(p) for p in arrays
    )
    whole = _legacy_logprobs(http, {**body, "logprobs": 1}, stream=False)
    assert whole == _legacy_logprobs(http, {**body, "logprobs": 1}, stream=True)
    for choice in answer.choices:
        sent, lp = arrays[choice.index], choice.logprobs
        assert lp is not None and lp.tokens is not None and lp.token_logprobs is not None
        assert "".join(lp.tokens) == choice.text
        if isinstance(sent, list):
            assert len(lp.tokens) == len(sent) + 1  # the prompt's ids, then the one generated
            assert lp.tokens[: len(sent)] == [
                f"{' ' if i else ''}<{t}>" for i, t in enumerate(sent)
            ]
        assert lp.token_logprobs[0] is None


@pytest.mark.parametrize("model", [LEGACY_MODEL, "gpt-3.5-turbo-instruct-0914"])
@pytest.mark.parametrize("top", [0, 5])
def test_gpt_35_turbo_instruct_refuses_echo_with_logprobs(
    http: httpx.Client, model: str, top: int
) -> None:
    """Only davinci-002 and babbage-002 score a prompt (lm-evaluation-harness#2866); the instruct
    model's 400 is what fastai/lm-hackers#7 and keirp/automatic_prompt_engineer#25 met."""
    with openai.OpenAI(base_url=str(http.base_url), api_key="sk-test", max_retries=0) as sdk:
        for stream in (False, True):
            with pytest.raises(openai.BadRequestError) as refused:
                sdk.completions.create(
                    model=model, prompt="Hi", echo=True, logprobs=top, stream=stream
                )
            assert refused.value.body == {
                "message": "Setting 'echo' and 'logprobs' at the same time is not supported "
                "for this model.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        # Either alone is taken.
        assert sdk.completions.create(model=model, prompt="Hi", echo=True).choices[0].text
        assert sdk.completions.create(model=model, prompt="Hi", logprobs=top).choices[0].logprobs


# --- 2. a streamed stored completion is the unstreamed one ---------------------------------------


@settings(max_examples=examples(25))
@given(
    text=texts(min_size=1),
    n=st.integers(1, 2),
    logprobs=st.booleans(),
    top=st.integers(0, 4),
    limit=st.integers(1, 12),
    usage=st.booleans(),
)
def test_a_streamed_stored_completion_is_the_unstreamed_one(
    http: httpx.Client, text: str, n: int, logprobs: bool, top: int, limit: int, usage: bool
) -> None:
    """Only the id differs (it names the exact request), and `usage` is there only if the stream
    sent it (`stream_options.include_usage`)."""
    body = {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": text}],
        "store": True,
        "metadata": {"case": "stream"},
        "n": n,
        "logprobs": logprobs,
        "max_completion_tokens": limit,
    }
    if logprobs:
        body["top_logprobs"] = top
    plain = _ok(http, "/chat/completions", body)
    options = {"stream_options": {"include_usage": True}} if usage else {}
    streamed_id = _chunks(http, "/chat/completions", {**body, **options})[0]["id"]
    kept = http.get(f"/chat/completions/{plain['id']}").json()
    rebuilt = http.get(f"/chat/completions/{streamed_id}").json()
    assert rebuilt.pop("id") == streamed_id and kept.pop("id") == plain["id"]
    if not usage:
        assert "usage" not in rebuilt
        del kept["usage"]
    assert rebuilt == kept


# --- 3. metadata: the spec's Metadata on chat and Responses create -------------------------------

BAD_METADATA = [
    {"a": 1},
    {"a": ["b"]},
    {"a": {"x": "1"}},
    {"a": None},
    {f"k{i}": "v" for i in range(17)},
    {"big": "v" * 513},
    {"k" * 65: "v"},
]


@pytest.mark.parametrize("metadata", BAD_METADATA)
@pytest.mark.parametrize("stream", [False, True])
def test_chat_and_responses_refuse_the_metadata_conversations_refuse(
    http: httpx.Client, metadata: dict[str, Any], stream: bool
) -> None:
    refused = http.post("/conversations", json={"metadata": metadata})
    assert refused.status_code == 400
    chat = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "x"}], "store": True}
    for path, body in [("/chat/completions", chat), ("/responses", {"input": "x"})]:
        answer = http.post(path, json={**body, "metadata": metadata, "stream": stream})
        assert (answer.status_code, answer.json()) == (400, refused.json()), path


def test_valid_and_null_metadata_are_still_accepted(http: httpx.Client) -> None:
    edge = {f"k{i}": "v" * 512 for i in range(15)} | {"k" * 64: ""}
    chat = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "x"}], "store": True}
    answer = _ok(http, "/chat/completions", {**chat, "metadata": edge})
    assert http.get(f"/chat/completions/{answer['id']}").json()["metadata"] == edge
    assert _ok(http, "/responses", {"input": "x", "metadata": edge})["metadata"] == edge
    _ok(http, "/chat/completions", {**chat, "metadata": None})
    assert _ok(http, "/responses", {"input": "x", "metadata": None})["metadata"] == {}


# --- 4. service_tier: chat reports it as Responses do --------------------------------------------

TIERS = [
    (None, "default"),
    ("auto", "default"),
    ("default", "default"),
    ("flex", "flex"),
    ("priority", "priority"),
    ("fast", "priority"),
    ("scale", "scale"),
    ("turbo", "default"),  # unknown, accepted without --strict-requests: the project's tier
]


@pytest.mark.parametrize(("requested", "reported"), TIERS)
def test_chat_reports_the_service_tier_as_responses_do(
    http: httpx.Client, requested: str | None, reported: str
) -> None:
    asked = {} if requested is None else {"service_tier": requested}
    chat = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "tier"}], **asked}
    # Three times: the second rendering of one reply is kept, the third spliced from it.
    for _ in range(3):
        assert _ok(http, "/chat/completions", chat)["service_tier"] == reported
    chunks = _chunks(http, "/chat/completions", chat)
    assert {chunk["service_tier"] for chunk in chunks} == {reported}
    assert _ok(http, "/responses", {"input": "tier", **asked})["service_tier"] == reported


def test_a_kept_chat_answer_reports_its_own_request_tier(http: httpx.Client) -> None:
    chat = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "kept tier"}]}
    for _ in range(2):  # (kept the second time)
        _ok(http, "/chat/completions", {**chat, "service_tier": "flex"})
    for tier in ("priority", "default", "flex"):
        assert (
            _ok(http, "/chat/completions", {**chat, "service_tier": tier})["service_tier"] == tier
        )
