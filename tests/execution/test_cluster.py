"""A search given the address of a separately started two-node Ray cluster uses both nodes.

The cluster is two `ray start` processes on this machine (head + one worker node), with
Ray's token authentication on as in production; the test tears down exactly that
cluster's processes, never the test session's own Ray.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hpo.storage.repository import Repository
from tests.execution.conftest import branin_spec

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cluster_pids(marker: str) -> set[int]:
    """Processes whose command line names `marker`, and their children (Ray's agents)."""
    parents: dict[int, int] = {}
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents[int(entry.name)] = ppid
        if marker in cmdline:
            found.add(int(entry.name))
    return found | {pid for pid, ppid in parents.items() if ppid in found}


@pytest.fixture
def two_node_cluster(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    temp_dir = f"/tmp/hpo-cluster-{port}"
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    address = f"127.0.0.1:{port}"
    try:
        subprocess.run(
            [
                RAY,
                "start",
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                f"--temp-dir={temp_dir}",
                *common,
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [RAY, "start", f"--address={address}", *common],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield address
    finally:
        for pid in _cluster_pids(temp_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_search_on_a_two_node_cluster_records_each_trials_node(
    two_node_cluster: str, db_url: str, tmp_path: Path
) -> None:
    spec = branin_spec(
        name="cluster",
        budget={"trials": 4, "max_epochs": 2, "concurrency": 2},
        fixed={"sleep_s": 1.0},
    )
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    deadline = time.monotonic() + 60
    while True:  # the worker node registers with the head asynchronously
        status = subprocess.run(
            [RAY, "status", f"--address={two_node_cluster}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if status.stdout.count(" node_") >= 2 or time.monotonic() > deadline:
            break
        time.sleep(1)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "hpo",
            "run",
            str(path),
            "--db",
            db_url,
            "--ray-address",
            two_node_cluster,
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    repo = Repository(db_url)
    (study,) = repo.list_studies()
    trials = repo.list_trials(study.id)
    assert [t.status for t in trials] == ["completed"] * 4
    nodes = {t.provenance["node_id"] for t in trials}
    assert len(nodes) == 2, nodes
    assert all(t.provenance["node_ip"] and t.provenance["hostname"] for t in trials)
    repo.close()
