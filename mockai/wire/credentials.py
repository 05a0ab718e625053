"""Which headers (and URL query parameters) carry credentials: one definition for everything
mockai keeps.

The journal (`MockServer.requests`, `GET /_mockai/requests`) keeps such headers with their value
replaced; cassettes drop them. Both ask `is_credential_header`, so a header one of them protects is
protected by the other too.
"""

from __future__ import annotations

import functools
import hmac
import itertools
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
# And any header whose name has a credential word among its words, the name split at `-`, `_`
# and camelCase boundaries (`x-portkey-api-key`, `ocp-apim-subscription-key`, `X-Api_Key`,
# `X-AccessToken`, `helicone-auth`), a word also in the plural or numbered (`X-Keys`,
# `X-Credentials`, `X-Api-Key2`, `Cookie2`): clients spell these names every way, and a header
# the journal shows or a cassette keeps is a leaked key. Not the rate-limit headers
# (`x-ratelimit-remaining-tokens`: a count, never a secret), nor `_NOT_CREDENTIALS`.
_CREDENTIAL_WORDS = frozenset(
    {
        "auth",
        "authorization",
        "apikey",
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "cookie",
        "session",
        "credential",
    }
)
# The same words run together in lower case (HTTP/2 and many proxies lower-case header names, so
# `X-AccessToken` may arrive as `x-accesstoken`), and Django's, PHP's and Java's session cookies
# sent as headers (`sessionid`, `phpsessid`, `jsessionid`).
_RUN_TOGETHER = re.compile(
    r"(api|access|auth|refresh|session|secret|private|client|bearer|id|user|app)"
    r"(token|key|secret|password|credential)|j?sessionid|phpsessid"
)
# A word's plural `s` and its number (`keys`, `key2`, `credentials`, `authorization2`).
_SUFFIX = re.compile(r"s?[0-9]*$")
# Names with a credential word that carry none: CORS's yes/no (`Access-Control-Allow-Credentials:
# true`), as words.
_NOT_CREDENTIALS = frozenset({("access", "control", "allow", "credentials")})
# Where a name's words meet: `-`, `_`, `.`, or a change of case (`AccessToken`, `APIKey`).
_SEPARATORS = re.compile(r"[-_.\s]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# Query parameters that carry a credential though their words are no credential word: signed
# URLs' signatures (Azure SAS `sig`, AWS `X-Amz-Signature`).
_SIGNATURE_WORDS = frozenset({"sig", "signature"})
# ... and words that make a parameter a pagination cursor (`pageToken`, `next_token`), not a key.
_CURSOR_WORDS = frozenset({"page", "next", "continuation", "cursor"})


def _words(name: str) -> tuple[str, ...]:
    # The lower-case words of a header or parameter name (`X-Api_Key` -> x, api, key).
    return tuple(word.lower() for word in _SEPARATORS.split(name) if word)


def _is_rate_limit(words: tuple[str, ...]) -> bool:
    return "ratelimit" in words or ("rate", "limit") in itertools.pairwise(words)


@functools.lru_cache(maxsize=1024)  # the same few names on every request
def is_credential_header(name: str) -> bool:
    """True for headers whose value must never be kept or shown (credentials, cookies, keys)."""
    if name.lower() in CREDENTIAL_HEADERS:
        return True
    words = _words(name)
    if _is_rate_limit(words) or words in _NOT_CREDENTIALS:
        return False
    return any(_is_credential_word(word) for word in words)


def _is_credential_word(word: str) -> bool:
    # `word` itself, or without its plural `s` or number (never empty: `s` alone is no word).
    return any(
        stem in _CREDENTIAL_WORDS or _RUN_TOGETHER.fullmatch(stem)
        for stem in {word, _SUFFIX.sub("", word, count=1)}
        if stem
    )


@functools.lru_cache(maxsize=256)
def is_credential_param(name: str) -> bool:
    """True for URL query parameters that carry a credential (`api-key`, `key`, `access_token`,
    `subscription-key`, `sig`, `X-Amz-Signature`), never pagination cursors (`pageToken`)."""
    words = _words(name)
    if any(word in _CURSOR_WORDS for word in words):
        return False
    return is_credential_header(name) or any(word in _SIGNATURE_WORDS for word in words)


def same_secret(given: str, expected: str) -> bool:
    """Whether a key or token sent is the one expected, compared in constant time (`==` stops at
    the first differing character, so a client could learn it from how fast each guess was
    refused). As bytes: `compare_digest` raises on a `str` past ASCII, and a header's bytes that
    are not UTF-8 arrive as lone surrogates, which `surrogatepass` encodes (different strings
    differently)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
