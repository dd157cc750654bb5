"""The report of a quantization run: per layer errors, time and cache use, the modules left
in float, accuracy, and the configuration that produced it."""

from __future__ import annotations

import numpy as np

from annealq import __version__
from annealq.capture import not_quantized
from annealq.registry import emulation_note


def build_report(result, model, float_layers, dataset, config, calibration_size, accuracy,
                 timing, folded=()) -> dict:
    """The run's report (the README's JSON schema), with the whole configuration and the
    BatchNorms folded into the layer before them (``folded``, :mod:`annealq.fold`)."""
    bits, activation_bits, seed = config.bits, config.activation_bits, config.seed
    report = {"dataset": dataset, "bits": bits, "solver": result.solver,
              "method": result.method, "activation_bits": activation_bits,
              "calibration_size": calibration_size,
              "options": plain({**config.formulation_options(), **config.method_options}),
              "seed": seed}
    note = emulation_note(result.solver)
    if note:
        report.update({"emulation": True, "emulation_note": note})
    if accuracy is not None:
        report["accuracy"] = accuracy
    report.update({
        "layers": [layer.report() for layer in result.layers],
        "not_quantized": not_quantized(model, float_layers),
        "folded_batchnorm": list(folded),
        "cache": {"hits": result.cache_hits, "misses": result.cache_misses},
        "timing": timing, "config": plain(config.to_dict()), "start": config.start,
        "annealq_version": __version__})
    return report


def plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
