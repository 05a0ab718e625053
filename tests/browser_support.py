"""A real headless Chromium (Debian's, by executable path: no browser is downloaded), driven by
playwright, for the tests of what browsers do: the inspector page, CORS."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator

from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium() -> Iterator[BrowserContext]:
    """A browser with a fresh profile, closed at the end."""
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        try:
            yield context
        finally:
            context.close()
