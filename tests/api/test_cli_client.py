"""The CLI's server mode against a live server: submit, status, watch, cancel, and
studies/trials/best/export with --server (errors print field/message lines, exit 2/1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from api.app import create_app
from hpo.cli import app
from hpo.config import Settings
from hpo.storage.repository import Repository, StudyRecord
from tests.api.support import BRANIN_SPEC, BRANIN_YAML, live_server, seed_study

runner = CliRunner()


@pytest.fixture(scope="module")
def server(backend_url: str) -> Iterator[str]:
    app_ = create_app(backend_url, settings=Settings(allowed_modules=("hpo.examples",)))
    with live_server(app_) as url:
        yield url


@pytest.fixture(scope="module")
def done(backend_url: str) -> StudyRecord:
    with Repository(backend_url) as repo:
        return seed_study(repo)


def _hpo(*args: str) -> object:
    return runner.invoke(app, list(args))


def test_submit_status_cancel(server: str, tmp_path: Path) -> None:
    spec = tmp_path / "branin.yaml"
    spec.write_text(BRANIN_YAML)
    submitted = _hpo("submit", str(spec), "--server", server, "--trials", "4")
    assert submitted.exit_code == 0, submitted.output
    study_id = int(submitted.stdout.strip())
    status = _hpo("status", str(study_id), "--server", server, "--json")
    assert status.exit_code == 0 and json.loads(status.stdout)["trials_target"] == 4
    assert "queued" in _hpo("status", str(study_id), "--server", server).stdout
    cancelled = _hpo("cancel", str(study_id), "--server", server)
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.stdout
    again = _hpo("cancel", str(study_id), "--server", server)
    assert again.exit_code == 2 and "409" in again.stderr


def test_submit_errors_print_fields_and_exit_2(server: str, tmp_path: Path) -> None:
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({**BRANIN_SPEC, "budget": {"trials": 0}}))
    refused = _hpo("submit", str(spec), "--server", server)
    assert refused.exit_code == 2
    assert "budget.trials:" in refused.stderr and "Traceback" not in refused.output
    missing = _hpo("status", "424242", "--server", server)
    assert missing.exit_code == 2 and "no study" in missing.stderr
    unreachable = _hpo("status", "1", "--server", "http://127.0.0.1:9")
    assert unreachable.exit_code == 1 and "cannot reach" in unreachable.stderr
    assert _hpo("submit", str(spec)).exit_code == 2  # no --server, no HPO_SERVER


def test_reading_commands_with_server(server: str, done: StudyRecord, tmp_path: Path) -> None:
    listed = _hpo("studies", "--server", server, "--json")
    assert listed.exit_code == 0 and done.id in [s["id"] for s in json.loads(listed.stdout)]
    assert "branin-api" in _hpo("studies", "--server", server).stdout
    trials = _hpo("trials", str(done.id), "--server", server, "--sort", "best_value", "--json")
    assert [t["number"] for t in json.loads(trials.stdout)] == [2, 1, 3]
    table = _hpo("trials", str(done.id), "--server", server, "--status", "pruned")
    assert table.exit_code == 0 and "pruned" in table.stdout
    best = _hpo("best", str(done.id), "--server", server)
    assert best.exit_code == 0 and "best trial #2" in best.stdout
    assert yaml.safe_load(best.stdout.split("\n", 1)[1]) == {"x1": 1.0, "x2": 1.0}
    out = tmp_path / "study.csv"
    exported = _hpo("export", str(done.id), "--server", server, "--format", "csv", "-o", str(out))
    assert exported.exit_code == 0 and len(out.read_text().splitlines()) == 4
    bad_sort = _hpo("trials", str(done.id), "--server", server, "--status", "zombie")
    assert bad_sort.exit_code == 2 and "query.status" in bad_sort.stderr


def test_watch_ends_with_the_best_trial(server: str, done: StudyRecord) -> None:
    watched = _hpo("watch", str(done.id), "--server", server)
    assert watched.exit_code == 0, watched.output
    assert "best trial #2" in watched.stdout


def test_db_mode_is_unchanged_when_server_is_set(
    backend_url: str, done: StudyRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPO_SERVER", "http://127.0.0.1:9")  # unreachable: --db must win
    local = _hpo("best", str(done.id), "--db", backend_url, "--json")
    assert local.exit_code == 0 and json.loads(local.stdout)["number"] == 2
