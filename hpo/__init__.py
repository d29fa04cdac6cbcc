"""hpo: hyperparameter search for PyTorch on Ray Tune, with every result kept in SQL."""

from __future__ import annotations

__version__ = "0.1.0"
