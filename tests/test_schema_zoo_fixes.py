"""Structured output for schemas a zoo of real-world ones found refused or unparseable:

* a `format` with a `pattern` (`email` ending `@acme\\.com`, a `date` starting `2024-`) or with a
  `maxLength` shorter than the plausible value (`hostname` of 15, `ipv6` of 20) gets a value that
  is well-formed, matches and fits, not a 400;
* the classic strong-password pattern (four lookaheads) answers whatever `minLength` /
  `maxLength` it has, not one request in four;
* `patternProperties` with a prefix (`^S_`), `additionalProperties: false` and `minProperties: 2`
  gets two names, not a 400;
* pydantic's `NameEmail` (`format: name-email`) and `Json[...]` (`contentMediaType` JSON with a
  `contentSchema`) get values pydantic accepts, not prose.

Through a real server with the openai SDK or httpx where a user meets them, and as properties of
the generator where the promise is general.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import random
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from conformance import checked_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import (
    UUID1,
    UUID3,
    UUID4,
    UUID5,
    AnyUrl,
    AwareDatetime,
    Base64Str,
    Base64UrlStr,
    BaseModel,
    IPvAnyAddress,
    IPvAnyInterface,
    IPvAnyNetwork,
    Json,
    TypeAdapter,
)
from pydantic.networks import pretty_email_regex
from pydantic_core import MultiHostUrl
from sdk import sdk

from mockai import MockServer
from mockai.generate.schema import instance

PROPERTIES = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODEL = "gpt-4o-mini"
PASSWORD = r"^(?=.*[a-z])(?=.*[A-Z])(?=.*\d)(?=.*[@$!%*?&])[A-Za-z\d@$!%*?&]{8,}$"


@pytest.fixture(scope="module")
def shared() -> Iterator[MockServer]:
    """One server for the module's requests."""
    with checked_server() as running:
        yield running


@pytest.fixture(scope="module")
def client(shared: MockServer) -> Iterator[openai.OpenAI]:
    with sdk(shared) as running:
        yield running


def _answer(client: openai.OpenAI, schema: dict[str, Any], prompt: str) -> Any:
    """The JSON answer to a chat request whose structured output is `schema` (SDK errors raise:
    a 400 fails the test with mockai's message)."""
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": prompt}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    content = reply.choices[0].message.content
    assert content is not None
    return json.loads(content)


def _valid(schema: dict[str, Any], value: Any) -> None:
    """jsonschema's verdict, formats included (those it knows)."""
    jsonschema.validate(
        value, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


# --- well-formed: checks of our own (and pydantic's), not mockai's ------------------------------

_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>.]+(?:\.[^@\s<>.]+)+")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
_DURATION = re.compile(r"P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?")
_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def _by(kind: Any) -> Callable[[str], object]:
    return TypeAdapter(kind).validate_python


def _name_email(value: str) -> bool:
    """pydantic's NameEmail: `Name <address>` as pydantic parses it, or a bare address."""
    pretty = pretty_email_regex.fullmatch(value)
    return bool(_EMAIL.fullmatch(pretty.group(3) if pretty else value))


_CHECKS: dict[str, Callable[[str], object]] = {
    "date-time": lambda v: _TIME.fullmatch(v[11:]) and _by(AwareDatetime)(v),
    "date": lambda v: len(v) == 10 and dt.date.fromisoformat(v),
    "time": _TIME.fullmatch,
    "email": _EMAIL.fullmatch,
    "idn-email": _EMAIL.fullmatch,
    "name-email": _name_email,
    "uri": _by(AnyUrl),
    "url": _by(AnyUrl),
    "iri": _by(AnyUrl),
    "multi-host-uri": _by(MultiHostUrl),
    "uuid": lambda v: len(v) == 36 and uuid.UUID(v),
    "uuid1": _by(UUID1),
    "uuid3": _by(UUID3),
    "uuid4": _by(UUID4),
    "uuid5": _by(UUID5),
    "ipv4": ipaddress.IPv4Address,
    "ipv6": ipaddress.IPv6Address,
    "ipvanyaddress": _by(IPvAnyAddress),
    "ipv4network": ipaddress.IPv4Network,
    "ipv6network": ipaddress.IPv6Network,
    "ipvanynetwork": _by(IPvAnyNetwork),
    "ipv4interface": ipaddress.IPv4Interface,
    "ipv6interface": ipaddress.IPv6Interface,
    "ipvanyinterface": _by(IPvAnyInterface),
    "hostname": _HOSTNAME.fullmatch,
    "duration": _DURATION.fullmatch,
    # (`is not None`: the empty string is base64 of nothing)
    "base64": lambda v: _by(Base64Str)(v) is not None,
    "base64url": lambda v: len(v) % 4 == 0 and _by(Base64UrlStr)(v) is not None,
}


