"""`/batches`: create a batch from an uploaded JSONL file, retrieve, list and cancel it.

The wire forms live here, pure: the request's checks, the Batch object, the validation of the
input file's lines (what turns a batch `failed`, with the API's error codes and line numbers),
and the lines of the output and error files. The batch store (`mockai.stores.batches`) keeps the
state and advances it; the pipeline answers each line (`mockai.pipeline.batch`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mockai.api import common, files
from mockai.api.base import Codec, ParseContext, RenderContext
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.pipeline.reply import Reply
from mockai.profiles.places import PLACES
from mockai.wire import jsonbytes
from mockai.wire.outgoing import Outgoing

# The batch endpoints mockai answers (the API's list, less /v1/videos, which mockai lacks), and
# the endpoint that answers each one's lines.
ENDPOINTS: Mapping[str, Endpoint] = MappingProxyType(
    {
        "/v1/responses": Endpoint.RESPONSES,
        "/v1/chat/completions": Endpoint.CHAT,
        "/v1/embeddings": Endpoint.EMBEDDINGS,
        "/v1/completions": Endpoint.COMPLETIONS,
        "/v1/moderations": Endpoint.MODERATIONS,
        "/v1/images/generations": Endpoint.IMAGES,
        "/v1/images/edits": Endpoint.IMAGE_EDITS,
    }
)
MAX_REQUESTS = 50_000  # requests per batch file
MAX_EMBEDDING_INPUTS = 50_000  # embedding inputs across a /v1/embeddings batch
MAX_ERRORS = 1000  # validation errors listed on a failed batch
WINDOW = 24 * 3600  # completion_window: 24h


def parse(body: Any, ctx: ParseContext) -> Exchange:
    """Any `/batches` route: the creation's body, or the id and query of the others."""
    batch_id = ctx.params.get("batch_id")
    if batch_id is not None:
        if "/" in batch_id:
            # A decoded `%2F` (`/batches/{id}%2Fcancel`): no batch has such an id, and the store
            # reads the route by its slashes (a GET would cancel).
            raise not_found(batch_id)
        route = f"/batches/{batch_id}" + ("/cancel" if ctx.params.get("cancel") else "")
        return _exchange(ctx, route, {})
    if ctx.method == "GET":
        return _exchange(ctx, "/batches", {})
    body = common.require_object(body)
    checked = dict(body)
    if ctx.provider != "openai" and _versioned(body.get("endpoint")) != body.get("endpoint"):
        # Azure OpenAI's batches name endpoints without the version: `/chat/completions`.
        # OpenAI's own refuse that spelling as any value not in its list.
        checked["endpoint"] = _versioned(body["endpoint"])
    if ctx.provider in _DURATIONS and isinstance(body.get("completion_window"), str):
        checked["completion_window"] = "24h"  # (Groq's durations, checked below: no spec enum)
    common.check_fields("batches", checked, strict=ctx.strict, provider=ctx.provider)
    endpoint = checked["endpoint"]
    # A batch's lines are answered as the provider it was created through answers them alone:
    # an endpoint that provider does not have (Groq's /v1/completions) is refused here, rather
    # than run as OpenAI's.
    served = PLACES[ctx.provider].endpoints if ctx.provider in PLACES else frozenset(Endpoint)
    runs = [path for path, answered_by in ENDPOINTS.items() if answered_by in served]
    if endpoint not in runs:
        through = "" if ctx.provider == "openai" else f" through the '{ctx.provider}' profile"
        raise ApiError(
            400,
            f"Invalid value: '{endpoint}'. mockai runs batches{through} for "
            + ", ".join(f"'{e}'" for e in runs)
            + ".",
            param="endpoint",
            code="invalid_value",
        )
    if window_seconds(body["completion_window"], ctx.provider) is None:
        supported = " durations from '24h' to '7d'" if ctx.provider in _DURATIONS else ": '24h'"
        raise ApiError(
            400,
            f"Invalid value: '{body['completion_window']}'. Supported values are{supported}.",
            param="completion_window",
            code="invalid_value",
        )
    common.parse_metadata(body.get("metadata"))
    # The same object as a file's `expires_after` (BatchFileExpirationAfter): anchor and seconds.
    files.check_expiry(body.get("output_expires_after"), "output_expires_after")
    return _exchange(ctx, "/batches", body)


