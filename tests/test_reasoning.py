"""Reasoning models reason: their tokens, their item, and the budget they use first.

The o-series and gpt-5 bill reasoning tokens as output tokens, before the answer, against the
request's output limit (the spec's `CompletionUsage`); in the Responses API the reasoning comes
as an output item ahead of the answer (`ReasoningItem`), with a summary when the request asks for
one. mockai had sent `reasoning_tokens: 0` and no reasoning item for every model, so an app's
handling of both (a budget the reasoning used up, an item that is not a message) went untested.
"""

from __future__ import annotations

import contextlib
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conformance import checked_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk import sdk

from mockai import MockServer

REASONING_MODELS = ["gpt-5", "gpt-5-mini", "o3", "o4-mini"]
EFFORTS = [None, "none", "minimal", "low", "medium", "high", "xhigh"]
SUMMARIES = [None, "auto", "concise", "detailed"]


@pytest.fixture(scope="module")
def client(lenient: MockServer) -> Iterator[openai.OpenAI]:
    """The SDK on conftest's module server (conformance-checked, the embedded defaults)."""
    with sdk(lenient) as built:
        yield built


def responses_request(
    model: str, effort: str | None, summary: str | None, limit: int | None, question: str
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": question}
    reasoning = {k: v for k, v in (("effort", effort), ("summary", summary)) if v is not None}
    if reasoning:
        body["reasoning"] = reasoning
    if limit is not None:
        body["max_output_tokens"] = limit
    return body


def reasons(model: str, effort: str | None) -> bool:
    return model in REASONING_MODELS and effort != "none"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    model=st.sampled_from([*REASONING_MODELS, "gpt-4o-mini", "gpt-4.1"]),
    effort=st.sampled_from(EFFORTS),
    summary=st.sampled_from(SUMMARIES),
    limit=st.none() | st.integers(min_value=16, max_value=1200),
    question=st.text(min_size=1, max_size=60).filter(str.strip),
)
def test_a_response_reasons_within_its_budget_streamed_or_not(
    client: openai.OpenAI,
    model: str,
    effort: str | None,
    summary: str | None,
    limit: int | None,
    question: str,
) -> None:
    body = responses_request(model, effort, summary, limit, question)
    if effort is not None and model not in REASONING_MODELS:
        with pytest.raises(openai.BadRequestError) as refused:  # (a model that does not reason)
            client.responses.create(**body)
        assert refused.value.param == "reasoning.effort"
        return
    if effort in ("xhigh", "none") and model.startswith("gpt-5"):  # (efforts after gpt-5)
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(**body)
        assert refused.value.code == "unsupported_value"
        return
    if summary == "concise" and model in REASONING_MODELS:  # (it came after gpt-5)
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(**body)
        assert refused.value.param == "reasoning.summary"
        return
    answer = client.responses.create(**body)
    usage = answer.usage
    assert usage is not None
    thought = usage.output_tokens_details.reasoning_tokens
    kinds = [item.type for item in answer.output]
    if not reasons(model, effort):
        assert thought == 0 and "reasoning" not in kinds
    else:
        # The reasoning item comes first; its summary only when asked for.
        assert kinds[0] == "reasoning" and kinds.count("reasoning") == 1
        item = answer.output[0]
        assert item.type == "reasoning"
        assert item.id.startswith("rs_") and item.encrypted_content
        assert bool(item.summary) == (summary is not None)
        assert all(part.text.strip() for part in item.summary)
        # In blocks of 64 as the API's come, unless the limit stopped them.
        assert thought % 64 == 0 or thought == limit
        if effort == "minimal":
            assert thought == 0
    # Reasoning is output: counted in it, and within the limit with the answer.
    assert 0 <= thought <= usage.output_tokens
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    if limit is not None:
        assert usage.output_tokens <= limit
    if kinds == ["reasoning"]:  # the reasoning used the whole budget: no answer at all
        assert answer.status == "incomplete" and thought == limit
        assert answer.incomplete_details is not None
        assert answer.incomplete_details.reason == "max_output_tokens"
        assert answer.output_text == ""
    # Streamed, the same question reasons the same, and the events build the same output.
    # (The terminal event's response: the SDK's `stream()` helper wants `response.completed`,
    # and an answer cut short ends with `response.incomplete`.)
    events = list(client.responses.create(**body, stream=True))
    assert events[-1].type in ("response.completed", "response.incomplete")
    streamed = events[-1].response
    assert streamed.usage == usage
    assert [item.type for item in streamed.output] == kinds
    assert streamed.output_text == answer.output_text
    if kinds[0] == "reasoning":
        first = streamed.output[0]
        assert first.type == "reasoning" and answer.output[0].type == "reasoning"
        assert first.summary == answer.output[0].summary


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    model=st.sampled_from([*REASONING_MODELS, "gpt-4o-mini"]),
    effort=st.sampled_from(EFFORTS),
    limit=st.none() | st.integers(min_value=1, max_value=600),
    n=st.integers(min_value=1, max_value=3),
    stream=st.booleans(),
)
def test_a_chat_completion_bills_its_reasoning_first(
    client: openai.OpenAI,
    model: str,
    effort: str | None,
    limit: int | None,
    n: int,
    stream: bool,
) -> None:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Why?"}]}
    if effort is not None:
        body["reasoning_effort"] = effort
    if limit is not None:
        body["max_completion_tokens"] = limit
    body["n"] = n
    if effort is not None and model not in REASONING_MODELS:
        with pytest.raises(openai.BadRequestError, match="reasoning_effort"):  # (none to make)
            client.chat.completions.create(**body)
        return
    if effort in ("xhigh", "none") and model.startswith("gpt-5"):  # (efforts after gpt-5)
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(**body)
        assert refused.value.code == "unsupported_value"
        return
    if stream:
        chunks = list(
            client.chat.completions.create(
                **body, stream=True, stream_options={"include_usage": True}
            )
        )
        usage = chunks[-1].usage
        texts = [""] * n
        finishes: list[str | None] = [None] * n
        for chunk in chunks:
            for choice in chunk.choices:
                texts[choice.index] += choice.delta.content or ""
                finishes[choice.index] = choice.finish_reason or finishes[choice.index]
    else:
        completion = client.chat.completions.create(**body)
        usage = completion.usage
        texts = [choice.message.content or "" for choice in completion.choices]
        finishes = [choice.finish_reason for choice in completion.choices]
    assert usage is not None and usage.completion_tokens_details is not None
    thought = usage.completion_tokens_details.reasoning_tokens or 0
    if not reasons(model, effort) or effort == "minimal":
        assert thought == 0
    else:
        assert thought % n == 0  # each answer reasoned for itself
        if effort in (None, "medium", "high", "xhigh"):
            assert thought > 0
    assert thought <= usage.completion_tokens
    if limit is not None:
        assert usage.completion_tokens <= limit * n
        if thought == limit * n:  # used up by the reasoning: nothing written, cut for length
            assert texts == [""] * n and finishes == ["length"] * n
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_a_budget_the_reasoning_uses_up_leaves_no_answer(client: openai.OpenAI) -> None:
    """What an app must handle: `max_output_tokens` spent on reasoning, `output_text` empty."""
    answer = client.responses.create(
        model="o4-mini", input="Plan a trip", reasoning={"effort": "high"}, max_output_tokens=16
    )
    assert answer.status == "incomplete"
    assert [item.type for item in answer.output] == ["reasoning"]
    assert answer.usage is not None
    assert answer.usage.output_tokens == answer.usage.output_tokens_details.reasoning_tokens == 16
    chat = client.chat.completions.create(
        model="o4-mini",
        messages=[{"role": "user", "content": "Plan a trip"}],
        reasoning_effort="high",
        max_completion_tokens=16,
    )
    assert chat.choices[0].message.content == "" and chat.choices[0].finish_reason == "length"


