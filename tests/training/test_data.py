"""Built-in and user datasets, task inference and the deterministic split."""

from __future__ import annotations

import hashlib
import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from hpo.training.config import ConfigError, build_config
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
    data = create_dataset(name, n_samples=300, n_features=7, data_seed=0)
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
    assert a.split_hash == b.split_hash != c.split_hash


def test_split_hash_is_sha256_of_sorted_validation_rows() -> None:
    data = from_arrays(torch.arange(50.0).reshape(50, 1), torch.rand(50))
    s = split(data, 0.2, 3)
    rows = sorted(int(v) for v in s.val_x.flatten())  # x holds the row number
    expected = hashlib.sha256(np.array(rows, dtype="<i8").tobytes()).hexdigest()[:12]
    assert s.split_hash == expected and len(expected) == 12


def test_classification_split_is_stratified() -> None:
    # 90 rows of class 0, 10 of class 1: a 20% validation split holds 18 and 2.
    y = torch.tensor([0] * 90 + [1] * 10)
    data = from_arrays(torch.arange(100.0).reshape(100, 1), y)
    for seed in range(5):
        s = split(data, 0.2, seed)
        assert s.val_y.bincount().tolist() == [18, 2]
        assert s.train_y.bincount().tolist() == [72, 8]


def test_test_split_is_disjoint_and_seeded_by_data_seed() -> None:
    data = from_arrays(torch.arange(200.0).reshape(200, 1), torch.arange(200) % 4)
    s = split(data, 0.2, 7, test_fraction=0.1)
    parts = [set(p.flatten().tolist()) for p in (s.train_x, s.val_x, s.test_x)]
    assert [len(p) for p in parts] == [140, 40, 20]
    assert set().union(*parts) == set(range(200))
    assert s.test_y.bincount().tolist() == [5, 5, 5, 5]
    assert torch.equal(split(data, 0.2, 7, test_fraction=0.1).test_x, s.test_x)


def test_trial_seed_does_not_move_the_split_or_the_synthetic_data() -> None:
    hashes = set()
    for seed in (0, 1, 2):
        seen: list[dict] = []
        train(
            {"dataset": "synthetic_classification", "n_samples": 100, "epochs": 1, "seed": seed},
            report=seen.append,
        )
        assert seen[0]["hpo_data_seed"] == 0
        hashes.add(seen[0]["hpo_split_hash"])
    assert len(hashes) == 1
    seen = []
    train({"dataset": "digits", "epochs": 1, "data_seed": 5}, report=seen.append)
    assert seen[0]["hpo_data_seed"] == 5 and seen[0]["hpo_split_hash"] not in hashes
    a = create_dataset("synthetic_regression", n_samples=50, n_features=3, data_seed=1)
    b = create_dataset("synthetic_regression", n_samples=50, n_features=3, data_seed=2)
    assert not torch.equal(a.x, b.x)


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

            def sequences(config):
                # (N, T, F): the class is the sign of the first step's first feature.
                g = torch.Generator().manual_seed(0)
                x = torch.randn(200, 7, 3, generator=g)
                return x, (x[:, 0, 0] > 0).long()

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
    with pytest.raises(ConfigError, match="needs image inputs") as info:
        train({"dataset": f"{user_module}:blobs", "model": "cnn", "epochs": 1})
    assert info.value.field == "model"
    with pytest.raises(ConfigError, match="must be one of train_loss, val_loss, val_rmse") as info:
        train({"dataset": f"{user_module}:line", "early_stopping_metric": "val_accuracy"})
    assert info.value.field == "early_stopping_metric"
    with pytest.raises(ConfigError, match="image dataset") as info:
        train({"dataset": f"{user_module}:blobs", "augment_rotate": 10.0, "epochs": 1})
    assert info.value.field == "augment_rotate"
    with pytest.raises(ConfigError, match="has no function 'nope'") as info:
        train({"dataset": f"{user_module}:nope", "epochs": 1})
    assert info.value.field == "dataset"
    for model in ("rnn", "transformer"):
        with pytest.raises(ConfigError, match=r"needs sequence .* or image inputs") as info:
            train({"dataset": f"{user_module}:blobs", "model": model, "epochs": 1})
        assert info.value.field == "model"


