"""`kill -9` of a driver mid-study, then `hpo run --resume`: nothing lost, nothing re-run.

Real processes, real signals, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpo.storage.repository import Repository
from tests.execution.conftest import branin_spec

pytestmark = pytest.mark.slow


def _hpo(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hpo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def _wait_for(predicate: Any, timeout: float, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(
                f"driver exited early ({proc.returncode}): "
                f"{proc.stderr.read() if proc.stderr else ''}"
            )
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the driver")


def _kill_group(proc: subprocess.Popen[str]) -> None:
    # Whatever the dead driver's local Ray left behind must not outlive the test.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


# A short lease, so that a killed driver's study can be resumed within the test.
LEASE_ENV = {**os.environ, "HPO_LEASE_S": "4"}
# Long enough that a second `hpo run` started on a busy machine still finds it live.
LONG_LEASE_S = 20.0


def _metric_rows(repo: Repository, trial_ids: Any) -> set[tuple[Any, ...]]:
    return {
        (m.trial_id, m.attempt, m.step, m.name, m.value)
        for tid in trial_ids
        for m in repo.trial_metrics(tid, all_attempts=True)
    }


def _kill_midway(repo: Repository, driver: subprocess.Popen[str], completed: int) -> None:
    try:

        def progressed() -> bool:
            studies = repo.list_studies()
            if not studies:
                return False
            counts = repo.count_trials(studies[0].id)
            return counts["completed"] >= completed and counts["running"] >= 1

        _wait_for(progressed, 180, driver)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(30)
    finally:
        _kill_group(driver)


def test_kill_9_twice_then_resume_continues_without_replaying(db_url: str, tmp_path: Path) -> None:
    spec = branin_spec(
        name="crash",
        budget={"trials": 8, "max_epochs": 3, "concurrency": 2},
        fixed={"sleep_s": 0.5},
    )
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump(spec))
    repo = Repository(db_url)
    long_lease = {**os.environ, "HPO_LEASE_S": str(LONG_LEASE_S)}
    _kill_midway(repo, _hpo("run", str(path), "--db", db_url, "--json", env=long_lease), 2)
    killed_at = time.monotonic()
    (study,) = repo.list_studies()
    dead_owner = repo.get_study(study.id).lease_owner
    assert dead_owner is not None and dead_owner.startswith("hpo-run@")

    # The dead driver's lease is still live: a resume now is refused, naming it.
    early = _hpo("run", "--resume", str(study.id), "--db", db_url, "--json", env=LEASE_ENV)
    _, err = early.communicate(timeout=120)
    assert early.returncode == 1 and dead_owner in err and "lease until" in err, err
    assert repo.get_study(study.id).lease_owner == dead_owner

    time.sleep(max(0.0, killed_at + LONG_LEASE_S + 0.5 - time.monotonic()))  # it lapses
    _kill_midway(
        repo,
        _hpo("run", "--resume", str(study.id), "--db", db_url, "--json", env=LEASE_ENV),
        4,
    )
    before_trials = {t.id: t for t in repo.list_trials(study.id, limit=100)}
    before_metrics = _metric_rows(repo, before_trials)
    interrupted = {t.id for t in before_trials.values() if t.status == "running"}
    completed_before = {t.id for t in before_trials.values() if t.status == "completed"}
    assert interrupted and len(completed_before) >= 4 and before_metrics

    time.sleep(4.5)
    resume = _hpo("run", "--resume", str(study.id), "--db", db_url, "--json", env=LEASE_ENV)
    try:
        out, err = resume.communicate(timeout=300)
    finally:
        _kill_group(resume)
    assert resume.returncode == 0, err
    doc = json.loads(out)
    assert doc["status"] == "completed"

    after = {t.id: t for t in repo.list_trials(study.id, limit=100)}
    statuses = [t.status for t in after.values()]
    assert statuses.count("running") == 0
    assert statuses.count("completed") + statuses.count("pruned") == 8
    # No config proposed twice, across two crashes and three drivers.
    points = [(t.config["x1"], t.config["x2"]) for t in after.values()]
    assert len(set(points)) == len(points)
    # Completed trials were not re-run: same rows, same epochs.
    for tid in completed_before:
        assert after[tid].status == "completed"
        assert after[tid].epochs_run == before_trials[tid].epochs_run
    # Trials the kill interrupted are closed, never left running, and were replaced.
    for tid in interrupted:
        assert after[tid].status == "failed"
        assert "driver stopped" in (after[tid].error or "")
    # Nothing lost: every row stored before the last kill is still there, unchanged; and
    # every finished trial has exactly its epochs' rows (the key forbids duplicates).
    after_metrics = _metric_rows(repo, after)
    assert before_metrics <= after_metrics
    for trial in after.values():
        if trial.status == "completed":
            assert len(repo.trial_metrics(trial.id)) == 3
    assert [e.kind for e in repo.list_events(study.id, limit=1000)].count("resumed") == 2
    repo.close()


def test_sigterm_leaves_the_study_resumable(db_url: str, tmp_path: Path) -> None:
    spec = branin_spec(name="term", budget={"trials": 4, "max_epochs": 3}, fixed={"sleep_s": 0.5})
    path = tmp_path / "term.yaml"
    path.write_text(yaml.safe_dump(spec))
    repo = Repository(db_url)
    driver = _hpo("run", str(path), "--db", db_url)
    try:

        def running() -> bool:
            studies = repo.list_studies()
            return bool(studies) and repo.count_trials(studies[0].id).get("running", 0) >= 1

        _wait_for(running, 180, driver)
        driver.send_signal(signal.SIGTERM)
        _, err = driver.communicate(timeout=60)
    finally:
        _kill_group(driver)
    assert driver.returncode == 130, err
    assert "hpo run --resume" in err and "Traceback" not in err
    (study,) = repo.list_studies()
    assert study.status == "queued"
    assert repo.count_trials(study.id)["running"] == 0
    assert "interrupted" in [e.kind for e in repo.list_events(study.id, limit=1000)]
    repo.close()


def test_kill_9_at_random_moments_repeated_loses_and_duplicates_nothing(
    db_url: str, tmp_path: Path
) -> None:
    import random

    seed = int(os.environ.get("HPO_KILL_SEED", time.time_ns() % 10_000))
    rng = random.Random(seed)
    trials, epochs = 16, 3
    spec = branin_spec(
        name="random-kills",
        budget={"trials": trials, "max_epochs": epochs, "concurrency": 2},
        fixed={"sleep_s": 0.3},
    )
    path = tmp_path / "kills.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "HPO_LEASE_S": "2"}
    repo = Repository(db_url)
    kills = 0
    study_id = 0
    for round_ in range(4):
        args = ["run", str(path)] if round_ == 0 else ["run", "--resume", str(study_id)]
        driver = _hpo(*args, "--db", db_url, "--json", env=env)
        try:
            if round_ == 0:  # the study must exist before the first kill
                _wait_for(lambda: bool(repo.list_studies()), 120, driver)
                study_id = repo.list_studies()[0].id
            # A random moment: anywhere from Ray's start-up to the middle of the trials.
            deadline = time.monotonic() + rng.uniform(1.0, 12.0)
            while time.monotonic() < deadline and driver.poll() is None:
                time.sleep(0.05)
            if driver.poll() is None:
                os.kill(driver.pid, signal.SIGKILL)
                kills += 1
            driver.wait(30)
        finally:
            _kill_group(driver)
        time.sleep(2.5)  # the dead driver's lease lapses
        if repo.get_study(study_id).status == "completed":
            break  # a round outran its kill
    if repo.get_study(study_id).status != "completed":
        final = _hpo("run", "--resume", str(study_id), "--db", db_url, "--json", env=env)
        try:
            out, err = final.communicate(timeout=300)
        finally:
            _kill_group(final)
        assert final.returncode == 0, err
        assert json.loads(out)["status"] == "completed"

    study = repo.get_study(study_id)
    every = repo.list_trials(study_id, limit=1000)
    counts = repo.count_trials(study_id)
    points = [(t.config["x1"], t.config["x2"]) for t in every]
    rows = [
        (m.trial_id, m.attempt, m.step, m.name)
        for t in every
        for m in repo.trial_metrics(t.id, all_attempts=True)
    ]
    summary = {
        "seed": seed,
        "kills": kills,
        "trials": len(every),
        "interrupted": sum("driver stopped" in (t.error or "") for t in every),
        "metric_rows": len(rows),
        "duplicate_rows": len(rows) - len(set(rows)),
        "duplicate_configs": len(points) - len(set(points)),
        "running": counts["running"],
    }
    print("kill -9 at random moments:", json.dumps(summary))
    assert counts["running"] == 0
    assert counts["completed"] + counts["pruned"] == trials
    assert summary["duplicate_configs"] == 0 and summary["duplicate_rows"] == 0
    assert [t.number for t in every] == list(range(1, study.last_trial_number + 1))
    for trial in every:  # nothing lost: a finished trial has every epoch's row
        if trial.status == "completed":
            assert [m.step for m in repo.trial_metrics(trial.id)] == list(range(1, epochs + 1))
    repo.close()
