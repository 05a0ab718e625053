"""Every error status reaches the SDK as the exception class the wire contract lists (section 4)."""

from __future__ import annotations

import openai
import pytest
from conformance import checked_server

CASES = [
    (400, openai.BadRequestError),
    (401, openai.AuthenticationError),
    (403, openai.PermissionDeniedError),
    (404, openai.NotFoundError),
    (409, openai.ConflictError),
    (418, openai.APIStatusError),
    (422, openai.UnprocessableEntityError),
    (429, openai.RateLimitError),
    (500, openai.InternalServerError),
    (502, openai.InternalServerError),
    (503, openai.InternalServerError),
    (504, openai.InternalServerError),
]
RULES = [
    {"name": f"status-{status}", "match": {"user": f"status {status}"}, "error": {"status": status}}
    for status, _ in CASES
]


@pytest.mark.parametrize(("status", "exception"), CASES)
def test_status_maps_to_the_sdk_exception(
    status: int, exception: type[openai.APIStatusError]
) -> None:
    with checked_server() as server:
        server.add_rules(RULES)
        client = openai.OpenAI(base_url=server.url, api_key="sk-x", max_retries=0)
        with client, pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": f"status {status}"}]
            )
    error = raised.value
    assert type(error) is exception
    assert error.status_code == status
    assert error.request_id == server.requests[-1].request_id
    assert isinstance(error.body, dict) and set(error.body) == {"message", "type", "param", "code"}
    assert str(error).startswith(f"Error code: {status} - ")


@pytest.mark.asyncio
@pytest.mark.parametrize(("status", "exception"), CASES[::3])
async def test_async_client_maps_the_same(
    status: int, exception: type[openai.APIStatusError]
) -> None:
    with checked_server() as server:
        server.add_rules(RULES)
        client = openai.AsyncOpenAI(base_url=server.url, api_key="sk-x", max_retries=0)
        async with client:
            with pytest.raises(exception):
                await client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": f"status {status}"}]
                )
