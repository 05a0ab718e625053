"""A rule's scripted usage cut at the output limit; keys glued to the text before them.

Properties: a scripted `usage` whose completion count the request's output limit cuts bills
`total = prompt + completion` on every text endpoint (chat JSON and stream, legacy completions,
Responses), while a total the limit does not cut is sent as the rule wrote it. A key whose prefix
has several parts (`sk-proj-`) is a key after any character; any key is one after anything but an
ASCII letter (a digit, `_`, `-`, punctuation, Unicode), and a word ending in a key's prefix
(`task-force-...`) is none: recorded, such a key never reaches the cassette, and `mockai check`
names the line of a cassette holding one.
"""

from __future__ import annotations

import json
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from cassette_support import LoopbackApp, chat_completion, chunk
from conformance import checked_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import examples

from mockai import MockServer
from mockai.api.shaping import usage_numbers
from mockai.cassette.redact import Scrubber
from mockai.pipeline.reply import Reply

MODEL = "gpt-4o-mini"
INSTRUCT = "gpt-3.5-turbo-instruct"


# --- 1. scripted usage under the output cap ----------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with checked_server() as running:
        yield running


@pytest.fixture(scope="module")
def http(server: MockServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as built:
        yield built


def _scripted(prompt: int, completion: int, total: int | None) -> dict[str, int]:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    return usage if total is None else {**usage, "total_tokens": total}


def _expected(prompt: int, completion: int, total: int | None, cap: int) -> tuple[int, int, int]:
    if completion > cap:  # cut: the limit is billed, and the total is the API's own sum
        return prompt, cap, prompt + cap
    return prompt, completion, prompt + completion if total is None else total


def _streamed_usage(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    with http.stream("POST", "/chat/completions", json=body) as answer:
        assert answer.status_code == 200
        events = [
            json.loads(line[len("data: ") :])
            for line in answer.iter_lines()
            if line.startswith("data: ") and line != "data: [DONE]"
        ]
    return [event for event in events if event.get("usage")][-1]["usage"]


def _chat_usages(http: httpx.Client, cap: int) -> list[dict[str, Any]]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": cap}
    answer = http.post("/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    stream = {**body, "stream": True, "stream_options": {"include_usage": True}}
    return [answer.json()["usage"], _streamed_usage(http, stream)]


def _legacy_usage(http: httpx.Client, cap: int) -> dict[str, Any]:
    body = {"model": INSTRUCT, "prompt": "hi", "max_tokens": cap}
    answer = http.post("/completions", json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["usage"])


def _responses_usage(http: httpx.Client, cap: int) -> dict[str, Any]:
    body = {"model": MODEL, "input": "hi", "max_output_tokens": cap}
    answer = http.post("/responses", json=body)
    assert answer.status_code == 200, answer.text
    usage = answer.json()["usage"]
    return {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": usage["total_tokens"],
    }


def _numbers(usage: dict[str, Any]) -> tuple[int, int, int]:
    return usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]


@settings(
    max_examples=examples(8),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    prompt=st.integers(0, 5000),
    completion=st.integers(0, 3000),
    total=st.none() | st.integers(0, 10000),
    cap=st.integers(16, 80),  # (16: the Responses API's least max_output_tokens)
)
def test_scripted_usage_cut_at_the_limit_totals_its_parts(
    server: MockServer,
    http: httpx.Client,
    prompt: int,
    completion: int,
    total: int | None,
    cap: int,
) -> None:
    server.clear_rules()
    server.add_rule(
        {
            "name": "billed",
            "reply": {
                "content": "Hello there, this is a long scripted answer. " * 4,
                "usage": _scripted(prompt, completion, total),
            },
        }
    )
    usages = [*_chat_usages(http, cap), _legacy_usage(http, cap), _responses_usage(http, cap)]
    want = _expected(prompt, completion, total, cap)
    for where, usage in zip(
        ("chat", "chat stream", "completions", "responses"), usages, strict=True
    ):
        assert _numbers(usage) == want, where


def test_the_reported_case_bills_prompt_plus_limit(server: MockServer, http: httpx.Client) -> None:
    server.clear_rules()
    server.add_rule(
        {
            "name": "billed",
            "reply": {
                "content": "Hello there, this is a long scripted answer.",
                "usage": {"prompt_tokens": 5, "completion_tokens": 1000, "total_tokens": 1005},
            },
        }
    )
    assert [_numbers(u) for u in _chat_usages(http, 4)] == [(5, 4, 9), (5, 4, 9)]
    assert _numbers(_legacy_usage(http, 4)) == (5, 4, 9)
    assert _numbers(_responses_usage(http, 16)) == (5, 16, 21)


@given(
    prompt=st.integers(0, 10**6),
    completion=st.integers(0, 10**6),
    total=st.none() | st.integers(0, 10**7),
    cap=st.none() | st.integers(0, 10**6),
    responses_names=st.booleans(),
)
def test_usage_numbers_total_is_the_sum_whenever_the_cap_cuts(
    prompt: int, completion: int, total: int | None, cap: int | None, responses_names: bool
) -> None:
    usage = _scripted(prompt, completion, total)
    if responses_names:  # (the Responses API's names for the same two counts)
        usage = {"input_tokens": prompt, "output_tokens": completion} | (
            {} if total is None else {"total_tokens": total}
        )
    got = usage_numbers(Reply(usage=usage), 7, 11, cap)
    if cap is not None and completion > cap:
        assert got == (prompt, cap, prompt + cap)
    else:
        assert got == (prompt, completion, prompt + completion if total is None else total)


# --- 2. keys glued to what precedes them --------------------------------------------------------

SCRUBBER = Scrubber()
BODY = "Ab3dEf9hIj2kLm5nOp8qRs1tUv4wXy7zAb3dEf9h"
DIGIT_GLUED = "sk-proj-" + "0" * 36
UNDERSCORE_GLUED = "sk-proj-" + BODY
# As a user pastes them: right after a digit, and after a variable name's `_`.
USER_TEXT = f"key 0{DIGIT_GLUED} and OPENAI_API_KEY_{UNDERSCORE_GLUED} end"
ALNUM = string.ascii_letters + string.digits
TOKEN_CHARS = ALNUM + "_-"
MULTI_PART = ("sk-proj-", "sk-svcacct-", "sk-admin-", "sk-ant-api03-", "sk-or-v1-")
# The prefixes no word ends in: keys right after a letter too.
AFTER_A_LETTER = ("sk-proj-", "sk-svcacct-")


async def _echo(request: web.Request) -> web.StreamResponse:
    """A chat upstream that answers with the user's text: whole, or in small deltas, so a key
    crosses events."""
    body = await request.json()
    said = f"You said: {body['messages'][0]['content']}"
    if not body.get("stream"):
        return web.json_response(chat_completion("chatcmpl-echo", body["model"], said))
    answer = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await answer.prepare(request)
    for start in range(0, len(said), 7):
        await answer.write(chunk(said[start : start + 7]))
    await answer.write(chunk(None, "stop") + b"data: [DONE]\n\n")
    return answer


def test_keys_glued_to_a_digit_or_a_name_never_reach_the_cassette(tmp_path: Path) -> None:
    cassette = tmp_path / "glued.yaml"
    chat = {"model": MODEL, "messages": [{"role": "user", "content": USER_TEXT}]}
    with (
        LoopbackApp({"/v1/chat/completions": _echo}) as app,
        checked_server(cassette=str(cassette), record_mode="once", upstream=app.url) as recorder,
        httpx.Client(base_url=recorder.url, timeout=10) as http,
    ):
        assert USER_TEXT in http.post("/chat/completions", json=chat).text
        with http.stream("POST", "/chat/completions", json={**chat, "stream": True}) as streamed:
            assert streamed.status_code == 200
            streamed.read()
    text = cassette.read_text(encoding="utf-8")
    assert text.count("sk-REDACTED-") == 8  # (both keys: in two requests, an answer, a stream)
    for key in (DIGIT_GLUED, UNDERSCORE_GLUED):
        for piece in (key, key[:20], key[-20:]):  # (not whole, nor cut across events)
            assert piece not in text
    assert "OPENAI_API_KEY_sk-REDACTED-" in text  # (what precedes the key stays)


def test_mockai_check_names_the_line_of_a_glued_key(tmp_path: Path) -> None:
    cassette = tmp_path / "leaky.yaml"
    request = json.dumps({"model": "m", "input": f"OPENAI_API_KEY_{UNDERSCORE_GLUED}"})
    answer = {"object": "list", "data": [], "model": "m", "note": f"0{DIGIT_GLUED}"}
    answer["usage"] = {"prompt_tokens": 1, "total_tokens": 1}
    cassette.write_text(
        "interactions:\n"
        "- request:\n"
        f"    body: '{request}'\n"
        "    headers:\n"
        "      Content-Type: [application/json]\n"
        "    method: POST\n"
        "    uri: https://api.openai.com/v1/embeddings\n"
        "  response:\n"
        f"    body: {{string: '{json.dumps(answer)}'}}\n"
        "    headers:\n"
        "      Content-Type: [application/json]\n"
        "    status: {code: 200, message: OK}\n"
        "version: 1\n",
        encoding="utf-8",
    )
    checked = subprocess.run(
        [sys.executable, "-m", "mockai", "check", str(cassette)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode != 0
    said = checked.stdout + checked.stderr
    assert f"{cassette}:3: interaction 0 request.body: an sk- API key" in said
    assert f"{cassette}:9: interaction 0 response.body.string: an sk- API key" in said
    assert BODY not in said and "0" * 36 not in said  # (named, never printed)


GLUE = st.one_of(
    st.sampled_from(string.digits + string.punctuation + " \t\n"),
    st.characters().filter(lambda char: not (char.isascii() and char.isalpha())),
)
KEYS = st.one_of(
    st.builds(
        "{}{}".format,
        st.sampled_from(("sk-", *MULTI_PART)),
        st.text(TOKEN_CHARS, min_size=20, max_size=48),
    ),
    st.builds("gsk_{}".format, st.text(ALNUM, min_size=20, max_size=40)),
    st.builds("ghp_{}".format, st.text(ALNUM, min_size=30, max_size=40)),
    st.builds("AIza{}".format, st.text(TOKEN_CHARS, min_size=35, max_size=35)),
    st.builds(
        "AKIA{}".format, st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16)
    ),
    st.builds("Bearer {}".format, st.text(ALNUM, min_size=16, max_size=40)),
    st.builds("xoxb-{}".format, st.text(ALNUM, min_size=10, max_size=30)),
    st.builds("eyJ{}.eyJ{}.{}".format, *[st.text(TOKEN_CHARS, min_size=8, max_size=16)] * 3),
)


@settings(max_examples=300, deadline=None)
@given(before=st.text(max_size=20), glue=GLUE, key=KEYS)
def test_a_key_glued_to_anything_but_a_letter_is_scrubbed(before: str, glue: str, key: str) -> None:
    text = f"{before}{glue}{key} end"
    assert SCRUBBER.needs_scrubbing(text)
    assert SCRUBBER.scan(text)
    scrubbed = SCRUBBER.scrub_text(text)
    assert SCRUBBER.scan(scrubbed) == []
    assert key not in scrubbed and "REDACTED-" in scrubbed


@settings(max_examples=200, deadline=None)
@given(
    word=st.text(string.ascii_letters, min_size=1, max_size=12),
    prefix=st.sampled_from(AFTER_A_LETTER),
    rest=st.text(TOKEN_CHARS, min_size=20, max_size=48),
)
def test_a_multi_part_sk_key_glued_to_a_letter_is_still_a_key(
    word: str, prefix: str, rest: str
) -> None:
    scrubbed = SCRUBBER.scrub_text(f"{word}{prefix}{rest}")
    assert scrubbed.startswith(word) and prefix + rest not in scrubbed
    assert SCRUBBER.scan(scrubbed) == []


LOWER = string.ascii_lowercase


@pytest.mark.parametrize(
    "prose", ["task-admin-permissions-management", "desk-ant-colony-simulation-v2"]
)
def test_words_ending_in_sk_before_a_multi_part_prefix_are_prose(prose: str) -> None:
    """Only `sk-proj-` and `sk-svcacct-` are keys after a letter: `sk-admin-` and `sk-ant-` end
    words an answer may hold (a recorded answer rewritten would replay differently)."""
    assert SCRUBBER.scrub_text(prose) == prose
    assert SCRUBBER.scan(prose) == []


@settings(max_examples=200, deadline=None)
@given(
    word=st.text(LOWER, min_size=1, max_size=10),
    glue=GLUE,
    shape=st.sampled_from(["sk-{a}-{b}", "bearer {a}{b}", "gsk_{a}{b}", "xai-{a}{b}"]),
    a=st.text(LOWER, min_size=10, max_size=20),
    b=st.text(LOWER, min_size=10, max_size=20),
)
def test_a_word_ending_in_a_key_prefix_is_no_key_but_the_same_glued_to_a_name_is(
    word: str, glue: str, shape: str, a: str, b: str
) -> None:
    """`task-force-...`, `disk-...`, `cupbearer ...`: prose, kept as it is; `X_sk-...`,
    `0bearer ...`, `é` + `gsk_...`: keys."""
    key = shape.format(a=a, b=b)
    prose = word + key
    assert SCRUBBER.scrub_text(prose) == prose
    assert SCRUBBER.scan(prose) == []
    assert not SCRUBBER.needs_scrubbing(prose)
    glued = word + glue + key
    assert SCRUBBER.scan(glued)
    assert SCRUBBER.scrub_text(glued).startswith(word + glue)
    assert a + b not in SCRUBBER.scrub_text(glued).replace("-", "")


@pytest.mark.parametrize("prefix", MULTI_PART)
def test_a_key_after_a_percent_escape_is_a_key(prefix: str) -> None:
    """In an encoded URL (`?next=%2Fv1%3Fkey%3Dsk-...`) the character before a key is the last
    of an escape, a letter in the text but an `=` or a `/` in what it encodes."""
    key = prefix + "api03-" + BODY
    for text in (f"https://x.test/cb?next=%2Fv1%3Fkey%3D{key}", f"path%2F{key}", f"%3a{key}"):
        assert key not in SCRUBBER.scrub_text(text), text
        assert SCRUBBER.scan(text), text
