"""The URL map: every API route under `/v1`, at the root and under each provider profile's
prefix; 405s for wrong methods, 404s (in the provider's shape) last."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import HttpVersion11, hdrs, web

from mockai import profiles
from mockai.api import codecs as codec_table
from mockai.api import common, models
from mockai.api.base import Codec
from mockai.api.codecs import CodecRef
from mockai.backend import StateUnavailable
from mockai.pipeline import run as pipeline
from mockai.pipeline import stored
from mockai.pipeline.exchange import Endpoint
from mockai.pipeline.run import Handler
from mockai.profiles.base import Profile
from mockai.profiles.places import PLACES
from mockai.server.lazyroutes import LazyRoutes
from mockai.server.state import STATE, ServerState
from mockai.stores import IMAGES_PATH
from mockai.wire import cors, errors, jsonbytes
from mockai.wire.outgoing import Body, EventStream, Outgoing

# Azure OpenAI's per-deployment routes: `/openai/deployments/{deployment}/chat/completions?...`
# (the endpoints `AzureOpenAI` sends to a deployment).
AZURE_DEPLOYMENT_ENDPOINTS = (
    Endpoint.CHAT,
    Endpoint.COMPLETIONS,
    Endpoint.EMBEDDINGS,
    Endpoint.SPEECH,
    Endpoint.TRANSCRIPTIONS,
    Endpoint.TRANSLATIONS,
    Endpoint.IMAGES,
    Endpoint.IMAGE_EDITS,
)

# A handler that also takes the provider profile the route serves.
Bound = Callable[[web.Request, Profile], Awaitable[web.StreamResponse]]


async def _method_not_allowed(request: web.Request, profile: Profile) -> web.StreamResponse:
    if cors.is_preflight(request.method, request.headers):  # a browser asks first
        return await pipeline.preflight(request, profile)
    allowed = allowed_methods(request)
    return await pipeline.simple(
        request,
        lambda state: raise_(errors.invalid_method(request.method, request.path, allowed)),
        profile,
    )


async def _not_found(request: web.Request, profile: Profile) -> web.StreamResponse:
    if cors.is_preflight(request.method, request.headers):  # (then the 404 itself, readable)
        return await pipeline.preflight(request, profile)
    return await pipeline.simple(
        request, lambda state: raise_(errors.invalid_url(request.method, request.path)), profile
    )


def raise_(error: Exception) -> Outgoing:
    raise error


# What the catalog answers on /models, by method: `(state, request, profile)` -> the answer.
CatalogCall = Callable[[ServerState, web.Request, Profile], Outgoing]


def _from_catalog(call: CatalogCall, route: str) -> Bound:
    """A /models handler (`route` its template, `/models/{model}`): the server's catalog answers,
    unless a cassette or the upstream does first.

    The upstream knows its own models: with either configured, the request goes the way of files
    and batches (pipeline.stored.kept), so a recording proxy forwards and records it and a replay
    answers from those recordings; what none holds is the catalog's. Without them, or with the
    models named (`--models`, a scenario's `models:`: what /v1/models lists, by the scenario
    contract), the catalog answers."""

    async def handle(request: web.Request, profile: Profile) -> web.StreamResponse:
        config = request.app[STATE].config
        if config.models is not None or (config.cassette is None and config.upstream is None):
            return await pipeline.simple(
                request, lambda state: call(state, request, profile), profile
            )
        addressed = route.format_map(request.match_info)
        # (The exchange's endpoint is a formality: the cassette sources go by its route.)
        return await stored.kept(
            request,
            lambda state, body: call(state, request, profile),
            profile,
            addressed,
            Endpoint.CHAT,
        )

    return handle


def _list_models(state: ServerState, request: web.Request, profile: Profile) -> Outgoing:
    return profile.models_body(state.catalog_of(profile).listed())


def _retrieve_model(state: ServerState, request: web.Request, profile: Profile) -> Outgoing:
    return profile.model_body(state.catalog_of(profile).get(request.match_info["model"]))


def _delete_model(state: ServerState, request: web.Request, profile: Profile) -> Outgoing:
    return models.delete_model(state.catalog_of(profile), request.match_info["model"])


def _generating(ref: CodecRef, *, deployment: bool = False) -> Bound:
    """The handler of a codec's route; `deployment`: an Azure deployment's, which names it."""
    codec: Codec | None = None  # loaded by the first request (a server rarely uses them all)

    async def handle(request: web.Request, profile: Profile) -> web.StreamResponse:
        nonlocal codec
        if codec is None:
            codec = ref.load()
        if deployment:
            name = request.match_info["deployment"]
            return await pipeline.run(request, codec, profile, deployment=name)
        return await pipeline.run(request, codec, profile)

    return handle


Call = Callable[[ServerState, web.Request, Any], object]


def _stateful(call: Call, route: str, endpoint: Endpoint) -> Bound:
    """A handler answering, as JSON, what `call(state, request, body)` returns (or sending it,
    when it is already a wire answer); `body` is the request's JSON (None without a body).
    Errors it raises are the API's error answers.

    `route` is the API route it serves (`/conversations/{conversation_id}`): with a cassette or
    an upstream, the request, so named, is answered by them first (pipeline.stored.kept)."""

    async def handle(request: web.Request, profile: Profile) -> web.StreamResponse:
        async def produce(state: ServerState, body: Any) -> Outgoing:
            answer = call(state, request, body)
            if inspect.isawaitable(answer):
                answer = await answer
            if isinstance(answer, Body | EventStream):
                return answer
            return Body(200, jsonbytes.dumps(answer))

        # (The route's own variables only: a named prefix's `{base}` is not in the template.)
        addressed = route.format_map(request.match_info)
        return await stored.kept(request, produce, profile, addressed, endpoint)

    return handle


async def _retrieve_response(state: ServerState, request: web.Request, body: Any) -> object:
    response_id = request.match_info["response_id"]
    if request.query.get("stream", "").lower() == "true":
        padded = request.query.get("include_obfuscation", "").lower() != "false"
        return await state.responses.resume(
            response_id, request.query.get("starting_after"), padded
        )
    if request.method == "HEAD":  # a probe shows the run as it stands, without moving it on
        return await state.responses.peek(response_id)
    response, finished = await state.responses.retrieve(response_id)
    if finished:  # a background run's output joins its conversation when the run is done
        await state.conversations.add_output(response)
    return response


async def _count_input_tokens(state: ServerState, request: web.Request, body: Any) -> object:
    # Validated and counted as the same request to POST /responses would be, so the count
    # equals that answer's `usage.input_tokens` (unless a rule scripts `usage`: no rule runs
    # here, as docs/scenarios.md says, so that counting moves no sequence).
    context = pipeline.parse_context(state, request.headers)
    context = await pipeline.with_held(state, context, Endpoint.RESPONSES, body)
    await common.settle_schemas(body)  # a long schema's metaschema check: off the loop
    exchange = state.codecs[Endpoint.RESPONSES].parse(body, context)
    # A response or conversation the request would not find is refused here too: counted
    # without it, the count was that of a request the API would not answer.
    await pipeline.check_references(state, exchange, storing=False)
    return {"object": "response.input_tokens", "input_tokens": exchange.prompt_tokens}


@dataclass(frozen=True, eq=False)
class Route:
    """One API route under a prefix: its handlers by method, and the endpoint it needs (a
    provider without that endpoint does not get the route: its 404 answers instead); `kept`:
    a route to the Responses API's state, which a stateless provider does not have either."""

    path: str
    handlers: Mapping[str, Bound]
    needs: Endpoint | None = None
    kept: bool = False


