"""The inspector page, in a real headless Chromium: requests in progress (a stream), answers
relayed from an upstream, the admin token in the address, dropped bodies, what the page holds and
reads (bodies only for the selected row, none while idle), the journal it shows when opened, the
filter, the details pane, text that would reorder the page, and its console.

One server and one browser for the module (the journal is cleared before each test); the page
polls twice a second, and each test waits for what the page shows, never for a fixed time.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import BrowserContext, Locator, Page, Request, expect
from service_support import RedisServer

from mockai import MockServer

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
DEADLINE_MS = 10_000
STATUS, MS = 7, 8  # the status and time cells of a row


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False, journal_size=3000) as started:
        yield started


@pytest.fixture
def cleared(server: MockServer) -> MockServer:
    httpx.delete(server.url_for("/_mockai/requests")).raise_for_status()
    httpx.delete(server.url_for("/_mockai/rules")).raise_for_status()
    return server


def _open(page: Page, server: MockServer, fragment: str = "") -> None:
    page.goto(server.url_for("/_mockai/") + fragment)
    expect(page.locator("#status")).to_have_text("live", timeout=DEADLINE_MS)


def _journal(server: MockServer) -> list[dict[str, Any]]:
    return httpx.get(server.url_for("/_mockai/requests")).json()["data"]  # type: ignore[no-any-return]


def _row(page: Page, seq: int) -> Locator:
    return page.locator(f'#rows tr[data-seq="{seq}"]')


def _cell(page: Page, seq: int, index: int) -> Locator:
    return _row(page, seq).locator("td").nth(index)


def _stalled_stream(server: MockServer) -> socket.socket:
    """A streamed chat that sends its headers and a chunk, then nothing until the returned
    socket is closed: status 200 while it is still in progress."""
    body = json.dumps({**CHAT, "stream": True}).encode()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nx-mockai-fault: stall_after=1\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    sock.settimeout(5)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return sock


def test_a_stream_shows_in_progress_until_it_ends_then_its_time(
    page: Page, cleared: MockServer
) -> None:
    _open(page, cleared)
    sock = _stalled_stream(cleared)
    try:
        seq = _journal(cleared)[-1]["seq"]
        expect(_cell(page, seq, STATUS)).to_have_text("…")
        _row(page, seq).click()
        expect(page.locator("#details")).to_contain_text("time: in progress")
    finally:
        sock.close()
    expect(_cell(page, seq, MS)).to_have_text(re.compile(r"^\d+$"), timeout=DEADLINE_MS)
    expect(_cell(page, seq, STATUS)).to_have_text("200")
    duration = round(_journal(cleared)[-1]["duration_ms"])
    assert duration > 0
    expect(_cell(page, seq, MS)).to_have_text(str(duration))
    expect(page.locator("#details")).to_contain_text(f"time: {duration} ms")


def test_an_answer_relayed_from_upstream_is_not_taken_for_a_restart(page: Page) -> None:
    # The entry's request id becomes the upstream's once answered: the page must not take that
    # for another server's journal (and read everything again, as if opened anew).
    openings: list[str] = []

    def read(request: Request) -> None:
        # (what the page reads when opened: the newest page of the journal)
        if "/_mockai/requests?limit=1000" in request.url and "after=" not in request.url:
            openings.append(request.url)

    page.on("request", read)
    with (
        MockServer(log_requests=False, latency="800ms") as upstream,
        MockServer(log_requests=False, upstream=upstream.url) as proxy,
    ):
        _open(page, proxy)
        assert len(openings) == 1
        relayed = threading.Thread(
            target=lambda: httpx.post(proxy.url + "/chat/completions", json=CHAT, timeout=30)
        )
        relayed.start()
        try:
            expect(_cell(page, 1, STATUS)).to_have_text("…")
            seen = page.locator("#rows tr").first.get_attribute("data-seq")
            # The page next reads the answered entry (its id changed) with a newer one.
            page.locator("#pause").check()
        finally:
            relayed.join(30)
        local = httpx.post(
            proxy.url + "/chat/completions", json=CHAT, headers={"x-mockai-fault": "rate_limit"}
        )
        assert local.status_code == 429
        ids = [entry["request_id"] for entry in _journal(proxy)]
        assert ids[0] != local.headers["x-request-id"]
        page.locator("#pause").uncheck()
        expect(_cell(page, 2, STATUS)).to_have_text("429")
        expect(_cell(page, 1, STATUS)).to_have_text("200")
        assert seen == "1"
        assert len(openings) == 1, openings
        _row(page, 1).click()
        expect(page.locator("#details")).to_contain_text(f"request id: {ids[0]}")


@pytest.mark.parametrize("token", ["Ab+cD/ef+GhIjK==", "a&b=c%zz d"])
def test_the_admin_token_is_taken_from_the_address_as_it_is(page: Page, token: str) -> None:
    with MockServer(log_requests=False, admin_token=token) as server:
        httpx.post(
            server.url + "/embeddings", json={"model": "text-embedding-3-small", "input": "x"}
        )
        # (a space must be written %20 in an address; `+`, `/`, `=`, `&` and a bare `%` not)
        _open(page, server, "#token=" + token.replace(" ", "%20"))
        expect(page.locator("#auth")).to_be_hidden()
        expect(page.locator("#rows tr")).to_have_count(1)
        assert page.evaluate("sessionStorage.getItem('mockai-token')") == token
        assert "token" not in page.url


def test_a_body_the_journal_dropped_is_shown_as_dropped(page: Page) -> None:
    with MockServer(log_requests=False, journal_bytes=3000) as server:
        prompt = {"role": "user", "content": "my important prompt " * 400}
        httpx.post(server.url + "/chat/completions", json={**CHAT, "messages": [prompt]})
        assert _journal(server)[0]["dropped"] is True
        _open(page, server)
        _row(page, 1).click()
        body = page.locator("#details pre").nth(1)
        expect(body).to_have_text("body dropped (journal byte budget)")


def _heap(browser: BrowserContext, page: Page) -> int:
    """Bytes of the page's JavaScript heap in use, after a garbage collection."""
    cdp = browser.new_cdp_session(page)
    try:
        cdp.send("HeapProfiler.collectGarbage")
        return int(cdp.send("Runtime.getHeapUsage")["usedSize"])
    finally:
        cdp.detach()


