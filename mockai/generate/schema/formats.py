"""String `format`s: a maker for each known format, and a check that a candidate is well-formed.

A maker asked to use Faker may return a value the check rejects; asked not to, it always makes a
well-formed one. Formats with a maker but no check are trusted; formats with no maker are unknown
and ignored.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import random
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
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


_CLOCK = r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)"
_DATE_TIME = re.compile(rf"\d{{4}}-\d\d-\d\d[Tt ]{_CLOCK}")
_TIME = re.compile(_CLOCK)
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")  # (no empty label: `x@mail.acme.`)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]*")
# `http:` or `https://` with no host: pydantic's URLs (WHATWG's) refuse them
_NO_HOST = re.compile(r"(?i)(https?|wss?|ftp):(?!/*[^/?#])\S*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")  # fmt: skip
_DURATION = re.compile(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?")
_BASE64URL = re.compile(r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?")
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[^\s/?#@:,\[\]]+)(?::\d{1,5})?"  # (a port is digits)
_MULTI_HOST_URI = re.compile(
    rf"[A-Za-z][A-Za-z0-9+.-]*://(?:[^\s/?#@]*@)?{_HOST}(?:,{_HOST})*(?:[/?#]\S*)?"
)
# pydantic's NameEmail: `Jane Doe <jane@example.com>` (its "pretty" form, as it parses it) or a
# bare address.
_ADDRESS = r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+"
_NAME_EMAIL = re.compile(rf"(?:(?:[\w.'+-]+ )*[\w.'+-]+ <{_ADDRESS}>)|{_ADDRESS}")


def _text(decoded: bytes) -> bool:
    """True if `decoded` is UTF-8 (raises if not)."""
    return decoded.decode() is not None


def _uuid_version(version: int) -> Callable[[str], bool]:
    """pydantic's UUID1 / UUID3 / UUID4 / UUID5 (`format: uuid4`) check the version."""
    return lambda v: bool(_UUID.fullmatch(v)) and uuid.UUID(v).version == version


_FORMAT_CHECKS: dict[str, Callable[[str], object]] = {
    "date-time": lambda v: _DATE_TIME.fullmatch(v) and _date_ok(v[:10]),
    "date": _date_ok,
    "time": _TIME.fullmatch,
    "email": _EMAIL.fullmatch,
    "idn-email": _EMAIL.fullmatch,
    **dict.fromkeys(
        ("uri", "url", "iri"), lambda v: _URI.fullmatch(v) and not _NO_HOST.fullmatch(v)
    ),
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
    # Base64 of text: pydantic's Base64Str decodes it to a str. (b64decode takes `sbG8=`,
    # surplus padding and all; pydantic does not.)
    "base64": lambda v: len(v) % 4 == 0 and _text(base64.b64decode(v, validate=True)),
    "base64url": lambda v: _BASE64URL.fullmatch(v) and _text(base64.urlsafe_b64decode(v)),
    "name-email": _NAME_EMAIL.fullmatch,
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


def _name_email(g: Generator, faker: bool) -> str:
    """`Jane Doe <jane.doe@example.com>`: the address made of the name's words (kept to the
    characters pydantic takes in a name unquoted, so it is well-formed with Faker's names too)."""
    name = " ".join(re.findall(r"[\w.'+-]+", text(g, "name")))
    local = ".".join(re.findall(r"[a-z0-9]+", name.lower())) or "jane"
    return f"{name or 'Jane'} <{local}@example.com>"


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
    "name-email": _name_email,
    "base64": lambda g, _: _encoded(g, base64.b64encode),
    "base64url": lambda g, _: _encoded(g, base64.urlsafe_b64encode),
}


# --- values sized to length bounds, or spliced with a pattern's expansion -------------------------

# Short well-formed values of each checked format, tried when the length bounds or a pattern rule
# out the plausible ones. Where one holds a marker, that many filler characters can go there to
# reach a length: letters (a dot now and then, so no label passes 63), digits, or base64 quads.
_LETTERS, _DIGITS, _QUADS = _MARKERS = "\0", "\1", "\2"


def _grouped(widths: Sequence[int], digits: str, sep: str) -> str:
    return sep.join(digits[:width] for width in widths)


