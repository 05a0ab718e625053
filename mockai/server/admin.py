"""Admin endpoints under `/_mockai/`, so tests in any language can inspect and script the server.

Who may use them: loopback clients, unless `--admin-remote` lets others in; with `--admin-token`
(required with `--admin-remote`) every call must also carry `Authorization: Bearer TOKEN`.
`/_mockai/health` answers everyone (probes), and the inspector page itself holds no data (it
asks the guarded endpoints, with the token it is given).

Web pages may not use them. A page the user has open can send requests to a local server
(a form's POST, a `no-cors` fetch) without reading the answers, and those would still reset the
server or add rules. Browsers say which page sent a request (`Origin`): a request carrying one
is refused unless it comes from mockai's own pages, on a loopback host name. A page of another
site whose name was made to resolve to 127.0.0.1 (DNS rebinding) is same-origin with the server,
so its GETs carry no `Origin` and can read the answers; but they name its own host in `Host`, so
a request whose `Host` is not a loopback name is refused too, `Origin` or not. Clients that are
not browsers send no `Origin`. With `--admin-remote` the token is the guard instead: a page
cannot send it (a header of its own needs a preflight, which these endpoints refuse). The API
routes, by contrast, take requests from any page, as the API does (`wire/cors.py`).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mockai import __version__
from mockai.errors import ApiError, ScenarioError
from mockai.pipeline import run as pipeline
from mockai.pipeline.journal import PAGE_MAX, ascii_count
from mockai.scenario.book import RuleBook
from mockai.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from mockai.server.routes import allowed_methods, expect_continue, with_head
from mockai.server.state import STATE
from mockai.wire import errors, ids, jsonbytes
from mockai.wire.credentials import same_secret
from mockai.wire.loopback import is_loopback, is_loopback_host

PREFIX = "/_mockai"
log = logging.getLogger("mockai")


def without_arrival(request: web.Request) -> None:
    """Drop the arrival stamp of a request the pipeline does not answer (the pipeline takes its
    own: `run._begin`). Left behind, it would be taken by the connection's next request, which
    would then seem to have arrived before it was sent: its latency and stream pacing skipped
    as already elapsed, its journal times wrong (openai-node and `fetch` share one keep-alive
    pool, so the admin call before each test hands its stamp to the test's first request)."""
    request.app[STATE].arrivals.take(request.transport)


async def _health(request: web.Request) -> web.Response:
    without_arrival(request)
    state = request.app[STATE]
    return _json(
        {
            "status": "ok",
            "version": __version__,
            "pid": os.getpid(),
            "state": state.backend.name,
        }
    )


async def _requests(request: web.Request) -> web.Response:
    """The journal, a page at a time: `?limit=N` (at most 1000) newest entries, or with
    `?after=SEQ` the entries after that sequence number, oldest first (follow `last_seq`);
    `?bodies=0` leaves out each entry's `body`."""
    limit = _count(request, "limit", PAGE_MAX)
    after = _count(request, "after", None)
    bodies = _switch(request, "bodies")
    # The inspector page lists the journal without bodies (up to 16 MiB of them) and reads
    # one when its row is selected: a page open for hours holds none but that one.
    view = request.app[STATE].journal_view
    data, more = await view.page(min(limit or 0, PAGE_MAX), after, bodies=bodies)
    return _json(
        {
            "object": "list",
            "data": data,
            "has_more": more,
            "first_seq": data[0]["seq"] if data else None,
            "last_seq": data[-1]["seq"] if data else after,
        }
    )


def _json(data: Any) -> web.Response:
    """`data` as a JSON answer, written by orjson: a page of the journal holds up to 16 MiB of
    bodies (`MOCKAI_JOURNAL_BYTES`), which aiohttp's `json_response` (the standard library's
    encoder, non-ASCII escaped) wrote in ~4x the time. orjson copies the bodies the page holds
    as their bytes (`JournalView.page`): ~15 ms for 16 MiB."""
    return web.Response(body=jsonbytes.dumps(data), content_type="application/json")


def _count(request: web.Request, name: str, default: int | None) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    count = ascii_count(value, max_digits=18)  # (more than 18 digits mean nothing here)
    if count is None:
        raise ApiError(
            400,
            f"Invalid '{name}': expected a whole number >= 0 (at most 18 digits), "
            f"got {_shown(value)}.",
            param=name,
            code="invalid_type",
        )
    return count


def _switch(request: web.Request, name: str) -> bool:
    """A `?name=0|1` switch, on unless sent as 0 (empty: on, as `_count` takes empty)."""
    value = request.query.get(name) or "1"
    if value not in ("0", "1"):
        raise ApiError(
            400,
            f"Invalid '{name}': expected 0 or 1, got {_shown(value)}.",
            param=name,
            code="invalid_value",
        )
    return value == "1"


def _shown(value: str) -> str:
    """A value from the request, quoted and cut short, for an error message."""
    return repr(value) if len(value) <= 40 else repr(value[:40]) + f"... ({len(value)} characters)"


async def _clear_requests(request: web.Request) -> web.Response:
    await request.app[STATE].journal_view.clear()
    return _json({"cleared": True})


async def _reset(request: web.Request) -> web.Response:
    await request.app[STATE].reset()
    return _json({"reset": True})


async def _metrics(request: web.Request) -> web.Response:
    metrics = request.app[STATE].metrics
    if metrics is None:
        raise ApiError(404, "this server keeps no metrics", code="mockai_no_metrics")
    body = metrics.render()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


async def _inspector(request: web.Request) -> web.Response:
    """The inspector: one HTML page (with its script inline) served from the package."""
    from importlib import resources

    page = resources.files("mockai").joinpath("data/inspector.html").read_bytes()
    return web.Response(
        body=page,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            # Everything it needs is inline or from this server: no CDN, nothing else. Its
            # icon is an empty `data:` one: without it a browser asks for /favicon.ico, which
            # the journal would list as a request.
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
        },
    )


