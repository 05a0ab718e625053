"""Fixes from the sixth hunt: `/responses/compact` is an unknown route, scripted headers cannot
frame the answer, and chat's `top_logprobs` needs `logprobs: true`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import conformance
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk import sdk

from mockai import MockServer
from mockai.wire.errors import FRAMING_HEADERS, header_problem, scripted_header_problem

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with conformance.checked_server() as running:
        yield running


@pytest.fixture(scope="module")
def client(server: MockServer) -> Iterator[openai.OpenAI]:
    with sdk(server) as opened:
        yield opened


# --- 1. POST /responses/compact: the API's 404, not a response id's 405 -------------------------


def test_responses_compact_is_the_api_404_for_unknown_routes(
    server: MockServer, client: openai.OpenAI
) -> None:
    for compact in (client.responses.compact, client.beta.responses.compact):
        with pytest.raises(openai.NotFoundError) as refused:
            compact(model="gpt-4o-mini", input="hi")
        assert refused.value.body == {
            "message": "Invalid URL (POST /v1/responses/compact)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        assert "allow" not in refused.value.response.headers
    with httpx.Client(base_url=server.base_url) as http:
        for method in ("GET", "DELETE"):
            answer = http.request(method, "/v1/responses/compact")
            assert answer.status_code == 404
            assert answer.json()["error"]["message"] == (
                f"Invalid URL ({method} /v1/responses/compact)"
            )
        # Under a provider's name, that provider's 404; real response ids still route.
        named = http.post("/groq/openai/v1/responses/compact", json={})
        assert named.status_code == 404
        assert http.get("/v1/responses/resp_missing").status_code == 404
        assert http.post("/v1/responses/resp_x").status_code == 405


# --- 2. Scripted headers that frame the answer are refused at load ------------------------------

FRAMED = """mockai: 1
rules:
  - name: teapot
    match: {user: teapot}
    error:
      status: 400
      headers:
        x-fine: ok
        Content-Length: "5"
"""


def test_a_scenario_scripting_content_length_is_refused_with_its_line(tmp_path: Path) -> None:
    scenario = tmp_path / "framed.yaml"
    scenario.write_text(FRAMED)
    expected = f"{scenario}:9: rule 'teapot' error.headers: Content-Length cannot be scripted"
    done = subprocess.run(
        [sys.executable, "-m", "mockai", "check", str(scenario)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert expected in done.stdout + done.stderr
    served = subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--scenario", str(scenario)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Refused, it exits; served, it says where it listens (either ends the read).
        assert served.stdout is not None
        assert "listening" not in served.stdout.readline()
        _, stderr = served.communicate(timeout=60)
    finally:
        served.kill()
        served.wait(timeout=10)
    assert served.returncode == 2
    assert expected in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(
    "name",
    ["Transfer-Encoding", "content-length", "Connection", "content-encoding", "UPGRADE"],
)
def test_a_runtime_rule_scripting_a_framing_header_gets_the_api_400(
    server: MockServer, name: str
) -> None:
    rule = {"match": {"user": f"framed {name}"}, "error": {"status": 400, "headers": {name: "1"}}}
    with httpx.Client(base_url=server.base_url) as admin:
        refused = admin.post("/_mockai/rules", json=rule)
        if refused.status_code != 400:  # (kept, it would leave later requests unmatched)
            admin.delete("/_mockai/rules")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "mockai_invalid_rule"
    assert f"error.headers: {name} cannot be scripted" in error["message"]


def test_rules_with_a_framing_header_are_refused_whole_and_custom_headers_arrive(
    server: MockServer, client: openai.OpenAI
) -> None:
    custom = {
        "match": {"user": "custom header"},
        "error": {"status": 418, "message": "no tea", "headers": {"X-Teapot": "short and stout"}},
    }
    framed = {"match": {"user": "framed"}, "error": {"status": 400, "headers": {"TE": "x"}}}
    with httpx.Client(base_url=server.base_url) as admin:
        try:
            assert admin.post("/_mockai/rules", json=[custom, framed]).status_code == 400
            assert admin.get("/_mockai/rules").json()["data"] == []  # (none of the list added)
            assert admin.post("/_mockai/rules", json=custom).status_code == 200
            with pytest.raises(openai.APIStatusError) as refused:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "custom header"}]
                )
        finally:  # (a rule on the shared server would leave other requests unmatched)
            admin.delete("/_mockai/rules")
    assert refused.value.status_code == 418
    assert refused.value.body["message"] == "no tea"  # type: ignore[index]
    assert refused.value.response.headers["x-teapot"] == "short and stout"


@settings(max_examples=200)
@given(
    framing=st.sampled_from(sorted(FRAMING_HEADERS)).flatmap(
        lambda name: st.tuples(*(st.sampled_from([c.lower(), c.upper()]) for c in name))
    ),
    value=st.one_of(st.text(max_size=8), st.integers()),
    other=st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}", fullmatch=True),
)
def test_framing_headers_are_refused_in_any_case_and_others_as_before(
    framing: tuple[str, ...], value: object, other: str
) -> None:
    name = "".join(framing)
    problem = scripted_header_problem(name, value)
    assert problem is not None and name in problem
    if other.lower() not in FRAMING_HEADERS:
        assert scripted_header_problem(other, value) == header_problem(other, value)


# --- 3. Chat `top_logprobs` needs `logprobs: true` ----------------------------------------------


def test_top_logprobs_needs_logprobs_true(client: openai.OpenAI) -> None:
    for sent in (
        {"top_logprobs": 5},
        {"top_logprobs": 0, "logprobs": False},  # (0 is a value used: the spec's rule holds)
        {"top_logprobs": 2, "logprobs": None},
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, **sent)  # type: ignore[call-overload]
        assert refused.value.param == "top_logprobs", sent
        assert refused.value.code is None  # (the API's own 400 has none)
        assert refused.value.type == "invalid_request_error"
        assert "only allowed when 'logprobs' is enabled" in refused.value.message
    # With `logprobs: true` it is answered; a null `top_logprobs` is one not given.
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, logprobs=True, top_logprobs=2, max_tokens=3
    )
    entries = answer.choices[0].logprobs.content  # type: ignore[union-attr]
    assert entries and all(len(entry.top_logprobs) == 2 for entry in entries)
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, top_logprobs=None)
    assert plain.choices[0].logprobs is None


def test_top_logprobs_alone_is_openais_rule_only(client: openai.OpenAI) -> None:
    """Under another provider's prefix the request is that provider's to judge (OpenRouter,
    Ollama take `top_logprobs` as they take it): OpenAI's 400 is OpenAI's."""
    base = str(client.base_url).rstrip("/").removesuffix("/v1")
    for prefix in ("/openrouter/api/v1", "/ollama/v1"):
        answer = httpx.post(
            f"{base}{prefix}/chat/completions",
            json={"model": "gpt-4o-mini", "messages": HELLO, "top_logprobs": 2},
            headers={"Authorization": "Bearer sk-x"},
            timeout=10,
        )
        assert answer.status_code == 200, (prefix, answer.text)
