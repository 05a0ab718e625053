"""Every code block of README.md and docs/*.md runs, as a reader would paste it.

One test per page runs its blocks in order in a scratch folder holding copies of `scenarios/` and
`cassettes/`, against a real `mockai serve`:

- `python`: a block defining `test_*` functions is a pytest-plugin example, a test file of its
  own, run with pytester (every test must pass; a page's examples share one pytest run); any
  other block runs as a script (`python file.py`).
- `bash` / `sh` / `shell`: run with `bash -euo pipefail`. A line that is only a `mockai serve ...`
  command starts that server in the background (stopping the page's previous one), and the
  page's later lines and blocks talk to it.
- `yaml`: a scenario or cassette, checked with `mockai check` (exit 0); `json`: parsed.
- `text`: shown, never run (output samples, error messages).

Before its first block each page has a plain `mockai serve` running, and every block gets
`MOCKAI`, `OPENAI_BASE_URL` and `OPENAI_API_KEY` pointing at the page's current server. Pages say
127.0.0.1:8000 (the default port); the runner substitutes the free port it serves on, and stands
a local mockai in for `https://api.openai.com/v1` (the tests never leave loopback).

An HTML comment on the line before a fence changes what happens to the block:

- `<!-- docs: file PATH -->` writes the block to PATH in the scratch folder (later blocks use it;
  a YAML scenario is still checked, Python still compiled);
- `<!-- docs: invalid PATH -->` (YAML only) a scenario that is wrong on purpose, written to PATH:
  `mockai check` must refuse it;
- `<!-- docs: fragment -->` (YAML only) a piece of a file: it must parse, nothing more;
- `<!-- docs: skip REASON -->` not run, for a reason the page cannot avoid (installing packages,
  the real API). The newcomer walk-through in docs/development.md covers the install commands.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from mockai import MockServer, cli

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

RUN = {"python", "bash", "sh", "shell", "javascript"}
CHECKED = {"yaml", "json"}
SHOWN = {"text"}
MARKERS = {"file", "invalid", "fragment", "skip"}

FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)\s*$")
MARKER = re.compile(r"^<!--\s*docs:\s*([\w-]+)\s*(.*?)\s*-->$")
SERVE = re.compile(r"^(?:\w+=\S*\s+)*mockai serve\b")
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
TIMEOUT = 120
UNUSED_PLUGINS = ("langsmith_plugin", "hypothesispytest", "xdist", "faker", "respx", "schemathesis")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marker: str | None = None
    argument: str = ""

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page.name
        return f"{page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of `page`, with the marker comment before each, if any."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, lang = opening.groups()
        end = index + 1
        while end < len(lines) and not lines[end].startswith(fence):
            end += 1
        previous = lines[index - 1].strip() if index else ""
        marked = MARKER.match(previous)
        found.append(
            Block(
                page,
                index + 1,
                lang,
                "\n".join(lines[index + 1 : end]) + "\n",
                marked.group(1) if marked else None,
                marked.group(2) if marked else "",
            )
        )
        index = end + 1
    return found


ALL = [block for page in PAGES for block in blocks(page)]


# --- what every block must say about itself ---------------------------------------------------


def test_the_pages_have_blocks() -> None:
    assert (ROOT / "README.md") in PAGES and len(PAGES) >= 8
    assert len(ALL) > 40


@pytest.mark.parametrize("block", ALL, ids=[b.where for b in ALL])
def test_every_block_says_how_it_is_checked(block: Block) -> None:
    assert block.lang in RUN | CHECKED | SHOWN, (
        f"{block.where}: fence language {block.lang!r}: use python, bash, javascript, yaml, "
        "json, or text for output that is only shown"
    )
    if block.marker is None:
        return
    assert block.marker in MARKERS, f"{block.where}: unknown marker {block.marker!r}"
    if block.marker == "skip":
        assert len(block.argument) > 10, f"{block.where}: say why the block is not run"
    if block.marker in ("fragment", "invalid"):
        assert block.lang == "yaml", f"{block.where}: only YAML blocks are {block.marker}"
    if block.marker in ("file", "invalid"):
        assert block.argument and not block.argument.startswith("/"), block.where


# --- running a page ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Page:
    """The scratch folder, servers and environment one page's blocks run in."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.work = pytester.path / "work"
        self.work.mkdir()
        # Plugin examples run from pytester's folder, the page's commands from `work`: both
        # hold the example scenarios and cassettes the pages name.
        for where in (self.work, pytester.path):
            for folder in ("scenarios", "cassettes"):
                shutil.copytree(ROOT / folder, where / folder)
        pytester.makeini(INI)
        self.examples: list[Block] = []
        self.server: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.upstream: MockServer | None = None

    def ensure_server(self) -> None:
        """The page's plain `mockai serve`, started before the first block that may use it."""
        if self.server is None:
            self.serve("mockai serve")

    # servers

    def serve(self, command: str) -> None:
        """Start `command` (a `mockai serve` line) in the background, in place of the last."""
        self.stop()
        self.port = free_port()
        command = re.sub(r"--port[= ]\d+", f"--port {self.port}", command)
        env = {**self.env(), "MOCKAI_PORT": str(self.port), "MOCKAI_QUIET": "1"}
        log = self.work / f"serve-{self.port}.log"
        with log.open("wb") as output:
            self.server = subprocess.Popen(
                ["bash", "-c", self.substituted(command)],
                cwd=self.work,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise AssertionError(f"`{command}` exited:\n{log.read_text()}")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/_mockai/health", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"`{command}` did not answer in 30 s:\n{log.read_text()}")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()
        self.server = None

    def close(self) -> None:
        self.stop()
        if self.upstream is not None:
            self.upstream.stop()

    # the environment and the text as run

    def env(self) -> dict[str, str]:
        base = f"http://127.0.0.1:{self.port}"
        bin_dir = str(Path(sys.executable).parent)
        return {
            **os.environ,
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "MOCKAI": base,
            "OPENAI_BASE_URL": base + "/v1",
            "OPENAI_API_KEY": "sk-test",
            "PYTHONPATH": "",
            # Plugins the examples do not use, which other test dependencies install: each
            # costs every pytest run a second or more of imports.
            "PYTEST_ADDOPTS": " ".join(f"-p no:{name}" for name in UNUSED_PLUGINS),
        }

    def substituted(self, text: str) -> str:
        text = re.sub(r"(127\.0\.0\.1|localhost):8000\b", f"127.0.0.1:{self.port}", text)
        if "https://api.openai.com/v1" in text:
            if self.upstream is None:
                self.upstream = MockServer(log_requests=False).start()
            text = text.replace("https://api.openai.com/v1", self.upstream.url)
        return text

    def run(self, argv: list[str], block: Block, cwd: Path | None = None) -> None:
        result = subprocess.run(
            argv,
            cwd=cwd or self.work,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{block.where}: {block.lang} block exited {result.returncode}\n"
                f"--- block ---\n{block.text}--- stdout ---\n{result.stdout[-4000:]}"
                f"--- stderr ---\n{result.stderr[-4000:]}"
            )

    # blocks

    def execute(self, block: Block) -> None:
        if block.marker == "skip" or block.lang in SHOWN:
            return
        if block.marker == "invalid":
            path = self.work / block.argument
            path.write_text(block.text, encoding="utf-8")
            assert cli.main(["check", str(path)]) == 1, f"{block.where}: mockai check accepts it"
            return
        if block.marker == "file":
            path = self.work / block.argument
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text, encoding="utf-8")
            if block.lang == "python":
                compile(block.text, block.where, "exec")
            elif block.lang == "yaml" and _is_mockai_file(block.text):
                self.check(path, block)
            return
        runners = {
            "python": self.run_python,
            "bash": self.run_bash,
            "sh": self.run_bash,
            "shell": self.run_bash,
            "yaml": self.run_yaml,
            "json": self.run_json,
            "javascript": self.run_javascript,
        }
        runners[block.lang](block)

    def run_python(self, block: Block) -> None:
        if not re.search(r"^(?:async )?def test_\w+", block.text, flags=re.M):
            self.ensure_server()
            script = self.work / f"block_{block.line}.py"
            script.write_text(self.substituted(block.text), encoding="utf-8")
            self.run([sys.executable, script.name], block)
            return
        # A pytest-plugin example: its own test file, run with the page's others at the end
        # (one pytest start-up per page; they use their own servers, not the page's).
        folder = self.pytester.path / "examples"
        folder.mkdir(exist_ok=True)
        path = folder / f"test_line_{block.line}.py"
        path.write_text(self.substituted(block.text), encoding="utf-8")
        self.examples.append(block)

    def run_examples(self) -> None:
        """Run the page's pytest-plugin examples; every test of every block must pass."""
        if not self.examples:
            return
        disabled = [arg for name in UNUSED_PLUGINS for arg in ("-p", f"no:{name}")]
        result = self.pytester.runpytest_subprocess(
            str(self.pytester.path / "examples"), "-p", "no:cacheprovider", "-rA", *disabled
        )
        for block in self.examples:
            tests = re.findall(r"^(?:async )?def (test_\w+)", block.text, flags=re.M)
            for test in tests:
                node = f"PASSED examples/test_line_{block.line}.py::{test}"
                assert node in result.outlines, f"{block.where}: {test} did not pass\n" + "\n".join(
                    result.outlines[-80:]
                )

    def run_javascript(self, block: Block) -> None:
        """An ES module run by Node with the suite's Node clients (tests/node's lockfile): a
        `node:test` file with `node --test`, anything else as a script against the page's
        server."""
        modules = self.work / "node_modules"
        if not modules.exists():  # (ES modules find packages from their own folder up)
            modules.symlink_to(ROOT / "tests" / "node" / "node_modules", target_is_directory=True)
        script = self.work / f"block_{block.line}.mjs"
        script.write_text(self.substituted(block.text), encoding="utf-8")
        if '"node:test"' in block.text:
            self.run(["node", "--test", script.name], block)
            return
        self.ensure_server()
        self.run(["node", script.name], block)

    def run_bash(self, block: Block) -> None:
        self.ensure_server()
        pending: list[str] = []
        for line in _commands(block.text):
            if _starts_a_server(line):
                self.flush(pending, block)
                pending = []
                self.serve(line.strip())
            else:
                pending.append(line)
        self.flush(pending, block)

    def flush(self, lines: list[str], block: Block) -> None:
        if any(line.strip() and not line.strip().startswith("#") for line in lines):
            script = "\n".join(lines) + "\n"
            self.run(["bash", "-euo", "pipefail", "-c", self.substituted(script)], block)

    def run_yaml(self, block: Block) -> None:
        if block.marker == "fragment":
            yaml.safe_load(block.text)
            return
        assert _is_mockai_file(block.text), (
            f"{block.where}: a YAML block is a scenario (`mockai: 1`) or a cassette "
            "(`interactions:`), checked with mockai check; mark a piece of one `fragment`"
        )
        path = self.work / f"block_{block.line}.yaml"
        path.write_text(block.text, encoding="utf-8")
        self.check(path, block)

    def check(self, path: Path, block: Block) -> None:
        # `mockai check`, in this process (the CLI's own entry point; a subprocess per block
        # would cost a second of imports each).
        assert cli.main(["check", str(path)]) == 0, f"{block.where}: mockai check refuses it"

    def run_json(self, block: Block) -> None:
        json.loads(block.text)


