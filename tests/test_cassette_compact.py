"""A replayed cassette laid out anew in memory once loaded (`ReplaySource.compact`).

Made while the YAML loader's nodes and the cassettes' interactions were alive, the recordings'
objects sat scattered among that garbage, and the interpreter kept every arena one of them
lived in: a 10,000-interaction cassette's server held 193 MiB. Compacted, the same recordings
(equal, found the same way) hold a fraction of that.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cassette_support import recorded_chat
from hypothesis import given
from hypothesis import strategies as st

from mockai.cassette import Cassette, Interaction
from mockai.cassette.format import Timing
from mockai.cassette.replay import ENDPOINT_ROUTES, ReplaySource

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_BODIES = (
    _JSON.map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=64)
    | st.sampled_from([b"", b'{"a": NaN}', b"[" * 70 + b"]" * 70, b'{"s": "\\ud800"}'])
)
_PATHS = [*(f"/v1{route}" for route in ENDPOINT_ROUTES.values()), "/v1/models", "/v1/files/f-1"]
_TIMINGS = st.builds(
    Timing,
    latency=st.none() | st.floats(0, 5),
    duration=st.none() | st.floats(0, 5),
    events=st.none() | st.lists(st.floats(0, 5), max_size=4).map(tuple),
)


@st.composite
def interactions(draw: st.DrawFn) -> Interaction:
    stream = draw(st.booleans())
    frames = draw(st.lists(_BODIES, max_size=4))
    response = b"".join(b"data: " + frame + b"\n\n" for frame in frames) if stream else frames
    return Interaction(
        method=draw(st.sampled_from(["POST", "GET", "DELETE"])),
        uri="https://api.openai.com"
        + draw(st.sampled_from(_PATHS))
        + draw(st.sampled_from(["", "?limit=2", "?after=x&limit=1"])),
        request_body=draw(st.none() | _BODIES),
        request_headers={"Content-Type": ["application/json"]},
        status=draw(st.sampled_from([200, 400, 429, 500])),
        reason="OK",
        response_headers={
            "Content-Type": ["text/event-stream" if stream else "application/json"],
            **draw(st.dictionaries(st.sampled_from(["x-request-id", "retry-after"]), st.text())),
        },
        response_body=response if isinstance(response, bytes) else b"".join(response),
        timing=draw(_TIMINGS),
    )


@given(
    st.lists(st.lists(interactions(), max_size=6), min_size=1, max_size=3),
    st.sampled_from([0.0, 1.0, 2.5]),
    st.booleans(),
)
def test_compacting_keeps_every_recording_and_how_it_is_found(
    files: list[list[Interaction]], speed: float, allow_repeats: bool
) -> None:
    cassettes = [Cassette(Path(f"c{n}.yaml"), items) for n, items in enumerate(files)]
    source = ReplaySource(cassettes, speed=speed, allow_repeats=allow_repeats)
    before, index, alike = source.entries, source.index, source._alike
    recorded = list(source.recorded_requests())
    source.compact()
    assert source.entries == before
    # Laid out anew: none of the recordings' objects is the one made at load.
    for new, old in zip(source.entries, before, strict=True):
        assert new is not old and new.view is not old.view and new.answer is not old.answer
    assert source._alike == alike
    for entry in before:
        assert source.index.candidates(entry.view) == index.candidates(entry.view)
    assert list(source.recorded_requests()) == recorded


def _chat_cassette(path: Path, interactions: int) -> Path:
    answer = {"object": "chat.completion", "model": "gpt-4o-mini", "choices": []}
    recorded = [
        recorded_chat(
            {"model": "gpt-4o-mini", "messages": [{"content": f"Q{n}"}]},
            {**answer, "id": f"chatcmpl-{n}"},
        )
        for n in range(interactions)
    ]
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump({"interactions": recorded, "version": 1}, Dumper=dumper))
    return path


def _resident_kib(cassette: Path) -> int:
    """`mockai serve --cassette`'s resident memory once it listens (the cassette loaded)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mockai", "serve", "--port", "0", "--quiet", "--cassette", cassette],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "listening on" in line:
                status = Path(f"/proc/{process.pid}/status").read_text()
                found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
                assert found, status
                return int(found.group(1))
        raise AssertionError("mockai serve did not start")
    finally:
        process.kill()
        process.communicate()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_large_cassettes_server_holds_little_more_than_its_recordings(tmp_path: Path) -> None:
    # Measured: 4.2-4.9 KiB per interaction compacted, 14.0-14.4 KiB as loaded.
    small = _resident_kib(_chat_cassette(tmp_path / "small.yaml", 200))
    large = _resident_kib(_chat_cassette(tmp_path / "large.yaml", 3_000))
    per_interaction = (large - small) / 2_800
    assert per_interaction < 8, f"{per_interaction:.1f} KiB held per recorded interaction"
