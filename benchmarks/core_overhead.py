"""How much the training core costs over a minimal hand-written PyTorch loop.

Both train the same model on digits with Adam at a constant lr, batch 64, for the same
number of optimizer steps: the MLP (64 → 256 → 256 → 10, ReLU, written out by hand in the
plain loop), and on the digits as sequences (8 steps of 8 pixels) the RNN (one LSTM layer
of 64 units) and the Transformer (d_model 64, 4 heads, 2 pre-norm blocks); `--models`
adds the CNN. The sequence models and the CNN are the core's own modules in both loops,
so what differs is the loop alone. `train()` is timed end to end (data split, model
build, per-epoch evaluation and reporting included); the plain loop is timed from model
build to its last step, with its data already on the device, and by default evaluates the
validation split once per epoch as `train()` does (``--no-plain-eval`` times its training
steps alone, an upper bound on the core's overhead). Rounds alternate between the two
and medians are compared.

    .venv/bin/python benchmarks/core_overhead.py [--models mlp,rnn,transformer] \
        [--epochs 30] [--rounds 7] [--device cuda]

The last line printed is one JSON object: per model core_s, plain_s, ratio (wall-time
medians), ratio_cpu (this process's CPU time, steadier on a shared machine) and steps;
then device and max_ratio (the worst wall-time ratio).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from hpo.training.config import build_config
from hpo.training.data import load_dataset, split
from hpo.training.loop import train
from hpo.training.models import create_model

HIDDEN = 256
BATCH = 64
LR = 1e-3
print_sink: list[tuple[float, float]] = []  # where the plain loop "reports" its metrics

#: Each model's hyperparameters, given to `train()` and, for all but the MLP, to
#: `create_model` in the plain loop.
MODELS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": HIDDEN, "depth": 2},
    "cnn": {"channels": 32, "depth": 2},
    "rnn": {"cell": "lstm", "hidden": 64, "depth": 1},
    "transformer": {"d_model": 64, "heads": 4, "depth": 2, "ff_mult": 4, "norm": "layer"},
}
_DEFAULTS: dict[str, Any] = {
    "activation": "relu",
    "dropout": 0.0,
    "norm": "none",
    "residual": False,
    "bidirectional": False,
    "norm_position": "pre",
}


def hand_written_mlp(in_features: int) -> nn.Module:
    """The MLP as one would write it by hand (the core's has the same layers)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, 10),
    )


def plain_model(name: str, in_shape: tuple[int, ...]) -> nn.Module:
    """The plain loop's model: the hand-written MLP, else the core's own module."""
    if name == "mlp":
        return hand_written_mlp(math.prod(in_shape))
    params = {**_DEFAULTS, **MODELS[name]}
    return create_model(name, in_shape=in_shape, n_outputs=10, **params)


def plain_loop(
    build: Callable[[], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    val: tuple[torch.Tensor, torch.Tensor] | None,
    epochs: int,
    seed: int,
) -> tuple[float, float]:
    """The reference: what one would write by hand. Returns (wall, CPU) seconds.

    With `val`, it also computes the validation loss and accuracy once per epoch, the
    work `train()` must do to report them.
    """
    if x.is_cuda:
        torch.cuda.synchronize()
    started, cpu_started = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    model = build().to(x.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    n = x.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, device=x.device, generator=generator)
        for lo in range(0, n, BATCH):
            idx = perm[lo : lo + BATCH]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if val is not None:
            with torch.inference_mode():
                out = model(val[0])
                val_loss = F.cross_entropy(out, val[1])
                val_acc = (out.argmax(-1) == val[1]).float().mean()
            print_sink.append((float(val_loss), float(val_acc)))
    final = float(loss.detach())  # one sync so GPU work is finished before the clock stops
    if not math.isfinite(final):
        raise RuntimeError("plain loop diverged")
    return time.perf_counter() - started, time.process_time() - cpu_started


def core(config: dict[str, object]) -> tuple[float, float]:
    """(wall, CPU) seconds for one whole `train()` call."""
    started, cpu_started = time.perf_counter(), time.process_time()
    train(config)
    return time.perf_counter() - started, time.process_time() - cpu_started


def compare(name: str, epochs: int, rounds: int, device: str, plain_eval: bool) -> dict[str, Any]:
    """Time the core and the plain loop on model `name`, alternating, over `rounds`."""
    config: dict[str, object] = {
        "dataset": "digits",
        "model": name,
        **MODELS[name],
        "batch_size": BATCH,
        "optimizer": "adam",
        "lr": LR,
        "schedule": "constant",
        "epochs": epochs,
        "device": device,
    }
    cfg = build_config(config)
    splits = split(load_dataset(cfg), cfg.val_fraction, cfg.data_seed)
    x, y = splits.train_x.to(device), splits.train_y.to(device)
    val = (splits.val_x.to(device), splits.val_y.to(device)) if plain_eval else None
    steps = epochs * math.ceil(x.shape[0] / BATCH)

    def build() -> nn.Module:
        return plain_model(name, tuple(x.shape[1:]))

    core(config), plain_loop(build, x, y, val, epochs, 0)  # warm-up: imports, allocator, caches
    core_runs, plain_runs = [], []
    for _ in range(rounds):
        core_runs.append(core(config))
        plain_runs.append(plain_loop(build, x, y, val, epochs, 0))

    # Wall time is the figure; CPU time of this process is printed beside it because on a
    # shared machine other processes inflate wall time at random.
    core_s, plain_s = (statistics.median(r[0] for r in runs) for runs in (core_runs, plain_runs))
    core_cpu, plain_cpu = (
        statistics.median(r[1] for r in runs) for runs in (core_runs, plain_runs)
    )
    for loop, runs in (("core", core_runs), ("plain", plain_runs)):
        med = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(
            f"{name:<12}{loop:<8}{med:>10.4f}{min(r[0] for r in runs):>10.4f}"
            f"{med / steps * 1e6:>10.1f}{cpu:>10.4f}"
        )
    print(f"{name:<12}ratio core/plain = {core_s / plain_s:.3f} over {steps} steps")
    return {
        "core_s": round(core_s, 5),
        "plain_s": round(plain_s, 5),
        "ratio": round(core_s / plain_s, 4),
        "ratio_cpu": round(core_cpu / plain_cpu, 4),
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        default="mlp,rnn,transformer",
        help=f"comma-separated, from {', '.join(MODELS)} (default mlp,rnn,transformer)",
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (both loops)")
    parser.add_argument(
        "--plain-eval",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="let the plain loop also evaluate once per epoch, as train() does (default on)",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        parser.error(
            f"--models: unknown {', '.join(unknown) or '(none)'}; from {', '.join(MODELS)}"
        )
    torch.set_num_threads(args.threads)

    print(f"{'model':<12}{'loop':<8}{'median s':>10}{'min s':>10}{'µs/step':>10}{'CPU s':>10}")
    figures = {
        name: compare(name, args.epochs, args.rounds, args.device, args.plain_eval)
        for name in names
    }
    print(f"on {args.device}; the plain loop evaluates each epoch: {args.plain_eval}")
    print(
        json.dumps(
            {
                **figures,
                "device": args.device,
                "plain_eval": args.plain_eval,
                "max_ratio": max(f["ratio"] for f in figures.values()),
            }
        )
    )


if __name__ == "__main__":
    main()
