"""Builds mockai. Everything about the package is in pyproject.toml except the compiled build.

With `MOCKAI_COMPILE=1` (`MOCKAI_COMPILE=1 pip install .`), the modules below are compiled to C
by mypyc, which reads their type annotations: a chat request then costs ~19% fewer instructions
(docs/performance.md, "The compiled build", for the time it saves). Without it, mockai is
pure Python; both builds pass the same tests. The build backend (build_backend/) fetches
mypyc and the packages whose types it reads only for a compiled build.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools import setup

# The modules every generated chat or embeddings request runs through, stage by stage, with
# the generators of fresh answers (prose, embeddings). Left out: modules that run once (loading,
# the CLI), and those mypyc cannot compile as written: server/lane.py (a subclass of aiohttp's
# protocol, whose attributes mypyc cannot see) and errors.py (its exceptions are subclassed
# across the package).
COMPILED = [
    "mockai/tokens.py",
    "mockai/api/base.py",
    "mockai/api/chat.py",
    "mockai/api/common.py",
    "mockai/api/embeddings.py",
    "mockai/api/obfuscation.py",
    "mockai/api/shaping.py",
    "mockai/backend/base.py",
    "mockai/backend/memory.py",
    "mockai/delivery/chaos.py",
    "mockai/delivery/deliver.py",
    "mockai/delivery/faults.py",
    "mockai/delivery/outbox.py",
    "mockai/delivery/ratelimit.py",
    "mockai/delivery/timing.py",
    "mockai/generate/budget.py",
    "mockai/generate/embeddings.py",
    "mockai/generate/fallback.py",
    "mockai/generate/prose.py",
    "mockai/pipeline/decide.py",
    "mockai/pipeline/exchange.py",
    "mockai/pipeline/fingerprint.py",
    "mockai/pipeline/journal.py",
    "mockai/pipeline/parsed.py",
    "mockai/pipeline/reply.py",
    "mockai/pipeline/run.py",
    "mockai/pipeline/sources.py",
    "mockai/pipeline/uploads.py",
    "mockai/pipeline/workload.py",
    "mockai/server/intake.py",
    "mockai/server/metrics.py",
    "mockai/server/state.py",
    "mockai/wire/errors.py",
    "mockai/wire/ids.py",
    "mockai/wire/jsonbytes.py",
    "mockai/wire/outgoing.py",
]


def _extensions() -> list[object]:
    if os.environ.get("MOCKAI_COMPILE", "").strip() != "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        raise SystemExit(
            "MOCKAI_COMPILE=1: mypyc is missing (pip install mypy), or let pip's isolated build "
            "fetch it (no --no-build-isolation)"
        ) from None

    # (one C file per module, compiled in parallel: half the build's time on two cores)
    return list(mypycify(COMPILED, opt_level="3", multi_file=True))


def _clear_earlier_builds() -> None:
    """setuptools builds in build/ and packs everything under build/lib* into the wheel: a module
    an earlier build left there (compiled, and no longer listed; or since deleted) would ship and
    be imported. (A cache of build outputs: nothing else is lost.)"""
    for earlier in (Path(__file__).resolve().parent / "build").glob("lib*"):
        shutil.rmtree(earlier, ignore_errors=True)


_clear_earlier_builds()
setup(ext_modules=_extensions(), options={"build_ext": {"parallel": os.cpu_count() or 1}})
