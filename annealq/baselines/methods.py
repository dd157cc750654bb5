"""The baselines as the pipeline runs them, by name: GPTQ tuned per layer unless its
setting is given, coordinate descent from that tuned GPTQ, AdaRound.

``method="gptq"`` (and the QUBO's ``start="gptq"``) runs :func:`tuned_gptq_layer`: every
setting of :data:`GPTQ_GRID` (act-order on/off × damping 1 %, 0.1 %, 0.01 %) is tried on
the layer and the one with the lowest exact error on the calibration set is kept. Giving
``act_order`` and ``damp`` fixes the setting (``act_order=True, damp=0.01`` is the fixed
setting the benchmarks used before the tuning, the reference code's default); giving one
of them tunes the other. ``method="cd"`` descends from that same tuned GPTQ. With
``clip_search`` among the grid options, GPTQ's tuning also tries every setting on the
clip-searched grid, and the setting says which grid won (``cd`` descends on that one).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> W, b, X = rng.normal(size=(4, 6)), rng.normal(size=4), rng.normal(size=(50, 6))
    >>> q, q_b, setting = baseline_round("gptq", W, b, X, bits=2)
    >>> sorted(setting), len(setting["tried"])
    (['act_order', 'damp', 'error', 'tried'], 6)
    >>> fixed = baseline_round("gptq", W, b, X, bits=2, method_options=FIXED_GPTQ_SETTING)
    >>> [(t["act_order"], t["damp"]) for t in fixed[2]["tried"]]
    [(True, 0.01)]
"""

from __future__ import annotations

import numpy as np

from annealq.baselines.adaround import adaround_layer
from annealq.baselines.cd import cd_layer
from annealq.baselines.gptq import gptq_layer
from annealq.baselines.tuned import GPTQ_GRID, tuned_gptq_layer

METHODS = ("gptq", "cd", "adaround")
# the options that choose GPTQ's setting, wherever GPTQ runs (gptq, cd's start, start=gptq)
GPTQ_OPTIONS = ("act_order", "damp")
FIXED_GPTQ_SETTING = {"act_order": True, "damp": 0.01}  # the benchmarks' setting before tuning


def baseline_round(
    method: str,
    weight,
    bias,
    inputs,
    *,
    bits: int,
    float_inputs=None,
    method_options=None,
    **grid_options,
):
    """``(int_weight, int_bias, gptq_setting)`` of the layer by baseline ``method``.

    Args:
        method: ``"gptq"``, ``"cd"`` or ``"adaround"``.
        weight, bias, inputs, bits, float_inputs: as in
            :func:`~annealq.baselines.gptq_layer`.
        method_options: the method's own options; ``act_order`` and ``damp`` (see the
            module docs) go to GPTQ, the rest to ``cd_layer`` or ``adaround_layer``.
        **grid_options: ``scheme``, ``per_channel``, ``bias_step``, ``input_step``,
            ``group_size``, ``clip_search``, ``step_scale``.

    Returns:
        The integers (int64) and, for ``gptq`` and ``cd``, the GPTQ setting chosen
        (``{"act_order", "damp", "error", "tried"}``, see :func:`tuned_gptq_layer`);
        ``None`` for ``adaround``.

    Raises:
        ValueError: an unknown method, or anything the method rejects.
    """
    if method not in METHODS:
        raise ValueError(f"unknown baseline {method!r}; choose one of {', '.join(METHODS)}")
    options = dict(method_options or {})
    gptq_options = {k: options.pop(k) for k in GPTQ_OPTIONS if k in options}
    common = {"bits": bits, "float_inputs": float_inputs, **grid_options}
    if method == "adaround":
        if gptq_options:
            raise ValueError(f"adaround takes no GPTQ option ({', '.join(gptq_options)})")
        q, q_b = adaround_layer(weight, bias, inputs, **common, **options)
        return _integers(q), _integers(q_b), None
    if method == "gptq" and options:
        raise ValueError(
            f"unknown gptq option(s) {', '.join(sorted(options))}; GPTQ's "
            f"setting is {', '.join(GPTQ_OPTIONS)}"
        )
    clip = common.pop("clip_search", False)  # a tuning axis for GPTQ, not a fixed grid
    q, q_b, setting = tuned_gptq_layer(
        weight, bias, inputs, clip_search=clip, **common, **gptq_options
    )
    if method == "cd":
        q, q_b = cd_layer(
            weight,
            bias,
            inputs,
            start=(q, q_b),
            clip_search=setting.get("clip_search", False),
            **common,
            **options,
        )
    return _integers(q), _integers(q_b), setting


def baseline_rechoose(
    method: str,
    weight,
    bias,
    inputs,
    *,
    bits: int,
    start,
    setting,
    float_inputs=None,
    method_options=None,
    **grid_options,
) -> np.ndarray:
    """The baseline's own rounding again, on another grid (``grid_options``, e.g. a
    ``step_scale`` of re-fitted steps): ``cd`` descends from ``start`` ``(n, f+1)``
    (weights, then bias), ``gptq`` runs at the ``setting`` its tuning chose, ``adaround``
    runs afresh. Returns the integers ``(n, f+1)``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> W, X = rng.normal(size=(3, 5)), rng.normal(size=(40, 5))
        >>> q, q_b, setting = baseline_round("cd", W, None, X, bits=2)
        >>> again = baseline_rechoose("cd", W, None, X, bits=2, start=np.column_stack([q, q_b]),
        ...                           setting=setting, step_scale=np.full(3, 0.9))
        >>> again.shape
        (3, 6)
    """
    options = {k: v for k, v in dict(method_options or {}).items() if k not in GPTQ_OPTIONS}
    common = {"bits": bits, "float_inputs": float_inputs, **grid_options}
    if method == "gptq":
        q, q_b = gptq_layer(
            weight, bias, inputs, act_order=setting["act_order"], damp=setting["damp"], **common
        )
    elif method == "cd":
        start = np.asarray(start)
        q, q_b = cd_layer(
            weight, bias, inputs, start=(start[:, :-1], start[:, -1]), **common, **options
        )
    elif method == "adaround":
        q, q_b = adaround_layer(weight, bias, inputs, **common, **options)
    else:
        raise ValueError(f"unknown baseline {method!r}; choose one of {', '.join(METHODS)}")
    return np.column_stack([_integers(q), _integers(q_b)])


def tuned_grid(options: dict, setting) -> dict:
    """The grid options of the grid GPTQ's tuning chose (``setting``): clip-searched or not.

    Example:
        >>> tuned_grid({"clip_search": True, "per_channel": True}, {"clip_search": False})
        {'per_channel': True}
    """
    if setting is None or "clip_search" not in setting:
        return options
    options = {k: v for k, v in options.items() if k != "clip_search"}
    return {**options, "clip_search": True} if setting["clip_search"] else options


def _integers(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


__all__ = [
    "FIXED_GPTQ_SETTING",
    "GPTQ_GRID",
    "GPTQ_OPTIONS",
    "METHODS",
    "baseline_rechoose",
    "baseline_round",
    "tuned_grid",
]
