"""`GET /_mockai/requests` writes each entry's body back as it came, whatever JSON it held."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockai import MockServer

# JSON values as clients send them: any Unicode text (lone surrogates have no UTF-8 form),
# integers within a double's exact range, finite floats, nesting within the parser's bound.
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=30,
)


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as server:
        yield server


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.dictionaries(_TEXT, _JSON, max_size=6))
def test_the_page_gives_back_every_body_as_sent(server: MockServer, body: dict[str, Any]) -> None:
    sent = json.dumps(body, ensure_ascii=False).encode()
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        posted = client.post(
            "/v1/embeddings", content=sent, headers={"content-type": "application/json"}
        )
        page = client.get("/_mockai/requests", params={"limit": 1}).raise_for_status()
    assert page.headers["content-type"].startswith("application/json")
    (entry,) = json.loads(page.content)["data"]
    assert entry["request_id"] == posted.headers["x-request-id"]
    assert entry["body"] == body
