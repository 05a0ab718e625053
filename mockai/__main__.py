"""`python -m mockai` is the `mockai` command."""

from __future__ import annotations

import sys

from mockai.cli import main

if __name__ == "__main__":
    sys.exit(main())
