"""tiktoken's encodings for tests that hold mockai's token counts against real ones."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest


def encodings() -> list[Any]:
    """tiktoken's cl100k and o200k, from the files litellm ships (never downloaded)."""
    tiktoken = pytest.importorskip("tiktoken")
    litellm = importlib.util.find_spec("litellm")  # (not imported: it fetches a price list)
    if litellm is None or litellm.origin is None:
        pytest.skip("litellm, which ships tiktoken's files, is not installed")
    files = Path(litellm.origin).parent / "litellm_core_utils" / "tokenizers"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(files))
    return [tiktoken.get_encoding("cl100k_base"), tiktoken.get_encoding("o200k_base")]
