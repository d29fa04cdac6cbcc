"""A real PostgreSQL server stopped and started again mid-study loses no metric row.

The machine's shared server at 127.0.0.1:5432 cannot be restarted under other tests, so
this test starts its own PostgreSQL (the same Debian binaries, a fresh cluster in a
temporary folder, run as the `postgres` user as the server refuses root), drives a study
against it with `hpo run`, stops the server with `pg_ctl stop -m fast` (every connection
is closed, as in a real restart or fail-over) while trials are reporting, keeps it down for
a few seconds, and starts it again. The driver must wait the outage out (its storage retry
window) and finish with every epoch of every trial stored exactly once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpo.storage.repository import Repository
from tests.execution.conftest import branin_spec

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateServer:
    """A throw-away PostgreSQL cluster this test may stop and start at will."""

    def __init__(self, root: Path, port: int) -> None:
        self.data = root / "data"
        self.port = port
        self.root = root

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            capture_output=True,
            text=True,
        )

    def init(self) -> None:
        assert PG_BIN is not None
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        assert PG_BIN is not None
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w",
            "-l", str(self.root / "server.log"), "start",
        )  # fmt: skip

    def stop(self) -> None:
        assert PG_BIN is not None
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def private_server() -> Iterator[PrivateServer]:
    if PG_BIN is None or shutil.which("runuser") is None:
        pytest.skip("needs Debian's PostgreSQL binaries and runuser to start a private server")
    try:
        subprocess.run(["id", "postgres"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        pytest.skip("needs the `postgres` system user to run a private PostgreSQL server")
    # The server runs as `postgres`, which cannot enter pytest's root-only tmp_path.
    root = Path(tempfile.mkdtemp(prefix="hpo-pg-restart-"))
    shutil.chown(root, "postgres", "postgres")
    server = PrivateServer(root, _free_port())
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _wait(predicate: Any, timeout: float, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the server may be down between checks
            if predicate():
                return
        if proc.poll() is not None:
            raise AssertionError(f"hpo run exited early ({proc.returncode}): {proc.stderr}")
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_real_postgresql_restart_mid_study_loses_no_metric_row(
    private_server: PrivateServer, tmp_path: Path
) -> None:
    epochs, trials = 6, 4
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            branin_spec(
                name="pg-restart",
                budget={"trials": trials, "max_epochs": epochs, "concurrency": 2},
                fixed={"sleep_s": 0.5},
            )
        )
    )
    url = private_server.url
    driver = subprocess.Popen(
        [sys.executable, "-m", "hpo", "run", str(spec), "--db", url, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=dict(os.environ),
    )
    repo = Repository(url)
    try:

        def reporting() -> bool:
            studies = repo.list_studies()
            return bool(studies) and any(t.epochs_run >= 1 for t in repo.list_trials(studies[0].id))

        _wait(reporting, 180, driver)
        repo.close()
        private_server.stop()
        time.sleep(4.0)  # trials keep reporting into the driver while the server is down
        assert driver.poll() is None, "the driver must wait the outage out"
        private_server.start()
        _, err = driver.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, err
    repo = Repository(url)
    try:
        (study,) = repo.list_studies()
        assert study.status == "completed"
        stored = repo.list_trials(study.id)
        assert [t.status for t in stored] == ["completed"] * trials
        for trial in stored:
            rows = repo.trial_metrics(trial.id, all_attempts=True)
            values = [(m.attempt, m.step) for m in rows if m.name == "value"]
            # Every epoch stored once: no row lost in the outage, none written twice.
            assert sorted(values) == [(1, step) for step in range(1, epochs + 1)]
    finally:
        repo.close()
