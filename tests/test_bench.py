"""bench/perf.py, the headline benchmark, runs as a user runs it: a short version of three cases;
bench/instructions.py (instructions per request under callgrind), bench/web_layer.py (what
aiohttp's web layer costs), bench/startup.py, bench/uploads.py and bench/batches.py too.

What it measures is reported by hand (docs/performance.md); this keeps the one command working:
wrk found, both servers started and pinned, mockai's own bytes served by the bare app, and the
figures written as JSON.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_bench(
    script: str, *args: str, cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """`python bench/<script> <args>` as a user runs it; it must exit 0."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


# (the benchmark's own bound, not pytest-timeout's 120 s: a loaded machine takes longer)
@pytest.mark.timeout(330)
def test_the_benchmark_runs_and_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "perf.json"
    # (the suite writes bytecode, tests/conftest.py: the startup figure compiles mockai's
    # modules first and must leave the .pyc files it found)
    bytecode = set((ROOT / "mockai").rglob("*.pyc"))
    run = run_bench(
        "perf.py",
        *("--seconds", "1", "--rounds", "1", "--startups", "1", "--warmup", "0"),
        *("--cases", "chat,stream,rules", "--json", str(out)),
        cwd=tmp_path,
        timeout=300,
    )
    figures = json.loads(out.read_text())
    rows = {row["case"]: row for row in figures["rows"]}
    assert set(rows) == {"chat", "stream", "rules"}
    for row in rows.values():
        assert row["errors"] == 0, row  # every answer a 2xx, from both servers
        assert row["bare"] > 0 and row["mockai"] > 0
        assert row["ratio"] > 0 and abs(row["ratio"] - row["rounds"][0]) < 0.001  # one round
    assert rows["stream"]["unit"] == "chunks/s" and rows["stream"]["ttft_ms"]
    # The 20-rule case is also run side by side with plain chat (a round: one load of each).
    assert len(rows["rules"]["beside_chat"]) == 1 and rows["rules"]["beside_chat"][0] > 0
    assert not rows["chat"]["beside_chat"]
    assert "side by side with plain chat: " in run.stdout
    assert 0 < figures["startup_s"][0] < 30
    assert 0 < figures["startup_compiled_s"][0] < 30
    assert bytecode <= set((ROOT / "mockai").rglob("*.pyc"))
    assert {"idle", "after, at once", "after", "bare idle", "bare after"} <= figures[
        "rss_mib"
    ].keys()
    assert "ratio" in run.stdout and "startup" in run.stdout  # the printed table
    assert "startup, byte-compiled" in run.stdout


def test_the_startup_timer_launches_the_server_and_reports_its_first_answer() -> None:
    """bench/startup.py (launch of `mockai serve` to its first chat answer) keeps working."""
    run = run_bench("startup.py", "--runs", "1", cwd=ROOT, timeout=120)
    summary = run.stdout.strip().splitlines()[-1]
    assert summary.startswith("median ") and "(/v1/chat/completions)" in summary, summary
    assert 0 < float(summary.split()[1]) < 30


def test_the_upload_benchmark_loads_the_server_with_and_without_its_budget() -> None:
    """bench/uploads.py (peak memory of simultaneous large uploads) keeps working."""
    run = run_bench(
        "uploads.py", "--uploads", "4", "--mb", "2", "--budget-mb", "3", cwd=ROOT, timeout=120
    )
    lines = run.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines[:2]] == ["budget", "no"]
    assert all("statuses [200]" in line for line in lines[:2]), lines
    assert lines[-1].startswith("peak with the budget / without: ")


def test_the_batch_benchmark_answers_and_downloads_a_batch() -> None:
    """bench/batches.py (memory of a batch of large answers) keeps working, and with a bound on
    files smaller than the output, the lines past it fail."""
    run = run_bench("batches.py", "--lines", "60", "--file-mb", "1", cwd=ROOT, timeout=120)
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("batch of 60 embeddings lines: completed"), lines
    counts = re.search(r"completed=(\d+), failed=(\d+), total=60", lines[0])
    assert counts is not None and int(counts[1]) + int(counts[2]) == 60 and int(counts[2]) > 0
    assert [line.split()[0] for line in lines[1:]] == ["output", "idle", "peak", "peak"]