# Providers whose batches take a `completion_window` of any duration from 24 hours to 7 days
# (`48h`, `3d`: Groq's API reference and SDK), where OpenAI's take `24h` alone.
_DURATIONS = frozenset({"groq"})
_DURATION = re.compile(r"([0-9]{1,4})([hd])")
LONGEST_WINDOW = 7 * 24 * 3600


def window_seconds(window: Any, provider: str) -> int | None:
    """The seconds a `completion_window` gives a batch created through `provider`'s routes, or
    None when that provider takes no such window."""
    if window == "24h":
        return WINDOW
    found = _DURATION.fullmatch(window) if isinstance(window, str) else None
    if found is None or provider not in _DURATIONS:
        return None
    seconds = int(found[1]) * (3600 if found[2] == "h" else 24 * 3600)
    return seconds if WINDOW <= seconds <= LONGEST_WINDOW else None


def not_found(batch_id: str) -> ApiError:
    """The API's 404 for a batch it does not hold."""
    return ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id")


def _versioned(endpoint: Any) -> Any:
    """`/chat/completions` (Azure's spelling) as `/v1/chat/completions`."""
    if isinstance(endpoint, str) and f"/v1{endpoint}" in ENDPOINTS:
        return f"/v1{endpoint}"
    return endpoint


def versioned(url: str) -> str:
    """A batch endpoint or line url in the API's spelling (`/v1/...`)."""
    return str(_versioned(url))


def _exchange(ctx: ParseContext, route: str, body: Mapping[str, Any]) -> Exchange:
    return Exchange(
        endpoint=Endpoint.BATCHES,
        model="",
        body=body,
        headers=ctx.headers,
        method=ctx.method,
        route=route,
        query=ctx.query,
        head=ctx.head,
        provider=ctx.provider,
    )


# --- the input file ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One request of a batch: its line number (from 1), custom_id, url and body."""

    number: int
    custom_id: str
    url: str
    body: Any