def _starts_a_server(line: str) -> bool:
    """A line that is only a `mockai serve ...` command (not piped, chained or `--help`)."""
    command = line.split(" #", 1)[0].strip()
    return bool(SERVE.match(command)) and not re.search(r"[|;&]|--help", command)


def _is_mockai_file(text: str) -> bool:
    loaded = yaml.safe_load(text)
    return isinstance(loaded, dict) and ("mockai" in loaded or "interactions" in loaded)


def _commands(text: str) -> Iterator[str]:
    """The block's lines, with backslash continuations joined (a serve line may span several)."""
    joined = ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            joined += line.rstrip()[:-1] + " "
            continue
        yield joined + line
        joined = ""
    if joined:
        yield joined


@pytest.mark.timeout(600)  # a page is a dozen processes; generous for a busy 2-core machine
@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_block_of_the_page_runs(pytester: pytest.Pytester, page: Path) -> None:
    runner = Page(pytester)
    try:
        for block in blocks(page):
            runner.execute(block)
        runner.run_examples()
    finally:
        runner.close()


BROKEN = {  # a page with one block -> what the failure says
    "no import": ("```python\nclient = openai.OpenAI()\n```\n", "NameError"),
    "a literal ...": (
        "```python\nimport openai\n\nopenai.OpenAI().chat.completions.create(...)\n```\n",
        "TypeError",
    ),
    "a failing command": ("```bash\ncurl -sf $MOCKAI/no/such/route\n```\n", "exited 22"),
    "a bad scenario": (
        "```yaml\nmockai: 1\nrules:\n  - match: {usr: hi}\n    reply: hello\n```\n",
        "mockai check refuses it",
    ),
    "a failing example": (
        "```python\ndef test_wrong(mockai):\n    assert mockai.requests\n```\n",
        "test_wrong did not pass",
    ),
    "an unmarked language": ("```\nmockai serve\n```\n", "fence language ''"),
}


