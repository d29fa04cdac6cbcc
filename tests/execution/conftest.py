"""Real Ray for the execution tests: one local instance per test session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hpo.spec import StudySpec, load_spec
from hpo.storage.repository import Repository, StudyRecord


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """Ray started once (2 CPUs, no dashboard) and shut down after the last test."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def run_spec(
    ray_session: None, db_url: str
) -> Iterator[Callable[..., tuple[Repository, StudyRecord]]]:
    """Create a study from a spec mapping and run it to the end on the session's Ray."""
    from hpo.execution.driver import run_study

    repos: list[Repository] = []

    def run(data: dict[str, Any]) -> tuple[Repository, StudyRecord]:
        spec: StudySpec = load_spec(data)
        repo = Repository(db_url)
        repos.append(repo)
        study = repo.create_study(
            spec.name,
            spec.dump(),
            objective_metric=spec.objective.metric,
            objective_mode=spec.objective.mode,
            n_trials_target=spec.budget.trials,
        )
        return repo, run_study(repo, study.id)

    yield run
    for repo in repos:
        repo.close()


def branin_spec(**overrides: Any) -> dict[str, Any]:
    """A search over the multi-fidelity Branin user function (no training: fast)."""
    spec: dict[str, Any] = {
        "name": "branin",
        "objective": {"metric": "value", "mode": "min"},
        "trainable": {"function": "hpo.examples.functions:branin"},
        "budget": {"trials": 6, "max_epochs": 4, "min_epochs": 1, "concurrency": 2},
        "strategy": {"sampler": "random", "scheduler": "fifo", "seed": 0},
        "space": {"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}},
    }
    for key, value in overrides.items():
        if key in ("budget", "fixed") and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return spec