# (the benchmark's own bound, not pytest-timeout's 120 s: a loaded machine takes longer)
@pytest.mark.timeout(330)
def test_the_web_layer_split_loads_three_servers_with_the_same_answer(tmp_path: Path) -> None:
    """bench/web_layer.py loads a raw protocol, the bare app and mockai with the chat request:
    every answer a 2xx of the right length (wrk counts no errors), and the three in the order
    of the CPU they spend a request (~18, ~65 and ~150 us on the project's machine: a margin a
    busy machine does not close, where it may slow one load's rate more than another's)."""
    out = tmp_path / "web_layer.json"
    run = run_bench(
        "web_layer.py",
        *("--seconds", "1", "--rounds", "1", "--warmup", "0", "--json", str(out)),
        cwd=tmp_path,
        timeout=300,
    )
    figures = json.loads(out.read_text())
    assert figures["errors"] == 0, figures
    rps, cpu = figures["rps"], figures["cpu_us"]
    assert min(rps.values()) > 0, figures
    assert 0 < cpu["raw"] < cpu["bare"] < cpu["mockai"], figures
    assert figures["web_layer_us"] == cpu["bare"] - cpu["raw"]
    assert figures["pipeline_us"] == cpu["mockai"] - cpu["bare"]
    assert figures["allowed_us"] == cpu["bare"] / 0.8 - cpu["bare"]
    assert "aiohttp's web layer" in run.stdout and "would have" in run.stdout


# (the benchmark's own bound, not pytest-timeout's 120 s: a loaded machine takes longer)
@pytest.mark.timeout(330)
def test_the_instruction_count_measures_both_servers(tmp_path: Path) -> None:
    """bench/instructions.py runs mockai and the bare app under callgrind and counts per request:
    deterministic figures, so both are positive and mockai (which does more than serve bytes)
    executes more instructions per request than the bare app serving its bytes. (The chat case
    alone: each further server started under callgrind costs ~7 s of the suite's time.)"""
    out = tmp_path / "instructions.json"
    run = run_bench(
        "instructions.py",
        *("--cases", "chat", "--requests", "20", "--warmup", "10", "--json", str(out)),
        cwd=tmp_path,
        timeout=300,
    )
    figures = json.loads(out.read_text())
    chat = figures["chat"]
    # The bare app's asyncio loop alone is ~10^5 instructions a request; either figure far
    # below that would mean the requests were not counted.
    assert 50_000 < chat["bare"] < chat["mockai"] < 20_000_000, chat
    assert abs(chat["ratio"] - chat["bare"] / chat["mockai"]) < 1e-9
    assert "ratio" in run.stdout and "chat" in run.stdout  # the printed table


def test_the_timing_benchmark_times_every_chunk_both_ways() -> None:
    """bench/timing_fidelity.py starts a server, runs its concurrent paced streams and reports
    each chunk timed by the kernel's receive time and by its read (no timing is asserted: the
    figures are the benchmark's to report)."""
    run = run_bench(
        "timing_fidelity.py",
        *("--streams", "12", "--chunks", "4", "--ttft", "0.05", "--gap", "0.01"),
        cwd=ROOT,
        timeout=120,
    )
    out = run.stdout
    assert "12 concurrent streams, ttft 50 ms, chunk_delay 10 ms" in out
    assert "as read by this client:" in out
    if sys.platform == "linux":
        assert "as received by the kernel (SO_TIMESTAMPNS" in out
    # Every stream's every event was seen: 12 first chunks, and a gap between each pair after.
    assert out.count("time to first chunk    n=   12") == (2 if sys.platform == "linux" else 1)
    events = int(out.split(" events (")[0].rsplit(" ", 1)[1])
    assert events >= 12 * 4
    assert f"gap between chunks     n={events - 12:>5}" in out
