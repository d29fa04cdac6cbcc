"""The training core's search: the best validation loss hpo's samplers find in N trials.

Each sampler runs real hpo studies (the driver, Ray Tune, SQLite; scheduler ``fifo``, so
every trial runs all its epochs) of the training core's MLP on a built-in dataset, with
the same space, trial count, epochs and seeds:

* ``random``, ``tpe``, ``gp``, ``auto`` (hpo's samplers under their defaults);
* ``bohb`` as a plain sampler (its KDE model on every trial's final value; without a
  pruning scheduler it is a TPE-style search).

The objective is the validation loss (lower is better; on wine's 36 validation rows
accuracy moves in steps of 1/36, so the loss tells configs apart where accuracy ties).
A study's best after n trials is the lowest loss among its first n trials by trial
number. Each cell is the median over seeds; the rank column orders samplers by that
median at N trials on each dataset (ties share a rank).

    nice .venv/bin/python benchmarks/core_search.py [--trials 20] [--seeds 3]
        [--epochs 8] [--datasets digits,wine] [--samplers random,tpe,gp,auto,bohb]
        [--concurrency 2] [--quick]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hpo.execution.driver import ensure_ray, run_study
from hpo.spec import load_spec
from hpo.storage.repository import Repository

# Run as a script from anywhere: the repository root makes `benchmarks` importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.multi_fidelity import FIXED, SPACE

SAMPLERS = ("random", "tpe", "gp", "auto", "bohb")
DATASETS = ("digits", "wine")


def spec(dataset: str, sampler: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": f"core-{dataset}-{sampler}-{seed}",
        "objective": {"metric": "val_loss", "mode": "min"},
        "trainable": {"dataset": dataset, "model": "mlp"},
        "budget": {
            "trials": args.trials,
            "max_epochs": args.epochs,
            "concurrency": args.concurrency,
        },
        "strategy": {"sampler": sampler, "scheduler": "fifo", "seed": seed},
        "space": SPACE,
        # The data split is the same for every study: only the search differs.
        "fixed": {**FIXED, "data_seed": 0},
    }


def best_by_trial(repo: Repository, study_id: int) -> list[float]:
    """The best objective among trials 0..i, for each trial number i."""
    trials = sorted(repo.iter_trials(study_id), key=lambda t: t.number)
    best, points = math.inf, []
    for trial in trials:
        if trial.objective_value is not None and math.isfinite(trial.objective_value):
            best = min(best, trial.objective_value)
        points.append(best)
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 4 trials, 1 seed, 2 epochs"
    )
    args = parser.parse_args()
    if args.quick:
        args.trials, args.seeds, args.epochs = 4, 1, 2
    datasets, samplers = args.datasets.split(","), args.samplers.split(",")
    half = max(1, args.trials // 2)
    ensure_ray()
    runs: dict[str, dict[str, list[list[float]]]] = {d: {s: [] for s in samplers} for d in datasets}
    seconds: dict[str, dict[str, float]] = {d: {s: 0.0 for s in samplers} for d in datasets}
    with tempfile.TemporaryDirectory() as folder:
        repo = Repository(f"sqlite:///{folder}/core.db")
        for dataset in datasets:
            for seed in range(args.seeds):
                for sampler in samplers:
                    data = load_spec(spec(dataset, sampler, seed, args))
                    study = repo.create_study(
                        data.name,
                        data.dump(),
                        objective_metric="val_loss",
                        objective_mode="min",
                        n_trials_target=args.trials,
                    )
                    start = time.perf_counter()
                    final = run_study(repo, study.id)
                    seconds[dataset][sampler] += time.perf_counter() - start
                    assert final.status == "completed", (dataset, sampler, seed, final.error)
                    runs[dataset][sampler].append(best_by_trial(repo, study.id))
                    print(
                        f"{dataset} seed {seed} {sampler}: {runs[dataset][sampler][-1][-1]:.4g}",
                        flush=True,
                    )
        repo.close()

    summary: dict[str, dict[str, dict[str, Any]]] = {}
    print(
        f"\nbest validation loss, median over {args.seeds} seeds "
        f"({args.epochs} epochs per trial, fifo)"
    )
    print(f"| dataset | sampler | after {half} trials | after {args.trials} trials | rank |")
    print("|---|---|---|---|---|")
    for dataset in datasets:
        rows: dict[str, dict[str, Any]] = {}
        for sampler in samplers:
            curves = runs[dataset][sampler]
            rows[sampler] = {
                "best_at_half": statistics.median(c[half - 1] for c in curves),
                "best_at_end": statistics.median(c[-1] for c in curves),
                "per_seed_best": [c[-1] for c in curves],
                "seconds": seconds[dataset][sampler] / len(curves),
            }
        for sampler in samplers:
            row = rows[sampler]
            # Ties share a rank: 1 + how many samplers did strictly better.
            row["rank"] = 1 + sum(r["best_at_end"] < row["best_at_end"] for r in rows.values())
            print(
                f"| {dataset} | {sampler} | {row['best_at_half']:.3g} | "
                f"{row['best_at_end']:.3g} | {row['rank']} |"
            )
        summary[dataset] = rows
    print(json.dumps({"args": vars(args), "summary": summary}))


if __name__ == "__main__":
    main()
