"""The URL map: every API route under `/v1` and at the root, 405s for wrong methods, 404s last."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from mockai.api import (
    batches,
    chat,
    completions,
    embeddings,
    files,
    images,
    models,
    moderations,
    responses,
    speech,
    transcriptions,
)
from mockai.api.base import Codec
from mockai.pipeline import run as pipeline
from mockai.pipeline.exchange import Endpoint
from mockai.pipeline.run import Handler
from mockai.server.state import STATE, ServerState
from mockai.stores import images as image_store
from mockai.wire import errors, jsonbytes
from mockai.wire.outgoing import Body, EventStream, Outgoing

# `/v1`, the root (clients configured without `/v1`), and Azure OpenAI's `/openai/v1` (its v1 API)
# and `/openai` (what `AzureOpenAI` calls for everything but the deployment routes below).
PREFIXES = ("/v1", "", "/openai/v1", "/openai")
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


def codecs() -> dict[Endpoint, Codec]:
    """The generating endpoints, by name."""
    return {
        codec.endpoint: codec
        for codec in (
            chat.CODEC,
            completions.CODEC,
            embeddings.CODEC,
            responses.CODEC,
            moderations.CODEC,
            images.GENERATIONS,
            images.EDITS,
            images.VARIATIONS,
            speech.CODEC,
            transcriptions.TRANSCRIPTIONS,
            transcriptions.TRANSLATIONS,
        )
    }


async def _method_not_allowed(request: web.Request) -> web.StreamResponse:
    return await pipeline.simple(
        request,
        lambda state: pipeline.error_body(errors.invalid_method(request.method, request.path)),
    )


async def _not_found(request: web.Request) -> web.StreamResponse:
    return await pipeline.simple(
        request, lambda state: pipeline.error_body(errors.invalid_url(request.method, request.path))
    )


async def _list_models(request: web.Request) -> web.StreamResponse:
    return await pipeline.simple(request, lambda state: models.list_models(state.catalog))


async def _retrieve_model(request: web.Request) -> web.StreamResponse:
    model_id = request.match_info["model"]
    return await pipeline.simple(
        request, lambda state: models.retrieve_model(state.catalog, model_id)
    )


async def _delete_model(request: web.Request) -> web.StreamResponse:
    model_id = request.match_info["model"]
    return await pipeline.simple(
        request, lambda state: models.delete_model(state.catalog, model_id)
    )


Call = Callable[[ServerState, web.Request, Any], object]


def _stateful(call: Call) -> Handler:
    """A handler answering, as JSON, what `call(state, request, body)` returns (or sending it,
    when it is already a wire answer); `body` is the request's JSON (None without a body).
    Errors it raises are the API's error answers."""

    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await pipeline.read_body(request)  # (kept by aiohttp: the journal reads it too)
        if raw is None:
            return pipeline.gone()

        def produce(state: ServerState) -> Outgoing:
            body = None
            if raw:
                try:
                    body = jsonbytes.loads(raw)
                except ValueError:
                    raise errors.invalid_json() from None
            answer = call(state, request, body)
            if isinstance(answer, Body | EventStream):
                return answer
            return Body(200, jsonbytes.dumps(answer))

        return await pipeline.simple(request, produce)

    return handle


def _retrieve_response(state: ServerState, request: web.Request, body: Any) -> object:
    response_id = request.match_info["response_id"]
    if request.query.get("stream", "").lower() == "true":
        return state.responses.resume(response_id, request.query.get("starting_after"))
    return state.responses.retrieve(response_id)


def _count_input_tokens(state: ServerState, request: web.Request, body: Any) -> object:
    # Validated and counted as the same request to POST /responses would be, so the count
    # equals that answer's `usage.input_tokens`.
    exchange = responses.parse(body, pipeline.parse_context(state, request.headers))
    return {"object": "response.input_tokens", "input_tokens": exchange.prompt_tokens}


def _stored_completions(app: web.Application, prefix: str) -> None:
    """Chat completions kept with `store: true` (the list is on the chat route itself)."""

    def completion_id(request: web.Request) -> str:
        return request.match_info["completion_id"]

    one = prefix + "/chat/completions/{completion_id}"
    _resource(
        app,
        one,
        {
            "GET": _stateful(lambda s, r, b: s.completions.retrieve(completion_id(r))),
            "POST": _stateful(lambda s, r, b: s.completions.update(completion_id(r), b)),
            "DELETE": _stateful(lambda s, r, b: s.completions.delete(completion_id(r))),
        },
    )
    _resource(
        app,
        one + "/messages",
        {"GET": _stateful(lambda s, r, b: s.completions.messages(completion_id(r), r.query))},
    )