def test_the_page_holds_the_body_of_the_selected_request_only(
    page: Page, browser: BrowserContext, cleared: MockServer
) -> None:
    _open(page, cleared)
    before = _heap(browser, page)
    big = "lorem ipsum " * 40_000  # ~0.5 MB a prompt, 5 MB in all
    with httpx.Client(base_url=cleared.url) as http:
        for number in range(10):
            prompt = {"role": "user", "content": f"prompt {number} {big}"}
            http.post("/chat/completions", json={**CHAT, "max_tokens": 1, "messages": [prompt]})
    expect(page.locator("#rows tr")).to_have_count(10, timeout=DEADLINE_MS)
    grown = _heap(browser, page) - before
    assert grown < 2_000_000, grown
    # A selected row's body is read then, and shown.
    page.locator("#rows tr").nth(5).click()
    expect(page.locator("#details pre").nth(1)).to_contain_text("prompt 4 lorem ipsum")


def test_an_idle_page_reads_no_bodies(page: Page, cleared: MockServer) -> None:
    httpx.post(
        cleared.url + "/embeddings",
        json={"model": "text-embedding-3-small", "input": ["word " * 1000] * 200},  # 1 MB
    )
    _open(page, cleared)
    sizes: list[int] = []
    page.on(
        "requestfinished",
        lambda request: (
            sizes.append(request.sizes()["responseBodySize"])
            if "/_mockai/requests" in request.url
            else None
        ),
    )
    deadline = time.monotonic() + DEADLINE_MS / 1000
    while len(sizes) < 4 and time.monotonic() < deadline:  # (two polls, or more)
        page.wait_for_timeout(100)
    assert len(sizes) >= 4
    assert sum(sizes) < 4 * 1024, sizes