def _well_formed(fmt: str, value: str) -> bool:
    try:
        return bool(_CHECKS[fmt](value))
    except ValueError:  # (pydantic's ValidationError, ipaddress's and uuid's errors)
        return False


# Valid values of every format mockai knows a check for, short and long.
SAMPLES: dict[str, list[str]] = {
    "date-time": ["2024-03-05T10:20:30Z", "1999-12-31T23:59:59.123+01:00"],
    "date": ["2024-03-05", "1987-11-30"],
    "time": ["10:20:30Z", "23:59:59.5+02:00"],
    "email": ["jane.doe@example.com", "x@mail.acme.org"],
    "idn-email": ["jane.doe@example.com"],
    "name-email": ["Jane Doe <jane@example.com>", "bob@acme.io"],
    "uri": ["https://github.com/mockai/mockai", "http://a.io/x?y=1"],
    "url": ["https://example.com/a"],
    "iri": ["https://example.com/a"],
    "multi-host-uri": ["postgresql://user:pw@db.example.com:5432/app"],
    "uuid": ["123e4567-e89b-42d3-a456-426614174000"],
    **{f"uuid{v}": [str(uuid.UUID(int=2**100 + 12345, version=v))] for v in (1, 3, 4, 5)},
    "ipv4": ["192.168.1.10", "8.8.8.8"],
    "ipv6": ["2001:db8::1", "fe80::1ff:fe23:4567:890a"],
    "ipvanyaddress": ["10.0.0.1", "2001:db8::1"],
    "ipv4network": ["10.0.0.0/8", "192.168.1.0/24"],
    "ipv6network": ["2001:db8::/32"],
    "ipvanynetwork": ["192.168.1.0/24", "fd00::/8"],
    "ipv4interface": ["192.168.1.10/24"],
    "ipv6interface": ["2001:db8::1/64"],
    "ipvanyinterface": ["2001:db8::1/64", "10.1.2.3/16"],
    "hostname": ["api.example.com", "localhost"],
    "duration": ["P3DT4H", "PT15M"],
    "base64": ["aGVsbG8=", "QUJD"],
    "base64url": ["aGVsbG8_", "QUJD"],
}


def test_the_samples_are_well_formed() -> None:
    """(The property below relies on them.)"""
    for fmt, values in SAMPLES.items():
        for value in values:
            assert _well_formed(fmt, value), (fmt, value)


# --- format with pattern or length bounds ---------------------------------------------------------

FORMAT_CASES = [
    {"type": "string", "format": "email", "pattern": "@acme\\.com$"},
    {"type": "string", "format": "date", "pattern": "^2024-"},
    {"type": "string", "format": "uri", "pattern": "\\.org/"},
    {"type": "string", "format": "hostname", "maxLength": 15},
    {"type": "string", "format": "ipv6", "maxLength": 20},
    {"type": "string", "format": "ipv4", "maxLength": 12},
    {"type": "string", "format": "email", "maxLength": 16},
    {"type": "string", "format": "uri", "maxLength": 20},
    {"type": "string", "format": "email", "minLength": 40},
]


@pytest.mark.parametrize("schema", FORMAT_CASES, ids=lambda s: json.dumps(s))
def test_a_format_with_a_pattern_or_short_bounds_answers(
    client: openai.OpenAI, schema: dict[str, Any]
) -> None:
    wrapper = {"type": "object", "properties": {"v": schema}, "required": ["v"]}
    for index in range(4):
        value = _answer(client, wrapper, f"hi {index}")["v"]
        _valid(wrapper, {"v": value})
        assert _well_formed(schema["format"], value), value


