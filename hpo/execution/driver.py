"""The driver: runs one study on Ray Tune, from the database back to the database.

`run_study` is the same code for a fresh study and for a resumed one: it reads what the
study already has (finished trials are never re-run, and the sampler learns from them),
closes trials a dead driver left `running`, runs the remaining trials on Ray, and ends
the study `completed`. A `kill -9` of this process loses nothing that was written; running
`run_study` again on the same study continues it.

One fenced driver per study: `run_study` first takes the study's lease (`acquire_lease`:
on the database's clock; refused with who holds it and until when while another live
lease does), renews it from a heartbeat thread (`LeaseKeeper`), and carries its fencing
token on every write. When the lease is lost (another driver took the study over after
this one could not renew it), Ray is stopped at once and nothing more is written.
A runner's driver child adopts its runner's lease (``HPO_LEASE_OWNER`` and
``HPO_LEASE_TOKEN`` in its environment); ``hpo run SPEC`` creates its study already
claimed (`create_claimed_study`).

Trials with checkpoints (the built-in core, ``budget.checkpoint_every`` > 0) survive their
driver: a resumed study continues each trial a dead or interrupted driver left
``running`` with a recorded checkpoint, under the same trial number and attempt, from
the checkpoint's epoch (a ``restored`` event gives it); the others are closed ``failed``
and replaced, as before. Checkpoint files live in the artifact store (`hpo.artifacts`,
``HPO_ARTIFACTS``, by default beside the SQLite file).

Resume continues, never replays: the sampler is rebuilt with `continued_seed(study seed,
trials proposed so far)` and told every past trial as it ended (completed, pruned with
its history, failed), so no config is proposed twice after any number of crashes.

Warm starts (`strategy.warm_start`): the sampler observes an earlier study's finished
trials (`hpo.warm_start`) before its first ask, and the spec's points run first, in order;
a resume skips the points already proposed.

Outages: the repository retries transient errors for its window; past it the study goes
back to ``queued`` (best effort) or is left to its lapsing lease, never ``failed``.

Honest endings: a study that cannot start (a bad sampler option, resources the cluster
does not have) ends ``failed`` with the reason; one whose every trial failed ends
``failed`` naming the first error; the time limit counts from the study's first start,
across resumes (by the database's clock).

Cancellation: whoever cancels a study only sets its ``cancel_requested`` flag (the driver
stays the study's one writer). The driver polls the flag while Ray runs (`CancelWatch`,
at most once a second), stops every trial, closes those that had not finished as
``failed`` with the error ``cancelled`` and ends the study ``cancelled``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ray.tune.stopper import Stopper

import hpo
from hpo import artifacts
from hpo.errors import SpecError
from hpo.execution.recorder import Progress, ResultWriter, StudyRecorder
from hpo.execution.runner import LEASE_OWNER_ENV, LEASE_TOKEN_ENV
from hpo.execution.schedulers import create_scheduler
from hpo.execution.searcher import SamplerSearcher
from hpo.execution.trainables import (
    RESTORE_EPOCH_KEY,
    RESTORE_KEY,
    RESTORE_TRIAL_KEY,
    make_trainable,
    ray_checkpoints_needed,
)
from hpo.samplers import create_sampler
from hpo.samplers.base import Sampler, TrialState, continued_seed
from hpo.samplers.enqueued import Enqueued
from hpo.spec import StudySpec, load_spec
from hpo.storage.errors import LeaseLostError, StorageError
from hpo.storage.repository import Repository, StudyRecord, TrialRecord
from hpo.warm_start import learn_from_study

log = logging.getLogger(__name__)

FINISHED = ("completed", "pruned")
# The lease of `hpo run`'s driver (a runner's child adopts its runner's): renewed every
# HEARTBEAT_S, so a driver killed with -9 is taken over within LEASE_S.
LEASE_S = float(os.environ.get("HPO_LEASE_S", "30"))
HEARTBEAT_S = 5.0
_OWN_ID = f"hpo-run@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
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
    """Teach the sampler every past trial as it ended; return (finished, all trials)."""
    trials = list(repo.iter_trials(study_id))
    # Histories of every finished trial: a sampler that models budgets (BOHB) learns a
    # completed trial's intermediate values too, not only a pruned one's.
    done = [t.id for t in trials if t.status in FINISHED]
    histories = repo.metric_series(done, spec.objective.metric) if done else {}
    finished = 0
    for trial in trials:
        if trial.status in FINISHED:
            finished += 1
        if trial.status == "running":
            continue
        state: TrialState = "failed" if trial.status == "failed" else trial.status  # type: ignore[assignment]
        sampler.observe_values(
            space_params(spec, trial.config),
            _values(spec, trial),
            state=state,
            history=histories.get(trial.id, []),
            attempts=trial.attempt,
        )
    return finished, len(trials)


def _start_warm(
    sampler: Sampler, spec: StudySpec, repo: Repository, study_id: int, proposed: int, token: int
) -> Sampler:
    """`strategy.warm_start`: learn the earlier study's finished trials (`from_study`),
    then put the points not yet proposed (a resume skips those already run) in front."""
    warm = spec.strategy.warm_start
    if warm is None:
        return sampler
    learned = learn_from_study(sampler, repo, spec)
    if warm.from_study is not None and proposed == 0:
        repo.add_event(
            study_id,
            "warm_start",
            f"learned from {learned} finished trial(s) of study {warm.from_study}",
            token=token,
        )
    points = warm.points[proposed:]
    return Enqueued(sampler, points) if points else sampler


def _values(spec: StudySpec, trial: TrialRecord) -> list[float | None]:
    """A stored trial's value of each objective (its one value for one objective)."""
    if not spec.multi_objective:
        return [trial.objective_value]
    stored = trial.objective_values or []
    return list(stored) if len(stored) == len(spec.objectives) else [None] * len(spec.objectives)


