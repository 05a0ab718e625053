"""The inspector page at /_mockai/, in a real headless Chromium (Debian's, by executable path).

The page is served by mockai itself (one HTML file, script inline, nothing from elsewhere); the
tests open it, make requests with the SDK, and watch them appear: endpoint, model, what answered,
faults, status, timing; and for a request nothing matched, the near-miss report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from mockai import MockServer

TOKEN = "inspector-token-1234"


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    opened = browser.new_page()
    # Nothing but this server: a request anywhere else would be a CDN or a leak.
    outside: list[str] = []
    opened.on(
        "request",
        lambda request: (
            outside.append(request.url) if not request.url.startswith("http://127.0.0.1:") else None
        ),
    )
    try:
        yield opened
    finally:
        opened.close()
        assert outside == []


def _rules(tmp_path: Path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "mockai: 1\nrules:\n"
        "  - name: weather\n    match: {user: weather}\n    reply: Sunny.\n"
        "  - name: greeting\n    match: {user: {equals: hello there}}\n    reply: Hi.\n"
    )
    return str(path)


def test_requests_appear_live_with_what_answered_them(page: Page, tmp_path: Path) -> None:
    with MockServer(scenarios=(_rules(tmp_path),), log_requests=False) as server:
        page.goto(server.url_for("/_mockai/"))
        expect(page.locator("#server")).to_contain_text("state: memory")
        expect(page.locator("#empty")).to_be_visible()
        with openai.OpenAI(base_url=server.url, api_key="sk-x", max_retries=0) as client:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "weather in Paris?"}]
            )
            with pytest.raises(openai.RateLimitError):
                client.with_options(
                    default_headers={"x-mockai-fault": "rate_limit"}
                ).chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "weather again"}]
                )
        rows = page.locator("#rows tr")
        expect(rows).to_have_count(2)
        hit = rows.filter(has_text="gpt-4o-mini")
        expect(hit).to_contain_text("POST /v1/chat/completions")
        expect(hit).to_contain_text("chat")
        expect(hit).to_contain_text("scenario: weather")
        expect(hit.locator("td").nth(7)).to_have_text("200")
        expect(hit.locator("td").nth(8)).to_have_text(re.compile(r"^\d+$"))
        faulted = rows.first  # newest first
        expect(faulted).to_contain_text("gpt-4o")
        expect(faulted).to_contain_text("fault: x-mockai-fault")
        expect(faulted.locator("td").nth(6)).to_have_text("rate_limit")
        expect(faulted.locator("td").nth(7)).to_have_text("429")


def test_a_miss_shows_the_near_miss_report(page: Page, tmp_path: Path) -> None:
    with MockServer(scenarios=(_rules(tmp_path),), log_requests=False) as server:
        page.goto(server.url_for("/_mockai/"))
        httpx.post(
            server.url + "/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello theer"}]},
        )
        row = page.locator("#rows tr.miss")
        expect(row).to_contain_text("no match")
        expect(row.locator("td").nth(7)).to_have_text("400")
        row.click()
        details = page.locator("#details")
        expect(details).to_contain_text("Near misses: why nothing matched")
        expect(details).to_contain_text("greeting")  # the closest rule, field by field
        expect(details).to_contain_text("hello there")


def test_the_page_asks_for_the_admin_token_and_uses_it(page: Page) -> None:
    with MockServer(admin_token=TOKEN, log_requests=False) as server:
        page.goto(server.url_for("/_mockai/"))
        expect(page.locator("#auth")).to_be_visible()
        page.goto(server.url_for(f"/_mockai/#token={TOKEN}"))
        expect(page.locator("#auth")).to_be_hidden()
        httpx.post(
            server.url + "/embeddings", json={"model": "text-embedding-3-small", "input": "x"}
        )
        expect(page.locator("#rows tr")).to_have_count(1)
        expect(page.locator("#rows tr")).to_contain_text("embeddings")
        assert TOKEN not in page.url  # taken out of the address bar once read
