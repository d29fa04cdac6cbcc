"""Runners: claim queued studies, run each in a driver process, survive kill -9, share a
database with other runners. Real processes on the test session's Ray (drivers connect
to it: no Ray start per study), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hpo import service
from hpo.execution.runner import Runner, start_runners, stop_runners
from hpo.spec import load_spec
from hpo.storage.repository import Repository, StudyRecord
from tests.execution.conftest import branin_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_address(ray_session: None) -> str:
    import ray

    return str(ray.get_runtime_context().gcs_address)


@pytest.fixture
def repo(db_url: str) -> Iterator[Repository]:
    with Repository(db_url) as repository:
        yield repository


def submit(repo: Repository, name: str, **budget: Any) -> StudyRecord:
    spec = branin_spec(
        name=name,
        budget={"trials": 3, "max_epochs": 2, "concurrency": 2, **budget},
        fixed={"sleep_s": 0.3},
    )
    return service.submit_study(repo, load_spec(spec), owner="alice")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def metrics_of(repo: Repository, study_id: int) -> set[tuple[int, int, str, float | None]]:
    return {
        (m.trial_id, m.step, m.name, m.value)
        for t in repo.list_trials(study_id, limit=1000)
        for m in repo.trial_metrics(t.id)
    }


def kinds(repo: Repository, study_id: int) -> list[str]:
    return [e.kind for e in repo.list_events(study_id, limit=10_000)]


@contextlib.contextmanager
def runner_process(db_url: str, ray_address: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`hpo runner` in its own process group; the group is SIGKILLed on the way out so no
    runner or driver outlives the test."""
    with log.open("ab") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hpo",
                "runner",
                "--db",
                db_url,
                "--ray-address",
                ray_address,
                "--lease-s",
                "3",
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def test_run_once_runs_a_submitted_study_to_completed(ray_address: str, tmp_path: Path) -> None:
    # SQLite only: the other tests run runners on PostgreSQL too.
    db_url = f"sqlite:///{tmp_path}/hpo.db"
    repo = Repository(db_url)
    study = submit(repo, "once")
    runner = Runner(db_url, lease_s=5, heartbeat_s=1, ray_address=ray_address)
    assert runner.run_once() == study.id
    done = repo.get_study(study.id)
    assert done.status == "completed" and done.lease_owner is None
    assert repo.count_trials(study.id)["completed"] == 3
    assert kinds(repo, study.id).count("started") == 1
    assert "resumed" not in kinds(repo, study.id)
    assert Runner(db_url, ray_address=ray_address).run_once() is None  # nothing queued
    repo.close()


def test_cancel_stops_a_running_study(repo: Repository, db_url: str, ray_address: str) -> None:
    study = submit(repo, "cancel", trials=20, max_epochs=4)
    (runner,) = start_runners(db_url, 1, ray_address=ray_address, lease_s=5, heartbeat_s=1)
    try:
        wait_for(
            lambda: (
                repo.count_trials(study.id)["running"] >= 1 and bool(metrics_of(repo, study.id))
            ),
            60,
            "a trial reporting",
        )
        asked = datetime.now(UTC)
        assert service.cancel_study(repo, study.id, user=service.User("alice", False)).status in (
            "running",
            "cancelled",
        )
        wait_for(lambda: repo.get_study(study.id).status == "cancelled", 30, "the cancel")
        wait_for(lambda: not runner.running, 30, "the driver to exit")
    finally:
        stop_runners([runner])
    ended = repo.get_study(study.id)
    assert ended.status == "cancelled" and ended.lease_owner is None
    assert ended.finished_at is not None and (ended.finished_at - asked).total_seconds() < 15
    trials = repo.list_trials(study.id, limit=100)
    assert not [t for t in trials if t.status == "running"]
    stopped = [t for t in trials if t.status == "failed" and t.error == "cancelled"]
    assert stopped and all(t.epochs_run < 4 for t in stopped)
    # A trial that ended after the cancel either ran all its epochs or is cancelled:
    # none the cancel stopped was recorded as completed.
    for t in trials:
        if t.finished_at is not None and t.finished_at > asked and t.status == "completed":
            assert t.epochs_run == 4
    assert len(trials) < 20
    assert kinds(repo, study.id)[-1] == "cancelled"