def worker_id() -> str:
    """Who this driver is, as lease owner: a runner's child inherits its runner's id."""
    return os.environ.get(LEASE_OWNER_ENV) or _OWN_ID


def create_claimed_study(
    repo: Repository, spec: StudySpec, *, owner: str | None = None
) -> StudyRecord:
    """Store `spec` as a study already claimed by this process (``hpo run SPEC``), so no
    runner can take it before its driver starts."""
    return repo.create_study(
        spec.name,
        spec.dump(),
        objective_metric=spec.objective.metric,
        objective_mode=spec.objective.mode,
        n_trials_target=spec.budget.trials,
        owner=owner,
        lease_owner=worker_id(),
        lease_s=LEASE_S,
    )


class LeaseKeeper:
    """Renews the driver's lease every `heartbeat_s` on its own thread; `lost` once a
    renewal finds the lease taken (or the database unreachable past its retry window).
    Renewal does not require an unexpired lease, only an unchanged token: a driver that
    outlived an outage keeps its study unless another driver took it meanwhile."""

    def __init__(
        self,
        repo: Repository,
        study_id: int,
        worker: str,
        token: int,
        *,
        lease_s: float = 30.0,
        heartbeat_s: float = 5.0,
    ) -> None:
        self._repo, self._study_id, self._worker, self.token = repo, study_id, worker, token
        self._lease_s, self._heartbeat_s = lease_s, heartbeat_s
        # Why the lease is gone: another driver took the study over.
        self.lost: str | None = None
        # The database stayed unreachable past its retry window: the lease may lapse.
        self.unavailable: StorageError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"hpo-lease-{study_id}", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            try:
                held = self._repo.renew_lease(
                    self._study_id, self._worker, self._lease_s, token=self.token
                )
            except StorageError as exc:
                self.unavailable = exc
                log.error("study %s: cannot renew the lease: %s", self._study_id, exc)
                return
            if not held:
                self.lost = "another driver took the study over"
                log.error("study %s: lease lost (%s); stopping", self._study_id, self.lost)
                return


