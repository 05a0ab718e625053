"""What a non-editable install ships: every package, the data files, the entry points."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).parents[1]


def _pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_is_listed() -> None:
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "mockai").rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert "pytest_mockai" in listed


def test_entry_points() -> None:
    project = _pyproject()["project"]
    assert project["scripts"] == {"mockai": "mockai.cli:main"}
    assert project["entry-points"]["pytest11"] == {"mockai": "pytest_mockai"}
    assert project["name"] == "mockai-server"
    assert not any(dep.startswith("openai") for dep in project["dependencies"])
