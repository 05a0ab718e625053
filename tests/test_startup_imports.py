"""What a plain `mockai serve` imports: the modules it needs, and none of the machinery that loads
on first use (scenarios, cassettes, the stores, the other endpoints' codecs and generators, the
other providers' profiles, the heavy libraries). Starting fast (docs/performance.md, "Startup")
depends on it, so a change that imports more at start fails here and has to say why."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

# Runs the real command (`mockai.cli.main`, as `mockai serve --quiet` does) in the main thread;
# a thread waits until it answers, asks one chat completion and `/v1/models` (what a user and
# bench/perf.py ask first), prints every module the process holds, and stops it with SIGTERM.
PROBE = textwrap.dedent(
    """
    import json, os, signal, socket, sys, threading, time, urllib.request

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]

    def probe():
        base = f"http://127.0.0.1:{port}"
        for _ in range(3000):
            try:
                urllib.request.urlopen(base + "/_mockai/health", timeout=5).read()
                break
            except OSError:
                time.sleep(0.01)
        chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
        asked = urllib.request.Request(
            base + "/v1/chat/completions",
            data=json.dumps(chat).encode(),
            headers={"Content-Type": "application/json"},
        )
        answers = [
            json.load(urllib.request.urlopen(asked, timeout=30)),
            json.load(urllib.request.urlopen(base + "/v1/models", timeout=30)),
        ]
        print(json.dumps({"answers": answers, "modules": sorted(sys.modules)}), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=probe, daemon=True).start()
    from mockai.cli import main

    sys.exit(main(["serve", "--port", str(port), "--quiet"] + sys.argv[1:]))
    """
)

HEAVY_LIBRARIES = {
    "faker",
    "jinja2",
    "jsonschema",
    "numpy",
    "rstr",
    "vcr",
    "yaml",
    "PIL",
    "av",
    "redis",
    "watchfiles",
}

# Every mockai module a plain server holds after its first chat answer and its model list. A
# new module here costs every `mockai serve` its import: if every server needs it, add it and say
# so in the commit (with the startup figure of bench/startup.py before and after).
PLAIN_SERVER = {
    "mockai",
    "mockai.api",
    "mockai.api.base",
    "mockai.api.codecs",
    "mockai.api.models",
    # the chat codec, loaded by the first chat request:
    "mockai.api.chat",
    "mockai.api.chat_audio",  # (its checks run on every chat request; its sound comes later)
    "mockai.api.common",
    "mockai.api.fieldrules",
    "mockai.api.logprobs",
    "mockai.api.obfuscation",
    "mockai.api.reasoning",
    "mockai.api.schemacheck",
    "mockai.api.shaping",
    "mockai.api.spec_fields",
    "mockai.backend",
    "mockai.backend.base",
    "mockai.backend.memory",
    "mockai.buildinfo",
    "mockai.catalog",
    "mockai.cli",
    "mockai.config",
    "mockai.console",
    "mockai.delivery",
    "mockai.delivery.chaos",
    "mockai.delivery.deliver",
    "mockai.delivery.faults",
    "mockai.delivery.outbox",
    "mockai.delivery.ratelimit",
    "mockai.delivery.timing",
    "mockai.errors",
    "mockai.generate",
    "mockai.generate.budget",
    "mockai.generate.fallback",
    "mockai.generate.prompted",
    "mockai.generate.prose",
    "mockai.generate.tools",
    "mockai.hints",
    "mockai.pipeline",
    "mockai.pipeline.decide",
    "mockai.pipeline.exchange",
    "mockai.pipeline.fingerprint",
    "mockai.pipeline.journal",
    "mockai.pipeline.parsed",
    "mockai.pipeline.reply",
    "mockai.pipeline.run",
    "mockai.pipeline.sources",
    "mockai.pipeline.stored",
    "mockai.pipeline.uploads",
    "mockai.pipeline.workload",
    "mockai.profiles",
    "mockai.profiles.base",
    "mockai.profiles.openai",
    "mockai.profiles.places",
    "mockai.records",
    "mockai.scenario",
    "mockai.scenario.book",
    "mockai.server",
    "mockai.server.admin",
    "mockai.server.app",
    "mockai.server.heap",
    "mockai.server.intake",
    "mockai.server.lazyroutes",
    "mockai.server.metrics",
    "mockai.server.routes",
    "mockai.server.serving",
    "mockai.server.sites",
    "mockai.server.state",
    "mockai.server.lane",
    "mockai.server.unreadable",
    "mockai.stores",
    "mockai.stores.kept",
    "mockai.tokens",
    "mockai.wire",
    "mockai.wire.cors",
    "mockai.wire.credentials",
    "mockai.wire.loopback",
    "mockai.wire.errors",
    "mockai.wire.events",
    "mockai.wire.ids",
    "mockai.wire.jsonbytes",
    "mockai.wire.outgoing",
    "mockai.wire.sse",
    "mockai.wire.usage",
}

# What must load only when used (each named here so the failure says which machinery came back).
ON_FIRST_USE = [
    "mockai.scenario.loader",  # scenario files, runtime rules
    "mockai.scenario.rules",
    "mockai.scenario.matchers",
    "mockai.scenario.templates",
    "mockai.scenario.nearmiss",
    "mockai.cassette",  # --cassette, --upstream
    "mockai.check",  # mockai check
    "mockai.pipeline.batch",  # /v1/batches
    "mockai.stores.batches",  # the stores: on their first route
    "mockai.stores.files",
    "mockai.stores.responses",
    "mockai.stores.conversations",
    "mockai.stores.completions",
    "mockai.stores.images",
    "mockai.api.responses",  # the other endpoints' codecs
    "mockai.api.embeddings",
    "mockai.api.images",
    "mockai.api.transcriptions",
    "mockai.api.batches",
    "mockai.api.files",
    "mockai.generate.embeddings",  # and generators
    "mockai.generate.moderation",
    "mockai.generate.images",
    "mockai.generate.audio",
    "mockai.profiles.hooks",  # other providers' profiles
    "mockai.profiles.groq",
    "mockai.profiles.azure",
    "mockai.server.background",  # MockServer (tests), --watch, the access log
    "mockai.server.reload",
    "mockai.server.logs",
    "mockai.wire.multipart",  # forms
]


def _probe(*options: str) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("{"))
    result: dict[str, list[str]] = json.loads(line)
    return result


def test_a_plain_mockai_serve_imports_only_what_it_needs() -> None:
    probed = _probe()
    chat, models = probed["answers"]
    assert chat["object"] == "chat.completion" and chat["choices"][0]["message"]["content"]
    assert models["object"] == "list" and models["data"]
    modules = set(probed["modules"])
    assert not {m.split(".")[0] for m in modules} & HEAVY_LIBRARIES
    loaded = {m for m in modules if m == "mockai" or m.startswith("mockai.")}
    came_back = [m for m in ON_FIRST_USE if m in loaded]
    assert not came_back, f"loaded at start although only used later: {came_back}"
    assert loaded <= PLAIN_SERVER, (
        f"new at start (see PLAIN_SERVER): {sorted(loaded - PLAIN_SERVER)}"
    )


def test_what_a_server_uses_still_loads_when_it_is_asked_for(tmp_path: Path) -> None:
    """The lazy machinery is there when used: a server given a scenario file imports the
    scenario loader (and answers from it), which a plain one does not."""
    scenario = tmp_path / "hi.yaml"
    scenario.write_text(
        "mockai: 1\nrules:\n  - name: hi\n    match: {user: Hi}\n    reply: {content: scripted}\n"
    )
    probed = _probe("--scenario", str(scenario))
    chat, _ = probed["answers"]
    assert chat["choices"][0]["message"]["content"] == "scripted"
    assert {"mockai.scenario.loader", "mockai.scenario.rules"} <= set(probed["modules"])


def test_mockai_check_of_scenario_files_loads_no_server(tmp_path: Path) -> None:
    """`mockai check` of scenario files needs the loader, not the server: no aiohttp, no vcrpy
    (which imports aiohttp), no mockai.server module."""
    scenario = tmp_path / "ok.yaml"
    scenario.write_text("mockai: 1\nrules:\n  - name: a\n    reply: {content: x}\n")
    code = (
        "import json, sys; from mockai.cli import main; code = main(['check', sys.argv[1]]); "
        "print(json.dumps([code, sorted(sys.modules)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(scenario)], capture_output=True, text=True, check=True
    )
    exit_code, modules = json.loads(done.stdout.splitlines()[-1])
    assert exit_code == 0
    assert not {m.split(".")[0] for m in modules} & {"aiohttp", "vcr"}
    assert not [m for m in modules if m.startswith("mockai.server")]
