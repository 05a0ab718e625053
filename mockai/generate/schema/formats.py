"""String `format`s: a maker for each known format, and a check that a candidate is well-formed.

A maker asked to use Faker may return a value the check rejects; asked not to, it always makes a
well-formed one. Formats with a maker but no check are trusted; formats with no maker are unknown
and ignored.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from mockai.generate.schema.plausible import (
    clock,
    date,
    duration,
    email,
    hex_digits,
    ipv4,
    pick,
    text,
    uuid4,
    word,
)

if TYPE_CHECKING:
    from mockai.generate.schema.generator import Generator


def format_ok(fmt: str, value: str) -> bool:
    check = _FORMAT_CHECKS.get(fmt)
    if check is None:
        return True
    try:
        return bool(check(value))
    except ValueError:
        return False


def _date_ok(value: str) -> bool:
    return len(value) == 10 and bool(dt.date.fromisoformat(value))


_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
_TIME = re.compile(r"\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")  # fmt: skip
_DURATION = re.compile(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?")

_FORMAT_CHECKS: dict[str, Callable[[str], object]] = {
    "date-time": lambda v: _DATE_TIME.fullmatch(v) and _date_ok(v[:10]),
    "date": _date_ok,
    "time": _TIME.fullmatch,
    "email": _EMAIL.fullmatch,
    "idn-email": _EMAIL.fullmatch,
    "uri": _URI.fullmatch,
    "url": _URI.fullmatch,
    "iri": _URI.fullmatch,
    "uuid": _UUID.fullmatch,
    "ipv4": ipaddress.IPv4Address,
    "ipv6": ipaddress.IPv6Address,
    "hostname": _HOSTNAME.fullmatch,
    "duration": _DURATION.fullmatch,
}

# (generator, use Faker if there is one) -> a value; with False, one that is always well-formed.
FORMAT_MAKERS: dict[str, Callable[[Generator, bool], str]] = {
    "date-time": lambda g, _: f"{date(g.rng).isoformat()}T{clock(g.rng)}Z",
    "date": lambda g, _: date(g.rng).isoformat(),
    "time": lambda g, _: f"{clock(g.rng)}Z",
    "email": lambda g, faker: text(g, "email") if faker else email(g.rng),
    "idn-email": lambda g, faker: text(g, "email") if faker else email(g.rng),
    "uri": lambda g, faker: text(g, "url") if faker else f"https://example.com/{word(g.rng)}",
    "url": lambda g, faker: text(g, "url") if faker else f"https://example.com/{word(g.rng)}",
    "iri": lambda g, faker: text(g, "url") if faker else f"https://example.com/{word(g.rng)}",
    "uri-reference": lambda g, _: f"/{word(g.rng)}/{word(g.rng)}",
    "iri-reference": lambda g, _: f"/{word(g.rng)}/{word(g.rng)}",
    "uri-template": lambda g, _: f"https://example.com/{word(g.rng)}/{{id}}",
    "uuid": lambda g, _: uuid4(g.rng),
    "ipv4": lambda g, _: ipv4(g.rng),
    "ipv6": lambda g, _: "2001:db8:" + ":".join(hex_digits(g.rng, 4) for _ in range(6)),
    "hostname": lambda g, _: f"{word(g.rng)}.example.com",
    "idn-hostname": lambda g, _: f"{word(g.rng)}.example.com",
    "duration": lambda g, _: duration(g.rng),
    "json-pointer": lambda g, _: f"/{word(g.rng)}/{g.rng.randint(0, 9)}",
    "relative-json-pointer": lambda g, _: f"{g.rng.randint(0, 3)}/{word(g.rng)}",
    "regex": lambda g, _: f"^{word(g.rng)}[0-9]*$",
    "byte": lambda g, _: "".join(pick(g.rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef") for _ in range(8)),
    "password": lambda g, _: f"{word(g.rng).capitalize()}{g.rng.randint(100, 999)}!",
}
