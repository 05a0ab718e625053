"""Per-request keys that make generated output reproducible.

`request_keys` gives two. The content key depends on the seed and on what the request *asks*
(model, messages, tools, ...), not on how the answer is presented (`stream`, `n`, `max_tokens`,
`stop`, ...): the same question gets the same text streamed or not, and a truncated answer is a
prefix of the full one. The exact key adds the presentation fields back, identifying the exact
request; `Occurrences` numbers repeats of the same exact request so that ids still differ between
them, while staying independent of the order in which *different* requests arrive.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Mapping
from typing import Any

from mypy_extensions import mypyc_attr

from mockai.wire import jsonbytes

# Fields that change how an answer is presented or billed, not what it says.
PRESENTATION_FIELDS = frozenset(
    {
        "stream",
        "stream_options",
        "n",
        "max_tokens",
        "max_completion_tokens",
        "max_output_tokens",
        "stop",
        "logprobs",
        "top_logprobs",
        "echo",
        "encoding_format",
        "dimensions",
        "user",
        "metadata",
        "store",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        # (how long and how the prompt is cached: billed and timed otherwise, said the same)
        "prompt_cache_retention",
        "prompt_cache_options",
        # (chat's Predicted Outputs: the text the model would write anyway, sooner)
        "prediction",
        "previous_response_id",
    }
)


# On the media endpoints more fields only say how the answer is sent: the same recording gets
# the same transcript in every format, the same text the same sound in every encoding, the same
# prompt the same picture as base64 or a link, PNG or WebP.
MEDIA_PRESENTATION_FIELDS: Mapping[str, frozenset[str]] = {
    "images": frozenset(
        {"response_format", "output_format", "output_compression", "partial_images"}
    ),
    "image_edits": frozenset(
        {"response_format", "output_format", "output_compression", "partial_images"}
    ),
    "image_variations": frozenset({"response_format"}),
    "speech": frozenset({"response_format", "stream_format"}),
    "transcriptions": frozenset({"response_format", "timestamp_granularities", "include"}),
    "translations": frozenset({"response_format"}),
}
_NONE: frozenset[str] = frozenset()

# The Responses API's own fields that say how an answer is delivered or what else it shows, not
# what it says: `background` (the answer is polled for instead of waited on) and `include`
# (log probabilities, encrypted reasoning, search sources alongside the same text), and
# `truncation` (what is dropped from an input past the context window: within it, nothing).
# Chat's `logprobs` is presentation; the Responses request asking for them with `include`
# changed the answer, and so did running it in the background.
_PRESENTED: Mapping[str, frozenset[str]] = {
    "responses": PRESENTATION_FIELDS | {"background", "include", "truncation"},
}


def content_key(seed: int, endpoint: str, body: Mapping[str, Any]) -> bytes:
    """A 32-byte key for what this request asks, under this seed."""
    return request_keys(seed, endpoint, body)[0]


def request_keys(seed: int, endpoint: str, body: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The request's content key (what it asks, under this seed: 32 bytes) and its exact key:
    the content key refined by the presentation fields, which identifies the exact request, for
    its ids (the content key itself when it has none). Its fields are sorted in one pass."""
    more = MEDIA_PRESENTATION_FIELDS.get(endpoint, _NONE)
    presented = _PRESENTED.get(endpoint, PRESENTATION_FIELDS)
    asked: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    for name, value in body.items():
        if name in presented:
            shown[name] = value
        elif name not in more:
            asked[name] = _untyped(value) if more else value
    if endpoint == "completions":
        asked = _one_prompt(asked)
    elif endpoint == "chat" or endpoint == "responses":
        asked = _plain_turns(endpoint, asked)
    material = f"{seed}|{endpoint}|".encode() + _canonical(asked)
    orders = _schema_orders(asked)
    if orders:  # (canonical JSON sorts the keys: their order in schemas is added back)
        material += b"|" + jsonbytes.dumps(orders)
    key = hashlib.blake2b(material, digest_size=32).digest()
    if not shown:
        return key, key
    return key, hashlib.blake2b(_canonical(shown), key=key, digest_size=32).digest()


def _one_prompt(asked: dict[str, Any]) -> dict[str, Any]:
    """A legacy completions request's list of one prompt as that prompt: `["Once upon"]` asks
    what `"Once upon"` asks (LangChain's `OpenAI` LLM always sends a list, the SDK what it is
    given), and `[[1, 2]]` what the token array `[1, 2]` asks."""
    prompt = asked.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        return {**asked, "prompt": prompt[0]}
    return asked


# A message's content as one text part, written the long way (the string is its shorthand).
_TEXT_PARTS = {"chat": frozenset({"text"}), "responses": frozenset({"input_text"})}


def _plain_turns(endpoint: str, asked: dict[str, Any]) -> dict[str, Any]:
    """The turns as their shortest spelling: a message whose content is one text part as that
    text, and a Responses `input` string as the one user message it means (`"type": "message"`
    left out). Clients spell one question differently: `input="hi"` with the SDK,
    `[{"role": "user", "content": "hi"}]` from the Agents SDK, one `input_text` part from
    others; each got its own answer."""
    field = "messages" if endpoint == "chat" else "input"
    turns = asked.get(field)
    if isinstance(turns, str) and endpoint == "responses":
        return {**asked, field: [{"role": "user", "content": turns}]}
    if not isinstance(turns, list):
        return asked
    parts = _TEXT_PARTS[endpoint]
    plain = [_plain_turn(turn, parts) for turn in turns]
    if all(map(operator.is_, plain, turns)):
        return asked  # (nothing spelt the long way: the common case)
    return {**asked, field: plain}


