"""Browsers: a page of another origin calls the API as it calls api.openai.com; it cannot script
the admin API (wire/cors.py, server/admin.py). In a real headless Chromium: what a page's
`fetch` can and cannot do is the browser's decision, not a header a test could check alone.

The page is opened on one server (its origin) and calls another (mockai under test), with the
headers openai-node sends from a browser: `Authorization`, JSON, `x-stainless-*` (all of which
make the browser send a preflight first).
"""

from __future__ import annotations

import functools
import http.server
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy
import openai
import pytest
from playwright.sync_api import BrowserContext, Page

from mockai import MockServer

FETCH = """
async ([url, init]) => {
  try {
    const response = await fetch(url, init);
    const text = await response.text();
    return {
      status: response.status,
      text,
      requestId: response.headers.get("x-request-id"),
      retryAfter: response.headers.get("retry-after"),
    };
  } catch (error) {
    return { failed: String(error) };
  }
}
"""

HEADERS = {
    "Authorization": "Bearer sk-browser-0000",
    "Content-Type": "application/json",
    "X-Stainless-Lang": "js",
    "X-Stainless-Retry-Count": "0",
}
CHAT = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    """A page of another origin: a second server's health answer."""
    with MockServer(log_requests=False) as elsewhere:
        opened = browser.new_page()
        opened.goto(elsewhere.url_for("/_mockai/health"))
        try:
            yield opened
        finally:
            opened.close()


def fetch(page: Page, url: str, **init: Any) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(FETCH, [url, init])
    return result


def test_a_page_calls_the_api_and_reads_the_answer(page: Page) -> None:
    with MockServer(log_requests=False) as server:
        answer = fetch(
            page, server.url + "/chat/completions", method="POST", headers=HEADERS, body=CHAT
        )
        assert answer.get("failed") is None and answer["status"] == 200
        assert '"chat.completion"' in answer["text"]
        # The request id is exposed to the page, as the API exposes it.
        assert answer["requestId"] == server.requests[-1].request_id
        preflight, asked = server.requests[-2], server.requests[-1]
        assert (preflight.method, preflight.status) == ("OPTIONS", 200)
        assert asked.response_headers["access-control-allow-origin"] == "*"
        # Streams too; and the models list a chat UI asks for first.
        streamed = fetch(
            page,
            server.url + "/chat/completions",
            method="POST",
            headers=HEADERS,
            body=CHAT[:-1] + ', "stream": true}',
        )
        assert streamed["status"] == 200 and streamed["text"].endswith("data: [DONE]\n\n")
        listed = fetch(
            page, server.url + "/models", headers={"Authorization": HEADERS["Authorization"]}
        )
        assert listed["status"] == 200 and '"gpt-4o-mini"' in listed["text"]


def test_errors_reach_the_page_and_retry_after_stays_hidden(page: Page) -> None:
    """A 429's body and status reach the page; `retry-after` does not, since the API exposes
    only `X-Request-ID`: a browser client backs off by its own rules, against mockai too."""
    with MockServer(log_requests=False) as server:
        limited = fetch(
            page,
            server.url + "/chat/completions",
            method="POST",
            headers={**HEADERS, "x-mockai-fault": "rate_limit"},
            body=CHAT,
        )
        assert limited["status"] == 429 and "rate_limit_exceeded" in limited["text"]
        assert limited["retryAfter"] is None
        assert server.requests[-1].response_headers["retry-after"] == "1"
        missing = fetch(page, server.url + "/nowhere", method="POST", headers=HEADERS, body="{}")
        assert missing["status"] == 404 and "Invalid URL" in missing["text"]


def test_the_preflight_needs_no_key(page: Page) -> None:
    """A browser sends the preflight without the key: under `--require-api-key` it passes, and
    the request after it is checked as any other."""
    with MockServer(log_requests=False, require_api_key="sk-browser-0000") as server:
        allowed = fetch(
            page, server.url + "/chat/completions", method="POST", headers=HEADERS, body=CHAT
        )
        assert allowed["status"] == 200
        wrong = {**HEADERS, "Authorization": "Bearer sk-wrong-0000"}
        refused = fetch(
            page, server.url + "/chat/completions", method="POST", headers=wrong, body=CHAT
        )
        assert refused["status"] == 401 and "invalid_api_key" in refused["text"]


def test_a_page_cannot_script_the_admin_api(page: Page) -> None:
    """Not even with requests whose answers it would never read (`no-cors`): a page the user
    has open must not reset the server or add rules."""
    with MockServer(log_requests=False) as server:
        with httpx.Client() as http:  # one request in the journal, which a reset would forget
            http.post(server.url + "/chat/completions", content=CHAT)
        read = fetch(page, server.url_for("/_mockai/requests"))
        assert "Failed to fetch" in read["failed"]  # no CORS for the admin API
        rule = '{"match": {"user": "hi"}, "reply": "from a web page"}'
        for path, body in (("/_mockai/rules", rule), ("/_mockai/reset", "")):
            blind = fetch(page, server.url_for(path), method="POST", mode="no-cors", body=body)
            assert blind.get("failed") is None  # sent; the answer is opaque to the page
        assert server.rules == [] and len(server.requests) == 1
        # The server's own page may (the inspector's origin), and so may any client but a page.
        with httpx.Client() as http:
            own = {"Origin": server.base_url}
            assert http.post(server.url_for("/_mockai/reset"), headers=own).status_code == 200
            other = {"Origin": "http://example.com"}
            refused = http.post(server.url_for("/_mockai/reset"), headers=other)
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "mockai_admin_forbidden"
        assert server.requests == []


