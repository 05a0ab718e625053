"""Run the Node clients of tests/node (installed from its lockfile by scripts/test-env) and read
what they saw: `run_script` runs one driver with a JSON spec and returns its JSON output."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).parent / "node"


def run_script(script: str, spec: dict[str, Any]) -> Any:
    """Run tests/node/`script` with `spec` (its one argument, as JSON); its printed JSON."""
    ready = shutil.which("node") is not None and (NODE_DIR / "node_modules" / "ai").is_dir()
    assert ready, "Node 20+ and tests/node/node_modules are needed: run scripts/test-env"
    done = subprocess.run(
        ["node", str(NODE_DIR / script), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)
