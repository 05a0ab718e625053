"""Where each endpoint's codec is, so that routes are made without importing the codecs.

A server registers every endpoint's routes at start, but most servers answer a few endpoints
only: each codec module (and what it imports: image and audio generation, the Responses API's
events, the batch file format) is imported the first time a request needs it. `CODECS` lists
the generating endpoints (their own POST route each); `FILES` and `BATCHES` are the codecs of
the stores' routes.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mockai.pipeline.exchange import Endpoint

if TYPE_CHECKING:
    from mockai.api.base import Codec


@dataclass(frozen=True)
class CodecRef:
    """An endpoint, its path under a prefix, and where its Codec is (`mockai.api.MODULE.NAME`)."""

    endpoint: Endpoint
    path: str
    module: str
    name: str = "CODEC"

    def load(self) -> Codec:
        """The codec (its module imported the first time, then kept); it must be the
        endpoint's, at the path this table says (routes are registered from the table)."""
        return _load(self)


@functools.cache  # (thread-safe enough: the import system locks the module; a race loads twice)
def _load(ref: CodecRef) -> Codec:
    codec: Codec = getattr(importlib.import_module(f"mockai.api.{ref.module}"), ref.name)
    if codec.endpoint is not ref.endpoint or codec.path != ref.path:
        raise RuntimeError(f"mockai.api.codecs: {ref} does not describe {codec}")
    return codec


CODECS = (
    CodecRef(Endpoint.CHAT, "/chat/completions", "chat"),
    CodecRef(Endpoint.COMPLETIONS, "/completions", "completions"),
    CodecRef(Endpoint.EMBEDDINGS, "/embeddings", "embeddings"),
    CodecRef(Endpoint.RESPONSES, "/responses", "responses"),
    CodecRef(Endpoint.MODERATIONS, "/moderations", "moderations"),
    CodecRef(Endpoint.IMAGES, "/images/generations", "images", "GENERATIONS"),
    CodecRef(Endpoint.IMAGE_EDITS, "/images/edits", "images", "EDITS"),
    CodecRef(Endpoint.IMAGE_VARIATIONS, "/images/variations", "images", "VARIATIONS"),
    CodecRef(Endpoint.SPEECH, "/audio/speech", "speech"),
    CodecRef(Endpoint.TRANSCRIPTIONS, "/audio/transcriptions", "transcriptions", "TRANSCRIPTIONS"),
    CodecRef(Endpoint.TRANSLATIONS, "/audio/translations", "transcriptions", "TRANSLATIONS"),
)
FILES = CodecRef(Endpoint.FILES, "/files", "files")
BATCHES = CodecRef(Endpoint.BATCHES, "/batches", "batches")


class Codecs(Mapping[Endpoint, "Codec"]):
    """The generating endpoints' codecs by endpoint, each loaded the first time it is asked for.

    (After the first time, a lookup is a dict lookup and a cached call.)"""

    def __init__(self, refs: tuple[CodecRef, ...] = CODECS) -> None:
        self.refs = {ref.endpoint: ref for ref in refs}

    def __getitem__(self, endpoint: Endpoint) -> Codec:
        return self.refs[endpoint].load()

    def __contains__(self, endpoint: object) -> bool:
        return endpoint in self.refs

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self.refs)

    def __len__(self) -> int:
        return len(self.refs)

    def __repr__(self) -> str:
        return f"<codecs: {', '.join(e.value for e in self.refs)}>"


# Where each endpoint is, under a prefix (routes, the provider table, tests).
ENDPOINT_PATHS = {ref.endpoint: ref.path for ref in (*CODECS, FILES, BATCHES)}