# --- openai-node itself, in the page --------------------------------------------------------------

SDK_IN_PAGE = """
async (baseURL) => {
  const { default: OpenAI } = await import("/openai/index.mjs");
  const client = new OpenAI({ baseURL, apiKey: "sk-browser", dangerouslyAllowBrowser: true });
  const ask = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
  const answer = await client.chat.completions.create(ask);
  let streamed = "";
  for await (const chunk of await client.chat.completions.create({ ...ask, stream: true })) {
    streamed += chunk.choices[0]?.delta?.content ?? "";
  }
  const embedded = await client.embeddings.create({ model: "text-embedding-3-small", input: "a cat" });
  const retried = await client.chat.completions.create(
    { ...ask, messages: [{ role: "user", content: "retried" }] },
    { headers: { "x-mockai-fault": "rate_limit;retry_after=100ms;attempts=2" } },
  );
  return {
    text: answer.choices[0].message.content,
    requestId: answer._request_id,
    streamed,
    vector: Array.from(embedded.data[0].embedding),
    retried: retried.choices[0].message.content,
  };
}
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def sdk_page(browser: BrowserContext) -> Iterator[Page]:
    """A page of another origin that can import openai-node: tests/node's node_modules served
    as they are (the SDK's ES modules import each other by relative paths)."""
    folder = Path(__file__).parent / "node" / "node_modules"
    handler = functools.partial(_Quiet, directory=str(folder))
    static = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=static.serve_forever, daemon=True)
    thread.start()
    opened = browser.new_page()
    try:
        opened.goto(f"http://127.0.0.1:{static.server_address[1]}/openai/package.json")
        yield opened
    finally:
        opened.close()
        static.shutdown()
        static.server_close()


def test_openai_node_runs_in_a_browser_page_against_mockai(sdk_page: Page) -> None:
    """The SDK itself, as a browser app loads it (`dangerouslyAllowBrowser`): a chat answer, the
    same text streamed through the browser's fetch, a base64 embedding decoded in the page, and a
    429 retried. The page cannot read `retry-after-ms`, as with the API, so the SDK waits its
    own backoff rather than the 100 ms asked for."""
    with MockServer(log_requests=False) as server:
        seen = sdk_page.evaluate(SDK_IN_PAGE, server.url)
        with openai.OpenAI(base_url=server.url, api_key="sk-python", max_retries=0) as python:
            vector = python.embeddings.create(model="text-embedding-3-small", input="a cat")
        asked = [e for e in server.requests if e.method == "POST"]
    assert seen["text"] and seen["streamed"] == seen["text"]
    assert seen["requestId"] == asked[0].request_id
    assert len(seen["vector"]) == 1536
    assert numpy.array_equal(
        numpy.array(seen["vector"], numpy.float32),
        numpy.array(vector.data[0].embedding, numpy.float32),
    )
    assert seen["retried"]
    retries = [e for e in asked if e.endpoint == "chat" and "retried" in str(e.body["messages"])]
    assert [(e.status, e.retry_count) for e in retries] == [(429, 0), (429, 1), (200, 2)]
    gaps = [b.arrived - a.arrived for a, b in itertools.pairwise(retries)]
    assert all(gap >= 0.3 for gap in gaps), gaps  # the SDK's backoff: 0.375 s at the least


@pytest.mark.parametrize(
    ("host", "origin", "allowed"),
    [
        ("127.0.0.1:{port}", "http://127.0.0.1:{port}", True),  # the inspector's own origin
        ("localhost:{port}", "http://localhost:{port}", True),
        ("[::1]:{port}", "http://[::1]:{port}", True),
        ("app.localhost:{port}", "http://app.localhost:{port}", True),
        ("127.0.0.1:{port}", "http://localhost:{port}", False),  # another origin
        ("127.0.0.1:{port}", "null", False),  # a sandboxed page, a file
        # DNS rebinding: another site's name made to resolve to 127.0.0.1; its page is then
        # "same-origin", and says so with its own host name.
        ("rebound.example:{port}", "http://rebound.example:{port}", False),
    ],
)
def test_which_origins_may_use_the_admin_api(host: str, origin: str, allowed: bool) -> None:
    with MockServer(log_requests=False) as server, httpx.Client() as http:
        port = server.port
        headers = {"Host": host.format(port=port), "Origin": origin.format(port=port)}
        answer = http.post(server.url_for("/_mockai/reset"), headers=headers)
    assert answer.status_code == (200 if allowed else 403), answer.text


def test_with_admin_remote_the_token_guards_instead() -> None:
    """Reached through a proxy by its own name (and scheme), the inspector's requests carry an
    Origin no loopback check would pass; the token, which a page cannot send, is the guard."""
    token = "a-long-admin-token"
    with (
        MockServer(log_requests=False, admin_remote=True, admin_token=token) as server,
        httpx.Client() as http,
    ):
        proxied = {"Host": "mockai.example", "Origin": "https://mockai.example"}
        with_token = {**proxied, "Authorization": f"Bearer {token}"}
        assert http.post(server.url_for("/_mockai/reset"), headers=with_token).status_code == 200
        assert http.post(server.url_for("/_mockai/reset"), headers=proxied).status_code == 401
