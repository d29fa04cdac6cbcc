"""Coalesced reports: a FIFO trial's epochs reach Tune in batches and are stored, and
learned from, exactly as if each had come alone (`hpo.execution.reports`)."""

from __future__ import annotations

from typing import Any

import pytest
from optuna.trial import TrialState

from hpo.execution.reports import EARLIER_KEY, ReportBuffer, unpack
from hpo.execution.searcher import SamplerSearcher
from hpo.samplers import create_sampler
from hpo.spec import load_spec
from tests.execution.conftest import branin_spec


class Clock:
    """A clock the test moves by hand: which reports share a batch is then exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _buffer(interval: float) -> tuple[ReportBuffer, list[tuple[dict[str, Any], Any]], Clock]:
    sent: list[tuple[dict[str, Any], Any]] = []
    clock = Clock()
    return ReportBuffer(lambda r, d: sent.append((r, d)), interval, clock), sent, clock


def test_reports_within_the_interval_go_out_as_one_result_oldest_first() -> None:
    buffer, sent, clock = _buffer(0.5)
    for epoch in (1, 2, 3):
        clock.now += 0.1
        buffer.add({"epoch": epoch, "v": epoch * 10.0}, now=False)
    assert sent == []
    clock.now += 0.3  # 0.6 s after the start: the fourth report sends the batch
    buffer.add({"epoch": 4, "v": 40.0}, now=False)
    ((result, data),) = sent
    assert data is None and result["epoch"] == 4 and "done" not in result
    assert [r["epoch"] for r in unpack(result)] == [1, 2, 3, 4]
    assert [r["v"] for r in result[EARLIER_KEY]] == [10.0, 20.0, 30.0]


def test_a_checkpoint_or_its_bytes_send_at_once() -> None:
    buffer, sent, _ = _buffer(60.0)
    buffer.add({"epoch": 1}, now=False)
    buffer.add({"epoch": 2, "hpo_checkpoint_location": "x"}, now=True)
    buffer.add({"epoch": 3}, b"state", now=False)
    assert [([r["epoch"] for r in unpack(s)], d) for s, d in sent] == [
        ([1, 2], None),
        ([3], b"state"),
    ]


def test_the_last_batch_says_done_and_an_empty_flush_sends_nothing() -> None:
    buffer, sent, _ = _buffer(60.0)
    buffer.flush(last=True)
    assert sent == []
    buffer.add({"epoch": 1}, now=False)
    buffer.add({"epoch": 2}, now=False)
    buffer.flush(last=True)
    ((result, _),) = sent
    assert result["done"] is True and result["epoch"] == 2
    assert [r["epoch"] for r in result[EARLIER_KEY]] == [1]
    assert all("done" not in r for r in result[EARLIER_KEY])


def test_reports_without_an_epoch_are_numbered_by_position_when_batching() -> None:
    buffer, sent, _ = _buffer(60.0)
    for value in (5.0, 6.0, 7.0):
        buffer.add({"v": value}, now=False)
    buffer.flush()
    assert [(r["epoch"], r["v"]) for r in unpack(sent[0][0])] == [(1, 5.0), (2, 6.0), (3, 7.0)]
    unbatched, sent, _ = _buffer(0.0)
    unbatched.add({"v": 1.0}, now=False)  # every report alone: Tune's iteration numbers it
    assert sent == [({"v": 1.0}, None)]


def test_a_batched_result_reaches_the_sampler_epoch_by_epoch() -> None:
    spec = load_spec(
        branin_spec(
            objective={"metric": "value", "mode": "min", "value": "best"},
            strategy={"sampler": "tpe", "scheduler": "fifo", "seed": 1},
            budget={"trials": 3, "max_epochs": 4, "min_epochs": 1},
        )
    )
    sampler = create_sampler("tpe", spec.space, mode="min", seed=1)
    searcher = SamplerSearcher(sampler, spec)
    searcher.suggest("t1")
    first = {"epoch": 2, "value": 3.0, EARLIER_KEY: [{"epoch": 1, "value": 5.0}]}
    searcher.on_trial_result("t1", first)
    # Tune hands the batch it stopped the trial at (done) to on_trial_complete alone.
    last = {
        "epoch": 4,
        "value": 4.0,
        "done": True,
        EARLIER_KEY: [{"epoch": 3, "value": 1.0}],
    }
    searcher.on_trial_complete("t1", last)
    (trial,) = sampler.study.trials
    assert trial.state == TrialState.COMPLETE and trial.value == 1.0  # the best of 4 epochs
    assert trial.intermediate_values == {1: 5.0, 2: 3.0, 3: 1.0, 4: 4.0}


@pytest.mark.slow
def test_a_fifo_study_stores_every_epoch_once_and_ends_its_trials(run_spec: Any) -> None:
    spec = branin_spec(
        trainable={"function": "hpo.examples.functions:constant"},
        budget={"trials": 4, "max_epochs": 6, "concurrency": 2},
        space={"x": {"uniform": [0, 1]}},
        fixed={"epochs": 6},
    )
    repo, study = run_spec(spec)
    assert study.status == "completed"
    trials = repo.list_trials(study.id)
    assert [t.status for t in trials] == ["completed"] * 4
    for trial in trials:
        rows = repo.trial_metrics(trial.id)
        steps = sorted(r.step for r in rows if r.name == "value")
        assert steps == [1, 2, 3, 4, 5, 6]
        assert trial.epochs_run == 6
        assert all(r.value == pytest.approx(trial.config["x"]) for r in rows if r.name == "value")