@pytest.mark.parametrize("model", ["rnn", "transformer"])
def test_sequence_models_read_a_user_n_t_f_dataset(user_module: str, model: str) -> None:
    seen: list[torch.Tensor] = []
    config = {
        "dataset": f"{user_module}:sequences",
        "model": model,
        "epochs": 1,
        "hidden": 8,
        "depth": 1,
        "d_model": 8,
        "heads": 2,
    }
    result = train(config, report=lambda m: seen.append(m))
    assert seen and math.isfinite(result.final["val_loss"])
    layers = [m for m in result.model.modules() if isinstance(m, torch.nn.RNNBase)]
    if model == "rnn":
        assert layers[0].input_size == 3  # F features per step
    else:
        assert result.model.positions.shape == (7, 8)  # T steps


def test_user_dataset_gets_names_outside_the_vocabulary(user_module: str) -> None:
    seen: list[dict] = []

    def spy(config: dict) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(config)
        return torch.randn(20, 3), torch.arange(20) % 2

    module = sys.modules.get(user_module) or __import__(user_module)
    module.spy = spy  # type: ignore[attr-defined]
    train({"dataset": f"{user_module}:spy", "epochs": 1, "my_knob": [1, 2], "hidden": 4})
    assert seen[0]["my_knob"] == [1, 2] and seen[0]["hidden"] == 4


def test_adding_problem_targets_are_the_sum_of_the_two_marked_values() -> None:
    data = create_dataset("adding", n_samples=500, seq_len=11, data_seed=3)
    assert data.x.shape == (500, 11, 2) and data.task == "regression" and data.n_outputs == 1
    assert not data.is_image and data.is_sequence_or_image
    values, markers = data.x[..., 0], data.x[..., 1]
    assert values.min() >= 0 and values.max() < 1
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    marked = markers.nonzero()  # (row, step) pairs, two per row, in order
    assert marked.shape == (1000, 2)
    first, second = marked[0::2, 1], marked[1::2, 1]
    assert torch.equal(marked[0::2, 0], torch.arange(500))
    # One marker in each half: steps 0-5 and 6-10 of 11.
    assert first.max() <= 5 and second.min() >= 6
    assert first.min() == 0 and second.max() == 10  # every position is drawn
    rows = torch.arange(500)
    torch.testing.assert_close(data.y, values[rows, first] + values[rows, second])
    for i in range(3):  # by hand, one row at a time
        steps = [t for t in range(11) if data.x[i, t, 1] == 1]
        assert data.y[i].item() == pytest.approx(sum(data.x[i, t, 0].item() for t in steps))
    same = create_dataset("adding", n_samples=500, seq_len=11, data_seed=3)
    other = create_dataset("adding", n_samples=500, seq_len=11, data_seed=4)
    assert torch.equal(same.x, data.x) and not torch.equal(other.x, data.x)


def test_adding_problem_defaults_and_training_core() -> None:
    cfg = build_config({"dataset": "adding", "model": "rnn"})
    assert cfg.seq_len == 50 and cfg.n_samples == 1000
    assert load_dataset(cfg).x.shape == (1000, 50, 2)
    result = train(
        {
            "dataset": "adding",
            "model": "rnn",
            "n_samples": 64,
            "seq_len": 6,
            "hidden": 4,
            "depth": 1,
            "epochs": 1,
            "grad_clip_norm": 1.0,
        }
    )
    assert set(result.final) >= {"val_rmse", "val_loss"}


def test_unknown_builtin_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="must be one of digits, wine"):
        create_dataset("mnist")
