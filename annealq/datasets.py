"""Datasets as float arrays: images flattened to ``(N, features)`` in [0, 1], int labels.

``digits`` (scikit-learn's bundled 8×8 digits) needs no files and is the default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """A train/test split. ``x_*`` are float32 ``(N, features)``, ``y_*`` int64 ``(N,)``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def calibration(self, size: int, seed: int = 0) -> np.ndarray:
        """``size`` inputs drawn without replacement from the **training** split."""
        if not 0 < size:
            raise ValueError(f"calibration size must be positive, got {size}")
        rng = np.random.default_rng(seed)
        index = rng.choice(len(self.x_train), size=min(size, len(self.x_train)), replace=False)
        return self.x_train[np.sort(index)]


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's 8×8 digits (1,797 images), split reproducibly into train and test."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    return Dataset("digits", x[train], y[train], x[test], y[test])
