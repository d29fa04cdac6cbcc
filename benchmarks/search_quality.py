"""Search quality: median regret after a fixed budget, hpo's samplers against their peers.

Regret is the best value found minus the problem's known minimum (0 is perfect). Every
method gets the same budget of evaluations and the same seeds:

* hpo's `random`, `tpe` and `gp` samplers, driven through our ask/tell interface one
  trial at a time (ask, evaluate, tell), as the Ray adapter drives them;
* Optuna's own `TPESampler` (`optuna.create_study` + `study.optimize`), the peer of `tpe`;
* scikit-optimize's `gp_minimize`, the peer of `gp`.

    .venv/bin/python benchmarks/search_quality.py [--budget 50] [--seeds 10] [--jobs 2]
        [--problems branin,hartmann6]

The last line printed is one JSON object: budget, seeds, the median regret of every
(problem, method), and the ratios hpo/peer (tpe/optuna_tpe, gp/gp_minimize; near 1 means
our wrapping costs no search quality). Each problem is one function returning a `Problem`,
so a multi-fidelity problem (one whose objective also takes a budget) can be added beside
them with its own runners.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from hpo.samplers import create_sampler
from hpo.space import Param, parse_space


@dataclass(frozen=True)
class Problem:
    """A test function with a known minimum, over a space of uniform parameters."""

    name: str
    space: dict[str, Param]
    objective: Callable[[Mapping[str, Any]], float]
    optimum: float


def branin() -> Problem:
    """Branin-Hoo on x1 in [-5, 10], x2 in [0, 15]: minimum 0.397887 at three points."""

    def f(c: Mapping[str, Any]) -> float:
        x1, x2 = c["x1"], c["x2"]
        b, k, r, s, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
        return (x2 - b * x1**2 + k * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s

    space = parse_space({"x1": {"uniform": [-5.0, 10.0]}, "x2": {"uniform": [0.0, 15.0]}})
    return Problem("branin", space, f, 0.397887)


_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6() -> Problem:
    """Hartmann 6-D on [0, 1]^6: minimum -3.32237."""
    names = [f"x{i}" for i in range(1, 7)]

    def f(c: Mapping[str, Any]) -> float:
        x = np.array([c[n] for n in names])
        return float(-_H6_ALPHA @ np.exp(-(_H6_A * (x - _H6_P) ** 2).sum(axis=1)))

    space = parse_space({n: {"uniform": [0.0, 1.0]} for n in names})
    return Problem("hartmann6", space, f, -3.32237)


PROBLEMS: dict[str, Callable[[], Problem]] = {"branin": branin, "hartmann6": hartmann6}


# --- methods: each returns the best value found in `budget` evaluations ------------------


def _hpo(sampler: str) -> Callable[[Problem, int, int], float]:
    def run(problem: Problem, budget: int, seed: int) -> float:
        s = create_sampler(sampler, problem.space, mode="min", seed=seed)
        best = math.inf
        for i in range(budget):
            config = s.ask(str(i))
            assert config is not None
            value = problem.objective(config)
            s.tell(str(i), value)
            best = min(best, value)
        return best

    return run


def _optuna_tpe(problem: Problem, budget: int, seed: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(
        lambda t: problem.objective(
            {n: t.suggest_float(n, *p.bounds) for n, p in problem.space.items()}
        ),
        n_trials=budget,
    )
    return float(study.best_value)


def _gp_minimize(problem: Problem, budget: int, seed: int) -> float:
    from skopt import gp_minimize

    names = list(problem.space)
    result = gp_minimize(
        lambda x: problem.objective(dict(zip(names, x, strict=True))),
        [problem.space[n].bounds for n in names],
        n_calls=budget,
        random_state=seed,
    )
    return float(result.fun)


METHODS: dict[str, Callable[[Problem, int, int], float]] = {
    "random": _hpo("random"),
    "tpe": _hpo("tpe"),
    "gp": _hpo("gp"),
    "optuna_tpe": _optuna_tpe,
    "gp_minimize": _gp_minimize,
}
# hpo sampler -> the library it wraps, used directly.
PEERS = {"tpe": "optuna_tpe", "gp": "gp_minimize"}


def _regret(job: tuple[str, str, int, int]) -> tuple[str, str, float, float]:
    """One (problem, method, seed) run: its regret and the seconds it took."""
    problem_name, method, budget, seed = job
    # Small GPs only lose to BLAS threads fighting over the cores.
    with threadpool_limits(1):
        problem = PROBLEMS[problem_name]()
        started = time.perf_counter()
        best = METHODS[method](problem, budget, seed)
    return problem_name, method, best - problem.optimum, time.perf_counter() - started


def benchmark(problems: Sequence[str], budget: int, seeds: int, jobs: int) -> dict[str, Any]:
    """Median regret (and median seconds per run) of every method on every problem."""
    tasks = [(p, m, budget, s) for p in problems for m in METHODS for s in range(seeds)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(_regret, tasks))
    regrets: dict[str, dict[str, float]] = {}
    seconds: dict[str, dict[str, float]] = {}
    for p in problems:
        for m in METHODS:
            mine = [(r, t) for (rp, rm, r, t) in results if (rp, rm) == (p, m)]
            regrets.setdefault(p, {})[m] = statistics.median(r for r, _ in mine)
            seconds.setdefault(p, {})[m] = statistics.median(t for _, t in mine)
    ratios = {
        p: {f"{m}/{peer}": _ratio(regrets[p][m], regrets[p][peer]) for m, peer in PEERS.items()}
        for p in problems
    }
    return {
        "budget": budget,
        "seeds": seeds,
        "median_regret": regrets,
        "median_seconds": seconds,
        "ratios": ratios,
    }


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=50, help="evaluations per run")
    parser.add_argument("--seeds", type=int, default=10, help="runs per method (seeds 0..n-1)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    parser.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated")
    parser.add_argument(
        "--multifidelity-seeds",
        type=int,
        default=10,
        help="seeds of the multi-fidelity Branin section (hpo strategies on Ray; 0 skips it)",
    )
    parser.add_argument("--mf-trials", type=int, default=30, help="trials per multi-fidelity run")
    parser.add_argument("--mf-epochs", type=int, default=9, help="max epochs (the fidelity)")
    args = parser.parse_args()
    problems = args.problems.split(",")
    unknown = [p for p in problems if p not in PROBLEMS]
    if unknown:
        parser.error(f"unknown problem(s) {', '.join(unknown)} (valid: {', '.join(PROBLEMS)})")

    report = benchmark(problems, args.budget, args.seeds, args.jobs)
    print(f"median regret after {args.budget} evaluations, {args.seeds} seeds")
    print(f"{'problem':<10} {'method':<12} {'regret':>10} {'s/run':>7}  vs peer")
    for p in problems:
        for m in METHODS:
            ratio = report["ratios"][p].get(f"{m}/{PEERS[m]}") if m in PEERS else None
            vs = f"{ratio:.2f}x {PEERS[m]}" if ratio is not None else ""
            regret, secs = report["median_regret"][p][m], report["median_seconds"][p][m]
            print(f"{p:<10} {m:<12} {regret:>10.4f} {secs:>7.2f}  {vs}")
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
