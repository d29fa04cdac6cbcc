"""Search quality: hpo's samplers against the field, on problems with known minima.

Regret is the best value found minus the problem's known minimum (0 is perfect). Every
method gets the same budgets and seeds (`problems.py` has the functions):

* hpo's `gp`, `tpe`, `random`, `auto` and `skopt` samplers, driven through
  `hpo.samplers.create_sampler`'s ask/tell API (how the Ray adapter drives them);
* the peers, used directly: Optuna's `GPSampler` (`optuna_gp`, the reference) and
  `TPESampler` (`optuna_tpe`), and scikit-optimize's `gp_minimize`.

Sequential runs ask, evaluate and tell one trial at a time; one run of the largest
budget gives every smaller budget as its best-so-far at that point (none of these
methods plans by the total budget). Pending runs keep 4 trials asked and not yet told
(the oldest is told, then a new one asked), as 4 concurrent workers would; `gp_minimize`
has no ask/tell and is left out there, and Optuna's `GPSampler` sees running trials
only as its own ignores them. Seconds per suggestion: one `ask` after N observations
of Hartmann6 (random points), for `gp`, `optuna_gp` and `skopt`.

    nice .venv/bin/python benchmarks/search_quality.py [--quick] [--budgets 25,50,100]
        [--seeds 10] [--jobs 2] [--problems branin,...] [--methods gp,optuna_gp,...]

Ratios are regret(method) / regret(optuna_gp), regrets floored at 1e-9 (both at the
optimum would be 0/0); the geometric mean is over problems. The last line printed is
one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from hpo.samplers import create_sampler

# Run as a script from anywhere: the repository root makes `benchmarks` importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.problems import PROBLEMS, Problem

PENDING = 4
FLOOR = 1e-9
REFERENCE = "optuna_gp"

# --- methods: each returns the value of every evaluation, in order -----------------------


def _hpo(sampler: str) -> Callable[[Problem, int, int, int], list[float]]:
    def run(problem: Problem, budget: int, seed: int, pending: int) -> list[float]:
        s = create_sampler(sampler, problem.space, mode="min", seed=seed)
        values: list[float] = []
        running: list[tuple[str, dict[str, Any]]] = []
        asked = 0
        while len(values) < budget:
            while len(running) < max(pending, 1) and asked < budget:
                config = s.ask(str(asked))
                assert config is not None
                running.append((str(asked), config))
                asked += 1
            key, config = running.pop(0)
            values.append(problem.objective(config))
            s.tell(key, values[-1])
        return values

    return run


def _distributions(problem: Problem) -> dict[str, Any]:
    from hpo.samplers.tpe import distribution

    return {n: distribution(p) for n, p in problem.space.items()}


def _optuna(kind: str) -> Callable[[Problem, int, int, int], list[float]]:
    def run(problem: Problem, budget: int, seed: int, pending: int) -> list[float]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        sampler = (
            optuna.samplers.GPSampler(seed=seed)
            if kind == "gp"
            else optuna.samplers.TPESampler(seed=seed)
        )
        study = optuna.create_study(sampler=sampler)
        dists = _distributions(problem)
        values: list[float] = []
        running: list[Any] = []
        while len(values) < budget:
            while len(running) < max(pending, 1) and len(values) + len(running) < budget:
                running.append(study.ask(dists))
            trial = running.pop(0)
            values.append(problem.objective(trial.params))
            study.tell(trial, values[-1])
        return values

    return run


def _skopt_dimensions(problem: Problem) -> list[Any]:
    from skopt.space import Categorical, Integer, Real

    dims: list[Any] = []
    for p in problem.space.values():
        if p.is_categorical:
            dims.append(Categorical(p.values))
        elif p.kind == "int":
            low, high = p.bounds
            dims.append(Integer(int(low), int(high), prior="log-uniform" if p.log else "uniform"))
        else:
            low, high = p.bounds
            dims.append(
                Real(low, high, prior="log-uniform" if p.kind == "loguniform" else "uniform")
            )
    return dims


def _gp_minimize(problem: Problem, budget: int, seed: int, pending: int) -> list[float]:
    from skopt import gp_minimize

    names = list(problem.space)
    result = gp_minimize(
        lambda x: problem.objective(
            {n: v.item() if hasattr(v, "item") else v for n, v in zip(names, x, strict=True)}
        ),
        _skopt_dimensions(problem),
        n_calls=budget,
        random_state=seed,
    )
    return [float(v) for v in result.func_vals]


METHODS: dict[str, Callable[[Problem, int, int, int], list[float]]] = {
    "gp": _hpo("gp"),
    "auto": _hpo("auto"),
    "tpe": _hpo("tpe"),
    "skopt": _hpo("skopt"),
    "random": _hpo("random"),
    "optuna_gp": _optuna("gp"),
    "optuna_tpe": _optuna("tpe"),
    "gp_minimize": _gp_minimize,
}
SEQUENTIAL_ONLY = {"gp_minimize"}


def _run(job: tuple[str, str, int, int, int]) -> tuple[str, str, int, int, list[float], float]:
    """One (problem, method, seed, pending) run: its values and the seconds it took."""
    problem_name, method, budget, seed, pending = job
    import torch

    torch.set_num_threads(1)
    # Small GPs only lose to BLAS threads fighting over the cores.
    with threadpool_limits(1):
        problem = PROBLEMS[problem_name]()
        started = time.perf_counter()
        values = METHODS[method](problem, budget, seed, pending)
    return problem_name, method, seed, pending, values, time.perf_counter() - started


def benchmark(
    problems: Sequence[str],
    methods: Sequence[str],
    budgets: Sequence[int],
    seeds: int,
    jobs: int,
    pending_methods: Sequence[str],
) -> dict[str, Any]:
    """Median regret per (problem, method, budget), sequential and with pending trials."""
    top = max(budgets)
    tasks = [(p, m, top, s, 0) for p in problems for m in methods for s in range(seeds)]
    tasks += [
        (p, m, top, s, PENDING)
        for p in problems
        for m in pending_methods
        if m not in SEQUENTIAL_ONLY
        for s in range(seeds)
    ]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(_run, tasks))
    out: dict[str, Any] = {"sequential": {}, "pending": {}, "seconds": {}}
    for p in problems:
        optimum = PROBLEMS[p]().optimum
        for problem, method, _, pending, values, secs in results:
            if problem != p:
                continue
            mode = "pending" if pending else "sequential"
            cell = out[mode].setdefault(p, {}).setdefault(method, {})
            for b in budgets:
                cell.setdefault(str(b), []).append(min(values[:b]) - optimum)
            if not pending:
                out["seconds"].setdefault(p, {}).setdefault(method, []).append(secs)
    for mode in ("sequential", "pending"):
        for cells in out[mode].values():
            for cell in cells.values():
                for b, regrets in cell.items():
                    cell[b] = statistics.median(regrets)
    for cells in out["seconds"].values():
        for m, secs in cells.items():
            cells[m] = statistics.median(secs)
    return out


def ratios(report: Mapping[str, Any], budgets: Sequence[int]) -> dict[str, Any]:
    """regret / regret(optuna_gp) per problem and budget, and their geometric means."""
    table: dict[str, Any] = {}
    seq = report["sequential"]
    for p, cells in seq.items():
        if REFERENCE not in cells:
            continue
        for m, cell in cells.items():
            for b in budgets:
                ref = max(cells[REFERENCE][str(b)], FLOOR)
                table.setdefault(m, {}).setdefault(str(b), {})[p] = max(cell[str(b)], FLOOR) / ref
    geomean = {
        m: {
            b: math.exp(statistics.fmean(math.log(r) for r in per.values()))
            for b, per in cells.items()
        }
        for m, cells in table.items()
    }
    return {"per_problem": table, "geomean": geomean}


def suggestion_seconds(
    counts: Sequence[int], methods: Sequence[str], repeats: int = 3
) -> dict[str, Any]:
    """Median seconds of one suggestion after N observations of Hartmann6 (random points):
    wall-clock and this process's CPU time (on a shared machine the CPU time is what the
    method costs; the wall clock also counts waiting for a core)."""
    import optuna
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    problem = PROBLEMS["hartmann6"]()
    out: dict[str, dict[str, dict[str, float]]] = {}
    for n in counts:
        rng = np.random.default_rng(n)
        configs = [
            {k: float(v) for k, v in zip(problem.space, rng.random(6), strict=True)}
            for _ in range(n)
        ]
        values = [problem.objective(c) for c in configs]
        for method in methods:
            times, cpu = [], []
            for r in range(repeats):
                with threadpool_limits(1):
                    if method == "optuna_gp":
                        study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=r))
                        dists = _distributions(problem)
                        for c, v in zip(configs, values, strict=True):
                            study.add_trial(
                                optuna.trial.create_trial(params=c, distributions=dists, value=v)
                            )
                        started, cpu_started = time.perf_counter(), time.process_time()
                        study.ask(dists)
                    else:
                        s = create_sampler(method, problem.space, mode="min", seed=r)
                        for c, v in zip(configs, values, strict=True):
                            s.observe(c, v)
                        started, cpu_started = time.perf_counter(), time.process_time()
                        s.ask("timed")
                    times.append(time.perf_counter() - started)
                    cpu.append(time.process_time() - cpu_started)
            out.setdefault(method, {})[str(n)] = {
                "wall": statistics.median(times),
                "cpu": statistics.median(cpu),
            }
    return out


# --- multi-fidelity: the epoch is the fidelity ------------------------------------------

MF_STRATEGIES = ("random", "tpe", "asha", "hyperband", "bohb")


def _mf_hpo(strategy: str, trials: int, epochs: int, seed: int, tmp: str) -> tuple[float, int]:
    """One hpo study over multi-fidelity Branin on Ray: (regret, epochs spent)."""
    from hpo.examples.functions import BRANIN_MIN
    from hpo.execution.driver import run_study
    from hpo.spec import load_spec
    from hpo.storage.repository import Repository

    spec = load_spec(
        {
            "name": f"mf-{strategy}-{seed}",
            "objective": {"metric": "value", "mode": "min"},
            "trainable": {"function": "hpo.examples.functions:branin"},
            "budget": {"trials": trials, "max_epochs": epochs, "min_epochs": 1, "concurrency": 2},
            "strategy": {"name": strategy, "seed": seed},
            "space": {"x1": {"uniform": [-5.0, 10.0]}, "x2": {"uniform": [0.0, 15.0]}},
        }
    )
    repo = Repository(f"sqlite:///{tmp}/mf-{strategy}-{seed}.db")
    study = repo.create_study(
        spec.name,
        spec.dump(),
        objective_metric="value",
        objective_mode="min",
        n_trials_target=trials,
    )
    run_study(repo, study.id)
    done = [
        t for t in repo.iter_trials(study.id) if t.epochs_run == epochs and t.last_value is not None
    ]
    spent = sum(t.epochs_run for t in repo.iter_trials(study.id))
    repo.close()
    return min(t.last_value for t in done) - BRANIN_MIN, spent  # type: ignore[type-var]


def _mf_optuna(trials: int, epochs: int, seed: int) -> tuple[float, int]:
    """Optuna's TPESampler with its HyperbandPruner on the same function: the BOHB-like peer."""
    import optuna

    from hpo.examples.functions import BRANIN_MIN, branin

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spent = 0

    def objective(trial: optuna.Trial) -> float:
        nonlocal spent
        config = {
            "x1": trial.suggest_float("x1", -5.0, 10.0),
            "x2": trial.suggest_float("x2", 0.0, 15.0),
            "epochs": epochs,
        }
        values: list[float] = []

        def report(metrics: Mapping[str, Any]) -> None:
            nonlocal spent
            spent += 1
            values.append(float(metrics["value"]))
            trial.report(values[-1], int(metrics["epoch"]))
            if trial.should_prune():
                raise optuna.TrialPruned()

        branin(config, report)
        return values[-1]

    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=epochs, reduction_factor=3
        ),
    )
    study.optimize(objective, n_trials=trials)
    return study.best_value - BRANIN_MIN, spent


