"""What a provider profile is: data the pipeline consults at its edges, never branches inside it.

A `Profile` says, for one OpenAI-compatible provider: where it is served (its base paths), which
models `/models` lists and how, which endpoints it has, how it treats request fields (`requests`:
rejects some with its own status and body, ignores others), what its chat answers carry beyond
OpenAI's (`chat`: extra fields, where streamed usage arrives, SSE comment lines, the in-band
error), how its errors look (`errors`), which rate-limit headers it sends (`limits`), its
tool-call id format, and how it reads the key (`auth`).

The pipeline asks the profile at five places only: routing (the prefix picks the profile), parse
time (`requests.check`), render time (`shape_answer`, the ids and stop handling in the render
context), error rendering (`errors`), and header shaping (`limits`). Everything `None` means "as
OpenAI does", so the default profile costs an attribute test per hook and nothing more. The
hooks' types (`RequestPolicy`, `ChatShape`, `LimitStyle`) are in mockai.profiles.hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint
from mockai.profiles.places import PLACES, Place
from mockai.wire import ids, jsonbytes
from mockai.wire.outgoing import Body, Outgoing

if TYPE_CHECKING:  # (the hooks load with the first profile that sets one: mockai.profiles.hooks)
    from mockai.profiles.hooks import Answer, ChatShape, LimitStyle, RequestPolicy

Json = dict[str, Any]


# --- errors --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorStyle:
    """How a provider's errors look: its envelope, and its versions of the named errors.

    `named` maps a named error (`insufficient_quota`, ...) to the provider's rendering of the
    same situation (OpenRouter says "out of credits" with a 402); `statuses` gives a message to
    the provider's own statuses when a scripted `{status: N}` names none (Groq's 498), and
    `as_named` the whole of a named error's rendering (the same situation, said once: DeepSeek's
    402); `headers` reshapes an error's headers. `envelope` describes the body for people.
    """

    body: Callable[[ApiError], Any]
    envelope: str
    named: Mapping[str, Callable[[ApiError], ApiError]] = field(default_factory=dict)
    statuses: Mapping[int, tuple[str, str]] = field(default_factory=dict)  # message, type
    as_named: Mapping[int, str] = field(default_factory=dict)  # status -> a key of `named`
    extra_statuses: str = ""
    # The provider's wording of an error that names what was asked (Azure's 429 names the
    # operation and the `api-version`): the error, the endpoint and the request's query.
    situated: Callable[[ApiError, Endpoint, Mapping[str, str]], ApiError] | None = None

    def adapt(self, error: ApiError) -> ApiError:
        """The provider's version of `error` (the same object when it has none)."""
        if error.name is not None and error.name in self.named:
            return self.named[error.name](error)
        if error.status in self.as_named and error.name is None and _is_bare(error):
            return self.named[self.as_named[error.status]](error)
        if error.status in self.statuses and error.name is None and _is_bare(error):
            message, kind = self.statuses[error.status]
            error.message, error.type = message, kind
        return error

    def situate(self, error: ApiError, endpoint: Endpoint, query: Mapping[str, str]) -> ApiError:
        """`error` as the provider says it of a request to `endpoint` with `query`."""
        return error if self.situated is None else self.situated(error, endpoint, query)

    def render(self, error: ApiError) -> Body:
        # (lenient: a message may quote a header or path with undecodable bytes)
        return Body(error.status, jsonbytes.dumps_lenient(self.body(error)))


def _is_bare(error: ApiError) -> bool:
    """A `{status: N}` error nobody gave a message (the HTTP reason stands in for one)."""
    try:
        reason = HTTPStatus(error.status).phrase
    except ValueError:
        reason = "Error"
    return error.message == reason


def openai_envelope(error: ApiError) -> Any:
    return error.body()


OPENAI_ERRORS = ErrorStyle(openai_envelope, '`{"error":{message,type,param,code}}`')


# --- request fields ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtraFields:
    """The provider's own request fields (providers.md's "Extra request fields"), which
    `--strict-requests` takes beside OpenAI's: by name, the only values the provider takes (None:
    any value, or OpenAI's rule for a field OpenAI has too). `others_ignored`: the provider
    accepts and ignores any field it does not know, so strict mode does too. Only for the field
    tables in `tables` (mockai.api.spec_fields names: chat requests, unless a provider's facts
    are about every request it takes: `EVERY_TABLE`)."""

    known: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)
    others_ignored: bool = False
    tables: frozenset[str] = frozenset({"chat"})

    def describe(self) -> str:
        """For people (the docs' table): what strict mode takes beyond OpenAI's fields."""
        parts = []
        if self.known:
            parts.append("takes " + ", ".join(map(_field_text, self.known.items())))
        if self.others_ignored:
            parts.append("ignores any other field it does not know")
        return "; ".join(parts)


