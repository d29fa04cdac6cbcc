"""Commands of the service: serve the REST API, and submit, follow and cancel studies on
a server."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from hpo.cli.common import (
    DbOption,
    JsonOption,
    ServerRequired,
    StudyIdArgument,
    TokenOption,
    connect,
    open_repo,
    user_errors,
)
from hpo.cli.render import Remote, fail, fmt, literal, print_best, print_json, show, trials_bar
from hpo.config import get_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (HPO_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port to bind (HPO_PORT).")
    ] = None,
    db: DbOption = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Ray cluster (default: HPO_RAY_ADDRESS, else local)."),
    ] = None,
    runners: Annotated[
        int, typer.Option(min=0, help="Runners executing queued studies in this process.")
    ] = 1,
) -> None:
    """Serve the REST API (/api/v1) and run queued studies with N runners.

    Without authentication (no API token exists) only a loopback address may be bound:
    anyone reaching the port could otherwise run searches and read every study.
    """
    import uvicorn

    from api.app import create_app
    from hpo import service

    settings = get_settings()
    host = host or settings.host
    port = settings.port if port is None else port
    url = db or settings.database_url
    with user_errors():
        repo = open_repo(url)
        try:
            secured = service.auth_enabled(repo)
        finally:
            repo.close()
    if not secured and not service.is_loopback(host):
        fail(
            f"refusing to bind {host} without authentication: create an API token first, "
            "or bind a loopback address (--host 127.0.0.1)"
        )
    started: list[Any] = []
    if runners:
        from hpo.execution.runner import start_runners, stop_runners

        started = start_runners(
            url,
            runners,
            ray_address=ray_address or settings.ray_address,
            # HPO_LEASE_S, as `hpo runner` and the drivers take it: a dead node's study is
            # taken over within one lease.
            lease_s=settings.lease_s,
            heartbeat_s=max(0.5, settings.lease_s / 6),
        )
    try:
        server = uvicorn.Server(uvicorn.Config(create_app(url), host=host, port=port))
        server.run()
    finally:
        if started:
            stop_runners(started)


def submit(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="A study spec (YAML/JSON).")],
    server: ServerRequired = None,
    token: TokenOption = None,
    strategy: Annotated[
        str | None, typer.Option(help="grid, random, tpe/bayes, gp, hyperband, asha, bohb.")
    ] = None,
    trials: Annotated[int | None, typer.Option(min=1, help="Trials to finish.")] = None,
) -> None:
    """Queue a study on a server; prints its id (the server validates the spec)."""
    try:
        text = spec_path.read_text()
    except OSError as exc:
        fail(f"cannot read {spec_path}: {exc.strerror}")
    with connect(server, token) as client:
        study = client.submit(
            text, yaml=spec_path.suffix != ".json", strategy=strategy, trials=trials
        )
    print(study["id"])


def status(
    study_id: StudyIdArgument,
    server: ServerRequired = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """A study's status, trial counts and best value, from a server."""
    with connect(server, token) as client:
        study = client.study(study_id)
    if as_json:
        print_json(study)
        return
    counts = "  ".join(f"{k} {v}" for k, v in study["trial_counts"].items())
    show(
        f"study {study['id']} {literal(study['name'])}: {literal(study['status'])}  "
        f"(target {fmt(study['trials_target'])}; {literal(counts)})\n"
        f"best {literal(study['objective']['metric'])} = {fmt(study['best_value'])}"
    )
    if study["error"]:
        show(f"error: {literal(study['error'], newlines=True)}")


def watch(
    study_id: StudyIdArgument,
    server: ServerRequired = None,
    token: TokenOption = None,
) -> None:
    """Follow a study live (a progress bar fed by its event stream) until it ends, then
    print the best trial. Exits 1 if the study failed or was cancelled."""
    with connect(server, token) as client:
        study = client.study(study_id)
        metric = study["objective"]["metric"]
        bar = trials_bar()
        task = bar.add_task("trials", total=study["trials_target"], detail="")

        def refresh(doc: Mapping[str, Any]) -> None:
            c = doc["trial_counts"]
            bar.update(
                task,
                completed=c["completed"] + c["pruned"],
                detail=literal(
                    f"{doc['status']}  run {c['running']} pruned {c['pruned']} "
                    f"failed {c['failed']} best {metric}={fmt(doc['best_value'])}"
                ),
            )

        ending = study["status"]
        with bar:
            refresh(study)
            # The summary is re-read on events rather than rebuilt from them: counts stay
            # right when watching starts late or events were closed in bulk on resume.
            last_refresh = 0.0
            for event in client.events(study_id):
                ending = event.kind
                now = time.monotonic()
                if now - last_refresh >= 0.5:
                    refresh(client.study(study_id))
                    last_refresh = now
            study = client.study(study_id)
            refresh(study)
        if study["status"] != "completed":
            reason = literal(study["error"] or ending, newlines=True)
            fail(f"study {study_id} {literal(study['status'])}: {reason}", code=1)
        if study["best_trial"] is None:
            fail(f"study {study_id} has no finished trial with a finite {literal(metric)}", code=1)
        print_best(Remote(study["best_trial"]), metric)


def cancel(
    study_id: StudyIdArgument,
    server: ServerRequired = None,
    token: TokenOption = None,
) -> None:
    """Cancel a queued or running study on a server."""
    with connect(server, token) as client:
        study = client.cancel(study_id)
    if study["status"] == "running":
        # The driver owns the study: it stops the trials and marks the study cancelled.
        show(f"study {study['id']}: cancel requested; its trials stop within seconds")
    else:
        show(f"study {study['id']}: {literal(study['status'])}")
