"""Dashboard load time: the study page of a 10,000-trial study vs a 100-trial one.

Two studies of the same shape (`--epochs` epochs of 4 metrics per trial, a quarter of the
trials pruned early) are written through the repository into one SQLite file and served
by the real app (uvicorn on loopback). Headless Chromium (Debian's, via Playwright) opens
`/studies/{id}` and the clock stops once the trials table has its first page and every
plot has drawn its traces. Rounds alternate between the two studies; medians are reported.

`big_first_s` is the very first load of the big study: a fresh browser profile (Plotly not
yet compiled) and a server that has not yet fitted the study's importance forest. The
rounds after it are a returning user's loads (the browser's cache warm, as after any
first visit).

    .venv/bin/python benchmarks/dashboard_load.py [--trials 10000] [--epochs 20] [--rounds 5]

Last line: one JSON object; `big_s` is the goal figure (< 1.5 s) and `ratio` = big/small
(the page should cost the same whatever the study's size: paged tables, downsampled
curves).
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPEC = {
    "name": "dashboard-load",
    "objective": {"metric": "val_accuracy", "mode": "max"},
    "trainable": {"dataset": "digits", "model": "mlp"},
    "strategy": {"sampler": "random", "scheduler": "asha"},
    "space": {
        "lr": {"loguniform": [1e-4, 0.3]},
        "optimizer": {"choice": ["sgd", "adam", "adamw"]},
        "hidden": {"int": [32, 512], "log": True},
        "dropout": {"uniform": [0.0, 0.5]},
    },
}
PLOTS = (
    "plot-history",
    "plot-curves",
    "plot-parallel",
    "plot-contour",
    "plot-ecdf",
    "plot-importance",
    "plot-slice",
    "plot-lr",
)


def build(repo: object, trials: int, epochs: int, seed: int) -> int:
    """A finished study of `trials` trials written through the repository; its id."""
    from hpo.space import parse_space, sample
    from hpo.spec import load_spec
    from hpo.storage.repository import Repository, ResultRow

    assert isinstance(repo, Repository)
    spec = load_spec({**SPEC, "budget": {"trials": trials, "max_epochs": epochs}})
    space = parse_space(SPEC["space"])
    study = repo.create_study(
        spec.name,
        spec.dump(),
        objective_metric="val_accuracy",
        objective_mode="max",
        n_trials_target=trials,
    )
    rng = random.Random(seed)
    batch: list[ResultRow] = []
    finished: list[tuple[int, str]] = []
    for i in range(trials):
        params = sample(space, rng)
        trial = repo.create_trial(
            study.id,
            config=spec.trial_config(params, seed=i),
            seed=i,
            ray_trial_id=f"t{i}",
            provenance={},
        )
        pruned = i % 4 == 3
        quality = rng.random()
        for e in range(1, (2 if pruned else epochs) + 1):
            acc = quality * (1 - 0.5 / e)
            batch.append(
                ResultRow(
                    trial.id,
                    e,
                    {"val_accuracy": acc, "val_loss": 1 - acc, "train_loss": 1.1 - acc, "lr": 0.01},
                    acc,
                )
            )
        finished.append((trial.id, "pruned" if pruned else "completed"))
        if len(batch) >= 20_000:
            repo.record_results(batch)
            batch = []
    if batch:
        repo.record_results(batch)
    for trial_id, status in finished:
        repo.finish_trial(trial_id, status)  # type: ignore[arg-type]
    repo.set_study_status(study.id, "completed")
    return study.id


def serve(db_url: str) -> str:
    import uvicorn

    from api.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(db_url), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def load_time(page: object, url: str) -> float:
    started = time.perf_counter()
    page.goto(url)  # type: ignore[attr-defined]
    page.wait_for_selector("#trials tbody tr", timeout=60_000)  # type: ignore[attr-defined]
    for div in PLOTS:
        page.wait_for_function(  # type: ignore[attr-defined]
            f"() => (document.getElementById('{div}')?.data || []).length > 0", timeout=60_000
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from hpo.storage.repository import Repository

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/dash.db"
        repo = Repository(url)
        t0 = time.perf_counter()
        big = build(repo, args.trials, args.epochs, seed=0)
        build_s = time.perf_counter() - t0
        small = build(repo, args.small, args.epochs, seed=1)
        repo.close()
        base = serve(url)
        times: dict[str, list[float]] = {"big": [], "small": []}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                ],
            )
            first = browser.new_context(viewport={"width": 1400, "height": 1000})
            big_first_s = load_time(first.new_page(), f"{base}/studies/{big}")
            first.close()
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            load_time(page, f"{base}/studies/{small}")  # warm-up: caches, JIT
            for r in range(args.rounds):
                order = [("big", big), ("small", small)]
                for name, sid in order if r % 2 == 0 else reversed(order):
                    times[name].append(load_time(page, f"{base}/studies/{sid}"))
            browser.close()
    big_s, small_s = statistics.median(times["big"]), statistics.median(times["small"])
    print(f"study page, {args.epochs} epochs per trial, median of {args.rounds} loads")
    print(f"{args.trials:>7} trials  {big_s:6.2f} s")
    print(f"{args.small:>7} trials  {small_s:6.2f} s")
    print(f"first load of the big study (cold browser and server): {big_first_s:.2f} s")
    print(f"(building the {args.trials}-trial study took {build_s:.0f} s)")
    print(
        json.dumps(
            {
                "trials": args.trials,
                "small_trials": args.small,
                "epochs": args.epochs,
                "rounds": args.rounds,
                "big_s": round(big_s, 3),
                "small_s": round(small_s, 3),
                "ratio": round(big_s / small_s, 3),
                "big_first_s": round(big_first_s, 3),
                "goal_big_s": 1.5,
                "build_s": round(build_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
