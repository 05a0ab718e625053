"""Many recordings at once into one cassette, and a recording server killed while it writes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import conformance
import httpx
import openai
import pytest
import yaml
from cassette_support import interactions, paced_upstream

from mockai.cassette import Cassette, CassetteFile, Interaction
from mockai.cassette.modes import RecordMode
from mockai.cassette.redact import Scrubber
from mockai.cassette.writer import CassetteRecorder, stale_temporaries


@pytest.mark.asyncio
async def test_50_concurrent_recordings_make_50_interactions(tmp_path: Path) -> None:
    cassette = tmp_path / "busy.yaml"
    with (
        paced_upstream() as upstream,
        conformance.checked_server(
            cassette=str(cassette), record_mode="once", upstream=upstream.url
        ) as server,
    ):
        async with openai.AsyncOpenAI(
            base_url=server.url, api_key="sk-test", max_retries=0
        ) as client:

            async def one(number: int) -> None:
                messages = [{"role": "user", "content": f"question {number}"}]
                if number % 2:
                    stream = await client.chat.completions.create(
                        model="gpt-4o-mini", messages=messages, stream=True, max_tokens=20
                    )
                    async for _ in stream:
                        pass
                else:
                    await client.chat.completions.create(
                        model="gpt-4o-mini", messages=messages, max_tokens=20
                    )

            started = time.perf_counter()
            await asyncio.gather(*(one(n) for n in range(50)))
            elapsed = time.perf_counter() - started
        recorder = server.state.decider.sources[-1].recorder  # type: ignore[attr-defined]
    text = cassette.read_text()
    assert len(yaml.safe_load(text)["interactions"]) == 50  # valid YAML, every interaction
    stored = interactions(cassette)
    questions = {json.loads(i.request_body)["messages"][0]["content"] for i in stored}
    assert questions == {f"question {n}" for n in range(50)}
    assert sum(i.is_stream for i in stored) == 25
    assert 1 <= recorder.saves <= 50
    assert elapsed < 10


@pytest.mark.asyncio
async def test_saves_requested_while_one_runs_are_coalesced(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    recorder = CassetteRecorder(path, RecordMode.ONCE, None, Scrubber())
    for number in range(50):  # all within one turn of the event loop
        assert recorder.add(_embedding(number))
    await recorder.flush()
    assert recorder.saves == 1
    recorder.add(_embedding(50))
    await asyncio.sleep(0)  # the save starts...
    recorder.add(_embedding(51))  # ...and these two arrive while it runs
    recorder.add(_embedding(52))
    await recorder.flush()
    assert recorder.saves == 3
    assert len(interactions(path)) == 53


def _embedding(number: int, note: str = "") -> Interaction:
    return Interaction(
        method="POST",
        uri="https://api.openai.com/v1/embeddings",
        request_body=json.dumps({"model": "m", "input": f"old {number}"}).encode(),
        request_headers={"Content-Type": ["application/json"]},
        status=200,
        reason="OK",
        response_headers={"Content-Type": ["application/json"]},
        response_body=json.dumps({"object": "list", "data": [], "note": note}).encode(),
    )


def _big_cassette(path: Path, count: int) -> bytes:
    filler = "lorem ipsum dolor sit amet " * 300
    items = [_embedding(n, filler) for n in range(count)]
    CassetteFile.save(path, CassetteFile.dumps(Cassette(path, items)))
    return path.read_bytes()


def test_a_server_killed_while_recording_leaves_a_whole_cassette(tmp_path: Path) -> None:
    cassette = tmp_path / "big.yaml"
    original = _big_cassette(cassette, 400)
    with paced_upstream() as upstream:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "mockai", "serve", "--port", "0", "--quiet"),
                *("--cassette", str(cassette), "--record-mode", "all", "--upstream", upstream.url),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = _wait_for_banner(process)
            stop = threading.Event()
            sender = threading.Thread(target=_keep_asking, args=(url, stop), daemon=True)
            sender.start()
            caught_writing = _kill_while_writing(process, cassette)
            stop.set()
            sender.join(5)
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate()
    assert process.returncode == -signal.SIGKILL
    after = CassetteFile.load(cassette)  # loads: never a torn file
    assert len(after.interactions) >= 400  # the previous interactions are all still there
    assert caught_writing, "the server was never caught in the middle of a write"
    backup = cassette.with_name("big.yaml.bak")
    assert not backup.exists() or backup.read_bytes() == original
    # What a kill can leave is a hidden temporary file, which is never read as a cassette.
    assert all(p.name.startswith(".") for p in stale_temporaries(cassette))


def _wait_for_banner(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    banner = ""
    while "Press Ctrl-C" not in banner:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(banner + (process.stderr.read() if process.stderr else ""))
        banner += line
    match = re.search(r"listening on (http://\S+)", banner)
    assert match, banner
    return match.group(1) + "/v1"


def _keep_asking(url: str, stop: threading.Event) -> None:
    number = 0
    with httpx.Client(timeout=5) as client:
        while not stop.is_set():
            number += 1
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"n{number}"}]}
            try:
                client.post(url + "/chat/completions", json=body)
            except httpx.HTTPError:
                return  # the server was killed


def _kill_while_writing(process: subprocess.Popen[str], cassette: Path) -> bool:
    """SIGKILL the server as soon as one of its atomic writes is under way."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if stale_temporaries(cassette):
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)
            return True
    os.kill(process.pid, signal.SIGKILL)
    process.wait(5)
    return False


