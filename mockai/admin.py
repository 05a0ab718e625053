"""Admin endpoints under `/_mockai/`, so tests in any language can inspect and script the server."""

from __future__ import annotations

import os

from aiohttp import web

from mockai import __version__
from mockai.state import STATE

PREFIX = "/_mockai"


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__, "pid": os.getpid()})


async def _requests(request: web.Request) -> web.Response:
    entries = request.app[STATE].journal.entries()
    limit = request.query.get("limit")
    if limit is not None and limit.isdigit():
        entries = entries[-int(limit) :] if int(limit) else []
    return web.json_response({"object": "list", "data": [e.as_json() for e in entries]})


async def _clear_requests(request: web.Request) -> web.Response:
    request.app[STATE].journal.clear()
    return web.json_response({"cleared": True})


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.json_response({"reset": True})


def add_admin_routes(app: web.Application) -> None:
    """Register `/_mockai/health`, `/_mockai/requests` and `/_mockai/reset`."""
    app.router.add_get(PREFIX + "/health", _health)
    app.router.add_get(PREFIX + "/requests", _requests)
    app.router.add_delete(PREFIX + "/requests", _clear_requests)
    app.router.add_post(PREFIX + "/reset", _reset)
