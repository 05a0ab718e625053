"""Serving and operations as the docs promise them: `--watch` sees an edit made as soon as the
server says it is listening (on every worker), `--require-api-key` holds under every profile
(Ollama's too), header lines as long as real bearer tokens are read (and one too long is refused
without its bytes), and the Kubernetes manifest's metrics can be scraped."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from raw_http import whole_answer
from service_support import ServeProcess, repo_root

from mockai import MockServer
from mockai.server.unreadable import HEAD_LINE_LIMIT

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "alpha"}]}
ERROR_KEYS = {"message", "type", "param", "code"}


# --- --watch: an edit right after the banner --------------------------------------------------


def _rules(reply: str) -> str:
    return f"mockai: 1\nrules:\n  - name: r\n    match: {{user: alpha}}\n    reply: {reply}\n"


def _answers_by_worker(base_url: str, rounds: int = 8) -> dict[int, str]:
    """Each worker's answer to CHAT, by pid (a fresh connection a round: the kernel spreads
    them over the workers; the pid and the answer come over one connection)."""
    seen: dict[int, str] = {}
    for _ in range(rounds):
        with httpx.Client(base_url=base_url, timeout=5) as http:
            pid = http.get("/_mockai/health").json()["pid"]
            answer = http.post("/v1/chat/completions", json=CHAT).json()
            seen[pid] = answer["choices"][0]["message"]["content"]
    return seen


def test_watch_loads_an_edit_made_right_after_the_banner_on_every_worker(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "a.yaml").write_text(_rules("OLD"))
    served = ServeProcess(["--scenario", str(folder), "--watch", "--workers", "2"]).start()
    try:
        (folder / "a.yaml").write_text(_rules("NEW"))  # as soon as the banner is out
        answers: dict[int, str] = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            answers.update(_answers_by_worker(served.base_url))
            if len(answers) == 2 and set(answers.values()) == {"NEW"}:
                break
            time.sleep(0.05)
    finally:
        served.stop()
    assert len(answers) == 2, answers  # both workers answered
    assert set(answers.values()) == {"NEW"}, answers
    assert "Traceback" not in served.all_output()


# --- --require-api-key under the Ollama profile ---------------------------------------------------

KEY = "sk-only-this-key-0000"
OLLAMA_CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def ollama_with_key() -> Iterator[MockServer]:
    with MockServer(profile="ollama", require_api_key=KEY, log_requests=False) as server:
        yield server


@pytest.mark.parametrize("path", ["/v1", "/ollama/v1"])
def test_a_required_key_is_checked_under_the_ollama_profile(
    ollama_with_key: MockServer, path: str
) -> None:
    base = ollama_with_key.url_for(path)
    with httpx.Client(base_url=base, timeout=10) as http:
        for headers in ({}, {"Authorization": "Bearer wrong-key"}):
            refused = http.post("/chat/completions", json=OLLAMA_CHAT, headers=headers)
            assert refused.status_code == 401, refused.text
            error = refused.json()["error"]
            # Ollama's envelope: OpenAI's four keys, its own error types
            assert set(error) == ERROR_KEYS
            assert error["type"] in ("invalid_request_error", "not_found_error", "api_error")
    with (
        openai.OpenAI(base_url=base, api_key="wrong-key", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.chat.completions.create(**OLLAMA_CHAT)  # type: ignore[call-overload]
    with openai.OpenAI(base_url=base, api_key=KEY, max_retries=0) as client:
        reply = client.chat.completions.create(**OLLAMA_CHAT)  # type: ignore[call-overload]
        assert reply.choices[0].message.content


# --- long header lines ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


@pytest.mark.parametrize("size", [8_200, 30_000])
def test_a_long_bearer_token_is_answered_and_journaled_redacted(
    server: MockServer, size: int
) -> None:
    """Entra ID tokens (Azure OpenAI) reach past aiohttp's 8190-byte default."""
    token = "sk-" + secrets.token_urlsafe(size)[: size - 3]
    with httpx.Client(base_url=server.url, timeout=10) as http:
        answer = http.post(
            "/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text[:200]
        request_id = answer.headers["x-request-id"]
    entry = next(e for e in server.requests if e.request_id == request_id)
    journaled = json.dumps(entry.as_json())
    assert token[:20] not in journaled  # (redacted, as every key is)
    assert entry.as_json()["headers"]["authorization"] == "<redacted>"


def test_mockai_serve_reads_a_long_bearer_token() -> None:
    token = "sk-" + secrets.token_urlsafe(30_000)
    with (
        ServeProcess(["--quiet"]) as served,
        httpx.Client(base_url=served.url, timeout=10) as http,
    ):
        headers = {"Authorization": f"Bearer {token}"}
        answer = http.post("/chat/completions", json=CHAT, headers=headers)
        assert answer.status_code == 200, answer.text[:200]


def test_a_header_past_the_bound_is_refused_without_its_bytes(server: MockServer) -> None:
    token = ("sk-" + secrets.token_urlsafe(HEAD_LINE_LIMIT)).encode()[: HEAD_LINE_LIMIT + 100]
    body = json.dumps(CHAT).encode()
    answer = whole_answer(
        server.port,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + token
        + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body,
    )
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400", head  # (HTTP/1.0: the request line was not read)
    error: dict[str, Any] = json.loads(payload)["error"]
    assert set(error) == ERROR_KEYS and error["type"] == "invalid_request_error"
    assert f"longer than {HEAD_LINE_LIMIT} bytes" in error["message"]
    # None of the header's bytes come back (aiohttp's reason quoted its first hundred).
    assert b"Bearer" not in answer
    assert all(token[i : i + 8] not in answer for i in range(200))
    with httpx.Client(base_url=server.url, timeout=10) as http:  # the server answers on
        assert http.post("/chat/completions", json=CHAT).status_code == 200


# --- the Kubernetes manifest's metrics --------------------------------------------------------


def test_the_kubernetes_pods_are_not_annotated_for_a_scrape_their_token_refuses() -> None:
    """An annotation-driven scrape sends no credentials: with an admin token set, every scrape
    of /_mockai/metrics would be a 401 (docs/operations.md says how to scrape with it)."""
    manifest = repo_root() / "deploy" / "kubernetes" / "mockai.yaml"
    for doc in yaml.safe_load_all(manifest.read_text()):
        if not doc or doc.get("kind") != "Deployment":
            continue
        template = doc["spec"]["template"]
        annotations = template["metadata"].get("annotations") or {}
        containers = template["spec"]["containers"]
        token = any(
            item["name"] == "MOCKAI_ADMIN_TOKEN" for c in containers for item in c.get("env", ())
        ) or any(arg.startswith("--admin-token") for c in containers for arg in c.get("args", ()))
        scraped = any(key.startswith("prometheus.io/") for key in annotations)
        assert not (token and scraped), f"{doc['metadata']['name']}: {annotations}"


def test_the_documented_scrape_job_sends_the_token() -> None:
    operations = (repo_root() / "docs" / "operations.md").read_text()
    assert "credentials_file:" in operations
    assert "kind: ServiceMonitor" in operations
