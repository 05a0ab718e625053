"""mockai: a test double for the OpenAI API.

The public names load lazily, so `import mockai` (which pytest does for the plugin in every run)
costs nothing until a server is actually used.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "Config",
    "ConfigError",
    "MockServer",
    "MockaiError",
    "Reply",
    "ScenarioError",
    "ServerError",
    "ToolCall",
    "__version__",
    "create_app",
]

_LAZY = {
    "ApiError": "mockai.errors",
    "Config": "mockai.config",
    "ConfigError": "mockai.errors",
    "MockServer": "mockai.server.app",
    "MockaiError": "mockai.errors",
    "Reply": "mockai.pipeline.reply",
    "ScenarioError": "mockai.errors",
    "ServerError": "mockai.errors",
    "ToolCall": "mockai.pipeline.reply",
    "create_app": "mockai.server.app",
}

if TYPE_CHECKING:
    from mockai.config import Config
    from mockai.errors import ApiError, ConfigError, MockaiError, ScenarioError, ServerError
    from mockai.pipeline.reply import Reply, ToolCall
    from mockai.server.app import MockServer, create_app


def __dir__() -> list[str]:
    # The public names load lazily (module __getattr__), so they are not in the module's
    # namespace until used: list them for dir(), tab completion and help(), with the module's
    # own dunders, and without what this file imports for itself (`importlib`, `logging`,
    # `Any`: dir() is what the docs call the public names).
    return sorted({name for name in globals() if name.startswith("__")} | set(__all__))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mockai' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


logging.getLogger(__name__).addHandler(logging.NullHandler())