@pytest.mark.parametrize("model", REASONING_MODELS)
def test_a_reasoning_model_refuses_another_temperature_in_chat(
    client: openai.OpenAI, model: str
) -> None:
    """What apps passing `temperature=0` met with o1, o3 and gpt-5: the API's 400."""
    ask = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
    for temperature, shown in ((0, "0"), (0.2, "0.2"), (1.5, "1.5")):
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(**ask, temperature=temperature)
        assert refused.value.code == "unsupported_value"
        assert refused.value.param == "temperature"
        assert refused.value.body["message"] == (  # type: ignore[index]
            f"Unsupported value: 'temperature' does not support {shown} with this model. "
            "Only the default (1) value is supported."
        )
    assert client.chat.completions.create(**ask, temperature=1).choices[0].message.content
    assert client.chat.completions.create(**ask).choices[0].message.content
    plain = {**ask, "model": "gpt-4o-mini", "temperature": 0}
    assert client.chat.completions.create(**plain).choices[0].message.content


@pytest.mark.parametrize("model", REASONING_MODELS)
def test_a_reasoning_model_refuses_stop_sequences_in_chat(
    client: openai.OpenAI, model: str
) -> None:
    """What agent frameworks sending their stop words met with gpt-5, gpt-5-mini, o3 and o4-mini
    (huggingface/smolagents#1671, n8n-io/n8n#18149): the API's 400; mockai cut the answer."""
    ask: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
    for stop in ("\nObservation:", ["<end_code>", "Observation:"]):
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(**ask, stop=stop)
        assert refused.value.body == {
            "message": "Unsupported parameter: 'stop' is not supported with this model.",
            "type": "invalid_request_error",
            "param": "stop",
            "code": "unsupported_parameter",
        }
    assert client.chat.completions.create(**ask, stop=None).choices[0].message.content
    # A model that does not reason takes them.
    plain = {**ask, "model": "gpt-4o-mini"}
    assert client.chat.completions.create(**plain, stop=["."]).choices[0].finish_reason


