"""The report of a quantization run: per layer errors, time and cache use, the modules left
in float, accuracy, and the configuration that produced it."""

from __future__ import annotations

import numpy as np

from annealq import __version__
from annealq.capture import not_quantized
from annealq.registry import emulation_note

SMALL_CALIBRATION = 100
"""Fewer calibration inputs than this draw a warning (on stderr and in the report)."""


def calibration_warning(size: int) -> str | None:
    """The warning for a very small calibration set, or ``None``.

    Example:
        >>> calibration_warning(1)  # doctest: +ELLIPSIS
        'only 1 calibration input (fewer than 100): the rounding is fitted to ...'
        >>> calibration_warning(1000) is None
        True
    """
    if size >= SMALL_CALIBRATION:
        return None
    inputs = "input" if size == 1 else "inputs"
    return (
        f"only {size} calibration {inputs} (fewer than {SMALL_CALIBRATION}): the rounding "
        "is fitted to these few inputs and can do worse than round-to-nearest on other "
        "data; 1000 (the default) is a sound size"
    )


def build_report(
    result,
    model,
    float_layers,
    dataset,
    config,
    calibration_size,
    evaluated,
    timing,
    *,
    folded=(),
    execution=None,
    notes=(),
    executor_stats=("workers", {}),
) -> dict:
    """The run's report (the README's JSON schema), with the whole configuration and the
    BatchNorms folded into the layer before them (``folded``, :mod:`annealq.fold`).

    Args:
        evaluated: what :func:`~annealq.evaluation.evaluate` measured (``accuracy``,
            ``language``), or ``{}``.
        execution: where problems ran (:class:`~annealq.execution.Execution` as a dict).
        notes: what choosing the solver noted; executor_stats: ``(key, stats)``, a cloud's
            or a pool's counts, each layer's cloud use added where every layer has one.
    """
    accuracy = evaluated.get("accuracy")
    bits, activation_bits, seed = config.bits, config.activation_bits, config.seed
    report = {
        "dataset": dataset,
        "bits": bits,
        "solver": result.solver,
        "method": result.method,
        "activation_bits": activation_bits,
        "calibration_size": calibration_size,
        "options": plain({**config.formulation_options(), **config.method_options}),
        "seed": seed,
    }
    note = emulation_note(result.solver)
    emulated = sorted(
        {
            layer.execution["emulation"]
            for layer in result.layers
            if "emulation" in (layer.execution or {})
        }
    )
    if emulated and not note:
        note = f"the answers came from an emulation, not quantum hardware: {emulated[0]}"
    if note:
        report.update({"emulation": True, "emulation_note": note})
    if accuracy is not None:
        report["accuracy"] = accuracy
    warning = calibration_warning(calibration_size)
    if warning:
        report["warnings"] = [warning]
    report.update(
        {
            "layers": [layer.report() for layer in result.layers],
            "not_quantized": not_quantized(model, float_layers),
            "folded_batchnorm": list(folded),
            "cache": {"hits": result.cache_hits, "misses": result.cache_misses},
            "timing": timing,
            "config": plain(config.to_dict()),
            "start": config.start,
            "annealq_version": __version__,
            "execution": execution,
            "solver_notes": list(notes),
        }
    )
    if "language" in evaluated:
        report["language"] = evaluated["language"]
    where, stats = executor_stats
    if stats and all("cloud" in (layer.execution or {}) for layer in result.layers):
        stats["layers"] = [
            {"layer": layer.name, **layer.execution["cloud"]}  # sent and billed
            for layer in result.layers
        ]
    if stats:
        report[where] = stats
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


def reduction(rtn: float, energy: float) -> str:
    """RTN's error over a method's, as the CLI prints it (``"2.50x"``, ``"exact"``)."""
    if energy > 0:
        return f"{rtn / energy:.2f}x"
    return "exact" if rtn == 0 else "inf"
