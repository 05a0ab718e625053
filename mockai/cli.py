"""The `mockai` command: `mockai serve` runs the server, `mockai check` validates files.

Every option also reads a `MOCKAI_*` environment variable; options given on the command line win
(see mockai.config for the precedence rule).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, NoReturn

from mockai import __version__, buildinfo
from mockai.config import RECORD_MODES, Config, check_option, unknown_env_variables
from mockai.console import say
from mockai.errors import ConfigError, MockaiError
from mockai.hints import suggest

log = logging.getLogger("mockai")


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors can be one JSON line: with `mockai serve
    --log-format json` every line is JSON, a bad option's too (exit 2 and argparse's message
    either way; the usage is left out of the JSON line, which a log collector reads)."""

    def __init__(self, *args: Any, json_errors: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.json_errors = json_errors

    def error(self, message: str) -> NoReturn:
        if not self.json_errors:
            super().error(message)
        from mockai.server.logs import json_line

        self.exit(2, json_line(f"{self.prog}: error: {message}", level="error") + "\n")


def build_parser(*, json_errors: bool = False) -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests); `json_errors`: `mockai serve`'s
    usage errors as JSON lines (see `_json_logs_asked`)."""
    parser = _Parser(
        prog="mockai",
        description="A test double for the OpenAI API.",
        json_errors=json_errors,
    )
    parser.add_argument(
        "--version", action="version", version=f"mockai {__version__} ({buildinfo.describe()})"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the server (Ctrl-C to stop)", json_errors=json_errors
    )
    serving = serve.add_argument_group("serving")
    serving.add_argument(
        "--host", type=_valid("host"), help="address to listen on (default 127.0.0.1)"
    )
    serving.add_argument(
        "--port", type=_valid("port"), help="port, 0-65535 (default 8000; 0 picks a free one)"
    )
    serving.add_argument(
        "--workers", type=_valid("workers"), help="processes sharing the port (default 1)"
    )
    serving.add_argument(
        "--require-api-key",
        metavar="KEY",
        type=_valid("require_api_key"),
        help="answer 401 unless this key is sent",
    )
    serving.add_argument(
        "--admin-remote",
        action="store_true",
        default=None,
        help="let non-loopback clients use /_mockai/ admin endpoints (needs --admin-token)",
    )
    serving.add_argument(
        "--admin-token",
        metavar="TOKEN",
        type=_valid("admin_token"),
        help="a bearer token every /_mockai/ admin call must carry (health aside)",
    )
    serving.add_argument(
        "--state",
        metavar="URL",
        type=_valid("state"),
        help="where shared state lives: memory (default, this process) or redis://HOST:PORT/DB, "
        "so --workers and replicas behave as one server",
    )
    serving.add_argument(
        "--watch",
        action="store_true",
        default=None,
        help="reload scenario files when they change (a broken edit keeps the previous rules)",
    )
    serving.add_argument(
        "--grace",
        type=_valid("grace"),
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight requests and streams may take to finish (default 10)",
    )
    serving.add_argument(
        "--log-format",
        type=_valid("log_format"),
        metavar="{text,json}",
        help="one line per request: text (default) or json",
    )
    serving.add_argument(
        "--quiet", action="store_true", help="no per-request log lines (faster under load)"
    )
    serving.add_argument(
        "--read-timeout",
        type=_valid("read_timeout"),
        metavar="SECONDS",
        help="close a connection that takes longer to send its request, or stays idle longer "
        "between requests (default 60)",
    )
    serving.add_argument(
        "--event-loop",
        type=_valid("event_loop"),
        metavar="{auto,uvloop,asyncio}",
        help="auto (default): uvloop when it is installed, else asyncio's own loop",
    )

    answers = serve.add_argument_group("answers")
    answers.add_argument(
        "--seed", type=_valid("seed"), help="seed for generated text, ids and chaos (default 0)"
    )
    answers.add_argument(
        "--models",
        type=_valid("models", lambda text: _split(text) or ()),
        help="comma-separated model ids to serve; others get 404 model_not_found",
    )
    answers.add_argument(
        "--profile",
        metavar="NAME",
        type=_valid("profile"),
        help="answer at /v1 as this provider's OpenAI-compatible API (openai, groq, openrouter, "
        "ollama, ...; default openai); every provider is also served under its own prefix",
    )
    answers.add_argument(
        "--strict-requests",
        action="store_true",
        default=None,
        help="reject unknown request fields and enum values the way the API does",
    )
    answers.add_argument(
        "--scenario",
        action="append",
        type=_scenario_path,
        metavar="PATH",
        help="scenario file or folder (repeatable; folders load in name order)",
    )
    answers.add_argument(
        "--fallback",
        type=_valid("fallback"),
        metavar="{generate,error}",
        help="what a request matching nothing gets (default: error once rules or a cassette load)",
    )
    answers.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="scripted JSON / tool arguments that break the request's schema are errors",
    )

    chaos = serve.add_argument_group("faults")
    chaos.add_argument(
        "--chaos",
        metavar="SPEC",
        type=_valid("chaos"),
        help="fault rates, e.g. rate_limit=0.1,server_error=0.02",
    )
    chaos.add_argument(
        "--latency",
        metavar="SPEC",
        type=_valid("latency"),
        help="latency before headers, e.g. 200ms or 100ms-300ms (a bare number is seconds); "
        "stream pacing too, e.g. "
        "ttft=300ms,tokens_per_second=50",
    )
    chaos.add_argument(
        "--limits",
        metavar="SPEC",
        type=_valid("limits"),
        help="rate-limit budgets, e.g. rpm=60,tpm=40000 or gpt-4o:rpm=3,window=2s;o3:rpm=9",
    )

    tapes = serve.add_argument_group("cassettes")
    tapes.add_argument(
        "--cassette",
        type=_valid("cassette"),
        metavar="PATH",
        help="cassette file or folder to replay / record",
    )
    tapes.add_argument(
        "--record-mode",
        type=_valid("record_mode"),
        metavar="{" + ",".join(RECORD_MODES) + "}",
        help="vcrpy record mode (default none)",
    )
    tapes.add_argument(
        "--upstream",
        metavar="URL",
        type=_valid("upstream"),
        help="OpenAI-compatible base URL to record from",
    )
    tapes.add_argument(
        "--replay-speed",
        type=_valid("replay_speed"),
        help="0: as fast as possible (default); 1: recorded pace",
    )
    tapes.add_argument(
        "--match-on",
        metavar="FIELDS",
        type=_matchers,
        help="comma-separated request matchers for replay",
    )
    tapes.add_argument(
        "--allow-repeats",
        action="store_true",
        default=None,
        help="replay an interaction more than once",
    )
    tapes.add_argument(
        "--record-errors",
        action="store_true",
        default=None,
        help="also record upstream 4xx/5xx answers",
    )
    tapes.add_argument(
        "--redact",
        action="append",
        metavar="REGEX",
        type=_pattern,
        help="extra pattern scrubbed from cassettes",
    )

    check = commands.add_parser("check", help="validate scenario files and cassettes")
    check.add_argument("paths", nargs="+", metavar="PATH")

    health = commands.add_parser(
        "health",
        help="exit 0 if a mockai server answers /_mockai/health (container health checks)",
    )
    health.add_argument(
        "--url",
        help=(
            "the server's URL, with or without /v1 (default: MOCKAI_HOST and MOCKAI_PORT, "
            "with 127.0.0.1 for "
            "0.0.0.0 and ::1 for ::); probed directly, never through http_proxy"
        ),
    )
    return parser


def config_from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Config:
    """defaults < MOCKAI_* environment < command line."""
    config = Config.from_env(environ)
    return config.merged(
        host=args.host,
        port=args.port,
        workers=args.workers,
        require_api_key=args.require_api_key,
        admin_remote=args.admin_remote,
        admin_token=args.admin_token,
        state=args.state,
        watch=args.watch,
        grace=args.grace,
        log_format=args.log_format,
        log_requests=False if args.quiet else None,
        read_timeout=args.read_timeout,
        event_loop=args.event_loop,
        seed=args.seed,
        models=args.models,
        profile=args.profile,
        strict_requests=args.strict_requests,
        scenarios=tuple(args.scenario) if args.scenario else None,
        fallback=args.fallback,
        strict=args.strict,
        chaos=args.chaos,
        latency=args.latency,
        limits=args.limits,
        cassette=args.cassette,
        record_mode=args.record_mode,
        upstream=args.upstream,
        replay_speed=args.replay_speed,
        match_on=args.match_on,
        allow_repeats=args.allow_repeats,
        record_errors=args.record_errors,
        redact=tuple(args.redact) if args.redact else None,
    )


def _split(text: str | None) -> tuple[str, ...] | None:
    return tuple(part.strip() for part in text.split(",") if part.strip()) if text else None


def _valid(option: str, parse: Callable[[str], Any] | None = None) -> Callable[[str], Any]:
    """An argparse `type` checking the value as the configuration does, so that a bad value
    stops the parser (`mockai serve: error: argument --port: ...`, exit 2) with its message."""

    def check(text: str) -> Any:
        try:
            return check_option(option, parse(text) if parse is not None else text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix(f"{option}: ")) from None

    check.__name__ = option  # argparse names the type in some of its messages
    return check


def _scenario_path(text: str) -> str:
    """One `--scenario` path, checked as the configuration checks it (an empty one is refused)."""
    (path,) = _valid("scenarios")(text)
    return str(path)


def _matchers(text: str) -> tuple[str, ...]:
    from mockai.cassette.matching import MATCHERS  # vcrpy's world: only when the option is used

    names = _split(text) or ()
    known = MATCHERS.names()
    for name in names:
        if name not in known:
            raise argparse.ArgumentTypeError(
                f"{name!r} is not a request matcher" + suggest(name, known, noun="matchers")
            )
    if not names:
        raise argparse.ArgumentTypeError(f"give at least one of: {', '.join(known)}")
    return names


def _pattern(text: str) -> str:
    from mockai.cassette.redact import Scrubber

    try:
        Scrubber((text,))
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("redact: ")) from None
    return text


def text_formatter() -> logging.Formatter:
    """`mockai serve`'s log lines: `HH:MM:SS logger message` (its access lines are written in
    the same form by server/logs.StreamAccessLog)."""
    return logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S")


def _configure_logging(config: Config) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        from mockai.server.logs import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(text_formatter())
    root = logging.getLogger("mockai")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _json_logs_asked(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether `argv` runs `mockai serve` with JSON logs, as far as it can be told before the
    options are parsed (and checked): for the errors of parsing them, and of reading the
    `MOCKAI_*` variables, which come before the logs are configured.

    As the configuration has it, the command line's `--log-format` (its last valid one, spelled
    in full) wins over MOCKAI_LOG_FORMAT; a value that is neither `text` nor `json` decides
    nothing (it is the error being reported)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command != "serve":
        return False
    chosen = environ.get("MOCKAI_LOG_FORMAT", "")
    for index, arg in enumerate(argv):
        if arg == "--":  # (what follows is no option)
            break
        if arg == "--log-format" and index + 1 < len(argv):
            value = argv[index + 1]
        elif arg.startswith("--log-format="):
            value = arg.partition("=")[2]
        else:
            continue
        if value in ("text", "json"):
            chosen = value
    return chosen == "json"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mockai` console script and `python -m mockai`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    json_logs = _json_logs_asked(argv, os.environ)
    args = build_parser(json_errors=json_logs).parse_args(argv)
    try:
        if args.command == "check":
            return _check(args.paths)
        if args.command == "health":
            return _health(args.url)
        serving = _import_server()
        config = config_from_args(args)
        json_logs = config.log_format == "json"
        _configure_logging(config)
        _preflight(config)
        serving.run(config)
    except MockaiError as error:
        if json_logs:  # (every line `mockai serve --log-format json` writes is JSON)
            from mockai.server.logs import json_line

            say(json_line(str(error), level="error"), sys.stderr)
        else:
            say(f"mockai: {error}", sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        pass
    return 0


def _import_server() -> ModuleType:
    """mockai.server.serving: aiohttp and mockai's server, only to serve (not for check, health
    or --help), and what `mockai serve` spends most of its start on.

    The import makes ~60,000 objects that live as long as the process, so the collector's
    passes meanwhile (~90 of them, ~10 ms) find almost nothing to free: it is paused, and what
    the import made is frozen out of its way (`gc.freeze`, as `serving.serve_socket` does with
    the app). What those passes would have freed stays: the cycles some classes leave when made
    (aiohttp's, attrs'), ~0.4 MB, for the life of the process. Done only by the import that
    loads the server, not where a process has it already (a test calling `main`).
    """
    if "mockai.server.serving" in sys.modules:
        from mockai.server import serving

        return serving
    collecting = gc.isenabled()
    gc.disable()
    try:
        from mockai.server import serving
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
    return serving


def _health(url: str | None, timeout: float = 3.0) -> int:
    """Probe `/_mockai/health`: what a container's HEALTHCHECK runs (no curl in slim images).

    The probe goes straight to the server, never through `http_proxy`/`HTTPS_PROXY`/`ALL_PROXY`:
    Docker passes its client's proxy settings into containers, and a proxy outside cannot reach
    the container's loopback, so a healthy server would be reported unhealthy."""
    import urllib.error
    import urllib.request

    if url is None:
        config = Config.from_env()
        url = f"http://{_probe_authority(config.host, config.port)}"
    # The URL clients are given ends in /v1 (the banner's OPENAI_BASE_URL, the plugin's
    # `mockai.url`), and is what a script has at hand; the admin endpoints are at the root above
    # it (probed at `/v1/_mockai/health`, a healthy server was a 404: unhealthy).
    target = url.rstrip("/").removesuffix("/v1") + "/_mockai/health"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(target, timeout=timeout) as answer:
            healthy = answer.status == 200
    except (urllib.error.URLError, OSError, ValueError) as error:
        say(f"mockai health: {target}: {error}", sys.stderr)
        return 1
    # (the exit code is the answer: an output nobody can write to does not change it)
    say(f"mockai health: {target}: {'ok' if healthy else 'unhealthy'}", sys.stdout)
    return 0 if healthy else 1