@pytest.mark.parametrize("model", REASONING_MODELS)
def test_a_reasoning_model_refuses_top_p_penalties_and_logprobs_in_chat(
    client: openai.OpenAI, model: str
) -> None:
    """What apps and evaluators sending their sampling defaults met with o1, o3, o4-mini and
    gpt-5-mini (aandrew-me/tgpt#333, nextai-translator#1781, confident-ai/deepeval#2184): the
    API's 400, and a 403 for logprobs; mockai sampled with them and sent logprobs."""
    ask: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
    for name, value in (("top_p", 0.9), ("presence_penalty", 0), ("frequency_penalty", 0.5)):
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(**ask, **{name: value})
        assert refused.value.body == {
            "message": f"Unsupported parameter: '{name}' is not supported with this model.",
            "type": "invalid_request_error",
            "param": name,
            "code": "unsupported_parameter",
        }
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(**ask, logprobs=True, top_logprobs=2)
    assert denied.value.body == {
        "message": "You are not allowed to request logprobs from this model",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert client.chat.completions.create(**ask, logprobs=False, top_p=None).choices
    # A model that does not reason, or one reasoning with effort `none`, samples with them.
    for plain in ({**ask, "model": "gpt-4o-mini"}, {**ask, "model": "gpt-5.1"}):
        answer = client.chat.completions.create(**plain, top_p=0.9, logprobs=True)
        assert answer.choices[0].logprobs is not None


@pytest.mark.parametrize("effort", [None, "none", "low"])
@pytest.mark.parametrize("model", ["gpt-5.1", "gpt-5.2"])
def test_gpt_5_1_and_later_refuse_stop_sequences_whatever_the_effort(
    client: openai.OpenAI, model: str, effort: str | None
) -> None:
    """What smolagents met with gpt-5.1 and gpt-5.2 asked for no effort (huggingface/smolagents
    #1868, #1893): the API's 400. Effort `none` lets them take sampling settings, not `stop`;
    mockai took it, and cut the answer at it."""
    ask: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
    if effort is not None:
        ask["reasoning_effort"] = effort
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**ask, stop=["Observation:"])
    assert refused.value.param == "stop" and refused.value.code == "unsupported_parameter"
    assert client.chat.completions.create(**ask).choices[0].message.content


def test_other_providers_models_do_not_reason_as_openais() -> None:
    """Only the OpenAI and Azure profiles answer this way: another provider's usage is its own.
    (Groq's answers are Groq's: not checked against OpenAI's spec.)"""
    body = {"model": "o3", "messages": [{"role": "user", "content": "Hi"}]}
    with MockServer(log_requests=False) as running:
        openai_usage = httpx.post(running.url + "/chat/completions", json=body, timeout=10)
        details = openai_usage.json()["usage"]["completion_tokens_details"]
        assert details["reasoning_tokens"] > 0
        groq = httpx.post(
            running.url_for("/groq/openai/v1/chat/completions"), json=body, timeout=10
        ).json()
    details = groq["usage"].get("completion_tokens_details") or {}
    assert not details.get("reasoning_tokens")


def test_a_rule_scripts_the_summary_and_the_tokens(tmp_path: Path) -> None:
    scenario = tmp_path / "think.yaml"
    scenario.write_text(
        textwrap.dedent(
            """\
            mockai: 1
            rules:
              - name: think
                match: {user: {contains: plan}}
                reply:
                  content: "Take the train."
                  reasoning: "**Comparing routes**\\n\\nThe user asked: {{ request.user }}"
                  usage: {reasoning_tokens: 700}
            """
        )
    )
    with checked_server(scenarios=[str(scenario)]) as running, sdk(running) as client:
        answer = client.responses.create(
            model="gpt-5", input="plan my trip", reasoning={"summary": "auto"}
        )
        item = answer.output[0]
        assert item.type == "reasoning"
        assert [part.text for part in item.summary] == [
            "**Comparing routes**\n\nThe user asked: plan my trip"
        ]
        assert answer.output_text == "Take the train."
        assert answer.usage is not None
        assert answer.usage.output_tokens_details.reasoning_tokens == 700
        assert answer.usage.output_tokens == 700 + 4  # the answer's own four tokens after it
        # Not asked for a summary: none, as the API sends (the tokens are still spent).
        quiet = client.responses.create(model="gpt-5", input="plan my trip")
        assert quiet.output[0].type == "reasoning" and quiet.output[0].summary == []
        # On any model, the scripted count is billed (a test of the app's cost accounting).
        chat = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "plan it"}]
        )
        assert chat.usage is not None and chat.usage.completion_tokens_details is not None
        assert chat.usage.completion_tokens_details.reasoning_tokens == 700
        assert chat.choices[0].message.content == "Take the train."
        # Within a smaller limit, the reasoning takes it all.
        cut = client.responses.create(model="gpt-5", input="plan my trip", max_output_tokens=300)
        assert [item.type for item in cut.output] == ["reasoning"] and cut.status == "incomplete"


