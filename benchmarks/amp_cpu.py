"""Why `amp` (bf16 or fp16) is ignored on CPU: CPU autocast against float32, in one run.

Times training steps (forward under autocast, backward, Adam step) of the core's MLP and
Transformer on a digits-sized batch, in float32 and under ``torch.autocast("cpu")`` with
bfloat16 and float16; rounds alternate and medians are compared. A dtype that CPU
autocast refuses is printed as refused.

    .venv/bin/python benchmarks/amp_cpu.py [--steps 50] [--rounds 5] [--threads 1]

The last line printed is one JSON object: per model, µs per step for each precision and
its ratio to float32 (above 1: slower than float32).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch.nn import functional as F

from hpo.training.models import create_model

MODELS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": 256, "depth": 2, "dropout": 0.0, "norm": "none", "residual": False},
    "transformer": {
        "d_model": 64,
        "heads": 4,
        "depth": 2,
        "ff_mult": 4,
        "dropout": 0.0,
        "norm": "layer",
        "norm_position": "pre",
    },
}
PRECISIONS: dict[str, Callable[[], AbstractContextManager[object]]] = {
    "fp32": contextlib.nullcontext,
    "bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16),
    "fp16": lambda: torch.autocast("cpu", dtype=torch.float16),
}


def steps_seconds(model_name: str, precision: str, steps: int) -> float:
    """Seconds per training step of `model_name` under `precision` (one timed block)."""
    torch.manual_seed(0)
    model = create_model(
        model_name, in_shape=(1, 8, 8), n_outputs=10, activation="relu", **MODELS[model_name]
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    context = PRECISIONS[precision]
    started = time.perf_counter()
    for _ in range(steps):
        with context():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    figures: dict[str, dict[str, Any]] = {}
    for model_name in MODELS:
        runs: dict[str, list[float]] = {p: [] for p in PRECISIONS}
        refused: dict[str, str] = {}
        for precision in PRECISIONS:  # warm-up, and find out what autocast refuses
            try:
                steps_seconds(model_name, precision, 2)
            except RuntimeError as exc:
                refused[precision] = str(exc).splitlines()[0]
        for _ in range(args.rounds):
            for precision in PRECISIONS:
                if precision not in refused:
                    runs[precision].append(steps_seconds(model_name, precision, args.steps))
        base = statistics.median(runs["fp32"])
        row: dict[str, Any] = {}
        for precision in PRECISIONS:
            if precision in refused:
                row[precision] = f"refused: {refused[precision]}"
                print(f"{model_name:<12}{precision:<6} refused: {refused[precision]}")
                continue
            med = statistics.median(runs[precision])
            row[precision] = {"us_per_step": round(med * 1e6, 1), "ratio": round(med / base, 3)}
            print(f"{model_name:<12}{precision:<6}{med * 1e6:>10.1f} µs/step  ×{med / base:.2f}")
        figures[model_name] = row
    print(json.dumps({"threads": args.threads, "torch": torch.__version__, **figures}))


if __name__ == "__main__":
    main()
