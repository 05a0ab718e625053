"""One frozen configuration object, built once from layered sources.

Precedence, later wins, the same for every option:
    defaults < scenario file < MOCKAI_* environment < CLI options / fixture / marker
`Config.merged(**changes)` applies a layer, validating as it goes; `Config.from_env()` reads the
environment layer. Every option has an environment variable: `MOCKAI_` + its upper-case name.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mockai.errors import ConfigError

DEFAULT_PORT = 8000
# The timestamp written into `created` fields: fixed, so that the same seed gives the same bytes.
DEFAULT_CREATED = 1735689600  # 2025-01-01T00:00:00Z


@dataclass(frozen=True)
class Config:
    """Everything a mockai server needs to know; see the module docstring for precedence."""

    # --- serving
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    require_api_key: str | None = None
    admin_remote: bool = False  # admin endpoints for non-loopback clients too
    log_requests: bool = True
    journal_size: int = 1000
    # Seconds a connection may take to send a whole request (head and body), and may stay
    # idle between requests, before it is closed: a client that connects and sends nothing,
    # or half a request, must not hold a connection forever.
    read_timeout: float = 60.0
    # --- what to answer
    seed: int = 0
    models: tuple[str, ...] | None = None  # None: any model id is answered
    strict_requests: bool = False  # reject unknown fields / enum values as the API does
    honor_base64: bool = True  # base64 embeddings when asked (the spec only knows floats)
    created: int = DEFAULT_CREATED  # the `created` timestamp written into bodies
    # --- scenarios (rules)
    scenarios: tuple[str, ...] = ()
    fallback: str | None = None  # generate | error; None: generate unless rules/cassettes load
    no_match_status: int = 400  # a 4xx the SDKs do not retry
    strict: bool = False  # stale fixtures (invalid scripted JSON / tool args) are errors
    # --- faults
    chaos: Mapping[str, float] = field(default_factory=dict)  # fault name -> rate
    latency: str | None = None  # default latency before headers, e.g. "200ms" or "100ms-300ms"
    # rate-limit budgets: text such as "rpm=60,tpm=10000" or "gpt-4o:rpm=3", or a mapping
    limits: str | Mapping[str, Any] | None = None
    # --- cassettes
    cassette: str | None = None
    record_mode: str = "none"
    upstream: str | None = None
    replay_speed: float = 0.0  # 0: as fast as possible; 1: the recorded pace
    match_on: tuple[str, ...] | None = None  # None: method, path, body
    allow_repeats: bool = False
    record_errors: bool = False  # also record upstream 4xx/5xx answers
    redact: tuple[str, ...] = ()  # extra regexes whose matches are scrubbed from cassettes

    # Which options were set explicitly (by any layer), so that a scenario file's settings fill in
    # only what nobody set: `--seed 0` must beat a file's `seed: 7` although 0 is the default.
    given: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def merged(self, **changes: Any) -> Config:
        """A copy with `changes` applied (None values are ignored: "not given")."""
        given = {k: v for k, v in changes.items() if v is not None}
        unknown = set(given) - ({f.name for f in dataclasses.fields(self)} - {"given"})
        if unknown:
            names = ", ".join(sorted(unknown))
            raise ConfigError(f"unknown option(s): {names}. Known options: {', '.join(_names())}")
        coerced = {name: _coerce(name, value) for name, value in given.items()}
        return dataclasses.replace(self, **coerced, given=self.given | set(coerced))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, base: Config | None = None
    ) -> Config:
        """`base` (default: the defaults) with every `MOCKAI_*` variable applied."""
        environ = os.environ if environ is None else environ
        changes = {}
        for name in _names():
            raw = environ.get("MOCKAI_" + name.upper())
            if raw is not None and raw != "":
                changes[name] = _from_text(name, raw)
        return (base or cls()).merged(**changes)


def _names() -> list[str]:
    return [f.name for f in dataclasses.fields(Config) if f.name != "given"]


_BOOLEAN_WORDS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _from_text(name: str, raw: str) -> Any:
    """Parse an environment variable's text for option `name`."""
    if name in _LISTS:
        return tuple(part for part in raw.replace(os.pathsep, ",").split(",") if part.strip())
    if name == "chaos":
        return parse_rates(raw)
    return raw


_LISTS = frozenset({"scenarios", "models", "match_on", "redact"})


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in dataclasses.fields(Config)}[name]
    try:
        if kind == "int":
            value = _int(value)
        elif kind == "float":
            value = float(value)
        elif kind == "bool":
            return _bool(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a valid {kind}") from None
    if name in _LISTS and isinstance(value, (str, os.PathLike)):
        return (os.fspath(value),)
    if name in _LISTS:
        return tuple(os.fspath(v) for v in value)
    if name == "fallback" and value not in ("generate", "error"):
        raise ConfigError(f"fallback: {value!r} is not valid. Valid values are: generate, error")
    if name == "chaos" and isinstance(value, str):
        return parse_rates(value)
    if name == "record_mode":
        return validate_record_mode(str(value))
    if name in ("port", "workers", "journal_size", "replay_speed") and value < 0:
        raise ConfigError(f"{name}: must not be negative, got {value}")
    if name == "read_timeout" and value <= 0:
        raise ConfigError(f"read_timeout: must be a positive number of seconds, got {value}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    return int(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in _BOOLEAN_WORDS:
        raise ValueError(value)
    return _BOOLEAN_WORDS[word]


RECORD_MODES = ("none", "once", "new_episodes", "all")


def validate_record_mode(value: str) -> str:
    """The record mode, or a ConfigError naming the valid ones."""
    if value not in RECORD_MODES:
        raise ConfigError(
            f"'{value}' is not a valid record_mode. Valid modes are: {', '.join(RECORD_MODES)}"
        )
    return value


def parse_rates(spec: str) -> dict[str, float]:
    """`rate_limit=0.1,server_error=0.02` -> {"rate_limit": 0.1, "server_error": 0.02}."""
    rates: dict[str, float] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, number = part.partition("=")
        try:
            rate = float(number)
        except ValueError:
            rate = -1.0
        if not sep or not 0.0 <= rate <= 1.0:
            raise ConfigError(
                f"chaos: {part!r} is not NAME=RATE with a rate between 0 and 1 "
                "(e.g. rate_limit=0.1,server_error=0.02)"
            )
        rates[name.strip()] = rate
    return rates