def read_lines(data: bytes, endpoint: str) -> tuple[list[Line], list[dict[str, Any]]]:
    """The requests of an input file, and the validation errors that fail the batch (empty
    when it may run): the API's codes (`invalid_json_line`, `duplicate_custom_id`,
    `url_mismatch`, `model_mismatch`, `empty_file`, `too_many_tasks`) with line numbers.

    A request whose *body* the endpoint refuses is not a validation error: it runs and its
    400 goes to the error file, as the API does.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], [_error("invalid_file", "The input file is not UTF-8 encoded JSON Lines.")]
    lines: list[Line] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: dict[str, int] = {}
    inputs = 0
    embeddings = _versioned(endpoint) == "/v1/embeddings"  # (Azure's `/embeddings` too)
    for number, raw in _numbered(text):
        if len(errors) >= MAX_ERRORS:
            # No error after these is shown, and the batch fails whatever the rest holds: a
            # file whose every line is wrong (a CSV named .jsonl) had been read to its end,
            # an error kept for each line (64 MB of "{}" lines: ~20 million, gigabytes).
            break
        line = _line(raw, number, endpoint, errors)
        if line is None:
            continue
        if line.custom_id in seen:
            errors.append(
                _error(
                    "duplicate_custom_id",
                    f"The custom_id for this request is a duplicate of another request: "
                    f"'{line.custom_id}'. The custom_id parameter must be unique for each "
                    "request in a batch.",
                    "custom_id",
                    number,
                )
            )
        seen.add(line.custom_id)
        model = line.body.get("model") if isinstance(line.body, dict) else None
        if isinstance(model, str):
            models.setdefault(model, number)
            if len(models) > 1 and models[model] == number:
                first = next(iter(models))
                errors.append(
                    _error(
                        "model_mismatch",
                        f"The model '{model}' of this request does not match the model "
                        f"'{first}' of the batch's other requests: a batch uses one model.",
                        "body.model",
                        number,
                    )
                )
        if embeddings and isinstance(line.body, dict):
            inputs += _input_count(line.body.get("input"))
        lines.append(line)
    if not lines and not errors:
        errors.append(_error("empty_file", "The batch input file is empty."))
    if len(lines) > MAX_REQUESTS:
        errors.append(
            _error(
                "too_many_tasks",
                f"The batch input file holds {len(lines)} requests; the limit is {MAX_REQUESTS}.",
            )
        )
    if inputs > MAX_EMBEDDING_INPUTS:
        errors.append(
            _error(
                "too_many_tasks",
                f"The batch holds {inputs} embedding inputs; the limit is {MAX_EMBEDDING_INPUTS}.",
            )
        )
    return lines, errors[:MAX_ERRORS]


def _input_count(given: Any) -> int:
    """How many embeddings a request's `input` asks for: a string, or one array of token ids,
    is one; an array of strings, or of token arrays, is one per item."""
    if isinstance(given, list) and not (given and all(isinstance(t, int) for t in given)):
        return len(given)
    return 1


def valid_lines(data: bytes, endpoint: str) -> Iterator[Line]:
    """The requests of an input file `read_lines` found valid, parsed one at a time, numbered as
    it numbered them. (A batch keeps its input's bytes, not its parsed lines: ten batches made
    from one 18 MB file had held ~330 MB of parsed lines until they were answered.)"""
    for number, raw in _numbered(data.decode("utf-8")):
        line = _line(raw, number, endpoint, [])
        if line is not None:
            yield line


def _numbered(text: str) -> Iterator[tuple[int, str]]:
    """The non-blank lines of an input file with their numbers (from 1, blank lines counted):
    what validation errors name, and what each request's id derives from.

    JSON Lines ends a line at "\n" alone (a "\r" before it goes too): `str.splitlines` also
    breaks at U+2028, U+2029, U+0085 and other controls, which JSON holds raw in a string.
    Found one at a time (`str.split` held every line at once: a 64 MB file of short lines, ~1 GB
    of strings, before the first was read); blank ones are skipped by the regex, counted."""
    number, counted = 1, 0
    for found in _TEXT_RUN.finditer(text):
        number += text.count("\n", counted, found.start())
        counted = found.start()
        raw = found.group().removesuffix("\r")
        if raw.strip():
            yield number, raw


_TEXT_RUN = re.compile("[^\n]+")  # a line's text, from its start to its "\n" (or the end)


def _line(raw: str, number: int, endpoint: str, errors: list[dict[str, Any]]) -> Line | None:
    try:
        # Read as the server reads a request's body: what it would refuse alone (NaN, a lone
        # surrogate, nesting past jsonbytes.MAX_DEPTH) is no JSON line either, and what it
        # accepts is safe to fingerprint, journal and answer.
        value = jsonbytes.loads(raw)
    except ValueError:
        errors.append(
            _error("invalid_json_line", "This line is not parseable as valid JSON.", None, number)
        )
        return None
    if not isinstance(value, dict):
        errors.append(_error("invalid_json_line", "This line is not a JSON object.", None, number))
        return None
    for name in ("custom_id", "method", "url", "body"):
        if name not in value:
            errors.append(
                _error(
                    "missing_required_parameter",
                    f"Missing required parameter: '{name}'.",
                    name,
                    number,
                )
            )
            return None
    custom_id, method, url, body = (value[k] for k in ("custom_id", "method", "url", "body"))
    if not isinstance(custom_id, str):
        errors.append(_error("invalid_type", "'custom_id' must be a string.", "custom_id", number))
        return None
    if method != "POST":
        errors.append(
            _error(
                "invalid_method",
                f"Invalid value: '{method}'. Supported values are: 'POST'.",
                "method",
                number,
            )
        )
        return None
    if _versioned(url) != _versioned(endpoint):
        errors.append(
            _error(
                "url_mismatch",
                f"The provided URL '{url}' does not match the batch endpoint '{endpoint}'.",
                "url",
                number,
            )
        )
        return None
    if not isinstance(body, dict):
        errors.append(_error("invalid_type", "'body' must be a JSON object.", "body", number))
        return None
    return Line(number, custom_id, url, body)


def _error(
    code: str, message: str, param: str | None = None, line: int | None = None
) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


# --- the output and error files ------------------------------------------------------------------


def output_line(request_id: str, custom_id: str, status: int, answer_id: str, body: bytes) -> bytes:
    """One line of an output (status 200) or error file, as the API writes it; `body` is the
    answer's JSON text, spliced in as sent (compact JSON holds no line break)."""
    head = jsonbytes.dumps({"id": request_id, "custom_id": custom_id})[:-1]
    response = b'{"status_code":%d,"request_id":%s,"body":' % (
        status,
        jsonbytes.string(answer_id),
    )
    line = head + b',"response":' + response + body.strip() + b'},"error":null}'
    return _one_line(line) + b"\n"


def error_line(request_id: str, custom_id: str, code: str, message: str) -> bytes:
    """One line of an error file for a request that was not answered (the API's
    `batch_expired`, `batch_cancelled`): no response, the reason in `error`."""
    line = jsonbytes.dumps(
        {
            "id": request_id,
            "custom_id": custom_id,
            "response": None,
            "error": {"code": code, "message": message},
        }
    )
    return _one_line(line) + b"\n"


