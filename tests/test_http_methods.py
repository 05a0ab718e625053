"""HEAD where GET is taken, and 405s that say what is: HTTP's rules for methods (RFC 9110).

HEAD answers the GET's status and headers without the body: what probes (`curl -I`, load
balancers' health checks) send. Nothing of the body may follow the head, whatever the GET would
have answered (a body, a stream, a body written in slices): the connection's next answer must
read right. A 405 names the methods the route takes in `Allow`.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from test_lane import PER_ANSWER, Connection, request

from mockai import MockServer

API_KEY = "sk-lane"  # (test_lane's `request` sends it)


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer() as running:
        yield running


@pytest.fixture(scope="module")
def paths(server: MockServer) -> dict[str, str]:
    """GET routes of every kind of answer: bodies, a stream, a body written in slices."""
    with openai.OpenAI(base_url=server.url, api_key=API_KEY) as sdk:
        events = list(
            sdk.responses.create(model="gpt-4o-mini", input="hi", background=True, stream=True)
        )
        stored = events[-1].response.id  # type: ignore[union-attr]
        large = sdk.files.create(file=("big.jsonl", b"x" * (3 << 20)), purpose="user_data")
    return {
        "models": "/v1/models",
        "model": "/v1/models/gpt-4o-mini",
        "health": "/_mockai/health",
        "journal": "/_mockai/requests",
        "response": f"/v1/responses/{stored}",
        "response stream": f"/v1/responses/{stored}?stream=true",
        "large file": f"/v1/files/{large.id}/content",
    }


@pytest.mark.parametrize(
    "kind",
    ["models", "model", "health", "journal", "response", "response stream", "large file"],
)
def test_head_answers_the_gets_head_and_nothing_more(
    server: MockServer, paths: dict[str, str], kind: str
) -> None:
    conn = Connection(server.port)
    try:
        # Sent together: a body written after HEAD's head would be read as the next answer.
        conn.send(request("GET", paths[kind]) + request("HEAD", paths[kind]))
        got = conn.answer()
        head = conn.answer(head_only=True)
        conn.send(request("GET", "/v1/models/after"))
        after = conn.answer()
    finally:
        conn.close()
    assert got.status == head.status == 200
    framing = {"transfer-encoding", "content-length"}  # (how a body is sent: HEAD sends none)
    assert [(k.lower(), v) for k, v in head.headers if k.lower() not in PER_ANSWER | framing] == [
        (k.lower(), v) for k, v in got.headers if k.lower() not in PER_ANSWER | framing
    ]
    if kind != "response stream":  # (a stream's GET is chunked: no length to tell)
        assert int(head.header("content-length") or -1) == len(got.body) > 0
    assert after.status == 200 and after.json()["id"] == "after"


def test_head_is_journaled_as_head(server: MockServer) -> None:
    server.reset()
    assert httpx.head(server.url + "/models").status_code == 200
    assert [(entry.method, entry.path) for entry in server.requests] == [("HEAD", "/v1/models")]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/models", "GET, HEAD"),
        ("GET", "/v1/embeddings", "POST"),
        ("HEAD", "/v1/embeddings", "POST"),
        ("PUT", "/v1/chat/completions", "GET, HEAD, POST"),
        ("PUT", "/_mockai/rules", "DELETE, GET, HEAD, POST"),
        ("GET", "/_mockai/reset", "POST"),
        ("POST", "/groq/openai/v1/models", "GET, HEAD"),
    ],
)
def test_a_405_names_the_methods_the_route_takes(
    server: MockServer, method: str, path: str, allowed: str
) -> None:
    refused = httpx.request(method, server.url.removesuffix("/v1") + path)
    assert refused.status_code == 405
    assert refused.headers["allow"] == allowed
    if method != "HEAD":
        assert refused.json()["error"]["message"] == f"Invalid method for URL ({method} {path})"
