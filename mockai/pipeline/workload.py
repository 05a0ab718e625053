"""Big answers are made off the event loop, so that one request never stalls the others.

Most answers take well under a millisecond to make, and are made on the loop. A few legal
requests take longer: 2,048 embeddings of 3,072 dimensions (~0.3 s of vectors to make and
write), 2,048 moderation inputs, 20 prompts times `n: 128`, long prompts scored with `echo`
and `logprobs`, a schema asking for an answer as long as gpt-5 may write. Those are generated
and rendered in a worker thread while the loop keeps serving (the thread holds the GIL only for
slices of a few milliseconds). One worker for the whole process: heavy requests take turns, and
the loop always gets its share of the CPU.

`heavy` is judged from the request alone, cheaply, before anything is made.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote

from mockai.pipeline.exchange import Endpoint, Exchange

T = TypeVar("T")

# Thresholds, each worth ~10 ms or more of work (measured on a 2-core machine).
EMBEDDING_INPUTS = 64  # 64 vectors of 3,072 floats to make (numpy) and write as JSON (orjson)
# Or fewer, longer inputs: every word not seen lately costs ~0.1 ms (its buckets and trigrams
# hashed), so 16 KiB of text is 10-200 ms, and 40 inputs of 5,000 distinct words (identifiers,
# codes, another language's words: 233,000 tokens, within the API's 300,000) held the loop 18 s.
EMBEDDING_CHARACTERS = 16 * 1024
MODERATION_INPUTS = 32
MODERATION_CHARACTERS = 200_000
COMPLETION_CHOICES = 128  # prompts x n
# Prompt tokens scored for legacy completions' `echo` with `logprobs` (30-100 us a token, each
# top alternative hashed): lm-evaluation-harness scores batches of long documents so, and 20
# prompts of davinci-002's 16,384 tokens held the loop ~26 s.
SCORED_TOKENS = 256
CHOICES = 32  # chat / responses `n`
SCHEMA_SIZE = 256  # a minItems / minLength / minProperties this large asks for a long answer
_SCHEMA_NODES = 2_000  # a schema this large ($refs inlined) is heavy to generate for by itself
_BIG_REPEAT = re.compile(r"\{\s*(\d{3,})")  # `{256}`, `{1000,}` in a pattern
_SIZE_KEYWORDS = frozenset({"minItems", "minLength", "minProperties", "minContains"})


# Pictures and sounds are drawn, encoded and decoded: always worth the worker thread.
MEDIA = frozenset(
    {
        Endpoint.IMAGES,
        Endpoint.IMAGE_EDITS,
        Endpoint.IMAGE_VARIATIONS,
        Endpoint.SPEECH,
        Endpoint.TRANSCRIPTIONS,
        Endpoint.TRANSLATIONS,
    }
)


def heavy(exchange: Exchange) -> bool:
    """Whether generating and rendering `exchange`'s answer may take more than a few ms."""
    endpoint = exchange.endpoint
    if endpoint in MEDIA:
        return True
    if endpoint is Endpoint.EMBEDDINGS:
        return len(exchange.inputs) >= EMBEDDING_INPUTS or (
            sum(map(len, exchange.inputs)) >= EMBEDDING_CHARACTERS
        )
    if endpoint is Endpoint.MODERATIONS:
        return len(exchange.inputs) >= MODERATION_INPUTS or (
            sum(map(len, exchange.inputs)) >= MODERATION_CHARACTERS
        )
    if endpoint is Endpoint.COMPLETIONS:
        scored = exchange.prompt_tokens * exchange.n if exchange.echo and exchange.logprobs else 0
        return (
            max(len(exchange.inputs), 1) * exchange.n >= COMPLETION_CHOICES
            or scored >= SCORED_TOKENS
        )
    if exchange.n >= CHOICES or exchange.audio_output is not None:
        return True  # (a chat answer in audio: its sound is made and encoded, as speech's is)
    fmt = exchange.response_format
    schemas = [fmt.schema] if fmt is not None and fmt.schema is not None else []
    if exchange.tool_choice.mode != "none":
        schemas += [tool.parameters for tool in exchange.tools if tool.parameters]
    return any(_asks_for_much(schema) for schema in schemas)


def _asks_for_much(schema: Mapping[str, Any]) -> bool:
    """Whether a JSON schema asks for a long value, or is itself huge once its `$ref`s are
    inlined.

    A `$ref` counts its target's nodes again at every place it is referred to (a recursive one
    once per path), because checking a value walks it there again: a 2 KB schema whose every
    level is `oneOf: [{$ref: next}, {allOf: [{$ref: next}, ...]}]` is as costly to check as
    one of 2^depth nodes (`generate.schema.checks` bounds that work; it is still ~0.5 s).
    On the path of every generated answer with tools: exact types, no ABCs (~1 us a node).
    """
    pending: list[tuple[Any, tuple[str, ...]]] = [(schema, ())]
    seen = 0
    while pending:
        node, refs = pending.pop()  # `refs`: the `$ref`s inlined on the way to `node`
        seen += 1
        if seen > _SCHEMA_NODES:
            return True
        if type(node) is list:
            pending.extend((item, refs) for item in node if type(item) in _CONTAINERS)
            continue
        for key, value in node.items():
            kind = type(value)
            if kind in _CONTAINERS:
                pending.append((value, refs))
            elif key in _SIZE_KEYWORDS:
                if kind in _NUMBERS and value >= SCHEMA_SIZE:
                    return True
            elif key == "pattern" and kind is str and "{" in value and _BIG_REPEAT.search(value):
                return True
            elif key == "$ref" and kind is str and value not in refs:
                target = _local_target(schema, value)
                if target is not None:
                    pending.append((target, (*refs, value)))
    return False


def _local_target(root: Mapping[str, Any], ref: str) -> Any:
    """The node `ref` (`#/$defs/x`, `#`) points to in `root`, or None (the generator reports
    what it cannot follow)."""
    if ref != "#" and not ref.startswith("#/"):
        return None  # (an anchor, another document)
    node: Any = root
    for part in ref[1:].split("/")[1:]:
        part = unquote(part).replace("~1", "/").replace("~0", "~")
        if type(node) is dict:
            node = node.get(part)
        elif type(node) is list and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node if type(node) in _CONTAINERS else None


_CONTAINERS = frozenset({dict, list})
_NUMBERS = frozenset({int, float})


_worker: concurrent.futures.ThreadPoolExecutor | None = None
_worker_lock = threading.Lock()


def _the_worker() -> concurrent.futures.ThreadPoolExecutor:
    """The process's worker thread for heavy answers, started on first use."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mockai-heavy")
        return _worker


async def off_loop(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)`, run in the worker thread while the loop goes on serving."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_the_worker(), functools.partial(function, *args))
