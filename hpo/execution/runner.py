"""Runners: take queued studies from the database and run each in its own driver process.

A runner loops: claim a study (`Repository.claim_next_queued`: atomic, so two runners,
on one machine or many sharing a PostgreSQL, never take the same study; each claim gets
a new fencing token), start its driver as a child process (``python -m hpo run --resume
ID``, which adopts the runner's lease and token through ``HPO_LEASE_OWNER`` and
``HPO_LEASE_TOKEN``), renew the study's lease every `heartbeat_s` while the child lives,
and drop the lease when it exits. Studies that an ``hpo run`` left ``running`` when it
died are claimed too, once their lease lapses.

Why a process per study: a study owns a Ray driver (its trials die with it) and a crash
or a leak in one study must not take the runner, or other studies, down.

What survives what:

* The driver dies (``kill -9``, OOM): the study stays ``running`` under the lease, which
  is left to expire; then any runner claims it again and the driver resumes it (closing
  the trials that died, keeping every finished one). Waiting out the lease is also the
  back-off against a study whose driver crashes on start.
* The runner dies: its children die with it (``PR_SET_PDEATHSIG`` on Linux), so nobody
  renews the lease; it expires and another runner resumes the study.
* The lease is lost while the child runs (the database was unreachable longer than the
  lease, and another runner took the study over): the child is killed at once, so the
  study never has two drivers.
* `stop()` (SIGTERM): the children get SIGTERM, their drivers close the running trials
  and leave the studies ``queued``, and the runner returns: nothing is marked failed.

A runner holds no Ray itself: each driver connects to `ray_address`, or starts a local
Ray when there is none.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from hpo.storage.repository import Repository, StorageError, StudyRecord

# The environment through which a driver child adopts its runner's lease (driver.py reads
# them; kept here too so that the runner never imports Ray).
LEASE_OWNER_ENV = "HPO_LEASE_OWNER"
LEASE_TOKEN_ENV = "HPO_LEASE_TOKEN"

__all__ = ["Runner", "install_signal_handlers", "start_runners", "stop_runners"]

log = logging.getLogger(__name__)

# How long a stopping runner waits for its drivers to leave their studies resumable before
# killing them (a driver closes its trials and shuts Ray down in a few seconds).
STOP_GRACE_S = 60.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A `preexec_fn` that has the kernel SIGKILL the child when the thread that started
    it exits (the runner's thread, which waits for it), so a killed runner never leaves a
    driver running a study under a lease nobody renews. Linux only; elsewhere a driver
    outlives its runner until it finishes, and its lease still protects the study."""

    def preexec() -> None:
        # Between fork and exec: only async-signal-safe calls (prctl, getppid, _exit).
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the runner died before prctl took effect
                os._exit(1)

    return preexec


@dataclass
class _Child:
    study_id: int
    process: subprocess.Popen[bytes]
    token: int
    lease_lost: bool = False
    last_beat: float = field(default_factory=time.monotonic)


