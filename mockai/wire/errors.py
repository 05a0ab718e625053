"""The errors the OpenAI API sends, with its status, `type`, `code`, wording and headers.

`named(name)` builds the scenario format's named errors (`rate_limit`, `server_error`, ...);
the other functions build the errors the request pipeline itself raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mockai.errors import ApiError
from mockai.wire import jsonbytes, sse

_SERVER_ERROR = (
    "The server had an error processing your request. Sorry about that! You can retry your "
    "request, or contact us through our help center at help.openai.com if you keep seeing "
    "this error."
)


def invalid_json() -> ApiError:
    """The body is not JSON."""
    return ApiError(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
        "contact us through our help center at help.openai.com.)",
    )


def invalid_url(method: str, path: str) -> ApiError:
    """No such endpoint."""
    return ApiError(404, f"Invalid URL ({method} {path})")


def invalid_method(method: str, path: str) -> ApiError:
    """The endpoint exists, the method does not."""
    return ApiError(405, f"Invalid method for URL ({method} {path})")


def missing_api_key() -> ApiError:
    """No `Authorization` header while a key is required."""
    return ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password "
        "field (with blank username) if you're accessing the API from your browser and are "
        "prompted for a username and password. You can obtain an API key from "
        "https://platform.openai.com/account/api-keys.",
    )


def incorrect_api_key(given: str) -> ApiError:
    """A key that is not the required one; the message masks it as the API does."""
    masked = given[:3] + "*" * 3 + given[-4:] if len(given) > 8 else "*" * len(given)
    return ApiError(
        401,
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def _rate_limit() -> ApiError:
    return ApiError(
        429,
        "Rate limit reached for requests. Please try again in 1s. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
        type="requests",
        code="rate_limit_exceeded",
        headers={"retry-after": "1", "retry-after-ms": "1000"},
    )


def _insufficient_quota() -> ApiError:
    return ApiError(
        429,
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        type="insufficient_quota",
        code="insufficient_quota",
    )


def _permission_denied() -> ApiError:
    return ApiError(
        403,
        "You are not allowed to sample from this model.",
        type="invalid_request_error",
        code="model_not_available",
    )


def _model_not_found() -> ApiError:
    return ApiError(
        404,
        "The model `gpt-unknown` does not exist or you do not have access to it.",
        code="model_not_found",
    )


def _context_length_exceeded() -> ApiError:
    return ApiError(
        400,
        "This model's maximum context length is 128000 tokens. However, your messages resulted "
        "in 130000 tokens. Please reduce the length of the messages.",
        param="messages",
        code="context_length_exceeded",
    )


def _bad_request() -> ApiError:
    return ApiError(400, "Invalid request.", code=None)


def _server_error() -> ApiError:
    return ApiError(500, _SERVER_ERROR, type="server_error")


def _bad_gateway() -> ApiError:
    return ApiError(502, "Bad gateway.", type="server_error", code="bad_gateway")


def _overloaded() -> ApiError:
    return ApiError(
        503,
        "The server is overloaded or not ready yet.",
        type="service_unavailable_error",
        code="server_is_overloaded",
        headers={"retry-after": "1", "retry-after-ms": "1000"},
    )


def _timeout() -> ApiError:
    return ApiError(504, "Gateway timeout.", type="server_error", code="timeout")


NAMED: Mapping[str, Callable[[], ApiError]] = {
    "rate_limit": _rate_limit,
    "insufficient_quota": _insufficient_quota,
    "invalid_api_key": lambda: incorrect_api_key("sk-mockai-invalid-key"),
    "permission_denied": _permission_denied,
    "model_not_found": _model_not_found,
    "context_length_exceeded": _context_length_exceeded,
    "bad_request": _bad_request,
    "server_error": _server_error,
    "bad_gateway": _bad_gateway,
    "overloaded": _overloaded,
    "timeout": _timeout,
}


def named(name: str) -> ApiError:
    """A fresh instance of the named error; KeyError lists the valid names."""
    try:
        return NAMED[name]()
    except KeyError:
        raise KeyError(
            f"'{name}' is not a named error. Valid names are: {', '.join(NAMED)}"
        ) from None


def stream_error_frame(sent: int) -> bytes:
    """The in-band error chat and completions streams carry: `data: {"error": {...}}`.

    The SDKs raise `APIError` on it (a top-level `error` key); `sent` is unused (the Responses
    API's own error event needs it for its sequence number).
    """
    error = ApiError(
        500,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
        code="server_error",
    )
    return sse.data_frame(jsonbytes.dumps(error.body()))
