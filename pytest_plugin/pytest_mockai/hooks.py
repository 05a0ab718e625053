"""Hooks the plugin offers to conftest files and other plugins."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec
def pytest_mockai_configure(options: dict[str, Any], request: pytest.FixtureRequest) -> None:
    """Adjust a test's `mockai` options (mutate `options`) just before its server starts."""