@pytest.mark.asyncio
async def test_a_cleanup_cancelled_past_the_grace_still_saves_every_recording(
    tmp_path: Path,
) -> None:
    # A stopping server cancels its cleanup at --grace + 1 s. The last save ran on in a thread,
    # but its later turns (the recordings that came while the first ran) never did, and the
    # process exited: 3,001 of 3,030 interactions on disk, no word of the rest. The cleanup now
    # ends only once everything recorded is on disk, cancelled or not.
    from aiohttp import web

    from mockai.cassette.record import UpstreamSource

    path = tmp_path / "c.yaml"
    _big_cassette(path, 300)  # (each save writes ~2.5 MB: several turns of the loop)
    loaded = CassetteFile.load(path)
    recorder = CassetteRecorder(path, RecordMode.NEW_EPISODES, loaded, Scrubber())
    source = UpstreamSource("http://127.0.0.1:9/v1", recorder=recorder)
    lifespan = source.lifespan(web.Application())
    await lifespan.__anext__()
    recorder.add(_embedding(1000))
    await asyncio.sleep(0)  # the first save starts...
    for number in range(1001, 1030):  # ...and these come while it runs
        recorder.add(_embedding(number))
    cleanup = asyncio.ensure_future(lifespan.__anext__())
    await asyncio.sleep(0)
    for _ in range(3):  # cancelled, as shut_down cancels it past the grace
        cleanup.cancel()
        await asyncio.sleep(0.01)
    with pytest.raises((asyncio.CancelledError, StopAsyncIteration)):
        await cleanup
    # As soon as the cleanup is over (the process would exit now), everything is on disk.
    assert len(interactions(path)) == 330


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", [RecordMode.NEW_EPISODES, RecordMode.ALL])
async def test_recording_through_a_link_records_into_the_cassette_it_names(
    tmp_path: Path, mode: RecordMode
) -> None:
    # A save was renamed onto the link: the link became a file of its own, and the shared
    # cassette it named never got the recordings (in `all` mode its `.bak` went beside the link).
    shared = tmp_path / "shared"
    shared.mkdir()
    real = shared / "c.yaml"
    CassetteFile.save(real, CassetteFile.dumps(Cassette(real, [_embedding(0)])))
    link = tmp_path / "link.yaml"
    link.symlink_to(Path("shared") / "c.yaml")
    recorder = CassetteRecorder(link, mode, CassetteFile.load(link), Scrubber())
    recorder.add(_embedding(1))
    await recorder.flush()
    assert link.is_symlink() and link.resolve() == real.resolve()
    held = [json.loads(i.request_body)["input"] for i in interactions(real)]
    assert held == ["old 0", "old 1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.yaml", "shared"]
    backed_up = ["c.yaml", "c.yaml.bak"] if mode is RecordMode.ALL else ["c.yaml"]
    assert sorted(p.name for p in shared.iterdir()) == backed_up
