"""Datasets: the built-in ones by name, user ones by ``"pkg.module:function"``, and the split.

A dataset is whole tensors, small enough to live on the device: the loop batches by
indexing, never through a DataLoader. Float targets mean regression (one output),
integer targets classification (``max(y) + 1`` classes). Images are (N, C, H, W).

Built-ins: ``digits`` (sklearn's 8×8 digits as 1×8×8 images scaled to [0, 1]), ``wine``,
``breast_cancer``, ``synthetic_classification`` (sklearn make_classification, 2 classes)
and ``synthetic_regression`` (make_regression with noise 0.1, targets divided by their std
so that losses are of order 1), the synthetic ones sized by `n_samples` × `n_features`
and drawn with `data_seed`, and ``adding`` (the adding problem, regression: `n_samples`
sequences (N, T, 2) of `seq_len` steps, drawn with `data_seed`; see `adding_problem`).
Sequences are (N, T, F); user data of shape (N, H, W) is read as one-channel images,
which the sequence models read back as H steps of W features.

The split depends on `data_seed` only (never on the trial's `seed`), so every trial of a
study trains and validates on the same rows; `Splits.split_hash` fingerprints them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import torch

from hpo import references
from hpo.training.config import Task, TrainConfig
from hpo.training.registry import lookup, pick_params


@dataclass(frozen=True)
class Dataset:
    """Inputs `x` (float32) and targets `y` (int64 classes or float32 values), with their task."""

    x: torch.Tensor
    y: torch.Tensor
    task: Task
    n_outputs: int

    @property
    def is_image(self) -> bool:
        """Whether samples are (C, H, W) images, the only input a `cnn` accepts."""
        return self.x.ndim == 4

    @property
    def is_sequence_or_image(self) -> bool:
        """Whether samples are (T, F) sequences or images, what `rnn` and `transformer` read."""
        return self.x.ndim in (3, 4)


@dataclass(frozen=True)
class Splits:
    """The training, validation and (possibly empty) test parts of a dataset.

    `val_index` holds the dataset rows of the validation part, in the order of `val_x`.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    val_index: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def split_hash(self) -> str:
        """12 hex digits of the SHA-256 of the sorted validation row indices (int64,
        little-endian): equal hashes mean the same validation rows."""
        rows = np.sort(self.val_index.numpy()).astype("<i8")
        return hashlib.sha256(rows.tobytes()).hexdigest()[:12]


def from_arrays(x: Any, y: Any) -> Dataset:
    """Build a `Dataset` from array-likes, inferring the task from the dtype of `y`."""
    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    yt = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    if xt.shape[0] != yt.shape[0] or xt.shape[0] < 2:
        raise ValueError(
            f"dataset needs as many targets as samples (≥ 2): got x {tuple(xt.shape)}, "
            f"y {tuple(yt.shape)}"
        )
    xt = xt.float()
    if xt.ndim == 3:  # (N, H, W): single-channel images
        xt = xt.unsqueeze(1)
    if yt.is_floating_point():
        return Dataset(xt, yt.float().reshape(-1), "regression", 1)
    if yt.dtype == torch.bool or yt.is_complex():
        raise ValueError(f"dataset targets must be integer or float, got {yt.dtype}")
    yt = yt.long().reshape(-1)
    if int(yt.min()) < 0:
        raise ValueError("class labels must be 0, 1, …, n_classes − 1")
    return Dataset(xt, yt, "classification", int(yt.max()) + 1)


@cache
def _sklearn_arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
    # Cached: trials in one process reuse the parsed files instead of reloading them.
    from sklearn import datasets

    loaded = getattr(datasets, f"load_{name}")()
    return loaded.data.astype(np.float32), loaded.target.astype(np.int64)


def _digits() -> Dataset:
    x, y = _sklearn_arrays("digits")
    return from_arrays((x / 16.0).reshape(-1, 1, 8, 8), y)


def _wine() -> Dataset:
    return from_arrays(*_sklearn_arrays("wine"))


def _breast_cancer() -> Dataset:
    return from_arrays(*_sklearn_arrays("breast_cancer"))


def _synthetic_classification(*, n_samples: int, n_features: int, data_seed: int) -> Dataset:
    from sklearn.datasets import make_classification

    informative = max(2, n_features // 2)
    x, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=informative,
        n_redundant=0,
        random_state=data_seed,
    )
    return from_arrays(x.astype(np.float32), y.astype(np.int64))