def test_sigterm_then_kill_9_of_runners_then_another_runner_finishes_the_study(
    repo: Repository, db_url: str, ray_address: str, tmp_path: Path
) -> None:
    study = submit(repo, "crash", trials=6, max_epochs=2)
    log = tmp_path / "runners.log"

    def progressed(proc: subprocess.Popen[bytes], completed: int) -> Callable[[], bool]:
        def check() -> bool:
            assert proc.poll() is None, log.read_text()
            counts = repo.count_trials(study.id)
            return counts["completed"] >= completed and counts["running"] >= 1

        return check

    # SIGTERM: the runner stops its driver cleanly; the study waits, queued, resumable.
    with runner_process(db_url, ray_address, log) as first:
        wait_for(progressed(first, 1), 90, "the first runner to make progress")
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0, log.read_text()
    stopped = repo.get_study(study.id)
    assert stopped.status == "queued" and stopped.lease_owner is None
    assert repo.count_trials(study.id)["running"] == 0
    assert "interrupted" in kinds(repo, study.id)

    # kill -9: the runner and its driver die at once; the study stays running, leased.
    with runner_process(db_url, ray_address, log) as second:
        wait_for(progressed(second, 2), 90, "the second runner to make progress")
        os.killpg(second.pid, signal.SIGKILL)
        second.wait(30)
    before = metrics_of(repo, study.id)
    assert before and repo.get_study(study.id).status == "running"

    # Once the lease expires, another runner resumes it to the end.
    with runner_process(db_url, ray_address, log) as third:
        wait_for(lambda: repo.get_study(study.id).status == "completed", 120, "the study to finish")
        third.send_signal(signal.SIGTERM)
        assert third.wait(30) == 0, log.read_text()
    trials = repo.list_trials(study.id, limit=100)
    assert not [t for t in trials if t.status == "running"]
    assert sum(t.status == "completed" for t in trials) == 6
    assert len({t.number for t in trials}) == len(trials)
    assert before <= metrics_of(repo, study.id)
    events = kinds(repo, study.id)
    assert events.count("started") == 1 and "resumed" in events


@pytest.mark.postgres
def test_two_runners_on_one_postgresql_run_each_study_once(
    make_pg_database: Callable[[], str], ray_address: str, tmp_path: Path
) -> None:
    url = make_pg_database()
    with Repository(url) as repo:
        ids = [submit(repo, f"s{i}", trials=2).id for i in range(3)]
        log = tmp_path / "runners.log"
        with runner_process(url, ray_address, log) as a, runner_process(url, ray_address, log) as b:
            wait_for(
                lambda: all(repo.get_study(i).status == "completed" for i in ids),
                150,
                "every study to complete",
            )
            for proc in (a, b):
                proc.send_signal(signal.SIGTERM)
            assert a.wait(30) == 0 and b.wait(30) == 0, log.read_text()
        for study_id in ids:
            events = Counter(kinds(repo, study_id))
            assert events["started"] == 1 and events["resumed"] == 0
            assert events["completed"] == 1
            numbers = [t.number for t in repo.list_trials(study_id, limit=100)]
            assert sorted(numbers) == [1, 2]


def test_kill_9_of_runners_at_random_moments_then_one_finishes_the_study(
    repo: Repository, db_url: str, ray_address: str, tmp_path: Path
) -> None:
    import json
    import random

    seed = int(os.environ.get("HPO_KILL_SEED", time.time_ns() % 10_000))
    rng = random.Random(seed)
    study = submit(repo, "random-kills", trials=10, max_epochs=3)
    log = tmp_path / "runners.log"
    kills = 0
    for _ in range(3):
        with runner_process(db_url, ray_address, log) as runner:
            deadline = time.monotonic() + rng.uniform(1.0, 8.0)
            while time.monotonic() < deadline and runner.poll() is None:
                time.sleep(0.05)
            os.killpg(runner.pid, signal.SIGKILL)  # the runner and its driver, at once
            runner.wait(30)
            kills += 1
        time.sleep(3.5)  # the 3 s lease lapses
    with runner_process(db_url, ray_address, log) as last:
        wait_for(lambda: repo.get_study(study.id).status == "completed", 240, "the study to end")
        # Its start line follows its signal handlers: a SIGTERM before them would kill a
        # runner that had nothing left to do (the study can end before it is up).
        wait_for(lambda: f":{last.pid}:" in log.read_text(), 60, "the last runner to be up")
        last.send_signal(signal.SIGTERM)
        assert last.wait(30) == 0, log.read_text()
    trials = repo.list_trials(study.id, limit=1000)
    rows = [
        (m.trial_id, m.attempt, m.step, m.name)
        for t in trials
        for m in repo.trial_metrics(t.id, all_attempts=True)
    ]
    points = [(t.config["x1"], t.config["x2"]) for t in trials]
    counts = repo.count_trials(study.id)
    summary = {
        "seed": seed,
        "kills": kills,
        "trials": len(trials),
        "interrupted": sum("driver stopped" in (t.error or "") for t in trials),
        "metric_rows": len(rows),
        "duplicate_rows": len(rows) - len(set(rows)),
        "duplicate_configs": len(points) - len(set(points)),
        "running": counts["running"],
        "lease_token": repo.get_study(study.id).lease_token,
    }
    print("runner kill -9 at random moments:", json.dumps(summary))
    assert counts["running"] == 0 and counts["completed"] == 10
    assert summary["duplicate_rows"] == 0 and summary["duplicate_configs"] == 0
    assert [t.number for t in trials] == list(range(1, len(trials) + 1))
    for trial in trials:
        if trial.status == "completed":
            assert [m.step for m in repo.trial_metrics(trial.id)] == [1, 2, 3]