# --- rules: script the server from any language ------------------------------------------------


def _error(error: ApiError) -> web.Response:
    return web.Response(
        status=error.status,
        body=jsonbytes.dumps(error.body()),
        content_type="application/json",
        headers={"x-request-id": ids.request_id(), **error.headers},
    )


def _book(request: web.Request) -> RuleBook:
    rules = request.app[STATE].rules
    if rules is None:
        raise ApiError(404, "this server was built with custom sources and has no rules")
    return rules


async def _rules_listed(book: RuleBook, names: list[str] | None = None) -> dict[str, Any]:
    # (a set: looked up in the list, 20,000 rules just added took 3.5 s to list, on the loop)
    wanted = None if names is None else set(names)
    data = [
        info.as_json()
        for info in await book.describe_async()
        if wanted is None or info.name in wanted
    ]
    return {"object": "list", "data": data}


async def _list_rules(request: web.Request) -> web.Response:
    return _json(await _rules_listed(_book(request)))


async def _add_rules(request: web.Request) -> web.Response:
    """`POST /_mockai/rules` with a rule or a list of rules; 400 lists every problem."""
    book = _book(request)
    read = await pipeline.read_body(request)
    if read is None:
        return pipeline.gone()
    raw, unreadable = read
    if unreadable is not None:
        answer = _error(unreadable)
        answer.force_close()
        return answer
    try:
        body = jsonbytes.loads(raw)
    except ValueError as error:  # (what the parser says: where, or why: NaN, nesting)
        raise ApiError(
            400, f"the body must be a JSON rule or a JSON list of rules ({error})"
        ) from None
    rules = body if isinstance(body, list) else [body]
    try:
        names = await book.add_async(rules, file="<admin>")
    except ScenarioError as problems:
        raise ApiError(400, str(problems), code="mockai_invalid_rule") from None
    return _json(await _rules_listed(book, names))


