"""Routes made on first use (Azure's, every provider's named routes) route exactly as when they
were all registered at start: same route, same path parameters, for any path and method."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples
from yarl import URL

from mockai.api.codecs import CODECS
from mockai.profiles import PROFILES, places
from mockai.server import admin, routes
from mockai.server.lazyroutes import LazyRoutes

SERVERS = ["openai", "azure", "groq", "litellm", "gemini"]  # own paths: /v1, /openai/..., ...


def _router(profile: str, lazy: bool) -> web.UrlDispatcher:
    holder = web.Application()  # registered as create_app does (app._add_routes)
    routes.add_api_routes(holder, CODECS, PROFILES[profile], lazy=lazy)
    admin.add_admin_routes(holder)
    routes.add_media_routes(holder)
    routes.add_catch_all(holder, PROFILES[profile])
    holder.router.freeze()
    return holder.router


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


ROUTERS = {(name, lazy): _router(name, lazy) for name in SERVERS for lazy in (True, False)}

# Where a path may start: every base path a route is served under, and some that are none.
PREFIXES = sorted(
    {"", "/v1", "/openai", "/openai/v1", "/azure", "/azure/openai", "/nope", "/v2"}
    | {prefix for place in places.PLACES.values() for prefix in place.prefixes}
    | {path for place in places.PLACES.values() for path in place.paths}
)
SEGMENTS = st.sampled_from(
    [
        "chat",
        "completions",
        "embeddings",
        "responses",
        "models",
        "files",
        "batches",
        "images",
        "generations",
        "edits",
        "audio",
        "speech",
        "deployments",
        "input_tokens",
        "content",
        "cancel",
        "conversations",
        "items",
        "messages",
        "gpt-4o",
        "meta-llama",
        "v1",
        "openai",
        "groq",
        "",
    ]
) | st.text(st.characters(codec="utf-8", exclude_characters="/?#"), max_size=6)
ROUTE_PATHS = sorted(
    {route.path for route in routes.api_routes(CODECS)}
    | {"/deployments/{deployment}" + ref.path for ref in CODECS}
)


def _filled(template: str, draw: st.DrawFn) -> str:
    """A route path with each `{parameter}` filled in (any characters, slashes too)."""
    out = ""
    for part in template.replace("}", "{").split("{"):
        if ":" in part or part in ("deployment", "file_id", "batch_id", "completion_id"):
            out += draw(st.sampled_from(["x", "gpt-4o", "a/b", "file-1", "%0a", "ü"]))
        elif part.endswith("_id") or part in ("model", "name", "content", "cancel"):
            out += draw(st.sampled_from(["x", "resp_1", "content", "cancel"]))
        else:
            out += part
    return out


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str]:
    prefix = draw(st.sampled_from(PREFIXES))
    if draw(st.booleans()):
        path = prefix + _filled(draw(st.sampled_from(ROUTE_PATHS)), draw)
    else:
        path = prefix + "".join("/" + s for s in draw(st.lists(SEGMENTS, max_size=4)))
    method = draw(st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH"]))
    return method, quote(path or "/", safe="/%:@!$&'()*+,;=-._~")


# One mocked request, cloned for each method and path: making one mocks sixteen objects by
# spec, ~11 ms each, 95% of these tests' time; a clone is a plain Request of its own.
_REQUEST = make_mocked_request("GET", "/")


def _resolved(router: web.UrlDispatcher, method: str, path: str, loop: asyncio.AbstractEventLoop):
    request = _REQUEST.clone(method=method, rel_url=URL(path))  # (as make_mocked_request makes it)
    match = loop.run_until_complete(router.resolve(request))
    if match.http_exception is not None:
        return ("error", match.http_exception.status)
    resource = match.route.resource
    assert resource is not None
    return (match.route.method, resource.canonical, dict(match))


@given(asked=requests(), server=st.sampled_from(SERVERS))
@settings(max_examples=examples(300), deadline=None)
def test_lazy_groups_resolve_as_routes_registered_at_start(
    asked: tuple[str, str], server: str, loop: asyncio.AbstractEventLoop
) -> None:
    method, path = asked
    lazy = _resolved(ROUTERS[server, True], method, path, loop)
    eager = _resolved(ROUTERS[server, False], method, path, loop)
    assert lazy == eager, (server, method, path)


@pytest.mark.parametrize("server", SERVERS)
def test_every_route_of_a_group_is_found_through_it(
    server: str, loop: asyncio.AbstractEventLoop
) -> None:
    """Each route registered at start (eager) is the route its own path finds when lazy."""
    eager = ROUTERS[server, False]
    groups = [r for r in ROUTERS[server, True].resources() if isinstance(r, LazyRoutes)]
    assert [g.key for g in groups] == ["/openai", "/azure/openai/deployments", "/"]
    for resource in eager.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter", "")
        path = path.replace("{base}", "groq/openai/v1").replace("{name}", "groq")
        for name in (
            "deployment",
            "model",
            "response_id",
            "conversation_id",
            "item_id",
            "completion_id",
            "file_id",
            "batch_id",
            "name",
            "tail",
        ):
            path = path.replace("{" + name + "}", "x" if name != "tail" else "/x")
        path = path.replace("{content}", "content").replace("{cancel}", "cancel")
        for method in ("GET", "POST", "DELETE"):
            lazy = _resolved(ROUTERS[server, True], method, path or "/", loop)
            assert lazy == _resolved(eager, method, path or "/", loop), (server, method, path)
