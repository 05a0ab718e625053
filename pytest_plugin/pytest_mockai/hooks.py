"""Hooks the plugin offers to conftest files and other plugins."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec
def pytest_mockai_configure(options: dict[str, Any], request: pytest.FixtureRequest) -> None:
    """Adjust a test's `mockai` options (mutate `options`) before its server starts.

    Called through the test's own hook relay, so a hook in a folder's `conftest.py` applies to
    that folder's tests only; and before the cassette path is resolved, so `cassette` is still as
    given (None, True, False, or a path relative to the test file) and may be set like a marker's.
    """
