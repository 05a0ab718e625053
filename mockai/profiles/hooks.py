"""The hooks a provider profile may set beyond its errors and auth: how it treats request fields
(`RequestPolicy`), what its chat answers carry beyond OpenAI's (`ChatShape`, given an `Answer`),
and which rate-limit headers it sends (`LimitStyle`).

OpenAI's own profile sets none of them (None: as OpenAI does), so this module is imported with
the first other provider's profile, not by a server answering as OpenAI (see mockai.profiles).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mockai.pipeline.exchange import Endpoint, Exchange
from mockai.profiles.base import ErrorStyle, Json
from mockai.wire import errors, jsonbytes, sse
from mockai.wire.outgoing import Body, EventStream, Outgoing

# --- requests ------------------------------------------------------------------------------------

# One check of a request body for one endpoint: raises the provider's ApiError, or returns None.
Check = Callable[[Endpoint, Json], None]


@dataclass(frozen=True)
class RequestPolicy:
    """How a provider treats request fields, applied to the raw body before OpenAI's parser.

    `checks` reject (each raises the provider's error); `ignored` top-level fields are dropped
    (the provider accepts and ignores them, so mockai's answer must not depend on them either);
    `rewrite` turns the provider's own spellings into OpenAI's (Mistral's `random_seed`), after
    the checks. `rejects`, `ignores` and `fills` describe the policy for people (the README's
    table).
    """

    checks: tuple[Check, ...] = ()
    ignored: frozenset[str] = frozenset()
    rewrite: Callable[[Endpoint, Json], Json] | None = None
    rejects: str = ""
    ignores: str = ""
    fills: str = ""
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
    # Where else `headers` go (the provider sends them on every endpoint's answer, not on chat's
    # alone: LiteLLM's `x-litellm-*`, OpenRouter's `X-Generation-Id`); there the hook is given
    # no body (`{}`), so such a hook reads the answer only.
    header_endpoints: frozenset[Endpoint] = frozenset()
    # How its legacy completions differ (Ollama's ids and fingerprint): applied to the body, and
    # to each `data:` chunk of its stream.
    completions: BodyShaper | None = None
    obfuscation: bool = False  # keeps OpenAI's stream `obfuscation` padding (Azure's backend)
    # Leading frames `stream` adds that are no chunk of the answer (Azure's filter frame), or
    # how many for a given answer (OpenRouter's comment and, when asked for, its debug chunk).
    preamble: int | Callable[[Answer], int] = 0

    def shape(self, outgoing: Outgoing, answer: Answer, style: ErrorStyle) -> Outgoing:
        """The codec's rendering of an OpenAI chat answer, as this provider sends it (`style`:
        its errors, for the in-band error of a profile without its own `error_frame`)."""
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
            error_frame=self.error_frame(answer) if self.error_frame else inband_error(style),
            preamble=self._preamble(answer) if self.stream is not None else 0,
            usage=outgoing.usage,  # (the metrics count it, sent or not)
        )

    def _preamble(self, answer: Answer) -> int:
        return self.preamble(answer) if callable(self.preamble) else self.preamble

    def shape_completion(self, outgoing: Outgoing, answer: Answer) -> Outgoing:
        """A legacy completion (a body or a stream) as this provider sends it."""
        change = self.completions
        if change is None or outgoing.status != 200:
            return outgoing
        if isinstance(outgoing, Body):
            body = jsonbytes.loads(outgoing.body)
            change(body, answer)
            return replace(outgoing, body=jsonbytes.dumps(body))
        if not isinstance(outgoing, EventStream):
            return outgoing
        frames = []
        for frame in outgoing.frames:
            if frame.startswith(b"data: {"):
                chunk = jsonbytes.loads(frame[6:])
                change(chunk, answer)
                frame = sse.data_frame(jsonbytes.dumps(chunk))
            frames.append(frame)
        return replace(outgoing, frames=frames)

    def add_headers(self, outgoing: Outgoing, answer: Answer) -> Outgoing:
        """A successful answer of another endpoint, with the headers the provider adds to it."""
        if self.headers is None or not isinstance(outgoing, Body | EventStream):
            return outgoing
        if outgoing.status != 200:
            return outgoing
        return replace(outgoing, headers={**outgoing.headers, **self.headers({}, answer)})


def encode(chunks: list[Json]) -> list[bytes]:
    """Chunks as `data:` frames."""
    return [sse.data_frame(jsonbytes.dumps(chunk)) for chunk in chunks]


def inband_error(style: ErrorStyle) -> Callable[[int], bytes]:
    """The in-band error of a broken stream in the provider's envelope: the body its JSON answer
    has for the same error (Mistral's top-level object, Ollama's `api_error`), as a `data:`
    frame. Every error goes out in the provider's envelope, mid-stream too."""

    def frame(sent: int) -> bytes:
        return sse.data_frame(jsonbytes.dumps_lenient(inband_body(style)))

    return frame


def inband_body(style: ErrorStyle) -> Any:
    """What `inband_error`'s frame carries: the provider's JSON error body for a broken stream.

    An SSE event is one object: a body that is an array of one (Gemini's `[{"error": ...}]`)
    goes out as its element, the `{"error": {code, message, status}}` Gemini's own streams send
    mid-stream, on which the SDKs raise (they look for a top-level `error`)."""
    body = style.body(style.adapt(errors.stream_error()))
    if isinstance(body, list) and len(body) == 1:
        return body[0]
    return body


def comment(text: str) -> bytes:
    """An SSE comment line (`: text`), which every SSE parser must skip."""
    return b": " + text.encode() + b"\n\n"


# --- rate-limit headers --------------------------------------------------------------------------

# mockai's headers for an answer (the six `x-ratelimit-*`, and `retry-after*` on refusals), the
# answer's status and the tokens it was billed -> the headers the provider sends instead.
Reshape = Callable[[Mapping[str, str], int, int], dict[str, str]]


@dataclass(frozen=True)
class LimitStyle:
    reshape: Reshape
    describe: str
