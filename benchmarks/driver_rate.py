"""Results per second one study driver persists, against Ray Tune's own driver rate.

A study has one driver (docker/README.md, "What grows with the cluster"): every result of
every trial passes through it. This measures how many results per second that driver
takes in when trials report as fast as they can (no training, `--reports` each):

  * ray:  raw Ray Tune, its file loggers off, no database: the rate Ray's driver alone
          sustains (its event loop, the result queue, the searcher and scheduler);
  * hpo:  hpo's driver on the same trials, every result written to a fresh SQLite file
          (or, with `--pg SERVER`, a fresh PostgreSQL database on that server).

Each arm runs in its own process; arms alternate for `--rounds` rounds; the median is
printed. Start-up (Ray, schema) is excluded: the figure is the steady rate.

    .venv/bin/python benchmarks/driver_rate.py --trials 4 --reports 500 --rounds 2
    .venv/bin/python benchmarks/driver_rate.py --pg postgresql://postgres@127.0.0.1:5432

Last line: one JSON object; `ratio` = hpo rate / ray rate (1.0: persisting costs the
driver nothing; below 1: the database write is the bottleneck of a study's driver).
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
from pathlib import Path
from typing import Any

# Run as a script from anywhere: the repository root makes `benchmarks` importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.databases import create_constant_study, fresh_database


def _reporter(config: dict[str, Any]) -> None:
    from ray import tune

    for epoch in range(1, int(config["reports"]) + 1):
        tune.report({"epoch": epoch, "value": config["x"]})


def arm_ray(trials: int, reports: int, concurrency: int) -> dict[str, float]:
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    import ray
    from ray import tune

    ray.init(num_cpus=concurrency, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as storage:
        tuner = tune.Tuner(
            _reporter,
            param_space={"x": tune.uniform(0, 1), "reports": reports},
            tune_config=tune.TuneConfig(
                metric="value",
                mode="min",
                num_samples=trials,
                max_concurrent_trials=concurrency,
                reuse_actors=True,  # as hpo's driver runs them
            ),
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        )
        t0 = time.perf_counter()
        grid = tuner.fit()
        seconds = time.perf_counter() - t0
    received = sum(int(grid[i].metrics.get("training_iteration", 0)) for i in range(len(grid)))
    assert received == trials * reports, received
    return {"seconds": seconds, "results": received}


def arm_hpo(trials: int, reports: int, concurrency: int, pg: str | None) -> dict[str, float]:
    import ray

    from hpo.execution.driver import run_study
    from hpo.storage.repository import Repository

    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp, pg, "hpo_rate") as url:
        ray.init(num_cpus=concurrency, include_dashboard=False, log_to_driver=False)
        repo = Repository(url)
        study_id = create_constant_study(
            repo, "driver-rate", trials=trials, reports=reports, concurrency=concurrency
        )
        t0 = time.perf_counter()
        final = run_study(repo, study_id)
        seconds = time.perf_counter() - t0
        stored = sum(len(repo.trial_metrics(t.id)) for t in repo.iter_trials(study_id))
        assert final.status == "completed", final.status
        assert stored == trials * reports, stored  # every result is in the database
        repo.close()
    return {"seconds": seconds, "results": stored}


def _child(arm: str, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, __file__, "--arm", arm]
    command += ["--trials", str(args.trials), "--reports", str(args.reports)]
    command += ["--concurrency", str(args.concurrency)]
    command += ["--pg", args.pg] if args.pg else []
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--reports", type=int, default=500, help="results per trial")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pg", help="PostgreSQL server URL (default: a SQLite file)")
    parser.add_argument("--arm", choices=["ray", "hpo"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm == "ray":
        print(json.dumps(arm_ray(args.trials, args.reports, args.concurrency)))
        return
    if args.arm == "hpo":
        print(json.dumps(arm_hpo(args.trials, args.reports, args.concurrency, args.pg)))
        return

    rates: dict[str, list[float]] = {"ray": [], "hpo": []}
    for _ in range(args.rounds):
        for arm in rates:
            run = _child(arm, args)
            rates[arm].append(run["results"] / run["seconds"])
            print(f"{arm}: {run['results']:.0f} results in {run['seconds']:.1f} s", flush=True)
    ray_rate = statistics.median(rates["ray"])
    hpo_rate = statistics.median(rates["hpo"])
    print(
        json.dumps(
            {
                "trials": args.trials,
                "reports": args.reports,
                "concurrency": args.concurrency,
                "database": "postgresql" if args.pg else "sqlite",
                "ray_results_per_s": round(ray_rate, 1),
                "hpo_results_per_s": round(hpo_rate, 1),
                "ratio": round(hpo_rate / ray_rate, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