async def _clear_rules(request: web.Request) -> web.Response:
    return _json({"deleted": await _book(request).clear_async()})


async def _delete_rule(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        await _book(request).remove_async(name)
    except ScenarioError as problem:
        raise ApiError(404, str(problem), code="mockai_unknown_rule") from None
    return _json({"deleted": name})


# --- who may use them -------------------------------------------------------------------------


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _admin(handler: Handler, *, token: bool = True) -> Handler:
    """`handler` for the clients allowed (see the module docstring), its ApiErrors as
    responses, and a bug in it as the API's 500 (traceback in the log), never aiohttp's text
    page; `token=False` for what holds no data (the inspector page)."""

    async def guarded(request: web.Request) -> web.Response:
        without_arrival(request)
        try:
            _check_client(request)
            _check_host(request)
            _check_origin(request)
            if token:
                _check_token(request)
            return await handler(request)
        except ApiError as error:
            return _error(error)
        except Exception:
            log.exception("mockai failed while answering %s %s", request.method, request.path)
            return _error(
                ApiError(500, "mockai internal error (see the server log)", type="server_error")
            )

    return guarded


def _check_client(request: web.Request) -> None:
    # Admin endpoints change what the server answers: on a server listening beyond loopback,
    # only local clients may use them unless the operator said otherwise.
    if request.app[STATE].config.admin_remote:
        return
    if request.remote is not None and not is_loopback(request.remote):
        raise ApiError(
            403,
            "mockai's admin endpoints answer loopback clients only; start the server with "
            "--admin-remote and --admin-token to allow others",
            type="invalid_request_error",
            code="mockai_admin_forbidden",
        )
    # A reverse proxy on this machine (nginx, ngrok, a mesh's sidecar) connects from loopback
    # for every client it relays, and nginx's default `Host` is the address it proxies to: the
    # client it names is the one asking.
    relayed = next((a for a in _forwarded_for(request) if not is_loopback(a)), None)
    if relayed is not None:
        raise ApiError(
            403,
            f"mockai's admin endpoints answer loopback clients only, and a proxy forwarded this "
            f"request for {_shown(relayed)}; start the server with --admin-remote and "
            "--admin-token to allow others",
            type="invalid_request_error",
            code="mockai_admin_forbidden",
        )


def _forwarded_for(request: web.Request) -> list[str]:
    """The client addresses proxies say they forwarded a request for: `X-Forwarded-For`,
    `X-Real-IP` and RFC 7239's `Forwarded: for=` (each without its port, `[]`, quotes; an
    obfuscated or `unknown` one as it is, which is no loopback address)."""
    given: list[str] = []
    for name in ("X-Forwarded-For", "X-Real-IP"):
        for value in request.headers.getall(name, ()):
            given += value.split(",")
    for value in request.headers.getall("Forwarded", ()):
        for pair in value.replace(",", ";").split(";"):
            key, _, node = pair.partition("=")
            if key.strip().lower() == "for":
                given.append(node)
    addresses = []
    for node in given:
        node = node.strip().strip('"')
        if node.startswith("["):  # `[2001:db8::1]:4711`
            node = node[1:].partition("]")[0]
        elif node.count(":") == 1:  # `192.0.2.43:47011`
            node = node.partition(":")[0]
        if node:
            addresses.append(node)
    return addresses


def _check_host(request: web.Request) -> None:
    """Only requests addressed to a loopback name (see the module docstring: DNS rebinding).
    Not with `--admin-remote`, where the server is reached by other names and the token guards
    it; nor without a `Host` (HTTP/1.0), which no browser sends."""
    host = request.headers.get("Host")
    if host is None or request.app[STATE].config.admin_remote or _is_loopback_name(host):
        return
    if _is_address(host):  # (`0.0.0.0:8000`, the machine's own IP: no DNS name to rebind)
        return
    raise ApiError(
        403,
        f"mockai's admin endpoints answer requests to a loopback name only (Host: {_shown(host)}); "
        "use http://127.0.0.1 or http://localhost, or start the server with --admin-remote and "
        "--admin-token to allow other names",
        type="invalid_request_error",
        code="mockai_admin_forbidden",
    )


def _check_origin(request: web.Request) -> None:
    """A browser's request only from mockai's own page (see the module docstring). Not with
    `--admin-remote`: the admin token it requires is what a page cannot send, and the server
    is reached by names that are not loopback ones (behind a proxy, its scheme too)."""
    origin = request.headers.get("Origin")
    if origin is None or request.app[STATE].config.admin_remote:
        return
    own = f"{request.scheme}://{request.host}"
    if origin == own and _is_loopback_name(request.host):
        return
    raise ApiError(
        403,
        f"mockai's admin endpoints take no requests from web pages (Origin: {origin}); "
        "call them from your tests or tools, or from the inspector page at /_mockai/",
        type="invalid_request_error",
        code="mockai_admin_forbidden",
    )


def _is_loopback_name(host: str) -> bool:
    """Whether a Host header names this machine by a loopback name or address."""
    return is_loopback_host(host.rsplit(":", 1)[0] if not host.endswith("]") else host)


def _is_address(host: str) -> bool:
    """Whether a Host header names an IP address rather than a name (`[::1]:8000` too)."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _check_token(request: web.Request) -> None:
    """With `--admin-token`, the bearer token must be sent (compared in constant time)."""
    expected = request.app[STATE].config.admin_token
    if expected is None:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        message = (
            "mockai's admin endpoints need the admin token: send `Authorization: Bearer TOKEN` "
            "with the server's --admin-token"
        )
    elif not same_secret(given.strip(), expected):
        message = "the admin token sent is not this server's --admin-token"
    else:
        return
    raise ApiError(
        401,
        message,
        type="invalid_request_error",
        code="mockai_admin_unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="mockai admin"'},
    )


async def _method_not_allowed(request: web.Request) -> web.Response:
    without_arrival(request)
    return _error(errors.invalid_method(request.method, request.path, allowed_methods(request)))


def add_admin_routes(app: web.Application) -> None:
    """Register `/_mockai/health`, `/_mockai/requests` (also `/_mockai/journal`),
    `/_mockai/reset`, `/_mockai/rules`, `/_mockai/metrics` and the inspector page at
    `/_mockai/`; other methods there get the API's 405."""
    inspector = _admin(_inspector, token=False)
    routes: dict[str, dict[str, Handler]] = {
        "/health": {"GET": _health},  # harmless, and useful to probes anywhere
        "/": {"GET": inspector},
        "": {"GET": inspector},
        "/metrics": {"GET": _admin(_metrics)},
        "/requests": {"GET": _admin(_requests), "DELETE": _admin(_clear_requests)},
        # The same (ARCHITECTURE.md names the admin endpoints "journal, rules, reset, health").
        "/journal": {"GET": _admin(_requests), "DELETE": _admin(_clear_requests)},
        "/reset": {"POST": _admin(_reset)},
        "/rules": {
            "GET": _admin(_list_rules),
            "POST": _admin(_add_rules),
            "DELETE": _admin(_clear_rules),
        },
        # (any characters: `[\s\S]`, as `.` would not match a decoded `%0a`)
        "/rules/{name:[\\s\\S]+}": {"DELETE": _admin(_delete_rule)},
    }
    for path, handlers in routes.items():
        resource = app.router.add_resource(PREFIX + path)
        for method, handler in with_head(handlers).items():
            resource.add_route(method, handler, expect_handler=expect_continue)
        # the API's 405, as on the API's routes
        resource.add_route("*", _method_not_allowed, expect_handler=expect_continue)