def _spread(total: int, count: int, widest: int) -> list[int] | None:
    """`count` widths of 1..`widest` adding up to `total` (None if none do)."""
    if not count <= total <= count * widest:
        return None
    return [total // count + (index < total % count) for index in range(count)]


def _ip_shapes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An IPv4 address of each length it can have (7-15), and an IPv6 one (2-39; the loopback
    first: it reads better than `::`)."""
    v4 = [_grouped(_spread(n - 3, 4, 3) or [], "100", ".") for n in range(7, 16)]
    v6 = ["::1", "::"]
    for length in range(4, 40):
        for count in range(1, 9):  # `::` and up to 7 groups, or 8 groups without it
            widths = _spread(length - (7 if count == 8 else count + 1), count, 4)
            if widths is not None:
                v6.append(("" if count == 8 else "::") + _grouped(widths, "1000", ":"))
                break
    return tuple(v4), tuple(v6)


def _networks(addresses: Sequence[str], bits: int) -> tuple[str, ...]:
    """Networks of many lengths with no host bits set, as pydantic wants: each address as its
    own network, and a few zero ones (a pattern's `/24` takes the place of their prefix)."""
    if bits == 32:
        zero = ["0.0.0.0/0", "10.0.0.0/8", "100.0.0.0/8", "100.100.0.0/16", "100.100.100.0/24"]
    else:  # (`::1000` reversed is `0001::`: high bits set, for `/32` and the like)
        zero = ["::/0", "::/64", *(f"{address[::-1]}/128" for address in addresses)]
    return (*addresses, *(f"{address}/{bits}" for address in addresses), *zero)


def _interfaces(addresses: Sequence[str], bits: int) -> tuple[str, ...]:
    return (*addresses, *(f"{address}/{bits}" for address in addresses))


_V4, _V6 = _ip_shapes()
_V4_NETWORKS, _V6_NETWORKS = _networks(_V4, 32), _networks(_V6, 128)
_DAYS = ("2024-01-01", "2024-10-20")  # (`^1987-11-3` takes the second: there is no 11-31)
_TIMES = ("00:00:00Z", "00:00:00.0\1Z", "00:00:00+00:00", "00:00:00.0\1+00:00")
_EMAILS = ("a@b\0.co", "a\0@b.co")
_URIS = ("http://a\0.io", "http://a.io/\0", "urn:a\0")
_SHAPES: dict[str, tuple[str, ...]] = {
    "date-time": tuple(f"{day}T{time}" for day in _DAYS for time in _TIMES),
    "date": _DAYS,
    "time": _TIMES,
    "email": _EMAILS,
    "idn-email": _EMAILS,
    "name-email": ("A\0 <a@b.co>", *_EMAILS),
    **dict.fromkeys(("uri", "url", "iri"), _URIS),
    "multi-host-uri": ("postgres://a\0", "postgresql://a\0"),
    "uuid": ("00000000-0000-4000-8000-000000000000",),
    **{f"uuid{v}": (f"00000000-0000-{v}000-8000-000000000000",) for v in (1, 3, 4, 5)},
    "ipv4": _V4,
    "ipv6": _V6,
    "ipvanyaddress": _V4 + _V6,
    "ipv4network": _V4_NETWORKS,
    "ipv6network": _V6_NETWORKS,
    "ipvanynetwork": _V4_NETWORKS + _V6_NETWORKS,
    "ipv4interface": _interfaces(_V4, 32),
    "ipv6interface": _interfaces(_V6, 128),
    "ipvanyinterface": _interfaces(_V4, 32) + _interfaces(_V6, 128),
    "hostname": ("a\0.io", "a\0"),
    "duration": ("P1\1D", "PT1\1S"),
    "base64": ("\2",),
    "base64url": ("\2",),
}


def shaped(
    rng: random.Random,
    fmt: str,
    low: int,
    high: int | None,
    plausible: Sequence[str] = (),
    fixed: str = "",
    at_start: bool = True,
) -> Iterator[str]:
    """Values of `fmt` (the `plausible` ones, then its short shapes) that start (`at_start`) or
    end with `fixed` and have a length in [low, high] where a shape can stretch to one.

    `fixed` (a pattern's expansion: `2024-`, `@acme.com`) takes the place of a shape's start up to
    a character `fixed` ends with (`jane@example.com` -> `jane` + `@acme.com`, at the end), or of
    as many characters as it has. The caller checks format, pattern and length.
    """
    if any(marker in fixed for marker in _MARKERS):
        return
    shapes = (*plausible, *_SHAPES.get(fmt, ()))
    seen: set[str] = set()
    for every in (False, True):  # the likely cuts of all shapes first
        for shape in shapes:
            for spliced in _spliced(shape, fixed, at_start, every):
                if spliced not in seen:
                    seen.add(spliced)
                    value = _filled(rng, spliced, low, high)
                    if value is not None:
                        yield value


def _spliced(shape: str, fixed: str, at_start: bool, every: bool) -> Iterator[str]:
    """`fixed` in the place of `shape`'s start: up to a character it ends with, or as long as
    it is; or, with `every`, up to any position (`...T10:20:30.12` + digits + `Z` to be long
    enough, `^200` + `1::1`)."""
    if not fixed:
        yield from () if every else (shape,)
    elif not at_start:  # the same from the other end
        mirrored = _spliced(shape[::-1], fixed[::-1], True, every)
        yield from (value[::-1] for value in mirrored)
    elif every:
        yield from (fixed + shape[cut:] for cut in range(len(shape) + 1))
    else:
        cuts = [i for i in range(1, len(shape) + 1) if shape[i - 1] == fixed[-1]]
        yield from (fixed + shape[cut:] for cut in (*cuts, min(len(fixed), len(shape))))


def _filled(rng: random.Random, template: str, low: int, high: int | None) -> str | None:
    """`template` with its marker (if any) filled to the shortest length from `low` on; None if
    it cannot be within [low, high]."""
    marker = next((m for m in _MARKERS if m in template), None)
    base = len(template) - (marker is not None)
    size = max(0, low - base) if marker is not None else 0
    if marker == _QUADS:
        size += -size % 4
    if base + size < low or (high is not None and base + size > high):
        return None
    if marker is None:
        return template
    return template.replace(marker, _filler(rng, marker, size))


def _filler(rng: random.Random, marker: str, size: int) -> str:
    if marker == _DIGITS:
        return "".join(rng.choices("0123456789", k=size))
    letters = ""
    while len(letters) < size:
        letters += word(rng)
    if marker == _QUADS:  # (base64 of letters: it decodes to text)
        return base64.b64encode(letters[: size // 4 * 3].encode()).decode()
    # a dot every 50 letters (not last: a `.` follows in some shapes): labels stay under 63
    return "".join(
        "." if i % 50 == 49 and i < size - 1 else char for i, char in enumerate(letters[:size])
    )
