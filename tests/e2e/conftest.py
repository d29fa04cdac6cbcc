"""The deployment stack of docker/compose.yaml, brought up for real once per module.

`stack` builds what is missing (base stand-ins, the project's image), writes an env file
with fresh secrets, runs `compose up` with PostgreSQL, the Ray head, the API and two CPU
workers, and tears everything down (volumes included) afterwards. Where no engine can be
started the tests skip, saying why. Compose v1 (Debian's) and v2 are both driven through
the same file; the project name `hpo-e2e` keeps the test's containers apart from a real
deployment on the same engine.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import engine

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
PROJECT = "hpo-e2e"
IMAGE = "hpo-e2e/hpo:latest"
WHEELS = Path(os.environ.get("HPO_E2E_WHEELS", "/opt/wheels"))


@dataclass
class Stack:
    """A running stack: its REST endpoint and token, and handles on its containers."""

    env_file: Path
    base_url: str
    token: str
    compose_cmd: list[str]

    def compose(self, *args: str, timeout: float = 600) -> str:
        options = ["--env-file", str(self.env_file), "-p", PROJECT, "-f", str(COMPOSE_FILE)]
        proc = subprocess.run(
            [*self.compose_cmd, *options, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"compose {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def containers(self, service: str) -> list[str]:
        """Ids of the service's containers, running or not, oldest first."""
        out = engine.docker(
            "ps",
            "-a",
            "--filter",
            f"label=com.docker.compose.project={PROJECT}",
            "--filter",
            f"label=com.docker.compose.service={service}",
            "--format",
            "{{.ID}}",
        )
        return sorted(out.split(), key=lambda cid: self.inspect(cid)["Created"])

    def inspect(self, container: str) -> dict[str, Any]:
        doc = json.loads(engine.docker("inspect", container))
        assert isinstance(doc, list)
        return dict(doc[0])

    def hostname(self, container: str) -> str:
        return str(self.inspect(container)["Config"]["Hostname"])

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def get(self, path: str) -> Any:
        """GET, riding out the moments the API or its database is down."""
        for _ in range(120):
            try:
                return self.request("GET", path)
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                if isinstance(exc, urllib.error.HTTPError) and exc.code not in (502, 503):
                    raise
                time.sleep(1)
        raise AssertionError(f"GET {path}: the API did not answer for 2 minutes")

    def sql(self, query: str) -> list[list[str]]:
        """Rows of `query` run by psql inside the PostgreSQL container."""
        (pg,) = self.containers("postgres")
        out = engine.docker(
            "exec", pg, "psql", "-U", "hpo", "-d", "hpo", "-At", "-F", "\t", "-c", query
        )
        return [line.split("\t") for line in out.splitlines() if line]

    def ray_cpu_nodes(self) -> int:
        """Alive Ray nodes that offer CPUs (the workers), counted on the head."""
        (head,) = self.containers("ray-head")
        script = (
            "import ray; ray.init(address='auto', logging_level='ERROR');"
            "print(sum(1 for n in ray.nodes() if n['Alive'] and n['Resources'].get('CPU')))"
        )
        out = engine.docker("exec", head, "python3", "-c", script, check=False, timeout=120)
        lines = out.strip().splitlines()
        return int(lines[-1]) if lines and lines[-1].isdigit() else 0


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, RuntimeError, ValueError):
            pass
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
        return bool(resp.status == 200)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    try:
        engine.ensure_engine()
        compose_cmd = engine.compose_command()
        engine.ensure_base_images()
    except engine.EngineUnavailable as exc:
        pytest.skip(f"no Docker engine for the end-to-end test: {exc}")
    # The PostgreSQL stand-in builds while the project's image does (both mostly wait on
    # downloads).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        postgres = pool.submit(engine.ensure_postgres_image)
        with engine.serve_wheels(WHEELS, engine.bridge_gateway()) as find_links:
            engine.build_project_image(
                ROOT, IMAGE, [f"TORCH_FIND_LINKS={find_links}"] if find_links else []
            )
        postgres.result()

    port = engine.free_port()
    token = secrets.token_hex(16)
    env_file = tmp_path_factory.mktemp("stack") / "e2e.env"
    settings = {
        "COMPOSE_PROJECT_NAME": PROJECT,
        "HPO_ENV_FILE": str(env_file),
        "POSTGRES_PASSWORD": secrets.token_hex(12),
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "HPO_API_TOKEN": token,
        "HPO_IMAGE": IMAGE,
        "HPO_POSTGRES_IMAGE": engine.POSTGRES,
        "HPO_PUBLISH_ADDRESS": "127.0.0.1",
        "HPO_PUBLISH_PORT": str(port),
        "HPO_RUNNERS": "1",
        # The studies run an example function of the hpo package (tests/e2e/test_stack.py).
        "HPO_ALLOWED_MODULES": "hpo.examples",
        "RAY_SHM_SIZE": "512mb",
    }
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    running = Stack(env_file, f"http://127.0.0.1:{port}", token, compose_cmd)
    try:
        running.compose("up", "-d", "--no-build", "--scale", "ray-worker-cpu=2")
        _wait(lambda: _healthy(running.base_url), 240, "the API's /healthz")
        _wait(lambda: running.ray_cpu_nodes() == 2, 180, "two CPU workers in the Ray cluster")
        yield running
    finally:
        # The services' last words, for a failure's post-mortem (pytest's basetemp).
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            logs = running.compose("logs", "--no-color", "--tail", "2000", timeout=120)
            (tmp_path_factory.getbasetemp() / "stack.log").write_text(logs)
        running.compose("down", "-v", "--remove-orphans", timeout=300)
        engine.docker("image", "prune", "-f", check=False)