class Runner:
    """Claims studies from the database at `db_url` and runs up to `max_studies` at once.

    Thread-safe as far as its public methods go: `stop()` may be called from any thread
    (or a signal handler) while `run_forever()` or `run_once()` runs in another.
    """

    def __init__(
        self,
        db_url: str,
        *,
        worker_id: str | None = None,
        lease_s: float = 30,
        heartbeat_s: float = 5,
        ray_address: str | None = None,
        max_studies: int = 1,
        poll_s: float = 1.0,
    ) -> None:
        if heartbeat_s >= lease_s:
            raise ValueError(f"heartbeat_s ({heartbeat_s}) must be < lease_s ({lease_s})")
        if max_studies < 1:
            raise ValueError(f"max_studies must be >= 1, not {max_studies}")
        self.db_url = db_url
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s
        self.ray_address = ray_address
        self.max_studies = max_studies
        self.poll_s = poll_s
        self._stopping = threading.Event()
        self._children: dict[int, _Child] = {}
        self._lock = threading.Lock()
        self._repo: Repository | None = None
        self._thread: threading.Thread | None = None

    # -- public ------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Claim and run studies until `stop()`; then leave every running study resumable."""
        next_claim = 0.0
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                room = len(self._children) < self.max_studies
                if room and now >= next_claim and self._claim() is None:
                    # Nothing claimable: ask the database again in poll_s, not at once.
                    next_claim = now + self.poll_s
                self._tend()
                self._stopping.wait(self._tick())
        finally:
            self._shutdown()

    def run_once(self) -> int | None:
        """Claim one study and run it to the end of its driver; its id, or None if nothing
        was claimable. For tests and scripts: nothing else is claimed meanwhile."""
        try:
            study = self._claim()
            if study is None:
                return None
            while self._children and not self._stopping.is_set():
                self._tend()
                self._stopping.wait(self._tick())
            return study.id
        finally:
            self._shutdown()

    def stop(self) -> None:
        """Ask the runner to stop: its loop returns after its drivers left their studies
        resumable (SIGTERM to each, up to `STOP_GRACE_S`, then SIGKILL)."""
        self._stopping.set()

    @property
    def running(self) -> list[int]:
        """Ids of the studies this runner's drivers are running now."""
        with self._lock:
            return sorted(self._children)

    # -- internals ---------------------------------------------------------------------

    @property
    def repo(self) -> Repository:
        if self._repo is None:
            self._repo = Repository(self.db_url)
        return self._repo

    def _tick(self) -> float:
        # Wake often enough to notice a child's exit quickly, and to heartbeat on time.
        return min(0.2, self.heartbeat_s)

    def _claim(self) -> StudyRecord | None:
        try:
            study = self.repo.claim_next_queued(self.worker_id, self.lease_s)
        except StorageError:
            log.exception("runner %s: claiming a study failed; retrying", self.worker_id)
            return None
        if study is None:
            return None
        log.info("runner %s: claimed study %s (%s)", self.worker_id, study.id, study.name)
        try:
            child = _Child(study.id, self._spawn(study.id, study.lease_token), study.lease_token)
        except OSError:
            log.exception("runner %s: cannot start a driver for study %s", self.worker_id, study.id)
            self._expire(study.id)
            return None
        with self._lock:
            self._children[study.id] = child
        return study

    def _spawn(self, study_id: int, token: int) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "hpo",
            "run",
            "--resume",
            str(study_id),
            "--db",
            self.db_url,
            "--json",
        ]
        if self.ray_address:
            command += ["--ray-address", self.ray_address]
        # The child's output goes where the runner's does (a service's log); --json keeps
        # it to one document at the end instead of a progress bar.
        # The child adopts this runner's lease (and its fencing token) instead of claiming
        # the study again: it is the runner's driver, not a rival.
        env = {**os.environ, LEASE_OWNER_ENV: self.worker_id, LEASE_TOKEN_ENV: str(token)}
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent(os.getpid()),
        )

    def _tend(self) -> None:
        """Reap exited children and heartbeat the live ones."""
        with self._lock:
            children = list(self._children.values())
        for child in children:
            code = child.process.poll()
            if code is not None:
                self._reap(child, code)
            elif time.monotonic() - child.last_beat >= self.heartbeat_s:
                child.last_beat = time.monotonic()
                self._heartbeat(child)

    def _heartbeat(self, child: _Child) -> None:
        try:
            if self.repo.renew_lease(
                child.study_id, self.worker_id, self.lease_s, token=child.token
            ):
                return
            study = self.repo.get_study(child.study_id)
        except StorageError:
            # The database is unreachable: keep the driver; if this outlasts the lease,
            # the next successful look finds the study taken over and kills it.
            log.exception("runner %s: heartbeat of study %s failed", self.worker_id, child.study_id)
            return
        if study.status == "running" and study.lease_owner != self.worker_id:
            log.error(
                "runner %s: lost the lease of study %s to %s; killing its driver",
                self.worker_id,
                child.study_id,
                study.lease_owner,
            )
            child.lease_lost = True
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
        # Otherwise the driver itself ended the study (completed, cancelled, failed, or
        # queued on SIGTERM) and is exiting: nothing to renew, nothing to kill.

    def _reap(self, child: _Child, code: int) -> None:
        with self._lock:
            self._children.pop(child.study_id, None)
        if child.lease_lost:
            return
        try:
            study = self.repo.get_study(child.study_id)
        except StorageError:
            log.exception("runner %s: reading study %s failed", self.worker_id, child.study_id)
            return
        if study.status == "running" and study.lease_owner == self.worker_id:
            if self._stopping.is_set():
                # We stopped it: let another runner resume it at once.
                self._expire(child.study_id)
            else:
                # It died on its own: the lease runs out, then any runner resumes it.
                log.error(
                    "runner %s: driver of study %s exited with %s, study left running; "
                    "it resumes when its lease expires",
                    self.worker_id,
                    child.study_id,
                    code,
                )
            return
        log.info(
            "runner %s: study %s ended %s (driver exit %s)",
            self.worker_id,
            child.study_id,
            study.status,
            code,
        )
        with contextlib.suppress(StorageError):
            self.repo.release_lease(child.study_id, self.worker_id)

    def _expire(self, study_id: int) -> None:
        """Make a running study claimable now: renewing with a zero lease keeps the study
        `running` (so it is resumed, not restarted) with a lease that already ran out."""
        with contextlib.suppress(StorageError):
            self.repo.renew_lease(study_id, self.worker_id, 0)

    def _shutdown(self) -> None:
        """Stop the children (SIGTERM, then SIGKILL after the grace), reap them, close."""
        with self._lock:
            children = list(self._children.values())
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in children:
            try:
                code = child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                code = child.process.wait()
            self._reap(child, code)
        if self._repo is not None:
            self._repo.close()
            self._repo = None


def start_runners(
    db_url: str,
    n: int,
    *,
    ray_address: str | None,
    lease_s: float = 30,
    heartbeat_s: float = 5,
) -> list[Runner]:
    """Start `n` runners, each `run_forever` in a daemon thread (for ``hpo serve``).

    Each runner's drivers are tied to its thread (they die if it exits); stop them with
    `stop_runners` so their studies are left resumable.
    """
    runners = [
        Runner(db_url, ray_address=ray_address, lease_s=lease_s, heartbeat_s=heartbeat_s)
        for _ in range(n)
    ]
    for i, runner in enumerate(runners):
        runner._thread = threading.Thread(
            target=runner.run_forever, name=f"hpo-runner-{i}", daemon=True
        )
        runner._thread.start()
    return runners


def stop_runners(runners: list[Runner], timeout: float = STOP_GRACE_S + 10) -> None:
    """Stop every runner started by `start_runners` and wait for their threads: drivers
    get SIGTERM and leave their studies queued, resumable."""
    for runner in runners:
        runner.stop()
    for runner in runners:
        if runner._thread is not None:
            runner._thread.join(timeout)


def install_signal_handlers(runner: Runner) -> None:
    """SIGTERM and SIGINT stop `runner` cleanly (for ``hpo runner`` in the foreground)."""

    def handle(signum: int, frame: object) -> None:
        runner.stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
