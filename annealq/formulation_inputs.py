"""The arrays :func:`annealq.formulation.formulate_layer` is given (numpy arrays or CPU
torch tensors), checked and made float64 numpy arrays: a ``ValueError`` naming the
argument for a non-numeric array, NaN or Inf, a wrong shape, or an empty calibration set.

Example:
    >>> as_vector([1, 2], "bias", 2)
    array([1., 2.])
    >>> as_inputs([[0.5, float("nan")]], "inputs", 2)
    Traceback (most recent call last):
    ...
    ValueError: inputs contains NaN or Inf values
"""

from __future__ import annotations

import numpy as np


def to_numpy(x, name: str) -> np.ndarray:
    """``x`` as a finite float64 array (``name`` in the error)."""
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or Inf values")
    return array


def as_matrix(x, name: str) -> np.ndarray:
    """``x`` as a non-empty ``(n, f)`` weight matrix."""
    array = to_numpy(x, name)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array (n, f), got shape {array.shape}")
    return array


def as_vector(x, name: str, length: int) -> np.ndarray:
    """``x`` as a ``(length,)`` vector, one value per row of the weight."""
    array = to_numpy(x, name)
    if array.shape != (length,):
        raise ValueError(
            f"{name} must have shape ({length},) to match the weight's "
            f"{length} rows, got {array.shape}"
        )
    return array


def as_inputs(x, name: str, f: int) -> np.ndarray:
    """``x`` as calibration inputs ``(m, f)`` with at least one row."""
    array = to_numpy(x, name)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (m, {f}), got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: the calibration set needs at least one sample")
    if array.shape[1] != f:
        raise ValueError(
            f"{name} has {array.shape[1]} features but the weight has {f} "
            f"columns: shapes (m, {f}) expected, got {array.shape}"
        )
    return array
