"""`hpo serve`: the refusal to expose an unauthenticated server, and end to end with Ray —
serve with one runner, submit a tiny Branin study, watch it finish, read the best trial."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from hpo.cli import app

TINY_BRANIN = {
    "name": "branin-e2e",
    "objective": {"metric": "value", "mode": "min"},
    "trainable": {"function": "hpo.examples.functions:branin"},
    "budget": {"trials": 3, "max_epochs": 2},
    "strategy": {"name": "random", "seed": 1},
    "space": {"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}},
}


def test_serve_refuses_public_bind_without_auth(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/hpo.db"
    refused = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--db", db, "--runners", "0"])
    assert refused.exit_code == 2
    assert "without authentication" in refused.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _hpo(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hpo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_serve_submit_watch_best(tmp_path: Path) -> None:
    if importlib.util.find_spec("hpo.execution.runner") is None:
        pytest.skip("hpo.execution.runner (start_runners) does not exist yet")
    port = _free_port()
    server = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HPO_ALLOWED_MODULES": "hpo.examples", "HPO_SERVER": server}
    spec = tmp_path / "branin.yaml"
    spec.write_text(yaml.safe_dump(TINY_BRANIN))
    log = (tmp_path / "serve.log").open("w")
    db = f"sqlite:///{tmp_path}/hpo.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo", "serve", "--port", str(port), "--db", db, "--runners", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{server}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "hpo serve did not come up"
            time.sleep(0.3)
        submitted = _hpo("submit", str(spec), env=env, timeout=60)
        assert submitted.returncode == 0, submitted.stderr
        study_id = submitted.stdout.strip()
        watched = _hpo("watch", study_id, env=env, timeout=300)
        assert watched.returncode == 0, watched.stderr + (tmp_path / "serve.log").read_text()
        assert "best trial #" in watched.stdout
        best = _hpo("best", study_id, env=env, timeout=60)
        assert best.returncode == 0, best.stderr
        config = yaml.safe_load(best.stdout.split("\n", 1)[1])
        assert -5 <= config["x1"] <= 10 and 0 <= config["x2"] <= 15
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
