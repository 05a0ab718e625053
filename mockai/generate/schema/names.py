"""What a property is about, judging by its name: `created_at` a datetime, `age` a small number.

Names are split into lowercase tokens (`userEmail`, `user_email` -> `user`, `email`), plurals are
made singular, and the last tokens are looked up in word-pair and word tables.
"""

from __future__ import annotations

import re
from functools import lru_cache

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_QUERY_WORDS = frozenset({"query", "q", "question", "search", "prompt", "text", "input"})


@lru_cache(maxsize=1024)
def _tokens(name: str) -> tuple[str, ...]:
    return tuple(t for t in re.split(r"[^a-z0-9]+", _CAMEL.sub("_", name).lower()) if t)


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def is_query(name: str) -> bool:
    tokens = _tokens(name)
    return bool(tokens) and tokens[-1] in _QUERY_WORDS  # singular only: not a list of queries


@lru_cache(maxsize=1024)
def string_kind(name: str) -> str | None:
    """The kind of text a string property holds, judging by its name, or None."""
    tokens = tuple(_singular(t) for t in _tokens(name))
    if len(tokens) >= 2 and (kind := _PAIR_KINDS.get(tokens[-2:])) is not None:
        return kind
    if len(tokens) >= 2 and tokens[-1] in ("at", "on"):  # created_at, updated_on
        return "datetime"
    for token in reversed(tokens):
        if token in _WORD_KINDS:
            return _WORD_KINDS[token]
    return None


@lru_cache(maxsize=512)
def number_hint(name: str) -> tuple[float, float, int]:
    """A plausible (low, high, decimals) for a number named `name` (`age`, `price`, ...)."""
    for token in reversed(_tokens(name)):
        hint = _NUMBER_HINTS.get(_singular(token))
        if hint is not None:
            return hint
    return 0, 100, 2


def _kinds(**groups: str) -> dict[str, str]:
    """{word: kind} from kind=space-separated-words, to keep the table readable."""
    return {word: kind for kind, words in groups.items() for word in words.split()}


_WORD_KINDS = _kinds(
    name="name fullname author owner customer person contact recipient sender assignee",
    first_name="firstname forename",
    last_name="lastname surname",
    user_name="username login handle user",
    email="email mail",
    phone="phone mobile telephone tel fax",
    city="city town location place destination origin",
    country="country",
    state="state province region",
    address="address",
    street="street",
    postcode="zip zipcode postcode postal",
    company="company organization organisation org employer business vendor brand manufacturer "
    "publisher supplier",
    url="url uri website homepage link href",
    domain="domain host hostname",
    date="date",
    birthdate="birthday birthdate dob",
    datetime="datetime timestamp",
    time="time",
    title="title headline subject heading caption",
    sentence="description summary bio about comment note message content body reason explanation "
    "detail answer response feedback review instruction text reasoning rationale justification "
    "query question prompt input search",
    id="id identifier",
    uuid="uuid guid",
    currency="currency",
    language="language",
    language_code="lang",
    locale="locale",
    color="color colour",
    job="job occupation profession",
    word="word keyword tag label category topic genre type kind",
    timezone="timezone tz",
    ipv4="ip",
    slug="slug",
    password="password",
    token="token secret key",
    code="code sku",
    version="version",
    file_name="filename file",
    file_path="path filepath",
    status="status",
)
_PAIR_KINDS: dict[tuple[str, ...], str] = {
    ("first", "name"): "first_name", ("given", "name"): "first_name",
    ("middle", "name"): "first_name", ("last", "name"): "last_name",
    ("family", "name"): "last_name", ("full", "name"): "name", ("display", "name"): "name",
    ("user", "name"): "user_name", ("file", "name"): "file_name", ("company", "name"): "company",
    ("city", "name"): "city", ("country", "name"): "country", ("street", "name"): "street",
    ("country", "code"): "country_code", ("currency", "code"): "currency",
    ("language", "code"): "language_code", ("lang", "code"): "language_code",
    ("postal", "code"): "postcode", ("zip", "code"): "postcode", ("phone", "number"): "phone",
    ("email", "address"): "email", ("ip", "address"): "ipv4", ("street", "address"): "street",
    ("home", "page"): "url", ("web", "site"): "url",
}  # fmt: skip

_NUMBER_HINTS: dict[str, tuple[float, float, int]] = {
    "age": (18, 80, 0), "year": (1990, 2030, 0), "month": (1, 12, 0), "day": (1, 28, 0),
    "hour": (0, 23, 0), "minute": (0, 59, 0), "second": (0, 59, 0),
    "price": (1, 500, 2), "cost": (1, 500, 2), "amount": (1, 500, 2), "total": (1, 1000, 2),
    "fee": (1, 50, 2), "balance": (0, 5000, 2), "salary": (30000, 150000, 0),
    "budget": (100, 10000, 0), "quantity": (1, 10, 0), "qty": (1, 10, 0), "count": (1, 10, 0),
    "num": (1, 10, 0), "limit": (1, 20, 0), "page": (1, 5, 0), "k": (1, 10, 0),
    "latitude": (-90, 90, 4), "lat": (-90, 90, 4), "longitude": (-180, 180, 4),
    "lng": (-180, 180, 4), "lon": (-180, 180, 4), "rating": (1, 5, 1), "star": (1, 5, 0),
    "score": (0, 100, 1), "percent": (0, 100, 1), "percentage": (0, 100, 1),
    "temperature": (-10, 35, 1), "temp": (-10, 35, 1), "confidence": (0, 1, 2),
    "probability": (0, 1, 2), "weight": (1, 100, 1), "id": (1, 1000, 0), "distance": (1, 100, 1),
    "duration": (1, 120, 0), "population": (10_000, 20_000_000, 0),
    "inhabitant": (10_000, 20_000_000, 0), "resident": (10_000, 20_000_000, 0),
    "employee": (5, 5000, 0),
}  # fmt: skip


def name_tokens(name: str) -> tuple[str, ...]:
    """The lowercase words of a property name (`arrivalCity`, `arrival_city` -> arrival, city)."""
    return _tokens(name)
