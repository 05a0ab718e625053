"""One frozen configuration object, built once from layered sources.

Precedence, later wins, the same for every option:
    defaults < scenario file < MOCKAI_* environment < CLI options / fixture / marker
`Config.merged(**changes)` applies a layer, validating as it goes; `Config.from_env()` reads the
environment layer, which `mockai serve` has: a `MockServer` (and so the pytest fixture) has none
unless given `Config.from_env()` (MOCKAI_EVENT_LOOP aside). Every option has an environment
variable: `MOCKAI_` + its upper-case name (and the command line's spellings: `MOCKAI_QUIET`,
`MOCKAI_SCENARIO`).

Every value is checked however it is given (option, variable, fixture, `MockServer(...)`): a
ConfigError (a ValueError) says which option or variable, what is wrong and what is accepted.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mockai.errors import ConfigError
from mockai.hints import closest, suggest

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
    admin_remote: bool = False  # admin endpoints for non-loopback clients too (needs admin_token)
    # A bearer token every /_mockai/ admin call must carry (health aside); required with
    # admin_remote, since the admin API rewrites what the server answers.
    admin_token: str | None = None
    log_requests: bool = True
    log_format: str = "text"  # text | json: one line per request either way
    journal_size: int = 1000
    # Bytes of request and response bodies the journal keeps; past it, the oldest bodies go.
    journal_bytes: int = 16 * 1024 * 1024
    # Bytes of answers each store (stored responses, stored chat completions) keeps.
    store_bytes: int = 16 * 1024 * 1024
    # Bytes of large request bodies (uploads, 1 MiB and up) read or being answered at once; past
    # it a request waits, its body unread, for earlier ones to finish (one larger than this is
    # read alone). Each body is bounded by 64 MiB; this bounds how many at once.
    upload_bytes: int = 128 * 1024 * 1024
    # Bytes of files (uploads, batches' output and error files) a server holds; past it an
    # upload is refused and a batch's remaining lines fail, never a file forgotten.
    file_bytes: int = 1024 * 1024 * 1024
    # Seconds a batch's lines stay with the worker answering them without a sign of life from it
    # (it says so every third of this) before another worker's poll takes them over: a worker
    # that died (`kill -9`, a replica gone) left its batch `in_progress` for good.
    batch_lease: float = 10.0
    # Seconds a connection may take to send a whole request (head and body), and may stay
    # idle between requests, before it is closed: a client that connects and sends nothing,
    # or half a request, must not hold a connection forever.
    read_timeout: float = 60.0
    # auto: uvloop when it is installed (faster), else asyncio's loop; or uvloop / asyncio.
    event_loop: str = "auto"
    # Seconds in-flight requests (streams) get to finish after SIGTERM before they are cut.
    grace: float = 10.0
    # Where state shared by workers and replicas lives: None (in this process) or
    # redis://HOST:PORT/DB (`?prefix=NAME` keeps several servers apart in one database).
    state: str | None = None
    watch: bool = False  # reload scenario files when they change
    # --- what to answer
    seed: int = 0
    models: tuple[str, ...] | None = None  # None: any model id is answered
    strict_requests: bool = False  # reject unknown fields / enum values as the API does
    honor_base64: bool = True  # base64 embeddings when asked (the spec only knows floats)
    created: int = DEFAULT_CREATED  # the `created` timestamp written into bodies
    # The provider the server answers as at `/v1` and the root (mockai.profiles); every
    # profile is also served under its own prefix (`/groq/openai/v1`, ...).
    profile: str = "openai"
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

    def __post_init__(self) -> None:
        # `Config(port=99999)` built directly is checked like the values `merged` takes (which
        # are valid already: checking them again costs microseconds, once per server).
        for name in _CHECKS:
            value = getattr(self, name)
            if value is not None and value != _DEFAULTS.get(name):
                _coerce(name, value)
        if not self.given:
            # Built directly (`Config(seed=3, scenarios=...)`, `create_app(config)`): what it
            # sets beyond the defaults was set explicitly, and a scenario file's settings must
            # not override it. (A default given this way cannot be told from one left alone.)
            chosen = {n for n, default in _DEFAULTS.items() if getattr(self, n) != default}
            object.__setattr__(self, "given", frozenset(chosen - {"given"}))

    def merged(self, **changes: Any) -> Config:
        """A copy with `changes` applied (None values are ignored: "not given")."""
        given = _unaliased({k: v for k, v in changes.items() if v is not None})
        unknown = sorted(set(given) - ({f.name for f in dataclasses.fields(self)} - {"given"}))
        if unknown:
            names = ", ".join(unknown)
            raise ConfigError(
                f"unknown option(s): {names}"
                + suggest(unknown[0], [*_names(), *_ALIASES, "quiet"], noun="known options")
            )
        coerced = {name: _coerce(name, value) for name, value in given.items()}
        return dataclasses.replace(self, **coerced, given=self.given | set(coerced))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, base: Config | None = None
    ) -> Config:
        """`base` (default: the defaults) with every `MOCKAI_*` variable applied.

        An empty variable counts as unset. A bad value is a ConfigError naming the variable.
        """
        environ = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        set_by: dict[str, str] = {}
        for variable, name in env_variables().items():
            raw = environ.get(variable)
            if raw is None or raw == "":
                continue
            try:
                value = _coerce(name, _from_text(name, raw))
                _check_cassette_option(name, value)
                if variable == "MOCKAI_QUIET":  # the command line's --quiet
                    value = not value
            except ConfigError as error:
                detail = str(error).removeprefix(f"{name}: ")
                raise ConfigError(f"{variable}: {detail}") from None
            if name in changes and changes[name] != value:
                raise ConfigError(
                    f"{set_by[name]}={environ[set_by[name]]!r} and {variable}={raw!r} "
                    "contradict each other; set only one of them"
                )
            changes[name], set_by[name] = value, variable
        return (base or cls()).merged(**changes)


def _check_cassette_option(name: str, value: Any) -> None:
    """A `redact` pattern checked now, where the variable that gave it is known (`--redact` is
    checked by the parser; otherwise the cassette code checks it as the server starts, naming
    the option). (`match_on` names are checked with every value: `_matchers`.)"""
    if name == "redact":
        from mockai.cassette.redact import Scrubber  # (only when the variable is set)

        Scrubber(value)


# The CLI (`--scenario`), `MOCKAI_SCENARIO` and the pytest marker (`scenario=`) name the option
# in the singular; `MockServer(scenario=...)` takes that spelling too.
_ALIASES = {"scenario": "scenarios"}


def _unaliased(given: dict[str, Any]) -> dict[str, Any]:
    """`given` with aliases renamed; an alias and its option given together is a ConfigError.
    (`quiet`, the command line's `--quiet`, is `log_requests` turned around.)"""
    if "quiet" in given:
        quiet = given.pop("quiet")
        if "log_requests" in given:
            raise ConfigError(
                "quiet and log_requests name the same option; give only one of them "
                "(quiet=True is log_requests=False)"
            )
        if not isinstance(quiet, bool):
            raise ConfigError(f"quiet: expected true or false, got {quiet!r}")
        given["log_requests"] = not quiet
    for alias, name in _ALIASES.items():
        if alias not in given:
            continue
        if name in given:
            raise ConfigError(
                f"{alias} and {name} name the same option; give only one of them "
                f"({alias}= takes one path or a list of paths)"
            )
        given[name] = given.pop(alias)
    return given


def env_variables() -> dict[str, str]:
    """Every `MOCKAI_*` variable mockai reads -> the option it sets."""
    table = {"MOCKAI_" + name.upper(): name for name in _names()}
    # The command line's spellings of two options (`mockai serve --scenario`, `--quiet`).
    table.update({"MOCKAI_SCENARIO": "scenarios", "MOCKAI_QUIET": "log_requests"})
    return table


# Variables of mockai's that are no setting of the server: the build's (`MOCKAI_COMPILE=1 pip
# install .`, which a shell or a Dockerfile may leave set).
_BUILD = frozenset({"MOCKAI_COMPILE"})


def unknown_env_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for every `MOCKAI_*` variable that sets nothing (a typo, most likely)."""
    environ = os.environ if environ is None else environ
    known = env_variables()
    warnings = []
    for variable in sorted(environ):
        if variable.startswith("MOCKAI_") and variable not in known and variable not in _BUILD:
            # Compared without the shared prefix, which would make every name look alike.
            near = closest(variable.removeprefix("MOCKAI_"), [k[7:] for k in known])
            hint = f"did you mean MOCKAI_{near}?" if near else "see mockai serve --help"
            warnings.append(f"{variable} is not a mockai setting and is ignored ({hint})")
    return warnings


_DEFAULTS = {
    f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    for f in dataclasses.fields(Config)
}


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
    if name == "scenarios":  # paths, separated as in PATH: a comma is legal in a file name
        return tuple(part for part in raw.split(os.pathsep) if part.strip())
    if name == "redact":
        # A regex may need `,` `:` or `;` (`acct-[0-9]{4,8}`, `password:\s*`), but never a raw
        # newline (`\n` matches one): split there, so a single pattern is never cut in pieces.
        return tuple(part for part in raw.split("\n") if part.strip())
    if name in _COMMA_LISTS:
        return _comma_split(raw)
    if name == "chaos":
        return parse_rates(raw)
    return raw


_LISTS = frozenset({"scenarios", "models", "match_on", "redact"})
# The list options whose items never hold a comma (model ids, matcher names): their text form,
# a variable or a `MockServer(models="a,b")` string, is comma-separated as on the command line.
_COMMA_LISTS = frozenset({"models", "match_on"})


def _comma_split(text: str) -> tuple[str, ...]:
    """`"a, b,"` -> ("a", "b"), as the command line's `--models` and `--match-on` read it."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in dataclasses.fields(Config)}[name]
    try:
        if kind == "int":
            value = _int(value)
        elif kind == "float":
            value = _float(value)
        elif kind == "bool":
            return _bool(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{name}: {value!r} is not {_KIND_WORDS[str(kind)]}") from None
    if name in _LISTS:
        value = _strings(name, value)
    elif name in _PATHS:
        value = _path(name, value)
    if name == "chaos" and isinstance(value, str):
        value = parse_rates(value)
    check = _CHECKS.get(name)
    if check is not None:
        value = check(name, value)
    if name in _NOT_NEGATIVE and value < 0:
        raise ConfigError(f"{name}: must not be negative, got {_number(value)}")
    most = _AT_MOST.get(name)
    if most is not None and value > most[0]:
        raise ConfigError(f"{name}: {_number(value)} is too large; use at most {most[1]}")
    return value


_NOT_NEGATIVE = frozenset(
    ("journal_size", "journal_bytes", "store_bytes", "upload_bytes", "file_bytes", "created")
)
_PIB = 2**50
# Past these a count or a size is a slip (a unit, a digit too many), and some would not even
# fit where they are used (the journal's `deque(maxlen=...)` takes a C ssize_t: 10**20 was an
# OverflowError traceback as the server started): said here, naming the option, instead.
_AT_MOST: dict[str, tuple[int, str]] = {
    "journal_size": (10_000_000, "10000000 entries"),
    "journal_bytes": (_PIB, f"{_PIB} (1 PiB)"),
    "store_bytes": (_PIB, f"{_PIB} (1 PiB)"),
    "upload_bytes": (_PIB, f"{_PIB} (1 PiB)"),
    "file_bytes": (_PIB, f"{_PIB} (1 PiB)"),
    # Unix seconds: the last of the year 9999 (a typed client's 64-bit `created` holds it).
    "created": (253_402_300_799, "253402300799 (9999-12-31T23:59:59Z)"),
}


def _number(value: int) -> str:
    """`value` for a message (Python refuses to print an int of 4,300 digits or more)."""
    return str(value) if abs(value) < 10**30 else f"a {value.bit_length()}-bit number"


_KIND_WORDS = {
    "int": "a whole number",
    "float": "a finite number",
    "bool": "a boolean (use 1/0, true/false, yes/no or on/off)",
}


def _strings(name: str, value: Any) -> tuple[str, ...]:
    """A list option's values: one string (or path), or an iterable of them."""
    if isinstance(value, str) and name in _COMMA_LISTS:
        return _comma_split(value)
    if isinstance(value, (str, os.PathLike)):  # a path or a regex may hold a comma: one item
        return (_path(name, value),)
    try:
        return tuple(_path(name, item) for item in value)
    except TypeError:
        raise ConfigError(f"{name}: expected a list of strings, got {value!r}") from None


def _path(name: str, value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"{name}: expected a string or a path, got {value!r}")
    path = os.fspath(value)
    if name in ("cassette", "scenarios") and "\0" in os.fsdecode(path):  # (no file name can)
        raise ConfigError(f"{name}: {path!r} holds a NUL character, which no file name can")
    if not path and name in ("cassette", "scenarios"):
        # (`--cassette "$CASSETTE"` with the variable unset: an empty path would be the working
        # folder, replayed whole while the banner said there was no cassette)
        raise ConfigError(f"{name}: an empty path; name a file or a folder")
    return path


_PATHS = frozenset({"cassette"})


def _int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value)


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in _BOOLEAN_WORDS:
        raise ValueError(value)
    return _BOOLEAN_WORDS[word]


def check_option(name: str, value: Any) -> Any:
    """`value` as option `name` holds it, or a ConfigError (for the command line's parser)."""
    return _coerce(name, value)


# --- what each option accepts beyond its type ---------------------------------------------------


def _port(name: str, port: int) -> int:
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name}: {port} is not a port; use 0-65535 (0 picks a free one)")
    return port


