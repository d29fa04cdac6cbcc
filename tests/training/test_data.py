"""Built-in and user datasets, task inference and the deterministic split."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch

from hpo.training.config import build_config
from hpo.training.data import create_dataset, from_arrays, load_dataset, split
from hpo.training.loop import train


def test_digits_are_1x8x8_images_in_unit_range() -> None:
    data = create_dataset("digits")
    assert data.x.shape == (1797, 1, 8, 8) and data.is_image
    assert data.x.min() >= 0.0 and data.x.max() <= 1.0
    assert data.task == "classification" and data.n_outputs == 10


@pytest.mark.parametrize(
    ("name", "task", "shape"),
    [
        ("wine", "classification", (178, 13)),
        ("breast_cancer", "classification", (569, 30)),
        ("synthetic_classification", "classification", (300, 7)),
        ("synthetic_regression", "regression", (300, 7)),
    ],
)
def test_tabular_builtins(name: str, task: str, shape: tuple[int, int]) -> None:
    data = create_dataset(name, n_samples=300, n_features=7, seed=0)
    assert data.x.shape == shape and data.task == task


def test_task_follows_target_dtype() -> None:
    assert from_arrays(torch.rand(4, 2), torch.tensor([0, 1, 2, 1])).n_outputs == 3
    assert from_arrays(torch.rand(4, 2), torch.rand(4)).task == "regression"


def test_split_is_deterministic_by_seed_and_disjoint() -> None:
    data = from_arrays(torch.arange(100.0).reshape(100, 1), torch.zeros(100, dtype=torch.long))
    a, b, c = split(data, 0.2, 0), split(data, 0.2, 0), split(data, 0.2, 1)
    assert torch.equal(a.val_x, b.val_x) and not torch.equal(a.val_x, c.val_x)
    assert a.val_x.shape[0] == 20
    assert set(a.val_x.flatten().tolist()).isdisjoint(a.train_x.flatten().tolist())


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_user_data.py").write_text(
        textwrap.dedent(
            """
            import torch

            def blobs(config):
                g = torch.Generator().manual_seed(config["seed"])
                y = torch.randint(0, 3, (300,), generator=g)
                x = torch.randn(300, 4, generator=g) * 0.3 + y[:, None].float()
                return x, y

            def line(config):
                x = torch.linspace(-1, 1, 200)[:, None]
                return x, 2.0 * x[:, 0]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_user_data"
    sys.modules.pop("my_user_data", None)


def test_user_classification_dataset_trains(user_module: str) -> None:
    result = train({"dataset": f"{user_module}:blobs", "epochs": 5, "lr": 0.01, "hidden": 16})
    assert result.final["val_accuracy"] > 0.9


def test_user_regression_dataset_reports_rmse(user_module: str) -> None:
    result = train({"dataset": f"{user_module}:line", "epochs": 2, "hidden": 8})
    assert "val_rmse" in result.final and "val_accuracy" not in result.final


def test_user_dataset_errors_are_clear(user_module: str) -> None:
    with pytest.raises(ValueError, match="has no function 'nope'"):
        load_dataset(build_config({"dataset": f"{user_module}:nope"}))
    with pytest.raises(ValueError, match="needs image inputs"):
        train({"dataset": f"{user_module}:blobs", "model": "cnn", "epochs": 1})
    with pytest.raises(ValueError, match="must be one of train_loss, val_loss, val_rmse"):
        train({"dataset": f"{user_module}:line", "early_stopping_metric": "val_accuracy"})


def test_unknown_builtin_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="must be one of digits, wine"):
        create_dataset("mnist")
