"""Named and free-form errors: the status, type, code, wording and headers the API sends."""

from __future__ import annotations

import pytest
from aiohttp.http_writer import _serialize_headers
from hypothesis import given, settings
from hypothesis import strategies as st

from mockai.wire import errors

# (name, status, type, code, headers that must be present)
NAMED = [
    ("rate_limit", 429, "requests", "rate_limit_exceeded", {"retry-after", "retry-after-ms"}),
    ("insufficient_quota", 429, "insufficient_quota", "insufficient_quota", set()),
    ("invalid_api_key", 401, "invalid_request_error", "invalid_api_key", set()),
    ("permission_denied", 403, "invalid_request_error", "model_not_available", set()),
    ("model_not_found", 404, "invalid_request_error", "model_not_found", set()),
    ("context_length_exceeded", 400, "invalid_request_error", "context_length_exceeded", set()),
    ("bad_request", 400, "invalid_request_error", None, set()),
    ("server_error", 500, "server_error", None, set()),
    ("bad_gateway", 502, "server_error", "bad_gateway", set()),
    ("overloaded", 503, "service_unavailable_error", "server_is_overloaded", {"retry-after"}),
    ("timeout", 504, "server_error", "timeout", set()),
]


@pytest.mark.parametrize(("name", "status", "type_", "code", "headers"), NAMED)
def test_named_errors(
    name: str, status: int, type_: str, code: str | None, headers: set[str]
) -> None:
    error = errors.named(name)
    assert (error.status, error.type, error.code) == (status, type_, code)
    assert headers <= set(error.headers)
    assert set(error.body()["error"]) == {"message", "type", "param", "code"}
    assert errors.NAMED[name]().status == status


def test_named_error_options() -> None:
    error = errors.named("rate_limit", model="gpt-4o", retry_after=2.5, should_retry=True)
    assert error.message.startswith(
        "Rate limit reached for gpt-4o in organization org-mockai on requests per min (RPM). "
        "Please try again in 2.5s."
    )
    assert error.headers["retry-after"] == "3"  # whole seconds, rounded up
    assert error.headers["retry-after-ms"] == "2500"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert error.headers["x-should-retry"] == "true"
    assert "`gpt-x`" in errors.named("model_not_found", model="gpt-x").message
    with pytest.raises(
        KeyError, match=r"'nope' is not a named error\. Valid names are: rate_limit"
    ):
        errors.named("nope")


def test_free_form_errors_start_from_the_named_error_of_their_status() -> None:
    error = errors.from_spec({"status": 503})
    assert (error.status, error.code, error.headers["retry-after"]) == (
        503,
        "server_is_overloaded",
        "1",
    )
    error = errors.from_spec(
        {
            "status": 429,
            "type": "tokens",
            "message": "slow down",
            "retry_after": "300ms",
            "should_retry": False,
            "headers": {"X-Custom": 5},
        }
    )
    assert (error.type, error.code, error.message) == ("tokens", "rate_limit_exceeded", "slow down")
    assert error.headers["retry-after-ms"] == "300"
    assert error.headers["x-should-retry"] == "false"
    assert error.headers["x-custom"] == "5"
    teapot = errors.from_spec({"status": 418, "code": None})
    assert (teapot.status, teapot.message, teapot.type) == (
        418,
        "I'm a Teapot",
        "invalid_request_error",
    )
    gateway = errors.from_spec({"status": 599})
    assert (gateway.message, gateway.type) == ("Error", "server_error")
    named = errors.from_spec({"name": "overloaded", "status": 500, "retry_after": 2})
    assert (named.status, named.code, named.headers["retry-after"]) == (
        500,
        "server_is_overloaded",
        "2",
    )
    assert errors.from_spec("timeout").status == 504


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"status": 200}, "status must be an HTTP error status (400-599), got 200"),
        ({"type": "x"}, "a free-form error needs a status"),
        ({"status": 500, "colour": "red"}, "unknown error key(s) ['colour']"),
        ({"status": 500, "message": 5}, "message must be a string or null, got 5"),
        ({"status": 500, "headers": ["a"]}, "headers must be a mapping"),
        ({"status": 500, "headers": {"x-a": "b\r\nx-b: c"}}, "x-a must be one line of text"),
        ({"status": 500, "headers": {"x-a": "b\nc"}}, "x-a must be one line of text"),
        ({"status": 500, "headers": {"x-a": "b\x00"}}, "x-a must be one line of text"),
        ({"status": 500, "headers": {"x a": "b"}}, "'x a' is not a header name"),
        ({"status": 500, "headers": {"x:a": "b"}}, "'x:a' is not a header name"),
        ({"status": 500, "headers": {"": "b"}}, "'' is not a header name"),
        ({"status": 500, "retry_after": "soon"}, "'soon' is not a duration"),
        ({"status": 500, "should_retry": "no"}, "should_retry must be true or false"),
        ("explode", "'explode' is not a named error"),
        (7, "an error is a named error or a mapping"),
    ],
)
def test_free_form_error_problems(spec: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        errors.from_spec(spec)
    assert message in str(caught.value)


def test_gateway_page_is_html() -> None:
    page = errors.gateway_page()
    assert (page.status, page.content_type) == (502, "text/html")
    assert b"<title>502 Bad Gateway</title>" in page.body


def test_retry_headers_round_the_seconds_up() -> None:
    assert errors.retry_headers(0.3) == {"retry-after": "1", "retry-after-ms": "300"}
    assert errors.retry_headers(1.0001) == {"retry-after": "2", "retry-after-ms": "1001"}


@settings(max_examples=300)
@given(name=st.text(max_size=20), value=st.text(max_size=40))
def test_a_header_that_passes_the_check_can_be_sent(name: str, value: str) -> None:
    """Whatever a scripted or recorded header holds: if the check lets it through, aiohttp's
    header writer sends it, one line, as it is; a line break never gets through."""
    problem = errors.header_problem(name, value)
    if "\r" in value or "\n" in value or not name:
        assert problem is not None
    if problem is None:
        head = _serialize_headers("HTTP/1.1 200 OK", {name: value})
        assert head.count(b"\r\n") == 3  # the status line, the header, the blank line
        assert head.split(b"\r\n")[1] == f"{name}: {value}".encode()