MAX_WORKERS = 1024  # each one a process and a listening socket, all made at start


def _processes(name: str, count: int) -> int:
    if not 1 <= count <= MAX_WORKERS:
        raise ConfigError(
            f"{name}: {_number(count)} is not a number of processes; use 1 to {MAX_WORKERS}"
        )
    return count


# The slowest replay: a recording played 1000 times slower. A smaller factor stretched every
# recorded wait past any test's patience (1e-300: answers that never came; 1e-320: an infinite
# wait), as a mistyped exponent would.
MIN_REPLAY_SPEED = 0.001


def _speed(name: str, speed: float) -> float:
    if speed < 0 or 0 < speed < MIN_REPLAY_SPEED:
        problem = "is negative" if speed < 0 else "is too slow"
        raise ConfigError(
            f"{name}: {speed:g} {problem}; use 0 (as fast as possible), 1 (the recorded pace) "
            f"or another factor of at least {MIN_REPLAY_SPEED:g} (1000x slower)"
        )
    return speed


def _timeout(name: str, seconds: float) -> float:
    if seconds <= 0:
        raise ConfigError(f"{name}: must be a positive number of seconds, got {seconds:g}")
    return seconds


MIN_LEASE = 1.0


def _lease(name: str, seconds: float) -> float:
    # Renewed every third of it, in a write to the shared state: a shorter lease is a busy loop
    # on Redis, and one a Redis timeout (2 s) outlasts hands the lines over while their worker
    # lives, to answer them again from the first.
    if not seconds >= MIN_LEASE:
        raise ConfigError(
            f"{name}: must be at least {MIN_LEASE:g} second (its worker renews it every third of "
            f"that), got {seconds:g}"
        )
    return seconds


