"""`GET /v1/models`, `GET /v1/models/{id}`, `DELETE /v1/models/{id}`: the catalog on the wire."""

from __future__ import annotations

from mockai.catalog import Catalog
from mockai.wire import jsonbytes
from mockai.wire.outgoing import Body


def list_models(catalog: Catalog) -> Body:
    """`{"object": "list", "data": [Model, ...]}` (no pagination, as the API)."""
    return Body(
        200, jsonbytes.dumps({"object": "list", "data": [m.as_json() for m in catalog.listed()]})
    )


def retrieve_model(catalog: Catalog, model_id: str) -> Body:
    """One `Model`; a restricted catalog raises the 404 `model_not_found` for unknown ids."""
    return Body(200, jsonbytes.dumps(catalog.get(model_id).as_json()))


def delete_model(catalog: Catalog, model_id: str) -> Body:
    """`{"id", "object": "model", "deleted": true}` for a fine-tuned model, which is gone from
    then on; a base model is the API's 403 (nobody owns it but OpenAI), an unknown id its 404."""
    info = catalog.delete(model_id)
    return Body(200, jsonbytes.dumps({"id": info.id, "object": "model", "deleted": True}))
