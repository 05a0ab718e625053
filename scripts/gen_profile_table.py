#!/usr/bin/env python3
"""Write the provider tables into docs/providers.md (between its
`<!-- profiles:NAME -->` markers) from mockai's profiles. tests/test_profiles_table.py fails when
they differ; run this after changing a profile.

    python scripts/gen_profile_table.py
"""

from __future__ import annotations

from pathlib import Path

from mockai.profiles.table import replace_blocks

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "docs" / "providers.md",)


def main() -> None:
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        made = replace_blocks(text)
        if made != text:
            path.write_text(made, encoding="utf-8")
            print(f"updated {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
