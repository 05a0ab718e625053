"""`/files`: upload (multipart), list, retrieve, download and delete files.

Parsing checks what the API checks: the upload's `purpose`, that batch and fine-tuning files are
JSON Lines (`.jsonl`), their size limits, `expires_after`, and the list's query. Answers are made
by the file store (`mockai.stores.files`) from what it holds; the objects it shows are rendered
here (`file_object`), so the store keeps no wire details.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mockai.api import common, forms
from mockai.api.base import Codec, ParseContext, RenderContext
from mockai.api.fieldrules import invalid_value, missing, type_error
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Reply
from mockai.wire.multipart import Upload, summarised
from mockai.wire.outgoing import Outgoing

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MAX_BYTES = 512 * 1024 * 1024  # the API's limit for one file
MAX_BATCH_BYTES = 200 * 1024 * 1024  # ... and for a batch's input file
MIN_EXPIRY, MAX_EXPIRY = 3600, 2_592_000  # expires_after.seconds: an hour to 30 days
_JSONL_PURPOSES = {"batch": "Batch API", "fine-tune": "Fine-Tuning API"}


def parse(body: Any, ctx: ParseContext) -> Exchange:
    """Any `/files` route: the upload's form, or the id and query of the others."""
    file_id = ctx.params.get("file_id")
    if file_id is not None:
        if "/" in file_id:
            # A decoded `%2F` (`/files/{id}%2Fcontent`): no file has such an id, and the store
            # reads the route by its slashes (it would serve another route).
            raise not_found(file_id)
        route = f"/files/{file_id}" + ("/content" if ctx.params.get("content") else "")
        return _exchange(ctx, route, {})
    if ctx.method == "GET":
        _check_list_query(ctx.query)
        return _exchange(ctx, "/files", {})
    if body is None:
        raise missing("file")
    fields = forms.typed("files", body)
    upload = forms.upload(fields.get("file"), "file")
    common.check_fields(
        "files", {**fields, "file": "<file>"}, strict=ctx.strict, provider=ctx.provider
    )
    purpose = fields["purpose"]
    if purpose not in PURPOSES:  # (checked here too: lenient field checks skip enums)
        raise invalid_value("purpose", purpose, PURPOSES)
    api = _JSONL_PURPOSES.get(purpose)
    if api is not None and not upload.filename.lower().endswith(".jsonl"):
        raise ApiError(400, f"Invalid file format for {api}. Must be .jsonl", param="file")
    limit = MAX_BATCH_BYTES if purpose == "batch" else MAX_BYTES
    if len(upload.data) > limit:
        raise ApiError(
            400,
            f"File is too large: {len(upload.data)} bytes; the limit for purpose '{purpose}' is "
            f"{limit} bytes.",
            param="file",
            code="file_too_large",
        )
    check_expiry(fields.get("expires_after"))
    fields["file"] = upload
    return _exchange(ctx, "/files", summarised(fields), upload=upload)


def _exchange(
    ctx: ParseContext, route: str, body: Mapping[str, Any], *, upload: Upload | None = None
) -> Exchange:
    return Exchange(
        endpoint=Endpoint.FILES,
        model="",
        body=body,
        headers=ctx.headers,
        uploads=(upload,) if upload is not None else (),
        form=ctx.form if upload is not None else None,
        method=ctx.method,
        route=route,
        query=ctx.query,
    )


def check_expiry(value: Any, param: str = "expires_after") -> None:
    """An `expires_after` object (a batch's `output_expires_after` too, as `param`): the anchor
    `created_at` and seconds within the API's bounds, else the API's 400."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise type_error(param, ("object",), value)
    if value.get("anchor") != "created_at":
        if "anchor" not in value:
            raise missing(f"{param}.anchor")
        raise invalid_value(f"{param}.anchor", value.get("anchor"), ("created_at",))
    seconds = value.get("seconds")
    if seconds is None:
        raise missing(f"{param}.seconds")
    if not isinstance(seconds, int) or not MIN_EXPIRY <= seconds <= MAX_EXPIRY:
        raise ApiError(
            400,
            f"Invalid '{param}.seconds': expected an integer between {MIN_EXPIRY} and "
            f"{MAX_EXPIRY}, but got {seconds!r}.",
            param=f"{param}.seconds",
            code="invalid_value",
        )


def _check_list_query(query: Mapping[str, str]) -> None:
    # A list filters by any purpose a file can have (the spec's OpenAIFile.purpose), the ones
    # the API gives its own output files (batch results, fine-tuning results) included.
    listed = (*PURPOSES, "batch_output", "assistants_output", "fine-tune-results")
    purpose = query.get("purpose")
    if purpose is not None and purpose not in listed:
        raise invalid_value("purpose", purpose, listed)


def file_object(
    file_id: str,
    filename: str,
    purpose: str,
    size: int,
    created_at: int,
    expires_at: int | None,
) -> dict[str, Any]:
    """The API's File object (`status` is deprecated, and always `processed`: uploads are
    ready at once, so `files.wait_for_processing` returns immediately)."""
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": created_at,
        "expires_at": expires_at,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "status_details": None,
    }


def not_found(file_id: str) -> ApiError:
    """The API's 404 for a file it does not hold."""
    return ApiError(404, f"No such File object: {file_id}", param="id")


def deleted(file_id: str) -> dict[str, Any]:
    """The API's confirmation of a deletion."""
    return {"id": file_id, "object": "file", "deleted": True}


def _not_rendered(reply: Reply, exchange: Exchange, ctx: RenderContext) -> Outgoing:
    # The file store answers every /files route that no rule or recording answered; a rule's
    # error is raised by the pipeline before rendering. Nothing else reaches a render.
    raise ApiError(500, "mockai: /files answers come from the file store", type="server_error")


CODEC = Codec(Endpoint.FILES, "/files", parse, _not_rendered, bodies="form_or_none")