def test_reasoning_items_go_back_as_input_and_into_a_conversation(
    client: openai.OpenAI,
) -> None:
    """An app keeping its own context sends the reasoning item back (with `store: false`, its
    `encrypted_content`, as the Agents SDK does); a conversation keeps and lists it."""
    first = client.responses.create(
        model="gpt-5",
        input="What is 2+2?",
        store=False,
        include=["reasoning.encrypted_content"],
    )
    items: list[Any] = [{"role": "user", "content": "What is 2+2?"}]
    items += [item.model_dump(exclude_none=True) for item in first.output]
    items.append({"role": "user", "content": "And times 3?"})
    second = client.responses.create(model="gpt-5", input=items, store=False)
    assert second.output[0].type == "reasoning" and second.output_text
    # A previous_response_id chain holds the earlier reasoning among its items.
    stored = client.responses.create(model="o3", input="Hello")
    chained = client.responses.create(model="o3", input="Again", previous_response_id=stored.id)
    assert chained.output[0].type == "reasoning"
    conversation = client.conversations.create()
    client.responses.create(model="gpt-5", input="Hi", conversation=conversation.id)
    listed = client.conversations.items.list(conversation.id, order="asc")
    assert [item.type for item in listed.data] == ["message", "reasoning", "message"]


def test_the_same_question_reasons_the_same() -> None:
    """Deterministic: the reasoning tokens and the summary follow the question and the seed."""
    body = {"model": "gpt-5", "input": "Explain tides", "reasoning": {"summary": "detailed"}}

    def asked(seed: int) -> tuple[int, str]:
        with MockServer(seed=seed, log_requests=False) as running:
            answer = httpx.post(running.url + "/responses", json=body, timeout=10).json()
        item = answer["output"][0]
        return answer["usage"]["output_tokens_details"]["reasoning_tokens"], json.dumps(item)

    once, again = asked(0), asked(0)
    assert once == again
    drawn = {asked(seed)[0] for seed in range(1, 9)}
    assert len(drawn) > 1  # (the seed draws another amount)


# --- the reasoning hunt's fixes ------------------------------------------------------------------

THINKING = """\
mockai: 1
rules:
  - name: cut
    match: {user: {contains: cut}}
    faults: {truncate_after: 7}
    reply:
      content: "The answer is forty-two."
      reasoning: "First I think about it, then I answer."
  - name: refuse
    match: {user: {contains: refuse}}
    reply:
      refusal: "I can't help with that."
      usage: {reasoning_tokens: 20}
  - name: picky
    match: {user: {contains: picky}}
    reply:
      content: "fine"
      reasoning: "{{ request.messages[3].content }}"
"""


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    path = tmp_path_factory.mktemp("thinking") / "thinking.yaml"
    path.write_text(THINKING)
    with checked_server(scenarios=[str(path)]) as running, sdk(running) as client:
        yield client


def test_a_stream_cut_inside_the_summary_keeps_what_the_client_got(
    scripted: openai.OpenAI,
) -> None:
    """Stored as far as its events went: the summary's text deltas too (they were dropped, so a
    chain or a conversation continuing from it lost them)."""
    events = list(
        scripted.responses.create(
            model="o3", input="cut here", reasoning={"summary": "auto"}, stream=True
        )
    )
    got = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert got and not any(e.type == "response.reasoning_summary_text.done" for e in events)
    created = next(e for e in events if e.type == "response.created")
    stored = scripted.responses.retrieve(created.response.id)
    item = stored.output[0]
    assert item.type == "reasoning" and item.status == "incomplete"
    assert [part.text for part in item.summary] == [got]


def test_a_refusal_the_reasoning_left_no_room_for_is_no_answer(scripted: openai.OpenAI) -> None:
    """An empty refusal (`refusal: ""`, a refusal part) read as "the model refused"."""
    ask = [{"role": "user", "content": "refuse this"}]
    chat = scripted.chat.completions.create(model="o3", messages=ask, max_completion_tokens=20)
    message = chat.choices[0].message
    assert (message.content, message.refusal, chat.choices[0].finish_reason) == ("", None, "length")
    answer = scripted.responses.create(model="o3", input="refuse this", max_output_tokens=20)
    assert [item.type for item in answer.output] == ["reasoning"]
    # With room, the refusal as scripted (cut where the room ends).
    room = scripted.chat.completions.create(model="o3", messages=ask, max_completion_tokens=23)
    refusal = room.choices[0].message.refusal
    assert refusal and "I can't help with that.".startswith(refusal)


def test_a_summary_template_runs_only_for_a_request_that_asks_for_the_summary(
    scripted: openai.OpenAI,
) -> None:
    """A chat request, or a Responses one asking no summary, never sends it: a template that
    fails on them failed them (`mockai_template_error`)."""
    ask = [{"role": "user", "content": "picky"}]
    assert scripted.chat.completions.create(model="gpt-4o-mini", messages=ask).choices
    assert scripted.responses.create(model="o3", input="picky").output_text == "fine"
    with pytest.raises(openai.BadRequestError, match=r"reply\.reasoning"):
        scripted.responses.create(model="o3", input="picky", reasoning={"summary": "auto"})


