"""Population-based training on real Ray: trials exploit better ones' checkpoints and
explore their hyperparameters; ``perturbed`` events record each; the lr trace shows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpo.errors import SpecError
from hpo.spec import load_spec
from hpo.storage.repository import Repository, StudyRecord

pytestmark = pytest.mark.slow


def _pbt_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "pbt",
        "objective": {"metric": "val_accuracy", "mode": "max"},
        "trainable": {"dataset": "digits", "model": "mlp"},
        "budget": {"trials": 4, "max_epochs": 6, "concurrency": 4},
        "strategy": {
            "sampler": "random",
            "scheduler": "pbt",
            "seed": 0,
            "perturbation_interval": 2,
        },
        # A wide lr range: the population spreads, so the bottom quarter is behind.
        "space": {"lr": {"loguniform": [1e-5, 0.1]}},
        "fixed": {"hidden": 16, "depth": 1, "batch_size": 128},
    }
    spec.update(overrides)
    return spec


def test_pbt_perturbs_and_exploits(
    run_spec: Callable[..., tuple[Repository, StudyRecord]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HPO_ARTIFACTS", str(tmp_path / "artifacts"))
    repo, study = run_spec(_pbt_spec())
    assert study.status == "completed", study.error
    trials = {t.id: t for t in repo.list_trials(study.id)}
    assert len(trials) == 4
    events = [e for e in repo.list_events(study.id, limit=1000) if e.kind == "perturbed"]
    assert events, "no trial was perturbed"
    for event in events:
        data = event.data or {}
        trial = trials[event.trial_id]  # type: ignore[index]
        assert data["source_trial"] in {t.number for t in trials.values()}
        assert data["source_trial"] != trial.number
        assert data["epoch"] in (2, 4)
        new_lr = data["to"]["lr"]
        assert 1e-5 <= new_lr <= 0.1
        # The lr trace: from the epoch after the exploit the trial trains at the new lr
        # (constant schedule: the reported lr is the config's lr).
        lrs = {
            m.step: m.value
            for m in repo.trial_metrics(event.trial_id)
            if m.name == "lr"  # type: ignore[arg-type]
        }
        assert lrs[data["epoch"] + 1] == pytest.approx(new_lr, rel=1e-9)
        assert sorted(lrs) == list(range(1, 7))  # every epoch stored once


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"trainable": {"function": "hpo.examples.functions:branin"}}, "strategy.scheduler"),
        (
            {"budget": {"trials": 4, "max_epochs": 6, "checkpoint_every": 2}},
            "budget.checkpoint_every",
        ),
    ],
)
def test_pbt_needs_the_core_saving_every_epoch(overrides: dict[str, Any], field: str) -> None:
    spec = _pbt_spec(**overrides)
    if "function" in spec["trainable"]:
        spec["space"] = {"x1": {"uniform": [-5, 10]}}
        spec["fixed"] = {}
        spec["objective"] = {"metric": "value", "mode": "min"}
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert field in [e.path for e in caught.value.errors], caught.value.errors
