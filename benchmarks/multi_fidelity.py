"""Multi-fidelity: the epochs each strategy needs to reach random search's final quality.

Each strategy runs as a real hpo study (the driver, Ray Tune, SQLite) of the training
core's MLP on digits, with the same trial slots, epochs budget and seeds:

* ``random`` (random + fifo): every trial runs ``max_epochs``; its final best is the target;
* ``asha`` with TPE (tpe + asha), ``hyperband`` (random + asynchronous Hyperband);
* ``bohb`` (hpo's BOHB sampler: a KDE model per budget, on asynchronous Hyperband).

A study's compute is counted in epochs, in the order its trials finished: after each
trial, the epochs run so far and the best objective among trials that ran the full
budget (the one a study would deliver; a pruned trial's early value is not a model
anyone gets). The objective is the validation loss (lower is better). "Epochs to target"
is the compute at which that best first reaches the upper median, over seeds, of random
search's final best (never: ``inf``), the value random search reaches in at least half its
seeds. Medians over seeds are upper medians too (the worse middle value). The ratio
divides each strategy's median epochs to target by random search's own, measured in the
same run. With few seeds that median is one seed's figure (with 3, the one seed where
random search reaches its target late), hence 10 seeds by default (18-19 minutes on
two shared cores).

Runs with one seed are paired: random search, random + hyperband and bohb's random
draws take the same configs from the same stream, and both Hyperband runs put the n-th
trial in the same bracket (drawn from the study seed).

    nice .venv/bin/python benchmarks/multi_fidelity.py [--trials 16] [--seeds 10]
        [--max-epochs 27] [--concurrency 2] [--quick]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from typing import Any

from hpo.execution.driver import ensure_ray, run_study
from hpo.spec import load_spec
from hpo.storage.repository import Repository

STRATEGIES: dict[str, dict[str, Any]] = {
    "random": {"sampler": "random", "scheduler": "fifo"},
    "tpe+asha": {"sampler": "tpe", "scheduler": "asha"},
    "hyperband": {"sampler": "random", "scheduler": "hyperband"},
    "bohb": {"sampler": "bohb", "scheduler": "hyperband"},
    # Not run by default: bohb with a tenth of its proposals random instead of a third.
    "bohb-rf10": {"sampler": "bohb", "scheduler": "hyperband", "options": {"random_fraction": 10}},
}
DEFAULT_STRATEGIES = "random,tpe+asha,hyperband,bohb"

SPACE = {
    "optimizer": {"choice": ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]},
    "lr": {"loguniform": [1.0e-4, 0.3]},
    "momentum": {"uniform": [0.5, 0.99], "when": {"optimizer": ["momentum", "nesterov"]}},
    "hidden": {"int": [32, 512], "log": True},
    "dropout": {"uniform": [0.0, 0.5], "step": 0.05},
    "batch_size": {"choice": [32, 64, 128]},
}
FIXED = {"schedule": "cosine", "grad_clip_norm": 1.0, "preprocess": "standardize"}


def spec(strategy: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": f"mf-{strategy}-{seed}",
        # Validation loss, not accuracy: on 360 validation images accuracy moves in steps
        # of 1/360 and many configs tie at the top, which makes "reached" a coin flip.
        "objective": {"metric": "val_loss", "mode": "min"},
        "trainable": {"dataset": "digits", "model": "mlp"},
        "budget": {
            "trials": args.trials,
            "max_epochs": args.max_epochs,
            "min_epochs": 1,
            "concurrency": args.concurrency,
        },
        "strategy": {**STRATEGIES[strategy], "seed": seed, "reduction_factor": 3},
        "space": SPACE,
        # The data split is the same for every study: only the search differs.
        "fixed": {**FIXED, "data_seed": 0},
    }


def curve(repo: Repository, study_id: int, max_epochs: int) -> list[tuple[int, float]]:
    """(epochs so far, best full-budget value so far) after each trial, in finishing order."""
    trials = [t for t in repo.iter_trials(study_id) if t.finished_at is not None]
    trials.sort(key=lambda t: (t.finished_at, t.number))
    epochs, best, points = 0, math.inf, []
    for trial in trials:
        epochs += trial.epochs_run
        if trial.epochs_run >= max_epochs and trial.objective_value is not None:
            best = min(best, trial.objective_value)
        points.append((epochs, best))
    return points


def epochs_to(points: list[tuple[int, float]], target: float) -> float:
    return next((float(e) for e, best in points if best <= target + 1e-12), math.inf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--max-epochs", type=int, default=27)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--strategies",
        default=DEFAULT_STRATEGIES,
        help=f"comma-separated, random first (the target): {', '.join(STRATEGIES)}",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 6 trials, 1 seed, 9 epochs"
    )
    args = parser.parse_args()
    names = args.strategies.split(",")
    if names[0] != "random" or any(n not in STRATEGIES for n in names):
        parser.error(f"--strategies: random first, then any of {', '.join(STRATEGIES)}")
    if args.quick:
        args.trials, args.seeds, args.max_epochs = 6, 1, 9
    started = time.perf_counter()
    ensure_ray()
    curves: dict[str, list[list[tuple[int, float]]]] = {name: [] for name in names}
    seconds: dict[str, float] = {name: 0.0 for name in names}
    with tempfile.TemporaryDirectory() as folder:
        repo = Repository(f"sqlite:///{folder}/mf.db")
        for seed in range(args.seeds):
            for name in names:
                data = load_spec(spec(name, seed, args))
                study = repo.create_study(
                    data.name,
                    data.dump(),
                    objective_metric="val_loss",
                    objective_mode="min",
                    n_trials_target=args.trials,
                )
                start = time.perf_counter()
                final = run_study(repo, study.id)
                seconds[name] += time.perf_counter() - start
                assert final.status == "completed", (name, seed, final.error)
                curves[name].append(curve(repo, study.id, args.max_epochs))
                print(f"seed {seed} {name}: {curves[name][-1][-1]}", flush=True)
        repo.close()

    # The upper median (the worse middle value of a loss): with an even number of seeds
    # the plain median would be a mean that random search itself reaches in only half.
    target = statistics.median_high(c[-1][1] for c in curves["random"])
    summary: dict[str, dict[str, Any]] = {}
    for name, runs in curves.items():
        to_target = [epochs_to(c, target) for c in runs]
        summary[name] = {
            "total_epochs": statistics.median_high(c[-1][0] for c in runs),
            "final_best": statistics.median_high(c[-1][1] for c in runs),
            "epochs_to_target": statistics.median_high(to_target),
            "per_seed_epochs_to_target": to_target,
            "reached": sum(e < math.inf for e in to_target),
            "seconds": seconds[name] / len(runs),
        }
    base = summary["random"]["epochs_to_target"]
    print(f"\ntarget (random search's median final best val_loss): {target:.4f}")
    print("| strategy | epochs run | final best | epochs to target | seeds reaching | ratio |")
    print("|---|---|---|---|---|---|")
    for name, row in summary.items():
        row["ratio"] = row["epochs_to_target"] / base
        print(
            f"| {name} | {row['total_epochs']:.0f} | {row['final_best']:.4f} | "
            f"{row['epochs_to_target']:.0f} | {row['reached']:.0f}/{args.seeds} | "
            f"{row['ratio']:.2f} |"
        )
    wall = time.perf_counter() - started
    print(f"wall time: {wall / 60:.0f} min")
    print(json.dumps({"args": vars(args), "target": target, "summary": summary, "wall_s": wall}))


if __name__ == "__main__":
    main()
