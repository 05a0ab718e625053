"""mockai's build backend: setuptools' own, plus what compiling the hot path needs.

`MOCKAI_COMPILE=1 pip install .` (or `MOCKAI_COMPILE=1 python -m build --wheel`) compiles the
modules `setup.py` lists to C with mypyc, the compiler mypy ships. mypyc reads the type
annotations, so its build needs mypy and the packages the code imports (for their types): they
are asked for here, and only when compiling. Without `MOCKAI_COMPILE=1` every hook is
setuptools' own and the package is pure Python, as it always was.

An editable install cannot be compiled: the compiled modules would sit beside the sources and be
imported instead of them, so an edit would not run until the next build. That is refused with
a message saying so.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every PEP 517 hook, setuptools' own)
from setuptools.config.pyprojecttoml import load_file

# (mypyc ships in mypy's wheels; the stubs are the ones `mypy` in CI uses, see pyproject.toml)
_COMPILER = ["mypy>=1.15", "types-PyYAML"]


def compiling() -> bool:
    """Whether this build compiles the hot path (`MOCKAI_COMPILE=1`)."""
    return os.environ.get("MOCKAI_COMPILE", "").strip() == "1"


def _compile_requires() -> list[str]:
    # (read as written: the project's runtime dependencies, which mypyc reads the types of)
    dependencies: list[str] = load_file("pyproject.toml")["project"]["dependencies"]
    return [*_COMPILER, *dependencies]


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    if not compiling():
        requires: list[str] = _setuptools.get_requires_for_build_wheel(config_settings)
        return requires
    # setuptools runs setup.py to answer, before mypyc is there: asked as for a plain build.
    os.environ.pop("MOCKAI_COMPILE")
    try:
        requires = _setuptools.get_requires_for_build_wheel(config_settings)
    finally:
        os.environ["MOCKAI_COMPILE"] = "1"
    return requires + _compile_requires()


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    if compiling():
        raise SystemExit(
            "MOCKAI_COMPILE=1 builds a wheel: use `pip install .`, not `pip install -e .` "
            "(compiled modules beside the sources would run instead of your edits)"
        )
    requires: list[str] = _setuptools.get_requires_for_build_editable(config_settings)
    return requires


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    # (also when pip skips the requirements hook: `--no-build-isolation`)
    get_requires_for_build_editable(config_settings)
    built: str = _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
    return built