class CancelWatch(Stopper):
    """A Tune stopper that stops every trial once the study's cancel flag is set, the
    lease is lost, or the writer cannot store results.

    Tune asks `stop_all` on every step of its loop. The flag is read by a thread of its
    own, once per `poll_s` (started on the first `stop_all`, ended by `close`), so a
    database that hangs (an outage being waited out) never stalls Ray's loop; once the
    flag was seen the answer stays yes. It never stops a single trial (`__call__` is
    False): a trial stopped that way would end as completed.
    """

    def __init__(
        self,
        repo: Repository,
        study_id: int,
        poll_s: float = CANCEL_POLL_S,
        *,
        keeper: LeaseKeeper | None = None,
    ) -> None:
        self._repo: Repository | None = repo
        self._study_id = study_id
        self._poll_s = poll_s
        self.cancelled = False
        self._keeper = keeper
        self.writer: ResultWriter | None = None
        self._closed = threading.Event()
        self._poller: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config for `Tuner.restore` (never used by hpo); the
        # repository's engine and the threads cannot travel.
        return {
            **self.__dict__,
            "_repo": None,
            "_keeper": None,
            "writer": None,
            "_closed": None,
            "_poller": None,
        }

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        if self._poller is None and self._repo is not None:
            self._poller = threading.Thread(
                target=self._poll, name=f"hpo-cancel-{self._study_id}", daemon=True
            )
            self._poller.start()
        return self.cancelled or self.must_stop

    def close(self) -> None:
        """Stop polling (the run is over)."""
        self._closed.set()

    def _poll(self) -> None:
        assert self._repo is not None
        while not self._closed.is_set():
            try:
                self.cancelled = self._repo.cancel_requested(self._study_id)
            except StorageError:
                log.warning("study %s: cannot read the cancel flag", self._study_id)
            if self.cancelled:
                log.info("study %s: cancel requested, stopping its trials", self._study_id)
                return
            self._closed.wait(self._poll_s)

    @property
    def must_stop(self) -> bool:
        """The lease is lost, or the database is away past its window (the lease cannot
        be renewed, or the writer cannot store results): stop every trial now."""
        keeper = self._keeper
        if keeper is not None and (keeper.lost is not None or keeper.unavailable is not None):
            return True
        return self.writer is not None and self.writer.failed


def run_study(
    repo: Repository,
    study_id: int,
    *,
    ray_address: str | None = None,
    progress: Progress | None = None,
    on_step: Callable[[], None] | None = None,
    lease_s: float | None = None,
    heartbeat_s: float | None = None,
) -> StudyRecord:
    """Run (or continue) study `study_id` until it has `budget.trials` finished trials,
    its grid is exhausted or its time limit passes, or it is cancelled. Returns the final
    study record (``completed``, ``failed`` or ``cancelled``).

    Raises `LeaseHeldError` while another driver's live lease holds the study,
    `LeaseLostError` when the lease is lost midway (nothing more was written), and
    `StorageError` when the database stayed away past its window (the study is left
    ``queued``, or to its lapsing lease)."""
    lease_s = LEASE_S if lease_s is None else lease_s
    heartbeat_s = min(HEARTBEAT_S, lease_s / 3) if heartbeat_s is None else heartbeat_s
    worker = worker_id()
    inherited = os.environ.get(LEASE_TOKEN_ENV)
    study = repo.acquire_lease(
        study_id, worker, lease_s, token=int(inherited) if inherited else None
    )
    keeper = LeaseKeeper(
        repo, study_id, worker, study.lease_token, lease_s=lease_s, heartbeat_s=heartbeat_s
    ).start()
    try:
        return _drive(repo, study, keeper, ray_address, progress, on_step)
    except LeaseLostError:
        raise
    except StorageError:
        # The database was away past its window: hand the study back, resumable.
        with contextlib.suppress(StorageError):
            repo.close_running_trials(
                study_id, error="the database was unavailable", token=keeper.token
            )
            repo.set_study_status(study_id, "queued", token=keeper.token)
        raise
    finally:
        keeper.stop()