def _probe_authority(host: str, port: int) -> str:
    """Where `mockai health` reaches a server bound to `host`: that address itself, or for a
    wildcard (0.0.0.0, ::, empty) the loopback address of the same family, which it also
    listens on (`::` takes ::1 whether or not it is dual-stack). An IPv6 address is bracketed,
    as a URL writes it."""
    import ipaddress

    bare = host.removeprefix("[").removesuffix("]")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(bare)
    except ValueError:
        address = None  # a name (localhost, a container's hostname): probed as it is
    if not bare or (address is not None and address.version == 4 and address.is_unspecified):
        bare = "127.0.0.1"
    elif address is not None and address.version == 6 and address.is_unspecified:
        bare = "::1"
    return f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"


def _preflight(config: Config) -> None:
    """Warn about what is accepted but probably not meant, and load the scenario files once.

    Loading here, before `--workers` forks, shows their problems and warnings once (the forked
    processes find them compiled) and before the port is taken.
    """
    from mockai import scenario
    from mockai.backend import open_backend
    from mockai.config import check_together
    from mockai.delivery.timing import unit_warnings

    check_together(config)
    # `--event-loop uvloop` without uvloop: said before the port is bound or workers fork.
    from mockai.server.sites import loop_factory

    loop_factory(config.event_loop)
    if config.cassette is not None and config.workers > 1:
        from mockai.cassette.configure import check_workers  # (vcrpy: only with a cassette)

        check_workers(config)  # before the workers are forked: said once, nothing served
    open_backend(config.state)  # a missing client library is said before the workers start
    if config.watch:
        from mockai.server.reload import require_watchfiles

        require_watchfiles()

    warnings = unknown_env_variables()
    if config.latency:
        warnings += unit_warnings(config.latency)
    warnings += _without_cassette(config)
    if config.watch and not config.scenarios:
        warnings.append("--watch does nothing without --scenario (no files to watch)")
    for warning in warnings:
        log.warning("warning: %s", warning)
    if config.scenarios:
        scenario.load(config.scenarios)


def _without_cassette(config: Config) -> list[str]:
    """Cassette options that do nothing without --cassette (and --upstream, for some)."""
    if config.cassette is not None:
        return []
    unused = ["replay_speed", "match_on", "allow_repeats", "record_errors"]
    if config.upstream is None:
        unused.append("redact")
    if config.record_mode != "none":
        unused.append("record_mode")
    return [
        f"--{name.replace('_', '-')} does nothing without --cassette"
        + (" (nothing is recorded)" if name == "record_mode" else "")
        for name in unused
        if name in config.given
    ]


def _check(paths: Sequence[str]) -> int:
    """Print every problem as `file:line: message`, then every warning; exit 1 on a problem."""
    from mockai.check import check_all  # (`mockai check` only)

    problems, warnings = check_all(paths)
    # (the exit code is the verdict: an output nobody can write to does not change it)
    for problem in problems:
        say(str(problem), sys.stderr)
    for warning in warnings:
        say(str(warning), sys.stderr)
    if problems:
        say(f"mockai check: {len(problems)} problem(s)", sys.stderr)
        return 1
    warned = f" ({len(warnings)} warning(s))" if warnings else ""
    say(f"mockai check: {len(list(paths))} path(s) OK{warned}", sys.stdout)
    return 0