def _plain_turn(turn: Any, parts: frozenset[str]) -> Any:
    if not isinstance(turn, dict) or "role" not in turn:
        return turn
    content = turn.get("content")
    spelt = turn.get("type") == "message" and set(turn) <= {"type", "role", "content"}
    if (
        isinstance(content, list)
        and len(content) == 1
        and isinstance(content[0], dict)
        and content[0].keys() == {"type", "text"}
        and content[0]["type"] in parts
        and isinstance(content[0]["text"], str)
    ):
        content = content[0]["text"]
    elif not spelt:
        return turn
    if spelt:
        return {"role": turn["role"], "content": content}
    return {**turn, "content": content}


# The whole numbers a double holds exactly (as the cassettes' body matcher has it): past it,
# `float.is_integer` is true of every value.
_EXACT_WHOLE = 2**53


def _canonical(value: dict[str, Any]) -> bytes:
    """Canonical JSON of `value` with a whole number the same written `1`, `1.0`, `1e0` or, for
    zero, `-0.0`: JavaScript writes `temperature: 1.0` as `1`, Python as `1.0`, and a form's
    `0.0` reads as a float where its `0` reads as an int; the same question gets the same answer.
    (The body itself stays as sent: the journal, rules and the upstream see what was sent.)"""
    text = jsonbytes.canonical(value)
    # Such a float is written `1.0` (below 2**53 no double is written with an exponent): a body
    # without one, the usual case, costs one search of its bytes. Text holding ".0" is walked.
    if b".0" not in text:
        return text
    return jsonbytes.canonical(_whole_numbers_as_ints(value))


def _whole_numbers_as_ints(value: Any) -> Any:
    """`value` with each float that is a whole number (`1.0`, `-0.0`, `1e3`) as that int."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) <= _EXACT_WHOLE else value
    if isinstance(value, dict):
        return {name: _whole_numbers_as_ints(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_ints(item) for item in value]
    return value


# The fields holding the schemas answers are made from: tools' parameters (and legacy
# `functions`'), chat's `response_format` and the Responses API's `text.format`.
_SCHEMA_FIELDS = ("tools", "functions", "response_format", "text")
# Schema keywords whose values are data: an object among them is answered as written.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples", "example"})


def _schema_orders(asked: Mapping[str, Any]) -> list[Any]:
    """The order of the names in every `properties` (and `patternProperties`) of the request's
    schemas, and of the keys of the objects their data holds (`const`, `enum`, ...).

    A generated object follows its schema's order, and its values are drawn in that order: two
    orders are two questions (each answered in its own order), not one whose answer would be
    whichever order came first. (Only there: fields in another order elsewhere, as SDKs write
    them, still ask the same.)"""
    orders: list[Any] = []
    for name in _SCHEMA_FIELDS:
        value = asked.get(name)
        if isinstance(value, dict | list):
            _add_orders(value, orders)
    return orders


def _add_orders(value: Any, orders: list[Any]) -> None:
    if isinstance(value, list):
        for item in value:
            _add_orders(item, orders)
        return
    if not isinstance(value, dict):
        return
    for name, item in value.items():
        if name in ("properties", "patternProperties") and isinstance(item, dict):
            orders.append(list(item))
            for schema in item.values():  # (names there are properties', not keywords)
                _add_orders(schema, orders)
        elif name in _DATA_KEYWORDS:
            _add_data_orders(item, orders)
        else:
            _add_orders(item, orders)


def _add_data_orders(value: Any, orders: list[Any]) -> None:
    """The key order of every object in `value` (names only: its values are in the content
    key already, whole numbers as ints)."""
    if isinstance(value, dict):
        orders.append(list(value))
        for item in value.values():
            _add_data_orders(item, orders)
    elif isinstance(value, list):
        for item in value:
            _add_data_orders(item, orders)


def _untyped(value: Any) -> Any:
    """A form field with its uploads' declared types left out: clients guess a file's type
    differently (the SDK sends audio/mpeg, curl application/octet-stream), and the same file
    must get the same answer. (Media endpoints only: the others carry no uploads.)"""
    if isinstance(value, dict) and "sha256" in value and "content_type" in value:
        return {key: item for key, item in value.items() if key != "content_type"}
    if isinstance(value, list):
        return [_untyped(item) for item in value]
    return value


def occurrence_key(key: bytes, occurrence: int) -> bytes:
    """The key for the n-th repeat (from 0) of the same request."""
    if occurrence == 0:
        return key
    return hashlib.blake2b(occurrence.to_bytes(8, "big"), key=key, digest_size=32).digest()


# The shared state subclasses it (backend/redis_state.py); a class compiled by mypyc
# (setup.py) refuses subclasses it did not compile unless it allows them.
@mypyc_attr(allow_interpreted_subclasses=True)
class Occurrences:
    """Counts how often each content key was seen (bounded: a long load test must not leak)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._seen: dict[bytes, int] = {}

    def next(self, key: bytes) -> int:
        """How many times `key` was seen before this call."""
        count = self._seen.get(key, 0)
        if count == 0 and len(self._seen) >= self._limit:
            self._seen.clear()  # rare; repeats after this start their numbering over
        self._seen[key] = count + 1
        return count

    async def take(self, key: bytes) -> int:
        """`next`, as the state backends share it (a shared backend counts across workers)."""
        return self.next(key)

    async def forget(self) -> None:
        """`clear`, as the state backends share it."""
        self._seen.clear()

    def clear(self) -> None:
        """Forget every count (a server reset)."""
        self._seen.clear()
