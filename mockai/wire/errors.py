"""The errors the OpenAI API sends, with its status, `type`, `code`, wording and headers.

`named(name)` builds the scenario format's named errors (`rate_limit`, `server_error`, ...),
`from_spec` free-form ones (`{status: 503, retry_after: 2}`); the other functions build the
errors the request pipeline itself raises.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from mockai.delivery.timing import MAX_DURATION, go_duration, parse_duration
from mockai.errors import ApiError
from mockai.wire import jsonbytes, sse
from mockai.wire.outgoing import Body

DEFAULT_RETRY_AFTER = 1.0  # seconds, for 429 / 503 named errors that do not say

_SERVER_ERROR = (
    "The server had an error processing your request. Sorry about that! You can retry your "
    "request, or contact us through our help center at help.openai.com if you keep seeing "
    "this error."
)


def header_text(value: str) -> str:
    """`value`, the client's text echoed into an answer's header (the LiteLLM profile's model
    group, a warning naming a tool), with its control characters percent-encoded (`%0A`):
    aiohttp refuses to write them, and had dropped the connection with a traceback while the
    journal said 200. (Done where such text is put in a header, not on every answer's headers:
    a scan of them all cost ~9,000 instructions a chat request, bench/instructions.py.)"""
    return _NOT_IN_A_HEADER.sub(_percent, value)


def _percent(match: re.Match[str]) -> str:
    return f"%{ord(match.group()):02X}"


def invalid_json() -> ApiError:
    """The body is not JSON."""
    return ApiError(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
        "contact us through our help center at help.openai.com.)",
    )


def body_too_large(limit: int) -> ApiError:
    """A body over the server's size limit (64 MiB)."""
    return ApiError(
        413,
        f"Request body too large: the limit is {limit} bytes.",
        code="request_too_large",
    )


def bad_form(why: str) -> ApiError:
    """A multipart body that cannot be read as the form its Content-Type announces."""
    return ApiError(
        400,
        f"Could not parse multipart form: {why}. (HINT: let your HTTP library build the "
        "multipart body and its Content-Type header, boundary included.)",
    )


def invalid_url(method: str, path: str) -> ApiError:
    """No such endpoint."""
    return ApiError(404, f"Invalid URL ({method} {path})")


