"""Provider profiles against docs/providers.md: the in-band error in the provider's envelope,
Fireworks' 402, Groq's `service_tier`, Anthropic's empty fields, and a stream fault landing on
the same chunk on Azure's path as on /v1.

Facts: shared/reference/providers.md (the section each test names). Real servers, the real SDK
or httpx; profile answers are the providers', so the server is not the conformance-checked one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profile_support import HELLO, KEY, MODELS, chat, chunks, frames, sdk

from mockai import MockServer
from mockai.delivery.deliver import plan_writes
from mockai.delivery.faults import Faults
from mockai.profiles import PROFILES
from mockai.wire.outgoing import EventStream

# (a real server per example would be slow: the module's server answers every example)
PROPERTY = settings(
    max_examples=20,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
STORY = [{"role": "user", "content": "Tell me a story"}]


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


def _last_data(response: httpx.Response) -> Any:
    """The JSON of a stream's last `data:` event."""
    data = [frame for frame in frames(response) if frame.startswith("data: ")]
    return json.loads(data[-1][6:])


# --- 1. the in-band error goes out in the provider's envelope --------------------------------------

# Every profile that says nothing of its own about a broken stream (the others send what was
# observed of that provider: OpenRouter's error chunk, Groq's `x_groq.error`, vLLM's, ...).
_WITHOUT_OWN_FRAME = sorted(
    name
    for name, profile in PROFILES.items()
    if profile.chat is None or profile.chat.error_frame is None
)
# The error a broken stream reports, scripted as a JSON answer: the same error.
_SAME_ERROR = {
    "status": 500,
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error",
    "code": "server_error",
}


@pytest.fixture(scope="module")
def scripted() -> Iterator[MockServer]:
    """A server whose one rule answers every chat request with that error (a server with rules
    answers no other request: the module's server stays without)."""
    with MockServer(log_requests=False) as running:
        running.add_rule({"name": "same-error", "error": _SAME_ERROR})
        yield running


@pytest.mark.parametrize("provider", _WITHOUT_OWN_FRAME)
def test_in_band_error_is_the_providers_json_error_body(
    server: MockServer, scripted: MockServer, provider: str
) -> None:
    """providers.md §3 (Ollama: `api_error`, `code: null`), §9 (Mistral's top-level object),
    §12 (Gemini): docs/providers.md "Every error goes out in the provider's envelope"."""
    answered = chat(scripted, provider)
    assert answered.status_code == 500
    expected = answered.json()
    if isinstance(expected, list):  # Gemini's array: one SSE event is its one element
        assert len(expected) == 1
        expected = expected[0]
    broken = chat(
        server,
        provider,
        messages=STORY,
        stream=True,
        headers={"x-mockai-fault": "error_event_after=2"},
    )
    assert broken.status_code == 200
    assert _last_data(broken) == expected


def test_ollama_in_band_error_has_its_type(server: MockServer) -> None:
    """providers.md §3: Ollama's server errors are `api_error`, with `code: null`."""
    broken = chat(
        server,
        "ollama",
        messages=STORY,
        stream=True,
        headers={"x-mockai-fault": "error_event_after=1"},
    )
    error = _last_data(broken)["error"]
    assert (error["type"], error["code"], error["param"]) == ("api_error", None, None)


def test_sdk_raises_on_geminis_in_band_error(server: MockServer) -> None:
    """Gemini's error array is one object in an SSE event (its own streams' `{"error": ...}`):
    the SDK, which looks for a top-level `error`, still raises on it mid-stream."""
    with sdk(server, "gemini") as client:
        stream = client.chat.completions.create(
            model=MODELS["gemini"],
            messages=STORY,  # type: ignore[arg-type]
            stream=True,
            extra_headers={"x-mockai-fault": "error_event_after=2"},
        )
        with pytest.raises(openai.APIError, match="The server had an error"):
            for _ in stream:
                pass


# --- 2. Fireworks' insufficient_quota is its 402 (billing), not 412 (suspended) -----------------


