"""`kill -9` of a driver mid-trial, then `hpo run --resume`: the interrupted trials
continue from their checkpoints under the same numbers, each epoch stored once.

Real processes, real signals, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from hpo.storage.repository import Repository
from tests.execution.test_checkpoints import _spec
from tests.execution.test_crash_resume import _hpo, _kill_group, _wait_for

pytestmark = pytest.mark.slow


def test_kill_9_then_resume_continues_trials_from_their_checkpoints(
    db_url: str, tmp_path: Path
) -> None:
    epochs = 6
    spec = _spec(tmp_path, trials=2, max_epochs=epochs, concurrency=2)
    spec["fixed"]["sleep_s"] = 0.4
    path = tmp_path / "resume.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "HPO_LEASE_S": "4", "HPO_ARTIFACTS": str(tmp_path / "artifacts")}
    repo = Repository(db_url)

    driver = _hpo("run", str(path), "--db", db_url, "--json", env=env)
    try:

        def checkpointed() -> bool:
            # Both trials running with a checkpoint (a trial killed before its first is
            # replaced, as before), one of them past epoch 2.
            studies = repo.list_studies()
            if not studies:
                return False
            trials = repo.list_trials(studies[0].id, status="running")
            epochs = [(t.last_checkpoint or {}).get("epoch", 0) for t in trials]
            return len(epochs) == 2 and min(epochs) >= 1 and max(epochs) >= 2

        _wait_for(checkpointed, 240, driver)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(30)
    finally:
        _kill_group(driver)
    (study,) = repo.list_studies()
    before = {t.id: t for t in repo.list_trials(study.id, status="running") if t.last_checkpoint}
    assert before
    evals_before = {
        seed: len((tmp_path / f"evals-{seed}").read_text().splitlines())
        for seed in {t.seed for t in before.values()}
    }

    time.sleep(4.5)  # the dead driver's lease lapses
    resume = _hpo("run", "--resume", str(study.id), "--db", db_url, "--json", env=env)
    try:
        out, err = resume.communicate(timeout=300)
    finally:
        _kill_group(resume)
    assert resume.returncode == 0, err
    assert json.loads(out)["status"] == "completed"

    after = {t.id: t for t in repo.list_trials(study.id, limit=100)}
    assert len(after) == 2  # continued, not replaced
    restored = {
        e.trial_id: e.data for e in repo.list_events(study.id, limit=1000) if e.kind == "restored"
    }
    assert restored.keys() == before.keys()
    for tid, old in before.items():
        trial = after[tid]
        epoch = int(old.last_checkpoint["epoch"])  # type: ignore[index]
        assert restored[tid] == {"epoch": epoch}
        assert (trial.number, trial.attempt, trial.status) == (old.number, 1, "completed")
        # Each epoch stored once, in the one attempt.
        steps = sorted(m.step for m in repo.trial_metrics(trial.id) if m.name == "val_loss")
        assert steps == list(range(1, epochs + 1))
        # Trained on from the checkpoint: only the epochs after it were evaluated again.
        log = tmp_path / f"evals-{trial.seed}"
        assert len(log.read_text().splitlines()) == evals_before[trial.seed] + epochs - epoch
        assert trial.last_checkpoint is not None and trial.last_checkpoint["epoch"] == epochs
    repo.close()
