"""Legacy completions through the real SDK: JSON, streams, echo, n, stop, max_tokens, logprobs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import conformance
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples, texts

from mockai import MockServer

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
    assert completion.usage is not None and completion.usage.prompt_tokens == 3


@pytest.fixture(scope="module")
def module_client() -> Iterator[openai.OpenAI]:
    with (
        conformance.checked_server() as server,
        openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as sdk,
    ):
        yield sdk


_token_arrays = st.lists(st.integers(min_value=0, max_value=2**31 - 1), min_size=1, max_size=300)


@settings(max_examples=examples(25))
@given(
    prompts=st.one_of(
        _token_arrays.map(lambda array: [array]),
        st.lists(st.one_of(_token_arrays, texts(min_size=1)), min_size=1, max_size=4),
    )
)
def test_a_token_array_is_as_many_prompt_tokens_as_it_has_ids(
    module_client: openai.OpenAI, prompts: list[list[int] | str]
) -> None:
    """A pre-tokenised prompt is billed by its ids, however many digits they have; a string
    as when it is sent alone."""

    def usage(prompt: Any) -> int:
        answer = module_client.completions.create(model=MODEL, prompt=prompt, max_tokens=1)
        assert answer.usage is not None
        return answer.usage.prompt_tokens

    sent = prompts[0] if len(prompts) == 1 and isinstance(prompts[0], list) else prompts
    strings = [p for p in prompts if isinstance(p, str)]
    expected = sum(len(p) for p in prompts if isinstance(p, list))
    expected += sum(usage(text) for text in strings)
    assert usage(sent) == expected


def test_a_token_array_that_fits_the_context_is_answered(client: openai.OpenAI) -> None:
    # gpt-3.5-turbo-instruct's window is 4,096 tokens: 1,500 ids fit, however long their text
    fits = client.completions.create(model=MODEL, prompt=list(range(10_000, 11_500)))
    assert fits.usage is not None and fits.usage.prompt_tokens == 1_500
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model=MODEL, prompt=list(range(5_000)))
    assert "5016 tokens (5000 in your prompt; 16 for the completion)" in str(refused.value)


def test_a_rule_s_tool_calls_are_not_said_on_legacy_completions(server: MockServer) -> None:
    """Legacy completions know no tool calls: a rule's text is said whole, and its calls
    count neither against `max_tokens` nor in the usage."""
    server.add_rule({"name": "text", "match": {"user": "text?"}, "reply": "Let me check."})
    server.add_rule(
        {
            "name": "tools",
            "match": {"user": "weather?"},
            "reply": {
                "content": "Let me check.",
                "tool_calls": [
                    {"name": "get_weather", "arguments": {"city": city}}
                    for city in ("Paris", "Tokyo")
                ],
            },
        }
    )
    with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as sdk:
        completion = sdk.completions.create(model=MODEL, prompt="weather?")
        text = sdk.completions.create(model=MODEL, prompt="text?")
        chat = sdk.chat.completions.create(  # (the same rule answers chat with its calls)
            model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}]
        )
    choice = completion.choices[0]
    assert (choice.text, choice.finish_reason) == ("Let me check.", "stop")
    assert completion.usage is not None and text.usage is not None
    assert completion.usage.completion_tokens == text.usage.completion_tokens
    tool_calls = chat.choices[0].message.tool_calls
    assert tool_calls is not None and len(tool_calls) == 2


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
