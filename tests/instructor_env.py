"""The separate environment the instructor tests run in: `.venv-instructor` at the project root.

instructor (1.17, the latest) caps `jiter<0.15`, and every openai release since 3.4 needs
`jiter>=0.16`: instructor installs only next to openai<=3.3. The rest of the suite is written
against a current SDK (openai 3.4+ wraps a connection broken mid-stream in `APIConnectionError`;
3.3 lets httpx2's `RemoteProtocolError` out, and 14 tests of faults and cassettes see it), so
instructor gets an environment of its own instead of holding the suite's openai back.
tests/test_instructor.py drives instructor there (tests/instructor_driver.py) against a mockai the
test starts in the suite's own environment.

The README's test command builds it (`scripts/test-env` runs this file); the tests build it on
first use if it is missing or stale (once per checkout: a stamp records what it was built from).

    python tests/instructor_env.py     # build or refresh; prints the environment's python
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-instructor"
# What instructor needs to run against mockai; resolved by pip on its own (openai<=3.3 today).
REQUIREMENTS = ("instructor>=1.11", "pydantic>=2")
_STAMP = VENV / "mockai-built-from.txt"


def python() -> Path:
    """The environment's interpreter (it may not exist yet: see `ensure`)."""
    scripts = "Scripts" if os.name == "nt" else "bin"
    return VENV / scripts / ("python.exe" if os.name == "nt" else "python")


def _recipe() -> str:
    return "\n".join([sys.version, *REQUIREMENTS]) + "\n"


def is_ready() -> bool:
    return python().exists() and _STAMP.exists() and _STAMP.read_text() == _recipe()


def ensure() -> Path:
    """Build the environment unless it is ready; the interpreter's path. Safe under xdist."""
    if is_ready():
        return python()
    with _locked(ROOT / ".venv-instructor.lock"):
        if not is_ready():  # another worker may have built it while this one waited
            _STAMP.unlink(missing_ok=True)
            venv.create(VENV, with_pip=True, clear=True)
            subprocess.run(
                [str(python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 *REQUIREMENTS],
                check=True,
            )  # fmt: skip
            _STAMP.write_text(_recipe())
    return python()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: one pytest process at a time builds it
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


if __name__ == "__main__":
    print(ensure())