def _kept(path: str, endpoint: Endpoint, calls: Mapping[str, Call]) -> Route:
    """A route to what the stores keep: `calls` by method, each a `_stateful` handler."""
    return Route(path, {m: _stateful(call, path, endpoint) for m, call in calls.items()}, endpoint)


def _stored_completions() -> list[Route]:
    """Chat completions kept with `store: true` (the list is on the chat route itself)."""

    def completion_id(request: web.Request) -> str:
        return request.match_info["completion_id"]

    one = "/chat/completions/{completion_id}"
    return [
        _kept(
            one,
            Endpoint.CHAT,
            {
                "GET": lambda s, r, b: s.completions.retrieve(completion_id(r)),
                "POST": lambda s, r, b: s.completions.update(completion_id(r), b),
                "DELETE": lambda s, r, b: s.completions.delete(completion_id(r)),
            },
        ),
        _kept(
            one + "/messages",
            Endpoint.CHAT,
            {"GET": lambda s, r, b: s.completions.messages(completion_id(r), r.query)},
        ),
    ]


def _stored_responses() -> list[Route]:
    """The Responses API's server-side state: stored responses and conversations."""

    def response_id(request: web.Request) -> str:
        return request.match_info["response_id"]

    def conversation_id(request: web.Request) -> str:
        return request.match_info["conversation_id"]

    def item_id(request: web.Request) -> str:
        return request.match_info["item_id"]

    one = "/responses/{response_id}"
    conversation = "/conversations/{conversation_id}"
    item = conversation + "/items/{item_id}"
    routes: list[tuple[str, Mapping[str, Call]]] = [
        ("/responses/input_tokens", {"POST": _count_input_tokens}),
        # (after input_tokens, which is not a response id)
        (
            one,
            {
                "GET": _retrieve_response,
                "DELETE": lambda s, r, b: s.responses.delete(response_id(r)),
            },
        ),
        (one + "/cancel", {"POST": lambda s, r, b: s.responses.cancel(response_id(r))}),
        (
            one + "/input_items",
            {"GET": lambda s, r, b: s.responses.input_items(response_id(r), r.query)},
        ),
        ("/conversations", {"POST": lambda s, r, b: s.conversations.create(b)}),
        (
            conversation,
            {
                "GET": lambda s, r, b: s.conversations.retrieve(conversation_id(r)),
                "POST": lambda s, r, b: s.conversations.update(conversation_id(r), b),
                "DELETE": lambda s, r, b: s.conversations.delete(conversation_id(r)),
            },
        ),
        (
            conversation + "/items",
            {
                "GET": lambda s, r, b: s.conversations.list_items(conversation_id(r), r.query),
                "POST": lambda s, r, b: s.conversations.add_items(conversation_id(r), b),
            },
        ),
        (
            item,
            {
                "GET": lambda s, r, b: s.conversations.item(conversation_id(r), item_id(r)),
                "DELETE": lambda s, r, b: s.conversations.delete_item(
                    conversation_id(r), item_id(r)
                ),
            },
        ),
    ]
    # Compaction is not served: `/responses/compact` is the API's 404 for every method, as any
    # other unknown route is, and not a response id (which would answer a 405 on POST).
    compact = Route("/responses/compact", {"*": _not_found}, Endpoint.RESPONSES)
    kept = [replace(_kept(path, Endpoint.RESPONSES, calls), kept=True) for path, calls in routes]
    return [compact, *kept]