@pytest.mark.parametrize("field", ["effort", "summary"])
@pytest.mark.parametrize("value", [5, True, {"level": "high"}, ["low"]])
def test_a_mistyped_reasoning_setting_is_refused_without_strict_requests(
    client: openai.OpenAI, field: str, value: Any
) -> None:
    """As chat's `reasoning_effort: 5` is: the type is always the API's to check (a value
    outside the enum passes without `--strict-requests`, as spec releases add values)."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="o3", input="Hi", reasoning={field: value})
    assert refused.value.code == "invalid_type"
    assert refused.value.param == f"reasoning.{field}"
    new_value = client.responses.create(model="o3", input="Hi", reasoning={field: "turbo"})
    assert new_value.output_text


def test_generate_summary_is_the_deprecated_name_of_summary(client: openai.OpenAI) -> None:
    answer = client.responses.create(
        model="o3", input="Hi", reasoning={"generate_summary": "detailed"}
    )
    item = answer.output[0]
    assert item.type == "reasoning" and len(item.summary) == 1
    assert answer.reasoning is not None and answer.reasoning.summary == "detailed"


@pytest.mark.parametrize("model", [*REASONING_MODELS, "o3-2025-04-16"])
@pytest.mark.parametrize("key", ["summary", "generate_summary"])
def test_a_concise_summary_came_after_gpt_5(client: openai.OpenAI, model: str, key: str) -> None:
    """The spec: "`concise` is supported for `computer-use-preview` models and all reasoning
    models after `gpt-5`": the o-series and gpt-5 refuse it with the API's 400; mockai
    summarised, so an app asking o4-mini for a concise summary passed here and failed against
    OpenAI. gpt-5.1 and later take it."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=model, input="Hi", reasoning={key: "concise"})
    assert refused.value.body == {
        "message": f"Unsupported value: 'concise' is not supported with the '{model}' model. "
        "Supported values are: 'auto' and 'detailed'.",
        "type": "invalid_request_error",
        "param": f"reasoning.{key}",
        "code": "unsupported_value",
    }
    later = client.responses.create(
        model="gpt-5.1", input="Hi", reasoning={"effort": "low", "summary": "concise"}
    )
    item = later.output[0]
    assert item.type == "reasoning" and item.summary


def test_another_providers_reasoning_model_takes_max_tokens() -> None:
    """OpenAI's 400 for `max_tokens` on its reasoning models is OpenAI's (and Azure's): under
    another provider's profile (OpenRouter's `max_tokens` is its limit field) it is not sent."""
    body = {"model": "o3", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 50}
    with MockServer(log_requests=False) as running:
        refused = httpx.post(running.url + "/chat/completions", json=body, timeout=10)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "unsupported_parameter"
        for prefix in ("/openrouter/api/v1", "/groq/openai/v1", "/litellm/v1"):
            taken = httpx.post(running.url_for(prefix + "/chat/completions"), json=body, timeout=10)
            assert taken.status_code == 200, (prefix, taken.text)


# --- which models reason, and the sampling settings they refuse (the JS clients' hunt) ----------


