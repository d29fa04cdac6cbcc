"""How much the training core costs over a minimal hand-written PyTorch loop.

Both train the same MLP (digits, 64 → 256 → 256 → 10, ReLU) with Adam at a constant lr,
batch 64, for the same number of optimizer steps. `train()` is timed end to end (data
split, model build, per-epoch evaluation and reporting included); the plain loop is timed
from model build to its last step, with its data already on the device, and by default
evaluates the validation split once per epoch as `train()` does (``--no-plain-eval``
times its training steps alone, an upper bound on the core's overhead). Rounds alternate
between the two and medians are compared.

    .venv/bin/python benchmarks/core_overhead.py [--epochs 30] [--rounds 7] [--device cuda]

The last line printed is one JSON object: core_s, plain_s, ratio (wall-time medians),
ratio_cpu (this process's CPU time, steadier on a shared machine), device, steps.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from hpo.training.config import build_config
from hpo.training.data import load_dataset, split
from hpo.training.loop import train

HIDDEN = 256
BATCH = 64
LR = 1e-3
print_sink: list[tuple[float, float]] = []  # where the plain loop "reports" its metrics


def plain_loop(
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
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(x[0].numel(), HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, 10),
    ).to(x.device)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    torch.set_num_threads(args.threads)

    config: dict[str, object] = {
        "dataset": "digits",
        "model": "mlp",
        "hidden": HIDDEN,
        "depth": 2,
        "batch_size": BATCH,
        "optimizer": "adam",
        "lr": LR,
        "schedule": "constant",
        "epochs": args.epochs,
        "device": args.device,
    }
    cfg = build_config(config)
    splits = split(load_dataset(cfg), cfg.val_fraction, cfg.data_seed)
    x, y = splits.train_x.to(args.device), splits.train_y.to(args.device)
    val = (splits.val_x.to(args.device), splits.val_y.to(args.device)) if args.plain_eval else None
    steps = args.epochs * math.ceil(x.shape[0] / BATCH)

    core(config), plain_loop(x, y, val, args.epochs, 0)  # warm-up: imports, allocator, caches
    core_runs, plain_runs = [], []
    for _ in range(args.rounds):
        core_runs.append(core(config))
        plain_runs.append(plain_loop(x, y, val, args.epochs, 0))

    # Wall time is the figure; CPU time of this process is printed beside it because on a
    # shared machine other processes inflate wall time at random.
    core_s, plain_s = (statistics.median(r[0] for r in runs) for runs in (core_runs, plain_runs))
    core_cpu, plain_cpu = (
        statistics.median(r[1] for r in runs) for runs in (core_runs, plain_runs)
    )
    print(f"{'loop':<8}{'median s':>10}{'min s':>10}{'µs/step':>10}{'CPU s':>10}")
    for name, runs in (("core", core_runs), ("plain", plain_runs)):
        med = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(
            f"{name:<8}{med:>10.4f}{min(r[0] for r in runs):>10.4f}"
            f"{med / steps * 1e6:>10.1f}{cpu:>10.4f}"
        )
    print(
        f"ratio core/plain = {core_s / plain_s:.3f} over {steps} steps on {args.device} "
        f"(plain loop evaluates each epoch: {args.plain_eval})"
    )
    print(
        json.dumps(
            {
                "core_s": round(core_s, 5),
                "plain_s": round(plain_s, 5),
                "ratio": round(core_s / plain_s, 4),
                "ratio_cpu": round(core_cpu / plain_cpu, 4),
                "device": args.device,
                "steps": steps,
                "plain_eval": args.plain_eval,
            }
        )
    )


if __name__ == "__main__":
    main()
