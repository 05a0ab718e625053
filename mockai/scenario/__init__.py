"""Scenario files (format version 1): load + validate YAML with file:line problems, match, reply.

loader      files / folders -> ScenarioSet (validated, cached), the cross-file checks
yamlsrc     YAML -> values that remember their lines
rules       one rule: conditions, steps (reply | error | sequence), limits, timing, faults
matchers    `match:` keys, one self-registering class each
operators   the text operators (equals, contains, startswith, endswith, regex)
replies     `reply:` / `error:` -> Reply / ApiError per request; stale-fixture checks
templates   sandboxed jinja2 templates, checked at load time
schemas     cached jsonschema validators for the request's own schemas
book        RuleBook: the decide.Source serving runtime + scenario rules, with counters
nearmiss    the no-match report
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mockai.config import Config
from mockai.scenario.book import RuleBook, RuleInfo, from_paths

if TYPE_CHECKING:
    from mockai.scenario.loader import ScenarioSet

__all__ = ["RuleBook", "RuleInfo", "ScenarioSet", "configure", "from_paths", "load"]


def load(paths: Sequence[str]) -> ScenarioSet:
    """The ScenarioSet of `paths` (files, folders), or a ScenarioError with every problem
    (`loader.load`; the loader, PyYAML and the rule compiler load on first use)."""
    from mockai.scenario import loader

    return loader.load(paths)


def __getattr__(name: str) -> object:
    # The loader's names, loading it when they are asked for (a plain server never does).
    if name in ("ScenarioSet", "SETTINGS"):
        from mockai.scenario import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def configure(config: Config) -> Config:
    """`config` with its scenario files' settings (seed, models, fallback, chaos, strict) applied.

    Scenario files are the layer just above the defaults: a setting applies only where nobody
    set the option explicitly (the environment, the CLI and `MockServer` options win, even when
    they give the default value).
    """
    if not config.scenarios:
        return config
    from mockai.scenario import loader

    scenario_set = loader.load(config.scenarios)
    changes = {
        name: scenario_set.value(name)
        for name in loader.SETTINGS
        if scenario_set.value(name) is not None and name not in config.given
    }
    return config.merged(**changes) if changes else config
