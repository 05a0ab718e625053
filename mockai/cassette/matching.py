"""Which recorded interaction answers a request: matchers, their registry, and a lookup index.

Matchers are pure functions `(recorded, incoming) -> None` that raise `AssertionError` with a
message saying how the two differ (vcrpy's protocol). Each built-in matcher also has a *key* — the
part of the request it compares, as a hashable value — so that replay finds candidates with one
dict lookup on a precomputed index instead of trying every interaction: the cost of a replay does
not grow with the cassette. A matcher registered without a key makes the index fall back to
trying the matchers one by one.

Requests are compared as `RequestView`s: scheme and host are ignored (a cassette recorded against
`https://api.openai.com/v1` replays on `http://127.0.0.1:PORT/v1` or at the root), the path is
reduced to its API route, and the JSON body is compared parsed (key order and whitespace do not
matter) without its volatile fields.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from mockai.cassette.redact import Scrubber, body_secrets, redact_query
from mockai.errors import ConfigError
from mockai.hints import suggest
from mockai.wire import jsonbytes, multipart

# Generating routes, longest first (`/chat/completions` before `/completions`).
ROUTES = (
    "/chat/completions",
    "/completions",
    "/embeddings",
    "/moderations",
    "/responses",
    "/images/generations",
    "/images/edits",
    "/images/variations",
    "/audio/speech",
    "/audio/transcriptions",
    "/audio/translations",
)

# Where an Azure OpenAI resource's routes are (`/openai/files`, `/openai/deployments/{d}/...`).
AZURE_PREFIX = "/openai/"

# Fields that say nothing about what is asked, or that clients vary on their own: the end-user
# id, metadata, stream options (langchain only asks for usage from the official host), caching
# and safety ids, and the id chaining Responses calls.
VOLATILE_FIELDS = frozenset(
    {
        "user",
        "metadata",
        "stream_options",
        "safety_identifier",
        "prompt_cache_key",
        "previous_response_id",
    }
)
# Ids inside the conversation (tool call ids, item ids): issued by earlier answers, not content.
VOLATILE_ITEM_FIELDS = frozenset({"id", "tool_call_id", "call_id"})
CONVERSATION_FIELDS = ("messages", "input", "prompt", "instructions")

DEFAULT_MATCH_ON = ("method", "path", "body")


def route_of(path: str) -> str:
    """The API route a URL path addresses: `/v1/chat/completions` and `/chat/completions` (or
    OpenRouter's `/api/v1/chat/completions`) are all `/chat/completions`, and an Azure OpenAI
    resource's `/openai/files/file-abc` (or a deployment's `/openai/deployments/gpt4o/...`)
    is `/files/file-abc`."""
    path = "/" + path.strip("/")
    for route in ROUTES:
        if path == route or path.endswith(route):
            return route
    _, marker, rest = path.rpartition("/v1/")
    if marker:
        return "/" + rest
    if path.startswith(AZURE_PREFIX):
        # (the resource's base, `https://RES.openai.azure.com/openai`, holds every route but the
        # generating ones' deployments: a recording of its files, batches or stored responses
        # replays to the same request sent to mockai, whose route has no prefix)
        rest = path.removeprefix("/openai")
        if rest.startswith("/deployments/"):
            rest = "/" + rest.removeprefix("/deployments/").partition("/")[2]
        return rest
    return "/" if path == "/v1" else path


def deployment_of(path: str) -> str | None:
    """The Azure OpenAI deployment a recorded URL path names (`/openai/deployments/prod/...`
    is `prod`), or None."""
    _, marker, rest = path.partition(AZURE_PREFIX + "deployments/")
    name = rest.partition("/")[0]
    return unquote(name) if marker and name else None


def normalize_body(body: Any) -> Any:
    """The body as compared by the `body` matcher: volatile fields and conversation ids removed,
    a null-valued key of a conversation item or its tool calls the same as none (`_without_ids`),
    `stream: false` the same as no `stream`, and a whole number the same written `0` or `0.0`
    (JavaScript writes `temperature: 0.0` as `0`, Python as `0.0`: a cassette recorded from
    one replays to the other, as vcrpy's own body matcher, comparing parsed JSON, has it)."""
    if not isinstance(body, Mapping):
        return body
    out = {}
    for key, value in body.items():
        if key in VOLATILE_FIELDS or (key == "stream" and value is False):
            continue
        value = _whole_numbers_as_ints(value)
        out[key] = _without_ids(value) if key in ("messages", "input") else value
    return out


# The whole numbers a double holds exactly: past it, `float.is_integer` is true of every value
# and an int would claim a precision the request never had.
_EXACT_WHOLE = 2**53


def _whole_numbers_as_ints(value: Any) -> Any:
    """`value` with each float that is a whole number (`1.0`, `-0.0`, `1e3`) as that int."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) <= _EXACT_WHOLE else value
    if isinstance(value, list):
        return [_whole_numbers_as_ints(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _whole_numbers_as_ints(item) for key, item in value.items()}
    return value


def _without_ids(value: Any) -> Any:
    """Conversation items (and their tool calls) without ids, nor keys whose value is null: for
    the API an optional field sent as null is one left out, and clients differ (the SDK's
    message object, appended back as agent loops do, sends `"content": null, "refusal": null`
    where a recording made from `model_dump(exclude_none=True)` has neither)."""
    if isinstance(value, list):
        return [_without_ids(item) for item in value]
    if isinstance(value, Mapping):
        return {
            key: _without_ids(item) if key == "tool_calls" else item
            for key, item in value.items()
            if key not in VOLATILE_ITEM_FIELDS and item is not None
        }
    return value


@dataclass(frozen=True, slots=True)
class RequestView:
    """A request as matchers see it, recorded or incoming alike."""

    method: str
    path: str  # the API route (see `route_of`)
    query: tuple[tuple[str, str], ...]
    body: Any  # parsed JSON (scrubbed of secrets), or the raw text when it is not JSON
    normalized: bytes  # canonical JSON of `normalize_body(body)`
    canonical: bytes  # canonical JSON of the whole body
    # A recorded request's Azure deployment (`/openai/deployments/{deployment}/...`), when its
    # body is JSON: see `as_deployed`.
    deployment: str | None = None

    @classmethod
    def build(
        cls, method: str, path: str, query: str, body: Any, canonical: bytes | None = None
    ) -> RequestView:
        """A view of a request whose body is already parsed (and scrubbed)."""
        return cls(
            method=method.upper(),
            path=route_of(path),
            query=tuple(sorted(parse_qsl(query))) if query else (),
            body=body,
            normalized=jsonbytes.canonical(normalize_body(body)),
            canonical=jsonbytes.canonical(body) if canonical is None else canonical,
        )

    @classmethod
    def recorded(cls, method: str, uri: str, raw: bytes | None, scrubber: Scrubber) -> RequestView:
        """A view of a recorded request (the body is scrubbed the way incoming ones are)."""
        parts = urlsplit(uri)
        query = scrubbed_query(parts.query, scrubber)
        body = parse_body(raw, scrubber)
        view = cls.build(method, parts.path, query, body)
        deployment = deployment_of(parts.path)
        if deployment is not None and isinstance(body, dict) and not (raw or b"").startswith(b"--"):
            # (a form's fields are compared as the client sent them, on both sides)
            return replace(view, deployment=deployment)
        return view

    def as_deployed(self) -> RequestView:
        """This recorded request as mockai's deployment routes read a request: with the Azure
        deployment its URL names as its JSON body's model (Azure answers the deployment,
        whatever the body says). A recording of Azure itself has the model the app passed
        (`AzureOpenAI(azure_deployment="prod")` asked for `model="gpt-4o"`, as LangChain's
        `AzureChatOpenAI` does), which no request to a deployment route has. Itself when it
        names no deployment, or names it as its model already."""
        if self.deployment is None or not isinstance(self.body, dict):
            return self
        if self.body.get("model") == self.deployment:
            return self
        body = {**self.body, "model": self.deployment}
        return replace(
            self,
            body=body,
            normalized=jsonbytes.canonical(normalize_body(body)),
            canonical=jsonbytes.canonical(body),
        )

    @classmethod
    def incoming(
        cls,
        path: str,
        body: Any,
        scrubber: Scrubber,
        *,
        method: str = "POST",
        query: str = "",
        form: bytes | None = None,
    ) -> RequestView:
        """A view of a request mockai is answering: its parsed JSON body, or its multipart
        `form` (scrubbed and normalised like a recorded one), or no body (GET, DELETE)."""
        query = scrubbed_query(query, scrubber)
        if form is not None:
            return cls.build(method, path, query, form_body(scrubber.scrub_body(form)))
        canonical = jsonbytes.canonical(body)
        secrets = body_secrets(body)  # (as the recording replaced them)
        if scrubber.needs_scrubbing(canonical.decode(), secrets):
            return cls.build(method, path, query, scrubber.scrub_json(body, secrets))
        return cls.build(method, path, query, body, canonical)


def scrubbed_query(query: str, scrubber: Scrubber) -> str:
    """A query string as a recorded `uri` holds it: each credential parameter (`api-key=`,
    `key=`, `sig=`) and key-shaped string replaced by its placeholder (`scan.scrub_interaction`).
    The incoming request's is compared with the recording's under `--match-on uri` / `query`:
    raw, a key sent in the query never matched its placeholder, and the no-match report (logged,
    journaled, answered) showed the key itself."""
    if not query:  # (most requests have none)
        return query
    return scrubber.scrub_text(redact_query("?" + query)[0]).removeprefix("?")


def form_body(raw: bytes) -> Any:
    """A multipart form as matchers compare it: its fields, each file as its name, size and
    SHA-256 (not its declared type, which clients guess differently). The boundary, new on
    every request, is gone, so a recorded upload matches the same upload sent again."""
    boundary = multipart.sniff_boundary(raw)
    if boundary is None:
        return None
    try:
        fields = multipart.fields(multipart.parse(raw, boundary))
    except multipart.MultipartError:
        return None
    return _without_types(multipart.summarised(fields))


def _without_types(value: Any) -> Any:
    if isinstance(value, dict):
        if "sha256" in value and "filename" in value:
            return {k: v for k, v in value.items() if k != "content_type"}
        return {key: _without_types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_types(item) for item in value]
    return value


def parse_body(raw: bytes | None, scrubber: Scrubber) -> Any:
    """A recorded body as JSON when it is JSON, a multipart form as its fields (`form_body`),
    else as text (or None when empty)."""
    if not raw:
        return None
    # An upload is kept scrubbed (a key pasted into a JSONL batch file): both sides summarise
    # their form scrubbed, or the file's SHA-256 would tell the recording from the same upload.
    form = form_body(scrubber.scrub_body(raw)) if raw.startswith(b"--") else None
    if form is not None:
        return form
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
    try:
        # JSON as the server reads a request's (no lone surrogates, NaN, or nesting past its
        # limit: such a request is refused before it is matched), which canonical JSON can write.
        value = jsonbytes.loads(raw)
    except ValueError:
        return scrubber.scrub_text(text)
    secrets = body_secrets(value)  # (a vcrpy cassette's may hold them as they were sent)
    return scrubber.scrub_json(value, secrets) if scrubber.needs_scrubbing(text, secrets) else value


# --- matchers ------------------------------------------------------------------------------------

Matcher = Callable[[RequestView, RequestView], None]
Key = Callable[[RequestView], Hashable]


def _shown(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else jsonbytes.dumps_str(value)
    text = repr(text) if isinstance(value, str) else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field(name: str, get: Callable[[RequestView], Any]) -> tuple[Matcher, Key]:
    def key(view: RequestView) -> Hashable:
        value = get(view)
        return value if isinstance(value, Hashable) else jsonbytes.canonical(value)

    def matcher(recorded: RequestView, incoming: RequestView) -> None:
        if key(recorded) != key(incoming):
            raise AssertionError(
                f"{name}: recorded {_shown(get(recorded))}, this request {_shown(get(incoming))}"
            )

    matcher.__name__ = name
    return matcher, key


def _body_field(name: str) -> Callable[[RequestView], Any]:
    return lambda view: view.body.get(name) if isinstance(view.body, Mapping) else None


def _conversation(view: RequestView) -> Any:
    body = normalize_body(view.body)
    if not isinstance(body, Mapping):
        return body
    return {key: body[key] for key in CONVERSATION_FIELDS if key in body}


def body(recorded: RequestView, incoming: RequestView) -> None:
    """The JSON bodies are equal once parsed, apart from volatile fields."""
    if recorded.normalized != incoming.normalized:
        raise AssertionError(
            "\n".join(
                body_differences(normalize_body(recorded.body), normalize_body(incoming.body))
            )
        )


def raw_body(recorded: RequestView, incoming: RequestView) -> None:
    """The JSON bodies are equal once parsed, volatile fields included."""
    if recorded.canonical != incoming.canonical:
        raise AssertionError("\n".join(body_differences(recorded.body, incoming.body)))


class MatcherRegistry:
    """Matchers by name, each with an optional index key."""

    def __init__(self) -> None:
        self._matchers: dict[str, Matcher] = {}
        self._keys: dict[str, Key | None] = {}

    def register(self, name: str, matcher: Matcher, *, key: Key | None = None) -> None:
        """Add (or replace) the matcher `name`. Give `key` (the compared part of a request, as a
        hashable value) to keep replay lookups O(1)."""
        self._matchers[name] = matcher
        self._keys[name] = key

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._matchers)

    def resolve(self, names: Iterable[str]) -> tuple[str, ...]:
        """`names` checked against the registry: a ConfigError lists the known ones."""
        names = tuple(names)
        unknown = [name for name in names if name not in self._matchers]
        if unknown:
            raise ConfigError(
                f"match_on: unknown matcher(s) {', '.join(repr(n) for n in unknown)}"
                + suggest(unknown[0], self.names(), noun="known matchers")
            )
        if not names:
            raise ConfigError(f"match_on: give at least one of: {', '.join(self.names())}")
        return names

    def matcher(self, name: str) -> Matcher:
        """The matcher called `name`."""
        return self._matchers[name]

    def key(self, name: str) -> Key | None:
        """The index key of matcher `name`, if it has one."""
        return self._keys[name]

    def copy(self) -> MatcherRegistry:
        """An independent registry with the same matchers."""
        other = MatcherRegistry()
        other._matchers = dict(self._matchers)
        other._keys = dict(self._keys)
        return other


def _defaults() -> MatcherRegistry:
    registry = MatcherRegistry()
    for name, get in (
        ("method", lambda v: v.method),
        ("path", lambda v: v.path),
        ("uri", lambda v: (v.path, v.query)),  # scheme and host never match a mock; ignore them
        ("query", lambda v: v.query),
        ("model", _body_field("model")),
        ("stream", lambda v: bool(_body_field("stream")(v))),
        ("tools", _body_field("tools")),
        ("messages", _conversation),
    ):
        matcher, key = _field(name, get)
        registry.register(name, matcher, key=key)
    registry.register("body", body, key=lambda v: v.normalized)
    registry.register("raw_body", raw_body, key=lambda v: v.canonical)
    return registry


MATCHERS = _defaults()


def register_matcher(name: str, matcher: Matcher, *, key: Key | None = None) -> None:
    """Register a matcher for `match_on` in the default registry (see MatcherRegistry.register)."""
    MATCHERS.register(name, matcher, key=key)


def failures(
    recorded: RequestView, incoming: RequestView, names: Sequence[str], registry: MatcherRegistry
) -> list[tuple[str, str]]:
    """(matcher, why) for every matcher in `names` that fails."""
    failed = []
    for name in names:
        try:
            registry.matcher(name)(recorded, incoming)
        except AssertionError as error:
            failed.append((name, str(error)))
    return failed


class Index:
    """Recorded requests by their match keys: candidates for a request in one lookup."""

    def __init__(
        self, views: Sequence[RequestView], names: Sequence[str], registry: MatcherRegistry
    ) -> None:
        self.views = list(views)
        self.names = tuple(names)
        self.registry = registry
        keys = [registry.key(name) for name in self.names]
        self._keys: list[Key] | None = [k for k in keys if k is not None]
        if len(self._keys) != len(keys):
            self._keys = None  # a matcher without a key: compare one by one
        self._table: dict[tuple[Hashable, ...], list[int]] = {}
        if self._keys is not None:
            for position, view in enumerate(self.views):
                self._table.setdefault(self._key(view), []).append(position)

    def _key(self, view: RequestView) -> tuple[Hashable, ...]:
        assert self._keys is not None
        return tuple(key(view) for key in self._keys)

    def candidates(self, incoming: RequestView) -> list[int]:
        """Positions of the recorded requests matching `incoming`, in recording order."""
        if self._keys is not None:
            return self._table.get(self._key(incoming), [])
        return [
            position
            for position, view in enumerate(self.views)
            if not failures(view, incoming, self.names, self.registry)
        ]


# --- field-level differences ---------------------------------------------------------------------


def body_differences(recorded: Any, incoming: Any) -> list[str]:
    """What differs between two JSON bodies, parameter by parameter and message by message."""
    if not (isinstance(recorded, Mapping) and isinstance(incoming, Mapping)):
        return [f"body: recorded {_shown(recorded)}, this request {_shown(incoming)}"]
    lines: list[str] = []
    for key in sorted(set(recorded) | set(incoming)):
        old, new = recorded.get(key, _ABSENT), incoming.get(key, _ABSENT)
        if old == new:
            continue
        if key in ("messages", "input") and isinstance(old, list) and isinstance(new, list):
            lines.extend(_conversation_differences(key, old, new))
        elif old is _ABSENT:
            lines.append(f"{key}: not recorded, this request {_shown(new)}")
        elif new is _ABSENT:
            lines.append(f"{key}: recorded {_shown(old)}, not in this request")
        elif isinstance(old, str) and isinstance(new, str) and key in CONVERSATION_FIELDS:
            lines.append(f"{key} changed:\n    recorded:     {_shown(old, 200)}")
            lines[-1] += f"\n    this request: {_shown(new, 200)}"
        else:
            lines.append(f"{key}: recorded {_shown(old)}, this request {_shown(new)}")
    return lines or ["body: the bodies differ"]


class _Absent:
    def __repr__(self) -> str:
        return "absent"


_ABSENT: Any = _Absent()


def _conversation_differences(key: str, old: list[Any], new: list[Any]) -> list[str]:
    lines = []
    for position in range(max(len(old), len(new))):
        if position >= len(old):
            lines.append(f"{key}[{position}] {_describe_item(new[position])} is not recorded")
        elif position >= len(new):
            lines.append(
                f"{key}[{position}] {_describe_item(old[position])} is not in this request"
            )
        elif old[position] != new[position]:
            lines.append(
                f"{key}[{position}] ({_role(new[position])}) changed:\n"
                f"    recorded:     {_shown(_item_text(old[position]), 200)}\n"
                f"    this request: {_shown(_item_text(new[position]), 200)}"
            )
    return lines


def _role(item: Any) -> str:
    if isinstance(item, Mapping):
        return str(item.get("role") or item.get("type") or "item")
    return "item"


def _describe_item(item: Any) -> str:
    return f"({_role(item)}) {_shown(_item_text(item), 120)}"


def _item_text(item: Any) -> Any:
    """The text of a message (its parts joined), or the whole item when it has no text."""
    if not isinstance(item, Mapping):
        return item
    content = item.get("content")
    if isinstance(content, str) and set(item) <= {"role", "content", "name", "type"}:
        return content
    if isinstance(content, list) and set(item) <= {"role", "content", "name", "type"}:
        texts = [p.get("text") for p in content if isinstance(p, Mapping) and "text" in p]
        if len(texts) == len(content):
            return "\n".join(str(t) for t in texts)
    return dict(item)
