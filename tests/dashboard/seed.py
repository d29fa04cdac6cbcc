"""Studies for the dashboard tests, written through the repository as a runner would: a
completed study of 12 trials of 5 epochs (two pruned, one failed) and a running one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hpo import service
from hpo.spec import load_spec
from hpo.storage.repository import Repository, ResultRow

SPEC: dict[str, Any] = {
    "name": "mlp-dashboard",
    "objective": {"metric": "val_accuracy", "mode": "max"},
    "trainable": {"function": "hpo.examples.functions:branin"},
    "budget": {"trials": 12, "max_epochs": 5},
    "strategy": {"sampler": "random", "scheduler": "asha", "seed": 0},
    "space": {
        "lr": {"loguniform": [1.0e-4, 0.3]},
        "optimizer": {"choice": ["sgd", "adam", "adamw"]},
        "hidden": {"int": [32, 512], "log": True},
    },
    "fixed": {"batch_size": 64},
}
OPTIMIZERS = ("sgd", "adam", "adamw")
PRUNED = (3, 7)
FAILED = 10


@dataclass(frozen=True)
class SeededStudies:
    completed_id: int
    running_id: int


def config_of(number: int) -> dict[str, Any]:
    return {
        "lr": 10 ** (-4 + (number % 5) * 0.6),
        "optimizer": OPTIMIZERS[number % 3],
        "hidden": 32 * (1 + number % 8),
        "batch_size": 64,
    }


def add_trial(repo: Repository, study_id: int, status: str, epochs: int) -> int:
    """A trial reporting `epochs` epochs of losses, accuracy and lr, then `status`."""
    trial = repo.create_trial(
        study_id,
        config=config_of(repo.get_study(study_id).last_trial_number + 1),
        seed=7,
        ray_trial_id=None,
        provenance={"hostname": "test-host", "device": "cpu", "hpo": "0.1.0"},
    )
    repo.add_event(study_id, "trial_started", f"trial {trial.number} started", trial_id=trial.id)
    quality = 0.5 + 0.04 * ((trial.number * 7) % 11)
    rows = []
    for epoch in range(1, epochs + 1):
        accuracy = quality * (1 - math.exp(-epoch / 2))
        metrics = {
            "epoch": float(epoch),
            "train_loss": 2.0 / epoch,
            "val_loss": 2.2 / epoch + 0.05,
            "val_accuracy": accuracy,
            "lr": 0.1 * 0.5 ** (epoch - 1),
        }
        rows.append(ResultRow(trial.id, epoch, metrics, accuracy))
    repo.record_results(rows)
    if status != "running":
        error = "RuntimeError: loss became NaN" if status == "failed" else None
        if status == "pruned" and trial.number == PRUNED[1]:
            # What the ASHA scheduler records for a trial it stops (hpo.execution.schedulers).
            error = (
                "stopped by ASHA at the rung of epoch 2: val_accuracy 0.4425 below the "
                "rung's cut-off 0.6512 (the best 1/3 of the 9 trials there go on)"
            )
        repo.finish_trial(trial.id, status, error=error)  # type: ignore[arg-type]
        repo.add_event(
            study_id, f"trial_{status}", f"trial {trial.number} {status}", trial_id=trial.id
        )
    return trial.number


def seed_dashboard(url: str) -> SeededStudies:
    with Repository(url) as repo:
        done = service.submit_study(repo, load_spec(SPEC), owner=None)
        repo.set_study_status(done.id, "running")
        for number in range(1, 13):
            if number in PRUNED:
                add_trial(repo, done.id, "pruned", 2)
            elif number == FAILED:
                add_trial(repo, done.id, "failed", 1)
            else:
                add_trial(repo, done.id, "completed", 5)
        repo.set_study_status(done.id, "completed")
        repo.add_event(done.id, "completed", "study completed")

        running = service.submit_study(repo, load_spec({**SPEC, "name": "live"}), owner=None)
        repo.set_study_status(running.id, "running")
        repo.add_event(running.id, "started", "study started")
        add_trial(repo, running.id, "completed", 5)
        add_trial(repo, running.id, "completed", 5)
        return SeededStudies(done.id, running.id)
