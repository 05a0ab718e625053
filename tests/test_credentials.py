"""Credential headers are kept nowhere: not in the journal, not in a recorded cassette.

One definition (`mockai.wire.credentials`) serves both; these tests send credential-like headers
through a recording server and look for their values everywhere mockai keeps requests.
"""

from __future__ import annotations

import json
import secrets
import string
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockai import MockServer
from mockai.wire.credentials import is_credential_header

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}

# Headers real clients send credentials in, by provider and gateway.
KNOWN = [
    "Authorization",
    "Proxy-Authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "Ocp-Apim-Subscription-Key",
    "X-Auth-Token",
    "anthropic-api-key",
    "x-portkey-api-key",
    "Helicone-Auth",
    "Cookie",
    "OpenAI-Organization",
    "OpenAI-Project",
]

_WORDS = ["auth", "authorization", "apikey", "api-key", "key", "token", "secret", "password"]
credential_names = st.builds(
    lambda prefix, word, suffix, upper: (
        (prefix + word + suffix).upper() if upper else prefix + word + suffix
    ),
    st.sampled_from(["", "x-", "x-my-", "proxy-", "helicone-", "ocp-apim-subscription-"]),
    st.sampled_from(_WORDS),
    st.sampled_from(["", "-id", "-v2"]),
    st.booleans(),
)


def _value() -> str:
    """A credential value that no key pattern recognises (only the header name can tell)."""
    return "cred" + "".join(secrets.choice(string.ascii_letters) for _ in range(24))


def _kept_nowhere(server: MockServer, value: str) -> None:
    journal = [json.dumps(entry.as_json()) for entry in server.requests]
    assert journal, "the request was journaled"
    assert not any(value in text for text in journal)
    over_http = httpx.get(server.url_for("/_mockai/requests")).text
    assert value not in over_http


def _record_with(name: str, value: str, folder: Path) -> None:
    cassette = folder / f"{secrets.token_hex(4)}.yaml"
    with MockServer(log_requests=False) as upstream:
        with MockServer(
            log_requests=False, cassette=str(cassette), record_mode="all", upstream=upstream.url
        ) as recorder:
            answer = httpx.post(
                recorder.url + "/chat/completions", json=CHAT, headers={name: value}
            )
            assert answer.status_code == 200, answer.text
            _kept_nowhere(recorder, value)
        _kept_nowhere(upstream, value)  # (mockai as the upstream keeps no credential either)
    text = cassette.read_text()
    assert "Say hello" in text  # the interaction was recorded
    assert value not in text


@pytest.mark.parametrize("name", KNOWN)
def test_known_credential_headers_are_kept_nowhere(name: str, tmp_path: Path) -> None:
    assert is_credential_header(name)
    _record_with(name, _value(), tmp_path)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=credential_names)
def test_credential_like_headers_are_kept_nowhere(name: str, tmp_path: Path) -> None:
    assert is_credential_header(name)
    _record_with(name, _value(), tmp_path)


def test_ordinary_headers_stay_readable() -> None:
    # The journal is for inspecting what clients sent: only credentials are hidden.
    headers = {"x-stainless-retry-count": "1", "x-test-case": "abc", "openai-beta": "assistants=v2"}
    with MockServer(log_requests=False) as server:
        httpx.post(server.url + "/chat/completions", json=CHAT, headers=headers)
        kept = server.requests[-1].headers
    assert {name: kept[name] for name in headers} == headers
    assert not is_credential_header("x-ratelimit-remaining-tokens")
