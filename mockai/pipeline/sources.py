"""Assemble a server's answer sources from its configuration, in precedence order.

1. runtime rules (added by tests or `POST /_mockai/rules`), 2. scenario rules (YAML files),
3. cassette replay, 4. the upstream (recording proxy). The fallback generator is not a source: the
Decider falls back to it (or to a no-match error) when none of these answers.
"""

from __future__ import annotations

from mockai.config import Config
from mockai.pipeline.decide import Source


def build_sources(config: Config) -> list[Source]:
    """The configured sources, in the order they are asked."""
    sources: list[Source] = []
    sources.extend(_scenario_sources(config))
    sources.extend(_cassette_sources(config))
    return sources


def _scenario_sources(config: Config) -> list[Source]:
    # One RuleBook holds both: runtime rules are asked first, then the scenario files' rules. It
    # is there even with no files, so that tests can add rules to any server.
    from mockai.scenario import from_paths

    return [from_paths(config.scenarios, strict=config.strict)]


def _cassette_sources(config: Config) -> list[Source]:
    # Replay, then the upstream in record modes (see mockai.cassette.configure). Imported here so
    # that servers without cassettes never load vcrpy.
    if config.cassette is None and config.upstream is None:
        return []
    from mockai.cassette import cassette_sources

    return cassette_sources(config)