def invalid_method(method: str, path: str, allowed: str = "") -> ApiError:
    """The endpoint exists, the method does not (`allowed`: the methods it takes, which the
    `Allow` header names)."""
    headers = {"Allow": allowed} if allowed else None
    return ApiError(405, f"Invalid method for URL ({method} {path})", headers=headers)


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
    masked = jsonbytes.valid_unicode(masked)  # (undecodable header bytes)
    return ApiError(
        401,
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def retry_headers(seconds: float) -> dict[str, str]:
    """`retry-after` (whole seconds, rounded up, as the API sends) and the exact `retry-after-ms`.

    The SDKs read `retry-after-ms` first, so sub-second delays are honoured precisely.
    """
    # Rounded first, so that float noise (4.001 * 1000 = 4001.0000000000005) does not add a unit.
    return {
        "retry-after": str(max(1, math.ceil(round(seconds, 6)))),
        "retry-after-ms": str(max(1, math.ceil(round(seconds * 1000, 3)))),
    }


def _rate_limit(model: str | None, retry_after: float) -> ApiError:
    subject = f" for {model} in organization org-mockai on requests per min (RPM)" if model else ""
    headers = retry_headers(retry_after)
    # A 429 means the request budget is spent: say so in the headers clients and gateways read.
    headers["x-ratelimit-remaining-requests"] = "0"
    headers["x-ratelimit-reset-requests"] = go_duration(retry_after)
    return ApiError(
        429,
        f"Rate limit reached{subject}. Please try again in {go_duration(retry_after)}. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
        type="requests",
        code="rate_limit_exceeded",
        headers=headers,
    )


def _insufficient_quota(model: str | None, retry_after: float) -> ApiError:
    return ApiError(
        429,
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        type="insufficient_quota",
        code="insufficient_quota",
    )


def _invalid_api_key(model: str | None, retry_after: float) -> ApiError:
    return incorrect_api_key("sk-mockai-invalid-key")


def _permission_denied(model: str | None, retry_after: float) -> ApiError:
    return ApiError(
        403,
        "You are not allowed to sample from this model.",
        type="invalid_request_error",
        code="model_not_available",
    )


def _model_not_found(model: str | None, retry_after: float) -> ApiError:
    return ApiError(
        404,
        f"The model `{model or 'gpt-unknown'}` does not exist or you do not have access to it.",
        code="model_not_found",
    )


def _context_length_exceeded(model: str | None, retry_after: float) -> ApiError:
    # Said for the request it answers by `in_context` (its model's window, its endpoint's
    # wording); answered to no request (a fault on a route without a model), gpt-4o's window.
    return context_length_exceeded(128_000, "chat")


# The parameter holding the prompt, by endpoint (the Responses API's and embeddings' `input`);
# legacy completions name none.
_CONTEXT_PARAMS: dict[str, str | None] = {"chat": "messages", "completions": None}


def context_length_exceeded(window: int, endpoint: str) -> ApiError:
    """The named `context_length_exceeded` for a model with this `window` at `endpoint` (an
    `Endpoint` value): worded as mockai's own check words a prompt that does not fit
    (api/common.check_context; api/embeddings.py for embeddings), with a count a bit over it."""
    tokens = window + max(1, window // 64)  # (128,000: 130,000, the wire contract's example)
    if endpoint == "responses":
        return responses_context_exceeded()
    if endpoint == "embeddings":
        message = legacy_context_message(window, tokens, 0)
    elif endpoint == "completions":  # (a prompt asking the default `max_tokens`)
        message = legacy_context_message(window, tokens, 16)
    else:
        message = (
            f"This model's maximum context length is {window} tokens. However, your messages "
            f"resulted in {tokens} tokens. Please reduce the length of the messages."
        )
    param = _CONTEXT_PARAMS.get(endpoint, "input")
    return ApiError(400, message, param=param, code="context_length_exceeded")


def legacy_context_message(window: int, prompt: int, completion: int) -> str:
    """The legacy endpoints' words for a prompt and an answer that do not fit the window (legacy
    completions' and embeddings'), unlike chat's."""
    return (
        f"This model's maximum context length is {window} tokens, however you requested "
        f"{prompt + completion} tokens ({prompt} in your prompt; {completion} for the "
        "completion). Please reduce your prompt; or completion length."
    )


def responses_context_exceeded() -> ApiError:
    """The Responses API's 400 for an input past the model's context window: its own words,
    not chat's (it names no window and no count), as its clients see them logged (an agent's
    `Error code: 400 - {'error': {'message': 'Your input exceeds the context window of this
    model. ...', 'param': 'input', 'code': 'context_length_exceeded'}}`) and match them to
    compact or trim their context."""
    return ApiError(
        400,
        "Your input exceeds the context window of this model. Please adjust your input and "
        "try again.",
        param="input",
        code="context_length_exceeded",
    )


def in_context(error: ApiError, endpoint: str, window: Callable[[], int]) -> ApiError:
    """`error` as answered to a request at `endpoint` for a model whose context window
    `window()` says: a named `context_length_exceeded` (one no message or param was written
    for) says that window and the endpoint's parameter, as mockai's own check would; any other
    error is `error`, as it is."""
    if error.name != "context_length_exceeded":
        return error
    said = context_length_exceeded(window(), endpoint)
    placed = ApiError(
        error.status,
        said.message,
        type=error.type,
        param=said.param,
        code=error.code,
        headers=error.headers,  # (scripted retry headers stay)
        data=error.data,
    )
    placed.name = error.name  # (a provider profile still words it its own way)
    return placed


def _bad_request(model: str | None, retry_after: float) -> ApiError:
    return ApiError(400, "Invalid request.", code=None)


def _server_error(model: str | None, retry_after: float) -> ApiError:
    return ApiError(500, _SERVER_ERROR, type="server_error")


def _bad_gateway(model: str | None, retry_after: float) -> ApiError:
    return ApiError(502, "Bad gateway.", type="server_error", code="bad_gateway")


def _overloaded(model: str | None, retry_after: float) -> ApiError:
    return ApiError(
        503,
        "The server is overloaded or not ready yet.",
        type="service_unavailable_error",
        code="server_is_overloaded",
        headers=retry_headers(retry_after),
    )


def _timeout(model: str | None, retry_after: float) -> ApiError:
    return ApiError(504, "Gateway timeout.", type="server_error", code="timeout")


def _content_policy(model: str | None, retry_after: float) -> ApiError:
    # The image models' refusal: the GPT image models word it as `moderation_blocked`, DALL-E
    # (and any other model) as `content_policy_violation`.
    if model is not None and "gpt-image" in model:
        return ApiError(
            400,
            "Your request was rejected by the safety system. If you believe this is an error, "
            "contact us at help.openai.com and include the request ID.",
            type="image_generation_user_error",
            code="moderation_blocked",
        )
    return ApiError(
        400,
        "Your request was rejected as a result of our safety system. Your prompt may contain "
        "text that is not allowed by our safety system.",
        code="content_policy_violation",
    )


_Builder = Callable[[str | None, float], ApiError]

_BUILDERS: Mapping[str, _Builder] = {
    "rate_limit": _rate_limit,
    "insufficient_quota": _insufficient_quota,
    "invalid_api_key": _invalid_api_key,
    "permission_denied": _permission_denied,
    "model_not_found": _model_not_found,
    "context_length_exceeded": _context_length_exceeded,
    "bad_request": _bad_request,
    "server_error": _server_error,
    "bad_gateway": _bad_gateway,
    "overloaded": _overloaded,
    "timeout": _timeout,
    "content_policy": _content_policy,
}

# Name -> a fresh instance with the defaults (no model named, a one-second retry-after).
NAMED: Mapping[str, Callable[[], ApiError]] = {
    name: functools.partial(build, None, DEFAULT_RETRY_AFTER) for name, build in _BUILDERS.items()
}

# The statuses the SDKs retry (wire contract section 2): 408, 409, 429 and every 5xx.
RETRIED_STATUSES = frozenset({408, 409, 429})


def named(
    name: str,
    *,
    model: str | None = None,
    retry_after: float | None = None,
    should_retry: bool | None = None,
) -> ApiError:
    """A fresh instance of the named error; KeyError lists the valid names.

    `model` names the model in messages that mention one; `retry_after` (seconds) sets
    `retry-after` / `retry-after-ms` (on any error, as a free-form override); `should_retry`
    sends `x-should-retry`, which the SDKs obey over their status rules.
    """
    try:
        build = _BUILDERS[name]
    except KeyError:
        raise KeyError(
            f"'{name}' is not a named error. Valid names are: {', '.join(NAMED)}"
        ) from None
    error = build(model, DEFAULT_RETRY_AFTER if retry_after is None else retry_after)
    error.name = name
    return _with_retry_headers(error, retry_after, should_retry)


def _with_retry_headers(
    error: ApiError, retry_after: float | None, should_retry: bool | None
) -> ApiError:
    headers = dict(error.headers)
    if retry_after is not None:
        headers.update(retry_headers(retry_after))
    if should_retry is not None:
        headers["x-should-retry"] = "true" if should_retry else "false"
    error.headers = headers
    return error


# The named error each status starts from in a free-form `{status: ...}` error.
_BY_STATUS = {
    400: "bad_request",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "model_not_found",
    429: "rate_limit",
    500: "server_error",
    502: "bad_gateway",
    503: "overloaded",
    504: "timeout",
}
_FREE_FORM_KEYS = frozenset(
    {"name", "status", "type", "code", "param", "message", "headers", "retry_after", "should_retry"}
)


def from_spec(spec: Any, *, model: str | None = None) -> ApiError:
    """An error from a name (`"rate_limit"`) or a free-form mapping.

    The mapping takes `{status, type, code, param, message, headers, retry_after, should_retry}`
    (and optionally `name`, a named error to start from); anything not given comes from the named
    error for that status (`{status: 503}` is `overloaded`, with its `retry-after`) or, for other
    statuses, from the HTTP reason. ValueError says what is wrong.
    """
    if isinstance(spec, str):
        try:
            return named(spec, model=model)
        except KeyError as error:
            raise ValueError(error.args[0]) from None
    if not isinstance(spec, Mapping):
        raise ValueError("an error is a named error or a mapping such as {status: 503}")
    unknown = set(spec) - _FREE_FORM_KEYS
    if unknown:
        raise ValueError(
            f"unknown error key(s) {sorted(unknown)}; known: {sorted(_FREE_FORM_KEYS)}"
        )
    written = _header_map(spec.get("headers", {}))
    # The wait goes into the named error as it is built: its message ("Please try again in
    # 2.5s") and its `x-ratelimit-reset-*` say it as well as `retry-after` does. A scripted
    # `retry-after` / `retry-after-ms` header is that wait too: kept beside the named error's
    # default other header, the SDKs (which read `retry-after-ms` first) would wait 1 s.
    retry_after = _retry_after(spec["retry_after"]) if "retry_after" in spec else None
    wait = retry_after if retry_after is not None else written_wait(written)
    base = _base_error(spec, model, wait)
    for key in ("type", "code", "param", "message"):
        if key in spec:
            setattr(base, key, _optional_text(spec[key], key))
            base.name = None  # customised: rendered as written, in the provider's envelope
    if "message" in spec and base.message is None:
        raise ValueError("message must be a string")
    headers = {**base.headers, **written}
    if retry_after is not None:  # (`retry_after` says both headers, over written ones)
        headers.update(retry_headers(retry_after))
    elif _RETRY_HEADERS & set(written):
        # Written headers are sent as written; the other one says the same wait, or (a date,
        # a wait mockai cannot read) is left out rather than contradict them.
        computed = retry_headers(wait) if wait is not None else {}
        for name in _RETRY_HEADERS - set(written):
            headers.pop(name, None)
            if name in computed:
                headers[name] = computed[name]
    base.headers = headers
    should_retry = spec.get("should_retry")
    if should_retry is not None and not isinstance(should_retry, bool):
        raise ValueError(f"should_retry must be true or false, got {should_retry!r}")
    return _with_retry_headers(base, None, should_retry)


_RETRY_HEADERS = frozenset({"retry-after", "retry-after-ms"})


def written_wait(headers: Mapping[str, str]) -> float | None:
    """The wait, in seconds, that scripted retry headers say (`retry-after-ms` first, as the SDKs
    read them); None without them or when they are no number of seconds mockai takes (an HTTP
    date, `0`, `inf`), which the SDKs read as they are, or ignore."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        if name in headers:
            try:
                seconds = float(headers[name]) * scale
            except ValueError:
                continue  # (skipped, as the SDKs skip it: the next header says the wait)
            return seconds if 0 < seconds <= MAX_DURATION else None
    return None


def _base_error(spec: Mapping[str, Any], model: str | None, retry_after: float | None) -> ApiError:
    if "name" in spec:
        try:
            base = named(str(spec["name"]), model=model, retry_after=retry_after)
        except KeyError as error:
            raise ValueError(error.args[0]) from None
        if "status" in spec and _status(spec["status"]) != base.status:
            base.status = _status(spec["status"])
            base.name = None
        return base
    if "status" not in spec:
        raise ValueError("a free-form error needs a status (or the name of a named error)")
    status = _status(spec["status"])
    if status in _BY_STATUS:
        return named(_BY_STATUS[status], model=model, retry_after=retry_after)
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return ApiError(
        status, reason, type="invalid_request_error" if status < 500 else "server_error"
    )


def _status(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise ValueError(f"status must be an HTTP error status (400-599), got {value!r}")
    return value


def _optional_text(value: Any, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{key} must be a string or null, got {value!r}")


def _header_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError("headers must be a mapping of header names to values")
    for name, item in value.items():
        problem = scripted_header_problem(name, item)
        if problem is not None:
            raise ValueError(problem)
    return {str(name).lower(): str(item) for name, item in value.items()}


# A header name is an HTTP token (RFC 9110, section 5.6.2); a value may hold any visible text,
# spaces and tabs, but no other control character (CR and LF would end the header: HTTP has no
# way to send them, and the answer would fail as it is written).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NOT_IN_A_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_problem(name: Any, value: Any) -> str | None:
    """What makes a scripted header unsendable (the message names it), or None."""
    # (a YAML key may be a number: `429: ...` reads as an int, and digits make a token)
    if isinstance(name, bool) or not isinstance(name, str | int):
        return f"{name!r} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"
    if not _HEADER_NAME.fullmatch(str(name)):
        return f"{name!r} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"
    if isinstance(value, str) and _NOT_IN_A_HEADER.search(value):
        return f"{name} must be one line of text, without line breaks or control characters"
    return None


# Headers that say how the answer is framed or encoded on the wire: the server writes them to
# match the body it sends. Scripted, they would contradict it (`content-length: 5` leaves the
# rest of the body on a keep-alive connection, read as the next answer; `transfer-encoding:
# chunked` leaves the client waiting for chunks; `content-encoding: gzip` asks it to decode
# plain JSON). Cassettes' recorded ones are dropped at replay instead (cassette.replay).
FRAMING_HEADERS = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def scripted_header_problem(name: Any, value: Any) -> str | None:
    """What keeps a header a rule writes from being sent as written (the message names it), or
    None: `header_problem`'s, or a header mockai must write itself."""
    problem = header_problem(name, value)
    if problem is None and str(name).lower() in FRAMING_HEADERS:
        return (
            f"{name} cannot be scripted: mockai writes it to match the body it sends "
            f"(it says how the answer is framed or encoded)"
        )
    return problem


def _retry_after(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("retry_after must be more than 0")
    return seconds


GATEWAY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def gateway_page() -> Body:
    """The HTML 502 a reverse proxy (nginx, Cloudflare) sends when the API behind it fails."""
    return Body(502, GATEWAY_PAGE, content_type="text/html")


def stream_error() -> ApiError:
    """The error a broken chat or completions stream reports in-band (a provider profile sends
    it in its own envelope)."""
    return ApiError(
        500,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
        code="server_error",
    )


def stream_error_frame(sent: int) -> bytes:
    """The in-band error chat and completions streams carry: `data: {"error": {...}}`.

    The SDKs raise `APIError` on it (a top-level `error` key); `sent` is unused (the Responses
    API's own error event needs it for its sequence number).
    """
    return sse.data_frame(jsonbytes.dumps(stream_error().body()))
