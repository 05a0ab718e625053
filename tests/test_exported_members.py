"""The public surface: what `import mockai` offers, and that it costs nothing until used."""

from __future__ import annotations

import subprocess
import sys

import mockai


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert mockai.__all__ == sorted(mockai.__all__)
    for name in mockai.__all__:
        assert getattr(mockai, name) is not None, name


def test_import_has_no_side_effects() -> None:
    # Importing the package (what pytest does for the plugin) loads neither aiohttp nor faker,
    # and configures no logging beyond a NullHandler.
    code = (
        "import logging, sys, mockai, pytest_mockai\n"
        "assert 'aiohttp' not in sys.modules and 'faker' not in sys.modules, sorted(sys.modules)\n"
        "handlers = logging.getLogger('mockai').handlers\n"
        "assert [type(h).__name__ for h in handlers] == ['NullHandler']\n"
        "assert not logging.getLogger().handlers\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dir_lists_the_public_names_before_any_is_used() -> None:
    # In a fresh interpreter, so no earlier test has loaded the lazy names into the module.
    code = (
        "import mockai\n"
        "names = dir(mockai)\n"
        "missing = sorted(set(mockai.__all__) - set(names))\n"
        "assert not missing, missing\n"
        "assert names == sorted(names)\n"
        "assert 'MockServer' in names and 'ScenarioError' in names\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dir_lists_no_name_the_package_only_uses_itself() -> None:
    """docs/python.md: "The public names are those of `dir(mockai)`". It listed what the
    package's own file imports (`importlib`, `logging`, `Any`, `TYPE_CHECKING`, `annotations`)
    and its private `_LAZY` too, so tab completion offered `mockai.logging`."""
    code = (
        "import mockai\n"
        "public = [name for name in dir(mockai) if not name.startswith('__')]\n"
        "expected = [name for name in mockai.__all__ if not name.startswith('__')]\n"
        "assert public == expected, public\n"
        "assert '__version__' in dir(mockai) and '__file__' in dir(mockai)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
