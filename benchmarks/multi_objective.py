"""Multi-objective search quality: hypervolume after a fixed budget, hpo's samplers against
Optuna's own samplers measured in the same run.

Problem: ZDT1 with `--dims` variables in [0, 1], both objectives minimized; its Pareto
front is f2 = 1 - sqrt(f1), so the best possible hypervolume against the reference point
(1.1, 11) is 1.1 * 11 - 1/3. The gap is that minus the hypervolume reached (0 is perfect).

Methods, each with the same budget and seeds, one trial at a time (ask, evaluate, tell):

* hpo's `random`, `nsga2`, `motpe` (and `mogp` with `--gp`) through `create_sampler`'s
  ask/tell, as the Ray adapter drives them;
* Optuna's `NSGAIISampler` and `TPESampler` on `optuna.create_study(directions=…)` with
  `study.optimize`, the peers of `nsga2` and `motpe`.

    .venv/bin/python benchmarks/multi_objective.py [--budget 100] [--seeds 5] [--dims 4] [--gp]

The last line is one JSON object: the median gap of every method and the ratios hpo/peer
(near 1: our wrapping costs no search quality), and hpo/random.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
import warnings
from collections.abc import Callable, Sequence

import optuna

from hpo.samplers import create_sampler
from hpo.space import parse_space

REFERENCE = (1.1, 11.0)
BEST_HV = REFERENCE[0] * REFERENCE[1] - 1 / 3


def zdt1(x: Sequence[float]) -> tuple[float, float]:
    """ZDT1 (Zitzler, Deb, Thiele 2000): front at x2..xn = 0, f2 = 1 - sqrt(f1)."""
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    return x[0], g * (1 - math.sqrt(x[0] / g))


def hypervolume(points: Sequence[tuple[float, float]]) -> float:
    """The area two minimized objectives' points dominate inside the reference box."""
    inside = sorted(p for p in points if p[0] < REFERENCE[0] and p[1] < REFERENCE[1])
    area, ceiling = 0.0, REFERENCE[1]
    for f1, f2 in inside:  # by f1; each lower f2 adds the strip up to the last ceiling
        if f2 < ceiling:
            area += (REFERENCE[0] - f1) * (ceiling - f2)
            ceiling = f2
    return area


def run_hpo(name: str, dims: int, budget: int, seed: int) -> float:
    space = parse_space({f"x{i}": {"uniform": [0.0, 1.0]} for i in range(dims)})
    sampler = create_sampler(name, space, mode=["min", "min"], seed=seed)
    points = []
    for i in range(budget):
        config = sampler.ask(f"t{i}")
        assert config is not None
        values = zdt1([config[f"x{j}"] for j in range(dims)])
        sampler.tell_values(f"t{i}", list(values))
        points.append(values)
    return BEST_HV - hypervolume(points)


def run_optuna(make: Callable[[int], optuna.samplers.BaseSampler]) -> Callable[..., float]:
    def run(dims: int, budget: int, seed: int) -> float:
        study = optuna.create_study(directions=["minimize", "minimize"], sampler=make(seed))
        study.optimize(
            lambda t: zdt1([t.suggest_float(f"x{j}", 0.0, 1.0) for j in range(dims)]),
            n_trials=budget,
        )
        return BEST_HV - hypervolume([tuple(t.values) for t in study.trials])  # type: ignore[misc]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--dims", type=int, default=4)
    parser.add_argument("--gp", action="store_true", help="also hpo's mogp (slow)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)

    methods: dict[str, Callable[..., float]] = {
        "random": lambda d, b, s: run_hpo("random", d, b, s),
        "nsga2": lambda d, b, s: run_hpo("nsga2", d, b, s),
        "motpe": lambda d, b, s: run_hpo("motpe", d, b, s),
        "optuna_nsga2": run_optuna(lambda s: optuna.samplers.NSGAIISampler(seed=s)),
        "optuna_tpe": run_optuna(
            lambda s: optuna.samplers.TPESampler(seed=s, multivariate=True, constant_liar=True)
        ),
    }
    if args.gp:
        methods["mogp"] = lambda d, b, s: run_hpo("mogp", d, b, s)
    gaps: dict[str, float] = {}
    for name, run in methods.items():
        started = time.perf_counter()
        results = [run(args.dims, args.budget, seed) for seed in range(args.seeds)]
        gaps[name] = statistics.median(results)
        print(
            f"{name:>13}: median hypervolume gap {gaps[name]:.4f} "
            f"({time.perf_counter() - started:.1f} s for {args.seeds} seeds)"
        )
    ratios = {
        "nsga2/optuna_nsga2": gaps["nsga2"] / gaps["optuna_nsga2"],
        "motpe/optuna_tpe": gaps["motpe"] / gaps["optuna_tpe"],
        "nsga2/random": gaps["nsga2"] / gaps["random"],
        "motpe/random": gaps["motpe"] / gaps["random"],
    }
    if args.gp:
        ratios["mogp/random"] = gaps["mogp"] / gaps["random"]
    print(
        json.dumps(
            {
                "problem": f"zdt1-{args.dims}d",
                "budget": args.budget,
                "seeds": args.seeds,
                "median_gap": gaps,
                "ratios": ratios,
            }
        )
    )


if __name__ == "__main__":
    main()
