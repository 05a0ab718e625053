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
OpenAI does", so the default profile costs an attribute test per hook and nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any

from mockai.catalog import ModelInfo
from mockai.errors import ApiError
from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.profiles.places import PLACES, Place
from mockai.wire import ids, jsonbytes, sse
from mockai.wire.outgoing import Body, EventStream, Outgoing

Json = dict[str, Any]


# --- requests ------------------------------------------------------------------------------------

# One check of a request body for one endpoint: raises the provider's ApiError, or returns None.
Check = Callable[[Endpoint, Json], None]


@dataclass(frozen=True)
class RequestPolicy:
    """How a provider treats request fields, applied to the raw body before OpenAI's parser.

    `checks` reject (each raises the provider's error); `ignored` top-level fields are dropped
    (the provider accepts and ignores them, so mockai's answer must not depend on them either);
    `rewrite` turns the provider's own spellings into OpenAI's (Mistral's `random_seed`), after
    the checks. `rejects` and `ignores` describe the policy for people (the README's table).
    """

    checks: tuple[Check, ...] = ()
    ignored: frozenset[str] = frozenset()
    rewrite: Callable[[Endpoint, Json], Json] | None = None
    rejects: str = ""
    ignores: str = ""
    endpoints: frozenset[Endpoint] = frozenset({Endpoint.CHAT})

    def check(self, endpoint: Endpoint, body: Any) -> Any:
        """The body the OpenAI parser then sees; raises the provider's error for what it refuses."""
        if endpoint not in self.endpoints or not isinstance(body, dict):
            return body
        for check in self.checks:
            check(endpoint, body)
        if self.ignored and not self.ignored.isdisjoint(body):
            body = {k: v for k, v in body.items() if k not in self.ignored}
        if self.rewrite is not None:
            body = self.rewrite(endpoint, body)
        return body


# --- answers -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """What render-time shaping knows about one chat answer."""

    exchange: Exchange
    key: bytes  # the request's id key: ids derived from it are the same on every run
    created: int = 0  # the `created` timestamp bodies carry
    usage: Mapping[str, Any] | None = None  # the answer's usage, even when the client did not ask


# A streamed chat answer as the profile reshapes it: the chunks before the finish (`body`) and
# those that complete it (`tail`: finish chunks, the usage chunk), decoded; returns the frames
# to send, split the same way (comments and `[DONE]` included).
StreamShaper = Callable[[list[Json], list[Json], Answer], tuple[list[bytes], list[bytes]]]
BodyShaper = Callable[[Json, Answer], None]
ErrorFrame = Callable[[Answer], Callable[[int], bytes]]


@dataclass(frozen=True)
class ChatShape:
    """How a provider's chat answers differ from OpenAI's (None: the same).

    `extras` names the fields added (for people); `stream_usage` says where streamed usage
    arrives; `comments` are the SSE comment lines the stream carries.
    """

    body: BodyShaper | None = None
    stream: StreamShaper | None = None
    error_frame: ErrorFrame | None = None  # the in-band error of a broken stream
    extras: str = ""
    stream_usage: str = ""
    comments: tuple[str, ...] = ()
    headers: Callable[[Json, Answer], Mapping[str, str]] | None = None  # from the answer
    obfuscation: bool = False  # keeps OpenAI's stream `obfuscation` padding (Azure's backend)

    def shape(self, outgoing: Outgoing, answer: Answer) -> Outgoing:
        """The codec's rendering of an OpenAI chat answer, as this provider sends it."""
        if isinstance(outgoing, Body):
            if outgoing.status != 200 or (self.body is None and self.headers is None):
                return outgoing
            body = jsonbytes.loads(outgoing.body)
            if self.body is not None:
                self.body(body, answer)
            added = dict(self.headers(body, answer)) if self.headers is not None else {}
            return Body(200, jsonbytes.dumps(body), headers={**outgoing.headers, **added})
        if not isinstance(outgoing, EventStream):
            return outgoing
        frames = list(outgoing.frames)
        if frames and frames[-1] == sse.DONE:
            frames.pop()
        decoded = [jsonbytes.loads(frame[6:]) for frame in frames]
        if not self.obfuscation:  # OpenAI's padding: other providers send none
            for chunk in decoded:
                chunk.pop("obfuscation", None)
        answer = replace(answer, usage=outgoing.usage)
        split = len(decoded) - (outgoing.tail - 1)  # the tail counted [DONE]
        body_chunks, tail_chunks = decoded[:split], decoded[split:]
        extra: dict[str, str] = {}
        if self.headers is not None and decoded:
            extra = dict(self.headers(decoded[0], answer))
        if self.stream is not None:
            head, tail = self.stream(body_chunks, tail_chunks, answer)
        else:
            head, tail = encode(body_chunks), [*encode(tail_chunks), sse.DONE]
        return EventStream(
            frames=head + tail,
            tail=len(tail),
            status=outgoing.status,
            content_type=outgoing.content_type,
            headers={**outgoing.headers, **extra},
            error_frame=self.error_frame(answer) if self.error_frame else outgoing.error_frame,
        )