def _drive(
    repo: Repository,
    study: StudyRecord,
    keeper: LeaseKeeper,
    ray_address: str | None,
    progress: Progress | None,
    on_step: Callable[[], None] | None,
) -> StudyRecord:
    study_id, token = study.id, keeper.token
    try:
        spec = load_spec(study.spec)
    except SpecError as exc:
        repo.set_study_status(study_id, "failed", error=f"invalid spec: {exc}", token=token)
        raise
    last_epoch = spec.budget.max_epochs
    resumable = _resumable(repo, spec, study_id) if not study.cancel_requested else []
    closed = repo.close_running_trials(
        study_id,
        status="failed",
        error="its driver stopped before the trial finished",
        done_at_step=last_epoch,
        keep=[t.id for t in resumable],
        token=token,
    )
    if study.cancel_requested:
        # Cancelled while queued-and-claimed, or while a driver that died was running it.
        return _cancel(repo, study_id, last_epoch, token)
    # The claim sets a study `running` before this driver starts: the log, not the
    # status, tells whether the study ever started.
    resumed = (
        closed > 0 or bool(resumable) or bool(repo.list_events(study_id, kind="started", limit=1))
    )
    if resumed:
        repo.add_event(
            study_id,
            "resumed",
            f"study resumed by {study.lease_owner}; {closed} interrupted trial(s) closed, "
            f"{len(resumable)} continue from their checkpoints",
            token=token,
        )
    else:
        repo.add_event(
            study_id,
            "started",
            f"study started ({spec.strategy.sampler} + {spec.strategy.scheduler})",
            token=token,
        )

    objective = spec.objective
    proposed = study.last_trial_number
    try:
        sampler = create_sampler(
            spec.strategy.sampler,
            spec.space,
            mode=[o.mode for o in spec.objectives] if spec.multi_objective else objective.mode,
            seed=continued_seed(spec.strategy.seed, proposed),
            max_attempts=spec.budget.max_failures + 1,
            **spec.strategy.options,
        )
    except ValueError as exc:
        return _fail(repo, study_id, f"the sampler cannot start: {exc}", token)
    finished, total = _warm_start(sampler, spec, repo, study_id)
    try:
        sampler = _start_warm(sampler, spec, repo, study_id, proposed, token)
    except SpecError as exc:
        return _fail(repo, study_id, f"warm start refused: {exc}", token)
    remaining = spec.budget.trials - finished
    progress = progress or Progress(target=spec.budget.trials, mode=objective.mode)
    progress.counts["completed"] = finished
    if remaining <= 0 or (sampler.finished and not resumable):
        return _complete(repo, study_id, "nothing left to run", token)
    time_left = _time_left(spec, study)
    if time_left is not None and time_left <= 0:
        return _complete(repo, study_id, "time limit reached", token)

    watch = CancelWatch(repo, study_id, keeper=keeper)
    try:
        ensure_ray(ray_address)
        missing = _missing_resources(spec)
        if missing:
            return _fail(repo, study_id, missing, token)
        outcome = _fit(
            repo,
            study_id,
            spec,
            sampler,
            progress,
            remaining,
            total,
            on_step,
            watch,
            time_left,
            resumable,
        )
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: the trials die with this process; the study waits to resume,
        # and the trials with a checkpoint wait to continue from it.
        closed = repo.close_running_trials(
            study_id,
            status="failed",
            error="interrupted",
            done_at_step=last_epoch,
            keep=[t.id for t in _resumable(repo, spec, study_id)],
            token=token,
        )
        repo.set_study_status(study_id, "queued", token=token)
        repo.add_event(
            study_id,
            "interrupted",
            f"driver interrupted; {closed} running trial(s) closed; "
            f"continue with `hpo run --resume {study_id}`",
            token=token,
        )
        raise
    except StorageError:
        raise
    except Exception as exc:
        repo.close_running_trials(
            study_id,
            status="failed",
            error=f"the study failed: {exc}",
            done_at_step=last_epoch,
            token=token,
        )
        repo.set_study_status(study_id, "failed", error=f"{type(exc).__name__}: {exc}", token=token)
        repo.add_event(
            study_id, "failed", f"study failed: {type(exc).__name__}: {exc}", token=token
        )
        raise
    if watch.cancelled:
        return _cancel(repo, study_id, last_epoch, token)
    return _complete(repo, study_id, outcome, token)


def _resumable(repo: Repository, spec: StudySpec, study_id: int) -> list[TrialRecord]:
    """The running trials that can continue from a checkpoint (none before their last
    epoch ended: those are closed ``completed``)."""
    if not spec.trainable.builtin or spec.budget.checkpoint_every == 0:
        return []
    last_epoch = spec.budget.max_epochs
    return [t for t in repo.resumable_trials(study_id) if t.epochs_run < last_epoch]


