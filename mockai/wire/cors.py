"""CORS: browser apps call the API directly, and so they call mockai.

The API takes requests from any web page. openai-node runs in a browser with
`dangerouslyAllowBrowser`, and chat UIs such as chatgpt-web call `/v1/models` and
`/v1/chat/completions` from the page. The preflight a browser sends first (an `OPTIONS` with
`Access-Control-Request-Method`, without the key) is accepted. Its answer allows any origin,
the method asked for and the headers asked for (`Authorization` must be named, since a `*`
does not cover it). Answers to requests that carry an `Origin` say `Access-Control-Allow-Origin:
*` and expose `X-Request-ID`, as the API's do (its answers carry
`access-control-expose-headers: X-Request-ID`). So a browser's retry code cannot read
`retry-after` from mockai either.

Sources: chatgpt-web's maintainer on the API's preflight and `Access-Control-Allow-Origin: *`
(github.com/Niek/chatgpt-web/issues/330, 2026); a browser app working against
api.openai.com and not against a proxy without CORS (github.com/bricks-cloud/BricksLLM/issues/45);
an answer's headers seen with curl (github.com/morioka/tiny-openai-whisper-api/issues/7).

The admin API (`/_mockai/`) allows no other origin: a web page must not script the server.
"""

from __future__ import annotations

from collections.abc import Mapping

REQUEST_METHOD = "Access-Control-Request-Method"
REQUEST_HEADERS = "Access-Control-Request-Headers"

# On the answer to a request that came with an `Origin`.
ANSWER_HEADERS: Mapping[str, str] = {
    "access-control-allow-origin": "*",
    "access-control-expose-headers": "X-Request-ID",
}

# How long a browser may reuse a preflight's answer (Chromium caps it at two hours).
MAX_AGE = "7200"


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    """Whether a request is a browser's CORS preflight (not any OPTIONS request)."""
    return method == "OPTIONS" and REQUEST_METHOD in headers and "Origin" in headers


def preflight_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The answer's headers: any origin, the method and the headers the browser asked for."""
    allowed = {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": headers.get(REQUEST_METHOD, "").strip() or "POST",
        "access-control-max-age": MAX_AGE,
    }
    asked = headers.get(REQUEST_HEADERS, "").strip()
    if asked:
        allowed["access-control-allow-headers"] = asked
    return allowed
