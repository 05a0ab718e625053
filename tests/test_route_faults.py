"""`--chaos` and `x-mockai-fault` reach every API route, not only the generating endpoints: the
model list (the probe apps and gateways make at start-up), conversations and the stored lists
had none, and a malformed header there was ignored instead of the 400 every other route gives
(ARCHITECTURE.md: chaos is "over all traffic"; docs/faults.md)."""

from __future__ import annotations

import httpx
import openai
import pytest

from mockai import MockServer

ROUTES = [
    ("GET", "/models"),
    ("GET", "/models/gpt-4o-mini"),
    ("POST", "/conversations"),
    ("GET", "/chat/completions"),
    ("GET", "/files"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_chaos_reaches_a_route_that_generates_nothing(method: str, path: str) -> None:
    with MockServer(chaos={"rate_limit": 1.0}, log_requests=False) as server:
        answer = httpx.request(method, server.url + path, json={} if method == "POST" else None)
        assert answer.status_code == 429
        assert answer.json()["error"]["code"] == "rate_limit_exceeded"
        assert answer.headers["retry-after"] == "1"
        # The admin routes and a browser's preflight take no fault.
        assert httpx.get(server.url_for("/_mockai/health")).status_code == 200
        preflight = httpx.options(
            server.url + path,
            headers={"Origin": "http://app.test", "Access-Control-Request-Method": method},
        )
        assert preflight.status_code == 200
        [entry] = [e for e in server.requests if e.path.endswith(path) and e.method == method]
        assert (entry.source, entry.rule, entry.faults) == ("fault", "chaos", ["rate_limit"])


def test_the_same_seed_gives_the_model_list_the_same_faults() -> None:
    def statuses(seed: int) -> list[int]:
        chaos = {"server_error": 0.5}
        with (
            MockServer(chaos=chaos, seed=seed, log_requests=False) as server,
            httpx.Client() as http,
        ):
            return [http.get(f"{server.url}/models/gpt-4o?n={n}").status_code for n in range(24)]

    first = statuses(7)
    assert first == statuses(7)
    assert {200, 500} <= set(first)


def test_the_header_on_the_model_list_fails_the_first_attempts_then_the_sdk_gets_it() -> None:
    with MockServer(log_requests=False) as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=3)
        faulted = client.with_options(
            default_headers={"x-mockai-fault": "rate_limit;retry_after=10ms;attempts=2"}
        )
        assert any(model.id == "gpt-4o-mini" for model in faulted.models.list().data)
        assert [entry.status for entry in server.requests] == [429, 429, 200]
        assert [entry.retry_count for entry in server.requests] == [0, 1, 2]


@pytest.mark.parametrize(
    ("header", "status", "code"),
    [
        ("bogus", 400, "mockai_invalid_header"),
        ("server_error", 500, None),
        ("overloaded", 503, "server_is_overloaded"),
    ],
)
def test_the_header_on_the_model_list_is_read_as_anywhere(
    header: str, status: int, code: str | None
) -> None:
    with MockServer(log_requests=False) as server:
        answer = httpx.get(server.url + "/models", headers={"x-mockai-fault": header})
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


def test_connection_faults_reach_the_model_list() -> None:
    with MockServer(log_requests=False) as server, httpx.Client(timeout=5) as http:
        with pytest.raises(httpx.RemoteProtocolError):  # cut halfway through its JSON body
            http.get(server.url + "/models", headers={"x-mockai-fault": "disconnect"})
        page = http.get(server.url + "/models", headers={"x-mockai-fault": "non_json"})
        assert (page.status_code, page.headers["content-type"].split(";")[0]) == (502, "text/html")
        with pytest.raises(httpx.ReadTimeout):
            http.get(server.url + "/models", headers={"x-mockai-fault": "hang"}, timeout=0.5)
