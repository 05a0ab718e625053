"""The URL map: every API route under `/v1` and at the root, 405s for wrong methods, 404s last."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiohttp import web

from mockai import pipeline
from mockai.api import chat, completions, embeddings, models, moderations, responses
from mockai.api.base import Codec, ParseContext
from mockai.errors import ApiError
from mockai.exchange import Endpoint
from mockai.pipeline import Handler
from mockai.state import ServerState
from mockai.wire import errors, jsonbytes
from mockai.wire.outgoing import Body, Outgoing

PREFIXES = ("/v1", "")


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


async def _retrieve_response(request: web.Request) -> web.StreamResponse:
    response_id = request.match_info["response_id"]

    def produce(state: ServerState) -> Outgoing:
        if request.query.get("stream", "").lower() == "true":
            raise ApiError(
                400,
                "mockai: streaming a stored response again (stream=true) is not supported; "
                "retrieve it without `stream`.",
                param="stream",
            )
        return _json(state.responses.retrieve(response_id))

    return await pipeline.simple(request, produce)


async def _delete_response(request: web.Request) -> web.StreamResponse:
    response_id = request.match_info["response_id"]
    return await pipeline.simple(request, lambda state: _json(state.responses.delete(response_id)))


async def _cancel_response(request: web.Request) -> web.StreamResponse:
    response_id = request.match_info["response_id"]
    return await pipeline.simple(request, lambda state: _json(state.responses.cancel(response_id)))


async def _list_input_items(request: web.Request) -> web.StreamResponse:
    response_id = request.match_info["response_id"]
    return await pipeline.simple(
        request, lambda state: _json(state.responses.input_items(response_id, request.query))
    )


async def _count_input_tokens(request: web.Request) -> web.StreamResponse:
    raw = await request.read()  # (aiohttp keeps it: the journal reads the same bytes)

    def produce(state: ServerState) -> Outgoing:
        try:
            body = jsonbytes.loads(raw)
        except ValueError:
            raise errors.invalid_json() from None
        # Validated and counted as the same request to POST /responses would be, so the count
        # equals that answer's `usage.input_tokens`.
        context = ParseContext(
            request.headers, state.catalog, state.config.strict_requests, state.responses.history
        )
        exchange = responses.parse(body, context)
        return _json({"object": "response.input_tokens", "input_tokens": exchange.prompt_tokens})

    return await pipeline.simple(request, produce)


def _json(payload: object) -> Body:
    return Body(200, jsonbytes.dumps(payload))


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
            _resource(app, prefix + codec.path, {"POST": pipeline.generating_handler(codec)})
        _resource(app, prefix + "/models", {"GET": _list_models})
        # `.+`, not the default `[^{}/]+`: unencoded ids such as `meta-llama/llama-3.3-70b` work.
        _resource(
            app,
            prefix + "/models/{model:.+}",
            {"GET": _retrieve_model, "DELETE": _delete_model},
        )
        _resource(app, prefix + "/responses/input_tokens", {"POST": _count_input_tokens})
        # The Responses API's stored responses (after input_tokens, which is not an id).
        stored = prefix + "/responses/{response_id}"
        _resource(app, stored, {"GET": _retrieve_response, "DELETE": _delete_response})
        _resource(app, stored + "/cancel", {"POST": _cancel_response})
        _resource(app, stored + "/input_items", {"GET": _list_input_items})


def add_catch_all(app: web.Application) -> None:
    """Anything else is the API's 404 `Invalid URL (METHOD /path)`; register last."""
    app.router.add_route("*", "/{tail:.*}", _not_found)