@pytest.mark.parametrize(("text", "failure"), BROKEN.values(), ids=BROKEN.keys())
def test_a_block_that_cannot_be_pasted_fails(
    pytester: pytest.Pytester, text: str, failure: str
) -> None:
    page = pytester.path / "page.md"
    page.write_text("# A page\n\n" + text, encoding="utf-8")
    runner = Page(pytester)
    with pytest.raises(AssertionError, match=re.escape(failure)):
        try:
            for block in blocks(page):
                test_every_block_says_how_it_is_checked(block)
                runner.execute(block)
            runner.run_examples()
        finally:
            runner.close()


# --- the site ---------------------------------------------------------------------------------


def test_the_site_builds_with_no_warning(tmp_path: Path) -> None:
    # --strict: a broken link, a missing anchor or a page left out of the nav fails the build.
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "index.html").exists()


def _slug(heading: str) -> str:
    """The anchor GitHub and mkdocs give a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def test_the_readme_links_resolve() -> None:
    # The README is not part of the site, so mkdocs does not check it: every relative link must
    # name a file of the repository, and an anchor one of its headings.
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if re.match(r"https?://", link):
            continue
        target, _, anchor = link.partition("#")
        path = ROOT / target if target else ROOT / "README.md"
        assert path.exists(), f"README links to {link}: no such file"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"README links to {link}: no anchor"
