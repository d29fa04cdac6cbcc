"""`hpo train`: one trial from a spec, a per-epoch table, --json, exit code 2 on bad values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hpo.cli import app

runner = CliRunner()


def test_example_spec_reaches_095_accuracy() -> None:
    result = runner.invoke(app, ["train", "search_spaces/mlp_digits.yaml", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["val_accuracy"] >= 0.95
    assert len(doc["history"]) == 20
    assert [h["epoch"] for h in doc["history"]] == list(range(1, 21))
    assert all("lr" in h for h in doc["history"])
    # The fixed cosine schedule with 2 warm-up epochs: the lr rises, then decays to ~0.
    lrs = [h["lr"] for h in doc["history"]]
    assert lrs[1] == max(lrs) and lrs[-1] < lrs[1] / 100


def test_table_and_set_and_epochs() -> None:
    result = runner.invoke(
        app,
        [
            "train",
            "search_spaces/mlp_digits.yaml",
            "--set",
            "optimizer=sgd",
            "--set",
            "lr=0.05",
            "--epochs",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.strip().splitlines()]
    assert lines[0][:2] == ["epoch", "train_loss"]
    assert [row[0] for row in lines[1:]] == ["1", "2", "3"]


def test_json_config_shows_overrides() -> None:
    result = runner.invoke(
        app,
        [
            "train",
            "search_spaces/tabular_wine.yaml",
            "--set",
            "hidden=16",
            "--epochs",
            "1",
            "--json",
        ],
    )
    doc = json.loads(result.stdout)
    assert doc["config"]["hidden"] == 16 and doc["config"]["epochs"] == 1
    assert set(doc) >= {"train_loss", "val_loss", "val_accuracy", "lr", "seconds", "history"}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--set", "optimizer=lbfgs-turbo"], "--set optimizer='lbfgs-turbo': must be one of"),
        (["--set", "lr=-1"], "--set lr=-1"),
        (["--set", "lrr=0.1"], "--set lrr: unknown hyperparameter"),
        (["--set", "lr"], "expected key=value"),
        (["--set", "hidden=many"], "--set hidden='many'"),
    ],
)
def test_bad_values_exit_2_naming_the_parameter(args: list[str], words: str) -> None:
    result = runner.invoke(app, ["train", "search_spaces/mlp_digits.yaml", "--epochs", "1", *args])
    assert result.exit_code == 2
    assert words in result.stderr
    assert "Traceback" not in result.output


def test_bad_spec_exits_2_with_every_problem(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: bad\nobjective: {metric: val_accuracy, mode: max}\ntrainable: {dataset: digits}\n"
        "fixed: {optimizer: lbfgs-turbo, lr: -1}\n"
    )
    result = runner.invoke(app, ["train", str(spec)])
    assert result.exit_code == 2
    assert "fixed.optimizer" in result.stderr and "fixed.lr" in result.stderr


def test_user_function_trainable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_trial.py").write_text(
        "def fit(config, report):\n"
        "    for epoch in range(1, config['epochs'] + 1):\n"
        "        report({'epoch': epoch, 'loss': (config['x'] - 3) ** 2 / epoch})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = tmp_path / "f.yaml"
    spec.write_text(
        "name: f\nobjective: {metric: loss, mode: min}\ntrainable: {function: 'my_trial:fit'}\n"
        "budget: {max_epochs: 4}\nfixed: {x: 1.0}\n"
    )
    result = runner.invoke(app, ["train", str(spec), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["loss"] == pytest.approx(1.0)
    assert len(doc["history"]) == 4


def test_run_refuses_a_function_that_cannot_be_imported(tmp_path: Path) -> None:
    spec = tmp_path / "f.yaml"
    spec.write_text(
        "name: f\nobjective: {metric: loss, mode: min}\n"
        "trainable: {function: 'no_such_module_hpo:fit'}\n"
    )
    result = runner.invoke(app, ["run", str(spec), "--db", f"sqlite:///{tmp_path}/x.db"])
    assert result.exit_code == 2
    assert "trainable.function: cannot import module 'no_such_module_hpo'" in result.stderr


@pytest.mark.parametrize("value", ["2024-13-45", "9" * 5000])
def test_set_values_yaml_cannot_convert_are_refused_by_name(value: str) -> None:
    result = runner.invoke(
        app, ["train", "search_spaces/mlp_digits.yaml", "--set", f"hidden={value}"]
    )
    assert result.exit_code == 2, result.output
    assert "--set hidden=" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("reference", ["revmarker.-:f", " os:system", "os.:system"])
def test_malformed_dataset_references_are_refused_before_training(
    reference: str, tmp_path: Path
) -> None:
    """The CLI reads references with the one parser (hpo.references), like the API and the
    trial: `hpo train` and `hpo run` refuse them by field before anything runs."""
    trained = runner.invoke(
        app, ["train", "search_spaces/mlp_digits.yaml", "--set", f"dataset='{reference}'"]
    )
    assert trained.exit_code == 2, trained.output
    assert "dataset:" in trained.stderr and "Traceback" not in trained.output
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: bypass\nobjective: {metric: val_accuracy, mode: max}\n"
        f"trainable: {{dataset: digits}}\nfixed: {{dataset: '{reference}'}}\n"
    )
    ran = runner.invoke(app, ["run", str(spec), "--db", f"sqlite:///{tmp_path}/hpo.db"])
    assert ran.exit_code == 2, ran.output
    assert "fixed.dataset:" in ran.stderr
