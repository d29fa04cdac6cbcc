"""Trial checkpoints on real Ray: recorded per trial (last and best), superseded files
deleted, best weights that reproduce the stored value, a failed attempt retried from its
checkpoint, and a study's checkpoints deleted with it. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from api.app import create_app
from hpo import service
from hpo.storage.errors import NotFoundError
from hpo.storage.repository import Repository, StudyRecord
from hpo.weights import trial_weights
from tests.api.support import live_server

pytestmark = pytest.mark.slow

MODEL = "tests.execution.trial_models:logged_mlp"
_HPO_BEST = (sys.executable, "-m", "hpo", "best")


def _spec(log_dir: Path, **budget: Any) -> dict[str, Any]:
    return {
        "name": "ckpt",
        "objective": {"metric": "val_accuracy", "mode": "max"},
        "trainable": {"dataset": "digits", "model": MODEL},
        "budget": {"trials": 2, "max_epochs": 3, "concurrency": 1, **budget},
        "strategy": {"sampler": "random", "scheduler": "fifo", "seed": 0},
        "space": {"lr": {"loguniform": [0.01, 0.1]}},
        "fixed": {"log_dir": str(log_dir), "batch_size": 64},
    }


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "artifacts"
    monkeypatch.setenv("HPO_ARTIFACTS", str(root))
    return root


def _delivered_accuracy(weights: bytes) -> float:
    """Val accuracy of the weights file's model on the study's split, rebuilt by hand
    from its config (the same split and preprocessing the core used)."""
    from hpo.training.config import build_config
    from hpo.training.data import load_dataset, split
    from hpo.training.models import build_model
    from hpo.training.preprocessing import fit_preprocessor

    document = torch.load(io.BytesIO(weights), weights_only=False)
    cfg = build_config(document["config"])
    splits = split(load_dataset(cfg), cfg.val_fraction, cfg.data_seed, cfg.test_fraction)
    transform = fit_preprocessor(cfg.preprocess, splits.train_x, cfg.whiten_eps)
    x = transform(splits.val_x)
    model = build_model(document["config"], tuple(x.shape[1:]), 10)
    model.load_state_dict(document["state_dict"])
    model.eval()
    with torch.no_grad():
        hits = (model(x).argmax(-1) == splits.val_y).float().mean()
    return float(hits)


def test_checkpoints_recorded_weights_reproduce_and_die_with_the_study(
    run_spec: Callable[..., tuple[Repository, StudyRecord]], store: Path, tmp_path: Path
) -> None:
    # Every epoch saved (`auto` may skip some of these short epochs): the best checkpoint
    # is then exactly the best epoch's.
    repo, study = run_spec(_spec(tmp_path, checkpoint_every=1))
    assert study.status == "completed", study.error
    trials = repo.list_trials(study.id)
    assert len(trials) == 2
    for trial in trials:
        last, best = trial.last_checkpoint, trial.best_checkpoint
        assert last is not None and best is not None
        assert last["epoch"] == 3 and Path(last["location"]).stat().st_size == last["bytes"]
        history = [m for m in repo.trial_metrics(trial.id) if m.name == "val_accuracy"]
        values = [m.value for m in sorted(history, key=lambda m: m.step)]
        # The best checkpoint is the first epoch with the highest accuracy.
        assert best["epoch"] == values.index(max(values)) + 1
        # Superseded files are gone: only the last and the best remain.
        folder = Path(last["location"]).parent
        assert {p.name for p in folder.iterdir()} == {
            Path(last["location"]).name,
            Path(best["location"]).name,
        }
        weights = trial_weights(repo, study.id, trial.number)
        assert _delivered_accuracy(weights) == pytest.approx(trial.objective_value, abs=1e-6)
    assert repo.checkpoint_bytes(study.id) == sum(
        {
            d["location"]: d["bytes"]
            for t in trials
            for d in (t.last_checkpoint, t.best_checkpoint)
            if d
        }.values()
    )

    # The same file over HTTP, a link on the trial page, and `hpo best --weights`.
    best = repo.best_trial(study.id)
    assert best is not None
    expected = trial_weights(repo, study.id, best.number)
    with (
        live_server(create_app(repo.url)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        response = http.get(f"/api/v1/studies/{study.id}/trials/{best.number}/weights")
        assert response.status_code == 200, response.text
        assert response.content == expected
        assert response.headers["content-type"] == "application/octet-stream"
        page = http.get(f"/studies/{study.id}/trials/{best.number}").text
        assert f"/api/v1/studies/{study.id}/trials/{best.number}/weights" in page
        missing = http.get(f"/api/v1/studies/{study.id}/trials/99/weights")
        assert missing.status_code == 404
        detail = http.get(f"/api/v1/studies/{study.id}/trials/{best.number}").json()
        assert detail["checkpoints"] == {
            name: {"epoch": doc["epoch"], "bytes": doc["bytes"]}
            for name, doc in (("last", best.last_checkpoint), ("best", best.best_checkpoint))
            if doc
        }
    target = tmp_path / "best.pt"
    done = subprocess.run(
        [*_HPO_BEST, str(study.id), "--db", repo.url, "--json", "--weights", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["weights"] == str(target)
    assert target.read_bytes() == expected

    assert (store / f"study-{study.id}").exists()
    service.delete_study(repo, study.id, user=None)
    assert not (store / f"study-{study.id}").exists()


def test_a_failed_attempt_is_retried_from_its_checkpoint(
    run_spec: Callable[..., tuple[Repository, StudyRecord]], store: Path, tmp_path: Path
) -> None:
    # Crash at the 3rd evaluation (epoch 3), after the checkpoint of epoch 2.
    spec = _spec(tmp_path, trials=1, max_epochs=5, max_failures=1, checkpoint_every=1)
    spec["fixed"]["crash_at"] = 3
    repo, study = run_spec(spec)
    assert study.status == "completed", study.error
    (trial,) = repo.list_trials(study.id)
    assert trial.attempt == 2 and trial.status == "completed" and trial.epochs_run == 5
    # From epoch 2's state: epochs 1-3 evaluated, then 3-5 again; from scratch it
    # would have been 3 + 5.
    (log,) = tmp_path.glob("evals-*")
    assert len(log.read_text().splitlines()) == 3 + 3
    rows = repo.trial_metrics(trial.id, all_attempts=True)
    steps = {
        a: sorted(m.step for m in rows if m.attempt == a and m.name == "val_loss") for a in (1, 2)
    }
    assert steps == {1: [1, 2], 2: [1, 2, 3, 4, 5]}
    carried = {(m.step, m.name): m.value for m in rows if m.attempt == 1}
    assert all(m.value == carried[(m.step, m.name)] for m in rows if m.attempt == 2 and m.step <= 2)
    events = repo.trial_events(study.id, trial.id)
    assert [e.kind for e in events].count("trial_retried") == 1


def test_a_trial_without_checkpoint_has_no_weights(
    run_spec: Callable[..., tuple[Repository, StudyRecord]], store: Path, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, trials=1, max_epochs=1, checkpoint_every=0)
    repo, study = run_spec(spec)
    (trial,) = repo.list_trials(study.id)
    assert trial.last_checkpoint is None and trial.best_checkpoint is None
    with pytest.raises(NotFoundError, match="saved no checkpoint"):
        trial_weights(repo, study.id, trial.number)
    with (
        live_server(create_app(repo.url)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        response = http.get(f"/api/v1/studies/{study.id}/trials/1/weights")
        assert response.status_code == 404
        assert "saved no checkpoint" in response.text
        assert "/weights" not in http.get(f"/studies/{study.id}/trials/1").text
    done = subprocess.run(
        [*_HPO_BEST, str(study.id), "--db", repo.url, "--weights", str(tmp_path / "w.pt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "saved no checkpoint" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
