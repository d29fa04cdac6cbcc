"""The deployment as a team runs it: docker/compose.yaml on a real Docker engine.

PostgreSQL, a Ray head, the API (one runner) and two CPU workers; studies submitted over
REST with a token. Then the failures a cluster has: a worker killed mid-trial, the API
(runner and driver) killed and restarted, PostgreSQL killed and restarted, each while a
study runs. Nothing may be lost: every trial of the budget ends completed, none stays
running, and each trial's delivered attempt has every epoch's metrics exactly once.

Skips, saying why, where no Docker engine can be started (tests/e2e/engine.py).
"""

from __future__ import annotations

import subprocess
import time
from collections import defaultdict
from typing import Any

import pytest

from tests.e2e import engine
from tests.e2e.conftest import Stack

# The first test also pays for building the images (minutes, cold): pytest-timeout's
# per-test limit counts fixture set-up.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

MAX_EPOCHS = 6
SLEEP_S = 2.0


def _spec(name: str, trials: int) -> dict[str, Any]:
    """A search whose trials take a known time: the Branin example function, installed in
    the image, sleeping `SLEEP_S` per epoch, so that a trial is surely caught mid-way
    however busy the machine is (a training run's epoch takes 0.3 s idle, 10 s loaded)."""
    return {
        "name": name,
        "objective": {"metric": "value", "mode": "min"},
        "trainable": {"function": "hpo.examples.functions:branin"},
        "budget": {
            "trials": trials,
            "max_epochs": MAX_EPOCHS,
            "concurrency": 4,
            "max_failures": 3,
        },
        "resources": {"cpu": 1, "gpu": 0},
        "strategy": {"sampler": "random", "scheduler": "fifo", "seed": 0},
        "space": {"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}},
        "fixed": {"sleep_s": SLEEP_S},
    }


def _submit(stack: Stack, spec: dict[str, Any]) -> int:
    study = stack.request("POST", "/api/v1/studies", spec)
    assert study["status"] == "queued", study
    return int(study["id"])


def _trials(stack: Stack, study_id: int) -> list[dict[str, Any]]:
    page = stack.get(f"/api/v1/studies/{study_id}/trials?limit=500")
    return list(page["data"])


def _wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _wait_for_end(stack: Stack, study_id: int, timeout: float = 420) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        study: dict[str, Any] = stack.get(f"/api/v1/studies/{study_id}")
        return study if study["status"] not in ("queued", "running") else None

    result: dict[str, Any] = _wait_until(ended, timeout, f"study {study_id} to end")
    return result


def _mid_trial(stack: Stack, study_id: int, hostnames: set[str]) -> dict[str, Any] | None:
    """A running trial on one of `hostnames` that has reported an epoch but not its last."""
    for trial in _trials(stack, study_id):
        if (
            trial["status"] == "running"
            and trial["provenance"].get("hostname") in hostnames
            and 1 <= trial["epochs_run"] < MAX_EPOCHS - 1
        ):
            return trial
    return None


def _assert_nothing_lost(stack: Stack, study_id: int, trials: int) -> list[dict[str, Any]]:
    """The study completed its budget; no trial running; the delivered attempt of every
    completed trial has each epoch 1..MAX_EPOCHS once, with the same metrics each epoch."""
    study = _wait_for_end(stack, study_id)
    assert study["status"] == "completed", study
    rows = _trials(stack, study_id)
    statuses = [t["status"] for t in rows]
    assert "running" not in statuses, statuses
    completed = [t for t in rows if t["status"] == "completed"]
    assert len(completed) == trials, statuses
    # Every other trial was closed by a failure it names (the driver's death).
    for trial in rows:
        if trial["status"] != "completed":
            assert trial["status"] == "failed" and trial["error"], trial

    metrics = stack.sql(
        "SELECT m.trial_id, m.attempt, m.step, m.name, count(*) FROM metrics m "
        f"JOIN trials t ON t.id = m.trial_id WHERE t.study_id = {study_id} "
        "GROUP BY m.trial_id, m.attempt, m.step, m.name"
    )
    steps: dict[tuple[int, int], dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for trial_id, attempt, step, name, count in metrics:
        assert count == "1", f"trial {trial_id} attempt {attempt} step {step} {name}: {count}x"
        steps[(int(trial_id), int(attempt))][int(step)].add(name)
    for trial in completed:
        epochs = steps[(trial["id"], trial["attempt"])]
        assert sorted(epochs) == list(range(1, MAX_EPOCHS + 1)), (trial["number"], epochs)
        names = {frozenset(n) for n in epochs.values()}
        assert names == {frozenset({"value"})}, names
        assert trial["epochs_run"] == MAX_EPOCHS
    return rows


def _spread_and_mid_trial(
    stack: Stack, study_id: int, hosts: set[str]
) -> tuple[set[str], dict[str, Any]] | None:
    """(the workers running trials, a trial part-way) once trials run on every worker."""
    trials = _trials(stack, study_id)
    running_on = {t["provenance"].get("hostname") for t in trials if t["status"] == "running"}
    victim = _mid_trial(stack, study_id, hosts)
    return (running_on & hosts, victim) if hosts <= running_on and victim else None


def test_a_study_spreads_over_the_workers_and_survives_losing_one(stack: Stack) -> None:
    workers = stack.containers("ray-worker-cpu")
    assert len(workers) == 2
    assert not stack.containers("ray-worker"), "GPU workers must wait for --profile gpu"
    hosts = {stack.hostname(c): c for c in workers}
    study_id = _submit(stack, _spec("e2e-worker-loss", trials=6))

    # Trials spread over both workers (each records its Ray node and host); then kill the
    # worker running a trial that is part-way through its epochs.
    spread, victim_trial = _wait_until(
        lambda: _spread_and_mid_trial(stack, study_id, set(hosts)),
        300,
        "trials on both workers, one part-way",
    )
    assert spread == set(hosts)
    victim = hosts[victim_trial["provenance"]["hostname"]]
    engine.docker("kill", victim)

    rows = _assert_nothing_lost(stack, study_id, trials=6)
    by_number = {t["number"]: t for t in rows}
    # The interrupted trial was retried as a new attempt and delivered by it, on the
    # surviving worker (a killed container is not restarted: `docker kill` counts as a stop).
    retried = by_number[victim_trial["number"]]
    assert retried["status"] == "completed" and retried["attempt"] >= 2, retried
    survivor = next(h for h in hosts if hosts[h] != victim)
    assert retried["provenance"]["hostname"] == survivor
    # Every trial recorded the Ray node of its delivered attempt: a worker, never the head
    # or the API's node.
    for trial in rows:
        assert trial["provenance"].get("node_id"), trial
        assert trial["provenance"].get("hostname") in hosts, trial["provenance"]
    # The earlier attempt's epochs stay stored under their attempt number.
    earlier = stack.sql(
        f"SELECT count(*) FROM metrics WHERE trial_id = {retried['id']} AND attempt = 1"
    )
    assert int(earlier[0][0]) >= 1


def _restart(stack: Stack, service: str) -> None:
    """`docker kill` the service's container, then start it again (the restart policy
    may already have)."""
    (container,) = stack.containers(service)
    engine.docker("kill", container)
    time.sleep(2)
    if not stack.inspect(container)["State"]["Running"]:
        engine.docker("start", container)


def test_the_study_resumes_after_the_api_and_the_database_are_killed(stack: Stack) -> None:
    # The worker killed above rejoins as a new Ray node when Compose starts it again.
    stack.compose("up", "-d", "--no-build", "--scale", "ray-worker-cpu=2")
    _wait_until(lambda: stack.ray_cpu_nodes() == 2, 180, "two CPU workers again")
    study_id = _submit(stack, _spec("e2e-api-db-loss", trials=6))
    workers = {stack.hostname(c) for c in stack.containers("ray-worker-cpu")}
    _wait_until(lambda: _mid_trial(stack, study_id, workers), 300, "a trial part-way")
    _restart(stack, "api")
    # The restarted runner takes the study over once the dead driver's lease expires, and
    # closes the trials the dead driver left running.
    _wait_until(
        lambda: (
            any(t["status"] == "failed" for t in _trials(stack, study_id))
            and _mid_trial(stack, study_id, workers)
        ),
        300,
        "the study running again after the API's restart",
    )
    _restart(stack, "postgres")
    _assert_nothing_lost(stack, study_id, trials=6)
    kinds = [row[0] for row in stack.sql(f"SELECT kind FROM events WHERE study_id = {study_id}")]
    assert "resumed" in kinds, kinds


def test_ray_is_closed_to_the_host_and_to_drivers_without_the_token(stack: Stack) -> None:
    # Only the API publishes a port; no Ray port is reachable from the host.
    published: dict[str, list[str]] = {}
    for service in ("postgres", "ray-head", "ray-worker-cpu", "api"):
        for container in stack.containers(service):
            ports = stack.inspect(container)["NetworkSettings"]["Ports"] or {}
            bound = [port for port, bindings in ports.items() if bindings]
            if bound:
                published[service] = bound
    assert published == {"api": ["8000/tcp"]}, published
    # A driver on the cluster's own network, without the token, is refused.
    (head,) = stack.containers("ray-head")
    script = "import ray; ray.init(address='ray-head:6379'); print('joined')"
    without_token = ["env", "-u", "RAY_AUTH_TOKEN", "-u", "RAY_AUTH_MODE", "timeout", "120"]
    refused = subprocess.run(
        [engine.docker_binary(), "exec", head, *without_token, "python3", "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert refused.returncode != 0 and "joined" not in refused.stdout, refused.stdout
    assert "auth" in (refused.stdout + refused.stderr).lower(), refused.stderr[-2000:]