def encode(chunks: list[Json]) -> list[bytes]:
    """Chunks as `data:` frames."""
    return [sse.data_frame(jsonbytes.dumps(chunk)) for chunk in chunks]


def comment(text: str) -> bytes:
    """An SSE comment line (`: text`), which every SSE parser must skip."""
    return b": " + text.encode() + b"\n\n"


# --- errors --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorStyle:
    """How a provider's errors look: its envelope, and its versions of the named errors.

    `named` maps a named error (`insufficient_quota`, ...) to the provider's rendering of the
    same situation (OpenRouter says "out of credits" with a 402); `statuses` gives a message to
    the provider's own statuses when a scripted `{status: N}` names none (Groq's 498); `headers`
    reshapes an error's headers. `envelope` describes the body for people.
    """

    body: Callable[[ApiError], Any]
    envelope: str
    named: Mapping[str, Callable[[ApiError], ApiError]] = field(default_factory=dict)
    statuses: Mapping[int, tuple[str, str]] = field(default_factory=dict)  # message, type
    extra_statuses: str = ""

    def adapt(self, error: ApiError) -> ApiError:
        """The provider's version of `error` (the same object when it has none)."""
        if error.name is not None and error.name in self.named:
            return self.named[error.name](error)
        if error.status in self.statuses and error.name is None and _is_bare(error):
            message, kind = self.statuses[error.status]
            error.message, error.type = message, kind
        return error

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


# --- rate-limit headers --------------------------------------------------------------------------

# mockai's headers for an answer (the six `x-ratelimit-*`, and `retry-after*` on refusals), the
# answer's status and the tokens it was billed -> the headers the provider sends instead.
Reshape = Callable[[Mapping[str, str], int, int], dict[str, str]]


@dataclass(frozen=True)
class LimitStyle:
    reshape: Reshape
    describe: str


# --- auth ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Auth:
    """How the key is read (with `--require-api-key`): `key_headers` are read before the
    `Authorization: Bearer` header, in order (`api-key` only when no `Authorization` came);
    `ignored`: any key, or none, works."""

    key_headers: tuple[str, ...] = ("api-key",)
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
        """A rendered answer as this provider sends it (chat answers only; others as OpenAI)."""
        if self.chat is None or endpoint is not Endpoint.CHAT:
            return outgoing
        return self.chat.shape(outgoing, answer)

    def models_body(self, infos: list[ModelInfo]) -> Body:
        return Body(200, jsonbytes.dumps(self.model_list([self.model_card(i) for i in infos])))

    def model_body(self, info: ModelInfo) -> Body:
        return Body(200, jsonbytes.dumps(self.model_card(info)))
