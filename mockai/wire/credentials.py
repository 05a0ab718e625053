"""Which headers carry credentials: one definition for everything mockai keeps.

The journal (`MockServer.requests`, `GET /_mockai/requests`) keeps such headers with their value
replaced; cassettes drop them. Both ask `is_credential_header`, so a header one of them protects is
protected by the other too.
"""

from __future__ import annotations

import functools
import re

# By name: the OpenAI / Azure / proxy / cookie headers, and account identifiers the API takes as
# headers (not secrets, but they name whose account a request was billed to).
CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "openai-organization",
        "openai-project",
        "cookie",
        "set-cookie",
    }
)
# And any header whose name has a credential word as one of its dash-separated parts
# (`x-portkey-api-key`, `ocp-apim-subscription-key`, `x-auth-token`, `helicone-auth`) — but not
# `x-ratelimit-remaining-tokens`, whose word is "tokens".
_CREDENTIAL_WORDS = re.compile(
    r"(^|-)(auth|authorization|apikey|api-key|key|token|secret|password|passwd|cookie|session)($|-)",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=1024)  # the same few names on every request
def is_credential_header(name: str) -> bool:
    """True for headers whose value must never be kept or shown (credentials, cookies, keys)."""
    lowered = name.lower()
    return lowered in CREDENTIAL_HEADERS or bool(_CREDENTIAL_WORDS.search(lowered))