def _grace(name: str, seconds: float) -> float:
    if seconds < 0:
        raise ConfigError(f"{name}: must be 0 or more seconds, got {seconds:g}")
    return seconds


def _token(name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value.strip()) < 8 or value != value.strip():
        raise ConfigError(
            f"{name}: use a token of at least 8 characters without surrounding spaces "
            "(e.g. the output of `openssl rand -hex 16`)"
        )
    return value


STATE_SCHEMES = ("redis", "rediss", "unix")


def _state_url(name: str, url: Any) -> str:
    """`memory` (the default: this process) or a Redis URL with a host and a numbered db."""
    if url == "memory":
        return "memory"
    problem = None
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in STATE_SCHEMES:
            problem = "is not a state URL"
        elif parts.scheme != "unix" and not parts.hostname:
            problem = "has no host"
        else:
            _ = parts.port  # raises on a port that is not a number, or out of range
            db = parts.path.strip("/")
            if parts.scheme != "unix" and db and not db.isdigit():
                problem = f"names database {db!r}; Redis databases are numbers (/0, /1, ...)"
            elif _empty_prefix(parts.query):
                # (`?prefix=$RUN` with RUN unset: the run took the default prefix, every other
                # such run's keys, and reset them, instead of keys of its own)
                problem = "has an empty prefix (?prefix=); name one, or leave it out for mockai"
            else:
                problem = _client_options_problem(url)
    except ValueError as error:
        out_of_range = "out of range" in str(error)
        problem = f"has a port {'out of range' if out_of_range else 'that is not a number'}"
    if problem is not None:
        if _unencoded_password(url):  # the problem found is what urlsplit made of it
            problem = (
                "has a password holding / ? or # (which end a URL's host part): "
                "percent-encode them (%2F %3F %23, and @ as %40)"
            )
        raise ConfigError(
            f"{name}: {password_hidden(url)!r} {problem}; use memory or "
            "redis://HOST:PORT/DB (e.g. redis://127.0.0.1:6379/0)"
        )
    return str(url)


