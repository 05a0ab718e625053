"""String `format`s: a maker for each known format, and a check that a candidate is well-formed.

A maker asked to use Faker may return a value the check rejects; asked not to, it always makes a
well-formed one. Formats with a maker but no check are trusted; formats with no maker are unknown
and ignored.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from mockai.generate.schema.names import name_tokens
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
    except ValueError:  # (base64's binascii.Error and ipaddress's errors are ValueErrors)
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
_BASE64URL = re.compile(r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?")
_MULTI_HOST_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#]+[^\s]*")


def _uuid_version(version: int) -> Callable[[str], bool]:
    """pydantic's UUID1 / UUID3 / UUID4 / UUID5 (`format: uuid4`) check the version."""
    return lambda v: bool(_UUID.fullmatch(v)) and uuid.UUID(v).version == version


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
    # Formats pydantic writes for its own types: its `.parse()` rejects other strings.
    **{f"uuid{version}": _uuid_version(version) for version in (1, 3, 4, 5)},
    "ipvanyaddress": ipaddress.ip_address,
    "ipv4network": ipaddress.IPv4Network,  # (strict: no host bits set, as pydantic wants)
    "ipv6network": ipaddress.IPv6Network,
    "ipvanynetwork": ipaddress.ip_network,
    "ipv4interface": ipaddress.IPv4Interface,
    "ipv6interface": ipaddress.IPv6Interface,
    "ipvanyinterface": ipaddress.ip_interface,
    "multi-host-uri": _MULTI_HOST_URI.fullmatch,
    "base64": lambda v: base64.b64decode(v, validate=True) is not None,
    "base64url": _BASE64URL.fullmatch,
}


def _ipv6(g: Generator) -> str:
    return "2001:db8:" + ":".join(hex_digits(g.rng, 4) for _ in range(6))


def _network(g: Generator, v6: bool, interface: bool) -> str:
    """`10.42.7.0/24`, or with `interface` a host in it (`10.42.7.19/24`)."""
    if v6:
        prefix = pick(g.rng, ("48", "56", "64"))
        address = _ipv6(g)
    else:
        prefix = pick(g.rng, ("16", "20", "24", "28"))
        address = ipv4(g.rng)
    if interface:
        return f"{address}/{prefix}"
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _uuid(version: int) -> Callable[[Generator, bool], str]:
    return lambda g, _: str(uuid.UUID(int=g.rng.getrandbits(128), version=version))


def _encoded(g: Generator, encode: Callable[[bytes], bytes]) -> str:
    return encode(f"{word(g.rng)} {word(g.rng)}".encode()).decode()


def _path(g: Generator, faker: bool) -> str:
    return text(g, "file_path")  # (Faker's when there is one)


# URLs of the scheme a property's name asks for (`redis_url`, `mongo_dsn`, `file_url`): pydantic's
# RedisDsn, MongoDsn, FileUrl, ... are `format: uri` (PostgresDsn, MongoDsn, NatsDsn
# `multi-host-uri`) and refuse another scheme. By name token; `{w}` is a word.
_GENERIC = ("database", "db", "dsn", "sqlalchemy")
_SCHEMES: dict[str, str] = {
    **dict.fromkeys(
        ("postgres", "postgresql", "pg", "psql", *_GENERIC),
        "postgresql://app:secret@localhost:5432/{w}",
    ),
    **dict.fromkeys(("mongo", "mongodb"), "mongodb://app:secret@localhost:27017/{w}"),
    **dict.fromkeys(("redis", "cache"), "redis://localhost:6379/0"),
    **dict.fromkeys(("amqp", "rabbit", "rabbitmq", "broker"), "amqp://app:secret@localhost:5672/"),
    "kafka": "kafka://localhost:9092",
    "mysql": "mysql://app:secret@localhost:3306/{w}",
    "mariadb": "mariadb://app:secret@localhost:3306/{w}",
    **dict.fromkeys(("cockroach", "cockroachdb"), "cockroachdb://app:secret@localhost:26257/{w}"),
    "nats": "nats://localhost:4222",
    "clickhouse": "clickhouse+native://app:secret@localhost:9000/{w}",
    "snowflake": "snowflake://app:secret@account.example.com/{w}",
    "ftp": "ftp://ftp.example.com/{w}.txt",
    **dict.fromkeys(("ws", "wss", "websocket", "socket"), "wss://example.com/{w}"),
    "file": "file:///data/{w}.txt",
}
_URI_FORMATS = frozenset({"uri", "url", "iri", "multi-host-uri"})
_HTTP_URL_MAX_LENGTH = 2083  # pydantic's HttpUrl and WebsocketUrl say this: http(s) / ws(s) only


def named_uri(gen: Generator, fmt: str, name: str, max_length: object) -> str | None:
    """A URL with the scheme `name` suggests, for a URI `fmt`; None if it suggests none."""
    if fmt not in _URI_FORMATS:
        return None
    tokens = name_tokens(name)
    # `mongo_dsn` is MongoDB's: a product's name before a generic `dsn` / `db`
    found = [token for token in tokens if token in _SCHEMES]
    found.sort(key=lambda token: token in _GENERIC)
    if found:
        template = _SCHEMES[found[0]]
        if max_length == _HTTP_URL_MAX_LENGTH and not template.startswith("wss:"):
            return None
        return template.replace("{w}", word(gen.rng))
    if fmt == "multi-host-uri":  # PostgresDsn, most often
        return _SCHEMES["postgres"].replace("{w}", word(gen.rng))
    return None


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
    "ipv6": lambda g, _: _ipv6(g),
    "hostname": lambda g, _: f"{word(g.rng)}.example.com",
    "idn-hostname": lambda g, _: f"{word(g.rng)}.example.com",
    "duration": lambda g, _: duration(g.rng),
    "json-pointer": lambda g, _: f"/{word(g.rng)}/{g.rng.randint(0, 9)}",
    "relative-json-pointer": lambda g, _: f"{g.rng.randint(0, 3)}/{word(g.rng)}",
    "regex": lambda g, _: f"^{word(g.rng)}[0-9]*$",
    "byte": lambda g, _: "".join(pick(g.rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef") for _ in range(8)),
    "password": lambda g, _: f"{word(g.rng).capitalize()}{g.rng.randint(100, 999)}!",
    **{f"uuid{version}": _uuid(version) for version in (1, 3, 4, 5)},
    "ipvanyaddress": lambda g, _: ipv4(g.rng),
    "ipv4network": lambda g, _: _network(g, v6=False, interface=False),
    "ipv6network": lambda g, _: _network(g, v6=True, interface=False),
    "ipvanynetwork": lambda g, _: _network(g, v6=False, interface=False),
    "ipv4interface": lambda g, _: _network(g, v6=False, interface=True),
    "ipv6interface": lambda g, _: _network(g, v6=True, interface=True),
    "ipvanyinterface": lambda g, _: _network(g, v6=False, interface=True),
    "multi-host-uri": lambda g, _: _SCHEMES["postgres"].replace("{w}", word(g.rng)),
    "path": _path,
    "base64": lambda g, _: _encoded(g, base64.b64encode),
    "base64url": lambda g, _: _encoded(g, base64.urlsafe_b64encode),
}
