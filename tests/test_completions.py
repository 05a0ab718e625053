"""Legacy completions through the real SDK: JSON, streams, echo, n, stop, max_tokens, logprobs."""

from __future__ import annotations

import openai
import pytest

MODEL = "gpt-3.5-turbo-instruct"


def test_completion_defaults_to_16_tokens(client: openai.OpenAI) -> None:
    completion = client.completions.create(model=MODEL, prompt="Once upon a time")
    choice = completion.choices[0]
    assert completion.object == "text_completion" and completion.id.startswith("cmpl-")
    assert choice.finish_reason == "length"  # the legacy API's max_tokens defaults to 16
    assert completion.usage is not None and completion.usage.completion_tokens == 16


def test_long_enough_max_tokens_stops(client: openai.OpenAI) -> None:
    completion = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=500)
    assert completion.choices[0].finish_reason == "stop"
    assert len(completion.choices[0].text.split()) > 5


def test_echo_and_n_and_several_prompts(client: openai.OpenAI) -> None:
    completion = client.completions.create(model=MODEL, prompt=["Alpha", "Beta"], n=2, echo=True)
    assert [c.index for c in completion.choices] == [0, 1, 2, 3]
    assert completion.choices[0].text.startswith("Alpha") and completion.choices[1].text.startswith(
        "Alpha"
    )
    assert completion.choices[2].text.startswith("Beta") and completion.choices[3].text.startswith(
        "Beta"
    )


def test_token_array_prompt(client: openai.OpenAI) -> None:
    completion = client.completions.create(model=MODEL, prompt=[1, 2, 3])
    assert len(completion.choices) == 1
    assert completion.usage is not None and completion.usage.prompt_tokens > 0


def test_stream_matches_whole(client: openai.OpenAI) -> None:
    whole = client.completions.create(model=MODEL, prompt="Tell me", max_tokens=40)
    chunks = list(
        client.completions.create(model=MODEL, prompt="Tell me", max_tokens=40, stream=True)
    )
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


def test_stream_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.completions.create(
            model=MODEL, prompt="Tell me", stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 16


def test_stop_and_logprobs(client: openai.OpenAI) -> None:
    full = client.completions.create(model=MODEL, prompt="Go", max_tokens=60).choices[0].text
    word = " " + full.split()[4]
    cut = client.completions.create(model=MODEL, prompt="Go", max_tokens=60, stop=word)
    assert cut.choices[0].text == full[: full.index(word)]
    scored = client.completions.create(model=MODEL, prompt="Go", max_tokens=5, logprobs=2)
    logprobs = scored.choices[0].logprobs
    assert (
        logprobs is not None and logprobs.tokens is not None and logprobs.top_logprobs is not None
    )
    assert "".join(logprobs.tokens) == scored.choices[0].text
    assert len(logprobs.top_logprobs) == 5 and all(len(t) == 2 for t in logprobs.top_logprobs)


@pytest.mark.asyncio
async def test_async_stream(aclient: openai.AsyncOpenAI) -> None:
    stream = await aclient.completions.create(model=MODEL, prompt="Hi", stream=True)
    texts = [c.choices[0].text async for c in stream]
    assert "".join(texts)
