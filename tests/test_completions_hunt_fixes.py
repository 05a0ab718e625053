"""Legacy completions: batches of prompts, stream options and logit_bias types, best_of, prompts.

Properties: every prompt of a batch is its own completion — it fits the context window alone and
gets what a request of it alone gets (its rule's answer, or the generator's) — and `logit_bias`
takes exactly the spec's map of token ids to integers in [-100, 100].
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
from strategies import examples

from mockai import MockServer

MODEL = "gpt-3.5-turbo-instruct"
CHAT_MODEL = "gpt-4o-mini"
WINDOW = 4096  # gpt-3.5-turbo-instruct's context window

RULES: list[dict[str, Any]] = [
    {"name": "capital", "match": {"endpoint": "completions", "user": "capital"}, "reply": "Paris."},
    {"name": "weather", "match": {"endpoint": "completions", "user": "weather"}, "reply": "Sunny."},
]
SCRIPTED = {"capital": "Paris.", "weather": "Sunny."}
PROMPTS = ["capital of France?", "weather in Oslo?", "tell me a story", "a quiet morning"]


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    # `generate`: a prompt no rule matches is answered alone too, so its text can be compared.
    with checked_server(fallback="generate") as running:
        running.add_rules(RULES)
        yield running


@pytest.fixture(scope="module")
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with sdk(server) as built:
        yield built


@pytest.fixture(scope="module")
def http(server: MockServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as built:
        yield built


def texts(client: openai.OpenAI, prompt: Any, **extra: Any) -> list[str]:
    answer = client.completions.create(model=MODEL, prompt=prompt, max_tokens=30, **extra)
    assert [c.index for c in answer.choices] == list(range(len(answer.choices)))
    return [c.text for c in answer.choices]


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


# --- 1. each prompt has its own context window ----------------------------------------------------


def test_a_batch_of_prompts_that_each_fit_is_answered(client: openai.OpenAI) -> None:
    prompt = "word " * 1000
    one = client.completions.create(model=MODEL, prompt=prompt, max_tokens=1)
    five = client.completions.create(model=MODEL, prompt=[prompt] * 5, max_tokens=1)
    assert one.usage is not None and five.usage is not None
    assert five.usage.prompt_tokens == 5 * one.usage.prompt_tokens > WINDOW  # usage bills all


@settings(max_examples=examples(15), deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=WINDOW + 300), min_size=1, max_size=4))
def test_a_batch_fits_when_its_longest_prompt_does(http: httpx.Client, lengths: list[int]) -> None:
    prompts = [list(range(length)) for length in lengths]
    sent = prompts if len(prompts) > 1 else prompts[0]
    answer = http.post("/completions", json={"model": MODEL, "prompt": sent, "max_tokens": 1})
    if max(lengths) + 1 > WINDOW:  # (the longest prompt and its answer's `max_tokens`)
        error = error_of(answer)
        assert (error["code"], error["param"]) == (None, None)
        assert f"({max(lengths)} in your prompt; 1 for the completion)" in error["message"]
    else:
        assert answer.status_code == 200, answer.text
        assert answer.json()["usage"]["prompt_tokens"] == sum(lengths)


# --- 2. each prompt is matched and answered on its own --------------------------------------------


def test_each_prompt_is_answered_by_its_own_rule(server: MockServer, client: openai.OpenAI) -> None:
    before = {rule.name: rule.served for rule in server.rules}
    batch = ["capital of France?", "tell me a story", "weather in Oslo?"]
    answer = texts(client, batch, n=2)
    alone = texts(client, "tell me a story", n=2)
    # Prompt-major, n per prompt: choice `prompt_index * n + k`.
    assert answer == ["Paris.", "Paris.", *alone, "Sunny.", "Sunny."]
    [entry] = [e for e in server.requests if isinstance(e.body, dict) and e.body["prompt"] == batch]
    assert entry.rules == ["capital", "weather"]
    served = {rule.name: rule.served - before[rule.name] for rule in server.rules}
    assert served == {"capital": 1, "weather": 1}  # one call each, as for embeddings batches


def test_the_first_prompt_s_rule_answers_it_not_the_last_one_s(client: openai.OpenAI) -> None:
    other = texts(client, "a quiet morning")
    assert texts(client, ["capital of France?", "a quiet morning"]) == ["Paris.", *other]


def test_a_streamed_batch_says_what_the_whole_one_does(client: openai.OpenAI) -> None:
    batch = ["weather in Oslo?", "a quiet morning"]
    whole = texts(client, batch, n=2)
    assert whole == ["Sunny.", "Sunny.", *texts(client, "a quiet morning", n=2)]
    streamed: dict[int, str] = {}
    stream = client.completions.create(model=MODEL, prompt=batch, n=2, max_tokens=30, stream=True)
    for chunk in stream:
        for choice in chunk.choices:
            streamed[choice.index] = streamed.get(choice.index, "") + choice.text
    assert [streamed[i] for i in range(4)] == whole


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    # (a batch no rule matches is the generator's, as a whole: see docs/scenarios.md)
    batch=st.lists(st.sampled_from(PROMPTS), min_size=2, max_size=5).filter(
        lambda batch: any(_scripted(prompt) for prompt in batch)
    ),
    n=st.integers(min_value=1, max_value=3),
)
def test_a_prompt_in_a_batch_gets_what_it_gets_alone(
    client: openai.OpenAI, batch: list[str], n: int
) -> None:
    expected: list[str] = []
    for prompt in batch:
        scripted = _scripted(prompt)
        expected += [scripted] * n if scripted is not None else texts(client, prompt, n=n)
    assert texts(client, batch, n=n) == expected


def _scripted(prompt: str) -> str | None:
    return next((text for word, text in SCRIPTED.items() if word in prompt), None)


# --- 3. nested fields are typed ------------------------------------------------------------------


def _request(path: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    if path == "/completions":
        return path, {"model": MODEL, "prompt": "hi", "max_tokens": 2, **extra}
    messages = [{"role": "user", "content": "hi"}]
    return path, {"model": CHAT_MODEL, "messages": messages, "max_tokens": 2, **extra}


PATHS = ["/completions", "/chat/completions"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("key", ["include_usage", "include_obfuscation"])
@pytest.mark.parametrize(
    ("value", "got"), [("false", "a string"), (0, "an integer"), ([], "an array")]
)
def test_a_stream_option_must_be_a_boolean(
    http: httpx.Client, path: str, key: str, value: Any, got: str
) -> None:
    url, body = _request(path, stream=True, stream_options={key: value})
    error = error_of(http.post(url, json=body))
    assert error == {
        "message": f"Invalid type for 'stream_options.{key}': expected a boolean, but got "
        f"{got} instead.",
        "type": "invalid_request_error",
        "param": f"stream_options.{key}",
        "code": "invalid_type",
    }


@pytest.mark.parametrize("path", PATHS)
def test_include_usage_is_read_as_a_boolean_not_by_truthiness(
    http: httpx.Client, path: str
) -> None:
    for include in (True, False, None, "false"):
        url, body = _request(path, stream=True, stream_options={"include_usage": include})
        answer = http.post(url, json=body)
        if isinstance(include, str):  # (once read by truthiness: a usage chunk was sent)
            assert error_of(answer)["param"] == "stream_options.include_usage"
            continue
        assert answer.status_code == 200, answer.text
        events = [json.loads(line[6:]) for line in answer.text.splitlines() if line[6:7] == "{"]
        assert any(event.get("usage") for event in events) is (include is True)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("bias", "param", "code", "message"),
    [
        (
            {"50256": "x"},
            "logit_bias.50256",
            "invalid_type",
            "Invalid type for 'logit_bias.50256': expected an integer, but got a string instead.",
        ),
        (
            {"50256": 1.5},
            "logit_bias.50256",
            "invalid_type",
            "Invalid type for 'logit_bias.50256': expected an integer, but got a decimal instead.",
        ),
        (
            {"13": 200},
            "logit_bias.13",
            "integer_above_max_value",
            (
                "Invalid 'logit_bias.13': integer above maximum value. Expected a value <= 100, "
                "but got 200 instead."
            ),
        ),
        (
            {"13": -101},
            "logit_bias.13",
            "integer_below_min_value",
            (
                "Invalid 'logit_bias.13': integer below minimum value. Expected a value >= -100, "
                "but got -101 instead."
            ),
        ),
        (
            {"You": 6},
            "logit_bias",
            None,
            (
                "Invalid key in 'logit_bias': You. You should only be submitting non-negative "
                "integers."
            ),
        ),
        (
            {"-1": 6},
            "logit_bias",
            None,
            "Invalid key in 'logit_bias': -1. You should only be submitting non-negative integers.",
        ),
    ],
)
def test_a_bad_logit_bias_is_the_api_s_400(
    client: openai.OpenAI,
    path: str,
    bias: dict[str, Any],
    param: str,
    code: str | None,
    message: str,
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        if path == "/completions":
            client.completions.create(model=MODEL, prompt="hi", logit_bias=bias)
        else:
            client.chat.completions.create(
                model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}], logit_bias=bias
            )
    error = refused.value
    assert (error.param, error.code, error.body) == (
        param,
        code,
        {"message": message, "type": "invalid_request_error", "param": param, "code": code},
    )


_token_ids = st.integers(min_value=0, max_value=200_000).map(str)


@settings(max_examples=examples(25), deadline=None)
@given(
    path=st.sampled_from(PATHS),
    bias=st.dictionaries(_token_ids, st.integers(min_value=-150, max_value=150), max_size=4),
)
def test_logit_bias_takes_exactly_the_spec_s_range(
    http: httpx.Client, path: str, bias: dict[str, int]
) -> None:
    url, body = _request(path, logit_bias=bias)
    answer = http.post(url, json=body)
    if all(-100 <= value <= 100 for value in bias.values()):
        assert answer.status_code == 200, answer.text
    else:
        assert error_of(answer)["code"] in ("integer_above_max_value", "integer_below_min_value")


# --- 4. best_of is not streamed; token arrays are not empty ---------------------------------------


def test_best_of_cannot_be_streamed(http: httpx.Client) -> None:
    url, body = _request("/completions", stream=True, best_of=3)
    error = error_of(http.post(url, json=body))
    assert (error["param"], error["message"]) == (
        "best_of",
        "Cannot stream results with best_of > 1.",
    )
    url, body = _request("/completions", stream=True, best_of=1)  # (the default, said)
    assert http.post(url, json=body).status_code == 200


@pytest.mark.parametrize(
    ("prompt", "param"),
    [([[]], "prompt[0]"), ([[1, 2], []], "prompt[1]"), (["a", []], "prompt[1]")],
)
def test_an_empty_token_array_in_the_prompt_is_refused(
    http: httpx.Client, prompt: list[Any], param: str
) -> None:
    error = error_of(http.post("/completions", json={"model": MODEL, "prompt": prompt}))
    assert error == {
        "message": f"Invalid '{param}': empty array. Expected an array with minimum length 1, "
        "but got an empty array instead.",
        "type": "invalid_request_error",
        "param": param,
        "code": "empty_array",
    }


# --- 5. the base models' window -------------------------------------------------------------------

BASE_WINDOW = 16_384  # davinci-002's and babbage-002's (OpenAI's model pages)


@pytest.mark.parametrize("model", ["davinci-002", "babbage-002", "ft:davinci-002:acme::abc123"])
def test_a_base_model_scores_a_prompt_as_long_as_its_window(http: httpx.Client, model: str) -> None:
    """lm-evaluation-harness scores long documents with `echo` and `max_tokens: 0`: a prompt of
    10,000 tokens fits davinci-002's 16,384 (it was refused, held to 4,096)."""
    body = {"model": model, "echo": True, "logprobs": 0, "max_tokens": 0}
    scored = http.post("/completions", json={**body, "prompt": list(range(10_000))})
    assert scored.status_code == 200, scored.text
    assert scored.json()["usage"]["prompt_tokens"] == 10_000
    assert len(scored.json()["choices"][0]["logprobs"]["tokens"]) == 10_000
    past = http.post("/completions", json={**body, "prompt": list(range(BASE_WINDOW + 1))})
    assert past.status_code == 400
    assert f"maximum context length is {BASE_WINDOW} tokens" in past.json()["error"]["message"]