def test_opening_the_page_shows_the_journal_beyond_one_read(
    page: Page, cleared: MockServer
) -> None:
    with httpx.Client(base_url=cleared.url) as http:
        for _ in range(1100):  # (one read of the journal answers 1000 entries at most)
            http.get("/models").raise_for_status()
    newest = _journal(cleared)[-1]["seq"]
    _open(page, cleared)
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(1100, timeout=DEADLINE_MS)
    expect(rows.first).to_have_attribute("data-seq", str(newest))
    expect(rows.last).to_have_attribute("data-seq", str(newest - 1099))


def test_the_filter_finds_rows_by_what_they_show(page: Page, cleared: MockServer) -> None:
    rule = {"name": "greet", "match": {"user": "hello"}, "reply": "Hi."}
    httpx.post(cleared.url_for("/_mockai/rules"), json=rule).raise_for_status()
    with httpx.Client(base_url=cleared.url) as http:
        hello = {"role": "user", "content": "hello"}
        http.post("/chat/completions", json={**CHAT, "messages": [hello]})
        http.post(
            "/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": "?"}]}
        )
        http.post("/chat/completions", json={**CHAT, "messages": [hello], "stream": True})
    _open(page, cleared)
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(3)
    for text, count in [("no match", 1), ("stream", 1), ("rule: greet", 2), ("400", 1), ("", 3)]:
        page.fill("#filter", text)
        expect(rows).to_have_count(count)


def test_the_details_stay_as_they_are_while_other_requests_arrive(
    page: Page, cleared: MockServer
) -> None:
    with httpx.Client(base_url=cleared.url) as http:
        http.post("/chat/completions", json=CHAT)
        _open(page, cleared)
        first = _journal(cleared)[-1]["seq"]
        _row(page, first).click()
        body = page.locator("#details pre").nth(1)
        expect(body).to_contain_text('"content": "hi"')
        # A user selects the body to copy it.
        page.evaluate(
            """() => { const range = document.createRange();
            range.selectNodeContents(document.querySelectorAll('#details pre')[1]);
            getSelection().removeAllRanges(); getSelection().addRange(range); }"""
        )
        http.post("/chat/completions", json=CHAT)
        expect(_row(page, first + 1)).to_be_visible()
    assert '"content": "hi"' in page.evaluate("getSelection().toString()")


def test_text_that_would_reorder_the_page_is_shown_escaped(page: Page, cleared: MockServer) -> None:
    model = "gpt-4o\u202e-mini\u2066x\n"
    httpx.post(cleared.url + "/chat/completions", json={**CHAT, "model": model})
    _open(page, cleared)
    row = page.locator("#rows tr").first
    expect(row.locator("td").nth(4)).to_have_text("gpt-4o\\u202e-mini\\u2066x\\n")
    row.click()
    details = page.locator("#details")
    expect(details).to_contain_text("model: gpt-4o\\u202e-mini\\u2066x\\n   stream")
    expect(details.locator("pre").nth(1)).to_contain_text('"model": "gpt-4o\\u202e-mini')
    for char in "\u202e\u2066":
        assert char not in details.inner_text()
        assert char not in page.locator("#rows").inner_text()


def test_invisible_characters_in_a_cell_are_shown_escaped_as_in_the_logs(
    page: Page, cleared: MockServer
) -> None:
    # A zero-width space, a no-break space or a byte order mark after a model's name made it look
    # like the name a rule asks for (the logs and the near-miss report escape them); a body's
    # text keeps them, and the time keeps the browser's own spaces.
    model = "gpt-4o\u200b\u00a0\ufeff\U000e0041"
    content = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f468\u200d\U0001f469"
    message = {"role": "user", "content": content}
    httpx.post(
        cleared.url + "/chat/completions", json={**CHAT, "model": model, "messages": [message]}
    )
    _open(page, cleared)
    row = page.locator("#rows tr").first
    expect(row.locator("td").nth(4)).to_have_text("gpt-4o\\u200b\\xa0\\ufeff\\U000e0041")
    assert "\\u202f" not in row.locator("td").nth(1).inner_text()
    page.fill("#filter", "gpt-4o")
    expect(page.locator("#rows tr")).to_have_count(1)
    row.click()
    details = page.locator("#details")
    expect(details).to_contain_text("model: gpt-4o\\u200b\\xa0\\ufeff\\U000e0041   stream")
    expect(details.locator("pre").nth(1)).to_contain_text(content)