def multifidelity(trials: int, epochs: int, seeds: int) -> dict[str, Any]:
    """Median regret of the best full-fidelity trial, and epochs spent, per strategy."""
    import tempfile

    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    regrets: dict[str, list[float]] = {s: [] for s in (*MF_STRATEGIES, "optuna_tpe_hyperband")}
    spent: dict[str, list[int]] = {s: [] for s in regrets}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            for strategy in MF_STRATEGIES:
                r, e = _mf_hpo(strategy, trials, epochs, seed, tmp)
                regrets[strategy].append(r)
                spent[strategy].append(e)
            r, e = _mf_optuna(trials, epochs, seed)
            regrets["optuna_tpe_hyperband"].append(r)
            spent["optuna_tpe_hyperband"].append(e)
    ray.shutdown()
    med = {s: statistics.median(v) for s, v in regrets.items()}
    return {
        "trials": trials,
        "max_epochs": epochs,
        "seeds": seeds,
        "median_regret": med,
        "median_epochs_spent": {s: statistics.median(v) for s, v in spent.items()},
        "ratios": {"bohb/optuna_tpe_hyperband": _ratio(med["bohb"], med["optuna_tpe_hyperband"])},
    }


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _fmt(x: float) -> str:
    return f"{x:.2e}" if x < 0.01 else f"{x:.3f}"