@functools.cache
def api_routes(endpoint_codecs: tuple[CodecRef, ...]) -> tuple[Route, ...]:
    """Every API route, relative to a prefix (`/v1`, the root, `/groq/openai/v1`, ...); made
    once per process (a test suite starts a server per test)."""
    out: list[Route] = []
    for ref in endpoint_codecs:
        handlers: dict[str, Bound] = {"POST": _generating(ref)}
        if ref.endpoint is Endpoint.CHAT:  # the list of stored completions
            handlers["GET"] = _stateful(
                lambda s, r, b: s.completions.list(r.query), ref.path, ref.endpoint
            )
        out.append(Route(ref.path, handlers, ref.endpoint))
    out.append(Route("/models", {"GET": _from_catalog(_list_models, "/models")}))
    # Any characters, not the default `[^{}/]+`: unencoded ids such as
    # `meta-llama/llama-3.3-70b` work (and `[\s\S]`, not `.`, also matches a decoded `%0a`).
    one = "/models/{model}"
    handlers = {
        "GET": _from_catalog(_retrieve_model, one),
        "DELETE": _from_catalog(_delete_model, one),
    }
    out.append(Route("/models/{model:[\\s\\S]+}", handlers))
    return (*out, *_stored_responses(), *_stored_completions(), *_files_and_batches())


def _files_and_batches() -> list[Route]:
    """Files and batches: every route goes through the pipeline (rules, cassettes, faults and
    the journal see them like any request); their stores answer what no source does."""
    out: list[Route] = []
    for ref, one, action, methods in (
        (codec_table.FILES, "/{file_id}", "/{content:content}", ("GET", "DELETE")),
        (codec_table.BATCHES, "/{batch_id}", "/{cancel:cancel}", ("GET",)),
    ):
        handler = _generating(ref)
        action_method = "GET" if ref is codec_table.FILES else "POST"
        one = ref.path + one
        out += [
            Route(ref.path, {"POST": handler, "GET": handler}, ref.endpoint),
            Route(one, dict.fromkeys(methods, handler), ref.endpoint),
            Route(one + action, {action_method: handler}, ref.endpoint),
        ]
    return out


def _fixed(bound: Bound, profile: Profile) -> Handler:
    """`bound` serving one profile (the routes of a prefix that belongs to it)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await bound(request, profile)

    return handle


def _named(bound: Bound, name: str) -> Handler:
    """`bound` serving the profile called `name`, its module imported on its first request (a
    server loads only the profiles it is asked through)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await bound(request, profiles.PROFILES[name])

    return handle


