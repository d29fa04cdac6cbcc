"""One fenced driver per study, outages waited out, attempts kept apart, honest endings.

Real processes (`hpo run`), real Ray, real locks; on SQLite and PostgreSQL where the
scenario is not SQLite's own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from hpo.storage.repository import Repository
from tests.execution.conftest import branin_spec

pytestmark = pytest.mark.slow

LEASE_ENV = {**os.environ, "HPO_LEASE_S": "3"}


def _hpo(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hpo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env or LEASE_ENV,
    )


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _wait(predicate: Any, timeout: float, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited early ({proc.returncode}): {proc.communicate()[1]}")
        time.sleep(0.2)
    raise AssertionError("timed out")


def _snapshot(repo: Repository, study_id: int) -> tuple[Any, ...]:
    trials = repo.list_trials(study_id, limit=1000)
    rows = sorted(
        (m.trial_id, m.attempt, m.step, m.name, m.value)
        for t in trials
        for m in repo.trial_metrics(t.id, all_attempts=True)
    )
    study = repo.get_study(study_id)
    events = len(repo.list_events(study_id, limit=10_000))
    return ([(t.id, t.status, t.epochs_run) for t in trials], rows, study.last_trial_number, events)


def _spec_file(tmp_path: Path, **overrides: Any) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(branin_spec(**overrides)))
    return path


def test_a_driver_that_loses_its_lease_stops_and_writes_nothing_more(
    db_url: str, tmp_path: Path
) -> None:
    path = _spec_file(
        tmp_path,
        name="fenced",
        budget={"trials": 30, "max_epochs": 20, "concurrency": 2},
        fixed={"sleep_s": 0.3},
    )
    repo = Repository(db_url)
    driver = _hpo("run", str(path), "--db", db_url, "--json")
    try:

        def reporting() -> bool:
            studies = repo.list_studies()
            return bool(studies) and any(
                t.epochs_run >= 2 for t in repo.list_trials(studies[0].id, status="running")
            )

        _wait(reporting, 180, driver)
        (study,) = repo.list_studies()
        assert study.lease_owner and study.lease_owner.startswith("hpo-run@")
        # Another driver takes the study over, as if this one had not renewed in time.
        with repo.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE studies SET lease_expires_at = :t WHERE id = :id"),
                {"t": "2000-01-01 00:00:00", "id": study.id},
            )
        thief = repo.acquire_lease(study.id, "thief", 600)
        assert thief.lease_token == study.lease_token + 1
        taken = _snapshot(repo, study.id)
        started = time.monotonic()
        _, err = driver.communicate(timeout=60)
        stopped_after = time.monotonic() - started
    finally:
        _kill_group(driver)
    assert driver.returncode != 0
    assert "lease" in err.lower(), err
    assert stopped_after < 15
    # Nothing the old driver did after losing reached the database.
    assert _snapshot(repo, study.id) == taken
    after = repo.get_study(study.id)
    assert (after.status, after.lease_owner, after.lease_token) == (
        "running",
        "thief",
        thief.lease_token,
    )
    repo.close()


def test_two_drivers_racing_for_one_study_one_runs(db_url: str, tmp_path: Path) -> None:
    repo = Repository(db_url)
    spec = branin_spec(name="race", budget={"trials": 3, "max_epochs": 2})
    study = repo.create_study(
        "race",
        spec,
        objective_metric="value",
        objective_mode="min",
        n_trials_target=3,
    )
    a = _hpo("run", "--resume", str(study.id), "--db", db_url, "--json")
    b = _hpo("run", "--resume", str(study.id), "--db", db_url, "--json")
    try:
        results = [p.communicate(timeout=300) for p in (a, b)]
    finally:
        _kill_group(a)
        _kill_group(b)
    codes = sorted([a.returncode, b.returncode])
    assert codes == [0, 1], results
    loser_err = results[[a.returncode, b.returncode].index(1)][1]
    assert "is being run by hpo-run@" in loser_err and "lease until" in loser_err
    final = repo.get_study(study.id)
    assert final.status == "completed" and final.lease_token == 1
    counts = repo.count_trials(study.id)
    assert counts == {"running": 0, "completed": 3, "pruned": 0, "failed": 0}
    assert len(repo.list_events(study.id, kind="started")) == 1
    repo.close()


_LOCKER = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
    """
)


