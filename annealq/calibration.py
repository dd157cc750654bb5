"""What :func:`annealq.quantize` checks and draws before anything is solved: the calibration
inputs (an array, or a draw from a dataset's training split) and the model."""

from __future__ import annotations

import numpy as np
from torch import nn

from annealq.data.datasets import Dataset

DEFAULT_CALIBRATION_SIZE = 1000


def calibration_data(calibration, size, evaluation, seed):
    """``(dataset name or None, calibration array, evaluation pair or None)``."""
    dataset = None
    if isinstance(calibration, Dataset):
        dataset = calibration.name
        if evaluation is None:
            evaluation = (calibration.x_test, calibration.y_test)
        calibration = calibration.calibration(
            DEFAULT_CALIBRATION_SIZE if size is None else size, seed=seed or 0)
    elif size is not None:
        raise ValueError("calibration_size applies to a Dataset; with an array of inputs, "
                         "pass the inputs you want to calibrate on")
    if hasattr(calibration, "detach"):
        calibration = calibration.detach().cpu().numpy()
    try:
        calibration = np.asarray(calibration, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"calibration must be a numeric array: {exc}") from None
    if calibration.ndim < 2 or len(calibration) == 0:
        raise ValueError(f"calibration must be a non-empty batch (m, …) of inputs, got shape "
                         f"{calibration.shape}")
    if not np.all(np.isfinite(calibration)):
        raise ValueError("calibration contains NaN or Inf values")
    return dataset, calibration, evaluation


def validate_model(model):
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise ValueError(f"the model's {name} contains NaN or Inf values")
    return model