def _synthetic_regression(*, n_samples: int, n_features: int, data_seed: int) -> Dataset:
    from sklearn.datasets import make_regression

    x, y = make_regression(
        n_samples=n_samples, n_features=n_features, noise=0.1, random_state=data_seed
    )
    return from_arrays(x.astype(np.float32), (y / y.std()).astype(np.float32))


def adding_problem(*, n_samples: int, seq_len: int, data_seed: int) -> Dataset:
    """The adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015): each step is
    (value ~ U(0, 1), marker); exactly two markers are 1, one in the first half
    (steps 0 … ⌈T/2⌉−1) and one in the second, and the target is the sum of the two
    marked values. Predicting the mean (1) scores MSE 1/6; doing better needs memory
    across up to T steps, where gradients explode or vanish: the task clipping is for."""
    g = torch.Generator().manual_seed(data_seed)
    values = torch.rand(n_samples, seq_len, generator=g)
    half = (seq_len + 1) // 2
    first = torch.randint(0, half, (n_samples,), generator=g)
    second = torch.randint(half, seq_len, (n_samples,), generator=g)
    markers = torch.zeros(n_samples, seq_len)
    rows = torch.arange(n_samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return Dataset(torch.stack([values, markers], dim=-1), target, "regression", 1)


DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": _digits,
    "wine": _wine,
    "breast_cancer": _breast_cancer,
    "synthetic_classification": _synthetic_classification,
    "synthetic_regression": _synthetic_regression,
    "adding": adding_problem,
}


def _user_dataset(path: str, config: Mapping[str, Any]) -> Dataset:
    try:
        function = references.load(path)  # the strict grammar: nothing else is imported
    except ImportError as exc:
        raise ValueError(f"dataset {path!r}: {exc}") from exc
    result = function(dict(config))
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ValueError(f"dataset {path!r} must return a tuple (X, y)")
    return from_arrays(*result)


def create_dataset(name: str, **params: Any) -> Dataset:
    """Load built-in dataset `name`; `params` may hold any hyperparameters (each built-in
    takes the ones it needs). `ValueError` listing the valid names if unknown."""
    builder = lookup(DATASETS, "dataset", name)
    return builder(**pick_params(builder, params))


def load_dataset(config: TrainConfig) -> Dataset:
    """The dataset `config.dataset` names: a built-in, or a user ``pkg.module:function``
    called with the config as a dict."""
    values = config.model_dump()
    if config.dataset in DATASETS:
        return create_dataset(config.dataset, **values)
    return _user_dataset(config.dataset, values)


def _hold_out(
    order: torch.Tensor, labels: torch.Tensor | None, n_out: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(held out, rest): `n_out` rows of the permutation `order`, the rest in order.

    With `labels`, each class gives its share of `n_out` (largest remainders, ties to
    the smaller class label), taking its rows in the order `order` lists them.
    """
    if labels is None:
        return order[:n_out], order[n_out:]
    ordered = labels[order]
    classes, counts = ordered.unique(return_counts=True)
    quota = counts.double() * n_out / order.shape[0]
    take = quota.floor().long()
    missing = n_out - int(take.sum())
    if missing > 0:
        # Stable sort: equal remainders go to the smaller label first.
        by_remainder = torch.sort(quota - take, descending=True, stable=True).indices
        take[by_remainder[:missing]] += 1
    chosen = torch.zeros(order.shape[0], dtype=torch.bool)
    for c, k in zip(classes.tolist(), take.tolist(), strict=True):
        positions = (ordered == c).nonzero().flatten()[:k]
        chosen[positions] = True
    return order[chosen], order[~chosen]


def split(
    dataset: Dataset, val_fraction: float, data_seed: int, test_fraction: float = 0.0
) -> Splits:
    """A deterministic random split: the same `data_seed` always holds out the same rows.

    Classification splits are stratified (each class keeps its share in every part, up
    to rounding). The test rows are drawn first, then the validation rows from the rest;
    every part keeps at least one row (the test part only when `test_fraction` > 0).
    """
    n = dataset.x.shape[0]
    n_test = min(n - 2, max(1, round(n * test_fraction))) if test_fraction > 0 else 0
    n_val = min(n - n_test - 1, max(1, round(n * val_fraction)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(data_seed))
    labels = dataset.y if dataset.task == "classification" else None
    test, rest = _hold_out(order, labels, n_test)
    val, train = _hold_out(rest, labels, n_val)
    return Splits(
        dataset.x[train],
        dataset.y[train],
        dataset.x[val],
        dataset.y[val],
        val,
        dataset.x[test],
        dataset.y[test],
    )