def _empty_prefix(query: str) -> bool:
    """Whether a state URL's query gives `prefix` as nothing (blank, or spaces)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return any(key == "prefix" and not value.strip() for key, value in pairs)


def password_hidden(url: Any) -> Any:
    """A URL (`--state`'s, `--upstream`'s) as the banner and errors show it: its password `***`,
    given as `user:password@` or as the Redis client's `?password=` (they end up in CI logs);
    userinfo without a `:` is `***` whole (`https://TOKEN@host`: a token as often as a name)."""
    if not isinstance(url, str):
        return url
    url = _QUERY_PASSWORD.sub(r"\1***", url)
    span = _userinfo(url)
    if span is None:
        return url
    start, end = span
    user, colon, _ = url[start:end].partition(":")
    if not colon:
        # (a token as userinfo, when the URL's parse says it is one: an `@` only in the path,
        # `https://host/v1/a@b`, is none)
        clean = _parses_cleanly(url, url[start:])
        return f"{url[:start]}***{url[end:]}" if clean else url
    return f"{url[:start]}{user}:***{url[end:]}"


def _unencoded_password(url: Any) -> bool:
    """Whether `url`'s password holds a character that must be percent-encoded there."""
    span = _userinfo(url) if isinstance(url, str) else None
    if span is None:
        return False
    password = url[span[0] : span[1]].partition(":")[2]
    return any(char in password for char in "/?#")


