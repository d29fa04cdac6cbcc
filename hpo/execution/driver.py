"""The driver: runs one study on Ray Tune, from the database back to the database.

`run_study` is the same code for a fresh study and for a resumed one: it reads what the
study already has (finished trials are never re-run, and the sampler learns from them),
closes trials a dead driver left `running`, runs the remaining trials on Ray, and ends
the study `completed`. A `kill -9` of this process loses nothing that was written; running
`run_study` again on the same study continues it.

Cancellation: whoever cancels a study only sets its ``cancel_requested`` flag (the driver
stays the study's one writer). The driver polls the flag while Ray runs (`CancelWatch`,
at most once a second), stops every trial, closes those that had not finished as
``failed`` with the error ``cancelled`` and ends the study ``cancelled``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ray.tune.stopper import Stopper

import hpo
from hpo.errors import SpecError
from hpo.execution.recorder import Progress, ResultWriter, StudyRecorder
from hpo.execution.schedulers import create_scheduler
from hpo.execution.searcher import SamplerSearcher
from hpo.execution.trainables import make_trainable
from hpo.samplers import create_sampler
from hpo.samplers.base import Sampler
from hpo.spec import StudySpec, load_spec
from hpo.storage.repository import Repository, StudyRecord

log = logging.getLogger(__name__)

FINISHED = ("completed", "pruned")
CANCELLED_ERROR = "cancelled"
# How often a running driver reads the study's cancel flag: cancelling takes effect within
# about this long, at the cost of one primary-key read per interval.
CANCEL_POLL_S = 1.0
# Ray Tune's per-trial CSV/JSON/TensorBoard loggers cost ~8x in results/s; the database is
# our record, so they are off (NOTES.md).
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# Tune would swallow Ctrl-C and return as if the study had ended; hpo handles it instead
# (the study is left queued, resumable).
os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")


def ensure_ray(address: str | None = None) -> None:
    """Connect to the Ray cluster at `address`, or start a local one (no dashboard).

    A process that already initialized Ray (a test session, a runner) keeps its instance.
    """
    import ray

    if ray.is_initialized():
        return
    # Ray installs its own SIGTERM handler (it exits at once); keep the caller's, so that
    # `hpo run` and the runner can stop cleanly and leave the study resumable.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    else:
        ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    if main and previous is not None:
        signal.signal(signal.SIGTERM, previous)


def space_params(spec: StudySpec, config: dict[str, Any]) -> dict[str, Any]:
    """The sampled part of a stored trial config (space and fixed names never overlap)."""
    return {name: config[name] for name in spec.space if name in config}


def _warm_start(
    sampler: Sampler, spec: StudySpec, repo: Repository, study_id: int
) -> tuple[int, int]:
    """Teach the sampler every finished trial; return (finished, all trials so far)."""
    finished = total = 0
    for trial in repo.iter_trials(study_id):
        total += 1
        if trial.status in FINISHED:
            finished += 1
            sampler.observe(space_params(spec, trial.config), trial.last_value)
    return finished, total


class CancelWatch(Stopper):
    """A Tune stopper that stops every trial once the study's cancel flag is set.

    Tune asks `stop_all` on every step of its loop; the database is read at most once per
    `poll_s`, and once the flag was seen the answer stays yes. It never stops a single
    trial (`__call__` is False): a trial stopped that way would end as completed.
    """

    def __init__(self, repo: Repository, study_id: int, poll_s: float = CANCEL_POLL_S) -> None:
        self._repo: Repository | None = repo
        self._study_id = study_id
        self._poll_s = poll_s
        self._next_poll = 0.0
        self.cancelled = False

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config for `Tuner.restore` (never used by hpo); the
        # repository's engine cannot travel.
        return {**self.__dict__, "_repo": None}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        now = time.monotonic()
        if not self.cancelled and self._repo is not None and now >= self._next_poll:
            self._next_poll = now + self._poll_s
            self.cancelled = self._repo.cancel_requested(self._study_id)
            if self.cancelled:
                log.info("study %s: cancel requested, stopping its trials", self._study_id)
        return self.cancelled


def run_study(
    repo: Repository,
    study_id: int,
    *,
    ray_address: str | None = None,
    progress: Progress | None = None,
    on_step: Callable[[], None] | None = None,
) -> StudyRecord:
    """Run (or continue) study `study_id` until it has `budget.trials` finished trials,
    its grid is exhausted or its time limit passes, or it is cancelled. Returns the final
    study record (status ``completed``, or ``cancelled``)."""
    study = repo.get_study(study_id)
    try:
        spec = load_spec(study.spec)
    except SpecError as exc:
        repo.set_study_status(study_id, "failed", error=f"invalid spec: {exc}")
        raise
    last_epoch = spec.budget.max_epochs
    closed = repo.close_running_trials(
        study_id,
        status="failed",
        error="its driver stopped before the trial finished",
        done_at_step=last_epoch,
    )
    if study.cancel_requested:
        # Cancelled while queued-and-claimed, or while a driver that died was running it.
        return _cancel(repo, study_id, last_epoch)
    # A runner sets a study `running` when it claims it, before this driver starts: the
    # log, not the status, tells whether the study ever started.
    resumed = closed > 0 or bool(repo.list_events(study_id, kind="started", limit=1))
    repo.set_study_status(study_id, "running")
    if resumed:
        repo.add_event(
            study_id, "resumed", f"study resumed; {closed} interrupted trial(s) closed"
        )
    else:
        repo.add_event(
            study_id,
            "started",
            f"study started ({spec.strategy.sampler} + {spec.strategy.scheduler})",
        )

    objective = spec.objective
    sampler = create_sampler(
        spec.strategy.sampler,
        spec.space,
        mode=objective.mode,
        seed=spec.strategy.seed,
        **spec.strategy.options,
    )
    finished, total = _warm_start(sampler, spec, repo, study_id)
    remaining = spec.budget.trials - finished
    progress = progress or Progress(target=spec.budget.trials, mode=objective.mode)
    progress.counts["completed"] = finished
    if remaining <= 0 or sampler.finished:
        return _complete(repo, study_id, "nothing left to run")

    watch = CancelWatch(repo, study_id)
    try:
        ensure_ray(ray_address)
        outcome = _fit(repo, study_id, spec, sampler, progress, remaining, total, on_step, watch)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: the trials die with this process; the study waits to resume.
        closed = repo.close_running_trials(
            study_id, status="failed", error="interrupted", done_at_step=last_epoch
        )
        repo.set_study_status(study_id, "queued")
        repo.add_event(
            study_id,
            "interrupted",
            f"driver interrupted; {closed} running trial(s) closed; "
            f"continue with `hpo run --resume {study_id}`",
        )
        raise
    except Exception as exc:
        repo.close_running_trials(
            study_id, status="failed", error=f"the study failed: {exc}", done_at_step=last_epoch
        )
        repo.set_study_status(study_id, "failed", error=f"{type(exc).__name__}: {exc}")
        repo.add_event(study_id, "failed", f"study failed: {type(exc).__name__}: {exc}")
        raise
    if watch.cancelled:
        return _cancel(repo, study_id, last_epoch)
    return _complete(repo, study_id, outcome)


def _fit(
    repo: Repository,
    study_id: int,
    spec: StudySpec,
    sampler: Sampler,
    progress: Progress,
    remaining: int,
    first_index: int,
    on_step: Callable[[], None] | None,
    watch: CancelWatch,
) -> str:
    from ray import tune

    budget, objective = spec.budget, spec.objective
    scheduler = create_scheduler(spec.strategy.scheduler, spec)
    deadline = time.monotonic() + budget.time_limit_s if budget.time_limit_s else None
    writer = ResultWriter(repo, study_id)
    recorder = StudyRecorder(
        spec,
        writer,
        scheduler,
        progress,
        run_id=uuid.uuid4().hex[:8],
        deadline=deadline,
        on_step=on_step,
        static_provenance={"hpo_version": hpo.__version__, "torch_version": _torch_version()},
    )
    trainable = tune.with_resources(
        make_trainable(spec), {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    )
    with tempfile.TemporaryDirectory(prefix=f"hpo-study{study_id}-") as ray_dir:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                metric=objective.metric,
                mode=objective.mode,
                search_alg=SamplerSearcher(sampler, spec, first_index=first_index),
                scheduler=scheduler,
                num_samples=remaining,
                max_concurrent_trials=budget.concurrency,
                reuse_actors=True,
                time_budget_s=budget.time_limit_s,
            ),
            run_config=tune.RunConfig(
                name=f"study-{study_id}",
                storage_path=ray_dir,
                callbacks=[recorder],
                stop=watch,
                failure_config=tune.FailureConfig(max_failures=budget.max_failures),
                verbose=0,
            ),
        )
        try:
            _quiet_ray_logs()
            tuner.fit()
        finally:
            writer.close()
    # Ray ends the trials still running at its time budget, or when the study is
    # cancelled, without a per-trial callback; nothing may stay `running` once the driver
    # is done.
    # A trial that reported the last epoch is closed as completed (see
    # `Repository.close_running_trials`).
    last_epoch = budget.max_epochs
    if watch.cancelled:
        repo.close_running_trials(
            study_id, status="failed", error=CANCELLED_ERROR, done_at_step=last_epoch
        )
        return "cancelled"
    if deadline is not None and time.monotonic() >= deadline:
        repo.close_running_trials(
            study_id,
            status="pruned",
            error="stopped by the study's time limit",
            done_at_step=last_epoch,
        )
        return "time limit reached"
    repo.close_running_trials(
        study_id,
        status="failed",
        error="Ray ended the trial without a result",
        done_at_step=last_epoch,
    )
    return "budget reached"


def _torch_version() -> str | None:
    # The installed version, without importing torch into the driver (1-2 s).
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def _complete(repo: Repository, study_id: int, why: str) -> StudyRecord:
    counts = repo.count_trials(study_id)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n)
    repo.set_study_status(study_id, "completed")
    repo.add_event(study_id, "completed", f"study completed: {why} ({summary or 'no trials'})")
    return repo.get_study(study_id)


def _cancel(repo: Repository, study_id: int, last_epoch: int) -> StudyRecord:
    closed = repo.close_running_trials(
        study_id, status="failed", error=CANCELLED_ERROR, done_at_step=last_epoch
    )
    counts = repo.count_trials(study_id)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n)
    repo.set_study_status(study_id, "cancelled")
    repo.add_event(
        study_id,
        "cancelled",
        f"study cancelled; {closed} running trial(s) stopped ({summary or 'no trials'})",
    )
    return repo.get_study(study_id)


def _quiet_ray_logs() -> None:
    # With its file loggers off, Tune warns at the end that it cannot build a ResultGrid
    # from them; we read results from the database, so that warning is noise.
    for name in (
        "ray.tune.result_grid",
        "ray.tune.tune",
        "ray.tune.analysis.experiment_analysis",
        "ray.tune.impl.tuner_internal",
        "ray.tune.execution.experiment_state",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)
