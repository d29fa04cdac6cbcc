"""Helpers of the API tests: specs, a real uvicorn server in a background thread, and a
study seeded through the repository as a runner would write it.

* ``live_server(app)`` — a context manager yielding the base URL of `app` being served on a
  port the OS picks.
* ``seed_study`` — a study with finished trials, per-epoch metrics and events.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from hpo import service
from hpo.spec import load_spec
from hpo.storage.repository import Repository, ResultRow, StudyRecord

BRANIN_SPEC: dict[str, Any] = {
    "name": "branin-api",
    "objective": {"metric": "value", "mode": "min"},
    "trainable": {"function": "hpo.examples.functions:branin"},
    "budget": {"trials": 3, "max_epochs": 3},
    "strategy": {"name": "random", "seed": 0},
    "space": {"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}},
}
BRANIN_YAML = """\
name: branin-yaml
objective: {metric: value, mode: min}
trainable: {function: "hpo.examples.functions:branin"}
budget: {trials: 2, max_epochs: 2}
strategy: random
space:
  x1: {uniform: [-5, 10]}
  x2: {uniform: [0, 15]}
"""


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 at a port the OS picks; yield ``http://127.0.0.1:PORT``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def seed_study(
    repo: Repository,
    *,
    owner: str | None = None,
    values: tuple[float, ...] = (3.0, 1.0, 2.0),
    finish: bool = True,
) -> StudyRecord:
    """A branin study whose trial i reports `values[i]` + (epochs - epoch) at each of its
    epochs (the last trial pruned after one epoch), with the events a runner writes."""
    spec = load_spec(BRANIN_SPEC)
    study = service.submit_study(repo, spec, owner=owner)
    repo.set_study_status(study.id, "running")
    repo.add_event(study.id, "started", "study started")
    for i, value in enumerate(values):
        trial = repo.create_trial(
            study.id,
            config={"x1": float(i), "x2": value},
            seed=i,
            ray_trial_id=None,
            provenance={"hostname": "test"},
        )
        repo.add_event(
            study.id, "trial_started", f"trial {trial.number} started", trial_id=trial.id
        )
        pruned = i == len(values) - 1
        epochs = 1 if pruned else 3
        rows = [
            ResultRow(
                trial.id,
                epoch,
                {"epoch": epoch, "value": value + 3 - epoch, "aux": 10.0 * i},
                value + 3 - epoch,
            )
            for epoch in range(1, epochs + 1)
        ]
        repo.record_results(rows)
        status = "pruned" if pruned else "completed"
        repo.finish_trial(trial.id, status)
        repo.add_event(
            study.id, f"trial_{status}", f"trial {trial.number} {status}", trial_id=trial.id
        )
    if finish:
        repo.set_study_status(study.id, "completed")
        repo.add_event(study.id, "completed", "study completed")
    return repo.get_study(study.id)