def _userinfo(url: str) -> tuple[int, int] | None:
    """Where `user:password` is in `url` (up to, not with, its `@`), found by hand: a password
    may hold `/`, `?` or `#` unencoded, where `urlsplit` ends the host part early and would show
    the rest. The URL's parse is trusted when it is clean (a host, a port that is a number, no
    other `@` after the host); otherwise the userinfo runs to the last `@`: a password may hold
    one, and hiding too much beats showing any of it."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return None
    start = scheme_end + 3
    rest = url[start:]
    if "@" not in rest:
        return None
    if _parses_cleanly(url, rest):
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
        at = authority.rfind("@")
    else:
        at = rest.rfind("@")
    return None if at < 0 else (start, start + at)


def _parses_cleanly(url: str, rest: str) -> bool:
    """Whether `urlsplit` reads `url` (`rest`: what follows its `scheme://`) as written: a host
    (none for a unix socket), a port that is a number, and no `@` past the host."""
    if not url.isprintable():  # (urlsplit drops tabs and newlines before it splits)
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return False
    if not parts.hostname and parts.scheme != "unix":
        return False
    return rest.startswith(parts.netloc) and "@" not in rest[len(parts.netloc) :]


# A `password=` query option's value (redis-py takes any client keyword from the query).
_QUERY_PASSWORD = re.compile(r"([?&;]password=)[^&;#]*", re.IGNORECASE)


def _client_options_problem(url: str) -> str | None:
    """What the Redis client will refuse in the URL's options (`?db=x`, `?socket_timeout=abc`,
    an option it does not know), found now rather than as a traceback when it connects. (Only
    when the client is installed: without it, `--state` fails on that, said elsewhere.)"""
    try:
        from redis.asyncio import from_url

        from mockai.backend.redis_state import split_url  # (imports the client too)
    except ImportError:
        return None
    client_url, _, _ = split_url(url)  # (what the server will connect with: no `prefix`)
    try:  # (a connection object is made, not connected)
        from_url(client_url).connection_pool.make_connection()  # type: ignore[no-untyped-call]
    except (ValueError, TypeError) as error:
        return f"has an option the Redis client refuses ({error})"
    return None


def check_together(config: Config) -> None:
    """Options that only make sense together: a ConfigError naming the fix."""
    if config.admin_remote and config.admin_token is None:
        raise ConfigError(
            "admin_remote: letting other machines script this server needs an admin token too; "
            "add --admin-token TOKEN (MOCKAI_ADMIN_TOKEN) and send it as "
            "`Authorization: Bearer TOKEN` on /_mockai/ calls"
        )


def _status(name: str, status: int) -> int:
    if not 400 <= status <= 599:
        raise ConfigError(f"{name}: {status} is not an HTTP error status (400-599)")
    return status


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name}: must be a non-empty string, got {value!r}")
    return value


def _host(name: str, value: Any) -> str:
    """The address to listen on, an IPv6 one bare: `[::1]`, as URLs write it (and as `mockai
    health` takes MOCKAI_HOST), is `::1` (bound as written, it was no address: "Name or service
    not known")."""
    host = _text(name, value)
    if host.startswith("[") and host.endswith("]") and ":" in host:
        return host[1:-1]
    return host


def _api_key(name: str, value: Any) -> str:
    """The key clients must send. A header's value reaches the server trimmed (HTTP drops the
    spaces around it, and the SDKs refuse to send line breaks at all): a key with spaces or a
    line break around it, or a control character in it, could never be matched, and every
    request was a 401 (a Kubernetes Secret made with `echo`, a trailing space in an env file)."""
    key = _text(name, value)
    if key != key.strip() or not key.isprintable():
        raise ConfigError(
            f"{name}: the key has spaces or a line break around it, or a control character in "
            "it, which no client can send in a header; give the key alone"
        )
    return key


def _model_ids(name: str, models: tuple[str, ...]) -> tuple[str, ...]:
    if not models or not all(model.strip() for model in models):
        raise ConfigError(f"{name}: give at least one model id, e.g. gpt-4o-mini,gpt-4o")
    return models


def _matchers(name: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """Matcher names known now, as `--match-on` checks them, and at least one (`match_on=[]`
    asks to match on nothing: never quietly the default). Those `register_matcher` adds are
    known once registered, which a program does before it builds the server that uses them."""
    from mockai.cassette.matching import MATCHERS  # (only when the option is given)

    return MATCHERS.resolve(names)  # (a ConfigError starting with `match_on: `)


def _one_of(*valid: str) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if value not in valid:
            raise ConfigError(
                f"{name}: {value!r} is not valid" + suggest(value, valid, noun="valid values")
            )
        return str(value)

    return check


def _profile(name: str, value: Any) -> str:
    from mockai.profiles import PROFILES  # the profiles know their names

    if not isinstance(value, str) or value not in PROFILES:
        raise ConfigError(
            f"{name}: {value!r} is not a provider profile"
            + suggest(str(value), list(PROFILES), noun="profiles")
        )
    return str(value)


def _record_mode(name: str, value: Any) -> str:
    return validate_record_mode(str(value))


def _chaos(name: str, rates: Any) -> Any:
    from mockai.delivery.faults import ChaosRates  # the fault vocabulary knows the names

    if not isinstance(rates, Mapping):
        raise ConfigError(f"{name}: expected rates such as rate_limit=0.1, got {rates!r}")
    try:
        ChaosRates.parse(rates)
    except ValueError as error:
        raise ConfigError(f"{name}: {error}") from None
    return rates


def _timing(name: str, spec: Any) -> Any:
    from mockai.delivery.timing import parse_timing_spec

    try:
        parse_timing_spec(spec)
    except ValueError as error:
        raise ConfigError(f"{name}: {error}") from None
    return spec


def _limits(name: str, spec: Any) -> Any:
    from mockai.delivery.ratelimit import parse_limits

    parse_limits(spec)  # a ConfigError starting with `limits: `
    return spec


def _base_url(name: str, url: Any) -> str:
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        valid = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
        if parts is not None:
            _ = parts.port  # raises on a port that is not a number
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(
            f"{name}: {upstream_shown(url)!r} is not an http(s) base URL "
            "(e.g. https://api.openai.com/v1 or http://localhost:11434/v1)"
        )
    assert parts is not None
    if any(char.isspace() or not char.isprintable() for char in url):
        # (an env file's trailing space: urlsplit keeps it in the path, and every request went
        # to `/v1%20/chat/completions`, the upstream's 404, recorded as the answer)
        raise ConfigError(
            f"{name}: {upstream_shown(url)!r} holds a space, a line break or another control "
            "character, which no URL does; give the URL alone (percent-encode a space: %20)"
        )
    if "@" in parts.netloc:
        # The client's own key (Authorization, api-key) is what mockai forwards: credentials in
        # the URL as well made every request fail to send (aiohttp takes one or the other).
        raise ConfigError(
            f"{name}: {upstream_shown(url)!r} holds credentials (user:password@); leave them "
            "out: mockai forwards each request's own key (Authorization or api-key) upstream"
        )
    return str(url)


def upstream_shown(url: Any) -> Any:
    """An `--upstream` URL as the banner and errors show it: a password in it `***`, and each
    credential in its query (`?api-key=`) replaced by its placeholder, as in cassettes."""
    if not isinstance(url, str):
        return url
    from mockai.cassette.redact import redact_query  # (only with an upstream)

    head, mark, query = password_hidden(url).partition("?")
    if not mark:
        return head
    # (on a URL of its own: the one given may be one urlsplit refuses, `http://[::1/v1?key=..`)
    return f"{head}?{redact_query('http://host/?' + query)[0].partition('?')[2]}"


# Checked after the type: each takes the option's name (for the message) and its value.
_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "host": _host,
    "port": _port,
    "workers": _processes,
    "require_api_key": _api_key,
    "models": _model_ids,
    "match_on": _matchers,
    "fallback": _one_of("generate", "error"),
    "no_match_status": _status,
    "chaos": _chaos,
    "latency": _timing,
    "limits": _limits,
    "record_mode": _record_mode,
    "profile": _profile,
    "upstream": _base_url,
    "replay_speed": _speed,
    "read_timeout": _timeout,
    "batch_lease": _lease,
    "event_loop": _one_of("auto", "uvloop", "asyncio"),
    "grace": _grace,
    "admin_token": _token,
    "log_format": _one_of("text", "json"),
    "state": _state_url,
}


RECORD_MODES = ("none", "once", "new_episodes", "all")


def validate_record_mode(value: str) -> str:
    """The record mode, or a ConfigError naming the closest or the valid ones."""
    if value not in RECORD_MODES:
        raise ConfigError(
            f"record_mode: {value!r} is not a record mode"
            + suggest(value, RECORD_MODES, noun="modes")
        )
    return value


def parse_rates(spec: str) -> dict[str, float]:
    """`rate_limit=0.1,server_error=0.02` -> {"rate_limit": 0.1, "server_error": 0.02}."""
    rates: dict[str, float] = {}
    written: dict[str, str] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, number = (piece.strip() for piece in part.partition("="))
        try:
            rate = float(number)
        except ValueError:
            rate = -1.0
        if not sep or not name or not 0.0 <= rate <= 1.0:
            raise ConfigError(
                f"chaos: {part!r} is not NAME=RATE with a rate between 0 and 1 "
                "(e.g. rate_limit=0.1,server_error=0.02)"
            )
        if name in rates:  # (else the later rate won, silently)
            raise ConfigError(
                f"chaos: {name!r} is given twice, {written[name]} and {part}; give each fault once"
            )
        rates[name], written[name] = rate, part
    if not rates and spec.strip():  # (`,`: a slip; an empty value sets no faults)
        raise ConfigError(f"chaos: {spec!r} holds no NAME=RATE (e.g. rate_limit=0.1)")
    return rates
