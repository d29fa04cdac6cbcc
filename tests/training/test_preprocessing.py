"""Preprocessors give the promised statistics on the training split, using its stats only."""

from __future__ import annotations

import pytest
import torch

from hpo.training.preprocessing import create_preprocessor, fit_preprocessor, preprocess_splits


def _correlated(n: int = 3000, d: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g, dtype=torch.float64)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) @ mixing + 3.0).float()


def _cov(z: torch.Tensor) -> torch.Tensor:
    zc = z.double() - z.double().mean(0)
    return zc.T @ zc / z.shape[0]


@pytest.mark.parametrize("name", ["pca_whiten", "zca_whiten"])
def test_whitening_gives_identity_covariance(name: str) -> None:
    x = _correlated()
    z = create_preprocessor(name, x, whiten_eps=0.0)(x)
    torch.testing.assert_close(
        _cov(z), torch.eye(x.shape[1], dtype=torch.float64), atol=1e-3, rtol=0
    )
    assert z.mean(0).abs().max() < 1e-3


def test_zca_stays_closest_to_the_data() -> None:
    # ZCA's matrix is symmetric: ZCA(x) = (x − μ) W with W = Wᵀ.
    x = _correlated()
    transform = create_preprocessor("zca_whiten", x, whiten_eps=0.0)
    eye = torch.eye(x.shape[1])
    w = transform(eye + x.mean(0)) - transform(x.mean(0, keepdim=True))
    torch.testing.assert_close(w, w.T, atol=1e-4, rtol=0)


def test_standardize_gives_mean_0_std_1() -> None:
    x = _correlated()
    z = create_preprocessor("standardize", x)(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0, correction=0), torch.ones(6), atol=1e-4, rtol=0)


def test_minmax_gives_0_to_1() -> None:
    x = _correlated()
    z = create_preprocessor("minmax", x)(x)
    torch.testing.assert_close(z.amin(0), torch.zeros(6), atol=1e-6, rtol=0)
    torch.testing.assert_close(z.amax(0), torch.ones(6), atol=1e-6, rtol=0)


def test_statistics_come_from_the_training_split_only() -> None:
    train_x, val_x = _correlated(seed=1), _correlated(seed=2) * 5
    mean, std = train_x.mean(0), train_x.std(0, correction=0)
    _, val_z = preprocess_splits("standardize", train_x, val_x)
    torch.testing.assert_close(val_z, (val_x - mean) / std, atol=1e-4, rtol=1e-4)


def test_images_keep_their_shape_and_constant_pixels_stay_moderate() -> None:
    x = torch.rand(100, 1, 4, 4)
    x[:, :, 0, 0] = 0.0  # a constant pixel, as in digits' border
    train_z, val_z = preprocess_splits("standardize", x[:80], x[80:])
    assert train_z.shape == (80, 1, 4, 4) and val_z.shape == (20, 1, 4, 4)
    # Per channel: the constant black pixel is the channel's black, −mean/std, for all.
    mean, std = x[:80].mean(), x[:80].std(correction=0)
    torch.testing.assert_close(train_z[:, :, 0, 0], torch.full((80, 1), float(-mean / std)))
    pca, _ = preprocess_splits("pca_whiten", x[:80], x[80:])
    assert torch.isfinite(pca).all()


@pytest.mark.parametrize("name", ["standardize", "minmax"])
def test_images_are_normalized_per_channel(name: str) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 3, 4, 4, generator=g) * torch.tensor([1.0, 5.0, 10.0]).view(1, 3, 1, 1)
    x[:, :, 0, 0] = 0.0  # a pixel constant over samples, like digits' corners
    z = fit_preprocessor(name, x)(x)
    # One affine map per channel, from statistics over (samples, height, width).
    for c in range(3):
        xc = x[:, c]
        if name == "standardize":
            want = (xc - xc.mean()) / xc.std(correction=0)
        else:
            want = (xc - xc.min()) / (xc.max() - xc.min())
        torch.testing.assert_close(z[:, c], want)


def test_constant_features_are_only_centred() -> None:
    x = torch.cat([torch.rand(50, 2), torch.full((50, 1), 7.0)], dim=1)
    z = create_preprocessor("standardize", x)(x)
    assert torch.all(z[:, 2] == 0) and torch.isfinite(z).all()
    assert torch.all(create_preprocessor("minmax", x)(x)[:, 2] == 0)


@pytest.mark.parametrize("name", ["pca_whiten", "zca_whiten"])
def test_whiten_eps_damps_each_direction_by_lambda_over_lambda_plus_eps(name: str) -> None:
    x = _correlated().double()
    eps = 2.0
    eigvals = torch.linalg.eigvalsh(_cov(x))
    z = fit_preprocessor(name, x, whiten_eps=eps)(x)
    got = torch.linalg.eigvalsh(_cov(z))
    torch.testing.assert_close(got, (eigvals / (eigvals + eps)).sort().values, rtol=1e-6, atol=1e-9)
    _, val = preprocess_splits(name, x, x[:10], whiten_eps=eps)
    torch.testing.assert_close(val, z[:10])
