"""How a quantized model is judged: accuracy on labelled inputs, or language metrics on
held-out token windows, for the float, round-to-nearest and quantized models alike."""

from __future__ import annotations

import numpy as np

from annealq.data.models import accuracy
from annealq.language import language_metrics


def evaluate(model, quantized, evaluation, rounded) -> dict:
    """``{"accuracy": …}`` on ``evaluation = (x, y)``, or ``{"language": …}`` on token
    windows (an integer array), of ``model`` (float), ``rounded`` (RTN) and ``quantized``."""
    if isinstance(evaluation, np.ndarray):  # token ids (annealq.calibration)
        return {
            "language": language_metrics(
                model, {"rtn": rounded, "quantized": quantized}, evaluation
            )
        }
    x, y = evaluation
    return {
        "accuracy": {
            "float": accuracy(model, x, y),
            "rtn": accuracy(rounded, x, y),
            "quantized": accuracy(quantized, x, y),
        }
    }
