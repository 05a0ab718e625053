"""Admin endpoints under `/_mockai/`, so tests in any language can inspect and script the server."""

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
from mockai.scenario.book import RuleBook
from mockai.server.state import STATE
from mockai.wire import errors, ids, jsonbytes

PREFIX = "/_mockai"
log = logging.getLogger("mockai")


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__, "pid": os.getpid()})


async def _requests(request: web.Request) -> web.Response:
    entries = request.app[STATE].journal.entries()
    limit = request.query.get("limit")
    if limit is not None and limit.isascii() and limit.isdigit():  # ("²".isdigit() is true)
        entries = entries[-int(limit) :] if int(limit) else []
    return web.json_response({"object": "list", "data": [e.as_json() for e in entries]})


async def _clear_requests(request: web.Request) -> web.Response:
    request.app[STATE].journal.clear()
    return web.json_response({"cleared": True})


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.json_response({"reset": True})


# --- rules: script the server from any language ------------------------------------------------


def _error(error: ApiError) -> web.Response:
    return web.Response(
        status=error.status,
        body=jsonbytes.dumps(error.body()),
        content_type="application/json",
        headers={"x-request-id": ids.request_id()},
    )


def _book(request: web.Request) -> RuleBook:
    rules = request.app[STATE].rules
    if rules is None:
        raise ApiError(404, "this server was built with custom sources and has no rules")
    return rules


def _rules_json(book: RuleBook, names: list[str] | None = None) -> dict[str, Any]:
    data = [info.as_json() for info in book.describe() if names is None or info.name in names]
    return {"object": "list", "data": data}


async def _list_rules(request: web.Request) -> web.Response:
    return web.json_response(_rules_json(_book(request)))


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
    except ValueError:
        raise ApiError(400, "the body must be a JSON rule or a JSON list of rules") from None
    rules = body if isinstance(body, list) else [body]
    try:
        names = book.add(rules, file="<admin>")
    except ScenarioError as problems:
        raise ApiError(400, str(problems), code="mockai_invalid_rule") from None
    return web.json_response(_rules_json(book, names))


async def _clear_rules(request: web.Request) -> web.Response:
    return web.json_response({"deleted": _book(request).clear()})


async def _delete_rule(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        _book(request).remove(name)
    except ScenarioError as problem:
        raise ApiError(404, str(problem), code="mockai_unknown_rule") from None
    return web.json_response({"deleted": name})


# --- who may use them -------------------------------------------------------------------------


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _admin(handler: Handler) -> Handler:
    """`handler` for loopback clients only (unless `admin_remote`), its ApiErrors as responses,
    and a bug in it as the API's 500 (traceback in the log), never aiohttp's text page."""

    async def guarded(request: web.Request) -> web.Response:
        try:
            _check_client(request)
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
    if request.app[STATE].config.admin_remote or request.remote is None:
        return
    if not is_loopback(request.remote):
        raise ApiError(
            403,
            "mockai's admin endpoints answer loopback clients only; start the server with "
            "--admin-remote to allow others",
            type="invalid_request_error",
            code="mockai_admin_forbidden",
        )


def is_loopback(remote: str) -> bool:
    """Whether a peer address is this machine: 127.0.0.0/8, ::1, or an IPv4 loopback address
    seen through an IPv6 socket (`::ffff:127.0.0.1`, what a server bound to `::` sees)."""
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


async def _method_not_allowed(request: web.Request) -> web.Response:
    return _error(errors.invalid_method(request.method, request.path))


def add_admin_routes(app: web.Application) -> None:
    """Register `/_mockai/health`, `/_mockai/requests`, `/_mockai/reset` and `/_mockai/rules`."""
    routes: dict[str, dict[str, Handler]] = {
        "/health": {"GET": _health},  # harmless, and useful to probes anywhere
        "/requests": {"GET": _admin(_requests), "DELETE": _admin(_clear_requests)},
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
        for method, handler in handlers.items():
            resource.add_route(method, handler)
        resource.add_route("*", _method_not_allowed)  # the API's 405, as on the API's routes