def test_a_40s_sqlite_lock_mid_study_loses_no_metric_row(tmp_path: Path) -> None:
    db = tmp_path / "hpo.db"
    url = f"sqlite:///{db}"
    path = _spec_file(
        tmp_path,
        name="locked",
        budget={"trials": 4, "max_epochs": 6, "concurrency": 2},
        fixed={"sleep_s": 0.5},
    )
    repo = Repository(url)
    driver = _hpo("run", str(path), "--db", url, "--json", env=dict(os.environ))
    locker = None
    try:

        def reporting() -> bool:
            studies = repo.list_studies()
            return bool(studies) and any(t.epochs_run >= 1 for t in repo.list_trials(studies[0].id))

        _wait(reporting, 180, driver)
        locker = subprocess.Popen(
            [sys.executable, "-c", _LOCKER, str(db), "40"], stdout=subprocess.PIPE, text=True
        )
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        locked_at = time.monotonic()
        _, err = driver.communicate(timeout=400)
        assert locker.wait(60) == 0
    finally:
        _kill_group(driver)
        if locker is not None:
            locker.kill()
    assert driver.returncode == 0, err
    assert time.monotonic() - locked_at > 35  # the driver did wait the lock out
    (study,) = repo.list_studies()
    assert study.status == "completed"
    trials = repo.list_trials(study.id)
    assert [t.status for t in trials] == ["completed"] * 4
    for trial in trials:
        assert [m.step for m in repo.trial_metrics(trial.id)] == [1, 2, 3, 4, 5, 6]
    repo.close()


def test_a_retried_trial_keeps_its_attempts_apart(run_spec: Any, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    spec = branin_spec(
        trainable={"function": "tests.execution.trial_functions:crash_midway"},
        budget={"trials": 1, "max_epochs": 4, "max_failures": 1, "concurrency": 1},
        space={"x": {"uniform": [0, 1]}},
        fixed={"marker_dir": str(markers), "crash_after": 4, "retry_epochs": 2},
    )
    repo, study = run_spec(spec)
    (trial,) = repo.list_trials(study.id)
    assert (trial.status, trial.attempt, trial.epochs_run) == ("completed", 2, 2)
    assert (trial.last_value, trial.best_value, trial.objective_value) == (12.0, 11.0, 12.0)
    assert [(m.step, m.value) for m in repo.trial_metrics(trial.id)] == [(1, 11.0), (2, 12.0)]
    every = repo.trial_metrics(trial.id, all_attempts=True)
    assert [(m.attempt, m.step) for m in every] == [(1, s) for s in range(1, 5)] + [(2, 1), (2, 2)]
    (event,) = repo.list_events(study.id, kind="trial_retried")
    assert event.message == "attempt 2 of 2 after: RuntimeError: attempt 1 crashes on purpose"


def test_a_study_whose_every_trial_fails_ends_failed_naming_the_first_error(
    run_spec: Any,
) -> None:
    spec = branin_spec(
        trainable={"function": "tests.execution.trial_functions:always_fails"},
        budget={"trials": 2, "max_epochs": 1, "concurrency": 1},
        space={"x": {"uniform": [0, 1]}},
    )
    repo, study = run_spec(spec)
    assert study.status == "failed"
    first = repo.get_trial(study.id, 1)
    assert study.error == (
        f"every trial failed; the first (trial 1): ValueError: no good at x={first.config['x']}"
    )


def test_unsatisfiable_resources_end_the_study_failed(run_spec: Any) -> None:
    repo, study = run_spec(branin_spec(resources={"cpu": 1024}))
    assert study.status == "failed"
    assert study.error == (
        "resources cannot be satisfied: each trial asks for cpu 1024 (the cluster has 2)"
    )
    assert repo.count_trials(study.id)["running"] == 0


def test_the_time_limit_counts_the_whole_life_across_resumes(
    ray_session: None, db_url: str
) -> None:
    from hpo.execution.driver import run_study

    repo = Repository(db_url)
    spec = branin_spec(budget={"trials": 5, "time_limit_s": 60})
    study = repo.create_study(
        "old", spec, objective_metric="value", objective_mode="min", n_trials_target=5
    )
    # It first started an hour ago (and was interrupted): nothing is left of its limit.
    assert repo.claim_study(study.id, "earlier", 0.0)
    with repo.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE studies SET started_at = :t, status = 'queued' WHERE id = :id"),
            {"t": "2000-01-01 00:00:00", "id": study.id},
        )
    final = run_study(repo, study.id)
    assert final.status == "completed"
    assert repo.count_trials(study.id)["completed"] == 0
    assert "time limit reached" in repo.list_events(study.id, kind="completed")[0].message
    repo.close()


