"""`mockai health` reaches the server it is meant for, and a cut answer says it was cut.

1. The Dockerfile's HEALTHCHECK (`mockai health`) probes the server directly: never through the
   `http_proxy` / `HTTP_PROXY` / `ALL_PROXY` Docker passes into containers (a proxy outside
   cannot reach the container's loopback), and on the address `MOCKAI_HOST` names (::1 for an
   IPv6-only server; a wildcard's loopback).
2. A rule's scripted `finish_reason` does not survive a `max_tokens` cut: an answer the output
   limit cuts says `length` (Responses: `incomplete`, `max_output_tokens`), streamed or not.

Properties: the probe's authority parses back to the address probed and the port; for any
scripted text, scripted finish reason and limit, the answer says `length` iff its tokens exceed
the limit, and the scripted reason otherwise.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conformance import checked_server
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from service_support import ServeProcess, free_port, repo_root
from strategies import examples, texts

from mockai import MockServer, tokens
from mockai.cli import _probe_authority

MOCKAI = str(Path(sys.executable).parent / "mockai")  # this environment's console script
PROXY_VARIABLES = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
)


def _health(port: int, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`mockai health` as the HEALTHCHECK runs it, with every proxy variable pointing at a port
    nothing listens on (a probe that goes through it fails)."""
    closed = f"http://127.0.0.1:{free_port()}"
    environ = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    environ.update(dict.fromkeys(PROXY_VARIABLES, closed))
    environ.update(MOCKAI_PORT=str(port), **env)
    return subprocess.run(
        [MOCKAI, "health", *args], env=environ, capture_output=True, text=True, timeout=20
    )


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")


# --- 1. the health probe --------------------------------------------------------------------------


def test_health_goes_around_the_proxy_variables() -> None:
    with MockServer(log_requests=False) as server:
        done = _health(server.port)
    assert done.returncode == 0, done.stderr
    assert f"http://127.0.0.1:{server.port}/_mockai/health: ok" in done.stdout


def test_health_with_a_url_goes_around_the_proxy_variables_too() -> None:
    with MockServer(log_requests=False) as server:
        done = _health(free_port(), "--url", server.url.removesuffix("/v1"))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("suffix", ["/v1", "/v1/", "", "/"])
def test_health_takes_the_base_url_clients_are_given(suffix: str) -> None:
    """`mockai health --url "$OPENAI_BASE_URL"` (what the banner prints, `.../v1`) probed
    `/v1/_mockai/health`, a 404: a healthy server was reported unhealthy."""
    with MockServer(log_requests=False) as server:
        done = _health(free_port(), "--url", server.url.removesuffix("/v1") + suffix)
    assert done.returncode == 0, done.stderr
    assert f"http://127.0.0.1:{server.port}/_mockai/health: ok" in done.stdout


@needs_ipv6
def test_health_probes_the_ipv6_loopback_a_server_is_bound_to() -> None:
    with MockServer(log_requests=False, host="::1") as server:
        done = _health(server.port, MOCKAI_HOST="::1")
    assert done.returncode == 0, done.stderr
    assert f"http://[::1]:{server.port}/_mockai/health: ok" in done.stdout


@needs_ipv6
def test_health_probes_the_ipv6_loopback_for_the_ipv6_wildcard() -> None:
    # `::` takes ::1 whether or not the machine makes it dual-stack (127.0.0.1 only if it is).
    with MockServer(log_requests=False, host="::") as server:
        done = _health(server.port, MOCKAI_HOST="::")
    assert done.returncode == 0, done.stderr
    assert f"http://[::1]:{server.port}/_mockai/health: ok" in done.stdout


@needs_ipv6
@pytest.mark.parametrize("host", ["[::1]", "[::]"])
def test_serve_listens_on_a_bracketed_ipv6_host_as_health_probes_it(host: str) -> None:
    """MOCKAI_HOST written as URLs write IPv6 addresses: `mockai health` took it, `mockai
    serve` stopped at once ("cannot listen on [[::1]]:0: Name or service not known")."""
    with ServeProcess(["--quiet"], env={"MOCKAI_HOST": host}) as served:
        assert served.base_url.startswith("http://[::")
        assert httpx.get(served.url + "/models", timeout=10).status_code == 200
        port = int(served.base_url.rpartition(":")[2])
        done = _health(port, MOCKAI_HOST=host)
    assert done.returncode == 0, done.stderr
    assert f"http://[::1]:{port}/_mockai/health: ok" in done.stdout


def test_health_of_nothing_is_still_unhealthy() -> None:
    done = _health(free_port())
    assert done.returncode == 1
    assert "/_mockai/health: " in done.stderr