def print_tables(report: Mapping[str, Any], budgets: Sequence[int]) -> None:
    """Markdown tables: median regrets, ratios to optuna_gp, pending vs sequential."""
    for b in budgets:
        methods = sorted(
            {m for cells in report["sequential"].values() for m in cells}, key=list(METHODS).index
        )
        print(f"\nmedian regret after {b} evaluations (sequential)")
        print("| problem | " + " | ".join(methods) + " |")
        print("|---" * (len(methods) + 1) + "|")
        for p, cells in report["sequential"].items():
            row = [_fmt(cells[m][str(b)]) if m in cells else "-" for m in methods]
            print(f"| {p} | " + " | ".join(row) + " |")
        geo = report["ratios"]["geomean"]
        if geo:
            print(
                "| geomean ratio to optuna_gp | "
                + " | ".join(f"{geo[m][str(b)]:.2f}" if m in geo else "-" for m in methods)
                + " |"
            )
    if report["pending"]:
        print(f"\nwith {PENDING} pending: median regret (ratio to the same method sequential)")
        for p, cells in report["pending"].items():
            for m, cell in cells.items():
                parts = []
                for b in budgets:
                    seq = max(report["sequential"][p][m][str(b)], FLOOR)
                    parts.append(
                        f"{b}: {_fmt(cell[str(b)])} ({max(cell[str(b)], FLOOR) / seq:.2f}x)"
                    )
                print(f"  {p:<12} {m:<11} " + "  ".join(parts))
    if report.get("suggestion_seconds"):
        print("\nseconds per suggestion after N observations (Hartmann6): wall / CPU")
        for m, cells in report["suggestion_seconds"].items():
            print(
                f"  {m:<11} "
                + "  ".join(f"{n}: {t['wall']:.3f} / {t['cpu']:.3f}" for n, t in cells.items())
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 2 problems, budget 12, 2 seeds"
    )
    parser.add_argument("--budgets", default="25,50,100", help="comma-separated evaluation counts")
    parser.add_argument("--seeds", type=int, default=10, help="runs per method (seeds 0..n-1)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (processes)")
    parser.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument(
        "--pending-methods", default="gp,optuna_gp,tpe", help="run also with 4 pending"
    )
    parser.add_argument(
        "--timing", default="50,100,200", help="observation counts to time (empty: skip)"
    )
    parser.add_argument(
        "--multifidelity-seeds",
        type=int,
        default=0,
        help="seeds of the multi-fidelity Branin section (hpo strategies on Ray; 0 skips it)",
    )
    parser.add_argument("--mf-trials", type=int, default=30, help="trials per multi-fidelity run")
    parser.add_argument("--mf-epochs", type=int, default=9, help="max epochs (the fidelity)")
    args = parser.parse_args()
    if args.quick:
        args.budgets, args.seeds, args.problems = "6,12", 2, "branin,mixed"
        args.methods, args.pending_methods, args.timing = "gp,auto,random,optuna_gp", "gp", "10"
    budgets = [int(b) for b in args.budgets.split(",")]
    problems = args.problems.split(",")
    methods = args.methods.split(",")
    for given, valid, what in ((problems, PROBLEMS, "problem"), (methods, METHODS, "method")):
        unknown = [x for x in given if x not in valid]
        if unknown:
            parser.error(f"unknown {what}(s) {', '.join(unknown)} (valid: {', '.join(valid)})")
    pending_methods = [m for m in args.pending_methods.split(",") if m]
    report = benchmark(problems, methods, budgets, args.seeds, args.jobs, pending_methods)
    report["ratios"] = ratios(report, budgets)
    if args.timing:
        timed = [m for m in ("gp", "optuna_gp", "skopt") if m in methods]
        report["suggestion_seconds"] = suggestion_seconds(
            [int(n) for n in args.timing.split(",")], timed
        )
    report["args"] = vars(args)
    print_tables(report, budgets)
    if args.multifidelity_seeds:
        mf = multifidelity(args.mf_trials, args.mf_epochs, args.multifidelity_seeds)
        report["multifidelity_branin"] = mf
        print(
            f"\nmulti-fidelity Branin: {args.mf_trials} trials of up to {args.mf_epochs} epochs, "
            f"{args.multifidelity_seeds} seeds"
        )
        print(f"{'strategy':<22} {'regret':>10} {'epochs spent':>13}")
        for s, r in mf["median_regret"].items():
            print(f"{s:<22} {r:>10.4f} {mf['median_epochs_spent'][s]:>13.0f}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
