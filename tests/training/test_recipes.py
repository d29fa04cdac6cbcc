"""The notes' three recipes as example spaces: each states its recipe in `fixed`, and
`hpo train` on its fixed values reaches 0.95 val_accuracy on the digits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from hpo.cli import app
from hpo.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ("recipe_cnn", "recipe_rnn", "recipe_transformer")


@pytest.mark.parametrize(
    ("name", "model", "recipe"),
    [
        ("recipe_cnn", "cnn", {"norm": "batch", "optimizer": "momentum", "schedule": "cosine"}),
        (
            "recipe_rnn",
            "rnn",
            {"grad_clip_norm": 1.0, "optimizer": "adam", "schedule": "step"},
        ),
        (
            "recipe_transformer",
            "transformer",
            {
                "warmup_epochs": 2,
                "grad_clip_norm": 1.0,
                "optimizer": "adamw",
                "beta1": 0.9,
                "beta2": 0.98,
                "schedule": "noam",
            },
        ),
    ],
)
def test_each_recipe_fixes_its_recipe_and_searches_its_knobs(
    name: str, model: str, recipe: dict
) -> None:
    spec = load_spec(ROOT / "search_spaces" / f"{name}.yaml")
    assert spec.trainable.dataset == "digits" and spec.trainable.model == model
    assert {k: spec.fixed[k] for k in recipe} == recipe
    assert spec.space and spec.objective.metric == "val_accuracy"


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Train on one core, as the recipes' budgets are stated (and as a trial runs with
    resources.cpu: 1); intra-op threads on a busy machine only slow it down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_hpo_train_on_each_recipe_reaches_095(name: str, one_thread: None) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(ROOT / "search_spaces" / f"{name}.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["val_accuracy"] >= 0.95, doc["val_accuracy"]
    assert doc["epochs_run"] == load_spec(ROOT / "search_spaces" / f"{name}.yaml").budget.max_epochs