def test_fireworks_insufficient_quota_is_a_billing_402(server: MockServer) -> None:
    """providers.md §8: 402 (billing), 412 (account suspended)."""
    with sdk(server, "fireworks") as client, pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(
            model=MODELS["fireworks"],
            messages=HELLO,  # type: ignore[arg-type]
            extra_headers={"x-mockai-fault": "insufficient_quota"},
        )
    assert refused.value.status_code == 402
    message = refused.value.body["message"]  # type: ignore[index]
    assert "suspended" not in message.lower()
    assert message == "Payment required: billing problem on the account."


# --- 3. Groq answers the service tier asked for ------------------------------------------------

_ECHOED = ("on_demand", "flex", "performance")


def _groq_tier(requested: Any) -> str:
    # The reference does not say what Groq's `auto` resolves to: mockai says `on_demand`.
    return requested if requested in _ECHOED else "on_demand"


@pytest.mark.parametrize("tier", [*_ECHOED, "auto", None])
def test_groq_answers_the_requested_service_tier(server: MockServer, tier: str | None) -> None:
    """providers.md §1: `service_tier` is a request field and a top-level response field."""
    body = {"service_tier": tier} if tier is not None else {}
    answered = chat(server, "groq", **body)
    assert answered.json()["service_tier"] == _groq_tier(tier)
    streamed = chat(server, "groq", stream=True, **body)
    assert {chunk.get("service_tier") for chunk in chunks(streamed)} == {_groq_tier(tier)}


@PROPERTY
@given(
    tier=st.one_of(
        st.sampled_from([*_ECHOED, "auto", "default", "priority"]),
        st.text(max_size=12),
        st.integers(),
        st.none(),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )
)
def test_groq_service_tier_is_the_request_or_on_demand(server: MockServer, tier: Any) -> None:
    """Whatever JSON a client sends as `service_tier`: a clear refusal or an answer that names a
    tier Groq serves (the tier asked for, or `on_demand`), never a 500."""
    answered = chat(server, "groq", service_tier=tier)
    assert answered.status_code in (200, 400), answered.text
    if answered.status_code == 200:
        assert answered.json()["service_tier"] == _groq_tier(tier)


# --- 4. Anthropic's always-empty fields are there, and empty ------------------------------------

_EMPTY_TOP = ("service_tier", "system_fingerprint")
_EMPTY_USAGE = ("prompt_tokens_details", "completion_tokens_details")


def test_anthropic_answer_has_its_empty_fields(server: MockServer) -> None:
    """providers.md §6: these response fields and `openai-processing-ms` are always empty."""
    answered = chat(server, "anthropic")
    body = answered.json()
    assert {name: body[name] for name in _EMPTY_TOP} == dict.fromkeys(_EMPTY_TOP)
    assert {name: body["usage"][name] for name in _EMPTY_USAGE} == dict.fromkeys(_EMPTY_USAGE)
    assert answered.headers["openai-processing-ms"] == ""


def test_anthropic_stream_chunks_have_the_empty_fields(server: MockServer) -> None:
    streamed = chat(server, "anthropic", stream=True, stream_options={"include_usage": True})
    assert streamed.headers["openai-processing-ms"] == ""
    every = chunks(streamed)
    for chunk in every:
        assert {name: chunk[name] for name in _EMPTY_TOP} == dict.fromkeys(_EMPTY_TOP)
    usage = every[-1]["usage"]
    assert {name: usage[name] for name in _EMPTY_USAGE} == dict.fromkeys(_EMPTY_USAGE)


def test_anthropic_error_has_an_empty_processing_time(server: MockServer) -> None:
    refused = chat(server, "anthropic", headers={"x-mockai-fault": "rate_limit"})
    assert refused.status_code == 429
    assert refused.headers["openai-processing-ms"] == ""


