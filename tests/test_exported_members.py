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
