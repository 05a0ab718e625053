"""Azure OpenAI: deployment routes with `api-version`, the v1 API, `api-key`, content filters.

Facts: shared/reference/providers.md section 13 (Microsoft's docs, the `@azure/openai` types,
observations quoted there). Models the v1 API (August 2025 on) and the classic deployment
routes (`api-version` 2024-10-21).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint
from mockai.profiles import limits, shapes
from mockai.profiles.base import Auth, ErrorStyle, Json, Profile
from mockai.profiles.hooks import Answer, ChatShape

# Every category Azure's filters report, none triggered.
_SAFE = {"filtered": False, "severity": "safe"}
_FILTERS = {name: dict(_SAFE) for name in ("hate", "self_harm", "sexual", "violence")}
_PROMPT_FILTERS = {**_FILTERS, "jailbreak": {"filtered": False, "detected": False}}
# A choice that ends `finish_reason: "content_filter"` was filtered: Azure names the category that
# tripped. mockai names the first, always (a test asserting "something was filtered" sees it).
_FILTERED = {**_FILTERS, "hate": {"filtered": True, "severity": "high"}}

# What `AzureOpenAI` sends, and what mockai's deployment routes model (see `as_of`).
API_VERSION = "2024-10-21"


def require_api_version(query: Mapping[str, str]) -> None:
    """A deployment route (`/openai/deployments/{deployment}/...`) must name its `api-version`
    in the query: Azure answers a request without one with a 404 (providers.md §13, "Base URL
    (classic)"). The v1 API (`/openai/v1/...`) takes none."""
    if not query.get("api-version"):
        raise ApiError(
            404,
            "Resource not found: a deployment route needs the `api-version` query parameter "
            f"(for example `?api-version={API_VERSION}`).",
            type="invalid_request_error",
            param="api-version",
            code=None,
        )


# The operations Azure names in a 429 ("Requests to the ChatCompletions_Create Operation under
# ..."): providers.md §13 quotes chat's; embeddings' and legacy completions' are as observed.
_OPERATIONS = {
    Endpoint.CHAT: "ChatCompletions_Create",
    Endpoint.EMBEDDINGS: "Embeddings_Create",
    Endpoint.COMPLETIONS: "Completions_Create",
}


# Azure's refusal of a prompt its content filters stopped (providers.md §13, "Content-filter
# error"): a 400 whose `innererror` names the category, as a filtered choice does (`_FILTERED`).
_FILTERED_PROMPT = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry. To learn more about our content filtering "
    "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)
_INNERERROR = {
    "code": "ResponsibleAIPolicyViolation",
    "content_filter_result": {**_FILTERED, "jailbreak": {"filtered": False, "detected": False}},
}


def _content_filter(error: ApiError) -> ApiError:
    # (`type` null and `param` "prompt", as Azure's bodies quoted in client projects' issues have)
    return ApiError(
        400,
        _FILTERED_PROMPT,
        param="prompt",
        code="content_filter",
        headers=error.headers,
        data={"type": None, "innererror": _INNERERROR},
    )


def _envelope(error: ApiError) -> Any:
    """OpenAI's four keys, and what Azure's error carries beyond them (`innererror`)."""
    body: dict[str, Any] = error.body()
    body["error"].update(error.data)
    return body


def _situated(error: ApiError, endpoint: Endpoint, query: Mapping[str, str]) -> ApiError:
    """The safety system's refusal of a chat or completions prompt (the named `content_policy`)
    is Azure's content-filter 400, not OpenAI's image refusal (an image's stays OpenAI's: no
    source gives Azure's). A rate limit is in Azure's words (providers.md §13, "429"), which
    name the operation and the request's `api-version` and say the wait in seconds: OpenAI's
    ("Rate limit reached for prod in organization org-mockai ... platform.openai.com") is no
    answer Azure gives. An app reading "Please retry after N seconds" from the message finds
    it. (A 429 to the v1 API, which names no `api-version`, or to an operation no source
    names, keeps OpenAI's words.)"""
    if error.name == "content_policy" and endpoint in (Endpoint.CHAT, Endpoint.COMPLETIONS):
        return _content_filter(error)
    operation, version = _OPERATIONS.get(endpoint), query.get("api-version")
    # (no wait: a request larger than its whole budget, which no retry lets through, keeps
    # OpenAI's "Request too large" words)
    wait = error.headers.get("retry-after")
    if error.name != "rate_limit" or operation is None or not version or wait is None:
        return error
    limit = "token" if error.type == "tokens" else "call"  # (OpenAI's TPM or RPM budget)
    said = ApiError(  # (a new error: the one given may be a rule's, reused on other routes)
        429,
        f"Requests to the {operation} Operation under Azure OpenAI API version {version} have "
        f"exceeded {limit} rate limit of your current OpenAI S0 pricing tier. Please retry after "
        f"{wait} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to "
        "further increase the default rate limit.",
        type=error.type,
        param=error.param,
        code=error.code,
        headers=error.headers,
        data=error.data,
    )
    said.name = error.name
    return said


def _prompt_filter_results() -> list[dict[str, Any]]:
    return [{"prompt_index": 0, "content_filter_results": _PROMPT_FILTERS}]


def _choice_filters(choice: Json) -> Json:
    return _FILTERED if choice.get("finish_reason") == "content_filter" else _FILTERS


def _body(body: Json, answer: Answer) -> None:
    body["prompt_filter_results"] = _prompt_filter_results()
    for choice in body["choices"]:
        choice["content_filter_results"] = _choice_filters(choice)


def _stream(body: list[Json], tail: list[Json], answer: Answer) -> tuple[list[bytes], list[bytes]]:
    # The first chunk has no choices: it carries the prompt's filter results (code that reads
    # `choices[0]` of every chunk breaks on it).
    first = {k: v for k, v in (body or tail)[0].items() if k not in ("choices", "usage")}
    first["choices"] = []
    first["prompt_filter_results"] = _prompt_filter_results()
    finishes, _ = shapes.finish_and_usage(tail)
    for chunk in finishes:
        for choice in chunk["choices"]:
            choice["content_filter_results"] = _choice_filters(choice)
    return shapes.frames([first, *body], tail)


PROFILE = Profile(
    name="azure",
    title="Azure OpenAI",
    as_of="Azure OpenAI v1 API (Aug 2025+) and deployment routes, api-version 2024-10-21",
    chat=ChatShape(
        body=_body,
        stream=_stream,
        obfuscation=True,
        preamble=1,  # the filter frame `_stream` puts first: stream faults do not count it
        extras="`prompt_filter_results`, `choices[].content_filter_results` (a choice ending "
        "`content_filter`: `hate` filtered, severity `high`)",
        stream_usage="as OpenAI; the first chunk has `choices: []` and `prompt_filter_results`",
    ),
    errors=ErrorStyle(
        _envelope,
        '`{"error":{message,type,param,code}}`; a filtered prompt\'s 400 adds `innererror`',
        situated=_situated,
    ),
    limits=limits.AZURE,
    auth=Auth(key_headers=("api-key",), describe="`api-key` (or Entra Bearer)"),
    sources=("providers.md §13",),
)
