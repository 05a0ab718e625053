"""The Responses API through the real SDK: JSON, the event stream, the stream helper, tools."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pydantic
import pytest

from mockai import MockServer

MODEL = "gpt-4o-mini"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def test_create(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="Say hello", instructions="Be brief")
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed"
    assert response.instructions == "Be brief"
    assert response.output_text and len(response.output_text.split()) >= 5
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_empty_body_is_valid(server: MockServer) -> None:
    answer = httpx.post(server.url + "/responses", json={})
    assert answer.status_code == 200
    assert answer.json()["status"] == "completed"


def test_stream_events(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=MODEL, input="Say hello", stream=True))
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    done = next(e for e in events if e.type == "response.output_text.done")
    assert "".join(d.delta for d in deltas) == done.text
    assert all(d.logprobs == [] for d in deltas)
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1


def test_stream_helper_final_response(client: openai.OpenAI) -> None:
    whole = client.responses.create(model=MODEL, input="Say hello")
    with client.responses.stream(model=MODEL, input="Say hello") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.output_text == text == whole.output_text


def test_function_call_round_trip(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=MODEL, input="What's the weather in Paris?", tools=[WEATHER]
    )  # type: ignore[list-item]
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and call.call_id.startswith("call_")
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "21C, clear"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert "21C, clear" in second.output_text
    assert not [item for item in second.output if item.type == "function_call"]


def test_streamed_function_call(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model=MODEL,
        input="weather in Oslo",
        tools=[WEATHER],
        tool_choice="required",  # type: ignore[list-item]
    ) as stream:
        deltas = "".join(
            e.delta for e in stream if e.type == "response.function_call_arguments.delta"
        )
        final = stream.get_final_response()
    (call,) = [item for item in final.output if item.type == "function_call"]
    assert call.arguments == deltas
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])


class Invoice(pydantic.BaseModel):
    number: str
    total: float
    paid: bool


def test_text_format_json_schema(client: openai.OpenAI) -> None:
    response = client.responses.parse(model=MODEL, input="Extract the invoice", text_format=Invoice)
    assert isinstance(response.output_parsed, Invoice)


def test_max_output_tokens_gives_incomplete(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="Say hello", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


@pytest.mark.asyncio
async def test_async_stream_helper(aclient: openai.AsyncOpenAI) -> None:
    async with aclient.responses.stream(model=MODEL, input="Say hello") as stream:
        final = await stream.get_final_response()
    assert final.output_text


def test_delta_events_carry_obfuscation_padding(server: MockServer) -> None:
    def events(**options: object) -> list[dict[str, object]]:
        body = {"model": MODEL, "input": "Tell me a story", "stream": True, **options}
        raw = httpx.post(server.url + "/responses", json=body).text
        return [
            json.loads(line.removeprefix("data: "))
            for line in raw.splitlines()
            if line.startswith("data: ")
        ]

    padded = events()
    deltas = [e for e in padded if str(e["type"]).endswith(".delta")]
    assert deltas and all(isinstance(e["obfuscation"], str) and e["obfuscation"] for e in deltas)
    assert not any("obfuscation" in e for e in padded if e not in deltas)
    plain = events(stream_options={"include_obfuscation": False})
    assert not any("obfuscation" in e for e in plain)
    assert [e["type"] for e in plain] == [e["type"] for e in padded]