def _field_text(item: tuple[str, tuple[str, ...] | None]) -> str:
    name, values = item
    if values is None:
        return f"`{name}`"
    return f"`{name}` ({'/'.join(f'`{value}`' for value in values)})"


NO_EXTRA_FIELDS = ExtraFields()

# Every request body's field table (mockai.api.spec_fields.FIELDS; a test holds the two equal):
# for providers whose unknown fields are ignored on every endpoint, not on chat alone.
EVERY_TABLE = frozenset(
    {
        "chat",
        "completions",
        "embeddings",
        "responses",
        "moderations",
        "images",
        "image_edits",
        "image_edits_json",
        "image_variations",
        "speech",
        "transcriptions",
        "translations",
        "files",
        "batches",
    }
)


# --- auth ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Auth:
    """How the key is read (with `--require-api-key`): `key_headers` are read before the
    `Authorization: Bearer` header, in order (`api-key` only when no `Authorization` came);
    none by default: a provider takes the Bearer alone unless its profile names its own header
    (Azure's `api-key`). `ignored`: the provider takes any key, or none, by default (as every
    profile does without `--require-api-key`; a key asked for is checked all the same)."""

    key_headers: tuple[str, ...] = ()
    ignored: bool = False
    describe: str = "Bearer"


# --- models --------------------------------------------------------------------------------------


def openai_card(info: ModelInfo) -> Json:
    return info.as_json()


def openai_list(cards: list[Json]) -> Any:
    return {"object": "list", "data": cards}


# --- the profile ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """One provider's OpenAI-compatible API, as data (see the module docstring)."""

    name: str  # its place (base paths, endpoints) is `places.PLACES[name]`
    title: str
    as_of: str  # the date or version of the provider's API this profile models
    catalog: tuple[ModelInfo, ...] = ()  # what `/models` lists (empty: OpenAI's built-in set)
    requests: RequestPolicy | None = None
    extra_fields: ExtraFields = NO_EXTRA_FIELDS  # its own fields, for `--strict-requests`
    chat: ChatShape | None = None
    errors: ErrorStyle = OPENAI_ERRORS
    limits: LimitStyle | None = None
    auth: Auth = field(default_factory=Auth)
    model_card: Callable[[ModelInfo], Json] = openai_card
    model_list: Callable[[list[Json]], Any] = openai_list
    models_shape: str = ""  # how `/models` differs, for people
    tool_call_id: Callable[[bytes, int], str] = ids.tool_call_id
    tool_call_ids: str = ""  # the id format, for people (empty: OpenAI's `call_...`)
    keep_stop: bool = False  # the stop sequence stays in the text (Fireworks)
    finish_reasons: tuple[str, ...] = ()  # beyond OpenAI's, that scripts may use
    sources: tuple[str, ...] = ()  # where the facts come from (reference/providers.md rows)
    place: Place = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Where it is served lives in the routing table (which needs no profile module).
        object.__setattr__(self, "place", PLACES[self.name])

    @property
    def paths(self) -> tuple[str, ...]:
        """Base paths on the provider's own host; the first is the usual one."""
        return self.place.paths

    @property
    def endpoints(self) -> frozenset[Endpoint]:
        """The endpoints it has; the others are this provider's 404."""
        return self.place.endpoints

    @property
    def by_name(self) -> bool:
        """Also served under `/{name}{path}` (OpenAI owns the root instead)."""
        return self.place.by_name

    @property
    def prefixes(self) -> tuple[str, ...]:
        """Where this profile is always served: its name, then each of its base paths."""
        return self.place.prefixes

    @property
    def shapes_answers(self) -> bool:
        return self.chat is not None

    def shape_answer(self, endpoint: Endpoint, outgoing: Outgoing, answer: Answer) -> Outgoing:
        """A rendered answer as this provider sends it (chat answers and legacy completions;
        others as OpenAI, with the headers the provider adds on every endpoint)."""
        if self.chat is None:
            return outgoing
        if endpoint is not Endpoint.CHAT:
            if endpoint is Endpoint.COMPLETIONS:
                outgoing = self.chat.shape_completion(outgoing, answer)
            if endpoint not in self.chat.header_endpoints:
                return outgoing
            return self.chat.add_headers(outgoing, answer)
        return self.chat.shape(outgoing, answer, self.errors)

    def models_body(self, infos: list[ModelInfo]) -> Body:
        return Body(200, jsonbytes.dumps(self.model_list([self.model_card(i) for i in infos])))

    def model_body(self, info: ModelInfo) -> Body:
        return Body(200, jsonbytes.dumps(self.model_card(info)))