@pytest.mark.parametrize(
    "model", ["gpt-4o", "gpt-4o-mini", "gpt-4.1-nano", "gpt-4o-2024-08-06", "ft:gpt-4.1:acme::x1"]
)
@pytest.mark.parametrize("effort", ["low", "none"])
def test_a_model_that_does_not_reason_refuses_a_reasoning_effort(
    client: openai.OpenAI, model: str, effort: str
) -> None:
    """The API's 400 for `reasoning.effort` on gpt-4o or gpt-4.1 (an app sending its effort to
    every model fails against it); mockai answered, and reported the effort it ignored."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=model, input="Hi", reasoning={"effort": effort})
    assert refused.value.body == {
        "message": "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
        "type": "invalid_request_error",
        "param": "reasoning.effort",
        "code": "unsupported_parameter",
    }
    with pytest.raises(openai.BadRequestError, match=r"reasoning\.effort"):
        client.responses.input_tokens.count(model=model, input="Hi", reasoning={"effort": effort})
    # A summary alone, or a null effort, is taken; a model only guessed at may be any model.
    for reasoning in ({"summary": "auto"}, {"effort": None}):
        answered = client.responses.create(model=model, input="Hi", reasoning=reasoning)  # type: ignore[arg-type]
        assert [item.type for item in answered.output] == ["message"]
    assert client.responses.create(
        model="my-local-model", input="Hi", reasoning={"effort": effort}
    ).output_text


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "gpt-4o-mini", "gpt-4o-2024-08-06"])
@pytest.mark.parametrize("verbosity", ["low", "high"])
def test_a_model_before_gpt_5_takes_only_medium_verbosity(
    client: openai.OpenAI, model: str, verbosity: str
) -> None:
    """The API's 400 for `text.verbosity` other than `medium` on a model before gpt-5, as apps
    setting `low` met it with gpt-4.1-mini and gpt-4o-mini; mockai answered. gpt-5 and later
    take all three, and a model only guessed at may be any model."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=model, input="Hi", text={"verbosity": verbosity})
    assert refused.value.body == {
        "message": f"Unsupported value: '{verbosity}' is not supported with the '{model}' "
        "model. Supported values are: 'medium'.",
        "type": "invalid_request_error",
        "param": "text.verbosity",
        "code": "unsupported_value",
    }
    assert client.responses.create(model=model, input="Hi", text={"verbosity": "medium"})
    for other in ("gpt-5", "gpt-5.1", "my-local-model"):
        answered = client.responses.create(model=other, input="Hi", text={"verbosity": verbosity})
        assert answered.text is not None and answered.text.verbosity == verbosity


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini", "gpt-4.1-nano", "ft:gpt-4.1:acme::x1"])
@pytest.mark.parametrize("effort", ["low", "none"])
def test_a_chat_model_that_does_not_reason_refuses_a_reasoning_effort(
    client: openai.OpenAI, model: str, effort: str
) -> None:
    """Chat's 400 for `reasoning_effort` on gpt-4o or gpt-4.1, in its own words (an argument
    it does not know: no param, no code), as apps that send an effort to every model report it;
    mockai answered."""
    ask: list[Any] = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=model, messages=ask, reasoning_effort=effort)  # type: ignore[arg-type]
    assert refused.value.body == {
        "message": "Unrecognized request argument supplied: reasoning_effort",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    # A null effort is taken (apps that set it to null for such models), and so is any effort
    # for a reasoning model or a model the catalog only guesses at.
    assert client.chat.completions.create(model=model, messages=ask, reasoning_effort=None)
    for other in ("gpt-5-mini", "o3", "my-local-model"):
        assert client.chat.completions.create(model=other, messages=ask, reasoning_effort="low")


def test_gpt_5_chat_latest_is_a_chat_model_that_does_not_reason(client: openai.OpenAI) -> None:
    """Named after gpt-5, it answers without reasoning: the clients send it `temperature` and
    `max_tokens` (LangChain.js and the AI SDK treat `gpt-5-chat*` as a chat model), and the API
    takes them."""
    for model in ("gpt-5-chat-latest", "gpt-5-chat-latest-2025-08-07"):
        chat = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Hi"}],
            temperature=0,
            max_tokens=50,
        )
        assert chat.usage is not None and chat.usage.completion_tokens_details is not None
        assert chat.usage.completion_tokens_details.reasoning_tokens == 0
        answer = client.responses.create(model=model, input="Hi", temperature=0.2)
        assert [item.type for item in answer.output] == ["message"]


def test_gpt_5_1_and_later_reason_only_when_asked_and_then_refuse_sampling(
    client: openai.OpenAI,
) -> None:
    """gpt-5.1 and later default to effort `none`, and take `temperature` then; asked to reason,
    they refuse it as gpt-5 does."""
    ask = [{"role": "user", "content": "Hi"}]
    for model in ("gpt-5.1", "gpt-5.2", "gpt-5.1-2025-11-13"):
        plain = client.chat.completions.create(model=model, messages=ask, temperature=0)
        assert plain.usage is not None and plain.usage.completion_tokens_details is not None
        assert plain.usage.completion_tokens_details.reasoning_tokens == 0
        answer = client.responses.create(model=model, input="Hi", temperature=0.2)
        assert [item.type for item in answer.output] == ["message"]
        thinking = client.responses.create(model=model, input="Hi", reasoning={"effort": "low"})
        assert thinking.output[0].type == "reasoning"
        with pytest.raises(openai.BadRequestError, match="does not support 0 with this model"):
            client.chat.completions.create(
                model=model, messages=ask, temperature=0, reasoning_effort="high"
            )
    # gpt-5 itself always reasons: `none` came with gpt-5.1 (its 400 below).
    with pytest.raises(openai.BadRequestError, match="'none'"):
        client.chat.completions.create(
            model="gpt-5", messages=ask, temperature=0, reasoning_effort="none"
        )


@pytest.mark.parametrize("model", ["gpt-5", "gpt-5-mini", "gpt-5-nano-2025-08-07"])
def test_gpt_5_and_its_minis_refuse_the_none_effort_that_came_after_them(
    client: openai.OpenAI, model: str
) -> None:
    """gpt-5, gpt-5-mini and gpt-5-nano take minimal, low, medium and high (OpenAI's GPT-5
    model page; litellm marks them `supports_none_reasoning_effort: false` for the API's 400,
    BerriAI/litellm#40670): an app written for gpt-5.1's `none` fails against them. mockai
    answered, reasoning nothing."""
    supported = "'minimal', 'low', 'medium', and 'high'"
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=model, input="Hi", reasoning={"effort": "none"})
    assert refused.value.body == {
        "message": f"Unsupported value: 'none' is not supported with the '{model}' model. "
        f"Supported values are: {supported}.",
        "type": "invalid_request_error",
        "param": "reasoning.effort",
        "code": "unsupported_value",
    }
    messages: list[Any] = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=model, messages=messages, reasoning_effort="none")
    assert refused.value.body == {
        "message": "Unsupported value: 'reasoning_effort' does not support 'none' with this "
        f"model. Supported values are: {supported}.",
        "type": "invalid_request_error",
        "param": "reasoning_effort",
        "code": "unsupported_value",
    }
    # gpt-5.1 and later take it, and reason nothing; o3 is not refused (no source says).
    for other in ("gpt-5.1", "gpt-5.2", "o3"):
        answer = client.chat.completions.create(
            model=other, messages=messages, reasoning_effort="none"
        )
        assert answer.usage is not None and answer.usage.completion_tokens_details is not None
        assert answer.usage.completion_tokens_details.reasoning_tokens == 0


