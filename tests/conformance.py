"""Validate what mockai sends against the official OpenAPI spec (tests/openapi/openapi.json).

`validate(schema_name, instance)` raises `jsonschema.ValidationError` with the failing path.
The spec is OpenAPI 3.1 but still carries 3.0-style `nullable: true` in places; JSON Schema ignores
that keyword, so it is folded into `type` before validation (otherwise valid `null`s would fail).
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mockai.wire.outgoing import Relay

SPEC_PATH = Path(__file__).parent / "openapi" / "openapi.json"
_URI = "urn:openai-openapi"


def _fold_nullable(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _fold_nullable(value) for key, value in node.items()}
        if node.pop("nullable", False):
            kind = node.get("type")
            if "enum" in node and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
            if isinstance(kind, str):
                node["type"] = [kind, "null"]
            elif isinstance(kind, list) and "null" not in kind:
                node["type"] = [*kind, "null"]
            elif kind is None and (
                "anyOf" in node or "oneOf" in node or "$ref" in node or "allOf" in node
            ):
                node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_fold_nullable(item) for item in node]
    return node


@functools.cache
def spec() -> dict[str, Any]:
    """The vendored spec, with `nullable` folded into types."""
    return _fold_nullable(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


@functools.cache
def _registry() -> Registry:
    return Registry().with_resource(_URI, Resource(contents=spec(), specification=DRAFT202012))


@functools.cache
def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    """A compiled validator for `#/components/schemas/<schema_name>`."""
    if schema_name not in spec()["components"]["schemas"]:
        raise KeyError(f"no component schema named {schema_name!r}")
    ref = {"$ref": f"{_URI}#/components/schemas/{schema_name}"}
    return jsonschema.Draft202012Validator(ref, registry=_registry())


def validate(schema_name: str, instance: Any) -> None:
    """Raise AssertionError (naming the path and the rule) if `instance` breaks the schema."""
    error = jsonschema.exceptions.best_match(validator(schema_name).iter_errors(instance))
    if error is not None:
        where = "".join(f"[{p!r}]" for p in error.absolute_path) or "<root>"
        rule = "/".join(str(p) for p in error.absolute_schema_path)
        raise AssertionError(
            f"{schema_name}: at {where}: {error.message} (schema rule {rule})\n"
            f"instance: {json.dumps(instance)[:2000]}"
        ) from error  # (the ValidationError: its path, for callers that need it)


def response_event_schema(event_type: str) -> str:
    """The component schema of one Responses stream event type (from the ResponseStreamEvent union)."""
    return _event_schemas()[event_type]


@functools.cache
def _event_schemas() -> dict[str, str]:
    schemas = spec()["components"]["schemas"]
    union = schemas["ResponseStreamEvent"]
    out: dict[str, str] = {}
    for option in union.get("anyOf") or union.get("oneOf") or []:
        name = option["$ref"].rsplit("/", 1)[-1]
        kind = schemas[name].get("properties", {}).get("type", {})
        for value in kind.get("enum", []) or ([kind["const"]] if "const" in kind else []):
            out[value] = name
    return out


# --- checking everything a server sent -----------------------------------------------------------

_BODY_SCHEMAS = {
    "chat": "CreateChatCompletionResponse",
    "completions": "CreateCompletionResponse",
    "embeddings": "CreateEmbeddingResponse",
    "responses": "Response",
    "moderations": "CreateModerationResponse",
    "images": "ImagesResponse",
    "image_edits": "ImagesResponse",
    "image_variations": "ImagesResponse",
}
# Streams whose events carry their schema's name in `type` (images, speech, transcriptions).
_TYPED_EVENTS = {
    "image_generation.partial_image": "ImageGenPartialImageEvent",
    "image_generation.completed": "ImageGenCompletedEvent",
    "image_edit.partial_image": "ImageEditPartialImageEvent",
    "image_edit.completed": "ImageEditCompletedEvent",
    "speech.audio.delta": "SpeechAudioDeltaEvent",
    "speech.audio.done": "SpeechAudioDoneEvent",
    "transcript.text.delta": "TranscriptTextDeltaEvent",
    "transcript.text.done": "TranscriptTextDoneEvent",
    "transcript.text.segment": "TranscriptTextSegmentEvent",
}


def check_entry(entry: Any) -> int:
    """Validate one journal entry's answer; returns how many objects were validated.

    Skipped on purpose: answers with injected faults (they are broken by design), base64
    embeddings (the spec only knows float arrays), non-JSON bodies, and answers relayed from an
    upstream (they are the upstream's, whatever its shape; our test upstreams are checked themselves).
    """
    if entry.faults or entry.response is None or isinstance(entry.response, Relay):
        return 0
    if entry.status >= 400:
        validate("ErrorResponse", entry.response_json())
        return 1
    if entry.response_events():
        # (a resumed stream, GET /responses/{id}?stream=true, has no generating endpoint)
        resumed = entry.path.lstrip("/").removeprefix("v1/").startswith("responses/")
        endpoint = entry.endpoint or ("responses" if resumed else None)
        return _check_events(endpoint, entry.response_events())
    content_type = getattr(entry.response, "content_type", "application/json")
    if "json" not in content_type:
        return 0  # audio, subtitles, text transcripts, file contents: checked by their tests
    body = entry.response_json()
    if body is None:
        return 0
    route = entry.path.lstrip("/").removeprefix("v1/")
    if route.startswith(("files", "batches")):
        return _check_store(route, body)
    schema = (
        _BODY_SCHEMAS.get(entry.endpoint or "")
        or _audio_schema(entry, body)
        or _static_schema(entry, body)
    )
    if schema is None:
        return 0
    if schema == "CreateCompletionResponse":
        body = {**body, "choices": [_unscored_first(c) for c in body["choices"]]}
    if schema == "CreateEmbeddingResponse" and any(
        isinstance(d.get("embedding"), str) for d in body["data"]
    ):
        return 0
    if body.get("object") == "list" and body.get("data") == [] and "first_id" in body:
        # An empty page: the API sends null first/last ids, the spec types them as strings.
        body = {**body, "first_id": body["first_id"] or "", "last_id": body["last_id"] or ""}
    validate(schema, body)
    return 1


def _audio_schema(entry: Any, body: Any) -> str | None:
    if entry.endpoint == "transcriptions":
        asked = entry.body.get("response_format") if isinstance(entry.body, dict) else None
        if asked == "diarized_json" or (
            "segments" in body and body.get("segments") and "speaker" in body["segments"][0]
        ):
            # (by what was asked too: an empty transcript's answer has no segment to tell by)
            return "CreateTranscriptionResponseDiarizedJson"
        return (
            "CreateTranscriptionResponseVerboseJson"
            if "duration" in body
            else "CreateTranscriptionResponseJson"
        )
    if entry.endpoint == "translations":
        return (
            "CreateTranslationResponseVerboseJson"
            if "duration" in body
            else "CreateTranslationResponseJson"
        )
    return None


def _without_nulls(body: dict[str, Any]) -> dict[str, Any]:
    # Files and batches: the API sends null for what is not set (a file's `expires_at`, a
    # batch's `output_file_id` before it completes); the spec types those fields as plain
    # strings and integers. The SDKs type them Optional.
    out = {key: value for key, value in body.items() if value is not None}
    if out.get("object") == "file" and out.get("purpose") == "evals":
        # The spec accepts `evals` for uploads but forgets it in the File object's enum.
        out["purpose"] = "user_data"
    return out


def _static_schema(entry: Any, body: Any) -> str | None:
    route = entry.path.lstrip("/").removeprefix("v1/")
    if route.startswith("chat/completions"):  # stored completions
        return _stored_completion_schema(route, body)
    if route.startswith("conversations"):
        return _conversation_schema(route, body)
    if route == "responses/input_tokens":
        return "TokenCountsResource"
    if route.startswith("responses/"):  # stored responses: retrieve, cancel, input items
        if route.endswith("/input_items"):
            return "ResponseItemList"
        return None if "deleted" in body else "Response"  # the spec leaves deletion untyped
    if not route.startswith("models"):
        return None
    if body.get("object") == "list":
        return "ListModelsResponse"
    return "DeleteModelResponse" if "deleted" in body else "Model"


def _check_store(route: str, body: Any) -> int:
    """Files and batches: every object validated (nulls dropped, see _without_nulls)."""
    one = "OpenAIFile" if route.startswith("files") else "Batch"
    if body.get("object") == "list":
        for item in body["data"]:
            validate(one, _without_nulls(item))
        ends = {"first_id": body.get("first_id") or "", "last_id": body.get("last_id") or ""}
        listing = "ListFilesResponse" if one == "OpenAIFile" else "ListBatchesResponse"
        validate(listing, {**body, "data": [], **ends})
        return 1 + len(body["data"])
    if body.get("deleted") is not None:
        validate("DeleteFileResponse", body)
        return 1
    validate(one, _without_nulls(body))
    return 1


def _stored_completion_schema(route: str, body: Any) -> str | None:
    if route.endswith("/messages"):
        # The spec reuses the assistant's message type, whose `role` enum only knows "assistant";
        # stored request messages are users' and systems' too. Checked as such, role aside.
        for message in body["data"]:
            validate("ChatCompletionResponseMessage", {**message, "role": "assistant"})
        return None
    if body.get("object") == "list":
        return "ChatCompletionList"
    if body.get("object") == "chat.completion.deleted":
        return "ChatCompletionDeleted"
    return "CreateChatCompletionResponse"


def _conversation_schema(route: str, body: Any) -> str:
    if body.get("object") == "list":
        return "ConversationItemList"
    if body.get("object") == "conversation.deleted":
        return "DeletedConversationResource"
    return "ConversationResource" if body.get("object") == "conversation" else "ConversationItem"


def _check_events(endpoint: str | None, frames: list[bytes]) -> int:
    checked = 0
    for frame in frames:
        event, data = _parse_frame(frame)
        if data == "[DONE]":
            continue
        payload = json.loads(data)
        if endpoint == "chat":
            validate("CreateChatCompletionStreamResponse", payload)
        elif endpoint == "completions":
            if not payload["choices"]:
                continue  # the usage chunk: the spec's legacy object requires choices
            # The spec reuses the non-streaming object for chunks, whose finish_reason is not
            # nullable; the real API (and the SDK's parser) send null until the last chunk.
            payload = {
                **payload,
                "choices": [
                    {**_unscored_first(c), "finish_reason": c["finish_reason"] or "stop"}
                    for c in payload["choices"]
                ],
            }
            validate("CreateCompletionResponse", payload)
        elif endpoint == "responses":
            assert event == payload["type"], f"event name {event!r} != type {payload['type']!r}"
            validate(response_event_schema(payload["type"]), payload)
        elif payload.get("type") in _TYPED_EVENTS:
            assert event in (None, payload["type"]), f"event {event!r} != {payload['type']!r}"
            validate(_TYPED_EVENTS[payload["type"]], payload)
        checked += 1
    return checked


def _unscored_first(choice: dict[str, Any]) -> dict[str, Any]:
    """A legacy choice with its echoed prompt's first token scored as 0: the API sends null for
    it (nothing comes before it to score it by), the spec types the items as numbers and maps."""
    lp = choice.get("logprobs")
    if not lp or not lp.get("token_logprobs") or lp["token_logprobs"][0] is not None:
        return choice
    assert lp["top_logprobs"][0] is None, "an unscored token has no alternatives either"
    scored = {
        **lp,
        "token_logprobs": [0.0, *lp["token_logprobs"][1:]],
        "top_logprobs": [{}, *lp["top_logprobs"][1:]],
    }
    return {**choice, "logprobs": scored}


def _parse_frame(frame: bytes) -> tuple[str | None, str]:
    event = None
    data_lines = []
    for line in frame.decode().split("\n"):
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data_lines.append(line[6:])
    return event, "\n".join(data_lines)


@contextlib.contextmanager
def checked_server(**options: Any) -> Iterator[Any]:
    """A running MockServer whose every answer is validated against the spec when it stops."""
    from mockai import MockServer

    with MockServer(log_requests=False, **options) as server:
        yield server
        for entry in server.requests:
            check_entry(entry)
