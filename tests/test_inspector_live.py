"""The inspector page keeps up with the journal, in a real headless Chromium: requests still in
progress (a `hang`) while many more arrive, a page that fell far behind, a server that numbers
its requests from 1 again.

The page polls the journal twice a second; each test waits for what the page shows (with a
generous deadline), never for a fixed time.
"""

from __future__ import annotations

import json
import re
import socket

import httpx
from playwright.sync_api import Locator, Page, expect

from mockai import MockServer

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
DEADLINE_MS = 20_000
KEPT = 2000  # rows the page keeps (the oldest go first)


def _hang(server: MockServer) -> socket.socket:
    """A chat request that stays in progress until the returned socket is closed."""
    body = json.dumps(CHAT).encode()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nx-mockai-fault: hang\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    return sock


def _chats(server: MockServer, count: int) -> None:
    with httpx.Client(base_url=server.url) as http:
        for _ in range(count):
            http.post("/chat/completions", json=CHAT).raise_for_status()


def _newest_seq(server: MockServer) -> int:
    return int(httpx.get(server.url_for("/_mockai/requests?limit=1")).json()["last_seq"])


def _open(page: Page, server: MockServer) -> None:
    page.goto(server.url_for("/_mockai/"))
    expect(page.locator("#status")).to_have_text("live", timeout=DEADLINE_MS)


def _row(page: Page, seq: int) -> Locator:
    return page.locator(f'#rows tr[data-seq="{seq}"]')


def test_new_requests_appear_while_earlier_ones_are_still_in_progress(page: Page) -> None:
    # Over a page of the journal (1000) arrives after two requests that stay in progress.
    with MockServer(log_requests=False, journal_size=2000) as server:
        _open(page, server)
        first, second = _hang(server), _hang(server)
        try:
            for seq in (1, 2):
                expect(_row(page, seq).locator("td").nth(7)).to_have_text("…")
            _chats(server, 1200)
            newest = _newest_seq(server)
            assert newest == 1202
            rows = page.locator("#rows tr")
            expect(rows.first).to_have_attribute("data-seq", str(newest), timeout=DEADLINE_MS)
            expect(rows).to_have_count(newest, timeout=DEADLINE_MS)
            expect(rows.first.locator("td").nth(7)).to_have_text("200")

            # An entry in progress is still read again until it completes (the client leaving
            # ends a hang: status 0, with its time).
            second.close()
            done = _row(page, 2).locator("td")
            expect(done.nth(8)).to_have_text(re.compile(r"^\d+$"), timeout=DEADLINE_MS)
            expect(done.nth(7)).to_have_text("0")
            expect(_row(page, 1).locator("td").nth(7)).to_have_text("…")

            # A reset clears the journal (numbers go on): the request still open is no longer
            # there to read, and what comes next still appears.
            httpx.post(server.url_for("/_mockai/reset")).raise_for_status()
            _chats(server, 1)
            expect(rows.first).to_have_attribute("data-seq", "1203", timeout=DEADLINE_MS)
            expect(_row(page, 1).locator("td").nth(7)).to_have_text("?", timeout=DEADLINE_MS)
        finally:
            first.close()
            second.close()


def test_many_requests_in_progress_far_apart_are_all_followed_to_their_end(page: Page) -> None:
    # More of them, farther apart, than the page reads again in one poll.
    with MockServer(log_requests=False, journal_size=2000) as server:
        _open(page, server)
        hanging: list[socket.socket] = []
        try:
            for _ in range(20):
                hanging.append(_hang(server))
                _chats(server, 60)
            cells = page.locator("#rows td:nth-child(8)")
            expect(cells.filter(has_text="…")).to_have_count(20, timeout=DEADLINE_MS)
            for sock in hanging:
                sock.close()
            expect(cells.filter(has_text="…")).to_have_count(0, timeout=DEADLINE_MS)
            expect(cells.filter(has_text=re.compile(r"^0$"))).to_have_count(20)
        finally:
            for sock in hanging:
                sock.close()


def test_a_page_opened_on_an_empty_journal_shows_every_request_from_the_first(page: Page) -> None:
    with MockServer(log_requests=False) as server:
        _open(page, server)  # it read the journal, empty
        page.locator("#pause").check()
        _chats(server, 300)  # more than the page reads when it opens on a full journal
        page.locator("#pause").uncheck()
        rows = page.locator("#rows tr")
        expect(rows).to_have_count(300, timeout=DEADLINE_MS)
        expect(rows.last).to_have_attribute("data-seq", "1")


def test_a_page_far_behind_catches_up_and_keeps_its_bound(page: Page) -> None:
    # Over KEPT + one journal page (1000) behind: the page skips what it would drop at once.
    behind = KEPT + 1500
    with MockServer(log_requests=False, journal_size=5000) as server:
        _open(page, server)
        _chats(server, 1)
        expect(page.locator("#rows tr")).to_have_count(1)
        page.locator("#pause").check()
        _chats(server, behind)
        page.locator("#pause").uncheck()
        rows = page.locator("#rows tr")
        expect(rows.first).to_have_attribute("data-seq", str(1 + behind), timeout=DEADLINE_MS)
        expect(rows).to_have_count(KEPT, timeout=DEADLINE_MS)
        expect(rows.last).to_have_attribute("data-seq", str(1 + behind - KEPT + 1))


def test_a_restarted_server_that_numbers_from_1_again_is_followed(page: Page) -> None:
    with MockServer(log_requests=False) as server:
        port = server.port
        _open(page, server)
        _chats(server, 5)
        expect(page.locator("#rows tr").first).to_have_attribute("data-seq", "5")
    with MockServer(log_requests=False, port=port) as server:
        _chats(server, 2)
        rows = page.locator("#rows tr")
        expect(rows).to_have_count(2, timeout=DEADLINE_MS)
        expect(rows.first).to_have_attribute("data-seq", "2")
        ids = [
            entry["request_id"]
            for entry in httpx.get(server.url_for("/_mockai/requests")).json()["data"]
        ]
        rows.first.click()
        expect(page.locator("#details")).to_contain_text(ids[-1])