@pytest.mark.parametrize(
    ("model", "efforts"),
    [
        ("gpt-5.1", "'none', 'low', 'medium', and 'high'"),
        ("gpt-5.1-2025-11-13", "'none', 'low', 'medium', and 'high'"),
        ("gpt-5.2", "'none', 'low', 'medium', 'high', and 'xhigh'"),
    ],
)
def test_gpt_5_1_and_later_refuse_the_minimal_effort_they_replaced_with_none(
    client: openai.OpenAI, model: str, efforts: str
) -> None:
    """The API's 400 (openai/openai-agents-python#2089): an app moving from gpt-5 to gpt-5.1
    with `minimal` fails against it; mockai answered, reasoning 0 tokens."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=model, input="Hi", reasoning={"effort": "minimal"})
    assert refused.value.body == {
        "message": f"Unsupported value: 'minimal' is not supported with the '{model}' model. "
        f"Supported values are: {efforts}.",
        "type": "invalid_request_error",
        "param": "reasoning.effort",
        "code": "unsupported_value",
    }
    assert client.responses.create(model=model, input="Hi", reasoning={"effort": "none"}).output
    # gpt-5 itself takes `minimal`.
    for other in ("gpt-5", "gpt-5-mini"):
        answer = client.responses.create(model=other, input="Hi", reasoning={"effort": "minimal"})
        assert answer.usage is not None
        assert answer.usage.output_tokens_details.reasoning_tokens == 0


@pytest.mark.parametrize(
    ("model", "efforts"),
    [
        ("gpt-5.1", "'none', 'low', 'medium', and 'high'"),
        ("gpt-5.2", "'none', 'low', 'medium', 'high', and 'xhigh'"),
    ],
)
def test_gpt_5_1_and_later_refuse_a_minimal_reasoning_effort_in_chat_too(
    client: openai.OpenAI, model: str, efforts: str
) -> None:
    """Chat's 400 for `reasoning_effort: "minimal"` on gpt-5.1 and later, in its own words
    (nextai-translator#1841, livekit/agents#3966), as the Responses API refuses it; mockai
    answered, reasoning 0 tokens."""
    ask: list[Any] = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=model, messages=ask, reasoning_effort="minimal")
    assert refused.value.body == {
        "message": "Unsupported value: 'reasoning_effort' does not support 'minimal' with this "
        f"model. Supported values are: {efforts}.",
        "type": "invalid_request_error",
        "param": "reasoning_effort",
        "code": "unsupported_value",
    }
    assert client.chat.completions.create(model=model, messages=ask, reasoning_effort="none")
    # gpt-5 itself takes `minimal`.
    answer = client.chat.completions.create(model="gpt-5", messages=ask, reasoning_effort="minimal")
    assert answer.usage is not None
    assert answer.usage.completion_tokens_details is not None
    assert answer.usage.completion_tokens_details.reasoning_tokens == 0


@pytest.mark.parametrize("model", REASONING_MODELS)
@pytest.mark.parametrize(
    ("name", "value"), [("temperature", 0.2), ("temperature", 1), ("top_p", 0.5)]
)
def test_a_reasoning_model_takes_no_sampling_settings_in_responses(
    client: openai.OpenAI, model: str, name: str, value: float
) -> None:
    """The Responses API's 400 for any `temperature` or `top_p` on a model that reasons (as
    reported with gpt-5: openai/openai-python#2540); none given, or effort `none`, it answers."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=model, input="Hi", **{name: value})
    assert refused.value.param == name
    assert refused.value.body["message"] == (  # type: ignore[index]
        f"Unsupported parameter: '{name}' is not supported with this model."
    )
    assert client.responses.create(model=model, input="Hi", **{name: None}).output_text


@pytest.mark.parametrize("model", REASONING_MODELS)
def test_a_reasoning_model_refuses_logprobs_in_responses(client: openai.OpenAI, model: str) -> None:
    """The Responses API's 400 for logprobs asked of a model that reasons (as vllm-project/vllm
    #23319 quotes it for gpt-5-mini): mockai sent logprobs such a model never has, so an app
    asking for them passed here and failed against OpenAI. With effort `none` it answers them."""
    include: list[Any] = ["message.output_text.logprobs"]
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=model, input="Hi", include=include, top_logprobs=3)
    assert refused.value.body == {  # type: ignore[comparison-overlap]
        "message": "logprobs are not supported with reasoning models.",
        "type": "invalid_request_error",
        "param": "include",
        "code": "unsupported_parameter",
    }
    plain = client.responses.create(model="gpt-5.1", input="Hi", include=include)
    assert plain.output[0].content[0].logprobs  # type: ignore[union-attr]