# --- 6. a prompt that does not fit: the legacy endpoint's own 400 ---------------------------------


@pytest.mark.parametrize(("max_tokens", "asked"), [(None, 16), (0, 0), (40, 40)])
def test_a_prompt_that_does_not_fit_is_refused_in_the_legacy_words(
    client: openai.OpenAI, max_tokens: int | None, asked: int
) -> None:
    """The API's 400 as gpt-3.5-turbo-instruct words it (OpenHands/OpenHands#1126), not chat's,
    with no param and no code; the default `max_tokens`, 16, counts as one asked for: a prompt
    that leaves less room is refused, not answered and cut at the window."""
    prompt = list(range(WINDOW - 10))
    extra = {} if max_tokens is None else {"max_tokens": max_tokens}
    if asked <= 10:
        fits = client.completions.create(model=MODEL, prompt=prompt, **extra)
        assert fits.usage is not None and fits.usage.prompt_tokens == WINDOW - 10
        return
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model=MODEL, prompt=prompt, **extra)
    assert refused.value.body == {
        "message": f"This model's maximum context length is {WINDOW} tokens, however you "
        f"requested {WINDOW - 10 + asked} tokens ({WINDOW - 10} in your prompt; {asked} for "
        "the completion). Please reduce your prompt; or completion length.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
