"""One cassette replayed by many servers in one process is loaded once (cassette/shared.py).

A test suite starting a server per test, each replaying the same cassette, paid its load in
every test (~150 ms for 500 recordings). From its second load, unchanged files with the same
settings are shared: each server keeps its own play counts, an edited file is loaded again, and
other settings (matchers, redaction, speed) get their own load.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cassette_replay import recorded, write

from mockai import MockServer
from mockai.cassette import shared
from mockai.cassette.replay import ReplaySource


def _replay(server: MockServer) -> ReplaySource:
    found = [s for s in server.state.decider.sources if isinstance(s, ReplaySource)]
    assert len(found) == 1
    return found[0]


def _ask(server: MockServer, question: str = "Capital of France?") -> str | None:
    with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client:
        answer = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
    return answer.choices[0].message.content


def test_servers_share_a_cassettes_load_and_keep_their_own_play_counts(tmp_path: Path) -> None:
    cassette = write(
        tmp_path / "shared.yaml",
        recorded("Capital of France?", "Paris, first."),
        recorded("Capital of France?", "Paris, again."),
    )
    loads = []
    for _ in range(4):
        with MockServer(cassette=str(cassette)) as server:
            loads.append(_replay(server))
            # Each server replays the recordings in order from the first: its own play counts.
            assert [_ask(server), _ask(server)] == ["Paris, first.", "Paris, again."]
            # A shared source reports a miss as a loaded one does: the closest recording, why.
            with pytest.raises(openai.APIStatusError) as missed:
                _ask(server, "Capital of Spain?")
            said = str(missed.value)
            assert "shared.yaml#0" in said and "'Capital of Spain?'" in said
    first, second, third, fourth = loads
    # Loaded afresh twice (kept the second time: a cassette loaded once is not kept), then shared.
    assert first.entries is not second.entries
    assert third.entries is second.entries and fourth.entries is second.entries
    assert third.index is second.index and third.plays is not second.plays


def test_an_edited_cassette_is_loaded_again(tmp_path: Path) -> None:
    cassette = write(tmp_path / "edited.yaml", recorded("Capital of France?", "Paris."))
    for _ in range(2):
        with MockServer(cassette=str(cassette)) as server:
            assert _ask(server) == "Paris."
    write(cassette, recorded("Capital of France?", "Paris, re-recorded."))
    for _ in range(2):  # (kept again at its second load)
        with MockServer(cassette=str(cassette)) as server:
            assert _ask(server) == "Paris, re-recorded."
    # The same size and modification time but another file (a checkout): its inode and change
    # time say so.
    stat = cassette.stat()
    moved = tmp_path / "other.yaml"
    write(moved, recorded("Capital of France?", "Paris, re-recorded?"))
    os.replace(moved, cassette)
    os.utime(cassette, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (cassette.stat().st_size, cassette.stat().st_mtime_ns) == (
        stat.st_size,
        stat.st_mtime_ns,
    )
    with MockServer(cassette=str(cassette)) as server:
        assert _ask(server) == "Paris, re-recorded?"


def test_other_settings_get_their_own_load(tmp_path: Path) -> None:
    cassette = write(tmp_path / "settings.yaml", recorded("Capital of France?", "Paris."))
    for _ in range(2):
        with MockServer(cassette=str(cassette)) as server:
            kept = _replay(server)
            with pytest.raises(openai.APIStatusError):  # the body differs: no recording matches
                _ask(server, "Capital of Spain?")
    with MockServer(cassette=str(cassette)) as server:
        assert _replay(server).entries is kept.entries
    # Another replay speed (the recordings' pace) or redaction (the recorded requests' views).
    for other in ({"replay_speed": 2.0}, {"redact": ["Fr[a-z]+"]}):
        with MockServer(cassette=str(cassette), **other) as server:
            assert _replay(server).entries is not kept.entries, other
    # Matching on the method and path alone, the same file answers any question.
    with MockServer(cassette=str(cassette), match_on=["method", "path"]) as server:
        assert _ask(server, "Capital of Spain?") == "Paris."
        assert _replay(server).match_on == ("method", "path")


def test_what_is_kept_stays_within_its_recordings_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared, "KEPT_RECORDINGS", 5)
    monkeypatch.setattr(shared, "_kept", {})
    monkeypatch.setattr(shared, "_seen", {})
    for n in range(6):
        cassette = write(tmp_path / f"c{n}.yaml", *(recorded(f"Q{n}.{i}", "A.") for i in range(2)))
        for _ in range(3):  # kept at its second load, shared at its third
            with MockServer(cassette=str(cassette)):
                pass
        held = sum(len(source.entries) for _, source in shared._kept.values())
        assert 2 <= held <= 5
    # The newest cassettes stay, the oldest went first.
    kept = sorted(Path(key[0]).name for key in shared._kept)
    assert kept == ["c4.yaml", "c5.yaml"]


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.sampled_from(["serve", "rewrite", "edit in place", "touch"]), max_size=8),
    st.sampled_from([None, ["method", "path"]]),
)
def test_every_server_replays_the_cassette_as_it_is_on_disk(
    tmp_path: Path, steps: list[str], match_on: list[str] | None
) -> None:
    """Whatever the order of servers and changes (a new file put in place, the file written
    over in place with the same size, its times touched), each server answers from the
    cassette as it is on disk when it starts, sharing a load or not."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    cassette = write(folder / "c.yaml", recorded("Capital of France?", "Version 0."))
    version = 0
    options = {} if match_on is None else {"match_on": match_on}
    for step in [*steps, "serve"]:
        if step == "serve":
            with MockServer(cassette=str(cassette), **options) as server:
                assert _ask(server) == f"Version {version}."
            continue
        version += 1
        if step == "rewrite":  # a new file in its place (what mockai and editors' saves do)
            write(cassette, recorded("Capital of France?", f"Version {version}."))
        elif step == "edit in place":  # the same inode, the same size
            other = write(
                folder / "next.yaml", recorded("Capital of France?", f"Version {version}.")
            )
            text = other.read_bytes()
            assert len(text) == cassette.stat().st_size
            with open(cassette, "r+b") as file:
                file.write(text)
        else:  # the same bytes, newer times: still what the file says
            version -= 1
            os.utime(cassette)
