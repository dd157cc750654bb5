"""What :func:`annealq.quantize` checks and draws before anything is solved: the calibration
inputs (an array, or a draw from a dataset's training split) and the model."""

from __future__ import annotations

import numpy as np
from torch import nn

from annealq.data.datasets import Dataset
from annealq.data.text import TextDataset

DEFAULT_CALIBRATION_SIZE = 1000
DEFAULT_TOKEN_WINDOWS = 128  # sequences of the context length: 32,768 rows at 256


def calibration_data(calibration, size, evaluation, seed, model=None):
    """``(dataset name or None, calibration array, evaluation pair, tokens or None)``.

    Integer arrays are token ids (kept as int64) when ``model`` has an ``nn.Embedding``;
    otherwise every input is cast to float64, as before."""
    dataset = None
    if isinstance(calibration, TextDataset):
        dataset = calibration.name
        context = _context(model)
        if evaluation is None:
            evaluation = calibration.windows(context)
        calibration = calibration.calibration(
            DEFAULT_TOKEN_WINDOWS if size is None else size, context=context, seed=seed or 0
        )
    elif isinstance(calibration, Dataset):
        dataset = calibration.name
        if evaluation is None:
            evaluation = (calibration.x_test, calibration.y_test)
        calibration = calibration.calibration(
            DEFAULT_CALIBRATION_SIZE if size is None else size, seed=seed or 0
        )
    elif size is not None:
        raise ValueError(
            "calibration_size applies to a Dataset; with an array of inputs, "
            "pass the inputs you want to calibrate on"
        )
    if hasattr(calibration, "detach"):
        calibration = calibration.detach().cpu().numpy()
    if _is_tokens(calibration, model):
        tokens = np.asarray(calibration, dtype=np.int64)
        if tokens.ndim != 2 or tokens.size == 0 or tokens.min() < 0:
            raise ValueError(
                f"token calibration must be non-negative ids (N, T), got shape {tokens.shape}"
            )
        return dataset, tokens, _tokens(evaluation)
    try:
        calibration = np.asarray(calibration, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"calibration must be a numeric array: {exc}") from None
    if calibration.ndim < 2 or len(calibration) == 0:
        raise ValueError(
            f"calibration must be a non-empty batch (m, …) of inputs, got shape {calibration.shape}"
        )
    if not np.all(np.isfinite(calibration)):
        raise ValueError("calibration contains NaN or Inf values")
    return dataset, calibration, evaluation


def validate_model(model):
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            raise ValueError(
                f"{name or 'the model'} is an nn.MultiheadAttention, whose packed "
                f"projections run functionally (no nn.Linear to quantize): write "
                f"the attention with separate nn.Linear q, k, v and output layers"
            )
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise ValueError(f"the model's {name} contains NaN or Inf values")
    return model


def _is_tokens(calibration, model) -> bool:
    array = np.asarray(calibration)
    return (
        np.issubdtype(array.dtype, np.integer)
        and model is not None
        and any(isinstance(m, nn.Embedding) for m in model.modules())
    )


def _tokens(evaluation):
    """Held-out token ids ``(N, T)`` as int64 (or ``(x, y)`` pairs, unchanged)."""
    if evaluation is None or isinstance(evaluation, (tuple, list)):
        return evaluation
    if hasattr(evaluation, "detach"):
        evaluation = evaluation.detach().cpu().numpy()
    tokens = np.asarray(evaluation)
    if not np.issubdtype(tokens.dtype, np.integer) or tokens.ndim != 2 or tokens.shape[1] < 2:
        raise ValueError(
            f"evaluation for a token model must be integer token ids (N, T) "
            f"with T >= 2, got {tokens.dtype} of shape {tokens.shape}"
        )
    return tokens.astype(np.int64)


def _context(model) -> int:
    """The context length of a model with a position embedding (its rows), else 256."""
    position = getattr(model, "position", None)
    return position.num_embeddings if isinstance(position, nn.Embedding) else 256
