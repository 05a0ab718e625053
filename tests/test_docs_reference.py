"""The reference tables of the docs against the code they describe: what the loader takes is
what the page lists (the docs test runs the pages' code blocks, not their tables)."""

from __future__ import annotations

import re
from pathlib import Path

from mockai.pipeline.exchange import Endpoint
from mockai.scenario.matchers import REGISTRY

DOCS = Path(__file__).parents[1] / "docs"


def _table_rows(page: str, heading: str) -> dict[str, str]:
    """The rows of the first table under `heading`: first cell's `code` name -> the row."""
    text = (DOCS / page).read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        if rows and not line.startswith("|"):
            break
        found = re.match(r"\| `([^`]+)` \|", line)
        if found:
            rows[found.group(1)] = line
    return rows


def test_the_match_table_lists_every_match_key_and_endpoint() -> None:
    """scenarios.md's Match table is where a reader looks for what `match:` takes: `provider`
    and `file` were missing from it, and its `endpoint` row named five of the thirteen names
    (a rule for `transcriptions` was one the page said could not be written)."""
    rows = _table_rows("scenarios.md", "## Match")
    assert set(rows) == set(REGISTRY)
    named = set(re.findall(r"`([a-z_]+)`", rows["endpoint"]))
    assert {endpoint.value for endpoint in Endpoint} <= named


def test_the_home_page_lists_every_page_of_the_site() -> None:
    """docs/index.md lists "the pages here": providers, media, operations and performance were
    missing from it, so the site's home led nowhere near images, Groq or running a service."""
    text = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"^- \[[^]]+\]\(([a-z-]+\.md)\)", text, re.M))
    pages = {page.name for page in DOCS.glob("*.md")} - {"index.md"}
    assert linked == pages
