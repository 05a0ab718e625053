"""Picture links are built from the request's Host and X-Forwarded-Proto: whatever those hold,
the answer stays valid JSON and its link a URL a client can follow.

A client behind a proxy reaches mockai by another name, so links name the host the client used.
But a header can hold anything a client sends (a quote, a backslash, a space, bytes beyond
ASCII): taken as it was, a quote in the Host header ended the link's JSON string early and the
SDKs could not read the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples

from mockai import MockServer

_HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=30,
).filter(lambda value: value == value.strip())  # (h11 sends no value with outer spaces)
_PLAIN_HOST = re.compile(r"[A-Za-z0-9.-]{1,60}(:[0-9]{1,5})?|\[[0-9a-f:]{2,39}\](:[0-9]{1,5})?")


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(log_requests=False) as running:
        yield running


@settings(max_examples=examples(40), deadline=None)
@given(
    host=st.one_of(
        _HEADER_TEXT,
        st.sampled_from(['a"b', "a\\b", "x y", "", "[::1]:80", "é", "a[b", "h:1:2", "[", "::1"]),
    ),
    proto=st.one_of(_HEADER_TEXT, st.sampled_from(["https", "HTTPS", "https, http", 'ht"tp'])),
)
def test_any_host_and_scheme_give_valid_json_and_a_url(
    server: MockServer, host: str, proto: str
) -> None:
    answer = httpx.post(
        f"{server.url}/images/generations",
        json={"model": "dall-e-2", "prompt": "a cat", "size": "256x256", "response_format": "url"},
        headers={"Host": host.encode("latin-1"), "X-Forwarded-Proto": proto.encode("latin-1")},
        timeout=30,
    )
    if answer.status_code == 400 and not answer.headers.get("content-type", "").startswith(
        "application/json"
    ):
        return  # (aiohttp refused the header itself, before mockai saw the request)
    assert answer.status_code == 200, answer.text
    url = json.loads(answer.content)["data"][0]["url"]
    parts = urlsplit(url)
    wanted = proto.split(",")[0].strip().lower()
    assert parts.scheme == (wanted if wanted in ("http", "https") else "http")
    assert parts.netloc in (host, "127.0.0.1")
    assert parts.hostname is not None  # (and it parsed: a URL a client can follow)
    if _PLAIN_HOST.fullmatch(host):
        assert parts.netloc == host  # a name or address as clients send it is kept
    if any(c in host for c in '"\\ <>{}|^`') or not host.isascii():
        assert parts.netloc == "127.0.0.1"
    assert parts.path.startswith("/_mockai/images/img-")


def test_a_link_through_a_proxy_names_the_proxy(server: MockServer) -> None:
    answer = httpx.post(
        f"{server.url}/images/generations",
        json={"model": "dall-e-2", "prompt": "a cat", "size": "256x256", "response_format": "url"},
        headers={"Host": "mock.example:8443", "X-Forwarded-Proto": "https"},
    )
    url = answer.json()["data"][0]["url"]
    assert url.startswith("https://mock.example:8443/_mockai/images/img-")
    # The link works when followed to this server (the proxy's path to it).
    assert httpx.get(server.base_url + url.split("mock.example:8443", 1)[1]).status_code == 200
