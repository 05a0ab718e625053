"""What a non-editable install ships: every package, the data files, the entry points."""

from __future__ import annotations

import fnmatch
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
    # The README's `pip install -e '.[openai]'`: the SDK its examples use, only as an extra (3.x:
    # the errors they catch are its own; 1.0-1.2 do not read OPENAI_BASE_URL).
    assert project["optional-dependencies"]["openai"] == ["openai>=3"]


def test_jinja2_is_one_whose_sandbox_holds() -> None:
    """Templates come from scenario files and `POST /_mockai/rules`: a jinja2 before 3.1.6 lets
    them out of the sandbox (`|attr('format')`, a stored `str.format`: GHSA-cpwx-vrp4-4pq7,
    GHSA-q2x7-8rv6-6q7h), and before 3.1.5 never calls mockai's `wrap_str_format` at all."""
    from packaging.requirements import Requirement

    (jinja2,) = (
        Requirement(dep)
        for dep in _pyproject()["project"]["dependencies"]
        if Requirement(dep).name == "jinja2"
    )
    allowed = [
        v for v in ("3.1.0", "3.1.4", "3.1.5", "3.1.6", "3.2.0") if jinja2.specifier.contains(v)
    ]
    assert allowed == ["3.1.6", "3.2.0"]


def test_package_data_names_files_that_exist() -> None:
    # A glob that matches nothing ships nothing and hides a mistake (a moved data folder).
    for package, globs in _pyproject()["tool"]["setuptools"]["package-data"].items():
        folder = ROOT / "pytest_plugin" / package if package == "pytest_mockai" else ROOT / package
        for pattern in globs:
            assert list(folder.glob(pattern)), f"package-data {package}: {pattern} matches nothing"


def test_every_file_the_package_reads_is_shipped() -> None:
    # A wheel carries a package's .py files and what package-data names, nothing else: the
    # fallback generator's text missing from it answered every chat with a 500 (the Docker
    # image, `pip install .`), which an editable install, reading the checkout, never shows.
    globs = _pyproject()["tool"]["setuptools"]["package-data"]["mockai"]
    package = ROOT / "mockai"
    data = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*")
        if path.is_file()
        and path.suffix not in (".py", ".pyc", ".so")
        and "__pycache__" not in path.parts
    ]
    assert data, "mockai reads data files (mockai/data/)"
    unshipped = [name for name in data if not any(fnmatch.fnmatch(name, glob) for glob in globs)]
    assert unshipped == [], "add these to [tool.setuptools.package-data] in pyproject.toml"


def test_the_license_the_metadata_names_is_shipped() -> None:
    project = _pyproject()["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def test_no_example_the_suite_replays_is_ignored_by_git() -> None:
    # Example scenarios and cassettes are tracked and exercised by the suite: an ignore pattern
    # matching one would make a re-recorded example silently stay out of commits.
    patterns = [
        line.strip().rstrip("/")
        for line in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    examples = [p for folder in ("cassettes", "scenarios") for p in (ROOT / folder).rglob("*")]
    assert examples
    for path in examples:
        relative = path.relative_to(ROOT)
        names = [relative.as_posix(), *(part for part in relative.parts)]
        for pattern in patterns:
            hit = [n for n in names if fnmatch.fnmatch(n, pattern.lstrip("/"))]
            assert not hit, f".gitignore pattern {pattern!r} ignores {relative}"