def _restore_config(trial: TrialRecord) -> dict[str, Any]:
    """The config Ray runs a resumed trial with: its own, plus where to restore from."""
    checkpoint = trial.last_checkpoint or {}
    return {
        **trial.config,
        RESTORE_KEY: checkpoint["location"],
        RESTORE_EPOCH_KEY: int(checkpoint["epoch"]),
        RESTORE_TRIAL_KEY: trial.id,
    }


def _time_left(spec: StudySpec, study: StudyRecord) -> float | None:
    """Seconds of the time limit left, counted from the study's first start (the claim
    stamps `started_at` once and `heartbeat_at` now, both by the database's clock)."""
    limit = spec.budget.time_limit_s
    if limit is None or study.started_at is None or study.heartbeat_at is None:
        return limit
    return limit - (study.heartbeat_at - study.started_at).total_seconds()


def _missing_resources(spec: StudySpec) -> str | None:
    """Why no trial of `spec` could ever be placed on this cluster, or None."""
    import ray

    total = ray.cluster_resources()
    wanted = {"CPU": spec.resources.cpu, "GPU": spec.resources.gpu}
    short = [
        f"{name.lower()} {amount:g} (the cluster has {total.get(name, 0):g})"
        for name, amount in wanted.items()
        if amount > total.get(name, 0)
    ]
    if not short:
        return None
    return "resources cannot be satisfied: each trial asks for " + ", ".join(short)


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
    time_left: float | None,
    resumable: list[TrialRecord],
) -> str:
    from ray import tune

    budget, objective = spec.budget, spec.objective
    assert watch._keeper is not None
    token = watch._keeper.token
    scheduler = create_scheduler(spec.strategy.scheduler, spec)
    deadline = time.monotonic() + time_left if time_left is not None else None
    writer = ResultWriter(repo, study_id, token=token)
    watch.writer = writer
    run_id = uuid.uuid4().hex[:8]
    recorder = StudyRecorder(
        spec,
        writer,
        scheduler,
        progress,
        run_id=run_id,
        deadline=deadline,
        on_step=on_step,
        static_provenance={"hpo_version": hpo.__version__, "torch_version": _torch_version()},
        ray_keeps_checkpoints=ray_checkpoints_needed(spec),
        restored={
            t.id: (
                (t.last_checkpoint or {}).get("location"),
                (t.best_checkpoint or {}).get("location"),
            )
            for t in resumable
        },
    )
    folder = artifacts.join(
        artifacts.study_prefix(artifacts.default_root(repo.url), study_id), run_id
    )
    trainable = tune.with_resources(
        make_trainable(spec, folder=folder, database_url=repo.url),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )
    searcher = SamplerSearcher(
        sampler,
        spec,
        first_index=first_index,
        scheduler=scheduler,
        resumed=[_restore_config(t) for t in resumable],
    )
    search_alg: Any = searcher
    samples = remaining
    param_space: dict[str, Any] = {}
    if spec.strategy.scheduler == "pbt":
        search_alg, param_space, samples = _population(searcher, remaining)
    with tempfile.TemporaryDirectory(prefix=f"hpo-study{study_id}-") as ray_dir:
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=objective.metric,
                mode=objective.mode,
                search_alg=search_alg,
                scheduler=scheduler,
                num_samples=samples,
                max_concurrent_trials=budget.concurrency,
                reuse_actors=True,
                time_budget_s=time_left,
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
        lost = False
        try:
            _quiet_ray_logs()
            tuner.fit()
        finally:
            watch.close()
            lost = watch._keeper.lost is not None or writer.lease_lost is not None
            gone = writer.unavailable is not None or watch._keeper.unavailable is not None
            writer.close(abandon=lost or gone)
    if lost:
        raise LeaseLostError(
            f"study {study_id}: {watch._keeper.lost or writer.lease_lost}; this driver stopped"
        )
    unavailable = writer.unavailable or watch._keeper.unavailable
    if unavailable is not None:
        raise unavailable
    # Ray ends the trials still running at its time budget, or when the study is
    # cancelled, without a per-trial callback; nothing may stay `running` once the driver
    # is done.
    # A trial that reported the last epoch is closed as completed (see
    # `Repository.close_running_trials`).
    last_epoch = budget.max_epochs
    if watch.cancelled:
        repo.close_running_trials(
            study_id, status="failed", error=CANCELLED_ERROR, done_at_step=last_epoch, token=token
        )
        return "cancelled"
    if deadline is not None and time.monotonic() >= deadline:
        repo.close_running_trials(
            study_id,
            status="pruned",
            error="stopped by the study's time limit",
            done_at_step=last_epoch,
            token=token,
        )
        return "time limit reached"
    repo.close_running_trials(
        study_id,
        status="failed",
        error="Ray ended the trial without a result",
        done_at_step=last_epoch,
        token=token,
    )
    return "budget reached"


