"""The container files say what mockai does: the Dockerfile's entrypoint and health check run as
written (here, without Docker: the same commands with the image's environment), and the compose
file and Kubernetes manifests only use options, variables, ports and paths mockai has.

(The files' syntax and best practices are linted in CI: hadolint, kubernetes-validate,
check-jsonschema with the compose spec.)
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomllib
import yaml
from service_support import free_port, repo_root

from mockai.cli import build_parser
from mockai.config import env_variables

ROOT = repo_root()
DEPLOY = ROOT / "deploy"


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        current += stripped.removesuffix("\\").strip() + " "
        if not stripped.endswith("\\"):
            joined.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined]


def _exec_form(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(part, str) for part in value)
    return value


def _env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, args in instructions:
        if name == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


DOCKERFILE = _instructions(ROOT / "Dockerfile")


def _one(name: str) -> str:
    found = [args for instruction, args in DOCKERFILE if instruction == name]
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


def test_the_image_is_slim_python_and_runs_as_someone_else_than_root() -> None:
    base = _one("FROM")
    assert base.startswith("python:") and base.endswith("-slim")
    user = _one("USER")
    assert user not in ("root", "0")
    assert int(user) >= 1000
    assert _one("EXPOSE") == _env(DOCKERFILE)["MOCKAI_PORT"]


def test_the_entrypoint_serves_and_the_healthcheck_says_so() -> None:
    entrypoint = _exec_form(_one("ENTRYPOINT"))
    health_args = _one("HEALTHCHECK")
    health = _exec_form(health_args[health_args.index("CMD") + 3 :].strip())
    assert entrypoint == ["mockai", "serve"]
    assert health == ["mockai", "health"]
    # The image's environment, on loopback and a free port instead of every interface and 8000.
    env = {**os.environ, **_env(DOCKERFILE), "MOCKAI_HOST": "127.0.0.1"}
    env["MOCKAI_PORT"] = str(free_port())
    bin_dir = Path(sys.executable).parent  # the console scripts of this environment

    def run_health() -> subprocess.CompletedProcess[str]:
        command = [str(bin_dir / health[0]), *health[1:]]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)

    assert run_health().returncode == 1  # nothing serves yet: unhealthy
    server = subprocess.Popen(
        [str(bin_dir / entrypoint[0]), *entrypoint[1:], "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert f"listening on http://127.0.0.1:{env['MOCKAI_PORT']}" in banner
        deadline = time.monotonic() + 20
        while (done := run_health()).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done.returncode == 0, done.stderr
        assert "/_mockai/health: ok" in done.stdout
        answer = httpx.post(
            f"http://127.0.0.1:{env['MOCKAI_PORT']}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert answer.status_code == 200
    finally:
        server.terminate()
        assert server.wait(30) == 0  # docker stop: SIGTERM, a clean exit
        assert server.stdout is not None
        server.stdout.close()


def _serve_options(args: list[str]) -> Any:
    """`args` as `mockai serve` parses them (SystemExit on an unknown or invalid option)."""
    return build_parser().parse_args(["serve", *args])


def _mockai_variables(pairs: dict[str, Any]) -> None:
    known = env_variables()
    unknown = [name for name in pairs if name.startswith("MOCKAI_") and name not in known]
    assert unknown == []


def test_the_compose_example_uses_real_options_and_its_redis() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    mockai = services["mockai"]
    options = _serve_options(mockai["command"])
    assert options.state == "redis://redis:6379/0" and "redis" in services
    assert options.workers == 2 and options.watch
    _mockai_variables(mockai["environment"])
    grace = float(mockai["environment"]["MOCKAI_GRACE"])
    assert grace < 10  # compose's stop timeout: streams drain before the kill
    assert mockai["ports"] == ["8000:8000"]
    assert services["app"]["environment"]["OPENAI_BASE_URL"] == "http://mockai:8000/v1"
    assert services["app"]["depends_on"]["mockai"]["condition"] == "service_healthy"


def _documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()) if doc]


def test_the_kubernetes_manifests_probe_health_and_share_redis() -> None:
    docs = {(doc["kind"], doc["metadata"]["name"]): doc for doc in _documents("mockai.yaml")}
    redis = {(doc["kind"], doc["metadata"]["name"]): doc for doc in _documents("redis.yaml")}
    deployment = docs[("Deployment", "mockai")]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    options = _serve_options(container["args"])
    redis_service = redis[("Service", "mockai-redis")]
    assert options.state == f"redis://mockai-redis:{redis_service['spec']['ports'][0]['port']}/0"
    assert deployment["spec"]["replicas"] > 1
    env = {item["name"]: item.get("value") for item in container["env"]}
    _mockai_variables(env)
    port = int(env["MOCKAI_PORT"])
    assert container["ports"][0]["containerPort"] == port
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/_mockai/health", "port": "http"}
    assert container["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] > options.grace
    assert options.admin_remote and "MOCKAI_ADMIN_TOKEN" in env  # remote admin needs the token
    service = docs[("Service", "mockai")]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    scenarios = docs[("ConfigMap", "mockai-scenarios")]["data"]
    assert all(yaml.safe_load(text)["mockai"] == 1 for text in scenarios.values())


@pytest.mark.parametrize("name", ["mockai.yaml", "redis.yaml"])
def test_every_manifest_names_its_part(name: str) -> None:
    for doc in _documents(name):
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mockai"


def test_the_image_copies_what_building_mockai_reads() -> None:
    # `pip install .` in the image builds from the copied files only: the build backend that
    # pyproject.toml names (backend-path) and setup.py must be among them, and .dockerignore
    # (everything out, then exceptions) must let each copied path into the build context.
    copied = set()
    for instruction, args in DOCKERFILE:
        if instruction == "COPY":
            *sources, _ = shlex.split(args)
            copied.update(source.rstrip("/") for source in sources)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    backend, licenses = (
        pyproject["build-system"]["backend-path"],
        pyproject["project"]["license-files"],
    )
    needed = {"pyproject.toml", "setup.py", "mockai", *backend, *licenses}
    assert needed <= copied, f"the Dockerfile does not copy {sorted(needed - copied)}"
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    assert "*" in lines
    allowed = {line[1:] for line in lines if line.startswith("!")}
    assert copied <= allowed, f".dockerignore leaves out {sorted(copied - allowed)}"