def _stored_responses(app: web.Application, prefix: str) -> None:
    """The Responses API's server-side state: stored responses and conversations."""
    _resource(app, prefix + "/responses/input_tokens", {"POST": _stateful(_count_input_tokens)})
    # (after input_tokens, which is not a response id)
    one = prefix + "/responses/{response_id}"

    def response_id(request: web.Request) -> str:
        return request.match_info["response_id"]

    _resource(
        app,
        one,
        {
            "GET": _stateful(_retrieve_response),
            "DELETE": _stateful(lambda s, r, b: s.responses.delete(response_id(r))),
        },
    )
    _resource(
        app,
        one + "/cancel",
        {"POST": _stateful(lambda s, r, b: s.responses.cancel(response_id(r)))},
    )
    _resource(
        app,
        one + "/input_items",
        {"GET": _stateful(lambda s, r, b: s.responses.input_items(response_id(r), r.query))},
    )

    def conversation_id(request: web.Request) -> str:
        return request.match_info["conversation_id"]

    conversation = prefix + "/conversations/{conversation_id}"
    _resource(
        app,
        prefix + "/conversations",
        {"POST": _stateful(lambda s, r, b: s.conversations.create(b))},
    )
    _resource(
        app,
        conversation,
        {
            "GET": _stateful(lambda s, r, b: s.conversations.retrieve(conversation_id(r))),
            "POST": _stateful(lambda s, r, b: s.conversations.update(conversation_id(r), b)),
            "DELETE": _stateful(lambda s, r, b: s.conversations.delete(conversation_id(r))),
        },
    )
    _resource(
        app,
        conversation + "/items",
        {
            "GET": _stateful(
                lambda s, r, b: s.conversations.list_items(conversation_id(r), r.query)
            ),
            "POST": _stateful(lambda s, r, b: s.conversations.add_items(conversation_id(r), b)),
        },
    )
    item = conversation + "/items/{item_id}"
    _resource(
        app,
        item,
        {
            "GET": _stateful(
                lambda s, r, b: s.conversations.item(conversation_id(r), r.match_info["item_id"])
            ),
            "DELETE": _stateful(
                lambda s, r, b: s.conversations.delete_item(
                    conversation_id(r), r.match_info["item_id"]
                )
            ),
        },
    )


def _files_and_batches(app: web.Application, prefix: str) -> None:
    """Files and batches: every route goes through the pipeline (rules, cassettes, faults and
    the journal see them like any request); their stores answer what no source does."""
    for codec, collection, one, action, methods in (
        (files.CODEC, "/files", "/files/{file_id}", "/{content:content}", ("GET", "DELETE")),
        (batches.CODEC, "/batches", "/batches/{batch_id}", "/{cancel:cancel}", ("GET",)),
    ):
        handler = pipeline.generating_handler(codec)
        _resource(app, prefix + collection, {"POST": handler, "GET": handler})
        _resource(app, prefix + one, dict.fromkeys(methods, handler))
        action_method = "GET" if codec is files.CODEC else "POST"
        _resource(app, prefix + one + action, {action_method: handler})


def _resource(app: web.Application, path: str, handlers: Mapping[str, Handler]) -> None:
    """One route: its handlers by method, and the API's 405 for every other method."""
    resource = app.router.add_resource(path)
    for method, handler in handlers.items():
        resource.add_route(method, handler)
    resource.add_route("*", _method_not_allowed)


def add_api_routes(app: web.Application, endpoint_codecs: Iterable[Codec]) -> None:
    """Register the OpenAI routes, each with a catch-all 405 for other methods."""
    endpoint_codecs = list(endpoint_codecs)
    for prefix in PREFIXES:
        for codec in endpoint_codecs:
            handlers: dict[str, Handler] = {"POST": pipeline.generating_handler(codec)}
            if codec.endpoint is Endpoint.CHAT:  # the list of stored completions
                handlers["GET"] = _stateful(lambda s, r, b: s.completions.list(r.query))
            _resource(app, prefix + codec.path, handlers)
        _resource(app, prefix + "/models", {"GET": _list_models})
        # `.+`, not the default `[^{}/]+`: unencoded ids such as `meta-llama/llama-3.3-70b` work.
        _resource(
            app,
            prefix + "/models/{model:.+}",
            {"GET": _retrieve_model, "DELETE": _delete_model},
        )
        _stored_responses(app, prefix)
        _stored_completions(app, prefix)
        _files_and_batches(app, prefix)
    for codec in endpoint_codecs:
        if codec.endpoint in AZURE_DEPLOYMENT_ENDPOINTS:
            path = "/openai/deployments/{deployment}" + codec.path
            _resource(app, path, {"POST": pipeline.generating_handler(codec, deployment=True)})


async def _image(request: web.Request) -> web.StreamResponse:
    """A picture answered by URL: served to anyone holding the signed, unexpired link (like
    the API's blob links, which need no API key)."""
    fetched = request.app[STATE].images.fetch(request.match_info["name"], request.query)
    return web.Response(
        status=fetched.status, body=fetched.body, headers={"Content-Type": fetched.content_type}
    )


def add_media_routes(app: web.Application) -> None:
    """What answers link to: pictures kept for `response_format: url`."""
    app.router.add_get(image_store.PATH + "{name}", _image)


def add_catch_all(app: web.Application) -> None:
    """Anything else is the API's 404 `Invalid URL (METHOD /path)`; register last."""
    app.router.add_route("*", "/{tail:.*}", _not_found)
