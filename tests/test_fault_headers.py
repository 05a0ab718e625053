"""Any HTTP client, in any language, can ask for faults and latency with headers."""

from __future__ import annotations

import httpx

from mockai import MockServer


def test_any_http_client_can_ask_for_faults(server: MockServer) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=server.url) as http:
        limited = http.post(
            "/chat/completions", json=body, headers={"x-mockai-fault": "rate_limit"}
        )
        slow = http.post("/chat/completions", json=body, headers={"x-mockai-latency": "100-150ms"})
        bad = http.post("/chat/completions", json=body, headers={"x-mockai-latency": "soon"})
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "requests"
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    assert slow.status_code == 200 and slow.elapsed.total_seconds() >= 0.095
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "x-mockai-latency"
    assert "'soon' is not a duration" in bad.json()["error"]["message"]