def test_a_runner_takes_over_a_killed_hpo_run_once_its_lease_lapses(
    ray_session: None, db_url: str, tmp_path: Path
) -> None:
    import ray

    from hpo.execution.runner import Runner

    path = _spec_file(
        tmp_path,
        name="orphan",
        budget={"trials": 5, "max_epochs": 3, "concurrency": 2},
        fixed={"sleep_s": 0.3},
    )
    repo = Repository(db_url)
    driver = _hpo("run", str(path), "--db", db_url, "--json")
    try:

        def started() -> bool:
            studies = repo.list_studies()
            return bool(studies) and repo.count_trials(studies[0].id)["completed"] >= 1

        _wait(started, 180, driver)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(30)
    finally:
        _kill_group(driver)
    (study,) = repo.list_studies()
    runner = Runner(
        db_url,
        lease_s=5,
        heartbeat_s=1,
        ray_address=str(ray.get_runtime_context().gcs_address),
    )
    # Within the dead driver's lease nothing is claimable; once it lapses the runner
    # takes the study (a new token) and its driver finishes it.
    assert runner.run_once() is None
    time.sleep(3.5)
    assert runner.run_once() == study.id
    final = repo.get_study(study.id)
    assert (final.status, final.lease_token) == ("completed", 2)
    counts = repo.count_trials(study.id)
    assert counts["running"] == 0 and counts["completed"] == 5
    repo.close()


@pytest.mark.postgres
def test_lost_postgresql_connections_mid_study_lose_no_metric_row(
    make_pg_database: Any, tmp_path: Path
) -> None:
    url = make_pg_database()
    path = _spec_file(
        tmp_path,
        name="pg-drops",
        budget={"trials": 4, "max_epochs": 6, "concurrency": 2},
        fixed={"sleep_s": 0.4},
    )
    repo = Repository(url)
    driver = _hpo("run", str(path), "--db", url, "--json", env=dict(os.environ))
    database = sa.make_url(url).database
    kills = 0
    try:

        def reporting() -> bool:
            studies = repo.list_studies()
            return bool(studies) and any(t.epochs_run >= 1 for t in repo.list_trials(studies[0].id))

        _wait(reporting, 180, driver)
        # Drop every connection of the driver to its database, a few times mid-study,
        # as a server restart would.
        admin = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres")
        for _ in range(4):
            with admin.begin() as conn:
                kills += len(
                    conn.execute(
                        sa.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = :db AND pid <> pg_backend_pid()"
                        ),
                        {"db": database},
                    ).all()
                )
            time.sleep(1.0)
        admin.dispose()
        _, err = driver.communicate(timeout=300)
    finally:
        _kill_group(driver)
    assert kills > 0
    assert driver.returncode == 0, err
    (study,) = repo.list_studies()
    assert study.status == "completed"
    trials = repo.list_trials(study.id)
    assert [t.status for t in trials] == ["completed"] * 4
    for trial in trials:
        assert [m.step for m in repo.trial_metrics(trial.id)] == [1, 2, 3, 4, 5, 6]
    repo.close()


def test_past_the_retry_window_the_study_goes_back_to_queued_never_failed(
    tmp_path: Path,
) -> None:
    db = tmp_path / "hpo.db"
    url = f"sqlite:///{db}"
    path = _spec_file(
        tmp_path,
        name="outage",
        budget={"trials": 10, "max_epochs": 40, "concurrency": 2},
        fixed={"sleep_s": 0.5},
    )
    repo = Repository(url)
    # A 3 s window. Each try itself waits SQLite's 30 s busy timeout, so a 70 s lock
    # fails the first try at 30 s and the second at 60 s, past the window: the driver
    # gives up while the lock holds, and hands the study back once it is released.
    env = {**os.environ, "HPO_STORAGE_RETRY_S": "3"}
    driver = _hpo("run", str(path), "--db", url, "--json", env=env)
    locker = None
    try:

        def reporting() -> bool:
            studies = repo.list_studies()
            return bool(studies) and any(t.epochs_run >= 1 for t in repo.list_trials(studies[0].id))

        _wait(reporting, 180, driver)
        locker = subprocess.Popen(
            [sys.executable, "-c", _LOCKER, str(db), "70"], stdout=subprocess.PIPE, text=True
        )
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        _, err = driver.communicate(timeout=300)
        assert locker.wait(120) == 0
    finally:
        _kill_group(driver)
        if locker is not None:
            locker.kill()
    assert driver.returncode == 1 and "stayed unavailable" in err, err
    (study,) = repo.list_studies()
    assert f"left resumable: hpo run --resume {study.id}" in err, err
    assert study.status == "queued" and study.error is None
    assert repo.count_trials(study.id)["running"] == 0
    repo.close()
