"""Contract tests for `Repository`: every behaviour runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from typing import Any, cast

import pytest

from hpo.storage.errors import NotFoundError
from hpo.storage.repository import Repository, ResultRow, StudyRecord, TrialRecord


@pytest.fixture
def repo(db_url: str) -> Iterator[Repository]:
    with Repository(db_url) as repository:
        yield repository


def make_study(repo: Repository, mode: str = "min", **kw: Any) -> StudyRecord:
    return repo.create_study(
        kw.pop("name", "study"),
        {"objective": {"metric": "loss", "mode": mode}},
        objective_metric="loss",
        objective_mode=mode,  # type: ignore[arg-type]
        n_trials_target=kw.pop("n_trials_target", 10),
        **kw,
    )


def make_trial(repo: Repository, study_id: int, **kw: Any) -> TrialRecord:
    return repo.create_trial(
        study_id,
        config=kw.pop("config", {"lr": 0.1}),
        seed=kw.pop("seed", 0),
        ray_trial_id=kw.pop("ray_trial_id", None),
        provenance=kw.pop("provenance", {"hostname": "test"}),
    )


def report(
    repo: Repository, trial_id: int, values: list[float], **extra: Callable[[int], float]
) -> None:
    """Report `values` of the objective ``loss`` at steps 1, 2, …, in one batch."""
    repo.record_results(
        [
            ResultRow(
                trial_id,
                step,
                {"loss": value, **{name: f(step) for name, f in extra.items()}},
                value,
            )
            for step, value in enumerate(values, start=1)
        ]
    )


class TestRepositoryContract:
    def test_study_lifecycle(self, repo: Repository) -> None:
        study = make_study(repo, owner="ada")
        assert study.status == "queued"
        assert study.spec == {"objective": {"metric": "loss", "mode": "min"}}
        assert study.created_at.tzinfo is not None
        assert study.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert repo.get_study(study.id) == study

        repo.set_study_status(study.id, "running")
        running = repo.get_study(study.id)
        assert running.status == "running"
        assert running.started_at is not None and running.started_at.tzinfo == UTC
        assert running.finished_at is None

        repo.set_study_status(study.id, "failed", error="boom")
        failed = repo.get_study(study.id)
        assert (failed.status, failed.error) == ("failed", "boom")
        assert failed.started_at == running.started_at
        assert failed.finished_at is not None and failed.finished_at >= failed.started_at

        trial = make_trial(repo, study.id)
        report(repo, trial.id, [1.0, 0.5])
        repo.add_event(study.id, "started", "go")
        repo.delete_study(study.id)
        with pytest.raises(NotFoundError):
            repo.get_study(study.id)
        assert repo.trial_metrics(trial.id) == []
        with pytest.raises(NotFoundError):
            repo.delete_study(study.id)
        with pytest.raises(NotFoundError):
            repo.set_study_status(study.id, "running")

    def test_list_and_count_studies(self, repo: Repository) -> None:
        ids = [make_study(repo, name=f"s{i}", owner="ada" if i % 2 else "bob").id for i in range(5)]
        repo.set_study_status(ids[0], "running")
        assert [s.id for s in repo.list_studies()] == ids[::-1]
        assert [s.id for s in repo.list_studies(limit=2, offset=1)] == ids[3:1:-1]
        assert [s.id for s in repo.list_studies(owner="ada")] == [ids[3], ids[1]]
        assert [s.id for s in repo.list_studies(status="running")] == [ids[0]]
        assert repo.count_studies() == 5
        assert repo.count_studies(status="queued", owner="bob") == 2

    def test_unknown_status_is_refused(self, repo: Repository) -> None:
        study = make_study(repo)
        with pytest.raises(ValueError, match="unknown study status"):
            repo.set_study_status(study.id, "paused")  # type: ignore[arg-type]

    def test_trial_numbers_are_unique_under_concurrent_writers(self, repo: Repository) -> None:
        study = make_study(repo)
        other = make_study(repo)

        def create(i: int) -> int:
            return make_trial(repo, study.id, seed=i).number

        with ThreadPoolExecutor(max_workers=6) as pool:
            numbers = list(pool.map(create, range(36)))
        assert sorted(numbers) == list(range(1, 37))
        assert make_trial(repo, other.id).number == 1
        assert repo.get_study(study.id).last_trial_number == 36

    def test_trial_lookup(self, repo: Repository) -> None:
        study = make_study(repo)
        trial = make_trial(repo, study.id, ray_trial_id="abc_00001", config={"lr": 0.01})
        assert trial.status == "running"
        assert trial.config == {"lr": 0.01}
        assert trial.provenance == {"hostname": "test"}
        assert repo.get_trial(study.id, 1) == trial
        assert repo.get_trial_by_ray_id(study.id, "abc_00001") == trial
        assert repo.get_trial_by_ray_id(study.id, "nope") is None
        with pytest.raises(NotFoundError):
            repo.get_trial(study.id, 2)
        with pytest.raises(NotFoundError):
            make_trial(repo, study.id + 1000)
        # The driver's key is unique per study: creating it again (a call re-sent after a
        # lost commit acknowledgement) returns the stored trial and numbers nothing new.
        assert make_trial(repo, study.id, ray_trial_id="abc_00001") == trial
        assert repo.get_study(study.id).last_trial_number == 1

    def test_record_results_is_idempotent_on_resent_steps(self, repo: Repository) -> None:
        study = make_study(repo)
        trial = make_trial(repo, study.id)
        report(repo, trial.id, [3.0, 2.0, 1.0], acc=lambda s: s / 10)
        report(repo, trial.id, [3.0, 2.0, 1.0], acc=lambda s: s / 10)
        repo.record_results([ResultRow(trial.id, 2, {"loss": 2.0, "acc": 0.2}, 2.0)])
        history = repo.trial_metrics(trial.id)
        assert [(m.step, m.name, m.value) for m in history] == [
            (1, "acc", 0.1),
            (1, "loss", 3.0),
            (2, "acc", 0.2),
            (2, "loss", 2.0),
            (3, "acc", 0.3),
            (3, "loss", 1.0),
        ]
        stored = repo.get_trial(study.id, 1)
        assert (stored.epochs_run, stored.last_value, stored.best_value) == (3, 1.0, 1.0)
        assert stored.final_metrics == {"loss": 1.0, "acc": 0.3}

    def test_record_results_batches_many_trials(self, repo: Repository) -> None:
        study = make_study(repo)
        trials = [make_trial(repo, study.id) for _ in range(3)]
        repo.record_results(
            [
                ResultRow(t.id, step, {"loss": step * (i + 1.0)}, step * (i + 1.0))
                for step in (1, 2)
                for i, t in enumerate(trials)
            ]
        )
        assert [t.epochs_run for t in repo.list_trials(study.id)] == [2, 2, 2]
        assert [t.best_value for t in repo.list_trials(study.id)] == [1.0, 2.0, 3.0]
        with pytest.raises(NotFoundError):
            repo.record_results([ResultRow(10_000, 1, {"loss": 1.0}, 1.0)])
        repo.record_results([])

    @pytest.mark.parametrize(("mode", "best"), [("min", 0.5), ("max", 2.0)])
    def test_best_value_follows_the_mode_and_ignores_non_finite(
        self, repo: Repository, mode: str, best: float
    ) -> None:
        study = make_study(repo, mode=mode)
        trial = make_trial(repo, study.id)
        report(repo, trial.id, [1.0, math.nan, 2.0, math.inf, -math.inf, 0.5, math.nan])
        stored = repo.get_trial(study.id, 1)
        assert stored.best_value == best
        assert stored.epochs_run == 7
        assert stored.last_value is None  # the last report was NaN
        assert stored.final_metrics == {"loss": None}
        assert [m.value for m in repo.trial_metrics(trial.id)][:2] == [1.0, None]

        repo.finish_trial(trial.id, "completed")
        # The trial's one value is its last epoch's (objective.value: last), NaN here: it
        # has no value to rank, its best epoch stays visible beside it.
        assert repo.get_trial(study.id, 1).objective_value is None
        assert repo.get_study(study.id).best_trial_id is None

    def test_a_trial_with_only_non_finite_values_is_never_best(self, repo: Repository) -> None:
        study = make_study(repo)
        trial = make_trial(repo, study.id)
        report(repo, trial.id, [math.nan, math.inf])
        repo.finish_trial(trial.id, "completed")
        assert repo.best_trial(study.id) is None
        assert repo.get_study(study.id).best_value is None

    def test_best_trial_ran_its_full_budget_pruned_only_when_none_did(
        self, repo: Repository
    ) -> None:
        study = make_study(repo, mode="max")
        values = {"pruned": 0.8, "completed": 0.7, "failed": 0.99, "running": 0.95}
        trials = {}
        for status, value in values.items():
            trials[status] = make_trial(repo, study.id)
            report(repo, trials[status].id, [value / 2, value])
        assert repo.best_trial(study.id) is None
        repo.finish_trial(trials["pruned"].id, "pruned")
        # No trial ran its budget yet: the pruned one is best.
        assert repo.get_study(study.id).best_trial_id == trials["pruned"].id
        for status in ("completed", "failed"):
            repo.finish_trial(trials[status].id, status, error="x" if status == "failed" else None)  # type: ignore[arg-type]
        best = repo.best_trial(study.id)
        assert best is not None
        # 0.8 (pruned) and 0.99 (failed) are higher, yet the completed 0.7 is best.
        assert (best.id, best.status, best.objective_value) == (
            trials["completed"].id,
            "completed",
            0.7,
        )
        assert repo.get_study(study.id).best_value == 0.7
        failed = repo.get_trial(study.id, trials["failed"].number)
        assert failed.error == "x" and failed.finished_at is not None
        with pytest.raises(NotFoundError):
            repo.finish_trial(10_000, "completed")

    @pytest.mark.parametrize(("kind", "expected"), [("last", 0.4), ("best", 0.2)])
    def test_one_objective_value_per_trial(
        self, repo: Repository, kind: str, expected: float
    ) -> None:
        study = repo.create_study(
            "s",
            {"objective": {"metric": "loss", "mode": "min", "value": kind}},
            objective_metric="loss",
            objective_mode="min",
            n_trials_target=3,
        )
        a = make_trial(repo, study.id)
        report(repo, a.id, [0.5, 0.2, 0.4])  # best epoch 0.2, delivered 0.4
        b = make_trial(repo, study.id)
        report(repo, b.id, [0.6, 0.3])
        for t in (a, b):
            repo.finish_trial(t.id, "completed")
        stored = repo.get_trial(study.id, 1)
        assert (stored.last_value, stored.best_value, stored.objective_value) == (
            0.4,
            0.2,
            expected,
        )
        # last: b's 0.3 beats a's 0.4; best: a's 0.2 beats b's 0.3.
        winner = b if kind == "last" else a
        assert repo.get_study(study.id).best_trial_id == winner.id
        assert repo.get_study(study.id).best_value == (0.3 if kind == "last" else 0.2)

    def test_ties_go_to_the_earlier_trial(self, repo: Repository) -> None:
        study = make_study(repo)
        trials = [make_trial(repo, study.id) for _ in range(3)]
        for t in reversed(trials):
            report(repo, t.id, [0.5])
            repo.finish_trial(t.id, "completed")
        assert repo.get_study(study.id).best_trial_id == trials[0].id

    def test_count_trials(self, repo: Repository) -> None:
        study = make_study(repo)
        trials = [make_trial(repo, study.id) for _ in range(4)]
        repo.finish_trial(trials[0].id, "completed")
        repo.finish_trial(trials[1].id, "pruned")
        repo.finish_trial(trials[2].id, "pruned")
        assert repo.count_trials(study.id) == {
            "running": 1,
            "completed": 1,
            "pruned": 2,
            "failed": 0,
        }

    def test_close_running_trials(self, repo: Repository) -> None:
        study = make_study(repo)
        trials = [make_trial(repo, study.id) for _ in range(3)]
        repo.finish_trial(trials[0].id, "completed")
        assert repo.close_running_trials(study.id) == 2
        assert repo.close_running_trials(study.id) == 0
        closed = repo.get_trial(study.id, 2)
        assert closed.status == "failed" and closed.error and closed.finished_at
        assert repo.count_trials(study.id)["running"] == 0
        assert repo.get_trial(study.id, 1).status == "completed"

    def test_close_running_trials_keeps_finished_training(self, repo: Repository) -> None:
        """A running trial that reported the last epoch is closed as completed (its
        training ended; only its completion was not recorded) and may become the best."""
        study = make_study(repo)
        done, midway, _silent = (make_trial(repo, study.id) for _ in range(3))
        report(repo, done.id, [0.9, 0.5, 0.2])
        report(repo, midway.id, [0.8, 0.1])
        closed = repo.close_running_trials(
            study.id, status="failed", error="cancelled", done_at_step=3
        )
        assert closed == 3
        after = {t.number: t for t in repo.list_trials(study.id)}
        assert (after[1].status, after[1].error) == ("completed", None)
        assert (after[2].status, after[2].error) == ("failed", "cancelled")
        assert (after[3].status, after[3].error) == ("failed", "cancelled")
        assert all(t.finished_at is not None for t in after.values())
        # Only the completed one is eligible: 0.2, not the failed trial's 0.1.
        assert repo.get_study(study.id).best_value == pytest.approx(0.2)
        assert repo.best_trial(study.id).number == 1  # type: ignore[union-attr]

    def test_list_trials_sorts_by_a_hyperparameter(self, repo: Repository) -> None:
        """Numbers by value (10 after 2, unlike text), strings alphabetically, a trial
        without the parameter (a failed condition) last in both directions."""
        study = make_study(repo)
        configs = [
            {"opt": "sgd", "lr": 10},
            {"opt": "adam", "lr": 2},
            {"opt": "adamw", "lr": 0.1},
            {"lr": 0.5},
        ]
        for config in configs:
            make_trial(repo, study.id, config=config)

        def numbers(sort: str, descending: bool) -> list[int]:
            trials = repo.list_trials(study.id, sort=sort, descending=descending)
            return [t.number for t in trials]

        assert numbers("param:lr", False) == [3, 4, 2, 1]
        assert numbers("param:lr", True) == [1, 2, 4, 3]
        assert numbers("param:opt", False) == [2, 3, 1, 4]
        assert numbers("param:opt", True) == [1, 3, 2, 4]
        assert numbers("param:nothing", False) == [1, 2, 3, 4]
        # Names that would break out of a JSON path or a string literal are plain keys.
        hostile = "param:" + 'x"].\\' + "' OR 1=1 --"
        assert numbers(hostile, False) == [1, 2, 3, 4]

    def test_list_trials_sorts_pages_and_filters(self, repo: Repository) -> None:
        study = make_study(repo, mode="max")
        losses = [[0.5, 0.4], [0.9], [0.2, 0.7, 0.6], [0.3]]
        trials = [make_trial(repo, study.id) for _ in losses]
        for trial, values in zip(trials, losses, strict=True):
            # acc at each step is 1 - loss; `other` only exists on trial 3's last step.
            acc = dict(enumerate((1 - v for v in values), start=1))
            report(repo, trial.id, values, acc=acc.__getitem__)
        repo.record_results([ResultRow(trials[2].id, 3, {"other": 5.0}, 0.6)])
        make_trial(repo, study.id)  # number 5: no results at all

        def numbers(**kw: Any) -> list[int]:
            return [t.number for t in repo.list_trials(study.id, **kw)]

        assert numbers() == [1, 2, 3, 4, 5]
        assert numbers(descending=True) == [5, 4, 3, 2, 1]
        assert numbers(limit=2, offset=1) == [2, 3]
        # Objective columns default to best first (max), missing values last.
        assert numbers(sort="best_value") == [2, 3, 1, 4, 5]
        assert numbers(sort="best_value", descending=False) == [4, 1, 3, 2, 5]
        assert numbers(sort="last_value", limit=2) == [2, 3]
        assert numbers(sort="epochs_run", descending=True) == [3, 1, 2, 4, 5]
        assert numbers(sort="started_at") == [1, 2, 3, 4, 5]
        # Metrics sort by their value at the trial's last step; the objective is best first.
        assert numbers(sort="loss") == [2, 3, 1, 4, 5]
        assert numbers(sort="acc") == [2, 3, 1, 4, 5]
        assert numbers(sort="acc", descending=True) == [4, 1, 3, 2, 5]
        assert numbers(sort="other") == [3, 1, 2, 4, 5]
        assert numbers(sort="missing") == [1, 2, 3, 4, 5]

        repo.finish_trial(trials[1].id, "completed")
        repo.finish_trial(trials[3].id, "pruned")
        assert numbers(status="running") == [1, 3, 5]
        assert numbers(status="pruned") == [4]
        assert numbers(status="running", sort="best_value", limit=1, offset=1) == [1]

    def test_streaming_iterators(self, repo: Repository) -> None:
        study = make_study(repo)
        trials = [make_trial(repo, study.id) for _ in range(5)]
        for trial in trials:
            report(repo, trial.id, [1.0, 2.0, 3.0])
        assert [t.number for t in repo.iter_trials(study.id, batch=2)] == [1, 2, 3, 4, 5]
        metrics = list(repo.iter_study_metrics(study.id, batch=4))
        assert len(metrics) == 15
        assert [(m.trial_id, m.step) for m in metrics] == sorted(
            (m.trial_id, m.step) for m in metrics
        )
        # Abandoning an iterator half-way releases its transaction.
        iterator = cast(Generator[Any, None, None], repo.iter_study_metrics(study.id, batch=4))
        next(iterator)
        iterator.close()
        repo.delete_study(study.id)

    def test_claim_study_is_won_by_exactly_one_worker(self, repo: Repository) -> None:
        study = make_study(repo)
        barrier = threading.Barrier(6)

        def claim(i: int) -> bool:
            barrier.wait()
            return repo.claim_study(study.id, f"w{i}", 60)

        with ThreadPoolExecutor(max_workers=6) as pool:
            wins = list(pool.map(claim, range(6)))
        assert wins.count(True) == 1
        claimed = repo.get_study(study.id)
        assert claimed.status == "running"
        assert claimed.lease_owner == f"w{wins.index(True)}"
        assert claimed.lease_expires_at is not None and claimed.started_at is not None

    def test_claim_next_queued_hands_each_study_out_once(self, repo: Repository) -> None:
        ids = {make_study(repo, name=f"s{i}").id for i in range(8)}
        finished = make_study(repo, status="completed")
        barrier = threading.Barrier(6)

        def drain(i: int) -> list[int]:
            barrier.wait()
            got = []
            while (study := repo.claim_next_queued(f"w{i}", 60)) is not None:
                assert study.status == "running" and study.lease_owner == f"w{i}"
                got.append(study.id)
            return got

        with ThreadPoolExecutor(max_workers=6) as pool:
            claimed = [sid for got in pool.map(drain, range(6)) for sid in got]
        assert Counter(claimed) == Counter(ids)
        assert finished.id not in claimed

    def test_an_expired_lease_lets_another_worker_claim(self, repo: Repository) -> None:
        study = make_study(repo)
        assert repo.claim_next_queued("a", 0.2) == repo.get_study(study.id)
        assert repo.claim_next_queued("b", 60) is None
        assert not repo.claim_study(study.id, "b", 60)
        assert repo.renew_lease(study.id, "a", 0.2)
        assert not repo.renew_lease(study.id, "b", 60)
        time.sleep(0.3)
        taken = repo.claim_next_queued("b", 60)
        assert taken is not None and taken.id == study.id and taken.lease_owner == "b"
        assert not repo.renew_lease(study.id, "a", 60)
        repo.release_lease(study.id, "a")  # not a's any more: no effect
        assert repo.get_study(study.id).lease_owner == "b"
        repo.release_lease(study.id, "b")
        released = repo.get_study(study.id)
        assert released.lease_owner is None and released.lease_expires_at is None
        # A finished study is never claimed again.
        repo.set_study_status(study.id, "completed")
        assert not repo.claim_study(study.id, "c", 60)

    def test_events_page_forward(self, repo: Repository) -> None:
        study = make_study(repo)
        other = make_study(repo)
        trial = make_trial(repo, study.id)
        for i in range(5):
            repo.add_event(study.id, "trial_started", f"t{i}", trial_id=trial.id, data={"i": i})
            repo.add_event(other.id, "started", "other")
        first = repo.list_events(study.id, limit=2)
        assert [e.message for e in first] == ["t0", "t1"]
        rest = repo.list_events(study.id, after_id=first[-1].id)
        assert [e.message for e in rest] == ["t2", "t3", "t4"]
        assert rest[0].data == {"i": 2} and rest[0].trial_id == trial.id
        assert rest[0].created_at.tzinfo == UTC
        assert repo.list_events(study.id, after_id=rest[-1].id) == []

    def test_add_provenance_merges(self, repo: Repository) -> None:
        study = make_study(repo)
        trial = make_trial(repo, study.id, provenance={"hpo": "0.1.0", "device": "?"})
        repo.add_provenance(trial.id, {"device": "cpu", "hostname": "h"})
        stored = repo.get_trial(study.id, 1)
        assert stored.provenance == {"hpo": "0.1.0", "device": "cpu", "hostname": "h"}
        with pytest.raises(NotFoundError):
            repo.add_provenance(10_000, {})