def _by_match(bound: Bound, names: Mapping[str, str], variable: str) -> Handler:
    """`bound` serving the profile the matched path names (`{base}` or `{name}`): `names` maps
    what the pattern matched to the profile's name."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await bound(request, profiles.PROFILES[names[request.match_info[variable]]])

    return handle


def _resource(
    router: web.UrlDispatcher, path: str, handlers: Mapping[str, Handler], not_allowed: Handler
) -> None:
    """One route: its handlers by method (HEAD as GET, without the body), and the API's 405 for
    every other method (unless a handler takes them all: `*`)."""
    resource = router.add_resource(path)
    for method, handler in with_head(handlers).items():
        resource.add_route(method, handler, expect_handler=expect_continue)
    if "*" not in handlers:
        resource.add_route("*", not_allowed, expect_handler=expect_continue)


async def expect_continue(request: web.Request) -> None:
    """`Expect: 100-continue` (RFC 9110, 10.1.1), in place of aiohttp's handler: the body is
    invited only when it will be read. One over `client_max_size` is refused unread, so the
    client gets the API's 413 at once rather than "100 Continue" asking it to send 64 MiB for
    nothing. Another expectation is ignored, which the RFC allows (it MAY be a 417, but
    aiohttp's is a text/plain page, not the API's JSON): the request is answered as any other."""
    if request.version != HttpVersion11:
        return
    if request.headers.get(hdrs.EXPECT, "").lower() != "100-continue":
        return
    length = request.content_length
    if length is not None and length > request.client_max_size:
        return
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # (as aiohttp's: the answer's own bytes start here)


def with_head(handlers: Mapping[str, Handler]) -> dict[str, Handler]:
    """`handlers`, and HEAD answered by the GET handler where there is one: every server must
    take HEAD where it takes GET (RFC 9110, 9.1; aiohttp's `add_get` does the same), and
    probes (`curl -I`, load balancers' health checks) send it. aiohttp writes the answer's
    head alone."""
    if "GET" in handlers and "HEAD" not in handlers:
        return {**handlers, "HEAD": handlers["GET"]}
    return dict(handlers)


def allowed_methods(request: web.Request) -> str:
    """The methods the request's route takes, for the 405's `Allow` header (RFC 9110, 15.5.6:
    a 405 must name them)."""
    resource = request.match_info.route.resource
    methods = {route.method for route in resource} if resource is not None else set()
    return ", ".join(sorted(methods - {"*"}))


# A route as `_resource` registers it: its path, handlers by method, and its 405.
Spec = tuple[str, Mapping[str, Handler], Handler]


def _lazily(app: web.Application, key: str, specs: list[Spec], lazy: bool = True) -> None:
    """Register `specs` (routes all under `key`) as one group made on its first request (or,
    not `lazy`, one by one at once)."""

    def build(router: web.UrlDispatcher) -> None:
        for path, handlers, not_allowed in specs:
            _resource(router, path, handlers, not_allowed)

    if not lazy:
        build(app.router)
    elif specs:
        assert all(path.startswith(key.rstrip("/") + "/") for path, _, _ in specs), key
        app.router.register_resource(LazyRoutes(key, build))


def root_prefixes(profile: Profile) -> list[str]:
    """Where the server's own profile answers: `/v1`, the root, and its provider's base paths."""
    out = ["/v1", ""]
    out += [path for path in profile.paths if path not in out]
    return out


def add_api_routes(
    app: web.Application,
    endpoint_codecs: Iterable[CodecRef],
    server: Profile | None = None,
    *,
    lazy: bool = True,
) -> None:
    """Register the API's routes, each with a catch-all 405 for other methods.

    The server's profile answers at `/v1`, the root and its provider's base paths; Azure's own
    paths (`/openai/...`) stay Azure's when the server is another provider; and every profile is
    served under its name (`/groq/openai/v1/...`). The named routes are one resource per route
    for all providers (the provider is the first part of the path, matched by one pattern), so a
    server costs a few dozen resources however many profiles there are.

    Only the server's own routes are made at start: Azure's (`/openai/...`, its deployments)
    and the named routes are groups made on their first request (`LazyRoutes`: their patterns
    are most of what registering the routes costs, and most servers never see such a request).
    Each group is registered where its routes were, under the path they all lie under, so
    requests find the same route as if they had been registered one by one: nothing of the
    server's own lies between a group's routes (Azure's are under `/openai/` and its named
    prefixes, the server's under `/v1`, the root's first segments and its provider's paths,
    which share no route with Azure's). Not `lazy`, every route is registered at once (the
    suite checks both find the same routes).
    """
    server = server or profiles.get(profiles.DEFAULT)
    endpoint_codecs = tuple(endpoint_codecs)
    routes = api_routes(endpoint_codecs)
    azure = PLACES["azure"]  # (its module loads with its first request, like every other's)
    taken = root_prefixes(server)
    for prefix in taken:
        not_allowed = _fixed(_method_not_allowed, server)
        for route in routes:
            if server.place.serves(route.needs, route.kept):
                handlers = {m: _fixed(h, server) for m, h in route.handlers.items()}
                _resource(app.router, prefix + route.path, handlers, not_allowed)
    under_openai: list[Spec] = []
    for prefix in (path for path in azure.paths if path not in taken):
        not_allowed = _named(_method_not_allowed, azure.name)
        for route in routes:
            if azure.serves(route.needs, route.kept):
                handlers = {m: _named(h, azure.name) for m, h in route.handlers.items()}
                under_openai.append((prefix + route.path, handlers, not_allowed))
    under_azure: list[Spec] = []
    for ref in endpoint_codecs:
        if ref.endpoint in AZURE_DEPLOYMENT_ENDPOINTS:
            bound = {"POST": _named(_generating(ref, deployment=True), azure.name)}
            for prefix, specs in (("/openai", under_openai), ("/azure/openai", under_azure)):
                path = prefix + "/deployments/{deployment}" + ref.path
                specs.append((path, bound, _named(_method_not_allowed, azure.name)))
    _lazily(app, "/openai", under_openai, lazy)
    _lazily(app, "/azure/openai/deployments", under_azure, lazy)
    _lazily(app, "/", _named_specs(routes), lazy)


def _named_specs(routes: tuple[Route, ...]) -> list[Spec]:
    """Every route under each provider's name, then the provider's 404 for the rest there."""
    specs: list[Spec] = []
    for pattern, route, serving in _named_routes(routes):
        handlers = {m: _by_match(h, serving, "base") for m, h in route.handlers.items()}
        specs.append((pattern, handlers, _by_match(_method_not_allowed, serving, "base")))
    # Anything else under a provider's name is that provider's 404.
    by_name = {p.name: p.name for p in PLACES.values() if p.by_name}
    pattern = "/{name:" + _alternatives(by_name) + "}{tail:(?:/[\\s\\S]*)?}"
    specs.append((pattern, {}, _by_match(_not_found, by_name, "name")))
    return specs


@functools.cache
def _named_routes(
    routes: tuple[Route, ...],
) -> tuple[tuple[str, Route, Mapping[str, str]], ...]:
    """Each route with the pattern matching every provider prefix that has it, and the name of
    the profile each prefix names (computed once per process)."""
    named = [place for place in PLACES.values() if place.by_name]
    bases = {prefix.lstrip("/"): p for p in named for prefix in p.prefixes}
    out = []
    for route in routes:
        serving = {base: p.name for base, p in bases.items() if p.serves(route.needs, route.kept)}
        if serving:
            out.append(("/{base:" + _alternatives(serving) + "}" + route.path, route, serving))
    return tuple(out)


def _alternatives(names: Iterable[str]) -> str:
    # Longest first: `litellm/v1` before `litellm` (the match is anchored, but this reads right).
    return "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))


async def _image(request: web.Request) -> web.StreamResponse:
    """A picture answered by URL: served to anyone holding the signed, unexpired link (like
    the API's blob links, which need no API key)."""
    request.app[STATE].arrivals.take(request.transport)  # (see admin.without_arrival)
    try:
        fetched = await request.app[STATE].images.fetch(request.match_info["name"], request.query)
    except StateUnavailable as error:  # (Redis away: the API's 503, which clients retry)
        answer = pipeline.error_body(error)
        return web.Response(
            status=answer.status,
            body=answer.body,
            headers={**error.headers},
            content_type="application/json",
        )
    return web.Response(
        status=fetched.status, body=fetched.body, headers={"Content-Type": fetched.content_type}
    )


def add_media_routes(app: web.Application) -> None:
    """What answers link to: pictures kept for `response_format: url`."""
    app.router.add_get(IMAGES_PATH + "{name}", _image, expect_handler=expect_continue)


def add_catch_all(app: web.Application, profile: Profile | None = None) -> None:
    """Anything else is the API's 404 `Invalid URL (METHOD /path)`; register last."""
    profile = profile or profiles.get(profiles.DEFAULT)
    # `[\s\S]`, not `.`: a path with a decoded newline (`%0a`) must reach this handler too, or
    # aiohttp answers with its own text/plain 404.
    app.router.add_route(
        "*", "/{tail:[\\s\\S]*}", _fixed(_not_found, profile), expect_handler=expect_continue
    )
