"""What checkpointing every epoch costs the training core, against checkpointing off.

For each built-in model (mlp, cnn, rnn, transformer on digits), `train()` runs the same
config twice per round: once with a checkpointer that writes the whole state to a local
artifact store folder every epoch (`hpo.artifacts.write`, as a Ray trial does), once
with none. Rounds alternate the two; medians of the process's CPU time (steadier on a
shared machine) and of wall time are compared. The goal: ratio ≤ 1.05.

    .venv/bin/python benchmarks/checkpoint_overhead.py [--epochs 5] [--rounds 3] [--models mlp,cnn]

Prints one line per model, then one JSON object: per model ratio_cpu (medians),
ratio_cpu_min (fastest runs: the least disturbed on a shared machine), ratio_wall,
checkpoint bytes.
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
from hpo.training.checkpoint import to_bytes
from hpo.training.loop import train

CONFIGS: dict[str, dict[str, Any]] = {
    "mlp": {"model": "mlp", "hidden": 256, "depth": 2},
    "cnn": {"model": "cnn", "channels": 16},
    "rnn": {"model": "rnn", "hidden": 64},
    "transformer": {"model": "transformer", "d_model": 32, "heads": 4, "depth": 2},
}


class FolderCheckpointer:
    """Saves every epoch's state to a folder, as `TrialCheckpoints` does in a trial."""

    def __init__(self, folder: Path) -> None:
        self.every = 1
        self.folder = folder
        self.bytes = 0

    def load(self) -> None:
        return None

    def save(self, state: dict[str, Any], *, epoch: int, best: bool) -> None:
        location = artifacts.join(str(self.folder), f"epoch-{epoch}.pt")
        self.bytes = artifacts.write(location, to_bytes(state))
        if epoch > 1:  # the writer deletes superseded files
            artifacts.delete(artifacts.join(str(self.folder), f"epoch-{epoch - 1}.pt"))


def timed(config: dict[str, Any], checkpointer: FolderCheckpointer | None) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    train(config, checkpoint=checkpointer)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="mlp,cnn,rnn,transformer")
    args = parser.parse_args()
    torch.set_num_threads(1)
    summary: dict[str, dict[str, float]] = {}
    for name in args.models.split(","):
        config = {**CONFIGS[name], "epochs": args.epochs, "seed": 0}
        on_wall, on_cpu, off_wall, off_cpu = [], [], [], []
        size = 0
        timed(config, None)  # warm-up: data loading, allocator
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as folder:
                saver = FolderCheckpointer(Path(folder))
                wall, cpu = timed(config, saver)
                size = saver.bytes
            on_wall.append(wall)
            on_cpu.append(cpu)
            wall, cpu = timed(config, None)
            off_wall.append(wall)
            off_cpu.append(cpu)
        ratio_cpu = statistics.median(on_cpu) / statistics.median(off_cpu)
        ratio_wall = statistics.median(on_wall) / statistics.median(off_wall)
        # The fastest run of each is the least disturbed by other processes.
        ratio_min = min(on_cpu) / min(off_cpu)
        summary[name] = {
            "ratio_cpu": ratio_cpu,
            "ratio_cpu_min": ratio_min,
            "ratio_wall": ratio_wall,
            "bytes": size,
        }
        print(
            f"{name:12s} checkpoint {size / 1024:8.1f} KiB  "
            f"on/off cpu {ratio_cpu:.3f} (fastest {ratio_min:.3f})  wall {ratio_wall:.3f}",
            flush=True,
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
