"""REST read latency: hpo's API on SQLite and PostgreSQL vs optuna-dashboard's API.

One study of `--trials` trials (default 10,000) with `--epochs` epochs (default 20) of the
training core's five metrics each (train_loss, val_loss, val_accuracy, lr, seconds; 1M
metric rows at the defaults) is written through `Repository` (`create_study`,
`create_trial`, `record_results` batched over `--batch` trials per call, `finish_trial`)
into a fresh SQLite file and a fresh PostgreSQL database (``hpo_bench_<random>``, dropped
WITH (FORCE) at the end). Configs are drawn from `search_spaces/mlp_digits.yaml`; every
20th trial fails, every 10th other one is pruned, the rest complete. The SQLite study is
exported with `hpo.export.to_optuna` into an Optuna RDB storage (a SQLite file), and
optuna-dashboard serves that export.

Each API runs in its own server process on a free loopback port: hpo as
`uvicorn.Server(create_app(url))` (as `hpo serve` runs it), one per database;
optuna-dashboard as `optuna_dashboard.wsgi(storage)` under `wsgiref` (what its own
`run_server` uses; it answers one request per connection, so its figures include a
loopback connect). One `httpx.Client` (keep-alive) sends `--warmup` requests and then
`--requests` sequential requests per endpoint; p50/p99 are in milliseconds.

Counterparts (optuna-dashboard has no paging, no server-side sort and no "best" route;
its browser UI reads everything from ``GET /api/studies/{id}`` and sorts client-side):

* ``GET /api/v1/studies/{id}`` (study, trial counts, best trial) ↔
  ``GET /api/studies/{id}?after={n_trials}``: the dashboard's study detail (directions,
  best trial, search spaces) with no trial rows, i.e. the same content and what its UI
  polls once it has every trial.
* ``GET /api/v1/studies/{id}/trials?limit=100&sort=best_value`` (and ``sort=val_loss``)
  ↔ ``GET /api/studies/{id}``: the only way the dashboard gets trials in any order is the
  whole list, which its UI then sorts. The ratio against the dashboard's unsorted
  100-trial tail, ``GET /api/studies/{id}?after={n_trials - 100}``, is reported too
  (``ratios_vs_dashboard_page``), as the like-for-like payload size.
* ``GET /api/v1/studies/{id}/best`` ↔ ``GET /api/studies/{id}?after={n_trials}``: its
  ``best_trials`` field (from `storage.get_best_trial`) is the dashboard's only way to
  the best trial.

optuna-dashboard keeps a study's trials in memory for 10 s (studies of 500+ trials) and
then reloads them all; requests that fall on a reload are measured as they come.

Writing the export through Optuna's RDB storage costs 45-130 ms per trial on 2 shared
cores (an ORM flush per intermediate value), 8-20 minutes for 10,000 trials;
``--optuna-storage journal`` writes the same export to a JournalStorage file in seconds
(optuna-dashboard then serves trials from memory, a peer at least as fast). An endpoint
whose `--requests` would take longer than `--max-seconds` is measured over that time
(at least 20 requests; the count is in the output).

    .venv/bin/python benchmarks/api_latency.py --trials 10000 --optuna-storage journal

Last line: one JSON object; ``ratios`` = hpo p99 / optuna-dashboard p99 per endpoint and
backend (goal: every one <= 0.5).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEC_FILE = ROOT / "search_spaces" / "mlp_digits.yaml"
PG_ADMIN = os.environ.get("HPO_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
GOAL = 0.5


# --- the study ------------------------------------------------------------------------


def _config(rng: random.Random, epochs: int, seed: int) -> dict[str, Any]:
    """A configuration as the built-in trainable receives it (mlp_digits.yaml's space)."""
    optimizer = rng.choice(["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
    config: dict[str, Any] = {
        "dataset": "digits",
        "model": "mlp",
        "early_stopping_metric": "val_accuracy",
        "epochs": epochs,
        "schedule": "cosine",
        "warmup_epochs": 2,
        "grad_clip_norm": 1.0,
        "preprocess": "standardize",
        "optimizer": optimizer,
        "lr": math.exp(rng.uniform(math.log(1e-4), math.log(0.3))),
        "hidden": round(math.exp(rng.uniform(math.log(32), math.log(512)))),
        "dropout": round(0.05 * rng.randint(0, 10), 2),
        "batch_size": rng.choice([32, 64, 128]),
        "seed": seed,
    }
    if optimizer in ("momentum", "nesterov"):
        config["momentum"] = rng.uniform(0.5, 0.99)
    return config


def _history(rng: random.Random, epochs: int, lr: float) -> list[dict[str, float]]:
    """Per-epoch metrics of a plausible learning curve."""
    level = rng.uniform(0.5, 0.985)
    speed = rng.uniform(1.5, 6.0)
    rows = []
    for e in range(1, epochs + 1):
        acc = min(0.999, level - (level - 0.1) * math.exp(-e / speed) + rng.gauss(0, 0.005))
        rows.append(
            {
                "train_loss": -math.log(min(0.999, acc + 0.02)) + rng.uniform(0, 0.02),
                "val_loss": -math.log(acc) + rng.uniform(0, 0.03),
                "val_accuracy": acc,
                "lr": lr * 0.5 * (1 + math.cos(math.pi * e / epochs)),
                "seconds": rng.uniform(0.04, 0.08),
            }
        )
    return rows


def build_study(url: str, trials: int, epochs: int, batch: int, seed: int) -> dict[str, Any]:
    """Write the study through the repository; returns its id and the seconds per phase."""
    from hpo.spec import load_spec
    from hpo.storage.repository import Repository, ResultRow

    spec = load_spec(SPEC_FILE).dump()
    spec["budget"] = {**spec["budget"], "trials": trials, "max_epochs": epochs}
    spec = load_spec(spec).dump()
    rng = random.Random(seed)
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    repo = Repository(url)
    try:
        study = repo.create_study(
            "api-latency",
            spec,
            objective_metric="val_accuracy",
            objective_mode="max",
            n_trials_target=trials,
            status="running",
        )
        phases["schema_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ids = []
        for i in range(trials):
            config = _config(rng, epochs, seed * 1_000_003 + i)
            trial = repo.create_trial(
                study.id,
                config=config,
                seed=config["seed"],
                ray_trial_id=f"bench_{i:06d}",
                provenance={
                    "seed": config["seed"],
                    "hpo_version": "0.1.0",
                    "torch_version": "2.13.0",
                    "device": "cpu",
                    "hostname": "bench",
                    "node_ip": "127.0.0.1",
                },
            )
            ids.append((trial.id, config["lr"]))
        phases["create_trials_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for start in range(0, trials, batch):
            rows = [
                ResultRow(tid, step, metrics, metrics["val_accuracy"])
                for tid, lr in ids[start : start + batch]
                for step, metrics in enumerate(_history(rng, epochs, lr), start=1)
            ]
            repo.record_results(rows)
        phases["record_results_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i, (tid, _) in enumerate(ids):
            if i % 20 == 19:
                repo.finish_trial(tid, "failed", error="RuntimeError: CUDA out of memory")
            elif i % 10 == 9:
                repo.finish_trial(tid, "pruned")
            else:
                repo.finish_trial(tid, "completed")
        repo.set_study_status(study.id, "completed")
        phases["finish_trials_s"] = time.perf_counter() - t0
    finally:
        repo.close()
    return {"study_id": study.id, "phases": phases}


def optuna_storage(target: str) -> Any:
    """An Optuna storage: a ``.log`` path is a JournalStorage file, anything else an RDB URL."""
    import optuna

    if target.endswith(".log"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(target))
    return optuna.storages.RDBStorage(target)


def export_optuna(url: str, study_id: int, target: str) -> int:
    """Export the study with `hpo.export.to_optuna`; returns its Optuna study id."""
    import optuna

    from hpo.export import to_optuna
    from hpo.storage.repository import Repository

    storage = optuna_storage(target)
    with Repository(url) as repo:
        name = to_optuna(repo, repo.get_study(study_id), storage)
    return optuna.load_study(study_name=name, storage=storage)._study_id


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped WITH (FORCE) afterwards; yields its URL."""
    import psycopg

    name = f"hpo_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- servers --------------------------------------------------------------------------


def serve(kind: str, target: str, port: int) -> None:
    """Run one API server in this process until it is terminated."""
    if kind == "hpo":
        import uvicorn

        from api.app import create_app

        config = uvicorn.Config(
            create_app(target), host="127.0.0.1", port=port, log_level="warning"
        )
        uvicorn.Server(config).run()
    else:
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        import optuna_dashboard

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

        server = make_server(
            "127.0.0.1",
            port,
            optuna_dashboard.wsgi(optuna_storage(target)),
            handler_class=Quiet,
        )
        server.serve_forever()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(kind: str, target: str, ready_path: str, log_dir: str) -> Iterator[str]:
    """Start `serve(kind, target)` in a child process; yields its base URL once ready."""
    import httpx

    port = _free_port()
    log = Path(log_dir) / f"{kind}-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--target", target, "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} server exited:\n{log.read_text()}")
            try:
                if httpx.get(base + ready_path, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} server not ready:\n{log.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- measurement ----------------------------------------------------------------------


def measure(
    client: Any, url: str, warmup: int, n: int, max_s: float, min_n: int = 20
) -> dict[str, float]:
    """p50/p99 (ms) of `n` sequential GETs of `url` after `warmup` unmeasured ones.

    An endpoint so slow that `n` requests would take more than `max_s` seconds stops
    after `max_s` (warm-up after `max_s / 4`), but never before `min_n` measured requests.
    """
    start = time.perf_counter()
    for i in range(warmup):
        client.get(url).raise_for_status()
        if i and time.perf_counter() - start > max_s / 4:
            break
    times: list[float] = []
    size = 0
    start = time.perf_counter()
    while len(times) < n and (len(times) < min_n or time.perf_counter() - start < max_s):
        t0 = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
        size = len(response.content)
    q = statistics.quantiles(times, n=100, method="inclusive")
    return {"p50": q[49], "p99": q[98], "max": max(times), "bytes": size, "n": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=250, help="trials per record_results")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, help="per endpoint (at least 20 requests)"
    )
    parser.add_argument(
        "--optuna-storage",
        choices=["sqlite", "journal"],
        default="sqlite",
        help="the Optuna export: an RDB SQLite file, or a JournalStorage file (faster to write)",
    )
    parser.add_argument("--serve", choices=["hpo", "dashboard"], help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.target, args.port)
        return

    import httpx

    n = args.trials
    figures: dict[str, dict[str, dict[str, float]]] = {}
    build: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, pg_database() as pg_url:
        urls = {"sqlite": f"sqlite:///{tmp}/hpo.db", "postgresql": pg_url}
        study_ids = {}
        # Both databases are written at once, each by its own process.
        t0 = time.perf_counter()
        with ProcessPoolExecutor(2) as pool:
            futures = {
                backend: pool.submit(build_study, url, n, args.epochs, args.batch, args.seed)
                for backend, url in urls.items()
            }
            for backend, future in futures.items():
                built = future.result()
                study_ids[backend] = built["study_id"]
                build[backend] = {k: round(v, 2) for k, v in built["phases"].items()}
                print(f"built on {backend}: {build[backend]}", file=sys.stderr)
        build["both_s"] = round(time.perf_counter() - t0, 2)
        build["optuna_storage"] = args.optuna_storage
        if args.optuna_storage == "journal":
            optuna_url = f"{tmp}/optuna.log"
        else:
            optuna_url = f"sqlite:///{tmp}/optuna.db"
        t0 = time.perf_counter()
        optuna_id = export_optuna(urls["sqlite"], study_ids["sqlite"], optuna_url)
        build["optuna_export_s"] = round(time.perf_counter() - t0, 2)
        print(f"exported to Optuna in {build['optuna_export_s']} s", file=sys.stderr)

        paths = {
            "study": "/api/v1/studies/{id}",
            "trials_best_value": "/api/v1/studies/{id}/trials?limit=100&sort=best_value",
            "trials_val_loss": "/api/v1/studies/{id}/trials?limit=100&sort=val_loss",
            "best": "/api/v1/studies/{id}/best",
        }
        with httpx.Client(timeout=120) as client:
            for backend, url in urls.items():
                with server("hpo", url, "/healthz", tmp) as base:
                    sid = study_ids[backend]
                    detail = client.get(f"{base}/api/v1/studies/{sid}").json()
                    assert sum(detail["trial_counts"].values()) == n, detail["trial_counts"]
                    for name, path in paths.items():
                        key = f"hpo_{backend}"
                        figures.setdefault(key, {})[name] = measure(
                            client,
                            base + path.format(id=sid),
                            args.warmup,
                            args.requests,
                            args.max_seconds,
                        )
                        print(f"{key} {name}: {figures[key][name]}", file=sys.stderr)
            dash_paths = {
                "detail_no_trials": f"/api/studies/{optuna_id}?after={n}",
                "detail_all_trials": f"/api/studies/{optuna_id}",
                "detail_last_100": f"/api/studies/{optuna_id}?after={max(0, n - 100)}",
            }
            with server("dashboard", optuna_url, "/api/meta", tmp) as base:
                full = client.get(f"{base}{dash_paths['detail_all_trials']}").json()
                assert len(full["trials"]) == n, len(full["trials"])
                for name, path in dash_paths.items():
                    figures.setdefault("optuna_dashboard", {})[name] = measure(
                        client, base + path, args.warmup, args.requests, args.max_seconds
                    )
                    print(f"dashboard {name}: {figures['optuna_dashboard'][name]}", file=sys.stderr)

    counterpart = {
        "study": "detail_no_trials",
        "trials_best_value": "detail_all_trials",
        "trials_val_loss": "detail_all_trials",
        "best": "detail_no_trials",
    }
    dash = figures["optuna_dashboard"]
    ratios: dict[str, dict[str, float]] = {}
    page_ratios: dict[str, dict[str, float]] = {}
    print(f"{'server':18s} {'endpoint':18s} {'n':>4s} {'p50 ms':>9s} {'p99 ms':>9s} {'KiB':>8s}")
    for key, rows in figures.items():
        for name, f in rows.items():
            print(
                f"{key:18s} {name:18s} {f['n']:4d} {f['p50']:9.2f} {f['p99']:9.2f} "
                f"{f['bytes'] / 1024:8.1f}"
            )
    for backend in urls:
        key = f"hpo_{backend}"
        ratios[backend] = {
            name: round(figures[key][name]["p99"] / dash[peer]["p99"], 4)
            for name, peer in counterpart.items()
        }
        page_ratios[backend] = {
            name: round(figures[key][name]["p99"] / dash["detail_last_100"]["p99"], 4)
            for name in ("trials_best_value", "trials_val_loss")
        }
    goal_met = all(r <= GOAL for per in ratios.values() for r in per.values())
    print(f"ratios hpo p99 / optuna-dashboard p99: {ratios} -> goal <= {GOAL}: {goal_met}")
    print(
        json.dumps(
            {
                "trials": n,
                "epochs": args.epochs,
                "metric_rows": n * args.epochs * 5,
                "requests": args.requests,
                "requests_measured": {
                    key: {name: f["n"] for name, f in rows.items()} for key, rows in figures.items()
                },
                "warmup": args.warmup,
                "build_s": build,
                "ms": {
                    key: {
                        name: {"p50": round(f["p50"], 3), "p99": round(f["p99"], 3)}
                        for name, f in rows.items()
                    }
                    for key, rows in figures.items()
                },
                "counterpart": counterpart,
                "ratios": ratios,
                "ratios_vs_dashboard_page": page_ratios,
                "goal": GOAL,
                "goal_met": goal_met,
            }
        )
    )


if __name__ == "__main__":
    main()