def test_a_bodys_whole_numbers_are_shown_as_sent(page: Page, cleared: MockServer) -> None:
    # Read as doubles, a seed of 2**63 - 1 was shown as 9223372036854776000.
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], '
    body += b'"seed": 9223372036854775807, "n": 1, "temperature": 0.5, "metadata": {}}'
    headers = {"Content-Type": "application/json"}
    httpx.post(cleared.url + "/chat/completions", content=body, headers=headers)
    _open(page, cleared)
    page.locator("#rows tr").first.click()
    shown = page.locator("#details pre").nth(1)
    expect(shown).to_contain_text('"seed": 9223372036854775807,')
    expect(shown).to_contain_text('"n": 1,')
    expect(shown).to_contain_text('"temperature": 0.5,')


def test_the_page_loads_without_console_errors_or_requests_of_its_own(
    page: Page, cleared: MockServer
) -> None:
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    _open(page, cleared)
    page.reload()
    expect(page.locator("#status")).to_have_text("live", timeout=DEADLINE_MS)
    assert errors == []
    assert _journal(cleared) == []  # (no /favicon.ico asked of the API)


# --- the listing the page reads: `?bodies=0` --------------------------------------------------


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(bodies=st.lists(st.binary(max_size=200) | st.text(max_size=50).map(str.encode), max_size=4))
def test_a_listing_without_bodies_is_the_listing_less_each_body(
    server: MockServer, bodies: list[bytes]
) -> None:
    _assert_listed_less_each_body(server, bodies)


def test_a_shared_journals_listing_without_bodies_is_the_listing_less_each_body(
    redis: RedisServer,
) -> None:
    bodies = [b'{"model": "m", "messages": []}', b"not json \xff", b"", "\u00e9t\u00e9".encode()]
    with MockServer(state=redis.url(), log_requests=False) as shared:
        _assert_listed_less_each_body(shared, bodies)


def _assert_listed_less_each_body(server: MockServer, bodies: list[bytes]) -> None:
    # (bytes of any kind: JSON or not, sent where they are read and where they are refused)
    with httpx.Client(base_url=server.url_for("/_mockai")) as admin:
        after = admin.get("/requests", params={"limit": 1}).json()["last_seq"] or 0
        for number, body in enumerate(bodies):
            path = "/embeddings" if number % 2 else "/chat/completions"
            httpx.post(
                server.url + path, content=body, headers={"content-type": "application/json"}
            )
        query = {"after": after, "limit": 1000}
        full = admin.get("/requests", params=query).json()
        light = admin.get("/requests", params={**query, "bodies": 0}).json()
    assert len(full["data"]) == len(bodies)
    for entry in full["data"]:
        del entry["body"]
    assert light == full


@pytest.mark.parametrize("value", ["2", "false", "no"])
def test_bodies_takes_0_or_1(server: MockServer, value: str) -> None:
    answer = httpx.get(server.url_for("/_mockai/requests"), params={"bodies": value})
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "message": f"Invalid 'bodies': expected 0 or 1, got {value!r}.",
        "type": "invalid_request_error",
        "param": "bodies",
        "code": "invalid_value",
    }


def test_a_server_restarted_to_as_many_entries_is_told_while_idle(page: Page) -> None:
    """The idle poll had only asked whether the newest entry seen was still there: a server
    restarted (the same port) and sent as many requests as the page had seen kept the old
    server's rows on the page until one more request came."""

    def chats(server: MockServer, model: str) -> None:
        with httpx.Client(base_url=server.url) as http:
            for _ in range(3):
                http.post("/chat/completions", json={**CHAT, "model": model}).raise_for_status()

    models = page.locator("#rows tr td:nth-child(5)")
    with MockServer(log_requests=False) as first:
        port = first.port
        _open(page, first)
        chats(first, "gpt-4o-mini")
        expect(page.locator("#rows tr")).to_have_count(3, timeout=DEADLINE_MS)
        page.locator("#pause").check()
    with MockServer(log_requests=False, port=port) as second:
        chats(second, "gpt-4.1")  # (as many entries, numbered as the page saw them)
        page.locator("#pause").uncheck()
        expect(models).to_have_text(["gpt-4.1"] * 3, timeout=DEADLINE_MS)
