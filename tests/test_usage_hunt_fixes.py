"""Usage and context found by the bug hunt: prompt and answer held to the model's window (the
API's 400 for an output limit that does not fit, Fireworks' lowering), scripted usage held to the
output limit, DeepSeek's reasoning the same streamed or not and counted as text, and token
estimates near tiktoken's for indentation, emoji and scripts BPE holds few words of."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import conformance
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiktoken_support import encodings

from mockai import MockServer, tokens
from mockai.api.common import check_context
from mockai.api.shaping import usage_numbers
from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Reply

RULES = [
    {
        "match": {"user": "billed"},
        "reply": {
            "content": "This is a scripted answer with quite a few words in it for the test.",
            "usage": {"input_tokens": 77, "output_tokens": 50},
        },
    },
]
# A schema asking for far more than any window holds: the answer runs until it is stopped.
ENDLESS = {
    "type": "json_schema",
    "json_schema": {
        "name": "many",
        "schema": {
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "minItems": 1000,
                    "items": {"type": "string", "minLength": 50},
                }
            },
            "required": ["items"],
        },
    },
}
SMALL_WINDOW = 16_385  # gpt-3.5-turbo's (docs/endpoints.md)
WINDOW = 128_000  # gpt-4o's, and the Fireworks models'
FIREWORKS_MODEL = "accounts/fireworks/models/llama-v3p3-70b-instruct"


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with conformance.checked_server(fallback="generate") as running:
        running.add_rules(RULES)
        yield running


@pytest.fixture(scope="module")
def plain() -> Iterator[Any]:
    """A server whose answers are not checked against OpenAI's spec: DeepSeek's stream carries
    SSE comments (keep-alives) that a spec check takes for events."""
    with MockServer(log_requests=False) as running:
        yield running


def _post(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url, json=body, timeout=30)


def _words(count: int) -> str:
    """A text of `count` tokens (one-letter words)."""
    return "a" + " a" * (count - 1)


def _chat_body(text: str, **more: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **more}


# --- 1. prompt plus answer never outgrow the window ----------------------------------------------


def _refusal(prompt: int, asked: int, window: int) -> str:
    return (
        f"This model's maximum context length is {window} tokens. However, you requested "
        f"{prompt + asked} tokens ({prompt} in the messages, {asked} in the completion). "
        "Please reduce the length of the messages or completion."
    )


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_chat_max_tokens_that_do_not_fit_beside_the_prompt_are_the_apis_400(
    server: Any, field: str
) -> None:
    text = _words(SMALL_WINDOW - 200)
    fits = _post(server.url + "/chat/completions", _chat_body(text, model="gpt-3.5-turbo"))
    prompt = fits.json()["usage"]["prompt_tokens"]
    body = _chat_body(text, model="gpt-3.5-turbo", **{field: 1000})
    refused = _post(server.url + "/chat/completions", body)
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "message": _refusal(prompt, 1000, SMALL_WINDOW),
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
    room = SMALL_WINDOW - prompt  # exactly what is left is accepted
    body = _chat_body(text, model="gpt-3.5-turbo", **{field: room})
    assert _post(server.url + "/chat/completions", body).status_code == 200


def test_a_legacy_completion_whose_max_tokens_do_not_fit_is_the_apis_400(server: Any) -> None:
    url, window = server.url + "/completions", 4_096  # gpt-3.5-turbo-instruct's
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": _words(window - 10)}
    fits = _post(url, {**body, "max_tokens": 10}).json()
    assert fits["usage"]["total_tokens"] == window
    refused = _post(url, {**body, "max_tokens": 100})
    assert refused.status_code == 400, refused.text
    # The legacy endpoint's own words, no param, no code (test_completions_hunt_fixes)
    assert refused.json()["error"] == {
        "message": f"This model's maximum context length is {window} tokens, however you "
        f"requested {window + 90} tokens ({window - 10} in your prompt; 100 for the "
        "completion). Please reduce your prompt; or completion length.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_without_a_max_the_answer_stops_where_the_window_ends(server: Any) -> None:
    # (room for the schema, which the prompt bills, and a few tokens of answer)
    text = _words(SMALL_WINDOW - 100)
    # (as a forced tool's parameters: gpt-3.5-turbo, older than Structured Outputs, refuses a
    # `json_schema` response format)
    schema = ENDLESS["json_schema"]["schema"]  # type: ignore[index]
    tool = {"type": "function", "function": {"name": "many", "parameters": schema}}
    choice = {"type": "function", "function": {"name": "many"}}
    body = _chat_body(text, model="gpt-3.5-turbo", tools=[tool], tool_choice=choice)
    answer = _post(server.url + "/chat/completions", body).json()
    usage = answer["usage"]
    assert usage["total_tokens"] == SMALL_WINDOW
    assert usage["prompt_tokens"] + usage["completion_tokens"] == SMALL_WINDOW
    assert answer["choices"][0]["finish_reason"] == "length"


def test_responses_max_output_tokens_stop_where_the_window_ends(server: Any) -> None:
    # (the references do not say the API refuses it: the answer stops at the window)
    # (as a forced tool's parameters, not strict: gpt-3.5-turbo, older than Structured Outputs,
    # refuses a `json_schema` text format)
    schema = ENDLESS["json_schema"]["schema"]  # type: ignore[index]
    body = {
        "model": "gpt-3.5-turbo",
        "input": _words(SMALL_WINDOW - 100),
        "max_output_tokens": 1000,
        "tools": [{"type": "function", "name": "many", "parameters": schema, "strict": False}],
        "tool_choice": {"type": "function", "name": "many"},
    }
    answer = _post(server.url + "/responses", body).json()
    assert answer["usage"]["total_tokens"] == SMALL_WINDOW
    assert answer["status"] == "incomplete"
    assert answer["incomplete_details"] == {"reason": "max_output_tokens"}


def test_fireworks_lowers_max_tokens_unless_asked_for_the_error(server: Any) -> None:
    url = server.provider_url("fireworks") + "/chat/completions"
    text = _words(WINDOW - 100)
    body = _chat_body(text, model=FIREWORKS_MODEL, max_tokens=1000, response_format=ENDLESS)
    lowered = _post(url, body).json()
    assert lowered["usage"]["total_tokens"] == WINDOW
    assert lowered["choices"][0]["finish_reason"] == "length"
    truncate = _post(url, {**body, "context_length_exceeded_behavior": "truncate"}).json()
    assert truncate["usage"] == lowered["usage"]
    refused = _post(url, {**body, "context_length_exceeded_behavior": "error"})
    assert refused.status_code == 400
    prompt = lowered["usage"]["prompt_tokens"]
    assert refused.json()["error"]["message"] == _refusal(prompt, 1000, WINDOW)


@given(
    window=st.integers(min_value=1, max_value=10**6),
    prompt=st.integers(min_value=0, max_value=10**6),
    asked=st.none() | st.integers(min_value=0, max_value=10**7),
    model=st.none() | st.integers(min_value=1, max_value=10**6),
    lowered=st.booleans(),
)
def test_an_accepted_request_never_answers_past_the_window(
    window: int, prompt: int, asked: int | None, model: int | None, lowered: bool
) -> None:
    info = ModelInfo("m", context_window=window)
    try:
        room = check_context(info, prompt, asked=asked, lowered=lowered)
    except ApiError as refused:
        assert refused.code == "context_length_exceeded"
        assert prompt > window or (asked is not None and not lowered and prompt + asked > window)
        return
    exchange = Exchange(
        endpoint=Endpoint.CHAT,
        model="m",
        body={},
        headers={},
        max_tokens=asked,
        model_max_output=model,
        context_room=room,
        prompt_tokens=prompt,
    )
    limit = exchange.output_limit
    assert limit is not None and prompt + limit <= window
    # the lowest of the limits: nothing lower than need be
    assert limit == min(x for x in (asked, model, window - prompt) if x is not None)


# --- 2. scripted usage within the output limit ---------------------------------------------------


def test_a_cut_scripted_answer_bills_its_limit(server: Any) -> None:
    body = _chat_body("billed please", model="gpt-4o-mini", max_tokens=4)
    answer = _post(server.url + "/chat/completions", body).json()
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 4
    assert answer["usage"]["total_tokens"] == 77 + 4
    body = {"model": "gpt-4o-mini", "input": "billed please", "max_output_tokens": 16}
    response = _post(server.url + "/responses", body).json()
    assert response["usage"]["output_tokens"] == 16
    uncapped = _post(server.url + "/responses", {"model": "gpt-4o-mini", "input": "billed"})
    assert uncapped.json()["usage"]["output_tokens"] == 50  # (as scripted, where it fits)


@given(
    scripted=st.dictionaries(
        st.sampled_from(["prompt_tokens", "input_tokens", "completion_tokens", "output_tokens"]),
        st.integers(min_value=0, max_value=10**6),
    ),
    prompt=st.integers(min_value=0, max_value=10**6),
    completion=st.integers(min_value=0, max_value=10**6),
    cap=st.none() | st.integers(min_value=0, max_value=10**6),
)
def test_usage_never_bills_more_than_the_answer_could_use(
    scripted: dict[str, int], prompt: int, completion: int, cap: int | None
) -> None:
    if cap is not None:
        completion = min(completion, cap)  # (an answer shaped under the cap)
    billed_prompt, billed, total = usage_numbers(Reply(usage=scripted), prompt, completion, cap)
    assert cap is None or billed <= cap
    assert total == billed_prompt + billed
    asked = scripted.get("completion_tokens", scripted.get("output_tokens", completion))
    assert billed == (asked if cap is None else min(asked, cap))


# --- 3. DeepSeek's reasoning ---------------------------------------------------------------------


def test_deepseek_reasoning_is_the_same_streamed_or_not_and_counted_as_text(plain: Any) -> None:
    url = plain.provider_url("deepseek") + "/chat/completions"
    body = _chat_body("Tell me a long story about dragons", model="deepseek-reasoner")
    first, again = (_post(url, body).json() for _ in range(2))
    thought = first["choices"][0]["message"]["reasoning_content"]
    assert again["choices"][0]["message"]["reasoning_content"] == thought
    details = first["usage"]["completion_tokens_details"]
    assert details["reasoning_tokens"] == tokens.count(thought)
    streamed = httpx.post(
        url,
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
        timeout=30,
    )
    parts, usage = [], None
    for line in streamed.text.splitlines():
        if not line.startswith("data: {"):
            continue
        chunk = json.loads(line[len("data: ") :])
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            parts.append(choice["delta"].get("reasoning_content") or "")
    assert "".join(parts) == thought
    assert usage == first["usage"]


# --- 4. token estimates near tiktoken's ----------------------------------------------------------


_WORDS = {
    "arabic": "مرحبا، كيف حالك؟ أخبرني قصة طويلة عن التنانين والفرسان في مملكة بعيدة.",
    "thai": "สวัสดีครับ กรุณา เล่าเรื่องยาว เกี่ยวกับ มังกร และอัศวิน ให้ฟังหน่อย",
    "hebrew": "שלום, מה שלומך? ספר לי בבקשה סיפור ארוך על דרקונים ואבירים.",
    "russian": "Привет, как дела? Расскажи мне, пожалуйста, длинную историю про драконов.",
    "emoji": "😀 😂 🎉 👍 🔥 ❤ 🚀 I love it so much 🙂🙂🙂",
}


@st.composite
def _texts(draw: st.DrawFn) -> str:
    words = _WORDS[draw(st.sampled_from(sorted(_WORDS)))].split()
    return " ".join(draw(st.lists(st.sampled_from(words), min_size=8, max_size=40)))


@settings(max_examples=100, deadline=None)
@given(_texts())
def test_scripts_bpe_holds_few_words_of_count_between_cl100k_and_o200k(text: str) -> None:
    counted = tokens.count(text)
    assert counted == len(tokens.split(text))
    cl100k, o200k = (len(encoding.encode(text)) for encoding in encodings())
    # (cl100k spends about twice what o200k does on these: the estimate lies between)
    assert min(cl100k, o200k) * 0.6 <= counted <= max(cl100k, o200k) * 1.2, (cl100k, o200k)


def _nested(depth: int) -> Any:
    return {"level": depth, "name": "item", "child": _nested(depth - 1)} if depth else {"x": 1}


@settings(max_examples=30, deadline=None)
@given(depth=st.integers(min_value=1, max_value=20), indent=st.sampled_from([2, 4, 8, "\t"]))
def test_indented_json_counts_near_tiktoken(depth: int, indent: int | str) -> None:
    text = json.dumps(_nested(depth), indent=indent)
    counted = tokens.count(text)
    for encoding in encodings():
        real = len(encoding.encode(text))
        assert real * 0.8 <= counted <= real * 1.25, (encoding.name, real, counted)


@given(spaces=st.integers(min_value=1, max_value=80), blanks=st.integers(min_value=1, max_value=16))
def test_a_run_of_blanks_is_about_one_token(spaces: int, blanks: int) -> None:
    # (cl100k and o200k hold runs of up to ~80 spaces, ~16 newlines or tabs, as one token)
    assert tokens.count("x\n" + " " * spaces + "y") == (3 if spaces == 1 else 4)  # (tiktoken's)
    assert tokens.count("x" + "\t" * blanks) == 2
    run = " " * (spaces * 7)
    assert "".join(tokens.split(run)) == run
    assert tokens.count(run) == -(-len(run) // 80)


@given(st.integers(min_value=1, max_value=300))
def test_an_emoji_is_a_token(count: int) -> None:
    assert tokens.count("😀" * count) == len(tokens.split("😀" * count)) == count
