"""What checkpointing every epoch costs the training core, against checkpointing off.

For each built-in model (mlp, cnn, rnn, transformer on digits), `train()` runs the same
config three times per round: with a checkpointer that writes the whole state to a local
artifact store folder (`hpo.artifacts.write`, as a Ray trial does) under the default
``checkpoint_every: auto`` (every epoch unless a save would cost over 5% of training
time), with one that saves after every epoch (``checkpoint_every: 1``), and with none.
Rounds alternate them; medians of the process's CPU time (steadier on a shared machine)
and of wall time are compared. The goal: ratio ≤ 1.05 for the default.

    .venv/bin/python benchmarks/checkpoint_overhead.py [--epochs 20] [--rounds 3] [--models mlp,cnn]

Prints one line per model, then one JSON object: per model ratio_cpu (auto, medians),
ratio_cpu_min (fastest runs: the least disturbed on a shared machine), ratio_wall,
the same three for every epoch (`*_every_epoch`), the epochs auto saved after, and the
checkpoint's bytes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from hpo import artifacts
from hpo.training.checkpoint import Every, to_bytes
from hpo.training.loop import train

CONFIGS: dict[str, dict[str, Any]] = {
    "mlp": {"model": "mlp", "hidden": 256, "depth": 2},
    "cnn": {"model": "cnn", "channels": 16},
    "rnn": {"model": "rnn", "hidden": 64},
    "transformer": {"model": "transformer", "d_model": 32, "heads": 4, "depth": 2},
}


class FolderCheckpointer:
    """Saves every epoch's state to a folder, as `TrialCheckpoints` does in a trial."""

    def __init__(self, folder: Path, every: Every) -> None:
        self.every = every
        self.folder = folder
        self.bytes = 0
        self.epochs: list[int] = []

    def load(self) -> None:
        return None

    def save(self, state: dict[str, Any], *, epoch: int, best: bool) -> None:
        location = artifacts.join(str(self.folder), f"epoch-{epoch}.pt")
        self.bytes = artifacts.write(location, to_bytes(state))
        if self.epochs:  # the writer deletes superseded files
            artifacts.delete(artifacts.join(str(self.folder), f"epoch-{self.epochs[-1]}.pt"))
        self.epochs.append(epoch)


def timed(config: dict[str, Any], checkpointer: FolderCheckpointer | None) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    train(config, checkpoint=checkpointer)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="mlp,cnn,rnn,transformer")
    args = parser.parse_args()
    torch.set_num_threads(1)
    summary: dict[str, dict[str, Any]] = {}
    for name in args.models.split(","):
        config = {**CONFIGS[name], "epochs": args.epochs, "seed": 0}
        wall: dict[str, list[float]] = {"auto": [], "every": [], "off": []}
        cpu: dict[str, list[float]] = {"auto": [], "every": [], "off": []}
        size = 0
        saved: list[int] = []
        timed(config, None)  # warm-up: data loading, allocator
        for _ in range(args.rounds):
            modes: tuple[tuple[str, Every], ...] = (("auto", "auto"), ("every", 1), ("off", 0))
            for mode, every in modes:
                with tempfile.TemporaryDirectory() as folder:
                    saver = FolderCheckpointer(Path(folder), every) if every else None
                    w, c = timed(config, saver)
                    if saver is not None:
                        size = saver.bytes
                        if mode == "auto":
                            saved = saver.epochs
                wall[mode].append(w)
                cpu[mode].append(c)
        row: dict[str, Any] = {"bytes": size, "auto_saved_epochs": saved}
        for mode, suffix in (("auto", ""), ("every", "_every_epoch")):
            row[f"ratio_cpu{suffix}"] = statistics.median(cpu[mode]) / statistics.median(cpu["off"])
            # The fastest run of each is the least disturbed by other processes.
            row[f"ratio_cpu_min{suffix}"] = min(cpu[mode]) / min(cpu["off"])
            row[f"ratio_wall{suffix}"] = statistics.median(wall[mode]) / statistics.median(
                wall["off"]
            )
        summary[name] = row
        print(
            f"{name:12s} checkpoint {size / 1024:8.1f} KiB  auto (saved {len(saved)}/"
            f"{args.epochs}): cpu {row['ratio_cpu']:.3f} (fastest {row['ratio_cpu_min']:.3f}) "
            f"wall {row['ratio_wall']:.3f}   every epoch: cpu {row['ratio_cpu_every_epoch']:.3f} "
            f"(fastest {row['ratio_cpu_min_every_epoch']:.3f}) "
            f"wall {row['ratio_wall_every_epoch']:.3f}",
            flush=True,
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
