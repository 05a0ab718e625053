"""What every endpoint codec receives: the parse and render contexts, and the Codec record."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from mockai.catalog import Catalog
from mockai.pipeline import fingerprint
from mockai.pipeline.exchange import Endpoint, Exchange, Message
from mockai.pipeline.reply import Reply
from mockai.records import record
from mockai.wire import ids
from mockai.wire.outgoing import Outgoing


@record
class ParseContext:
    """What parsing needs besides the body: headers, the catalog, strictness, and history."""

    headers: Mapping[str, str]
    catalog: Catalog
    strict: bool = False
    # The conversation up to a stored response, by id (the Responses API's server-side state,
    # for `previous_response_id`), or None when the server does not hold that response.
    history: Callable[[str], tuple[Message, ...] | None] | None = None
    # The items of a conversation, by id (`conversation`), or None when the server has none.
    conversation: Callable[[str], Sequence[Any] | None] | None = None
    # The ids of the items of the stored chain a `previous_response_id` names (re-sent, they are
    # duplicates), read ahead as `history` is.
    previous_ids: frozenset[str] = frozenset()
    provider: str = "openai"  # the provider profile the request came through
    # The bytes of a file this server holds, by id (images edited from `file_id`s).
    file_data: Callable[[str], bytes | None] | None = None
    # A multipart request's raw body (the body given to `parse` is then its fields, files as
    # `Upload`s), kept on the Exchange for an upstream to forward as sent.
    form: bytes | None = None
    # Routes with ids (files, batches): the method, the path's parameters, the query string.
    method: str = "POST"
    params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    head: bool = False  # a HEAD, parsed as its GET (`method` says GET): it must move nothing
    # The catalog's refusals of what the API refuses for its own models (a chat model on legacy
    # completions, `max_tokens` or a sampling setting on a reasoning model). Off on a server with
    # a cassette or an upstream: there the recording's or the upstream's answer is the one (an
    # OpenAI-compatible upstream recorded through the openai profile has its own models).
    model_rules: bool = True


@record
class RenderContext:
    """What rendering needs besides the reply: the id key, the clock, and output switches.

    `key` derives every id in the body (the same request on a server with the same seed gets the
    same ids); `created` is the timestamp written into bodies (fixed, for reproducible bytes).
    """

    key: bytes
    created: int
    honor_base64: bool = True
    seed: int = 0  # the server's seed, for anything a scripted reply leaves to be generated
    # The provider profile's tool-call id format (key, position -> id), and whether a stop
    # sequence stays in the text (Fireworks keeps it).
    tool_call_id: Callable[[bytes, int], str] = ids.tool_call_id
    keep_stop: bool = False
    # The server's kept renderings (a codec may answer a repeat from them); None: render afresh.
    kept: KeptAnswers | None = None
    # The request's content key (fingerprint.request_keys), when the pipeline has it: what a
    # stream's padding and the made-up numbers derive from. None: `content_key` works it out.
    content_key: bytes | None = None


def content_key(exchange: Exchange, ctx: RenderContext) -> bytes:
    """The request's content key under the server's seed: what it asks, not how it is shown (the
    same for a stream and its JSON answer, and for every repeat, where `ctx.key` is new). Taken
    from the pipeline when it passed it (a 70 KB body costs ~170 us to key again)."""
    if ctx.content_key is not None:
        return ctx.content_key
    return fingerprint.content_key(ctx.seed, exchange.endpoint.value, exchange.body)


class KeptAnswers:
    """Answers a codec rendered, kept for the next request answered with the same reply and
    shaped alike (`chat.render`: only the ids are new). One table per server (ServerState).

    A reply is known by identity (Replies are immutable; the generator and the rules hand out
    the same object for the same answer, and a kept answer's slot holds its reply, so no other
    object can take its id); `shaped_by` is everything else the answer depends on, compared
    whole. A fixed table of slots picked by the reply's identity, a newer answer replacing its
    slot's.

    An answer is kept the second time its reply is rendered alike; the first rendering only marks
    the slot (`mark`: traffic that never repeats, fresh prompts, would pay for cutting and
    keeping answers nobody asks for again: +24% on their rendering). A mark holds the reply's id,
    not the reply: it must not keep alive what the generator's cache let go (a fresh embeddings
    reply's vectors, ~100 KB). Another reply given that id later is taken for seen, and kept a
    rendering early: what is kept is always its own.

    Bounded in slots and in the bytes the answers weigh (`keep`'s `size`: an embeddings answer,
    100-300 KB, and the vectors its reply holds); an answer that would pass `max_bytes` is not
    kept, what is held stays."""

    def __init__(self, slots: int = 256, max_bytes: int = 4 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        # (reply, shaped_by, answer, size), or for a mark (id(reply), shaped_by, SEEN, 0)
        self._slots: list[tuple[Any, tuple[Any, ...], Any, int] | None] = [None] * slots
        self._bytes = 0

    def _slot(self, reply: Reply) -> int:
        return (id(reply) >> 4) % len(self._slots)  # (objects are 16-byte aligned)

    SEEN: Final = object()  # what a slot holds for a reply rendered once (see the class)

    def get(self, reply: Reply, shaped_by: tuple[Any, ...]) -> Any:
        """What was kept for `reply` shaped by `shaped_by` (`SEEN` if rendered once), or None."""
        held = self._slots[self._slot(reply)]
        if held is None or held[1] != shaped_by:
            return None
        if held[2] is self.SEEN:
            return self.SEEN if held[0] == id(reply) else None
        return held[2] if held[0] is reply else None

    def mark(self, reply: Reply, shaped_by: tuple[Any, ...]) -> None:
        """Note that `reply` was rendered once, shaped by `shaped_by` (by its id: see the class)."""
        slot = self._slot(reply)
        old = self._slots[slot]
        self._bytes -= 0 if old is None else old[3]
        self._slots[slot] = (id(reply), shaped_by, self.SEEN, 0)

    def keep(self, reply: Reply, shaped_by: tuple[Any, ...], answer: Any, size: int = 0) -> None:
        """Keep `answer`, weighing `size` bytes, in `reply`'s slot, unless the byte budget would
        pass its bound."""
        slot = self._slot(reply)
        old = self._slots[slot]
        freed = 0 if old is None else old[3]
        if self._bytes - freed + size > self.max_bytes:
            return
        self._slots[slot] = (reply, shaped_by, answer, size)
        self._bytes += size - freed

    @property
    def total_bytes(self) -> int:
        """The bytes the kept answers weigh (what the byte bound counts)."""
        return self._bytes

    def __len__(self) -> int:
        """How many answers are kept (replies only seen once are not counted)."""
        return sum(held is not None and held[2] is not self.SEEN for held in self._slots)

    def clear(self) -> None:
        self._slots = [None] * len(self._slots)
        self._bytes = 0


Parse = Callable[[Any, ParseContext], Exchange]
Render = Callable[[Reply, Exchange, RenderContext], Outgoing]


# What request bodies a codec takes: JSON, multipart forms (file uploads), either; and for
# endpoints whose routes also serve GET and DELETE, JSON or a form when there is a body at all
# (the body is None otherwise).
Bodies = Literal["json", "form", "either", "json_or_none", "form_or_none"]


@dataclass(frozen=True, slots=True)
class Codec:
    """An endpoint: its path (under /v1 and the root), how to parse, how to render."""

    endpoint: Endpoint
    path: str
    parse: Parse
    render: Render
    bodies: Bodies = "json"
