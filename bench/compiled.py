"""The compiled build of mockai (`MOCKAI_COMPILE=1`, setup.py) as a directory to run it from.

    python bench/compiled.py                  # builds (or reuses) it; prints the directory
    python bench/compiled.py --target DIR     # into DIR
    PYTHONPATH=DIR python -P -m mockai serve  # mockai, compiled

pip builds the wheel (its isolated build fetches mypyc and the packages whose types mypyc reads:
~1-3 minutes on two cores) and installs it, without its dependencies, into the directory: by
default a cache under `bench/.compiled/`, named by a hash of what the build reads, so an
unchanged checkout is built once (and the build of older sources is removed). The directory is
then checked: every module setup.py lists must import from its compiled form, or this fails.

To run mockai from the directory, put it first on the path and keep the checkout off it: with
`python -m`, the working directory comes first, and a checkout's `mockai/` would be imported
instead (`-P`, Python 3.11+, leaves it out). `bench/perf.py --compiled` and CI's run of the
suite on the compiled build (.ci/run) use this.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.machinery
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".compiled"
# What the build reads: the package's sources and how it is built.
BUILD_INPUTS = ("setup.py", "pyproject.toml", "build_backend")


def compiled_modules() -> list[str]:
    """The modules setup.py compiles, as dotted names."""
    listed = re.findall(r'"(mockai/[\w/]+)\.py"', (ROOT / "setup.py").read_text())
    return [path.replace("/", ".") for path in listed]


def source_hash() -> str:
    digest = hashlib.blake2b(digest_size=10)
    files = [path for name in BUILD_INPUTS for path in _files(ROOT / name)]
    # (every file the wheel takes from mockai/: its data files too)
    files += sorted(
        path
        for path in (ROOT / "mockai").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".so"
    )
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(sys.version.encode())
    return digest.hexdigest()


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*.py")) if path.is_dir() else [path]


def build(target: Path | None = None, *, quiet: bool = False) -> Path:
    """The compiled build installed in `target` (default: the cache; reused when complete)."""
    if target is None:
        target = CACHE / source_hash()
        if (target / ".complete").exists():
            return target
    say = (lambda text: None) if quiet else (lambda text: print(text, file=sys.stderr))
    shutil.rmtree(target, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="mockai-wheel-") as wheels:
        say(f"building mockai's compiled wheel (MOCKAI_COMPILE=1) into {target} ...")
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
        env = {**os.environ, "MOCKAI_COMPILE": "1"}
        _quietly([*pip, "wheel", "--no-deps", "-w", wheels, str(ROOT)], env)
        (wheel,) = Path(wheels).glob("*.whl")
        _quietly(
            [*pip, "install", "--no-deps", "--no-compile", "--target", str(target), str(wheel)],
            env,
        )
    check(target)
    (target / ".complete").touch()
    if target.parent == CACHE:  # (one build kept: those of older sources are ~20 MB each)
        for old in CACHE.iterdir():
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
    return target


def _quietly(command: list[str], env: dict[str, str]) -> None:
    """Run `command`; its output (setuptools' and the compiler's chatter) only if it fails."""
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}")


def check(target: Path) -> None:
    """Fail unless every module setup.py lists imports, from `target`, in its compiled form."""
    probe = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    print(name, importlib.import_module(name).__file__)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, *compiled_modules()],  # (run in `target`, off the checkout)
        env={**os.environ, "PYTHONPATH": str(target)},
        cwd=target,
        capture_output=True,
        text=True,
        check=True,
    )
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    plain = [line for line in run.stdout.splitlines() if not line.endswith(suffixes)]
    if plain or not run.stdout:
        raise SystemExit(f"{target}: not compiled: {plain or 'nothing imported'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", type=Path, help="install here (default: the cache)")
    args = parser.parse_args()
    print(build(args.target.resolve() if args.target else None))


if __name__ == "__main__":
    main()
