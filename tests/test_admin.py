"""Admin endpoints: loopback clients only, unless the operator allows others."""

from __future__ import annotations

import socket
from unittest import mock

import httpx
import pytest
from aiohttp.test_utils import make_mocked_request

from mockai import create_app
from mockai.config import Config
from mockai.errors import ApiError
from mockai.server.admin import _check_client
from mockai.server.app import MockServer


def _request_from(address: str, config: Config) -> object:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (address, 50000) if name == "peername" else default
    )
    return make_mocked_request(
        "POST", "/_mockai/reset", app=create_app(config), transport=transport
    )


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.7", "2001:db8::1"])
def test_other_hosts_are_refused(address: str) -> None:
    with pytest.raises(ApiError) as raised:
        _check_client(_request_from(address, Config()))  # type: ignore[arg-type]
    assert raised.value.status == 403
    assert raised.value.code == "mockai_admin_forbidden"
    assert "--admin-remote" in raised.value.message


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1"])
def test_loopback_is_allowed(address: str) -> None:
    _check_client(_request_from(address, Config()))  # type: ignore[arg-type]


def test_admin_remote_allows_everyone() -> None:
    config = Config(admin_remote=True, admin_token="a-long-admin-token")
    _check_client(_request_from("10.1.2.3", config))  # type: ignore[arg-type]


def test_admin_over_http_from_loopback() -> None:
    with MockServer(log_requests=False) as server:
        assert httpx.post(server.url_for("/_mockai/reset")).json() == {"reset": True}
        assert httpx.get(server.url_for("/_mockai/health")).json()["status"] == "ok"


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        # nginx's `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`, its default Host
        ({"X-Forwarded-For": "203.0.113.9"}, False),
        ({"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}, False),  # through two proxies
        ({"X-Real-IP": "2001:db8::7"}, False),
        ({"Forwarded": 'for="[2001:db8::7]:4711";proto=https'}, False),
        ({"Forwarded": "for=192.0.2.60:51000, for=127.0.0.1"}, False),
        ({"Forwarded": "for=unknown"}, False),  # a proxy that hides who: not known to be local
        ({"X-Forwarded-For": "127.0.0.1"}, True),  # a local proxy relaying a local client
        ({"Forwarded": 'for="[::1]:4711"'}, True),
        ({}, True),
    ],
)
def test_a_client_a_local_proxy_forwards_is_not_taken_for_a_loopback_one(
    headers: dict[str, str], allowed: bool
) -> None:
    """Behind a reverse proxy on the same machine (nginx, ngrok), every client connects from
    loopback, with a loopback `Host` under nginx's default: the proxy's headers name the client."""
    with MockServer(log_requests=False) as server:
        answer = httpx.get(server.url_for("/_mockai/requests"), headers=headers)
        api = httpx.get(server.url + "/models", headers=headers)  # (the API is not affected)
    assert answer.status_code == (200 if allowed else 403), answer.text
    if not allowed:
        assert answer.json()["error"]["code"] == "mockai_admin_forbidden"
        assert "--admin-remote" in answer.json()["error"]["message"]
    assert api.status_code == 200


def test_with_admin_remote_a_proxied_client_with_the_token_is_let_in() -> None:
    token = "a-long-admin-token"
    with MockServer(log_requests=False, admin_remote=True, admin_token=token) as server:
        proxied = {"X-Forwarded-For": "203.0.113.9", "Authorization": f"Bearer {token}"}
        assert httpx.get(server.url_for("/_mockai/requests"), headers=proxied).status_code == 200


def _dual_stack() -> bool:
    """Whether this machine can listen on `::` (some CI containers have no IPv6 at all)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _dual_stack(), reason="this machine cannot listen on IPv6 at all")
def test_admin_over_ipv4_loopback_on_a_dual_stack_server() -> None:
    # A server bound to `::` sees an IPv4 client as `::ffff:127.0.0.1`: still loopback.
    with MockServer(host="::", log_requests=False) as server:
        url = f"http://127.0.0.1:{server.port}/_mockai/requests"
        answer = httpx.get(url)
        assert answer.status_code == 200, answer.text
        assert answer.json()["object"] == "list"


@pytest.mark.parametrize("address", ["::ffff:127.0.0.1", "::ffff:127.8.9.10"])
def test_ipv4_mapped_loopback_is_allowed(address: str) -> None:
    _check_client(_request_from(address, Config()))  # type: ignore[arg-type]


def test_ipv4_mapped_other_hosts_are_refused() -> None:
    with pytest.raises(ApiError):
        _check_client(_request_from("::ffff:10.1.2.3", Config()))  # type: ignore[arg-type]


def test_the_journal_is_also_at_its_own_name() -> None:
    """`/_mockai/journal` (the name ARCHITECTURE.md gives the admin endpoint) is the journal:
    the same page as `/_mockai/requests`, and `DELETE` empties it."""
    with MockServer(log_requests=False) as server:
        httpx.post(server.url + "/embeddings", json={"model": "m", "input": "a"}, timeout=10)
        httpx.get(server.url + "/models", timeout=10)
        by_name = httpx.get(server.url_for("/_mockai/journal"), timeout=10)
        assert by_name.status_code == 200, by_name.text
        listed = httpx.get(server.url_for("/_mockai/requests"), timeout=10).json()
        assert by_name.json() == listed
        assert [e["path"] for e in listed["data"]] == ["/v1/embeddings", "/v1/models"]
        assert httpx.delete(server.url_for("/_mockai/journal"), timeout=10).status_code == 200
        assert server.requests == []
        assert httpx.post(server.url_for("/_mockai/journal"), timeout=10).status_code == 405