# --- the summary's text through every stage, for any text ---------------------------------------


@pytest.fixture(scope="module")
def scripting() -> Iterator[MockServer]:
    with checked_server() as running:
        yield running


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    # (no `{`: the text is a template, and `{{`, `{%`, `{#` open its syntax)
    text=st.text(
        st.characters(blacklist_characters="{", blacklist_categories=("Cs",)), max_size=300
    ),
    cut=st.none() | st.integers(min_value=3, max_value=40),
)
def test_a_scripted_summary_streams_and_is_stored_as_its_client_got_it(
    scripting: MockServer, text: str, cut: int | None
) -> None:
    """For any summary text (Unicode, empty, long): the JSON answer holds it whole; the stream's
    deltas join to it; a stream a fault cuts after `cut` events is stored with exactly the
    deltas its client got (the store builds the summary from the events)."""
    scripting.clear_rules()
    rule: dict[str, Any] = {"name": "think", "reply": {"content": "ok", "reasoning": text}}
    if cut is not None:
        rule["faults"] = {"truncate_after": cut}
    scripting.add_rule(rule)
    with sdk(scripting) as client:
        ask = {"model": "o3", "input": "why", "reasoning": {"summary": "auto"}}
        if cut is None:
            answer = client.responses.create(**ask)
            assert answer.output[0].type == "reasoning"
            assert [part.text for part in answer.output[0].summary] == [text]
        events: list[Any] = []
        with contextlib.suppress(openai.APIError, httpx.HTTPError):
            events.extend(client.responses.create(**ask, stream=True))
        got = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
        done = [e.text for e in events if e.type == "response.reasoning_summary_text.done"]
        assert done in ([], [got])  # (the done event, when it came, repeats the deltas)
        if cut is None:
            assert got == text and done == [text]
        created = next(e for e in events if e.type == "response.created")
        stored = client.responses.retrieve(created.response.id).output
        parts = [part.text for part in stored[0].summary] if stored else []
        assert parts == [got] or (parts == [] and got == "")  # as far as its events went


@pytest.mark.parametrize(
    ("model", "supported"),
    [
        ("gpt-5", "'minimal', 'low', 'medium', and 'high'"),
        ("gpt-5-mini-2025-08-07", "'minimal', 'low', 'medium', and 'high'"),
        ("gpt-5.1", "'none', 'low', 'medium', and 'high'"),
    ],
)
def test_models_before_xhigh_refuse_it(client: openai.OpenAI, model: str, supported: str) -> None:
    """What an app defaulting to `xhigh` met with gpt-5.1 and gpt-5-mini
    (CortexReach/memory-lancedb-pro#201, microsoft/vscode#301045): the API's 400, in each
    API's words. mockai reasoned at `xhigh`, though its own 400 for `minimal` on gpt-5.1 listed
    the efforts the model takes without it."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=model, input="Hi", reasoning={"effort": "xhigh"})
    assert refused.value.body == {
        "message": f"Unsupported value: 'xhigh' is not supported with the '{model}' model. "
        f"Supported values are: {supported}.",
        "type": "invalid_request_error",
        "param": "reasoning.effort",
        "code": "unsupported_value",
    }
    messages: list[Any] = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=model, messages=messages, reasoning_effort="xhigh")
    assert refused.value.body == {
        "message": "Unsupported value: 'reasoning_effort' does not support 'xhigh' with this "
        f"model. Supported values are: {supported}.",
        "type": "invalid_request_error",
        "param": "reasoning_effort",
        "code": "unsupported_value",
    }
    # The models after them take it (gpt-5.2, gpt-5.1-codex-max), and they take `high`.
    for other, effort in ((model, "high"), ("gpt-5.2", "xhigh"), ("gpt-5.1-codex-max", "xhigh")):
        answer = client.responses.create(model=other, input="Hi", reasoning={"effort": effort})
        assert answer.reasoning is not None and answer.reasoning.effort == effort


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1-mini", "gpt-4o-mini-2024-07-18"])
def test_a_chat_model_before_gpt_5_takes_only_medium_verbosity(
    client: openai.OpenAI, model: str
) -> None:
    """Chat's 400 for `verbosity: "low"` on gpt-4o, as google-deepmind/concordia#164 met it (the
    Responses API's `text.verbosity` has its own words); mockai answered it."""
    messages: list[Any] = [{"role": "user", "content": "Hi"}]
    for asked in ("low", "high"):
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model=model, messages=messages, verbosity=asked)
        assert refused.value.body == {
            "message": f"Unsupported value: 'verbosity' does not support '{asked}' with this "
            "model. Supported values are: 'medium'.",
            "type": "invalid_request_error",
            "param": "verbosity",
            "code": "unsupported_value",
        }
    assert client.chat.completions.create(model=model, messages=messages, verbosity="medium")
    # gpt-5 and later take all three; a name the catalog only guesses at is not refused.
    for other in ("gpt-5-mini", "gpt-5.1", "my-finetune"):
        assert client.chat.completions.create(model=other, messages=messages, verbosity="low")
