"""The build backend: setuptools' own, unless `MOCKAI_COMPILE=1` asks for the compiled build.

The compiled build itself is built and tested whole by CI (.ci/run: bench/compiled.py, then the
suite's hot-path tests on it); here, what the backend asks for and what it refuses.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mockai
from mockai.delivery.timing import Fixed, LogNormal, StreamTiming, Uniform
from mockai.pipeline.reply import Timing
from mockai.wire.outgoing import Attachment

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.chdir(ROOT)  # (pip runs the backend in the project's directory)
    spec = importlib.util.spec_from_file_location(
        "mockai_build", ROOT / "build_backend" / "mockai_build.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_compiled_build_asks_for_mypyc_and_the_packages_whose_types_it_reads(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOCKAI_COMPILE", "1")
    assert backend.compiling()
    wanted = backend._compile_requires()
    assert any(requirement.startswith("mypy>=") for requirement in wanted)
    assert "types-PyYAML" in wanted
    for dependency in ("aiohttp>=3.9", "orjson>=3.9", "mypy_extensions>=1.0"):
        assert dependency in wanted


@pytest.mark.parametrize("value", ["", "0", "yes"])
def test_only_MOCKAI_COMPILE_1_compiles(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MOCKAI_COMPILE", value)
    assert not backend.compiling()


def test_an_editable_install_is_never_compiled(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Compiled modules beside the sources would be imported instead of them: edits would not run.
    monkeypatch.setenv("MOCKAI_COMPILE", "1")
    for hook in (
        lambda: backend.get_requires_for_build_editable(),
        lambda: backend.build_editable(str(tmp_path)),
    ):
        with pytest.raises(SystemExit, match=r"pip install \.`, not `pip install -e \."):
            hook()
    assert list(tmp_path.iterdir()) == []


def test_mockai_says_which_build_it_imports(tmp_path: Path) -> None:
    # Outside the checkout (the working directory comes first on the path: there it would be
    # the checkout's `mockai/`), as an installed mockai runs (CI runs this file on the compiled
    # build too: there the answer is the compiled one).
    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    imported = run("-c", "import mockai.pipeline.run as run; print(run.__file__)")
    compiled = imported.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    build = "compiled (mypyc)" if compiled else "pure Python"
    assert run("-m", "mockai", "--version") == f"mockai {mockai.__version__} ({build})"


# The frozen records that are pickled (a replayed cassette's entries are laid out anew by
# pickling: cassette/replay.py): any of them comes back equal, in either build (CI runs this
# file on the compiled one, whose classes restore pickled fields only through `__reduce__`).
_seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False)
_delays = st.one_of(
    st.builds(Fixed, _seconds),
    st.builds(Uniform, _seconds, _seconds),
    st.builds(LogNormal, _seconds, _seconds),
)
_streams = st.builds(
    StreamTiming, st.none() | _delays, st.none() | _delays, st.floats(0, 1, allow_nan=False)
)
_records = st.one_of(
    _delays,
    _streams,
    st.builds(Timing, st.none() | _delays, st.none() | _streams, st.integers()),
    st.builds(Attachment, st.text(), st.binary(), st.text()),
)


@given(_records)
def test_every_pickled_record_comes_back_equal(record: object) -> None:
    restored = pickle.loads(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
    assert type(restored) is type(record)
    assert restored == record