def test_anthropic_empty_fields_read_as_none_by_the_sdk_and_langchain(server: MockServer) -> None:
    """The SDKs type these optional: sent as null, the SDK has them (set, None); LangChain's
    usage still adds up."""
    from langchain_openai import ChatOpenAI

    with sdk(server, "anthropic") as client:
        reply = client.chat.completions.create(model=MODELS["anthropic"], messages=HELLO)  # type: ignore[arg-type]
    assert set(_EMPTY_TOP) <= reply.model_fields_set
    assert (reply.service_tier, reply.system_fingerprint) == (None, None)
    assert reply.usage is not None and set(_EMPTY_USAGE) <= reply.usage.model_fields_set
    assert reply.usage.prompt_tokens_details is None
    model = ChatOpenAI(
        model=MODELS["anthropic"],
        base_url=server.provider_url("anthropic"),
        api_key=KEY,  # type: ignore[arg-type]
        max_retries=0,
    )
    message = model.invoke("Hello there")
    assert message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] == reply.usage.total_tokens


# --- 5. a stream fault lands on the same chunk on Azure's path as on /v1 -----------------------


def _seen(response: httpx.Response) -> list[Any]:
    """What a client reads of each event, without Azure's opening filter frame or its extras:
    the choices' deltas and finish reasons, an error, or that it was not JSON."""
    seen: list[Any] = []
    for frame in frames(response):
        try:
            chunk = json.loads(frame.removeprefix("data: "))
        except ValueError:
            seen.append("not JSON")
            continue
        if not isinstance(chunk, dict):
            seen.append(chunk)
        elif "prompt_filter_results" in chunk and chunk.get("choices") == []:
            continue  # Azure's preamble: sent first, no chunk of the answer
        elif "error" in chunk:
            seen.append({"error": chunk["error"]})
        else:
            seen.append([(c.get("delta"), c.get("finish_reason")) for c in chunk["choices"]])
    return seen


def _azure_preamble_first(response: httpx.Response) -> bool:
    first = json.loads(frames(response)[0][6:])
    return first["choices"] == [] and "prompt_filter_results" in first


@pytest.mark.parametrize(
    "fault", ["truncate_after", "error_event_after", "malformed_chunk", "duplicate_chunk"]
)
@pytest.mark.parametrize("number", [1, 2, 3])
def test_stream_fault_lands_on_the_same_chunk_on_azure(
    server: MockServer, fault: str, number: int
) -> None:
    """docs/faults.md: a stream fault "lands on the same chunk on every provider's path"."""
    header = {"x-mockai-fault": f"{fault}={number}"}
    seen = {}
    for provider in ("openai", "azure"):
        response = chat(
            server, provider, model="gpt-4o-mini", messages=STORY, stream=True, headers=header
        )
        assert response.status_code == 200
        seen[provider] = _seen(response)
    assert _azure_preamble_first(response)  # (still sent, first)
    assert seen["azure"] == seen["openai"]


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(
    body=st.integers(min_value=0, max_value=6),
    tail=st.integers(min_value=1, max_value=3),
    preamble=st.integers(min_value=0, max_value=2),
    fault=st.sampled_from(
        [
            "truncate_after",
            "error_event_after",
            "disconnect_after",
            "stall_after",
            "malformed_chunk",
        ]
    ),
    number=st.integers(min_value=1, max_value=8),
)
def test_a_preamble_shifts_no_fault(
    body: int, tail: int, preamble: int, fault: str, number: int
) -> None:
    """The same stream with a preamble before it is cut, or broken, at the same chunk: the
    preamble goes out first, then exactly what goes out without it (how it ends the same)."""
    chunks_ = [b'data: {"n": %d}\n\n' % index for index in range(body + tail)]
    leading = [b'data: {"preamble": %d}\n\n' % index for index in range(preamble)]
    faults = Faults(**{fault: number})
    plain, plain_end = plan_writes(EventStream(frames=chunks_, tail=tail), faults)
    shaped, shaped_end = plan_writes(
        EventStream(frames=leading + chunks_, tail=tail, preamble=preamble), faults
    )
    assert shaped_end == plain_end
    assert [w.data for w in shaped] == leading + [w.data for w in plain]
