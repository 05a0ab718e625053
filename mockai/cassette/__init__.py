"""Record and replay with vcrpy cassettes.

format     the vcrpy file format (read and written with vcrpy's serializers), atomic saves
lines      the line of each node of a cassette's text, for `file:line` messages
matching   matchers, their registry, the lookup index, field-level differences
redact     credential headers, key-shaped strings, placeholders
scan       scrubbing and scanning whole interactions and cassette texts
replay     the `cassette` Source
shared     replayed cassettes loaded once per process, shared by its servers
record     the `upstream` Source (recording proxy, or passthrough)
writer     saving recordings: concurrent appends, atomic rewrites, never overwriting silently
modes      record modes (vcrpy's)
configure  which sources a Config asks for
check      `mockai check` for cassettes
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mockai.cassette.configure import cassette_sources
    from mockai.cassette.format import Cassette, CassetteFile, DecodeError, Interaction, NotFound
    from mockai.cassette.matching import MATCHERS, MatcherRegistry, RequestView, register_matcher
    from mockai.cassette.modes import RecordMode, validate_record_mode
    from mockai.cassette.record import UpstreamSource
    from mockai.cassette.redact import Scrubber
    from mockai.cassette.replay import ReplaySource

# Each name from its module, imported when first asked for: `mockai check` reads cassettes with
# the format, redaction and scan modules alone (the upstream's aiohttp client and the replay
# source are for servers).
_LAZY = {
    "cassette_sources": "configure",
    "Cassette": "format",
    "CassetteFile": "format",
    "DecodeError": "format",
    "Interaction": "format",
    "NotFound": "format",
    "MATCHERS": "matching",
    "MatcherRegistry": "matching",
    "RequestView": "matching",
    "register_matcher": "matching",
    "RecordMode": "modes",
    "validate_record_mode": "modes",
    "UpstreamSource": "record",
    "Scrubber": "redact",
    "ReplaySource": "replay",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "MATCHERS",
    "Cassette",
    "CassetteFile",
    "DecodeError",
    "Interaction",
    "MatcherRegistry",
    "NotFound",
    "RecordMode",
    "ReplaySource",
    "RequestView",
    "Scrubber",
    "UpstreamSource",
    "cassette_sources",
    "register_matcher",
    "validate_record_mode",
]
