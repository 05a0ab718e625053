"""Which build of mockai runs: pure Python, or with its hot path compiled by mypyc (setup.py).

Both pass the same tests and answer the same bytes; the compiled one is faster. The banner of
`mockai serve` and `mockai --version` say which one is installed.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util

# One of the modules setup.py compiles: how it is found tells the build apart.
_PROBE = "mockai.pipeline.run"


def compiled() -> bool:
    """True when mockai's hot path runs compiled (found, not imported: no cost at start-up)."""
    spec = importlib.util.find_spec(_PROBE)
    origin = spec.origin if spec is not None else None
    return origin is not None and origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def describe() -> str:
    return "compiled (mypyc)" if compiled() else "pure Python"
