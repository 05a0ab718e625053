"""Browsers: a page of another origin calls the API as it calls api.openai.com; it cannot script
the admin API (wire/cors.py, server/admin.py). In a real headless Chromium: what a page's
`fetch` can and cannot do is the browser's decision, not a header a test could check alone.

The page is opened on one server (its origin) and calls another (mockai under test), with the
headers openai-node sends from a browser: `Authorization`, JSON, `x-stainless-*` (all of which
make the browser send a preflight first).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
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