@st.composite
def _format_constraints(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A format and a pattern / length bounds that one of its samples meets: a pattern the
    sample's start or end (from any position), bounds around its length."""
    fmt = draw(st.sampled_from(sorted(SAMPLES)))
    sample = draw(st.sampled_from(SAMPLES[fmt]))
    schema: dict[str, Any] = {"type": "string", "format": fmt}
    cut = draw(st.integers(0, len(sample)))
    kind = draw(st.sampled_from(["start", "end", "none"]))
    if kind == "start":
        schema["pattern"] = "^" + re.escape(sample[:cut])
    elif kind == "end":
        schema["pattern"] = re.escape(sample[cut:]) + "$"
    if draw(st.booleans()):
        schema["minLength"] = draw(st.integers(0, len(sample)))
    if draw(st.booleans()):
        schema["maxLength"] = draw(st.integers(len(sample), len(sample) + 20))
    return fmt, schema


@settings(PROPERTIES, max_examples=150)
@given(constraints=_format_constraints(), seed=st.integers(0, 2**32 - 1))
def test_any_satisfiable_format_pattern_and_length_get_a_value(
    constraints: tuple[str, dict[str, Any]], seed: int
) -> None:
    fmt, schema = constraints
    value = instance(schema, random.Random(seed))
    _valid(schema, value)
    assert _well_formed(fmt, value), value


# --- the strong-password pattern -----------------------------------------------------------------


@pytest.mark.parametrize(
    "bounds",
    [{}, {"maxLength": 8}, {"maxLength": 10}, {"minLength": 12}, {"minLength": 8, "maxLength": 64}],
    ids=str,
)
def test_the_strong_password_pattern_always_answers(
    client: openai.OpenAI, bounds: dict[str, int]
) -> None:
    schema = {
        "type": "object",
        "properties": {"password": {"type": "string", "pattern": PASSWORD, **bounds}},
        "required": ["password"],
        "additionalProperties": False,
    }
    for index in range(8):
        _valid(schema, _answer(client, schema, f"sign up user {index}"))


@settings(PROPERTIES, max_examples=150)
@given(
    low=st.integers(0, 40),
    span=st.none() | st.integers(0, 30),
    seed=st.integers(0, 2**32 - 1),
)
def test_lookaheads_asking_for_classes_are_met_at_any_length(
    low: int, span: int | None, seed: int
) -> None:
    """Each `(?=.*X)` gets its X, whatever length the bounds leave (8 or more: the pattern's)."""
    schema: dict[str, Any] = {"type": "string", "pattern": PASSWORD, "minLength": low}
    if span is not None:
        schema["maxLength"] = max(low, 8) + span
    value = instance(schema, random.Random(seed))
    _valid(schema, value)


# --- patternProperties with a prefix ---------------------------------------------------------------


@pytest.mark.parametrize("least", [2, 3, 5])
def test_a_prefix_pattern_gives_as_many_names_as_asked(client: openai.OpenAI, least: int) -> None:
    schema = {
        "type": "object",
        "patternProperties": {"^S_": {"type": "string"}},
        "additionalProperties": False,
        "minProperties": least,
    }
    for index in range(3):
        value = _answer(client, schema, f"settings {index}")
        _valid(schema, value)
        assert len(value) >= least and all(key.startswith("S_") for key in value), value


# --- pydantic's NameEmail and Json[...] -----------------------------------------------------------


class Payload(BaseModel):
    numbers: Json[list[int]]
    settings: Json[dict[str, float]]
    anything: Json[Any]


def test_json_strings_hold_json_of_their_content_schema(client: openai.OpenAI) -> None:
    for index in range(6):
        reply = client.chat.completions.parse(
            model=MODEL,
            messages=[{"role": "user", "content": f"payload {index}"}],
            response_format=Payload,
        )
        assert isinstance(reply.choices[0].message.parsed, Payload)


def test_a_name_email_is_one_pydantic_accepts(shared: MockServer) -> None:
    # (pydantic's NameEmail needs email-validator, which the suite does not install: its schema
    # is sent as pydantic writes it, and the answer checked as pydantic parses it)
    schema = {
        "type": "object",
        "properties": {"contact": {"type": "string", "format": "name-email"}},
        "required": ["contact"],
    }
    with httpx.Client(base_url=shared.url, timeout=30) as http:
        for index in range(6):
            reply = http.post(
                "/chat/completions",
                json={
                    "model": MODEL,
                    "messages": [{"role": "user", "content": f"contact {index}"}],
                    "response_format": {
                        "type": "json_schema",
                        "json_schema": {"name": "Contact", "schema": schema},
                    },
                },
            )
            assert reply.status_code == 200, reply.text
            contact = json.loads(reply.json()["choices"][0]["message"]["content"])["contact"]
            assert pretty_email_regex.fullmatch(contact) and _name_email(contact), contact
