"""Per-trial overhead: hpo (with SQL persistence) vs raw Ray Tune vs raw Optuna on SQLite.

The same N trivial trials (10 reports each, no training) run through
  * hpo:        a study in a fresh SQLite file, random sampler, FIFO, `concurrency` trials
                at once, every result written to the database;
  * ray:        raw Ray Tune as its docs show it (`reuse_actors=True`, its default file
                loggers on), same trials, same concurrency, no database;
  * ray_quiet:  raw Ray Tune with its file loggers off (what hpo runs underneath);
  * optuna:     raw Optuna, RandomSampler, SQLite storage, `trial.report` 10 times.
Each arm runs in its own fresh process (so no arm inherits another's Ray settings), arms
alternate for `--rounds` rounds, and the median is reported. The per-trial figure is
marginal: each arm runs a warm-up search, a search of `trials / 5` trials and one of
`trials`, and divides the difference in seconds by the difference in trials, so what a
whole search costs once (Ray's start, schema creation, Tune's set-up and its closing of
actors: seconds, which would otherwise dominate a per-trial average of trivial trials)
is left out of it for every arm alike. The whole search's seconds per trial are printed
too.

    .venv/bin/python benchmarks/trial_overhead.py --trials 50 --rounds 3
    .venv/bin/python benchmarks/trial_overhead.py --pg postgresql://postgres@127.0.0.1:5432

With `--pg SERVER` the hpo arm persists to a fresh PostgreSQL database on that server
(created and dropped by the run) instead of a SQLite file. The hpo arm also counts its
committed transactions (`transactions_per_trial`).

Last line: one JSON object; `ratio` = hpo / ray (issue 9's goal: <= 0.5).

Where hpo's lead comes from: under `fifo` its trials hand Tune their epochs in batches
(`hpo.execution.reports`), one controller round trip instead of ten. What is left is
Tune's own per-trial cost (a placement group, an actor reset, start and stop round
trips), which hpo, running every trial as a Tune trial, pays as the raw script does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script from anywhere: the repository root makes `benchmarks` importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.databases import create_constant_study, fresh_database

REPORTS = 10


def _trivial(config: dict[str, float]) -> None:
    from ray import tune

    for epoch in range(1, REPORTS + 1):
        tune.report({"epoch": epoch, "value": config["x"]})


def arm_ray(trials: int, concurrency: int, quiet: bool) -> dict[str, float]:
    if quiet:
        os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    import ray
    from ray import tune

    t0 = time.perf_counter()
    ray.init(num_cpus=concurrency, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - t0

    def run(n: int) -> float:
        with tempfile.TemporaryDirectory() as storage:
            tuner = tune.Tuner(
                _trivial,
                param_space={"x": tune.uniform(0, 1)},
                tune_config=tune.TuneConfig(
                    metric="value",
                    mode="min",
                    num_samples=n,
                    reuse_actors=True,
                    max_concurrent_trials=concurrency,
                ),
                run_config=tune.RunConfig(storage_path=storage, verbose=0),
            )
            t0 = time.perf_counter()
            tuner.fit()
            return time.perf_counter() - t0

    return {**_marginal(run, trials), "startup": startup}


def _marginal(run: Callable[[int], float], trials: int) -> dict[str, float]:
    """`run(n)` (seconds for a search of n trials) at a few trials and at `trials`, after
    a warm-up: the difference per extra trial is the per-trial cost, free of what a whole
    search costs once (Tune's set-up and its closing of actors, a few seconds)."""
    small = _small(trials)
    run(small)  # warm-up: imports, the first pickling of the trainable
    few = run(small)
    seconds = run(trials)
    return {"seconds": seconds, "seconds_few": few, "marginal": (seconds - few) / (trials - small)}


def _small(trials: int) -> int:
    return max(2, trials // 5)


def arm_hpo(trials: int, concurrency: int, pg: str | None = None) -> dict[str, float]:
    import ray
    import sqlalchemy as sa

    from hpo.execution.driver import run_study
    from hpo.storage.repository import Repository

    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp, pg, "hpo_bench") as url:
        t0 = time.perf_counter()
        ray.init(num_cpus=concurrency, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        repo = Repository(url)
        schema = time.perf_counter() - t0
        commits = [0]

        def count(conn: object) -> None:
            commits[0] += 1

        sa.event.listen(repo.engine, "commit", count)
        transactions = [0]

        def run(n: int) -> float:
            study_id = create_constant_study(
                repo, "overhead", trials=n, reports=REPORTS, concurrency=concurrency
            )
            t0 = time.perf_counter()
            commits[0] = 0
            final = run_study(repo, study_id)
            seconds = time.perf_counter() - t0
            transactions[0] = commits[0]
            counts = repo.count_trials(study_id)
            rows = sum(len(repo.trial_metrics(t.id)) for t in repo.iter_trials(study_id))
            assert final.status == "completed" and counts["completed"] == n, counts
            assert rows == n * REPORTS, rows  # every report of `value` is in the database
            return seconds

        timing = _marginal(run, trials)
        repo.close()
    return {
        **timing,
        "startup": ray_start + schema,
        "schema": schema,
        "transactions": transactions[0],
    }


def arm_optuna(trials: int) -> dict[str, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/optuna.db"
        t0 = time.perf_counter()
        optuna.create_study(storage=storage, study_name="schema")
        startup = time.perf_counter() - t0

        def objective(trial: optuna.Trial) -> float:
            x = trial.suggest_float("x", 0, 1)
            for epoch in range(1, REPORTS + 1):
                trial.report(x, epoch)
            return x

        def run(n: int) -> float:
            study = optuna.create_study(
                storage=storage, sampler=optuna.samplers.RandomSampler(seed=0)
            )
            t0 = time.perf_counter()
            study.optimize(objective, n_trials=n)
            return time.perf_counter() - t0

        return {**_marginal(run, trials), "startup": startup}


def _child(arm: str, trials: int, concurrency: int, pg: str | None) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--arm",
            arm,
            "--trials",
            str(trials),
            "--concurrency",
            str(concurrency),
            *(["--pg", pg] if pg else []),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--arm", choices=["hpo", "ray", "ray_quiet", "optuna"])
    parser.add_argument("--pg", help="PostgreSQL server URL for the hpo arm (default SQLite)")
    args = parser.parse_args()
    if args.arm:
        if args.arm == "hpo":
            result = arm_hpo(args.trials, args.concurrency, args.pg)
        elif args.arm == "optuna":
            result = arm_optuna(args.trials)
        else:
            result = arm_ray(args.trials, args.concurrency, quiet=args.arm == "ray_quiet")
        print(json.dumps(result))
        return

    arms = ["hpo", "ray", "ray_quiet", "optuna"]
    runs: dict[str, list[dict[str, float]]] = {a: [] for a in arms}
    for r in range(args.rounds):
        for arm in arms if r % 2 == 0 else reversed(arms):
            runs[arm].append(_child(arm, args.trials, args.concurrency, args.pg))
            print(f"round {r + 1} {arm:10s} {runs[arm][-1]['seconds']:.2f} s", file=sys.stderr)
    med = {a: statistics.median(x["seconds"] for x in runs[a]) for a in arms}
    marginal = {a: statistics.median(x["marginal"] for x in runs[a]) for a in arms}
    startup = {a: statistics.median(x["startup"] for x in runs[a]) for a in arms}
    per_trial_ms = {a: 1000 * marginal[a] for a in arms}
    whole_ms = {a: 1000 * med[a] / args.trials for a in arms}
    print(f"{'arm':10s} {'ms/trial':>9s} {'whole search ms/trial':>22s} {'start-up s':>10s}")
    for a in arms:
        print(f"{a:10s} {per_trial_ms[a]:9.1f} {whole_ms[a]:22.1f} {startup[a]:10.2f}")
    print(
        json.dumps(
            {
                "trials": args.trials,
                "trials_few": _small(args.trials),
                "hpo_database": "postgresql" if args.pg else "sqlite",
                "transactions_per_trial": round(
                    statistics.median(x["transactions"] for x in runs["hpo"]) / args.trials, 2
                ),
                "reports_per_trial": REPORTS,
                "concurrency": args.concurrency,
                "rounds": args.rounds,
                "per_trial_ms": {a: round(v, 2) for a, v in per_trial_ms.items()},
                "whole_search_ms_per_trial": {a: round(v, 2) for a, v in whole_ms.items()},
                "startup_s": {a: round(v, 2) for a, v in startup.items()},
                "schema_s": round(statistics.median(x["schema"] for x in runs["hpo"]), 3),
                "ratio": round(marginal["hpo"] / marginal["ray"], 3),
                "ratio_vs_ray_quiet": round(marginal["hpo"] / marginal["ray_quiet"], 3),
                "ratio_vs_optuna_sqlite": round(marginal["hpo"] / marginal["optuna"], 3),
                "ratio_whole_search": round(med["hpo"] / med["ray"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
