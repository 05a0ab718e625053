"""docs/providers.md's provider tables are what the profiles say (they are made by
mockai.profiles.table; scripts/gen_profile_table.py rewrites them), so they cannot drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from mockai.profiles import PROFILES
from mockai.profiles.table import differences, replace_blocks, versions

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("doc", ["docs/providers.md"])
def test_the_docs_tables_are_the_generators_output(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert "<!-- profiles:differences -->\n" + differences() in text
    assert replace_blocks(text) == text, f"run scripts/gen_profile_table.py ({doc} is stale)"


def test_the_tables_name_every_provider_and_what_it_models() -> None:
    table, dated = differences(), versions()
    for name, profile in PROFILES.items():
        assert (f"`{name}`" in table) == profile.by_name
        assert f"| `{name}` | {profile.as_of} |" in dated


def test_a_changed_profile_changes_the_table() -> None:
    stale = "<!-- profiles:differences -->\n| old |\n<!-- /profiles:differences -->"
    assert replace_blocks(stale) == (
        "<!-- profiles:differences -->\n" + differences() + "<!-- /profiles:differences -->"
    )