def _population(searcher: SamplerSearcher, size: int) -> tuple[Any, dict[str, Any], int]:
    """PBT's initial population: the sampler's first `size` configs (resumed trials
    first), run as given. Ray refuses a search algorithm beside PBT, so the sampler
    proposes them all up front and learns nothing from how they end. Returns Ray's
    generator, the param space its presets must name (each key's proposed values; the
    spec forbids conditions with pbt, so every config has every key) and the count."""
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    configs: list[dict[str, Any]] = []
    for index in range(size):
        config = searcher.suggest(f"pbt-{index}")
        if not isinstance(config, dict):
            break
        configs.append(config)
    space: dict[str, Any] = {}
    for config in configs:
        for key, value in config.items():
            space.setdefault(key, [])
            if value not in space[key]:
                space[key].append(value)
    param_space = {key: tune.choice(values) for key, values in space.items()}
    return BasicVariantGenerator(points_to_evaluate=configs), param_space, len(configs)


def _torch_version() -> str | None:
    # The installed version, without importing torch into the driver (1-2 s).
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def _complete(repo: Repository, study_id: int, why: str, token: int) -> StudyRecord:
    counts = repo.count_trials(study_id)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n)
    if counts["failed"] and not counts["completed"] and not counts["pruned"]:
        first = repo.list_trials(study_id, status="failed", limit=1)[0]
        headline = (first.error or "no error recorded").strip().splitlines()[0]
        return _fail(
            repo,
            study_id,
            f"every trial failed; the first (trial {first.number}): {headline}",
            token,
        )
    _test_best(repo, study_id, token)
    repo.set_study_status(study_id, "completed", token=token)
    repo.add_event(
        study_id,
        "completed",
        f"study completed: {why} ({summary or 'no trials'})",
        token=token,
    )
    return repo.get_study(study_id)


def _test_best(repo: Repository, study_id: int, token: int) -> None:
    """Score the chosen trial once on the held-out test split, when the study has one
    (`test_fraction`): after selection, so the search never saw it. A failure here is an
    event, not a failed study: the search itself succeeded."""
    from hpo.reproduce import test_best

    try:
        test_best(repo, study_id)
    except StorageError:
        raise
    except Exception as exc:
        repo.add_event(
            study_id,
            "test_failed",
            f"test evaluation failed: {type(exc).__name__}: {exc}",
            token=token,
        )


def _fail(repo: Repository, study_id: int, reason: str, token: int) -> StudyRecord:
    """End the study ``failed`` with `reason` (it cannot start, or every trial failed)."""
    repo.set_study_status(study_id, "failed", error=reason, token=token)
    repo.add_event(study_id, "failed", f"study failed: {reason}", token=token)
    return repo.get_study(study_id)


def _cancel(repo: Repository, study_id: int, last_epoch: int, token: int) -> StudyRecord:
    closed = repo.close_running_trials(
        study_id, status="failed", error=CANCELLED_ERROR, done_at_step=last_epoch, token=token
    )
    counts = repo.count_trials(study_id)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n)
    repo.set_study_status(study_id, "cancelled", token=token)
    repo.add_event(
        study_id,
        "cancelled",
        f"study cancelled; {closed} running trial(s) stopped ({summary or 'no trials'})",
        token=token,
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