# U+2028, U+2029 and U+0085 in UTF-8. JSON holds them raw in strings (and nowhere else), but
# `str.splitlines` (how the docs, and many users, read these files) breaks lines at them.
_RAW_BREAKS = (
    (b"\xe2\x80\xa8", b"\\u2028"),
    (b"\xe2\x80\xa9", b"\\u2029"),
    (b"\xc2\x85", b"\\u0085"),
)


def _one_line(line: bytes) -> bytes:
    """A line of compact JSON with those characters escaped: the same JSON value, one line for
    every reader. (Their bytes are always those characters: UTF-8 never starts a character
    inside another's.)"""
    for raw, escaped in _RAW_BREAKS:
        if raw in line:
            line = line.replace(raw, escaped)
    return line


class UsageTotals:
    """A batch's usage: the lines' own, added up as they are answered (chat / completions /
    embeddings count prompt and completion tokens, the Responses API input and output tokens)."""

    def __init__(self) -> None:
        self.input = self.output = self.cached = self.reasoning = 0

    def add(self, usage: Any) -> None:
        """Count one answer's `usage` object (anything else counts nothing)."""
        if not isinstance(usage, dict):
            return
        self.input += int(usage.get("prompt_tokens", usage.get("input_tokens", 0)) or 0)
        self.output += int(usage.get("completion_tokens", usage.get("output_tokens", 0)) or 0)
        details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
        if isinstance(details, dict):
            self.cached += int(details.get("cached_tokens", 0) or 0)
        reasoning = (
            usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
        )
        if isinstance(reasoning, dict):
            self.reasoning += int(reasoning.get("reasoning_tokens", 0) or 0)

    def shown(self) -> dict[str, Any]:
        """The batch's `usage` as the API shows it."""
        return {
            "input_tokens": self.input,
            "input_tokens_details": {"cached_tokens": self.cached},
            "output_tokens": self.output,
            "output_tokens_details": {"reasoning_tokens": self.reasoning},
            "total_tokens": self.input + self.output,
        }


@dataclass(frozen=True, slots=True)
class Shown:
    """A batch as the API shows it (the store's record, flattened)."""

    id: str
    endpoint: str
    input_file_id: str
    status: str
    created_at: int
    completion_window: str
    expires_at: int
    times: Mapping[str, int | None]  # in_progress_at, finalizing_at, completed_at, ...
    counts: tuple[int, int, int]  # total, completed, failed
    errors: Sequence[Mapping[str, Any]] | None
    output_file_id: str | None
    error_file_id: str | None
    metadata: Mapping[str, str] | None
    model: str | None
    usage: Mapping[str, Any] | None


def batch_object(shown: Shown) -> dict[str, Any]:
    """The Batch object."""
    total, completed, failed = shown.counts
    out: dict[str, Any] = {
        "id": shown.id,
        "object": "batch",
        "endpoint": shown.endpoint,
        "errors": {"object": "list", "data": list(shown.errors)} if shown.errors else None,
        "input_file_id": shown.input_file_id,
        "completion_window": shown.completion_window,
        "status": shown.status,
        "output_file_id": shown.output_file_id,
        "error_file_id": shown.error_file_id,
        "created_at": shown.created_at,
        "in_progress_at": shown.times.get("in_progress_at"),
        "expires_at": shown.expires_at,
        "finalizing_at": shown.times.get("finalizing_at"),
        "completed_at": shown.times.get("completed_at"),
        "failed_at": shown.times.get("failed_at"),
        "expired_at": None,
        "cancelling_at": shown.times.get("cancelling_at"),
        "cancelled_at": shown.times.get("cancelled_at"),
        "request_counts": {"total": total, "completed": completed, "failed": failed},
        "metadata": dict(shown.metadata) if shown.metadata else None,
    }
    if shown.model is not None:
        out["model"] = shown.model
    if shown.usage is not None:
        out["usage"] = dict(shown.usage)
    return out


def _not_rendered(reply: Reply, exchange: Exchange, ctx: RenderContext) -> Outgoing:
    # The batch store answers every /batches route that no rule or recording answered.
    raise ApiError(500, "mockai: /batches answers come from the batch store", type="server_error")


CODEC = Codec(Endpoint.BATCHES, "/batches", parse, _not_rendered, bodies="json_or_none")