@settings(max_examples=100, deadline=None)
@given(
    address=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
    port=st.integers(min_value=1, max_value=65535),
    bracketed=st.booleans(),
)
def test_the_probe_authority_is_the_address_or_its_family_s_loopback(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int, bracketed: bool
) -> None:
    host = str(address)
    written = f"[{host}]" if bracketed and address.version == 6 else host
    parts = urllib.parse.urlsplit(f"http://{_probe_authority(written, port)}/")
    assert parts.hostname is not None and parts.port == port
    expected = address
    if address.is_unspecified:
        expected = ipaddress.ip_address("127.0.0.1" if address.version == 4 else "::1")
    assert ipaddress.ip_address(parts.hostname) == expected


@pytest.mark.parametrize(("host", "probed"), [("", "127.0.0.1"), ("localhost", "localhost")])
def test_a_name_or_no_host_is_probed_as_the_server_binds_it(host: str, probed: str) -> None:
    assert _probe_authority(host, 8000) == f"{probed}:8000"


# --- 2. finish_reason after a cut -----------------------------------------------------------------

PROBE = "finish-probe"
CHAT_MODEL = "gpt-4o-mini"
LEGACY_MODEL = "gpt-3.5-turbo-instruct"
RESPONSES_FLOOR = 16  # the smallest max_output_tokens the Responses API takes


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    faq = str(repo_root() / "scenarios" / "faq.yaml")
    with checked_server(scenarios=(faq,)) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: MockServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def _events(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[6:])
        for line in text.split("\n")  # (not splitlines: a text's U+2028 is no line end in SSE)
        if line.startswith("data: {")  # ([DONE] is no JSON)
    ]


def _chat(http: httpx.Client, limit: int, stream: bool) -> str | None:
    body = {"model": CHAT_MODEL, "max_tokens": limit, "stream": stream}
    answer = http.post("/chat/completions", json={**body, "messages": [_user(PROBE)]})
    assert answer.status_code == 200, answer.text
    if not stream:
        return str(answer.json()["choices"][0]["finish_reason"])
    ends = [c["finish_reason"] for e in _events(answer.text) for c in e["choices"]]
    return ends[-1]


def _legacy(http: httpx.Client, prompt: str, limit: int, stream: bool) -> str | None:
    body = {"model": LEGACY_MODEL, "prompt": prompt, "max_tokens": limit, "stream": stream}
    answer = http.post("/completions", json=body)
    assert answer.status_code == 200, answer.text
    if not stream:
        return str(answer.json()["choices"][0]["finish_reason"])
    ends = [c["finish_reason"] for e in _events(answer.text) for c in e["choices"]]
    return ends[-1]


def _responses(http: httpx.Client, limit: int, stream: bool) -> tuple[str, Any]:
    body = {"model": CHAT_MODEL, "input": PROBE, "max_output_tokens": limit, "stream": stream}
    answer = http.post("/responses", json=body)
    assert answer.status_code == 200, answer.text
    response = _events(answer.text)[-1]["response"] if stream else answer.json()
    return response["status"], response["incomplete_details"]


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def test_the_shipped_faq_rule_cut_at_max_tokens_says_length(http: httpx.Client) -> None:
    prompt = "Q: Do you ship abroad?\nA:"  # legacy-prompt scripts `finish_reason: stop`
    assert _legacy(http, prompt, 3, stream=False) == "length"
    assert _legacy(http, prompt, 3, stream=True) == "length"
    assert _legacy(http, prompt, 100, stream=False) == "stop"  # it fits: the rule's reason


@settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    text=texts(min_size=1, max_size=20),
    scripted=st.sampled_from([None, "stop", "content_filter"]),
    # The limit around the text's length, so that about half the answers are cut.
    shortfall=st.integers(min_value=-6, max_value=6),
)
@example(text=" Yes, we ship to 40 countries.", scripted="stop", shortfall=5)
@example(text=" Yes, we ship to 40 countries.", scripted="content_filter", shortfall=1)
def test_a_cut_answer_says_length_whatever_the_rule_scripts(
    server: MockServer, http: httpx.Client, text: str, scripted: str | None, shortfall: int
) -> None:
    server.clear_rules()
    reply: dict[str, Any] = {"content": text}
    if scripted is not None:
        reply["finish_reason"] = scripted
    server.add_rule({"match": {"user": {"equals": PROBE}}, "reply": reply})
    length = len(tokens.split(text))
    limit = max(1, length - shortfall)
    expected = "length" if length > limit else (scripted or "stop")
    for stream in (False, True):
        assert _chat(http, limit, stream) == expected, stream
        assert _legacy(http, PROBE, limit, stream) == expected, stream
    # Responses: no limit below 16; a cut answer is incomplete for `max_output_tokens`.
    floor = max(limit, RESPONSES_FLOOR)
    reason = "length" if length > floor else scripted
    incomplete = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(
        reason or ""
    )
    for stream in (False, True):
        status, details = _responses(http, floor, stream)
        assert (status, details) == (
            ("incomplete", {"reason": incomplete}) if incomplete else ("completed", None)
        ), stream
